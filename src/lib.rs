//! dingtail watches log files and pushes the lines that matter into DingTalk group chats.
//!
//! A line's journey: `tail` reads it from a file → `rules` decides which rules it matches →
//! `render` turns matches into message text → `dispatch` batches them per robot under the rate
//! limit → `dingtalk` signs and delivers them. `state` keeps checkpoints and undelivered events
//! durable; `daemon` wires it all up; `cli` is the command line. See ARCHITECTURE.md.

pub mod alert;
pub mod backoff;
pub mod batch;
pub mod chat;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod daemon;
pub mod dingtalk;
pub mod dispatch;
pub mod event;
pub mod fdlimit;
pub mod fields;
pub mod intake;
pub mod journal;
pub mod lang;
pub mod metrics;
pub mod noun;
pub mod pipeline;
pub mod render;
pub mod rules;
pub mod secret;
pub mod state;
pub mod survey;
pub mod tail;
pub mod version;
