//! The `command` rotator: runs a local executable per step, as Lambda would invoke a function —
//! the event JSON on stdin, `SECRETS_MANAGER_ENDPOINT` (read by AWS's own rotation templates) in
//! the environment. Exit status 0 with nothing or JSON on stdout is success; a non-zero exit, a
//! Lambda-style error object (`{"errorType": …}`), anything else on stdout, or running past the
//! timeout (the process is killed) fails the step. Output is never logged: it may hold secrets.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{InvokeEnv, RotationEvent, Rotator, RotatorError, judge_response};

/// Bound on what is read from a rotator's stdout and stderr.
const MAX_OUTPUT: u64 = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct CommandRotator {
    /// The program and its arguments.
    pub argv: Vec<String>,
    pub timeout: Duration,
    /// Extra environment (credentials for production mode, `AWS_CA_BUNDLE`, …); overrides what
    /// Citadel sets.
    pub env: Vec<(String, String)>,
}

#[async_trait::async_trait]
impl Rotator for CommandRotator {
    async fn invoke(&self, event: &RotationEvent, env: &InvokeEnv) -> Result<(), RotatorError> {
        let Some((program, args)) = self.argv.split_first() else {
            return Err(RotatorError::new("the rotator has no command configured"));
        };
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // The server's own AWS settings must not leak into the rotator.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("AWS_") {
                cmd.env_remove(&key);
            }
        }
        for (k, v) in env.variables() {
            cmd.env(k, v);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().map_err(|e| {
            RotatorError::new(format!("the rotator command could not be started: {e}"))
        })?;
        let body = event.to_json();
        let run = async {
            if let Some(mut stdin) = child.stdin.take() {
                // A rotator that does not read its input is not an error by itself.
                let _ = stdin.write_all(body.as_bytes()).await;
                drop(stdin);
            }
            let mut out = Vec::new();
            let mut err = Vec::new();
            let stdout = child.stdout.take();
            let stderr = child.stderr.take();
            let read_out = async {
                if let Some(s) = stdout {
                    let _ = s.take(MAX_OUTPUT).read_to_end(&mut out).await;
                }
            };
            let read_err = async {
                if let Some(s) = stderr {
                    let _ = s.take(MAX_OUTPUT).read_to_end(&mut err).await;
                }
            };
            tokio::join!(read_out, read_err);
            let status = child.wait().await;
            (status, out, err.len())
        };
        let (status, out, err_len) = match tokio::time::timeout(self.timeout, run).await {
            Ok(r) => r,
            Err(_) => {
                // Dropping `run` dropped `child`: kill_on_drop ends the process.
                return Err(RotatorError::new(format!(
                    "the rotator timed out after {} seconds in step {}",
                    self.timeout.as_secs(),
                    event.step
                )));
            }
        };
        let status = status
            .map_err(|e| RotatorError::new(format!("waiting for the rotator failed: {e}")))?;
        tracing::debug!(step = %event.step, status = ?status.code(), stdout_bytes = out.len(), stderr_bytes = err_len, "rotator command finished");
        if !status.success() {
            return Err(RotatorError::new(match status.code() {
                Some(code) => format!(
                    "the rotator exited with status {code} in step {}",
                    event.step
                ),
                None => format!("the rotator was killed by a signal in step {}", event.step),
            }));
        }
        judge_response(&out, &event.step)
    }
}
