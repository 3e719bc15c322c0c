//! The benchmark harness: real SigV4-signed requests against Citadel over keep-alive
//! connections, every scenario also run against a trivial HTTP ceiling in the same run, and
//! optionally against another AWS-compatible endpoint. `bench/run.sh` drives it; the results go
//! to `docs/BENCHMARKS.md`.

pub mod ceiling;
pub mod client;
pub mod drive;
pub mod fixtures;
pub mod procstat;
pub mod report;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

use client::Signer;
use report::{Report, Row};

/// An endpoint to measure: `address:port`, who signs, and the server's pid when local.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: String,
    pub signer: Signer,
    pub pid: Option<u32>,
}

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Citadel, signed by an account root (the harness creates an IAM user from it).
    pub citadel: Target,
    /// Create and use an IAM user (production mode); off for `--dev` servers.
    pub iam_user: bool,
    /// Another endpoint, run with the same fixtures and scenarios.
    pub compare: Option<Target>,
    /// The harness binary, to run the ceiling in its own process (`ceiling` subcommand); the
    /// ceiling runs in this process when `None`.
    pub ceiling_exe: Option<PathBuf>,
    pub sizes: fixtures::Sizes,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Only scenarios whose name contains one of these (all when empty).
    pub only: Vec<String>,
    pub commit: String,
    /// Where Citadel keeps its data (for the report).
    pub store: String,
}

/// The ceiling, in its own process or in this one.
struct Ceiling {
    addr: String,
    child: Option<std::process::Child>,
}

impl Ceiling {
    async fn start(exe: Option<&PathBuf>) -> anyhow::Result<Ceiling> {
        match exe {
            Some(exe) => {
                use std::io::BufRead;
                let mut child = std::process::Command::new(exe)
                    .args(["ceiling", "--listen", "127.0.0.1:0"])
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .context("starting the ceiling")?;
                let stdout = child.stdout.take().context("ceiling stdout")?;
                let mut line = String::new();
                std::io::BufReader::new(stdout).read_line(&mut line)?;
                let addr = line
                    .trim()
                    .strip_prefix("listening on ")
                    .context("the ceiling did not announce its address")?
                    .to_owned();
                Ok(Ceiling {
                    addr,
                    child: Some(child),
                })
            }
            None => {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                let addr = listener.local_addr()?.to_string();
                tokio::spawn(ceiling::serve(listener));
                Ok(Ceiling { addr, child: None })
            }
        }
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(std::process::Child::id)
    }
}

impl Drop for Ceiling {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    format!("{cores} cores ({cpu}), {mem_gib:.0} GiB")
}

async fn measure(
    scenario: &str,
    endpoint: &str,
    write: bool,
    addr: &str,
    pid: Option<u32>,
    pool: Arc<Vec<Vec<u8>>>,
    opts: &Options,
) -> anyhow::Result<Row> {
    // Progress on stderr, one line per phase: a long run shows where it is, and a profiler
    // watching the server can switch itself on for exactly one scenario.
    eprintln!("{scenario} on {endpoint}: start");
    let before = pid.and_then(|p| procstat::sample(p).ok());
    let run = drive::timed(addr, pool, opts.connections, opts.warmup, opts.duration).await?;
    let after = pid.and_then(|p| procstat::sample(p).ok());
    eprintln!("{scenario} on {endpoint}: done");
    // CPU over warm-up and measurement, per request measured; the warm-up share is small and
    // the same for every endpoint.
    let cpu_ms_per_op = match (before, after) {
        (Some(b), Some(a)) if run.ops > 0 => {
            let total_secs = (opts.warmup + opts.duration).as_secs_f64();
            let measured_share = opts.duration.as_secs_f64() / total_secs;
            Some((a.cpu_secs - b.cpu_secs) * measured_share * 1000.0 / run.ops as f64)
        }
        _ => None,
    };
    Ok(Row {
        scenario: scenario.to_owned(),
        endpoint: endpoint.to_owned(),
        write,
        ops_per_sec: run.ops_per_sec(),
        p50_ms: run.percentile_ms(0.5),
        p99_ms: run.percentile_ms(0.99),
        p999_ms: run.percentile_ms(0.999),
        errors: run.errors,
        first_error: run.first_error,
        cpu_ms_per_op,
    })
}

/// Creates the fixtures and runs every selected scenario against Citadel, the ceiling and the
/// comparison endpoint.
pub async fn run(opts: &Options) -> anyhow::Result<Report> {
    let citadel_addr = opts.citadel.addr.clone();
    let signer = if opts.iam_user {
        fixtures::iam_user(&citadel_addr, &opts.citadel.signer).await?
    } else {
        opts.citadel.signer.clone()
    };
    let idle = opts.citadel.pid.and_then(|p| procstat::sample(p).ok());
    let started = Instant::now();
    let fx = fixtures::create(&citadel_addr, &signer, opts.sizes).await?;
    let fixture_secs = started.elapsed().as_secs_f64();
    let compare = match &opts.compare {
        Some(t) => Some((
            t,
            fixtures::create(&t.addr, &t.signer, opts.sizes)
                .await
                .context("creating the fixtures on the comparison endpoint")?,
        )),
        None => None,
    };
    let ceiling = Ceiling::start(opts.ceiling_exe.as_ref()).await?;

    let mut rows = Vec::new();
    let mut notes = fx.notes.clone();
    // Enough distinct writes for 5,000/s over the warm-up and the measurement.
    let writes = usize::try_from((opts.warmup + opts.duration).as_secs() * 5_000)
        .unwrap_or(usize::MAX)
        .max(fixtures::POOL);
    let wanted = |name: &str| opts.only.is_empty() || opts.only.iter().any(|o| name.contains(o));
    for name in fixtures::SCENARIOS.iter().copied().filter(|n| wanted(n)) {
        let Some(sc) = fixtures::scenario(name, &citadel_addr, &signer, &fx, writes)? else {
            continue;
        };
        let pool = Arc::new(sc.pool);
        rows.push(
            measure(
                name,
                "citadel",
                sc.write,
                &citadel_addr,
                opts.citadel.pid,
                pool.clone(),
                opts,
            )
            .await?,
        );
        rows.push(
            measure(
                name,
                "ceiling",
                sc.write,
                &ceiling.addr,
                ceiling.pid(),
                pool,
                opts,
            )
            .await?,
        );
        if let Some((t, cfx)) = &compare
            && let Some(csc) = fixtures::scenario(name, &t.addr, &t.signer, cfx, writes)?
        {
            rows.push(
                measure(
                    name,
                    "compare",
                    csc.write,
                    &t.addr,
                    t.pid,
                    Arc::new(csc.pool),
                    opts,
                )
                .await?,
            );
        }
    }
    for r in &rows {
        if let Some(e) = &r.first_error {
            let mut e = e.clone();
            e.truncate(300);
            notes.push(format!(
                "{} on {}: first error: {e}",
                r.scenario, r.endpoint
            ));
        }
    }
    let peak = opts.citadel.pid.and_then(|p| procstat::sample(p).ok());
    let mib = |kib: u64| kib as f64 / 1024.0;
    Ok(Report {
        commit: opts.commit.clone(),
        date: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        machine: machine(),
        connections: opts.connections,
        duration_secs: opts.duration.as_secs(),
        store: opts.store.clone(),
        parameters: opts.sizes.parameters,
        secrets: opts.sizes.secrets,
        keys: opts.sizes.keys,
        fixture_secs,
        startup_ms: None,
        idle_rss_mib: idle.map(|s| mib(s.rss_kib)),
        peak_rss_mib: peak.map(|s| mib(s.peak_rss_kib)),
        rows,
        notes,
    })
}
