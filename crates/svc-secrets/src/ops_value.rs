//! GetSecretValue, PutSecretValue, BatchGetSecretValue, UpdateSecretVersionStage,
//! ListSecretVersionIds and GetRandomPassword.

use citadel_api::{AwsError, OperationOutput, RequestContext};
use citadel_model::secretsmanager as sm;
use citadel_model::{SensitiveBlob, SensitiveString, Timestamp};
use citadel_store::{Expect, Op};

use crate::authz::{Conditions, Target};
use crate::clock::day_start;
use crate::envelope::{Plain, key_spec};
use crate::ops_secret::{
    checked_filters, decode_token, encode_token, ensure_live, matches_filter, new_version,
    plain_from, require_token, sort_records, value_put,
};
use crate::password;
use crate::record::{self, AWSCURRENT, SecretRecord};
use crate::replication::{ReplicaSync, refuse_replica};
use crate::repo::{Change, Loaded};
use crate::{Inner, errors, json_output};

/// Labels one version may carry (AWS's quota).
const MAX_LABELS_PER_VERSION: usize = 20;

/// Refuses callers of another account when the secret uses the default key, which AWS does not
/// let other accounts use.
fn cross_account_default_key(ctx: &RequestContext, record: &SecretRecord) -> Result<(), AwsError> {
    if record.account != ctx.principal.account_id && record.kms_key_id.is_none() {
        return Err(errors::invalid_request(
            "You can't access a secret from a different AWS account if you encrypt the secret with the default KMS service key.",
        ));
    }
    Ok(())
}

fn response_value(
    plain: Plain,
) -> Result<(Option<SensitiveString>, Option<SensitiveBlob>), AwsError> {
    if plain.binary {
        return Ok((None, Some(SensitiveBlob::from(plain.bytes))));
    }
    let text = String::from_utf8(plain.bytes.to_vec()).map_err(|_| {
        tracing::error!("a stored SecretString is not UTF-8");
        errors::internal()
    })?;
    Ok((Some(SensitiveString::new(text)), None))
}

impl Inner {
    /// GetSecretValue without the envelope: BatchGetSecretValue reuses it per secret, and so
    /// do the built-in rotators.
    pub(crate) async fn get_value(
        &self,
        ctx: &RequestContext,
        secret_id: &str,
        version_id: Option<&str>,
        version_stage: Option<&str>,
    ) -> Result<sm::GetSecretValueResponse, AwsError> {
        let found = self
            .find(ctx, secret_id, "secretsmanager:GetSecretValue")
            .await?;
        self.authorize(
            ctx,
            "secretsmanager:GetSecretValue",
            Target::Secret(&found.record),
            Conditions::new()
                .set_opt("secretsmanager:VersionId", version_id)
                .set_opt("secretsmanager:VersionStage", version_stage),
        )
        .await?;
        ensure_live(&found.record)?;
        cross_account_default_key(ctx, &found.record)?;
        let rec = &found.record;
        let vid: String = match (version_id, version_stage) {
            (Some(vid), stage) => {
                let v = rec
                    .versions
                    .get(vid)
                    .ok_or_else(|| errors::no_value_for_version(vid))?;
                if let Some(stage) = stage
                    && !v.stages.iter().any(|s| s == stage)
                {
                    return Err(errors::invalid_request(
                        "You provided a VersionStage that is not associated to the provided VersionId.",
                    ));
                }
                if !v.has_value {
                    return Err(errors::no_value_for_version(vid));
                }
                vid.to_owned()
            }
            (None, stage) => {
                let stage = stage.unwrap_or(AWSCURRENT);
                let vid = rec
                    .version_with(stage)
                    .ok_or_else(|| errors::no_value_for_stage(stage))?;
                if !rec.versions.get(vid).is_some_and(|v| v.has_value) {
                    return Err(errors::no_value_for_stage(stage));
                }
                vid.to_owned()
            }
        };
        let plain = self.read_value(ctx, rec, &vid).await?;
        let meta = rec.versions.get(&vid).cloned();
        let (secret_string, secret_binary) = response_value(plain)?;
        let out = sm::GetSecretValueResponse {
            arn: Some(rec.arn()),
            name: Some(rec.name.clone()),
            version_id: Some(vid.clone()),
            secret_binary,
            secret_string,
            version_stages: meta.as_ref().map(|m| m.stages.clone()),
            created_date: meta
                .as_ref()
                .map(|m| Timestamp::from_epoch_millis(m.created_ms)),
        };
        self.touch(found, &vid).await;
        Ok(out)
    }

    /// Records today as the last access of the secret and the version, once a day at most.
    /// Best effort: a failure is logged, the read still succeeds.
    async fn touch(&self, found: Loaded, version_id: &str) {
        let today = day_start(self.now_ms());
        let fresh = |r: &SecretRecord| {
            r.last_accessed_ms == Some(today)
                && r.versions
                    .get(version_id)
                    .is_none_or(|v| v.last_accessed_ms == Some(today))
        };
        if fresh(&found.record) {
            return;
        }
        let result = self
            .update(found, |cur| {
                let mut rec = cur.clone();
                if fresh(cur) {
                    return Ok(Change::put(rec, ()));
                }
                rec.last_accessed_ms = Some(today);
                if let Some(v) = rec.versions.get_mut(version_id) {
                    v.last_accessed_ms = Some(today);
                }
                Ok(Change::put(rec, ()))
            })
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "recording a secret's last access failed");
        }
    }

    pub(crate) async fn get_secret_value(
        &self,
        ctx: &RequestContext,
        req: sm::GetSecretValueRequest,
    ) -> Result<OperationOutput, AwsError> {
        let secret_id = req.secret_id.unwrap_or_default();
        let out = self
            .get_value(
                ctx,
                &secret_id,
                req.version_id.as_deref(),
                req.version_stage.as_deref(),
            )
            .await?;
        json_output(&out)
    }

    pub(crate) async fn put_secret_value(
        &self,
        ctx: &RequestContext,
        req: sm::PutSecretValueRequest,
    ) -> Result<OperationOutput, AwsError> {
        let secret_id = req.secret_id.unwrap_or_default();
        let plain = plain_from(req.secret_string, req.secret_binary)?.ok_or_else(|| {
            errors::invalid_request("You must provide either SecretString or SecretBinary.")
        })?;
        let token = require_token(req.client_request_token)?;
        let stages = req
            .version_stages
            .unwrap_or_else(|| vec![AWSCURRENT.to_owned()]);
        if stages.len() > MAX_LABELS_PER_VERSION {
            return Err(errors::limit_exceeded(
                "The request failed because it would exceed one of the Secrets Manager quotas.",
            ));
        }
        let found = self
            .find(ctx, &secret_id, "secretsmanager:PutSecretValue")
            .await?;
        self.authorize(
            ctx,
            "secretsmanager:PutSecretValue",
            Target::Secret(&found.record),
            Conditions::new(),
        )
        .await?;
        refuse_replica(&found.record)?;
        ensure_live(&found.record)?;
        cross_account_default_key(ctx, &found.record)?;
        let arn = found.record.arn();
        let name = found.record.name.clone();
        // An idempotent retry: same token, same value — nothing to do.
        if let Some(v) = found.record.versions.get(&token)
            && v.has_value
        {
            return match (&v.salt, &v.fingerprint) {
                (Some(salt), Some(fp)) if plain.matches(salt, fp) => {
                    json_output(&sm::PutSecretValueResponse {
                        arn: Some(arn),
                        name: Some(name),
                        version_id: Some(token.clone()),
                        version_stages: Some(v.stages.clone()),
                    })
                }
                _ => Err(errors::exists(errors::MODIFY_EXISTING_VERSION)),
            };
        }
        let sealed = self
            .seal(ctx, key_spec(&found.record), &arn, &token, &plain)
            .await?;
        let now = self.now_ms();
        let sync = ReplicaSync {
            fresh: vec![(token.clone(), &plain)],
            ..ReplicaSync::caller(ctx)
        };
        let (out_stages, _) = self
            .update_synced(&sync, found, |cur| {
                ensure_live(cur)?;
                let mut rec = cur.clone();
                let first = !rec.versions.values().any(|v| v.has_value);
                if let Some(v) = rec.versions.get(&token)
                    && v.has_value
                {
                    // Written concurrently with the same token.
                    return match (&v.salt, &v.fingerprint) {
                        (Some(salt), Some(fp)) if plain.matches(salt, fp) => {
                            let stages = v.stages.clone();
                            Ok(Change::put(rec, stages))
                        }
                        _ => Err(errors::exists(errors::MODIFY_EXISTING_VERSION)),
                    };
                }
                match rec.versions.get_mut(&token) {
                    // The AWSPENDING placeholder of a rotation receives its value.
                    Some(v) => {
                        let labels = std::mem::take(&mut v.stages);
                        *v = new_version(now, &sealed, labels);
                    }
                    None => {
                        rec.versions
                            .insert(token.clone(), new_version(now, &sealed, Vec::new()));
                    }
                }
                let mut labels = stages.clone();
                if first && !labels.iter().any(|s| s == AWSCURRENT) {
                    labels.push(AWSCURRENT.to_owned());
                }
                rec.attach(&token, &labels);
                if rec
                    .versions
                    .get(&token)
                    .is_some_and(|v| v.stages.len() > MAX_LABELS_PER_VERSION)
                {
                    return Err(errors::limit_exceeded(
                        "The request failed because it would exceed one of the Secrets Manager quotas.",
                    ));
                }
                rec.last_changed_ms = now;
                let mut extra = vec![value_put(&rec, &token, &sealed.record, Expect::Absent)?];
                for gone in rec.prune(now) {
                    extra.push(Op::delete(
                        record::value_path(&rec.account, &rec.region, &rec.uid, &gone),
                        Expect::Any,
                    ));
                }
                let out = rec
                    .versions
                    .get(&token)
                    .map(|v| v.stages.clone())
                    .unwrap_or_default();
                Ok(Change {
                    record: Some(rec),
                    extra,
                    out,
                })
            })
            .await?;
        json_output(&sm::PutSecretValueResponse {
            arn: Some(arn),
            name: Some(name),
            version_id: Some(token),
            version_stages: Some(out_stages),
        })
    }

    pub(crate) async fn batch_get_secret_value(
        &self,
        ctx: &RequestContext,
        req: sm::BatchGetSecretValueRequest,
    ) -> Result<OperationOutput, AwsError> {
        if req.secret_id_list.is_some() == req.filters.is_some() {
            return Err(errors::invalid_parameter(
                "Either 'SecretIdList' or 'Filters' must be provided, but not both.",
            ));
        }
        if req.max_results.is_some() && req.filters.is_none() {
            return Err(errors::invalid_parameter(
                "'Filters' not specified. 'Filters' must also be specified when 'MaxResults' is provided.",
            ));
        }
        self.authorize(
            ctx,
            "secretsmanager:BatchGetSecretValue",
            Target::Account,
            Conditions::new(),
        )
        .await?;
        let (ids, next_token) = match req.secret_id_list {
            Some(list) => (list, None),
            None => {
                self.authorize(
                    ctx,
                    "secretsmanager:ListSecrets",
                    Target::Account,
                    Conditions::new(),
                )
                .await?;
                let filters = checked_filters(req.filters)?;
                let offset = decode_token(req.next_token.as_deref())?;
                let mut records: Vec<SecretRecord> = self
                    .list_records(&ctx.principal.account_id, &ctx.region)
                    .await?
                    .into_iter()
                    .filter(|r| !r.is_deleted())
                    .filter(|r| filters.iter().all(|(k, v)| matches_filter(r, k, v)))
                    .collect();
                sort_records(&mut records, Some("name"), None);
                if offset > records.len() {
                    return Err(errors::invalid_next_token());
                }
                let max = usize::try_from(req.max_results.unwrap_or(20)).unwrap_or(20);
                let page: Vec<String> = records
                    .iter()
                    .skip(offset)
                    .take(max)
                    .map(SecretRecord::arn)
                    .collect();
                let next = offset + page.len();
                (page, (next < records.len()).then(|| encode_token(next)))
            }
        };
        let mut values = Vec::new();
        let mut failures = Vec::new();
        for id in ids {
            match self.get_value(ctx, &id, None, None).await {
                Ok(v) => values.push(sm::SecretValueEntry {
                    arn: v.arn,
                    name: v.name,
                    version_id: v.version_id,
                    secret_binary: v.secret_binary,
                    secret_string: v.secret_string,
                    version_stages: v.version_stages,
                    created_date: v.created_date,
                }),
                Err(e) if e.is_server_fault() || e.code == "ServiceUnavailableException" => {
                    return Err(e);
                }
                Err(e) => failures.push(sm::APIErrorType {
                    secret_id: Some(id),
                    error_code: Some(e.code.to_string()),
                    message: e.message,
                }),
            }
        }
        json_output(&sm::BatchGetSecretValueResponse {
            secret_values: Some(values),
            next_token,
            errors: Some(failures),
        })
    }

    pub(crate) async fn update_secret_version_stage(
        &self,
        ctx: &RequestContext,
        req: sm::UpdateSecretVersionStageRequest,
    ) -> Result<OperationOutput, AwsError> {
        let secret_id = req.secret_id.unwrap_or_default();
        let stage = req.version_stage.unwrap_or_default();
        let remove_from = req.remove_from_version_id;
        let move_to = req.move_to_version_id;
        let found = self
            .find(ctx, &secret_id, "secretsmanager:UpdateSecretVersionStage")
            .await?;
        self.authorize(
            ctx,
            "secretsmanager:UpdateSecretVersionStage",
            Target::Secret(&found.record),
            Conditions::new().set("secretsmanager:VersionStage", stage.clone()),
        )
        .await?;
        refuse_replica(&found.record)?;
        ensure_live(&found.record)?;
        let arn = found.record.arn();
        let name = found.record.name.clone();
        let now = self.now_ms();
        self.update(found, |cur| {
            ensure_live(cur)?;
            let mut rec = cur.clone();
            apply_stage_move(&mut rec, &stage, remove_from.as_deref(), move_to.as_deref())?;
            if rec != *cur {
                rec.last_changed_ms = now;
            }
            Ok(Change::put(rec, ()))
        })
        .await?;
        json_output(&sm::UpdateSecretVersionStageResponse {
            arn: Some(arn),
            name: Some(name),
        })
    }

    pub(crate) async fn list_secret_version_ids(
        &self,
        ctx: &RequestContext,
        req: sm::ListSecretVersionIdsRequest,
    ) -> Result<OperationOutput, AwsError> {
        let secret_id = req.secret_id.unwrap_or_default();
        let found = self
            .find(ctx, &secret_id, "secretsmanager:ListSecretVersionIds")
            .await?;
        self.authorize(
            ctx,
            "secretsmanager:ListSecretVersionIds",
            Target::Secret(&found.record),
            Conditions::new(),
        )
        .await?;
        ensure_live(&found.record)?;
        let include_deprecated = req.include_deprecated.unwrap_or(false);
        let rec = &found.record;
        let mut versions: Vec<(&String, &record::VersionMeta)> = rec
            .versions
            .iter()
            .filter(|(_, v)| include_deprecated || !v.stages.is_empty())
            .collect();
        versions.sort_by(|a, b| b.1.created_ms.cmp(&a.1.created_ms).then(a.0.cmp(b.0)));
        let offset = decode_token(req.next_token.as_deref())?;
        if offset > versions.len() {
            return Err(errors::invalid_next_token());
        }
        let max = usize::try_from(req.max_results.unwrap_or(100)).unwrap_or(100);
        let page: Vec<sm::SecretVersionsListEntry> = versions
            .iter()
            .skip(offset)
            .take(max)
            .map(|(id, v)| sm::SecretVersionsListEntry {
                version_id: Some((*id).clone()),
                version_stages: (!v.stages.is_empty()).then(|| v.stages.clone()),
                last_accessed_date: v.last_accessed_ms.map(Timestamp::from_epoch_millis),
                created_date: Some(Timestamp::from_epoch_millis(v.created_ms)),
                kms_key_ids: (!v.kms_key_ids.is_empty()).then(|| v.kms_key_ids.clone()),
            })
            .collect();
        let next = offset + page.len();
        json_output(&sm::ListSecretVersionIdsResponse {
            versions: Some(page),
            next_token: (next < versions.len()).then(|| encode_token(next)),
            arn: Some(rec.arn()),
            name: Some(rec.name.clone()),
        })
    }

    pub(crate) async fn get_random_password(
        &self,
        ctx: &RequestContext,
        req: sm::GetRandomPasswordRequest,
    ) -> Result<OperationOutput, AwsError> {
        self.authorize(
            ctx,
            "secretsmanager:GetRandomPassword",
            Target::Account,
            Conditions::new(),
        )
        .await?;
        let defaults = password::Options::default();
        let opts = password::Options {
            length: req
                .password_length
                .and_then(|l| usize::try_from(l).ok())
                .unwrap_or(defaults.length),
            exclude_characters: req.exclude_characters.unwrap_or_default(),
            exclude_numbers: req.exclude_numbers.unwrap_or(false),
            exclude_punctuation: req.exclude_punctuation.unwrap_or(false),
            exclude_uppercase: req.exclude_uppercase.unwrap_or(false),
            exclude_lowercase: req.exclude_lowercase.unwrap_or(false),
            include_space: req.include_space.unwrap_or(false),
            require_each_included_type: req.require_each_included_type.unwrap_or(true),
        };
        let pw = password::generate(&opts)?;
        json_output(&sm::GetRandomPasswordResponse {
            random_password: Some(SensitiveString::new(pw.as_str().to_owned())),
        })
    }
}

/// UpdateSecretVersionStage's rules on one record.
pub(crate) fn apply_stage_move(
    rec: &mut SecretRecord,
    stage: &str,
    remove_from: Option<&str>,
    move_to: Option<&str>,
) -> Result<(), AwsError> {
    let holder = rec.version_with(stage).map(str::to_owned);
    if let Some(id) = move_to
        && !rec.versions.contains_key(id)
    {
        return Err(errors::invalid_parameter(format!(
            "The secret version {id} doesn't exist."
        )));
    }
    if let Some(id) = remove_from {
        if !rec.versions.contains_key(id) {
            return Err(errors::invalid_parameter(format!(
                "The secret version {id} doesn't exist."
            )));
        }
        if holder.as_deref() != Some(id) {
            return Err(errors::invalid_parameter(format!(
                "The staging label {stage} is not attached to version {id}."
            )));
        }
    }
    match (move_to, remove_from) {
        (None, None) => Err(errors::invalid_parameter(
            "You must specify MoveToVersionId, RemoveFromVersionId, or both.",
        )),
        (None, Some(id)) => {
            if stage == AWSCURRENT {
                return Err(errors::invalid_parameter(
                    "You can only move staging label AWSCURRENT to a different secret version. It can’t be completely removed.",
                ));
            }
            rec.detach(id, stage);
            Ok(())
        }
        (Some(to), _) => {
            if let Some(h) = &holder
                && h != to
                && remove_from.is_none()
            {
                return Err(errors::invalid_parameter(format!(
                    "The parameter RemoveFromVersionId can't be empty. Staging label {stage} is currently attached to version {h}, so you must explicitly reference that version in RemoveFromVersionId."
                )));
            }
            rec.attach(to, &[stage.to_owned()]);
            if rec
                .versions
                .get(to)
                .is_some_and(|v| v.stages.len() > MAX_LABELS_PER_VERSION)
            {
                return Err(errors::limit_exceeded(
                    "The request failed because it would exceed one of the Secrets Manager quotas.",
                ));
            }
            Ok(())
        }
    }
}
