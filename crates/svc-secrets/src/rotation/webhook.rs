//! The `webhook` rotator: an HTTP POST of the same JSON event Lambda would receive, signed with
//! HMAC-SHA256 so the receiver can tell it came from Citadel:
//!
//! ```text
//! X-Citadel-Timestamp: <unix seconds>
//! X-Citadel-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>
//! ```
//!
//! A 2xx answer whose body is empty or JSON (and not a Lambda-style error object) is success.
//! Connection failures, timeouts and 5xx answers are retried with exponential backoff; other
//! answers fail the step at once. Plain `http://` only: put a TLS-terminating proxy in front of a
//! remote receiver, or run it next to Citadel.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use zeroize::Zeroizing;

use super::{InvokeEnv, RotationEvent, Rotator, RotatorError, judge_response};

const MAX_RESPONSE: usize = 1024 * 1024;

pub struct WebhookRotator {
    pub url: http::Uri,
    pub secret: Zeroizing<Vec<u8>>,
    pub timeout: Duration,
    /// Attempts per step (at least one).
    pub attempts: u32,
}

impl std::fmt::Debug for WebhookRotator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookRotator")
            .field("url", &self.url)
            .field("timeout", &self.timeout)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// The signature header's value for `body` sent at `timestamp`.
pub fn signature(secret: &[u8], timestamp: i64, body: &str) -> String {
    let mac = citadel_crypto::hmac_sha256(secret, format!("{timestamp}.{body}").as_bytes());
    format!("sha256={}", hex::encode(mac))
}

enum Attempt {
    Done(Result<(), RotatorError>),
    Retry(String),
}

impl WebhookRotator {
    /// Checks the URL (http only, with a host).
    pub fn new(
        url: &str,
        secret: Zeroizing<Vec<u8>>,
        timeout: Duration,
        attempts: u32,
    ) -> Result<Self, String> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| format!("invalid webhook URL {url:?}: {e}"))?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            return Err(format!(
                "webhook URL {url:?} must be http://host[:port]/path (terminate TLS in a proxy)"
            ));
        }
        Ok(WebhookRotator {
            url: uri,
            secret,
            timeout,
            attempts: attempts.max(1),
        })
    }

    async fn attempt(&self, body: &str, step: &str) -> Attempt {
        let host = self.url.host().unwrap_or("localhost").to_owned();
        let port = self.url.port_u16().unwrap_or(80);
        let stream = match tokio::net::TcpStream::connect((host.as_str(), port)).await {
            Ok(s) => s,
            Err(e) => return Attempt::Retry(format!("connecting to the webhook failed: {e}")),
        };
        let (mut sender, conn) =
            match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
                Ok(x) => x,
                Err(e) => return Attempt::Retry(format!("the webhook handshake failed: {e}")),
            };
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let authority = match self.url.port_u16() {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        let path = self
            .url
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let request = http::Request::post(path)
            .header(http::header::HOST, authority)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header("x-citadel-timestamp", timestamp.to_string())
            .header(
                "x-citadel-signature",
                signature(&self.secret, timestamp, body),
            )
            .body(Full::new(Bytes::from(body.to_owned())));
        let request = match request {
            Ok(r) => r,
            Err(e) => {
                driver.abort();
                return Attempt::Done(Err(RotatorError::new(format!(
                    "building the webhook request failed: {e}"
                ))));
            }
        };
        let result = match sender.send_request(request).await {
            Ok(resp) => {
                let status = resp.status();
                let body = Limited::new(resp.into_body(), MAX_RESPONSE).collect().await;
                match body {
                    Err(_) => Attempt::Retry("reading the webhook's answer failed".to_owned()),
                    Ok(collected) => {
                        let bytes = collected.to_bytes();
                        if status.is_success() {
                            Attempt::Done(judge_response(&bytes, step))
                        } else if status.is_server_error() {
                            Attempt::Retry(format!("the webhook answered {status}"))
                        } else {
                            Attempt::Done(Err(RotatorError::new(format!(
                                "the webhook answered {status} in step {step}"
                            ))))
                        }
                    }
                }
            }
            Err(e) => Attempt::Retry(format!("the webhook request failed: {e}")),
        };
        driver.abort();
        result
    }
}

#[async_trait::async_trait]
impl Rotator for WebhookRotator {
    async fn invoke(&self, event: &RotationEvent, _env: &InvokeEnv) -> Result<(), RotatorError> {
        let body = event.to_json();
        let mut last = String::new();
        for attempt in 0..self.attempts {
            if attempt > 0 {
                let backoff = Duration::from_millis(200u64.saturating_mul(1u64 << attempt.min(6)));
                tokio::time::sleep(backoff).await;
            }
            match tokio::time::timeout(self.timeout, self.attempt(&body, &event.step)).await {
                Ok(Attempt::Done(r)) => return r,
                Ok(Attempt::Retry(why)) => last = why,
                Err(_) => {
                    last = format!(
                        "the webhook timed out after {} seconds",
                        self.timeout.as_secs()
                    );
                }
            }
        }
        Err(RotatorError::new(format!(
            "{last} (step {}, {} attempts)",
            event.step, self.attempts
        )))
    }
}
