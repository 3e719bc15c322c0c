//! The scheduler's work: parameter policies. Each parameter with an Expiration has a due entry
//! keyed by its time, and each pending ExpirationNotification / NoChangeNotification one more
//! (`…#<kind>`), so a run reads only what fell due. The parameter's record lists the
//! notification entries it holds; every write that changes them moves or deletes the entries
//! in the same atomic batch, and carrying one out updates the record and deletes the entry
//! together under compare-and-swap, so a crash or a second run never acts twice.

use citadel_store::{Expect, Op};

use crate::errors;
use crate::params::Attempt;
use crate::policies;
use crate::record::{self, Due, DueKind, ParamRecord, Scheduled};
use crate::{Ssm, SsmError};

/// Due entries read per page.
const PAGE: usize = 100;

/// `2018-02-05T20:26:18.795Z`, as AWS's policy events cite times.
fn iso(ms: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    at.format(&f).unwrap_or_default()
}

impl Ssm {
    /// The batch operations that replace a parameter's notification entries `old` with `new`
    /// (entries in both stay untouched).
    pub(crate) fn notification_ops(
        account: &str,
        region: &str,
        name: &str,
        old: &[Scheduled],
        new: &[Scheduled],
    ) -> Result<Vec<Op>, citadel_api::AwsError> {
        let mut ops = Vec::new();
        for s in old.iter().filter(|s| !new.contains(s)) {
            ops.push(Op::Delete {
                key: record::notification_due_key(s, account, region, name),
                expect: Expect::Any,
            });
        }
        for s in new.iter().filter(|s| !old.contains(s)) {
            let due = Due {
                account: account.to_owned(),
                region: region.to_owned(),
                name: name.to_owned(),
                at_ms: s.at_ms,
                kind: s.kind,
            };
            ops.push(
                citadel_store::put_json_op(
                    record::notification_due_key(s, account, region, name),
                    &due,
                    Expect::Any,
                )
                .map_err(errors::store)?,
            );
        }
        Ok(ops)
    }

    /// Carries out every policy due at or before `now_ms`: Expirations delete their parameter,
    /// notifications emit their event. Returns how many parameters were deleted. Entries that
    /// no longer match their parameter (changed or deleted since) are dropped.
    pub async fn run_due(&self, now_ms: i64) -> Result<usize, SsmError> {
        let mut deleted = 0;
        let mut after: Option<String> = None;
        loop {
            let page = self
                .store
                .list(record::DUE_PREFIX, after.as_deref(), PAGE)
                .await?;
            let exhausted = page.len() < PAGE;
            for (key, entry) in page {
                after = Some(key.clone());
                let due: Due = match serde_json::from_slice(&entry.value) {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::error!(key, error = %e, "a Parameter Store due entry does not decode; dropping it");
                        self.store
                            .delete(&key, Expect::Version(entry.version))
                            .await?;
                        continue;
                    }
                };
                if due.at_ms > now_ms {
                    return Ok(deleted);
                }
                match due.kind {
                    DueKind::Expiration => {
                        if self.expire(&key, entry.version, &due).await? {
                            deleted += 1;
                        }
                    }
                    _ => self.notify(&key, entry.version, &due).await?,
                }
            }
            if exhausted {
                return Ok(deleted);
            }
        }
    }

    /// Emits one due notification and marks its policy `Finished` for this period. Dropped
    /// when the parameter no longer holds the entry; left for the next run when a concurrent
    /// write won.
    async fn notify(&self, due_key: &str, due_version: u64, due: &Due) -> Result<(), SsmError> {
        let key = record::param_key(&due.account, &due.region, &due.name);
        let this = Scheduled {
            kind: due.kind,
            at_ms: due.at_ms,
        };
        let current = self.store.get_json_versioned::<ParamRecord>(&key).await?;
        let Some(current) = current.filter(|c| c.value.notifications.contains(&this)) else {
            self.store
                .delete(due_key, Expect::Version(due_version))
                .await?;
            return Ok(());
        };
        let mut rec = current.value;
        rec.notifications.retain(|s| *s != this);
        if !rec.notified.contains(&due.kind) {
            rec.notified.push(due.kind);
        }
        let ops = vec![
            citadel_store::put_json_op(key, &rec, Expect::Version(current.version))?,
            Op::Delete {
                key: due_key.to_owned(),
                expect: Expect::Version(due_version),
            },
        ];
        match self.commit(ops).await {
            Ok(Attempt::Done(())) => {}
            Ok(Attempt::Conflict) => return Ok(()),
            Err(e) => {
                tracing::error!(error = %e, "recording a Parameter Store notification failed");
                return Ok(());
            }
        }
        let latest = &rec.latest;
        let Some(policy) = latest
            .policies
            .iter()
            .find(|p| p.policy_type == due.kind.as_str())
        else {
            return Ok(());
        };
        let period = policies::period_of(policy).map(policies::Period::phrase);
        let since = rec.policies_ms.map(iso).unwrap_or_default();
        // AWS's documented NoChangeNotification example reads "The parameter has not been
        // changed for 2 hours. This notification was generated based on the policy created at
        // <time>"; the ExpirationNotification reason follows the same form. // Unconfirmed AWS wording.
        let reason = match due.kind {
            DueKind::NoChangeNotification => format!(
                "The parameter has not been changed for {}. This notification was generated based on the policy created at {since}",
                period.unwrap_or_default()
            ),
            _ => format!(
                "The parameter will expire at {}. This notification was generated based on the policy created at {since}",
                rec.expires_ms.map(iso).unwrap_or_default()
            ),
        };
        tracing::info!(
            account = %due.account,
            region = %due.region,
            parameter = %due.name,
            policy = due.kind.as_str(),
            "parameter policy notification"
        );
        self.emit(citadel_events::shapes::parameter_store_policy_action(
            &due.account,
            &due.region,
            &rec.name,
            &latest.param_type,
            due.kind.as_str(),
            &policy.text,
            "Success",
            &reason,
        ))
        .await;
        Ok(())
    }

    /// Carries out one due expiration. `false` if the parameter had changed or gone (the entry
    /// is dropped) or a concurrent write won (the next run retries).
    async fn expire(&self, due_key: &str, due_version: u64, due: &Due) -> Result<bool, SsmError> {
        let key = record::param_key(&due.account, &due.region, &due.name);
        let current = self.store.get_json_versioned::<ParamRecord>(&key).await?;
        let Some(current) = current.filter(|c| c.value.expires_ms == Some(due.at_ms)) else {
            self.store
                .delete(due_key, Expect::Version(due_version))
                .await?;
            return Ok(false);
        };
        let counts_key = record::counts_key(&due.account, &due.region);
        let (counts, expect) = match self.store.get_json_versioned(&counts_key).await? {
            Some(v) => (v.value, Expect::Version(v.version)),
            None => (record::Counts::default(), Expect::Absent),
        };
        let mut ops = match Self::removal_ops(
            &due.account,
            &due.region,
            &current.value,
            current.version,
            counts,
            expect,
        ) {
            Ok(ops) => ops,
            Err(e) => {
                tracing::error!(error = %e, "building the removal of an expired parameter failed");
                return Ok(false);
            }
        };
        // The entry itself must still be the one read: exactly once across runs and nodes.
        for op in &mut ops {
            if let Op::Delete { key, expect } = op
                && key == due_key
            {
                *expect = Expect::Version(due_version);
            }
        }
        match self.commit(ops).await {
            Ok(Attempt::Done(())) => {
                tracing::info!(
                    account = %due.account,
                    region = %due.region,
                    parameter = %due.name,
                    "parameter deleted by its Expiration policy"
                );
                let latest = &current.value.latest;
                let policy = latest
                    .policies
                    .iter()
                    .find(|p| p.policy_type == "Expiration")
                    .map(|p| p.text.as_str())
                    .unwrap_or_default();
                self.emit(citadel_events::shapes::parameter_store_policy_action(
                    &due.account,
                    &due.region,
                    &current.value.name,
                    &latest.param_type,
                    "Expiration",
                    policy,
                    "Finished",
                    "",
                ))
                .await;
                Ok(true)
            }
            Ok(Attempt::Conflict) => Ok(false),
            Err(e) => {
                tracing::error!(error = %e, "deleting an expired parameter failed");
                Ok(false)
            }
        }
    }
}
