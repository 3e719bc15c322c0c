//! The core of Citadel's event bus (the EventBridge subset): the event-pattern language
//! ([`Pattern`]), the event envelope ([`Event`]) exactly as EventBridge delivers it, and the input
//! shaping a target applies before delivery ([`InputShape`]: `Input`, `InputPath`,
//! `InputTransformer`), and builders for the events Citadel's services emit ([`shapes`]).
//!
//! This crate does no I/O; rules, targets, delivery and the API live in `citadel-svc-events`.

pub mod event;
pub mod pattern;
pub mod shapes;
pub mod transform;

pub use event::{Event, EventError, MAX_ENTRY_BYTES, entry_size, format_time};
pub use pattern::{Pattern, PatternError};
pub use transform::{DeliveryContext, InputShape, JsonPath, TransformError};

/// Where Citadel's services put the events they emit (KMS CMK Rotation, …): the event bus
/// implements it; services hold an `Arc<dyn Publisher>` so they depend on the contract only.
#[async_trait::async_trait]
pub trait Publisher: Send + Sync {
    /// Stores `event` for the account's matching rules; returns once it is durable (delivery
    /// happens later). The error is a description for the log.
    async fn publish(&self, event: &Event) -> Result<(), String>;
}
