//! `dingtail generate man DIR` and `dingtail generate completions SHELL`: the man pages and shell
//! completion scripts the packages install, generated from the clap definition in `cli` itself
//! (through `clap_mangen` and `clap_complete`).
//!
//! Generating them from the running binary, rather than keeping hand-written copies, means they
//! cannot drift: a subcommand or flag added to [`Cli`] appears in the next build's pages and
//! completions with nothing else to edit, and the packages ship exactly the binary's own
//! interface. The subcommand is hidden: it is for packagers (`packaging/build.sh`) and for
//! people who install with `cargo install` and want completions, not part of the daily interface,
//! so it has no page of its own and is not completed.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::Cli;
use crate::version::PACKAGE;

/// Arguments of `dingtail generate`.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// What to generate.
    #[command(subcommand)]
    pub artifact: Artifact,
}

/// The files `dingtail generate` can write.
#[derive(Debug, clap::Subcommand)]
pub enum Artifact {
    /// Man pages in section 1: `dingtail.1`, and `dingtail-SUBCOMMAND.1` for every subcommand
    /// (nested ones too, e.g. `dingtail-cluster-status.1`), written into DIR.
    Man {
        /// The directory to write the pages into (created if missing).
        dir: PathBuf,
    },
    /// The completion script for SHELL, on stdout.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
}

/// Runs `dingtail generate`.
#[allow(clippy::print_stderr)] // The error is for the packager who ran the command.
pub fn run(args: GenerateArgs) -> ExitCode {
    let result = match args.artifact {
        Artifact::Man { dir } => write_man_pages(&dir).map(drop),
        Artifact::Completions { shell } => write_completions(shell, &mut io::stdout().lock()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}

/// The command as the pages and completions describe it: built (so that subcommands carry their
/// full names, `dingtail-run`) and without clap's `help` subcommand, which needs no page.
fn command() -> clap::Command {
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    command
}

/// The visible subcommands of `command`, depth first, each with its full name (`dingtail-run`).
fn visible_subcommands(command: &clap::Command) -> Vec<clap::Command> {
    let mut found = Vec::new();
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        found.push(sub.clone());
        found.extend(visible_subcommands(sub));
    }
    found
}

/// The name a page is filed under: `dingtail-run` for `run`.
fn page_name(command: &clap::Command) -> &str {
    command
        .get_display_name()
        .unwrap_or_else(|| command.get_name())
}

/// Writes `dingtail.1` and one page per visible subcommand into `dir`, creating it if needed, and
/// returns the paths written, the top page first.
///
/// # Errors
/// When `dir` cannot be created or a page cannot be written.
pub fn write_man_pages(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let top = command().long_about(TOP_DESCRIPTION);
    let subcommands = visible_subcommands(&top);
    let mut pages = vec![(top.clone(), top_page_tail(&subcommands))];
    pages.extend(
        subcommands
            .iter()
            .map(|sub| (sub.clone(), SUBCOMMAND_PAGE_TAIL.to_string())),
    );
    let mut written = Vec::with_capacity(pages.len());
    for (command, tail) in pages {
        let path = dir.join(format!("{}.1", page_name(&command)));
        let mut roff = Vec::new();
        clap_mangen::Man::new(command)
            .source(format!("dingtail {PACKAGE}"))
            .manual("dingtail manual")
            .render(&mut roff)
            .context("cannot render a man page")?;
        roff.extend_from_slice(tail.as_bytes());
        fs::write(&path, roff).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// The DESCRIPTION of `dingtail.1` (`--help` keeps the one-line about).
const TOP_DESCRIPTION: &str = "dingtail watches log files and tells a DingTalk group when a line \
matters. Rules (YAML: a regex with named captures, a severity, which robot, whom to @) say which \
lines matter; dingtail follows the files through logrotate and restarts, joins stack traces, \
batches bursts into summary messages with exact counts, signs its requests, and never sends a \
robot more than its per_minute (DingTalk allows 20 a minute).

Matches are stored durably until DingTalk confirms them, so a crash, an outage or a restart \
loses nothing. Under systemd it runs as dingtail.service (Type=notify, watchdog, reload on \
SIGHUP or when a rule file is saved).

Start with dingtail-check(1) on the configuration, try rules on a log with dingtail-test(1), \
then enable the service.";

/// What follows clap's sections on a subcommand's page.
const SUBCOMMAND_PAGE_TAIL: &str = ".SH \"SEE ALSO\"\n.BR dingtail (1)\n";

/// What follows clap's sections on `dingtail.1`: where things live, the environment, and the
/// other pages.
fn top_page_tail(subcommands: &[clap::Command]) -> String {
    let mut roff = String::from(TOP_PAGE_FILES);
    roff.push_str(".SH \"SEE ALSO\"\n");
    let names: Vec<&str> = subcommands.iter().map(page_name).collect();
    for (i, name) in names.iter().enumerate() {
        let comma = if i + 1 < names.len() { "," } else { "" };
        roff.push_str(&format!(".BR {name} (1){comma}\n"));
    }
    roff
}

/// The FILES and ENVIRONMENT sections of `dingtail.1` (roff; paths as the packages lay them out).
const TOP_PAGE_FILES: &str = r#".SH FILES
.TP
.I /etc/dingtail/dingtail.yaml
The main configuration: inputs, robots, and the globs of the rule files. The default of
\fB\-c\fR. As shipped it is valid and sends nothing: its only robot prints to stdout.
.TP
.I /etc/dingtail/rules.d/*.yaml
The rule files the shipped configuration loads.
.TP
.I /usr/share/dingtail/rules/
Example rules (nginx, Linux, MySQL, PostgreSQL, Redis, Java, Python, Kubernetes) to copy into
\fI/etc/dingtail/rules.d/\fR and adapt.
.TP
.I /etc/dingtail/dingtail.env
Environment of the systemd unit (webhook tokens and signing secrets, referred to as
\fB${VAR}\fR in the configuration); keep it mode 0600.
.TP
.I /var/lib/dingtail/
File positions and undelivered alerts (SQLite), the unit's state directory.
.TP
.I dingtail.service
The hardened systemd unit: \fBsystemctl enable \-\-now dingtail\fR once configured,
\fBsystemctl reload dingtail\fR after editing rules.
.SH ENVIRONMENT
.TP
.B RUST_LOG
The log level on stderr (default \fBinfo\fR), e.g. \fBdebug\fR or \fBdingtail=debug\fR.
.TP
.B DINGTAIL_LOG_FORMAT
The log format on stderr, as \fB\-\-log\-format\fR.
.PP
Every \fB${VAR}\fR and \fB${VAR:\-default}\fR in the configuration and rule files is expanded
from the environment.
"#;

/// The command as completions describe it: [`Cli`] without its hidden subcommands.
/// `clap_complete` completes hidden subcommands (it hides only hidden flags), and clap cannot
/// remove a subcommand, so the top level is assembled anew from the visible parts; the
/// arguments keep their settings (`--log-format` stays global).
fn completion_command() -> clap::Command {
    let full = Cli::command();
    let mut command = clap::Command::new("dingtail")
        .version(crate::version::VERSION)
        .subcommand_required(full.is_subcommand_required_set())
        .args(full.get_arguments().cloned())
        .subcommands(
            full.get_subcommands()
                .filter(|sub| !sub.is_hide_set())
                .cloned(),
        );
    if let Some(about) = full.get_about() {
        command = command.about(about.clone());
    }
    command
}

/// Writes the completion script for `shell` to `out`.
///
/// # Errors
/// When `out` cannot be written (a closed pipe, a full disk).
pub fn write_completions(shell: clap_complete::Shell, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut command = completion_command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "dingtail", &mut script);
    out.write_all(&script)
        .and_then(|()| out.flush())
        .with_context(|| format!("cannot write the {shell} completions"))
}

#[cfg(test)]
mod tests {
    use crate::cli::generate::{command, visible_subcommands, write_completions, write_man_pages};

    #[test]
    fn every_visible_subcommand_gets_a_page_and_generate_gets_none() {
        let dir = tempfile::tempdir().unwrap();
        let written = write_man_pages(dir.path()).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names[0], "dingtail.1");
        for sub in visible_subcommands(&command()) {
            let name = format!("{}.1", sub.get_display_name().unwrap());
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
        assert!(
            names.iter().any(|name| name == "dingtail-check.1"),
            "{names:?}"
        );
        assert!(
            !names.iter().any(|name| name.contains("generate")),
            "{names:?}"
        );
        assert!(!names.iter().any(|name| name.contains("help")), "{names:?}");

        let top = std::fs::read_to_string(dir.path().join("dingtail.1")).unwrap();
        assert!(top.starts_with(".ie \\n(.g .ds Aq"), "{top}");
        assert!(top.contains(".SH FILES"), "{top}");
        assert!(top.contains(".BR dingtail-check (1)"), "{top}");
        let check = std::fs::read_to_string(dir.path().join("dingtail-check.1")).unwrap();
        assert!(check.contains(".TH dingtail-check 1"), "{check}");
        assert!(check.contains("\\-\\-config"), "{check}");
        assert!(check.ends_with(".BR dingtail (1)\n"), "{check}");
    }

    #[test]
    fn completions_name_the_subcommands_but_not_generate() {
        let mut bash = Vec::new();
        write_completions(clap_complete::Shell::Bash, &mut bash).unwrap();
        let bash = String::from_utf8(bash).unwrap();
        for sub in visible_subcommands(&command()) {
            assert!(bash.contains(sub.get_name()), "{} missing", sub.get_name());
        }
        assert!(!bash.contains("generate"), "{bash}");
        // Flags of subcommands and global flags are completed too.
        assert!(bash.contains("--show-unmatched"), "{bash}");
        assert!(bash.contains("--log-format"), "{bash}");
    }
}
