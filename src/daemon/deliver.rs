//! Delivery of one batch to one robot. It renders the batch (a lone match on its own, several
//! as a summary), wraps it in a DingTalk markdown message with the merged @-mentions, and either
//! posts it (one signed attempt; the robot's queue owns retries and pacing) or, for the `stdout`
//! dry-run robot, prints the exact JSON body that would have been posted.
//!
//! The outcome comes back as a value; nothing here decides when to try again.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use crate::batch::Batch;
use crate::config::RobotConfig;
use crate::dingtalk::draft::Note;
use crate::dingtalk::{self, Client, Message, MsgType, Outcome, Rejection, Robot};
use crate::pipeline::Pipeline;

/// Where a robot's messages go, resolved from its config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// Print the JSON body to stdout (dry run).
    Stdout {
        /// Keyword security is applied in a dry run too, so the output is exactly what would go.
        keywords: Vec<String>,
    },
    /// Post to DingTalk, waiting at most `timeout` for the answer.
    DingTalk {
        /// The robot.
        robot: Robot,
        /// How long the request may wait for DingTalk's answer.
        timeout: Duration,
    },
}

impl Destination {
    /// The destination of `robot`.
    pub fn of(robot: &RobotConfig) -> Destination {
        match Robot::from_config(robot) {
            Some(dingtalk) => Destination::DingTalk {
                robot: dingtalk,
                timeout: robot.timeout,
            },
            None => Destination::Stdout {
                keywords: robot.keywords.clone(),
            },
        }
    }
}

/// The message a robot with `keywords` gets for `batch`: the renderer's draft, composed as
/// markdown and fitted so that the whole request is sent uncut (a summary drops samples and
/// whole rules with an exact "and N more" rather than being cut blindly by `dingtalk::body`).
pub fn message(
    pipeline: &Pipeline,
    batch: &Batch,
    keywords: &[String],
    notes: Vec<Note>,
) -> Message {
    let mut draft = pipeline.renderer.draft(batch);
    draft.notes = notes;
    dingtalk::compose(&draft, MsgType::Markdown, keywords)
}

/// Sends `batch` to `destination` once, with `notes` about its delivery, and says how it went.
pub async fn deliver(
    client: &Client,
    pipeline: Arc<Pipeline>,
    destination: &Destination,
    batch: &Batch,
    notes: Vec<Note>,
) -> Outcome {
    let keywords = match destination {
        Destination::DingTalk { robot, .. } => robot.keywords.as_slice(),
        Destination::Stdout { keywords } => keywords.as_slice(),
    };
    let message = message(&pipeline, batch, keywords, notes);
    match destination {
        Destination::DingTalk { robot, timeout } => {
            client.send_within(robot, &message, *timeout).await
        }
        Destination::Stdout { keywords } => match dingtalk::body(keywords, &message) {
            Ok(body) => print_line(&body),
            Err(err) => Outcome::Rejected {
                code: 0,
                reason: Rejection::Request(format!("cannot build the message body: {err}")),
                errmsg: String::new(),
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

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use crate::batch::{Batch, Hit};
    use crate::daemon::deliver::message;
    use crate::dingtalk::{self, Message};
    use crate::event::{Mentions, Severity};
    use crate::pipeline::Pipeline;

    #[test]
    fn a_huge_summary_is_shrunk_to_fit_whole_with_exact_counts() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("dingtail.yaml"),
            "state_dir: state\ninputs:\n  app:\n    paths: [\"/tmp/x.log\"]\nrobots:\n  ops:\n    webhook: stdout\n",
        )
        .unwrap();
        let pipeline = Pipeline::load(&dir.path().join("dingtail.yaml")).unwrap();
        let mentions = Mentions {
            mobiles: vec!["13800000000".into()],
            ..Mentions::default()
        };
        let mut batch = Batch::default();
        // Quotes and newlines double in JSON and in hard breaks: the worst case for the budget.
        let noisy = "\"q\" ".repeat(200);
        let mut total = 0;
        for rule in 0..60 {
            for sample in 0..8 {
                let line = format!("{rule}-{sample} {noisy}\n{noisy}");
                let name = format!("rule-{rule:02}");
                let hit = Hit {
                    rule: &name,
                    severity: Severity::Warning,
                    line: &line,
                    file: "/var/log/app.log",
                    host: "h",
                    at: SystemTime::now(),
                    mentions: &mentions,
                };
                batch.add(hit, || (name.clone(), line.clone()));
                total += 1;
            }
        }
        let keywords = vec!["告警".to_string()];
        let draft = pipeline.renderer.draft(&batch);
        let unshrunk = Message::markdown(
            draft.title.clone(),
            dingtalk::draft::markdown(&draft, dingtalk::draft::DEFAULT_MAX_TEXT_BYTES),
            Default::default(),
        );
        assert!(
            !dingtalk::fits_uncut(&keywords, &unshrunk),
            "the test needs a summary that does not fit at the default budget"
        );
        let message = message(&pipeline, &batch, &keywords, Vec::new());
        assert!(dingtalk::fits_uncut(&keywords, &message));
        let body = dingtalk::body(&keywords, &message).unwrap();
        assert!(body.len() <= dingtalk::MAX_BODY_BYTES);
        assert!(!body.contains("… truncated"), "shrunk, not cut");
        let Message::Markdown { title, text, .. } = &message else {
            panic!("a markdown message: {message:?}");
        };
        assert!(
            title.contains(&total.to_string()),
            "exact total in {title:?}"
        );
        assert!(text.contains("more"), "what did not fit is counted: {text}");
    }
}
