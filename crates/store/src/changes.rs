//! Cluster coordination: which storage keys other nodes changed (so in-memory caches can drop
//! them), and which node leads (runs the scheduler and the event delivery loop).
//!
//! Both are backend-neutral types here; the PostgreSQL backend feeds them (see `pg_cluster`).
//! With SQLite there is one node: nothing is published (the writer invalidates its own caches
//! as it always did) and [`Leadership::always`] leads, so neither costs anything on the hot path.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

/// One change notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Changed<'a> {
    /// The value at this storage key was written or deleted (by any node, this one included).
    Key(&'a str),
    /// Anything may have changed: drop everything cached. Sent when the change stream was
    /// (re)connected, when a notice may have been missed, and periodically as a safety net.
    Everything,
}

type Handler = Arc<dyn Fn(Changed<'_>) + Send + Sync>;

/// Fan-out of change notices to the caches that registered for a key prefix.
///
/// Handlers run synchronously on the task that receives the notices, so they must only touch
/// memory (drop a map entry, bump an epoch) — never wait on I/O.
#[derive(Default)]
pub struct ChangeFeed {
    subscribers: RwLock<Vec<(String, Handler)>>,
    keys_seen: AtomicU64,
    full_invalidations: AtomicU64,
}

impl fmt::Debug for ChangeFeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChangeFeed")
            .field("subscribers", &self.read().len())
            .field("keys_seen", &self.keys_seen())
            .field("full_invalidations", &self.full_invalidations())
            .finish()
    }
}

impl ChangeFeed {
    /// A feed with no subscribers.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    // Subscribers are only appended; a panic elsewhere cannot leave the list half-written.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<(String, Handler)>> {
        self.subscribers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Calls `handler` for every changed key that starts with `prefix`, and for every
    /// [`Changed::Everything`].
    pub fn subscribe(
        &self,
        prefix: impl Into<String>,
        handler: impl Fn(Changed<'_>) + Send + Sync + 'static,
    ) {
        self.subscribers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push((prefix.into(), Arc::new(handler)));
    }

    /// Delivers one changed key to the subscribers whose prefix it has.
    pub fn publish_key(&self, key: &str) {
        self.keys_seen.fetch_add(1, Ordering::Relaxed);
        for (prefix, handler) in self.read().iter() {
            if key.starts_with(prefix.as_str()) {
                handler(Changed::Key(key));
            }
        }
    }

    /// Tells every subscriber that anything may have changed.
    pub fn publish_everything(&self) {
        self.full_invalidations.fetch_add(1, Ordering::Relaxed);
        for (_, handler) in self.read().iter() {
            handler(Changed::Everything);
        }
    }

    /// Changed keys received so far (for metrics).
    #[must_use]
    pub fn keys_seen(&self) -> u64 {
        self.keys_seen.load(Ordering::Relaxed)
    }

    /// Full invalidations so far (for metrics).
    #[must_use]
    pub fn full_invalidations(&self) -> u64 {
        self.full_invalidations.load(Ordering::Relaxed)
    }
}

/// Whether this node is the cluster's leader: the one node that runs scheduled work and the
/// event delivery loop. Cheap to clone; clones share the state.
#[derive(Clone)]
pub struct Leadership {
    state: Arc<tokio::sync::watch::Sender<bool>>,
}

impl fmt::Debug for Leadership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leadership")
            .field("leader", &self.is_leader())
            .finish()
    }
}

impl Leadership {
    /// A node that leads from the start and forever (a single node: SQLite).
    #[must_use]
    pub fn always() -> Self {
        Self {
            state: Arc::new(tokio::sync::watch::Sender::new(true)),
        }
    }

    /// A node that follows until something (the PostgreSQL election) makes it lead.
    #[must_use]
    pub fn follower() -> Self {
        Self {
            state: Arc::new(tokio::sync::watch::Sender::new(false)),
        }
    }

    /// Whether this node leads right now.
    #[must_use]
    pub fn is_leader(&self) -> bool {
        *self.state.borrow()
    }

    /// Sets the state (the election calls this); logs transitions.
    pub fn set(&self, leader: bool) {
        let changed = self.state.send_if_modified(|current| {
            let changed = *current != leader;
            *current = leader;
            changed
        });
        if changed {
            if leader {
                tracing::info!("this node is now the cluster leader (runs scheduled work)");
            } else {
                tracing::warn!("this node is no longer the cluster leader");
            }
        }
    }

    /// Waits until the state equals `leader` (at once if it already does).
    pub async fn wait_for(&self, leader: bool) {
        let mut rx = self.state.subscribe();
        // The sender lives as long as `self`, so this cannot fail while we wait.
        let _ = rx.wait_for(|v| *v == leader).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn keys_reach_subscribers_by_prefix() {
        let feed = ChangeFeed::new();
        let seen = Arc::new(Mutex::new(Vec::new()));
        for prefix in ["kms/", "iam/"] {
            let seen = seen.clone();
            feed.subscribe(prefix, move |c| {
                seen.lock().unwrap().push(format!("{prefix}:{c:?}"));
            });
        }
        feed.publish_key("kms/1/us-east-1/key/k");
        feed.publish_key("secrets/x");
        feed.publish_everything();
        assert_eq!(
            *seen.lock().unwrap(),
            vec![
                "kms/:Key(\"kms/1/us-east-1/key/k\")",
                "kms/:Everything",
                "iam/:Everything"
            ]
        );
        assert_eq!(feed.keys_seen(), 2);
        assert_eq!(feed.full_invalidations(), 1);
    }

    #[tokio::test]
    async fn leadership_transitions() {
        assert!(Leadership::always().is_leader());
        let l = Leadership::follower();
        assert!(!l.is_leader());
        let waiter = {
            let l = l.clone();
            tokio::spawn(async move { l.wait_for(true).await })
        };
        l.set(true);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert!(l.is_leader());
        l.set(false);
        l.wait_for(false).await;
    }
}
