//! The one resolved server configuration.
//!
//! Sources, highest precedence first:
//! 1. command-line flags (`citadel serve --…`),
//! 2. environment variables `CITADEL_*`,
//! 3. the TOML file named by `--config` or `CITADEL_CONFIG` (keys are the snake_case field
//!    names below; an unknown key is an error so a typo never silently falls back to a default),
//! 4. built-in defaults.
//!
//! Each field is resolved independently. Empty environment variables count as unset, because
//! container tooling often sets `FOO=` to mean "nothing".
//!
//! Secrets (`root_secret_access_key`, and for convenience `root_access_key_id`) may be given as a
//! value or as a `*_FILE` path (env `CITADEL_ROOT_SECRET_ACCESS_KEY_FILE`, TOML
//! `root_secret_access_key_file`) whose content, minus one trailing newline, is the value — the
//! form Docker/Kubernetes secrets mount. Giving both forms in the same source is an error; across
//! sources the usual precedence applies. There are no flags for secrets: command lines are
//! world-readable through `/proc`.
//!
//! The database URL (`--database-url`, `CITADEL_DATABASE_URL[_FILE]`, TOML
//! `database_url[_file]`) may carry a password, so it is held as a secret; the flag form is
//! accepted only without one. The password may also come on its own from
//! `CITADEL_DATABASE_PASSWORD[_FILE]` or TOML `database_password[_file]`, overriding the URL's.
//!
//! Relative paths (flags, env or file) are relative to the working directory.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, anyhow, bail};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::cli::ServeArgs;

/// Default listen address, in dev and production alike: loopback, so a fresh install is not
/// reachable from the network until the operator says so. 4566 is the port AWS emulators use,
/// so existing `--endpoint-url` settings keep working.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 4566);
pub const DEFAULT_DATA_DIR: &str = "./citadel-data";
pub const DEFAULT_ACCOUNT: &str = "000000000000";
pub const DEFAULT_LOG_LEVEL: &str = "info";
/// AWS's JSON and query front ends reject request bodies above roughly 1 MB (e.g. KMS plaintexts
/// are at most 4 KiB, Secrets Manager values 64 KiB, SSM parameters 8 KiB), so nothing a real
/// client sends needs more, and a small cap bounds the memory one request can pin.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// Root key provider for the barrier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SealType {
    /// The root key lives in a 0600 file: unattended start, suited to development.
    File,
    /// The root key is split into key shares; a threshold of them unseals the server.
    Shamir,
}

impl FromStr for SealType {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "file" => Ok(Self::File),
            "shamir" => Ok(Self::Shamir),
            _ => bail!("unknown seal type {s:?} (expected file or shamir)"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl FromStr for LogFormat {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => bail!("unknown log format {s:?} (expected text or json)"),
        }
    }
}

/// How the listener speaks.
///
/// The rule, kept deliberately simple:
/// - `tls_cert` + `tls_key` given (both or neither) → [`TlsMode::Files`], in either mode.
/// - otherwise `--dev` → [`TlsMode::Disabled`] (plain HTTP; dev tools expect `http://…:4566`).
/// - otherwise (production) → [`TlsMode::InternalCa`], unless `insecure_http` is set, which is
///   the only way production serves plain HTTP (e.g. behind a TLS-terminating proxy).
///   `insecure_http` together with a certificate is a contradiction and an error.
///
/// So production never falls back to plain HTTP silently; [`Config::warnings`] flags plain HTTP
/// on a non-loopback address so the operator sees it in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsMode {
    Disabled,
    Files {
        cert: PathBuf,
        key: PathBuf,
    },
    /// Server certificate issued by Citadel's own CA under `<data_dir>/tls`.
    InternalCa,
}

/// The resolved configuration. `Debug` masks the secret.
#[derive(Clone)]
pub struct Config {
    /// The TOML file that was read, if any.
    pub config_file: Option<PathBuf>,
    pub dev: bool,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// PostgreSQL URL (validated; may hold a password); `None` = SQLite in `data_dir`.
    pub database_url: Option<SecretString>,
    /// Password for `database_url`, overriding the URL's.
    pub database_password: Option<SecretString>,
    /// Connections in the PostgreSQL pool.
    pub database_pool_size: usize,
    /// 12 digits.
    pub default_account: String,
    pub seal: SealType,
    pub root_key_file: PathBuf,
    pub tls: TlsMode,
    /// Extra SANs (DNS names or IPs) for the internal-CA server certificate.
    pub tls_hostnames: Vec<String>,
    pub log_format: LogFormat,
    /// tracing `EnvFilter` directive.
    pub log_level: String,
    pub max_body_bytes: usize,
    pub root_access_key_id: Option<String>,
    pub root_secret_access_key: Option<SecretString>,
    /// `[secrets]`: Secrets Manager's rotators (TOML file only).
    pub secrets: citadel_svc_secrets::SecretsConfig,
    /// `[ssm]`: Parameter Store's quotas and public parameters file (TOML file only).
    pub ssm: citadel_svc_ssm::SsmConfig,
    /// Serve calls whose audit record cannot be written (default: fail closed).
    pub audit_fail_open: bool,
    /// Days LookupEvents keeps records.
    pub audit_retention_days: u32,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("config_file", &self.config_file)
            .field("dev", &self.dev)
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field(
                "database_url",
                &self
                    .database_url
                    .as_ref()
                    .map(|u| redacted_url(u.expose_secret())),
            )
            .field(
                "database_password",
                &self.database_password.as_ref().map(|_| "<redacted>"),
            )
            .field("database_pool_size", &self.database_pool_size)
            .field("default_account", &self.default_account)
            .field("seal", &self.seal)
            .field("root_key_file", &self.root_key_file)
            .field("tls", &self.tls)
            .field("tls_hostnames", &self.tls_hostnames)
            .field("log_format", &self.log_format)
            .field("log_level", &self.log_level)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("audit_fail_open", &self.audit_fail_open)
            .field("audit_retention_days", &self.audit_retention_days)
            .field("ssm", &self.ssm)
            .field("root_access_key_id", &self.root_access_key_id)
            .field(
                "root_secret_access_key",
                &self.root_secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Config {
    /// Things the operator should see at startup (logged by main once logging is up; config is
    /// resolved before the subscriber exists, so it cannot log itself).
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let exposed = !self.listen.ip().is_loopback();
        if self.tls == TlsMode::Disabled && exposed {
            if self.dev {
                out.push(format!(
                    "dev mode accepts any credentials and serves plain HTTP on non-loopback \
                     address {}: anyone who can reach it can use it",
                    self.listen
                ));
            } else {
                out.push(format!(
                    "--insecure-http: serving plain HTTP on non-loopback address {}; \
                     credentials and secrets cross the network unencrypted unless a proxy \
                     terminates TLS in front",
                    self.listen
                ));
            }
        }
        if self.tls == TlsMode::InternalCa
            && self.listen.ip().is_unspecified()
            && self.tls_hostnames.is_empty()
        {
            out.push(format!(
                "listening on {} with an internal-CA certificate valid only for localhost, \
                 127.0.0.1 and ::1: add --tls-hostname for the names remote clients use",
                self.listen
            ));
        }
        out
    }
}

/// PostgreSQL pool size when none is configured: enough for a busy node (requests hold a
/// connection only for one statement or batch), small enough that several nodes fit under
/// PostgreSQL's default `max_connections` of 100.
pub const DEFAULT_DATABASE_POOL_SIZE: usize = 16;
/// Bound on the pool size: more connections than this per node only add contention.
pub const MAX_DATABASE_POOL_SIZE: usize = 1000;

/// The TOML file. Field names are the TOML keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    dev: Option<bool>,
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    database_url_file: Option<PathBuf>,
    database_password: Option<String>,
    database_password_file: Option<PathBuf>,
    database_pool_size: Option<usize>,
    default_account: Option<String>,
    seal: Option<SealType>,
    root_key_file: Option<PathBuf>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_hostnames: Option<Vec<String>>,
    insecure_http: Option<bool>,
    log_format: Option<LogFormat>,
    log_level: Option<String>,
    max_body_bytes: Option<usize>,
    root_access_key_id: Option<String>,
    root_access_key_id_file: Option<PathBuf>,
    root_secret_access_key: Option<String>,
    root_secret_access_key_file: Option<PathBuf>,
    secrets: Option<citadel_svc_secrets::SecretsConfig>,
    ssm: Option<citadel_svc_ssm::SsmConfig>,
    audit_fail_open: Option<bool>,
    audit_retention_days: Option<u32>,
}

/// Builds the configuration from flags, the environment (`env` is injected so tests need not
/// touch the process environment; main passes `|k| std::env::var(k).ok()`), and the file.
pub fn resolve(flags: &ServeArgs, env: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Config> {
    let env = |name: &str| env(name).filter(|v| !v.is_empty());

    let config_file = flags
        .config
        .clone()
        .or_else(|| env("CITADEL_CONFIG").map(PathBuf::from));
    let file = match &config_file {
        Some(path) => read_file_config(path)?,
        None => FileConfig::default(),
    };

    let dev = if flags.dev {
        true
    } else if let Some(v) = env("CITADEL_DEV") {
        parse_bool("CITADEL_DEV", &v)?
    } else {
        file.dev.unwrap_or(false)
    };

    let listen = match flags.listen {
        Some(v) => v,
        None => match env("CITADEL_LISTEN") {
            Some(v) => parse_env("CITADEL_LISTEN", &v)?,
            None => file.listen.unwrap_or(DEFAULT_LISTEN),
        },
    };

    let data_dir = flags
        .data_dir
        .clone()
        .or_else(|| env("CITADEL_DATA_DIR").map(PathBuf::from))
        .or(file.data_dir)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));

    let database_url = match &flags.database_url {
        Some(url) => {
            let parsed = citadel_store::PostgresUrl::parse(url)
                .map_err(|e| anyhow!("--database-url: {e}"))?;
            if parsed.has_password() {
                bail!(
                    "--database-url must not contain a password: command lines are visible to \
                     every local user. Give the password in CITADEL_DATABASE_PASSWORD or \
                     CITADEL_DATABASE_PASSWORD_FILE, or the whole URL in CITADEL_DATABASE_URL or \
                     CITADEL_DATABASE_URL_FILE"
                );
            }
            Some(url.clone())
        }
        None => match secret_from_env(&env, "CITADEL_DATABASE_URL")? {
            Some(url) => Some(url),
            None => secret_from_file_layer(
                "database_url",
                file.database_url,
                file.database_url_file.as_deref(),
            )?,
        },
    };
    if let Some(url) = &database_url {
        citadel_store::PostgresUrl::parse(url).map_err(|e| anyhow!("database_url: {e}"))?;
    }
    let database_password = match secret_from_env(&env, "CITADEL_DATABASE_PASSWORD")? {
        Some(v) => Some(v),
        None => secret_from_file_layer(
            "database_password",
            file.database_password,
            file.database_password_file.as_deref(),
        )?,
    };
    if database_password.is_some() && database_url.is_none() {
        bail!("a database password is set but no database URL: set --database-url too");
    }
    let pool_size_given = match flags.database_pool_size {
        Some(v) => Some(v),
        None => match env("CITADEL_DATABASE_POOL_SIZE") {
            Some(v) => Some(parse_env("CITADEL_DATABASE_POOL_SIZE", &v)?),
            None => file.database_pool_size,
        },
    };
    if pool_size_given.is_some() && database_url.is_none() {
        bail!("database_pool_size is set but no database URL: it applies to PostgreSQL only");
    }
    let database_pool_size = pool_size_given.unwrap_or(DEFAULT_DATABASE_POOL_SIZE);
    if !(1..=MAX_DATABASE_POOL_SIZE).contains(&database_pool_size) {
        bail!(
            "database_pool_size must be between 1 and {MAX_DATABASE_POOL_SIZE}, got {database_pool_size}"
        );
    }

    let default_account = flags
        .default_account
        .clone()
        .or_else(|| env("CITADEL_DEFAULT_ACCOUNT"))
        .or(file.default_account)
        .unwrap_or_else(|| DEFAULT_ACCOUNT.to_owned());
    if !is_account_id(&default_account) {
        bail!("default account {default_account:?} is not a 12-digit AWS account id");
    }

    let seal = match flags.seal {
        Some(v) => v,
        None => match env("CITADEL_SEAL") {
            Some(v) => parse_env("CITADEL_SEAL", &v)?,
            None => file.seal.unwrap_or(if dev {
                SealType::File
            } else {
                SealType::Shamir
            }),
        },
    };

    let root_key_file = flags
        .root_key_file
        .clone()
        .or_else(|| env("CITADEL_ROOT_KEY_FILE").map(PathBuf::from))
        .or(file.root_key_file)
        .unwrap_or_else(|| data_dir.join("root.key"));

    let tls_cert = flags
        .tls_cert
        .clone()
        .or_else(|| env("CITADEL_TLS_CERT").map(PathBuf::from))
        .or(file.tls_cert);
    let tls_key = flags
        .tls_key
        .clone()
        .or_else(|| env("CITADEL_TLS_KEY").map(PathBuf::from))
        .or(file.tls_key);

    let insecure_http = if flags.insecure_http {
        true
    } else if let Some(v) = env("CITADEL_INSECURE_HTTP") {
        parse_bool("CITADEL_INSECURE_HTTP", &v)?
    } else {
        file.insecure_http.unwrap_or(false)
    };

    let tls = match (tls_cert, tls_key) {
        (Some(_), Some(_)) if insecure_http => {
            bail!("insecure_http contradicts tls_cert/tls_key: choose one")
        }
        (Some(cert), Some(key)) => TlsMode::Files { cert, key },
        (Some(_), None) | (None, Some(_)) => bail!("tls_cert and tls_key must be given together"),
        (None, None) if dev || insecure_http => TlsMode::Disabled,
        (None, None) => TlsMode::InternalCa,
    };

    let tls_hostnames = if !flags.tls_hostnames.is_empty() {
        flags.tls_hostnames.clone()
    } else if let Some(v) = env("CITADEL_TLS_HOSTNAMES") {
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    } else {
        file.tls_hostnames.unwrap_or_default()
    };
    for name in &tls_hostnames {
        validate_hostname(name)?;
    }

    let log_format = match flags.log_format {
        Some(v) => v,
        None => match env("CITADEL_LOG_FORMAT") {
            Some(v) => parse_env("CITADEL_LOG_FORMAT", &v)?,
            None => file.log_format.unwrap_or_default(),
        },
    };

    let log_level = flags
        .log_level
        .clone()
        .or_else(|| env("CITADEL_LOG_LEVEL"))
        .or(file.log_level)
        .unwrap_or_else(|| DEFAULT_LOG_LEVEL.to_owned());

    let max_body_bytes = match flags.max_body_bytes {
        Some(v) => v,
        None => match env("CITADEL_MAX_BODY_BYTES") {
            Some(v) => parse_env("CITADEL_MAX_BODY_BYTES", &v)?,
            None => file.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES),
        },
    };
    if max_body_bytes == 0 {
        bail!("max_body_bytes must be greater than 0");
    }

    let root_access_key_id = match secret_from_env(&env, "CITADEL_ROOT_ACCESS_KEY_ID")? {
        Some(v) => Some(v),
        None => secret_from_file_layer(
            "root_access_key_id",
            file.root_access_key_id,
            file.root_access_key_id_file.as_deref(),
        )?,
    };
    let root_secret_access_key = match secret_from_env(&env, "CITADEL_ROOT_SECRET_ACCESS_KEY")? {
        Some(v) => Some(v),
        None => secret_from_file_layer(
            "root_secret_access_key",
            file.root_secret_access_key,
            file.root_secret_access_key_file.as_deref(),
        )?,
    };
    if root_access_key_id.is_some() != root_secret_access_key.is_some() {
        bail!("root_access_key_id and root_secret_access_key must be given together");
    }

    let audit_fail_open = if flags.audit_fail_open {
        true
    } else if let Some(v) = env("CITADEL_AUDIT_FAIL_OPEN") {
        parse_bool("CITADEL_AUDIT_FAIL_OPEN", &v)?
    } else {
        file.audit_fail_open.unwrap_or(false)
    };
    let audit_retention_days = match flags.audit_retention_days {
        Some(v) => v,
        None => match env("CITADEL_AUDIT_RETENTION_DAYS") {
            Some(v) => parse_env("CITADEL_AUDIT_RETENTION_DAYS", &v)?,
            None => file
                .audit_retention_days
                .unwrap_or(citadel_audit::DEFAULT_RETENTION_DAYS),
        },
    };
    if audit_retention_days == 0 {
        bail!("audit_retention_days must be at least 1");
    }
    let ssm = file.ssm.unwrap_or_default();
    citadel_svc_ssm::Limits::from_config(&ssm).map_err(|e| anyhow::anyhow!("[ssm] {e}"))?;

    Ok(Config {
        config_file,
        dev,
        listen,
        data_dir,
        database_url: database_url.map(SecretString::from),
        database_password: database_password.map(SecretString::from),
        database_pool_size,
        default_account,
        seal,
        root_key_file,
        tls,
        tls_hostnames,
        log_format,
        log_level,
        max_body_bytes,
        root_access_key_id,
        root_secret_access_key: root_secret_access_key.map(SecretString::from),
        secrets: file.secrets.unwrap_or_default(),
        ssm,
        audit_fail_open,
        audit_retention_days,
    })
}

/// `user@host:port/db` of a database URL, for `Debug` and logs: never the password.
fn redacted_url(url: &str) -> String {
    citadel_store::PostgresUrl::parse(url)
        .map(|u| u.describe())
        .unwrap_or_else(|_| "<invalid URL>".to_owned())
}

fn read_file_config(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    // toml's error names the offending key and line; it never echoes values of other keys.
    toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
}

/// `NAME` or `NAME_FILE` from the environment; both set is an error.
fn secret_from_env(
    env: &impl Fn(&str) -> Option<String>,
    name: &str,
) -> anyhow::Result<Option<String>> {
    let file_var = format!("{name}_FILE");
    match (env(name), env(&file_var)) {
        (Some(_), Some(_)) => bail!("both {name} and {file_var} are set: give one"),
        (Some(v), None) => Ok(Some(v)),
        (None, Some(path)) => read_secret_file(Path::new(&path), &file_var).map(Some),
        (None, None) => Ok(None),
    }
}

fn secret_from_file_layer(
    key: &str,
    value: Option<String>,
    file: Option<&Path>,
) -> anyhow::Result<Option<String>> {
    match (value, file) {
        (Some(_), Some(_)) => bail!("config file sets both {key} and {key}_file: give one"),
        (Some(v), None) => Ok(Some(v)),
        (None, Some(path)) => read_secret_file(path, &format!("{key}_file")).map(Some),
        (None, None) => Ok(None),
    }
}

/// Reads a secret from a file, trimming one trailing newline (`echo … > file` adds one). The
/// error names the setting and path, never the content.
fn read_secret_file(path: &Path, setting: &str) -> anyhow::Result<String> {
    let mut s = std::fs::read_to_string(path)
        .with_context(|| format!("{setting}: reading {}", path.display()))?;
    if s.ends_with('\n') {
        s.pop();
        if s.ends_with('\r') {
            s.pop();
        }
    }
    if s.is_empty() {
        bail!("{setting}: {} is empty", path.display());
    }
    Ok(s)
}

fn parse_bool(name: &str, v: &str) -> anyhow::Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => bail!("{name}={v:?} is not a boolean (use true or false)"),
    }
}

fn parse_env<T>(name: &str, v: &str) -> anyhow::Result<T>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    v.parse::<T>()
        .map_err(|e| anyhow!("{name}={v:?} is invalid: {e}"))
}

pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// A SAN must be an IP or a plausible DNS name (a leading `*.` wildcard allowed); catching it
/// here gives a clear startup error instead of an opaque certificate-generation failure.
fn validate_hostname(name: &str) -> anyhow::Result<()> {
    if name.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let host = name.strip_prefix("*.").unwrap_or(name);
    let ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !ok {
        bail!("tls hostname {name:?} is neither an IP address nor a valid DNS name");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn no_env() -> impl Fn(&str) -> Option<String> + use<> {
        env_of(&[])
    }

    fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    #[test]
    fn defaults_production() {
        let c = resolve(&ServeArgs::default(), &no_env()).unwrap();
        assert!(!c.dev);
        assert_eq!(c.listen, DEFAULT_LISTEN);
        assert_eq!(c.data_dir, PathBuf::from("./citadel-data"));
        assert_eq!(c.default_account, "000000000000");
        assert_eq!(c.seal, SealType::Shamir);
        assert_eq!(c.root_key_file, PathBuf::from("./citadel-data/root.key"));
        assert_eq!(c.tls, TlsMode::InternalCa);
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.log_level, "info");
        assert_eq!(c.max_body_bytes, 1024 * 1024);
        assert!(c.root_access_key_id.is_none() && c.root_secret_access_key.is_none());
        assert!(c.warnings().is_empty());
    }

    #[test]
    fn defaults_dev() {
        let flags = ServeArgs {
            dev: true,
            ..Default::default()
        };
        let c = resolve(&flags, &no_env()).unwrap();
        assert_eq!(c.seal, SealType::File);
        assert_eq!(c.tls, TlsMode::Disabled);
        assert_eq!(c.listen, DEFAULT_LISTEN);
    }

    #[test]
    fn precedence_flags_over_env_over_file() {
        let dir = tempfile::tempdir().unwrap();
        let toml = write(
            dir.path(),
            "c.toml",
            r#"
listen = "127.0.0.1:1000"
data_dir = "/from-file"
default_account = "111111111111"
log_level = "warn"
log_format = "json"
max_body_bytes = 10
seal = "file"
tls_hostnames = ["file.example"]
"#,
        );
        let env = env_of(&[
            ("CITADEL_CONFIG", toml.to_str().unwrap()),
            ("CITADEL_LISTEN", "127.0.0.1:2000"),
            ("CITADEL_DATA_DIR", "/from-env"),
            ("CITADEL_LOG_LEVEL", "debug"),
            ("CITADEL_TLS_HOSTNAMES", "env.example, 10.1.2.3"),
        ]);
        let flags = ServeArgs {
            listen: Some("127.0.0.1:3000".parse().unwrap()),
            ..Default::default()
        };
        let c = resolve(&flags, &env).unwrap();
        assert_eq!(c.config_file.as_deref(), Some(toml.as_path()));
        assert_eq!(c.listen.port(), 3000); // flag
        assert_eq!(c.data_dir, PathBuf::from("/from-env")); // env over file
        assert_eq!(c.root_key_file, PathBuf::from("/from-env/root.key")); // follows data_dir
        assert_eq!(c.log_level, "debug"); // env
        assert_eq!(c.default_account, "111111111111"); // file
        assert_eq!(c.log_format, LogFormat::Json); // file
        assert_eq!(c.max_body_bytes, 10); // file
        assert_eq!(c.seal, SealType::File); // file beats the production default
        assert_eq!(c.tls_hostnames, vec!["env.example", "10.1.2.3"]);

        // Without the flag, env wins over file.
        let c = resolve(&ServeArgs::default(), &env).unwrap();
        assert_eq!(c.listen.port(), 2000);
    }

    #[test]
    fn config_flag_beats_config_env() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "a.toml", "log_level = \"a\"\n");
        let b = write(dir.path(), "b.toml", "log_level = \"b\"\n");
        let env = env_of(&[("CITADEL_CONFIG", a.to_str().unwrap())]);
        let flags = ServeArgs {
            config: Some(b),
            ..Default::default()
        };
        assert_eq!(resolve(&flags, &env).unwrap().log_level, "b");
        assert_eq!(resolve(&ServeArgs::default(), &env).unwrap().log_level, "a");
    }

    #[test]
    fn bool_env_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let toml = write(dir.path(), "c.toml", "dev = true\n");
        let flags = ServeArgs {
            config: Some(toml),
            ..Default::default()
        };
        assert!(resolve(&flags, &no_env()).unwrap().dev);
        // env false overrides file true
        assert!(
            !resolve(&flags, &env_of(&[("CITADEL_DEV", "false")]))
                .unwrap()
                .dev
        );
        assert!(resolve(&flags, &env_of(&[("CITADEL_DEV", "maybe")])).is_err());
    }

    #[test]
    fn empty_env_counts_as_unset() {
        let c = resolve(&ServeArgs::default(), &env_of(&[("CITADEL_LISTEN", "")])).unwrap();
        assert_eq!(c.listen, DEFAULT_LISTEN);
    }

    #[test]
    fn secret_from_env_value_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let secret = write(dir.path(), "secret", "s3cr3t/value\n");
        let env = env_of(&[
            ("CITADEL_ROOT_ACCESS_KEY_ID", "AKIAROOT"),
            (
                "CITADEL_ROOT_SECRET_ACCESS_KEY_FILE",
                secret.to_str().unwrap(),
            ),
        ]);
        let c = resolve(&ServeArgs::default(), &env).unwrap();
        assert_eq!(c.root_access_key_id.as_deref(), Some("AKIAROOT"));
        assert_eq!(
            c.root_secret_access_key.as_ref().unwrap().expose_secret(),
            "s3cr3t/value"
        );
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("s3cr3t"), "{dbg}");
        assert!(dbg.contains("<redacted>"));
    }

    #[test]
    fn secret_from_toml_file_key() {
        let dir = tempfile::tempdir().unwrap();
        let secret = write(dir.path(), "secret", "fromfile\r\n");
        let toml = write(
            dir.path(),
            "c.toml",
            &format!(
                "root_access_key_id = \"AKIAFILE\"\nroot_secret_access_key_file = {:?}\n",
                secret.to_str().unwrap()
            ),
        );
        let flags = ServeArgs {
            config: Some(toml),
            ..Default::default()
        };
        let c = resolve(&flags, &no_env()).unwrap();
        assert_eq!(
            c.root_secret_access_key.as_ref().unwrap().expose_secret(),
            "fromfile"
        );
        // The environment overrides the file's secret.
        let env = env_of(&[
            ("CITADEL_ROOT_ACCESS_KEY_ID", "AKIAENV"),
            ("CITADEL_ROOT_SECRET_ACCESS_KEY", "fromenv"),
        ]);
        let c = resolve(&flags, &env).unwrap();
        assert_eq!(
            c.root_secret_access_key.as_ref().unwrap().expose_secret(),
            "fromenv"
        );
    }

    #[test]
    fn secret_value_and_file_together_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let secret = write(dir.path(), "secret", "x\n");
        let env = env_of(&[
            ("CITADEL_ROOT_ACCESS_KEY_ID", "AKIA"),
            ("CITADEL_ROOT_SECRET_ACCESS_KEY", "inline"),
            (
                "CITADEL_ROOT_SECRET_ACCESS_KEY_FILE",
                secret.to_str().unwrap(),
            ),
        ]);
        let err = resolve(&ServeArgs::default(), &env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("both"), "{err}");
        assert!(!err.contains("inline"), "{err}");

        let toml = write(
            dir.path(),
            "c.toml",
            &format!(
                "root_secret_access_key = \"inline\"\nroot_secret_access_key_file = {:?}\n",
                secret.to_str().unwrap()
            ),
        );
        let flags = ServeArgs {
            config: Some(toml),
            ..Default::default()
        };
        assert!(resolve(&flags, &no_env()).is_err());
    }

    #[test]
    fn database_pool_size_is_validated() {
        let url = Some("postgres://citadel@db.example/citadel".to_owned());
        let c = resolve(
            &ServeArgs {
                database_url: url.clone(),
                ..Default::default()
            },
            &|_| None,
        )
        .unwrap();
        assert_eq!(c.database_pool_size, DEFAULT_DATABASE_POOL_SIZE);
        let c = resolve(
            &ServeArgs {
                database_url: url.clone(),
                ..Default::default()
            },
            &|k| (k == "CITADEL_DATABASE_POOL_SIZE").then(|| "40".to_owned()),
        )
        .unwrap();
        assert_eq!(c.database_pool_size, 40);
        for (size, needle) in [(0, "between 1 and 1000"), (1001, "between 1 and 1000")] {
            let err = resolve(
                &ServeArgs {
                    database_url: url.clone(),
                    database_pool_size: Some(size),
                    ..Default::default()
                },
                &|_| None,
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains(needle), "{err}");
        }
        let err = resolve(
            &ServeArgs {
                database_pool_size: Some(8),
                ..Default::default()
            },
            &|_| None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("no database URL"), "{err}");
        let err = resolve(
            &ServeArgs {
                database_url: url,
                ..Default::default()
            },
            &|k| (k == "CITADEL_DATABASE_POOL_SIZE").then(|| "many".to_owned()),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("CITADEL_DATABASE_POOL_SIZE"), "{err}");
    }

    #[test]
    fn database_url_sources_and_secrecy() {
        // Default: no URL, SQLite.
        let c = resolve(&ServeArgs::default(), &no_env()).unwrap();
        assert!(c.database_url.is_none() && c.database_password.is_none());

        // The flag takes a URL without a password; the password comes from the environment.
        let flags = ServeArgs {
            database_url: Some("postgres://citadel@db.example/citadel".into()),
            ..Default::default()
        };
        let env = env_of(&[("CITADEL_DATABASE_PASSWORD", "pg-s3cret")]);
        let c = resolve(&flags, &env).unwrap();
        assert_eq!(
            c.database_url.as_ref().unwrap().expose_secret(),
            "postgres://citadel@db.example/citadel"
        );
        assert_eq!(
            c.database_password.as_ref().unwrap().expose_secret(),
            "pg-s3cret"
        );
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("pg-s3cret"), "{dbg}");
        assert!(dbg.contains("citadel@db.example:5432/citadel"), "{dbg}");

        // A password on the command line is refused, without echoing it.
        let flags = ServeArgs {
            database_url: Some("postgres://citadel:pg-s3cret@db.example/citadel".into()),
            ..Default::default()
        };
        let err = resolve(&flags, &no_env()).unwrap_err().to_string();
        assert!(err.contains("CITADEL_DATABASE_URL"), "{err}");
        assert!(!err.contains("pg-s3cret"), "{err}");

        // The environment (value or file) may carry the whole URL; the flag beats it.
        let dir = tempfile::tempdir().unwrap();
        let url_file = write(
            dir.path(),
            "url",
            "postgres://citadel:pg-s3cret@file.example/citadel?sslmode=require\n",
        );
        let env = env_of(&[("CITADEL_DATABASE_URL_FILE", url_file.to_str().unwrap())]);
        let c = resolve(&ServeArgs::default(), &env).unwrap();
        assert!(
            c.database_url
                .as_ref()
                .unwrap()
                .expose_secret()
                .ends_with("sslmode=require")
        );
        assert!(!format!("{c:?}").contains("pg-s3cret"));
        let flags = ServeArgs {
            database_url: Some("postgres://citadel@flag.example/citadel".into()),
            ..Default::default()
        };
        let c = resolve(&flags, &env).unwrap();
        assert!(
            c.database_url
                .as_ref()
                .unwrap()
                .expose_secret()
                .contains("flag.example")
        );

        // TOML: URL and password file.
        let pw = write(dir.path(), "pw", "from-file\n");
        let toml = write(
            dir.path(),
            "c.toml",
            &format!(
                "database_url = \"postgres://citadel@toml.example/citadel\"\ndatabase_password_file = {:?}\n",
                pw.to_str().unwrap()
            ),
        );
        let flags = ServeArgs {
            config: Some(toml),
            ..Default::default()
        };
        let c = resolve(&flags, &no_env()).unwrap();
        assert_eq!(
            c.database_password.as_ref().unwrap().expose_secret(),
            "from-file"
        );

        // Invalid URLs and a password without a URL are errors that name the problem.
        let env = env_of(&[("CITADEL_DATABASE_URL", "mysql://u:pg-s3cret@h/db")]);
        let err = resolve(&ServeArgs::default(), &env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("database_url") && err.contains("postgres://"),
            "{err}"
        );
        assert!(!err.contains("pg-s3cret"), "{err}");
        let env = env_of(&[("CITADEL_DATABASE_PASSWORD", "x")]);
        assert!(resolve(&ServeArgs::default(), &env).is_err());
        let env = env_of(&[
            ("CITADEL_DATABASE_URL", "postgres://a@h/db"),
            ("CITADEL_DATABASE_URL_FILE", url_file.to_str().unwrap()),
        ]);
        assert!(resolve(&ServeArgs::default(), &env).is_err());
    }

    #[test]
    fn half_root_credentials_is_an_error() {
        let env = env_of(&[("CITADEL_ROOT_ACCESS_KEY_ID", "AKIA")]);
        assert!(resolve(&ServeArgs::default(), &env).is_err());
    }

    #[test]
    fn bad_account_id() {
        for bad in ["12345678901", "1234567890123", "12345678901a", ""] {
            let flags = ServeArgs {
                default_account: Some(bad.to_owned()),
                ..Default::default()
            };
            // "" as a flag is a real (invalid) value, unlike an empty env variable.
            assert!(resolve(&flags, &no_env()).is_err(), "{bad:?}");
        }
        let env = env_of(&[("CITADEL_DEFAULT_ACCOUNT", "abc")]);
        assert!(resolve(&ServeArgs::default(), &env).is_err());
    }

    #[test]
    fn unknown_toml_key_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let toml = write(dir.path(), "c.toml", "listen_addr = \"127.0.0.1:1\"\n");
        let flags = ServeArgs {
            config: Some(toml),
            ..Default::default()
        };
        let err = format!("{:#}", resolve(&flags, &no_env()).unwrap_err());
        assert!(err.contains("listen_addr"), "{err}");
    }

    #[test]
    fn ssm_quotas_from_toml_file() {
        let dir = tempfile::tempdir().unwrap();
        let resolve_toml = |text: &str| {
            let flags = ServeArgs {
                config: Some(write(dir.path(), "c.toml", text)),
                ..Default::default()
            };
            resolve(&flags, &no_env())
        };
        let c = resolve_toml("[ssm]\nstandard_tps = 5\nstandard_parameters = 50\n").unwrap();
        let limits = citadel_svc_ssm::Limits::from_config(&c.ssm).unwrap();
        assert_eq!(limits.standard_tps, 5);
        assert_eq!(limits.standard_parameters, 50);
        // Unset values stay AWS's.
        let aws = citadel_svc_ssm::Limits::default();
        assert_eq!(limits.advanced_parameters, aws.advanced_parameters);
        assert_eq!(limits.high_throughput_tps, aws.high_throughput_tps);
        for (bad, words) in [
            ("standard_parameters = 0", "standard_parameters"),
            ("advanced_parameters = 0", "advanced_parameters"),
            (
                "standard_tps = 100\nhigh_throughput_tps = 10",
                "high_throughput_tps",
            ),
            ("standard_tps = -1", "standard_tps"),
            ("standard_tps = \"fast\"", "standard_tps"),
            ("standard_rate = 1", "standard_rate"),
        ] {
            let err = format!(
                "{:#}",
                resolve_toml(&format!("[ssm]\n{bad}\n")).unwrap_err()
            );
            assert!(err.contains(words), "{bad}: {err}");
        }
    }

    #[test]
    fn missing_config_file_is_an_error() {
        let flags = ServeArgs {
            config: Some(PathBuf::from("/nonexistent/citadel.toml")),
            ..Default::default()
        };
        assert!(resolve(&flags, &no_env()).is_err());
    }

    #[test]
    fn tls_mode_rules() {
        let files = ServeArgs {
            tls_cert: Some("c.pem".into()),
            tls_key: Some("k.pem".into()),
            ..Default::default()
        };
        assert!(matches!(
            resolve(&files, &no_env()).unwrap().tls,
            TlsMode::Files { .. }
        ));
        let dev_files = ServeArgs {
            dev: true,
            ..files.clone()
        };
        assert!(matches!(
            resolve(&dev_files, &no_env()).unwrap().tls,
            TlsMode::Files { .. }
        ));
        // cert from a flag, key from the environment: each field resolves on its own.
        let half = ServeArgs {
            tls_key: None,
            ..files.clone()
        };
        assert!(resolve(&half, &no_env()).is_err());
        assert!(resolve(&half, &env_of(&[("CITADEL_TLS_KEY", "k.pem")])).is_ok());

        let contradiction = ServeArgs {
            insecure_http: true,
            ..files
        };
        assert!(resolve(&contradiction, &no_env()).is_err());

        let insecure = ServeArgs {
            insecure_http: true,
            listen: Some("0.0.0.0:4566".parse().unwrap()),
            ..Default::default()
        };
        let c = resolve(&insecure, &no_env()).unwrap();
        assert_eq!(c.tls, TlsMode::Disabled);
        assert_eq!(c.warnings().len(), 1);

        let all_interfaces = ServeArgs {
            listen: Some("0.0.0.0:4566".parse().unwrap()),
            ..Default::default()
        };
        let c = resolve(&all_interfaces, &no_env()).unwrap();
        assert_eq!(c.tls, TlsMode::InternalCa);
        assert!(c.warnings()[0].contains("--tls-hostname"));

        let env = env_of(&[("CITADEL_INSECURE_HTTP", "1")]);
        assert_eq!(
            resolve(&ServeArgs::default(), &env).unwrap().tls,
            TlsMode::Disabled
        );
    }

    #[test]
    fn invalid_values_are_errors() {
        for (k, v) in [
            ("CITADEL_LISTEN", "localhost"),
            ("CITADEL_SEAL", "pkcs11"),
            ("CITADEL_LOG_FORMAT", "xml"),
            ("CITADEL_MAX_BODY_BYTES", "-1"),
            ("CITADEL_MAX_BODY_BYTES", "0"),
            ("CITADEL_TLS_HOSTNAMES", "bad host"),
        ] {
            assert!(
                resolve(&ServeArgs::default(), &env_of(&[(k, v)])).is_err(),
                "{k}={v}"
            );
        }
    }

    #[test]
    fn hostnames() {
        for ok in [
            "localhost",
            "a.b-c.example",
            "*.example.com",
            "10.0.0.1",
            "::1",
        ] {
            validate_hostname(ok).unwrap();
        }
        for bad in ["", "a..b", "-a.example", "a b", "*."] {
            assert!(validate_hostname(bad).is_err(), "{bad:?}");
        }
    }
}
