//! `ChatRequest`: the seam between `chat` and the daemon. `chat` turns each permitted,
//! well-formed message into one request on a bounded `tokio::sync::mpsc` channel that the daemon
//! drains in its main loop; the daemon carries the command out and answers through the request's
//! oneshot `reply`.
//!
//! The contract, for the daemon's side:
//! - **What arrives**: only commands the sender may give (`chat.allow` was checked) and that
//!   parsed; never [`Command::Help`] (answered by `chat`). The daemon still validates what only it
//!   knows (a rule that does not exist, a silence id that is unknown) and says so in the reply.
//! - **The reply** is plain text; `chat` sends it as a text message that @-mentions the sender.
//!   It should name who did what, from [`Author::nick`] (`张三 muted nginx-5xx for 1h until
//!   14:05, id 7f3a`), because the group sees it. Keep it short: DingTalk's limit is 20,000 bytes
//!   and longer text is cut.
//! - **Time**: `received_at` is when `chat` got the message; durations count from when the daemon
//!   applies them.
//! - **Deadline**: `chat` waits `ChatTiming::reply_deadline` (60 s in production) for the reply;
//!   after that it tells the sender there was no answer, and a late reply is dropped
//!   ([`ChatRequest::answer`] ignores that). Dropping `reply` without answering tells the sender
//!   the command could not be carried out.
//! - **Back-pressure**: `chat` never blocks on the channel: when it is full the sender is told
//!   dingtail is busy. A capacity of [`REQUEST_CAPACITY`] is plenty for people typing.

use std::time::SystemTime;

use tokio::sync::oneshot;

use crate::chat::command::Command;
use crate::chat::robot_message::{Author, Conversation};

/// The channel capacity the daemon should create.
pub const REQUEST_CAPACITY: usize = 16;

/// One command from the chat, for the daemon to carry out.
#[derive(Debug)]
pub struct ChatRequest {
    /// What to do (never `Help`).
    pub command: Command,
    /// Who asked (name them in the reply; record `nick` as a silence's author).
    pub author: Author,
    /// Where they asked.
    pub conversation: Conversation,
    /// DingTalk's `msgId` of the message (for logs).
    pub msg_id: String,
    /// When `chat` received it.
    pub received_at: SystemTime,
    /// Where the reply text goes.
    pub reply: oneshot::Sender<String>,
}

impl ChatRequest {
    /// Sends the reply; if `chat` stopped waiting, the text is dropped.
    pub fn answer(self, text: impl Into<String>) {
        if self.reply.send(text.into()).is_err() {
            tracing::debug!(msg_id = %self.msg_id, "a chat reply came after chat stopped waiting");
        }
    }
}
