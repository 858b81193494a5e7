//! `dingtail cluster status [-c CONFIG]` (issue 15): what Redis knows about the cluster of the
//! config's `cluster:` — hosts seen and when, each robot's sender, hand-off lag, pending counts.
//! Exits as every command does (`cli::exit`): 0 read, 1 invalid config, 2 no `cluster:` (a
//! usage error) or the config cannot be read, 4 Redis cannot be asked.

// The CLI is where dingtail prints for humans.
#![allow(clippy::print_stderr)]

use std::path::PathBuf;
use std::process::ExitCode;

use crate::cli::exit::Exit;
use crate::cluster::status::{self, StatusError};
use crate::config::DEFAULT_CONFIG_PATH;
use crate::config::rules::RuleSource;

/// Arguments of `dingtail cluster`.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::cli::exit::HELP)]
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
    status(args).into()
}

fn status(args: ClusterArgs) -> Exit {
    let ClusterCommand::Status { config } = args.command;
    let pipeline = match crate::cli::load_pipeline(&config, &RuleSource::Globs) {
        Ok(pipeline) => pipeline,
        Err(exit) => return exit,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start the async runtime: {err}");
            return Exit::Failed;
        }
    };
    match runtime.block_on(status::read(&pipeline.config)) {
        Ok(status) => {
            crate::cli::test::emit(&status.render());
            Exit::Ok
        }
        Err(err @ StatusError::NotClustered) => {
            eprintln!("{}: {err}", config.display());
            Exit::Usage
        }
        Err(err) => {
            eprintln!("{err}");
            Exit::Network
        }
    }
}
