//! The request pipeline every AWS API call takes: read the body (bounded) → route to
//! (service, operation) → refuse while sealed → authenticate (SigV4) → authorize → handle →
//! render. One function, so no service can skip a step.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::response::IntoResponse;
use bytes::Bytes;
use citadel_api::{AwsError, Principal, Protocol, RequestContext, ServiceHandler, ServiceSpec};
use citadel_iam::policy::ErrorFlavour;
use citadel_iam::sessions::TokenCheck;
use citadel_iam::{AccessRequest, Authorizer, IdentityStore};
use citadel_protocol::{Router, WireRequest, render_error, render_success};
use citadel_sigv4 as sigv4;
use citadel_store::SealedStore;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;

use crate::config::Config;
use crate::metrics::Metrics;

/// Everything a request may need, shared by all connections.
pub struct AppState {
    pub config: Config,
    pub router: Router,
    pub handlers: HashMap<&'static str, Arc<dyn ServiceHandler>>,
    /// (service, operation) → the handler that implements it: one hash lookup per request.
    implemented: HashMap<(&'static str, &'static str), Arc<dyn ServiceHandler>>,
    pub store: Arc<SealedStore>,
    pub identities: Arc<IdentityStore>,
    /// The one authorizer, shared with the services that authorize themselves.
    pub authorizer: Arc<Authorizer>,
    /// Whether the listener serves TLS (`aws:SecureTransport`).
    pub secure_transport: bool,
    pub signing_keys: sigv4::SigningKeyCache,
    pub metrics: Metrics,
    /// KMS itself, for the usage report of the operator API.
    pub kms: Option<Arc<citadel_svc_kms::Kms>>,
    /// The event bus, for the operator API's redrive of dead letters.
    pub bus: Option<Arc<citadel_svc_events::Bus>>,
    /// The audit writer: every routed call is recorded before its response is sent.
    pub audit: Option<Arc<citadel_audit::AuditLog>>,
    /// Whether this node runs the scheduler (always, unless several share PostgreSQL).
    pub leadership: citadel_store::Leadership,
}

impl AppState {
    pub fn new(
        config: Config,
        store: Arc<SealedStore>,
        identities: Arc<IdentityStore>,
        authorizer: Arc<Authorizer>,
        handlers: Vec<Arc<dyn ServiceHandler>>,
    ) -> Self {
        let specs: Vec<&'static ServiceSpec> = citadel_model::all_specs().to_vec();
        let implemented = handlers
            .iter()
            .flat_map(|h| {
                h.implemented()
                    .iter()
                    .map(move |(op, _)| ((h.spec().name, *op), h.clone()))
            })
            .collect();
        let handlers = handlers
            .into_iter()
            .map(|h| (h.spec().name, h))
            .collect::<HashMap<_, _>>();
        AppState {
            router: Router::new(&specs),
            handlers,
            implemented,
            identities,
            authorizer,
            secure_transport: config.tls != crate::config::TlsMode::Disabled,
            store,
            signing_keys: sigv4::SigningKeyCache::default(),
            metrics: Metrics::new(),
            kms: None,
            bus: None,
            audit: None,
            leadership: citadel_store::Leadership::always(),
            config,
        }
    }
}

impl AppState {
    /// The handler that implements `service:operation`, if any.
    fn handler_for(
        &self,
        service: &'static str,
        operation: &'static str,
    ) -> Option<&Arc<dyn ServiceHandler>> {
        self.implemented.get(&(service, operation))
    }
}

/// The protocol to answer in when a request fails before it could be routed.
fn guess_protocol(headers: &HeaderMap) -> Protocol {
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if headers.contains_key("x-amz-target") {
        Protocol::AwsJson1_1
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        Protocol::AwsQuery
    } else {
        Protocol::RestJson1
    }
}

pub fn to_http(resp: citadel_protocol::Response) -> axum::response::Response {
    let mut builder = http::Response::builder().status(resp.status);
    for (name, value) in resp.headers {
        builder = builder.header(name, value);
    }
    builder
        .body(Body::from(resp.body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Reads the whole body, refusing anything above `limit` without buffering it.
pub async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, AwsError> {
    let too_large = || {
        AwsError::new(
            413,
            "RequestEntityTooLargeException",
            format!("The request body is larger than the limit of {limit} bytes."),
        )
    };
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(_) => Err(AwsError::new(
            400,
            "IncompleteBody",
            "The request body could not be read completely.",
        )),
    }
}

/// Verifies the SigV4 signature of a request and returns the principal behind it.
///
/// In `--dev` mode the signature must be well formed and fresh, but any access key id is
/// accepted and names the account when it is 12 digits.
pub async fn authenticate(
    state: &AppState,
    parts: &sigv4::RequestParts<'_>,
    signature: Result<sigv4::SignatureInfo, sigv4::SigV4Error>,
    signing_name: &str,
    query_protocol: bool,
) -> Result<Principal, AwsError> {
    let info = signature.map_err(|e| e.to_aws_error(query_protocol))?;
    sigv4::check_scope(&info, signing_name).map_err(|e| e.to_aws_error(query_protocol))?;
    if state.config.dev {
        let account = if info.access_key_id.len() == 12
            && info.access_key_id.bytes().all(|b| b.is_ascii_digit())
        {
            info.access_key_id.clone()
        } else {
            state.config.default_account.clone()
        };
        return Ok(Principal::root(&account, &info.access_key_id));
    }
    let credential = state
        .identities
        .lookup(&info.access_key_id)
        .await
        .map_err(|e| match e {
            citadel_iam::IdentityError::Store(citadel_store::StoreError::Unavailable(reason)) => {
                tracing::warn!(%reason, "credential lookup: the database is unavailable");
                AwsError::storage_unavailable()
            }
            e => {
                tracing::error!(error = %e, "credential lookup failed");
                AwsError::internal()
            }
        })?;
    let unknown = || sigv4::SigV4Error::UnknownAccessKey.to_aws_error(query_protocol);
    let Some(credential) = credential else {
        return Err(unknown());
    };
    if !credential.active {
        return Err(unknown());
    }
    // Long-term keys take no session token; temporary ones need theirs (compared in constant
    // time with the stored hash), and only until they expire.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    match credential.check_token(info.security_token.as_deref(), now) {
        TokenCheck::Valid => {}
        TokenCheck::Invalid => return Err(unknown()),
        TokenCheck::Expired => return Err(expired_token(query_protocol)),
    }
    let secret = sigv4::SecretKey::from(secrecy::ExposeSecret::expose_secret(credential.secret()));
    sigv4::verify(parts, &info, &secret, &state.signing_keys)
        .map_err(|e| e.to_aws_error(query_protocol))?;
    Ok(credential.principal.clone())
}

/// AWS's answer to a request signed with temporary credentials that have expired.
fn expired_token(query_protocol: bool) -> AwsError {
    const MESSAGE: &str = "The security token included in the request is expired";
    if query_protocol {
        AwsError::new(403, "ExpiredToken", MESSAGE)
    } else {
        AwsError::new(400, "ExpiredTokenException", MESSAGE)
    }
}

/// The fallback handler: every request that is not an operator endpoint is an AWS API call.
pub async fn aws_api(
    State(state): State<Arc<AppState>>,
    request: Request<Body>,
) -> axum::response::Response {
    let started = Instant::now();
    let request_id = new_request_id();
    let (mut parts, body) = request.into_parts();
    // HTTP/2 carries the host in `:authority`; SigV4 signs it as `host`.
    if !parts.headers.contains_key(http::header::HOST)
        && let Some(authority) = parts.uri.authority()
        && let Ok(value) = http::HeaderValue::from_str(authority.as_str())
    {
        parts.headers.insert(http::header::HOST, value);
    }
    let source_ip = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let tls_session = parts
        .extensions
        .get::<crate::listener::TlsSession>()
        .cloned();

    let body = match read_body(body, &parts.headers, state.config.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => {
            let protocol = guess_protocol(&parts.headers);
            state
                .metrics
                .observe("-", "-", e.status, started.elapsed().as_secs_f64());
            return to_http(render_error(protocol, None, &e, &request_id));
        }
    };

    let path = parts.uri.path();
    let query = parts.uri.query().unwrap_or_default();
    let sig_parts = sigv4::RequestParts {
        method: parts.method.as_str(),
        path,
        query,
        headers: &parts.headers,
        body: &body,
    };
    let now = time::OffsetDateTime::now_utc();
    let signature = sigv4::parse(&sig_parts, now);
    let wire = WireRequest {
        method: &parts.method,
        path,
        query,
        headers: &parts.headers,
        body: &body,
        scope_service: signature.as_ref().ok().map(|s| s.service.as_str()),
    };

    let route = match state.router.route(&wire) {
        Ok(route) => route,
        Err(e) => {
            state
                .metrics
                .observe("-", "-", e.error.status, started.elapsed().as_secs_f64());
            return to_http(render_error(e.protocol, e.service, &e.error, &request_id));
        }
    };
    let service = route.service;
    let operation = route.operation;
    // For the audit record: the input (the handler consumes it), who signed, and whether the
    // call was refused because the store is sealed (not recorded: nothing can be written).
    let audit_input = route.input.clone();
    let audit_key_id = signature.as_ref().ok().map(|s| s.access_key_id.clone());
    let audit_region = signature
        .as_ref()
        .map(|s| s.region.clone())
        .unwrap_or_default();
    let mut audit_principal: Option<Principal> = None;
    let mut refused_sealed = false;
    let result = async {
        if state.store.is_sealed() {
            refused_sealed = true;
            return Err(AwsError::sealed());
        }
        let query_protocol = service.protocol == Protocol::AwsQuery;
        let region = signature
            .as_ref()
            .map(|s| s.region.clone())
            .unwrap_or_default();
        let principal = authenticate(
            &state,
            &sig_parts,
            signature,
            service.signing_name,
            query_protocol,
        )
        .await?;
        audit_principal = Some(principal.clone());
        if !state.config.dev {
            // In memory; persisted off the request path at most once a minute per key.
            state
                .identities
                .record_use(&principal.access_key_id, service.name, &region);
        }
        let ctx = RequestContext {
            request_id: request_id.clone(),
            region,
            principal,
            source_ip,
            user_agent: parts
                .headers
                .get(http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            dev_mode: state.config.dev,
            secure_transport: state.secure_transport,
            authorized: Default::default(),
            called_via: None,
        };
        let handler = state.handler_for(service.name, operation.name);
        let self_authorizing = handler.is_some_and(|h| h.authorizes_itself());
        if !self_authorizing {
            // Handlers that do not authorize themselves (IAM, STS, …) name the resource the
            // operation acts on; operations without a handler are authorized on `*`.
            let target = match handler {
                Some(h) => h.access_target(&ctx, operation, &route.input).await?,
                None => citadel_api::AccessTarget::any(),
            };
            let action = format!("{}:{}", service.name, operation.name);
            let flavour = match (service.protocol, service.name) {
                (Protocol::AwsQuery, "sts") => ErrorFlavour::Sts,
                (Protocol::AwsQuery, _) => ErrorFlavour::Iam,
                _ => ErrorFlavour::Kms,
            };
            let request = AccessRequest {
                conditions: &target.conditions,
                ..AccessRequest::new(&action, &target.resource, flavour)
            };
            state.authorizer.authorize(&ctx, &request).await?;
        }
        match handler {
            Some(handler) => {
                let output = handler.handle(&ctx, operation, route.input).await?;
                if !ctx.authorized.is_marked() {
                    // Fail closed: a handler that authorizes itself returned a result without
                    // the authorizer ever allowing anything.
                    tracing::error!(%request_id, service = service.name, operation = operation.name, "the handler succeeded without authorizing the request; refusing its result");
                    return Err(AwsError::internal());
                }
                Ok(output)
            }
            None => {
                // Bad input still gets AWS's precise answer before "not implemented".
                citadel_model::check_input(service.name, operation.name, &route.input)?;
                Err(AwsError::unsupported_operation(
                    service.name,
                    operation.name,
                ))
            }
        }
    }
    .await;
    let result = if refused_sealed {
        result
    } else {
        crate::audit::record(
            &state,
            crate::audit::Audited {
                service,
                operation,
                request_id: &request_id,
                region: &audit_region,
                principal: audit_principal.as_ref(),
                access_key_id: audit_key_id.as_deref(),
                source_ip,
                headers: &parts.headers,
                tls: tls_session.as_ref(),
                input: &audit_input,
            },
            result,
        )
        .await
    };

    let response = match result {
        Ok(output) => render_success(service, operation, output, &request_id),
        Err(e) => {
            if e.is_server_fault() {
                tracing::warn!(%request_id, service = service.name, operation = operation.name, code = %e.code, "request failed on the server side");
            }
            render_error(service.protocol, Some(service), &e, &request_id)
        }
    };
    let elapsed = started.elapsed().as_secs_f64();
    state
        .metrics
        .observe(service.name, operation.name, response.status, elapsed);
    tracing::debug!(%request_id, service = service.name, operation = operation.name, status = response.status, elapsed_ms = elapsed * 1e3, "request");
    to_http(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use citadel_api::{OperationInput, OperationOutput, OperationSpec, Support};
    use citadel_iam::AccessRequest;
    use citadel_iam::policy::ErrorFlavour;

    /// A KMS stand-in that claims to authorize itself; `authorize` says whether it really does.
    struct FakeKms {
        authorizer: Arc<Authorizer>,
        authorize: bool,
    }

    #[async_trait::async_trait]
    impl ServiceHandler for FakeKms {
        fn spec(&self) -> &'static ServiceSpec {
            &citadel_model::kms::SPEC
        }
        fn implemented(&self) -> &'static [(&'static str, Support)] {
            &[("ListKeys", Support::Full)]
        }
        fn authorizes_itself(&self) -> bool {
            true
        }
        async fn handle(
            &self,
            ctx: &RequestContext,
            _operation: &'static OperationSpec,
            _input: OperationInput,
        ) -> Result<OperationOutput, AwsError> {
            if self.authorize {
                self.authorizer
                    .authorize(
                        ctx,
                        &AccessRequest::new("kms:ListKeys", "*", ErrorFlavour::Kms),
                    )
                    .await?;
            }
            Ok(OperationOutput::Json(serde_json::json!({"Keys": []})))
        }
    }

    async fn call_list_keys(authorize: bool) -> (u16, String) {
        let dir = tempfile::tempdir().unwrap();
        let backend = citadel_store::SqliteBackend::open(dir.path())
            .await
            .unwrap();
        let store = Arc::new(SealedStore::new(Arc::new(backend)));
        let key = citadel_barrier::RootKey::generate().unwrap();
        store.initialize_file(&key).await.unwrap();
        store.unseal_with_key(&key).await.unwrap();
        let identities = Arc::new(IdentityStore::new(store.clone()));
        let authorizer = Arc::new(Authorizer::new(identities.clone()));
        let args = crate::cli::ServeArgs {
            dev: true,
            ..Default::default()
        };
        let config = crate::config::resolve(&args, &|_| None).unwrap();
        let fake = Arc::new(FakeKms {
            authorizer: authorizer.clone(),
            authorize,
        });
        let state = Arc::new(AppState::new(
            config,
            store,
            identities,
            authorizer,
            vec![fake],
        ));

        let body = b"{}".to_vec();
        let mut headers = HeaderMap::new();
        headers.insert(http::header::HOST, "localhost:4566".parse().unwrap());
        headers.insert("x-amz-target", "TrentService.ListKeys".parse().unwrap());
        headers.insert(
            http::header::CONTENT_TYPE,
            "application/x-amz-json-1.1".parse().unwrap(),
        );
        let secret = sigv4::SecretKey::from("test");
        let signed = sigv4::sign(
            &sigv4::RequestParts {
                method: "POST",
                path: "/",
                query: "",
                headers: &headers,
                body: &body,
            },
            &sigv4::SigningParams {
                access_key_id: "test",
                secret: &secret,
                session_token: None,
                region: "us-east-1",
                service: "kms",
                time: time::OffsetDateTime::now_utc(),
                sign_content_sha256: false,
            },
        )
        .unwrap();
        let mut request = Request::builder().method("POST").uri("/");
        for (k, v) in headers.iter().chain(signed.iter().map(|(k, v)| (k, v))) {
            request = request.header(k, v);
        }
        let request = request.body(Body::from(body)).unwrap();
        let response = aws_api(State(state), request).await;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn a_handler_that_skips_authorization_fails_closed() {
        let (status, body) = call_list_keys(false).await;
        assert_eq!(status, 500, "{body}");
        assert!(body.contains("InternalFailure"), "{body}");
        assert!(
            !body.contains("Keys"),
            "the unauthorized result must not be served: {body}"
        );

        let (status, body) = call_list_keys(true).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"Keys\""));
    }
}
