//! XML helpers for awsQuery envelopes.

pub use citadel_api::xml::{escape, escape_into};
