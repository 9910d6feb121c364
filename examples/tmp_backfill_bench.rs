//! TEMPORARY (deleted after measuring): the main.rs wiring proposed to the lead.
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Sync(reportsplit::sync::SyncArgs),
    Backfill(reportsplit::backfill::BackfillArgs),
    Reprocess(reportsplit::reprocess::ReprocessArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter("info")
        .init();
    let Ok(runtime) = tokio::runtime::Runtime::new() else {
        return ExitCode::FAILURE;
    };
    let code = runtime.block_on(async {
        let shutdown = reportsplit::daemon::shutdown_on_signals();
        match cli.command {
            Command::Sync(args) => match args.every {
                Some(every) => match reportsplit::daemon::run(&args, every, shutdown).await {
                    Ok(summary) => {
                        eprintln!("{summary}");
                        reportsplit::daemon::exit::OK
                    }
                    Err(error) => {
                        eprintln!("reportsplit: {error}");
                        reportsplit::daemon::exit_code(&error)
                    }
                },
                None => match reportsplit::sync::run(&args).await {
                    Ok(summary) => {
                        eprintln!("{summary}");
                        if summary.failed_total() > 0 { 3 } else { 0 }
                    }
                    Err(error) => {
                        eprintln!("reportsplit: {error}");
                        reportsplit::daemon::exit_code(&error)
                    }
                },
            },
            Command::Backfill(args) => match reportsplit::backfill::run(&args, shutdown).await {
                Ok(summary) => {
                    eprintln!("{summary}");
                    summary.exit_code()
                }
                Err(error) => {
                    eprintln!("reportsplit: {error}");
                    error.exit_code()
                }
            },
            Command::Reprocess(args) => match reportsplit::reprocess::run(&args, shutdown).await {
                Ok(summary) => {
                    eprintln!("{summary}");
                    summary.exit_code()
                }
                Err(error) => {
                    eprintln!("reportsplit: {error}");
                    error.exit_code()
                }
            },
        }
    });
    ExitCode::from(code)
}
