//! `citadel serve`: bind, open the sealed store, unseal what can be unsealed unattended, serve.

use std::sync::Arc;

use anyhow::Context;
use axum::routing::{get, post};
use citadel_api::{ScheduledWork, ServiceHandler};
use citadel_iam::{Authorizer, IdentityStore};
use citadel_store::{Backend, PostgresBackend, PostgresOptions, SealedStore, SqliteBackend};
use secrecy::ExposeSecret;

use crate::app::{self, AppState};
use crate::config::{Config, LogFormat, SealType, TlsMode};
use crate::scheduler::Scheduler;
use crate::{listener, sys, tls};

fn init_tracing(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    // A second initialisation (tests) is harmless: keep the first subscriber.
    let _ = match config.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Creates the data directory readable by its owner only: it holds the database and, with the
/// file seal, by default the root key.
fn create_data_dir(path: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !path.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .with_context(|| format!("creating data directory {}", path.display()))?;
    }
    Ok(())
}

/// Every service handler the server has, in one place (the dispatcher and the docs read it).
/// `identities` is the one identity store the pipeline authenticates with: IAM changes made
/// through it invalidate the credentials and policies the next request reads.
/// What the server runs: the handlers the dispatcher calls and the due work the scheduler
/// drives (the same service instances, so scheduled changes reach the request path's caches).
pub struct Services {
    pub handlers: Vec<Arc<dyn ServiceHandler>>,
    pub scheduled: Vec<Arc<dyn ScheduledWork>>,
    /// Secrets Manager, for installing its rotators once the listen address is known.
    pub secrets: Arc<citadel_svc_secrets::SecretsManager>,
    /// KMS itself, for the operator API's usage report.
    pub kms: Arc<citadel_svc_kms::Kms>,
    /// The event bus, whose delivery loop the server runs.
    pub bus: Arc<citadel_svc_events::Bus>,
    /// Parameter Store, for loading the operator's public parameters.
    pub ssm: Arc<citadel_svc_ssm::Ssm>,
}

/// Every service the server has, in one place (the dispatcher, the scheduler and the docs
/// read it).
pub fn services(
    store: &Arc<SealedStore>,
    identities: &Arc<IdentityStore>,
    authorizer: &Arc<Authorizer>,
    management_account: &str,
    event_files: Option<std::path::PathBuf>,
) -> Services {
    let bus = Arc::new(citadel_svc_events::Bus::new(
        store.clone(),
        citadel_svc_events::BusConfig {
            file_target_dir: event_files,
            ..Default::default()
        },
    ));
    let kms = Arc::new(citadel_svc_kms::Kms::new(store.clone(), authorizer.clone()));
    kms.set_events(bus.clone());
    let secrets = Arc::new(citadel_svc_secrets::SecretsManager::new(
        store.clone(),
        authorizer.clone(),
        kms.clone() as Arc<dyn citadel_api::KeyService>,
    ));
    let ssm = Arc::new(citadel_svc_ssm::Ssm::new(
        store.clone(),
        authorizer.clone(),
        kms.clone() as Arc<dyn citadel_api::KeyService>,
    ));
    ssm.set_events(bus.clone());
    ssm.set_secrets(secrets.clone() as Arc<dyn citadel_api::SecretReader>);
    secrets.set_events(bus.clone());
    let sts = Arc::new(citadel_svc_sts::Sts::new(
        identities.clone(),
        authorizer.clone(),
    ));
    Services {
        handlers: vec![
            sts.clone(),
            Arc::new(citadel_svc_iam::Iam::new(identities.clone())),
            kms.clone(),
            secrets.clone(),
            ssm.clone(),
            Arc::new(citadel_svc_events::Events::new(bus.clone())),
            Arc::new(citadel_svc_cloudtrail::CloudTrail::new(store.clone())),
            Arc::new(citadel_svc_organizations::Organizations::new(
                store.clone(),
                identities.clone(),
                management_account,
            )),
        ],
        scheduled: vec![kms.clone(), sts, secrets.clone(), ssm.clone()],
        ssm,
        secrets,
        kms,
        bus,
    }
}

/// Secrets Manager's rotators from `[secrets]`, calling back this server (its actual address:
/// `--listen` may name port 0) unless `rotation_endpoint` says otherwise.
fn secrets_rotation(
    config: &Config,
    scheme: &str,
    addr: std::net::SocketAddr,
) -> anyhow::Result<citadel_svc_secrets::RotationSettings> {
    let mut local = addr;
    if local.ip().is_unspecified() {
        local.set_ip(match local.ip() {
            std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let endpoint = config
        .secrets
        .rotation_endpoint
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{local}"));
    citadel_svc_secrets::RotationSettings::from_config(&config.secrets.rotators, Some(endpoint))
        .map_err(|e| anyhow::anyhow!("secrets rotators: {e}"))
}

pub fn router(state: Arc<AppState>) -> axum::Router {
    axum::Router::new()
        .route("/_citadel/health", get(sys::health))
        .route("/_citadel/sys/seal-status", get(sys::status))
        .route("/_citadel/sys/init", post(sys::init))
        .route("/_citadel/sys/unseal", post(sys::unseal))
        .route("/_citadel/sys/seal", post(sys::seal))
        .route("/_citadel/sys/rotate", post(sys::rotate))
        .route("/_citadel/sys/backup", post(crate::backup::serve_backup))
        .route("/_citadel/usage", post(sys::usage))
        .route("/_citadel/events/redrive", post(sys::redrive))
        .route("/metrics", get(sys::metrics))
        .fallback(app::aws_api)
        .with_state(state)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// The storage backend: PostgreSQL when a database URL is configured, else SQLite in the data
/// directory (which holds the audit logs, the TLS CA and the root key file either way).
/// Also returns the PostgreSQL backend itself, for the cluster's change stream and election.
pub(crate) async fn open_backend(
    config: &Config,
) -> anyhow::Result<(Arc<dyn Backend>, Option<PostgresBackend>)> {
    match &config.database_url {
        Some(url) => {
            let options = PostgresOptions {
                password: config
                    .database_password
                    .as_ref()
                    .map(|p| citadel_store::Zeroizing::new(p.expose_secret().to_owned())),
                max_connections: config.database_pool_size,
                ..PostgresOptions::default()
            };
            // Errors name user@host:port/db, never the password.
            let backend = PostgresBackend::connect(url.expose_secret(), options)
                .await
                .context("opening the PostgreSQL database")?;
            Ok((Arc::new(backend.clone()), Some(backend)))
        }
        None => {
            let backend = SqliteBackend::open(&config.data_dir.join("citadel.db"))
                .await
                .context("opening the database")?;
            Ok((Arc::new(backend), None))
        }
    }
}

pub async fn serve(config: Config) -> anyhow::Result<()> {
    init_tracing(&config);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    let scheme = if config.tls == TlsMode::Disabled {
        "http"
    } else {
        "https"
    };
    // Tests and scripts read the bound address (port 0 picks a free one) from this first line.
    tracing::info!("citadel listening on {scheme}://{addr}");
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }

    create_data_dir(&config.data_dir)?;
    let tls = tls::load_or_create(&config)?;
    let (backend, postgres) = open_backend(&config).await?;
    let store = Arc::new(SealedStore::new(backend));

    let status = store.status().await?;
    match config.seal {
        SealType::File => {
            let key = citadel_barrier::file::load_or_create(&config.root_key_file)
                .with_context(|| format!("root key file {}", config.root_key_file.display()))?;
            if !status.initialized {
                store.initialize_file(&key).await?;
                tracing::info!(root_key_file = %config.root_key_file.display(), "initialized a new store sealed by the root key file");
            }
            store
                .unseal_with_key(&key)
                .await
                .context("unsealing with the root key file")?;
        }
        SealType::Shamir if !status.initialized => {
            tracing::warn!("citadel is not initialized: run `citadel operator init`");
        }
        SealType::Shamir => {
            tracing::warn!("citadel is sealed: run `citadel operator unseal` with the key shares");
        }
    }

    let mode = if config.dev { "dev" } else { "production" };
    let identities = Arc::new(IdentityStore::new(store.clone()));
    let authorizer = Arc::new(Authorizer::new(identities.clone()));
    let services = services(
        &store,
        &identities,
        &authorizer,
        &config.default_account,
        Some(config.data_dir.join("events")),
    );
    // Caches follow other nodes' writes; only the leader runs the delivery loop and the
    // scheduler (deliveries are at least once, scheduled work commits by compare-and-swap).
    let leadership = crate::cluster::start(postgres.as_ref(), &store, &identities, &services);
    crate::cluster::spawn_delivery(services.bus.clone(), leadership.clone());
    let timing = crate::cluster::SchedulerTiming::from_env(config.dev, &|k| std::env::var(k).ok())?;
    services
        .secrets
        .set_rotation(secrets_rotation(&config, scheme, addr)?);
    services
        .ssm
        .configure(&config.ssm)
        .map_err(|e| anyhow::anyhow!("[ssm] {e}"))?;
    crate::cluster::spawn_follower_flush(
        services.kms.clone(),
        store.clone(),
        leadership.clone(),
        timing.interval,
    );
    Scheduler::new(store.clone(), services.scheduled)
        .with_leadership(leadership.clone())
        .ahead(timing.ahead_secs)
        .spawn(timing.interval);
    let mut state = AppState::new(config, store, identities, authorizer, services.handlers);
    state.leadership = leadership;
    state.kms = Some(services.kms);
    state.bus = Some(services.bus);
    state.audit = Some(crate::audit::start(&state.config, &state.store)?);
    let state = Arc::new(state);
    if !state.store.is_sealed() {
        sys::after_unseal(&state).await.map_err(|_| {
            anyhow::anyhow!("applying the root credentials from the environment failed")
        })?;
    }
    if !state.config.dev
        && !state.store.is_sealed()
        && matches!(
            state
                .identities
                .root_access_key_id(&state.config.default_account)
                .await,
            Ok(None)
        )
    {
        // Until then, whoever reaches the port first could initialize it.
        tracing::warn!("no root credentials yet: run `citadel operator init` now");
    }
    tracing::info!(mode, "citadel ready");
    let audit = state.audit.clone();
    let served = listener::serve(listener, tls, router(state), shutdown_signal()).await;
    if let Some(audit) = audit {
        crate::audit::close(&audit).await;
    }
    served
}
