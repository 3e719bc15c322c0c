//! Driving load: many keep-alive connections sending pre-built requests in a closed loop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::client::Conn;

/// What one timed run measured.
#[derive(Debug, Clone, Default)]
pub struct Run {
    pub ops: u64,
    pub errors: u64,
    /// The first non-200 answer or I/O error, for the report.
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// Latency of every measured request, in microseconds, sorted.
    pub latencies_us: Vec<u32>,
}

impl Run {
    pub fn ops_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.ops as f64 / secs
        } else {
            0.0
        }
    }

    /// The `q` quantile (0 < q ≤ 1) of the latencies, in milliseconds.
    pub fn percentile_ms(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let n = self.latencies_us.len();
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        f64::from(self.latencies_us[rank - 1]) / 1000.0
    }
}

struct ConnResult {
    ops: u64,
    errors: u64,
    first_error: Option<String>,
    latencies_us: Vec<u32>,
}

/// Sends `pool`'s requests round-robin over `connections` connections for `warmup` (not
/// measured) and then `duration` (measured). Every answer must be 200; anything else counts as
/// an error.
pub async fn timed(
    addr: &str,
    pool: Arc<Vec<Vec<u8>>>,
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<Run> {
    if pool.is_empty() {
        bail!("no requests to send");
    }
    let start = Instant::now() + warmup;
    let end = start + duration;
    let mut tasks = Vec::with_capacity(connections);
    for c in 0..connections {
        let pool = pool.clone();
        let addr = addr.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut out = ConnResult {
                ops: 0,
                errors: 0,
                first_error: None,
                latencies_us: Vec::new(),
            };
            let mut conn: Option<Conn> = None;
            let mut i = c;
            loop {
                let t0 = Instant::now();
                if t0 >= end {
                    break;
                }
                let measured = t0 >= start;
                let request = &pool[i % pool.len()];
                i += connections;
                let result = match conn.as_mut() {
                    Some(conn) => conn.send(request).await,
                    None => match Conn::open(&addr).await {
                        Ok(mut fresh) => {
                            let r = fresh.send(request).await;
                            conn = Some(fresh);
                            r
                        }
                        Err(e) => Err(e),
                    },
                };
                let latency = t0.elapsed();
                let failure = match result {
                    Ok(r) if r.status == 200 => None,
                    Ok(r) => Some(format!(
                        "HTTP {}: {}",
                        r.status,
                        String::from_utf8_lossy(&r.body)
                    )),
                    Err(e) => {
                        conn = None;
                        Some(e.to_string())
                    }
                };
                if measured {
                    out.ops += 1;
                    out.latencies_us
                        .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
                    if let Some(f) = failure {
                        out.errors += 1;
                        out.first_error.get_or_insert(f);
                    }
                }
            }
            out
        }));
    }
    let mut run = Run::default();
    for t in tasks {
        let r = t.await?;
        run.ops += r.ops;
        run.errors += r.errors;
        if run.first_error.is_none() {
            run.first_error = r.first_error;
        }
        run.latencies_us.extend(r.latencies_us);
    }
    run.elapsed = duration;
    run.latencies_us.sort_unstable();
    Ok(run)
}

/// Sends every request of `requests` once over `connections` connections (fixtures): a request
/// the server asks to retry (throttling, concurrent updates) is retried with backoff; any other
/// answer that is not 200 fails.
pub async fn each_once(
    addr: &str,
    requests: Vec<Vec<u8>>,
    connections: usize,
) -> anyhow::Result<()> {
    let requests = Arc::new(requests);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..connections.max(1) {
        let (requests, next, addr) = (requests.clone(), next.clone(), addr.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(&addr).await?;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(request) = requests.get(i) else {
                    return anyhow::Ok(());
                };
                let mut r = conn.send(request).await?;
                let mut backoff = Duration::from_millis(10);
                while retryable(&r) && backoff < Duration::from_secs(5) {
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    r = conn.send(request).await?;
                }
                if r.status != 200 {
                    bail!(
                        "fixture request {i} answered {}: {}",
                        r.status,
                        String::from_utf8_lossy(&r.body)
                    );
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// Whether an answer asks the client to try again later.
fn retryable(r: &crate::client::Response) -> bool {
    let body = String::from_utf8_lossy(&r.body);
    r.status == 429
        || (r.status == 400 && (body.contains("Throttling") || body.contains("TooManyUpdates")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_rank() {
        let run = Run {
            latencies_us: (1..=1000).collect(),
            ..Run::default()
        };
        assert_eq!(run.percentile_ms(0.5), 0.5);
        assert_eq!(run.percentile_ms(0.99), 0.99);
        assert_eq!(run.percentile_ms(0.999), 0.999);
        assert_eq!(run.percentile_ms(1.0), 1.0);
        assert_eq!(Run::default().percentile_ms(0.5), 0.0);
    }
}
