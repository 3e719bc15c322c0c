//! Identity and authorization.
//!
//! The access keys SigV4 verification looks up and the principals behind them, the IAM entities
//! and policies of every account ([`identity`]), the policy language ([`policy`]) and the one
//! [`Authorizer`] every operation passes through.

mod authorizer;
mod credentials;
pub mod identity;
pub mod policy;
pub mod sessions;

pub use authorizer::{AccessRequest, Authorizer};
pub use credentials::{Credential, IdentityError, IdentityStore, NewAccessKey};
