//! The delivery loop: takes due entries from the durable outbox, delivers them (webhook through an
//! API destination, or an operator file), and retries with exponential backoff until the target's
//! RetryPolicy (MaximumRetryAttempts, MaximumEventAgeInSeconds) runs out; then the entry moves to
//! the dead-letter store, where it stays until an operator redrives it.
//!
//! Guarantee: **at least once**. An entry leaves the outbox only after its target acknowledged it
//! (2xx, or the line was written and synced); a crash between the acknowledgement and the removal
//! delivers it again. Receivers de-duplicate with the event `id` (in the default body, and in the
//! `X-Citadel-Event-Id` header of every webhook call) or with `X-Citadel-Delivery-Id` (one per
//! event and target).
//!
//! Webhook responses are classified as EventBridge classifies API-destination responses: 2xx is
//! delivered; 401, 407, 409, 429 and 5xx (and connection failures and timeouts) are retried; any
//! other status is not retried and goes straight to the dead-letter store.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use citadel_store::{Expect, Op, put_json_op};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use tokio::io::AsyncWriteExt;

use crate::bus::{Bus, destination_name, now_ms};
use crate::errors::BusError;
use crate::records::{
    self, ApiDestinationRecord, ConnectionAuth, ConnectionRecord, DEAD_LETTER_PREFIX, DeadLetter,
    Delivery, Destination, OUTBOX_PREFIX,
};

/// Characters left unescaped in query strings (RFC 3986 unreserved).
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Outbox entries examined per pass.
const PASS_LIMIT: usize = 1000;

/// Mutable state of the loop: per-destination rate windows and cached OAuth tokens.
#[derive(Default)]
pub(crate) struct LoopState {
    /// Destination ARN → (second, deliveries started in that second).
    rate: HashMap<String, (i64, u32)>,
    /// Connection ARN → (access token, expiry ms). Never logged.
    tokens: HashMap<String, (String, i64)>,
}

/// What one pass of the loop did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryPass {
    pub delivered: usize,
    pub retried: usize,
    pub dead_lettered: usize,
    /// Entries not yet due (or held back by a rate limit).
    pub waiting: usize,
}

/// Why an attempt failed.
#[derive(Debug)]
struct Failure {
    retryable: bool,
    reason: String,
}

impl Failure {
    fn retry(reason: impl Into<String>) -> Self {
        Failure {
            retryable: true,
            reason: reason.into(),
        }
    }
    fn permanent(reason: impl Into<String>) -> Self {
        Failure {
            retryable: false,
            reason: reason.into(),
        }
    }
}

enum Outcome {
    Delivered,
    Failed(Failure),
    /// The destination's InvocationRateLimitPerSecond is used up: try again next second.
    RateLimited,
}

/// Statuses EventBridge retries for API destinations.
fn retryable_status(status: u16) -> bool {
    matches!(status, 401 | 407 | 409 | 429) || status >= 500
}

/// `base · 2^(attempts−1)`, capped, with ±20% jitter.
fn backoff(base: Duration, cap: Duration, attempts: u32) -> Duration {
    let exp = attempts.saturating_sub(1).min(30);
    let raw = base.saturating_mul(1u32 << exp).min(cap);
    let r = uuid::Uuid::new_v4().as_u128();
    // 0..=40 → factor 0.8..=1.2
    let jitter = u32::try_from(r % 41).unwrap_or(20);
    raw.mul_f64(0.8 + f64::from(jitter) / 100.0)
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Bus {
    /// Runs the delivery loop until `shutdown` completes. Spawn it once per deployment (on the
    /// node that runs the scheduler): `tokio::spawn(bus.clone().run_delivery(shutdown))`.
    pub async fn run_delivery(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if !self.store.is_sealed() {
                match self.deliver_due().await {
                    Ok(pass) if pass.delivered + pass.retried + pass.dead_lettered > 0 => {
                        tracing::debug!(?pass, "event delivery pass");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "event delivery pass failed"),
                }
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
    }

    /// One pass over the outbox: attempts every due entry (up to the configured concurrency at
    /// once) and records the outcome durably.
    pub async fn deliver_due(self: &Arc<Self>) -> Result<DeliveryPass, BusError> {
        let now = now_ms();
        let entries = self.store.list(OUTBOX_PREFIX, None, PASS_LIMIT).await?;
        let mut pass = DeliveryPass::default();
        let mut tasks = tokio::task::JoinSet::new();
        for (key, record) in entries {
            let delivery: Delivery = match serde_json::from_slice(&record.value) {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(%key, error = %e, "cannot decode an outbox entry; leaving it");
                    continue;
                }
            };
            if delivery.next_attempt_ms > now {
                pass.waiting += 1;
                continue;
            }
            while tasks.len() >= self.config.concurrency.max(1) {
                if let Some(done) = tasks.join_next().await {
                    tally(&mut pass, done);
                }
            }
            let bus = Arc::clone(self);
            tasks.spawn(async move { bus.attempt(key, record.version, delivery).await });
        }
        while let Some(done) = tasks.join_next().await {
            tally(&mut pass, done);
        }
        Ok(pass)
    }

    async fn attempt(
        &self,
        key: String,
        version: u64,
        mut delivery: Delivery,
    ) -> Result<Step, BusError> {
        let outcome = match &delivery.destination {
            Destination::File { name } => self.append_file(name, &delivery).await,
            Destination::ApiDestination { arn } => self.call_webhook(arn, &delivery).await,
        };
        let now = now_ms();
        match outcome {
            Outcome::Delivered => {
                // Conflict means another pass already settled it: nothing to do.
                let _ = self.store.delete(&key, Expect::Version(version)).await;
                tracing::debug!(delivery = %delivery.id, event = %delivery.event_id, "event delivered");
                Ok(Step::Delivered)
            }
            Outcome::RateLimited => {
                delivery.next_attempt_ms = (now / 1000 + 1) * 1000;
                self.rewrite(&key, version, &delivery).await?;
                Ok(Step::Waiting)
            }
            Outcome::Failed(failure) => {
                delivery.attempts = delivery.attempts.saturating_add(1);
                delivery.last_error = Some(failure.reason.clone());
                let age_ms = now.saturating_sub(delivery.accepted_ms);
                let max_age_ms =
                    i64::try_from(delivery.max_age_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
                let delay = duration_ms(backoff(
                    self.config.retry_base,
                    self.config.retry_cap,
                    delivery.attempts,
                ));
                let exhausted = !failure.retryable
                    || delivery.attempts > delivery.max_retries
                    || age_ms.saturating_add(delay) > max_age_ms;
                if exhausted {
                    let reason = if failure.retryable {
                        format!(
                            "retries exhausted after {} attempts: {}",
                            delivery.attempts, failure.reason
                        )
                    } else {
                        format!("not retryable: {}", failure.reason)
                    };
                    tracing::warn!(
                        delivery = %delivery.id,
                        event = %delivery.event_id,
                        rule = %delivery.rule_name,
                        target = %delivery.target_id,
                        %reason,
                        "event moved to the dead-letter store"
                    );
                    let dead = DeadLetter {
                        dead_ms: now,
                        reason,
                        delivery: delivery.clone(),
                    };
                    let ops = vec![
                        Op::delete(key, Expect::Version(version)),
                        put_json_op(delivery.dead_letter_key(), &dead, Expect::Any)?,
                    ];
                    match self.store.batch(ops).await {
                        Ok(()) | Err(citadel_store::StoreError::Conflict { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                    Ok(Step::DeadLettered)
                } else {
                    tracing::info!(
                        delivery = %delivery.id,
                        event = %delivery.event_id,
                        attempts = delivery.attempts,
                        reason = %failure.reason,
                        "event delivery failed; will retry"
                    );
                    delivery.next_attempt_ms = now.saturating_add(delay);
                    self.rewrite(&key, version, &delivery).await?;
                    Ok(Step::Retried)
                }
            }
        }
    }

    async fn rewrite(&self, key: &str, version: u64, delivery: &Delivery) -> Result<(), BusError> {
        match self
            .store
            .put_json(key, delivery, Expect::Version(version))
            .await
        {
            Ok(_) | Err(citadel_store::StoreError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn append_file(&self, name: &str, delivery: &Delivery) -> Outcome {
        let Some(dir) = &self.config.file_target_dir else {
            return Outcome::Failed(Failure::retry(
                "file targets are disabled: no file-target directory is configured",
            ));
        };
        let path = dir.join(format!("{name}.jsonl"));
        let mut line = delivery.body.replace('\n', " ");
        line.push('\n');
        let _guard = self.file_lock.lock().await;
        let result = async {
            tokio::fs::create_dir_all(dir).await?;
            let mut file = tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .await?;
            file.write_all(line.as_bytes()).await?;
            file.sync_data().await
        }
        .await;
        match result {
            Ok(()) => Outcome::Delivered,
            Err(e) => Outcome::Failed(Failure::retry(format!(
                "cannot append to {}: {e}",
                path.display()
            ))),
        }
    }

    fn take_rate_slot(&self, arn: &str, limit: i32) -> bool {
        let second = now_ms() / 1000;
        let limit = u32::try_from(limit.max(1)).unwrap_or(1);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = state.rate.entry(arn.to_owned()).or_insert((second, 0));
        if slot.0 != second {
            *slot = (second, 0);
        }
        if slot.1 >= limit {
            return false;
        }
        slot.1 += 1;
        true
    }

    async fn call_webhook(&self, arn: &str, delivery: &Delivery) -> Outcome {
        let Some(name) = destination_name(arn) else {
            return Outcome::Failed(Failure::permanent(format!(
                "{arn} is not an API destination ARN"
            )));
        };
        let dest_key = records::destination_key(&delivery.region, &delivery.account, name);
        let dest: ApiDestinationRecord = match self.store.get_json(&dest_key).await {
            Ok(Some(d)) => d,
            Ok(None) => {
                return Outcome::Failed(Failure::permanent(format!(
                    "API destination {name} does not exist"
                )));
            }
            Err(e) => return Outcome::Failed(Failure::retry(format!("storage: {e}"))),
        };
        let conn_name = dest
            .connection_arn
            .splitn(6, ':')
            .nth(5)
            .and_then(|r| r.strip_prefix("connection/"))
            .and_then(|r| r.split('/').next())
            .unwrap_or_default()
            .to_owned();
        let conn_key = records::connection_key(&delivery.region, &delivery.account, &conn_name);
        let conn: ConnectionRecord = match self.store.get_json(&conn_key).await {
            Ok(Some(c)) => c,
            Ok(None) => {
                return Outcome::Failed(Failure::permanent(format!(
                    "connection {conn_name} of API destination {name} does not exist"
                )));
            }
            Err(e) => return Outcome::Failed(Failure::retry(format!("storage: {e}"))),
        };
        if !self.take_rate_slot(&dest.arn, dest.rate_limit_per_second) {
            return Outcome::RateLimited;
        }

        let mut headers: Vec<(String, String)> = vec![
            (
                "content-type".into(),
                "application/json; charset=utf-8".into(),
            ),
            (
                "user-agent".into(),
                "Amazon/EventBridge/ApiDestinations".into(),
            ),
            ("x-citadel-event-id".into(), delivery.event_id.clone()),
            ("x-citadel-delivery-id".into(), delivery.id.clone()),
        ];
        for p in &conn.invocation_http.headers {
            headers.push((p.key.clone(), p.value.as_str().to_owned()));
        }
        headers.extend(delivery.headers.iter().cloned());
        match &conn.auth {
            ConnectionAuth::ApiKey { name, value } => {
                headers.push((name.clone(), value.as_str().to_owned()));
            }
            ConnectionAuth::Basic { username, password } => {
                let token = B64.encode(format!("{username}:{}", password.as_str()));
                headers.push(("authorization".into(), format!("Basic {token}")));
            }
            ConnectionAuth::OAuthClientCredentials { .. } => match self.oauth_token(&conn).await {
                Ok(token) => headers.push(("authorization".into(), format!("Bearer {token}"))),
                Err(f) => return Outcome::Failed(f),
            },
        }

        let mut url = dest.invocation_endpoint.clone();
        for value in &delivery.path {
            if let Some(at) = url.find('*') {
                url.replace_range(at..=at, &utf8_percent_encode(value, QUERY).to_string());
            }
        }
        let query: Vec<(String, String)> = conn
            .invocation_http
            .query
            .iter()
            .map(|p| (p.key.clone(), p.value.as_str().to_owned()))
            .chain(delivery.query.iter().cloned())
            .collect();
        append_query(&mut url, &query);

        let method = dest.http_method.to_ascii_uppercase();
        let body = if matches!(method.as_str(), "GET" | "HEAD") {
            None
        } else {
            Some(merge_body(&delivery.body, &conn.invocation_http.body).into_bytes())
        };
        match self.http.send(&method, &url, &headers, body).await {
            Ok(resp) if (200..300).contains(&resp.status) => Outcome::Delivered,
            Ok(resp) => {
                if resp.status == 401 {
                    self.forget_token(&conn.arn);
                }
                let reason = format!("{} answered HTTP {}", dest.name, resp.status);
                Outcome::Failed(if retryable_status(resp.status) {
                    Failure::retry(reason)
                } else {
                    Failure::permanent(reason)
                })
            }
            Err(e) => Outcome::Failed(Failure::retry(format!("{}: {e}", dest.name))),
        }
    }

    fn forget_token(&self, conn_arn: &str) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .tokens
            .remove(conn_arn);
    }

    /// An access token for an OAuth client-credentials connection (cached until shortly before
    /// it expires). The connection's state follows the outcome: AUTHORIZED or DEAUTHORIZED.
    async fn oauth_token(&self, conn: &ConnectionRecord) -> Result<String, Failure> {
        let now = now_ms();
        if let Some((token, expiry)) = self
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .tokens
            .get(&conn.arn)
            && *expiry > now
        {
            return Ok(token.clone());
        }
        let ConnectionAuth::OAuthClientCredentials {
            client_id,
            client_secret,
            authorization_endpoint,
            http_method,
            oauth_http,
        } = &conn.auth
        else {
            return Err(Failure::permanent("not an OAuth connection"));
        };
        let basic = B64.encode(format!("{client_id}:{}", client_secret.as_str()));
        let mut headers = vec![
            ("authorization".to_owned(), format!("Basic {basic}")),
            (
                "content-type".to_owned(),
                "application/x-www-form-urlencoded".to_owned(),
            ),
            ("accept".to_owned(), "application/json".to_owned()),
        ];
        for p in &oauth_http.headers {
            headers.push((p.key.clone(), p.value.as_str().to_owned()));
        }
        let mut url = authorization_endpoint.clone();
        let query: Vec<(String, String)> = oauth_http
            .query
            .iter()
            .map(|p| (p.key.clone(), p.value.as_str().to_owned()))
            .collect();
        append_query(&mut url, &query);
        let mut form = vec![("grant_type".to_owned(), "client_credentials".to_owned())];
        form.extend(
            oauth_http
                .body
                .iter()
                .map(|p| (p.key.clone(), p.value.as_str().to_owned())),
        );
        let body = form
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    utf8_percent_encode(k, QUERY),
                    utf8_percent_encode(v, QUERY)
                )
            })
            .collect::<Vec<_>>()
            .join("&");
        let method = http_method.to_ascii_uppercase();
        let body = (method != "GET").then(|| body.into_bytes());
        let result = self.http.send(&method, &url, &headers, body).await;
        let token = match result {
            Ok(resp) if (200..300).contains(&resp.status) => {
                let parsed: Option<(String, i64)> =
                    serde_json::from_slice::<serde_json::Value>(&resp.body)
                        .ok()
                        .and_then(|v| {
                            let token = v.get("access_token")?.as_str()?.to_owned();
                            let expires = v
                                .get("expires_in")
                                .and_then(serde_json::Value::as_i64)
                                .unwrap_or(3600);
                            Some((token, expires))
                        });
                parsed.ok_or_else(|| {
                    Failure::retry("the authorization endpoint's answer has no access_token")
                })
            }
            Ok(resp) => Err(Failure::retry(format!(
                "the authorization endpoint answered HTTP {}",
                resp.status
            ))),
            Err(e) => Err(Failure::retry(format!("authorization endpoint: {e}"))),
        };
        self.record_authorization(conn, token.as_ref().err().map(|f| f.reason.clone()))
            .await;
        let (token, expires_in) = token?;
        let expiry = now.saturating_add(expires_in.saturating_sub(30).max(1).saturating_mul(1000));
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .tokens
            .insert(conn.arn.clone(), (token.clone(), expiry));
        Ok(token)
    }

    async fn record_authorization(&self, conn: &ConnectionRecord, error: Option<String>) {
        let key = records::connection_key(
            region_of(&conn.arn).unwrap_or_default(),
            account_of(&conn.arn).unwrap_or_default(),
            &conn.name,
        );
        let Ok(Some(current)) = self
            .store
            .get_json_versioned::<ConnectionRecord>(&key)
            .await
        else {
            return;
        };
        let mut next = current.value;
        let now = now_ms();
        match error {
            None => {
                next.state = "AUTHORIZED".into();
                next.state_reason = None;
                next.authorized_ms = Some(now);
            }
            Some(reason) => {
                next.state = "DEAUTHORIZED".into();
                next.state_reason = Some(reason);
            }
        }
        next.modified_ms = now;
        let _ = self
            .store
            .put_json(&key, &next, Expect::Version(current.version))
            .await;
    }

    /// Dead-lettered deliveries, oldest id first (at most `limit`).
    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, BusError> {
        let page = self.store.list(DEAD_LETTER_PREFIX, None, limit).await?;
        let mut out = Vec::with_capacity(page.len());
        for (key, record) in page {
            match serde_json::from_slice(&record.value) {
                Ok(d) => out.push(d),
                Err(e) => tracing::error!(%key, error = %e, "cannot decode a dead letter"),
            }
        }
        Ok(out)
    }

    /// Moves dead-lettered deliveries back to the outbox with fresh retries (all of them, or
    /// those whose delivery id or event id is in `only`) — `citadel events redrive`. Returns how
    /// many were redriven.
    pub async fn redrive(&self, only: Option<&[String]>) -> Result<usize, BusError> {
        let mut count = 0;
        let mut after: Option<String> = None;
        loop {
            let page = self
                .store
                .list(DEAD_LETTER_PREFIX, after.as_deref(), 100)
                .await?;
            let full = page.len() == 100;
            after = page.last().map(|(k, _)| k.clone());
            for (key, record) in page {
                let Ok(dead) = serde_json::from_slice::<DeadLetter>(&record.value) else {
                    continue;
                };
                let wanted = only.is_none_or(|ids| {
                    ids.iter()
                        .any(|i| *i == dead.delivery.id || *i == dead.delivery.event_id)
                });
                if !wanted {
                    continue;
                }
                let mut delivery = dead.delivery;
                let now = now_ms();
                delivery.attempts = 0;
                delivery.accepted_ms = now;
                delivery.next_attempt_ms = now;
                delivery.last_error = None;
                let ops = vec![
                    Op::delete(key, Expect::Version(record.version)),
                    put_json_op(delivery.outbox_key(), &delivery, Expect::Absent)?,
                ];
                match self.store.batch(ops).await {
                    Ok(()) => count += 1,
                    Err(citadel_store::StoreError::Conflict { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if !full {
                break;
            }
        }
        if count > 0 {
            self.wake.notify_one();
        }
        Ok(count)
    }

    /// Entries still waiting in the outbox.
    pub async fn pending(&self, limit: usize) -> Result<Vec<Delivery>, BusError> {
        let page = self.store.list(OUTBOX_PREFIX, None, limit).await?;
        Ok(page
            .into_iter()
            .filter_map(|(_, r)| serde_json::from_slice(&r.value).ok())
            .collect())
    }
}

enum Step {
    Delivered,
    Retried,
    DeadLettered,
    Waiting,
}

fn tally(pass: &mut DeliveryPass, done: Result<Result<Step, BusError>, tokio::task::JoinError>) {
    match done {
        Ok(Ok(Step::Delivered)) => pass.delivered += 1,
        Ok(Ok(Step::Retried)) => pass.retried += 1,
        Ok(Ok(Step::DeadLettered)) => pass.dead_lettered += 1,
        Ok(Ok(Step::Waiting)) => pass.waiting += 1,
        Ok(Err(e)) => tracing::warn!(error = %e, "recording a delivery outcome failed"),
        Err(e) => tracing::error!(error = %e, "a delivery task failed"),
    }
}

fn region_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(3)
}

fn account_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(4)
}

fn append_query(url: &mut String, query: &[(String, String)]) {
    if query.is_empty() {
        return;
    }
    let encoded = query
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, QUERY),
                utf8_percent_encode(v, QUERY)
            )
        })
        .collect::<Vec<_>>()
        .join("&");
    url.push(if url.contains('?') { '&' } else { '?' });
    url.push_str(&encoded);
}

/// Adds a connection's body parameters to a JSON-object body (other bodies are sent as they are).
fn merge_body(body: &str, params: &[records::Param]) -> String {
    if params.is_empty() {
        return body.to_owned();
    }
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(mut map)) => {
            for p in params {
                map.insert(
                    p.key.clone(),
                    serde_json::Value::String(p.value.as_str().to_owned()),
                );
            }
            serde_json::Value::Object(map).to_string()
        }
        _ => body.to_owned(),
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_caps() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(1);
        for attempts in 1..=10 {
            let d = backoff(base, cap, attempts);
            let nominal = base.saturating_mul(1 << (attempts - 1)).min(cap);
            assert!(
                d >= nominal.mul_f64(0.79) && d <= nominal.mul_f64(1.21),
                "{d:?}"
            );
        }
    }

    #[test]
    fn statuses_classified_like_eventbridge() {
        for s in [401, 407, 409, 429, 500, 502, 503] {
            assert!(retryable_status(s), "{s}");
        }
        for s in [100, 301, 400, 403, 404, 413] {
            assert!(!retryable_status(s), "{s}");
        }
    }
}
