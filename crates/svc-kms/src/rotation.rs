//! Enable/DisableKeyRotation, GetKeyRotationStatus, RotateKeyOnDemand and ListKeyRotations.
//!
//! A rotation adds a material and makes it current; every older material stays, so ciphertexts
//! made before any rotation still decrypt (their header names the material they need).

use citadel_api::{AwsError, RequestContext};
use citadel_model::Timestamp;
use citadel_model::kms;

use crate::authz::{RequestConditions, Target};
use crate::clock::MILLIS_PER_DAY;
use crate::errors::KmsError;
use crate::material::Material;
use crate::names::PackedKeyId;
use crate::record::{KeyRecord, MaterialInfo, MaterialOrigin};
use crate::repo::{Change, kms_err, material_op};
use crate::state::{self, KeyOp};
use crate::{Empty, Kms, errors};

/// AWS's limit on `RotateKeyOnDemand` per key.
pub const MAX_ON_DEMAND_ROTATIONS: u32 = 25;
pub const DEFAULT_ROTATION_PERIOD_DAYS: i32 = 365;

/// When the schedule of `rec` counts from: the last automatic rotation, else the time rotation
/// was (re-)enabled. On-demand rotations do not move the automatic schedule.
fn schedule_base(rec: &KeyRecord, enabled_ms: i64) -> i64 {
    rec.materials
        .iter()
        .rev()
        .find(|m| m.origin == MaterialOrigin::Automatic)
        .map_or(enabled_ms, |m| m.created_ms.max(enabled_ms))
}

/// Adds a new current material to `rec` and returns it with the batch write that stores it.
pub(crate) fn rotate(
    rec: &mut KeyRecord,
    origin: MaterialOrigin,
    now: i64,
) -> Result<citadel_store::Op, KmsError> {
    let key_id = PackedKeyId::parse(&rec.id).ok_or_else(|| KmsError::Corrupt {
        key: rec.path(),
        reason: "the key id is not a key id".into(),
    })?;
    let material = Material::generate(&key_id)?;
    rec.materials.push(MaterialInfo {
        id: material.id_hex(),
        created_ms: now,
        origin,
        import: None,
    });
    Ok(material_op(rec, &material))
}

/// Automatic rotation makes new material, which keys with imported material cannot have.
fn refuse_imported(rec: &KeyRecord) -> Result<(), AwsError> {
    if rec.origin == crate::record::EXTERNAL {
        // Unconfirmed AWS wording.
        return Err(errors::unsupported(format!(
            "{} origin is EXTERNAL which is not valid for this operation.",
            rec.arn()
        )));
    }
    Ok(())
}

fn rotation_type(origin: MaterialOrigin) -> Option<String> {
    match origin {
        MaterialOrigin::Initial => None,
        MaterialOrigin::Automatic => Some("AUTOMATIC".to_owned()),
        MaterialOrigin::OnDemand => Some("ON_DEMAND".to_owned()),
    }
}

fn invalid_marker() -> AwsError {
    AwsError::new(
        400,
        "InvalidMarkerException",
        "The request was rejected because the marker that specifies where pagination should next begin is not valid.",
    )
}

impl Kms {
    pub(crate) async fn enable_key_rotation(
        &self,
        ctx: &RequestContext,
        req: kms::EnableKeyRotationRequest,
    ) -> Result<Empty, AwsError> {
        let period = req
            .rotation_period_in_days
            .unwrap_or(DEFAULT_ROTATION_PERIOD_DAYS);
        let r = self
            .resolve(ctx, req.key_id.as_deref().unwrap_or_default())
            .await?;
        self.authorize(
            ctx,
            "kms:EnableKeyRotation",
            Target::Key(&r.key),
            RequestConditions::new()
                .set("kms:RotationPeriodInDays", period.to_string())
                .request_alias(r.alias.as_deref()),
        )
        .await?;
        // Rotation is a property a multi-Region key's replicas take from the primary.
        crate::multi_region::refuse_on_replica(&r.key.record)?;
        let now = self.now_ms();
        self.update_key(r.key, |current| {
            let mut rec = current.record.clone();
            state::check(rec.state, KeyOp::EnableKeyRotation, &rec.arn())?;
            refuse_imported(&rec)?;
            let period_ms = i64::from(period) * MILLIS_PER_DAY;
            if !rec.rotation.enabled {
                rec.rotation.enabled = true;
                rec.rotation.enabled_ms = Some(now);
                rec.rotation.next_ms = Some(now.saturating_add(period_ms));
            } else if rec.rotation.period_days != Some(period) {
                // A new period counts from the last rotation; if that date has passed, the key
                // rotates at the scheduler's next run.
                let base = schedule_base(&rec, rec.rotation.enabled_ms.unwrap_or(now));
                rec.rotation.next_ms = Some(base.saturating_add(period_ms).max(now));
            }
            rec.rotation.period_days = Some(period);
            Ok(Change {
                record: rec,
                extra: Vec::new(),
                out: (),
            })
        })
        .await?;
        Ok(Empty {})
    }

    pub(crate) async fn disable_key_rotation(
        &self,
        ctx: &RequestContext,
        req: kms::DisableKeyRotationRequest,
    ) -> Result<Empty, AwsError> {
        let r = self
            .resolve(ctx, req.key_id.as_deref().unwrap_or_default())
            .await?;
        self.authorize(
            ctx,
            "kms:DisableKeyRotation",
            Target::Key(&r.key),
            RequestConditions::new().request_alias(r.alias.as_deref()),
        )
        .await?;
        crate::multi_region::refuse_on_replica(&r.key.record)?;
        self.update_key(r.key, |current| {
            let mut rec = current.record.clone();
            state::check(rec.state, KeyOp::DisableKeyRotation, &rec.arn())?;
            refuse_imported(&rec)?;
            rec.rotation.enabled = false;
            rec.rotation.period_days = None;
            rec.rotation.next_ms = None;
            rec.rotation.enabled_ms = None;
            Ok(Change {
                record: rec,
                extra: Vec::new(),
                out: (),
            })
        })
        .await?;
        Ok(Empty {})
    }

    pub(crate) async fn get_key_rotation_status(
        &self,
        ctx: &RequestContext,
        req: kms::GetKeyRotationStatusRequest,
    ) -> Result<kms::GetKeyRotationStatusResponse, AwsError> {
        let r = self
            .authorized_key(
                ctx,
                req.key_id.as_deref(),
                "kms:GetKeyRotationStatus",
                KeyOp::GetKeyRotationStatus,
            )
            .await?;
        let rec = &r.key.record;
        let enabled = rec.rotation.enabled;
        Ok(kms::GetKeyRotationStatusResponse {
            key_rotation_enabled: Some(enabled),
            key_id: Some(rec.id.clone()),
            rotation_period_in_days: rec.rotation.period_days.filter(|_| enabled),
            next_rotation_date: rec
                .rotation
                .next_ms
                .filter(|_| enabled)
                .map(Timestamp::from_epoch_millis),
            // On-demand rotations complete within the request, so none is ever in progress.
            on_demand_rotation_start_date: None,
        })
    }

    pub(crate) async fn rotate_key_on_demand(
        &self,
        ctx: &RequestContext,
        req: kms::RotateKeyOnDemandRequest,
    ) -> Result<kms::RotateKeyOnDemandResponse, AwsError> {
        let r = self
            .resolve(ctx, req.key_id.as_deref().unwrap_or_default())
            .await?;
        self.authorize(
            ctx,
            "kms:RotateKeyOnDemand",
            Target::Key(&r.key),
            RequestConditions::new().request_alias(r.alias.as_deref()),
        )
        .await?;
        crate::multi_region::refuse_on_replica(&r.key.record)?;
        let now = self.now_ms();
        let id = self
            .update_key(r.key, |current| {
                let mut rec = current.record.clone();
                state::check(rec.state, KeyOp::RotateKeyOnDemand, &rec.arn())?;
                if rec.on_demand_rotations >= MAX_ON_DEMAND_ROTATIONS {
                    return Err(errors::limit_exceeded(format!(
                        "The on-demand rotations limit has been reached for the given keyId. No more on-demand rotations can be performed for this key: {}",
                        rec.arn()
                    )));
                }
                // Imported keys rotate to the material imported for it, never generated material.
                let extra = if rec.origin == crate::record::EXTERNAL {
                    crate::import::promote_pending(&mut rec, now)?;
                    Vec::new()
                } else {
                    vec![rotate(&mut rec, MaterialOrigin::OnDemand, now).map_err(kms_err)?]
                };
                rec.on_demand_rotations += 1;
                Ok(Change {
                    out: rec.id.clone(),
                    record: rec,
                    extra,
                })
            })
            .await?;
        tracing::info!(key_id = %id, "KMS key rotated on demand");
        Ok(kms::RotateKeyOnDemandResponse { key_id: Some(id) })
    }

    pub(crate) async fn list_key_rotations(
        &self,
        ctx: &RequestContext,
        req: kms::ListKeyRotationsRequest,
    ) -> Result<kms::ListKeyRotationsResponse, AwsError> {
        let r = self
            .authorized_key(
                ctx,
                req.key_id.as_deref(),
                "kms:ListKeyRotations",
                KeyOp::ListKeyRotations,
            )
            .await?;
        let rec = &r.key.record;
        let all_material = req.include_key_material.as_deref() == Some("ALL_KEY_MATERIAL");
        let current = rec.current_material().map(|m| m.id.as_str());
        let entries: Vec<kms::RotationsListEntry> = rec
            .materials
            .iter()
            .filter(|m| {
                all_material || (m.origin != MaterialOrigin::Initial && !m.is_pending_rotation())
            })
            .map(|m| {
                let mut entry = kms::RotationsListEntry {
                    key_id: Some(rec.id.clone()),
                    key_material_id: Some(m.id.clone()),
                    key_material_state: Some(
                        if Some(m.id.as_str()) == current {
                            "CURRENT"
                        } else {
                            "NON_CURRENT"
                        }
                        .to_owned(),
                    ),
                    rotation_date: (m.origin != MaterialOrigin::Initial)
                        .then(|| Timestamp::from_epoch_millis(m.created_ms)),
                    rotation_type: rotation_type(m.origin),
                    ..kms::RotationsListEntry::default()
                };
                crate::import::annotate(rec, m, &mut entry);
                entry
            })
            .collect();
        // Entries are in rotation order, so the marker is the id of the last one returned.
        let start = match &req.marker {
            None => 0,
            Some(m) => {
                entries
                    .iter()
                    .position(|e| e.key_material_id.as_deref() == Some(m.as_str()))
                    .ok_or_else(invalid_marker)?
                    + 1
            }
        };
        let limit = usize::try_from(req.limit.unwrap_or(100)).unwrap_or(100);
        let rest = entries.get(start..).unwrap_or_default();
        let page: Vec<kms::RotationsListEntry> = rest.iter().take(limit).cloned().collect();
        let next = if rest.len() > limit {
            page.last().and_then(|e| e.key_material_id.clone())
        } else {
            None
        };
        Ok(kms::ListKeyRotationsResponse {
            rotations: Some(page),
            truncated: Some(next.is_some()),
            next_marker: next,
        })
    }
}
