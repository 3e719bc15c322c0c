//! Where Parameter Store gets the time from: the shared injectable clock.

pub use citadel_api::clock::*;
