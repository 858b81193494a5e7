//! `Exit`: the exit statuses of every subcommand, one table (issue 12). A status means the same
//! thing whichever command returns it, so a script or a systemd unit can branch on it:
//!
//! | status | meaning |
//! |---|---|
//! | 0 | success (`check`: valid, warnings included unless `--strict`) |
//! | 1 | invalid configuration or rules (every problem is printed with file:line:column); `check --strict`: warnings |
//! | 2 | usage error (bad flags, an unknown robot, input or rule name), or a file named on the command line (the config, the log) cannot be read |
//! | 3 | DingTalk rejected the message (`send`, `check --ping`; the errcode and errmsg are printed) |
//! | 4 | network failure after the retries (`send`, `check --ping`) |
//! | 5 | throttled: DingTalk answered 130101/410100, or the robot is blocked or has spent its minute budget and nothing was sent (`send`, `check --ping`) |
//! | 6 | the daemon (`run`) or the tailer (`tail`) could not start or stopped on a fault; `send --robot`, `check --ping`, `mute`, `unmute`, `mutes`: the state cannot be opened |
//!
//! clap's own usage errors exit 2 as well. The table is repeated in `dingtail --help` and the
//! README; `send`'s 0/2/3/4/5 (issue 2) are kept as they were.

use std::process::ExitCode;

/// The exit status of a subcommand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// 0: success.
    Ok = 0,
    /// 1: invalid configuration or rules (or `check --strict` with warnings).
    Invalid = 1,
    /// 2: usage error, or a file named on the command line cannot be read.
    Usage = 2,
    /// 3: DingTalk rejected the message.
    Rejected = 3,
    /// 4: network failure after the retries.
    Network = 4,
    /// 5: throttled, or refused because the robot is blocked or out of budget.
    Throttled = 5,
    /// 6: the daemon or the tailer could not start, or stopped on a fault.
    Failed = 6,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}

/// The table above as `--help` shows it.
pub const HELP: &str = "\
Exit status (the same for every command):
  0  success (check: valid; warnings are printed but pass unless --strict)
  1  invalid configuration or rules (every problem printed as file:line:column)
  2  usage error, or the config or log file named on the command line cannot be read
  3  DingTalk rejected the message (send, check --ping)
  4  network failure after the retries (send, check --ping)
  5  throttled, or not sent because the robot is blocked or has spent its minute budget
  6  the daemon (run) or the tailer (tail) could not start or stopped on a fault;
     send --robot and check --ping: the robot's rate history cannot be read;
     mute, unmute, mutes: the state database cannot be opened or written";
