//! AWS KMS: every key spec of AWS's table except SM2 ([`specs`]) — symmetric, RSA, ECC, Ed25519,
//! ML-DSA and HMAC keys — with aliases, tags, key policies, grants, envelope encryption,
//! signatures, MACs, key agreement, data key pairs, multi-Region keys, imported key material
//! (BYOK), automatic and on-demand rotation, scheduled deletion and last-usage tracking.
//!
//! Keys live per (account, region) in the sealed store (see [`record`] for the layout); the
//! ciphertext format is in [`ciphertext`] and `docs/KMS_CIPHERTEXT.md`. Key states are enforced by
//! one table ([`state`]), authorization goes through one function ([`authz::decide`], which asks the shared
//! [`Authorizer`]), and the
//! cryptographic hot path reads keys and materials from an in-memory cache (`cache`).
//!
//! Wiring: `Kms::new(store, authorizer)` is the [`ServiceHandler`] and also the scheduler's
//! [`citadel_api::ScheduledWork`]; register the *same* `Arc<Kms>` with both, so the scheduler's
//! changes invalidate the cache the request path reads. [`Kms::run_due`] destroys keys whose
//! deletion date passed and performs due rotations.

pub mod authz;
mod cache;
pub mod ciphertext;
mod clock;
mod errors;
pub mod names;
pub mod record;
pub mod state;

mod aliases;
mod crypto;
mod data_key_pair;
mod due;
mod forwarded;
pub mod grants;
mod import;
mod keys;
pub mod last_usage;
mod mac;
pub mod managed;
mod material;
pub mod metering;
mod multi_region;
mod repo;
mod rotation;
mod rsa;
mod signing;
pub mod specs;

use std::fmt;
use std::sync::Arc;

use citadel_api::{
    AwsError, OperationInput, OperationOutput, OperationSpec, RequestContext, ServiceHandler,
    ServiceSpec, Support,
};
use citadel_iam::Authorizer;
use citadel_model::kms;
use citadel_store::SealedStore;
use serde::Serialize;

pub use clock::{Clock, ManualClock, SystemClock};
pub use due::DueReport;
pub use errors::KmsError;

use cache::KeyCache;

/// The KMS operations this crate implements. Custom key stores (CloudHSM, external key stores)
/// are not here: the dispatcher answers their operations with `UnsupportedOperationException`
/// after validating their input.
pub const IMPLEMENTED: &[(&str, Support)] = &[
    ("CancelKeyDeletion", Support::Full),
    ("CreateAlias", Support::Full),
    (
        "CreateGrant",
        Support::Partial(
            "GranteePrincipal and RetiringPrincipal are not checked to exist; grants work within the key's account",
        ),
    ),
    (
        "CreateKey",
        Support::Partial(
            "origins AWS_KMS and EXTERNAL (EXTERNAL not with MultiRegion); custom key stores (AWS_CLOUDHSM, EXTERNAL_KEY_STORE) are not supported",
        ),
    ),
    (
        "Decrypt",
        Support::Partial("Recipient (Nitro Enclaves) is not supported"),
    ),
    ("DeleteAlias", Support::Full),
    ("DeleteImportedKeyMaterial", Support::Full),
    (
        "DeriveSharedSecret",
        Support::Partial("Recipient (Nitro Enclaves) is not supported"),
    ),
    ("DescribeKey", Support::Full),
    ("DisableKey", Support::Full),
    ("DisableKeyRotation", Support::Full),
    ("EnableKey", Support::Full),
    ("EnableKeyRotation", Support::Full),
    ("Encrypt", Support::Full),
    (
        "GenerateDataKey",
        Support::Partial("Recipient (Nitro Enclaves) is not supported"),
    ),
    (
        "GenerateDataKeyPair",
        Support::Partial("SM2 and Recipient (Nitro Enclaves) are not supported"),
    ),
    (
        "GenerateDataKeyPairWithoutPlaintext",
        Support::Partial("SM2 is not supported"),
    ),
    ("GenerateDataKeyWithoutPlaintext", Support::Full),
    ("GenerateMac", Support::Full),
    (
        "GenerateRandom",
        Support::Partial("Recipient and custom key stores are not supported"),
    ),
    ("GetKeyLastUsage", Support::Full),
    ("GetKeyPolicy", Support::Full),
    ("GetKeyRotationStatus", Support::Full),
    (
        "GetParametersForImport",
        Support::Partial("RSA wrapping keys only (SM2 is China-only)"),
    ),
    ("GetPublicKey", Support::Full),
    (
        "ImportKeyMaterial",
        Support::Partial("not into multi-Region keys"),
    ),
    ("ListAliases", Support::Full),
    ("ListGrants", Support::Full),
    ("ListKeyPolicies", Support::Full),
    ("ListKeyRotations", Support::Full),
    ("ListKeys", Support::Full),
    ("ListResourceTags", Support::Full),
    ("ListRetirableGrants", Support::Full),
    ("PutKeyPolicy", Support::Full),
    ("ReEncrypt", Support::Full),
    (
        "ReplicateKey",
        Support::Partial(
            "keys with origin AWS_KMS only (imported-material multi-Region keys are not supported)",
        ),
    ),
    ("RetireGrant", Support::Full),
    ("RevokeGrant", Support::Full),
    ("RotateKeyOnDemand", Support::Full),
    ("ScheduleKeyDeletion", Support::Full),
    (
        "Sign",
        Support::Partial("MessageType EXTERNAL_MU and ED25519_PH_SHA_512 are not supported"),
    ),
    ("TagResource", Support::Full),
    ("UntagResource", Support::Full),
    ("UpdateAlias", Support::Full),
    ("UpdateKeyDescription", Support::Full),
    ("UpdatePrimaryRegion", Support::Full),
    (
        "Verify",
        Support::Partial("MessageType EXTERNAL_MU and ED25519_PH_SHA_512 are not supported"),
    ),
    ("VerifyMac", Support::Full),
];

/// The KMS service handler. Share it as `Arc<Kms>`: the dispatcher and the scheduler must use the
/// same instance so that both see one cache.
pub struct Kms {
    store: Arc<SealedStore>,
    authorizer: Arc<Authorizer>,
    clock: Arc<dyn Clock>,
    cache: KeyCache,
    /// Grants per key (AWS's quota; tests lower it).
    grant_limit: usize,
    /// Request counts not yet in the usage ledger.
    meter: metering::Meter,
    /// Each key's last cryptographic use not yet written (GetKeyLastUsage).
    last_usage: last_usage::Tracker,
    /// Where rotation and deletion events go (the event bus), once the server connects it.
    events: std::sync::OnceLock<Arc<dyn citadel_events::Publisher>>,
}

tokio::task_local! {
    /// The key a request is about, set by the first successful authorization on a key, read by
    /// the meter once the request is answered.
    static REQUEST_KEY: std::cell::RefCell<Option<String>>;
}

/// Remembers `key_id` as the key of the current request, unless one is already known.
pub(crate) fn note_request_key(key_id: &str) {
    let _ = REQUEST_KEY.try_with(|k| {
        let mut k = k.borrow_mut();
        if k.is_none() {
            *k = Some(key_id.to_owned());
        }
    });
}

impl fmt::Debug for Kms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kms")
            .field("store", &self.store)
            .field("clock", &self.clock)
            .field("cache", &self.cache)
            .finish()
    }
}

impl Kms {
    /// KMS over `store`, on the system clock, asking `authorizer` (the server's one) about every
    /// request. Reads nothing until the first request, so it can be built while the store is
    /// still sealed.
    pub fn new(store: Arc<SealedStore>, authorizer: Arc<Authorizer>) -> Self {
        Self::with_clock(store, authorizer, Arc::new(SystemClock))
    }

    /// KMS with an injected clock (tests move time to reach deletion and rotation dates).
    pub fn with_clock(
        store: Arc<SealedStore>,
        authorizer: Arc<Authorizer>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Kms {
            store,
            authorizer,
            clock,
            cache: KeyCache::default(),
            grant_limit: grants::MAX_GRANTS_PER_KEY,
            meter: metering::Meter::default(),
            last_usage: last_usage::Tracker::default(),
            events: std::sync::OnceLock::new(),
        }
    }

    /// Forgets everything cached about the key `key_id` (any account or region) and the aliases
    /// pointing to it. For changes made outside this instance (another node); changes made
    /// through this instance invalidate by themselves.
    pub fn invalidate(&self, key_id: &str) {
        self.cache.invalidate_key_id(key_id);
    }

    /// Forgets what is cached from the storage key `key`, which another node (or this one)
    /// changed: the key record for its record, materials, grants and import tokens, the alias
    /// for an alias. Other KMS keys (schedule, usage, owner index) are not cached by value.
    pub fn storage_key_changed(&self, key: &str) {
        let mut parts = key.splitn(5, '/');
        let (Some("kms"), Some(account), Some(region), Some(kind), Some(rest)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return;
        };
        match kind {
            "key" => self.cache.invalidate_key(key),
            "material" | "grant" | "import" => {
                let key_id = rest.split('/').next().unwrap_or(rest);
                self.cache
                    .invalidate_key(&record::key_path(account, region, key_id));
            }
            "alias" => self.cache.invalidate_alias(key),
            _ => {}
        }
    }

    /// Connects the event bus: automatic rotations, deletions and expirations of imported
    /// material then emit AWS's "KMS CMK Rotation", "KMS CMK Deletion" and "KMS Imported Key
    /// Material Expiration" events. A second call is ignored.
    pub fn set_events(&self, publisher: Arc<dyn citadel_events::Publisher>) {
        let _ = self.events.set(publisher);
    }

    /// Emits a service event, if a bus is connected. The change it reports is already
    /// committed: a failure is logged, never undoes it.
    async fn emit(&self, event: Result<citadel_events::Event, citadel_events::EventError>) {
        let Some(bus) = self.events.get() else {
            return;
        };
        match event {
            Ok(e) => {
                if let Err(error) = bus.publish(&e).await {
                    tracing::error!(%error, detail_type = %e.detail_type, "emitting a KMS event failed");
                }
            }
            Err(error) => tracing::error!(%error, "building a KMS event failed"),
        }
    }

    /// Forgets the whole cache (after a restore, or when the store was sealed and unsealed).
    pub fn invalidate_all(&self) {
        self.cache.clear();
    }

    fn now_ms(&self) -> i64 {
        clock::to_millis(self.clock.now())
    }

    /// Runs one request (direct or forwarded by another service) and counts it for metering
    /// when it was authorized: denied requests are not billed.
    pub(crate) async fn metered<T>(
        &self,
        ctx: &RequestContext,
        operation: &'static str,
        work: impl std::future::Future<Output = Result<T, AwsError>>,
    ) -> Result<T, AwsError> {
        let (result, key) = REQUEST_KEY
            .scope(std::cell::RefCell::new(None), async {
                let result = work.await;
                let key = REQUEST_KEY.with(|k| k.borrow_mut().take());
                (result, key)
            })
            .await;
        if ctx.authorized.is_marked() {
            self.meter.count(
                &ctx.principal.account_id,
                &ctx.region,
                key.as_deref(),
                operation,
            );
            if let (Ok(_), Some(key)) = (&result, &key) {
                self.last_usage
                    .used(&ctx.region, key, operation, self.now_ms(), &ctx.request_id);
            }
        }
        result
    }
}

/// The body of operations without output: AWS answers them with an empty JSON object.
#[derive(Debug, Serialize)]
struct Empty {}

#[async_trait::async_trait]
impl ServiceHandler for Kms {
    fn spec(&self) -> &'static ServiceSpec {
        &kms::SPEC
    }

    fn implemented(&self) -> &'static [(&'static str, Support)] {
        IMPLEMENTED
    }

    fn on_seal(&self) {
        self.invalidate_all();
    }

    /// Every handler authorizes with the key's ARN, key policy and KMS condition keys.
    fn authorizes_itself(&self) -> bool {
        true
    }

    async fn handle(
        &self,
        ctx: &RequestContext,
        operation: &'static OperationSpec,
        input: OperationInput,
    ) -> Result<OperationOutput, AwsError> {
        // Sealing must take decrypted key material out of memory too: the first request that
        // sees the store sealed empties the cache (the seal path can call `invalidate_all`
        // directly for immediate effect).
        if self.store.is_sealed() {
            self.cache.clear();
            return Err(AwsError::sealed());
        }
        let OperationInput::Json(body) = input else {
            tracing::error!(
                operation = operation.name,
                "KMS received a non-JSON input; the router should not allow that"
            );
            return Err(errors::internal());
        };
        self.metered(ctx, operation.name, self.dispatch(ctx, operation, body))
            .await
    }
}

impl Kms {
    async fn dispatch(
        &self,
        ctx: &RequestContext,
        operation: &'static OperationSpec,
        body: bytes::Bytes,
    ) -> Result<OperationOutput, AwsError> {
        citadel_api::dispatch_json!("kms", errors::internal, self, ctx, body, operation.name, {
            "CancelKeyDeletion" => kms::CancelKeyDeletionRequest => cancel_key_deletion,
            "CreateAlias" => kms::CreateAliasRequest => create_alias,
            "CreateGrant" => kms::CreateGrantRequest => create_grant,
            "CreateKey" => kms::CreateKeyRequest => create_key,
            "Decrypt" => kms::DecryptRequest => decrypt,
            "DeleteAlias" => kms::DeleteAliasRequest => delete_alias,
            "DeleteImportedKeyMaterial" => kms::DeleteImportedKeyMaterialRequest => delete_imported_key_material,
            "DeriveSharedSecret" => kms::DeriveSharedSecretRequest => derive_shared_secret,
            "DescribeKey" => kms::DescribeKeyRequest => describe_key,
            "DisableKey" => kms::DisableKeyRequest => disable_key,
            "DisableKeyRotation" => kms::DisableKeyRotationRequest => disable_key_rotation,
            "EnableKey" => kms::EnableKeyRequest => enable_key,
            "EnableKeyRotation" => kms::EnableKeyRotationRequest => enable_key_rotation,
            "Encrypt" => kms::EncryptRequest => encrypt,
            "GenerateDataKey" => kms::GenerateDataKeyRequest => generate_data_key,
            "GenerateDataKeyPair" => kms::GenerateDataKeyPairRequest => generate_data_key_pair,
            "GenerateDataKeyPairWithoutPlaintext" => kms::GenerateDataKeyPairWithoutPlaintextRequest => generate_data_key_pair_without_plaintext,
            "GenerateDataKeyWithoutPlaintext" => kms::GenerateDataKeyWithoutPlaintextRequest => generate_data_key_without_plaintext,
            "GenerateMac" => kms::GenerateMacRequest => generate_mac,
            "GenerateRandom" => kms::GenerateRandomRequest => generate_random,
            "GetKeyLastUsage" => kms::GetKeyLastUsageRequest => get_key_last_usage,
            "GetKeyPolicy" => kms::GetKeyPolicyRequest => get_key_policy,
            "GetKeyRotationStatus" => kms::GetKeyRotationStatusRequest => get_key_rotation_status,
            "GetParametersForImport" => kms::GetParametersForImportRequest => get_parameters_for_import,
            "GetPublicKey" => kms::GetPublicKeyRequest => get_public_key,
            "ImportKeyMaterial" => kms::ImportKeyMaterialRequest => import_key_material,
            "ListAliases" => kms::ListAliasesRequest => list_aliases,
            "ListGrants" => kms::ListGrantsRequest => list_grants,
            "ListKeyPolicies" => kms::ListKeyPoliciesRequest => list_key_policies,
            "ListKeyRotations" => kms::ListKeyRotationsRequest => list_key_rotations,
            "ListKeys" => kms::ListKeysRequest => list_keys,
            "ListResourceTags" => kms::ListResourceTagsRequest => list_resource_tags,
            "ListRetirableGrants" => kms::ListRetirableGrantsRequest => list_retirable_grants,
            "PutKeyPolicy" => kms::PutKeyPolicyRequest => put_key_policy,
            "ReEncrypt" => kms::ReEncryptRequest => re_encrypt,
            "ReplicateKey" => kms::ReplicateKeyRequest => replicate_key,
            "RetireGrant" => kms::RetireGrantRequest => retire_grant,
            "RevokeGrant" => kms::RevokeGrantRequest => revoke_grant,
            "RotateKeyOnDemand" => kms::RotateKeyOnDemandRequest => rotate_key_on_demand,
            "ScheduleKeyDeletion" => kms::ScheduleKeyDeletionRequest => schedule_key_deletion,
            "Sign" => kms::SignRequest => sign,
            "TagResource" => kms::TagResourceRequest => tag_resource,
            "UntagResource" => kms::UntagResourceRequest => untag_resource,
            "UpdateAlias" => kms::UpdateAliasRequest => update_alias,
            "UpdateKeyDescription" => kms::UpdateKeyDescriptionRequest => update_key_description,
            "UpdatePrimaryRegion" => kms::UpdatePrimaryRegionRequest => update_primary_region,
            "Verify" => kms::VerifyRequest => verify,
            "VerifyMac" => kms::VerifyMacRequest => verify_mac,
        })
    }
}

/// The scheduler's entry point: the same work as [`Kms::run_due`], reported in the log.
#[async_trait::async_trait]
impl citadel_api::ScheduledWork for Kms {
    fn name(&self) -> &'static str {
        "kms"
    }

    async fn run_due(&self, now_unix: i64) -> Result<(), String> {
        let now = time::OffsetDateTime::from_unix_timestamp(now_unix)
            .map_err(|e| format!("invalid scheduler time {now_unix}: {e}"))?;
        let report = Kms::run_due(self, now).await.map_err(|e| e.to_string())?;
        self.flush_usage(clock::to_millis(now))
            .await
            .map_err(|e| format!("writing KMS usage: {e}"))?;
        self.flush_last_usage()
            .await
            .map_err(|e| format!("writing KMS key last usage: {e}"))?;
        if !report.deleted.is_empty() || !report.rotated.is_empty() || report.deferred > 0 {
            tracing::info!(
                deleted = report.deleted.len(),
                rotated = report.rotated.len(),
                deferred = report.deferred,
                "KMS scheduled work done"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
