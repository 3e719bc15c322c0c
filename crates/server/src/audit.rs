//! The dispatcher's side of the audit trail: one CloudTrail record per routed API call, written
//! durably before the response is sent (see `citadel-audit`), and `citadel audit verify`.
//!
//! Recorded: every request that was routed to a service operation — allowed, denied, failed,
//! and failed authentication (bad signature, unknown or expired key: `userIdentity` then names
//! only the access key id). Not recorded: requests that could not be routed (no operation to
//! name), bodies that could not be read, and the 503s answered while sealed (nothing can be
//! written then: the index lives behind the barrier).

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use citadel_api::{
    AwsError, OperationInput, OperationOutput, OperationSpec, Principal, ServiceSpec,
};
use citadel_audit::{Call, Caller, Record, TlsDetails};
use http::HeaderMap;

use crate::app::AppState;
use crate::cli::{AuditArgs, AuditCommand};
use crate::config::{DEFAULT_DATA_DIR, is_account_id};

/// What the dispatcher knows about a finished call besides its outcome.
pub struct Audited<'a> {
    pub service: &'static ServiceSpec,
    pub operation: &'static OperationSpec,
    pub request_id: &'a str,
    pub region: &'a str,
    /// The authenticated caller, if authentication succeeded.
    pub principal: Option<&'a Principal>,
    /// The access key id the signature named, if it could be read.
    pub access_key_id: Option<&'a str>,
    pub source_ip: Option<IpAddr>,
    pub headers: &'a HeaderMap,
    /// What the TLS connection negotiated (none over plain HTTP).
    pub tls: Option<&'a crate::listener::TlsSession>,
    pub input: &'a OperationInput,
}

/// Records the call and returns its outcome — or, when the record cannot be written and the
/// server fails closed (the default), an `InternalFailure` instead.
pub async fn record(
    state: &AppState,
    call: Audited<'_>,
    outcome: Result<OperationOutput, AwsError>,
) -> Result<OperationOutput, AwsError> {
    let Some(audit) = &state.audit else {
        return outcome;
    };
    let caller = match call.principal {
        Some(p) => Caller::Principal(p),
        None => Caller::Unauthenticated {
            access_key_id: call.access_key_id,
        },
    };
    // Without a principal the record goes to the account the key names in dev mode, else to
    // the deployment's default account.
    let fallback_account = match call.access_key_id {
        Some(id) if state.config.dev && is_account_id(id) => id,
        _ => state.config.default_account.as_str(),
    };
    let header = |name: &str| call.headers.get(name).and_then(|v| v.to_str().ok());
    let tls = call.tls.map(|session| TlsDetails {
        tls_version: Some(session.version.clone()).filter(|v| !v.is_empty()),
        cipher_suite: Some(session.cipher_suite.clone()).filter(|c| !c.is_empty()),
        client_provided_host_header: header("host").map(str::to_owned),
    });
    let now = audit.now();
    let record = Record::build(
        &Call {
            service: call.service,
            operation: call.operation,
            request_id: call.request_id,
            region: call.region,
            caller,
            fallback_account,
            source_ip: call.source_ip,
            user_agent: header("user-agent"),
            tls,
            input: call.input,
            outcome: outcome.as_ref(),
        },
        now,
    );
    let event = match &state.bus {
        Some(bus)
            if bus
                .admits_api_calls(
                    &record.recipient_account_id,
                    &record.aws_region,
                    record.read_only,
                )
                .await
                .unwrap_or(true) =>
        {
            api_call_event(&record, now).map(|e| (bus, e))
        }
        _ => None,
    };
    match audit.record(record).await {
        Ok(()) => {
            if let Some((bus, event)) = event {
                // The call is recorded; an event that cannot be queued is logged, and the call
                // still answers (the record, not the event, is the system of record).
                if let Err(error) = bus.publish(&event).await {
                    tracing::error!(%error, request_id = call.request_id, "queueing the CloudTrail API call event failed");
                }
            }
            outcome
        }
        Err(e) => {
            state.metrics.audit_write_failed();
            if audit.config().fail_open {
                tracing::error!(request_id = call.request_id, service = call.service.name, operation = call.operation.name, error = %e, "AUDIT RECORD LOST: the call is served anyway because of --audit-fail-open");
                outcome
            } else {
                tracing::error!(request_id = call.request_id, service = call.service.name, operation = call.operation.name, error = %e, "the audit record could not be written: failing the call closed");
                match e {
                    citadel_audit::AuditError::Store(citadel_store::StoreError::Unavailable(_)) => {
                        Err(AwsError::storage_unavailable())
                    }
                    _ => Err(AwsError::internal()),
                }
            }
        }
    }
}

/// EventBridge's limit on an event's size; CloudTrail events above it are not delivered.
const MAX_EVENT_BYTES: usize = 256 * 1024;

/// The "AWS API Call via CloudTrail" event of a recorded call, as EventBridge receives it from
/// CloudTrail: source `aws.<service>`, the record as `detail`, no resources. Rules in state
/// `ENABLED` get the calls that are not read-only; the bus decides that from `detail.readOnly`.
/// `events:PutEvents` is left out (CloudTrail logs it as a data event, and an event per event
/// would feed on itself).
fn api_call_event(record: &Record, now: time::OffsetDateTime) -> Option<citadel_events::Event> {
    if record.event_source == "events.amazonaws.com" && record.event_name == "PutEvents" {
        return None;
    }
    let service = record.event_source.strip_suffix(".amazonaws.com")?;
    let detail = serde_json::to_value(record).ok()?;
    let event = citadel_events::Event::new(
        format!("aws.{service}"),
        citadel_svc_events::CLOUDTRAIL_API_CALL,
        detail,
        record.recipient_account_id.clone(),
        record.aws_region.clone(),
        Vec::new(),
        Some(now),
    )
    .ok()?;
    (event.to_json().len() <= MAX_EVENT_BYTES).then_some(event)
}

fn parse_time(what: &str, s: Option<&str>) -> anyhow::Result<Option<time::OffsetDateTime>> {
    s.map(|s| {
        citadel_audit::record::parse_time(s).with_context(|| {
            format!("--{what} {s:?} is not an RFC 3339 time (2024-05-01T00:00:00Z)")
        })
    })
    .transpose()
}

/// `citadel audit …`.
pub fn run(args: &AuditArgs) -> anyhow::Result<()> {
    match &args.command {
        AuditCommand::Verify { data_dir, from, to } => {
            let data_dir = data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
            let dir = data_dir.join("audit");
            if !dir.is_dir() {
                bail!(
                    "no audit trail in {} (is --data-dir right?)",
                    data_dir.display()
                );
            }
            let from = parse_time("from", from.as_deref())?;
            let to = parse_time("to", to.as_deref())?;
            if let (Some(f), Some(t)) = (from, to)
                && f > t
            {
                bail!("invalid time range: --from must occur before --to");
            }
            let report = citadel_audit::verify(&dir, None, from, to)?;
            print!("{report}");
            if !report.is_valid() {
                bail!(
                    "the audit trail failed verification: {} file(s) modified, deleted or inserted",
                    report.digests_invalid + report.logs_invalid
                );
            }
            Ok(())
        }
    }
}

/// Starts the audit writer for `<data-dir>/audit`.
pub fn start(
    config: &crate::config::Config,
    store: &std::sync::Arc<citadel_store::SealedStore>,
) -> anyhow::Result<std::sync::Arc<citadel_audit::AuditLog>> {
    let mut audit = citadel_audit::AuditConfig::new(&config.data_dir);
    audit.fail_open = config.audit_fail_open;
    audit.retention_days = config.audit_retention_days;
    if audit.fail_open {
        tracing::warn!(
            "--audit-fail-open: API calls are served even when their audit record cannot be written"
        );
    }
    citadel_audit::AuditLog::start(
        audit,
        store.clone(),
        std::sync::Arc::new(citadel_audit::SystemClock),
    )
    .context("starting the audit trail writer")
}

/// At shutdown: finish the log files and write the final digests.
pub async fn close(audit: &citadel_audit::AuditLog) {
    match audit.close().await {
        Ok(()) => tracing::info!("audit trail closed: final digests written"),
        Err(e) => {
            tracing::error!(error = %e, "closing the audit trail failed; the next start repairs and digests it")
        }
    }
}
