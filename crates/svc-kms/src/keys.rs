//! Key lifecycle and metadata: CreateKey, DescribeKey, ListKeys, Enable/DisableKey,
//! Schedule/CancelKeyDeletion, UpdateKeyDescription, key policies and tags.

use std::collections::{BTreeMap, BTreeSet};

use citadel_api::{AwsError, RequestContext};
use citadel_model::Timestamp;
use citadel_model::kms;

use citadel_iam::AccessRequest;
use citadel_iam::policy::{ErrorFlavour, Policy, PolicyKind};

use crate::authz::{RequestConditions, Target};
use crate::clock::MILLIS_PER_DAY;
use crate::names::{self, PackedKeyId, is_key_id};
use crate::record::{self, KeyRecord, MaterialInfo, MaterialOrigin, Rotation};
use crate::repo::{Change, material_op};
use crate::specs;
use crate::state::{self, KeyOp, KeyState};
use crate::{Empty, Kms, errors};

const DEFAULT_POLICY_NAME: &str = "default";

/// Parses a key policy with the policy engine's grammar for key policies (32 KB at most).
pub(crate) fn check_policy(policy: &str) -> Result<Policy, AwsError> {
    Policy::parse(policy, PolicyKind::KeyPolicy).map_err(|e| e.to_aws_error_for(ErrorFlavour::Kms))
}

fn check_policy_name(name: Option<&str>) -> Result<(), AwsError> {
    match name {
        None | Some(DEFAULT_POLICY_NAME) => Ok(()),
        Some(_) => Err(errors::not_found("No such policy exists")),
    }
}

/// `Limit`/`Marker` pagination over an ordered list: the page, and the marker of the next one.
pub(crate) fn page<T: Clone>(
    items: &[T],
    limit: usize,
    after: Option<&str>,
    key: impl Fn(&T) -> &str,
) -> (Vec<T>, Option<String>) {
    let start = after.map_or(0, |m| items.iter().take_while(|i| key(i) <= m).count());
    let rest = items.get(start..).unwrap_or_default();
    let taken: Vec<T> = rest.iter().take(limit).cloned().collect();
    let next = if rest.len() > limit {
        taken.last().map(|i| key(i).to_owned())
    } else {
        None
    };
    (taken, next)
}

pub(crate) fn tag_list(tags: &BTreeMap<String, String>) -> Vec<kms::Tag> {
    tags.iter()
        .map(|(k, v)| kms::Tag {
            tag_key: Some(k.clone()),
            tag_value: Some(v.clone()),
        })
        .collect()
}

impl Kms {
    pub(crate) async fn create_key(
        &self,
        ctx: &RequestContext,
        req: kms::CreateKeyRequest,
    ) -> Result<kms::CreateKeyResponse, AwsError> {
        if req.key_spec.is_some() && req.customer_master_key_spec.is_some() {
            return Err(AwsError::validation(
                "You cannot specify KeySpec and CustomerMasterKeySpec in the same request. CustomerMasterKeySpec parameter is deprecated. Use KeySpec parameter.",
            ));
        }
        let spec_name = req
            .key_spec
            .as_deref()
            .or(req.customer_master_key_spec.as_deref())
            .unwrap_or(specs::SYMMETRIC_DEFAULT);
        let spec = specs::key_spec(spec_name).ok_or_else(|| {
            errors::unsupported(format!(
                "Citadel does not support KeySpec {spec_name}: it is available in the AWS China Regions only."
            ))
        })?;
        let usage = match req.key_usage.as_deref() {
            Some(u) => u,
            None => specs::default_usage(spec)?,
        };
        let origin = req.origin.as_deref().unwrap_or(record::ORIGIN);
        let multi_region = req.multi_region.unwrap_or(false);
        let bypass = req.bypass_policy_lockout_safety_check.unwrap_or(false);

        let mut conditions = RequestConditions::new()
            .set("kms:KeySpec", spec_name)
            .set("kms:CustomerMasterKeySpec", spec_name)
            .set("kms:KeyUsage", usage)
            .set("kms:CustomerMasterKeyUsage", usage)
            .set("kms:KeyOrigin", origin)
            .set("kms:MultiRegion", multi_region.to_string())
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
        self.authorize(ctx, "kms:CreateKey", Target::Account, conditions)
            .await?;

        if spec.usage(usage).is_none() {
            return Err(AwsError::validation(format!(
                "KeyUsage {usage} is not compatible with KeySpec {spec_name}."
            )));
        }
        // EXTERNAL keys start without material, waiting for ImportKeyMaterial (see `import`).
        let external = origin == record::EXTERNAL;
        if !external && origin != record::ORIGIN {
            return Err(errors::unsupported(format!(
                "Citadel does not support Origin {origin}: custom key stores are not supported."
            )));
        }
        if external {
            crate::import::check_importable(spec, multi_region)?;
        }
        if req.custom_key_store_id.is_some() || req.xks_key_id.is_some() {
            return Err(errors::unsupported(
                "Citadel does not support custom key stores yet.",
            ));
        }
        let mut tags = BTreeMap::new();
        names::merge_tags(&mut tags, req.tags.as_deref().unwrap_or_default())?;
        // A multi-Region key's id is `mrk-` and 32 hex digits, shared by all its replicas.
        let id = if multi_region {
            crate::multi_region::new_key_id()
        } else {
            uuid::Uuid::new_v4().to_string()
        };
        let policy = match req.policy {
            Some(p) => {
                let parsed = check_policy(&p)?;
                if !bypass {
                    let arn = record::key_arn(&ctx.region, &ctx.principal.account_id, &id);
                    self.lockout_check(ctx, &arn, &parsed).await?;
                }
                p
            }
            None => record::default_policy(&ctx.principal.account_id),
        };

        let key_id = PackedKeyId::parse(&id).ok_or_else(errors::internal)?;
        let material = if external {
            None
        } else {
            Some(specs::generate_material(spec, &key_id)?)
        };
        let now = self.now_ms();
        let rec = KeyRecord {
            account: ctx.principal.account_id.clone(),
            region: ctx.region.clone(),
            id,
            created_ms: now,
            description: req.description.unwrap_or_default(),
            state: if external {
                KeyState::PendingImport
            } else {
                KeyState::Enabled
            },
            key_spec: spec.name.to_owned(),
            key_usage: usage.to_owned(),
            origin: origin.to_owned(),
            key_manager: "CUSTOMER".to_owned(),
            deletion_ms: None,
            pending_window_days: None,
            policy,
            tags,
            aliases: BTreeSet::new(),
            rotation: Rotation::default(),
            on_demand_rotations: 0,
            materials: material
                .iter()
                .map(|m| MaterialInfo {
                    id: m.id_hex(),
                    created_ms: now,
                    origin: MaterialOrigin::Initial,
                    import: None,
                })
                .collect(),
            grant_generation: 0,
            multi_region: multi_region.then(|| record::MultiRegion {
                primary_region: ctx.region.clone(),
                replica_regions: BTreeSet::new(),
            }),
        };
        self.commit(
            &rec.path(),
            None,
            Some(&rec),
            material
                .iter()
                .map(|m| material_op(&rec, m))
                .chain([record::owner_op(&rec)])
                .collect(),
        )
        .await
        .map_err(errors::store)?;
        tracing::info!(key = %rec.arn(), "KMS key created");
        Ok(kms::CreateKeyResponse {
            key_metadata: Some(rec.metadata()),
        })
    }

    pub(crate) async fn describe_key(
        &self,
        ctx: &RequestContext,
        req: kms::DescribeKeyRequest,
    ) -> Result<kms::DescribeKeyResponse, AwsError> {
        let r = self
            .resolve(ctx, req.key_id.as_deref().unwrap_or_default())
            .await?;
        let rec = &r.key.record;
        self.authorize(
            ctx,
            "kms:DescribeKey",
            Target::Key(&r.key),
            RequestConditions::new()
                .request_alias(r.alias.as_deref())
                .grant_tokens(req.grant_tokens.as_ref()),
        )
        .await?;
        state::check(rec.state, KeyOp::DescribeKey, &rec.arn())?;
        Ok(kms::DescribeKeyResponse {
            key_metadata: Some(rec.metadata()),
        })
    }

    pub(crate) async fn list_keys(
        &self,
        ctx: &RequestContext,
        req: kms::ListKeysRequest,
    ) -> Result<kms::ListKeysResponse, AwsError> {
        self.authorize(
            ctx,
            "kms:ListKeys",
            Target::Account,
            RequestConditions::new(),
        )
        .await?;
        let limit = usize::try_from(req.limit.unwrap_or(100)).unwrap_or(100);
        if let Some(m) = &req.marker
            && !is_key_id(m)
        {
            return Err(AwsError::new(
                400,
                "InvalidMarkerException",
                "The request was rejected because the marker that specifies where pagination should next begin is not valid.",
            ));
        }
        let account = &ctx.principal.account_id;
        let prefix = record::keys_prefix(account, &ctx.region);
        let after = req.marker.as_ref().map(|m| format!("{prefix}{m}"));
        let rows = self
            .store
            .list(&prefix, after.as_deref(), limit.saturating_add(1))
            .await
            .map_err(errors::store)?;
        let truncated = rows.len() > limit;
        let keys: Vec<kms::KeyListEntry> = rows
            .iter()
            .take(limit)
            .filter_map(|(path, _)| path.strip_prefix(&prefix))
            .map(|id| kms::KeyListEntry {
                key_id: Some(id.to_owned()),
                key_arn: Some(record::key_arn(&ctx.region, account, id)),
            })
            .collect();
        Ok(kms::ListKeysResponse {
            next_marker: if truncated {
                keys.last().and_then(|k| k.key_id.clone())
            } else {
                None
            },
            keys: Some(keys),
            truncated: Some(truncated),
        })
    }

    /// Shared shape of the operations that resolve a key, authorize, check the state and change
    /// the record with `apply` (which returns whether anything changed).
    async fn mutate(
        &self,
        ctx: &RequestContext,
        key_id: Option<&str>,
        action: &'static str,
        op: KeyOp,
        conditions: RequestConditions,
        apply: impl Fn(&mut KeyRecord, i64) -> Result<(), AwsError>,
    ) -> Result<KeyRecord, AwsError> {
        let r = self.resolve(ctx, key_id.unwrap_or_default()).await?;
        self.authorize(
            ctx,
            action,
            Target::Key(&r.key),
            conditions.request_alias(r.alias.as_deref()),
        )
        .await?;
        let now = self.now_ms();
        self.update_key(r.key, |current| {
            let mut rec = current.record.clone();
            state::check(rec.state, op, &rec.arn())?;
            apply(&mut rec, now)?;
            Ok(Change {
                out: rec.clone(),
                record: rec,
                extra: Vec::new(),
            })
        })
        .await
    }

    pub(crate) async fn enable_key(
        &self,
        ctx: &RequestContext,
        req: kms::EnableKeyRequest,
    ) -> Result<Empty, AwsError> {
        self.mutate(
            ctx,
            req.key_id.as_deref(),
            "kms:EnableKey",
            KeyOp::EnableKey,
            RequestConditions::new(),
            |rec, _| {
                rec.state = KeyState::Enabled;
                Ok(())
            },
        )
        .await?;
        Ok(Empty {})
    }

    pub(crate) async fn disable_key(
        &self,
        ctx: &RequestContext,
        req: kms::DisableKeyRequest,
    ) -> Result<Empty, AwsError> {
        self.mutate(
            ctx,
            req.key_id.as_deref(),
            "kms:DisableKey",
            KeyOp::DisableKey,
            RequestConditions::new(),
            |rec, _| {
                rec.state = KeyState::Disabled;
                Ok(())
            },
        )
        .await?;
        Ok(Empty {})
    }

    pub(crate) async fn schedule_key_deletion(
        &self,
        ctx: &RequestContext,
        req: kms::ScheduleKeyDeletionRequest,
    ) -> Result<kms::ScheduleKeyDeletionResponse, AwsError> {
        let days = req.pending_window_in_days.unwrap_or(30);
        if !(7..=30).contains(&days) {
            return Err(AwsError::validation(format!(
                "PendingWindowInDays should be between 7 and 30, but it is {days}"
            )));
        }
        let rec = self
            .mutate(
                ctx,
                req.key_id.as_deref(),
                "kms:ScheduleKeyDeletion",
                KeyOp::ScheduleKeyDeletion,
                RequestConditions::new().set(
                    "kms:ScheduleKeyDeletionPendingWindowInDays",
                    days.to_string(),
                ),
                |rec, now| {
                    if rec.replica_regions().next().is_some() {
                        // A multi-Region primary waits for its replicas: its own waiting
                        // period starts when the last one is destroyed (see `due`).
                        rec.state = KeyState::PendingReplicaDeletion;
                        rec.deletion_ms = None;
                    } else {
                        rec.state = KeyState::PendingDeletion;
                        rec.deletion_ms =
                            Some(now.saturating_add(i64::from(days) * MILLIS_PER_DAY));
                    }
                    rec.pending_window_days = Some(days);
                    Ok(())
                },
            )
            .await?;
        tracing::info!(key = %rec.arn(), days, "KMS key scheduled for deletion");
        Ok(kms::ScheduleKeyDeletionResponse {
            key_id: Some(rec.arn()),
            deletion_date: rec.deletion_ms.map(Timestamp::from_epoch_millis),
            key_state: Some(rec.state.as_str().to_owned()),
            pending_window_in_days: Some(days),
        })
    }

    pub(crate) async fn cancel_key_deletion(
        &self,
        ctx: &RequestContext,
        req: kms::CancelKeyDeletionRequest,
    ) -> Result<kms::CancelKeyDeletionResponse, AwsError> {
        let rec = self
            .mutate(
                ctx,
                req.key_id.as_deref(),
                "kms:CancelKeyDeletion",
                KeyOp::CancelKeyDeletion,
                RequestConditions::new(),
                |rec, _| {
                    // AWS leaves a key whose deletion was cancelled disabled, not enabled.
                    rec.state = KeyState::Disabled;
                    rec.deletion_ms = None;
                    rec.pending_window_days = None;
                    Ok(())
                },
            )
            .await?;
        Ok(kms::CancelKeyDeletionResponse {
            key_id: Some(rec.arn()),
        })
    }

    pub(crate) async fn update_key_description(
        &self,
        ctx: &RequestContext,
        req: kms::UpdateKeyDescriptionRequest,
    ) -> Result<Empty, AwsError> {
        let description = req.description.unwrap_or_default();
        self.mutate(
            ctx,
            req.key_id.as_deref(),
            "kms:UpdateKeyDescription",
            KeyOp::UpdateKeyDescription,
            RequestConditions::new(),
            |rec, _| {
                rec.description.clone_from(&description);
                Ok(())
            },
        )
        .await?;
        Ok(Empty {})
    }

    // ----- policies ---------------------------------------------------------------------------

    pub(crate) async fn get_key_policy(
        &self,
        ctx: &RequestContext,
        req: kms::GetKeyPolicyRequest,
    ) -> Result<kms::GetKeyPolicyResponse, AwsError> {
        let r = self
            .authorized_key(
                ctx,
                req.key_id.as_deref(),
                "kms:GetKeyPolicy",
                KeyOp::GetKeyPolicy,
            )
            .await?;
        let rec = &r.key.record;
        check_policy_name(req.policy_name.as_deref())?;
        Ok(kms::GetKeyPolicyResponse {
            policy: Some(rec.policy.clone()),
            policy_name: Some(DEFAULT_POLICY_NAME.to_owned()),
        })
    }

    pub(crate) async fn put_key_policy(
        &self,
        ctx: &RequestContext,
        req: kms::PutKeyPolicyRequest,
    ) -> Result<Empty, AwsError> {
        let policy = req.policy.unwrap_or_default();
        let bypass = req.bypass_policy_lockout_safety_check.unwrap_or(false);
        check_policy_name(req.policy_name.as_deref())?;
        let parsed = check_policy(&policy)?;
        let r = self
            .resolve(ctx, req.key_id.as_deref().unwrap_or_default())
            .await?;
        self.authorize(
            ctx,
            "kms:PutKeyPolicy",
            Target::Key(&r.key),
            RequestConditions::new()
                .set("kms:BypassPolicyLockoutSafetyCheck", bypass.to_string())
                .request_alias(r.alias.as_deref()),
        )
        .await?;
        state::check(r.key.record.state, KeyOp::PutKeyPolicy, &r.key.record.arn())?;
        if !bypass {
            self.lockout_check(ctx, &r.key.record.arn(), &parsed)
                .await?;
        }
        self.update_key(r.key, |current| {
            let mut rec = current.record.clone();
            state::check(rec.state, KeyOp::PutKeyPolicy, &rec.arn())?;
            rec.policy.clone_from(&policy);
            Ok(Change {
                out: (),
                record: rec,
                extra: Vec::new(),
            })
        })
        .await?;
        Ok(Empty {})
    }

    /// The lockout safety check: a key policy the caller sets must still allow the caller to
    /// call PutKeyPolicy on the key (unless the request bypasses the check).
    pub(crate) async fn lockout_check(
        &self,
        ctx: &RequestContext,
        key_arn: &str,
        policy: &Policy,
    ) -> Result<(), AwsError> {
        let mut conditions = std::collections::BTreeMap::new();
        conditions.insert(
            "kms:CallerAccount".to_owned(),
            vec![ctx.principal.account_id.clone()],
        );
        let request = AccessRequest {
            resource_policy: Some(policy),
            resource_policy_must_allow: true,
            conditions: &conditions,
            ..AccessRequest::new("kms:PutKeyPolicy", key_arn, ErrorFlavour::Kms)
        };
        match self.authorizer.check(ctx, &request).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_server_fault() => Err(e),
            Err(_) => Err(errors::malformed_policy(
                "The new key policy will not allow you to update the key policy in the future.",
            )),
        }
    }

    pub(crate) async fn list_key_policies(
        &self,
        ctx: &RequestContext,
        req: kms::ListKeyPoliciesRequest,
    ) -> Result<kms::ListKeyPoliciesResponse, AwsError> {
        self.authorized_key(
            ctx,
            req.key_id.as_deref(),
            "kms:ListKeyPolicies",
            KeyOp::ListKeyPolicies,
        )
        .await?;
        Ok(kms::ListKeyPoliciesResponse {
            policy_names: Some(vec![DEFAULT_POLICY_NAME.to_owned()]),
            next_marker: None,
            truncated: Some(false),
        })
    }

    // ----- tags -------------------------------------------------------------------------------

    pub(crate) async fn tag_resource(
        &self,
        ctx: &RequestContext,
        req: kms::TagResourceRequest,
    ) -> Result<Empty, AwsError> {
        let tags = req.tags.unwrap_or_default();
        let mut conditions = RequestConditions::new();
        for t in &tags {
            conditions = conditions.set(
                &format!(
                    "aws:RequestTag/{}",
                    t.tag_key.as_deref().unwrap_or_default()
                ),
                t.tag_value.clone().unwrap_or_default(),
            );
        }
        self.mutate(
            ctx,
            req.key_id.as_deref(),
            "kms:TagResource",
            KeyOp::TagResource,
            conditions,
            |rec, _| names::merge_tags(&mut rec.tags, &tags),
        )
        .await?;
        Ok(Empty {})
    }

    pub(crate) async fn untag_resource(
        &self,
        ctx: &RequestContext,
        req: kms::UntagResourceRequest,
    ) -> Result<Empty, AwsError> {
        let keys = req.tag_keys.unwrap_or_default();
        self.mutate(
            ctx,
            req.key_id.as_deref(),
            "kms:UntagResource",
            KeyOp::UntagResource,
            RequestConditions::new(),
            |rec, _| {
                for k in &keys {
                    rec.tags.remove(k);
                }
                Ok(())
            },
        )
        .await?;
        Ok(Empty {})
    }

    pub(crate) async fn list_resource_tags(
        &self,
        ctx: &RequestContext,
        req: kms::ListResourceTagsRequest,
    ) -> Result<kms::ListResourceTagsResponse, AwsError> {
        let r = self
            .authorized_key(
                ctx,
                req.key_id.as_deref(),
                "kms:ListResourceTags",
                KeyOp::ListResourceTags,
            )
            .await?;
        let rec = &r.key.record;
        let limit = usize::try_from(req.limit.unwrap_or(50))
            .unwrap_or(50)
            .min(50);
        let all = tag_list(&rec.tags);
        let (tags, next) = page(&all, limit, req.marker.as_deref(), |t| {
            t.tag_key.as_deref().unwrap_or_default()
        });
        Ok(kms::ListResourceTagsResponse {
            tags: Some(tags),
            truncated: Some(next.is_some()),
            next_marker: next,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_markers() {
        let items: Vec<String> = (0..5).map(|i| format!("k{i}")).collect();
        let (p, next) = page(&items, 2, None, |s| s.as_str());
        assert_eq!(p, ["k0", "k1"]);
        assert_eq!(next.as_deref(), Some("k1"));
        let (p, next) = page(&items, 2, next.as_deref(), |s| s.as_str());
        assert_eq!(p, ["k2", "k3"]);
        let (p, next) = page(&items, 2, next.as_deref(), |s| s.as_str());
        assert_eq!(p, ["k4"]);
        assert_eq!(next, None);
        let (p, next) = page(&items, 5, None, |s| s.as_str());
        assert_eq!(p.len(), 5);
        assert_eq!(next, None);
    }

    #[test]
    fn policies_are_bounded_and_must_be_json_objects() {
        assert!(check_policy(&record::default_policy("111122223333")).is_ok());
        let e = check_policy(&format!(
            "{{\"x\":\"{}\"}}",
            "a".repeat(PolicyKind::KeyPolicy.max_size())
        ))
        .unwrap_err();
        assert_eq!(e.code, "LimitExceededException");
        // Key policies name principals.
        let e =
            check_policy(r#"{"Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}"#)
                .unwrap_err();
        assert_eq!(
            (e.code.as_ref(), e.message.as_deref()),
            (
                "MalformedPolicyDocumentException",
                Some("Missing required field Principal")
            )
        );
        assert_eq!(
            check_policy("{\"Statement\":[]}").unwrap_err().code,
            "MalformedPolicyDocumentException"
        );
        assert_eq!(
            check_policy("not json").unwrap_err().code,
            "MalformedPolicyDocumentException"
        );
        assert_eq!(
            check_policy("[1]").unwrap_err().code,
            "MalformedPolicyDocumentException"
        );
    }
}
