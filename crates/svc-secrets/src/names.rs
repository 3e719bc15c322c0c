//! Secret names, ARNs and the three forms a `SecretId` takes: a name, a full ARN (with the
//! six-character suffix) or a partial ARN (without it).

use citadel_api::AwsError;

use crate::errors;

/// Characters a secret name may contain besides ASCII letters and digits.
const NAME_PUNCTUATION: &[u8] = b"/_+=.@-";
/// Alphabet of the random ARN suffix.
const SUFFIX_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || NAME_PUNCTUATION.contains(&b))
}

/// Six random characters from `A-Za-z0-9`, drawn uniformly (rejection sampling on random
/// bytes: 62 × 4 = 248, so bytes ≥ 248 are redrawn).
pub fn random_suffix() -> Result<String, AwsError> {
    let mut out = String::with_capacity(6);
    while out.len() < 6 {
        let bytes = citadel_crypto::random_bytes(16).map_err(|e| errors::crypto(&e))?;
        for b in bytes.iter() {
            if out.len() == 6 {
                break;
            }
            if *b < 248 {
                let i = usize::from(*b) % SUFFIX_ALPHABET.len();
                if let Some(c) = SUFFIX_ALPHABET.get(i) {
                    out.push(char::from(*c));
                }
            }
        }
    }
    Ok(out)
}

/// Where a `SecretId` points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    pub account: String,
    pub region: String,
    /// Candidate (name, required suffix) lookups, most specific first: a full ARN's name with
    /// its suffix, then the whole resource part as a name (a partial ARN).
    pub candidates: Vec<(String, Option<String>)>,
    /// The ARN to authorize against when no secret is found.
    pub arn_for_authz: String,
}

/// Parses a `SecretId`. Names are checked against AWS's name rule; ARNs must be Secrets
/// Manager secret ARNs (anything else names no secret).
pub fn parse_secret_id(
    secret_id: &str,
    account: &str,
    region: &str,
) -> Result<SecretRef, AwsError> {
    if let Some(rest) = secret_id.strip_prefix("arn:") {
        let mut parts = rest.splitn(6, ':');
        let (Some(_partition), Some(service), Some(arn_region), Some(arn_account), Some(kind)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(errors::not_found());
        };
        let Some(resource) = parts.next() else {
            return Err(errors::not_found());
        };
        if service != "secretsmanager" || kind != "secret" || !is_valid_name(resource) {
            return Err(errors::not_found());
        }
        let mut candidates = Vec::new();
        if let Some((name, suffix)) = resource.rsplit_once('-')
            && suffix.len() == 6
            && suffix.bytes().all(|b| b.is_ascii_alphanumeric())
            && !name.is_empty()
        {
            candidates.push((name.to_owned(), Some(suffix.to_owned())));
        }
        candidates.push((resource.to_owned(), None));
        return Ok(SecretRef {
            account: arn_account.to_owned(),
            region: arn_region.to_owned(),
            candidates,
            arn_for_authz: secret_id.to_owned(),
        });
    }
    if !is_valid_name(secret_id) {
        return Err(errors::invalid_name());
    }
    Ok(SecretRef {
        account: account.to_owned(),
        region: region.to_owned(),
        candidates: vec![(secret_id.to_owned(), None)],
        arn_for_authz: format!("arn:aws:secretsmanager:{region}:{account}:secret:{secret_id}"),
    })
}

/// The function name a `RotationLambdaARN` designates: the part after `function:`, without a
/// version or alias qualifier. `None` if it is not a Lambda function ARN.
pub fn lambda_function_name(arn: &str) -> Option<&str> {
    let rest = arn.strip_prefix("arn:")?;
    let mut parts = rest.splitn(7, ':');
    let _partition = parts.next()?;
    if parts.next()? != "lambda" {
        return None;
    }
    let _region = parts.next()?;
    let _account = parts.next()?;
    if parts.next()? != "function" {
        return None;
    }
    let name = parts.next()?;
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_aws_rule() {
        assert!(is_valid_name("Valid/_+=.@-Name"));
        assert!(!is_valid_name("bad name"));
        assert!(!is_valid_name("bad#name"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("naïve"));
    }

    #[test]
    fn suffixes_are_six_alphanumerics() {
        let a = random_suffix().unwrap();
        assert_eq!(a.len(), 6);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(a, random_suffix().unwrap());
    }

    #[test]
    fn secret_ids_of_every_form() {
        let r = parse_secret_id("db/pw", "111122223333", "us-east-1").unwrap();
        assert_eq!(r.candidates, vec![("db/pw".to_owned(), None)]);
        let r = parse_secret_id(
            "arn:aws:secretsmanager:eu-west-1:444455556666:secret:db/pw-AbC123",
            "111122223333",
            "us-east-1",
        )
        .unwrap();
        assert_eq!(r.account, "444455556666");
        assert_eq!(r.region, "eu-west-1");
        assert_eq!(
            r.candidates,
            vec![
                ("db/pw".to_owned(), Some("AbC123".to_owned())),
                ("db/pw-AbC123".to_owned(), None)
            ]
        );
        let r = parse_secret_id(
            "arn:aws:secretsmanager:us-east-1:111122223333:secret:db/pw",
            "x",
            "y",
        )
        .unwrap();
        assert_eq!(r.candidates, vec![("db/pw".to_owned(), None)]);
        assert_eq!(
            parse_secret_id("bad name", "a", "r").unwrap_err().code,
            "ValidationException"
        );
        assert_eq!(
            parse_secret_id("arn:aws:kms:us-east-1:1:key/x", "a", "r")
                .unwrap_err()
                .code,
            "ResourceNotFoundException"
        );
    }

    #[test]
    fn lambda_names() {
        assert_eq!(
            lambda_function_name("arn:aws:lambda:us-east-1:111122223333:function:pg-rotator"),
            Some("pg-rotator")
        );
        assert_eq!(
            lambda_function_name("arn:aws:lambda:us-east-1:1:function:r:live"),
            Some("r")
        );
        assert_eq!(lambda_function_name("pg-rotator"), None);
        assert_eq!(lambda_function_name("arn:aws:s3:::bucket"), None);
    }
}
