//! The `citadel` binary.

mod app;
mod audit;
mod backup;
mod cli;
mod cluster;
#[cfg(test)]
mod compat;
mod config;
mod listener;
mod metrics;
mod operator;
mod run;
mod scheduler;
mod sys;
mod tls;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // One process-wide TLS provider: aws-lc-rs, as everywhere else in Citadel.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("citadel: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => {
                let config = config::resolve(&args, &|k| std::env::var(k).ok())?;
                run::serve(config).await
            }
            Command::Operator(args) => operator::run(args).await,
            Command::Usage(args) => operator::usage(args).await,
            Command::Events(args) => operator::events(args).await,
            Command::Audit(args) => audit::run(&args),
            Command::Version => {
                println!("citadel {}", env!("CARGO_PKG_VERSION"));
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("citadel: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
