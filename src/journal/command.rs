//! The `journalctl` command line of a journald input: which entries, from where. Pure, so the
//! choices below are tested without running anything.
//!
//! `journalctl --follow --all --show-cursor --output=json --merge --no-pager --quiet` then
//! `--directory=D`, `--unit=U`…, `--identifier=I`…, `--priority=P`, and where to start:
//! - after a stored cursor: `--after-cursor=C --no-tail`;
//! - `start_at: beginning`: `--no-tail` (the oldest entry the journal holds);
//! - `start_at: end`: `--lines=0` (only what is appended from now on);
//! - a restart that has no cursor yet (the first journalctl died before any entry):
//!   `--since=@SECONDS` of the first start, so that nothing appended meanwhile is missed.
//!
//! Two flags are there for what journalctl does on its own in follow mode (systemd 252,
//! `journalctl.c`): `--follow` implies `--lines=10` unless told otherwise, which would also cut
//! what follows a cursor to ten entries (`--no-tail` lifts it); and `--follow` without `--merge`
//! implies `--boot`, so after a reboot a cursor from the previous boot would skip the rest of
//! that boot (`--merge` lifts it; it also reads journals of other machines kept in the journal
//! folder, such as `systemd-journal-remote`'s, whose entries carry their own `_HOSTNAME`).

use std::ffi::OsString;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::JournaldConfig;

/// Where journalctl starts reading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resume {
    /// Just after the entry with this cursor.
    AfterCursor(String),
    /// At the oldest entry.
    Beginning,
    /// At the end: only entries appended from now on.
    End,
    /// At the first entry received at or after this time.
    Since(SystemTime),
}

/// The arguments (after the program name) that follow `journald` from `resume`.
pub fn args(journald: &JournaldConfig, resume: &Resume) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "--follow",
        "--all",
        "--show-cursor",
        "--output=json",
        "--merge",
        "--no-pager",
        "--quiet",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    if let Some(directory) = &journald.directory {
        let mut arg = OsString::from("--directory=");
        arg.push(directory);
        args.push(arg);
    }
    for unit in &journald.units {
        args.push(format!("--unit={unit}").into());
    }
    for identifier in &journald.identifiers {
        args.push(format!("--identifier={identifier}").into());
    }
    if let Some(priority) = &journald.priority {
        args.push(format!("--priority={priority}").into());
    }
    match resume {
        Resume::AfterCursor(cursor) => {
            args.push(format!("--after-cursor={cursor}").into());
            args.push("--no-tail".into());
        }
        Resume::Beginning => args.push("--no-tail".into()),
        Resume::End => args.push("--lines=0".into()),
        Resume::Since(time) => {
            let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
            args.push(format!("--since=@{}.{:06}", since.as_secs(), since.subsec_micros()).into());
            args.push("--no-tail".into());
        }
    }
    args
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::path::PathBuf;
    use std::time::{Duration, UNIX_EPOCH};

    use crate::config::JournaldConfig;
    use crate::journal::command::{Resume, args};

    fn strings(args: Vec<OsString>) -> Vec<String> {
        args.into_iter()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect()
    }

    const FIXED: [&str; 7] = [
        "--follow",
        "--all",
        "--show-cursor",
        "--output=json",
        "--merge",
        "--no-pager",
        "--quiet",
    ];

    #[test]
    fn filters_and_each_start() {
        let journald = JournaldConfig {
            units: vec!["ssh".into(), "nginx.service".into()],
            identifiers: vec!["sshd".into()],
            priority: Some("err".into()),
            directory: Some(PathBuf::from("/srv/journal")),
        };
        let filters = [
            "--directory=/srv/journal",
            "--unit=ssh",
            "--unit=nginx.service",
            "--identifier=sshd",
            "--priority=err",
        ];
        let expect = |tail: &[&str]| -> Vec<String> {
            FIXED
                .iter()
                .chain(&filters)
                .chain(tail)
                .map(|s| (*s).to_string())
                .collect()
        };
        assert_eq!(
            strings(args(&journald, &Resume::AfterCursor("s=1;i=2".into()))),
            expect(&["--after-cursor=s=1;i=2", "--no-tail"])
        );
        assert_eq!(
            strings(args(&journald, &Resume::Beginning)),
            expect(&["--no-tail"])
        );
        assert_eq!(
            strings(args(&journald, &Resume::End)),
            expect(&["--lines=0"])
        );
        let since = UNIX_EPOCH + Duration::from_micros(1_700_000_000_000_042);
        assert_eq!(
            strings(args(&journald, &Resume::Since(since))),
            expect(&["--since=@1700000000.000042", "--no-tail"])
        );
    }

    #[test]
    fn no_filters_reads_the_whole_system_journal() {
        let journald = JournaldConfig {
            units: vec![],
            identifiers: vec![],
            priority: None,
            directory: None,
        };
        let mut expect: Vec<String> = FIXED.iter().map(|s| (*s).to_string()).collect();
        expect.push("--lines=0".into());
        assert_eq!(strings(args(&journald, &Resume::End)), expect);
    }
}
