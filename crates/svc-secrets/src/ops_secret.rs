//! CreateSecret, DescribeSecret, UpdateSecret, DeleteSecret, RestoreSecret, ListSecrets,
//! TagResource and UntagResource.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use citadel_api::{AwsError, OperationOutput, RequestContext};
use citadel_model::secretsmanager as sm;
use citadel_model::{SensitiveBlob, SensitiveString, Timestamp};
use citadel_store::{Expect, Op};
use zeroize::Zeroizing;

use crate::authz::{Conditions, Target};
use crate::clock::MILLIS_PER_DAY;
use crate::envelope::{Plain, Sealed, key_spec};
use crate::names::{self, parse_secret_id};
use crate::record::{
    self, AWSCURRENT, RotationState, SecretRecord, TagRecord, ValueRecord, VersionMeta,
};
use crate::replication::{ReplicaSync, SealCache, refuse_replica, requested_replicas, status_out};
use crate::repo::{Change, value_deletes};
use crate::{Empty, Inner, errors, json_output};

/// Tags per secret (AWS's quota).
const MAX_TAGS: usize = 50;

/// The value a request carries, if any; both members at once is AWS's error.
pub(crate) fn plain_from(
    string: Option<SensitiveString>,
    binary: Option<SensitiveBlob>,
) -> Result<Option<Plain>, AwsError> {
    match (string, binary) {
        (Some(_), Some(_)) => Err(errors::invalid_parameter(
            "You can't specify both a binary secret value and a string secret value in the same secret.",
        )),
        (Some(s), None) => {
            let text = s.into_zeroizing();
            Ok(Some(Plain {
                binary: false,
                bytes: Zeroizing::new(text.as_bytes().to_vec()),
            }))
        }
        (None, Some(b)) => Ok(Some(Plain {
            binary: true,
            bytes: b.into_zeroizing(),
        })),
        (None, None) => Ok(None),
    }
}

/// The token SDKs fill in by themselves; raw callers must send it.
pub(crate) fn require_token(token: Option<String>) -> Result<String, AwsError> {
    token.ok_or_else(|| {
        errors::invalid_request(
            "You must provide a ClientRequestToken value. We recommend a UUID-type value.",
        )
    })
}

pub(crate) fn ensure_live(record: &SecretRecord) -> Result<(), AwsError> {
    if record.is_deleted() {
        Err(errors::marked_for_deletion())
    } else {
        Ok(())
    }
}

/// The metadata of a new version holding `sealed`.
pub(crate) fn new_version(now_ms: i64, sealed: &Sealed, stages: Vec<String>) -> VersionMeta {
    VersionMeta {
        stages,
        created_ms: now_ms,
        last_accessed_ms: None,
        kms_key_ids: vec![sealed.key_marker.clone()],
        has_value: true,
        fingerprint: Some(sealed.fingerprint_hex.clone()),
        salt: Some(sealed.salt_hex.clone()),
    }
}

/// The write of a new version's value record (write-once).
pub(crate) fn value_put(
    record: &SecretRecord,
    version_id: &str,
    value: &ValueRecord,
    expect: Expect,
) -> Result<Op, AwsError> {
    citadel_store::put_json_op(
        record::value_path(&record.account, &record.region, &record.uid, version_id),
        value,
        expect,
    )
    .map_err(errors::store)
}

fn ts(ms: i64) -> Timestamp {
    Timestamp::from_epoch_millis(ms)
}

fn tags_out(record: &SecretRecord) -> Option<Vec<sm::Tag>> {
    (!record.tags.is_empty()).then(|| {
        record
            .tags
            .iter()
            .map(|t| sm::Tag {
                key: Some(t.key.clone()),
                value: Some(t.value.clone()),
            })
            .collect()
    })
}

pub(crate) fn version_ids_to_stages(
    record: &SecretRecord,
) -> Option<BTreeMap<String, Vec<String>>> {
    let map: BTreeMap<String, Vec<String>> = record
        .versions
        .iter()
        .filter(|(_, v)| !v.stages.is_empty())
        .map(|(id, v)| (id.clone(), v.stages.clone()))
        .collect();
    (!map.is_empty()).then_some(map)
}

fn rules_out(record: &SecretRecord) -> Option<sm::RotationRulesType> {
    record
        .rotation
        .rules
        .as_ref()
        .map(|r| sm::RotationRulesType {
            automatically_after_days: r.automatically_after_days,
            duration: r.duration.clone(),
            schedule_expression: r.schedule_expression.clone(),
        })
}

/// DescribeSecret's answer for `record`.
pub(crate) fn describe(record: &SecretRecord) -> sm::DescribeSecretResponse {
    let rot = &record.rotation;
    sm::DescribeSecretResponse {
        arn: Some(record.arn()),
        name: Some(record.name.clone()),
        type_: record.secret_type.clone(),
        description: record.description.clone(),
        kms_key_id: record.kms_key_id.clone(),
        rotation_enabled: rot.configured.then_some(rot.enabled),
        rotation_lambda_arn: rot.lambda_arn.clone(),
        rotation_rules: rules_out(record),
        last_rotated_date: rot.last_rotated_ms.map(ts),
        last_changed_date: Some(ts(record.last_changed_ms)),
        last_accessed_date: record.last_accessed_ms.map(ts),
        deleted_date: record.deleted_ms.map(ts),
        next_rotation_date: if rot.enabled {
            rot.next_ms.map(ts)
        } else {
            None
        },
        tags: tags_out(record),
        version_ids_to_stages: version_ids_to_stages(record),
        created_date: Some(ts(record.created_ms)),
        primary_region: record.shown_primary_region().map(str::to_owned),
        replication_status: status_out(record, &std::collections::HashMap::new()),
        ..sm::DescribeSecretResponse::default()
    }
}

fn list_entry(record: &SecretRecord) -> sm::SecretListEntry {
    let d = describe(record);
    sm::SecretListEntry {
        arn: d.arn,
        name: d.name,
        type_: d.type_,
        description: d.description,
        kms_key_id: d.kms_key_id,
        rotation_enabled: d.rotation_enabled,
        rotation_lambda_arn: d.rotation_lambda_arn,
        rotation_rules: d.rotation_rules,
        last_rotated_date: d.last_rotated_date,
        last_changed_date: d.last_changed_date,
        last_accessed_date: d.last_accessed_date,
        deleted_date: d.deleted_date,
        next_rotation_date: d.next_rotation_date,
        tags: d.tags,
        secret_versions_to_stages: d.version_ids_to_stages,
        created_date: d.created_date,
        primary_region: d.primary_region,
        ..sm::SecretListEntry::default()
    }
}

/// An opaque page token: the offset into the sorted result, base64-encoded.
pub(crate) fn encode_token(offset: usize) -> String {
    B64.encode(format!("citadel-page:{offset}"))
}

pub(crate) fn decode_token(token: Option<&str>) -> Result<usize, AwsError> {
    let Some(token) = token else { return Ok(0) };
    let bytes = B64
        .decode(token)
        .map_err(|_| errors::invalid_next_token())?;
    let text = String::from_utf8(bytes).map_err(|_| errors::invalid_next_token())?;
    text.strip_prefix("citadel-page:")
        .and_then(|n| n.parse().ok())
        .ok_or_else(errors::invalid_next_token)
}

/// Whether `record` passes one ListSecrets filter. Values are OR-ed, `!value` negates.
pub(crate) fn matches_filter(record: &SecretRecord, key: &str, values: &[String]) -> bool {
    let test = |value: &str| -> bool {
        match key {
            "name" => record.name.starts_with(value),
            "description" => record
                .description
                .as_deref()
                .is_some_and(|d| d.to_lowercase().starts_with(&value.to_lowercase())),
            "tag-key" => record.tags.iter().any(|t| t.key.starts_with(value)),
            "tag-value" => record.tags.iter().any(|t| t.value.starts_with(value)),
            "all" => {
                let mut attrs: Vec<String> = vec![record.name.to_lowercase()];
                attrs.extend(record.description.iter().map(|d| d.to_lowercase()));
                for t in &record.tags {
                    attrs.push(t.key.to_lowercase());
                    attrs.push(t.value.to_lowercase());
                }
                let words: Vec<String> = attrs
                    .iter()
                    .flat_map(|a| {
                        a.split(|c: char| !c.is_alphanumeric())
                            .filter(|w| !w.is_empty())
                            .map(str::to_owned)
                            .collect::<Vec<_>>()
                    })
                    .chain(attrs.iter().cloned())
                    .collect();
                value
                    .to_lowercase()
                    .split_whitespace()
                    .all(|w| words.iter().any(|a| a.starts_with(w)))
            }
            "primary-region" => record
                .shown_primary_region()
                .is_some_and(|p| p.starts_with(value)),
            // No secrets managed by other services exist: owning-service matches nothing.
            _ => false,
        }
    };
    let (negative, positive): (Vec<&String>, Vec<&String>) =
        values.iter().partition(|v| v.starts_with('!'));
    let positive_ok = positive.is_empty() || positive.iter().any(|v| test(v));
    let negative_ok = !negative
        .iter()
        .any(|v| test(v.strip_prefix('!').unwrap_or(v)));
    positive_ok && negative_ok
}

/// The filters of ListSecrets and BatchGetSecretValue, checked.
pub(crate) fn checked_filters(
    filters: Option<Vec<sm::Filter>>,
) -> Result<Vec<(String, Vec<String>)>, AwsError> {
    let mut out = Vec::new();
    for f in filters.unwrap_or_default() {
        let (Some(key), Some(values)) = (f.key, f.values) else {
            return Err(errors::invalid_parameter(
                "Invalid filter: each filter must have a Key and Values.",
            ));
        };
        out.push((key, values));
    }
    Ok(out)
}

impl Inner {
    pub(crate) async fn create_secret(
        &self,
        ctx: &RequestContext,
        req: sm::CreateSecretRequest,
    ) -> Result<OperationOutput, AwsError> {
        let name = req.name.unwrap_or_default();
        if !names::is_valid_name(&name) {
            return Err(errors::invalid_name());
        }
        let plain = plain_from(req.secret_string, req.secret_binary)?;
        let token = require_token(req.client_request_token)?;
        let replicas = requested_replicas(&ctx.region, req.add_replica_regions)?;
        let force = req.force_overwrite_replica_secret.unwrap_or(false);
        let kms_key_id = req.kms_key_id.filter(|k| !k.is_empty());
        let tags: Vec<TagRecord> = req
            .tags
            .unwrap_or_default()
            .into_iter()
            .map(|t| TagRecord {
                key: t.key.unwrap_or_default(),
                value: t.value.unwrap_or_default(),
            })
            .collect();
        if tags.len() > MAX_TAGS {
            return Err(errors::limit_exceeded(
                "The request failed because it would exceed one of the Secrets Manager quotas.",
            ));
        }
        let conditions = || {
            Conditions::new()
                .set("secretsmanager:Name", name.clone())
                .set_opt("secretsmanager:Description", req.description.as_deref())
                .set_opt("secretsmanager:KmsKeyId", kms_key_id.as_deref())
                .request_tags(tags.iter().map(|t| (t.key.as_str(), t.value.as_str())))
        };
        let path = record::secret_path(&ctx.principal.account_id, &ctx.region, &name);
        if let Some(existing) = self.load(&path).await.map_err(errors::store)? {
            self.authorize(
                ctx,
                "secretsmanager:CreateSecret",
                Target::Secret(&existing.record),
                conditions(),
            )
            .await?;
            return self.create_existing(&existing.record, &name, &token, plain.as_ref());
        }
        let suffix = names::random_suffix()?;
        let arn = record::secret_arn(&ctx.region, &ctx.principal.account_id, &name, &suffix);
        self.authorize(
            ctx,
            "secretsmanager:CreateSecret",
            Target::Named {
                arn: &arn,
                account: &ctx.principal.account_id,
            },
            conditions(),
        )
        .await?;
        if !replicas.is_empty() {
            self.authorize(
                ctx,
                "secretsmanager:ReplicateSecretToRegions",
                Target::Named {
                    arn: &arn,
                    account: &ctx.principal.account_id,
                },
                Conditions::new(),
            )
            .await?;
        }
        let now = self.now_ms();
        let mut rec = SecretRecord {
            uid: uuid::Uuid::new_v4().to_string(),
            account: ctx.principal.account_id.clone(),
            region: ctx.region.clone(),
            name: name.clone(),
            suffix,
            description: req.description.clone(),
            kms_key_id: kms_key_id.clone(),
            tags,
            secret_type: req.type_.filter(|t| !t.is_empty()),
            created_ms: now,
            last_changed_ms: now,
            last_accessed_ms: None,
            deleted_ms: None,
            purge_ms: None,
            policy: None,
            versions: BTreeMap::new(),
            rotation: RotationState::default(),
            primary_region: None,
            replicas,
        };
        let mut extra = Vec::new();
        match &plain {
            Some(plain) => {
                let sealed = self.seal(ctx, key_spec(&rec), &arn, &token, plain).await?;
                rec.versions.insert(
                    token.clone(),
                    new_version(now, &sealed, vec![AWSCURRENT.to_owned()]),
                );
                extra.push(value_put(&rec, &token, &sealed.record, Expect::Absent)?);
            }
            None => {
                if let Some(key) = &kms_key_id {
                    self.keys
                        .describe_key(&ctx.via("secretsmanager"), key)
                        .await
                        .map_err(|e| errors::from_kms(e, true))?;
                }
            }
        }
        let sync = ReplicaSync {
            ctx: Some(ctx),
            fresh: plain
                .as_ref()
                .map(|p| vec![(token.clone(), p)])
                .unwrap_or_default(),
            force: if force {
                rec.replicas.iter().map(|r| r.region.clone()).collect()
            } else {
                Vec::new()
            },
        };
        extra.extend(
            self.replica_ops(&sync, None, Some(&mut rec), &mut SealCache::default())
                .await?,
        );
        match self.commit(&path, None, Some(&rec), extra).await {
            Ok(()) => {}
            Err(citadel_store::StoreError::Conflict { .. }) => {
                // Created concurrently under the same name.
                return Err(errors::exists(format!(
                    "The operation failed because the secret {name} already exists."
                )));
            }
            Err(e) => return Err(errors::store(e)),
        }
        json_output(&sm::CreateSecretResponse {
            arn: Some(arn),
            name: Some(name),
            version_id: plain.is_some().then_some(token),
            replication_status: status_out(&rec, &std::collections::HashMap::new()),
        })
    }

    /// CreateSecret for a name that is taken: an idempotent retry (same token, same value)
    /// answers like the first call; anything else is AWS's error.
    fn create_existing(
        &self,
        existing: &SecretRecord,
        name: &str,
        token: &str,
        plain: Option<&Plain>,
    ) -> Result<OperationOutput, AwsError> {
        if existing.is_deleted() {
            return Err(errors::invalid_request(
                "You can't create this secret because a secret with this name is already scheduled for deletion.",
            ));
        }
        if let (Some(plain), Some(v)) = (plain, existing.versions.get(token))
            && let (Some(salt), Some(fp)) = (&v.salt, &v.fingerprint)
            && plain.matches(salt, fp)
        {
            return json_output(&sm::CreateSecretResponse {
                arn: Some(existing.arn()),
                name: Some(existing.name.clone()),
                version_id: Some(token.to_owned()),
                replication_status: status_out(existing, &std::collections::HashMap::new()),
            });
        }
        Err(errors::exists(format!(
            "The operation failed because the secret {name} already exists."
        )))
    }

    pub(crate) async fn describe_secret(
        &self,
        ctx: &RequestContext,
        req: sm::DescribeSecretRequest,
    ) -> Result<OperationOutput, AwsError> {
        let secret_id = req.secret_id.unwrap_or_default();
        let found = self
            .find(ctx, &secret_id, "secretsmanager:DescribeSecret")
            .await?;
        self.authorize(
            ctx,
            "secretsmanager:DescribeSecret",
            Target::Secret(&found.record),
            Conditions::new(),
        )
        .await?;
        let mut described = describe(&found.record);
        if !found.record.replicas.is_empty() {
            let access = self.replica_access(&found.record).await?;
            described.replication_status = status_out(&found.record, &access);
        }
        let mut out = serde_json::to_value(described).map_err(|e| {
            tracing::error!(error = %e, "serializing DescribeSecret failed");
            errors::internal()
        })?;
        if let (Some(f), Some(obj)) = (&found.record.rotation.last_failure, out.as_object_mut()) {
            obj.insert(
                "CitadelLastRotationFailure".to_owned(),
                serde_json::json!({
                    "Date": Timestamp::from_epoch_millis(f.at_ms),
                    "VersionId": f.token,
                    "Step": f.step,
                    "Message": f.message,
                }),
            );
        }
        Ok(OperationOutput::Json(out))
    }

    pub(crate) async fn update_secret(
        &self,
        ctx: &RequestContext,
        req: sm::UpdateSecretRequest,
    ) -> Result<OperationOutput, AwsError> {
        let secret_id = req.secret_id.unwrap_or_default();
        let plain = plain_from(req.secret_string, req.secret_binary)?;
        let token = require_token(req.client_request_token)?;
        let found = self
            .find(ctx, &secret_id, "secretsmanager:UpdateSecret")
            .await?;
        let new_key = req.kms_key_id.clone();
        self.authorize(
            ctx,
            "secretsmanager:UpdateSecret",
            Target::Secret(&found.record),
            Conditions::new()
                .set_opt("secretsmanager:Description", req.description.as_deref())
                .set_opt("secretsmanager:KmsKeyId", new_key.as_deref()),
        )
        .await?;
        refuse_replica(&found.record)?;
        ensure_live(&found.record)?;
        if plain.is_some() && found.record.versions.contains_key(&token) {
            return Err(errors::exists(errors::MODIFY_EXISTING_VERSION));
        }
        let arn = found.record.arn();
        let name = found.record.name.clone();
        // The key the secret uses from now on.
        let target_key: Option<String> = match &new_key {
            None => found.record.kms_key_id.clone(),
            Some(k) if k.is_empty() => None,
            Some(k) => Some(k.clone()),
        };
        let key_changed = target_key != found.record.kms_key_id;
        let spec = target_key
            .clone()
            .unwrap_or_else(|| record::DEFAULT_KEY_ALIAS.to_owned());
        let sealed_new = match &plain {
            Some(p) => Some(self.seal(ctx, &spec, &arn, &token, p).await?),
            None => None,
        };
        // Changing the key re-encrypts the labelled versions AWS re-encrypts (AWSCURRENT,
        // AWSPENDING, AWSPREVIOUS) under the new key.
        let mut reencrypted: Vec<(String, Sealed)> = Vec::new();
        if key_changed {
            if plain.is_none() && target_key.is_some() {
                self.keys
                    .describe_key(&ctx.via("secretsmanager"), &spec)
                    .await
                    .map_err(|e| errors::from_kms(e, true))?;
            }
            for stage in [record::AWSCURRENT, record::AWSPENDING, record::AWSPREVIOUS] {
                let Some(vid) = found.record.version_with(stage) else {
                    continue;
                };
                let has_value = found.record.versions.get(vid).is_some_and(|v| v.has_value);
                if !has_value || reencrypted.iter().any(|(id, _)| id == vid) {
                    continue;
                }
                let value = self.read_value(ctx, &found.record, vid).await?;
                let sealed = self.seal(ctx, &spec, &arn, vid, &value).await?;
                reencrypted.push((vid.to_owned(), sealed));
            }
        }
        let now = self.now_ms();
        let description = req.description.clone();
        let type_ = req.type_.clone();
        let out_version = sealed_new.as_ref().map(|_| token.clone());
        let sync = ReplicaSync {
            fresh: plain
                .as_ref()
                .filter(|_| sealed_new.is_some())
                .map(|p| vec![(token.clone(), p)])
                .unwrap_or_default(),
            ..ReplicaSync::caller(ctx)
        };
        let result = self
            .update_synced(&sync, found, |cur| {
                ensure_live(cur)?;
                let mut rec = cur.clone();
                let mut extra = Vec::new();
                if let Some(d) = &description {
                    rec.description = Some(d.clone());
                }
                if let Some(t) = &type_ {
                    rec.secret_type = (!t.is_empty()).then(|| t.clone());
                }
                rec.kms_key_id = target_key.clone();
                for (vid, sealed) in &reencrypted {
                    if let Some(v) = rec.versions.get_mut(vid) {
                        v.kms_key_ids = vec![sealed.key_marker.clone()];
                        v.salt = Some(sealed.salt_hex.clone());
                        v.fingerprint = Some(sealed.fingerprint_hex.clone());
                        extra.push(value_put(&rec, vid, &sealed.record, Expect::Any)?);
                    }
                }
                if let Some(sealed) = &sealed_new {
                    if rec.versions.contains_key(&token) {
                        return Err(errors::exists(errors::MODIFY_EXISTING_VERSION));
                    }
                    rec.versions
                        .insert(token.clone(), new_version(now, sealed, Vec::new()));
                    rec.attach(&token, &[AWSCURRENT.to_owned()]);
                    extra.push(value_put(&rec, &token, &sealed.record, Expect::Absent)?);
                    for gone in rec.prune(now) {
                        extra.push(Op::delete(
                            record::value_path(&rec.account, &rec.region, &rec.uid, &gone),
                            Expect::Any,
                        ));
                    }
                }
                if rec != *cur {
                    rec.last_changed_ms = now;
                }
                Ok(Change {
                    record: Some(rec),
                    extra,
                    out: (),
                })
            })
            .await;
        result?;
        json_output(&sm::UpdateSecretResponse {
            arn: Some(arn),
            name: Some(name),
            version_id: out_version,
        })
    }

    pub(crate) async fn delete_secret(
        &self,
        ctx: &RequestContext,
        req: sm::DeleteSecretRequest,
    ) -> Result<OperationOutput, AwsError> {
        let secret_id = req.secret_id.unwrap_or_default();
        let force = req.force_delete_without_recovery.unwrap_or(false);
        if let Some(days) = req.recovery_window_in_days {
            if force {
                return Err(errors::invalid_parameter(
                    "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.",
                ));
            }
            if !(7..=30).contains(&days) {
                return Err(errors::invalid_parameter(
                    "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).",
                ));
            }
        }
        let days = req.recovery_window_in_days.unwrap_or(30);
        let found = match self
            .find(ctx, &secret_id, "secretsmanager:DeleteSecret")
            .await
        {
            Ok(f) => f,
            Err(e) if force && e.code == "ResourceNotFoundException" => {
                // AWS does not report a missing secret to a forced delete. `find` authorized
                // the caller on the ARN it named before answering "not found".
                let r = parse_secret_id(&secret_id, &ctx.principal.account_id, &ctx.region)?;
                return json_output(&sm::DeleteSecretResponse {
                    arn: Some(r.arn_for_authz),
                    name: Some(secret_name_of(&secret_id)),
                    deletion_date: Some(Timestamp::from_epoch_millis(self.now_ms())),
                });
            }
            Err(e) => return Err(e),
        };
        self.authorize(
            ctx,
            "secretsmanager:DeleteSecret",
            Target::Secret(&found.record),
            Conditions::new(),
        )
        .await?;
        refuse_replica(&found.record)?;
        still_replicated(&found.record)?;
        let arn = found.record.arn();
        let name = found.record.name.clone();
        let now = self.now_ms();
        let deletion = self
            .update(found, |cur| {
                still_replicated(cur)?;
                if force {
                    let mut extra = value_deletes(cur);
                    extra.shrink_to_fit();
                    return Ok(Change {
                        record: None,
                        extra,
                        out: now,
                    });
                }
                if cur.is_deleted() {
                    return Err(errors::invalid_request(
                        "You tried to perform the operation on a secret that's currently marked deleted.",
                    ));
                }
                let mut rec = cur.clone();
                let purge = now.saturating_add(days.saturating_mul(MILLIS_PER_DAY));
                rec.deleted_ms = Some(now);
                rec.purge_ms = Some(purge);
                Ok(Change::put(rec, purge))
            })
            .await?;
        if force {
            tracing::info!(secret = %arn, "secret deleted without recovery");
        }
        json_output(&sm::DeleteSecretResponse {
            arn: Some(arn),
            name: Some(name),
            deletion_date: Some(Timestamp::from_epoch_millis(deletion)),
        })
    }

    pub(crate) async fn restore_secret(
        &self,
        ctx: &RequestContext,
        req: sm::RestoreSecretRequest,
    ) -> Result<OperationOutput, AwsError> {
        let secret_id = req.secret_id.unwrap_or_default();
        let found = self
            .find(ctx, &secret_id, "secretsmanager:RestoreSecret")
            .await?;
        self.authorize(
            ctx,
            "secretsmanager:RestoreSecret",
            Target::Secret(&found.record),
            Conditions::new(),
        )
        .await?;
        refuse_replica(&found.record)?;
        let arn = found.record.arn();
        let name = found.record.name.clone();
        self.update(found, |cur| {
            let mut rec = cur.clone();
            rec.deleted_ms = None;
            rec.purge_ms = None;
            Ok(Change::put(rec, ()))
        })
        .await?;
        json_output(&sm::RestoreSecretResponse {
            arn: Some(arn),
            name: Some(name),
        })
    }

    pub(crate) async fn list_secrets(
        &self,
        ctx: &RequestContext,
        req: sm::ListSecretsRequest,
    ) -> Result<OperationOutput, AwsError> {
        self.authorize(
            ctx,
            "secretsmanager:ListSecrets",
            Target::Account,
            Conditions::new(),
        )
        .await?;
        let filters = checked_filters(req.filters)?;
        let offset = decode_token(req.next_token.as_deref())?;
        let include_deleted = req.include_planned_deletion.unwrap_or(false);
        let mut records: Vec<SecretRecord> = self
            .list_records(&ctx.principal.account_id, &ctx.region)
            .await?
            .into_iter()
            .filter(|r| include_deleted || !r.is_deleted())
            .filter(|r| filters.iter().all(|(k, v)| matches_filter(r, k, v)))
            .collect();
        sort_records(
            &mut records,
            req.sort_by.as_deref(),
            req.sort_order.as_deref(),
        );
        let max = usize::try_from(req.max_results.unwrap_or(100)).unwrap_or(100);
        if offset > records.len() {
            return Err(errors::invalid_next_token());
        }
        let page: Vec<sm::SecretListEntry> = records
            .iter()
            .skip(offset)
            .take(max)
            .map(list_entry)
            .collect();
        let next = offset + page.len();
        json_output(&sm::ListSecretsResponse {
            secret_list: Some(page),
            next_token: (next < records.len()).then(|| encode_token(next)),
        })
    }

    pub(crate) async fn tag_resource(
        &self,
        ctx: &RequestContext,
        req: sm::TagResourceRequest,
    ) -> Result<OperationOutput, AwsError> {
        let secret_id = req.secret_id.unwrap_or_default();
        let tags: Vec<TagRecord> = req
            .tags
            .unwrap_or_default()
            .into_iter()
            .map(|t| TagRecord {
                key: t.key.unwrap_or_default(),
                value: t.value.unwrap_or_default(),
            })
            .collect();
        let found = self
            .find(ctx, &secret_id, "secretsmanager:TagResource")
            .await?;
        self.authorize(
            ctx,
            "secretsmanager:TagResource",
            Target::Secret(&found.record),
            Conditions::new().request_tags(tags.iter().map(|t| (t.key.as_str(), t.value.as_str()))),
        )
        .await?;
        refuse_replica(&found.record)?;
        ensure_live(&found.record)?;
        self.update(found, |cur| {
            ensure_live(cur)?;
            let mut rec = cur.clone();
            for t in &tags {
                match rec.tags.iter_mut().find(|e| e.key == t.key) {
                    Some(e) => e.value = t.value.clone(),
                    None => rec.tags.push(t.clone()),
                }
            }
            if rec.tags.len() > MAX_TAGS {
                return Err(errors::limit_exceeded(
                    "The request failed because it would exceed one of the Secrets Manager quotas.",
                ));
            }
            Ok(Change::put(rec, ()))
        })
        .await?;
        json_output(&Empty {})
    }

    pub(crate) async fn untag_resource(
        &self,
        ctx: &RequestContext,
        req: sm::UntagResourceRequest,
    ) -> Result<OperationOutput, AwsError> {
        let secret_id = req.secret_id.unwrap_or_default();
        let keys = req.tag_keys.unwrap_or_default();
        let found = self
            .find(ctx, &secret_id, "secretsmanager:UntagResource")
            .await?;
        self.authorize(
            ctx,
            "secretsmanager:UntagResource",
            Target::Secret(&found.record),
            Conditions::new().set_all("aws:TagKeys", keys.clone()),
        )
        .await?;
        refuse_replica(&found.record)?;
        ensure_live(&found.record)?;
        self.update(found, |cur| {
            ensure_live(cur)?;
            let mut rec = cur.clone();
            rec.tags.retain(|t| !keys.contains(&t.key));
            Ok(Change::put(rec, ()))
        })
        .await?;
        json_output(&Empty {})
    }
}

/// A primary with replicas cannot be deleted: AWS wants them removed first.
fn still_replicated(record: &SecretRecord) -> Result<(), AwsError> {
    if record.replicas.is_empty() {
        return Ok(());
    }
    let regions: Vec<&str> = record.replicas.iter().map(|r| r.region.as_str()).collect();
    // Unconfirmed AWS wording (moto's).
    Err(errors::invalid_parameter(format!(
        "You can't delete secret {} that still has replica regions [{}]",
        record.arn(),
        regions.join(", ")
    )))
}

/// The name part of a SecretId (for answers about secrets that may not exist).
fn secret_name_of(secret_id: &str) -> String {
    match secret_id.strip_prefix("arn:") {
        Some(rest) => rest
            .splitn(6, ':')
            .nth(5)
            .map(|r| match r.rsplit_once('-') {
                Some((name, suffix))
                    if suffix.len() == 6 && suffix.bytes().all(|b| b.is_ascii_alphanumeric()) =>
                {
                    name.to_owned()
                }
                _ => r.to_owned(),
            })
            .unwrap_or_else(|| secret_id.to_owned()),
        None => secret_id.to_owned(),
    }
}

/// ListSecrets' order: by `sort_by` (default created date), ascending unless `desc`; ties by
/// name so pages are stable.
pub(crate) fn sort_records(
    records: &mut [SecretRecord],
    sort_by: Option<&str>,
    order: Option<&str>,
) {
    let by = sort_by.unwrap_or("created-date");
    records.sort_by(|a, b| {
        let primary = match by {
            "name" => a.name.cmp(&b.name),
            "last-accessed-date" => a.last_accessed_ms.cmp(&b.last_accessed_ms),
            "last-changed-date" => a.last_changed_ms.cmp(&b.last_changed_ms),
            _ => a.created_ms.cmp(&b.created_ms),
        };
        primary.then_with(|| a.name.cmp(&b.name))
    });
    if order == Some("desc") {
        records.reverse();
    }
}
