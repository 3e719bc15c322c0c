//! The LookupEvents index, in the sealed store (so record bodies, redacted as they are, stay
//! behind the barrier like everything else). The writer indexes each group commit as chunks:
//! the records of one account, region and second that were committed together.
//!
//! ```text
//! audit/ev/<acct>/<region>/<inv>/<chunk>                     the records (JSON array, newest first)
//! audit/idx/<acct>/<region>/<attr>/<h(value)>/<inv>/<chunk>  one per attribute value in the chunk
//! audit/exp/<secs>/<acct>/<region>/<chunk>                   the keys to drop at expiry
//! ```
//!
//! Chunks, not one entry per record, because the index is written on every API call: under
//! load a group commit holds tens of records that mostly share their attribute values (one
//! user, one key, one operation), so a chunk costs one body and a few index entries instead of
//! ten entries per record. `EventId` stays one entry per record, since every id is distinct.
//!
//! `<inv>` is `99999999999 − eventTime` (Unix seconds, 11 digits), so ascending key order is
//! newest first, as LookupEvents answers; `<chunk>` is the inverted commit time in nanoseconds
//! and a random suffix, so later chunks of the same second come first and chunks of several
//! nodes never collide. `<h(value)>` is 32 hex digits of the SHA-256 of the value:
//! fixed-length keys whatever the value (ARNs, user names); matches are re-checked against the
//! records. Entries older than the retention are swept by [`sweep`].
//!
//! Stores written before chunks hold one record per body (`<inv>/<eventId>`): [`lookup`] reads
//! both forms, and [`sweep`] drops both the same way.

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

/// The store operations that index `records` (each with its JSON, as written to the log
/// file), committed together under `account`/`region` (the path-safe forms of their recipient
/// account and region) at `committed_nanos` (Unix nanoseconds), oldest first.
pub fn index_ops(
    records: &[(&Record, &[u8])],
    account: &str,
    region: &str,
    committed_nanos: i128,
) -> Vec<Op> {
    let mut by_second: std::collections::BTreeMap<i64, Vec<(&Record, &[u8])>> =
        std::collections::BTreeMap::new();
    for (record, json) in records {
        by_second
            .entry(event_secs(record))
            .or_default()
            .push((record, json));
    }
    let inverted = u64::MAX - u64::try_from(committed_nanos).unwrap_or(0);
    let mut ops = Vec::new();
    for (secs, chunk) in by_second {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let position = format!("{}/{inverted:016x}{}", inv(secs), &suffix[..8]);
        let body_key = format!("{}{position}", event_prefix(account, region));
        // A JSON array of the records, newest first (inside a chunk as between chunks).
        let mut body =
            Vec::with_capacity(chunk.iter().map(|(_, j)| j.len() + 1).sum::<usize>() + 2);
        body.push(b'[');
        for (i, (_, json)) in chunk.iter().rev().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(json);
        }
        body.push(b']');
        let mut keys = vec![body_key.clone()];
        ops.push(Op::put(body_key, body, Expect::Any));
        // The records of a chunk mostly share their values: hash each distinct one once.
        let mut values = std::collections::BTreeSet::new();
        for (record, _) in &chunk {
            for attribute in ATTRIBUTES {
                for value in attribute_values(record, attribute) {
                    values.insert((attribute, value));
                }
            }
        }
        for (attribute, value) in values {
            let key = format!(
                "{}{position}",
                attribute_prefix(account, region, attribute, &value)
            );
            ops.push(Op::put(key.clone(), Vec::new(), Expect::Any));
            keys.push(key);
        }
        // A list of strings always serializes.
        let keys = serde_json::to_vec(&keys).unwrap_or_default();
        ops.push(Op::put(
            format!("{EXP_PREFIX}{secs:011}/{account}/{region}/{position}"),
            keys,
            Expect::Any,
        ));
    }
    ops
}

/// The records of one body: a chunk, or a single record as stores before chunks wrote them.
fn body_records(value: &[u8]) -> Vec<Record> {
    serde_json::from_slice::<Vec<Record>>(value)
        .or_else(|_| serde_json::from_slice::<Record>(value).map(|r| vec![r]))
        .unwrap_or_default()
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
    /// Where the next page starts (a body's position and the index of the first record of
    /// the next page in it), if there is one.
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
    let oldest_inv = query.start.map(inv);
    let want = query.max_results.max(1);
    let mut page = Page::default();

    // Resume inside the body where the previous page stopped, then continue after it.
    let mut start_after = match (&query.after, query.end) {
        (Some(after), _) => {
            let (position, skip) = after
                .rsplit_once('/')
                .and_then(|(p, n)| Some((p, n.parse::<usize>().ok()?)))
                .unwrap_or((after.as_str(), 0));
            if let Some(value) = store.get(&format!("{body_prefix}{position}")).await? {
                let records = body_records(&value.value);
                if take(&mut page, query, position, records, skip, want) {
                    return Ok(page);
                }
            }
            Some(format!("{prefix}{position}"))
        }
        // Keys at or before `end` have an <inv> at or above inv(end).
        (None, Some(end)) => Some(format!("{prefix}{}", inv(end))),
        (None, None) => None,
    };
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
                return Ok(page);
            }
            let records = if query.attribute.is_some() {
                match store.get(&format!("{body_prefix}{position}")).await? {
                    Some(found) => body_records(&found.value),
                    None => continue,
                }
            } else {
                body_records(&entry.value)
            };
            if take(&mut page, query, position, records, 0, want) {
                return Ok(page);
            }
        }
        if exhausted {
            return Ok(page);
        }
    }
}

/// Adds the records of the body at `position` that match `query`, from index `skip` on, to
/// `page`; returns whether the page is full (then `page.next` says where to resume).
fn take(
    page: &mut Page,
    query: &Query,
    position: &str,
    records: Vec<Record>,
    skip: usize,
    want: usize,
) -> bool {
    for (i, record) in records.into_iter().enumerate().skip(skip) {
        if let Some((attribute, value)) = &query.attribute
            && !attribute_values(&record, attribute).contains(value)
        {
            continue;
        }
        if page.records.len() == want {
            page.next = Some(format!("{position}/{i}"));
            return true;
        }
        page.records.push(record);
    }
    false
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
