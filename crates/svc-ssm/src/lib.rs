//! AWS Systems Manager Parameter Store: hierarchical String / StringList / SecureString
//! parameters with versions, labels, tags, tiers, parameter policies and the throughput quota.
//!
//! Parameters live per (account, region) in the sealed store (layout in [`record`]); a
//! hierarchy is one ordered key range, so path reads page without scanning. SecureString values
//! are encrypted by KMS through [`KeyService`] on the caller's behalf (`kms:ViaService =
//! ssm.<region>.amazonaws.com`, encryption context `PARAMETER_ARN`), so reading a plaintext
//! needs `kms:Decrypt` as well as `ssm:GetParameter*`.
//!
//! Wiring: `Ssm::new(store, authorizer, keys)` is the [`ServiceHandler`] and the scheduler's
//! [`citadel_api::ScheduledWork`] (parameter policies); register the same `Arc<Ssm>` with both.
//! `Ssm::configure` applies the operator's `[ssm]` settings ([`SsmConfig`]): quotas and the
//! public `/aws/service/` parameters. `Ssm::set_secrets` connects Secrets Manager, which
//! answers `/aws/reference/secretsmanager/<secret-id>` ([`reference`]).

mod authz;
mod clock;
mod due;
mod errors;
mod events;
mod filters;
pub mod names;
mod params;
pub mod policies;
mod public;
pub mod record;
mod reference;
mod secure;
mod settings;
mod sharing;
mod tags;
mod throttle;

use std::fmt;
use std::sync::Arc;

use citadel_api::{
    AwsError, KeyService, OperationInput, OperationOutput, OperationSpec, RequestContext,
    SecretReader, ServiceHandler, ServiceSpec, Support,
};
use citadel_iam::Authorizer;
use citadel_model::ssm;
use citadel_store::SealedStore;
use serde::Serialize;

pub use clock::{Clock, ManualClock, SystemClock};
pub use errors::SsmError;
pub use public::{PublicParameters, SsmConfig};

/// The Parameter Store operations this crate implements. The rest of SSM (Run Command,
/// Automation, documents, …) is answered `UnsupportedOperationException` by the dispatcher.
pub const IMPLEMENTED: &[(&str, Support)] = &[
    (
        "AddTagsToResource",
        Support::Partial("ResourceType Parameter only"),
    ),
    ("DeleteParameter", Support::Full),
    ("DeleteParameters", Support::Full),
    (
        "DeleteResourcePolicy",
        Support::Partial("ResourceArn of a parameter only"),
    ),
    (
        "DescribeParameters",
        Support::Partial(
            "Shared=true lists the parameters shared by PutResourcePolicy (there is no AWS RAM)",
        ),
    ),
    (
        "GetParameter",
        Support::Partial(
            "/aws/service/ public parameters are those the operator seeds ([ssm] public_parameters)",
        ),
    ),
    ("GetParameterHistory", Support::Full),
    (
        "GetParameters",
        Support::Partial(
            "/aws/service/ public parameters are those the operator seeds ([ssm] public_parameters)",
        ),
    ),
    (
        "GetParametersByPath",
        Support::Partial(
            "/aws/service/ public parameters are those the operator seeds ([ssm] public_parameters)",
        ),
    ),
    (
        "GetResourcePolicies",
        Support::Partial("ResourceArn of a parameter only"),
    ),
    (
        "GetServiceSetting",
        Support::Partial(
            "the Parameter Store settings (high-throughput-enabled, default-parameter-tier) only",
        ),
    ),
    ("LabelParameterVersion", Support::Full),
    (
        "ListTagsForResource",
        Support::Partial("ResourceType Parameter only"),
    ),
    (
        "PutParameter",
        Support::Partial(
            "DataType aws:ssm:integration is refused and aws:ec2:image checks the AMI id's format only",
        ),
    ),
    (
        "PutResourcePolicy",
        Support::Partial(
            "ResourceArn of a parameter only (no OpsItemGroup); shares through the policy directly, without AWS RAM",
        ),
    ),
    (
        "RemoveTagsFromResource",
        Support::Partial("ResourceType Parameter only"),
    ),
    (
        "ResetServiceSetting",
        Support::Partial(
            "the Parameter Store settings (high-throughput-enabled, default-parameter-tier) only",
        ),
    ),
    ("UnlabelParameterVersion", Support::Full),
    (
        "UpdateServiceSetting",
        Support::Partial(
            "the Parameter Store settings (high-throughput-enabled, default-parameter-tier) only",
        ),
    ),
];

/// Quotas. AWS's by default; operators change them in `[ssm]` ([`Limits::from_config`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Standard-tier parameters per account and region.
    pub standard_parameters: u64,
    /// Advanced-tier parameters per account and region.
    pub advanced_parameters: u64,
    /// GetParameter/GetParameters/GetParametersByPath/PutParameter requests per second per
    /// account and region (standard throughput). 0 disables the quota.
    pub standard_tps: u32,
    /// The same with `/ssm/parameter-store/high-throughput-enabled` set to `true`. 0 disables
    /// the quota.
    pub high_throughput_tps: u32,
}

impl Limits {
    /// AWS's quotas with the operator's `[ssm]` values over them. Refuses values that cannot
    /// be meant: no room for any parameter, or a higher-throughput rate below the standard one
    /// (enabling high throughput would then slow callers down). 0 turns a rate quota off.
    pub fn from_config(config: &SsmConfig) -> Result<Limits, String> {
        let aws = Limits::default();
        let limits = Limits {
            standard_parameters: config
                .standard_parameters
                .unwrap_or(aws.standard_parameters),
            advanced_parameters: config
                .advanced_parameters
                .unwrap_or(aws.advanced_parameters),
            standard_tps: config.standard_tps.unwrap_or(aws.standard_tps),
            high_throughput_tps: config
                .high_throughput_tps
                .unwrap_or(aws.high_throughput_tps),
        };
        if limits.standard_parameters == 0 {
            return Err("standard_parameters must be at least 1".to_owned());
        }
        if limits.advanced_parameters == 0 {
            return Err("advanced_parameters must be at least 1".to_owned());
        }
        // A rate of 0 is unlimited, so it is the largest for this comparison.
        let unlimited = |tps: u32| if tps == 0 { u64::MAX } else { u64::from(tps) };
        if unlimited(limits.high_throughput_tps) < unlimited(limits.standard_tps) {
            return Err(format!(
                "high_throughput_tps ({}) must not be below standard_tps ({}); 0 means no quota",
                limits.high_throughput_tps, limits.standard_tps
            ));
        }
        Ok(limits)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            standard_parameters: 10_000,
            advanced_parameters: 100_000,
            standard_tps: 40,
            high_throughput_tps: 3_000,
        }
    }
}

/// The Parameter Store service handler. Share it as `Arc<Ssm>` between the dispatcher and the
/// scheduler.
pub struct Ssm {
    store: Arc<SealedStore>,
    authorizer: Arc<Authorizer>,
    keys: Arc<dyn KeyService>,
    clock: Arc<dyn Clock>,
    /// Replaced by [`Ssm::configure`] after construction, hence the lock.
    limits: std::sync::RwLock<Limits>,
    throttle: throttle::Throttle,
    settings: settings::SettingsCache,
    /// Where "Parameter Store Change" and "Policy Action" events go, once connected.
    events: std::sync::OnceLock<Arc<dyn citadel_events::Publisher>>,
    /// The operator's read-only `/aws/service/` parameters, once loaded.
    public: std::sync::OnceLock<PublicParameters>,
    /// Secrets Manager, answering `/aws/reference/secretsmanager/` references, once connected.
    secrets: std::sync::OnceLock<Arc<dyn SecretReader>>,
}

impl fmt::Debug for Ssm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ssm")
            .field("store", &self.store)
            .field("clock", &self.clock)
            .field("limits", &self.limits())
            .finish_non_exhaustive()
    }
}

impl Ssm {
    /// Parameter Store over `store`, on the system clock, with AWS's quotas; SecureStrings go
    /// through `keys` (Citadel's KMS). Reads nothing until the first request.
    pub fn new(
        store: Arc<SealedStore>,
        authorizer: Arc<Authorizer>,
        keys: Arc<dyn KeyService>,
    ) -> Self {
        Self::with_clock(store, authorizer, keys, Arc::new(SystemClock))
    }

    /// Parameter Store with an injected clock (tests move time to reach expirations).
    pub fn with_clock(
        store: Arc<SealedStore>,
        authorizer: Arc<Authorizer>,
        keys: Arc<dyn KeyService>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Ssm {
            store,
            authorizer,
            keys,
            clock,
            limits: std::sync::RwLock::new(Limits::default()),
            throttle: throttle::Throttle::default(),
            settings: settings::SettingsCache::default(),
            events: std::sync::OnceLock::new(),
            public: std::sync::OnceLock::new(),
            secrets: std::sync::OnceLock::new(),
        }
    }

    /// Replaces the quotas.
    #[must_use]
    pub fn with_limits(self, limits: Limits) -> Self {
        self.set_limits(limits);
        self
    }

    /// Replaces the quotas of a running service.
    pub fn set_limits(&self, limits: Limits) {
        *self
            .limits
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = limits;
    }

    pub fn limits(&self) -> Limits {
        *self
            .limits
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Connects Secrets Manager for `/aws/reference/secretsmanager/` references. A second call
    /// is ignored; without one, references answer that Secrets Manager is not available.
    pub fn set_secrets(&self, secrets: Arc<dyn SecretReader>) {
        let _ = self.secrets.set(secrets);
    }

    /// Serves `parameters` as the public `/aws/service/` parameters. A second call is ignored.
    pub fn set_public_parameters(&self, parameters: PublicParameters) {
        let _ = self.public.set(parameters);
    }

    /// Forgets the cached service settings (another node changed them, or anything may have).
    pub fn invalidate_settings(&self) {
        self.settings.clear();
    }

    /// Applies `[ssm]`: the quotas, and the public parameters file if it names one. Nothing
    /// is applied when any of it is invalid.
    pub fn configure(&self, config: &SsmConfig) -> Result<(), String> {
        let limits = Limits::from_config(config)?;
        let public = match &config.public_parameters {
            Some(path) => Some(
                PublicParameters::load(path, self.now_ms())
                    .map_err(|e| format!("public_parameters: {e}"))?,
            ),
            None => None,
        };
        self.set_limits(limits);
        if let Some(public) = public {
            self.set_public_parameters(public);
        }
        Ok(())
    }

    fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }

    fn now_ms(&self) -> i64 {
        clock::to_millis(self.clock.now())
    }
}

/// The body of operations without output: an empty JSON object.
#[derive(Debug, Serialize)]
struct Empty {}

#[async_trait::async_trait]
impl ServiceHandler for Ssm {
    fn spec(&self) -> &'static ServiceSpec {
        &ssm::SPEC
    }

    fn implemented(&self) -> &'static [(&'static str, Support)] {
        IMPLEMENTED
    }

    fn on_seal(&self) {
        self.settings.clear();
    }

    /// Every operation authorizes with the parameter's ARN and its tags.
    fn authorizes_itself(&self) -> bool {
        true
    }

    async fn handle(
        &self,
        ctx: &RequestContext,
        operation: &'static OperationSpec,
        input: OperationInput,
    ) -> Result<OperationOutput, AwsError> {
        if self.store.is_sealed() {
            self.settings.clear();
            return Err(AwsError::sealed());
        }
        let OperationInput::Json(body) = input else {
            tracing::error!(
                operation = operation.name,
                "SSM received a non-JSON input; the router should not allow that"
            );
            return Err(errors::internal());
        };
        // Writes report what they changed on the event bus (after they are committed).
        let change = match operation.name {
            "PutParameter"
            | "DeleteParameter"
            | "DeleteParameters"
            | "LabelParameterVersion"
            | "UnlabelParameterVersion" => Some(events::names_in(&body)),
            _ => None,
        };
        let before = match (&change, operation.name) {
            (Some(names), "DeleteParameter" | "DeleteParameters") => {
                self.types_of(ctx, names).await
            }
            _ => Vec::new(),
        };
        let output = self.dispatch(ctx, operation, body).await?;
        if let Some(names) = change {
            self.emit_changes(ctx, operation.name, &names, before, &output)
                .await;
        }
        Ok(output)
    }
}

impl Ssm {
    async fn dispatch(
        &self,
        ctx: &RequestContext,
        operation: &'static OperationSpec,
        body: bytes::Bytes,
    ) -> Result<OperationOutput, AwsError> {
        citadel_api::dispatch_json!("ssm", errors::internal, self, ctx, body, operation.name, {
            "AddTagsToResource" => ssm::AddTagsToResourceRequest => add_tags_to_resource,
            "DeleteParameter" => ssm::DeleteParameterRequest => delete_parameter,
            "DeleteParameters" => ssm::DeleteParametersRequest => delete_parameters,
            "DeleteResourcePolicy" => ssm::DeleteResourcePolicyRequest => delete_resource_policy,
            "DescribeParameters" => ssm::DescribeParametersRequest => describe_parameters,
            "GetParameter" => ssm::GetParameterRequest => get_parameter,
            "GetParameterHistory" => ssm::GetParameterHistoryRequest => get_parameter_history,
            "GetParameters" => ssm::GetParametersRequest => get_parameters,
            "GetParametersByPath" => ssm::GetParametersByPathRequest => get_parameters_by_path,
            "GetResourcePolicies" => ssm::GetResourcePoliciesRequest => get_resource_policies,
            "GetServiceSetting" => ssm::GetServiceSettingRequest => get_service_setting,
            "LabelParameterVersion" => ssm::LabelParameterVersionRequest => label_parameter_version,
            "ListTagsForResource" => ssm::ListTagsForResourceRequest => list_tags_for_resource,
            "PutParameter" => ssm::PutParameterRequest => put_parameter,
            "PutResourcePolicy" => ssm::PutResourcePolicyRequest => put_resource_policy,
            "RemoveTagsFromResource" => ssm::RemoveTagsFromResourceRequest => remove_tags_from_resource,
            "ResetServiceSetting" => ssm::ResetServiceSettingRequest => reset_service_setting,
            "UnlabelParameterVersion" => ssm::UnlabelParameterVersionRequest => unlabel_parameter_version,
            "UpdateServiceSetting" => ssm::UpdateServiceSettingRequest => update_service_setting,
        })
    }
}

/// The scheduler's entry point: carries out the Expiration policies that fell due.
#[async_trait::async_trait]
impl citadel_api::ScheduledWork for Ssm {
    fn name(&self) -> &'static str {
        "ssm"
    }

    async fn run_due(&self, now_unix: i64) -> Result<(), String> {
        let deleted = Ssm::run_due(self, now_unix.saturating_mul(1000))
            .await
            .map_err(|e| e.to_string())?;
        if deleted > 0 {
            tracing::info!(deleted, "Parameter Store expirations carried out");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
