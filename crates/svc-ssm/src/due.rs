//! The scheduler's work: Expiration policies. Each parameter with an Expiration has a due
//! entry keyed by its time, so a run reads only what fell due; the parameter and its entry go
//! in one atomic batch, so a crash or a second run never deletes anything twice.

use citadel_store::{Expect, Op};

use crate::params::Attempt;
use crate::record::{self, Due, ParamRecord};
use crate::{Ssm, SsmError};

/// Due entries read per page.
const PAGE: usize = 100;

impl Ssm {
    /// Deletes every parameter whose Expiration is at or before `now_ms`; returns how many.
    /// Entries that no longer match their parameter (changed or deleted since) are dropped.
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
                if self.expire(&key, entry.version, &due).await? {
                    deleted += 1;
                }
            }
            if exhausted {
                return Ok(deleted);
            }
        }
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
                    &due.name,
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
