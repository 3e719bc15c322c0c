//! `/aws/reference/secretsmanager/<secret-id>[:<VersionId or staging label>]`: Secrets Manager
//! secrets read through GetParameter and GetParameters, as AWS's Parameter Store passes them
//! through ("Referencing AWS Secrets Manager secrets from Parameter Store parameters").
//!
//! Parameter Store keeps nothing about them. The caller needs `ssm:GetParameter(s)` on the
//! reference's parameter ARN *and* everything a direct `secretsmanager:GetSecretValue` needs
//! (identity and resource policies, `kms:Decrypt` through Secrets Manager): the read goes through
//! [`SecretReader`], which is Secrets Manager's own GetSecretValue path. Only the two reads
//! accept references; `WithDecryption` must be true.
//!
//! The answer follows what AWS returns: `Name` as requested, `Type` SecureString, `Value` the
//! SecretString, `Version` 0, `LastModifiedDate` the version's creation date, `ARN` the
//! secret's ARN, `SourceResult` the GetSecretValue result serialized as AWS's service does
//! (lower-camel members, `createdDate` as `Oct 14, 2021, 10:18:47 AM`), and no `DataType`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use citadel_api::{AwsError, RequestContext, SecretPayload, SecretValue, SecretVersion};
use citadel_model::{SensitiveString, Timestamp, ssm};
use serde_json::json;

use crate::authz::Conditions;
use crate::{Ssm, errors, names};

/// Where references live.
pub(crate) const PREFIX: &str = "/aws/reference/secretsmanager/";

/// Whether `name` is (or lies under) `/aws/reference/`, which only GetParameter and
/// GetParameters answer.
pub(crate) fn is_reserved_path(name: &str) -> bool {
    name == "/aws/reference" || name.starts_with("/aws/reference/")
}

/// A reference, split into the secret and the version it names.
#[derive(Debug, PartialEq, Eq)]
struct SecretRef<'a> {
    /// The reference without its selector: the `Name` of the answer.
    name: &'a str,
    /// A secret name or ARN.
    secret_id: &'a str,
    /// What follows the `:` after the secret id.
    selector: Option<&'a str>,
}

/// Splits `text` (which starts with [`PREFIX`]). Secret names cannot contain `:`, so the
/// selector follows the last one; in a secret ARN (seven `:`-separated fields) it is an eighth
/// field. `None` when no secret or an empty selector is named.
fn parse(text: &str) -> Option<SecretRef<'_>> {
    let rest = text.strip_prefix(PREFIX)?;
    let split_at = if rest.starts_with("arn:") {
        rest.match_indices(':').nth(6).map(|(i, _)| i)
    } else {
        rest.rfind(':')
    };
    let (secret_id, selector) = match split_at {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    if secret_id.is_empty() || selector.is_some_and(str::is_empty) {
        return None;
    }
    Some(SecretRef {
        name: &text[..PREFIX.len() + secret_id.len()],
        secret_id,
        selector,
    })
}

/// `WithDecryption` is required for references.
pub(crate) fn require_decryption(decrypt: bool) -> Result<(), AwsError> {
    if decrypt {
        Ok(())
    } else {
        // Wording from moto's implementation. Unconfirmed AWS wording.
        Err(errors::validation(
            "WithDecryption flag must be True for retrieving a Secret Manager secret.",
        ))
    }
}

/// GetParametersByPath, DescribeParameters' paths and the like do not reach Secrets Manager.
pub(crate) fn path_not_supported() -> AwsError {
    // Unconfirmed AWS wording.
    errors::validation(
        "Parameters under /aws/reference/ can only be read with GetParameter and GetParameters.",
    )
}

/// Gson's default rendering of a `java.util.Date` (US locale, UTC), as `createdDate` appears
/// in AWS's SourceResult.
fn gson_date(ms: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let hour = t.hour() % 12;
    format!(
        "{} {}, {}, {}:{:02}:{:02} {}",
        MONTHS[usize::from(u8::from(t.month())) - 1],
        t.day(),
        t.year(),
        if hour == 0 { 12 } else { hour },
        t.minute(),
        t.second(),
        if t.hour() < 12 { "AM" } else { "PM" },
    )
}

/// The answer for one secret version.
fn parameter_of(r: &SecretRef<'_>, v: &SecretValue) -> ssm::Parameter {
    // A binary secret has no SecretString: its bytes are returned in base64, the way
    // GetSecretValue's JSON carries SecretBinary. Unconfirmed AWS behaviour.
    let (value, member) = match &v.payload {
        SecretPayload::Text(text) => (String::clone(text), "secretString"),
        SecretPayload::Binary(bytes) => (B64.encode(bytes.as_slice()), "secretBinary"),
    };
    let mut source = serde_json::Map::new();
    source.insert("ARN".into(), json!(v.arn));
    source.insert("name".into(), json!(v.name));
    source.insert("versionId".into(), json!(v.version_id));
    source.insert(member.into(), json!(value));
    source.insert("versionStages".into(), json!(v.version_stages));
    source.insert("createdDate".into(), json!(gson_date(v.created_ms)));
    ssm::Parameter {
        name: Some(r.name.to_owned()),
        type_: Some(crate::params::SECURE_STRING.to_owned()),
        value: Some(SensitiveString::new(value)),
        version: Some(0),
        // Echoed as for stored parameters. Unconfirmed AWS behaviour.
        selector: r.selector.map(|s| format!(":{s}")),
        source_result: Some(serde_json::Value::Object(source).to_string()),
        last_modified_date: Some(Timestamp::from_epoch_millis(v.created_ms)),
        arn: Some(v.arn.clone()),
        data_type: None,
    }
}

impl Ssm {
    /// Reads a reference after authorizing `action` (`ssm:GetParameter` or
    /// `ssm:GetParameters`) on its parameter ARN in `owner`'s account. `Ok(Err(e))` when the
    /// secret (or the version) does not exist: GetParameter answers `e`, GetParameters lists
    /// the name as invalid.
    pub(crate) async fn read_reference(
        &self,
        ctx: &RequestContext,
        action: &str,
        owner: &str,
        text: &str,
    ) -> Result<Result<ssm::Parameter, AwsError>, AwsError> {
        let Some(r) = parse(text) else {
            return Ok(Err(errors::validation(format!(
                "Invalid parameter name or selector: {text}"
            ))));
        };
        let arn = names::arn(&ctx.region, owner, r.name);
        self.authorize(ctx, action, &arn, owner, &Conditions::new())
            .await?;
        let Some(secrets) = self.secrets.get() else {
            return Err(errors::unsupported(
                "Secrets Manager is not connected to Parameter Store in this server.",
            ));
        };
        let version = r.selector.map_or(SecretVersion::Current, |s| {
            SecretVersion::IdOrStage(s.to_owned())
        });
        match secrets
            .get_secret_value(&ctx.via("ssm"), r.secret_id, &version)
            .await
        {
            Ok(v) => Ok(Ok(parameter_of(&r, &v))),
            // A missing secret or version, or one scheduled for deletion: not found, as for a
            // missing parameter. Wording from moto's implementation. Unconfirmed AWS wording.
            Err(e)
                if e.code == "ResourceNotFoundException" || e.code == "InvalidRequestException" =>
            {
                Ok(Err(AwsError::new(
                    400,
                    "ParameterNotFound",
                    format!(
                        "An error occurred (ParameterNotFound) when referencing Secrets Manager: Secret {text} not found."
                    ),
                )))
            }
            // Unconfirmed AWS wording.
            Err(e) if e.code == "AccessDeniedException" => Err(errors::access_denied(format!(
                "An error occurred (AccessDeniedException) when referencing Secrets Manager: {}",
                e.message.unwrap_or_default()
            ))),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn references_split_into_secret_and_selector() {
        let p = |t| parse(t);
        assert_eq!(
            p("/aws/reference/secretsmanager/db/main"),
            Some(SecretRef {
                name: "/aws/reference/secretsmanager/db/main",
                secret_id: "db/main",
                selector: None
            })
        );
        assert_eq!(
            p("/aws/reference/secretsmanager/a+b=c@d:AWSPREVIOUS"),
            Some(SecretRef {
                name: "/aws/reference/secretsmanager/a+b=c@d",
                secret_id: "a+b=c@d",
                selector: Some("AWSPREVIOUS")
            })
        );
        let arn = "arn:aws:secretsmanager:us-east-1:111122223333:secret:db-AbCdEf";
        let plain = format!("/aws/reference/secretsmanager/{arn}");
        let r = p(&plain).unwrap();
        assert_eq!((r.secret_id, r.selector), (arn, None));
        let selected = format!("/aws/reference/secretsmanager/{arn}:v1");
        let r = p(&selected).unwrap();
        assert_eq!((r.secret_id, r.selector), (arn, Some("v1")));
        assert_eq!(p("/aws/reference/secretsmanager/"), None);
        assert_eq!(p("/aws/reference/secretsmanager/db:"), None);
        assert_eq!(p("/aws/reference/secretsmanager/:x"), None);
        assert_eq!(p("/aws/reference/other/db"), None);
    }

    #[test]
    fn created_dates_render_like_aws() {
        // 2021-10-14T10:18:47.297Z, the example AWS answered.
        assert_eq!(gson_date(1_634_206_727_297), "Oct 14, 2021, 10:18:47 AM");
        assert_eq!(gson_date(1_634_170_000_000), "Oct 14, 2021, 12:06:40 AM");
        assert_eq!(gson_date(1_634_216_400_000), "Oct 14, 2021, 1:00:00 PM");
    }

    #[test]
    fn reserved_paths() {
        assert!(is_reserved_path("/aws/reference"));
        assert!(is_reserved_path("/aws/reference/secretsmanager"));
        assert!(!is_reserved_path("/aws/referenced"));
        assert!(!is_reserved_path("/aws/service/x"));
    }
}
