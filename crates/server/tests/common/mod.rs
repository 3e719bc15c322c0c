//! Starts the real `citadel` binary on an ephemeral port and drives it with real clients:
//! the `aws` CLI, boto3/botocore scripts in `tests/clients/`, and `citadel operator`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_citadel");

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub struct Server {
    pub child: Child,
    pub url: String,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    pub log: Arc<Mutex<String>>,
    pub env: Vec<(String, String)>,
}

pub struct ServerBuilder {
    args: Vec<String>,
    env: Vec<(String, String)>,
    data_dir: Option<PathBuf>,
    wait_ready: bool,
}

impl ServerBuilder {
    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_owned());
        self
    }
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_owned(), v.to_owned()));
        self
    }
    /// Reuse a data directory (restart tests).
    pub fn data_dir(mut self, d: &Path) -> Self {
        self.data_dir = Some(d.to_owned());
        self
    }
    pub fn start(self) -> Server {
        let (tmp, data_dir) = match self.data_dir {
            Some(d) => (None, d),
            None => {
                let t = tempfile::tempdir().unwrap();
                let d = t.path().join("data");
                (Some(t), d)
            }
        };
        let mut cmd = Command::new(BIN);
        cmd.arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&data_dir)
            .args(&self.args)
            .env_remove("CITADEL_CONFIG")
            .env("CITADEL_LOG_LEVEL", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("starting citadel");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    log.lock().unwrap().push_str(&line);
                    log.lock().unwrap().push('\n');
                    let _ = tx.send(line);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut url = None;
        let mut first = true;
        while Instant::now() < deadline {
            let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) else {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("citadel exited early ({status}):\n{}", log.lock().unwrap());
                }
                continue;
            };
            if first {
                // The bound address is the first thing the server logs.
                assert!(
                    line.contains("citadel listening on"),
                    "first log line should announce the address, got: {line}"
                );
                first = false;
            }
            if let Some(i) = line.find("citadel listening on ") {
                let rest = &line[i + "citadel listening on ".len()..];
                url = Some(rest.split_whitespace().next().unwrap().to_owned());
            }
            if line.contains("citadel ready") || (!self.wait_ready && url.is_some()) {
                break;
            }
        }
        let url = url.unwrap_or_else(|| panic!("citadel did not start:\n{}", log.lock().unwrap()));
        Server {
            child,
            url,
            data_dir,
            _tmp: tmp,
            log,
            env: self.env,
        }
    }
}

impl Server {
    pub fn dev() -> ServerBuilder {
        ServerBuilder {
            args: vec!["--dev".into()],
            env: vec![],
            data_dir: None,
            wait_ready: true,
        }
    }

    pub fn production() -> ServerBuilder {
        ServerBuilder {
            args: vec![],
            env: vec![],
            data_dir: None,
            wait_ready: true,
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Runs the real `aws` CLI against this server.
    pub fn aws(&self, access_key: &str, secret: &str, args: &[&str]) -> Output {
        self.aws_as(&Creds::new(access_key, secret), args)
    }

    /// Runs `aws …` expecting success; returns its JSON output (`Null` when it printed nothing).
    pub fn aws_ok(&self, access_key: &str, secret: &str, args: &[&str]) -> serde_json::Value {
        let out = self.aws(access_key, secret, args);
        assert!(
            out.status.success(),
            "aws {args:?} failed: {}",
            stderr(&out)
        );
        if out.stdout.iter().all(u8::is_ascii_whitespace) {
            serde_json::Value::Null
        } else {
            json(&out)
        }
    }

    /// Runs `aws …` expecting it to fail with `code`; returns the CLI's error text.
    pub fn aws_fails(&self, access_key: &str, secret: &str, args: &[&str], code: &str) -> String {
        let out = self.aws(access_key, secret, args);
        let err = stderr(&out);
        assert!(!out.status.success(), "aws {args:?} should have failed");
        assert!(
            err.contains(&format!("({code})")),
            "aws {args:?}: expected {code}, got: {err}"
        );
        err
    }

    /// Runs the real `aws` CLI with long-term or temporary credentials.
    pub fn aws_as(&self, creds: &Creds, args: &[&str]) -> Output {
        let mut cmd = Command::new("aws");
        cmd.arg("--endpoint-url")
            .arg(&self.url)
            .arg("--region")
            .arg("us-east-1")
            .arg("--output")
            .arg("json")
            .args(args);
        isolate_aws_env(&mut cmd, &creds.id, &creds.secret);
        if let Some(token) = &creds.token {
            cmd.env("AWS_SESSION_TOKEN", token);
        }
        cmd.output().expect("running aws")
    }

    /// Runs `tests/clients/<script>` with python3; the endpoint and credentials go in the
    /// environment (CITADEL_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).
    pub fn python(&self, script: &str, access_key: &str, secret: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new("python3");
        cmd.arg(repo_root().join("tests/clients").join(script))
            .args(args)
            .env("CITADEL_URL", &self.url);
        isolate_aws_env(&mut cmd, access_key, secret);
        cmd.output().expect("running python3")
    }

    /// Runs `citadel operator …` against this server.
    pub fn operator(
        &self,
        args: &[&str],
        stdin: Option<&str>,
        creds: Option<(&str, &str)>,
    ) -> Output {
        self.client_command("operator", args, stdin, creds)
    }

    /// Runs `citadel usage …` against this server.
    pub fn usage(&self, args: &[&str], creds: (&str, &str)) -> Output {
        self.client_command("usage", args, None, Some(creds))
    }

    /// Runs `citadel events …` against this server.
    pub fn events(&self, args: &[&str], creds: (&str, &str)) -> Output {
        self.client_command("events", args, None, Some(creds))
    }

    /// Runs a client subcommand of the binary (`operator`, `usage`) against this server.
    fn client_command(
        &self,
        command: &str,
        args: &[&str],
        stdin: Option<&str>,
        creds: Option<(&str, &str)>,
    ) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.arg(command).args(args).arg("--address").arg(&self.url);
        cmd.env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY");
        if let Some((id, secret)) = creds {
            cmd.env("AWS_ACCESS_KEY_ID", id)
                .env("AWS_SECRET_ACCESS_KEY", secret);
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        {
            use std::io::Write;
            let mut input = child.stdin.take().unwrap();
            if let Some(s) = stdin {
                input.write_all(s.as_bytes()).unwrap();
            }
        }
        child.wait_with_output().unwrap()
    }

    /// Stops the server the hard way: no graceful shutdown, nothing flushed on exit.
    pub fn kill9(mut self) -> (PathBuf, Option<tempfile::TempDir>) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        (self.data_dir.clone(), self._tmp.take())
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .arg("-TERM")
            .arg(&pid)
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(Instant::now() < deadline, "citadel did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn isolate_aws_env(cmd: &mut Command, access_key: &str, secret: &str) {
    for var in [
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_CA_BUNDLE",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("AWS_ACCESS_KEY_ID", access_key)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_CONFIG_FILE", "/nonexistent/citadel-test-aws-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/citadel-test-aws-credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("AWS_RETRY_MODE", "standard")
        .env("AWS_PAGER", "");
}

/// Long-term or temporary (with a session token) credentials for the `aws` CLI.
#[derive(Clone, Debug)]
pub struct Creds {
    pub id: String,
    pub secret: String,
    pub token: Option<String>,
}

impl Creds {
    pub fn new(id: &str, secret: &str) -> Self {
        Creds {
            id: id.into(),
            secret: secret.into(),
            token: None,
        }
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Parses the JSON a client printed, failing with both streams shown.
pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "client output is not JSON ({e}); status {:?}\nstdout: {}\nstderr: {}",
            o.status,
            stdout(o),
            stderr(o)
        )
    })
}

/// What `citadel operator init` printed: the key shares and the root access key.
pub struct Init {
    pub shares: Vec<String>,
    pub access_key_id: String,
    pub secret_access_key: String,
}

pub fn parse_init(o: &Output) -> Init {
    assert!(o.status.success(), "operator init failed: {}", stderr(o));
    let text = stdout(o);
    let field = |label: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(label))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("{label} missing in {text}"))
    };
    Init {
        shares: text
            .lines()
            .filter_map(|l| l.strip_prefix("Unseal Key "))
            .map(|r| r.split_once(": ").unwrap().1.trim().to_owned())
            .collect(),
        access_key_id: field("Root access key id:"),
        secret_access_key: field("Root secret access key:"),
    }
}

/// Standard base64, as the aws CLI's JSON output carries blobs.
pub fn b64decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .unwrap_or_else(|e| panic!("not base64 ({e}): {text}"))
}

/// Standard base64.
pub fn b64encode(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}
