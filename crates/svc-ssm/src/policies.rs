//! Parameter policies (Advanced tier): Expiration, ExpirationNotification, NoChangeNotification,
//! checked on every write.

use citadel_api::AwsError;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::errors;
use crate::record::StoredPolicy;

/// Policies a parameter may carry.
pub const MAX_POLICIES: usize = 10;

pub const EXPIRATION: &str = "Expiration";
pub const EXPIRATION_NOTIFICATION: &str = "ExpirationNotification";
pub const NO_CHANGE_NOTIFICATION: &str = "NoChangeNotification";

/// Checked policies and the expiration they set, if any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    pub policies: Vec<StoredPolicy>,
    pub expires_ms: Option<i64>,
}

fn attribute<'a>(
    attrs: &'a serde_json::Map<String, Value>,
    name: &str,
    policy_type: &str,
) -> Result<&'a str, AwsError> {
    attrs.get(name).and_then(Value::as_str).ok_or_else(|| {
        errors::policy_attribute(format!(
            "A policy attribute or its value is invalid: the {policy_type} policy needs the attribute {name} as a string."
        ))
    })
}

fn only(
    attrs: &serde_json::Map<String, Value>,
    allowed: &[&str],
    policy_type: &str,
) -> Result<(), AwsError> {
    match attrs.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(errors::policy_attribute(format!(
            "A policy attribute or its value is invalid: {k} is not an attribute of the {policy_type} policy."
        ))),
        None => Ok(()),
    }
}

fn period(attrs: &serde_json::Map<String, Value>, name: &str, t: &str) -> Result<(), AwsError> {
    let n = attribute(attrs, name, t)?;
    let valid = !n.is_empty()
        && n.bytes().all(|b| b.is_ascii_digit())
        && n.parse::<u32>().is_ok_and(|v| v > 0);
    if !valid {
        return Err(errors::policy_attribute(format!(
            "A policy attribute or its value is invalid: {name} must be a positive whole number, not {n:?}."
        )));
    }
    if let Some(unit) = attrs.get("Unit") {
        match unit.as_str() {
            Some("Days" | "Hours") => {}
            _ => {
                return Err(errors::policy_attribute(
                    "A policy attribute or its value is invalid: Unit must be Days or Hours.",
                ));
            }
        }
    }
    Ok(())
}

/// Parses the `Policies` member of PutParameter: a JSON array of
/// `{"Type", "Version": "1.0", "Attributes"}` objects. An empty array removes every policy.
pub fn parse(text: &str, now: OffsetDateTime) -> Result<Parsed, AwsError> {
    let value: Value = serde_json::from_str(text).map_err(|_| {
        errors::validation(
            "Invalid policies input: the policies must be a JSON array of policy objects.",
        )
    })?;
    let Value::Array(items) = value else {
        return Err(errors::validation(
            "Invalid policies input: the policies must be a JSON array of policy objects.",
        ));
    };
    if items.len() > MAX_POLICIES {
        return Err(errors::policies_limit(MAX_POLICIES));
    }
    let mut parsed = Parsed::default();
    for item in &items {
        let Value::Object(obj) = item else {
            return Err(errors::validation(
                "Invalid policies input: every policy must be a JSON object.",
            ));
        };
        let policy_type = obj.get("Type").and_then(Value::as_str).unwrap_or_default();
        if ![EXPIRATION, EXPIRATION_NOTIFICATION, NO_CHANGE_NOTIFICATION].contains(&policy_type) {
            return Err(errors::policy_type(format!(
                "The policy type {policy_type:?} is not supported. Parameter Store supports the following policy types: Expiration, ExpirationNotification, NoChangeNotification."
            )));
        }
        if let Some(k) = obj
            .keys()
            .find(|k| !["Type", "Version", "Attributes"].contains(&k.as_str()))
        {
            return Err(errors::policy_attribute(format!(
                "A policy attribute or its value is invalid: {k} is not a member of a policy."
            )));
        }
        if obj.get("Version").and_then(Value::as_str) != Some("1.0") {
            return Err(errors::policy_attribute(
                "A policy attribute or its value is invalid: Version must be \"1.0\".",
            ));
        }
        let Some(Value::Object(attrs)) = obj.get("Attributes") else {
            return Err(errors::policy_attribute(format!(
                "A policy attribute or its value is invalid: the {policy_type} policy needs an Attributes object."
            )));
        };
        if parsed.policies.iter().any(|p| p.policy_type == policy_type) {
            return Err(errors::incompatible_policy(format!(
                "There is a conflict in the policies specified for this parameter: more than one {policy_type} policy."
            )));
        }
        match policy_type {
            EXPIRATION => {
                only(attrs, &["Timestamp"], policy_type)?;
                let ts = attribute(attrs, "Timestamp", policy_type)?;
                let at = OffsetDateTime::parse(ts, &Rfc3339).map_err(|_| {
                    errors::policy_attribute(format!(
                        "A policy attribute or its value is invalid: Timestamp {ts:?} is not an ISO 8601 date and time (for example 2030-12-02T21:34:33.000Z)."
                    ))
                })?;
                if at <= now {
                    return Err(errors::policy_attribute(format!(
                        "A policy attribute or its value is invalid: the expiration Timestamp {ts} is in the past."
                    )));
                }
                parsed.expires_ms = Some(crate::clock::to_millis(at));
            }
            EXPIRATION_NOTIFICATION => {
                only(attrs, &["Before", "Unit"], policy_type)?;
                period(attrs, "Before", policy_type)?;
            }
            _ => {
                only(attrs, &["After", "Unit"], policy_type)?;
                period(attrs, "After", policy_type)?;
            }
        }
        parsed.policies.push(StoredPolicy {
            text: item.to_string(),
            policy_type: policy_type.to_owned(),
        });
    }
    Ok(parsed)
}

/// A notification policy's period: its count (`Before` / `After`) and unit in milliseconds.
/// AWS's examples always name the Unit; without one we take Days. // Unconfirmed AWS default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub count: u32,
    pub hours: bool,
}

impl Period {
    pub fn millis(self) -> i64 {
        let unit: i64 = if self.hours { 3_600_000 } else { 86_400_000 };
        i64::from(self.count).saturating_mul(unit)
    }

    /// `2 hours`, `1 day`: how the events phrase it.
    pub fn phrase(self) -> String {
        let unit = if self.hours { "hour" } else { "day" };
        let plural = if self.count == 1 { "" } else { "s" };
        format!("{} {unit}{plural}", self.count)
    }
}

/// The period of a stored notification policy (`None` for an Expiration, or text that no
/// longer parses — it was checked on write).
pub fn period_of(policy: &StoredPolicy) -> Option<Period> {
    let attr = match policy.policy_type.as_str() {
        EXPIRATION_NOTIFICATION => "Before",
        NO_CHANGE_NOTIFICATION => "After",
        _ => return None,
    };
    let value: Value = serde_json::from_str(&policy.text).ok()?;
    let attrs = value.get("Attributes")?;
    let count = attrs.get(attr)?.as_str()?.parse::<u32>().ok()?;
    let hours = attrs.get("Unit").and_then(Value::as_str) == Some("Hours");
    Some(Period { count, hours })
}

/// When each notification policy of `policies` is due: an ExpirationNotification `Before`
/// the expiration (only with an Expiration), a NoChangeNotification `After` the last
/// modification. Kinds in `notified` already fired this period and are not scheduled again.
/// A time already past fires on the next scheduler run.
pub fn schedule(
    policies: &[StoredPolicy],
    expires_ms: Option<i64>,
    modified_ms: i64,
    notified: &[crate::record::DueKind],
) -> Vec<crate::record::Scheduled> {
    use crate::record::{DueKind, Scheduled};
    let mut out = Vec::new();
    for p in policies {
        let Some(period) = period_of(p) else {
            continue;
        };
        let (kind, at_ms) = match p.policy_type.as_str() {
            EXPIRATION_NOTIFICATION => match expires_ms {
                Some(at) => (
                    DueKind::ExpirationNotification,
                    at.saturating_sub(period.millis()),
                ),
                None => continue,
            },
            _ => (
                DueKind::NoChangeNotification,
                modified_ms.saturating_add(period.millis()),
            ),
        };
        if !notified.contains(&kind) {
            out.push(Scheduled { kind, at_ms });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
    }

    #[test]
    fn accepts_the_three_types() {
        let p = parse(
            r#"[{"Type":"Expiration","Version":"1.0","Attributes":{"Timestamp":"2030-12-02T21:34:33.000Z"}},
                {"Type":"ExpirationNotification","Version":"1.0","Attributes":{"Before":"15","Unit":"Days"}},
                {"Type":"NoChangeNotification","Version":"1.0","Attributes":{"After":"20","Unit":"Hours"}}]"#,
            now(),
        )
        .unwrap();
        assert_eq!(p.policies.len(), 3);
        assert!(p.expires_ms.unwrap() > 1_700_000_000_000);
        assert!(parse("[]", now()).unwrap().policies.is_empty());
    }

    #[test]
    fn rejects_bad_policies_with_aws_codes() {
        let code = |t: &str| parse(t, now()).unwrap_err().code;
        assert_eq!(code("not json"), "ValidationException");
        assert_eq!(
            code(
                r#"[{"Type":"Expiration","Version":"1.0","Attributes":{"Timestamp":"2001-01-01T00:00:00Z"}}]"#
            ),
            "InvalidPolicyAttributeException"
        );
        assert_eq!(
            code(r#"[{"Type":"Nope","Version":"1.0","Attributes":{}}]"#),
            "InvalidPolicyTypeException"
        );
        assert_eq!(
            code(r#"[{"Type":"NoChangeNotification","Version":"1.0","Attributes":{"After":"x"}}]"#),
            "InvalidPolicyAttributeException"
        );
        let two = r#"{"Type":"NoChangeNotification","Version":"1.0","Attributes":{"After":"1"}}"#;
        assert_eq!(
            code(&format!("[{two},{two}]")),
            "IncompatiblePolicyException"
        );
        let many = [two; 11].join(",");
        assert_eq!(code(&format!("[{many}]")), "PoliciesLimitExceededException");
    }
}
