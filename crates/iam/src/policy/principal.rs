//! The `Principal` / `NotPrincipal` element: parsing and matching against the caller.

use serde_json::Value;

use super::context::{PrincipalInfo, PrincipalType};
use super::error::PolicyError;

/// One entry of `"AWS": …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsPrincipal {
    /// `"*"`: everyone, including anonymous callers.
    Any,
    /// A 12-digit account id or `arn:aws:iam::ACCT:root`: the account (which delegates to the
    /// account's own identity policies) and its root user.
    Account(String),
    /// A user, role, assumed-role session or federated user ARN.
    Arn(String),
}

/// The parsed value of a `Principal` or `NotPrincipal` element.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrincipalSet {
    /// `"Principal": "*"` (or `{"AWS": "*"}`, which AWS treats the same).
    pub any: bool,
    pub aws: Vec<AwsPrincipal>,
    pub service: Vec<String>,
    pub federated: Vec<String>,
    pub canonical_user: Vec<String>,
}

/// How a resource-based policy statement named the caller. The order matters: a stronger match
/// from any statement wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum MatchKind {
    /// Through the caller's account (id or `:root`): a delegation to that account's identity
    /// policies, which must allow too (unless the caller is the root itself).
    Account,
    /// Through the role of a session, `*`, or `NotPrincipal`: the grant joins the caller's
    /// permissions before any session policy or permissions boundary narrows them.
    Limited,
    /// The caller's own ARN (user, session, root, service): not narrowed by boundary or session
    /// policies.
    Exact,
}

impl PrincipalSet {
    pub(crate) fn parse(v: &Value) -> Result<PrincipalSet, PolicyError> {
        let mut set = PrincipalSet::default();
        match v {
            Value::String(s) if s == "*" => set.any = true,
            Value::Object(map) if !map.is_empty() => {
                for (kind, values) in map {
                    let list = string_list(values)?;
                    if list.is_empty() {
                        return Err(PolicyError::Syntax);
                    }
                    for value in list {
                        match kind.as_str() {
                            "AWS" => {
                                let p = parse_aws(value).ok_or_else(|| invalid("AWS", value))?;
                                if p == AwsPrincipal::Any {
                                    set.any = true;
                                }
                                set.aws.push(p);
                            }
                            "Service" => set.service.push(plain("Service", value)?),
                            "Federated" => set.federated.push(plain("Federated", value)?),
                            "CanonicalUser" => {
                                set.canonical_user.push(plain("CanonicalUser", value)?)
                            }
                            other => return Err(invalid(other, value)),
                        }
                    }
                }
            }
            _ => return Err(PolicyError::Syntax),
        }
        Ok(set)
    }

    /// The strongest way this set names `p`, if it does.
    pub(crate) fn matches(&self, p: &PrincipalInfo) -> Option<MatchKind> {
        let mut best: Option<MatchKind> = None;
        let mut raise = |k: MatchKind| {
            if best.is_none_or(|b| k > b) {
                best = Some(k);
            }
        };
        if self.any {
            raise(MatchKind::Limited);
        }
        for entry in &self.aws {
            match entry {
                AwsPrincipal::Any => raise(MatchKind::Limited),
                AwsPrincipal::Account(acct) => {
                    if p.account.as_deref() == Some(acct.as_str()) && is_iam_identity(p.kind) {
                        if p.kind == PrincipalType::Root {
                            raise(MatchKind::Exact);
                        } else {
                            raise(MatchKind::Account);
                        }
                    }
                }
                AwsPrincipal::Arn(arn) => {
                    if *arn == p.arn && is_iam_identity(p.kind) {
                        raise(MatchKind::Exact);
                    } else if p.kind == PrincipalType::AssumedRole
                        && p.session_issuer_arn.as_deref() == Some(arn.as_str())
                    {
                        raise(MatchKind::Limited);
                    }
                }
            }
        }
        if p.kind == PrincipalType::Service
            && self
                .service
                .iter()
                .any(|s| s == "*" || s.eq_ignore_ascii_case(&p.arn))
        {
            raise(MatchKind::Exact);
        }
        if (p.kind == PrincipalType::FederatedUser && self.federated.contains(&p.arn))
            || self.canonical_user.contains(&p.arn)
        {
            raise(MatchKind::Exact);
        }
        best
    }

    /// Whether `NotPrincipal` with this set leaves `p` out of the statement. AWS evaluates a
    /// caller as the chain of identities it acts as (session, its role, its account), and a
    /// `NotPrincipal` excludes the caller only when every link is listed; this is why AWS tells
    /// users to list the account ARN next to the user or session they mean to exempt.
    pub(crate) fn excludes(&self, p: &PrincipalInfo) -> bool {
        if self.any {
            return true;
        }
        let listed_arn = |arn: &str| {
            self.aws
                .iter()
                .any(|e| matches!(e, AwsPrincipal::Arn(a) if a == arn))
        };
        let listed_account = |acct: &str| {
            self.aws
                .iter()
                .any(|e| matches!(e, AwsPrincipal::Account(a) if a == acct))
        };
        let account_listed = p.account.as_deref().is_some_and(listed_account);
        match p.kind {
            PrincipalType::Root => account_listed,
            PrincipalType::User | PrincipalType::FederatedUser => {
                account_listed && (listed_arn(&p.arn) || self.federated.contains(&p.arn))
            }
            PrincipalType::AssumedRole => {
                account_listed
                    && listed_arn(&p.arn)
                    && p.session_issuer_arn.as_deref().is_none_or(listed_arn)
            }
            PrincipalType::Service => self
                .service
                .iter()
                .any(|s| s == "*" || s.eq_ignore_ascii_case(&p.arn)),
            PrincipalType::Anonymous => false,
        }
    }

    /// Every AWS principal ARN or account id named, for existence checks by the IAM and KMS
    /// layers (AWS refuses policies naming principals that do not exist).
    pub fn aws_principals(&self) -> impl Iterator<Item = &AwsPrincipal> {
        self.aws.iter()
    }
}

fn is_iam_identity(kind: PrincipalType) -> bool {
    matches!(
        kind,
        PrincipalType::Root
            | PrincipalType::User
            | PrincipalType::AssumedRole
            | PrincipalType::FederatedUser
    )
}

fn invalid(kind: &str, value: &str) -> PolicyError {
    PolicyError::InvalidPrincipal {
        kind: kind.to_owned(),
        value: value.to_owned(),
    }
}

fn plain(kind: &str, value: &str) -> Result<String, PolicyError> {
    if value.is_empty() || (value != "*" && value.contains(['*', '?'])) {
        return Err(invalid(kind, value));
    }
    Ok(value.to_owned())
}

/// A string or a list of strings.
pub(crate) fn string_list(v: &Value) -> Result<Vec<&str>, PolicyError> {
    match v {
        Value::String(s) => Ok(vec![s.as_str()]),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().ok_or(PolicyError::Syntax))
            .collect(),
        _ => Err(PolicyError::Syntax),
    }
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Accepts the forms IAM accepts for `"AWS"`: `*`, an account id, or a root / user / role /
/// assumed-role / federated-user ARN without wildcards.
fn parse_aws(value: &str) -> Option<AwsPrincipal> {
    if value == "*" {
        return Some(AwsPrincipal::Any);
    }
    if is_account_id(value) {
        return Some(AwsPrincipal::Account(value.to_owned()));
    }
    if value.contains(['*', '?']) {
        return None;
    }
    let mut parts = value.splitn(6, ':');
    let (arn, partition, service, region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if arn != "arn"
        || !partition.starts_with("aws")
        || !region.is_empty()
        || !is_account_id(account)
    {
        return None;
    }
    let valid = match service {
        "iam" => {
            if resource == "root" {
                return Some(AwsPrincipal::Account(account.to_owned()));
            }
            ["user/", "role/"]
                .iter()
                .any(|p| resource.strip_prefix(p).is_some_and(|n| !n.is_empty()))
        }
        "sts" => {
            resource
                .strip_prefix("assumed-role/")
                .and_then(|r| r.split_once('/'))
                .is_some_and(|(role, session)| !role.is_empty() && !session.is_empty())
                || resource
                    .strip_prefix("federated-user/")
                    .is_some_and(|n| !n.is_empty())
        }
        _ => false,
    };
    valid.then(|| AwsPrincipal::Arn(value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_aws_forms_and_refuses_the_rest() {
        let ok = json!({"AWS": ["111122223333", "arn:aws:iam::111122223333:root",
            "arn:aws:iam::111122223333:user/a", "arn:aws:iam::111122223333:role/p/r",
            "arn:aws:sts::111122223333:assumed-role/r/s"], "Service": "logs.amazonaws.com"});
        let set = PrincipalSet::parse(&ok).unwrap();
        assert_eq!(set.aws[0], AwsPrincipal::Account("111122223333".into()));
        assert_eq!(set.aws[1], AwsPrincipal::Account("111122223333".into()));
        for bad in [
            "arn:aws:iam::111122223333:role/*",
            "alice",
            "arn:aws:iam::1111:root",
            "arn:aws:s3:::bucket",
            "arn:aws:iam::111122223333:group/g",
        ] {
            assert_eq!(
                PrincipalSet::parse(&json!({"AWS": bad})),
                Err(PolicyError::InvalidPrincipal {
                    kind: "AWS".into(),
                    value: bad.into()
                })
            );
        }
        assert!(matches!(
            PrincipalSet::parse(&json!({"Bogus": "x"})),
            Err(PolicyError::InvalidPrincipal { .. })
        ));
        assert_eq!(
            PrincipalSet::parse(&json!("arn:aws:iam::111122223333:root")),
            Err(PolicyError::Syntax)
        );
        assert_eq!(PrincipalSet::parse(&json!({})), Err(PolicyError::Syntax));
        assert!(PrincipalSet::parse(&json!({"AWS": "*"})).unwrap().any);
    }
}
