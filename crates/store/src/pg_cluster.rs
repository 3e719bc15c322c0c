//! Several Citadel nodes on one PostgreSQL database: the change stream and the leader election.
//!
//! * **Change stream.** A row trigger on `citadel_entries` (migration 2) calls
//!   `pg_notify('citadel_changes', key)` for every inserted, updated or deleted row, inside the
//!   writing transaction, so PostgreSQL delivers the notice only if and when that transaction
//!   commits — whoever wrote it (any node, a restore, an operator's SQL). `TRUNCATE` sends the
//!   empty payload, which means "everything". Each node holds one dedicated connection that
//!   `LISTEN`s and hands every key to the [`ChangeFeed`]; a write on node A reaches node B's
//!   caches within milliseconds of A's commit.
//! * **Why nothing is missed.** PostgreSQL delivers every notice committed after `LISTEN` to a
//!   live session (a full notification queue makes the *writer's* commit fail; it never drops
//!   notices). So notices can only be missed while the listening session is not live: on every
//!   (re)connect the node drops *all* caches after `LISTEN` succeeded, and a heartbeat on the
//!   listening connection (every [`HEARTBEAT`], bounded by [`HEARTBEAT_TIMEOUT`]) detects a
//!   silently dead session (e.g. a network partition the kernel has not reported yet), which
//!   also drops all caches and reconnects. That heartbeat is the cheap periodic re-check: one
//!   round trip per node per second, no table scan. As a last safety net against writers that
//!   bypass triggers (`session_replication_role = replica` during a logical restore, a disabled
//!   trigger) every cache is also dropped every [`FULL_REFRESH`], which bounds staleness from
//!   such causes at the cost of re-reading each hot key once per interval.
//! * **Leader election.** A session-level advisory lock ([`LEADER_LOCK`]) taken with
//!   `pg_try_advisory_lock` on another dedicated connection. The holder leads as long as that
//!   session lives: PostgreSQL releases the lock the moment the session ends (a killed node's
//!   socket closes, so fail-over takes one retry interval, [`LEADER_RETRY`]). The leader stops
//!   leading as soon as its connection fails or a heartbeat does not come back in time; the
//!   other nodes try to take the lock every [`LEADER_RETRY`]. A leader cut off from the
//!   database could briefly overlap with its successor (until its heartbeat times out); every
//!   piece of scheduled work commits by compare-and-swap, so an overlap can repeat an attempt
//!   but never apply a change twice.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, Connection, Notification};

use crate::changes::{ChangeFeed, Leadership};
use crate::postgres::{PostgresBackend, map_err};
use crate::{Result, StoreError};

/// The notification channel the trigger of migration 2 writes to.
pub(crate) const CHANGES_CHANNEL: &str = "citadel_changes";
/// Session advisory lock whose holder leads the cluster ("citadel\x01").
pub const LEADER_LOCK: i64 = 0x6369_7461_6465_6c01;
/// How often the dedicated connections prove they are alive.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long a heartbeat may take before the connection is considered dead.
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(3);
/// How often a follower tries to take the leader lock.
pub const LEADER_RETRY: Duration = Duration::from_secs(2);
/// Pause before reconnecting a lost dedicated connection.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);
/// Every cache is dropped this often even when no notice arrived (see the module docs).
pub const FULL_REFRESH: Duration = Duration::from_secs(300);

/// Drives `connection` in a task; notices arrive on the returned channel, which closes when
/// the connection ends.
fn drive<S, T>(mut connection: Connection<S, T>) -> mpsc::UnboundedReceiver<Notification>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    if tx.send(n).is_err() {
                        return;
                    }
                }
                Some(Ok(AsyncMessage::Notice(notice))) => {
                    tracing::debug!(message = %notice.message(), "PostgreSQL notice");
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "dedicated PostgreSQL connection ended");
                    return;
                }
                None => return,
            }
        }
    });
    rx
}

/// One round trip on `client`, bounded by [`HEARTBEAT_TIMEOUT`].
async fn heartbeat(client: &Client) -> bool {
    matches!(
        tokio::time::timeout(HEARTBEAT_TIMEOUT, client.simple_query("")).await,
        Ok(Ok(_))
    )
}

impl PostgresBackend {
    /// A connection of its own (not from the pool), with the pool's URL, password and TLS.
    async fn dedicated(&self) -> Result<(Client, mpsc::UnboundedReceiver<Notification>)> {
        let (config, tls) = self.dedicated_config();
        let context = format!("connecting to {}", self.target());
        match tls {
            None => {
                let (client, connection) = config
                    .connect(tokio_postgres::NoTls)
                    .await
                    .map_err(|e| map_err(&context, &e))?;
                Ok((client, drive(connection)))
            }
            Some(tls) => {
                let (client, connection) = config
                    .connect(tls)
                    .await
                    .map_err(|e| map_err(&context, &e))?;
                Ok((client, drive(connection)))
            }
        }
    }

    /// Feeds `feed` with the keys every node changes, for as long as the process runs
    /// (reconnecting as needed). See the module documentation.
    pub fn watch_changes(&self, feed: Arc<ChangeFeed>) -> tokio::task::JoinHandle<()> {
        let backend = self.clone();
        tokio::spawn(async move {
            let mut healthy = true;
            loop {
                match backend.listen_once(&feed).await {
                    Ok(()) => healthy = true,
                    Err(e) if healthy => {
                        tracing::warn!(error = %e, "PostgreSQL change stream unavailable; caches are dropped and it is retried every second");
                        healthy = false;
                    }
                    Err(_) => {}
                }
                // Changes may be missed until the stream is back: nothing cached is trusted.
                feed.publish_everything();
                tokio::time::sleep(RECONNECT_PAUSE).await;
            }
        })
    }

    /// One session of the change stream: returns when it ends (`Ok` if it was established).
    async fn listen_once(&self, feed: &ChangeFeed) -> Result<()> {
        let (client, mut notices) = self.dedicated().await?;
        client
            .batch_execute(&format!("LISTEN {CHANGES_CHANNEL}"))
            .await
            .map_err(|e| map_err("listen for changes", &e))?;
        // Whatever was written before LISTEN took effect was not announced to us.
        feed.publish_everything();
        tracing::info!("listening for changes made by other nodes");
        let mut beat = tokio::time::interval(HEARTBEAT);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut refresh =
            tokio::time::interval_at(tokio::time::Instant::now() + FULL_REFRESH, FULL_REFRESH);
        loop {
            tokio::select! {
                notice = notices.recv() => match notice {
                    Some(n) if n.payload().is_empty() => feed.publish_everything(),
                    Some(n) => feed.publish_key(n.payload()),
                    None => {
                        tracing::warn!("the PostgreSQL change stream connection closed; reconnecting");
                        return Ok(());
                    }
                },
                _ = beat.tick() => {
                    if !heartbeat(&client).await {
                        tracing::warn!("the PostgreSQL change stream stopped answering; reconnecting");
                        return Ok(());
                    }
                }
                _ = refresh.tick() => feed.publish_everything(),
            }
        }
    }

    /// Takes part in the leader election for as long as the process runs, updating
    /// `leadership`. See the module documentation.
    pub fn run_election(&self, leadership: Leadership) -> tokio::task::JoinHandle<()> {
        let backend = self.clone();
        tokio::spawn(async move {
            let mut healthy = true;
            loop {
                let result = backend.elect_once(&leadership).await;
                // Whatever happened, the session (and with it the lock) is gone now.
                leadership.set(false);
                match result {
                    Ok(()) => healthy = true,
                    Err(e) if healthy => {
                        tracing::warn!(error = %e, "cannot take part in the leader election; retrying every second");
                        healthy = false;
                    }
                    Err(_) => {}
                }
                tokio::time::sleep(RECONNECT_PAUSE).await;
            }
        })
    }

    /// One session of the election: tries for the lock until it gets it, then leads while
    /// the session stays healthy. Returns when the session ends.
    async fn elect_once(&self, leadership: &Leadership) -> Result<()> {
        let (client, mut closed) = self.dedicated().await?;
        loop {
            let got = tokio::time::timeout(
                HEARTBEAT_TIMEOUT,
                client.query_one("SELECT pg_try_advisory_lock($1)", &[&LEADER_LOCK]),
            )
            .await
            .map_err(|_| StoreError::Unavailable("taking the leader lock timed out".into()))?
            .map_err(|e| map_err("take the leader lock", &e))?;
            let got: bool = got
                .try_get(0)
                .map_err(|e| map_err("take the leader lock", &e))?;
            if got {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(LEADER_RETRY) => {}
                _ = closed.recv() => return Ok(()),
            }
        }
        leadership.set(true);
        loop {
            tokio::select! {
                () = tokio::time::sleep(HEARTBEAT) => {
                    if !heartbeat(&client).await {
                        tracing::warn!("the leader's PostgreSQL session stopped answering; stepping down");
                        return Ok(());
                    }
                }
                // No notices are listened for here: this only returns when the connection ends.
                _ = closed.recv() => {
                    tracing::warn!("the leader's PostgreSQL session ended; stepping down");
                    return Ok(());
                }
            }
        }
    }
}
