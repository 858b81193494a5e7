//! `dingtail tail -c CONFIG [--input NAME]`: prints what the tailer sees, as it arrives. The first
//! thing an operator runs to check which files an input matches and how their lines are cut and
//! joined.
//!
//! Output: one line per line (or joined multi-line event), `PATH: TEXT`, flushed at once so a
//! pipe sees it live. Inside TEXT, the `\n` between the lines of a multi-line event is written
//! as the two characters `\n`, a `\r` as `\r`, and any other control character as `\u{..}`
//! (a binary file must not drive the terminal); tabs and backslashes are printed as they are. A
//! line cut at `max_line_bytes` ends with ` [truncated]`.
//!
//! It follows `start_at` as configured (as if this were the daemon's first start) and never
//! reads or writes the daemon's checkpoints. SIGINT and SIGTERM end it with status 0 (after the
//! events still being joined are printed); an invalid config prints every diagnostic and exits 1,
//! an unreadable one or an unknown `--input` exits 2 (`cli::exit`).

// This module is a human interface: it prints lines to stdout and errors to stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::cli::exit::Exit;
use crate::config::{DEFAULT_CONFIG_PATH, InputConfig};
use crate::daemon::signals::{Signal, SignalStream};
use crate::event::LogLine;
use crate::tail::{Tailer, TailerConfig};

/// Arguments of `dingtail tail`.
#[derive(Debug, clap::Args)]
#[command(after_help = crate::cli::exit::HELP)]
pub struct TailArgs {
    /// The main config file.
    #[arg(short = 'c', long = "config", default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
    /// Follow only this input (a key under `inputs:`).
    #[arg(long)]
    pub input: Option<String>,
}

/// Runs `dingtail tail`: 0 after SIGINT/SIGTERM (or when stdout is closed), 1 for an invalid
/// config, 2 for an unreadable one or an unknown input, 6 on any other failure.
pub fn run(args: TailArgs) -> ExitCode {
    let config = match crate::cli::load_config(&args.config) {
        Ok(config) => config,
        Err(exit) => return exit.into(),
    };
    let inputs: Vec<InputConfig> = match &args.input {
        Some(name) => match config.inputs.get(name) {
            Some(input) => vec![input.clone()],
            None => {
                let known: Vec<&str> = config.inputs.keys().map(String::as_str).collect();
                let hint = crate::config::diag::did_you_mean(name, known.iter().copied())
                    .map(|best| format!("; did you mean `{best}`?"))
                    .unwrap_or_default();
                eprintln!(
                    "{}: no input named `{name}` (the config has: {}{hint})",
                    args.config.display(),
                    known.join(", ")
                );
                return Exit::Usage.into();
            }
        },
        None => config.inputs.values().cloned().collect(),
    };
    // As many descriptors as the system allows; past them, files are parked.
    crate::fdlimit::raise_and_log();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("dingtail tail: cannot start the runtime: {err}");
            return Exit::Failed.into();
        }
    };
    match runtime.block_on(follow(inputs)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("dingtail tail: {}", crate::cli::chain(&err));
            Exit::Failed.into()
        }
    }
}

async fn follow(inputs: Vec<InputConfig>) -> anyhow::Result<()> {
    let mut signals = SignalStream::install().context("cannot install signal handlers")?;
    let mut tailer =
        Tailer::start(TailerConfig { inputs }, Vec::new(), true).context("cannot start tailing")?;
    let mut text = String::new();
    loop {
        tokio::select! {
            lines = tailer.next_batch() => {
                if !print(&lines, &mut text)? {
                    return Ok(());
                }
            }
            signal = signals.next() => match signal {
                Some(Signal::Reload) => {}
                Some(Signal::Shutdown) | None => break,
            },
        }
    }
    print(&tailer.shutdown(), &mut text)?;
    Ok(())
}

/// Prints `lines`, flushing after each; `Ok(false)` when stdout was closed (`| head`).
fn print(lines: &[LogLine], text: &mut String) -> anyhow::Result<bool> {
    let mut stdout = io::stdout().lock();
    for line in lines {
        text.clear();
        format_line(line, text);
        let written = stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush());
        match written {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::BrokenPipe => return Ok(false),
            Err(err) => return Err(err).context("cannot write to stdout"),
        }
    }
    Ok(true)
}

/// `PATH: TEXT\n`, escaped as the module documentation says.
fn format_line(line: &LogLine, out: &mut String) {
    out.push_str(&line.path.to_string_lossy());
    out.push_str(": ");
    for c in line.text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push('\t'),
            c if c.is_control() => {
                let _infallible = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    if line.truncated {
        out.push_str(" [truncated]");
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::SystemTime;

    use crate::cli::tail::format_line;
    use crate::event::{FileId, LogLine};

    #[test]
    fn multiline_events_and_control_characters_are_escaped_on_one_line() {
        let line = LogLine {
            input: "app".into(),
            file_id: FileId(1),
            path: PathBuf::from("/var/log/app.log"),
            start_offset: 0,
            end_offset: 10,
            text: "boom\n\tat x\r\u{1b}[31m\\".into(),
            truncated: true,
            read_at: SystemTime::now(),
            event_time: None,
        };
        let mut out = String::new();
        format_line(&line, &mut out);
        assert_eq!(
            out,
            "/var/log/app.log: boom\\n\tat x\\r\\u{1b}[31m\\ [truncated]\n"
        );
    }
}
