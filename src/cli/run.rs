//! `dingtail run`: load the pipeline (the same loader `check` uses), then hand it to the daemon.
//! Exit codes (`cli::exit`): 0 after a graceful shutdown, 1 for an invalid config or rule, 2 when
//! the config cannot be read, 6 when the daemon cannot start or stops on a fault.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::cli::exit::Exit;
use crate::config::DEFAULT_CONFIG_PATH;
use crate::config::rules::RuleSource;
use crate::daemon::{self, RunOptions};

/// Arguments of `dingtail run`.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::cli::exit::HELP)]
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
    let pipeline = match crate::cli::load_pipeline(&args.config, &RuleSource::Globs) {
        Ok(pipeline) => pipeline,
        Err(exit) => return exit.into(),
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
            return Exit::Failed.into();
        }
    };
    let options = RunOptions {
        config_path: args.config,
        shutdown_timeout: args.shutdown_timeout,
    };
    match runtime.block_on(daemon::run(pipeline, options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{}", crate::cli::chain(&err));
            Exit::Failed.into()
        }
    }
}
