//! `dingtail run`: load the pipeline (the same loader `check` uses), then hand it to the daemon.
//! Exit codes: 0 after a graceful shutdown, 1 when the daemon cannot start, 2 for a config error.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::config::DEFAULT_CONFIG_PATH;
use crate::daemon::{self, RunOptions};
use crate::pipeline::Pipeline;

/// Arguments of `dingtail run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The main config file.
    #[arg(short = 'c', long = "config", default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
    /// How long a shutdown (SIGTERM/SIGINT) may spend sending what the rate limit allows; what
    /// is left stays in the state directory and is sent after the next start.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,
}

/// Runs `dingtail run`.
pub fn run(args: RunArgs) -> ExitCode {
    let pipeline = match Pipeline::load(&args.config) {
        Ok(pipeline) => pipeline,
        Err(diagnostics) => {
            tracing::error!(
                "{} is not valid ({} problem(s)):",
                args.config.display(),
                diagnostics.0.len()
            );
            crate::cli::print_diagnostics(&diagnostics);
            return ExitCode::from(2);
        }
    };
    // Before anything opens a descriptor: as many as the system allows (issue 19).
    crate::fdlimit::raise_and_log();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("dingtail")
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!("cannot start the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    let options = RunOptions {
        config_path: args.config,
        shutdown_timeout: args.shutdown_timeout,
    };
    match runtime.block_on(daemon::run(pipeline, options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            ExitCode::from(1)
        }
    }
}
