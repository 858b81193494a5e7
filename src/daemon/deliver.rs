//! Delivery of one batch to one robot. It renders the batch for the robot (a lone match on its
//! own, as its rule's kind; several as a summary, as the robot's kind), composes the DingTalk
//! message with the merged @-mentions and the notes about its delivery (a possible repeat,
//! degraded state), and either posts it (one signed attempt; the robot's queue owns retries and
//! pacing) or, for the dry-run robots, prints it: `stdout` the exact JSON body that would have
//! been posted, one per line, for scripts; `console` the message as a person would read it
//! (`console`).
//!
//! The outcome comes back as a value; nothing here decides when to try again.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use crate::batch::Batch;
use crate::config::{RobotConfig, Webhook};
use crate::daemon::console;
use crate::dingtalk::draft::Note;
use crate::dingtalk::{self, Client, Message, Outcome, Rejection, Robot};
use crate::pipeline::Pipeline;

/// Where a robot's messages go, resolved from its config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// Print the JSON body to stdout (dry run, for scripts).
    Stdout {
        /// Keyword security is applied in a dry run too, so the output is exactly what would go.
        keywords: Vec<String>,
    },
    /// Print the message for a person to read (dry run).
    Console {
        /// As for `Stdout`.
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
        match (Robot::from_config(robot), &robot.webhook) {
            (Some(dingtalk), _) => Destination::DingTalk {
                robot: dingtalk,
                timeout: robot.timeout,
            },
            (None, Webhook::Console) => Destination::Console {
                keywords: robot.keywords.clone(),
            },
            (None, _) => Destination::Stdout {
                keywords: robot.keywords.clone(),
            },
        }
    }

    /// The keywords the robot's messages must carry.
    pub fn keywords(&self) -> &[String] {
        match self {
            Destination::DingTalk { robot, .. } => &robot.keywords,
            Destination::Stdout { keywords } | Destination::Console { keywords } => keywords,
        }
    }
}

/// The message `robot` (whose robot has `keywords`) gets for `batch`, with `notes` about its
/// delivery: the renderer's draft, composed as the kind it chose and fitted so that the whole
/// request is sent uncut (a summary drops samples and whole rules with an exact "and N more"
/// rather than being cut blindly by `dingtalk::body`).
pub fn message(
    pipeline: &Pipeline,
    batch: &Batch,
    robot: &str,
    keywords: &[String],
    notes: Vec<Note>,
) -> Message {
    let mut draft = pipeline.renderer.draft(batch, robot);
    draft.notes = notes;
    dingtalk::compose(&draft, draft.kind, keywords)
}

/// Sends `batch` to `robot` at `destination` once, with `notes` about its delivery, and says how
/// it went.
pub async fn deliver(
    client: &Client,
    pipeline: Arc<Pipeline>,
    robot: &str,
    destination: &Destination,
    batch: &Batch,
    notes: Vec<Note>,
) -> Outcome {
    let message = message(&pipeline, batch, robot, destination.keywords(), notes);
    match destination {
        Destination::DingTalk { robot, timeout } => {
            client.send_within(robot, &message, *timeout).await
        }
        Destination::Stdout { keywords } => match dingtalk::body(keywords, &message) {
            Ok(body) => print(&format!("{body}\n")),
            Err(err) => Outcome::Rejected {
                code: 0,
                reason: Rejection::Request(format!("cannot build the message body: {err}")),
                errmsg: String::new(),
            },
        },
        Destination::Console { .. } => {
            let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            print(&console::show(&message, colour))
        }
    }
}

#[allow(clippy::print_stdout)] // The dry-run robots' whole purpose is to print their messages.
fn print(text: &str) -> Outcome {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match write!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => Outcome::Delivered,
        Err(err) => Outcome::Transient {
            reason: format!("cannot write to stdout: {err}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use crate::batch::{Batch, Hit, Rendered};
    use crate::daemon::deliver::message;
    use crate::dingtalk::{self, Message};
    use crate::event::{Mentions, Severity};
    use crate::pipeline::Pipeline;

    #[test]
    fn a_huge_summary_is_shrunk_to_fit_whole_with_exact_counts() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("dingtail.yaml"),
            "language: en\nstate_dir: state\ninputs:\n  app:\n    paths: [\"/tmp/x.log\"]\nrobots:\n  ops:\n    webhook: stdout\n",
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
                    top: &[],
                    rule: &name,
                    severity: Severity::Warning,
                    line: &line,
                    file: "/var/log/app.log",
                    host: "h",
                    at: SystemTime::now(),
                    mentions: &mentions,
                };
                batch.add(hit, || Rendered::markdown(name.clone(), line.clone()));
                total += 1;
            }
        }
        let keywords = vec!["告警".to_string()];
        let draft = pipeline.renderer.draft(&batch, "ops");
        let unshrunk = Message::markdown(
            draft.title.clone(),
            dingtalk::draft::markdown(&draft, dingtalk::draft::DEFAULT_MAX_TEXT_BYTES),
            Default::default(),
        );
        assert!(
            !dingtalk::fits_uncut(&keywords, &unshrunk),
            "the test needs a summary that does not fit at the default budget"
        );
        let message = message(&pipeline, &batch, "ops", &keywords, Vec::new());
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
