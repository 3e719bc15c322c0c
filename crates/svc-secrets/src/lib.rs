//! AWS Secrets Manager (awsJson1.1): versioned secrets with AWS's staging labels (AWSCURRENT
//! moves, AWSPREVIOUS follows, a label is on at most one version), `ClientRequestToken`
//! idempotency, per-version KMS envelope encryption, resource policies with BlockPublicPolicy,
//! soft deletion with a recovery window, and rotation that really runs — on demand and on
//! schedule — through rotators configured by name.
//!
//! # Storage
//! Secrets live per (account, region) in the sealed store; see [`record`] for the layout. A
//! secret's metadata and every version's labels are one record, written by compare-and-swap, so
//! every write is atomic (nothing half-written on error) and label invariants hold under
//! concurrency. Values are separate write-once records.
//!
//! # Encryption
//! Every version is encrypted with its own data key: `KeyService::generate_data_key` under the
//! secret's key (`alias/aws/secretsmanager` unless the secret names a customer key; KMS creates
//! the AWS-managed key on first use), with the caller's context forwarded through
//! `ctx.via("secretsmanager")` (so `kms:ViaService = secretsmanager.<region>.amazonaws.com`) and
//! the encryption context `{"SecretARN": arn, "SecretVersionId": version_id}`. The value is
//! sealed with AES-256-GCM under the data key (additional data: the same context), and the record
//! keeps the KMS-encrypted data key, the nonce and the ciphertext. One path for every size (values
//! are up to 64 KiB, above `kms:Encrypt`'s 4 KiB), exactly AWS's documented design.
//! GetSecretValue asks KMS to decrypt the data key with the caller's forwarded context: a caller
//! allowed `secretsmanager:GetSecretValue` but not `kms:Decrypt` gets AWS's
//! `AccessDeniedException` ("Access to KMS is not allowed"). Idempotent retries
//! (`ClientRequestToken` already used) compare an HMAC fingerprint of the value, kept with the
//! version, in constant time — no decryption needed.
//!
//! # Authorization
//! The handler authorizes itself: every operation asks the shared [`Authorizer`] with the
//! secret's ARN, its resource policy (within the account identity *or* resource policy
//! suffices; across accounts both must allow) and Secrets Manager's condition keys
//! ([`authz`]). ListSecrets, GetRandomPassword and BatchGetSecretValue authorize on `*`;
//! BatchGetSecretValue then authorizes GetSecretValue per secret.
//!
//! # Rotation
//! RotateSecret creates the AWSPENDING placeholder version and runs AWS's four steps
//! (`createSecret`, `setSecret`, `testSecret`, `finishSecret`) in a background task through the
//! rotator that `RotationLambdaARN` names (`arn:aws:lambda:<region>:<account>:function:<name>`
//! looks up `<name>` among the configured [`rotation::Rotator`]s: local commands receiving the
//! Lambda event on stdin, HMAC-signed webhooks, built-in PostgreSQL rotators). The step about to run is persisted, so a
//! restart resumes the rotation ([`SecretsManager::run_due`]). A failed step leaves AWSPENDING
//! where it is, records the failure (DescribeSecret shows it as `CitadelLastRotationFailure`, a
//! member AWS does not have, which SDKs ignore) and logs a `RotationFailed` event; AWSCURRENT is
//! never touched by the service itself except through the rotator's own calls.
//!
//! # Multi-Region secrets
//! A replica is a read-only copy of a secret in another Region of this deployment, kept in step
//! by every write of its primary in the same atomic batch (see [`replication`]).
//!
//! # Scheduled work
//! [`SecretsManager::run_due`] purges secrets whose recovery window ended and starts or resumes
//! rotations, driven by a time-ordered index so it reads only what is due. Each piece of work
//! commits by compare-and-swap together with the removal of its index entry, so it happens
//! exactly once even when run twice or after a crash.

pub mod authz;
mod clock;
mod envelope;
mod errors;
pub mod names;
pub mod password;
pub mod record;
mod replication;
mod repo;
pub mod rotation;

mod due;
mod ops_policy;
mod ops_secret;
mod ops_value;
mod reference;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use citadel_api::{
    AwsError, KeyService, OperationInput, OperationOutput, OperationSpec, RequestContext,
    ServiceHandler, ServiceSpec, Support,
};
use citadel_iam::Authorizer;
use citadel_model::secretsmanager as sm;
use citadel_store::SealedStore;
use serde::Serialize;

pub use clock::{Clock, ManualClock, SystemClock};
pub use due::DueReport;
pub use errors::SecretsError;
pub use rotation::{
    RotationEvent, RotationSettings, Rotator, RotatorConfig, RotatorError, SecretsConfig,
};

/// The Secrets Manager operations this crate implements.
pub const IMPLEMENTED: &[(&str, Support)] = &[
    ("BatchGetSecretValue", Support::Full),
    ("CancelRotateSecret", Support::Full),
    (
        "CreateSecret",
        Support::Partial(
            "AddReplicaRegions replicates within this deployment (a Region is a namespace of the same store), synchronously in the primary's write rather than asynchronously",
        ),
    ),
    ("DeleteResourcePolicy", Support::Full),
    ("DeleteSecret", Support::Full),
    ("DescribeSecret", Support::Full),
    ("GetRandomPassword", Support::Full),
    ("GetResourcePolicy", Support::Full),
    ("GetSecretValue", Support::Full),
    ("ListSecretVersionIds", Support::Full),
    (
        "ListSecrets",
        Support::Partial(
            "the owning-service filter matches no secret (no secrets managed by other services)",
        ),
    ),
    ("PutResourcePolicy", Support::Full),
    ("PutSecretValue", Support::Full),
    ("RemoveRegionsFromReplication", Support::Full),
    ("ReplicateSecretToRegions", Support::Full),
    ("RestoreSecret", Support::Full),
    (
        "RotateSecret",
        Support::Partial(
            "rotators are configured commands, webhooks and built-in PostgreSQL rotators (single user, alternating users) named by RotationLambdaARN; managed and external-partner rotation (ExternalSecretRotationMetadata) are not supported",
        ),
    ),
    ("StopReplicationToReplica", Support::Full),
    ("TagResource", Support::Full),
    ("UntagResource", Support::Full),
    ("UpdateSecret", Support::Full),
    ("UpdateSecretVersionStage", Support::Full),
    (
        "ValidateResourcePolicy",
        Support::Partial(
            "syntax, broad (public) access and lock-out are checked; broad access is judged by Citadel's rules (see ops_policy.rs), not by AWS's Zelkova",
        ),
    ),
];

/// The Secrets Manager service handler. Share it as `Arc<SecretsManager>` between the
/// dispatcher and the scheduler.
pub struct SecretsManager {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    store: Arc<SealedStore>,
    authorizer: Arc<Authorizer>,
    keys: Arc<dyn KeyService>,
    clock: Arc<dyn Clock>,
    rotation: std::sync::RwLock<RotationSettings>,
    /// Rotations this process is running (secret record paths): the scheduler resumes only the
    /// others, which were interrupted by a restart.
    running: Mutex<HashSet<String>>,
    /// Signalled whenever a rotation task ends (tests wait on it).
    settled: tokio::sync::Notify,
    /// Where rotation results go (the event bus), once connected.
    events: std::sync::OnceLock<Arc<dyn citadel_events::Publisher>>,
}

impl fmt::Debug for SecretsManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretsManager")
            .field("store", &self.inner.store)
            .field("clock", &self.inner.clock)
            .finish_non_exhaustive()
    }
}

impl SecretsManager {
    /// Secrets Manager over `store`, on the system clock, authorizing with `authorizer` and
    /// encrypting through `keys` (Citadel's KMS). Reads nothing until the first request.
    pub fn new(
        store: Arc<SealedStore>,
        authorizer: Arc<Authorizer>,
        keys: Arc<dyn KeyService>,
    ) -> Self {
        Self::with_clock(store, authorizer, keys, Arc::new(SystemClock))
    }

    /// With an injected clock (tests move time to reach deletion and rotation dates).
    pub fn with_clock(
        store: Arc<SealedStore>,
        authorizer: Arc<Authorizer>,
        keys: Arc<dyn KeyService>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        SecretsManager {
            inner: Arc::new(Inner {
                store,
                authorizer,
                keys,
                clock,
                rotation: std::sync::RwLock::new(RotationSettings::default()),
                running: Mutex::new(HashSet::new()),
                settled: tokio::sync::Notify::new(),
                events: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Installs the rotators (by name) and how rotation tasks reach the server.
    pub fn with_rotation(self, settings: RotationSettings) -> Self {
        self.set_rotation(settings);
        self
    }

    /// Connects the event bus: rotation results (`RotationSucceeded`, `RotationFailed`) are
    /// emitted as AWS's Secrets Manager service events. A second call is ignored.
    pub fn set_events(&self, publisher: Arc<dyn citadel_events::Publisher>) {
        let _ = self.inner.events.set(publisher);
    }

    /// Replaces the rotation settings (rotations already running keep theirs).
    pub fn set_rotation(&self, settings: RotationSettings) {
        *self
            .inner
            .rotation
            .write()
            .unwrap_or_else(PoisonError::into_inner) = settings;
    }

    /// The configured rotators, by name.
    pub fn rotator_names(&self) -> Vec<String> {
        let settings = self
            .inner
            .rotation
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let mut names: Vec<String> = settings.rotators.keys().cloned().collect();
        names.sort();
        names
    }

    /// Waits until no rotation task of this instance is running (tests).
    pub async fn rotations_settled(&self) {
        loop {
            let notified = self.inner.settled.notified();
            if self.inner.running_count() == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Does everything due at or before `now`: purges secrets whose recovery window ended,
    /// starts scheduled rotations and resumes interrupted ones (in background tasks).
    pub async fn run_due(&self, now: time::OffsetDateTime) -> Result<DueReport, SecretsError> {
        due::run_due(&self.inner, now).await
    }
}

impl Inner {
    pub(crate) fn now_ms(&self) -> i64 {
        clock::to_millis(self.clock.now())
    }

    pub(crate) fn running_count(&self) -> usize {
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub(crate) fn rotators(&self) -> HashMap<String, Arc<dyn Rotator>> {
        self.rotation
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .rotators
            .clone()
    }
}

/// The body of operations without output: AWS answers them with an empty JSON object.
#[derive(Debug, Serialize)]
struct Empty {}

pub(crate) fn json_output<T: Serialize>(value: &T) -> Result<OperationOutput, AwsError> {
    citadel_api::json::output(value, errors::internal)
}

macro_rules! dispatch {
    ($inner:expr, $ctx:ident, $body:ident, $name:expr, { $($op:literal => $req:ty => $method:ident,)* }) => {
        match $name {
            $(
                $op => {
                    let req: $req = citadel_api::json::decode(&$body)?;
                    req.validate()?;
                    $inner.$method($ctx, req).await
                }
            )*
            other => Err(AwsError::unsupported_operation("secretsmanager", other)),
        }
    };
}

#[async_trait::async_trait]
impl ServiceHandler for SecretsManager {
    fn spec(&self) -> &'static ServiceSpec {
        &sm::SPEC
    }

    fn implemented(&self) -> &'static [(&'static str, Support)] {
        IMPLEMENTED
    }

    /// Every handler authorizes with the secret's ARN, resource policy and condition keys.
    fn authorizes_itself(&self) -> bool {
        true
    }

    async fn handle(
        &self,
        ctx: &RequestContext,
        operation: &'static OperationSpec,
        input: OperationInput,
    ) -> Result<OperationOutput, AwsError> {
        if self.inner.store.is_sealed() {
            return Err(AwsError::sealed());
        }
        let OperationInput::Json(body) = input else {
            tracing::error!(
                operation = operation.name,
                "Secrets Manager received a non-JSON input; the router should not allow that"
            );
            return Err(errors::internal());
        };
        let inner = &self.inner;
        dispatch!(inner, ctx, body, operation.name, {
            "BatchGetSecretValue" => sm::BatchGetSecretValueRequest => batch_get_secret_value,
            "CancelRotateSecret" => sm::CancelRotateSecretRequest => cancel_rotate_secret,
            "CreateSecret" => sm::CreateSecretRequest => create_secret,
            "DeleteResourcePolicy" => sm::DeleteResourcePolicyRequest => delete_resource_policy,
            "DeleteSecret" => sm::DeleteSecretRequest => delete_secret,
            "DescribeSecret" => sm::DescribeSecretRequest => describe_secret,
            "GetRandomPassword" => sm::GetRandomPasswordRequest => get_random_password,
            "GetResourcePolicy" => sm::GetResourcePolicyRequest => get_resource_policy,
            "GetSecretValue" => sm::GetSecretValueRequest => get_secret_value,
            "ListSecretVersionIds" => sm::ListSecretVersionIdsRequest => list_secret_version_ids,
            "ListSecrets" => sm::ListSecretsRequest => list_secrets,
            "PutResourcePolicy" => sm::PutResourcePolicyRequest => put_resource_policy,
            "PutSecretValue" => sm::PutSecretValueRequest => put_secret_value,
            "RemoveRegionsFromReplication" => sm::RemoveRegionsFromReplicationRequest => remove_regions_from_replication,
            "ReplicateSecretToRegions" => sm::ReplicateSecretToRegionsRequest => replicate_secret_to_regions,
            "RestoreSecret" => sm::RestoreSecretRequest => restore_secret,
            "RotateSecret" => sm::RotateSecretRequest => rotate_secret,
            "StopReplicationToReplica" => sm::StopReplicationToReplicaRequest => stop_replication_to_replica,
            "TagResource" => sm::TagResourceRequest => tag_resource,
            "UntagResource" => sm::UntagResourceRequest => untag_resource,
            "UpdateSecret" => sm::UpdateSecretRequest => update_secret,
            "UpdateSecretVersionStage" => sm::UpdateSecretVersionStageRequest => update_secret_version_stage,
            "ValidateResourcePolicy" => sm::ValidateResourcePolicyRequest => validate_resource_policy,
        })
    }
}

/// The scheduler's entry point: the same work as [`SecretsManager::run_due`], reported in the
/// log.
#[async_trait::async_trait]
impl citadel_api::ScheduledWork for SecretsManager {
    fn name(&self) -> &'static str {
        "secretsmanager"
    }

    async fn run_due(&self, now_unix: i64) -> Result<(), String> {
        let now = time::OffsetDateTime::from_unix_timestamp(now_unix)
            .map_err(|e| format!("invalid scheduler time {now_unix}: {e}"))?;
        let report = SecretsManager::run_due(self, now)
            .await
            .map_err(|e| e.to_string())?;
        if report.purged > 0 || report.rotations_started > 0 || report.rotations_resumed > 0 {
            tracing::info!(
                purged = report.purged,
                rotations_started = report.rotations_started,
                rotations_resumed = report.rotations_resumed,
                "Secrets Manager scheduled work done"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
