//! The vocabulary every layer shares: AWS-shaped errors, the static description of a service and
//! its operations (generated from the AWS models), the authenticated principal, the per-request
//! context and the trait a service implements. No I/O lives here.

pub mod clock;
mod error;
mod event_id;
pub mod json;
mod keys;
mod principal;
mod scheduled;
mod secrets;
mod spec;
pub mod xml;

pub use error::{AwsError, ValidationErrors};
pub use event_id::cloudtrail_event_id;
pub use keys::{DataKey, Decrypted, Encrypted, KeyService};
pub use principal::{Principal, PrincipalKind};
pub use scheduled::ScheduledWork;
pub use secrets::{SecretPayload, SecretReader, SecretValue, SecretVersion};
pub use spec::{ErrorSpec, MessageField, OperationSpec, Protocol, ServiceSpec};

use bytes::Bytes;
use std::collections::BTreeMap;

/// Everything a service handler may know about the request besides its input.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The id returned in `x-amzn-RequestId` and recorded in the audit trail.
    pub request_id: String,
    /// Region from the SigV4 credential scope.
    pub region: String,
    /// The verified caller.
    pub principal: Principal,
    pub source_ip: Option<std::net::IpAddr>,
    pub user_agent: Option<String>,
    /// True when the server runs with `--dev`.
    pub dev_mode: bool,
    /// True when the request arrived over TLS (`aws:SecureTransport`).
    pub secure_transport: bool,
    /// Set by the authorizer when it allows an action of this request. The dispatcher refuses
    /// to return the result of a handler that authorizes itself but never got an allow.
    pub authorized: AuthorizedMark,
    /// The Citadel service (`ssm`, `secretsmanager`) making this request on the caller's behalf,
    /// when one service calls another in-process (see [`RequestContext::via`]). It becomes
    /// `kms:ViaService`, `aws:CalledVia` and `aws:ViaAWSService` in policy evaluation.
    pub called_via: Option<&'static str>,
}

impl RequestContext {
    /// The same caller and request, made by `service` on the caller's behalf — what a service
    /// passes to [`KeyService`] so that key policies can tell "through SSM" from "directly".
    /// The authorized mark is shared: an allow on the forwarded call counts for the request.
    pub fn via(&self, service: &'static str) -> RequestContext {
        RequestContext {
            called_via: Some(service),
            ..self.clone()
        }
    }

    /// `kms:ViaService`'s value: `ssm.us-east-1.amazonaws.com`.
    pub fn via_service_endpoint(&self) -> Option<String> {
        self.called_via
            .map(|service| format!("{service}.{}.amazonaws.com", self.region))
    }
}

/// Whether the authorizer allowed something during a request. Clones share the mark.
#[derive(Debug, Clone, Default)]
pub struct AuthorizedMark(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl AuthorizedMark {
    /// Records that the authorizer allowed an action of this request.
    pub fn mark(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn is_marked(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The decoded input of one operation, as the wire protocol delivered it.
#[derive(Debug, Clone)]
pub enum OperationInput {
    /// awsJson1.0 / awsJson1.1: the raw JSON body (never empty: `{}` when the client sent nothing).
    Json(Bytes),
    /// awsQuery: form parameters other than `Action` and `Version`, in wire order.
    Query(Vec<(String, String)>),
    /// restJson1: labels bound from the URI template, the query string and the JSON body.
    Rest {
        labels: BTreeMap<String, String>,
        query: Vec<(String, String)>,
        body: Bytes,
    },
}

/// The successful result of one operation, before the protocol envelope is added.
#[derive(Debug, Clone)]
pub enum OperationOutput {
    /// A JSON document (awsJson and restJson1).
    Json(serde_json::Value),
    /// awsQuery: the XML *inside* `<{Operation}Result>`; the protocol layer adds the
    /// `<{Operation}Response>` envelope and `ResponseMetadata`.
    QueryXml(String),
}

/// How completely an operation is implemented (drives `docs/COMPATIBILITY.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    Full,
    /// Implemented except for what the text names.
    Partial(&'static str),
}

/// The resource an operation acts on, for the dispatcher's authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTarget {
    /// The resource ARN, or `*`.
    pub resource: String,
    /// Service condition keys (`iam:PolicyARN`, …).
    pub conditions: BTreeMap<String, Vec<String>>,
}

impl AccessTarget {
    /// No particular resource.
    pub fn any() -> Self {
        Self::resource("*")
    }

    pub fn resource(arn: impl Into<String>) -> Self {
        AccessTarget {
            resource: arn.into(),
            conditions: BTreeMap::new(),
        }
    }

    pub fn condition(mut self, key: &str, value: impl Into<String>) -> Self {
        self.conditions
            .entry(key.to_owned())
            .or_default()
            .push(value.into());
        self
    }
}

/// A service: a static spec (generated from the AWS model) plus the code that answers it.
#[async_trait::async_trait]
pub trait ServiceHandler: Send + Sync {
    fn spec(&self) -> &'static ServiceSpec;

    /// The operations this handler implements. The dispatcher calls [`handle`](Self::handle)
    /// only for these; every other operation of the spec gets its input checked and then
    /// `UnsupportedOperationException`.
    fn implemented(&self) -> &'static [(&'static str, Support)];

    /// Called when the server seals: drop every cached secret (key material, plaintext
    /// values) at once rather than at the next request.
    fn on_seal(&self) {}

    /// True when the handler calls the authorizer itself, with the resource ARNs and condition
    /// keys only it knows (KMS). The dispatcher then skips its own `*`-resource check, and
    /// refuses a successful result unless the authorizer allowed something during the request.
    fn authorizes_itself(&self) -> bool {
        false
    }

    /// What the dispatcher authorizes an operation of a handler that does not authorize itself
    /// on: the resource ARN (and service condition keys) the operation acts on. The default is
    /// `*` with no extra keys. Called before [`handle`](Self::handle), with the raw input.
    async fn access_target(
        &self,
        _ctx: &RequestContext,
        _operation: &'static OperationSpec,
        _input: &OperationInput,
    ) -> Result<AccessTarget, AwsError> {
        Ok(AccessTarget::any())
    }

    /// Answers one operation listed by [`implemented`](Self::implemented).
    async fn handle(
        &self,
        ctx: &RequestContext,
        operation: &'static OperationSpec,
        input: OperationInput,
    ) -> Result<OperationOutput, AwsError>;
}
