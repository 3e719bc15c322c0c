//! Reading and writing keys and aliases: through the cache for reads, as compare-and-swap batches
//! for writes (with the schedule index kept in step), plus KeyId resolution and the call into
//! the authorizer every handler makes.

use std::collections::HashMap;
use std::sync::Arc;

use citadel_api::{AwsError, RequestContext};
use citadel_iam::policy::{Policy, PolicyKind};
use citadel_store::{Expect, Op, StoreError};

use crate::authz::{self, RequestConditions, Target};
use crate::cache::{LoadedAlias, LoadedKey};
use crate::errors::{self, KmsError};
use crate::grants::Grants;
use crate::material::{Material, MaterialFormat};
use crate::names::PackedKeyId;
use crate::names::{KeyRef, parse_key_ref};
use crate::record::{self, AliasRecord, GrantRecord, KeyRecord};
use crate::state::{self, KeyOp};
use crate::{Kms, managed};

/// How many times a write is retried when a concurrent change wins the compare-and-swap.
pub(crate) const MAX_ATTEMPTS: usize = 32;
/// Upper bound on the materials of one key read at once (rotations are limited to about 25
/// on-demand plus at most one automatic every 90 days).
const MAX_MATERIALS: usize = 100_000;

/// A key found through a `KeyId`, and the alias used to name it, if any.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub key: Arc<LoadedKey>,
    pub alias: Option<String>,
}

/// The new state of a key a mutation computed, and what else to write with it.
pub struct Change<T> {
    pub record: KeyRecord,
    pub extra: Vec<Op>,
    pub out: T,
}

/// The batch operation that stores a new material.
pub(crate) fn material_op(record: &KeyRecord, material: &Material) -> Op {
    let mut value = Vec::with_capacity(1 + material.secret().len());
    value.push(material.format().byte());
    value.extend_from_slice(material.secret());
    Op::put(
        record::material_path(
            &record.account,
            &record.region,
            &record.id,
            &material.id_hex(),
        ),
        value,
        Expect::Absent,
    )
}

/// A compare-and-swap write of a key record whose schedule does not change (alias bookkeeping).
pub(crate) fn key_put_op(old: &LoadedKey, new: &KeyRecord) -> Result<Op, StoreError> {
    citadel_store::put_json_op(new.path(), new, Expect::Version(old.version))
}

/// The index writes that take `old`'s schedule entries to `new`'s.
pub(crate) fn schedule_ops(old: Option<&KeyRecord>, new: Option<&KeyRecord>) -> Vec<Op> {
    let before = old.map(KeyRecord::due_entries).unwrap_or_default();
    let after = new.map(KeyRecord::due_entries).unwrap_or_default();
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

impl Kms {
    // ----- reading ----------------------------------------------------------------------------

    /// Reads a key record and its materials straight from the store.
    pub(crate) async fn load_key(&self, path: &str) -> Result<Option<LoadedKey>, KmsError> {
        let Some(v) = self.store.get_json_versioned::<KeyRecord>(path).await? else {
            return Ok(None);
        };
        let record = v.value;
        let packed = PackedKeyId::parse(&record.id).ok_or_else(|| KmsError::Corrupt {
            key: path.to_owned(),
            reason: "the key id is not a key id".into(),
        })?;
        let prefix = record::material_prefix(&record.account, &record.region, &record.id);
        let mut materials = HashMap::new();
        for (mpath, rec) in self.store.list(&prefix, None, MAX_MATERIALS).await? {
            let id_hex = mpath.strip_prefix(&prefix).unwrap_or_default();
            let corrupt = |reason: &str| KmsError::Corrupt {
                key: mpath.clone(),
                reason: reason.to_owned(),
            };
            let id = hex::decode(id_hex).map_err(|_| corrupt("bad material id"))?;
            let (format, secret) = rec
                .value
                .split_first()
                .ok_or_else(|| corrupt("empty material record"))?;
            let format = MaterialFormat::from_byte(*format)
                .ok_or_else(|| corrupt("unknown material format"))?;
            let material = Material::restore(&packed, &id, format, secret)
                .ok_or_else(|| corrupt("material does not match its id"))?;
            materials.insert(id_hex.to_owned(), Arc::new(material));
        }
        // A key is being destroyed between the two reads: report it gone. Imported material
        // that was deleted or expired has no secret, by design (`MaterialInfo::is_present`).
        if record
            .materials
            .iter()
            .any(|m| m.is_present() && !materials.contains_key(&m.id))
        {
            if self.store.get(path).await?.is_none() {
                return Ok(None);
            }
            return Err(KmsError::Corrupt {
                key: path.to_owned(),
                reason: "a material named by the key record is missing".into(),
            });
        }
        let policy = parse_key_policy(&record);
        let grant_prefix = record::grant_prefix(&record.account, &record.region, &record.id);
        let mut grants = Vec::new();
        for (gpath, rec) in self
            .store
            .list(&grant_prefix, None, crate::grants::MAX_GRANTS_PER_KEY + 1)
            .await?
        {
            let grant: GrantRecord =
                serde_json::from_slice(&rec.value).map_err(|e| KmsError::Corrupt {
                    key: gpath.clone(),
                    reason: format!("the grant record does not parse: {e}"),
                })?;
            grants.push(grant);
        }
        Ok(Some(LoadedKey {
            version: v.version,
            record,
            materials,
            policy,
            grants: Grants::new(grants),
        }))
    }

    /// A key through the cache.
    pub(crate) async fn key_at(&self, path: &str) -> Result<Option<Arc<LoadedKey>>, AwsError> {
        if let Some(k) = self.cache.key(path) {
            return Ok(Some(k));
        }
        let epoch = self.cache.epoch();
        let loaded = self.load_key(path).await.map_err(kms_err)?;
        Ok(loaded.map(|k| {
            let k = Arc::new(k);
            self.cache.install_key(path, k.clone(), epoch);
            k
        }))
    }

    /// The account owning key `id` in `region`, through the cache.
    pub(crate) async fn owner_of(
        &self,
        region: &str,
        id: &str,
    ) -> Result<Option<String>, AwsError> {
        let path = record::owner_path(region, id);
        if let Some(account) = self.cache.owner(&path) {
            return Ok(Some(account));
        }
        let Some(entry) = self.store.get(&path).await.map_err(errors::store)? else {
            return Ok(None);
        };
        let account = String::from_utf8_lossy(&entry.value).into_owned();
        self.cache.install_owner(&path, &account);
        Ok(Some(account))
    }

    /// An alias through the cache.
    pub(crate) async fn alias_at(&self, path: &str) -> Result<Option<Arc<LoadedAlias>>, AwsError> {
        if let Some(a) = self.cache.alias(path) {
            return Ok(Some(a));
        }
        let epoch = self.cache.epoch();
        let loaded = self
            .store
            .get_json::<AliasRecord>(path)
            .await
            .map_err(errors::store)?;
        Ok(loaded.map(|record| {
            let a = Arc::new(LoadedAlias { record });
            self.cache.install_alias(path, a.clone(), epoch);
            a
        }))
    }

    /// The key a `KeyId` member names, once the caller may do `action` on it (with
    /// `kms:RequestAlias` when named by alias) and its state allows `op`: the preamble of the
    /// operations that read a key's settings.
    pub(crate) async fn authorized_key(
        &self,
        ctx: &RequestContext,
        key_id: Option<&str>,
        action: &'static str,
        op: KeyOp,
    ) -> Result<Resolved, AwsError> {
        let r = self.resolve(ctx, key_id.unwrap_or_default()).await?;
        self.authorize(
            ctx,
            action,
            Target::Key(&r.key),
            RequestConditions::new().request_alias(r.alias.as_deref()),
        )
        .await?;
        let rec = &r.key.record;
        state::check(rec.state, op, &rec.arn())?;
        Ok(r)
    }

    /// Finds the key a `KeyId` member names (key id, key ARN, alias name or alias ARN).
    pub(crate) async fn resolve(
        &self,
        ctx: &RequestContext,
        key_id: &str,
    ) -> Result<Resolved, AwsError> {
        match parse_key_ref(key_id, &ctx.principal.account_id, &ctx.region)? {
            KeyRef::Key {
                account,
                region,
                id,
            } => {
                let key = self
                    .key_at(&record::key_path(&account, &region, &id))
                    .await?
                    .ok_or_else(|| {
                        errors::key_does_not_exist(&record::key_arn(&region, &account, &id))
                    })?;
                Ok(Resolved { key, alias: None })
            }
            KeyRef::Alias {
                account,
                region,
                name,
            } => {
                let alias_arn = record::alias_arn(&region, &account, &name);
                let alias = self
                    .alias_at(&record::alias_path(&account, &region, &name))
                    .await?
                    .ok_or_else(|| errors::alias_not_found(&alias_arn))?;
                let target = &alias.record.target;
                let key = self
                    .key_at(&record::key_path(&account, &region, target))
                    .await?
                    .ok_or_else(|| {
                        errors::key_does_not_exist(&record::key_arn(&region, &account, target))
                    })?;
                Ok(Resolved {
                    key,
                    alias: Some(name),
                })
            }
        }
    }

    // ----- authorization ----------------------------------------------------------------------

    /// Authorizes `action` on `target` with the request's condition keys. Every handler calls
    /// this before acting; see [`authz`]. The grant tokens the request presents are checked
    /// first, and a grant on the key for the caller and this operation (whose constraints the
    /// request's encryption context meets) allows unless a policy explicitly denies.
    pub(crate) async fn authorize(
        &self,
        ctx: &RequestContext,
        action: &'static str,
        target: Target<'_>,
        conditions: RequestConditions,
    ) -> Result<(), AwsError> {
        let grant_allows = match target {
            Target::Key(k) => k.grants.allows(
                &ctx.principal,
                action.strip_prefix("kms:").unwrap_or(action),
                conditions.context(),
            ),
            Target::Account | Target::Alias { .. } => false,
        };
        self.authorize_with_grant(ctx, action, target, conditions, grant_allows)
            .await
    }

    /// [`Kms::authorize`] with the grant decision made by the caller (CreateGrant and
    /// RetireGrant have their own rules for it).
    pub(crate) async fn authorize_with_grant(
        &self,
        ctx: &RequestContext,
        action: &'static str,
        target: Target<'_>,
        conditions: RequestConditions,
        grant_allows: bool,
    ) -> Result<(), AwsError> {
        self.check_grant_tokens(ctx, target, conditions.tokens())
            .await?;
        // AWS-managed keys obey their fixed policy in every mode (dev mode evaluates none).
        if let Target::Key(key) | Target::Alias { key, .. } = target
            && key.record.key_manager == managed::AWS
            && !managed::allows(&key.record, action, ctx)
        {
            return Err(managed::denied(&key.record, action, ctx));
        }
        let via_service = ctx.via_service_endpoint();
        let input = authz::input(
            &ctx.principal,
            action,
            target,
            via_service.as_deref(),
            conditions,
            grant_allows,
        );
        authz::decide(&self.authorizer, ctx, &input).await?;
        if let Target::Key(key) = target {
            crate::note_request_key(&key.record.id);
        }
        Ok(())
    }

    // ----- writing ----------------------------------------------------------------------------

    /// Writes `new` over `old` (compare-and-swap on the key record; `None` creates or deletes),
    /// with the schedule index updated and `extra` in the same atomic batch. Whatever the
    /// outcome, the cached copy of the key is dropped.
    pub(crate) async fn commit(
        &self,
        path: &str,
        old: Option<&LoadedKey>,
        new: Option<&KeyRecord>,
        extra: Vec<Op>,
    ) -> Result<(), StoreError> {
        let expect = old.map_or(Expect::Absent, |o| Expect::Version(o.version));
        let mut ops = Vec::with_capacity(extra.len() + 3);
        match new {
            Some(rec) => ops.push(citadel_store::put_json_op(path, rec, expect)?),
            None => ops.push(Op::delete(path, expect)),
        }
        ops.extend(schedule_ops(old.map(|o| &o.record), new));
        // A multi-Region primary's new materials and rotation settings reach its replicas in
        // this same batch.
        let sync = self.replica_sync_ops(old, new, &extra).await;
        ops.extend(extra);
        ops.extend(sync?);
        // Batches may write other key records too (the members of a multi-Region key).
        let written: Vec<String> = ops
            .iter()
            .map(Op::key)
            .filter(|k| *k != path && crate::multi_region::is_key_record_path(k))
            .map(str::to_owned)
            .collect();
        let result = self.store.batch(ops).await;
        self.cache.invalidate_key(path);
        for p in &written {
            self.cache.invalidate_key(p);
        }
        result
    }

    /// Applies `change` to the key and writes the result, re-reading and re-applying when a
    /// concurrent write got there first. `change` must do its state checks itself, since the
    /// state may differ on a retry.
    pub(crate) async fn update_key<T>(
        &self,
        first: Arc<LoadedKey>,
        mut change: impl FnMut(&LoadedKey) -> Result<Change<T>, AwsError>,
    ) -> Result<T, AwsError> {
        let path = first.record.path();
        let arn = first.record.arn();
        let mut current = first;
        for _ in 0..MAX_ATTEMPTS {
            let Change { record, extra, out } = change(&current)?;
            if record == current.record && extra.is_empty() {
                // Nothing to write (enabling an enabled key, …).
                return Ok(out);
            }
            match self
                .commit(&path, Some(&current), Some(&record), extra)
                .await
            {
                Ok(()) => return Ok(out),
                Err(StoreError::Conflict { .. }) => {
                    current = match self.load_key(&path).await.map_err(kms_err)? {
                        Some(k) => Arc::new(k),
                        None => return Err(errors::key_does_not_exist(&arn)),
                    };
                }
                Err(e) => return Err(errors::store(e)),
            }
        }
        tracing::warn!(key = %arn, "giving up on a key update after repeated write conflicts");
        Err(errors::internal())
    }
}

/// The key's policy, parsed once per load (the cache keeps it). A stored policy that does not
/// parse is logged and yields `None`: then no one is allowed anything on the key.
pub(crate) fn parse_key_policy(record: &KeyRecord) -> Option<Arc<Policy>> {
    match Policy::parse(&record.policy, PolicyKind::KeyPolicy) {
        Ok(p) => Some(Arc::new(p)),
        Err(e) => {
            tracing::error!(key = %record.arn(), error = %e, "the stored key policy does not parse; the key allows nothing");
            None
        }
    }
}

/// Maps the crate's internal errors to what a caller sees (details go to the log).
pub(crate) fn kms_err(e: KmsError) -> AwsError {
    match e {
        KmsError::Store(s) => errors::store(s),
        KmsError::Crypto(c) => errors::crypto(&c),
        KmsError::Corrupt { key, reason } => {
            tracing::error!(%key, %reason, "corrupt KMS record");
            errors::internal()
        }
    }
}
