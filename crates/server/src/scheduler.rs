//! The one scheduler loop: every service's due work (rotations, deletions, expirations) runs
//! from here, never from timers of the services' own. With several nodes only the leader ticks
//! (see `cluster`); work that a killed leader left half-done is found again by due date.

use std::sync::Arc;
use std::time::Duration;

use citadel_api::ScheduledWork;
use citadel_store::{Leadership, SealedStore};

pub struct Scheduler {
    store: Arc<SealedStore>,
    work: Vec<Arc<dyn ScheduledWork>>,
    leadership: Leadership,
    /// Seconds added to the clock when looking for due work (a test hook; 0 otherwise).
    ahead_secs: i64,
}

impl Scheduler {
    pub fn new(store: Arc<SealedStore>, work: Vec<Arc<dyn ScheduledWork>>) -> Self {
        Scheduler {
            store,
            work,
            leadership: Leadership::always(),
            ahead_secs: 0,
        }
    }

    /// Ticks only while `leadership` says this node leads.
    #[must_use]
    pub fn with_leadership(mut self, leadership: Leadership) -> Self {
        self.leadership = leadership;
        self
    }

    /// Runs work due within `secs` seconds as if it were due now (tests).
    #[must_use]
    pub fn ahead(mut self, secs: i64) -> Self {
        self.ahead_secs = secs;
        self
    }

    /// Runs everything due now. Sealed: nothing can be read, so nothing runs (it will be
    /// picked up at the first tick after unseal, since work is found by due date, not by timer).
    pub async fn tick(&self) {
        if self.store.is_sealed() || !self.leadership.is_leader() {
            return;
        }
        let now = time::OffsetDateTime::now_utc()
            .unix_timestamp()
            .saturating_add(self.ahead_secs);
        for work in &self.work {
            if let Err(e) = work.run_due(now).await {
                tracing::error!(work = work.name(), error = %e, "scheduled work failed; retrying at the next tick");
            }
        }
    }

    /// Ticks every `interval` until the process ends.
    pub fn spawn(self, interval: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                self.tick().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counter(AtomicUsize);

    #[async_trait::async_trait]
    impl ScheduledWork for Counter {
        fn name(&self) -> &'static str {
            "counter"
        }
        async fn run_due(&self, now_unix: i64) -> Result<(), String> {
            assert!(now_unix > 1_700_000_000);
            self.0.fetch_add(1, Ordering::SeqCst);
            Err("failures are logged, never fatal".into())
        }
    }

    #[tokio::test]
    async fn work_runs_only_while_unsealed() {
        let dir = tempfile::tempdir().unwrap();
        let backend = citadel_store::SqliteBackend::open(dir.path())
            .await
            .unwrap();
        let store = Arc::new(SealedStore::new(Arc::new(backend)));
        let counter = Arc::new(Counter(AtomicUsize::new(0)));
        let scheduler = Scheduler::new(store.clone(), vec![counter.clone()]);

        scheduler.tick().await;
        assert_eq!(
            counter.0.load(Ordering::SeqCst),
            0,
            "sealed: nothing may run"
        );

        let key = citadel_barrier::RootKey::generate().unwrap();
        store.initialize_file(&key).await.unwrap();
        store.unseal_with_key(&key).await.unwrap();
        scheduler.tick().await;
        scheduler.tick().await;
        assert_eq!(counter.0.load(Ordering::SeqCst), 2);
    }
}
