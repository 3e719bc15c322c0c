//! Parameter Store's throughput quota: a token bucket per account and region, refilled at the
//! standard or the higher-throughput rate (the `/ssm/parameter-store/high-throughput-enabled`
//! setting). Kept in memory on the node serving the request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
    /// The rate the bucket was last used at: a raised quota starts with its full burst.
    rate: u32,
}

/// Token buckets per (account, region).
#[derive(Debug, Default)]
pub struct Throttle {
    buckets: Mutex<HashMap<(String, String), Bucket>>,
}

impl Throttle {
    /// Takes one token from the bucket of (`account`, `region`), which holds at most `tps`
    /// tokens and refills at `tps` per second. `false` when it is empty (answer
    /// `ThrottlingException`). A `tps` of 0 disables the quota.
    pub fn allow(&self, account: &str, region: &str, tps: u32) -> bool {
        if tps == 0 {
            return true;
        }
        let rate = f64::from(tps);
        let now = Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bucket = buckets
            .entry((account.to_owned(), region.to_owned()))
            .or_insert(Bucket {
                tokens: rate,
                last: now,
                rate: tps,
            });
        if bucket.rate != tps {
            bucket.tokens = if tps > bucket.rate {
                rate
            } else {
                bucket.tokens.min(rate)
            };
            bucket.rate = tps;
        }
        let elapsed = now.duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(rate);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_beyond_the_rate_is_refused_per_account() {
        let t = Throttle::default();
        let allowed = (0..100).filter(|_| t.allow("a", "r", 40)).count();
        // 40 in the bucket, plus whatever refilled during the loop (a few at most).
        assert!((40..45).contains(&allowed), "{allowed}");
        assert!(t.allow("b", "r", 40));
        assert!(t.allow("a", "r", 0));
        // A raised quota applies at once, with its full burst.
        assert_eq!((0..100).filter(|_| t.allow("a", "r", 3000)).count(), 100);
    }
}
