//! CreateAlias, UpdateAlias, DeleteAlias and ListAliases.
//!
//! An alias record and the `aliases` set of the key it points to always change in one batch, each
//! under compare-and-swap, so concurrent alias changes cannot leave a key listing an alias that
//! points elsewhere (which deleting the key relies on).

use std::sync::Arc;

use citadel_api::{AwsError, RequestContext};
use citadel_model::Timestamp;
use citadel_model::kms;
use citadel_store::{Expect, Op, StoreError};

use crate::authz::{RequestConditions, Target};
use crate::cache::LoadedKey;
use crate::names::{self, KeyRef, MAX_ALIASES_PER_KEY, parse_key_ref};
use crate::record::{self, AliasRecord};
use crate::repo::{MAX_ATTEMPTS, key_put_op, kms_err};
use crate::state::{self, KeyOp};
use crate::{Empty, Kms, errors};

fn not_an_alias(target: &str, ctx: &RequestContext) -> Result<(), AwsError> {
    match parse_key_ref(target, &ctx.principal.account_id, &ctx.region) {
        Ok(KeyRef::Alias { .. }) => Err(AwsError::validation(
            "Aliases must refer to keys. Not aliases",
        )),
        _ => Ok(()),
    }
}

fn alias_limit(key: &record::KeyRecord) -> Result<(), AwsError> {
    if key.aliases.len() >= MAX_ALIASES_PER_KEY {
        return Err(errors::limit_exceeded(format!(
            "The KMS key {} already has the maximum of {MAX_ALIASES_PER_KEY} aliases.",
            key.arn()
        )));
    }
    Ok(())
}

impl Kms {
    async fn fresh_key(&self, path: &str) -> Result<Option<Arc<LoadedKey>>, AwsError> {
        Ok(self.load_key(path).await.map_err(kms_err)?.map(Arc::new))
    }

    async fn fresh_alias(
        &self,
        path: &str,
    ) -> Result<Option<citadel_store::Versioned<AliasRecord>>, AwsError> {
        self.store
            .get_json_versioned::<AliasRecord>(path)
            .await
            .map_err(errors::store)
    }

    /// Runs one alias batch and drops every cached entry it touched.
    async fn alias_batch(
        &self,
        ops: Vec<Op>,
        alias_path: &str,
        key_paths: &[String],
    ) -> Result<bool, AwsError> {
        let result = self.store.batch(ops).await;
        self.cache.invalidate_alias(alias_path);
        for p in key_paths {
            self.cache.invalidate_key(p);
        }
        match result {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict { .. }) => Ok(false),
            Err(e) => Err(errors::store(e)),
        }
    }

    pub(crate) async fn create_alias(
        &self,
        ctx: &RequestContext,
        req: kms::CreateAliasRequest,
    ) -> Result<Empty, AwsError> {
        let name = req.alias_name.unwrap_or_default();
        let target = req.target_key_id.unwrap_or_default();
        names::check_alias_name(&name)?;
        not_an_alias(&target, ctx)?;
        let (account, region) = (&ctx.principal.account_id, &ctx.region);
        let alias_arn = record::alias_arn(region, account, &name);
        let alias_path = record::alias_path(account, region, &name);
        let resolved = self.resolve(ctx, &target).await?;
        let key_path = resolved.key.record.path();
        self.authorize(
            ctx,
            "kms:CreateAlias",
            Target::Alias {
                arn: &alias_arn,
                account,
                key: &resolved.key,
            },
            RequestConditions::new(),
        )
        .await?;
        self.authorize(
            ctx,
            "kms:CreateAlias",
            Target::Key(&resolved.key),
            RequestConditions::new(),
        )
        .await?;
        let mut key = resolved.key;
        for _ in 0..MAX_ATTEMPTS {
            if self.fresh_alias(&alias_path).await?.is_some() {
                return Err(AwsError::new(
                    400,
                    "AlreadyExistsException",
                    format!("An alias with the name {alias_arn} already exists"),
                ));
            }
            let rec = &key.record;
            state::check(rec.state, KeyOp::CreateAlias, &rec.arn())?;
            alias_limit(rec)?;
            let mut next = rec.clone();
            next.aliases.insert(name.clone());
            let now = self.now_ms();
            let ops = vec![
                key_put_op(&key, &next).map_err(errors::store)?,
                citadel_store::put_json_op(
                    &alias_path,
                    &AliasRecord {
                        target: rec.id.clone(),
                        created_ms: now,
                        updated_ms: now,
                    },
                    Expect::Absent,
                )
                .map_err(errors::store)?,
            ];
            if self
                .alias_batch(ops, &alias_path, std::slice::from_ref(&key_path))
                .await?
            {
                return Ok(Empty {});
            }
            key = self
                .fresh_key(&key_path)
                .await?
                .ok_or_else(|| errors::key_does_not_exist(&rec.arn()))?;
        }
        Err(errors::internal())
    }

    pub(crate) async fn update_alias(
        &self,
        ctx: &RequestContext,
        req: kms::UpdateAliasRequest,
    ) -> Result<Empty, AwsError> {
        let name = req.alias_name.unwrap_or_default();
        let target = req.target_key_id.unwrap_or_default();
        names::check_alias_name(&name)?;
        not_an_alias(&target, ctx)?;
        let (account, region) = (&ctx.principal.account_id, &ctx.region);
        let alias_arn = record::alias_arn(region, account, &name);
        let alias_path = record::alias_path(account, region, &name);
        let resolved = self.resolve(ctx, &target).await?;
        let new_path = resolved.key.record.path();

        for _ in 0..MAX_ATTEMPTS {
            let alias = self
                .fresh_alias(&alias_path)
                .await?
                .ok_or_else(|| errors::alias_not_found(&alias_arn))?;
            let old_path = record::key_path(account, region, &alias.value.target);
            let new_key = self
                .fresh_key(&new_path)
                .await?
                .ok_or_else(|| errors::key_does_not_exist(&resolved.key.record.arn()))?;
            let old_key = self.fresh_key(&old_path).await?;
            self.authorize(
                ctx,
                "kms:UpdateAlias",
                Target::Alias {
                    arn: &alias_arn,
                    account,
                    key: &new_key,
                },
                RequestConditions::new(),
            )
            .await?;
            if let Some(old) = &old_key {
                self.authorize(
                    ctx,
                    "kms:UpdateAlias",
                    Target::Key(old),
                    RequestConditions::new(),
                )
                .await?;
            }
            self.authorize(
                ctx,
                "kms:UpdateAlias",
                Target::Key(&new_key),
                RequestConditions::new(),
            )
            .await?;
            let nrec = &new_key.record;
            state::check(nrec.state, KeyOp::UpdateAlias, &nrec.arn())?;
            if alias.value.target == nrec.id {
                return Ok(Empty {});
            }
            alias_limit(nrec)?;
            let mut ops = vec![
                citadel_store::put_json_op(
                    &alias_path,
                    &AliasRecord {
                        target: nrec.id.clone(),
                        created_ms: alias.value.created_ms,
                        updated_ms: self.now_ms(),
                    },
                    Expect::Version(alias.version),
                )
                .map_err(errors::store)?,
            ];
            let mut next = nrec.clone();
            next.aliases.insert(name.clone());
            ops.push(key_put_op(&new_key, &next).map_err(errors::store)?);
            if let Some(old) = &old_key {
                let mut prev = old.record.clone();
                prev.aliases.remove(&name);
                ops.push(key_put_op(old, &prev).map_err(errors::store)?);
            }
            if self
                .alias_batch(ops, &alias_path, &[old_path, new_path.clone()])
                .await?
            {
                return Ok(Empty {});
            }
        }
        Err(errors::internal())
    }

    pub(crate) async fn delete_alias(
        &self,
        ctx: &RequestContext,
        req: kms::DeleteAliasRequest,
    ) -> Result<Empty, AwsError> {
        let name = req.alias_name.unwrap_or_default();
        names::check_alias_name(&name)?;
        let (account, region) = (&ctx.principal.account_id, &ctx.region);
        let alias_arn = record::alias_arn(region, account, &name);
        let alias_path = record::alias_path(account, region, &name);
        for _ in 0..MAX_ATTEMPTS {
            let alias = self
                .fresh_alias(&alias_path)
                .await?
                .ok_or_else(|| errors::alias_not_found(&alias_arn))?;
            let key_path = record::key_path(account, region, &alias.value.target);
            let key = self.fresh_key(&key_path).await?;
            let mut ops = vec![Op::delete(&alias_path, Expect::Version(alias.version))];
            if let Some(k) = &key {
                self.authorize(
                    ctx,
                    "kms:DeleteAlias",
                    Target::Alias {
                        arn: &alias_arn,
                        account,
                        key: k,
                    },
                    RequestConditions::new(),
                )
                .await?;
                self.authorize(
                    ctx,
                    "kms:DeleteAlias",
                    Target::Key(k),
                    RequestConditions::new(),
                )
                .await?;
                state::check(k.record.state, KeyOp::DeleteAlias, &k.record.arn())?;
                let mut next = k.record.clone();
                next.aliases.remove(&name);
                ops.push(key_put_op(k, &next).map_err(errors::store)?);
            }
            if self
                .alias_batch(ops, &alias_path, std::slice::from_ref(&key_path))
                .await?
            {
                return Ok(Empty {});
            }
        }
        Err(errors::internal())
    }

    pub(crate) async fn list_aliases(
        &self,
        ctx: &RequestContext,
        req: kms::ListAliasesRequest,
    ) -> Result<kms::ListAliasesResponse, AwsError> {
        self.authorize(
            ctx,
            "kms:ListAliases",
            Target::Account,
            RequestConditions::new(),
        )
        .await?;
        let (account, region) = (&ctx.principal.account_id, &ctx.region);
        let limit = usize::try_from(req.limit.unwrap_or(50)).unwrap_or(50);
        let prefix = record::aliases_prefix(account, region);
        let entry = |name: &str, a: &AliasRecord| kms::AliasListEntry {
            alias_name: Some(name.to_owned()),
            alias_arn: Some(record::alias_arn(region, account, name)),
            target_key_id: Some(a.target.clone()),
            creation_date: Some(Timestamp::from_epoch_millis(a.created_ms)),
            last_updated_date: Some(Timestamp::from_epoch_millis(a.updated_ms)),
        };
        let (aliases, next) = match &req.key_id {
            Some(key_id) => {
                let r = self.resolve(ctx, key_id).await?;
                let rec = &r.key.record;
                if rec.account != *account {
                    return Err(errors::key_does_not_exist(&rec.arn()));
                }
                let names: Vec<String> = rec.aliases.iter().cloned().collect();
                let (page, next) =
                    crate::keys::page(&names, limit, req.marker.as_deref(), String::as_str);
                let mut out = Vec::with_capacity(page.len());
                for name in &page {
                    if let Some(a) = self
                        .alias_at(&record::alias_path(account, region, name))
                        .await?
                    {
                        out.push(entry(name, &a.record));
                    }
                }
                (out, next)
            }
            None => {
                let after = req.marker.as_ref().map(|m| format!("{prefix}{m}"));
                let rows = self
                    .store
                    .list(&prefix, after.as_deref(), limit.saturating_add(1))
                    .await
                    .map_err(errors::store)?;
                let truncated = rows.len() > limit;
                let mut out = Vec::with_capacity(limit.min(rows.len()));
                for (path, rec) in rows.iter().take(limit) {
                    let name = path.strip_prefix(&prefix).unwrap_or_default();
                    let a: AliasRecord = serde_json::from_slice(&rec.value).map_err(|_| {
                        tracing::error!(key = %path, "unreadable KMS alias record");
                        errors::internal()
                    })?;
                    out.push(entry(name, &a));
                }
                let next = if truncated {
                    out.last().and_then(|e| e.alias_name.clone())
                } else {
                    None
                };
                (out, next)
            }
        };
        Ok(kms::ListAliasesResponse {
            aliases: Some(aliases),
            truncated: Some(next.is_some()),
            next_marker: next,
        })
    }
}
