//! The command line: what the user typed, and which part of the library each subcommand drives.
//! Only this module (and the `stdout` dry-run robot) writes to stdout for humans.

pub mod check;
pub mod cluster;
pub mod generate;
pub mod run;
pub mod send;
pub mod tail;
pub mod test;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// dingtail: watch log files and push the lines that matter into DingTalk group chats.
#[derive(Debug, Parser)]
#[command(name = "dingtail", version = crate::version::VERSION, about, long_about = None)]
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

/// Prints load diagnostics to stderr, one `file:line:column: message` per line.
#[allow(clippy::print_stderr)] // Diagnostics are for the human who ran the command.
pub fn print_diagnostics(diagnostics: &crate::config::Diagnostics) {
    for diagnostic in &diagnostics.0 {
        eprintln!("{diagnostic}");
    }
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
        Command::Cluster(args) => cluster::run(args),
        Command::Generate(args) => generate::run(args),
    }
}
