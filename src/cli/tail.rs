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
//! Lines are decoded in the input's `format` and `encoding` (the text shown is what rules
//! match: a container line's content, a JSON line's message). A journald input is followed
//! through `journalctl` like the daemon follows it; its lines show as `journal: MESSAGE`, and
//! journalctl failing is said on stderr.
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
use tokio::sync::mpsc;

use crate::cli::exit::Exit;
use crate::config::{DEFAULT_CONFIG_PATH, InputConfig};
use crate::daemon::signals::{Signal, SignalStream};
use crate::event::LogLine;
use crate::journal::{JournalEvent, JournalInput, JournalReader, JournalStatus, ReaderOptions};
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
    let (journal_tx, mut journal_rx) = mpsc::channel(16);
    let mut readers: Vec<JournalReader> = Vec::new();
    for input in &inputs {
        if let Some(journal) = JournalInput::from_config(input) {
            readers.push(JournalReader::spawn(
                journal,
                None,
                ReaderOptions::standard(),
                journal_tx.clone(),
            ));
        }
    }
    let journald: Vec<InputConfig> = inputs
        .iter()
        .filter(|input| input.journald.is_some())
        .cloned()
        .collect();
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
            Some(event) = journal_rx.recv() => {
                if !print(&journal_lines(event, &journald), &mut text)? {
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

/// The lines of a journal event (its entries; a journalctl failure is said on stderr).
fn journal_lines(event: JournalEvent, journald: &[InputConfig]) -> Vec<LogLine> {
    match event {
        JournalEvent::Entries { input, entries } => {
            let Some(config) = journald.iter().find(|config| *config.name == *input) else {
                return Vec::new();
            };
            let now = std::time::SystemTime::now();
            entries
                .into_iter()
                .map(|entry| entry.into_line(config, now))
                .collect()
        }
        JournalEvent::Status { input, status } => {
            match status {
                JournalStatus::Missing { error, retry_in } => {
                    eprintln!(
                        "dingtail tail: input `{input}`: {error}; retried in {}",
                        humantime::format_duration(retry_in)
                    );
                }
                JournalStatus::Exited { reason, retry_in } => {
                    eprintln!(
                        "dingtail tail: input `{input}`: {reason}; restarted in {}",
                        humantime::format_duration(retry_in)
                    );
                }
                JournalStatus::Starting | JournalStatus::Running { .. } => {}
            }
            Vec::new()
        }
        JournalEvent::Skipped {
            input,
            n_lines,
            reason,
        } => {
            eprintln!(
                "dingtail tail: input `{input}`: {n_lines} lines of journalctl's output skipped: {reason}"
            );
            Vec::new()
        }
    }
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
            path: PathBuf::from("/var/log/app.log").into(),
            start_offset: 0,
            end_offset: 10,
            text: "boom\n\tat x\r\u{1b}[31m\\".into(),
            truncated: true,
            invalid: false,
            read_at: SystemTime::now(),
            event_time: None,
            context: crate::fields::Context::new(),
            fields: None,
        };
        let mut out = String::new();
        format_line(&line, &mut out);
        assert_eq!(
            out,
            "/var/log/app.log: boom\\n\tat x\\r\\u{1b}[31m\\ [truncated]\n"
        );
    }
}
