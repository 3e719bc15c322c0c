//! The event envelope, serialized exactly as EventBridge delivers it to targets:
//!
//! ```json
//! {"version":"0","id":"6a7e8feb-b491-4cf7-a9f1-bf3703467718","detail-type":"KMS CMK Rotation",
//!  "source":"aws.kms","account":"111122223333","time":"2017-12-22T18:43:48Z",
//!  "region":"us-east-1","resources":["arn:aws:kms:…"],"detail":{"key-id":"…"}}
//! ```

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The largest PutEvents entry (and request) EventBridge accepts: 256 KiB, counted as
/// [`entry_size`] counts it.
pub const MAX_ENTRY_BYTES: usize = 256 * 1024;

/// One event on the bus. Field order is the wire order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Always `"0"`.
    pub version: String,
    /// A UUID v4, unique per event: the de-duplication key for at-least-once delivery.
    pub id: String,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub source: String,
    pub account: String,
    /// RFC 3339, UTC, whole seconds: `2017-12-22T18:43:48Z`.
    pub time: String,
    pub region: String,
    pub resources: Vec<String>,
    /// A JSON object.
    pub detail: serde_json::Value,
}

/// Why an event cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("the event time cannot be formatted: {0}")]
    Time(String),
}

/// Formats `t` as EventBridge does: UTC, whole seconds, `Z`.
pub fn format_time(t: OffsetDateTime) -> Result<String, EventError> {
    let t = t
        .to_offset(time::UtcOffset::UTC)
        .replace_nanosecond(0)
        .map_err(|e| EventError::Time(e.to_string()))?;
    t.format(&Rfc3339)
        .map_err(|e| EventError::Time(e.to_string()))
}

impl Event {
    /// A new event with a fresh id, stamped `time` (now, when `None`).
    pub fn new(
        source: impl Into<String>,
        detail_type: impl Into<String>,
        detail: serde_json::Value,
        account: impl Into<String>,
        region: impl Into<String>,
        resources: Vec<String>,
        time: Option<OffsetDateTime>,
    ) -> Result<Event, EventError> {
        Ok(Event {
            version: "0".to_owned(),
            id: uuid::Uuid::new_v4().to_string(),
            detail_type: detail_type.into(),
            source: source.into(),
            account: account.into(),
            time: format_time(time.unwrap_or_else(OffsetDateTime::now_utc))?,
            region: region.into(),
            resources,
            detail,
        })
    }

    /// The event as a JSON value, for pattern matching and input paths.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::json!({
            "version": self.version,
            "id": self.id,
            "detail-type": self.detail_type,
            "source": self.source,
            "account": self.account,
            "time": self.time,
            "region": self.region,
            "resources": self.resources,
            "detail": self.detail,
        })
    }

    /// The event as EventBridge delivers it, members in wire order.
    pub fn to_json(&self) -> String {
        // Serializing a struct of strings and a `Value` cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The size of one PutEvents entry as EventBridge counts it: 14 bytes for `Time` when present,
/// plus the UTF-8 lengths of `Source`, `DetailType`, `Detail` and every `Resources` entry.
pub fn entry_size(
    time_present: bool,
    source: Option<&str>,
    detail_type: Option<&str>,
    detail: Option<&str>,
    resources: &[String],
) -> usize {
    let mut size = if time_present { 14 } else { 0 };
    size += source.map_or(0, str::len);
    size += detail_type.map_or(0, str::len);
    size += detail.map_or(0, str::len);
    size += resources.iter().map(String::len).sum::<usize>();
    size
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn serializes_in_wire_order_with_aws_names() {
        let t = OffsetDateTime::from_unix_timestamp(1_513_968_228).unwrap();
        let e = Event::new(
            "aws.kms",
            "KMS CMK Rotation",
            serde_json::json!({"key-id": "k"}),
            "111122223333",
            "us-east-1",
            vec!["arn:aws:kms:us-east-1:111122223333:key/k".into()],
            Some(t),
        )
        .unwrap();
        let json = e.to_json();
        let expected_prefix = format!(
            r#"{{"version":"0","id":"{}","detail-type":"KMS CMK Rotation","source":"aws.kms","account":"111122223333","time":"2017-12-22T18:43:48Z","region":"us-east-1","resources":["#,
            e.id
        );
        assert!(json.starts_with(&expected_prefix), "{json}");
        assert!(json.ends_with(r#""detail":{"key-id":"k"}}"#));
        assert_eq!(uuid::Uuid::parse_str(&e.id).unwrap().get_version_num(), 4);
        let back: Event = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn entry_size_counts_like_aws() {
        assert_eq!(
            entry_size(true, Some("a"), Some("bb"), Some("{}"), &["r".into()]),
            14 + 1 + 2 + 2 + 1
        );
    }
}
