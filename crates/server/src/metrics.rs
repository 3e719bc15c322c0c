//! Prometheus metrics: request counts and latencies per operation, and the seal state.
//!
//! `Metrics` is shared (`Arc<Metrics>`) between the dispatcher, which calls [`Metrics::observe`]
//! once per request, and the `/metrics` handler, which calls [`Metrics::render`].

use std::fmt;
use std::sync::atomic::AtomicI64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// `Content-Type` for [`Metrics::render`]'s output (OpenMetrics text, which Prometheus scrapes
/// natively).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Latency buckets in seconds: 250 µs … 10 s. Cached KMS/Secrets/SSM reads are sub-millisecond,
/// so the low end needs resolution; writes that fsync, PostgreSQL round trips and WAF proxying
/// land in the tens to hundreds of milliseconds; anything beyond 10 s is an outage, not a bucket.
const DURATION_BUCKETS: [f64; 15] = [
    0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    service: String,
    operation: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DurationLabels {
    service: String,
    operation: String,
}

// A plain fn (not a closure) so the Family's constructor type can be named in the struct.
fn new_duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<DurationLabels, Histogram, fn() -> Histogram>,
    sealed: Gauge<i64, AtomicI64>,
    audit_failures: Counter,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let durations =
            Family::<DurationLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                new_duration_histogram,
            );
        let sealed = Gauge::<i64, AtomicI64>::default();
        let audit_failures = Counter::default();
        registry.register(
            "citadel_audit_write_failures",
            "API calls whose audit record could not be written (failed closed, or served with --audit-fail-open)",
            audit_failures.clone(),
        );
        // The counter suffix `_total` and the unit suffix `_seconds` are appended by the library.
        registry.register(
            "citadel_requests",
            "API requests by service, operation and HTTP status",
            requests.clone(),
        );
        registry.register_with_unit(
            "citadel_request_duration",
            "API request latency by service and operation",
            Unit::Seconds,
            durations.clone(),
        );
        registry.register(
            "citadel_sealed",
            "1 while the barrier is sealed (every API call answers 503), 0 when unsealed",
            sealed.clone(),
        );
        Self {
            registry,
            requests,
            durations,
            sealed,
            audit_failures,
        }
    }

    /// Counts one API call whose audit record could not be written.
    pub fn audit_write_failed(&self) {
        self.audit_failures.inc();
    }

    /// Records one finished API request. Called on the hot path: a label lookup under a read
    /// lock and two atomic updates; series are created on first use only.
    pub fn observe(&self, service: &str, operation: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                service: service.to_owned(),
                operation: operation.to_owned(),
                status,
            })
            .inc();
        self.durations
            .get_or_create(&DurationLabels {
                service: service.to_owned(),
                operation: operation.to_owned(),
            })
            .observe(seconds);
    }

    pub fn set_sealed(&self, sealed: bool) {
        self.sealed.set(i64::from(sealed));
    }

    /// The whole registry in OpenMetrics text format (serve with [`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        // Writing into a String cannot fail; if the encoder ever reports an error, a partial
        // scrape is still more useful than none, so it is ignored rather than propagated.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_contains_series_after_observe() {
        let m = Metrics::new();
        m.observe("kms", "Encrypt", 200, 0.0004);
        m.observe("kms", "Encrypt", 200, 0.002);
        m.observe("kms", "Decrypt", 400, 0.3);
        m.set_sealed(true);
        let text = m.render();
        assert!(
            text.contains(
                r#"citadel_requests_total{service="kms",operation="Encrypt",status="200"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"citadel_requests_total{service="kms",operation="Decrypt",status="400"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"citadel_request_duration_seconds_count{service="kms",operation="Encrypt"} 2"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"citadel_request_duration_seconds_bucket{le="0.0005",service="kms",operation="Encrypt"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains("citadel_sealed 1"), "{text}");
        assert!(text.contains("# TYPE citadel_requests counter"), "{text}");
        assert!(text.trim_end().ends_with("# EOF"), "{text}");

        m.set_sealed(false);
        assert!(m.render().contains("citadel_sealed 0"));
    }
}
