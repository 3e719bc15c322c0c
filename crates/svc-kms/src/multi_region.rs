//! Multi-Region keys: ReplicateKey, UpdatePrimaryRegion, and the bookkeeping that keeps the
//! members of a multi-Region key in step.
//!
//! A multi-Region key is one key record per Region, all in one account and all with the same
//! `mrk-` id and the same materials (stored again under each Region's path, with the same
//! material ids), so a ciphertext made in one Region opens in every other. Every record carries
//! the whole configuration ([`MultiRegion`]: the primary's Region and the replicas' Regions), so
//! DescribeKey anywhere reads one record; every change of the configuration rewrites all members
//! in one atomic batch, each under compare-and-swap.
//!
//! Shared properties (materials, rotation settings) are owned by the primary: the replicas'
//! rotation operations are refused, and every write of a primary that changes them (on-demand
//! and automatic rotation, Enable/DisableKeyRotation) carries them to the replicas in the same
//! batch ([`Kms::replica_sync_ops`], called by [`Kms::commit`]). Everything else (policy,
//! grants, aliases, tags, description, enabled state) belongs to each Region's record alone.
//!
//! AWS shows a new replica as `Creating`, and both keys of UpdatePrimaryRegion as `Updating`,
//! for a few seconds while it copies between Regions. Here both operations are one atomic
//! batch, so those transient states are never observable.

use std::collections::{BTreeMap, BTreeSet};

use citadel_api::{AwsError, RequestContext};
use citadel_model::kms;
use citadel_store::{Expect, Op, StoreError};

use crate::authz::{RequestConditions, Target};
use crate::cache::LoadedKey;
use crate::clock::MILLIS_PER_DAY;
use crate::errors::{self, KmsError};
use crate::keys::{check_policy, tag_list};
use crate::names;
use crate::record::{self, KeyRecord, MultiRegion};
use crate::repo::{MAX_ATTEMPTS, kms_err, schedule_ops};
use crate::state::{self, KeyOp, KeyState};
use crate::{Empty, Kms};

/// A fresh multi-Region key id: `mrk-` and 32 lowercase hex digits.
pub(crate) fn new_key_id() -> String {
    format!("mrk-{}", uuid::Uuid::new_v4().simple())
}

/// Whether `path` is a key record's storage path (`kms/<account>/<region>/key/<id>`).
pub(crate) fn is_key_record_path(path: &str) -> bool {
    let mut parts = path.split('/');
    parts.next() == Some("kms") && parts.nth(2) == Some("key") && parts.next().is_some()
}

/// `UnsupportedOperationException: <arn> is not a multi-region primary key.` (AWS's wording).
fn not_primary(arn: &str) -> AwsError {
    errors::unsupported(format!("{arn} is not a multi-region primary key."))
}

/// Refuses the operations only a multi-Region primary key may perform (rotation settings and
/// on-demand rotation) on a replica.
pub(crate) fn refuse_on_replica(rec: &KeyRecord) -> Result<(), AwsError> {
    if rec.is_replica() {
        // Unconfirmed AWS wording (AWS refuses rotation changes on replicas with
        // UnsupportedOperationException; the message is assumed to be ReplicateKey's).
        return Err(not_primary(&rec.arn()));
    }
    Ok(())
}

/// A Region name as the model's `RegionType` pattern describes it (`^([a-z]+-){2,3}\d+$`).
fn check_region(member: &str, region: &str) -> Result<(), AwsError> {
    let parts: Vec<&str> = region.split('-').collect();
    let ok = region.len() <= 32
        && (3..=4).contains(&parts.len())
        && parts.iter().enumerate().all(|(i, p)| {
            if i + 1 == parts.len() {
                !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit())
            } else {
                !p.is_empty() && p.bytes().all(|c| c.is_ascii_lowercase())
            }
        });
    if ok {
        return Ok(());
    }
    Err(AwsError::validation(format!(
        "1 validation error detected: Value '{region}' at '{member}' failed to satisfy constraint: Member must satisfy regular expression pattern: ^([a-z]+-){{2,3}}\\d+$"
    )))
}

/// A member's record as read for a batch, with the version its write must expect.
struct Member {
    version: u64,
    record: KeyRecord,
}

/// The compare-and-swap write of a member, with its schedule entries moved in step.
fn member_ops(old: &Member, new: &KeyRecord) -> Result<Vec<Op>, StoreError> {
    let mut ops = vec![citadel_store::put_json_op(
        new.path(),
        new,
        Expect::Version(old.version),
    )?];
    ops.extend(schedule_ops(Some(&old.record), Some(new)));
    Ok(ops)
}

/// The stored value of a material (format byte ‖ secret) under another Region's path.
fn material_copy_op(
    account: &str,
    region: &str,
    key_id: &str,
    material_id: &str,
    value: Vec<u8>,
) -> Op {
    // `Any`: a material id is derived from the key id and the secret, so whatever is already
    // there under this id is the same material.
    Op::put(
        record::material_path(account, region, key_id, material_id),
        value,
        Expect::Any,
    )
}

fn material_value(m: &crate::material::Material) -> Vec<u8> {
    let mut value = Vec::with_capacity(1 + m.secret().len());
    value.push(m.format().byte());
    value.extend_from_slice(m.secret());
    value
}

/// Copies the properties a primary shares with its replicas onto a replica's record.
fn share_properties(primary: &KeyRecord, replica: &mut KeyRecord) {
    replica.materials.clone_from(&primary.materials);
    replica.rotation.clone_from(&primary.rotation);
    replica.on_demand_rotations = primary.on_demand_rotations;
}

impl Kms {
    /// Reads the records of every member of `rec`'s multi-Region key other than `rec` itself,
    /// straight from the store (their versions go into compare-and-swap writes). A member the
    /// configuration names but the store lacks is skipped: it is being destroyed, and that
    /// batch rewrites the configuration too.
    async fn other_members(&self, rec: &KeyRecord) -> Result<Vec<Member>, StoreError> {
        let Some(config) = &rec.multi_region else {
            return Ok(Vec::new());
        };
        let regions = std::iter::once(&config.primary_region)
            .chain(config.replica_regions.iter())
            .filter(|r| **r != rec.region);
        let mut out = Vec::new();
        for region in regions {
            let path = record::key_path(&rec.account, region, &rec.id);
            if let Some(v) = self.store.get_json_versioned::<KeyRecord>(&path).await? {
                out.push(Member {
                    version: v.version,
                    record: v.value,
                });
            }
        }
        Ok(out)
    }

    /// The writes that carry a multi-Region primary's shared properties to its replicas when
    /// the change `old` → `new` altered them (new materials are copied under each replica's
    /// Region). Called by [`Kms::commit`] for every key write, so rotations made anywhere
    /// (request path or scheduler) reach the replicas in the batch that makes them.
    pub(crate) async fn replica_sync_ops(
        &self,
        old: Option<&LoadedKey>,
        new: Option<&KeyRecord>,
        extra: &[Op],
    ) -> Result<Vec<Op>, StoreError> {
        let (Some(old), Some(new)) = (old, new) else {
            return Ok(Vec::new());
        };
        if new.multi_region.is_none()
            || new.is_replica()
            || (old.record.materials == new.materials
                && old.record.rotation == new.rotation
                && old.record.on_demand_rotations == new.on_demand_rotations)
        {
            return Ok(Vec::new());
        }
        let source_prefix = record::material_prefix(&new.account, &new.region, &new.id);
        let mut ops = Vec::new();
        for member in self.other_members(new).await? {
            let path = member.record.path();
            if extra.iter().any(|op| op.key() == path) {
                // The caller writes this member itself.
                continue;
            }
            let mut replica = member.record.clone();
            share_properties(new, &mut replica);
            if replica == member.record {
                continue;
            }
            for m in &new.materials {
                if member.record.materials.iter().any(|have| have.id == m.id) {
                    continue;
                }
                let source = format!("{source_prefix}{}", m.id);
                let value = extra
                    .iter()
                    .find_map(|op| match op {
                        Op::Put { key, value, .. } if *key == source => Some(value.clone()),
                        _ => None,
                    })
                    .or_else(|| old.materials.get(&m.id).map(|m| material_value(m)));
                let Some(value) = value else {
                    return Err(StoreError::Corrupt {
                        key: Some(source),
                        reason: "a material to copy to a replica is missing".into(),
                    });
                };
                ops.push(material_copy_op(
                    &replica.account,
                    &replica.region,
                    &replica.id,
                    &m.id,
                    value,
                ));
            }
            ops.extend(member_ops(&member, &replica)?);
        }
        Ok(ops)
    }

    /// The writes that take a replica being destroyed out of its multi-Region key: every other
    /// member forgets its Region, and a primary waiting for its replicas
    /// (`PendingReplicaDeletion`) starts its own waiting period once the last one is gone.
    pub(crate) async fn detach_replica_ops(
        &self,
        rec: &KeyRecord,
        now_ms: i64,
    ) -> Result<Vec<Op>, KmsError> {
        if !rec.is_replica() {
            return Ok(Vec::new());
        }
        let mut ops = Vec::new();
        for member in self.other_members(rec).await? {
            let mut next = member.record.clone();
            let Some(config) = next.multi_region.as_mut() else {
                continue;
            };
            config.replica_regions.remove(&rec.region);
            let last_replica_gone = config.replica_regions.is_empty();
            if next.region == config.primary_region
                && next.state == KeyState::PendingReplicaDeletion
                && last_replica_gone
            {
                let days = next.pending_window_days.unwrap_or(30);
                next.state = KeyState::PendingDeletion;
                next.deletion_ms = Some(now_ms.saturating_add(i64::from(days) * MILLIS_PER_DAY));
                tracing::info!(key = %next.arn(), days, "the last replica of a multi-Region key is gone; its primary's waiting period starts");
            }
            ops.extend(member_ops(&member, &next)?);
        }
        Ok(ops)
    }

    pub(crate) async fn replicate_key(
        &self,
        ctx: &RequestContext,
        req: kms::ReplicateKeyRequest,
    ) -> Result<kms::ReplicateKeyResponse, AwsError> {
        let replica_region = req.replica_region.clone().unwrap_or_default();
        check_region("replicaRegion", &replica_region)?;
        let bypass = req.bypass_policy_lockout_safety_check.unwrap_or(false);
        let r = self
            .resolve(ctx, req.key_id.as_deref().unwrap_or_default())
            .await?;
        self.authorize(
            ctx,
            "kms:ReplicateKey",
            Target::Key(&r.key),
            RequestConditions::new()
                .set("kms:ReplicaRegion", replica_region.as_str())
                .request_alias(r.alias.as_deref()),
        )
        .await?;
        let primary = &r.key.record;
        let arn = primary.arn();
        if primary.multi_region.is_none() || primary.is_replica() {
            return Err(not_primary(&arn));
        }
        state::check(primary.state, KeyOp::ReplicateKey, &arn)?;
        if primary.origin != record::ORIGIN {
            return Err(errors::unsupported(format!(
                "Citadel does not support replicating multi-Region keys with origin {} yet.",
                primary.origin
            )));
        }

        // AWS also requires kms:CreateKey in the replica's Region, asked as CreateKey asks it.
        let mut replica_ctx = ctx.clone();
        replica_ctx.region.clone_from(&replica_region);
        let mut conditions = RequestConditions::new()
            .set("kms:KeySpec", primary.key_spec.as_str())
            .set("kms:CustomerMasterKeySpec", primary.key_spec.as_str())
            .set("kms:KeyUsage", primary.key_usage.as_str())
            .set("kms:CustomerMasterKeyUsage", primary.key_usage.as_str())
            .set("kms:KeyOrigin", primary.origin.as_str())
            .set("kms:MultiRegion", "true")
            .set("kms:BypassPolicyLockoutSafetyCheck", bypass.to_string());
        for t in req.tags.iter().flatten() {
            conditions = conditions.set(
                &format!(
                    "aws:RequestTag/{}",
                    t.tag_key.as_deref().unwrap_or_default()
                ),
                t.tag_value.clone().unwrap_or_default(),
            );
        }
        self.authorize(&replica_ctx, "kms:CreateKey", Target::Account, conditions)
            .await?;

        let mut tags = BTreeMap::new();
        names::merge_tags(&mut tags, req.tags.as_deref().unwrap_or_default())?;
        let replica_arn = record::key_arn(&replica_region, &primary.account, &primary.id);
        let policy = match req.policy {
            Some(p) => {
                let parsed = check_policy(&p)?;
                if !bypass {
                    self.lockout_check(&replica_ctx, &replica_arn, &parsed)
                        .await?;
                }
                p
            }
            None => record::default_policy(&primary.account),
        };
        let description = req.description.unwrap_or_default();

        let now = self.now_ms();
        let mut current = r.key.clone();
        for _ in 0..MAX_ATTEMPTS {
            let primary = &current.record;
            let arn = primary.arn();
            if primary.multi_region.is_none() || primary.is_replica() {
                return Err(not_primary(&arn));
            }
            state::check(primary.state, KeyOp::ReplicateKey, &arn)?;
            let Some(config) = &primary.multi_region else {
                return Err(not_primary(&arn));
            };
            if replica_region == primary.region || config.replica_regions.contains(&replica_region)
            {
                return Err(already_replicated(&arn, &replica_region));
            }
            let mut new_config = config.clone();
            new_config.replica_regions.insert(replica_region.clone());

            // The new replica starts Enabled whatever the primary's state: the enabled state is
            // per Region, and AWS's replica becomes Enabled once its (here instantaneous)
            // creation ends.
            let replica = KeyRecord {
                account: primary.account.clone(),
                region: replica_region.clone(),
                id: primary.id.clone(),
                created_ms: now,
                description: description.clone(),
                state: KeyState::Enabled,
                key_spec: primary.key_spec.clone(),
                key_usage: primary.key_usage.clone(),
                origin: primary.origin.clone(),
                key_manager: primary.key_manager.clone(),
                deletion_ms: None,
                pending_window_days: None,
                policy: policy.clone(),
                tags: tags.clone(),
                aliases: BTreeSet::new(),
                rotation: primary.rotation.clone(),
                on_demand_rotations: primary.on_demand_rotations,
                materials: primary.materials.clone(),
                grant_generation: 0,
                multi_region: Some(new_config.clone()),
            };

            let mut extra = Vec::new();
            for m in &primary.materials {
                let material = current.materials.get(&m.id).ok_or_else(|| {
                    kms_err(KmsError::Corrupt {
                        key: primary.path(),
                        reason: "a material named by the key record is missing".into(),
                    })
                })?;
                extra.push(material_copy_op(
                    &replica.account,
                    &replica.region,
                    &replica.id,
                    &m.id,
                    material_value(material),
                ));
            }
            extra.push(record::owner_op(&replica));
            let mut new_primary = primary.clone();
            new_primary.multi_region = Some(new_config.clone());
            extra.push(crate::repo::key_put_op(&current, &new_primary).map_err(errors::store)?);
            for member in self.other_members(primary).await.map_err(errors::store)? {
                let mut next = member.record.clone();
                next.multi_region = Some(new_config.clone());
                extra.extend(member_ops(&member, &next).map_err(errors::store)?);
            }

            match self
                .commit(&replica.path(), None, Some(&replica), extra)
                .await
            {
                Ok(()) => {
                    tracing::info!(key = %replica.arn(), primary = %arn, "KMS multi-Region key replicated");
                    return Ok(kms::ReplicateKeyResponse {
                        replica_key_metadata: Some(replica.metadata()),
                        replica_policy: Some(replica.policy.clone()),
                        replica_tags: Some(tag_list(&replica.tags)),
                    });
                }
                Err(StoreError::Conflict { .. }) => {
                    if self
                        .store
                        .get(&replica.path())
                        .await
                        .map_err(errors::store)?
                        .is_some()
                    {
                        return Err(already_replicated(&arn, &replica_region));
                    }
                    current = match self.load_key(&primary.path()).await.map_err(kms_err)? {
                        Some(k) => std::sync::Arc::new(k),
                        None => return Err(errors::key_does_not_exist(&arn)),
                    };
                }
                Err(e) => return Err(errors::store(e)),
            }
        }
        tracing::warn!(key = %arn, "giving up on ReplicateKey after repeated write conflicts");
        Err(errors::internal())
    }

    pub(crate) async fn update_primary_region(
        &self,
        ctx: &RequestContext,
        req: kms::UpdatePrimaryRegionRequest,
    ) -> Result<Empty, AwsError> {
        let region = req.primary_region.clone().unwrap_or_default();
        check_region("primaryRegion", &region)?;
        let r = self
            .resolve(ctx, req.key_id.as_deref().unwrap_or_default())
            .await?;
        self.authorize(
            ctx,
            "kms:UpdatePrimaryRegion",
            Target::Key(&r.key),
            RequestConditions::new()
                .set("kms:PrimaryRegion", region.as_str())
                .request_alias(r.alias.as_deref()),
        )
        .await?;
        let arn = r.key.record.arn();
        if r.key.record.multi_region.is_none() || r.key.record.is_replica() {
            return Err(not_primary(&arn));
        }
        state::check(r.key.record.state, KeyOp::UpdatePrimaryRegion, &arn)?;
        if region == r.key.record.region {
            // The key in that Region already is the primary: nothing to change.
            // Unconfirmed AWS behaviour (AWS may refuse instead).
            return Ok(Empty {});
        }
        let target_path = record::key_path(&r.key.record.account, &region, &r.key.record.id);
        let target_arn = record::key_arn(&region, &r.key.record.account, &r.key.record.id);
        // AWS requires kms:UpdatePrimaryRegion on the replica too, under its own key policy.
        let mut replica_ctx = ctx.clone();
        replica_ctx.region.clone_from(&region);
        let target = self
            .key_at(&target_path)
            .await?
            .filter(|k| {
                r.key
                    .record
                    .multi_region
                    .as_ref()
                    .is_some_and(|c| c.replica_regions.contains(&region))
                    && k.record.is_replica()
            })
            .ok_or_else(|| errors::key_does_not_exist(&target_arn))?;
        self.authorize(
            &replica_ctx,
            "kms:UpdatePrimaryRegion",
            Target::Key(&target),
            RequestConditions::new().set("kms:PrimaryRegion", region.as_str()),
        )
        .await?;

        let mut current = r.key.clone();
        for _ in 0..MAX_ATTEMPTS {
            let old = &current.record;
            let Some(config) = old.multi_region.as_ref().filter(|_| !old.is_replica()) else {
                return Err(not_primary(&arn));
            };
            state::check(old.state, KeyOp::UpdatePrimaryRegion, &arn)?;
            if !config.replica_regions.contains(&region) {
                return Err(errors::key_does_not_exist(&target_arn));
            }
            let mut replica_regions = config.replica_regions.clone();
            replica_regions.remove(&region);
            replica_regions.insert(old.region.clone());
            let new_config = MultiRegion {
                primary_region: region.clone(),
                replica_regions,
            };
            let members = self.other_members(old).await.map_err(errors::store)?;
            let mut extra = Vec::new();
            for member in &members {
                if member.record.region == region {
                    state::check(
                        member.record.state,
                        KeyOp::UpdatePrimaryRegion,
                        &member.record.arn(),
                    )?;
                }
                let mut next = member.record.clone();
                next.multi_region = Some(new_config.clone());
                extra.extend(member_ops(member, &next).map_err(errors::store)?);
            }
            if !members.iter().any(|m| m.record.region == region) {
                return Err(errors::key_does_not_exist(&target_arn));
            }
            let mut demoted = old.clone();
            demoted.multi_region = Some(new_config);
            match self
                .commit(&old.path(), Some(&current), Some(&demoted), extra)
                .await
            {
                Ok(()) => {
                    tracing::info!(key = %arn, primary_region = %region, "KMS multi-Region key's primary Region changed");
                    return Ok(Empty {});
                }
                Err(StoreError::Conflict { .. }) => {
                    current = match self.load_key(&old.path()).await.map_err(kms_err)? {
                        Some(k) => std::sync::Arc::new(k),
                        None => return Err(errors::key_does_not_exist(&arn)),
                    };
                }
                Err(e) => return Err(errors::store(e)),
            }
        }
        tracing::warn!(key = %arn, "giving up on UpdatePrimaryRegion after repeated write conflicts");
        Err(errors::internal())
    }
}

/// A Region that already holds a member of the multi-Region key.
fn already_replicated(arn: &str, region: &str) -> AwsError {
    // Unconfirmed AWS wording.
    AwsError::new(
        400,
        "AlreadyExistsException",
        format!("Multi-region key {arn} already has a key in region {region}."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_multi_region_key_ids() {
        let id = new_key_id();
        assert_eq!(id.len(), 36);
        assert!(names::is_key_id(&id));
        assert_eq!(
            names::PackedKeyId::parse(&id).map(|p| p.kind),
            Some(names::PackedKeyId::MULTI_REGION)
        );
    }

    #[test]
    fn regions_follow_the_model_pattern() {
        for ok in ["us-east-1", "eu-west-2", "us-gov-west-1", "ap-southeast-12"] {
            assert!(check_region("replicaRegion", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "us",
            "us-east",
            "US-east-1",
            "us-east-1a",
            "a-b-c-d-1",
            "us--1",
        ] {
            let e = check_region("replicaRegion", bad).unwrap_err();
            assert_eq!(e.code, "ValidationException", "{bad}");
        }
    }

    #[test]
    fn key_record_paths_are_recognised() {
        assert!(is_key_record_path("kms/111122223333/us-east-1/key/mrk-1"));
        assert!(!is_key_record_path(
            "kms/111122223333/us-east-1/material/k/m"
        ));
        assert!(!is_key_record_path("kms/owner/us-east-1/k"));
        assert!(!is_key_record_path("kms/due/1/d/a/r/k"));
    }
}
