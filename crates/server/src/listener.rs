//! The accept loop: HTTP/1.1 and HTTP/2 over plain TCP or rustls, one task per connection,
//! graceful shutdown.
//!
//! Handlers get the peer address with the standard axum extractor
//! `axum::extract::ConnectInfo<std::net::SocketAddr>`: it is inserted into every request's
//! extensions here (the equivalent of `into_make_service_with_connect_info`).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

/// A client that has not finished the TLS handshake by then is dropped, so slow or idle
/// connections cannot pin tasks and file descriptors.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Same idea for HTTP/1 request headers (slowloris).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// After shutdown is signalled, in-flight requests get this long to finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

type Builder = auto::Builder<TokioExecutor>;

/// One builder per protocol choice, built once and shared by all connections.
struct Builders {
    /// Plain TCP, or TLS without ALPN: sniff the HTTP/2 preface.
    auto: Builder,
    /// ALPN said `http/1.1`: the client must not be allowed to switch to h2.
    http1: Builder,
    /// ALPN said `h2`.
    http2: Builder,
}

impl Builders {
    fn new() -> Self {
        Self {
            auto: configure(Builder::new(TokioExecutor::new())),
            http1: configure(Builder::new(TokioExecutor::new()).http1_only()),
            http2: configure(Builder::new(TokioExecutor::new()).http2_only()),
        }
    }
}

fn configure(mut b: Builder) -> Builder {
    b.http1()
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    // Pings detect dead h2 peers so their streams and tasks are released.
    b.http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20));
    b
}

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting, lets in-flight
/// requests finish for up to [`SHUTDOWN_GRACE`], and returns. With `tls`, HTTP/2 or HTTP/1.1 is
/// chosen by ALPN. Errors of individual connections are logged at debug and never end the loop.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_with_grace(listener, tls, app, shutdown, SHUTDOWN_GRACE).await
}

async fn serve_with_grace(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> anyhow::Result<()> {
    let builders = Arc::new(Builders::new());
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let graceful = GracefulShutdown::new();
    // Tells connections still in their TLS handshake to give up at shutdown; GracefulShutdown
    // only reaches connections that already speak HTTP.
    let (stopping_tx, stopping_rx) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    // Connection tasks live here so that whatever is still running after the grace period is
    // aborted, not left detached; finished ones are reaped as the loop goes.
    let mut connections = tokio::task::JoinSet::new();

    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) if is_per_connection(&e) => {
                    tracing::debug!(error = %e, "accept: connection gone before it was accepted");
                    continue;
                }
                Err(e) => {
                    // Typically EMFILE/ENFILE. Back off briefly so running out of descriptors
                    // does not become a busy loop; connections closing will free some.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Small request/response exchanges: don't let Nagle delay them.
        let _ = stream.set_nodelay(true);
        // Taken at accept time because `GracefulShutdown::shutdown` consumes it: no watcher
        // can be created once shutdown has begun.
        let watcher = graceful.watcher();
        let builders = Arc::clone(&builders);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let stopping = stopping_rx.clone();
        connections.spawn(async move {
            match acceptor {
                None => serve_connection(&builders.auto, stream, peer, None, app, watcher).await,
                Some(acceptor) => {
                    serve_tls(&builders, acceptor, stream, peer, app, watcher, stopping).await
                }
            }
        });
    }
    let _ = stopping_tx.send(true);

    // Stop accepting before waiting: new clients get connection refused rather than hanging.
    drop(listener);
    tracing::info!(
        connections = connections.len(),
        "shutting down: waiting for in-flight requests"
    );
    match tokio::time::timeout(grace, graceful.shutdown()).await {
        Ok(()) => tracing::info!("all connections closed"),
        Err(_) => tracing::warn!(
            grace_secs = grace.as_secs_f64(),
            "connections still open after the grace period; closing them"
        ),
    }
    connections.shutdown().await;
    Ok(())
}

/// Accept errors that concern one would-be connection only, not the listener.
fn is_per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionReset, Interrupted};
    matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted)
}

async fn serve_tls(
    builders: &Builders,
    acceptor: tokio_rustls::TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    watcher: Watcher,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream));
    let tls = tokio::select! {
        result = handshake => match result {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake timed out");
                return;
            }
        },
        // Shutting down: no request has started on this connection, so just drop it.
        _ = stopping.wait_for(|stop| *stop) => return,
    };
    let session = TlsSession::of(tls.get_ref().1);
    let builder = match tls.get_ref().1.alpn_protocol() {
        Some(b"h2") => &builders.http2,
        Some(b"http/1.1") => &builders.http1,
        _ => &builders.auto,
    };
    serve_connection(builder, tls, peer, Some(session), app, watcher).await;
}

/// What a TLS connection negotiated, in the names CloudTrail's `tlsDetails` uses (OpenSSL's):
/// inserted into the extensions of every request on the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSession {
    pub version: String,
    pub cipher_suite: String,
}

impl TlsSession {
    fn of(conn: &rustls::ServerConnection) -> TlsSession {
        let version = match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
            Some(other) => format!("{other:?}"),
            None => String::new(),
        };
        let cipher_suite = conn
            .negotiated_cipher_suite()
            .map(|s| openssl_name(s.suite()))
            .unwrap_or_default();
        TlsSession {
            version,
            cipher_suite,
        }
    }
}

/// OpenSSL's name of a cipher suite (what CloudTrail records), for the suites rustls offers;
/// any other keeps its IANA name.
fn openssl_name(suite: rustls::CipherSuite) -> String {
    use rustls::CipherSuite as C;
    let name = match suite {
        C::TLS13_AES_128_GCM_SHA256 => "TLS_AES_128_GCM_SHA256",
        C::TLS13_AES_256_GCM_SHA384 => "TLS_AES_256_GCM_SHA384",
        C::TLS13_CHACHA20_POLY1305_SHA256 => "TLS_CHACHA20_POLY1305_SHA256",
        C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => "ECDHE-ECDSA-AES128-GCM-SHA256",
        C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => "ECDHE-ECDSA-AES256-GCM-SHA384",
        C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-ECDSA-CHACHA20-POLY1305",
        C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => "ECDHE-RSA-AES128-GCM-SHA256",
        C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => "ECDHE-RSA-AES256-GCM-SHA384",
        C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => "ECDHE-RSA-CHACHA20-POLY1305",
        other => return format!("{other:?}"),
    };
    name.to_owned()
}

async fn serve_connection<S>(
    builder: &Builder,
    stream: S,
    peer: SocketAddr,
    tls: Option<TlsSession>,
    app: Router,
    watcher: Watcher,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        if let Some(tls) = &tls {
            req.extensions_mut().insert(tls.clone());
        }
        // Router is a cheap Arc clone; oneshot because Router is always ready.
        app.clone().oneshot(req)
    });
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    if let Err(e) = watcher.watch(conn).await {
        // Resets, malformed requests, timeouts: the client's problem, not the server's.
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::tests::{client_config, prod_config};
    use crate::tls::{TlsPaths, load_or_create};
    use axum::routing::get;
    use http_body_util::{BodyExt, Empty};
    use hyper::body::Bytes;
    use tokio::sync::{Notify, oneshot};

    fn app() -> Router {
        app_with(Arc::new(Notify::new()))
    }

    /// `started` is notified when a `/slow` or `/forever` request reaches its handler, so tests
    /// signal shutdown only once the request is really in flight.
    fn app_with(started: Arc<Notify>) -> Router {
        let started2 = Arc::clone(&started);
        Router::new()
            .route("/", get(|| async { "hello" }))
            .route(
                "/peer",
                get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
            )
            .route(
                "/forever",
                get(move || async move {
                    started2.notify_one();
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    "never"
                }),
            )
            .route(
                "/slow",
                get(move || async move {
                    started.notify_one();
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    "slow done"
                }),
            )
    }

    struct Server {
        addr: SocketAddr,
        stop: oneshot::Sender<()>,
        task: tokio::task::JoinHandle<anyhow::Result<()>>,
    }

    async fn start(tls: Option<Arc<rustls::ServerConfig>>) -> Server {
        start_app(tls, app()).await
    }

    async fn start_app(tls: Option<Arc<rustls::ServerConfig>>, app: Router) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, tls, app, async move {
            let _ = rx.await;
        }));
        Server { addr, stop, task }
    }

    async fn get_h1<S>(io: S, path: &str) -> (u16, String, http::Version)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .unwrap();
        tokio::spawn(conn);
        send(&mut sender, path).await
    }

    async fn get_h2<S>(io: S, path: &str) -> (u16, String, http::Version)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
                .await
                .unwrap();
        tokio::spawn(conn);
        let req = hyper::Request::get(format!("https://localhost{path}"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let version = resp.version();
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap(), version)
    }

    async fn send(
        sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
        path: &str,
    ) -> (u16, String, http::Version) {
        let req = hyper::Request::get(path)
            .header("host", "localhost")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let version = resp.version();
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap(), version)
    }

    #[tokio::test]
    async fn plain_http1_and_h2_prior_knowledge() {
        let srv = start(None).await;
        let tcp = TcpStream::connect(srv.addr).await.unwrap();
        let (status, body, version) = get_h1(tcp, "/").await;
        assert_eq!(
            (status, body.as_str(), version),
            (200, "hello", http::Version::HTTP_11)
        );

        let tcp = TcpStream::connect(srv.addr).await.unwrap();
        let (status, body, _) = get_h1(tcp, "/peer").await;
        assert_eq!((status, body.as_str()), (200, "127.0.0.1"));

        let tcp = TcpStream::connect(srv.addr).await.unwrap();
        let (status, body, version) = get_h2(tcp, "/").await;
        assert_eq!(
            (status, body.as_str(), version),
            (200, "hello", http::Version::HTTP_2)
        );

        srv.stop.send(()).unwrap();
        srv.task.await.unwrap().unwrap();
        assert!(
            TcpStream::connect(srv.addr).await.is_err(),
            "still accepting"
        );
    }

    #[tokio::test]
    async fn tls_alpn_h2_and_http1() {
        let dir = tempfile::tempdir().unwrap();
        let tls = load_or_create(&prod_config(dir.path(), &[])).unwrap();
        let srv = start(tls).await;
        let client = client_config(&TlsPaths::new(dir.path()).ca_cert);

        // ALPN h2
        let connector = tokio_rustls::TlsConnector::from(Arc::clone(&client));
        let tcp = TcpStream::connect(srv.addr).await.unwrap();
        let sn = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let io = connector.connect(sn, tcp).await.unwrap();
        assert_eq!(io.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (status, body, version) = get_h2(io, "/peer").await;
        assert_eq!(
            (status, body.as_str(), version),
            (200, "127.0.0.1", http::Version::HTTP_2)
        );

        // ALPN http/1.1 only
        let mut h1 = (*client).clone();
        h1.alpn_protocols = vec![b"http/1.1".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(h1));
        let tcp = TcpStream::connect(srv.addr).await.unwrap();
        let sn = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let io = connector.connect(sn, tcp).await.unwrap();
        let (status, body, version) = get_h1(io, "/").await;
        assert_eq!(
            (status, body.as_str(), version),
            (200, "hello", http::Version::HTTP_11)
        );

        srv.stop.send(()).unwrap();
        srv.task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn stalled_tls_handshake_does_not_block_others() {
        let dir = tempfile::tempdir().unwrap();
        let tls = load_or_create(&prod_config(dir.path(), &[])).unwrap();
        let srv = start(tls).await;
        // Connects and never speaks.
        let _idle = TcpStream::connect(srv.addr).await.unwrap();
        let connector =
            tokio_rustls::TlsConnector::from(client_config(&TlsPaths::new(dir.path()).ca_cert));
        let tcp = TcpStream::connect(srv.addr).await.unwrap();
        let sn = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let io = connector.connect(sn, tcp).await.unwrap();
        let (status, _, _) = get_h2(io, "/").await;
        assert_eq!(status, 200);
        // Nor does it hold up shutdown for the handshake timeout.
        srv.stop.send(()).unwrap();
        tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT / 2, srv.task)
            .await
            .expect("shutdown waited for a stalled handshake")
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn graceful_shutdown_lets_in_flight_requests_finish() {
        let started = Arc::new(Notify::new());
        let srv = start_app(None, app_with(Arc::clone(&started))).await;
        let tcp = TcpStream::connect(srv.addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .unwrap();
        tokio::spawn(conn);
        let in_flight = tokio::spawn(async move { send(&mut sender, "/slow").await });
        started.notified().await;
        let started = tokio::time::Instant::now();
        srv.stop.send(()).unwrap();
        let (status, body, _) = in_flight.await.unwrap();
        assert_eq!((status, body.as_str()), (200, "slow done"));
        tokio::time::timeout(Duration::from_secs(5), srv.task)
            .await
            .expect("shutdown did not complete")
            .unwrap()
            .unwrap();
        assert!(started.elapsed() < SHUTDOWN_GRACE);
    }

    #[tokio::test]
    async fn idle_keep_alive_connection_does_not_delay_shutdown() {
        let srv = start(None).await;
        let tcp = TcpStream::connect(srv.addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .unwrap();
        let conn_task = tokio::spawn(conn);
        assert_eq!(send(&mut sender, "/").await.0, 200);
        srv.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), srv.task)
            .await
            .expect("shutdown waited on an idle keep-alive connection")
            .unwrap()
            .unwrap();
        drop(sender);
        let _ = conn_task.await;
    }

    #[tokio::test]
    async fn requests_outliving_the_grace_period_are_cut_off() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, rx) = oneshot::channel::<()>();
        let grace = Duration::from_millis(200);
        let started = Arc::new(Notify::new());
        let task = tokio::spawn(serve_with_grace(
            listener,
            None,
            app_with(Arc::clone(&started)),
            async move {
                let _ = rx.await;
            },
            grace,
        ));
        let tcp = TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .unwrap();
        tokio::spawn(conn);
        let req = hyper::Request::get("/forever")
            .header("host", "localhost")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let in_flight = tokio::spawn(async move { sender.send_request(req).await });
        started.notified().await;
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("serve did not return after the grace period")
            .unwrap()
            .unwrap();
        // The aborted connection is closed, so the client sees an error, not a hang.
        let outcome = tokio::time::timeout(Duration::from_secs(5), in_flight)
            .await
            .expect("client still waiting")
            .unwrap();
        assert!(outcome.is_err());
    }
}
