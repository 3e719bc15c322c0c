//! Multi-Region secrets: ReplicateSecretToRegions, RemoveRegionsFromReplication,
//! StopReplicationToReplica, and the synchronization every write of a primary carries.
//!
//! A Region is a namespace of the same store, so a replica is an ordinary secret record in its
//! Region (same name, same ARN suffix, `primary_region` set) whose values are sealed under that
//! Region's KMS key (the given KmsKeyId or that Region's `aws/secretsmanager`) with the replica's
//! ARN in the encryption context, through the same `KeyService` path as the primary's, with the
//! replica Region in the request context (so `kms:ViaService` is
//! `secretsmanager.<replica-region>.amazonaws.com`).
//!
//! Synchronization is not asynchronous as in AWS: every write of a primary computes each
//! replica's new record (metadata, tags, resource policy, rotation settings, staging labels
//! identical to the primary's; the replica keeps its own key, uid and last-access dates) and the
//! value records it lacks, and writes them in the same atomic batch as the primary. A replica is
//! therefore never behind after an acknowledged write. When a replica cannot follow (its Region's
//! key refuses to encrypt, the caller may not decrypt a value to copy, or a different secret holds
//! the name there) the primary write still succeeds, the replica keeps its last consistent state
//! and the primary records `Failed` with a `StatusMessage`; the next write of the primary by a
//! caller tries again.
//!
//! Writes to a replica are refused with AWS's error; reads (GetSecretValue, DescribeSecret,
//! ListSecrets, GetResourcePolicy) work in the replica's Region. StopReplicationToReplica,
//! called in the replica's Region, promotes the replica to a standalone secret and drops it from
//! its primary in one batch.

use std::collections::HashMap;

use citadel_api::{AwsError, OperationOutput, RequestContext};
use citadel_model::Timestamp;
use citadel_model::secretsmanager as sm;
use citadel_store::{Expect, Op, StoreError};

use crate::authz::{Conditions, Target};
use crate::envelope::{Plain, Sealed};
use crate::ops_secret::ensure_live;
use crate::record::{
    self, DEFAULT_KEY_ALIAS, FAILED, IN_PROGRESS, IN_SYNC, ReplicaState, SecretRecord,
};
use crate::repo::{Change, Loaded, MAX_ATTEMPTS, schedule_ops, value_deletes};
use crate::{Inner, errors, json_output};

/// AWS's answer to a write sent to a replica.
pub(crate) const NOT_ON_REPLICA: &str =
    "Operation not permitted on a replica secret. Call must be made in primary secret's region.";

/// Refuses writes to a replica secret.
pub(crate) fn refuse_replica(record: &SecretRecord) -> Result<(), AwsError> {
    if record.is_replica() {
        return Err(errors::invalid_parameter(NOT_ON_REPLICA));
    }
    Ok(())
}

/// What a write gives the synchronization of replicas.
pub(crate) struct ReplicaSync<'a> {
    /// The caller's context: needed to seal under a replica Region's key and to read values a
    /// replica lacks. Background work (rotation steps, last-access dates) has none.
    pub ctx: Option<&'a RequestContext>,
    /// Values of the versions this write creates (not in the store yet), by version id.
    pub fresh: Vec<(String, &'a Plain)>,
    /// Regions where a different secret with the same name may be overwritten
    /// (ForceOverwriteReplicaSecret).
    pub force: Vec<String>,
}

impl<'a> ReplicaSync<'a> {
    pub fn background() -> Self {
        ReplicaSync {
            ctx: None,
            fresh: Vec::new(),
            force: Vec::new(),
        }
    }

    pub fn caller(ctx: &'a RequestContext) -> Self {
        ReplicaSync {
            ctx: Some(ctx),
            fresh: Vec::new(),
            force: Vec::new(),
        }
    }
}

/// Values already sealed for a replica, kept across the retries of one write so a conflict does
/// not ask KMS again. Keyed by (Region, KeyId, version id).
#[derive(Default)]
pub(crate) struct SealCache(HashMap<(String, String, String), Sealed>);

/// The same request, made in `region` by Secrets Manager.
fn region_ctx(ctx: &RequestContext, region: &str) -> RequestContext {
    RequestContext {
        region: region.to_owned(),
        ..ctx.clone()
    }
}

/// Whether `candidate` is a replica of `primary` (and not an unrelated secret with the name).
fn is_replica_of(candidate: &SecretRecord, primary: &SecretRecord) -> bool {
    candidate.primary_region.as_deref() == Some(primary.region.as_str())
        && candidate.suffix == primary.suffix
        && candidate.name == primary.name
}

/// The replica of `primary` in `state.region`, from its previous state `base`.
fn mirror(
    primary: &SecretRecord,
    base: Option<&SecretRecord>,
    state: &ReplicaState,
    uid: &str,
    markers: &HashMap<String, String>,
    now_ms: i64,
) -> SecretRecord {
    let mut r = primary.clone();
    r.uid = uid.to_owned();
    r.region = state.region.clone();
    r.kms_key_id = state.kms_key_id.clone();
    r.primary_region = Some(primary.region.clone());
    r.replicas = Vec::new();
    r.last_accessed_ms = base.and_then(|b| b.last_accessed_ms);
    r.created_ms = base.map_or(now_ms, |b| b.created_ms);
    // The primary's deletion schedule is the primary's business (a primary with replicas
    // cannot be deleted anyway).
    r.purge_ms = None;
    for (vid, v) in &mut r.versions {
        let old = base.and_then(|b| b.versions.get(vid));
        v.last_accessed_ms = old.and_then(|o| o.last_accessed_ms);
        v.kms_key_ids = match markers.get(vid) {
            Some(m) => vec![m.clone()],
            None => old.map(|o| o.kms_key_ids.clone()).unwrap_or_default(),
        };
        // Fingerprints serve idempotent writes, which a replica refuses.
        v.fingerprint = None;
        v.salt = None;
    }
    r
}

/// AWS's `ReplicationStatus` entries of a primary (`last_accessed` by Region, when known).
pub(crate) fn status_out(
    record: &SecretRecord,
    last_accessed: &HashMap<String, i64>,
) -> Option<Vec<sm::ReplicationStatusType>> {
    (!record.replicas.is_empty()).then(|| {
        record
            .replicas
            .iter()
            .map(|r| sm::ReplicationStatusType {
                region: Some(r.region.clone()),
                kms_key_id: Some(
                    r.kms_key_id
                        .clone()
                        .unwrap_or_else(|| DEFAULT_KEY_ALIAS.to_owned()),
                ),
                status: Some(r.status.clone()),
                status_message: r.status_message.clone(),
                last_accessed_date: last_accessed
                    .get(&r.region)
                    .copied()
                    .map(Timestamp::from_epoch_millis),
            })
            .collect()
    })
}

/// The Regions of a request's `AddReplicaRegions`, checked.
pub(crate) fn requested_replicas(
    home: &str,
    regions: Option<Vec<sm::ReplicaRegionType>>,
) -> Result<Vec<ReplicaState>, AwsError> {
    let mut out: Vec<ReplicaState> = Vec::new();
    for r in regions.unwrap_or_default() {
        let region = r.region.unwrap_or_default();
        if region.is_empty() || region == home {
            return Err(errors::invalid_parameter("Invalid replica region."));
        }
        if out.iter().any(|o| o.region == region) {
            // Unconfirmed AWS wording.
            return Err(errors::invalid_parameter(format!(
                "The Region {region} appears more than once in AddReplicaRegions."
            )));
        }
        out.push(ReplicaState {
            region,
            kms_key_id: r.kms_key_id.filter(|k| !k.is_empty()),
            status: IN_PROGRESS.to_owned(),
            status_message: None,
        });
    }
    Ok(out)
}

impl Inner {
    /// The writes that take the replicas of a primary from `old` to `new` (`None`: the primary
    /// is deleted, and its replicas with it). Sets each replica's status in `new`.
    pub(crate) async fn replica_ops(
        &self,
        sync: &ReplicaSync<'_>,
        old: Option<&SecretRecord>,
        new: Option<&mut SecretRecord>,
        cache: &mut SealCache,
    ) -> Result<Vec<Op>, AwsError> {
        let mut ops = Vec::new();
        let kept: Vec<String> = new
            .as_ref()
            .map(|n| n.replicas.iter().map(|r| r.region.clone()).collect())
            .unwrap_or_default();
        // Replicas dropped (RemoveRegionsFromReplication) or orphaned (primary deleted) go.
        if let Some(old) = old {
            for gone in old.replicas.iter().filter(|r| !kept.contains(&r.region)) {
                let path = record::secret_path(&old.account, &gone.region, &old.name);
                if let Some(l) = self.load(&path).await.map_err(errors::store)?
                    && is_replica_of(&l.record, old)
                {
                    ops.push(Op::delete(&path, Expect::Version(l.version)));
                    ops.extend(value_deletes(&l.record));
                    ops.extend(schedule_ops(Some(&l.record), None));
                }
            }
        }
        let Some(new) = new else { return Ok(ops) };
        if new.is_replica() || new.replicas.is_empty() {
            return Ok(ops);
        }
        let mut plains: HashMap<String, Plain> = HashMap::new();
        let mut results = Vec::with_capacity(new.replicas.len());
        for state in &new.replicas {
            results.push(self.sync_one(sync, new, state, &mut plains, cache).await?);
        }
        for (state, result) in new.replicas.iter_mut().zip(results) {
            match result {
                Ok(replica_ops) => {
                    ops.extend(replica_ops);
                    state.status = IN_SYNC.to_owned();
                    state.status_message = None;
                }
                Err(message) => {
                    tracing::warn!(region = %state.region, secret = %new.name, %message, "a secret replica could not be synchronized");
                    state.status = FAILED.to_owned();
                    state.status_message = Some(message);
                }
            }
        }
        Ok(ops)
    }

    /// The writes that bring one replica in step with `primary`, or why it cannot follow.
    async fn sync_one(
        &self,
        sync: &ReplicaSync<'_>,
        primary: &SecretRecord,
        state: &ReplicaState,
        plains: &mut HashMap<String, Plain>,
        cache: &mut SealCache,
    ) -> Result<Result<Vec<Op>, String>, AwsError> {
        let path = record::secret_path(&primary.account, &state.region, &primary.name);
        let existing = self.load(&path).await.map_err(errors::store)?;
        let (base, foreign, expect) = match existing {
            None => (None, None, Expect::Absent),
            Some(l) if is_replica_of(&l.record, primary) => {
                let v = l.version;
                (Some(l.record), None, Expect::Version(v))
            }
            Some(l) => {
                if !sync.force.contains(&state.region) {
                    if state.status == FAILED && state.status_message.is_some() {
                        return Ok(Err(state.status_message.clone().unwrap_or_default()));
                    }
                    // Unconfirmed AWS wording (moto's).
                    return Ok(Err(format!(
                        "Replication failed: Secret name {} already exists in region {}.",
                        primary.name, state.region
                    )));
                }
                let v = l.version;
                (None, Some(l.record), Expect::Version(v))
            }
        };
        let uid = base
            .as_ref()
            .map_or_else(|| uuid::Uuid::new_v4().to_string(), |b| b.uid.clone());
        let replica_arn = record::secret_arn(
            &state.region,
            &primary.account,
            &primary.name,
            &primary.suffix,
        );
        let key = state
            .kms_key_id
            .clone()
            .unwrap_or_else(|| DEFAULT_KEY_ALIAS.to_owned());
        let mut ops = Vec::new();
        let mut markers = HashMap::new();
        for (vid, meta) in &primary.versions {
            let present = base
                .as_ref()
                .and_then(|b| b.versions.get(vid))
                .is_some_and(|v| v.has_value);
            if !meta.has_value || present {
                continue;
            }
            let Some(ctx) = sync.ctx else {
                // Only a caller's request can seal for the replica Region.
                return Ok(Err(match &state.status_message {
                    Some(m) if state.status == FAILED => m.clone(),
                    // Unconfirmed AWS wording.
                    _ => "Replication failed: a new version could not be copied to this Region."
                        .to_owned(),
                }));
            };
            let cache_key = (state.region.clone(), key.clone(), vid.clone());
            let sealed = match cache.0.get(&cache_key) {
                Some(s) => s.clone(),
                None => {
                    if !sync.fresh.iter().any(|(id, _)| id == vid) && !plains.contains_key(vid) {
                        match self.read_value(ctx, primary, vid).await {
                            Ok(p) => {
                                plains.insert(vid.clone(), p);
                            }
                            Err(e) if fatal(&e) => return Err(e),
                            Err(e) => return Ok(Err(failure(&e))),
                        }
                    }
                    let plain = sync
                        .fresh
                        .iter()
                        .find(|(id, _)| id == vid)
                        .map(|(_, p)| *p)
                        .or_else(|| plains.get(vid));
                    let Some(plain) = plain else {
                        return Err(errors::internal());
                    };
                    let rctx = region_ctx(ctx, &state.region);
                    match self.seal(&rctx, &key, &replica_arn, vid, plain).await {
                        Ok(s) => {
                            cache.0.insert(cache_key, s.clone());
                            s
                        }
                        Err(e) if fatal(&e) => return Err(e),
                        Err(e) => return Ok(Err(failure(&e))),
                    }
                }
            };
            ops.push(
                citadel_store::put_json_op(
                    record::value_path(&primary.account, &state.region, &uid, vid),
                    &sealed.record,
                    Expect::Any,
                )
                .map_err(errors::store)?,
            );
            markers.insert(vid.clone(), sealed.key_marker.clone());
        }
        let replica = mirror(primary, base.as_ref(), state, &uid, &markers, self.now_ms());
        if base.as_ref() != Some(&replica) {
            ops.push(citadel_store::put_json_op(&path, &replica, expect).map_err(errors::store)?);
            let before = base.as_ref().or(foreign.as_ref());
            ops.extend(schedule_ops(before, Some(&replica)));
        }
        if let Some(b) = &base {
            // Versions the primary no longer has (pruned).
            for vid in b
                .versions
                .keys()
                .filter(|v| !primary.versions.contains_key(*v))
            {
                ops.push(Op::delete(
                    record::value_path(&b.account, &b.region, &b.uid, vid),
                    Expect::Any,
                ));
            }
        }
        if let Some(f) = &foreign {
            tracing::info!(region = %state.region, secret = %primary.name, "overwriting a same-named secret with a replica (ForceOverwriteReplicaSecret)");
            ops.extend(value_deletes(f));
        }
        Ok(Ok(ops))
    }

    /// Last-access dates of the replicas of `record`, by Region.
    pub(crate) async fn replica_access(
        &self,
        record: &SecretRecord,
    ) -> Result<HashMap<String, i64>, AwsError> {
        let mut out = HashMap::new();
        for r in &record.replicas {
            let path = record::secret_path(&record.account, &r.region, &record.name);
            if let Some(l) = self.load(&path).await.map_err(errors::store)?
                && is_replica_of(&l.record, record)
                && let Some(at) = l.record.last_accessed_ms
            {
                out.insert(r.region.clone(), at);
            }
        }
        Ok(out)
    }

    pub(crate) async fn replicate_secret_to_regions(
        &self,
        ctx: &RequestContext,
        req: sm::ReplicateSecretToRegionsRequest,
    ) -> Result<OperationOutput, AwsError> {
        let secret_id = req.secret_id.unwrap_or_default();
        let found = self
            .find(ctx, &secret_id, "secretsmanager:ReplicateSecretToRegions")
            .await?;
        self.authorize(
            ctx,
            "secretsmanager:ReplicateSecretToRegions",
            Target::Secret(&found.record),
            Conditions::new(),
        )
        .await?;
        refuse_replica(&found.record)?;
        ensure_live(&found.record)?;
        let add = requested_replicas(&found.record.region, req.add_replica_regions)?;
        if add.is_empty() {
            // Unconfirmed AWS wording.
            return Err(errors::invalid_parameter(
                "You must specify at least one Region in AddReplicaRegions.",
            ));
        }
        let force = req.force_overwrite_replica_secret.unwrap_or(false);
        let sync = ReplicaSync {
            force: if force {
                add.iter().map(|r| r.region.clone()).collect()
            } else {
                Vec::new()
            },
            ..ReplicaSync::caller(ctx)
        };
        let arn = found.record.arn();
        let (_, written) = self
            .update_synced(&sync, found, |cur| {
                ensure_live(cur)?;
                refuse_replica(cur)?;
                let mut rec = cur.clone();
                for a in &add {
                    match rec.replicas.iter_mut().find(|r| r.region == a.region) {
                        Some(r) => *r = a.clone(),
                        None => rec.replicas.push(a.clone()),
                    }
                }
                Ok(Change::put(rec, ()))
            })
            .await?;
        let mut status = written
            .as_ref()
            .and_then(|w| status_out(w, &HashMap::new()))
            .unwrap_or_default();
        // The answer lists the Regions of this request.
        status.retain(|s| add.iter().any(|a| Some(&a.region) == s.region.as_ref()));
        json_output(&sm::ReplicateSecretToRegionsResponse {
            arn: Some(arn),
            replication_status: Some(status),
        })
    }

    pub(crate) async fn remove_regions_from_replication(
        &self,
        ctx: &RequestContext,
        req: sm::RemoveRegionsFromReplicationRequest,
    ) -> Result<OperationOutput, AwsError> {
        let secret_id = req.secret_id.unwrap_or_default();
        let regions = req.remove_replica_regions.unwrap_or_default();
        let found = self
            .find(
                ctx,
                &secret_id,
                "secretsmanager:RemoveRegionsFromReplication",
            )
            .await?;
        self.authorize(
            ctx,
            "secretsmanager:RemoveRegionsFromReplication",
            Target::Secret(&found.record),
            Conditions::new(),
        )
        .await?;
        refuse_replica(&found.record)?;
        let arn = found.record.arn();
        let sync = ReplicaSync::caller(ctx);
        // Removing a Region that has no replica is not an error (idempotent, as moto records).
        let (_, written) = self
            .update_synced(&sync, found, |cur| {
                refuse_replica(cur)?;
                let mut rec = cur.clone();
                rec.replicas.retain(|r| !regions.contains(&r.region));
                Ok(Change::put(rec, ()))
            })
            .await?;
        let status = written
            .as_ref()
            .and_then(|w| status_out(w, &HashMap::new()))
            .unwrap_or_default();
        json_output(&sm::RemoveRegionsFromReplicationResponse {
            arn: Some(arn),
            replication_status: Some(status),
        })
    }

    /// Called in the replica's Region: the replica becomes a standalone secret, and its primary
    /// forgets it, in one batch.
    pub(crate) async fn stop_replication_to_replica(
        &self,
        ctx: &RequestContext,
        req: sm::StopReplicationToReplicaRequest,
    ) -> Result<OperationOutput, AwsError> {
        let secret_id = req.secret_id.unwrap_or_default();
        let found = self
            .find(ctx, &secret_id, "secretsmanager:StopReplicationToReplica")
            .await?;
        self.authorize(
            ctx,
            "secretsmanager:StopReplicationToReplica",
            Target::Secret(&found.record),
            Conditions::new(),
        )
        .await?;
        let arn = found.record.arn();
        let path = found.record.path();
        let uid = found.record.uid.clone();
        let mut current: Loaded = found;
        for _ in 0..MAX_ATTEMPTS {
            let replica = &current.record;
            let Some(primary_region) = replica.primary_region.clone() else {
                // Unconfirmed AWS wording.
                return Err(errors::invalid_request(
                    "StopReplicationToReplica can only be called on a replica secret, in the replica's Region.",
                ));
            };
            let mut promoted = replica.clone();
            promoted.primary_region = None;
            promoted.replicas = Vec::new();
            // A rotation in flight belongs to the primary's Region.
            promoted.rotation.in_progress = None;
            promoted.last_changed_ms = self.now_ms();
            let mut ops = vec![
                citadel_store::put_json_op(&path, &promoted, Expect::Version(current.version))
                    .map_err(errors::store)?,
            ];
            ops.extend(schedule_ops(Some(replica), Some(&promoted)));
            let primary_path =
                record::secret_path(&replica.account, &primary_region, &replica.name);
            if let Some(p) = self.load(&primary_path).await.map_err(errors::store)?
                && is_replica_of(replica, &p.record)
            {
                let mut rec = p.record.clone();
                rec.replicas.retain(|r| r.region != replica.region);
                ops.push(
                    citadel_store::put_json_op(&primary_path, &rec, Expect::Version(p.version))
                        .map_err(errors::store)?,
                );
            }
            match self.store.batch(ops).await {
                Ok(()) => {
                    tracing::info!(secret = %arn, "replica promoted to a standalone secret");
                    return json_output(&sm::StopReplicationToReplicaResponse { arn: Some(arn) });
                }
                Err(StoreError::Conflict { .. }) => {
                    current = match self.load(&path).await.map_err(errors::store)? {
                        Some(l) if l.record.uid == uid => l,
                        _ => return Err(errors::not_found()),
                    };
                }
                Err(e) => return Err(errors::store(e)),
            }
        }
        tracing::warn!(secret = %path, "giving up on promoting a replica after repeated write conflicts");
        Err(errors::internal())
    }
}

/// Failures that are the server's, not the replica's: the whole write fails.
fn fatal(e: &AwsError) -> bool {
    e.is_server_fault() || e.code == "ServiceUnavailableException"
}

/// A replica's `StatusMessage` for an error of KMS or of reading the value to copy.
fn failure(e: &AwsError) -> String {
    // Unconfirmed AWS wording.
    format!(
        "Replication failed: {}",
        e.message.as_deref().unwrap_or(e.code.as_ref())
    )
}
