//! `dingtail cluster status [-c CONFIG]` (issue 15): what Redis knows about the cluster of the
//! config's `cluster:` — hosts seen and when, each robot's sender, hand-off lag, pending counts.
//! Exit 0 when read, 1 when the config is invalid or has no `cluster:`, 2 when Redis cannot be
//! asked.

// The CLI is where dingtail prints for humans.
#![allow(clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use crate::cluster::status::{self, StatusError};
use crate::config::DEFAULT_CONFIG_PATH;
use crate::pipeline::Pipeline;

/// Arguments of `dingtail cluster`.
#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ClusterCommand,
}

/// The `cluster` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ClusterCommand {
    /// Hosts seen and when, each robot's sender, hand-off lag and pending counts.
    Status {
        /// The main config file.
        #[arg(short = 'c', long = "config", default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
}

/// Runs `dingtail cluster …`.
pub fn run(args: ClusterArgs) -> ExitCode {
    let ClusterCommand::Status { config } = args.command;
    let pipeline = match Pipeline::load(&config) {
        Ok(pipeline) => pipeline,
        Err(diagnostics) => {
            for diagnostic in diagnostics.iter() {
                eprintln!("{diagnostic}");
            }
            return ExitCode::from(1);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start the async runtime: {err}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(status::read(&pipeline.config)) {
        Ok(status) => {
            crate::cli::test::emit(&status.render());
            ExitCode::SUCCESS
        }
        Err(err @ StatusError::NotClustered) => {
            eprintln!("{}: {err}", config.display());
            ExitCode::from(1)
        }
        Err(err) => {
            eprintln!("{err}");
            ExitCode::from(2)
        }
    }
}
