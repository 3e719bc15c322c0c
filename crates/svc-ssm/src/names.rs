//! Parameter names, ARNs, selectors (`name:3`, `name:label`) and labels, with AWS's rules and
//! messages.

use citadel_api::AwsError;

use crate::errors;

/// Levels a hierarchy may have (`/1/2/…/15`).
pub const MAX_LEVELS: usize = 15;
/// The longest ARN a parameter name may make: AWS counts the ARN prefix towards the 1011
/// characters a name may use.
pub const MAX_ARN_LEN: usize = 1011;

/// AWS's message for a name that is not made of letters, digits, `.`, `-`, `_` and `/`.
const NAME_RULES: &str = "Parameter name: can't be prefixed with \"ssm\" (case-insensitive). If formed as a path, it can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, numbers and the following 3 symbols .-_";

/// The part of the name the ARN carries and storage is keyed by: the name without its leading
/// slash (`/a/b` → `a/b`; `a` → `a`), so `a` and `/a` are the same parameter, as in AWS.
pub fn resource(name: &str) -> &str {
    name.strip_prefix('/').unwrap_or(name)
}

/// `arn:aws:ssm:<region>:<account>:parameter/<name without leading slash>`.
pub fn arn(region: &str, account: &str, name: &str) -> String {
    format!(
        "arn:aws:ssm:{region}:{account}:parameter/{}",
        resource(name)
    )
}

fn allowed_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/')
}

/// Checks a name PutParameter is asked to create or overwrite, and returns it trimmed (AWS
/// strips surrounding spaces).
pub fn validate_for_write(raw: &str, region: &str, account: &str) -> Result<String, AwsError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(errors::validation(
            "Parameter name: can't be empty or contain only spaces.",
        ));
    }
    let lower = name.to_ascii_lowercase();
    let bare = resource(&lower);
    let is_path = name.matches('/').count() > 1;
    if bare.starts_with("aws") || bare.starts_with("ssm") {
        if is_path && lower.starts_with("/aws") {
            return Err(errors::access_denied(format!(
                "No access to reserved parameter name: {name}."
            )));
        }
        if is_path {
            return Err(errors::validation(NAME_RULES));
        }
        return Err(errors::validation(
            "Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive).",
        ));
    }
    if !name.chars().all(allowed_char) {
        return Err(errors::validation(NAME_RULES));
    }
    if name.contains('/') && !name.starts_with('/') {
        return Err(errors::validation(
            "Parameter name must be a fully qualified name.",
        ));
    }
    let res = resource(name);
    if res.is_empty() || res.split('/').any(str::is_empty) {
        return Err(errors::validation(NAME_RULES));
    }
    if res.split('/').count() > MAX_LEVELS {
        return Err(errors::hierarchy_level(MAX_LEVELS));
    }
    let arn_len = arn(region, account, name).len();
    if arn_len > MAX_ARN_LEN {
        return Err(errors::validation(format!(
            "Parameter name: can't be longer than {MAX_ARN_LEN} characters including the ARN prefix (arn:aws:ssm:{region}:{account}:parameter/); this name makes {arn_len}."
        )));
    }
    Ok(name.to_owned())
}

/// Whether `name` could be a stored parameter's name (reads treat anything else as absent).
pub fn plausible(name: &str) -> bool {
    let res = resource(name);
    !res.is_empty()
        && name.chars().all(allowed_char)
        && !res.split('/').any(str::is_empty)
        && (!name.contains('/') || name.starts_with('/'))
}

/// Which version a read asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Version(u64),
    Label(String),
}

impl Selector {
    pub fn text(&self) -> String {
        match self {
            Selector::Version(v) => v.to_string(),
            Selector::Label(l) => l.clone(),
        }
    }
}

/// A parameter a read names: by name or ARN, optionally with a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The account owning the parameter (another account only through an ARN).
    pub account: String,
    /// The name as given (ARNs reduced to `/<resource>`).
    pub name: String,
    pub selector: Option<Selector>,
    /// The selector as the caller wrote it (`:3`), echoed in `Parameter.Selector`.
    pub selector_text: Option<String>,
}

/// Parses what GetParameter(s) and friends accept: `name`, `name:3`, `name:label`, or the
/// parameter's ARN with the same suffixes. `None` when the text cannot name a parameter of
/// `region` (a malformed ARN, another Region's ARN, more than one selector).
pub fn parse_reference(text: &str, region: &str, account: &str) -> Option<Reference> {
    let (owner, rest) = if let Some(arn) = text.strip_prefix("arn:") {
        let mut parts = arn.splitn(5, ':');
        let partition = parts.next()?;
        let service = parts.next()?;
        let arn_region = parts.next()?;
        let arn_account = parts.next()?;
        let resource = parts.next()?;
        if partition != "aws" || service != "ssm" || arn_region != region {
            return None;
        }
        if arn_account.len() != 12 || !arn_account.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let name = resource.strip_prefix("parameter/")?;
        // `parameter/a` names `a` or `/a` alike: both map to the resource `a`.
        (arn_account.to_owned(), format!("/{name}"))
    } else {
        (account.to_owned(), text.to_owned())
    };
    let (name, selector_text) = match rest.split_once(':') {
        None => (rest, None),
        Some((n, sel)) => {
            if sel.contains(':') || sel.is_empty() {
                return None;
            }
            (n.to_owned(), Some(sel.to_owned()))
        }
    };
    let selector = selector_text.as_ref().map(|s| {
        if s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse::<u64>()
                .map(Selector::Version)
                .unwrap_or_else(|_| Selector::Label(s.clone()))
        } else {
            Selector::Label(s.clone())
        }
    });
    Some(Reference {
        account: owner,
        name,
        selector,
        selector_text: selector_text.map(|s| format!(":{s}")),
    })
}

/// Whether a label meets AWS's rules: 1–100 characters of letters, digits, `.`, `-`, `_`; not
/// starting with a digit, nor with `aws` or `ssm` (case-insensitive).
pub fn valid_label(label: &str) -> bool {
    let lower = label.to_ascii_lowercase();
    !label.is_empty()
        && label.len() <= 100
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && !label.starts_with(|c: char| c.is_ascii_digit())
        && !lower.starts_with("aws")
        && !lower.starts_with("ssm")
}

/// Checks a hierarchy path (GetParametersByPath, the `Path` filter): `/` or `/a/b`, no
/// reserved prefix, at most [`MAX_LEVELS`] levels. Returns it without a trailing slash.
pub fn validate_path(path: &str) -> Result<String, AwsError> {
    let message = "The parameter doesn't meet the parameter name requirements. The parameter name must begin with a forward slash \"/\". It can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). It must use only letters, numbers, or the following symbols: . (period), - (hyphen), _ (underscore). Special characters are not allowed. All sub-paths, if specified, must use the forward slash symbol \"/\". Valid example: /get/parameters2-/by1./path0_.";
    if !path.starts_with('/') || path.contains("//") || !path.chars().all(allowed_char) {
        return Err(errors::validation(message));
    }
    let trimmed = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    if trimmed.len() > 1 && resource(trimmed).split('/').count() > MAX_LEVELS {
        return Err(errors::hierarchy_level(MAX_LEVELS));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const R: &str = "us-east-1";
    const A: &str = "111122223333";

    #[test]
    fn names_follow_aws_rules() {
        assert_eq!(validate_for_write(" /a/b ", R, A).unwrap(), "/a/b");
        assert_eq!(validate_for_write("plain", R, A).unwrap(), "plain");
        let e = validate_for_write("a/b", R, A).unwrap_err();
        assert_eq!(
            e.message.as_deref(),
            Some("Parameter name must be a fully qualified name.")
        );
        let e = validate_for_write("/aws/x/y", R, A).unwrap_err();
        assert_eq!(e.code, "AccessDeniedException");
        let e = validate_for_write("awsthing", R, A).unwrap_err();
        assert_eq!(e.code, "ValidationException");
        assert!(e.message.unwrap().contains("\"aws\" or \"ssm\""));
        let e = validate_for_write("/SSM/x/y", R, A).unwrap_err();
        assert_eq!(e.code, "ValidationException");
        let e = validate_for_write("/a b", R, A).unwrap_err();
        assert_eq!(e.code, "ValidationException");
        let sixteen: String = (1..=16).map(|i| format!("/l{i}")).collect();
        let e = validate_for_write(&sixteen, R, A).unwrap_err();
        assert_eq!(e.code, "HierarchyLevelLimitExceededException");
        let fifteen: String = (1..=15).map(|i| format!("/l{i}")).collect();
        assert!(validate_for_write(&fifteen, R, A).is_ok());
        let long = format!("/{}", "x".repeat(1000));
        assert_eq!(
            validate_for_write(&long, R, A).unwrap_err().code,
            "ValidationException"
        );
    }

    #[test]
    fn arns_drop_the_leading_slash() {
        assert_eq!(
            arn(R, A, "/a/b"),
            "arn:aws:ssm:us-east-1:111122223333:parameter/a/b"
        );
        assert_eq!(
            arn(R, A, "a"),
            "arn:aws:ssm:us-east-1:111122223333:parameter/a"
        );
    }

    #[test]
    fn references_parse_selectors_and_arns() {
        let r = parse_reference("/a/b:3", R, A).unwrap();
        assert_eq!(r.name, "/a/b");
        assert_eq!(r.selector, Some(Selector::Version(3)));
        assert_eq!(r.selector_text.as_deref(), Some(":3"));
        let r = parse_reference("/a/b:prod", R, A).unwrap();
        assert_eq!(r.selector, Some(Selector::Label("prod".into())));
        let r =
            parse_reference("arn:aws:ssm:us-east-1:444455556666:parameter/x/y:2", R, A).unwrap();
        assert_eq!(r.account, "444455556666");
        assert_eq!(r.name, "/x/y");
        assert_eq!(r.selector, Some(Selector::Version(2)));
        assert!(parse_reference("a:b:c", R, A).is_none());
        assert!(parse_reference("arn:aws:ssm:eu-west-1:111122223333:parameter/x", R, A).is_none());
    }

    #[test]
    fn labels() {
        assert!(valid_label("prod"));
        assert!(valid_label("Release_1.2-x"));
        assert!(!valid_label("1abc"));
        assert!(!valid_label("awsx"));
        assert!(!valid_label("SSMx"));
        assert!(!valid_label("a b"));
        assert!(!valid_label(&"a".repeat(101)));
    }

    #[test]
    fn paths() {
        assert_eq!(validate_path("/a/b/").unwrap(), "/a/b");
        assert_eq!(validate_path("/").unwrap(), "/");
        assert!(validate_path("a/b").is_err());
        assert!(validate_path("/a//b").is_err());
    }
}
