//! The request as the policy engine sees it: who, what action, which resource, and the
//! condition keys (global `aws:*` keys plus whatever the service adds).

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;

use base64::Engine as _;
use time::OffsetDateTime;

use super::values::{Instant, parse_bool, parse_date, parse_number};

/// What kind of caller made the request; drives `aws:PrincipalType` and principal matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalType {
    /// The root user of an account (`aws:PrincipalType` = `Account`).
    Root,
    User,
    AssumedRole,
    FederatedUser,
    /// An AWS service principal such as `logs.amazonaws.com`.
    Service,
    /// An unauthenticated caller.
    Anonymous,
}

impl PrincipalType {
    /// The value of `aws:PrincipalType`, or `None` for service principals, which AWS describes
    /// with `aws:PrincipalIsAWSService` / `aws:PrincipalServiceName` instead.
    pub fn as_condition_value(self) -> Option<&'static str> {
        match self {
            PrincipalType::Root => Some("Account"),
            PrincipalType::User => Some("User"),
            PrincipalType::AssumedRole => Some("AssumedRole"),
            PrincipalType::FederatedUser => Some("FederatedUser"),
            PrincipalType::Anonymous => Some("Anonymous"),
            PrincipalType::Service => None,
        }
    }
}

/// The caller, with what policies can test about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalInfo {
    /// `arn:aws:iam::111122223333:root`, `…:user/alice`, `arn:aws:sts::…:assumed-role/R/s`; the
    /// service name (`logs.amazonaws.com`) for service principals; `anonymous` for anonymous.
    pub arn: String,
    /// `None` for service and anonymous principals.
    pub account: Option<String>,
    pub kind: PrincipalType,
    /// `aws:userid`: the account id for root, `AIDA…` for users, `AROA…:session` for roles.
    pub user_id: Option<String>,
    /// `aws:username`: the friendly name, present for IAM users only.
    pub username: Option<String>,
    /// Principal tags (user or role tags, plus session tags), `aws:PrincipalTag/<key>`.
    pub tags: Vec<(String, String)>,
    /// For an assumed-role session, the role's ARN (with its path). A policy that names the role
    /// matches its sessions, and `aws:PrincipalArn` is this ARN.
    pub session_issuer_arn: Option<String>,
}

impl PrincipalInfo {
    pub fn root(account: &str) -> Self {
        PrincipalInfo {
            arn: format!("arn:aws:iam::{account}:root"),
            account: Some(account.to_owned()),
            kind: PrincipalType::Root,
            user_id: Some(account.to_owned()),
            username: None,
            tags: Vec::new(),
            session_issuer_arn: None,
        }
    }

    /// An IAM user at path `/`; set `arn` afterwards for users with another path.
    pub fn user(account: &str, name: &str, user_id: &str) -> Self {
        PrincipalInfo {
            arn: format!("arn:aws:iam::{account}:user/{name}"),
            account: Some(account.to_owned()),
            kind: PrincipalType::User,
            user_id: Some(user_id.to_owned()),
            username: Some(name.to_owned()),
            tags: Vec::new(),
            session_issuer_arn: None,
        }
    }

    /// A session of `role_arn` (`arn:aws:iam::ACCT:role/path/Name`) named `session_name`.
    pub fn assumed_role(role_arn: &str, role_id: &str, session_name: &str) -> Self {
        let account = arn_account(role_arn).unwrap_or_default().to_owned();
        let role_name = role_arn.rsplit('/').next().unwrap_or(role_arn);
        PrincipalInfo {
            arn: format!("arn:aws:sts::{account}:assumed-role/{role_name}/{session_name}"),
            account: Some(account),
            kind: PrincipalType::AssumedRole,
            user_id: Some(format!("{role_id}:{session_name}")),
            username: None,
            tags: Vec::new(),
            session_issuer_arn: Some(role_arn.to_owned()),
        }
    }

    pub fn service(service: &str) -> Self {
        PrincipalInfo {
            arn: service.to_owned(),
            account: None,
            kind: PrincipalType::Service,
            user_id: None,
            username: None,
            tags: Vec::new(),
            session_issuer_arn: None,
        }
    }

    pub fn anonymous() -> Self {
        PrincipalInfo {
            arn: "anonymous".to_owned(),
            account: None,
            kind: PrincipalType::Anonymous,
            user_id: Some("anonymous".to_owned()),
            username: None,
            tags: Vec::new(),
            session_issuer_arn: None,
        }
    }

    pub fn with_tags<K: Into<String>, V: Into<String>>(
        mut self,
        tags: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.tags
            .extend(tags.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// `aws:PrincipalArn`: the role's ARN for role sessions, the caller's ARN otherwise.
    pub fn principal_arn(&self) -> &str {
        match (&self.kind, &self.session_issuer_arn) {
            (PrincipalType::AssumedRole, Some(role)) => role,
            _ => &self.arn,
        }
    }
}

/// Derives what the ARN of an authenticated [`citadel_api::Principal`] tells. The IAM layer
/// should fill `tags` and, for role sessions, the role ARN with its path; this conversion can
/// only rebuild a path-less role ARN from the session ARN.
impl From<&citadel_api::Principal> for PrincipalInfo {
    fn from(p: &citadel_api::Principal) -> Self {
        use citadel_api::PrincipalKind;
        let account = p.account_id.clone();
        match p.kind {
            PrincipalKind::Root => PrincipalInfo::root(&account),
            PrincipalKind::User => PrincipalInfo {
                arn: p.arn.clone(),
                account: Some(account),
                kind: PrincipalType::User,
                user_id: Some(p.user_id.clone()),
                username: p.arn.rsplit('/').next().map(str::to_owned),
                tags: Vec::new(),
                session_issuer_arn: None,
            },
            PrincipalKind::AssumedRole => {
                // arn:aws:sts::ACCT:assumed-role/ROLE/SESSION
                let role = p
                    .arn
                    .split_once(":assumed-role/")
                    .and_then(|(_, rest)| rest.split('/').next())
                    .map(|role| format!("arn:aws:iam::{account}:role/{role}"));
                PrincipalInfo {
                    arn: p.arn.clone(),
                    account: Some(account),
                    kind: PrincipalType::AssumedRole,
                    user_id: Some(p.user_id.clone()),
                    username: None,
                    tags: Vec::new(),
                    session_issuer_arn: role,
                }
            }
        }
    }
}

/// The account field (5th) of an ARN, when it has one.
pub(crate) fn arn_account(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    if parts.next()? != "arn" {
        return None;
    }
    let account = parts.nth(3)?;
    parts.next()?;
    (!account.is_empty()).then_some(account)
}

/// One value of a condition key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextValue {
    String(String),
    Bool(bool),
    Integer(i64),
    Date(OffsetDateTime),
    Ip(IpAddr),
    Binary(Vec<u8>),
}

impl ContextValue {
    /// The value as string operators see it.
    pub fn as_str(&self) -> Cow<'_, str> {
        match self {
            ContextValue::String(s) => Cow::Borrowed(s),
            ContextValue::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            ContextValue::Integer(i) => Cow::Owned(i.to_string()),
            ContextValue::Date(d) => Cow::Owned(format_date(*d)),
            ContextValue::Ip(ip) => Cow::Owned(ip.to_string()),
            ContextValue::Binary(b) => {
                Cow::Owned(base64::engine::general_purpose::STANDARD.encode(b))
            }
        }
    }

    pub(crate) fn as_number(&self) -> Option<f64> {
        match self {
            // Precision beyond 2^53 does not matter for the counts and sizes policies compare.
            #[allow(clippy::cast_precision_loss)]
            ContextValue::Integer(i) => Some(*i as f64),
            ContextValue::String(s) => parse_number(s),
            ContextValue::Date(d) => {
                #[allow(clippy::cast_precision_loss)]
                let secs = d.unix_timestamp() as f64;
                Some(secs)
            }
            _ => None,
        }
    }

    pub(crate) fn as_instant(&self) -> Option<Instant> {
        match self {
            ContextValue::Date(d) => Some(d.unix_timestamp_nanos()),
            ContextValue::Integer(i) => Some(i128::from(*i) * 1_000_000_000),
            ContextValue::String(s) => parse_date(s),
            _ => None,
        }
    }

    pub(crate) fn as_bool(&self) -> Option<bool> {
        match self {
            ContextValue::Bool(b) => Some(*b),
            ContextValue::String(s) => parse_bool(s),
            _ => None,
        }
    }

    pub(crate) fn as_ip(&self) -> Option<IpAddr> {
        match self {
            ContextValue::Ip(ip) => Some(*ip),
            ContextValue::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub(crate) fn as_bytes(&self) -> Cow<'_, [u8]> {
        match self {
            ContextValue::Binary(b) => Cow::Borrowed(b),
            other => match other.as_str() {
                Cow::Borrowed(s) => Cow::Borrowed(s.as_bytes()),
                Cow::Owned(s) => Cow::Owned(s.into_bytes()),
            },
        }
    }
}

fn format_date(d: OffsetDateTime) -> String {
    d.to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| d.unix_timestamp().to_string())
}

impl From<&str> for ContextValue {
    fn from(s: &str) -> Self {
        ContextValue::String(s.to_owned())
    }
}
impl From<String> for ContextValue {
    fn from(s: String) -> Self {
        ContextValue::String(s)
    }
}
impl From<bool> for ContextValue {
    fn from(b: bool) -> Self {
        ContextValue::Bool(b)
    }
}
impl From<i64> for ContextValue {
    fn from(i: i64) -> Self {
        ContextValue::Integer(i)
    }
}
impl From<IpAddr> for ContextValue {
    fn from(ip: IpAddr) -> Self {
        ContextValue::Ip(ip)
    }
}
impl From<OffsetDateTime> for ContextValue {
    fn from(d: OffsetDateTime) -> Self {
        ContextValue::Date(d)
    }
}
impl From<Vec<u8>> for ContextValue {
    fn from(b: Vec<u8>) -> Self {
        ContextValue::Binary(b)
    }
}

/// Everything one authorization decision looks at. Built once per request (and re-pointed with
/// [`set_resource`](Self::set_resource) when a request touches several resources).
#[derive(Debug, Clone)]
pub struct EvalContext {
    principal: PrincipalInfo,
    action: String,
    resource: String,
    /// Lower-cased key name → values. Key names are case-insensitive in policies; values are not.
    keys: HashMap<String, Vec<ContextValue>>,
}

impl EvalContext {
    /// Starts a context for `principal` performing `action` (`kms:Decrypt`) on `resource` (an
    /// ARN, or `*` for actions without a resource).
    pub fn builder(
        principal: PrincipalInfo,
        action: impl Into<String>,
        resource: impl Into<String>,
    ) -> EvalContextBuilder {
        EvalContextBuilder {
            ctx: EvalContext {
                principal,
                action: action.into(),
                resource: resource.into(),
                keys: HashMap::new(),
            },
            current_time: None,
            tag_keys: None,
            request_tag_keys: Vec::new(),
            called_via: Vec::new(),
            via_aws_service: false,
        }
    }

    pub fn principal(&self) -> &PrincipalInfo {
        &self.principal
    }

    pub fn action(&self) -> &str {
        &self.action
    }

    pub fn resource(&self) -> &str {
        &self.resource
    }

    pub fn set_resource(&mut self, resource: impl Into<String>) {
        self.resource = resource.into();
    }

    pub fn set_action(&mut self, action: impl Into<String>) {
        self.action = action.into();
    }

    /// The values of a condition key (name matched case-insensitively); `None` when absent.
    pub fn get(&self, key: &str) -> Option<&[ContextValue]> {
        match self.keys.get(key) {
            Some(v) => Some(v),
            None if key.bytes().any(|b| b.is_ascii_uppercase()) => {
                self.keys.get(&key.to_ascii_lowercase()).map(Vec::as_slice)
            }
            None => None,
        }
    }

    /// Lookup with a key already lower-cased (policies store their keys that way).
    pub(crate) fn get_lower(&self, key: &str) -> Option<&[ContextValue]> {
        self.keys.get(key).map(Vec::as_slice)
    }

    /// Sets (replaces) a key; services add their own keys this way (`kms:ViaService`, …).
    pub fn insert(&mut self, key: &str, values: Vec<ContextValue>) {
        self.keys.insert(key.to_ascii_lowercase(), values);
    }

    /// Removes a key.
    pub fn remove(&mut self, key: &str) {
        self.keys.remove(&key.to_ascii_lowercase());
    }

    /// All keys and values (lower-cased names), for simulation output and debugging.
    pub fn keys(&self) -> impl Iterator<Item = (&str, &[ContextValue])> {
        self.keys.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// The value a policy variable `${key}` stands for: a key with exactly one value.
    /// Multi-valued and absent keys cannot be substituted.
    pub(crate) fn variable(&self, key_lower: &str) -> Option<Cow<'_, str>> {
        match self.keys.get(key_lower)?.as_slice() {
            [one] => Some(one.as_str()),
            _ => None,
        }
    }
}

/// Builds an [`EvalContext`], filling the global `aws:*` keys from what the caller supplies.
#[derive(Debug, Clone)]
pub struct EvalContextBuilder {
    ctx: EvalContext,
    current_time: Option<OffsetDateTime>,
    tag_keys: Option<Vec<String>>,
    request_tag_keys: Vec<String>,
    called_via: Vec<String>,
    via_aws_service: bool,
}

impl EvalContextBuilder {
    /// `aws:SourceIp`.
    pub fn source_ip(mut self, ip: IpAddr) -> Self {
        self.ctx.insert("aws:SourceIp", vec![ContextValue::Ip(ip)]);
        self
    }

    /// `aws:CurrentTime` / `aws:EpochTime`; the wall clock when not given.
    pub fn current_time(mut self, now: OffsetDateTime) -> Self {
        self.current_time = Some(now);
        self
    }

    /// `aws:SecureTransport`.
    pub fn secure_transport(mut self, tls: bool) -> Self {
        self.ctx
            .insert("aws:SecureTransport", vec![ContextValue::Bool(tls)]);
        self
    }

    /// `aws:RequestedRegion`.
    pub fn requested_region(mut self, region: &str) -> Self {
        self.ctx
            .insert("aws:RequestedRegion", vec![ContextValue::from(region)]);
        self
    }

    /// `aws:TokenIssueTime` (temporary credentials only).
    pub fn token_issue_time(mut self, issued: OffsetDateTime) -> Self {
        self.ctx
            .insert("aws:TokenIssueTime", vec![ContextValue::Date(issued)]);
        self
    }

    /// `aws:RequestTag/<key>`; the key also joins `aws:TagKeys` unless
    /// [`tag_keys`](Self::tag_keys) sets that explicitly.
    pub fn request_tag(mut self, key: &str, value: &str) -> Self {
        self.ctx.insert(
            &format!("aws:RequestTag/{key}"),
            vec![ContextValue::from(value)],
        );
        self.request_tag_keys.push(key.to_owned());
        self
    }

    /// `aws:ResourceTag/<key>`.
    pub fn resource_tag(mut self, key: &str, value: &str) -> Self {
        self.ctx.insert(
            &format!("aws:ResourceTag/{key}"),
            vec![ContextValue::from(value)],
        );
        self
    }

    /// `aws:TagKeys` (for operations such as UntagResource that name keys without values).
    pub fn tag_keys<S: Into<String>>(mut self, keys: impl IntoIterator<Item = S>) -> Self {
        self.tag_keys = Some(keys.into_iter().map(Into::into).collect());
        self
    }

    /// `aws:ViaAWSService`: the request was made by a service on the caller's behalf.
    pub fn via_aws_service(mut self, via: bool) -> Self {
        self.via_aws_service = via;
        self
    }

    /// `aws:CalledVia` (with `aws:CalledViaFirst` / `aws:CalledViaLast`): the service principals
    /// (`secretsmanager.amazonaws.com`) that forwarded the request, first to last.
    pub fn called_via<S: Into<String>>(mut self, services: impl IntoIterator<Item = S>) -> Self {
        self.called_via = services.into_iter().map(Into::into).collect();
        self
    }

    /// Adds one value to any key (service keys such as `kms:ViaService`, `kms:CallerAccount`,
    /// `kms:EncryptionContext:<k>`). Repeated calls build a multi-valued key.
    pub fn key(mut self, key: &str, value: impl Into<ContextValue>) -> Self {
        self.ctx
            .keys
            .entry(key.to_ascii_lowercase())
            .or_default()
            .push(value.into());
        self
    }

    /// Sets a (possibly multi-valued) key to `values`.
    pub fn key_values<V: Into<ContextValue>>(
        mut self,
        key: &str,
        values: impl IntoIterator<Item = V>,
    ) -> Self {
        self.ctx
            .insert(key, values.into_iter().map(Into::into).collect());
        self
    }

    pub fn build(self) -> EvalContext {
        let EvalContextBuilder {
            mut ctx,
            current_time,
            tag_keys,
            request_tag_keys,
            called_via,
            via_aws_service,
        } = self;
        // Keys the caller set explicitly win over the derived ones.
        let p = &ctx.principal;
        let keys = &mut ctx.keys;
        let mut set = |k: &str, v: ContextValue| {
            keys.entry(k.to_owned()).or_insert_with(|| vec![v]);
        };
        // Principal keys, as AWS's table of principal key values gives them.
        if p.kind != PrincipalType::Service && p.kind != PrincipalType::Anonymous {
            set("aws:principalarn", ContextValue::from(p.principal_arn()));
        }
        if let Some(account) = &p.account {
            set("aws:principalaccount", ContextValue::from(account.as_str()));
        }
        if let Some(t) = p.kind.as_condition_value() {
            set("aws:principaltype", ContextValue::from(t));
        }
        if let Some(id) = &p.user_id {
            set("aws:userid", ContextValue::from(id.as_str()));
        }
        if let Some(name) = &p.username {
            set("aws:username", ContextValue::from(name.as_str()));
        }
        let is_service = p.kind == PrincipalType::Service;
        set("aws:principalisawsservice", ContextValue::Bool(is_service));
        if is_service {
            set(
                "aws:principalservicename",
                ContextValue::from(p.arn.as_str()),
            );
        }
        for (k, v) in &p.tags {
            set(
                &format!("aws:principaltag/{}", k.to_ascii_lowercase()),
                ContextValue::from(v.as_str()),
            );
        }
        let now = current_time.unwrap_or_else(OffsetDateTime::now_utc);
        set("aws:currenttime", ContextValue::Date(now));
        set("aws:epochtime", ContextValue::Integer(now.unix_timestamp()));
        set("aws:viaawsservice", ContextValue::Bool(via_aws_service));
        let tag_keys = tag_keys.unwrap_or(request_tag_keys);
        if !tag_keys.is_empty() {
            ctx.keys.insert(
                "aws:tagkeys".to_owned(),
                tag_keys.into_iter().map(ContextValue::String).collect(),
            );
        }
        if let (Some(first), Some(last)) = (called_via.first(), called_via.last()) {
            ctx.keys.insert(
                "aws:calledviafirst".to_owned(),
                vec![ContextValue::from(first.as_str())],
            );
            ctx.keys.insert(
                "aws:calledvialast".to_owned(),
                vec![ContextValue::from(last.as_str())],
            );
            ctx.keys.insert(
                "aws:calledvia".to_owned(),
                called_via.into_iter().map(ContextValue::String).collect(),
            );
        }
        ctx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_keys_are_filled_case_insensitively() {
        let p = PrincipalInfo::user("111122223333", "alice", "AIDAEXAMPLE")
            .with_tags([("Team", "blue")]);
        let ctx = EvalContext::builder(p, "kms:Decrypt", "*")
            .source_ip("192.0.2.1".parse().unwrap())
            .secure_transport(true)
            .request_tag("Env", "prod")
            .called_via(["secretsmanager.amazonaws.com"])
            .key("kms:ViaService", "secretsmanager.us-east-1.amazonaws.com")
            .current_time(OffsetDateTime::UNIX_EPOCH)
            .build();
        let s = |k: &str| {
            ctx.get(k).map(|v| {
                v.iter()
                    .map(|x| x.as_str().into_owned())
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(s("AWS:USERNAME"), Some(vec!["alice".to_owned()]));
        assert_eq!(
            s("aws:PrincipalArn"),
            Some(vec!["arn:aws:iam::111122223333:user/alice".to_owned()])
        );
        assert_eq!(s("aws:PrincipalType"), Some(vec!["User".to_owned()]));
        assert_eq!(s("aws:PrincipalTag/team"), Some(vec!["blue".to_owned()]));
        assert_eq!(s("aws:TagKeys"), Some(vec!["Env".to_owned()]));
        assert_eq!(s("aws:EpochTime"), Some(vec!["0".to_owned()]));
        assert_eq!(
            s("aws:CurrentTime"),
            Some(vec!["1970-01-01T00:00:00Z".to_owned()])
        );
        assert_eq!(
            s("aws:CalledViaLast"),
            Some(vec!["secretsmanager.amazonaws.com".to_owned()])
        );
        assert_eq!(
            s("kms:viaservice"),
            Some(vec!["secretsmanager.us-east-1.amazonaws.com".to_owned()])
        );
        assert_eq!(s("aws:SourceIp"), Some(vec!["192.0.2.1".to_owned()]));
        assert!(ctx.get("aws:TokenIssueTime").is_none());
    }

    #[test]
    fn role_sessions_report_the_role_as_principal_arn() {
        let p =
            PrincipalInfo::assumed_role("arn:aws:iam::111122223333:role/ops/Admin", "AROAEX", "s1");
        assert_eq!(p.arn, "arn:aws:sts::111122223333:assumed-role/Admin/s1");
        assert_eq!(
            p.principal_arn(),
            "arn:aws:iam::111122223333:role/ops/Admin"
        );
        let api = citadel_api::Principal {
            account_id: "111122223333".into(),
            arn: "arn:aws:sts::111122223333:assumed-role/Admin/s1".into(),
            user_id: "AROAEX:s1".into(),
            access_key_id: "ASIAEX".into(),
            kind: citadel_api::PrincipalKind::AssumedRole,
        };
        let info = PrincipalInfo::from(&api);
        assert_eq!(
            info.session_issuer_arn.as_deref(),
            Some("arn:aws:iam::111122223333:role/Admin")
        );
        assert_eq!(
            arn_account("arn:aws:kms:us-east-1:111122223333:key/x"),
            Some("111122223333")
        );
        assert_eq!(arn_account("arn:aws:s3:::bucket"), None);
        assert_eq!(arn_account("*"), None);
    }
}
