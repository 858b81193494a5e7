//! The fast integration binary: it runs the real `dingtail` binary against real files and the
//! DingTalk stand-in on 127.0.0.1. Only `mod` lines here, each saying what belongs in it.

// Test code may fail loudly: a panic with context is how a test reports a broken expectation.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr
)]

// Test harness and the DingTalk stand-in shared by every test binary.
mod support;

// `dingtail send` against the DingTalk stand-in, and the stand-in's own judging (issue 2).
mod send;

// `dingtail run` as a service: systemd notifications, reloads, metrics and the quick start
// (issue 6).
mod daemon;

// `dingtail tail` against real files: discovery, deletion, bad input, permissions, symlinks.
mod tail;

// `dingtail check`: summaries, and every config/rule problem with file:line:column (issue 4);
// positions, whole templates, `${VAR}` in rules, exit statuses (issue 12).
mod check;
// Compressed and binary files are not followed; `check` and `/metrics` say so (issue 19).
mod not_text;
// `check` warnings and `run`'s, and `dingtail_input_files` (issue 12).
mod survey;
// `send --robot` and `check --ping` under the robot's recorded budget; DingTalk's errmsg (issue 12).
mod robot;
// The shipped rules against their sample logs, through `dingtail test` (issue 4).
mod shipped_rules;
// The journald input's reader against real journal files written by systemd-journal-remote
// (issue 14).
mod journal;
// The journald input through the daemon: cursor with the matches, kill -9, reload, a missing
// journalctl in /healthz and check, `journalctl -o json | dingtail test -` (issue 14).
mod journal_daemon;
// Inputs where the logs really are (issue 14): CRI across a kubelet rotation, docker chunks,
// JSON with nested and odd fields, GBK, through the daemon and the stand-in and `dingtail test`.
mod inputs;
// `dingtail test`: stdin, --rules/--rule/--input, multiline joining, unmatched lines, big files.
mod test_cmd;
// `dingtail test` and `dingtail run` count the same on every log (issue 10).
mod agreement;
// Messages an ops team can trust and read (issue 11): inert log text, every msgtype, mentions
// from data, event times in the configured zone, exact top values over the whole batch.
mod messages;
// Answering back from the group through an app robot (issue 16): Stream mode against the gateway
// stand-in, HTTP mode with signed callbacks, through the library API.
mod chat;
// Answering back through `dingtail run`: status and test from the group in Stream mode, signed
// HTTP callbacks, reloads that start and stop the link (issue 16).
mod chat_daemon;
// What the packages ship, as far as the binary decides it: --version with its commit, man
// pages and completions for every subcommand, the shipped config (issue 17).
mod packaging;
// The benchmark tooling under benches/ (generator, pattern converter, run.sh) in a tiny mode
// (issue 7).
mod benches_smoke;
// Alert kinds end to end: thresholds per key, folded repeats, resolved notices, absence, the
// catch-up after a restart, critical first, silences from the shell, kill -9 (issue 13).
mod kinds;
// The cluster's Redis scripts against a real redis-server, through the library API (issue 15).
mod cluster_redis;
// `scope: cluster` thresholds: the counting script against a real redis-server (issue 15).
mod cluster_threshold;
// `scope: cluster` thresholds end to end: two daemons below the count alone fire one alert with
// the cluster's count, resolved once; `check` refuses the key without `cluster:` (issue 15).
mod cluster_scope;
// Silences shared through Redis: a mute on one host holds on the others, unmute anywhere ends
// it, and what every host muted is reported once with the total (issues 15 and 16).
mod cluster_silences;
