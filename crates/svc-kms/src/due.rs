//! The scheduled work: destroying keys whose waiting period is over and rotating keys whose
//! automatic rotation is due.
//!
//! Driven by the schedule index (`kms/due/…`, see [`crate::record`]), which is written in the
//! same batch as every key change, so it is never ahead of or behind the keys. Each action is one
//! atomic batch under compare-and-swap on the key record that also removes (or moves) the index
//! entry: a crash leaves either nothing done or everything done, and a second run finds nothing
//! left to do. An entry whose key no longer matches it is stale and simply removed.

use citadel_store::{Expect, Op, StoreError};
use time::OffsetDateTime;

use crate::Kms;
use crate::clock::{MILLIS_PER_DAY, to_millis};
use crate::errors::KmsError;
use crate::record::{self, DUE_PREFIX, DueEntry, DueKind, MaterialOrigin};
use crate::repo::MAX_ATTEMPTS;
use crate::rotation::{DEFAULT_ROTATION_PERIOD_DAYS, rotate};
use crate::state::KeyState;

/// Index entries read per page.
const PAGE: usize = 256;

/// What one [`Kms::run_due`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DueReport {
    /// ARNs of the keys destroyed (record, every material and every alias removed).
    pub deleted: Vec<String>,
    /// ARNs of the keys given new material by automatic rotation.
    pub rotated: Vec<String>,
    /// ARNs of the keys whose imported material reached its `ValidTo` and was deleted.
    pub expired: Vec<String>,
    /// Due rotations left for a later run: the key is not enabled (AWS does not rotate disabled
    /// keys; it rotates once they are enabled again), or it kept changing underneath.
    pub deferred: usize,
}

enum Outcome {
    Deleted(String),
    Rotated(String),
    Expired(String),
    Deferred,
    Nothing,
}

impl Kms {
    /// Performs every deletion and automatic rotation due at `now`. Idempotent, and safe to run
    /// concurrently with requests (and, later, on several nodes: every step is compare-and-swap).
    pub async fn run_due(&self, now: OffsetDateTime) -> Result<DueReport, KmsError> {
        if self.store.is_sealed() {
            self.cache.clear();
            return Err(StoreError::Sealed.into());
        }
        let now_ms = to_millis(now);
        let mut report = DueReport::default();
        let mut after: Option<String> = None;
        loop {
            let page = self.store.list(DUE_PREFIX, after.as_deref(), PAGE).await?;
            let exhausted = page.len() < PAGE;
            for (path, _) in page {
                let Some(entry) = DueEntry::parse(&path) else {
                    tracing::warn!(key = %path, "removing an unreadable KMS schedule entry");
                    self.store.delete(&path, Expect::Any).await?;
                    continue;
                };
                if entry.at_ms > now_ms {
                    return Ok(report);
                }
                match self.process(&entry, &path, now_ms).await? {
                    Outcome::Deleted(arn) => report.deleted.push(arn),
                    Outcome::Rotated(arn) => report.rotated.push(arn),
                    Outcome::Expired(arn) => report.expired.push(arn),
                    Outcome::Deferred => report.deferred += 1,
                    Outcome::Nothing => {}
                }
                after = Some(path);
            }
            if exhausted {
                return Ok(report);
            }
        }
    }

    async fn process(
        &self,
        entry: &DueEntry,
        entry_path: &str,
        now_ms: i64,
    ) -> Result<Outcome, KmsError> {
        let key_path = record::key_path(&entry.account, &entry.region, &entry.key_id);
        for _ in 0..MAX_ATTEMPTS {
            let Some(key) = self.load_key(&key_path).await? else {
                self.store.delete(entry_path, Expect::Any).await?;
                return Ok(Outcome::Nothing);
            };
            let rec = &key.record;
            if !rec.due_entries().contains(entry) {
                // Entries are written in the same batch as their key, so this only happens if
                // the index was damaged; the key's own schedule is authoritative.
                self.store.delete(entry_path, Expect::Any).await?;
                return Ok(Outcome::Nothing);
            }
            let result = match entry.kind {
                DueKind::Deletion => {
                    let mut extra: Vec<Op> = key
                        .materials
                        .keys()
                        .map(|id| {
                            Op::delete(
                                record::material_path(&rec.account, &rec.region, &rec.id, id),
                                Expect::Any,
                            )
                        })
                        .collect();
                    extra.extend(key.grants.iter().map(|g| {
                        Op::delete(
                            record::grant_path(&rec.account, &rec.region, &rec.id, &g.id),
                            Expect::Any,
                        )
                    }));
                    extra.extend(rec.aliases.iter().map(|name| {
                        Op::delete(
                            record::alias_path(&rec.account, &rec.region, name),
                            Expect::Any,
                        )
                    }));
                    extra.push(Op::delete(
                        record::owner_path(&rec.region, &rec.id),
                        Expect::Any,
                    ));
                    extra.push(crate::metering::destroyed_op(rec, now_ms)?);
                    // Unused import parameters (wrapping private keys) go with the key.
                    extra.extend(self.import_cleanup_ops(rec).await?);
                    // A destroyed replica leaves its multi-Region key in the same batch.
                    extra.extend(self.detach_replica_ops(rec, now_ms).await?);
                    let r = self.commit(&key_path, Some(&key), None, extra).await;
                    for name in &rec.aliases {
                        self.cache.invalidate_alias(&record::alias_path(
                            &rec.account,
                            &rec.region,
                            name,
                        ));
                    }
                    if r.is_ok() {
                        tracing::info!(key = %rec.arn(), "KMS key deleted: its deletion date passed");
                        self.emit(citadel_events::shapes::kms_cmk_deletion(
                            &rec.account,
                            &rec.region,
                            &rec.id,
                        ))
                        .await;
                    }
                    r.map(|()| Outcome::Deleted(rec.arn()))
                }
                DueKind::Expiry => {
                    let mut next = rec.clone();
                    let ops = crate::import::expire(&mut next, now_ms);
                    let r = self.commit(&key_path, Some(&key), Some(&next), ops).await;
                    if r.is_ok() {
                        tracing::info!(key = %rec.arn(), "KMS imported key material expired and was deleted");
                        self.emit(
                            citadel_events::shapes::kms_imported_key_material_expiration(
                                &rec.account,
                                &rec.region,
                                &rec.id,
                            ),
                        )
                        .await;
                    }
                    r.map(|()| Outcome::Expired(rec.arn()))
                }
                DueKind::Rotation => {
                    if rec.state != KeyState::Enabled {
                        return Ok(Outcome::Deferred);
                    }
                    let mut next = rec.clone();
                    let op = rotate(&mut next, MaterialOrigin::Automatic, now_ms)?;
                    let period_ms = i64::from(
                        next.rotation
                            .period_days
                            .unwrap_or(DEFAULT_ROTATION_PERIOD_DAYS),
                    ) * MILLIS_PER_DAY;
                    // The schedule keeps its rhythm; after a long outage it restarts from now
                    // instead of rotating once per missed period.
                    let mut due = entry.at_ms.saturating_add(period_ms);
                    if due <= now_ms {
                        due = now_ms.saturating_add(period_ms);
                    }
                    next.rotation.next_ms = Some(due);
                    let r = self
                        .commit(&key_path, Some(&key), Some(&next), vec![op])
                        .await;
                    if r.is_ok() {
                        tracing::info!(key = %rec.arn(), "KMS key rotated automatically");
                        self.emit(citadel_events::shapes::kms_cmk_rotation(
                            &rec.account,
                            &rec.region,
                            &rec.id,
                        ))
                        .await;
                    }
                    r.map(|()| Outcome::Rotated(rec.arn()))
                }
            };
            match result {
                Ok(outcome) => return Ok(outcome),
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Outcome::Deferred)
    }
}
