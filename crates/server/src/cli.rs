//! Command-line definitions (clap derive). Parsing only: what a flag *means* after environment
//! and file layers are merged is decided in `config.rs`, which is why the `serve` options carry no
//! defaults and no `env =` here — a clap-level default would be indistinguishable from a flag the
//! user typed and would wrongly override `CITADEL_*` variables and the TOML file.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{LogFormat, SealType};

/// Default address of a running server for `citadel operator …` (the port AWS emulators use).
pub const DEFAULT_OPERATOR_ADDRESS: &str = "http://127.0.0.1:4566";

/// Citadel: self-hosted AWS-compatible KMS, Secrets Manager, SSM parameters, ACM, WAF.
#[derive(Debug, Parser)]
#[command(name = "citadel", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(Box<ServeArgs>),
    /// Operate a running server: initialise, unseal, seal, status, rotate the keyring.
    Operator(OperatorArgs),
    /// Usage and its AWS-equivalent cost (signed by an account root, from AWS_* variables).
    Usage(UsageArgs),
    /// The event bus: redrive dead-lettered deliveries (signed by the management account's root).
    Events(EventsArgs),
    /// The audit trail: verify the log files and their signed digest chain.
    Audit(AuditArgs),
    /// Print the version and exit.
    Version,
}

/// `citadel audit …`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum AuditCommand {
    /// Check every log file and digest (hashes, hash chain, SHA256withRSA signatures), like
    /// `aws cloudtrail validate-logs`, offline: no server and no unsealing needed. Exits 1 and
    /// names each modified, deleted or inserted file when the trail was tampered with.
    Verify {
        /// The server's data directory [default: ./citadel-data, env: CITADEL_DATA_DIR].
        #[arg(long, env = "CITADEL_DATA_DIR", value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Start of the period, RFC 3339 (e.g. 2024-05-01T00:00:00Z) [default: the beginning].
        #[arg(long, value_name = "TIME")]
        from: Option<String>,
        /// End of the period, RFC 3339 [default: now].
        #[arg(long, value_name = "TIME")]
        to: Option<String>,
    },
}

/// `citadel serve` options. Every option is optional so that `config::resolve` can tell "not
/// given" apart from "given", and apply flags > `CITADEL_*` environment > TOML file > defaults.
/// Secrets (root credentials) deliberately have no flag: command lines are visible to every
/// local user through `ps` and `/proc`, so secrets come from the environment or `*_FILE` only.
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML configuration file (env: CITADEL_CONFIG).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Development mode: any well-formed SigV4 credentials, file seal, plain HTTP by default.
    #[arg(long)]
    pub dev: bool,

    /// Address to listen on, IP:PORT [default: 127.0.0.1:4566].
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,

    /// Directory for the database, the sealed keyring and the internal TLS CA
    /// [default: ./citadel-data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Store data in PostgreSQL instead of SQLite in the data directory, e.g.
    /// postgres://citadel@db.example:5432/citadel?sslmode=verify-full. No password here
    /// (command lines are public): give it in CITADEL_DATABASE_PASSWORD[_FILE], or the whole
    /// URL in CITADEL_DATABASE_URL[_FILE].
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,

    /// Most PostgreSQL connections this node's pool opens (1–1000) [default: 16]. Each node
    /// also holds two more: one listening for other nodes' changes, one for the leader lock.
    #[arg(long, value_name = "N")]
    pub database_pool_size: Option<usize>,

    /// Account used when an access key id does not name one (12 digits) [default: 000000000000].
    #[arg(long, value_name = "12DIGITS")]
    pub default_account: Option<String>,

    /// Root key provider [default: file with --dev, shamir otherwise].
    #[arg(long, value_enum)]
    pub seal: Option<SealType>,

    /// Root key file for `--seal file` [default: <data-dir>/root.key].
    #[arg(long, value_name = "PATH")]
    pub root_key_file: Option<PathBuf>,

    /// PEM certificate chain to serve (with --tls-key). Without it, production mode issues a
    /// certificate from the internal CA in <data-dir>/tls.
    #[arg(long, value_name = "PEM")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for --tls-cert.
    #[arg(long, value_name = "PEM")]
    pub tls_key: Option<PathBuf>,

    /// Extra DNS name or IP for the internal-CA server certificate (repeatable).
    #[arg(long = "tls-hostname", value_name = "NAME")]
    pub tls_hostnames: Vec<String>,

    /// Serve plain HTTP in production mode (only behind a TLS-terminating proxy).
    #[arg(long)]
    pub insecure_http: bool,

    /// Log format [default: text].
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,

    /// Log filter, tracing `EnvFilter` syntax [default: info].
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,

    /// Largest request body accepted, in bytes [default: 1048576].
    #[arg(long, value_name = "N")]
    pub max_body_bytes: Option<usize>,

    /// Serve API calls even when their audit record cannot be written (logged loudly and
    /// counted in citadel_audit_write_failures_total) [default: fail closed with a 500].
    #[arg(long)]
    pub audit_fail_open: bool,

    /// Days `cloudtrail lookup-events` finds records for [default: 90].
    #[arg(long, value_name = "DAYS")]
    pub audit_retention_days: Option<u32>,
}

/// `citadel operator …`: a client of a running server's operator API.
#[derive(Debug, Args)]
pub struct OperatorArgs {
    #[command(flatten)]
    pub common: OperatorCommon,

    #[command(subcommand)]
    pub command: OperatorCommand,
}

/// Options shared by every operator subcommand; `global` so they may follow the subcommand
/// (`citadel operator unseal --address …`).
#[derive(Debug, Clone, Args)]
pub struct OperatorCommon {
    /// Server URL.
    #[arg(long, global = true, env = "CITADEL_ADDR", default_value = DEFAULT_OPERATOR_ADDRESS, value_name = "URL")]
    pub address: String,

    /// PEM CA certificate to trust for the server (e.g. <data-dir>/tls/ca.pem).
    #[arg(long, global = true, env = "CITADEL_CA_CERT", value_name = "PEM")]
    pub ca_cert: Option<PathBuf>,
}

/// `citadel events …`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(flatten)]
    pub common: OperatorCommon,

    #[command(subcommand)]
    pub command: EventsCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum EventsCommand {
    /// Move dead-lettered deliveries (retries exhausted, or refused by the target) back to the
    /// outbox with fresh retries.
    Redrive {
        /// Only these delivery or event ids (default: every dead letter).
        #[arg(long = "id", value_name = "ID")]
        ids: Vec<String>,
    },
}

/// `citadel usage …`.
#[derive(Debug, Args)]
pub struct UsageArgs {
    #[command(flatten)]
    pub common: OperatorCommon,

    #[command(subcommand)]
    pub command: UsageCommand,
}

#[derive(Debug, Clone, Subcommand)]
pub enum UsageCommand {
    /// KMS keys and requests of a month, priced as AWS prices them. The management account's
    /// root sees every account; any other root sees its own.
    Report {
        /// The month, as YYYY-MM (default: the current month, UTC).
        #[arg(long, value_name = "YYYY-MM")]
        month: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Subcommand)]
pub enum OperatorCommand {
    /// Initialise a new server: create the root key, split it into key shares, print them once.
    Init {
        /// Number of key shares to create.
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u8).range(1..))]
        shares: u8,
        /// Number of key shares needed to unseal.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..))]
        threshold: u8,
    },
    /// Submit one unseal key share.
    Unseal {
        /// The key share. Prefer omitting it: it is then read from one line of standard input
        /// without echo, so it stays out of shell history and the process list.
        #[arg(value_name = "SHARE")]
        share: Option<String>,
        /// Discard the shares submitted so far and start over.
        #[arg(long, conflicts_with = "share")]
        reset: bool,
    },
    /// Seal the server: drop the root key and keyring from memory.
    Seal,
    /// Show seal status and unseal progress.
    Status,
    /// Rotate the barrier keyring: new writes use a new term.
    Rotate,
    /// Write a backup of the running server's whole store — one consistent snapshot, still
    /// sealed — to FILE (mode 0600, replaced atomically). Signed by the management account's
    /// root (AWS_* variables); the server must be unsealed.
    Backup {
        /// The backup file to write.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Restore a backup into an EMPTY store, offline (no server may run on it): SQLite in
    /// --data-dir, or the PostgreSQL database of --database-url (password from
    /// CITADEL_DATABASE_PASSWORD[_FILE], as for `serve`). The restored data opens only with the
    /// root key (or key shares) of the server that made the backup.
    Restore(RestoreArgs),
}

/// `citadel operator restore` options.
#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    /// The backup file to restore.
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,
    /// Data directory of the target SQLite store [default: ./citadel-data, env: CITADEL_DATA_DIR].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Restore into this PostgreSQL database instead (no password in the URL).
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// TOML configuration file, read as `serve` reads it (env: CITADEL_CONFIG).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_parses_every_option() {
        let cli = Cli::try_parse_from([
            "citadel",
            "serve",
            "--dev",
            "--listen",
            "0.0.0.0:8443",
            "--data-dir",
            "/var/lib/citadel",
            "--default-account",
            "123456789012",
            "--seal",
            "shamir",
            "--root-key-file",
            "/k",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
            "--tls-hostname",
            "a.example",
            "--tls-hostname",
            "10.0.0.1",
            "--insecure-http",
            "--log-format",
            "json",
            "--log-level",
            "debug",
            "--max-body-bytes",
            "42",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        assert!(args.dev && args.insecure_http);
        assert_eq!(args.listen, Some("0.0.0.0:8443".parse().unwrap()));
        assert_eq!(args.seal, Some(SealType::Shamir));
        assert_eq!(args.log_format, Some(LogFormat::Json));
        assert_eq!(args.tls_hostnames, vec!["a.example", "10.0.0.1"]);
        assert_eq!(args.max_body_bytes, Some(42));
    }

    #[test]
    fn serve_without_options_leaves_everything_unset() {
        let cli = Cli::try_parse_from(["citadel", "serve"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        assert!(args.listen.is_none() && args.seal.is_none() && !args.dev);
    }

    #[test]
    fn operator_common_options_are_global() {
        let cli = Cli::try_parse_from([
            "citadel",
            "operator",
            "unseal",
            "--address",
            "https://x:1",
            "--ca-cert",
            "ca.pem",
        ])
        .unwrap();
        let Command::Operator(op) = cli.command else {
            panic!("not operator")
        };
        assert_eq!(op.common.address, "https://x:1");
        assert_eq!(op.common.ca_cert, Some(PathBuf::from("ca.pem")));
        assert!(matches!(
            op.command,
            OperatorCommand::Unseal {
                share: None,
                reset: false
            }
        ));
    }

    #[test]
    fn operator_init_defaults_and_bounds() {
        let cli = Cli::try_parse_from(["citadel", "operator", "init"]).unwrap();
        let Command::Operator(op) = cli.command else {
            panic!("not operator")
        };
        assert!(matches!(
            op.command,
            OperatorCommand::Init {
                shares: 5,
                threshold: 3
            }
        ));
        assert!(Cli::try_parse_from(["citadel", "operator", "init", "--shares", "0"]).is_err());
    }
}
