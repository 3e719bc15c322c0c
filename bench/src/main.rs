//! `citadel-bench`: the load generator (`run`) and the ceiling server (`ceiling`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use citadel_bench::client::Signer;
use citadel_bench::{Options, Target, fixtures};

#[derive(Parser)]
#[command(name = "citadel-bench", about = "Citadel's benchmark harness")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create fixtures and run the scenarios against Citadel, the ceiling and `--compare`.
    Run(Box<RunArgs>),
    /// Serve the ceiling (prints `listening on ADDR`).
    Ceiling {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
    },
    /// Add the start-up time `bench/run.sh` measured to a run's JSON and rewrite its Markdown.
    Startup {
        /// The run's JSON (`run --json`).
        #[arg(long)]
        json: PathBuf,
        #[arg(long)]
        markdown: PathBuf,
        /// Milliseconds from start to the first healthy answer.
        #[arg(long)]
        ms: f64,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Citadel's endpoint (`http://host:port`).
    #[arg(long)]
    endpoint: String,
    /// Citadel's pid, for its CPU time and memory.
    #[arg(long)]
    server_pid: Option<u32>,
    /// The access key id of an account root (the secret comes from `AWS_SECRET_ACCESS_KEY`).
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    access_key_id: String,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// Use the root credentials directly instead of an IAM user (for `--dev` servers).
    #[arg(long)]
    no_iam_user: bool,
    /// Another AWS-compatible endpoint to run the same scenarios against (same credentials).
    #[arg(long)]
    compare: Option<String>,
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds per scenario and endpoint (after a 1 s warm-up).
    #[arg(long, default_value_t = 10)]
    duration: u64,
    #[arg(long, default_value_t = 100_000)]
    parameters: usize,
    #[arg(long, default_value_t = 10_000)]
    secrets: usize,
    /// KMS keys created besides the scenarios' own (for the start-up measurement).
    #[arg(long, default_value_t = 100_000)]
    keys: usize,
    /// Only scenarios whose name contains this (repeatable).
    #[arg(long)]
    only: Vec<String>,
    #[arg(long, default_value = "unknown")]
    commit: String,
    /// Where Citadel keeps its data, for the report.
    #[arg(long, default_value = "SQLite (embedded)")]
    store: String,
    /// Write the run as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write `docs/BENCHMARKS.md` here.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

fn host_port(url: &str) -> anyhow::Result<String> {
    let rest = url
        .strip_prefix("http://")
        .context("the harness speaks plain HTTP: give an http:// endpoint")?;
    Ok(rest.trim_end_matches('/').to_owned())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Ceiling { listen } => runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind(&listen).await?;
            println!("listening on {}", listener.local_addr()?);
            citadel_bench::ceiling::serve(listener).await
        }),
        Command::Run(args) => runtime.block_on(run(*args)),
        Command::Startup { json, markdown, ms } => {
            let mut report: citadel_bench::report::Report =
                serde_json::from_slice(&std::fs::read(&json)?)
                    .with_context(|| format!("reading {}", json.display()))?;
            report.startup_ms = Some(ms);
            std::fs::write(&json, serde_json::to_string_pretty(&report)?)?;
            std::fs::write(&markdown, report.markdown())?;
            Ok(())
        }
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY")
        .context("set AWS_SECRET_ACCESS_KEY to the access key's secret")?;
    let signer = Signer {
        access_key_id: args.access_key_id.clone(),
        secret: secret.as_str().into(),
        region: args.region.clone(),
    };
    let opts = Options {
        citadel: Target {
            addr: host_port(&args.endpoint)?,
            signer: signer.clone(),
            pid: args.server_pid,
        },
        iam_user: !args.no_iam_user,
        compare: args
            .compare
            .as_deref()
            .map(|u| {
                anyhow::Ok(Target {
                    addr: host_port(u)?,
                    signer: signer.clone(),
                    pid: None,
                })
            })
            .transpose()?,
        ceiling_exe: Some(std::env::current_exe()?),
        sizes: fixtures::Sizes {
            parameters: args.parameters,
            secrets: args.secrets,
            keys: args.keys,
            connections: args.connections,
        },
        connections: args.connections,
        warmup: Duration::from_secs(1),
        duration: Duration::from_secs(args.duration),
        only: args.only,
        commit: args.commit,
        store: args.store,
    };
    let report = citadel_bench::run(&opts).await?;
    println!("{}", report.table());
    for n in &report.notes {
        println!("note: {n}");
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    if let Some(path) = &args.markdown {
        std::fs::write(path, report.markdown())?;
    }
    Ok(())
}
