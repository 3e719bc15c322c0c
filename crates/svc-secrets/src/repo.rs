//! Reading and writing secret records: SecretId resolution (with the authorization of lookups
//! that find nothing), compare-and-swap batches with the schedule index kept in step, and the
//! retry loop every mutation goes through.

use citadel_api::{AwsError, RequestContext};
use citadel_store::{Expect, Op, StoreError};

use crate::Inner;
use crate::authz::{Conditions, Target};
use crate::errors;
use crate::names::{SecretRef, parse_secret_id};
use crate::record::{self, SecretRecord};
use crate::replication::{ReplicaSync, SealCache};

/// How many times a write is retried when a concurrent change wins the compare-and-swap.
pub(crate) const MAX_ATTEMPTS: usize = 32;
/// Upper bound on the secrets of one account and region read by a listing.
pub(crate) const MAX_SECRETS: usize = 500_000;

/// A secret as read, with the version to compare-and-swap against.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    pub record: SecretRecord,
    pub version: u64,
}

/// The new state of a secret a mutation computed, and what else to write with it.
pub(crate) struct Change<T> {
    /// `None` deletes the record.
    pub record: Option<SecretRecord>,
    pub extra: Vec<Op>,
    pub out: T,
}

impl<T> Change<T> {
    pub fn put(record: SecretRecord, out: T) -> Self {
        Change {
            record: Some(record),
            extra: Vec::new(),
            out,
        }
    }
}

/// The index writes that take `old`'s schedule entries to `new`'s.
pub(crate) fn schedule_ops(old: Option<&SecretRecord>, new: Option<&SecretRecord>) -> Vec<Op> {
    let before = old.map(SecretRecord::due_entries).unwrap_or_default();
    let after = new.map(SecretRecord::due_entries).unwrap_or_default();
    let mut ops: Vec<Op> = before
        .difference(&after)
        .map(|e| Op::delete(e.path(), Expect::Any))
        .collect();
    ops.extend(
        after
            .difference(&before)
            .map(|e| Op::put(e.path(), b"{}".to_vec(), Expect::Any)),
    );
    ops
}

/// Deletes of every value record of `record`.
pub(crate) fn value_deletes(record: &SecretRecord) -> Vec<Op> {
    record
        .versions
        .keys()
        .map(|v| {
            Op::delete(
                record::value_path(&record.account, &record.region, &record.uid, v),
                Expect::Any,
            )
        })
        .collect()
}

impl Inner {
    /// Reads a secret record straight from the store.
    pub(crate) async fn load(&self, path: &str) -> Result<Option<Loaded>, StoreError> {
        Ok(self
            .store
            .get_json_versioned::<SecretRecord>(path)
            .await?
            .map(|v| Loaded {
                record: v.value,
                version: v.version,
            }))
    }

    /// Finds the secret a parsed `SecretId` designates.
    pub(crate) async fn lookup(&self, r: &SecretRef) -> Result<Option<Loaded>, AwsError> {
        for (name, suffix) in &r.candidates {
            let path = record::secret_path(&r.account, &r.region, name);
            if let Some(found) = self.load(&path).await.map_err(errors::store)? {
                match suffix {
                    Some(s) if *s != found.record.suffix => continue,
                    _ => return Ok(Some(found)),
                }
            }
        }
        Ok(None)
    }

    /// Finds the secret `secret_id` names. When there is none, the caller is still authorized
    /// for `action` on the ARN it named (identity policies only) before hearing that it does not
    /// exist, so that existence is not disclosed to callers who may not ask.
    pub(crate) async fn find(
        &self,
        ctx: &RequestContext,
        secret_id: &str,
        action: &'static str,
    ) -> Result<Loaded, AwsError> {
        let r = parse_secret_id(secret_id, &ctx.principal.account_id, &ctx.region)?;
        // Secrets of another region are not visible from this one.
        let found = if r.region == ctx.region {
            self.lookup(&r).await?
        } else {
            None
        };
        match found {
            Some(l) => Ok(l),
            None => {
                self.authorize(
                    ctx,
                    action,
                    Target::Named {
                        arn: &r.arn_for_authz,
                        account: &r.account,
                    },
                    Conditions::new(),
                )
                .await?;
                Err(errors::not_found())
            }
        }
    }

    /// Writes `new` over `old` (compare-and-swap on the record; `None` creates or deletes),
    /// with the schedule index and `extra` in the same atomic batch.
    pub(crate) async fn commit(
        &self,
        path: &str,
        old: Option<&Loaded>,
        new: Option<&SecretRecord>,
        extra: Vec<Op>,
    ) -> Result<(), StoreError> {
        let expect = old.map_or(Expect::Absent, |o| Expect::Version(o.version));
        let mut ops = Vec::with_capacity(extra.len() + 3);
        match new {
            Some(rec) => ops.push(citadel_store::put_json_op(path, rec, expect)?),
            None => ops.push(Op::delete(path, expect)),
        }
        ops.extend(schedule_ops(old.map(|o| &o.record), new));
        ops.extend(extra);
        self.store.batch(ops).await
    }

    /// Applies `change` to the secret and writes the result, re-reading and re-applying when a
    /// concurrent write got there first. `change` does its state checks itself, since the state
    /// may differ on a retry. Replicas follow in the same batch; without a caller's context
    /// (background work) they can only follow changes that need no new values.
    pub(crate) async fn update<T>(
        &self,
        first: Loaded,
        change: impl FnMut(&SecretRecord) -> Result<Change<T>, AwsError>,
    ) -> Result<T, AwsError> {
        let sync = ReplicaSync::background();
        Ok(self.update_synced(&sync, first, change).await?.0)
    }

    /// [`Inner::update`] that also brings the secret's replicas in step (new values sealed
    /// under each replica Region's key) in the same atomic batch. Returns the record as written.
    pub(crate) async fn update_synced<T>(
        &self,
        sync: &ReplicaSync<'_>,
        first: Loaded,
        mut change: impl FnMut(&SecretRecord) -> Result<Change<T>, AwsError>,
    ) -> Result<(T, Option<SecretRecord>), AwsError> {
        let path = first.record.path();
        let uid = first.record.uid.clone();
        let mut current = first;
        let mut cache = SealCache::default();
        for _ in 0..MAX_ATTEMPTS {
            let Change {
                mut record,
                mut extra,
                out,
            } = change(&current.record)?;
            if record.as_ref() == Some(&current.record) && extra.is_empty() {
                return Ok((out, record));
            }
            extra.extend(
                self.replica_ops(sync, Some(&current.record), record.as_mut(), &mut cache)
                    .await?,
            );
            match self
                .commit(&path, Some(&current), record.as_ref(), extra)
                .await
            {
                Ok(()) => return Ok((out, record)),
                Err(StoreError::Conflict { .. }) => {
                    current = match self.load(&path).await.map_err(errors::store)? {
                        // The same secret, changed meanwhile: apply again.
                        Some(l) if l.record.uid == uid => l,
                        // Purged (or purged and re-created) meanwhile.
                        _ => return Err(errors::not_found()),
                    };
                }
                Err(e) => return Err(errors::store(e)),
            }
        }
        tracing::warn!(secret = %path, "giving up on a secret update after repeated write conflicts");
        Err(errors::internal())
    }

    /// Every secret record of an account and region, in name order.
    pub(crate) async fn list_records(
        &self,
        account: &str,
        region: &str,
    ) -> Result<Vec<SecretRecord>, AwsError> {
        let prefix = record::secrets_prefix(account, region);
        let rows = self
            .store
            .list(&prefix, None, MAX_SECRETS)
            .await
            .map_err(errors::store)?;
        let mut out = Vec::with_capacity(rows.len());
        for (key, rec) in rows {
            match serde_json::from_slice::<SecretRecord>(&rec.value) {
                Ok(r) => out.push(r),
                Err(e) => {
                    tracing::error!(%key, category = ?e.classify(), "a secret record does not parse; skipping it");
                }
            }
        }
        Ok(out)
    }
}
