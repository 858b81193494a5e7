//! The daemon's side of answering back (issue 16): it starts the [`Chat`] link `chat:` asks for
//! (again after a reload that changes it), carries out the commands the link passes on in the
//! main loop, and shows the link's state in `/healthz`, `STATUS=` and `status`.
//!
//! `chat` parses and permits; this module knows the daemon: what `status` shows, which rule
//! matched last and how it renders (`test`). The silence and acknowledgement commands act on
//! the alert kinds' state (`daemon::alerts::commands`). What each reply says is
//! `chat::words`'.

use std::collections::HashMap;
use std::time::{Instant, SystemTime};

use tokio::sync::{mpsc, watch};

use crate::chat::words::{self, Clock, Held, RobotView, StatusView, TestView};
use crate::chat::{
    Chat, ChatRequest, ChatTiming, Command, LinkState, LinkStatus, REQUEST_CAPACITY,
};
use crate::config::ChatConfig;
use crate::daemon::Daemon;
use crate::dispatch::queue::Hold;
use crate::event::LogLine;

/// What `/healthz` and the health notes file the link's state under.
const HEALTH: &str = "chat";

/// The link, the channel its commands arrive on, and what `test` needs.
pub(crate) struct ChatSide {
    /// The running link and the configuration it was started with.
    link: Option<(Chat, ChatConfig)>,
    status: Option<watch::Receiver<LinkStatus>>,
    /// Kept so that a link started by a reload sends on the same channel.
    sender: mpsc::Sender<ChatRequest>,
    pub(crate) requests: mpsc::Receiver<ChatRequest>,
    /// The last line each rule matched (only while a link runs: `test` renders it).
    last_matches: HashMap<String, LogLine>,
}

impl ChatSide {
    pub(crate) fn new() -> ChatSide {
        let (sender, requests) = mpsc::channel(REQUEST_CAPACITY);
        ChatSide {
            link: None,
            status: None,
            sender,
            requests,
            last_matches: HashMap::new(),
        }
    }

    /// True while a link runs: the intake then keeps each rule's last match.
    pub(crate) fn keeps_matches(&self) -> bool {
        self.link.is_some()
    }

    /// Records `line` as `rule`'s last match.
    pub(crate) fn matched(&mut self, rule: &str, line: &LogLine) {
        match self.last_matches.get_mut(rule) {
            Some(last) => last.clone_from(line),
            None => {
                self.last_matches.insert(rule.to_owned(), line.clone());
            }
        }
    }

    /// The link's state now, when one is configured.
    pub(crate) fn link_status(&self) -> Option<LinkStatus> {
        self.status.as_ref().map(|status| status.borrow().clone())
    }

    /// A request from the link; pending forever while no link runs.
    pub(crate) async fn next_request(&mut self) -> Option<ChatRequest> {
        self.requests.recv().await
    }
}

/// The link's state in a few words, for `STATUS=` (no age: it would change every second).
pub(crate) fn status_word(status: &LinkStatus) -> String {
    match (&status.state, &status.last_error) {
        (LinkState::Connected, _) => "chat connected".to_owned(),
        (LinkState::Listening, _) => "chat listening".to_owned(),
        (LinkState::Connecting, _) => "chat connecting".to_owned(),
        (LinkState::Retrying { .. }, Some(error)) => format!("chat down, retrying: {error}"),
        (LinkState::Retrying { .. }, None) => "chat reconnecting".to_owned(),
        (LinkState::Stopped, error) => format!(
            "chat stopped: {}",
            error.as_deref().unwrap_or("unknown error")
        ),
    }
}

impl Daemon {
    /// Stops the link (shutdown): no command is taken while the daemon stops.
    pub(crate) async fn stop_chat(&mut self) {
        if let Some((link, _)) = self.chat.link.take() {
            link.stop().await;
        }
        self.chat.status = None;
    }

    /// Starts, restarts or stops the link so that it runs as the configuration says. At start
    /// a link that cannot start is an error (`dingtail run` fails); after a reload it is logged
    /// and shown in `/healthz`, and the rest of the daemon goes on.
    pub(crate) async fn sync_chat(&mut self) -> Result<(), crate::chat::ChatError> {
        let wanted = self.pipeline.config.chat.clone();
        if self.chat.link.as_ref().map(|(_, config)| config) == wanted.as_ref() {
            return Ok(());
        }
        if self.chat.link.is_some() {
            tracing::info!("chat: stopping the link (its configuration changed)");
            self.stop_chat().await;
        }
        self.chat.last_matches.clear();
        self.health.set_note(HEALTH, None);
        let Some(config) = wanted else {
            return Ok(());
        };
        let link = Chat::start(
            &config,
            self.chat.sender.clone(),
            self.metrics.clone(),
            ChatTiming::DINGTALK,
        )
        .await?;
        match config.mode {
            crate::config::ChatMode::Stream => {
                tracing::info!(
                    "chat: connecting to DingTalk's Stream gateway at {}",
                    config.api_base
                );
            }
            crate::config::ChatMode::Http { listen } => {
                let bound = link.local_addr().unwrap_or(listen);
                tracing::info!(
                    "chat: taking DingTalk callbacks on http://{bound}/dingtalk/callback"
                );
            }
        }
        self.chat.status = Some(link.status());
        self.chat.link = Some((link, config));
        Ok(())
    }

    /// [`Daemon::sync_chat`] after a reload: a failure is logged and shown, not fatal.
    pub(crate) async fn sync_chat_after_reload(&mut self) {
        if let Err(err) = self.sync_chat().await {
            tracing::error!("chat: cannot start the link with the reloaded configuration: {err}");
            self.health
                .set_problem(HEALTH, Some(format!("cannot start: {err}")));
        } else {
            self.health.set_problem(HEALTH, None);
        }
    }

    /// Shows the link's state in `/healthz` (a note; a link that stopped for good is a
    /// problem: only a restart or reload brings it back).
    pub(crate) fn publish_chat_health(&self) {
        let Some(status) = self.chat.link_status() else {
            return;
        };
        let summary = status.summary(SystemTime::now());
        let summary = summary.strip_prefix("chat ").unwrap_or(&summary).to_owned();
        if status.state == LinkState::Stopped {
            self.health.set_problem(HEALTH, Some(summary));
            self.health.set_note(HEALTH, None);
        } else {
            self.health.set_note(HEALTH, Some(summary));
        }
    }

    /// Carries out one command from the chat and answers it.
    pub(crate) fn on_chat(&mut self, request: ChatRequest) {
        let lang = self.pipeline.config.language;
        let clock = Clock {
            zone: self.pipeline.config.timezone.clone(),
            now: SystemTime::now(),
        };
        let answer = match &request.command {
            Command::Status => words::status(lang, &clock, &self.status_view()),
            Command::Test { rule } => self.test_reply(rule, &clock),
            Command::Help => crate::chat::command::help_text(),
            Command::Mute(_) | Command::Unmute { .. } | Command::Mutes | Command::Ack { .. } => {
                self.silence_command(&request, &clock)
            }
        };
        request.answer(answer);
    }

    /// What `status` shows.
    fn status_view(&mut self) -> StatusView {
        let now = Instant::now();
        let wall = SystemTime::now();
        let robots = self
            .dispatcher
            .standings(now)
            .into_iter()
            .map(|(name, standing)| RobotView {
                name,
                pending: standing.pending,
                budget_left: standing.budget_left,
                per_minute: standing.per_minute,
                held: standing.held.map(|hold| match hold {
                    Hold::Until(until) => Held::Until(wall + until.saturating_duration_since(now)),
                    Hold::Rejected => Held::Rejected,
                }),
            })
            .collect();
        let mut problems = self.health.problems();
        if let Some(reload) = &self.reload_status {
            problems.push(reload.clone());
        }
        StatusView {
            host: self.pipeline.config.host.clone(),
            files: self.n_files,
            rules: self.n_rules(),
            pending: self.dispatcher.n_undelivered(),
            last_delivery: self.last_delivery,
            robots,
            silences: self.alerts.silence_views(wall),
            incidents: self.alerts.incident_views(),
            problems,
        }
    }

    /// `test RULE`: the rule's last match, rendered again with the rules as they are now.
    fn test_reply(&mut self, rule: &str, clock: &Clock) -> String {
        let lang = self.pipeline.config.language;
        if !self.pipeline.has_rule(rule) {
            return words::unknown_rule(lang, rule);
        }
        let Some(line) = self.chat.last_matches.get(rule) else {
            return words::no_match_yet(lang, rule);
        };
        let mut rendered = None;
        self.pipeline.route(line, &mut Vec::new(), |routed| {
            if routed.rule.name() == rule {
                rendered = Some(routed.render_plain());
            }
        });
        match rendered {
            Some(rendered) => words::test(
                lang,
                clock,
                &TestView {
                    rule: rule.to_owned(),
                    at: line.time(),
                    source: line.path.display().to_string(),
                    title: rendered.title,
                    text: rendered.text,
                },
            ),
            // A reload changed the rule since: its last match is not one any more.
            None => words::no_match_yet(lang, rule),
        }
    }
}
