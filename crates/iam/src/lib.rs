//! Identity and authorization.
//!
//! Today this holds the access keys SigV4 verification looks up and the principals behind them
//! (the root user of each account), plus the authorizer every operation passes through. IAM
//! users, roles, policies and STS sessions extend these same two seams.

mod authorize;
mod credentials;
pub mod identity;
pub mod policy;

pub use authorize::{Decision, authorize};
pub use credentials::{Credential, IdentityError, IdentityStore, NewAccessKey};
