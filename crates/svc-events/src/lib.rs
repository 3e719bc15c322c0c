//! Amazon EventBridge (`aws events …`, awsJson1.1) on the default event bus
//! `arn:aws:events:<region>:<account>:event-bus/default`: rules with event patterns (the complete
//! pattern language of `citadel-events`), targets, PutEvents, TestEventPattern, connections and
//! API destinations; and the [`Bus`] Citadel's own services publish their events on.
//!
//! # Delivery
//! Matching an event writes one durable outbox entry per target in the sealed store before
//! PutEvents (or [`Bus::publish`]) returns; a background loop ([`Bus::run_delivery`]) delivers
//! them **at least once**, retrying with exponential backoff within the target's RetryPolicy,
//! and moves exhausted entries to a dead-letter store that survives restarts
//! ([`Bus::dead_letters`], [`Bus::redrive`]). Receivers de-duplicate with the event `id` (also
//! sent as the `X-Citadel-Event-Id` header) or `X-Citadel-Delivery-Id`.
//!
//! Targets Citadel delivers to:
//! - **API destinations** (`arn:aws:events:<region>:<account>:api-destination/<name>/<id>`): an
//!   HTTP(S) webhook with the connection's API-key, Basic or OAuth client-credentials
//!   authorization. Endpoints may be `http://` (self-hosted receivers) as well as `https://`.
//! - **Operator files** (`arn:citadel:events:::file/<name>`): one line per event appended to
//!   `<file_target_dir>/<name>.jsonl` and synced, when [`BusConfig::file_target_dir`] is set.
//!
//! Other target types (Lambda, SQS, …) are refused at PutTargets with a clear message rather than
//! accepted and never delivered.
//!
//! # Wiring
//! ```ignore
//! let bus = Arc::new(Bus::new(store.clone(), BusConfig { file_target_dir: Some(dir), ..Default::default() }));
//! dispatcher.register(Arc::new(Events::new(bus.clone())));
//! tokio::spawn(bus.clone().run_delivery(shutdown_signal));   // one node of a cluster
//! // services: bus.publish(&event).await
//! ```

mod bus;
mod connections;
mod delivery;
mod errors;
mod http;
pub mod records;
mod rules;

use std::sync::Arc;

use citadel_api::{
    AwsError, OperationInput, OperationOutput, OperationSpec, RequestContext, ServiceHandler,
    ServiceSpec, Support,
};
use citadel_model::events;
use serde::Serialize;

pub use bus::{
    Bus, BusConfig, CLOUDTRAIL_API_CALL, DEFAULT_MAX_AGE_SECS, DEFAULT_MAX_RETRIES, PublishReport,
    STATE_WITH_READ_ONLY,
};
pub use delivery::DeliveryPass;
pub use errors::BusError;
pub use records::{DeadLetter, Delivery};

/// The EventBridge operations this crate implements.
pub const IMPLEMENTED: &[(&str, Support)] = &[
    ("CreateApiDestination", Support::Full),
    (
        "CreateConnection",
        Support::Partial(
            "no private-endpoint connectivity and no KmsKeyIdentifier (secrets are sealed by Citadel's barrier); no SecretArn",
        ),
    ),
    ("DeleteApiDestination", Support::Full),
    ("DeleteConnection", Support::Full),
    ("DeleteRule", Support::Full),
    ("DescribeApiDestination", Support::Full),
    ("DescribeConnection", Support::Full),
    (
        "DescribeRule",
        Support::Partial("the default event bus only"),
    ),
    ("DisableRule", Support::Full),
    ("EnableRule", Support::Full),
    ("ListApiDestinations", Support::Full),
    ("ListConnections", Support::Full),
    ("ListRules", Support::Partial("the default event bus only")),
    ("ListTargetsByRule", Support::Full),
    (
        "PutEvents",
        Support::Partial("the default event bus only; no EndpointId (global endpoints)"),
    ),
    (
        "PutRule",
        Support::Partial("EventPattern rules on the default event bus; no ScheduleExpression"),
    ),
    (
        "PutTargets",
        Support::Partial(
            "API destinations and operator files (arn:citadel:events:::file/<name>); no DeadLetterConfig (Citadel keeps its own dead-letter store)",
        ),
    ),
    ("RemoveTargets", Support::Full),
    ("TestEventPattern", Support::Full),
];

/// The EventBridge service handler.
#[derive(Debug, Clone)]
pub struct Events {
    bus: Arc<Bus>,
}

impl Events {
    /// The handler over `bus` (share the same `Arc<Bus>` with the delivery loop and the services
    /// that publish).
    pub fn new(bus: Arc<Bus>) -> Self {
        Events { bus }
    }

    pub fn bus(&self) -> &Arc<Bus> {
        &self.bus
    }
}

/// The body of operations without output.
#[derive(Debug, Serialize)]
pub(crate) struct Empty {}

#[async_trait::async_trait]
impl ServiceHandler for Events {
    fn spec(&self) -> &'static ServiceSpec {
        &events::SPEC
    }

    fn implemented(&self) -> &'static [(&'static str, Support)] {
        IMPLEMENTED
    }

    async fn handle(
        &self,
        ctx: &RequestContext,
        operation: &'static OperationSpec,
        input: OperationInput,
    ) -> Result<OperationOutput, AwsError> {
        if self.bus.store.is_sealed() {
            return Err(AwsError::sealed());
        }
        let OperationInput::Json(body) = input else {
            tracing::error!(
                operation = operation.name,
                "EventBridge received a non-JSON input; the router should not allow that"
            );
            return Err(errors::internal());
        };
        citadel_api::dispatch_json!("events", errors::internal, self, ctx, body, operation.name, {
            "CreateApiDestination" => events::CreateApiDestinationRequest => create_api_destination,
            "CreateConnection" => events::CreateConnectionRequest => create_connection,
            "DeleteApiDestination" => events::DeleteApiDestinationRequest => delete_api_destination,
            "DeleteConnection" => events::DeleteConnectionRequest => delete_connection,
            "DeleteRule" => events::DeleteRuleRequest => delete_rule,
            "DescribeApiDestination" => events::DescribeApiDestinationRequest => describe_api_destination,
            "DescribeConnection" => events::DescribeConnectionRequest => describe_connection,
            "DescribeRule" => events::DescribeRuleRequest => describe_rule,
            "DisableRule" => events::DisableRuleRequest => disable_rule,
            "EnableRule" => events::EnableRuleRequest => enable_rule,
            "ListApiDestinations" => events::ListApiDestinationsRequest => list_api_destinations,
            "ListConnections" => events::ListConnectionsRequest => list_connections,
            "ListRules" => events::ListRulesRequest => list_rules,
            "ListTargetsByRule" => events::ListTargetsByRuleRequest => list_targets_by_rule,
            "PutEvents" => events::PutEventsRequest => put_events,
            "PutRule" => events::PutRuleRequest => put_rule,
            "PutTargets" => events::PutTargetsRequest => put_targets,
            "RemoveTargets" => events::RemoveTargetsRequest => remove_targets,
            "TestEventPattern" => events::TestEventPatternRequest => test_event_pattern,
        })
    }
}

#[cfg(test)]
mod tests;
