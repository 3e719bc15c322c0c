//! `citadel operator …`: a small client of the operator API of a running server.

use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::{Context, bail};
use bytes::Bytes;
use citadel_sigv4 as sigv4;
use http_body_util::{BodyExt, Full};
use serde_json::Value;

use crate::cli::{
    EventsArgs, EventsCommand, OperatorArgs, OperatorCommand, UsageArgs, UsageCommand,
};
use crate::sys::{InitResponse, SIGNING_NAME};

pub(crate) struct Client {
    base: http::Uri,
    tls: Option<tokio_rustls::TlsConnector>,
}

impl Client {
    pub(crate) fn new(address: &str, ca_cert: Option<&std::path::Path>) -> anyhow::Result<Self> {
        let base: http::Uri = address
            .parse()
            .with_context(|| format!("invalid --address {address:?}"))?;
        let tls = match base.scheme_str() {
            Some("http") => None,
            Some("https") => {
                let ca = ca_cert.context(
                    "an https --address needs --ca-cert (for the internal CA: <data-dir>/tls/ca.pem)",
                )?;
                let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
                use rustls_pki_types::pem::PemObject as _;
                let mut roots = rustls::RootCertStore::empty();
                for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
                    roots.add(cert.context("parsing the CA certificate")?)?;
                }
                let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
                let config = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                Some(tokio_rustls::TlsConnector::from(Arc::new(config)))
            }
            _ => bail!("--address must start with http:// or https://"),
        };
        Ok(Client { base, tls })
    }

    async fn seal_status(&self) -> anyhow::Result<(u16, Value)> {
        self.call(
            http::Method::GET,
            "/_citadel/sys/seal-status",
            Value::Null,
            false,
        )
        .await
    }

    async fn call(
        &self,
        method: http::Method,
        path: &str,
        body: Value,
        sign: bool,
    ) -> anyhow::Result<(u16, Value)> {
        let response = self.send(method, path, body, sign).await?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await?.to_bytes();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((status, value))
    }

    /// Sends one request and answers the response with its body still unread (for responses
    /// too large to collect, such as a backup).
    pub(crate) async fn send(
        &self,
        method: http::Method,
        path: &str,
        body: Value,
        sign: bool,
    ) -> anyhow::Result<http::Response<hyper::body::Incoming>> {
        let host = self
            .base
            .host()
            .context("--address has no host")?
            .to_owned();
        let port = self
            .base
            .port_u16()
            .unwrap_or(if self.tls.is_some() { 443 } else { 80 });
        let body = Bytes::from(serde_json::to_vec(&body)?);
        let authority = format!("{host}:{port}");
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::HOST, authority.parse()?);
        headers.insert(http::header::CONTENT_TYPE, "application/json".parse()?);
        if sign {
            let access_key = std::env::var("AWS_ACCESS_KEY_ID").context(
                "signing needs AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY of an account root",
            )?;
            let secret = sigv4::SecretKey::from(
                std::env::var("AWS_SECRET_ACCESS_KEY")
                    .context("signing needs AWS_SECRET_ACCESS_KEY")?
                    .as_str(),
            );
            let token = std::env::var("AWS_SESSION_TOKEN").ok();
            let region = std::env::var("AWS_REGION")
                .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|_| "us-east-1".to_owned());
            let parts = sigv4::RequestParts {
                method: method.as_str(),
                path,
                query: "",
                headers: &headers,
                body: &body,
            };
            let signed = sigv4::sign(
                &parts,
                &sigv4::SigningParams {
                    access_key_id: &access_key,
                    secret: &secret,
                    session_token: token.as_deref(),
                    region: &region,
                    service: SIGNING_NAME,
                    time: time::OffsetDateTime::now_utc(),
                    sign_content_sha256: false,
                },
            )
            .map_err(|e| anyhow::anyhow!("signing failed: {e}"))?;
            for (name, value) in signed {
                headers.insert(name, value);
            }
        }
        let mut request = http::Request::builder()
            .method(method)
            .uri(path)
            .body(Full::new(body))?;
        *request.headers_mut() = headers;

        let tcp = tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port))
            .await
            .with_context(|| format!("connecting to {}", self.base))?;
        let response = match &self.tls {
            Some(tls) => {
                let name = rustls_pki_types::ServerName::try_from(
                    host.trim_matches(['[', ']']).to_owned(),
                )?;
                let stream = tls.connect(name, tcp).await.context("TLS handshake")?;
                send(hyper_util::rt::TokioIo::new(stream), request).await?
            }
            None => send(hyper_util::rt::TokioIo::new(tcp), request).await?,
        };
        Ok(response)
    }
}

async fn send<IO>(
    io: IO,
    request: http::Request<Full<Bytes>>,
) -> anyhow::Result<http::Response<hyper::body::Incoming>>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender.send_request(request).await?)
}

pub(crate) fn check(status: u16, body: &Value) -> anyhow::Result<()> {
    if status == 200 {
        return Ok(());
    }
    let code = body["__type"].as_str().unwrap_or("Error");
    let message = body["message"].as_str().unwrap_or("");
    bail!("{code}: {message} (HTTP {status})")
}

fn print_status(body: &Value) {
    let field = |k: &str| body[k].to_string();
    println!("Initialized   {}", field("initialized"));
    println!("Sealed        {}", field("sealed"));
    println!("Seal type     {}", body["seal_type"].as_str().unwrap_or(""));
    if body["seal_type"] == "shamir" {
        println!("Shares        {}", field("shares"));
        println!("Threshold     {}", field("threshold"));
        println!("Progress      {}/{}", field("progress"), field("threshold"));
    }
    if let Some(term) = body["term"].as_u64() {
        println!("Keyring term  {term}");
    }
    println!("Version       {}", body["version"].as_str().unwrap_or(""));
}

fn read_share() -> anyhow::Result<String> {
    let share = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("Unseal key share (will be hidden): ")?
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        line
    };
    let share = share.trim().to_owned();
    if share.is_empty() {
        bail!("no unseal key share given");
    }
    Ok(share)
}

pub async fn run(args: OperatorArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.common.address, args.common.ca_cert.as_deref())?;
    match args.command {
        OperatorCommand::Init { shares, threshold } => {
            let (status, body) = client
                .call(
                    http::Method::POST,
                    "/_citadel/sys/init",
                    serde_json::json!({"shares": shares, "threshold": threshold}),
                    false,
                )
                .await?;
            // A file-seal server does not take share counts: retry without them.
            let (status, body) = if status == 400
                && body["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("file seal"))
            {
                client
                    .call(
                        http::Method::POST,
                        "/_citadel/sys/init",
                        serde_json::json!({}),
                        false,
                    )
                    .await?
            } else {
                (status, body)
            };
            check(status, &body)?;
            let init: InitResponse = serde_json::from_value(body)?;
            for (i, share) in init.shares.iter().enumerate() {
                println!("Unseal Key {}: {share}", i + 1);
            }
            if let (Some(id), Some(secret)) =
                (&init.root_access_key_id, &init.root_secret_access_key)
            {
                println!("Root account:          {}", init.account_id);
                println!("Root access key id:    {id}");
                println!("Root secret access key: {secret}");
            }
            eprintln!();
            if !init.shares.is_empty() {
                eprintln!(
                    "Citadel is initialized and sealed. Give {} of these {} key shares to `citadel operator unseal`.",
                    init.threshold,
                    init.shares.len()
                );
            }
            eprintln!("These secrets are shown once: store them safely now.");
            Ok(())
        }
        OperatorCommand::Unseal { share, reset } => {
            let body = if reset {
                serde_json::json!({"reset": true})
            } else {
                // A file-seal server unseals from its key file: ask before prompting.
                let (_, status) = client.seal_status().await?;
                if status["seal_type"] == "file" && share.is_none() {
                    serde_json::json!({})
                } else {
                    let share = match share {
                        Some(s) => s,
                        None => read_share()?,
                    };
                    serde_json::json!({"key": share})
                }
            };
            let (status, body) = client
                .call(http::Method::POST, "/_citadel/sys/unseal", body, false)
                .await?;
            check(status, &body)?;
            print_status(&body);
            Ok(())
        }
        OperatorCommand::Seal | OperatorCommand::Rotate => {
            let path = if matches!(args.command, OperatorCommand::Seal) {
                "/_citadel/sys/seal"
            } else {
                "/_citadel/sys/rotate"
            };
            let (status, body) = client
                .call(http::Method::POST, path, serde_json::json!({}), true)
                .await?;
            check(status, &body)?;
            print_status(&body);
            Ok(())
        }
        OperatorCommand::Backup { out } => crate::backup::backup(&client, &out).await,
        OperatorCommand::Restore(restore) => crate::backup::restore(&restore).await,
        OperatorCommand::Status => {
            let (status, body) = client.seal_status().await?;
            check(status, &body)?;
            print_status(&body);
            Ok(())
        }
    }
}

/// `citadel usage report`.
pub async fn usage(args: UsageArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.common.address, args.common.ca_cert.as_deref())?;
    let UsageCommand::Report { month, json } = args.command;
    let (status, body) = client
        .call(
            http::Method::POST,
            "/_citadel/usage",
            serde_json::json!({ "month": month }),
            true,
        )
        .await?;
    check(status, &body)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&body)?);
    } else {
        print_usage(&body);
    }
    Ok(())
}

fn print_usage(report: &Value) {
    let month = report["Month"].as_str().unwrap_or_default();
    println!(
        "KMS usage for {month}, at AWS list prices ($1 per key-month, $0.03 per 10,000 requests)"
    );
    let accounts = report["Accounts"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if accounts.is_empty() {
        println!("No keys and no requests.");
    }
    for a in accounts {
        println!();
        println!("Account {}", a["Account"].as_str().unwrap_or_default());
        println!(
            "  {:<38} {:<14} {:<8} {:>6} {:>10}",
            "KEY", "REGION", "MANAGER", "HOURS", "COST"
        );
        for k in a["Keys"].as_array().map(Vec::as_slice).unwrap_or_default() {
            let destroyed = if k["Destroyed"] == true {
                " (destroyed)"
            } else {
                ""
            };
            println!(
                "  {:<38} {:<14} {:<8} {:>6} {:>10}{destroyed}",
                k["KeyId"].as_str().unwrap_or_default(),
                k["Region"].as_str().unwrap_or_default(),
                k["KeyManager"].as_str().unwrap_or_default(),
                k["Hours"],
                format!("${:.4}", k["CostUsd"].as_f64().unwrap_or_default()),
            );
        }
        let mut by_operation: std::collections::BTreeMap<String, u64> = Default::default();
        for r in a["Requests"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            *by_operation
                .entry(r["Operation"].as_str().unwrap_or_default().to_owned())
                .or_default() += r["Count"].as_u64().unwrap_or_default();
        }
        for (op, n) in by_operation {
            println!("  {op:<38} {n:>10} requests");
        }
        println!(
            "  keys ${:.4} + {} billable requests ${:.4} = ${:.4}",
            a["KeyCostUsd"].as_f64().unwrap_or_default(),
            a["BillableRequests"],
            a["RequestCostUsd"].as_f64().unwrap_or_default(),
            a["TotalUsd"].as_f64().unwrap_or_default(),
        );
    }
}

/// `citadel events redrive`.
pub async fn events(args: EventsArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.common.address, args.common.ca_cert.as_deref())?;
    let EventsCommand::Redrive { ids } = args.command;
    let body = if ids.is_empty() {
        serde_json::json!({})
    } else {
        serde_json::json!({ "ids": ids })
    };
    let (status, body) = client
        .call(http::Method::POST, "/_citadel/events/redrive", body, true)
        .await?;
    check(status, &body)?;
    println!(
        "Redriven: {} deliveries back in the outbox",
        body["Redriven"].as_u64().unwrap_or_default()
    );
    Ok(())
}
