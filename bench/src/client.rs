//! A minimal HTTP/1.1 client over keep-alive connections, and SigV4 request building.
//!
//! Requests are built (and signed) ahead of time into the bytes that go on the wire, so the
//! measured loop only writes, reads and parses a status line and a `content-length`: the client
//! takes as little CPU from the server as it can.

use anyhow::{Context, bail};
use citadel_sigv4::{RequestParts, SecretKey, SigningParams, sign};
use http::{HeaderMap, HeaderValue};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Who signs, and where requests go.
#[derive(Debug, Clone)]
pub struct Signer {
    pub access_key_id: String,
    pub secret: SecretKey,
    pub region: String,
}

/// The protocol of an AWS service: awsJson 1.1 (`x-amz-target`) or the Query protocol (IAM).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Json,
    Query,
}

impl Signer {
    /// A complete signed request for `host` (`address:port`).
    ///
    /// `target` is the `x-amz-target` of an awsJson call (`TrentService.Encrypt`); for the
    /// Query protocol it is ignored and `body` is the form (`Action=…&Version=…`).
    pub fn request(
        &self,
        host: &str,
        service: &str,
        protocol: Protocol,
        target: &str,
        body: &[u8],
    ) -> anyhow::Result<Vec<u8>> {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_str(host)?);
        match protocol {
            Protocol::Json => {
                headers.insert(
                    "content-type",
                    HeaderValue::from_static("application/x-amz-json-1.1"),
                );
                headers.insert("x-amz-target", HeaderValue::from_str(target)?);
            }
            Protocol::Query => {
                headers.insert(
                    "content-type",
                    HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
                );
            }
        }
        let parts = RequestParts {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body,
        };
        let params = SigningParams {
            access_key_id: &self.access_key_id,
            secret: &self.secret,
            session_token: None,
            region: &self.region,
            service,
            time: time::OffsetDateTime::now_utc(),
            sign_content_sha256: false,
        };
        for (name, value) in sign(&parts, &params).context("signing")? {
            headers.insert(name, value);
        }
        let mut out = Vec::with_capacity(512 + body.len());
        out.extend_from_slice(b"POST / HTTP/1.1\r\n");
        for (name, value) in &headers {
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
        out.extend_from_slice(body);
        Ok(out)
    }
}

/// An answer: the status and the body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// One keep-alive connection.
pub struct Conn {
    stream: BufReader<TcpStream>,
    line: String,
}

impl Conn {
    pub async fn open(addr: &str) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream: BufReader::new(stream),
            line: String::new(),
        })
    }

    /// Sends one request and reads its response (which must carry `content-length`).
    pub async fn send(&mut self, request: &[u8]) -> anyhow::Result<Response> {
        self.stream.get_mut().write_all(request).await?;
        self.line.clear();
        if self.stream.read_line(&mut self.line).await? == 0 {
            bail!("the server closed the connection");
        }
        let status: u16 = self
            .line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {:?}", self.line))?;
        let mut length = None;
        loop {
            self.line.clear();
            if self.stream.read_line(&mut self.line).await? == 0 {
                bail!("the server closed the connection in the headers");
            }
            let header = self.line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = Some(value.trim().parse::<usize>()?);
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    bail!("chunked responses are not supported by the harness");
                }
            }
        }
        let mut body = vec![0; length.context("a response without content-length")?];
        self.stream.read_exact(&mut body).await?;
        Ok(Response { status, body })
    }
}

/// A signed awsJson call on a fresh connection, for fixtures: the parsed answer, or an error
/// naming the AWS error code.
pub async fn call_json(
    addr: &str,
    signer: &Signer,
    service: &str,
    target: &str,
    body: &serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let request = signer.request(
        addr,
        service,
        Protocol::Json,
        target,
        body.to_string().as_bytes(),
    )?;
    let mut conn = Conn::open(addr).await?;
    let response = conn.send(&request).await?;
    let value: serde_json::Value = serde_json::from_slice(&response.body).unwrap_or_default();
    if response.status != 200 {
        bail!("{target} answered {}: {value}", response.status);
    }
    Ok(value)
}

/// A signed Query-protocol call (IAM) on a fresh connection: the XML answer.
pub async fn call_query(
    addr: &str,
    signer: &Signer,
    service: &str,
    form: &str,
) -> anyhow::Result<String> {
    let request = signer.request(addr, service, Protocol::Query, "", form.as_bytes())?;
    let mut conn = Conn::open(addr).await?;
    let response = conn.send(&request).await?;
    let text = String::from_utf8_lossy(&response.body).into_owned();
    if response.status != 200 {
        bail!("{form} answered {}: {text}", response.status);
    }
    Ok(text)
}
