//! Whether a journald input can be read on this machine, as `dingtail check` (and `run`'s
//! survey) asks it before any reader runs: journalctl must start and open the journal the input
//! names (`journalctl [--directory=D] --lines=0 --quiet`, which reads nothing), and a user who is
//! not root must be in a group that may read the whole system journal (`systemd-journal`,
//! `adm` or `wheel`; others see only their own entries, and journalctl says so only without
//! `--quiet`).
//!
//! The I/O edge of `journal` beside `reader`: it runs a process and reads `/etc/group`. What
//! the answers mean ([`problem`]) is decided apart, on plain values.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::config::JournaldConfig;

/// How long journalctl may take to open the journal before the probe gives up.
const TIMEOUT: Duration = Duration::from_secs(5);

/// The groups whose members read the whole system journal (`man journalctl`).
const JOURNAL_GROUPS: [&str; 3] = ["systemd-journal", "adm", "wheel"];

/// What the probe saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// journalctl's failure (it could not start, or it exited unsuccessfully), if any.
    pub failure: Option<String>,
    /// The input reads the system journal (no `directory`).
    pub system_journal: bool,
    /// The process runs as root.
    pub root: bool,
    /// The process is in one of the journal-reading groups.
    pub in_journal_group: bool,
}

/// Why `journalctl` (the program `program`) cannot read the journal of `journald` now, or
/// `None` when it can.
pub fn probe(program: &Path, journald: &JournaldConfig) -> Option<String> {
    let seen = Seen {
        failure: run(program, journald),
        system_journal: journald.directory.is_none(),
        root: rustix::process::geteuid().is_root(),
        in_journal_group: in_journal_group(),
    };
    problem(&seen)
}

/// What is wrong, given what the probe saw.
pub fn problem(seen: &Seen) -> Option<String> {
    if let Some(failure) = &seen.failure {
        return Some(failure.clone());
    }
    if seen.system_journal && !seen.root && !seen.in_journal_group {
        return Some(format!(
            "this user is in none of the groups {} and sees only its own journal entries",
            JOURNAL_GROUPS.join(", ")
        ));
    }
    None
}

/// Runs journalctl once; its failure, if any.
fn run(program: &Path, journald: &JournaldConfig) -> Option<String> {
    let mut command = Command::new(program);
    command.args(["--lines=0", "--quiet", "--no-pager"]);
    if let Some(directory) = &journald.directory {
        let mut arg = std::ffi::OsString::from("--directory=");
        arg.push(directory);
        command.arg(arg);
    }
    let mut child = match command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(err) => return Some(format!("cannot run {}: {err}", program.display())),
    };
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return None,
            Ok(Some(status)) => {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    // What it said is only a detail of the failure.
                    let _detail = std::io::Read::read_to_string(&mut pipe, &mut stderr);
                }
                let stderr = stderr.trim().replace('\n', "; ");
                return Some(if stderr.is_empty() {
                    format!("journalctl failed ({status})")
                } else {
                    format!("journalctl failed ({status}): {stderr}")
                });
            }
            Ok(None) if started.elapsed() < TIMEOUT => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(None) => {
                // Already exited between the two calls, or killed now: either way it is gone.
                let _gone = child.kill();
                let _reaped = child.wait();
                return Some(format!(
                    "journalctl did not open the journal within {}",
                    humantime::format_duration(TIMEOUT)
                ));
            }
            Err(err) => return Some(format!("cannot wait for journalctl: {err}")),
        }
    }
}

/// True when the process's groups include one of [`JOURNAL_GROUPS`] (by `/etc/group`).
fn in_journal_group() -> bool {
    let Ok(groups) = std::fs::read_to_string("/etc/group") else {
        return false;
    };
    let mut mine = rustix::process::getgroups().unwrap_or_default();
    mine.push(rustix::process::getegid());
    groups.lines().any(|line| {
        let mut parts = line.split(':');
        let (Some(name), _, Some(gid)) = (parts.next(), parts.next(), parts.next()) else {
            return false;
        };
        JOURNAL_GROUPS.contains(&name)
            && gid
                .parse::<u32>()
                .is_ok_and(|gid| mine.iter().any(|g| g.as_raw() == gid))
    })
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use crate::config::JournaldConfig;
    use crate::journal::probe::{Seen, probe, problem};

    fn seen(failure: Option<&str>, system: bool, root: bool, group: bool) -> Seen {
        Seen {
            failure: failure.map(str::to_string),
            system_journal: system,
            root,
            in_journal_group: group,
        }
    }

    #[test]
    fn failures_and_missing_groups_are_problems() {
        assert_eq!(problem(&seen(None, true, true, false)), None);
        assert_eq!(problem(&seen(None, true, false, true)), None);
        assert_eq!(problem(&seen(None, false, false, false)), None, "a folder");
        assert!(
            problem(&seen(None, true, false, false))
                .unwrap()
                .contains("systemd-journal, adm, wheel")
        );
        assert_eq!(
            problem(&seen(Some("cannot run journalctl: x"), false, true, true)).as_deref(),
            Some("cannot run journalctl: x")
        );
    }

    #[test]
    fn a_missing_program_or_folder_is_said() {
        let journald = JournaldConfig {
            units: vec![],
            identifiers: vec![],
            priority: None,
            directory: Some(PathBuf::from("/nonexistent/journal")),
        };
        let missing = probe(Path::new("/nonexistent/journalctl"), &journald).unwrap();
        assert!(
            missing.starts_with("cannot run /nonexistent/journalctl"),
            "{missing}"
        );
        let folder = probe(Path::new("journalctl"), &journald).unwrap();
        assert!(folder.contains("/nonexistent/journal"), "{folder}");
        let tmp = tempfile::tempdir().unwrap();
        let empty = JournaldConfig {
            directory: Some(tmp.path().to_path_buf()),
            ..journald
        };
        assert_eq!(probe(Path::new("journalctl"), &empty), None);
    }
}
