//! The AWS wire protocols. One router recognises which protocol a request speaks and which
//! (service, operation) it names; one renderer writes successes and errors the way that
//! protocol's AWS clients expect them. Authentication and authorization happen in between, in
//! the server, so nothing here trusts the request.

mod render;
mod rest;
mod route;
pub mod xml;

pub use render::{Response, render_error, render_success};
pub use route::{Route, RouteError, Router, WireRequest};
