//! `Answerer`: the part both modes share once a robot message is decoded. It applies the pure
//! [`decide`], hands a forwarded command to the daemon as a [`ChatRequest`] and waits for the
//! reply, and posts replies through the message's session webhook. This is I/O (a channel, a
//! timer, HTTP), so it lives apart from the deciding code.
//!
//! Every message leaves one log line: an accepted command at `info` (an audit trail of who
//! changed what), a refusal at `warn`. Attacker-controlled text (the message, the nick) is logged
//! with `{:?}` so that it cannot forge lines. The channel is never awaited: a full channel is a
//! "busy" reply, so a stuck daemon cannot stall the Stream connection.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot};

use crate::chat::command::parse;
use crate::chat::decision::{Decision, LocalAnswer, decide};
use crate::chat::recent::RecentIds;
use crate::chat::reply::reply_message;
use crate::chat::request::ChatRequest;
use crate::chat::robot_message::{RobotMessage, WebhookRefusal};
use crate::config::ChatAllow;
use crate::dingtalk::{Client, Robot};
use crate::metrics::{ChatCommandLabel, Metrics};

/// Why a reply could not be posted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// Refused locally: no session webhook, or it expired.
    #[error(transparent)]
    Webhook(#[from] WebhookRefusal),
    /// DingTalk (or the network) did not take it.
    #[error("the reply was not delivered: {0}")]
    NotDelivered(String),
}

/// Answers robot messages; cheap to clone (one per connection or request).
#[derive(Clone, Debug)]
pub struct Answerer {
    allow: Arc<ChatAllow>,
    requests: mpsc::Sender<ChatRequest>,
    client: Client,
    metrics: Arc<Metrics>,
    reply_deadline: Duration,
    /// The messages answered lately: one delivered twice is carried out once.
    recent: Arc<Mutex<RecentIds>>,
}

impl Answerer {
    /// An answerer that forwards commands on `requests` and waits `reply_deadline` for each
    /// reply; `client` posts replies to session webhooks.
    pub fn new(
        allow: ChatAllow,
        requests: mpsc::Sender<ChatRequest>,
        client: Client,
        metrics: Arc<Metrics>,
        reply_deadline: Duration,
    ) -> Answerer {
        Answerer {
            allow: Arc::new(allow),
            requests,
            client,
            metrics,
            reply_deadline,
            recent: Arc::new(Mutex::new(RecentIds::default())),
        }
    }

    /// False for a message answered lately (DingTalk delivered it again): it is logged and
    /// counted (`outcome="repeat"`), and gets no answer.
    fn is_new(&self, message: &RobotMessage) -> bool {
        let new = self.recent.lock().map_or(true, |mut recent| {
            recent.first_time(&message.msg_id, SystemTime::now())
        });
        if !new {
            tracing::info!(msg_id = %message.msg_id, "chat: a message delivered again was answered already");
            let command = parse(&message.text).map_or("none", |command| command.name());
            self.count(command, "repeat");
        }
        new
    }

    /// The text to answer `message` with: decided here (refusal, usage, help, busy) or by the
    /// daemon; `None` for a message answered already (DingTalk delivered it again).
    pub async fn answer(&self, message: &RobotMessage) -> Option<String> {
        if !self.is_new(message) {
            return None;
        }
        Some(self.answer_new(message).await)
    }

    async fn answer_new(&self, message: &RobotMessage) -> String {
        let now = SystemTime::now();
        match decide(&self.allow, message) {
            Decision::Reply { text, why } => {
                let command = parse(&message.text).map_or("none", |command| command.name());
                if let LocalAnswer::Denied(denial) = why {
                    tracing::warn!(
                        nick = ?message.author.nick,
                        staff_id = ?message.author.staff_id,
                        conversation = ?message.conversation.id,
                        text = ?message.text,
                        "chat: refused a command: {}",
                        denial.reason()
                    );
                } else {
                    tracing::debug!(text = ?message.text, outcome = why.label(), "chat: answered here");
                }
                self.count(command, why.label());
                text
            }
            Decision::Forward(command) => {
                let name = command.name();
                tracing::info!(
                    nick = ?message.author.nick,
                    staff_id = ?message.author.staff_id,
                    conversation = ?message.conversation.id,
                    text = ?message.text,
                    "chat: command `{name}`"
                );
                let (reply, answer) = oneshot::channel();
                let request = ChatRequest {
                    command,
                    author: message.author.clone(),
                    conversation: message.conversation.clone(),
                    msg_id: message.msg_id.clone(),
                    received_at: now,
                    reply,
                };
                let (text, outcome) = match self.requests.try_send(request) {
                    Err(mpsc::error::TrySendError::Full(_)) => (
                        "dingtail is busy; please try again in a minute.".to_owned(),
                        "busy",
                    ),
                    Err(mpsc::error::TrySendError::Closed(_)) => (
                        "dingtail is not taking commands right now.".to_owned(),
                        "busy",
                    ),
                    Ok(()) => match tokio::time::timeout(self.reply_deadline, answer).await {
                        Ok(Ok(text)) => (text, "answered"),
                        Ok(Err(_)) => (
                            format!("dingtail could not carry out `{name}`."),
                            "unanswered",
                        ),
                        Err(_) => (
                            format!("dingtail did not answer `{name}` in time."),
                            "unanswered",
                        ),
                    },
                };
                if outcome != "answered" {
                    tracing::warn!(msg_id = %message.msg_id, "chat: `{name}` was not answered: {text}");
                }
                self.count(name, outcome);
                text
            }
        }
    }

    /// Posts `text` to the conversation through `message`'s session webhook, @-mentioning the
    /// sender.
    ///
    /// # Errors
    /// [`ReplyError::Webhook`] without sending when the webhook is missing or expired;
    /// [`ReplyError::NotDelivered`] when DingTalk does not take it.
    pub async fn post(&self, message: &RobotMessage, text: &str) -> Result<(), ReplyError> {
        let webhook = message
            .session_webhook
            .as_ref()
            .ok_or(WebhookRefusal::Missing)?;
        let url = webhook.target(SystemTime::now())?;
        let robot = Robot {
            webhook: url.clone(),
            secret: None,
            keywords: Vec::new(),
        };
        let outcome = self
            .client
            .send_once(&robot, &reply_message(text, &message.author))
            .await;
        if matches!(outcome, crate::dingtalk::Outcome::Delivered) {
            Ok(())
        } else {
            Err(ReplyError::NotDelivered(outcome.to_string()))
        }
    }

    /// Answers `message` and posts the answer through its session webhook (Stream mode, and
    /// HTTP mode when the daemon was too slow for a synchronous answer). Failures are logged.
    pub async fn answer_and_post(&self, message: &RobotMessage) {
        if let Some(text) = self.answer(message).await {
            self.post_logged(message, &text).await;
        }
    }

    /// [`Answerer::post`], logging a failure.
    pub async fn post_logged(&self, message: &RobotMessage, text: &str) {
        if let Err(err) = self.post(message, text).await {
            tracing::warn!(msg_id = %message.msg_id, "chat: cannot reply: {err}");
        }
    }

    fn count(&self, command: &str, outcome: &str) {
        self.metrics
            .chat_commands
            .get_or_create(&ChatCommandLabel {
                command: command.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }
}
