/// Background work a service needs done when it falls due: key rotations and deletions,
/// expirations, parameter policies, certificate renewals. One scheduler loop runs every
/// service's work (on one node of a cluster); services never start timers of their own.
///
/// `run_due` must be idempotent: it may run twice for the same instant, or again after a crash
/// part-way through, and must then do each piece of work exactly once.
#[async_trait::async_trait]
pub trait ScheduledWork: Send + Sync {
    /// A short name for logs and metrics (`kms`).
    fn name(&self) -> &'static str;

    /// Does everything due at or before `now` (seconds since the Unix epoch).
    async fn run_due(&self, now_unix: i64) -> Result<(), String>;
}
