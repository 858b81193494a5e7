//! The command line: what the user typed, and which part of the library each subcommand drives.
//! Only this module (and the `stdout` dry-run robot) writes to stdout for humans.

pub mod check;
pub mod run;
pub mod send;
pub mod tail;
pub mod test;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// dingtail: watch log files and push the lines that matter into DingTalk group chats.
#[derive(Debug, Parser)]
#[command(name = "dingtail", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: tail, match, batch and deliver.
    Run(run::RunArgs),
    /// Validate the config and all rule files, and summarise them.
    Check(check::CheckArgs),
    /// Try the rules against a log file (or stdin), like fail2ban-regex.
    Test(test::TestArgs),
    /// Print the lines (or multi-line events) of the inputs as they arrive.
    Tail(tail::TailArgs),
    /// Send one message to a DingTalk robot (for scripts and cron jobs).
    Send(send::SendArgs),
}

/// Parses the command line, runs the subcommand and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Check(args) => check::run(args),
        Command::Test(args) => test::run(args),
        Command::Tail(args) => tail::run(args),
        Command::Send(args) => send::run(args),
    }
}
