//! Imported key material ("bring your own key"): GetParametersForImport, ImportKeyMaterial and
//! DeleteImportedKeyMaterial for keys created with origin `EXTERNAL`, plus the expiry the
//! scheduler performs and the on-demand rotation to imported material.
//!
//! GetParametersForImport makes an RSA wrapping key pair and keeps it in the sealed store
//! (`kms/<account>/<region>/import/<key-id>/<token-id>`, see [`crate::record`]) for 24 hours. The
//! import token is only an authenticated reference to that record:
//! `version ‖ key id kind ‖ key id ‖ token id ‖ expiry (ms, big-endian) ‖ HMAC-SHA256(record's
//! secret, everything before)`. It carries no key, so it can be handed out freely, and a token
//! for one key cannot be used with another.
//!
//! The key record keeps an entry (`MaterialInfo` with `ImportFacts`) for every material ever
//! imported, also after its secret was deleted or expired: the material id derives from the key
//! id and the secret (`Material::new`), so a re-import is recognised as the same material, and
//! different material is refused (`IncorrectKeyMaterialException`). A key is `Enabled` only while
//! every material permanently associated with it is present; otherwise `PendingImport`.

use std::fmt;

use citadel_api::{AwsError, RequestContext};
use citadel_crypto::key_import::{WrappingAlgorithm, WrappingKeyPair, WrappingKeySpec};
use citadel_crypto::{Zeroizing, constant_time_eq, hmac_sha256, random_array};
use citadel_model::kms;
use citadel_model::{Blob, SensitiveBlob, Timestamp};
use citadel_store::{Expect, Op};
use serde::{Deserialize, Serialize};

use crate::authz::{RequestConditions, Target};
use crate::clock::MILLIS_PER_DAY;
use crate::material::{Material, MaterialFormat};
use crate::names::PackedKeyId;
use crate::record::{self, ImportFacts, KeyRecord, MaterialInfo, MaterialOrigin};
use crate::repo::{Change, material_op};
use crate::specs;
use crate::state::{self, KeyOp, KeyState};
use crate::{Kms, errors};

/// How long a public key and import token stay usable (AWS: 24 hours).
pub(crate) const TOKEN_VALIDITY_MS: i64 = MILLIS_PER_DAY;
/// The furthest `ValidTo` may lie in the future.
const MAX_VALID_TO_MS: i64 = 365 * MILLIS_PER_DAY;

const EXPIRES: &str = "KEY_MATERIAL_EXPIRES";
const DOES_NOT_EXPIRE: &str = "KEY_MATERIAL_DOES_NOT_EXPIRE";
const NEW_KEY_MATERIAL: &str = "NEW_KEY_MATERIAL";
const EXISTING_KEY_MATERIAL: &str = "EXISTING_KEY_MATERIAL";

/// Upper bound on the import parameters of one key read at once (unexpired ones are only those
/// of the last 24 hours; expired ones are dropped by every GetParametersForImport).
const MAX_IMPORT_PARAMS: usize = 100_000;

const TOKEN_VERSION: u8 = 1;
const TOKEN_ID_LEN: usize = 16;
const TAG_LEN: usize = 32;
/// version, key id kind, key id, token id, expiry.
const TOKEN_BODY_LEN: usize = 1 + 1 + 16 + TOKEN_ID_LEN + 8;

/// One GetParametersForImport answer as stored: the wrapping private key and the secret its
/// token is authenticated with. `Debug` shows neither.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct ImportParams {
    pub key_id: String,
    /// 32 hex digits.
    pub token_id: String,
    pub created_ms: i64,
    pub expires_ms: i64,
    pub wrapping_algorithm: String,
    pub wrapping_key_spec: String,
    /// The wrapping private key, PKCS#8 DER in hex.
    pub private_key: String,
    /// 64 hex digits: the HMAC key of the token.
    pub token_secret: String,
}

impl fmt::Debug for ImportParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImportParams")
            .field("key_id", &self.key_id)
            .field("token_id", &self.token_id)
            .field("expires_ms", &self.expires_ms)
            .field("wrapping_algorithm", &self.wrapping_algorithm)
            .field("wrapping_key_spec", &self.wrapping_key_spec)
            .finish_non_exhaustive()
    }
}

/// What a token names, before it is checked against its record.
struct TokenParts<'a> {
    key_id: PackedKeyId,
    token_id: String,
    expires_ms: i64,
    body: &'a [u8],
    tag: &'a [u8],
}

fn token_body(key_id: &PackedKeyId, token_id: &[u8], expires_ms: i64) -> Vec<u8> {
    let mut body = Vec::with_capacity(TOKEN_BODY_LEN + TAG_LEN);
    body.push(TOKEN_VERSION);
    body.push(key_id.kind);
    body.extend_from_slice(&key_id.bytes);
    body.extend_from_slice(token_id);
    body.extend_from_slice(&expires_ms.to_be_bytes());
    body
}

fn parse_token(token: &[u8]) -> Option<TokenParts<'_>> {
    if token.len() != TOKEN_BODY_LEN + TAG_LEN {
        return None;
    }
    let (body, tag) = token.split_at(TOKEN_BODY_LEN);
    let (&version, rest) = body.split_first()?;
    if version != TOKEN_VERSION {
        return None;
    }
    let (&kind, rest) = rest.split_first()?;
    let (id_bytes, rest) = rest.split_at_checked(16)?;
    let (token_id, expiry) = rest.split_at_checked(TOKEN_ID_LEN)?;
    Some(TokenParts {
        key_id: PackedKeyId::from_parts(kind, id_bytes)?,
        token_id: hex::encode(token_id),
        expires_ms: i64::from_be_bytes(expiry.try_into().ok()?),
        body,
        tag,
    })
}

fn invalid_token() -> AwsError {
    // Unconfirmed AWS wording (the model's description of the exception).
    AwsError::new(
        400,
        "InvalidImportTokenException",
        "The request was rejected because the provided import token is invalid or is associated with a different KMS key.",
    )
}

fn expired_token() -> AwsError {
    // Unconfirmed AWS wording (the model's description of the exception).
    AwsError::new(
        400,
        "ExpiredImportTokenException",
        "The request was rejected because the specified import token is expired. Use GetParametersForImport to get a new import token and public key, use the new public key to encrypt the key material, and then try the request again.",
    )
}

fn incorrect_material() -> AwsError {
    // Unconfirmed AWS wording.
    AwsError::new(
        400,
        "IncorrectKeyMaterialException",
        "The key material in the request is not the key material that this KMS key expects: it differs from the key material previously imported, or new key material was expected but it is already associated with the key.",
    )
}

/// `UnsupportedOperationException` for import operations on keys that are not `EXTERNAL`.
fn check_external(rec: &KeyRecord) -> Result<(), AwsError> {
    if rec.origin == record::EXTERNAL {
        Ok(())
    } else {
        Err(errors::unsupported(format!(
            "{} origin is {} which is not valid for this operation.",
            rec.arn(),
            rec.origin
        )))
    }
}

/// CreateKey with origin `EXTERNAL`: which keys can take imported material here.
pub(crate) fn check_importable(spec: &specs::KeySpec, multi_region: bool) -> Result<(), AwsError> {
    if multi_region {
        return Err(errors::unsupported(
            "Citadel does not support multi-Region keys with imported key material yet.",
        ));
    }
    if spec.is_asymmetric()
        && citadel_crypto::asymmetric::KeyKind::from_key_spec(spec.name).is_none()
    {
        return Err(errors::unsupported(format!(
            "Citadel does not support importing key material for KeySpec {}.",
            spec.name
        )));
    }
    Ok(())
}

/// The allowed lengths of imported HMAC key material, by key spec.
fn hmac_lengths(spec: &str) -> Option<std::ops::RangeInclusive<usize>> {
    match spec {
        "HMAC_224" => Some(28..=64),
        "HMAC_256" => Some(32..=64),
        "HMAC_384" => Some(48..=128),
        "HMAC_512" => Some(64..=128),
        _ => None,
    }
}

/// Checks unwrapped material against the key's spec.
fn check_material(spec: &specs::KeySpec, secret: &[u8]) -> Result<(), AwsError> {
    let ok = match spec.material {
        MaterialFormat::Symmetric => secret.len() == 32,
        MaterialFormat::Hmac => hmac_lengths(spec.name).is_some_and(|r| r.contains(&secret.len())),
        MaterialFormat::PrivateKey => citadel_crypto::asymmetric::KeyKind::from_key_spec(spec.name)
            .is_some_and(|kind| citadel_crypto::asymmetric::public_key_der(kind, secret).is_ok()),
    };
    if ok {
        Ok(())
    } else {
        // Unconfirmed AWS wording.
        Err(AwsError::validation(format!(
            "The imported key material is not valid for a {} key: {}.",
            spec.name,
            match spec.material {
                MaterialFormat::Symmetric => "it must be 256 bits (32 bytes) long".to_owned(),
                MaterialFormat::Hmac => {
                    let r = hmac_lengths(spec.name).unwrap_or(0..=0);
                    format!("it must be {} to {} bytes long", r.start(), r.end())
                }
                MaterialFormat::PrivateKey =>
                    "it must be a DER PKCS#8 private key of that key spec".to_owned(),
            }
        )))
    }
}

/// Checks `ExpirationModel` and `ValidTo` of an import at `now`.
fn check_expiry(model: &str, valid_to: Option<i64>, now: i64) -> Result<Option<i64>, AwsError> {
    match (model, valid_to) {
        // Unconfirmed AWS wording for all four messages.
        (EXPIRES, None) => Err(AwsError::validation(
            "A ValidTo date must be set when the ExpirationModel is KEY_MATERIAL_EXPIRES.",
        )),
        (DOES_NOT_EXPIRE, Some(_)) => Err(AwsError::validation(
            "A ValidTo date must not be set when the ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE.",
        )),
        (EXPIRES, Some(at)) if at <= now => {
            Err(AwsError::validation("ValidTo must be in the future."))
        }
        (EXPIRES, Some(at)) if at > now.saturating_add(MAX_VALID_TO_MS) => Err(
            AwsError::validation("ValidTo must be at most 365 days in the future."),
        ),
        (_, at) => Ok(at),
    }
}

/// The state an `EXTERNAL` key is in after its materials changed: `PendingImport` while a
/// material permanently associated with it is missing; back to `Enabled` from `PendingImport`
/// once all are present. Other states (disabled, pending deletion) stay.
fn settle_state(rec: &mut KeyRecord) {
    let complete = rec.current_material().is_some()
        && rec
            .materials
            .iter()
            .all(|m| m.is_pending_rotation() || m.is_present());
    match rec.state {
        KeyState::PendingDeletion | KeyState::PendingReplicaDeletion => {}
        KeyState::PendingImport if complete => rec.state = KeyState::Enabled,
        _ if !complete => rec.state = KeyState::PendingImport,
        _ => {}
    }
}

fn material_delete_op(rec: &KeyRecord, id: &str) -> Op {
    Op::delete(
        record::material_path(&rec.account, &rec.region, &rec.id, id),
        Expect::Any,
    )
}

/// Takes material out of `rec`: a material pending rotation is forgotten entirely (it was never
/// permanently associated), any other keeps its entry without its secret.
fn remove_material(rec: &mut KeyRecord, index: usize) -> Option<Op> {
    let id = rec.materials.get(index)?.id.clone();
    let op = material_delete_op(rec, &id);
    let m = rec.materials.get_mut(index)?;
    if m.is_pending_rotation() {
        rec.materials.remove(index);
        return Some(op);
    }
    if let Some(facts) = m.import.as_mut() {
        facts.imported = false;
        facts.expiration_model = None;
        facts.valid_to_ms = None;
    }
    Some(op)
}

/// Removes the imported materials of `rec` whose `ValidTo` is at or before `now`, returning
/// the store writes; the scheduler commits them with the record.
pub(crate) fn expire(rec: &mut KeyRecord, now: i64) -> Vec<Op> {
    let mut ops = Vec::new();
    let mut i = 0;
    while i < rec.materials.len() {
        let due = rec
            .materials
            .get(i)
            .and_then(|m| m.import.as_ref())
            .is_some_and(|f| f.imported && f.valid_to_ms.is_some_and(|at| at <= now));
        let before = rec.materials.len();
        if due && let Some(op) = remove_material(rec, i) {
            ops.push(op);
        }
        if rec.materials.len() == before {
            i += 1;
        }
    }
    settle_state(rec);
    ops
}

/// RotateKeyOnDemand on an `EXTERNAL` key: the material imported as `NEW_KEY_MATERIAL` becomes
/// current (it is moved last, where the current material lives).
pub(crate) fn promote_pending(rec: &mut KeyRecord, now: i64) -> Result<(), AwsError> {
    let Some(index) = rec
        .materials
        .iter()
        .position(MaterialInfo::is_pending_rotation)
    else {
        return Err(errors::invalid_state(format!(
            "No available key material pending rotation for the key: {}.",
            rec.arn()
        )));
    };
    let mut m = rec.materials.remove(index);
    m.created_ms = now;
    m.origin = MaterialOrigin::OnDemand;
    if let Some(f) = m.import.as_mut() {
        f.pending_rotation = false;
    }
    rec.materials.push(m);
    Ok(())
}

/// ListKeyRotations' import members of one material of an `EXTERNAL` symmetric key.
pub(crate) fn annotate(rec: &KeyRecord, m: &MaterialInfo, entry: &mut kms::RotationsListEntry) {
    if rec.origin != record::EXTERNAL || !rec.is_symmetric() {
        return;
    }
    let Some(f) = &m.import else {
        return;
    };
    entry.import_state = Some(
        if f.imported {
            "IMPORTED"
        } else {
            "PENDING_IMPORT"
        }
        .to_owned(),
    );
    entry.expiration_model = f.expiration_model.clone();
    entry.valid_to = f.valid_to_ms.map(Timestamp::from_epoch_millis);
    entry.key_material_description = f.description.clone();
    if f.pending_rotation {
        entry.key_material_state = Some("PENDING_ROTATION".to_owned());
        entry.rotation_date = None;
        entry.rotation_type = None;
    }
}

impl Kms {
    /// Every import record of `rec` (the key is being destroyed).
    pub(crate) async fn import_cleanup_ops(
        &self,
        rec: &KeyRecord,
    ) -> Result<Vec<Op>, citadel_store::StoreError> {
        let prefix = record::import_prefix(&rec.account, &rec.region, &rec.id);
        Ok(self
            .store
            .list(&prefix, None, MAX_IMPORT_PARAMS)
            .await?
            .into_iter()
            .map(|(path, _)| Op::delete(path, Expect::Any))
            .collect())
    }

    pub(crate) async fn get_parameters_for_import(
        &self,
        ctx: &RequestContext,
        req: kms::GetParametersForImportRequest,
    ) -> Result<kms::GetParametersForImportResponse, AwsError> {
        let algorithm_name = req.wrapping_algorithm.as_deref().unwrap_or_default();
        let spec_name = req.wrapping_key_spec.as_deref().unwrap_or_default();
        let r = self
            .resolve(ctx, req.key_id.as_deref().unwrap_or_default())
            .await?;
        let rec = &r.key.record;
        self.authorize(
            ctx,
            "kms:GetParametersForImport",
            Target::Key(&r.key),
            RequestConditions::new()
                .set("kms:WrappingAlgorithm", algorithm_name)
                .set("kms:WrappingKeySpec", spec_name)
                .request_alias(r.alias.as_deref()),
        )
        .await?;
        check_external(rec)?;
        state::check(rec.state, KeyOp::GetParametersForImport, &rec.arn())?;
        let algorithm = WrappingAlgorithm::from_name(algorithm_name).ok_or_else(|| {
            if algorithm_name == "RSAES_PKCS1_V1_5" {
                // Unconfirmed AWS wording.
                AwsError::validation(
                    "The RSAES_PKCS1_V1_5 wrapping algorithm is no longer supported. Use RSAES_OAEP_SHA_256 or RSA_AES_KEY_WRAP_SHA_256.",
                )
            } else {
                errors::unsupported(format!(
                    "Citadel does not support the wrapping algorithm {algorithm_name}: it is available in the AWS China Regions only."
                ))
            }
        })?;
        let spec = WrappingKeySpec::from_name(spec_name).ok_or_else(|| {
            errors::unsupported(format!(
                "Citadel does not support the wrapping key spec {spec_name}: it is available in the AWS China Regions only."
            ))
        })?;
        // RSA key generation is slow (seconds for 4096 bits): keep it off the async workers.
        let pair = tokio::task::spawn_blocking(move || WrappingKeyPair::generate(spec))
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "the wrapping key generation task failed");
                errors::internal()
            })?
            .map_err(|e| errors::crypto(&e))?;
        let now = self.now_ms();
        let key_id = PackedKeyId::parse(&rec.id).ok_or_else(errors::internal)?;
        let token_id = random_array::<TOKEN_ID_LEN>().map_err(|e| errors::crypto(&e))?;
        let secret = random_array::<32>().map_err(|e| errors::crypto(&e))?;
        let expires_ms = now.saturating_add(TOKEN_VALIDITY_MS);
        let params = ImportParams {
            key_id: rec.id.clone(),
            token_id: hex::encode(token_id.as_slice()),
            created_ms: now,
            expires_ms,
            wrapping_algorithm: algorithm.name().to_owned(),
            wrapping_key_spec: spec.name().to_owned(),
            private_key: hex::encode(pair.pkcs8()),
            token_secret: hex::encode(secret.as_slice()),
        };
        let mut token = token_body(&key_id, token_id.as_slice(), expires_ms);
        let tag = hmac_sha256(secret.as_slice(), &token);
        token.extend_from_slice(&tag);

        // Parameters nobody can use any more are dropped with the write of the new ones.
        let prefix = record::import_prefix(&rec.account, &rec.region, &rec.id);
        let mut ops = Vec::new();
        for (path, entry) in self
            .store
            .list(&prefix, None, MAX_IMPORT_PARAMS)
            .await
            .map_err(errors::store)?
        {
            let stale = serde_json::from_slice::<ImportParams>(&entry.value)
                .map_or(true, |p| p.expires_ms <= now);
            if stale {
                ops.push(Op::delete(path, Expect::Any));
            }
        }
        ops.push(
            citadel_store::put_json_op(
                record::import_path(&rec.account, &rec.region, &rec.id, &params.token_id),
                &params,
                Expect::Absent,
            )
            .map_err(errors::store)?,
        );
        self.store.batch(ops).await.map_err(errors::store)?;
        Ok(kms::GetParametersForImportResponse {
            key_id: Some(rec.arn()),
            import_token: Some(Blob::new(token)),
            public_key: Some(SensitiveBlob::new(pair.public_key_der().to_vec())),
            parameters_valid_to: Some(Timestamp::from_epoch_millis(expires_ms)),
        })
    }

    /// The wrapping key pair and algorithm an import token stands for, for the key `rec`.
    async fn redeem_token(
        &self,
        rec: &KeyRecord,
        token: &[u8],
        now: i64,
    ) -> Result<(WrappingKeyPair, WrappingAlgorithm), AwsError> {
        let parts = parse_token(token).ok_or_else(invalid_token)?;
        let key_id = PackedKeyId::parse(&rec.id).ok_or_else(errors::internal)?;
        if parts.key_id != key_id {
            return Err(invalid_token());
        }
        let path = record::import_path(&rec.account, &rec.region, &rec.id, &parts.token_id);
        let Some(params) = self
            .store
            .get_json::<ImportParams>(&path)
            .await
            .map_err(errors::store)?
        else {
            // Expired parameters are cleaned up: the token's own (unverifiable) expiry then
            // only chooses the more helpful of two refusals.
            return Err(if parts.expires_ms <= now {
                expired_token()
            } else {
                invalid_token()
            });
        };
        let secret =
            Zeroizing::new(hex::decode(&params.token_secret).map_err(|_| errors::internal())?);
        let expected = hmac_sha256(&secret, parts.body);
        if !constant_time_eq(&expected, parts.tag) || parts.expires_ms != params.expires_ms {
            return Err(invalid_token());
        }
        if params.expires_ms <= now {
            return Err(expired_token());
        }
        let pkcs8 =
            Zeroizing::new(hex::decode(&params.private_key).map_err(|_| errors::internal())?);
        let pair = WrappingKeyPair::from_pkcs8(&pkcs8).map_err(|e| errors::crypto(&e))?;
        let algorithm = WrappingAlgorithm::from_name(&params.wrapping_algorithm)
            .ok_or_else(errors::internal)?;
        Ok((pair, algorithm))
    }

    pub(crate) async fn import_key_material(
        &self,
        ctx: &RequestContext,
        req: kms::ImportKeyMaterialRequest,
    ) -> Result<kms::ImportKeyMaterialResponse, AwsError> {
        let model = req
            .expiration_model
            .clone()
            .unwrap_or_else(|| EXPIRES.to_owned());
        let valid_to = req.valid_to.map(Timestamp::epoch_millis);
        let r = self
            .resolve(ctx, req.key_id.as_deref().unwrap_or_default())
            .await?;
        let rec = &r.key.record;
        let mut conditions = RequestConditions::new().set("kms:ExpirationModel", model.as_str());
        if let Some(at) = valid_to {
            conditions = conditions.set("kms:ValidTo", (at / 1000).to_string());
        }
        self.authorize(
            ctx,
            "kms:ImportKeyMaterial",
            Target::Key(&r.key),
            conditions.request_alias(r.alias.as_deref()),
        )
        .await?;
        check_external(rec)?;
        state::check(rec.state, KeyOp::ImportKeyMaterial, &rec.arn())?;
        let now = self.now_ms();
        let valid_to = check_expiry(&model, valid_to, now)?;
        let import_type = req.import_type.as_deref();
        if import_type == Some(NEW_KEY_MATERIAL) && req.key_material_id.is_some() {
            // Unconfirmed AWS wording.
            return Err(AwsError::validation(
                "You cannot specify a KeyMaterialId when the ImportType is NEW_KEY_MATERIAL.",
            ));
        }
        let spec = rec.spec().ok_or_else(errors::internal)?;
        let (pair, algorithm) = self
            .redeem_token(
                rec,
                req.import_token.as_ref().map_or(&[][..], Blob::as_bytes),
                now,
            )
            .await?;
        let wrapped = req
            .encrypted_key_material
            .as_ref()
            .map_or(&[][..], Blob::as_bytes);
        let secret = pair
            .unwrap(algorithm, wrapped)
            .map_err(|_| errors::invalid_ciphertext())?;
        check_material(spec, &secret)?;
        let key_id = PackedKeyId::parse(&rec.id).ok_or_else(errors::internal)?;
        let material = Material::new(&key_id, spec.material, secret);
        let material_id = material.id_hex();
        if req
            .key_material_id
            .as_deref()
            .is_some_and(|given| given != material_id)
        {
            return Err(incorrect_material());
        }
        let description = req.key_material_description.clone();
        let arn = self
            .update_key(r.key, |current| {
                let mut rec = current.record.clone();
                state::check(rec.state, KeyOp::ImportKeyMaterial, &rec.arn())?;
                let kind = import_type.unwrap_or(if rec.materials.is_empty() {
                    NEW_KEY_MATERIAL
                } else {
                    EXISTING_KEY_MATERIAL
                });
                let existing = rec.materials.iter().position(|m| m.id == material_id);
                let mut extra = Vec::new();
                match (kind, existing) {
                    (NEW_KEY_MATERIAL, Some(_)) | (EXISTING_KEY_MATERIAL, None) => {
                        return Err(incorrect_material());
                    }
                    (NEW_KEY_MATERIAL, None) => {
                        let first = rec.materials.is_empty();
                        if !first && !rec.is_symmetric() {
                            // Only symmetric keys rotate; the others keep their first material.
                            return Err(incorrect_material());
                        }
                        if rec.materials.iter().any(MaterialInfo::is_pending_rotation) {
                            // Unconfirmed AWS wording.
                            return Err(errors::invalid_state(format!(
                                "{} already has key material pending rotation. Rotate the key or delete that key material before importing new key material.",
                                rec.arn()
                            )));
                        }
                        rec.materials.push(MaterialInfo {
                            id: material_id.clone(),
                            created_ms: now,
                            origin: if first {
                                MaterialOrigin::Initial
                            } else {
                                MaterialOrigin::OnDemand
                            },
                            import: Some(ImportFacts {
                                imported: true,
                                expiration_model: Some(model.clone()),
                                valid_to_ms: valid_to,
                                description: description.clone(),
                                pending_rotation: !first,
                            }),
                        });
                        extra.push(material_op(&rec, &material));
                    }
                    (_, Some(index)) => {
                        let present = rec.materials.get(index).is_some_and(MaterialInfo::is_present);
                        if !present {
                            extra.push(material_op(&rec, &material));
                        }
                        if let Some(m) = rec.materials.get_mut(index) {
                            let old = m.import.take();
                            m.import = Some(ImportFacts {
                                imported: true,
                                expiration_model: Some(model.clone()),
                                valid_to_ms: valid_to,
                                description: description
                                    .clone()
                                    .or_else(|| old.as_ref().and_then(|f| f.description.clone())),
                                pending_rotation: old.is_some_and(|f| f.pending_rotation),
                            });
                        }
                    }
                    // The model's enum check admits no other import type.
                    _ => return Err(errors::internal()),
                }
                settle_state(&mut rec);
                Ok(Change {
                    out: rec.arn(),
                    record: rec,
                    extra,
                })
            })
            .await?;
        tracing::info!(key = %arn, key_material_id = %material_id, "KMS key material imported");
        Ok(kms::ImportKeyMaterialResponse {
            key_id: Some(arn),
            key_material_id: Some(material_id),
        })
    }

    pub(crate) async fn delete_imported_key_material(
        &self,
        ctx: &RequestContext,
        req: kms::DeleteImportedKeyMaterialRequest,
    ) -> Result<kms::DeleteImportedKeyMaterialResponse, AwsError> {
        let r = self
            .resolve(ctx, req.key_id.as_deref().unwrap_or_default())
            .await?;
        let rec = &r.key.record;
        self.authorize(
            ctx,
            "kms:DeleteImportedKeyMaterial",
            Target::Key(&r.key),
            RequestConditions::new().request_alias(r.alias.as_deref()),
        )
        .await?;
        check_external(rec)?;
        state::check(rec.state, KeyOp::DeleteImportedKeyMaterial, &rec.arn())?;
        let wanted = req.key_material_id.clone();
        let (arn, material_id) = self
            .update_key(r.key, |current| {
                let mut rec = current.record.clone();
                state::check(rec.state, KeyOp::DeleteImportedKeyMaterial, &rec.arn())?;
                let id = match &wanted {
                    Some(id) => id.clone(),
                    None => match rec.current_material() {
                        Some(m) => m.id.clone(),
                        // Nothing was ever imported.
                        None => {
                            return Err(errors::invalid_state(format!(
                                "{} is pending import.",
                                rec.arn()
                            )));
                        }
                    },
                };
                let index = rec
                    .materials
                    .iter()
                    .position(|m| m.id == id)
                    .ok_or_else(|| {
                        // Unconfirmed AWS wording.
                        errors::not_found(format!(
                            "Key material {id} is not associated with the key {}.",
                            rec.arn()
                        ))
                    })?;
                let mut extra = Vec::new();
                let present = rec
                    .materials
                    .get(index)
                    .is_some_and(MaterialInfo::is_present);
                if present && let Some(op) = remove_material(&mut rec, index) {
                    extra.push(op);
                }
                settle_state(&mut rec);
                Ok(Change {
                    out: (rec.arn(), id),
                    record: rec,
                    extra,
                })
            })
            .await?;
        tracing::info!(key = %arn, key_material_id = %material_id, "KMS imported key material deleted");
        Ok(kms::DeleteImportedKeyMaterialResponse {
            key_id: Some(arn),
            key_material_id: Some(material_id),
        })
    }
}
