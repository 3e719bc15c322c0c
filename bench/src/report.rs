//! The results: a table for the terminal, JSON, and `docs/BENCHMARKS.md`.

use serde::Serialize;

/// One scenario against one endpoint.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Row {
    pub scenario: String,
    /// `citadel`, `ceiling` or `compare`.
    pub endpoint: String,
    pub write: bool,
    pub ops_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// Server CPU seconds per 1,000 requests (when the server's pid is known).
    pub cpu_ms_per_op: Option<f64>,
}

/// A whole run.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Report {
    pub commit: String,
    pub date: String,
    pub machine: String,
    pub connections: usize,
    pub duration_secs: u64,
    /// Where Citadel kept its data.
    #[serde(default)]
    pub store: String,
    pub parameters: usize,
    pub secrets: usize,
    #[serde(default)]
    pub keys: usize,
    pub fixture_secs: f64,
    /// Time from starting Citadel again on the run's data (all fixtures in it) until it
    /// answered its health check, measured by `bench/run.sh` after the scenarios.
    #[serde(default)]
    pub startup_ms: Option<f64>,
    /// Citadel's resident memory before the load and its peak during the run, MiB.
    pub idle_rss_mib: Option<f64>,
    pub peak_rss_mib: Option<f64>,
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
}

/// The issue's targets for a scenario.
struct Target {
    /// Least share of the ceiling's ops/s measured in the same run.
    min_ratio: Option<f64>,
    /// Least ops/s.
    min_ops: Option<f64>,
    /// Highest p99 latency, ms.
    max_p99_ms: Option<f64>,
}

fn target(row: &Row, store: &str) -> Target {
    let (min_ratio, min_ops, max_p99_ms) = if row.write {
        // Acknowledged = fsynced: 2,000/s on the embedded store, 1,500/s on PostgreSQL.
        let least = if store.starts_with("PostgreSQL") {
            1500.0
        } else {
            2000.0
        };
        (None, Some(least), None)
    } else if row.scenario.starts_with("kms.Sign") || row.scenario.starts_with("kms.GenerateMac") {
        (Some(0.35), None, Some(5.0))
    } else if row.scenario.starts_with("ssm.GetParametersByPath") {
        (None, None, Some(2.0))
    } else {
        (Some(0.5), None, Some(5.0))
    };
    Target {
        min_ratio,
        min_ops,
        max_p99_ms,
    }
}

impl Report {
    fn ceiling_of(&self, scenario: &str) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.scenario == scenario && r.endpoint == "ceiling")
            .map(|r| r.ops_per_sec)
    }

    /// `ops/s ÷ ceiling ops/s` for a row.
    pub fn ratio(&self, row: &Row) -> Option<f64> {
        self.ceiling_of(&row.scenario)
            .filter(|c| *c > 0.0)
            .map(|c| row.ops_per_sec / c)
    }

    /// Whether a Citadel row meets its targets (`None`: nothing to compare with).
    pub fn meets(&self, row: &Row) -> Option<bool> {
        let t = target(row, &self.store);
        let ratio_ok = match t.min_ratio {
            Some(goal) => self.ratio(row)? >= goal,
            None => true,
        };
        let ops_ok = t.min_ops.is_none_or(|goal| row.ops_per_sec >= goal);
        let p99_ok = t.max_p99_ms.is_none_or(|goal| row.p99_ms <= goal);
        Some(ratio_ok && ops_ok && p99_ok && row.errors == 0)
    }

    /// The table (Markdown, also readable in a terminal).
    pub fn table(&self) -> String {
        let mut out = String::from(
            "| scenario | endpoint | ops/s | × ceiling | p50 ms | p99 ms | p99.9 ms | errors | server CPU ms/op | target |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---|\n",
        );
        for r in &self.rows {
            let ratio = if r.endpoint == "ceiling" {
                "1".to_owned()
            } else {
                self.ratio(r).map_or("–".to_owned(), |x| format!("{x:.2}"))
            };
            let meets = if r.endpoint == "citadel" {
                match self.meets(r) {
                    Some(true) => "met",
                    Some(false) => "**missed**",
                    None => "–",
                }
            } else {
                ""
            };
            out.push_str(&format!(
                "| {} | {} | {:.0} | {} | {:.2} | {:.2} | {:.2} | {} | {} | {} |\n",
                r.scenario,
                r.endpoint,
                r.ops_per_sec,
                ratio,
                r.p50_ms,
                r.p99_ms,
                r.p999_ms,
                r.errors,
                r.cpu_ms_per_op
                    .map_or("–".to_owned(), |c| format!("{c:.3}")),
                meets
            ));
        }
        out
    }

    /// `docs/BENCHMARKS.md`.
    pub fn markdown(&self) -> String {
        let mib = |v: Option<f64>| v.map_or("–".to_owned(), |m| format!("{m:.0} MiB"));
        let mut out = format!(
            "# Benchmarks\n\n\
Written by `bench/run.sh` (the harness is `bench/`, see its README section below); do not edit\n\
by hand. Numbers are from one run on one machine: compare the **× ceiling** column, not the\n\
absolute ops/s, which drift with whatever else the machine is doing.\n\n\
- commit `{}`, {}\n- machine: {}\n- {} connections, {} s per scenario after a 1 s warm-up; \
{} parameters under one path, {} secrets, {} more KMS keys\n\
- Citadel in production mode over plain HTTP on loopback: every request SigV4-verified against a\n  \
stored IAM access key, authorized by the IAM user's policy (and the key policy for KMS), and\n  \
recorded in the audit trail before it is answered; data in {}. `bench/run.sh` lifts Parameter\n  \
Store's per-account request quota (`[ssm] high_throughput_tps = 0`), which the reads would hit.\n\
- fixtures created in {:.1} s; Citadel's RSS before the load {}, peak {}\n\
- start-up to ready on the run's data (all fixtures in it): {}\n\n",
            self.commit,
            self.date,
            self.machine,
            self.connections,
            self.duration_secs,
            self.parameters,
            self.secrets,
            self.keys,
            self.store,
            self.fixture_secs,
            mib(self.idle_rss_mib),
            mib(self.peak_rss_mib),
            self.startup_ms
                .map_or("not measured".to_owned(), |ms| format!("{ms:.0} ms")),
        );
        out.push_str(&self.table());
        out.push_str(
            "\nThe **ceiling** is a trivial HTTP/1.1 server in the harness that reads each request and\n\
answers a fixed JSON body: the most any server could do on this machine with this client.\n\
Targets (issue \"Benchmark harness\"): reads ≥ 0.5 × ceiling (Sign and GenerateMac ≥ 0.35) with\n\
p99 ≤ 5 ms; a 10-item GetParametersByPath page in ≤ 2 ms p99; durable writes ≥ 2,000/s\n\
(≥ 1,500/s on PostgreSQL); zero\n\
errors; start-up ≤ 1 s with 100,000 keys and 100,000 parameters; RSS ≤ 64 MiB idle, ≤ 256 MiB\n\
under load. Where a request's time goes, and why targets are missed: `docs/PERFORMANCE.md`.\n",
        );
        if !self.notes.is_empty() {
            out.push_str("\n## Notes\n\n");
            for n in &self.notes {
                out.push_str(&format!("- {n}\n"));
            }
        }
        out.push_str(
            "\n## Running it\n\n```sh\nbench/run.sh                      # release build, fresh data dir, every scenario, writes this file\nbench/run.sh --duration 3 --parameters 1000 --secrets 300   # a quick look\nbench/run.sh --compare http://127.0.0.1:4567                  # also another AWS-compatible endpoint\n```\n\nThe load generator (`citadel-bench`) pre-signs a pool of distinct requests per scenario with\nreal SigV4 (so the client spends its CPU on I/O, not signing) and sends them round-robin over\nkeep-alive connections in a closed loop. Server CPU comes from `/proc/<pid>/stat`, memory from\n`/proc/<pid>/status` (VmRSS, VmHWM). The JSON of the run is in `bench/results.json`.\n",
        );
        out
    }
}
