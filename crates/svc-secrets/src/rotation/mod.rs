//! Rotation: RotateSecret and CancelRotateSecret, the rotators `RotationLambdaARN` names, and the
//! background task that runs AWS's four steps.
//!
//! The state machine, as AWS runs it: RotateSecret attaches AWSPENDING to a new placeholder
//! version (`VersionId` = the `ClientRequestToken`, no value yet) and returns; the rotator is
//! then invoked for `createSecret` (it puts the new value with `VersionStages=[AWSPENDING]`),
//! `setSecret`, `testSecret` and `finishSecret` (it moves AWSCURRENT to the new version;
//! AWSPREVIOUS follows). The service then removes AWSPENDING and records `LastRotatedDate`.
//! The next step is persisted before it runs, so a restart resumes the rotation where it was
//! (steps are idempotent by protocol). A failed step ends the attempt: AWSPENDING stays where it
//! is, the failure is recorded, and the next RotateSecret (or the next scheduled window) retries
//! that same pending version.

pub mod command;
pub mod local;
pub mod postgres;
pub mod schedule;
pub mod webhook;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use citadel_api::{AwsError, OperationOutput, RequestContext};
use citadel_model::secretsmanager as sm;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::authz::{Conditions, Target};
use crate::names::lambda_function_name;
use crate::ops_secret::{ensure_live, require_token};
use crate::record::{
    AWSCURRENT, AWSPENDING, InProgress, RotationFailure, RulesRecord, STEPS, SecretRecord,
    VersionMeta,
};
use crate::repo::{Change, Loaded};
use crate::{Inner, errors, json_output};

/// Index of `testSecret` in [`STEPS`].
const TEST_STEP: usize = 2;
/// Restarts after which an interrupted rotation is given up (recorded as failed).
const MAX_RESUMES: u32 = 5;

/// The event a rotator receives, exactly as Lambda would deliver it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationEvent {
    pub step: String,
    /// The secret's ARN.
    pub secret_id: String,
    pub client_request_token: String,
    pub rotation_token: String,
}

impl RotationEvent {
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "Step": self.step,
            "SecretId": self.secret_id,
            "ClientRequestToken": self.client_request_token,
            "RotationToken": self.rotation_token,
        })
        .to_string()
    }
}

/// Where and as whom a rotator calls back into Citadel.
#[derive(Debug, Clone, Default)]
pub struct InvokeEnv {
    /// `SECRETS_MANAGER_ENDPOINT`, e.g. `http://127.0.0.1:4566`.
    pub endpoint: Option<String>,
    pub region: String,
    pub account: String,
    /// The in-process Secrets Manager client of built-in rotators (set for every step the
    /// service runs).
    pub local: Option<local::LocalSecrets>,
}

impl InvokeEnv {
    /// The environment a command rotator gets. In dev mode a 12-digit access key id selects
    /// the account, so the account id is the default access key; production deployments give
    /// the rotator real credentials in its `env`.
    pub fn variables(&self) -> Vec<(String, String)> {
        let mut out = vec![
            ("AWS_REGION".to_owned(), self.region.clone()),
            ("AWS_DEFAULT_REGION".to_owned(), self.region.clone()),
            ("AWS_ACCESS_KEY_ID".to_owned(), self.account.clone()),
            (
                "AWS_SECRET_ACCESS_KEY".to_owned(),
                "citadel-rotation".to_owned(),
            ),
        ];
        if let Some(e) = &self.endpoint {
            out.push(("SECRETS_MANAGER_ENDPOINT".to_owned(), e.clone()));
            out.push(("AWS_ENDPOINT_URL_SECRETS_MANAGER".to_owned(), e.clone()));
        }
        out
    }
}

/// Why a step failed. The message is recorded and shown by DescribeSecret: it names what went
/// wrong, never the rotator's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotatorError {
    pub message: String,
}

impl RotatorError {
    pub fn new(message: impl Into<String>) -> Self {
        RotatorError {
            message: message.into(),
        }
    }
}

/// Something that performs rotation steps: what a rotation Lambda function is to AWS.
#[async_trait::async_trait]
pub trait Rotator: Send + Sync + std::fmt::Debug {
    /// Performs one step. `Ok` means the step succeeded.
    async fn invoke(&self, event: &RotationEvent, env: &InvokeEnv) -> Result<(), RotatorError>;
}

/// Judges what a rotator returned (a command's stdout, a webhook's body): nothing or a JSON
/// value is success; a Lambda-style error object or anything that is not JSON fails the step.
pub(crate) fn judge_response(out: &[u8], step: &str) -> Result<(), RotatorError> {
    let trimmed = out.trim_ascii();
    if trimmed.is_empty() {
        return Ok(());
    }
    match serde_json::from_slice::<serde_json::Value>(trimmed) {
        Ok(v) => {
            if let Some(kind) = v.get("errorType").or_else(|| v.get("errorMessage")) {
                let kind = kind.as_str().unwrap_or("error");
                Err(RotatorError::new(format!(
                    "the rotator reported an error ({kind}) in step {step}"
                )))
            } else {
                Ok(())
            }
        }
        Err(_) => Err(RotatorError::new(format!(
            "the rotator returned a response that is not JSON in step {step}"
        ))),
    }
}

/// How rotation runs: the rotators by name, and the endpoint rotators call back.
#[derive(Clone, Default)]
pub struct RotationSettings {
    pub rotators: HashMap<String, Arc<dyn Rotator>>,
    /// `SECRETS_MANAGER_ENDPOINT` for command rotators.
    pub endpoint: Option<String>,
}

impl std::fmt::Debug for RotationSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotationSettings")
            .field("rotators", &self.rotators.keys().collect::<Vec<_>>())
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

/// The `[secrets]` table of the server configuration.
///
/// ```toml
/// [secrets]
/// # SECRETS_MANAGER_ENDPOINT for command rotators (default: the server's own address)
/// rotation_endpoint = "http://127.0.0.1:4566"
///
/// [[secrets.rotators]]
/// name = "pg-rotator"            # RotationLambdaARN = arn:aws:lambda:<region>:<account>:function:pg-rotator
/// kind = "command"
/// command = ["python3", "/opt/rotators/pg_single_user.py"]
/// timeout_seconds = 60
/// env = { AWS_ACCESS_KEY_ID = "AKIA…", AWS_SECRET_ACCESS_KEY = "…" }   # production mode
///
/// [[secrets.rotators]]
/// name = "hook"
/// kind = "webhook"
/// url = "http://127.0.0.1:9000/rotate"
/// hmac_secret_file = "/etc/citadel/rotator.key"
/// attempts = 3
/// timeout_seconds = 30
///
/// [[secrets.rotators]]
/// name = "pg-single"
/// kind = "postgresql"            # built in: see rotation::postgres
/// strategy = "single-user"       # or "alternating-users"
/// tls = "verify-full"            # default; "disable" for plain connections
/// ca_file = "/etc/citadel/db-ca.pem"
/// connect_timeout_seconds = 10
/// ```
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SecretsConfig {
    #[serde(default)]
    pub rotators: Vec<RotatorConfig>,
    #[serde(default)]
    pub rotation_endpoint: Option<String>,
}

/// One `[[secrets.rotators]]` table of the server configuration.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RotatorConfig {
    /// The Lambda function name `RotationLambdaARN` ends with.
    pub name: String,
    /// `command` or `webhook`.
    pub kind: String,
    /// `command`: the program and its arguments.
    #[serde(default)]
    pub command: Vec<String>,
    /// `command`: extra environment variables (credentials in production mode).
    #[serde(default)]
    pub env: HashMap<String, String>,
    /// `webhook`: `http://host:port/path`.
    #[serde(default)]
    pub url: Option<String>,
    /// `webhook`: file holding the HMAC key (its bytes, minus one trailing newline).
    #[serde(default)]
    pub hmac_secret_file: Option<std::path::PathBuf>,
    /// `webhook`: attempts per step (default 3).
    #[serde(default)]
    pub attempts: Option<u32>,
    /// Per step (command, postgresql) or per attempt (webhook); default 60.
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
    /// `postgresql`: `single-user` or `alternating-users`.
    #[serde(default)]
    pub strategy: Option<String>,
    /// `postgresql`: `verify-full` (default) or `disable`.
    #[serde(default)]
    pub tls: Option<String>,
    /// `postgresql`: the CA bundle that verifies the database's certificate (default: the
    /// system's).
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
    /// `postgresql`: TCP connect timeout (default 10).
    #[serde(default)]
    pub connect_timeout_seconds: Option<u64>,
}

impl RotationSettings {
    /// Builds the rotators the configuration defines.
    pub fn from_config(
        configs: &[RotatorConfig],
        endpoint: Option<String>,
    ) -> Result<Self, String> {
        let mut rotators: HashMap<String, Arc<dyn Rotator>> = HashMap::new();
        for c in configs {
            if c.name.is_empty() {
                return Err("a secrets rotator has an empty name".to_owned());
            }
            let timeout = Duration::from_secs(c.timeout_seconds.unwrap_or(60).max(1));
            let rotator: Arc<dyn Rotator> = match c.kind.as_str() {
                "command" => {
                    if c.command.is_empty() {
                        return Err(format!("rotator {}: `command` is empty", c.name));
                    }
                    let mut env: Vec<(String, String)> =
                        c.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                    env.sort();
                    Arc::new(command::CommandRotator {
                        argv: c.command.clone(),
                        timeout,
                        env,
                    })
                }
                "webhook" => {
                    let url = c
                        .url
                        .as_deref()
                        .ok_or_else(|| format!("rotator {}: `url` is missing", c.name))?;
                    let path = c.hmac_secret_file.as_ref().ok_or_else(|| {
                        format!("rotator {}: `hmac_secret_file` is missing", c.name)
                    })?;
                    let mut secret = Zeroizing::new(std::fs::read(path).map_err(|e| {
                        format!("rotator {}: reading {}: {e}", c.name, path.display())
                    })?);
                    if secret.last() == Some(&b'\n') {
                        secret.pop();
                    }
                    if secret.is_empty() {
                        return Err(format!("rotator {}: the HMAC key file is empty", c.name));
                    }
                    Arc::new(
                        webhook::WebhookRotator::new(url, secret, timeout, c.attempts.unwrap_or(3))
                            .map_err(|e| format!("rotator {}: {e}", c.name))?,
                    )
                }
                "postgresql" => {
                    let strategy = c
                        .strategy
                        .as_deref()
                        .ok_or_else(|| format!("rotator {}: `strategy` is missing", c.name))?;
                    Arc::new(
                        postgres::PostgresRotator::new(
                            strategy,
                            c.tls.as_deref(),
                            c.ca_file.as_deref(),
                            Duration::from_secs(c.connect_timeout_seconds.unwrap_or(10).max(1)),
                            timeout,
                        )
                        .map_err(|e| format!("rotator {}: {e}", c.name))?,
                    )
                }
                other => {
                    return Err(format!(
                        "rotator {}: unknown kind {other:?} (expected command, webhook or postgresql)",
                        c.name
                    ));
                }
            };
            if rotators.insert(c.name.clone(), rotator).is_some() {
                return Err(format!("rotator {} is defined twice", c.name));
            }
        }
        Ok(RotationSettings { rotators, endpoint })
    }
}

fn cannot_invoke() -> AwsError {
    AwsError::new(
        400,
        "AccessDeniedException",
        "Secrets Manager cannot invoke the specified Lambda function. Ensure that the function policy grants access to the principal secretsmanager.amazonaws.com.",
    )
}

fn previous_rotation_in_progress() -> AwsError {
    errors::invalid_request(
        "A previous rotation isn't complete. That rotation will be reattempted.",
    )
}

fn placeholder(now_ms: i64) -> VersionMeta {
    VersionMeta {
        stages: vec![AWSPENDING.to_owned()],
        created_ms: now_ms,
        last_accessed_ms: None,
        kms_key_ids: Vec::new(),
        has_value: false,
        fingerprint: None,
        salt: None,
    }
}

/// The version AWSPENDING is on when a rotation is unfinished (AWSPENDING on a version other
/// than AWSCURRENT's).
pub(crate) fn unfinished_pending(record: &SecretRecord) -> Option<String> {
    let pending = record.version_with(AWSPENDING)?;
    let current = record.version_with(AWSCURRENT);
    (Some(pending) != current).then(|| pending.to_owned())
}

/// Starts (or restarts, with the same token) a rotation on `rec`: the placeholder version if
/// the token has none, and the in-progress marker.
pub(crate) fn begin(
    rec: &mut SecretRecord,
    token: &str,
    lambda_arn: &str,
    test_only: bool,
    now: i64,
) {
    if !rec.versions.contains_key(token) {
        rec.versions.insert(token.to_owned(), placeholder(now));
    }
    rec.attach(token, &[AWSPENDING.to_owned()]);
    rec.rotation.in_progress = Some(InProgress {
        token: token.to_owned(),
        next_step: if test_only { TEST_STEP } else { 0 },
        test_only,
        started_ms: now,
        lambda_arn: lambda_arn.to_owned(),
        resumes: 0,
    });
}

impl Inner {
    pub(crate) async fn rotate_secret(
        self: &Arc<Self>,
        ctx: &RequestContext,
        req: sm::RotateSecretRequest,
    ) -> Result<OperationOutput, AwsError> {
        let secret_id = req.secret_id.unwrap_or_default();
        let token = require_token(req.client_request_token)?;
        let found = self
            .find(ctx, &secret_id, "secretsmanager:RotateSecret")
            .await?;
        self.authorize(
            ctx,
            "secretsmanager:RotateSecret",
            Target::Secret(&found.record),
            Conditions::new().set_opt(
                "secretsmanager:RotationLambdaARN",
                req.rotation_lambda_arn.as_deref(),
            ),
        )
        .await?;
        crate::replication::refuse_replica(&found.record)?;
        ensure_live(&found.record)?;
        if req.external_secret_rotation_metadata.is_some()
            || req.external_secret_rotation_role_arn.is_some()
        {
            return Err(AwsError::new(
                400,
                "UnsupportedOperationException",
                "Citadel does not implement managed external secret rotation (ExternalSecretRotationMetadata) yet.",
            ));
        }
        let lambda = req
            .rotation_lambda_arn
            .clone()
            .filter(|l| !l.is_empty())
            .or_else(|| found.record.rotation.lambda_arn.clone())
            .ok_or_else(|| errors::invalid_request(errors::NO_ROTATION_FUNCTION))?;
        let rotator_name = lambda_function_name(&lambda).ok_or_else(cannot_invoke)?;
        if !self.rotators().contains_key(rotator_name) {
            return Err(cannot_invoke());
        }
        let rules_record = req.rotation_rules.as_ref().map(|r| RulesRecord {
            automatically_after_days: r.automatically_after_days,
            schedule_expression: r.schedule_expression.clone(),
            duration: r.duration.clone(),
        });
        if let Some(r) = &rules_record {
            schedule::parse_rules(r)?;
        }
        let immediately = req.rotate_immediately.unwrap_or(true);
        let now = self.now_ms();
        let arn = found.record.arn();
        let name = found.record.name.clone();
        let path = found.record.path();
        let running = self.is_running(&path);
        let started = self
            .update(found, |cur| {
                ensure_live(cur)?;
                if cur.rotation.in_progress.is_some() || running {
                    return Err(previous_rotation_in_progress());
                }
                let mut rec = cur.clone();
                rec.rotation.configured = true;
                rec.rotation.lambda_arn = Some(lambda.clone());
                if let Some(r) = &rules_record {
                    rec.rotation.rules = Some(r.clone());
                }
                let rules = rec
                    .rotation
                    .rules
                    .as_ref()
                    .map(schedule::parse_rules)
                    .transpose()?;
                rec.rotation.enabled = rules.is_some();
                rec.rotation.next_ms = rules.as_ref().and_then(|r| r.next_after(now));
                // An unfinished rotation is reattempted with its own version, whatever token
                // this call brought.
                let use_token = match unfinished_pending(&rec) {
                    Some(pending) => pending,
                    None => {
                        if rec.versions.get(&token).is_some_and(|v| v.has_value) {
                            return Err(errors::exists(errors::MODIFY_EXISTING_VERSION));
                        }
                        token.clone()
                    }
                };
                begin(&mut rec, &use_token, &lambda, !immediately, now);
                Ok(Change::put(rec, use_token))
            })
            .await?;
        tracing::info!(secret = %arn, version = %started, test_only = !immediately, event = "RotationStarted", "secret rotation started");
        self.spawn_rotation(path, started.clone());
        json_output(&sm::RotateSecretResponse {
            arn: Some(arn),
            name: Some(name),
            version_id: Some(started),
        })
    }

    pub(crate) async fn cancel_rotate_secret(
        &self,
        ctx: &RequestContext,
        req: sm::CancelRotateSecretRequest,
    ) -> Result<OperationOutput, AwsError> {
        let secret_id = req.secret_id.unwrap_or_default();
        let found = self
            .find(ctx, &secret_id, "secretsmanager:CancelRotateSecret")
            .await?;
        self.authorize(
            ctx,
            "secretsmanager:CancelRotateSecret",
            Target::Secret(&found.record),
            Conditions::new(),
        )
        .await?;
        crate::replication::refuse_replica(&found.record)?;
        ensure_live(&found.record)?;
        if found.record.rotation.lambda_arn.is_none() {
            return Err(errors::invalid_request(
                "You tried to enable rotation on a secret that doesn't already have a Lambda function ARN configured and you didn't include such an ARN as a parameter in this call.",
            ));
        }
        let arn = found.record.arn();
        let name = found.record.name.clone();
        let pending = self
            .update(found, |cur| {
                ensure_live(cur)?;
                let mut rec = cur.clone();
                rec.rotation.enabled = false;
                rec.rotation.next_ms = None;
                let pending = rec
                    .rotation
                    .in_progress
                    .take()
                    .map(|p| p.token)
                    .or_else(|| unfinished_pending(&rec));
                Ok(Change::put(rec, pending))
            })
            .await?;
        tracing::info!(secret = %arn, event = "RotationAbandoned", "secret rotation cancelled");
        json_output(&sm::CancelRotateSecretResponse {
            arn: Some(arn),
            name: Some(name),
            version_id: pending,
        })
    }

    pub(crate) fn is_running(&self, path: &str) -> bool {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(path)
    }

    /// Runs the rotation of the secret at `path` with `token` in a background task, unless
    /// this process already runs one for that secret.
    pub(crate) fn spawn_rotation(self: &Arc<Self>, path: String, token: String) {
        {
            let mut running = self
                .running
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !running.insert(path.clone()) {
                return;
            }
        }
        let inner = Arc::clone(self);
        tokio::spawn(async move {
            inner.run_rotation(&path, &token).await;
            inner
                .running
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&path);
            inner.settled.notify_waiters();
        });
    }

    /// The rotation task: one step after another, each persisted before it runs.
    async fn run_rotation(self: &Arc<Self>, path: &str, token: &str) {
        loop {
            let loaded = match self.load(path).await {
                Ok(Some(l)) => l,
                Ok(None) => return,
                Err(e) => {
                    tracing::error!(secret = %path, error = %e, "reading a secret during rotation failed; the scheduler will resume it");
                    return;
                }
            };
            let Some(p) = loaded.record.rotation.in_progress.clone() else {
                return;
            };
            if p.token != token || loaded.record.is_deleted() {
                return;
            }
            let done = if p.test_only {
                p.next_step > TEST_STEP
            } else {
                p.next_step >= STEPS.len()
            };
            if done {
                self.finish(loaded, token).await;
                return;
            }
            let step = STEPS.get(p.next_step).copied().unwrap_or("finishSecret");
            let rotator =
                lambda_function_name(&p.lambda_arn).and_then(|n| self.rotators().get(n).cloned());
            let result = match rotator {
                None => Err(RotatorError::new(format!(
                    "no rotator is configured for {}",
                    p.lambda_arn
                ))),
                Some(r) => {
                    let event = RotationEvent {
                        step: step.to_owned(),
                        secret_id: loaded.record.arn(),
                        client_request_token: token.to_owned(),
                        rotation_token: uuid::Uuid::new_v4().to_string(),
                    };
                    let env = InvokeEnv {
                        endpoint: self
                            .rotation
                            .read()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .endpoint
                            .clone(),
                        region: loaded.record.region.clone(),
                        account: loaded.record.account.clone(),
                        local: Some(local::LocalSecrets::new(
                            Arc::clone(self),
                            &loaded.record.account,
                            &loaded.record.region,
                        )),
                    };
                    tracing::info!(secret = %event.secret_id, step, "invoking the rotator");
                    r.invoke(&event, &env).await
                }
            };
            match result {
                Ok(()) => {
                    if !self.advance(path, token).await {
                        return;
                    }
                }
                Err(e) => {
                    self.fail(path, token, step, &e.message).await;
                    return;
                }
            }
        }
    }

    /// Records that the current step succeeded. False if the rotation is no longer ours
    /// (cancelled, restarted) or could not be recorded.
    async fn advance(&self, path: &str, token: &str) -> bool {
        let Ok(Some(loaded)) = self.load(path).await else {
            return false;
        };
        let result = self
            .update(loaded, |cur| {
                let mut rec = cur.clone();
                match rec.rotation.in_progress.as_mut() {
                    Some(p) if p.token == token => {
                        p.next_step += 1;
                        Ok(Change::put(rec, true))
                    }
                    _ => Ok(Change::put(rec, false)),
                }
            })
            .await;
        match result {
            Ok(ours) => ours,
            Err(e) => {
                tracing::error!(secret = %path, error = %e, "recording a rotation step failed; the scheduler will resume it");
                false
            }
        }
    }

    /// Ends a rotation whose steps all succeeded.
    async fn finish(&self, loaded: Loaded, token: &str) {
        let now = self.now_ms();
        let arn = loaded.record.arn();
        let (account, region) = (loaded.record.account.clone(), loaded.record.region.clone());
        let result = self
            .update(loaded, |cur| {
                let mut rec = cur.clone();
                let Some(p) = rec.rotation.in_progress.take() else {
                    return Ok(Change::put(rec, Ok(())));
                };
                if p.token != token {
                    return Ok(Change::put(cur.clone(), Ok(())));
                }
                if p.test_only {
                    // The configuration test is over: its placeholder goes.
                    match rec.versions.get(token) {
                        Some(v) if !v.has_value => {
                            rec.versions.remove(token);
                        }
                        _ => rec.detach(token, AWSPENDING),
                    }
                    return Ok(Change::put(rec, Ok(())));
                }
                if rec.version_with(AWSCURRENT) != Some(token) {
                    let message = format!(
                        "the rotator's finishSecret step did not move AWSCURRENT to version {token}"
                    );
                    rec.rotation.last_failure = Some(RotationFailure {
                        at_ms: now,
                        token: token.to_owned(),
                        step: "finishSecret".to_owned(),
                        message: message.clone(),
                    });
                    reschedule_after_failure(&mut rec, now);
                    return Ok(Change::put(rec, Err(message)));
                }
                rec.detach(token, AWSPENDING);
                rec.rotation.last_rotated_ms = Some(now);
                rec.rotation.last_failure = None;
                let rules = rec
                    .rotation
                    .rules
                    .as_ref()
                    .and_then(|r| schedule::parse_rules(r).ok());
                rec.rotation.next_ms = if rec.rotation.enabled {
                    rules.and_then(|r| r.next_after(now))
                } else {
                    None
                };
                Ok(Change::put(rec, Ok(())))
            })
            .await;
        match result {
            Ok(Ok(())) => {
                tracing::info!(secret = %arn, version = %token, event = "RotationSucceeded", "secret rotation finished");
                self.emit_rotation(&account, &region, &arn, "RotationSucceeded")
                    .await;
            }
            Ok(Err(message)) => {
                tracing::warn!(secret = %arn, version = %token, step = "finishSecret", error = %message, event = "RotationFailed", "secret rotation failed");
                self.emit_rotation(&account, &region, &arn, "RotationFailed")
                    .await;
            }
            Err(e) => {
                tracing::error!(secret = %arn, error = %e, "recording the end of a rotation failed; the scheduler will resume it");
            }
        }
    }

    /// Ends a rotation whose step failed: AWSPENDING stays, the failure is recorded.
    pub(crate) async fn fail(&self, path: &str, token: &str, step: &str, message: &str) {
        let Ok(Some(loaded)) = self.load(path).await else {
            return;
        };
        let arn = loaded.record.arn();
        let (account, region) = (loaded.record.account.clone(), loaded.record.region.clone());
        let now = self.now_ms();
        let result = self
            .update(loaded, |cur| {
                let mut rec = cur.clone();
                match &rec.rotation.in_progress {
                    Some(p) if p.token == token => {}
                    _ => return Ok(Change::put(rec, ())),
                }
                let test_only = rec.rotation.in_progress.take().is_some_and(|p| p.test_only);
                if test_only {
                    match rec.versions.get(token) {
                        Some(v) if !v.has_value => {
                            rec.versions.remove(token);
                        }
                        _ => rec.detach(token, AWSPENDING),
                    }
                }
                rec.rotation.last_failure = Some(RotationFailure {
                    at_ms: now,
                    token: token.to_owned(),
                    step: step.to_owned(),
                    message: message.to_owned(),
                });
                reschedule_after_failure(&mut rec, now);
                Ok(Change::put(rec, ()))
            })
            .await;
        tracing::warn!(secret = %arn, version = %token, step, error = %message, event = "RotationFailed", "secret rotation failed");
        self.emit_rotation(&account, &region, &arn, "RotationFailed")
            .await;
        if let Err(e) = result {
            tracing::error!(secret = %arn, error = %e, "recording a rotation failure failed");
        }
    }
}

impl Inner {
    /// Emits a rotation result on the event bus (AWS's `AwsServiceEvent` shape), if connected.
    /// The result is already recorded: a failure to emit is logged only.
    async fn emit_rotation(&self, account: &str, region: &str, arn: &str, name: &str) {
        let Some(bus) = self.events.get() else {
            return;
        };
        match citadel_events::shapes::secrets_manager_service_event(account, region, arn, name) {
            Ok(event) => {
                if let Err(error) = bus.publish(&event).await {
                    tracing::error!(%error, secret = %arn, "emitting a rotation event failed");
                }
            }
            Err(error) => tracing::error!(%error, "building a rotation event failed"),
        }
    }
}

/// After a failure, the next attempt is the next window of the schedule (if rotation is
/// enabled).
fn reschedule_after_failure(rec: &mut SecretRecord, now: i64) {
    let rules = rec
        .rotation
        .rules
        .as_ref()
        .and_then(|r| schedule::parse_rules(r).ok());
    rec.rotation.next_ms = if rec.rotation.enabled {
        rules.and_then(|r| r.next_after(now))
    } else {
        None
    };
}

/// The most resumes an interrupted rotation gets.
pub(crate) const fn max_resumes() -> u32 {
    MAX_RESUMES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_judged_like_lambda_results() {
        assert!(judge_response(b"", "createSecret").is_ok());
        assert!(judge_response(b"  null\n", "createSecret").is_ok());
        assert!(judge_response(br#"{"ok":true}"#, "setSecret").is_ok());
        assert!(judge_response(b"garbage <html>", "setSecret").is_err());
        assert!(
            judge_response(
                br#"{"errorType":"ValueError","errorMessage":"x"}"#,
                "testSecret"
            )
            .is_err()
        );
    }

    #[test]
    fn config_builds_rotators() {
        let cfg = RotatorConfig {
            name: "pg".into(),
            kind: "command".into(),
            command: vec!["/bin/true".into()],
            env: HashMap::new(),
            url: None,
            hmac_secret_file: None,
            attempts: None,
            timeout_seconds: Some(5),
            strategy: None,
            tls: None,
            ca_file: None,
            connect_timeout_seconds: None,
        };
        let s = RotationSettings::from_config(std::slice::from_ref(&cfg), None).unwrap();
        assert!(s.rotators.contains_key("pg"));
        assert!(RotationSettings::from_config(&[cfg.clone(), cfg.clone()], None).is_err());
        let bad = RotatorConfig {
            kind: "lambda".into(),
            ..cfg
        };
        assert!(RotationSettings::from_config(&[bad], None).is_err());
    }
}
