//! The multi-node backend: PostgreSQL through tokio-postgres and a deadpool connection pool.
//!
//! * **Schema**: `citadel_entries (key text COLLATE "C" PRIMARY KEY, version bigint, value
//!   bytea)` and the sequence `citadel_version`. `COLLATE "C"` makes the primary-key index
//!   byte-ordered, the same order as the SQLite backend, so `list`'s `prefix`/`start_after` range
//!   is an index range scan. Migrations are numbered and recorded in
//!   `citadel_schema_migrations`; [`PostgresBackend::connect`] applies the missing ones inside one
//!   transaction that first takes a transaction-level advisory lock, so several nodes starting at
//!   once apply each migration exactly once (the others wait, then find nothing to do).
//! * **Versions** come from the sequence (`nextval` in the writing statement). A sequence is
//!   strictly increasing across sessions (gaps are allowed by the contract), so a re-created key
//!   never gets an old version back.
//! * **Single writes** are one auto-committed statement each, whose `WHERE`/`ON CONFLICT` clause
//!   *is* the expectation, so it is checked atomically with the write by PostgreSQL's row locks:
//!   `Absent` is `INSERT … ON CONFLICT DO NOTHING`, `Version(v)` is `UPDATE … WHERE version = v`
//!   (re-checked on the newest row version after waiting for a concurrent writer), `Any` is an
//!   upsert. Zero rows affected is [`StoreError::Conflict`], as in SQLite.
//! * **Batches** run the same statements in one `SERIALIZABLE` transaction. SQLite gets
//!   serializability for free (one writer at a time); here concurrent batches may fail with a
//!   serialization failure (SQLSTATE 40001) or a deadlock (40P01) although their expectations
//!   hold. Nothing of such a transaction was applied and the batch is deterministic, so it is
//!   retried from scratch internally (a few times, with a short growing pause): the caller sees
//!   exactly what SQLite would give — success, or a `Conflict` when an expectation really fails
//!   on the retry. Only when retries run out under extreme contention is the batch reported as
//!   a `Conflict` on its first key, which every caller already treats as "re-read and retry".
//! * **Connection loss** (refused, reset, closed, timed out, server shutting down, standby in
//!   recovery) is [`StoreError::Unavailable`], which the services answer with a 503. The pool
//!   discards closed connections and opens new ones on demand, so service resumes without a
//!   restart when the database is back. A connection lost during `COMMIT` leaves the outcome
//!   unknown to us; the write is reported as failed (never acknowledged), which is what "no
//!   acknowledged write is lost" needs.
//! * **TLS** is rustls on aws-lc-rs. `sslmode` in the URL: `disable`; `prefer` (the default:
//!   TLS when the server offers it, plaintext when it does not); `require` and `verify-full`
//!   (TLS or no connection). Whenever TLS is used the server certificate chain *and* host name
//!   are verified — against `sslrootcert=<PEM file>` when given, else the system's roots:
//!   Citadel never accepts an unverified database certificate.
//!
//! The password (in the URL or [`PostgresOptions::password`]) never appears in errors, logs or
//! `Debug` output.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{IsolationLevel, NoTls, Row, Statement};
use zeroize::Zeroizing;

use crate::backend::{Backend, Entry, Expect, Op, prefix_upper_bound, validate_key};
use crate::{LoadInput, LoadSummary, Snapshot};
use crate::{Result, StoreError};

mod snapshot;

/// Schema migrations, applied in order. Entry `i` brings the schema from version `i` to `i + 1`.
/// Never edit a released entry; append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: entries and the version counter. Values are sealed (random-looking) bytes, so TOAST
    // compression would only burn CPU: store them EXTERNAL (out of line, uncompressed).
    r#"CREATE SEQUENCE citadel_version AS bigint MINVALUE 1;
       CREATE TABLE citadel_entries (
           key     text COLLATE "C" PRIMARY KEY,
           version bigint NOT NULL CHECK (version > 0),
           value   bytea  NOT NULL
       );
       ALTER TABLE citadel_entries ALTER COLUMN value SET STORAGE EXTERNAL;"#,
    // 2: the change stream of several nodes (see `pg_cluster`): every row change announces its
    // key on the `citadel_changes` channel, inside the writing transaction, so the notice is
    // delivered only on commit. TRUNCATE announces "everything" (the empty payload; no storage
    // key is empty). Keys are at most 1,024 bytes, well under NOTIFY's 8,000-byte payload limit.
    r#"CREATE FUNCTION citadel_entry_changed() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
           IF TG_OP = 'TRUNCATE' THEN
               PERFORM pg_notify('citadel_changes', '');
               RETURN NULL;
           END IF;
           IF TG_OP <> 'INSERT' THEN
               PERFORM pg_notify('citadel_changes', OLD.key);
           END IF;
           IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.key <> OLD.key) THEN
               PERFORM pg_notify('citadel_changes', NEW.key);
           END IF;
           RETURN NULL;
       END $$;
       CREATE TRIGGER citadel_entries_changed
           AFTER INSERT OR UPDATE OR DELETE ON citadel_entries
           FOR EACH ROW EXECUTE FUNCTION citadel_entry_changed();
       CREATE TRIGGER citadel_entries_truncated
           AFTER TRUNCATE ON citadel_entries
           FOR EACH STATEMENT EXECUTE FUNCTION citadel_entry_changed();"#,
];

/// Key of the transaction-level advisory lock that serializes migrations across nodes
/// ("citadel\0" in ASCII).
const MIGRATION_LOCK: i64 = 0x6369_7461_6465_6c00;

/// How often a batch that failed only for serialization reasons is run again.
const BATCH_ATTEMPTS: u32 = 10;

const GET: &str = "SELECT version, value FROM citadel_entries WHERE key = $1";
const PUT_ANY: &str = "INSERT INTO citadel_entries (key, version, value)
     VALUES ($1, nextval('citadel_version'), $2)
     ON CONFLICT (key) DO UPDATE SET version = EXCLUDED.version, value = EXCLUDED.value
     RETURNING version";
const PUT_ABSENT: &str = "INSERT INTO citadel_entries (key, version, value)
     VALUES ($1, nextval('citadel_version'), $2)
     ON CONFLICT (key) DO NOTHING
     RETURNING version";
const PUT_VERSION: &str =
    "UPDATE citadel_entries SET version = nextval('citadel_version'), value = $2
     WHERE key = $1 AND version = $3
     RETURNING version";
/// Last-writer-wins puts of distinct keys in one statement (one round trip instead of one per
/// key: the audit index writes dozens per group commit). Rows get versions in array order.
const PUT_MANY_ANY: &str = "INSERT INTO citadel_entries (key, version, value)
     SELECT k, nextval('citadel_version'), v
     FROM unnest($1::text[], $2::bytea[]) WITH ORDINALITY AS t(k, v, n) ORDER BY n
     ON CONFLICT (key) DO UPDATE SET version = EXCLUDED.version, value = EXCLUDED.value";
const EXISTS: &str = "SELECT 1 FROM citadel_entries WHERE key = $1";
const DELETE_ANY: &str = "DELETE FROM citadel_entries WHERE key = $1";
const DELETE_VERSION: &str = "DELETE FROM citadel_entries WHERE key = $1 AND version = $2";

/// Tuning of [`PostgresBackend::connect`]. `Debug` hides the password.
#[derive(Clone)]
pub struct PostgresOptions {
    /// Largest number of connections this process opens.
    pub max_connections: usize,
    /// Bound on establishing one connection (TCP, TLS and authentication).
    pub connect_timeout: Duration,
    /// How long a request waits for a free pooled connection before failing as unavailable.
    pub acquire_timeout: Duration,
    /// Password to use instead of the URL's (for example read from a secret file, so the URL
    /// itself can be shown or passed on a command line).
    pub password: Option<Zeroizing<String>>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            connect_timeout: Duration::from_secs(5),
            acquire_timeout: Duration::from_secs(5),
            password: None,
        }
    }
}

impl fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("max_connections", &self.max_connections)
            .field("connect_timeout", &self.connect_timeout)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// How TLS to the server is negotiated (`sslmode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    /// Plaintext only.
    Disable,
    /// TLS (verified) when the server supports it, else plaintext.
    Prefer,
    /// TLS (verified) or no connection (`require` and `verify-full`).
    Require,
}

/// A parsed `postgres://` URL. `Debug` and [`PostgresUrl::describe`] never show the password.
#[derive(Clone)]
pub struct PostgresUrl {
    config: tokio_postgres::Config,
    tls: TlsMode,
    root_cert: Option<PathBuf>,
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresUrl")
            .field("target", &self.describe())
            .field("tls", &self.tls)
            .field("root_cert", &self.root_cert)
            .finish()
    }
}

fn invalid_url(reason: impl fmt::Display) -> StoreError {
    StoreError::InvalidConfig(format!("invalid database URL: {reason}"))
}

impl PostgresUrl {
    /// Parses `postgres://[user[:password]@]host[:port][/dbname][?param=value&…]` (also
    /// `postgresql://`). Parameters are those of tokio-postgres (`connect_timeout`,
    /// `application_name`, `options`, `host` for a Unix socket directory, …) plus `sslmode`
    /// (`disable`, `prefer`, `require`, `verify-full`) and `sslrootcert` (a PEM file of CA
    /// certificates). Errors name the offending part, never the password.
    pub fn parse(url: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
            .ok_or_else(|| invalid_url("it must start with postgres:// or postgresql://"))?;
        let (base, query) = match rest.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (rest, None),
        };
        let mut kept = Vec::new();
        let mut sslmode: Option<String> = None;
        let mut root_cert: Option<PathBuf> = None;
        for pair in query
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
        {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode(k)?;
            match name.as_str() {
                "sslmode" => sslmode = Some(decode(v)?),
                "sslrootcert" => root_cert = Some(PathBuf::from(decode(v)?)),
                "password" => {
                    return Err(invalid_url(
                        "give the password in the user-info part (postgres://user:password@host/db) \
                         or separately, not as a query parameter",
                    ));
                }
                _ => kept.push(pair),
            }
        }
        let tls = match sslmode.as_deref() {
            None | Some("prefer") => TlsMode::Prefer,
            Some("disable") => TlsMode::Disable,
            Some("require" | "verify-full") => TlsMode::Require,
            Some("verify-ca") => {
                return Err(invalid_url(
                    "sslmode=verify-ca is not supported: Citadel always verifies the server's \
                     host name too; use sslmode=verify-full",
                ));
            }
            Some(other) => {
                return Err(invalid_url(format!(
                    "unknown sslmode {other:?} (expected disable, prefer, require or verify-full)"
                )));
            }
        };
        if tls == TlsMode::Disable && root_cert.is_some() {
            return Err(invalid_url("sslrootcert contradicts sslmode=disable"));
        }
        let mut rebuilt = format!("postgresql://{base}");
        if !kept.is_empty() {
            rebuilt.push('?');
            rebuilt.push_str(&kept.join("&"));
        }
        // tokio-postgres's parse errors name the option, not its value.
        let mut config: tokio_postgres::Config =
            rebuilt.parse().map_err(|e: tokio_postgres::Error| {
                invalid_url(match std::error::Error::source(&e) {
                    Some(cause) => format!("{e}: {cause}"),
                    None => e.to_string(),
                })
            })?;
        config.ssl_mode(match tls {
            TlsMode::Disable => tokio_postgres::config::SslMode::Disable,
            TlsMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            TlsMode::Require => tokio_postgres::config::SslMode::Require,
        });
        if config.get_user().is_none_or(str::is_empty) {
            return Err(invalid_url(
                "it names no user (postgres://USER@HOST/DATABASE)",
            ));
        }
        if config.get_hosts().is_empty() {
            return Err(invalid_url(
                "it names no host (postgres://USER@HOST/DATABASE)",
            ));
        }
        if config.get_application_name().is_none() {
            config.application_name("citadel");
        }
        Ok(Self {
            config,
            tls,
            root_cert,
        })
    }

    /// Whether the URL itself carries a password.
    #[must_use]
    pub fn has_password(&self) -> bool {
        self.config.get_password().is_some()
    }

    /// The negotiated TLS mode.
    #[must_use]
    pub fn tls(&self) -> TlsMode {
        self.tls
    }

    /// `user@host:port/dbname`, for logs and errors: never the password.
    #[must_use]
    pub fn describe(&self) -> String {
        let user = self.config.get_user().unwrap_or("?");
        let hosts: Vec<String> = self
            .config
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let host = match h {
                    tokio_postgres::config::Host::Tcp(name) => name.clone(),
                    tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
                };
                let ports = self.config.get_ports();
                match ports.get(i).or_else(|| ports.first()) {
                    Some(p) => format!("{host}:{p}"),
                    None => format!("{host}:5432"),
                }
            })
            .collect();
        let db = self.config.get_dbname().unwrap_or(user);
        format!("{user}@{}/{db}", hosts.join(","))
    }
}

fn decode(s: &str) -> Result<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| invalid_url("a query parameter is not valid percent-encoded UTF-8"))
}

fn tls_config(url: &PostgresUrl) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    match &url.root_cert {
        Some(path) => {
            use rustls_pki_types::CertificateDer;
            use rustls_pki_types::pem::PemObject;
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| {
                    StoreError::InvalidConfig(format!(
                        "sslrootcert {}: cannot read PEM certificates: {e}",
                        path.display()
                    ))
                })?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(StoreError::InvalidConfig(format!(
                    "sslrootcert {}: no usable CA certificate in the file",
                    path.display()
                )));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::warn!(error = %e, "cannot load some system CA certificates");
            }
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() && url.tls == TlsMode::Require {
                return Err(StoreError::InvalidConfig(
                    "TLS to PostgreSQL needs CA certificates, and the system has none: \
                     add sslrootcert=<PEM file> to the database URL"
                        .into(),
                ));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Backend(format!("TLS setup for PostgreSQL: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Maps a tokio-postgres error. Connection-level failures are [`StoreError::Unavailable`];
/// server errors are reported by SQLSTATE and message only (their DETAIL may quote row data).
pub(crate) fn map_err(context: &str, e: &tokio_postgres::Error) -> StoreError {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        let class = code.code().get(..2).unwrap_or_default();
        let unavailable = class == "08" // connection exception
            || class == "53" && *code != SqlState::DISK_FULL // out of connections or memory
            || *code == SqlState::ADMIN_SHUTDOWN
            || *code == SqlState::CRASH_SHUTDOWN
            || *code == SqlState::CANNOT_CONNECT_NOW
            // A standby (for example right after a fail-over, before promotion).
            || *code == SqlState::READ_ONLY_SQL_TRANSACTION;
        let msg = format!(
            "postgres {context}: {} (SQLSTATE {})",
            db.message(),
            code.code()
        );
        return if unavailable {
            StoreError::Unavailable(msg)
        } else {
            StoreError::Backend(msg)
        };
    }
    let mut msg = format!("postgres {context}: {e}");
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        msg.push_str(": ");
        msg.push_str(&c.to_string());
        cause = c.source();
    }
    // tokio-postgres keeps its error kinds private; these are the transport-level ones.
    let transport = e.is_closed()
        || matches!(
            e.to_string().as_str(),
            "error communicating with the server"
                | "error connecting to server"
                | "timeout waiting for server"
                | "error performing TLS handshake"
        );
    if transport {
        StoreError::Unavailable(msg)
    } else {
        StoreError::Backend(msg)
    }
}

fn is_retryable(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}

fn to_i64(v: u64, what: &str) -> Result<i64> {
    i64::try_from(v).map_err(|_| StoreError::Backend(format!("{what} {v} is out of range")))
}

fn to_u64(v: i64, what: &str) -> Result<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt {
        key: None,
        reason: format!("non-positive {what} {v} in the database"),
    })
}

/// The PostgreSQL backend. Cheap to clone; clones share the pool.
#[derive(Clone)]
pub struct PostgresBackend {
    pool: Pool,
    target: Arc<str>,
    /// What the change stream and the leader election open their own connections with.
    dedicated: Arc<(
        tokio_postgres::Config,
        Option<tokio_postgres_rustls::MakeRustlsConnect>,
    )>,
}

impl fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresBackend")
            .field("target", &self.target)
            .finish()
    }
}

/// What a statement runs on: a pooled connection (auto-commit) or an open transaction.
/// (A small enum rather than a generic, so the futures stay `Send`.)
enum On<'a> {
    Client(&'a deadpool_postgres::Client),
    Tx(&'a deadpool_postgres::Transaction<'a>),
}

/// Failure inside a batch attempt: either a store error, or "run the whole batch again".
enum Attempt {
    Retry,
    Fail(StoreError),
}

impl From<StoreError> for Attempt {
    fn from(e: StoreError) -> Self {
        Attempt::Fail(e)
    }
}

impl On<'_> {
    async fn prepare(&self, sql: &str) -> std::result::Result<Statement, tokio_postgres::Error> {
        match self {
            On::Client(c) => c.prepare_cached(sql).await,
            On::Tx(t) => t.prepare_cached(sql).await,
        }
    }

    async fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> std::result::Result<Option<Row>, tokio_postgres::Error> {
        let stmt = self.prepare(sql).await?;
        match self {
            On::Client(c) => c.query_opt(&stmt, params).await,
            On::Tx(t) => t.query_opt(&stmt, params).await,
        }
    }

    async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> std::result::Result<u64, tokio_postgres::Error> {
        let stmt = self.prepare(sql).await?;
        match self {
            On::Client(c) => c.execute(&stmt, params).await,
            On::Tx(t) => t.execute(&stmt, params).await,
        }
    }
}

fn conflict(key: &str) -> StoreError {
    StoreError::Conflict {
        key: key.to_owned(),
    }
}

/// How many operations from the start of `ops` are puts without expectation of distinct keys
/// (one multi-row statement can write them; a key twice would need two).
fn last_writer_wins_run(ops: &[Op]) -> usize {
    let mut keys = std::collections::HashSet::new();
    ops.iter()
        .take_while(|op| {
            matches!(op, Op::Put { key, expect: Expect::Any, .. } if keys.insert(key.as_str()))
        })
        .count()
}

/// One put with its expectation, as a single statement. `Err(Err(pg))` is a database error
/// left to the caller to classify (a batch retries serialization failures).
async fn put_on(
    on: &On<'_>,
    key: &str,
    value: &[u8],
    expect: Expect,
) -> std::result::Result<Result<u64>, tokio_postgres::Error> {
    let row = match expect {
        Expect::Any => on.query_opt(PUT_ANY, &[&key, &value]).await?,
        Expect::Absent => on.query_opt(PUT_ABSENT, &[&key, &value]).await?,
        Expect::Version(v) => {
            let v = match to_i64(v, "expected version") {
                Ok(v) => v,
                // No stored version can be that large: the expectation cannot hold.
                Err(_) => return Ok(Err(conflict(key))),
            };
            on.query_opt(PUT_VERSION, &[&key, &value, &v]).await?
        }
    };
    Ok(match row {
        Some(row) => row
            .try_get::<_, i64>(0)
            .map_err(|e| map_err("read new version", &e))
            .and_then(|v| to_u64(v, "version")),
        None => Err(conflict(key)),
    })
}

async fn delete_on(
    on: &On<'_>,
    key: &str,
    expect: Expect,
) -> std::result::Result<Result<bool>, tokio_postgres::Error> {
    Ok(match expect {
        Expect::Any => Ok(on.execute(DELETE_ANY, &[&key]).await? > 0),
        Expect::Absent => {
            if on.query_opt(EXISTS, &[&key]).await?.is_some() {
                Err(conflict(key))
            } else {
                Ok(false)
            }
        }
        Expect::Version(v) => match to_i64(v, "expected version") {
            Ok(v) if on.execute(DELETE_VERSION, &[&key, &v]).await? > 0 => Ok(true),
            _ => Err(conflict(key)),
        },
    })
}

impl PostgresBackend {
    /// Connects to the database named by `url` (see [`PostgresUrl::parse`]), checks that it
    /// can be used (UTF8 encoding), and applies pending schema migrations. Fails with
    /// [`StoreError::Unavailable`] when the server cannot be reached, and with
    /// [`StoreError::InvalidConfig`] for a bad URL or TLS setting.
    pub async fn connect(url: &str, options: PostgresOptions) -> Result<Self> {
        let parsed = PostgresUrl::parse(url)?;
        Self::connect_parsed(parsed, options).await
    }

    /// [`PostgresBackend::connect`] with an already parsed URL.
    pub async fn connect_parsed(url: PostgresUrl, options: PostgresOptions) -> Result<Self> {
        if options.max_connections == 0 {
            return Err(StoreError::InvalidConfig(
                "the PostgreSQL pool needs at least one connection".into(),
            ));
        }
        let target: Arc<str> = url.describe().into();
        let mut config = url.config.clone();
        if let Some(password) = &options.password {
            config.password(password.as_bytes());
        }
        config.connect_timeout(options.connect_timeout);
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let tls = match url.tls {
            TlsMode::Disable => None,
            TlsMode::Prefer | TlsMode::Require => Some(
                tokio_postgres_rustls::MakeRustlsConnect::new(tls_config(&url)?),
            ),
        };
        // Long-lived dedicated sessions (change stream, leader lock) also learn of a dead peer
        // from TCP keepalives, not only from their heartbeat.
        let mut dedicated = config.clone();
        dedicated
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .keepalives_interval(Duration::from_secs(2))
            .keepalives_retries(3);
        let dedicated = Arc::new((dedicated, tls.clone()));
        let manager = match tls {
            None => Manager::from_config(config, NoTls, manager_config),
            Some(tls) => Manager::from_config(config, tls, manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(options.max_connections)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.acquire_timeout))
            .create_timeout(Some(options.connect_timeout))
            .recycle_timeout(Some(options.connect_timeout))
            .build()
            .map_err(|e| StoreError::Backend(format!("building the PostgreSQL pool: {e}")))?;
        let backend = Self {
            pool,
            target,
            dedicated,
        };
        backend.migrate().await?;
        tracing::info!(database = %backend.target, tls = ?url.tls, "opened PostgreSQL store");
        Ok(backend)
    }

    /// `user@host:port/dbname` of the database in use (no password).
    #[must_use]
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Configuration and TLS for connections outside the pool (see `pg_cluster`).
    pub(crate) fn dedicated_config(
        &self,
    ) -> (
        &tokio_postgres::Config,
        Option<tokio_postgres_rustls::MakeRustlsConnect>,
    ) {
        (&self.dedicated.0, self.dedicated.1.clone())
    }

    /// Largest number of pooled connections.
    #[must_use]
    pub fn pool_size(&self) -> usize {
        self.pool.status().max_size
    }

    async fn client(&self) -> Result<deadpool_postgres::Client> {
        self.pool.get().await.map_err(|e| match e {
            PoolError::Timeout(_) => StoreError::Unavailable(format!(
                "no PostgreSQL connection to {} became available in time \
                 (the server does not answer, or all {} pooled connections are busy)",
                self.target,
                self.pool.status().max_size
            )),
            PoolError::Backend(e) => map_err(&format!("connecting to {}", self.target), &e),
            PoolError::Closed => {
                StoreError::Unavailable("the PostgreSQL connection pool is closed".into())
            }
            other => StoreError::Backend(format!("PostgreSQL connection pool: {other}")),
        })
    }

    async fn migrate(&self) -> Result<()> {
        let mut client = self.client().await?;
        let row = client
            .query_one("SHOW server_encoding", &[])
            .await
            .map_err(|e| map_err("read server encoding", &e))?;
        let encoding: String = row
            .try_get(0)
            .map_err(|e| map_err("read server encoding", &e))?;
        if !encoding.eq_ignore_ascii_case("UTF8") {
            return Err(StoreError::InvalidConfig(format!(
                "database {} uses encoding {encoding}; Citadel needs UTF8 \
                 (CREATE DATABASE … ENCODING 'UTF8' TEMPLATE template0)",
                self.target
            )));
        }
        let tx = client
            .transaction()
            .await
            .map_err(|e| map_err("begin migration", &e))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(|e| map_err("lock for migration", &e))?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS citadel_schema_migrations (
                 version    integer     PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(|e| map_err("create migrations table", &e))?;
        let current: Option<i32> = tx
            .query_one("SELECT max(version) FROM citadel_schema_migrations", &[])
            .await
            .and_then(|r| r.try_get(0))
            .map_err(|e| map_err("read schema version", &e))?;
        let current = usize::try_from(current.unwrap_or(0)).map_err(|_| StoreError::Corrupt {
            key: None,
            reason: "negative schema version in citadel_schema_migrations".into(),
        })?;
        if current > MIGRATIONS.len() {
            return Err(StoreError::Backend(format!(
                "the database has schema version {current}, newer than this binary supports ({}); \
                 upgrade Citadel",
                MIGRATIONS.len()
            )));
        }
        for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
            let version = i32::try_from(index + 1).unwrap_or(i32::MAX);
            tx.batch_execute(sql)
                .await
                .map_err(|e| map_err(&format!("apply migration {version}"), &e))?;
            tx.execute(
                "INSERT INTO citadel_schema_migrations (version) VALUES ($1)",
                &[&version],
            )
            .await
            .map_err(|e| map_err("record schema version", &e))?;
            tracing::info!(version, "applied PostgreSQL store schema migration");
        }
        tx.commit()
            .await
            .map_err(|e| map_err("commit migration", &e))
    }

    async fn batch_attempt(&self, ops: &[Op]) -> std::result::Result<(), Attempt> {
        let classify = |context: &str, e: tokio_postgres::Error| {
            if is_retryable(&e) {
                Attempt::Retry
            } else {
                Attempt::Fail(map_err(context, &e))
            }
        };
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::Serializable)
            .start()
            .await
            .map_err(|e| classify("begin batch", e))?;
        let on = On::Tx(&tx);
        let mut rest = ops;
        while let Some(op) = rest.first() {
            // An error returns early; dropping `tx` rolls everything back.
            let run = last_writer_wins_run(rest);
            if run > 1 {
                let (keys, values): (Vec<&str>, Vec<&[u8]>) = rest[..run]
                    .iter()
                    .filter_map(|op| match op {
                        Op::Put { key, value, .. } => Some((key.as_str(), value.as_slice())),
                        Op::Delete { .. } => None,
                    })
                    .unzip();
                on.execute(PUT_MANY_ANY, &[&keys, &values])
                    .await
                    .map_err(|e| classify("batch write", e))?;
                rest = &rest[run..];
                continue;
            }
            rest = &rest[1..];
            match op {
                Op::Put { key, value, expect } => {
                    put_on(&on, key, value, *expect)
                        .await
                        .map_err(|e| classify("batch write", e))??;
                }
                Op::Delete { key, expect } => {
                    delete_on(&on, key, *expect)
                        .await
                        .map_err(|e| classify("batch delete", e))??;
                }
            }
        }
        tx.commit().await.map_err(|e| classify("commit batch", e))
    }
}

#[async_trait]
impl Backend for PostgresBackend {
    fn name(&self) -> &'static str {
        "postgres"
    }

    async fn get(&self, key: &str) -> Result<Option<Entry>> {
        validate_key(key)?;
        let client = self.client().await?;
        let row = On::Client(&client)
            .query_opt(GET, &[&key])
            .await
            .map_err(|e| map_err("read entry", &e))?;
        row.map(|row| {
            let version: i64 = row.try_get(0).map_err(|e| map_err("read entry", &e))?;
            let value: Vec<u8> = row.try_get(1).map_err(|e| map_err("read entry", &e))?;
            Ok(Entry {
                version: to_u64(version, "version")?,
                value,
            })
        })
        .transpose()
    }

    async fn put(&self, key: &str, value: Vec<u8>, expect: Expect) -> Result<u64> {
        validate_key(key)?;
        let client = self.client().await?;
        put_on(&On::Client(&client), key, &value, expect)
            .await
            .map_err(|e| map_err("write entry", &e))?
    }

    async fn delete(&self, key: &str, expect: Expect) -> Result<bool> {
        validate_key(key)?;
        let client = self.client().await?;
        delete_on(&On::Client(&client), key, expect)
            .await
            .map_err(|e| map_err("delete entry", &e))?
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Entry)>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let upper = prefix_upper_bound(prefix);
        // One lower bound: whichever of `prefix` and `start_after` is tighter (as in SQLite).
        let (lower, exclusive) = match start_after {
            Some(after) if after >= prefix => (after, true),
            _ => (prefix, false),
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let op = if exclusive { ">" } else { ">=" };
        let client = self.client().await?;
        let on = On::Client(&client);
        let rows = match &upper {
            Some(upper) => {
                let sql = format!(
                    "SELECT key, version, value FROM citadel_entries
                     WHERE key {op} $1 AND key < $2 ORDER BY key LIMIT $3"
                );
                let stmt = on.prepare(&sql).await;
                match stmt {
                    Ok(stmt) => client.query(&stmt, &[&lower, upper, &limit]).await,
                    Err(e) => Err(e),
                }
            }
            None => {
                let sql = format!(
                    "SELECT key, version, value FROM citadel_entries
                     WHERE key {op} $1 ORDER BY key LIMIT $2"
                );
                match on.prepare(&sql).await {
                    Ok(stmt) => client.query(&stmt, &[&lower, &limit]).await,
                    Err(e) => Err(e),
                }
            }
        }
        .map_err(|e| map_err("list entries", &e))?;
        rows.into_iter()
            .map(|row| {
                let key: String = row.try_get(0).map_err(|e| map_err("list entries", &e))?;
                let version: i64 = row.try_get(1).map_err(|e| map_err("list entries", &e))?;
                let value: Vec<u8> = row.try_get(2).map_err(|e| map_err("list entries", &e))?;
                Ok((
                    key,
                    Entry {
                        version: to_u64(version, "version")?,
                        value,
                    },
                ))
            })
            .collect()
    }

    async fn batch(&self, ops: Vec<Op>) -> Result<()> {
        for op in &ops {
            validate_key(op.key())?;
        }
        let Some(first) = ops.first() else {
            return Ok(());
        };
        for attempt in 1..=BATCH_ATTEMPTS {
            match self.batch_attempt(&ops).await {
                Ok(()) => return Ok(()),
                Err(Attempt::Fail(e)) => return Err(e),
                Err(Attempt::Retry) => {
                    tracing::debug!(
                        attempt,
                        "PostgreSQL batch hit a serialization failure; retrying"
                    );
                    let jitter = u64::from(citadel_crypto::random_array::<1>().map_or(0, |b| b[0]));
                    let pause = u64::from(attempt) * 2 + jitter % 5;
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
            }
        }
        tracing::warn!(
            attempts = BATCH_ATTEMPTS,
            "PostgreSQL batch kept failing to serialize against concurrent writes; reporting a conflict"
        );
        Err(conflict(first.key()))
    }

    async fn snapshot(&self) -> Result<Snapshot> {
        self.snapshot_now().await
    }

    async fn load_into_empty(&self, input: LoadInput) -> Result<LoadSummary> {
        self.load_now(input).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_never_show_the_password() {
        let u = PostgresUrl::parse(
            "postgres://citadel:s3cr%40t@db.example:6543/prod?sslmode=verify-full&connect_timeout=3",
        )
        .unwrap();
        assert!(u.has_password());
        assert_eq!(u.tls(), TlsMode::Require);
        assert_eq!(u.describe(), "citadel@db.example:6543/prod");
        let dbg = format!("{u:?}");
        assert!(!dbg.contains("s3cr"), "{dbg}");

        let u = PostgresUrl::parse("postgresql://me@localhost/x").unwrap();
        assert!(!u.has_password());
        assert_eq!(u.tls(), TlsMode::Prefer);
        assert_eq!(u.describe(), "me@localhost:5432/x");
        let u = PostgresUrl::parse("postgres://me@127.0.0.1:1/x?sslmode=disable").unwrap();
        assert_eq!(u.tls(), TlsMode::Disable);
    }

    #[test]
    fn bad_urls_are_precise_errors_without_the_password() {
        for (url, needle) in [
            ("mysql://u:pw1234@h/db", "postgres://"),
            ("postgres://u:pw1234@h/db?sslmode=verify-ca", "verify-full"),
            (
                "postgres://u:pw1234@h/db?sslmode=sometimes",
                "unknown sslmode",
            ),
            ("postgres://:pw1234@h/db", "no user"),
            ("postgres://u:pw1234@h/db?nonsense=1", "nonsense"),
            ("postgres://u:pw1234@h:notaport/db", "invalid"),
            ("postgres://u@h/db?password=pw1234", "user-info"),
            (
                "postgres://u:pw1234@h/db?sslmode=disable&sslrootcert=/x",
                "contradicts",
            ),
        ] {
            let err = PostgresUrl::parse(url).unwrap_err().to_string();
            assert!(err.contains(needle), "{url}: {err}");
            assert!(!err.contains("pw1234"), "{url}: {err}");
        }
    }

    #[test]
    fn options_debug_hides_the_password() {
        let o = PostgresOptions {
            password: Some(Zeroizing::new("hunter2".into())),
            ..PostgresOptions::default()
        };
        let dbg = format!("{o:?}");
        assert!(
            !dbg.contains("hunter2") && dbg.contains("redacted"),
            "{dbg}"
        );
    }

    #[test]
    fn missing_root_cert_file_is_a_config_error() {
        let u =
            PostgresUrl::parse("postgres://u@h/db?sslmode=require&sslrootcert=/nonexistent.pem")
                .unwrap();
        let err = tls_config(&u).unwrap_err();
        assert!(matches!(err, StoreError::InvalidConfig(_)), "{err}");
        assert!(err.to_string().contains("/nonexistent.pem"), "{err}");
    }
}
