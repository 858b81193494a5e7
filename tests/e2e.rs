//! The slow end-to-end binary: floods, kill -9, logrotate, the real 60 s rate window.

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

// `dingtail run` against the DingTalk stand-in: floods, kill -9, SIGTERM, outages, throttling and
// the real 60 s window (issue 5).
mod delivery;

// `dingtail tail` under the real logrotate (create and copytruncate) while a writer floods.
mod tail_rotation;

// The tailer and the state store, stopped at random points during writing and rotation.
mod tail_restart;

// kill -9 while a file is written steadily, with the checkpoints of lines that matched nothing
// committed lazily (issue 18).
mod steady;

// Never silently stop alerting (issue 19): a failing or damaged state store, answers slower than
// the timeout, an outage's end.
mod degraded;

// File identity by content (issue 19): real logrotate in both modes with narrow and wide globs,
// the daemon up and down; same-banner rewrites while down or stopped.
mod tail_identity;

// More files than descriptors under a 1,024 limit (issue 19).
mod descriptors;
// Many hosts, one robot (issue 15): several daemons through a real redis-server — floods,
// kill -9 of the sender, Redis stopped and restarted, a skewed clock.
mod cluster;
