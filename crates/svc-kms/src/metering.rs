//! Metering: what each account used, priced the way AWS prices KMS.
//!
//! - **Requests** are counted in memory per (account, region, key, operation) on the request path
//!   (no disk), and added to the month's ledger record (`kms/usage/requests/<yyyy-mm>/<account>/
//!   <region>`) by the scheduler ([`Kms::flush_usage`]). A crash loses at most the counts of one
//!   scheduler interval; counts are never added twice (the flush subtracts exactly what it wrote).
//! - **Key-months** come from the keys themselves: every customer-managed key is billed from its
//!   creation until it is destroyed, and each of its first three key materials (the initial one and
//!   the first two rotations, as AWS prices rotated material) adds $1 per month from its own
//!   creation, prorated by the hour. A key destroyed by the scheduler leaves a small ledger record
//!   (`kms/usage/destroyed/…`) so that its hours in that month are still reported.
//!   AWS-managed keys carry no monthly charge.
//! - **Prices** (AWS's list prices): $1 per key-month, $0.03 per 10,000 requests. `CreateKey` and
//!   `ScheduleKeyDeletion` are free, as on AWS. AWS's free tier is not deducted.
//!
//! Keys pending deletion are billed until they are destroyed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use citadel_store::{Expect, Op, StoreError};
use serde::{Deserialize, Serialize};
use time::{Date, Month, OffsetDateTime, Time};

use crate::Kms;
use crate::errors::KmsError;
use crate::record::KeyRecord;

/// Dollars per key-month (and per billable key material).
const KEY_MONTH_USD: f64 = 1.0;
/// Dollars per 10,000 requests.
const REQUESTS_USD_PER_10K: f64 = 0.03;
/// Key materials billed per key: the initial one and the first two rotations.
const BILLED_MATERIALS: usize = 3;

const REQUESTS_PREFIX: &str = "kms/usage/requests/";
const DESTROYED_PREFIX: &str = "kms/usage/destroyed/";
const MS_PER_HOUR: i64 = 3_600_000;

/// Operations AWS does not charge for.
const FREE_OPERATIONS: &[&str] = &["CreateKey", "ScheduleKeyDeletion"];

/// Which account, region, key (`-` for none) and operation a count is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Counter {
    account: String,
    region: String,
    key_id: String,
    operation: &'static str,
}

/// Request counts not yet written to the ledger.
#[derive(Debug, Default)]
pub struct Meter {
    pending: Mutex<HashMap<Counter, u64>>,
}

impl Meter {
    /// Counts one request (the hot path: a short critical section, no I/O).
    pub fn count(
        &self,
        account: &str,
        region: &str,
        key_id: Option<&str>,
        operation: &'static str,
    ) {
        let counter = Counter {
            account: account.to_owned(),
            region: region.to_owned(),
            key_id: key_id.unwrap_or("-").to_owned(),
            operation,
        };
        if let Ok(mut pending) = self.pending.lock() {
            *pending.entry(counter).or_default() += 1;
        }
    }

    fn snapshot(&self) -> HashMap<Counter, u64> {
        self.pending.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// Removes what was written (more may have been counted meanwhile).
    fn subtract(&self, written: &HashMap<Counter, u64>) {
        if let Ok(mut pending) = self.pending.lock() {
            for (counter, n) in written {
                if let Some(v) = pending.get_mut(counter) {
                    *v = v.saturating_sub(*n);
                    if *v == 0 {
                        pending.remove(counter);
                    }
                }
            }
        }
    }
}

/// One month of one region's requests: key id (or `-`) → operation → count.
type RequestLedger = BTreeMap<String, BTreeMap<String, u64>>;

/// What is kept of a destroyed key for the month's report.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct DestroyedKey {
    created_ms: i64,
    destroyed_ms: i64,
    key_manager: String,
    /// Creation times of its materials, oldest first.
    materials_ms: Vec<i64>,
}

fn requests_path(month: &str, account: &str, region: &str) -> String {
    format!("{REQUESTS_PREFIX}{month}/{account}/{region}")
}

fn destroyed_path(account: &str, region: &str, key_id: &str) -> String {
    format!("{DESTROYED_PREFIX}{account}/{region}/{key_id}")
}

/// `YYYY-MM` of an instant.
pub fn month_of(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!("{:04}-{:02}", t.year(), u8::from(t.month()))
}

/// The first and last millisecond (exclusive) of month `YYYY-MM`.
pub fn month_bounds(month: &str) -> Option<(i64, i64)> {
    let (y, m) = month.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    let year: i32 = y.parse().ok()?;
    let month = Month::try_from(m.parse::<u8>().ok()?).ok()?;
    let start = Date::from_calendar_date(year, month, 1).ok()?;
    let (ny, nm) = if month == Month::December {
        (year.checked_add(1)?, Month::January)
    } else {
        (year, month.next())
    };
    let end = Date::from_calendar_date(ny, nm, 1).ok()?;
    let ms = |d: Date| {
        (d.with_time(Time::MIDNIGHT)
            .assume_utc()
            .unix_timestamp_nanos()
            / 1_000_000) as i64
    };
    Some((ms(start), ms(end)))
}

/// The ledger write that remembers a key destroyed at `now_ms` (in the destroying batch).
pub(crate) fn destroyed_op(rec: &KeyRecord, now_ms: i64) -> Result<Op, StoreError> {
    citadel_store::put_json_op(
        destroyed_path(&rec.account, &rec.region, &rec.id),
        &DestroyedKey {
            created_ms: rec.created_ms,
            destroyed_ms: now_ms,
            key_manager: rec.key_manager.clone(),
            materials_ms: rec.materials.iter().map(|m| m.created_ms).collect(),
        },
        Expect::Any,
    )
}

/// A key's charge for one month.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyUsage {
    pub region: String,
    pub key_id: String,
    pub key_manager: String,
    /// Hours of the month the key existed.
    pub hours: u64,
    /// Billable material-hours (the key's first three materials, each from its creation).
    pub material_hours: u64,
    pub cost_usd: f64,
    pub destroyed: bool,
}

/// Requests of one (region, key, operation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RequestUsage {
    pub region: String,
    /// `-` for requests on no particular key (ListKeys, GenerateRandom, …).
    pub key_id: String,
    pub operation: String,
    pub count: u64,
}

/// One account's month.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccountUsage {
    pub account: String,
    pub keys: Vec<KeyUsage>,
    pub requests: Vec<RequestUsage>,
    pub billable_requests: u64,
    pub key_cost_usd: f64,
    pub request_cost_usd: f64,
    pub total_usd: f64,
}

/// `citadel usage report`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UsageReport {
    pub month: String,
    pub accounts: Vec<AccountUsage>,
}

/// Billed hours of a span inside `[start, end)`, rounded up to whole hours as AWS prorates.
fn hours_within(from_ms: i64, to_ms: i64, start: i64, end: i64) -> u64 {
    let (a, b) = (from_ms.max(start), to_ms.min(end));
    if b <= a {
        return 0;
    }
    u64::try_from((b - a + MS_PER_HOUR - 1) / MS_PER_HOUR).unwrap_or(0)
}

fn key_usage(
    region: &str,
    key_id: &str,
    d: &DestroyedKey,
    destroyed: bool,
    (start, end, now): (i64, i64, i64),
) -> Option<KeyUsage> {
    let until = if destroyed {
        d.destroyed_ms
    } else {
        now.max(d.created_ms)
    };
    let hours = hours_within(d.created_ms, until, start, end);
    if hours == 0 {
        return None;
    }
    let material_hours: u64 = d
        .materials_ms
        .iter()
        .take(BILLED_MATERIALS)
        .map(|&m| hours_within(m.max(d.created_ms), until, start, end))
        .sum();
    let month_hours = hours_within(start, end, start, end).max(1);
    let cost_usd = if d.key_manager == crate::managed::AWS {
        0.0
    } else {
        KEY_MONTH_USD * material_hours as f64 / month_hours as f64
    };
    Some(KeyUsage {
        region: region.to_owned(),
        key_id: key_id.to_owned(),
        key_manager: d.key_manager.clone(),
        hours,
        material_hours,
        cost_usd: round_cents(cost_usd),
        destroyed,
    })
}

/// Costs are reported to a hundredth of a cent.
fn round_cents(usd: f64) -> f64 {
    (usd * 10_000.0).round() / 10_000.0
}

impl Kms {
    /// Adds the request counts gathered since the last flush to their months' ledgers.
    pub async fn flush_usage(&self, now_ms: i64) -> Result<(), KmsError> {
        let counts = self.meter.snapshot();
        if counts.is_empty() {
            return Ok(());
        }
        let month = month_of(now_ms);
        let mut by_ledger: BTreeMap<(String, String), Vec<(&Counter, u64)>> = BTreeMap::new();
        for (c, n) in &counts {
            by_ledger
                .entry((c.account.clone(), c.region.clone()))
                .or_default()
                .push((c, *n));
        }
        for ((account, region), entries) in by_ledger {
            let path = requests_path(&month, &account, &region);
            for _ in 0..crate::repo::MAX_ATTEMPTS {
                let current = self
                    .store
                    .get_json_versioned::<RequestLedger>(&path)
                    .await?;
                let (mut ledger, expect) = match current {
                    Some(v) => (v.value, Expect::Version(v.version)),
                    None => (RequestLedger::new(), Expect::Absent),
                };
                for (c, n) in &entries {
                    *ledger
                        .entry(c.key_id.clone())
                        .or_default()
                        .entry(c.operation.to_owned())
                        .or_default() += n;
                }
                match self.store.put_json(&path, &ledger, expect).await {
                    Ok(_) => {
                        // Exactly what this ledger now holds leaves memory: counts are never
                        // added twice, and counts not written stay for the next flush.
                        let written: HashMap<Counter, u64> =
                            entries.iter().map(|(c, n)| ((*c).clone(), *n)).collect();
                        self.meter.subtract(&written);
                        break;
                    }
                    Err(StoreError::Conflict { .. }) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    /// The usage of `month` (`YYYY-MM`) for `account`, or for every account when `None`.
    /// Counts still in memory are flushed first so the report is current.
    pub async fn usage_report(
        &self,
        account: Option<&str>,
        month: &str,
    ) -> Result<Option<UsageReport>, KmsError> {
        let Some((start, end)) = month_bounds(month) else {
            return Ok(None);
        };
        let now = self.now_ms();
        self.flush_usage(now).await?;
        let mut accounts: BTreeMap<String, AccountUsage> = BTreeMap::new();
        // Living keys.
        let key_prefix = match account {
            Some(a) => format!("kms/{a}/"),
            None => "kms/".to_owned(),
        };
        let mut after: Option<String> = None;
        loop {
            let page = self.store.list(&key_prefix, after.as_deref(), 512).await?;
            let done = page.len() < 512;
            for (path, rec) in &page {
                if !path.contains("/key/") || path.starts_with("kms/usage/") {
                    continue;
                }
                let Ok(key) = serde_json::from_slice::<KeyRecord>(&rec.value) else {
                    continue;
                };
                let d = DestroyedKey {
                    created_ms: key.created_ms,
                    destroyed_ms: now,
                    key_manager: key.key_manager.clone(),
                    materials_ms: key.materials.iter().map(|m| m.created_ms).collect(),
                };
                if let Some(u) = key_usage(&key.region, &key.id, &d, false, (start, end, now)) {
                    account_entry(&mut accounts, &key.account).keys.push(u);
                }
            }
            after = page.last().map(|(p, _)| p.clone());
            if done || after.is_none() {
                break;
            }
        }

        // Destroyed keys.
        let destroyed_prefix = match account {
            Some(a) => format!("{DESTROYED_PREFIX}{a}/"),
            None => DESTROYED_PREFIX.to_owned(),
        };
        for (path, rec) in self.list_all(&destroyed_prefix).await? {
            let mut parts = path.trim_start_matches(DESTROYED_PREFIX).splitn(3, '/');
            let (Some(a), Some(region), Some(key_id)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let Ok(d) = serde_json::from_slice::<DestroyedKey>(&rec) else {
                continue;
            };
            if let Some(u) = key_usage(region, key_id, &d, true, (start, end, now)) {
                account_entry(&mut accounts, a).keys.push(u);
            }
        }

        // Requests.
        let requests_prefix = match account {
            Some(a) => format!("{REQUESTS_PREFIX}{month}/{a}/"),
            None => format!("{REQUESTS_PREFIX}{month}/"),
        };
        for (path, rec) in self.list_all(&requests_prefix).await? {
            let rest = path.trim_start_matches(REQUESTS_PREFIX);
            let mut parts = rest.splitn(3, '/');
            let (Some(_), Some(a), Some(region)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let Ok(ledger) = serde_json::from_slice::<RequestLedger>(&rec) else {
                continue;
            };
            let usage = account_entry(&mut accounts, a);
            for (key_id, ops) in ledger {
                for (operation, count) in ops {
                    if !FREE_OPERATIONS.contains(&operation.as_str()) {
                        usage.billable_requests += count;
                    }
                    usage.requests.push(RequestUsage {
                        region: region.to_owned(),
                        key_id: key_id.clone(),
                        operation,
                        count,
                    });
                }
            }
        }

        for usage in accounts.values_mut() {
            usage.key_cost_usd = round_cents(usage.keys.iter().map(|k| k.cost_usd).sum());
            usage.request_cost_usd =
                round_cents(usage.billable_requests as f64 / 10_000.0 * REQUESTS_USD_PER_10K);
            usage.total_usd = round_cents(usage.key_cost_usd + usage.request_cost_usd);
        }
        Ok(Some(UsageReport {
            month: month.to_owned(),
            accounts: accounts.into_values().collect(),
        }))
    }

    /// Every (path, decrypted value) under `prefix`.
    async fn list_all(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, KmsError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.store.list(prefix, after.as_deref(), 512).await?;
            let done = page.len() < 512;
            after = page.last().map(|(p, _)| p.clone());
            out.extend(page.into_iter().map(|(p, r)| (p, r.value.to_vec())));
            if done || after.is_none() {
                return Ok(out);
            }
        }
    }
}

fn account_entry<'a>(
    accounts: &'a mut BTreeMap<String, AccountUsage>,
    account: &str,
) -> &'a mut AccountUsage {
    accounts
        .entry(account.to_owned())
        .or_insert_with(|| AccountUsage {
            account: account.to_owned(),
            keys: Vec::new(),
            requests: Vec::new(),
            billable_requests: 0,
            key_cost_usd: 0.0,
            request_cost_usd: 0.0,
            total_usd: 0.0,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_have_their_calendar_bounds() {
        let (s, e) = month_bounds("2024-02").unwrap();
        assert_eq!((e - s) / MS_PER_HOUR, 29 * 24);
        let (s, e) = month_bounds("2026-12").unwrap();
        assert_eq!((e - s) / MS_PER_HOUR, 31 * 24);
        assert_eq!(month_of(s), "2026-12");
        assert_eq!(month_of(e), "2027-01");
        for bad in ["2026-13", "2026-1", "26-01", "x", "2026-00"] {
            assert!(month_bounds(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn hours_are_prorated_within_the_month_and_rounded_up() {
        assert_eq!(hours_within(0, 1, 0, 100 * MS_PER_HOUR), 1);
        assert_eq!(
            hours_within(-MS_PER_HOUR * 5, MS_PER_HOUR * 2, 0, 100 * MS_PER_HOUR),
            2
        );
        assert_eq!(hours_within(10, 5, 0, 100), 0);
    }

    #[test]
    fn a_whole_month_costs_a_dollar_per_billed_material_and_managed_keys_are_free() {
        let (s, e) = month_bounds("2026-11").unwrap();
        let window = (s, e, e + 1);
        let mut d = DestroyedKey {
            created_ms: s - 1,
            destroyed_ms: 0,
            key_manager: "CUSTOMER".into(),
            materials_ms: vec![s - 1],
        };
        let u = key_usage("r", "k", &d, false, window).unwrap();
        assert_eq!(u.hours, 30 * 24);
        assert!((u.cost_usd - 1.0).abs() < 1e-9);
        // Rotated at mid-month twice more and then three more times: only two rotations bill.
        let mid = s + (e - s) / 2;
        d.materials_ms.extend([mid, mid, mid, mid, mid]);
        let u = key_usage("r", "k", &d, false, window).unwrap();
        assert!((u.cost_usd - 2.0).abs() < 1e-9, "{}", u.cost_usd);
        d.key_manager = "AWS".into();
        assert_eq!(
            key_usage("r", "k", &d, false, window).unwrap().cost_usd,
            0.0
        );
        // A key created after the month has nothing to report.
        d.created_ms = e + 5;
        assert!(key_usage("r", "k", &d, false, (s, e, e + 10)).is_none());
    }
}
