//! The operator API under `/_citadel/`: health, seal status, init, unseal, seal, rotate.
//! `citadel operator …` is its client. Init and unseal are unauthenticated by necessity (no
//! credentials exist before init, and none can be checked while sealed), as in Vault; seal and
//! rotate require a request signed by an account root.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use citadel_api::{AwsError, PrincipalKind, Protocol};
use citadel_protocol::render_error;
use citadel_sigv4 as sigv4;
use http::{Request, StatusCode};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::app::{AppState, authenticate, read_body, to_http};
use crate::config::SealType;

/// Service name operator requests are signed for.
pub const SIGNING_NAME: &str = "citadel";

pub(crate) fn error(e: &AwsError) -> Response {
    to_http(render_error(
        Protocol::RestJson1,
        None,
        e,
        &uuid::Uuid::new_v4().to_string(),
    ))
}

fn bad_request(message: impl Into<String>) -> Response {
    error(&AwsError::new(400, "InvalidRequestException", message))
}

pub(crate) fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "operator request failed");
    error(&AwsError::internal())
}

#[derive(Debug, Serialize)]
pub struct SealStatusBody {
    pub initialized: bool,
    pub sealed: bool,
    pub seal_type: String,
    pub shares: u8,
    pub threshold: u8,
    pub progress: u8,
    pub term: Option<u32>,
    pub version: &'static str,
}

async fn seal_status(state: &AppState) -> Result<SealStatusBody, Response> {
    let s = state.store.status().await.map_err(internal)?;
    Ok(SealStatusBody {
        initialized: s.initialized,
        sealed: s.sealed,
        seal_type: s.seal_type.map(|t| t.to_string()).unwrap_or_default(),
        shares: s.shares,
        threshold: s.threshold,
        progress: s.unseal_progress,
        term: s.term,
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// `GET /_citadel/health`: 200 when serving, 503 when sealed, 501 when not initialized — the
/// statuses a load balancer can act on.
pub async fn health(State(state): State<Arc<AppState>>) -> Response {
    match seal_status(&state).await {
        Ok(s) => {
            let status = if !s.initialized {
                StatusCode::NOT_IMPLEMENTED
            } else if s.sealed {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::OK
            };
            (
                status,
                Json(serde_json::json!({
                    "status": if s.sealed { "sealed" } else { "unsealed" },
                    "initialized": s.initialized,
                    "sealed": s.sealed,
                    "version": s.version,
                    "leader": state.leadership.is_leader(),
                })),
            )
                .into_response()
        }
        Err(resp) => resp,
    }
}

pub async fn status(State(state): State<Arc<AppState>>) -> Response {
    match seal_status(&state).await {
        Ok(s) => Json(s).into_response(),
        Err(resp) => resp,
    }
}

pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    state.metrics.set_sealed(state.store.is_sealed());
    (
        [(http::header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        state.metrics.render(),
    )
        .into_response()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitRequest {
    #[serde(default)]
    pub shares: Option<u8>,
    #[serde(default)]
    pub threshold: Option<u8>,
}

#[derive(Serialize, Deserialize)]
pub struct InitResponse {
    /// Unseal key shares (Shamir seal only), shown once.
    #[serde(default)]
    pub shares: Vec<String>,
    pub threshold: u8,
    pub account_id: String,
    /// The root access key, shown once; absent when it came from the environment.
    pub root_access_key_id: Option<String>,
    pub root_secret_access_key: Option<String>,
}

async fn body_json<T: serde::de::DeserializeOwned + Default>(
    state: &AppState,
    request: Request<Body>,
) -> Result<T, Response> {
    let (parts, body) = request.into_parts();
    let bytes = read_body(body, &parts.headers, 64 * 1024)
        .await
        .map_err(|e| error(&e))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let _ = state;
    serde_json::from_slice(&bytes).map_err(|e| bad_request(format!("Invalid request body: {e}")))
}

/// Creates the root credentials of the default account unless they exist. Returns them when
/// freshly created (to be shown once).
async fn create_root_credentials(
    state: &AppState,
) -> Result<Option<citadel_iam::NewAccessKey>, Response> {
    let account = &state.config.default_account;
    if let (Some(id), Some(secret)) = (
        state.config.root_access_key_id.as_deref(),
        state.config.root_secret_access_key.as_ref(),
    ) {
        state
            .identities
            .ensure_root_access_key(account, id, secret)
            .await
            .map_err(|e| bad_request(e.to_string()))?;
        return Ok(None);
    }
    match state.identities.root_access_key_id(account).await {
        Ok(Some(_)) => Ok(None),
        Ok(None) => state
            .identities
            .create_root_access_key(account)
            .await
            .map(Some)
            .map_err(internal),
        Err(e) => Err(internal(e)),
    }
}

/// `POST /_citadel/sys/init`. With the Shamir seal, creates the root key, splits it, and leaves
/// the server sealed; with the file seal (initialised at first start), only creates the root
/// credentials. Either way the secrets are in this one response and nowhere else.
pub async fn init(State(state): State<Arc<AppState>>, request: Request<Body>) -> Response {
    let req: InitRequest = match body_json(&state, request).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let status = match state.store.status().await {
        Ok(s) => s,
        Err(e) => return internal(e),
    };
    if state.config.dev {
        return bad_request(
            "Citadel runs with --dev: it initializes itself at start and accepts any credentials.",
        );
    }
    let account_id = state.config.default_account.clone();
    let had_root_key = matches!(
        state.identities.root_access_key_id(&account_id).await,
        Ok(Some(_))
    );

    let (shares, threshold) = match state.config.seal {
        SealType::Shamir => {
            if status.initialized {
                return bad_request("Citadel is already initialized.");
            }
            let shares = req.shares.unwrap_or(5);
            let threshold = req.threshold.unwrap_or(3);
            let key_shares = match state.store.initialize_shamir(shares, threshold).await {
                Ok(s) => s.to_vec(),
                Err(e) => return bad_request(e.to_string()),
            };
            // Unseal briefly with the shares we still hold to write the root credentials,
            // then seal again: after init the server is sealed, as operators expect.
            for share in key_shares.iter().take(usize::from(threshold)) {
                if let Err(e) = state.store.submit_unseal_share(share).await {
                    return internal(e);
                }
            }
            (key_shares, threshold)
        }
        SealType::File => {
            if req.shares.is_some() || req.threshold.is_some() {
                return bad_request(
                    "This server uses the file seal: key shares apply only to --seal shamir.",
                );
            }
            if state.store.is_sealed() {
                return error(&AwsError::sealed());
            }
            if had_root_key {
                return bad_request("Citadel is already initialized.");
            }
            (Vec::new(), 0)
        }
    };

    let created = match create_root_credentials(&state).await {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    if state.config.seal == SealType::Shamir {
        state.store.seal();
        state.identities.invalidate();
    }
    tracing::info!(account = %account_id, shares = shares.len(), "citadel initialized");
    Json(InitResponse {
        shares,
        threshold,
        account_id,
        root_access_key_id: created.as_ref().map(|c| c.access_key_id.clone()),
        root_secret_access_key: created
            .as_ref()
            .map(|c| c.secret_access_key.expose_secret().to_owned()),
    })
    .into_response()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnsealRequest {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub reset: bool,
}

/// `POST /_citadel/sys/unseal`: one share per call; answers with the progress.
pub async fn unseal(State(state): State<Arc<AppState>>, request: Request<Body>) -> Response {
    let req: UnsealRequest = match body_json(&state, request).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    if state.config.seal == SealType::File && state.store.is_sealed() && !req.reset {
        // The file seal has no shares: unsealing re-reads the root key file.
        if req.key.is_some() {
            return bad_request("This server uses the file seal: it takes no key shares.");
        }
        let unsealed = match citadel_barrier::file::load(&state.config.root_key_file) {
            Ok(key) => state.store.unseal_with_key(&key).await,
            Err(e) => return internal(e),
        };
        if let Err(e) = unsealed {
            return internal(e);
        }
        tracing::info!("citadel unsealed from the root key file");
    } else if req.reset {
        state.store.reset_unseal_progress();
    } else if let Some(share) = req.key.as_deref() {
        if let Err(e) = state.store.submit_unseal_share(share).await {
            return bad_request(e.to_string());
        }
        if !state.store.is_sealed() {
            tracing::info!("citadel unsealed");
            if let Err(resp) = after_unseal(&state).await {
                return resp;
            }
        }
    } else if state.store.is_sealed() {
        return bad_request("Give either \"key\" (one unseal key share) or \"reset\": true.");
    }
    status(State(state)).await
}

/// Work that needs the store open: root credentials given by the environment are applied.
pub async fn after_unseal(state: &AppState) -> Result<(), Response> {
    if state.config.dev || state.config.root_access_key_id.is_none() {
        return Ok(());
    }
    create_root_credentials(state).await.map(|_| ())
}

/// Signed operator calls (seal, rotate, usage) must come from an account root; answers the
/// root and the request body.
/// [`require_root`] for actions that span every account (backups, dead letters): only the
/// management (default) account's root may take them.
pub(crate) async fn require_management_root(
    state: &AppState,
    request: Request<Body>,
    action: &str,
) -> Result<(citadel_api::Principal, bytes::Bytes), Response> {
    let (principal, body) = require_root(state, request).await?;
    if principal.account_id != state.config.default_account {
        return Err(error(&AwsError::new(
            403,
            "AccessDeniedException",
            format!(
                "{} may not {action}: only the management account's root may.",
                principal.arn
            ),
        )));
    }
    Ok((principal, body))
}

pub(crate) async fn require_root(
    state: &AppState,
    request: Request<Body>,
) -> Result<(citadel_api::Principal, bytes::Bytes), Response> {
    let (parts, body) = request.into_parts();
    let bytes = read_body(body, &parts.headers, 64 * 1024)
        .await
        .map_err(|e| error(&e))?;
    if state.store.is_sealed() {
        return Err(error(&AwsError::sealed()));
    }
    let sig_parts = sigv4::RequestParts {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or_default(),
        headers: &parts.headers,
        body: &bytes,
    };
    let signature = sigv4::parse(&sig_parts, time::OffsetDateTime::now_utc());
    let principal = authenticate(state, &sig_parts, signature, SIGNING_NAME, false)
        .await
        .map_err(|e| error(&e))?;
    if principal.kind != PrincipalKind::Root {
        return Err(error(&AwsError::new(
            403,
            "AccessDeniedException",
            format!(
                "{} may not use the operator API: only an account root may.",
                principal.arn
            ),
        )));
    }
    Ok((principal, bytes))
}

pub async fn seal(State(state): State<Arc<AppState>>, request: Request<Body>) -> Response {
    if let Err(resp) = require_root(&state, request).await {
        return resp;
    }
    if state.config.seal == SealType::File {
        // The root key file sits next to the data: sealing would only last until the next
        // start, so say so rather than pretend.
        tracing::warn!("sealed a file-seal server; a restart unseals it from the root key file");
    }
    state.store.seal();
    state.identities.invalidate();
    for handler in state.handlers.values() {
        handler.on_seal();
    }
    tracing::info!("citadel sealed by operator");
    status(State(state)).await
}

pub async fn rotate(State(state): State<Arc<AppState>>, request: Request<Body>) -> Response {
    if let Err(resp) = require_root(&state, request).await {
        return resp;
    }
    match state.store.rotate().await {
        Ok(term) => {
            tracing::info!(term, "barrier keyring rotated");
            status(State(state)).await
        }
        Err(e) => internal(e),
    }
}

/// An operator request's JSON body, or its defaults when the body is empty.
fn optional_json<T: Default + serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AwsError> {
    if body.is_empty() {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        AwsError::new(
            400,
            "InvalidRequestException",
            format!("Invalid request body: {e}"),
        )
    })
}

#[derive(Debug, Default, Deserialize)]
struct UsageRequest {
    /// `YYYY-MM`; the current month when absent.
    month: Option<String>,
}

/// `POST /_citadel/usage`: KMS usage and its AWS-equivalent cost for a month. An account's root
/// sees its account; the management account's root sees every account.
pub async fn usage(State(state): State<Arc<AppState>>, request: Request<Body>) -> Response {
    let (principal, body) = match require_root(&state, request).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let req: UsageRequest = match optional_json(&body) {
        Ok(r) => r,
        Err(e) => return error(&e),
    };
    let month = req.month.unwrap_or_else(|| {
        citadel_svc_kms::metering::month_of(
            (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64,
        )
    });
    let Some(kms) = &state.kms else {
        return internal("the KMS service is not configured");
    };
    let account =
        (principal.account_id != state.config.default_account).then_some(principal.account_id);
    match kms.usage_report(account.as_deref(), &month).await {
        Ok(Some(report)) => Json(report).into_response(),
        Ok(None) => bad_request(format!(
            "Invalid month {month}: expected YYYY-MM, e.g. 2026-11."
        )),
        Err(e) => internal(e),
    }
}

#[derive(Debug, Default, Deserialize)]
struct RedriveRequest {
    /// Delivery or event ids; all dead letters when absent.
    ids: Option<Vec<String>>,
}

/// `POST /_citadel/events/redrive`: moves dead-lettered event deliveries back to the outbox with
/// fresh retries. Dead letters span every account, so only the management account's root may.
pub async fn redrive(State(state): State<Arc<AppState>>, request: Request<Body>) -> Response {
    let (_, body) = match require_management_root(&state, request, "redrive events").await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let req: RedriveRequest = match optional_json(&body) {
        Ok(r) => r,
        Err(e) => return error(&e),
    };
    let Some(bus) = &state.bus else {
        return internal("the event bus is not configured");
    };
    match bus.redrive(req.ids.as_deref()).await {
        Ok(n) => {
            tracing::info!(redriven = n, "dead-lettered event deliveries redriven");
            Json(serde_json::json!({ "Redriven": n })).into_response()
        }
        Err(e) => internal(e),
    }
}
