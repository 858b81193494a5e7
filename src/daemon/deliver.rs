//! `Courier`: carries one batch to one robot. It renders the batch (a lone match on its own, several
//! as a summary), wraps it in a DingTalk markdown message with the merged @-mentions, and either
//! posts it (one signed attempt; the robot's queue owns retries and pacing) or, for the `stdout`
//! dry-run robot, prints the exact JSON body that would have been posted.
//!
//! The outcome comes back as a value; nothing here decides when to try again.

use std::io::Write;
use std::sync::Arc;

use crate::config::{RobotConfig, Webhook};
use crate::dingtalk::{self, At, Client, Message, Outcome, Robot};
use crate::dispatch::batcher::Batch;
use crate::dispatch::queue::Verdict;
use crate::pipeline::Pipeline;

/// The largest markdown text a summary may take. DingTalk's limit is 20,000 bytes for the whole
/// body; the rest is left for the title, the JSON envelope, escaping, mentions and a keyword.
pub const MAX_TEXT_BYTES: usize = 15_000;

/// Where a robot's messages go, resolved from its config.
#[derive(Clone, Debug)]
pub enum Destination {
    /// Print the JSON body to stdout (dry run).
    Stdout {
        /// Keyword security is applied in a dry run too, so the output is exactly what would go.
        keywords: Vec<String>,
    },
    /// Post to DingTalk.
    DingTalk(Robot),
}

impl Destination {
    /// The destination of `robot`.
    pub fn of(robot: &RobotConfig) -> Destination {
        match &robot.webhook {
            Webhook::Stdout => Destination::Stdout {
                keywords: robot.keywords.clone(),
            },
            Webhook::Url(url) => Destination::DingTalk(Robot {
                webhook: url.clone(),
                secret: robot.secret.clone(),
                keywords: robot.keywords.clone(),
            }),
        }
    }
}

/// Renders a batch into the markdown message the robot gets.
pub fn message(pipeline: &Pipeline, batch: &Batch) -> Message {
    let rendered = pipeline.renderer.message(batch, MAX_TEXT_BYTES);
    let at = At {
        mobiles: rendered.mentions.mobiles,
        user_ids: rendered.mentions.user_ids,
        all: rendered.mentions.all,
    };
    Message::markdown(rendered.title, rendered.text, at)
}

/// Sends `batch` to `destination` once and says how it went.
pub async fn deliver(
    client: &Client,
    pipeline: Arc<Pipeline>,
    destination: &Destination,
    batch: &Batch,
) -> Outcome {
    let message = message(&pipeline, batch);
    match destination {
        Destination::DingTalk(robot) => client.send_once(robot, &message).await,
        Destination::Stdout { keywords } => match dingtalk::body(keywords, &message) {
            Ok(body) => print_line(&body),
            Err(err) => Outcome::Transient {
                reason: format!("cannot build the message body: {err}"),
            },
        },
    }
}

#[allow(clippy::print_stdout)] // The `stdout` robot's whole purpose is to print its messages.
fn print_line(body: &str) -> Outcome {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match writeln!(out, "{body}").and_then(|()| out.flush()) {
        Ok(()) => Outcome::Delivered,
        Err(err) => Outcome::Transient {
            reason: format!("cannot write to stdout: {err}"),
        },
    }
}

/// What the robot's queue needs to know of an outcome.
pub fn verdict(outcome: &Outcome) -> Verdict {
    match outcome {
        Outcome::Delivered => Verdict::Delivered,
        Outcome::Throttled { .. } => Verdict::Throttled,
        Outcome::Rejected { .. } => Verdict::Rejected,
        Outcome::Transient { .. } => Verdict::Transient,
    }
}
