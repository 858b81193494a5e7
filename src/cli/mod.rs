//! The command line: what the user typed, and which part of the library each subcommand drives.
//! Only this module (and the `stdout` dry-run robot) writes to stdout for humans.

pub mod check;
pub mod cluster;
pub mod exit;
pub mod generate;
pub mod mute;
pub mod reading;
pub mod robot;
pub mod run;
pub mod send;
pub mod service_user;
pub mod tail;
pub mod test;

use std::path::Path;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::cli::exit::Exit;
use crate::config::rules::RuleSource;
use crate::config::{Config, Diagnostics};
use crate::noun;
use crate::pipeline::Pipeline;

/// dingtail: watch log files and push the lines that matter into DingTalk group chats.
#[derive(Debug, Parser)]
#[command(
    name = "dingtail",
    version = crate::version::VERSION,
    about,
    long_about = None,
    after_help = exit::HELP
)]
pub struct Cli {
    /// Log format on stderr: `auto` (plain; without timestamps under journald, which adds them),
    /// `plain`, or `json`. The level comes from RUST_LOG (default `info`).
    #[arg(
        long,
        global = true,
        value_enum,
        env = "DINGTAIL_LOG_FORMAT",
        default_value = "auto"
    )]
    pub log_format: LogFormat,
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
    /// Mute a rule (or some of its keys) for a while; what it mutes is counted and reported
    /// when the silence ends.
    Mute(mute::MuteArgs),
    /// Remove a silence (by id) or every silence of a rule.
    Unmute(mute::UnmuteArgs),
    /// List the silences: who set them, why, until when, what they muted so far.
    Mutes(mute::MutesArgs),
    /// Many hosts, one robot: look at the cluster shared through Redis.
    Cluster(cluster::ClusterArgs),
    /// Write the man pages or a shell completion script (for packagers; hidden).
    #[command(hide = true)]
    Generate(generate::GenerateArgs),
}

/// How log lines are written to stderr.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Plain lines; without timestamps when stderr goes to journald.
    Auto,
    /// Plain lines with timestamps.
    Plain,
    /// One JSON object per line.
    Json,
}

/// Sets up `tracing` on stderr (stdout belongs to the subcommands' output and the `stdout` robot).
fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    let under_journald = stderr_is_journal();
    let result = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Auto if under_journald => builder.without_time().try_init(),
        LogFormat::Auto | LogFormat::Plain => builder.try_init(),
    };
    // Only fails if a subscriber is already installed, which leaves logging working.
    drop(result);
}

/// True when stderr is the journal stream systemd set up: `JOURNAL_STREAM` holds its
/// `device:inode`, and it must match fd 2 itself (a shell started from a unit inherits the
/// variable with another stderr). journald stamps every line, so we do not.
fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
        return false;
    };
    std::fs::metadata("/proc/self/fd/2").is_ok_and(|meta| meta.dev() == dev && meta.ino() == ino)
}

/// Prints load diagnostics to stderr, one `file:line:column: message` per line, and a last line
/// `CONFIG: invalid (N problems)`.
#[allow(clippy::print_stderr)] // Diagnostics are for the human who ran the command.
pub fn print_diagnostics(config: &Path, diagnostics: &Diagnostics) {
    for diagnostic in &diagnostics.0 {
        eprintln!("{diagnostic}");
    }
    eprintln!(
        "{}: invalid ({})",
        config.display(),
        noun::count(diagnostics.0.len(), "problem")
    );
}

/// Checks that the config file named on the command line can be read at all: when it cannot,
/// that is said once and the command exits 2 (a file that cannot be read), not 1 (invalid).
#[allow(clippy::print_stderr)] // Errors are for the human who ran the command.
fn readable(config: &Path) -> Result<(), Exit> {
    match std::fs::read(config) {
        Ok(_) => Ok(()),
        Err(err) => {
            eprintln!("{}: cannot read config: {err}", config.display());
            Err(Exit::Usage)
        }
    }
}

/// Loads the config and its rules as `run` does, printing every problem: `Err(Exit::Usage)` when
/// the config cannot be read, `Err(Exit::Invalid)` when it or a rule is invalid.
///
/// # Errors
/// The exit status to return; what went wrong has been printed.
pub fn load_pipeline(config: &Path, source: &RuleSource) -> Result<Pipeline, Exit> {
    readable(config)?;
    Pipeline::load_with(config, source).map_err(|diagnostics| {
        print_diagnostics(config, &diagnostics);
        Exit::Invalid
    })
}

/// Loads the main config alone (`tail`, `send --robot`), like [`load_pipeline`].
///
/// # Errors
/// The exit status to return; what went wrong has been printed.
pub fn load_config(config: &Path) -> Result<Config, Exit> {
    readable(config)?;
    crate::config::load(config).map_err(|diagnostics| {
        print_diagnostics(config, &diagnostics);
        Exit::Invalid
    })
}

/// An error and its causes, `a: b: c`, each said once: a cause whose text its parent already
/// carries (a `thiserror` message that embeds its source) is not repeated.
pub fn chain(err: &anyhow::Error) -> String {
    let mut out = err.to_string();
    let mut previous = out.clone();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !previous.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        previous = text;
    }
    out
}

/// Parses the command line, runs the subcommand and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Check(args) => check::run(args),
        Command::Test(args) => test::run(args),
        Command::Tail(args) => tail::run(args),
        Command::Send(args) => send::run(args),
        Command::Mute(args) => mute::mute(args),
        Command::Unmute(args) => mute::unmute(args),
        Command::Mutes(args) => mute::mutes(args),
        Command::Cluster(args) => cluster::run(args),
        Command::Generate(args) => generate::run(args),
    }
}
