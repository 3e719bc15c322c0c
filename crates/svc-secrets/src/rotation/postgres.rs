//! The built-in `postgresql` rotator: AWS's PostgreSQL rotation templates (single user and
//! alternating users) run in-process against the database with tokio-postgres.
//!
//! The secret is the JSON AWS's templates read:
//! `{"engine": "postgres", "host", "port", "username", "password", "dbname", "masterarn"}`
//! (`port` defaults to 5432, `dbname` to `postgres`; `masterarn` only for alternating users;
//! other members are carried over to every new version untouched).
//!
//! - `createSecret`: a new 32-character password (GetRandomPassword without `:/@"'\`, the
//!   characters the templates exclude because they break connection strings) goes into
//!   AWSPENDING; alternating users also switch the username between `<user>` and `<user>_clone`.
//! - `setSecret`: single user — the user logs in with its current (or previous) password and
//!   changes its own; alternating users — the master user (the secret `masterarn` names) creates
//!   `<user>_clone` on the first rotation, as a member of `<user>` (`GRANT <user> TO
//!   <user>_clone`, so it holds the same privileges), or changes the other user's password.
//! - `testSecret`: the pending credentials log in and run a query.
//! - `finishSecret`: AWSCURRENT moves to the new version; AWSPREVIOUS follows.
//!
//! Every step is idempotent, as the protocol requires (a resumed rotation repeats its step).
//! The new password is sent as an escaped SQL literal — `ALTER ROLE` takes no bind parameters —
//! and never logged. TLS is rustls on aws-lc-rs, verifying the server's certificate and name;
//! plain connections only when the configuration says `tls = "disable"`.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, NoTls, TlsConnect, TlsStream};
use tokio_postgres::{Client, Socket};
use zeroize::{Zeroize, Zeroizing};

use super::local::{LocalSecrets, describe_error, is_not_found};
use super::{InvokeEnv, RotationEvent, Rotator, RotatorError};
use crate::record::{AWSCURRENT, AWSPENDING, AWSPREVIOUS};

/// What AWS's templates exclude from generated passwords: characters that break connection
/// strings and URLs.
pub const EXCLUDE_CHARACTERS: &str = ":/@\"'\\";
/// The templates' password length.
pub const PASSWORD_LENGTH: usize = 32;
/// The suffix of the second user of the alternating-users strategy.
pub const CLONE_SUFFIX: &str = "_clone";
/// PostgreSQL truncates longer identifiers (NAMEDATALEN - 1), which could name another role.
const MAX_IDENTIFIER_BYTES: usize = 63;
const DEFAULT_PORT: u16 = 5432;
const DEFAULT_DBNAME: &str = "postgres";
/// Where the system's CA bundle usually is, when no `ca_file` is configured.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// How the credentials rotate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// The user changes its own password: one user, a short window where clients holding the
    /// old password fail.
    SingleUser,
    /// Two users take turns; the master user changes the one not in use, so the previous
    /// credentials keep working until the next rotation.
    AlternatingUsers,
}

impl Strategy {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "single-user" => Ok(Strategy::SingleUser),
            "alternating-users" => Ok(Strategy::AlternatingUsers),
            other => Err(format!(
                "unknown strategy {other:?} (expected single-user or alternating-users)"
            )),
        }
    }
}

/// The user the next version of an alternating-users secret names: `<user>_clone` after
/// `<user>`, and back.
pub fn alternate_username(current: &str) -> Result<String, String> {
    let next = match current.strip_suffix(CLONE_SUFFIX) {
        Some(base) if !base.is_empty() => base.to_owned(),
        _ => format!("{current}{CLONE_SUFFIX}"),
    };
    if next.len() > MAX_IDENTIFIER_BYTES {
        return Err(format!(
            "the username {next:?} would be longer than PostgreSQL's {MAX_IDENTIFIER_BYTES} bytes"
        ));
    }
    Ok(next)
}

/// `"name"` with embedded quotes doubled: safe for any role name. Names PostgreSQL would
/// truncate or cannot hold are refused.
pub fn quote_identifier(name: &str) -> Result<String, String> {
    if name.is_empty() {
        return Err("the username is empty".to_owned());
    }
    if name.contains('\0') {
        return Err("the username contains a NUL character".to_owned());
    }
    if name.len() > MAX_IDENTIFIER_BYTES {
        return Err(format!(
            "the username is longer than PostgreSQL's {MAX_IDENTIFIER_BYTES} bytes"
        ));
    }
    Ok(format!("\"{}\"", name.replace('"', "\"\"")))
}

/// A string literal for `value`, correct whatever `standard_conforming_strings` is (libpq's
/// `PQescapeLiteral` rule): quotes doubled, and with backslashes the `E'…'` form with them
/// doubled too. The result holds the value: it is zeroized on drop.
pub fn quote_literal(value: &str) -> Result<Zeroizing<String>, String> {
    if value.contains('\0') {
        return Err("the password contains a NUL character".to_owned());
    }
    let mut out = Zeroizing::new(String::with_capacity(value.len() + 4));
    if value.contains('\\') {
        out.push('E');
    }
    out.push('\'');
    for c in value.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    Ok(out)
}

/// A database secret's JSON. Debug shows where it points, never the password.
pub struct DbSecret {
    /// Every member, for writing the next version (unknown members are kept).
    fields: Map<String, Value>,
    pub host: String,
    pub port: u16,
    pub username: String,
    pub dbname: String,
    pub masterarn: Option<String>,
    password: Zeroizing<String>,
}

impl std::fmt::Debug for DbSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbSecret")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("dbname", &self.dbname)
            .field("masterarn", &self.masterarn)
            .finish_non_exhaustive()
    }
}

impl Drop for DbSecret {
    fn drop(&mut self) {
        if let Some(Value::String(p)) = self.fields.get_mut("password") {
            p.zeroize();
        }
    }
}

fn string_member(fields: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("the secret's {key:?} is not a string")),
    }
}

impl DbSecret {
    /// Parses and checks a secret's SecretString. Errors name the member at fault, never a
    /// value (serde's messages can quote input, so they are not passed on).
    pub fn parse(text: &str) -> Result<DbSecret, String> {
        let fields: Map<String, Value> = match serde_json::from_str(text) {
            Ok(Value::Object(m)) => m,
            _ => return Err("the secret is not a JSON object".to_owned()),
        };
        if let Some(engine) = string_member(&fields, "engine")?
            && engine != "postgres"
            && engine != "aurora-postgresql"
        {
            return Err(format!(
                "the secret's engine is {engine:?}; the postgresql rotator needs \"postgres\""
            ));
        }
        let required = |key: &str| {
            string_member(&fields, key)?
                .filter(|s| !s.is_empty())
                .ok_or_else(|| format!("the secret has no {key:?}"))
        };
        let host = required("host")?;
        let username = required("username")?;
        let password = Zeroizing::new(required("password")?);
        let port = match fields.get("port") {
            None | Some(Value::Null) => DEFAULT_PORT,
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .ok_or("the secret's \"port\" is not a port number")?,
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map_err(|_| "the secret's \"port\" is not a port number".to_owned())?,
            Some(_) => return Err("the secret's \"port\" is not a port number".to_owned()),
        };
        let dbname = string_member(&fields, "dbname")?
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_DBNAME.to_owned());
        let masterarn = string_member(&fields, "masterarn")?.filter(|s| !s.is_empty());
        Ok(DbSecret {
            fields,
            host,
            port,
            username,
            dbname,
            masterarn,
            password,
        })
    }

    /// The next version's JSON: the same members with a new password (and username).
    pub fn next_version(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Zeroizing<String>, String> {
        let mut fields = self.fields.clone();
        fields.insert("username".to_owned(), Value::String(username.to_owned()));
        fields.insert("password".to_owned(), Value::String(password.to_owned()));
        let text = serde_json::to_string(&fields)
            .map(Zeroizing::new)
            .map_err(|_| "writing the new secret value failed".to_owned());
        if let Some(Value::String(p)) = fields.get_mut("password") {
            p.zeroize();
        }
        text
    }

    fn same_server(&self, other: &DbSecret) -> bool {
        self.host == other.host && self.port == other.port
    }
}

/// The `postgresql` rotator.
#[derive(Debug)]
pub struct PostgresRotator {
    pub strategy: Strategy,
    /// None: plain connections (configured `tls = "disable"`).
    tls: Option<Arc<rustls::ClientConfig>>,
    connect_timeout: Duration,
    /// Bound on one whole step.
    step_timeout: Duration,
}

fn load_roots(ca_file: Option<&Path>) -> Result<rustls::RootCertStore, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let candidates: Vec<&Path> = match ca_file {
        Some(p) => vec![p],
        None => SYSTEM_BUNDLES.iter().map(Path::new).collect(),
    };
    let mut roots = rustls::RootCertStore::empty();
    for candidate in candidates {
        let Ok(iter) = CertificateDer::pem_file_iter(candidate) else {
            continue;
        };
        for cert in iter.flatten() {
            // Certificates rustls cannot parse are skipped, as in every bundle reader.
            let _ = roots.add(cert);
        }
        if !roots.is_empty() {
            return Ok(roots);
        }
    }
    Err(match ca_file {
        Some(p) => format!("no CA certificates could be read from {}", p.display()),
        None => "no system CA bundle found; set ca_file (or tls = \"disable\")".to_owned(),
    })
}

impl PostgresRotator {
    /// From the configuration: `strategy`, `tls` (`verify-full`, the default, or `disable`),
    /// `ca_file` (default: the system bundle).
    pub fn new(
        strategy: &str,
        tls: Option<&str>,
        ca_file: Option<&Path>,
        connect_timeout: Duration,
        step_timeout: Duration,
    ) -> Result<Self, String> {
        let strategy = Strategy::parse(strategy)?;
        let tls = match tls.unwrap_or("verify-full") {
            "verify-full" => {
                let roots = load_roots(ca_file)?;
                let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
                let config = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| e.to_string())?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                Some(Arc::new(config))
            }
            "disable" => {
                if ca_file.is_some() {
                    return Err("ca_file is set but tls = \"disable\"".to_owned());
                }
                None
            }
            other => {
                return Err(format!(
                    "unknown tls mode {other:?} (expected verify-full or disable)"
                ));
            }
        };
        Ok(PostgresRotator {
            strategy,
            tls,
            connect_timeout,
            step_timeout,
        })
    }

    /// Logs in as the secret's user.
    async fn connect(&self, s: &DbSecret) -> Result<Client, String> {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&s.host)
            .port(s.port)
            .user(&s.username)
            .password(s.password.as_bytes())
            .dbname(&s.dbname)
            .application_name("citadel-rotator")
            .connect_timeout(self.connect_timeout);
        let failed = |e: tokio_postgres::Error| {
            // The driver's messages name the server and user, never the password.
            format!(
                "logging in to {}:{} as {:?} failed: {e}",
                s.host, s.port, s.username
            )
        };
        match &self.tls {
            Some(tls) => {
                config.ssl_mode(SslMode::Require);
                let (client, connection) = config
                    .connect(MakeRustls(Arc::clone(tls)))
                    .await
                    .map_err(failed)?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                Ok(client)
            }
            None => {
                config.ssl_mode(SslMode::Disable);
                let (client, connection) = config.connect(NoTls).await.map_err(failed)?;
                tokio::spawn(async move {
                    let _ = connection.await;
                });
                Ok(client)
            }
        }
    }

    async fn secret(
        api: &LocalSecrets,
        secret_id: &str,
        version_id: Option<&str>,
        stage: &str,
    ) -> Result<DbSecret, String> {
        let text = api
            .get_string(secret_id, version_id, Some(stage))
            .await
            .map_err(|e| format!("reading the {stage} value failed: {}", describe_error(&e)))?;
        DbSecret::parse(&text).map_err(|e| format!("{stage}: {e}"))
    }

    async fn create_secret(&self, api: &LocalSecrets, ev: &RotationEvent) -> Result<(), String> {
        let id = ev.secret_id.as_str();
        let token = ev.client_request_token.as_str();
        let current = Self::secret(api, id, None, AWSCURRENT).await?;
        match api.get_string(id, Some(token), Some(AWSPENDING)).await {
            // Already created (the step is being repeated).
            Ok(_) => return Ok(()),
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                return Err(format!(
                    "reading the AWSPENDING value failed: {}",
                    describe_error(&e)
                ));
            }
        }
        let username = match self.strategy {
            Strategy::SingleUser => current.username.clone(),
            Strategy::AlternatingUsers => {
                if current.masterarn.is_none() {
                    return Err("AWSCURRENT: the secret has no \"masterarn\" (the alternating-users strategy needs the master user's secret)".to_owned());
                }
                alternate_username(&current.username)?
            }
        };
        quote_identifier(&username)?;
        let password = api
            .random_password(PASSWORD_LENGTH, EXCLUDE_CHARACTERS)
            .map_err(|e| format!("generating a password failed: {}", describe_error(&e)))?;
        let value = current.next_version(&username, &password)?;
        api.put_pending(id, token, value).await.map_err(|e| {
            format!(
                "writing the AWSPENDING value failed: {}",
                describe_error(&e)
            )
        })
    }

    async fn set_secret(&self, api: &LocalSecrets, ev: &RotationEvent) -> Result<(), String> {
        let id = ev.secret_id.as_str();
        let token = ev.client_request_token.as_str();
        let pending = Self::secret(api, id, Some(token), AWSPENDING).await?;
        // Already set (the step is being repeated).
        if self.connect(&pending).await.is_ok() {
            return Ok(());
        }
        let current = Self::secret(api, id, None, AWSCURRENT).await?;
        let role = quote_identifier(&pending.username)?;
        let password = quote_literal(&pending.password)?;
        match self.strategy {
            Strategy::SingleUser => {
                if pending.username != current.username {
                    return Err(format!(
                        "the AWSPENDING username {:?} differs from the AWSCURRENT username {:?}",
                        pending.username, current.username
                    ));
                }
                if !pending.same_server(&current) {
                    return Err(format!(
                        "the AWSPENDING host {}:{} differs from the AWSCURRENT host {}:{}",
                        pending.host, pending.port, current.host, current.port
                    ));
                }
                let client = match self.connect(&current).await {
                    Ok(c) => c,
                    Err(current_err) => {
                        // The password may have changed already, the labels not yet.
                        let previous = match Self::secret(api, id, None, AWSPREVIOUS).await {
                            Ok(p) if p.username == pending.username => Some(p),
                            _ => None,
                        };
                        let mut client = None;
                        if let Some(p) = previous {
                            client = self.connect(&p).await.ok();
                        }
                        client.ok_or_else(|| {
                            format!("could not log in with the pending, current or previous credentials ({current_err})")
                        })?
                    }
                };
                let sql = Zeroizing::new(format!(
                    "ALTER ROLE {role} WITH PASSWORD {}",
                    password.as_str()
                ));
                client
                    .batch_execute(&sql)
                    .await
                    .map_err(|e| format!("changing the password of {role} failed: {e}"))
            }
            Strategy::AlternatingUsers => {
                let masterarn = current.masterarn.as_deref().ok_or(
                    "AWSCURRENT: the secret has no \"masterarn\" (the alternating-users strategy needs the master user's secret)",
                )?;
                let master = Self::secret(api, masterarn, None, AWSCURRENT)
                    .await
                    .map_err(|e| format!("master secret: {e}"))?;
                if !master.same_server(&pending) {
                    return Err(format!(
                        "the AWSPENDING host {}:{} differs from the master secret's host {}:{}",
                        pending.host, pending.port, master.host, master.port
                    ));
                }
                let client = self
                    .connect(&master)
                    .await
                    .map_err(|e| format!("master secret: {e}"))?;
                let exists = client
                    .query_opt(
                        "SELECT 1 FROM pg_roles WHERE rolname = $1",
                        &[&pending.username],
                    )
                    .await
                    .map_err(|e| format!("looking up role {role} failed: {e}"))?
                    .is_some();
                let sql = if exists {
                    Zeroizing::new(format!(
                        "ALTER ROLE {role} WITH PASSWORD {}",
                        password.as_str()
                    ))
                } else {
                    // The new user gets the current user's privileges through membership, as
                    // AWS's template grants them. One simple query: one transaction.
                    let template = quote_identifier(&current.username)?;
                    Zeroizing::new(format!(
                        "CREATE ROLE {role} WITH LOGIN PASSWORD {}; GRANT {template} TO {role}",
                        password.as_str()
                    ))
                };
                client.batch_execute(&sql).await.map_err(|e| {
                    if exists {
                        format!("changing the password of {role} as the master user failed: {e}")
                    } else {
                        format!("creating {role} as the master user failed: {e}")
                    }
                })
            }
        }
    }

    async fn test_secret(&self, api: &LocalSecrets, ev: &RotationEvent) -> Result<(), String> {
        let pending = Self::secret(
            api,
            &ev.secret_id,
            Some(&ev.client_request_token),
            AWSPENDING,
        )
        .await?;
        let client = self.connect(&pending).await?;
        client
            .simple_query("SELECT now()")
            .await
            .map(|_| ())
            .map_err(|e| format!("querying with the pending credentials failed: {e}"))
    }

    async fn finish_secret(&self, api: &LocalSecrets, ev: &RotationEvent) -> Result<(), String> {
        api.promote(&ev.secret_id, &ev.client_request_token)
            .await
            .map_err(|e| format!("moving AWSCURRENT failed: {}", describe_error(&e)))
    }
}

#[async_trait::async_trait]
impl Rotator for PostgresRotator {
    async fn invoke(&self, event: &RotationEvent, env: &InvokeEnv) -> Result<(), RotatorError> {
        let Some(api) = env.local.as_ref() else {
            return Err(RotatorError::new(
                "the postgresql rotator runs only inside the server",
            ));
        };
        let step = async {
            match event.step.as_str() {
                "createSecret" => self.create_secret(api, event).await,
                "setSecret" => self.set_secret(api, event).await,
                "testSecret" => self.test_secret(api, event).await,
                "finishSecret" => self.finish_secret(api, event).await,
                other => Err(format!("unknown rotation step {other:?}")),
            }
        };
        match tokio::time::timeout(self.step_timeout, step).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(why)) => Err(RotatorError::new(format!("{}: {why}", event.step))),
            Err(_) => Err(RotatorError::new(format!(
                "{}: timed out after {} seconds",
                event.step,
                self.step_timeout.as_secs()
            ))),
        }
    }
}

/// tokio-postgres's TLS hook over tokio-rustls.
#[derive(Clone)]
struct MakeRustls(Arc<rustls::ClientConfig>);

impl MakeTlsConnect<Socket> for MakeRustls {
    type Stream = RustlsStream;
    type TlsConnect = RustlsConnect;
    type Error = rustls_pki_types::InvalidDnsNameError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, Self::Error> {
        let name = rustls_pki_types::ServerName::try_from(domain.to_owned())?;
        Ok(RustlsConnect {
            config: Arc::clone(&self.0),
            name,
        })
    }
}

struct RustlsConnect {
    config: Arc<rustls::ClientConfig>,
    name: rustls_pki_types::ServerName<'static>,
}

type ConnectFuture = Pin<Box<dyn Future<Output = io::Result<RustlsStream>> + Send>>;

impl TlsConnect<Socket> for RustlsConnect {
    type Stream = RustlsStream;
    type Error = io::Error;
    type Future = ConnectFuture;

    fn connect(self, stream: Socket) -> ConnectFuture {
        Box::pin(async move {
            let tls = tokio_rustls::TlsConnector::from(self.config)
                .connect(self.name, stream)
                .await?;
            Ok(RustlsStream(tls))
        })
    }
}

struct RustlsStream(tokio_rustls::client::TlsStream<Socket>);

impl TlsStream for RustlsStream {
    /// No channel binding: SCRAM runs without it (libpq's `channel_binding=prefer` does the
    /// same when the server does not offer it); the certificate check already binds the server.
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl AsyncRead for RustlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for RustlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_identifier("app").unwrap(), "\"app\"");
        assert_eq!(quote_identifier("We\"ird").unwrap(), "\"We\"\"ird\"");
        assert_eq!(
            quote_identifier("a; DROP ROLE x").unwrap(),
            "\"a; DROP ROLE x\""
        );
        assert!(quote_identifier("").is_err());
        assert!(quote_identifier("a\0b").is_err());
        assert!(quote_identifier(&"x".repeat(64)).is_err());
        assert!(quote_identifier(&"x".repeat(63)).is_ok());
    }

    #[test]
    fn literals_are_escaped_for_either_string_mode() {
        assert_eq!(quote_literal("abc").unwrap().as_str(), "'abc'");
        assert_eq!(quote_literal("it's").unwrap().as_str(), "'it''s'");
        assert_eq!(quote_literal("a\\b'c").unwrap().as_str(), "E'a\\\\b''c'");
        assert_eq!(quote_literal("").unwrap().as_str(), "''");
        assert!(quote_literal("a\0").is_err());
    }

    #[test]
    fn strategies_parse() {
        assert_eq!(
            Strategy::parse("single-user").unwrap(),
            Strategy::SingleUser
        );
        assert_eq!(
            Strategy::parse("alternating-users").unwrap(),
            Strategy::AlternatingUsers
        );
        assert!(Strategy::parse("multi-user").is_err());
    }

    #[test]
    fn alternating_usernames_take_turns() {
        assert_eq!(alternate_username("app").unwrap(), "app_clone");
        assert_eq!(alternate_username("app_clone").unwrap(), "app");
        // A bare suffix is a name of its own, not an empty base.
        assert_eq!(alternate_username("_clone").unwrap(), "_clone_clone");
        assert!(alternate_username(&"u".repeat(60)).is_err());
    }

    #[test]
    fn secrets_parse_with_aws_defaults() {
        let s = DbSecret::parse(
            r#"{"engine":"postgres","host":"db","username":"app","password":"pw","extra":1}"#,
        )
        .unwrap();
        assert_eq!((s.host.as_str(), s.port), ("db", 5432));
        assert_eq!(s.dbname, "postgres");
        assert_eq!(s.masterarn, None);
        let s = DbSecret::parse(
            r#"{"host":"db","port":"6543","username":"app","password":"pw","dbname":"d","masterarn":"arn:m"}"#,
        )
        .unwrap();
        assert_eq!(s.port, 6543);
        assert_eq!(s.dbname, "d");
        assert_eq!(s.masterarn.as_deref(), Some("arn:m"));
        let s =
            DbSecret::parse(r#"{"host":"db","port":5433,"username":"u","password":"p"}"#).unwrap();
        assert_eq!(s.port, 5433);
    }

    #[test]
    fn bad_secrets_are_refused_without_quoting_values() {
        for (text, needle) in [
            ("not json", "not a JSON object"),
            ("[1]", "not a JSON object"),
            (
                r#"{"engine":"mysql","host":"h","username":"u","password":"p"}"#,
                "engine",
            ),
            (r#"{"username":"u","password":"p"}"#, "\"host\""),
            (r#"{"host":"h","password":"p"}"#, "\"username\""),
            (r#"{"host":"h","username":"u"}"#, "\"password\""),
            (
                r#"{"host":"h","username":"u","password":""}"#,
                "\"password\"",
            ),
            (
                r#"{"host":"h","username":"u","password":"p","port":"secretish"}"#,
                "port",
            ),
            (
                r#"{"host":"h","username":"u","password":"p","port":70000}"#,
                "port",
            ),
        ] {
            let err = DbSecret::parse(text).unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
            assert!(!err.contains("secretish"));
        }
        let debug = format!(
            "{:?}",
            DbSecret::parse(r#"{"host":"h","username":"u","password":"hunter2"}"#).unwrap()
        );
        assert!(!debug.contains("hunter2"), "{debug}");
    }

    #[test]
    fn next_version_keeps_other_members() {
        let s = DbSecret::parse(
            r#"{"engine":"postgres","host":"db","port":5432,"username":"app","password":"old","masterarn":"m","note":"x"}"#,
        )
        .unwrap();
        let next = s.next_version("app_clone", "new").unwrap();
        let v: Value = serde_json::from_str(&next).unwrap();
        assert_eq!(v["username"], "app_clone");
        assert_eq!(v["password"], "new");
        assert_eq!(v["masterarn"], "m");
        assert_eq!(v["note"], "x");
        assert_eq!(v["port"], 5432);
    }

    #[test]
    fn config_checks_modes() {
        let t = Duration::from_secs(5);
        assert!(PostgresRotator::new("single-user", Some("disable"), None, t, t).is_ok());
        assert!(PostgresRotator::new("single-user", Some("prefer"), None, t, t).is_err());
        assert!(PostgresRotator::new("bogus", Some("disable"), None, t, t).is_err());
        assert!(
            PostgresRotator::new(
                "single-user",
                Some("verify-full"),
                Some(Path::new("/nonexistent/ca.pem")),
                t,
                t
            )
            .is_err()
        );
    }
}
