//! Several nodes on one PostgreSQL database: which in-memory caches a change of which storage
//! key invalidates, and what only the leader runs (the scheduler and the event delivery loop).
//!
//! The store provides the mechanisms (`citadel_store::{ChangeFeed, Leadership}`; PostgreSQL's
//! change stream and advisory-lock election); this module maps storage keys to the services'
//! caches. With SQLite (one node) there is no feed and the node always leads.

use std::sync::Arc;
use std::time::Duration;

use citadel_iam::IdentityStore;
use citadel_store::{ChangeFeed, Changed, KEYRING_KEY, Leadership, PostgresBackend, SealedStore};

use crate::run::Services;

/// How often the leader looks for due work (key deletions and rotations, expirations). Due
/// dates are in days; a minute is precise enough and costs nothing.
pub const SCHEDULER_INTERVAL: Duration = Duration::from_secs(60);

/// Test hooks, read from the environment and honoured only with `--dev` (they would make
/// production deletions happen early): `CITADEL_TEST_SCHEDULER_INTERVAL_MS` ticks the
/// scheduler more often, `CITADEL_TEST_SCHEDULER_AHEAD_SECS` runs work that is due within
/// that many seconds as if it were due now (a 90-day rotation runs in a test).
#[derive(Debug, Clone, Copy)]
pub struct SchedulerTiming {
    pub interval: Duration,
    pub ahead_secs: i64,
}

impl SchedulerTiming {
    pub fn from_env(dev: bool, env: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let mut timing = SchedulerTiming {
            interval: SCHEDULER_INTERVAL,
            ahead_secs: 0,
        };
        let interval = env("CITADEL_TEST_SCHEDULER_INTERVAL_MS");
        let ahead = env("CITADEL_TEST_SCHEDULER_AHEAD_SECS");
        if !dev {
            if interval.is_some() || ahead.is_some() {
                tracing::warn!(
                    "CITADEL_TEST_SCHEDULER_* are test hooks honoured only with --dev; ignored"
                );
            }
            return Ok(timing);
        }
        if let Some(v) = interval {
            let ms: u64 = v.parse().map_err(|_| {
                anyhow::anyhow!("CITADEL_TEST_SCHEDULER_INTERVAL_MS: {v:?} is not a number")
            })?;
            if ms == 0 {
                anyhow::bail!("CITADEL_TEST_SCHEDULER_INTERVAL_MS must be at least 1");
            }
            timing.interval = Duration::from_millis(ms);
        }
        if let Some(v) = ahead {
            timing.ahead_secs = v.parse().map_err(|_| {
                anyhow::anyhow!("CITADEL_TEST_SCHEDULER_AHEAD_SECS: {v:?} is not a number")
            })?;
            if timing.ahead_secs < 0 {
                anyhow::bail!("CITADEL_TEST_SCHEDULER_AHEAD_SECS must not be negative");
            }
        }
        if timing.interval != SCHEDULER_INTERVAL || timing.ahead_secs != 0 {
            tracing::warn!(
                interval_ms = timing.interval.as_millis(),
                ahead_secs = timing.ahead_secs,
                "test hooks change when scheduled work runs"
            );
        }
        Ok(timing)
    }
}

/// Starts the change stream and the election when the store is PostgreSQL; returns this
/// node's leadership (always leading on SQLite).
pub fn start(
    postgres: Option<&PostgresBackend>,
    store: &Arc<SealedStore>,
    identities: &Arc<IdentityStore>,
    services: &Services,
) -> Leadership {
    let Some(pg) = postgres else {
        return Leadership::always();
    };
    let feed = Arc::new(ChangeFeed::new());
    subscribe(&feed, store, identities, services);
    pg.watch_changes(feed);
    let leadership = Leadership::follower();
    pg.run_election(leadership.clone());
    leadership
}

/// Registers every in-memory cache with the feed. Handlers only touch memory (the keyring
/// reload, which reads the database, runs in a task of its own).
fn subscribe(
    feed: &ChangeFeed,
    store: &Arc<SealedStore>,
    identities: &Arc<IdentityStore>,
    services: &Services,
) {
    let kms = services.kms.clone();
    feed.subscribe("kms/", move |change| match change {
        Changed::Key(key) => kms.storage_key_changed(key),
        Changed::Everything => kms.invalidate_all(),
    });

    // Access keys, users, roles, groups and policies all feed the one credentials-and-policies
    // cache, which is dropped whole: IAM changes are rare, and a partial mapping could miss a
    // policy attached through a group. Last-used timestamps are not cached, and change often.
    let iam = identities.clone();
    feed.subscribe("iam/", move |change| match change {
        Changed::Key(key) if key.starts_with("iam/access-key-last-used/") => {}
        Changed::Key(_) | Changed::Everything => iam.invalidate(),
    });

    let bus = services.bus.clone();
    feed.subscribe("events/", move |change| match change {
        Changed::Key(key) => bus.storage_key_changed(key),
        Changed::Everything => bus.invalidate_rules(),
    });

    let ssm = services.ssm.clone();
    feed.subscribe("ssm/", move |change| match change {
        Changed::Key(key) if !key.ends_with("/settings") => {}
        Changed::Key(_) | Changed::Everything => ssm.invalidate_settings(),
    });

    // `operator rotate` on another node: write under the new term here too.
    let sealed = store.clone();
    feed.subscribe(KEYRING_KEY, move |change| {
        if matches!(change, Changed::Key(_) | Changed::Everything) {
            let sealed = sealed.clone();
            tokio::spawn(async move {
                if let Err(e) = sealed.refresh_keyring().await {
                    tracing::warn!(error = %e, "cannot reload the keyring rotated by another node");
                }
            });
        }
    });
}

/// Runs the event bus's delivery loop whenever this node leads, and stops it as soon as it
/// does not (another node's loop takes over; deliveries are at least once either way).
pub fn spawn_delivery(bus: Arc<citadel_svc_events::Bus>, leadership: Leadership) {
    tokio::spawn(async move {
        loop {
            leadership.wait_for(true).await;
            let stepped_down = {
                let leadership = leadership.clone();
                async move { leadership.wait_for(false).await }
            };
            bus.clone().run_delivery(stepped_down).await;
        }
    });
}

/// KMS counts requests and key use in memory and writes them from the scheduler's tick, which
/// only the leader runs; a follower writes its own counts on the same rhythm here, so no node's
/// usage is lost (the writes add to shared counters by compare-and-swap).
pub fn spawn_follower_flush(
    kms: Arc<citadel_svc_kms::Kms>,
    store: Arc<SealedStore>,
    leadership: Leadership,
    interval: Duration,
) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if leadership.is_leader() || store.is_sealed() {
                continue;
            }
            let now_ms = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
            if let Err(e) = kms.flush_usage(now_ms).await {
                tracing::warn!(error = %e, "writing KMS usage failed; retrying at the next tick");
            }
            if let Err(e) = kms.flush_last_usage().await {
                tracing::warn!(error = %e, "writing KMS key last usage failed; retrying at the next tick");
            }
        }
    });
}
