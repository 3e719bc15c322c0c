//! A small HTTP/1.1 client for webhook delivery (hyper over TCP, rustls for HTTPS).

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Bodies larger than this in a response are not read (only the status matters, and OAuth token
/// responses are small).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Where system CA certificates usually are (Debian/Ubuntu/Alpine, then Fedora/RHEL).
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
];

#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub body: Bytes,
}

/// Why a request did not produce a response.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    #[error("invalid URL: {0}")]
    Url(String),
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("TLS failed: {0}")]
    Tls(String),
    #[error("request failed: {0}")]
    Request(String),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
}

pub(crate) struct Client {
    timeout: Duration,
    ca_bundle: Option<std::path::PathBuf>,
    tls: OnceLock<Result<Arc<rustls::ClientConfig>, String>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("timeout", &self.timeout)
            .field("ca_bundle", &self.ca_bundle)
            .finish()
    }
}

fn load_roots(path: Option<&Path>) -> Result<rustls::RootCertStore, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let candidates: Vec<&Path> = match path {
        Some(p) => vec![p],
        None => SYSTEM_BUNDLES.iter().map(Path::new).collect(),
    };
    let mut roots = rustls::RootCertStore::empty();
    for candidate in candidates {
        let Ok(iter) = CertificateDer::pem_file_iter(candidate) else {
            continue;
        };
        for cert in iter.flatten() {
            // Certificates rustls cannot parse are skipped, as browsers do.
            let _ = roots.add(cert);
        }
        if !roots.is_empty() {
            return Ok(roots);
        }
    }
    Err(match path {
        Some(p) => format!("no CA certificates could be read from {}", p.display()),
        None => "no system CA bundle found; configure one for HTTPS webhooks".to_owned(),
    })
}

impl Client {
    pub(crate) fn new(timeout: Duration, ca_bundle: Option<std::path::PathBuf>) -> Self {
        Client {
            timeout,
            ca_bundle,
            tls: OnceLock::new(),
        }
    }

    fn tls_config(&self) -> Result<Arc<rustls::ClientConfig>, HttpError> {
        self.tls
            .get_or_init(|| {
                let roots = load_roots(self.ca_bundle.as_deref())?;
                let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
                rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
                    .map_err(|e| e.to_string())
            })
            .clone()
            .map_err(HttpError::Tls)
    }

    /// Sends one request and reads the response, all within the client's timeout.
    pub(crate) async fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Option<Vec<u8>>,
    ) -> Result<Response, HttpError> {
        let timeout = self.timeout;
        tokio::time::timeout(timeout, self.send_inner(method, url, headers, body))
            .await
            .map_err(|_| HttpError::Timeout(timeout))?
    }

    async fn send_inner(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Option<Vec<u8>>,
    ) -> Result<Response, HttpError> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| HttpError::Url(e.to_string()))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(HttpError::Url("the scheme must be http or https".into())),
        };
        let host = uri
            .host()
            .ok_or_else(|| HttpError::Url("no host".into()))?
            .to_owned();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let authority = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_else(|| host.clone());
        let path = uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());

        let connect_host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let tcp = TcpStream::connect((connect_host.as_str(), port))
            .await
            .map_err(|e| HttpError::Connect(e.to_string()))?;
        let _ = tcp.set_nodelay(true);

        let mut builder = http::Request::builder().method(method).uri(path);
        builder = builder.header(http::header::HOST, authority);
        for (k, v) in headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let request = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| HttpError::Request(e.to_string()))?;

        if https {
            let config = self.tls_config()?;
            let name = rustls_pki_types::ServerName::try_from(connect_host)
                .map_err(|e| HttpError::Tls(e.to_string()))?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| HttpError::Tls(e.to_string()))?;
            exchange(TokioIo::new(tls), request).await
        } else {
            exchange(TokioIo::new(tcp), request).await
        }
    }
}

async fn exchange<T>(io: T, request: http::Request<Full<Bytes>>) -> Result<Response, HttpError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| HttpError::Request(e.to_string()))?;
    let driver = tokio::spawn(async move {
        // The connection ends when the response is read or the peer closes; errors surface
        // through the request.
        let _ = conn.await;
    });
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| HttpError::Request(e.to_string()))?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map(http_body_util::Collected::to_bytes)
            .unwrap_or_default();
        Ok(Response { status, body })
    }
    .await;
    driver.abort();
    result
}
