//! The LookupEvents index, in the sealed store (so record bodies, redacted as they are, stay
//! behind the barrier like everything else):
//!
//! ```text
//! audit/ev/<acct>/<region>/<inv>/<eventId>                     the record (CloudTrail JSON)
//! audit/idx/<acct>/<region>/<attr>/<h(value)>/<inv>/<eventId>  one per attribute value
//! audit/exp/<secs>/<acct>/<region>/<eventId>                   the keys to drop at expiry
//! ```
//!
//! `<inv>` is `99999999999 − eventTime` (Unix seconds, 11 digits), so ascending key order is
//! newest first, as LookupEvents answers. `<h(value)>` is 32 hex digits of the SHA-256 of the
//! value: fixed-length keys whatever the value (ARNs, user names); matches are re-checked
//! against the record. Entries older than the retention are swept by [`sweep`].

use citadel_store::{Expect, Op, SealedStore};

use crate::error::Result;
use crate::record::{Record, parse_time, username};

/// The eight LookupEvents attribute keys.
pub const ATTRIBUTES: [&str; 8] = [
    "EventId",
    "EventName",
    "ReadOnly",
    "Username",
    "ResourceType",
    "ResourceName",
    "EventSource",
    "AccessKeyId",
];

const INV_BASE: i64 = 99_999_999_999;
const EXP_PREFIX: &str = "audit/exp/";

fn inv(secs: i64) -> String {
    format!("{:011}", INV_BASE - secs.clamp(0, INV_BASE))
}

fn hash(value: &str) -> String {
    let d = citadel_crypto::sha256(value.as_bytes());
    hex::encode(d.get(..16).unwrap_or(&d))
}

fn event_prefix(account: &str, region: &str) -> String {
    format!("audit/ev/{account}/{region}/")
}

fn attribute_prefix(account: &str, region: &str, attribute: &str, value: &str) -> String {
    format!("audit/idx/{account}/{region}/{attribute}/{}/", hash(value))
}

/// The values `record` has for `attribute`.
pub fn attribute_values(record: &Record, attribute: &str) -> Vec<String> {
    match attribute {
        "EventId" => vec![record.event_id.clone()],
        "EventName" => vec![record.event_name.clone()],
        "ReadOnly" => vec![record.read_only.to_string()],
        "Username" => username(&record.user_identity).into_iter().collect(),
        "ResourceType" => record.resources.iter().map(|r| r.kind.clone()).collect(),
        "ResourceName" => record.resources.iter().map(|r| r.arn.clone()).collect(),
        "EventSource" => vec![record.event_source.clone()],
        "AccessKeyId" => record
            .user_identity
            .access_key_id
            .clone()
            .into_iter()
            .collect(),
        _ => Vec::new(),
    }
}

fn event_secs(record: &Record) -> i64 {
    parse_time(&record.event_time).map_or(0, time::OffsetDateTime::unix_timestamp)
}

/// The store operations that index `record` (stored under `account`/`region`, the path-safe
/// forms of its recipient account and region).
pub fn index_ops(record: &Record, account: &str, region: &str) -> Result<Vec<Op>> {
    let secs = event_secs(record);
    let position = format!("{}/{}", inv(secs), record.event_id);
    let body_key = format!("{}{position}", event_prefix(account, region));
    let mut keys = vec![body_key.clone()];
    let mut ops = vec![Op::put(body_key, serde_json::to_vec(record)?, Expect::Any)];
    for attribute in ATTRIBUTES {
        let mut values = attribute_values(record, attribute);
        values.sort();
        values.dedup();
        for value in values {
            let key = format!(
                "{}{position}",
                attribute_prefix(account, region, attribute, &value)
            );
            ops.push(Op::put(key.clone(), Vec::new(), Expect::Any));
            keys.push(key);
        }
    }
    ops.push(Op::put(
        format!(
            "{EXP_PREFIX}{secs:011}/{account}/{region}/{}",
            record.event_id
        ),
        serde_json::to_vec(&keys)?,
        Expect::Any,
    ));
    Ok(ops)
}

/// One LookupEvents query, already validated.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub account: String,
    pub region: String,
    /// `(AttributeKey, AttributeValue)`.
    pub attribute: Option<(String, String)>,
    /// Inclusive bounds, Unix seconds.
    pub start: Option<i64>,
    pub end: Option<i64>,
    pub max_results: usize,
    /// Where the previous page stopped (from its next token).
    pub after: Option<String>,
}

/// One page of results.
#[derive(Debug, Default)]
pub struct Page {
    pub records: Vec<Record>,
    /// Where the next page starts, if there is one.
    pub next: Option<String>,
}

/// Runs `query` against the index.
pub async fn lookup(store: &SealedStore, query: &Query) -> Result<Page> {
    let prefix = match &query.attribute {
        Some((attribute, value)) => {
            attribute_prefix(&query.account, &query.region, attribute, value)
        }
        None => event_prefix(&query.account, &query.region),
    };
    let body_prefix = event_prefix(&query.account, &query.region);
    let mut start_after = match (&query.after, query.end) {
        (Some(after), _) => Some(format!("{prefix}{after}")),
        // Keys at or before `end` have an <inv> at or above inv(end).
        (None, Some(end)) => Some(format!("{prefix}{}", inv(end))),
        (None, None) => None,
    };
    let oldest_inv = query.start.map(inv);
    let mut page = Page::default();
    let want = query.max_results.max(1);
    loop {
        let batch = store
            .list(&prefix, start_after.as_deref(), want + 1)
            .await?;
        let exhausted = batch.len() < want + 1;
        for (key, entry) in &batch {
            start_after = Some(key.clone());
            let Some(position) = key.strip_prefix(&prefix) else {
                continue;
            };
            if let Some(oldest) = &oldest_inv
                && position.get(..11).is_some_and(|i| i > oldest.as_str())
            {
                page.next = None;
                return Ok(page);
            }
            let record: Option<Record> = if query.attribute.is_some() {
                store.get_json(&format!("{body_prefix}{position}")).await?
            } else {
                serde_json::from_slice(&entry.value).ok()
            };
            let Some(record) = record else { continue };
            if let Some((attribute, value)) = &query.attribute
                && !attribute_values(&record, attribute).contains(value)
            {
                continue;
            }
            if page.records.len() == want {
                // One more exists: the page ends at the previous entry.
                return Ok(page);
            }
            page.records.push(record);
            page.next = Some(position.to_owned());
        }
        if exhausted {
            page.next = None;
            return Ok(page);
        }
    }
}

/// Deletes index entries of events older than `cutoff` (Unix seconds), at most `limit` events
/// per call; returns how many were deleted.
pub async fn sweep(store: &SealedStore, cutoff: i64, limit: usize) -> Result<usize> {
    let batch = store.list(EXP_PREFIX, None, limit).await?;
    let mut deleted = 0;
    for (key, entry) in batch {
        let secs = key
            .strip_prefix(EXP_PREFIX)
            .and_then(|rest| rest.get(..11))
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(i64::MAX);
        if secs >= cutoff {
            break;
        }
        let keys: Vec<String> = serde_json::from_slice(&entry.value).unwrap_or_default();
        let mut ops: Vec<Op> = keys
            .into_iter()
            .map(|k| Op::delete(k, Expect::Any))
            .collect();
        ops.push(Op::delete(key, Expect::Any));
        store.batch(ops).await?;
        deleted += 1;
    }
    Ok(deleted)
}
