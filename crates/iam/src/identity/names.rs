//! IAM's rules for names, paths, ARNs and policy documents, with AWS's error codes and wording.
//!
//! The IAM API checks its input against the AWS model before it reaches the repository; these
//! checks repeat the ones that protect the store, so every other caller of the repository (the
//! operator, Organizations creating roles) is held to the same rules.

use citadel_api::{AwsError, ValidationErrors};

use super::EntityKind;

/// What a policy document is for; decides its size limit and, once the policy engine lands,
/// its grammar (identity policies have no `Principal`; trust policies need one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyDocumentKind {
    /// A version of a customer managed policy (also used as a permissions boundary).
    Managed,
    /// An inline policy embedded in a user, group or role.
    Inline(EntityKind),
    /// A role's trust policy (`AssumeRolePolicyDocument`).
    Trust,
}

/// Largest managed policy version, in characters without whitespace.
pub const MANAGED_POLICY_MAX: usize = 6144;
/// Largest role trust policy, in characters without whitespace.
pub const TRUST_POLICY_MAX: usize = 2048;

/// The aggregate size allowed for all inline policies of one entity (without whitespace).
pub fn inline_aggregate_max(kind: EntityKind) -> usize {
    match kind {
        EntityKind::User => 2048,
        EntityKind::Group => 5120,
        EntityKind::Role => 10240,
    }
}

/// Size of a policy as IAM counts it against its quotas: whitespace is not counted.
pub fn policy_size(document: &str) -> usize {
    document.chars().filter(|c| !c.is_whitespace()).count()
}

/// The one check every policy document passes before it is stored (identity, inline, managed
/// and trust policies alike): the policy engine's full grammar for the document's kind
/// ([`Policy::parse`](crate::policy::Policy::parse)), answering `MalformedPolicyDocument` with
/// the problem named, and the size limit of its kind (`LimitExceeded`).
///
/// Inline policies count against their entity's aggregate limit, which the repository checks
/// with the entity's other inline policies (and its name, which the message carries) in view;
/// a single inline document larger than that whole limit is left to the same check.
pub fn validate_policy_document(kind: PolicyDocumentKind, document: &str) -> Result<(), AwsError> {
    use crate::policy::{IdentityPolicyKind, Policy, PolicyKind};
    let policy_kind = match kind {
        PolicyDocumentKind::Managed => PolicyKind::Identity(IdentityPolicyKind::Managed),
        PolicyDocumentKind::Inline(EntityKind::User) => {
            PolicyKind::Identity(IdentityPolicyKind::UserInline)
        }
        PolicyDocumentKind::Inline(EntityKind::Group) => {
            PolicyKind::Identity(IdentityPolicyKind::GroupInline)
        }
        PolicyDocumentKind::Inline(EntityKind::Role) => {
            PolicyKind::Identity(IdentityPolicyKind::RoleInline)
        }
        PolicyDocumentKind::Trust => PolicyKind::Trust,
    };
    if let PolicyDocumentKind::Inline(entity) = kind
        && policy_size(document) > inline_aggregate_max(entity)
    {
        // Over the entity's whole aggregate: the repository refuses it, naming the entity.
        return Ok(());
    }
    Policy::parse(document, policy_kind)
        .map(|_| ())
        .map_err(|e| e.to_aws_error())
}

/// `LimitExceeded` for the aggregate inline policy size of an entity.
pub(crate) fn inline_too_large(kind: EntityKind, entity_name: &str) -> AwsError {
    limit_exceeded(format!(
        "Maximum policy size of {} bytes exceeded for {} {entity_name}",
        inline_aggregate_max(kind),
        kind.noun()
    ))
}

pub(crate) fn limit_exceeded(message: impl Into<String>) -> AwsError {
    AwsError::new(409, "LimitExceeded", message)
}

pub(crate) fn invalid_input(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "InvalidInput", message)
}

fn validation(errs: ValidationErrors) -> Result<(), AwsError> {
    errs.into_result().map_err(|mut e| {
        e.code = "ValidationError".into();
        e
    })
}

/// Java's `\w`: ASCII letters, digits and underscore.
fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Characters of user, group, role and policy names: `[\w+=,.@-]`.
pub fn is_name_char(c: char) -> bool {
    is_word(c) || matches!(c, '+' | '=' | ',' | '.' | '@' | '-')
}

const NAME_PATTERN: &str = "Member must satisfy regular expression pattern: [\\w+=,.@-]+";

fn check_name(errs: &mut ValidationErrors, member: &str, value: &str, max: usize) {
    let len = value.chars().count();
    if len < 1 {
        errs.push(
            value,
            member,
            "Member must have length greater than or equal to 1",
        );
    } else if len > max {
        errs.push(
            value,
            member,
            &format!("Member must have length less than or equal to {max}"),
        );
    }
    if len >= 1 && !value.chars().all(is_name_char) {
        errs.push(value, member, NAME_PATTERN);
    }
}

/// The longest name of each kind of entity.
pub fn max_name_len(kind: EntityKind) -> usize {
    match kind {
        EntityKind::User | EntityKind::Role => 64,
        EntityKind::Group => 128,
    }
}

/// Checks a user, group or role name (`member` names the parameter in the message).
pub fn validate_entity_name(kind: EntityKind, member: &str, name: &str) -> Result<(), AwsError> {
    let mut errs = ValidationErrors::new();
    check_name(&mut errs, member, name, max_name_len(kind));
    validation(errs)
}

/// Checks a managed or inline policy name.
pub fn validate_policy_name(member: &str, name: &str) -> Result<(), AwsError> {
    let mut errs = ValidationErrors::new();
    check_name(&mut errs, member, name, 128);
    validation(errs)
}

/// Checks an instance profile name (the same characters as other IAM names, at most 128).
pub fn validate_instance_profile_name(member: &str, name: &str) -> Result<(), AwsError> {
    let mut errs = ValidationErrors::new();
    check_name(&mut errs, member, name, 128);
    validation(errs)
}

/// Checks a user, group or role path: `/` or `/…/` of printable ASCII, at most 512 characters.
pub fn validate_path(member: &str, path: &str) -> Result<(), AwsError> {
    let mut errs = ValidationErrors::new();
    let len = path.chars().count();
    if len < 1 {
        errs.push(
            path,
            member,
            "Member must have length greater than or equal to 1",
        );
    } else if len > 512 {
        errs.push(
            path,
            member,
            "Member must have length less than or equal to 512",
        );
    }
    if len >= 1 && !is_valid_path(path) {
        errs.push(
            path,
            member,
            "Member must satisfy regular expression pattern: (\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F)",
        );
    }
    validation(errs)
}

fn is_valid_path(path: &str) -> bool {
    if path == "/" {
        return true;
    }
    path.len() >= 3
        && path.starts_with('/')
        && path.ends_with('/')
        && path.chars().all(|c| ('\u{21}'..='\u{7E}').contains(&c))
}

/// Checks a managed policy path: `/` or `/seg/…/` where segments use `[A-Za-z0-9.,+@=_-]`.
pub fn validate_policy_path(member: &str, path: &str) -> Result<(), AwsError> {
    let mut errs = ValidationErrors::new();
    let len = path.chars().count();
    if len > 512 {
        errs.push(
            path,
            member,
            "Member must have length less than or equal to 512",
        );
    }
    let ok = path.starts_with('/')
        && path.ends_with('/')
        && path
            .split('/')
            .skip(1)
            .collect::<Vec<_>>()
            .split_last()
            .is_some_and(|(last, segments)| {
                last.is_empty()
                    && segments.iter().all(|s| {
                        !s.is_empty()
                            && s.chars().all(|c| {
                                c.is_ascii_alphanumeric()
                                    || matches!(c, '.' | ',' | '+' | '@' | '=' | '_' | '-')
                            })
                    })
            });
    if !ok {
        errs.push(
            path,
            member,
            "Member must satisfy regular expression pattern: ((/[A-Za-z0-9\\.,\\+@=_-]+)*)/",
        );
    }
    validation(errs)
}

/// Checks the tags of a request: at most 50, keys 1–128 and values 0–256 characters of
/// `[\p{L}\p{Z}\p{N}_.:/=+\-@]`, no key twice (IAM tag keys are case-insensitive).
pub fn validate_tags(tags: &[super::Tag]) -> Result<(), AwsError> {
    let mut errs = ValidationErrors::new();
    if tags.len() > 50 {
        errs.push_redacted("tags", "Member must have length less than or equal to 50");
    }
    let tag_char = |c: char| {
        c.is_alphabetic()
            || c.is_numeric()
            || c.is_whitespace()
            || matches!(c, '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@')
    };
    for (i, tag) in tags.iter().enumerate() {
        let at = format!("tags.{}.member.key", i + 1);
        let klen = tag.key.encode_utf16().count();
        if klen < 1 {
            errs.push(
                &tag.key,
                &at,
                "Member must have length greater than or equal to 1",
            );
        } else if klen > 128 {
            errs.push(
                &tag.key,
                &at,
                "Member must have length less than or equal to 128",
            );
        }
        if klen >= 1 && !tag.key.chars().all(tag_char) {
            errs.push(
                &tag.key,
                &at,
                "Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+",
            );
        }
        let at = format!("tags.{}.member.value", i + 1);
        if tag.value.encode_utf16().count() > 256 {
            errs.push(
                &tag.value,
                &at,
                "Member must have length less than or equal to 256",
            );
        }
        if !tag.value.chars().all(tag_char) {
            errs.push(
                &tag.value,
                &at,
                "Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*",
            );
        }
    }
    validation(errs)?;
    let mut seen = std::collections::HashSet::new();
    for tag in tags {
        if !seen.insert(tag.key.to_lowercase()) {
            return Err(invalid_input(
                "Duplicate tag keys found. Please note that Tag keys are case insensitive.",
            ));
        }
    }
    Ok(())
}

/// The storage form of a name: IAM names are unique regardless of case.
pub fn name_key(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// `arn:aws:iam::ACCT:{kind}{path}{name}`.
pub fn entity_arn(account_id: &str, kind: EntityKind, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{account_id}:{}{path}{name}", kind.arn_type())
}

/// `arn:aws:iam::ACCT:policy{path}{name}`.
pub fn policy_arn(account_id: &str, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{account_id}:policy{path}{name}")
}

/// A managed policy ARN taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyArn {
    /// The account id, or `aws` for AWS managed policies.
    pub account: String,
    pub path: String,
    pub name: String,
}

/// Parses `arn:aws:iam::ACCT:policy/path/name`. `None` when it is not a managed policy ARN.
pub fn parse_policy_arn(arn: &str) -> Option<PolicyArn> {
    let rest = arn.strip_prefix("arn:")?;
    let mut parts = rest.splitn(5, ':');
    let partition = parts.next()?;
    let service = parts.next()?;
    let region = parts.next()?;
    let account = parts.next()?;
    let resource = parts.next()?;
    if partition.is_empty() || service != "iam" || !region.is_empty() || account.is_empty() {
        return None;
    }
    let path_and_name = resource.strip_prefix("policy")?;
    if !path_and_name.starts_with('/') {
        return None;
    }
    let split = path_and_name.rfind('/')?;
    let (path, name) = path_and_name.split_at(split + 1);
    if name.is_empty() || !name.chars().all(is_name_char) {
        return None;
    }
    Some(PolicyArn {
        account: account.to_owned(),
        path: path.to_owned(),
        name: name.to_owned(),
    })
}

/// The final name segment of a user or role ARN (`…:user/path/alice` → `alice`), or of an
/// assumed-role ARN's role (`…:assumed-role/R/session` → `R`).
pub fn name_from_principal_arn(arn: &str) -> Option<&str> {
    let resource = arn.splitn(6, ':').nth(5)?;
    if let Some(rest) = resource.strip_prefix("assumed-role/") {
        return rest.split('/').next().filter(|s| !s.is_empty());
    }
    resource.rsplit('/').next().filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_aws_rules() {
        assert!(validate_entity_name(EntityKind::User, "userName", "alice").is_ok());
        assert!(validate_entity_name(EntityKind::User, "userName", "a+b=c,d.e@f-g_h9").is_ok());
        let e = validate_entity_name(EntityKind::User, "userName", "al ice").unwrap_err();
        assert_eq!((e.code.as_ref(), e.status), ("ValidationError", 400));
        assert_eq!(
            e.message.as_deref(),
            Some(
                "1 validation error detected: Value 'al ice' at 'userName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+"
            )
        );
        assert!(validate_entity_name(EntityKind::User, "userName", "").is_err());
        assert!(validate_entity_name(EntityKind::User, "userName", &"a".repeat(64)).is_ok());
        assert!(validate_entity_name(EntityKind::User, "userName", &"a".repeat(65)).is_err());
        assert!(validate_entity_name(EntityKind::Role, "roleName", &"a".repeat(65)).is_err());
        assert!(validate_entity_name(EntityKind::Group, "groupName", &"a".repeat(128)).is_ok());
        assert!(validate_entity_name(EntityKind::Group, "groupName", &"a".repeat(129)).is_err());
        assert!(validate_entity_name(EntityKind::User, "userName", "älice").is_err());
        assert!(validate_entity_name(EntityKind::User, "userName", "a/b").is_err());
        assert!(validate_policy_name("policyName", &"p".repeat(128)).is_ok());
        assert!(validate_policy_name("policyName", "p*").is_err());
    }

    #[test]
    fn paths_follow_aws_rules() {
        for ok in ["/", "/a/", "/division_abc/subdivision_xyz/", "/a!~b/"] {
            assert!(validate_path("path", ok).is_ok(), "{ok}");
        }
        for bad in ["", "a", "/a", "a/", "//", "/a b/", "/é/"] {
            assert!(validate_path("path", bad).is_err(), "{bad:?}");
        }
        assert!(validate_path("path", &format!("/{}/", "a".repeat(510))).is_ok());
        assert!(validate_path("path", &format!("/{}/", "a".repeat(511))).is_err());
        for ok in ["/", "/a/", "/a/b.c/"] {
            assert!(validate_policy_path("path", ok).is_ok(), "{ok}");
        }
        for bad in ["", "/a", "//", "/a//b/", "/a!/"] {
            assert!(validate_policy_path("path", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tags_are_checked() {
        let t = |k: &str, v: &str| super::super::Tag {
            key: k.into(),
            value: v.into(),
        };
        assert!(validate_tags(&[t("team", "blue"), t("cost center", "")]).is_ok());
        let e = validate_tags(&[t("Team", "a"), t("team", "b")]).unwrap_err();
        assert_eq!(e.code, "InvalidInput");
        assert!(validate_tags(&[t("", "a")]).is_err());
        assert!(validate_tags(&[t("a*", "a")]).is_err());
        let many: Vec<_> = (0..51).map(|i| t(&format!("k{i}"), "v")).collect();
        assert!(validate_tags(&many).is_err());
    }

    #[test]
    fn policy_documents_are_checked_by_the_policy_engine() {
        let ok = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
        assert!(validate_policy_document(PolicyDocumentKind::Managed, ok).is_ok());
        for bad in [
            "",
            "not json",
            "[]",
            r#"{"Statement": "x"}"#,
            "{\"Statement\":[]",
        ] {
            let e = validate_policy_document(PolicyDocumentKind::Managed, bad).unwrap_err();
            assert_eq!(
                (e.code.as_ref(), e.status, e.message.as_deref()),
                (
                    "MalformedPolicyDocument",
                    400,
                    Some("Syntax errors in policy.")
                ),
                "{bad:?}"
            );
        }
        let e = validate_policy_document(PolicyDocumentKind::Managed, "{}").unwrap_err();
        assert_eq!(
            e.message.as_deref(),
            Some("Missing required field Statement")
        );
        let e = validate_policy_document(
            PolicyDocumentKind::Managed,
            r#"{"Statement":{"Effect":"Allow","Action":"kms:Encrypt"}}"#,
        )
        .unwrap_err();
        assert_eq!(
            e.message.as_deref(),
            Some("Policy statement must contain resources.")
        );
        let e = validate_policy_document(
            PolicyDocumentKind::Managed,
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:Encrypt","Resource":"*"}}"#,
        )
        .unwrap_err();
        assert_eq!(
            e.message.as_deref(),
            Some("Policy document should not specify a principal.")
        );
        // Whitespace does not count against the size.
        let padded = format!(
            "{{\"Statement\":[{{\"Sid\":\"{}\",\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}}]{}}}",
            "a".repeat(6000),
            " ".repeat(10_000)
        );
        assert!(validate_policy_document(PolicyDocumentKind::Managed, &padded).is_ok());
        let big = format!("{{\"Statement\":[{{\"Sid\":\"{}\"}}]}}", "a".repeat(6200));
        let e = validate_policy_document(PolicyDocumentKind::Managed, &big).unwrap_err();
        assert_eq!(
            (e.code.as_ref(), e.status, e.message.as_deref()),
            (
                "LimitExceeded",
                409,
                Some("Cannot exceed quota for PolicySize: 6144")
            )
        );
        let e = validate_policy_document(PolicyDocumentKind::Trust, &big).unwrap_err();
        assert_eq!(
            e.message.as_deref(),
            Some("Cannot exceed quota for ACLSizePerRole: 2048")
        );
        // Inline documents are sized together with their entity's others, by the repository.
        assert!(
            validate_policy_document(PolicyDocumentKind::Inline(EntityKind::User), &big).is_ok()
        );
    }

    #[test]
    fn arns() {
        assert_eq!(
            entity_arn("111122223333", EntityKind::User, "/div/", "alice"),
            "arn:aws:iam::111122223333:user/div/alice"
        );
        assert_eq!(
            policy_arn("111122223333", "/", "P"),
            "arn:aws:iam::111122223333:policy/P"
        );
        assert_eq!(
            parse_policy_arn("arn:aws:iam::111122223333:policy/a/b/P"),
            Some(PolicyArn {
                account: "111122223333".into(),
                path: "/a/b/".into(),
                name: "P".into()
            })
        );
        assert_eq!(
            parse_policy_arn("arn:aws:iam::aws:policy/ReadOnlyAccess").map(|p| p.account),
            Some("aws".into())
        );
        for bad in [
            "",
            "arn:aws:iam::1:user/x",
            "arn:aws:iam::1:policy",
            "arn:aws:iam::1:policy/",
            "arn:aws:s3:::policy/x",
            "arn:aws:iam:us-east-1:1:policy/x",
            "policy/x",
        ] {
            assert_eq!(parse_policy_arn(bad), None, "{bad}");
        }
        assert_eq!(
            name_from_principal_arn("arn:aws:iam::1:user/div/alice"),
            Some("alice")
        );
        assert_eq!(
            name_from_principal_arn("arn:aws:sts::1:assumed-role/Admin/sess"),
            Some("Admin")
        );
        assert_eq!(name_from_principal_arn("arn:aws:iam::1:root"), Some("root"));
        assert_eq!(name_from_principal_arn("nonsense"), None);
    }
}
