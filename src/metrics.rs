//! `Metrics`: everything dingtail lets Prometheus see, listed in one place (like Vector's
//! internal events). The daemon holds one `Metrics` behind an `Arc` and the HTTP endpoint encodes
//! it with `prometheus-client`; nothing here formats exposition text by hand.
//!
//! Labels are input, rule and robot names from the config, never webhook URLs or secrets.

use std::sync::atomic::AtomicI64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Label of per-input series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InputLabel {
    /// The input's name.
    pub input: String,
}

/// Label of per-rule series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabel {
    /// The rule's name.
    pub rule: String,
}

/// Label of per-robot series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RobotLabel {
    /// The robot's name.
    pub robot: String,
}

/// Labels of rejected messages: the robot and the kind of refusal (`Rejection::class`: `keywords`,
/// `signature`, `timestamp`, `ip_allowlist`, `token`, …), never text from the answer.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectionLabel {
    /// The robot's name.
    pub robot: String,
    /// The kind of refusal.
    pub reason: String,
}

/// Label of reload outcomes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// `success` or `failure`.
    pub outcome: String,
}

/// Labels of chat commands (issue 16).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChatCommandLabel {
    /// The command's English word, or `none` when the text was not a command.
    pub command: String,
    /// `answered`, `denied`, `invalid`, `help`, `busy`, `unanswered`, or `repeat` (a message
    /// DingTalk delivered again, answered the first time).
    pub outcome: String,
}

/// Label of refused chat callbacks.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// Why: for chat callbacks `missing`, `stale`, `bad_sign`, `too_large` or `malformed`; for
    /// skipped files `binary` or `compressed`.
    pub reason: String,
}

/// All series, registered once.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Lines (or joined events) read, per input.
    pub lines_read: Family<InputLabel, Counter>,
    /// Bytes read, per input.
    pub bytes_read: Family<InputLabel, Counter>,
    /// Lines cut at `max_line_bytes`, per input.
    pub lines_truncated: Family<InputLabel, Counter>,
    /// Events of an input with `timestamp:` whose time did not read (they keep their read time).
    pub timestamp_failures: Family<InputLabel, Counter>,
    /// Matches, per rule.
    pub matches: Family<RuleLabel, Counter>,
    /// Messages delivered (errcode 0), per robot.
    pub messages_sent: Family<RobotLabel, Counter>,
    /// Messages that failed (transient or rejected), per robot.
    pub messages_failed: Family<RobotLabel, Counter>,
    /// Throttle answers (130101/410100), per robot.
    pub messages_throttled: Family<RobotLabel, Counter>,
    /// Rejections, per robot and kind of refusal (issue 12).
    pub messages_rejected: Family<RejectionLabel, Counter>,
    /// Files each input's globs match now (issue 12); 0 is worth an alert of its own.
    pub input_files: Family<InputLabel, Gauge>,
    /// Matches given up because DingTalk refused even their counts (content rejections).
    pub events_dropped: Family<RobotLabel, Counter>,
    /// Matches not yet delivered, per robot.
    pub pending_events: Family<RobotLabel, Gauge>,
    /// Messages that may still be sent in the current window, per robot.
    pub rate_budget_left: Family<RobotLabel, Gauge>,
    /// Reloads, by outcome.
    pub reloads: Family<OutcomeLabel, Counter>,
    /// Files currently followed.
    pub files_watched: Gauge<i64, AtomicI64>,
    /// Of them, parked: closed to stay within the descriptor budget, reopened when they grow.
    pub files_parked: Gauge<i64, AtomicI64>,
    /// Files not followed because they are not text, by reason (`binary`, `compressed`).
    pub files_skipped: Family<ReasonLabel, Counter>,
    /// Descriptors the process has open.
    pub fds_open: Gauge<i64, AtomicI64>,
    /// The soft limit of open descriptors (after raising it to the hard limit at start).
    pub fds_limit: Gauge<i64, AtomicI64>,
    /// Unix time of the last delivery.
    pub last_delivery_seconds: Gauge<i64, AtomicI64>,
    /// 1 while chat commands can arrive (Stream connected or HTTP listening), else 0.
    pub chat_connected: Gauge<i64, AtomicI64>,
    /// Stream connections established.
    pub chat_connections: Counter,
    /// Chat messages, by command and outcome.
    pub chat_commands: Family<ChatCommandLabel, Counter>,
    /// HTTP callbacks refused before reaching a command, by reason.
    pub chat_callbacks_refused: Family<ReasonLabel, Counter>,
    /// Sends that got no answer (a timeout): they may have been delivered, and are sent again
    /// marked as possible repeats, per robot.
    pub messages_unanswered: Family<RobotLabel, Counter>,
    /// Commits of the state store that failed.
    pub state_errors: Counter,
    /// 1 while the state store cannot write (delivery from memory, degraded), else 0.
    pub state_degraded: Gauge<i64, AtomicI64>,
    /// Alert kinds and silences (issue 13).
    pub alerts: AlertMetrics,
    /// 1 on the daemon that holds the robot's sender lease (cluster), else 0.
    pub cluster_sender: Family<RobotLabel, Gauge>,
    /// Hosts seen in the cluster recently.
    pub cluster_hosts: Gauge<i64, AtomicI64>,
    /// Age of the oldest hand-off the sender has not delivered, per robot (on the sender).
    pub cluster_handoff_lag_seconds: Family<RobotLabel, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// 1 while Redis answers heartbeats, else 0.
    pub cluster_connected: Gauge<i64, AtomicI64>,
    /// 1 while silences and acknowledgements are shared through Redis, else 0.
    pub cluster_silences_synced: Gauge<i64, AtomicI64>,
    /// Silences the cluster shares in Redis (at the last read).
    pub cluster_silences: Gauge<i64, AtomicI64>,
    /// Exchanges of `scope: cluster` threshold counts with Redis (one pipelined call each).
    pub cluster_threshold_flushes: Counter,
    /// 1 while `scope: cluster` rules count on this host alone (Redis unreachable), else 0.
    pub cluster_threshold_local: Gauge<i64, AtomicI64>,
    /// Events not in their input's format (matched as plain text), per input (issue 14).
    pub lines_invalid: Family<InputLabel, Counter>,
    /// 1 while a journald input's journalctl runs, else 0 (issue 14).
    pub journal_running: Family<InputLabel, Gauge>,
    /// Times a journald input's journalctl ended or could not start (each is retried).
    pub journal_restarts: Family<InputLabel, Counter>,
    /// Lines of journalctl's output that were no entry (dropped), per input.
    pub journal_skipped: Family<InputLabel, Counter>,
}

impl Metrics {
    /// Registers every series.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("dingtail");
        let lines_read = Family::<InputLabel, Counter>::default();
        let bytes_read = Family::<InputLabel, Counter>::default();
        let lines_truncated = Family::<InputLabel, Counter>::default();
        let timestamp_failures = Family::<InputLabel, Counter>::default();
        let matches = Family::<RuleLabel, Counter>::default();
        let messages_sent = Family::<RobotLabel, Counter>::default();
        let messages_failed = Family::<RobotLabel, Counter>::default();
        let messages_throttled = Family::<RobotLabel, Counter>::default();
        let messages_rejected = Family::<RejectionLabel, Counter>::default();
        let input_files = Family::<InputLabel, Gauge>::default();
        let events_dropped = Family::<RobotLabel, Counter>::default();
        let pending_events = Family::<RobotLabel, Gauge>::default();
        let rate_budget_left = Family::<RobotLabel, Gauge>::default();
        let reloads = Family::<OutcomeLabel, Counter>::default();
        let files_watched = Gauge::<i64, AtomicI64>::default();
        let last_delivery_seconds = Gauge::<i64, AtomicI64>::default();
        let chat_connected = Gauge::<i64, AtomicI64>::default();
        let chat_connections = Counter::default();
        let chat_commands = Family::<ChatCommandLabel, Counter>::default();
        let chat_callbacks_refused = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "lines_read",
            "Lines (or joined events) read",
            lines_read.clone(),
        );
        registry.register("bytes_read", "Bytes read", bytes_read.clone());
        registry.register(
            "lines_truncated",
            "Lines cut at max_line_bytes",
            lines_truncated.clone(),
        );
        registry.register(
            "timestamp_failures",
            "Events whose time (the input's timestamp:) did not read; they keep the read time",
            timestamp_failures.clone(),
        );
        registry.register("matches", "Lines matched, per rule", matches.clone());
        registry.register(
            "messages_sent",
            "Messages delivered (errcode 0)",
            messages_sent.clone(),
        );
        registry.register(
            "messages_failed",
            "Messages that failed to deliver",
            messages_failed.clone(),
        );
        registry.register(
            "messages_throttled",
            "Throttle answers from DingTalk",
            messages_throttled.clone(),
        );
        registry.register(
            "messages_rejected",
            "Messages DingTalk rejected, by kind of refusal",
            messages_rejected.clone(),
        );
        registry.register(
            "input_files",
            "Files each input's globs match now",
            input_files.clone(),
        );
        registry.register(
            "events_dropped",
            "Matches given up after DingTalk refused even their counts",
            events_dropped.clone(),
        );
        registry.register(
            "pending_events",
            "Matches not yet delivered",
            pending_events.clone(),
        );
        registry.register(
            "rate_budget_left",
            "Messages that may still be sent in the current window",
            rate_budget_left.clone(),
        );
        registry.register("reloads", "Config reloads, by outcome", reloads.clone());
        registry.register(
            "files_watched",
            "Files currently followed",
            files_watched.clone(),
        );
        registry.register(
            "last_delivery_timestamp_seconds",
            "Unix time of the last delivery",
            last_delivery_seconds.clone(),
        );
        registry.register(
            "chat_connected",
            "1 while chat commands can arrive",
            chat_connected.clone(),
        );
        registry.register(
            "chat_connections",
            "Chat Stream connections established",
            chat_connections.clone(),
        );
        registry.register(
            "chat_commands",
            "Chat messages, by command and outcome",
            chat_commands.clone(),
        );
        registry.register(
            "chat_callbacks_refused",
            "Chat HTTP callbacks refused, by reason",
            chat_callbacks_refused.clone(),
        );
        let messages_unanswered = Family::<RobotLabel, Counter>::default();
        registry.register(
            "messages_unanswered",
            "Messages sent without an answer (maybe delivered; sent again marked), per robot",
            messages_unanswered.clone(),
        );
        let state_errors = Counter::default();
        registry.register(
            "state_errors",
            "Commits of the state store that failed",
            state_errors.clone(),
        );
        let state_degraded = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "state_degraded",
            "1 while the state store cannot write and delivery runs from memory",
            state_degraded.clone(),
        );
        let alerts = AlertMetrics::register(&mut registry);
        let lines_invalid = Family::<InputLabel, Counter>::default();
        registry.register(
            "lines_invalid",
            "Events not in their input's format, matched as plain text",
            lines_invalid.clone(),
        );
        let journal_running = Family::<InputLabel, Gauge>::default();
        registry.register(
            "journal_running",
            "1 while a journald input's journalctl runs",
            journal_running.clone(),
        );
        let journal_restarts = Family::<InputLabel, Counter>::default();
        registry.register(
            "journal_restarts",
            "Times a journald input's journalctl ended or could not start",
            journal_restarts.clone(),
        );
        let journal_skipped = Family::<InputLabel, Counter>::default();
        registry.register(
            "journal_skipped",
            "Lines of journalctl's output that were no entry",
            journal_skipped.clone(),
        );
        let files_parked = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "files_parked",
            "Followed files closed to stay within the descriptor budget (reopened when they grow)",
            files_parked.clone(),
        );
        let files_skipped = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "files_skipped",
            "Files not followed because they are not text (binary or compressed)",
            files_skipped.clone(),
        );
        let fds_open = Gauge::<i64, AtomicI64>::default();
        registry.register("fds_open", "Open file descriptors", fds_open.clone());
        let fds_limit = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "fds_limit",
            "The soft limit of open file descriptors (RLIMIT_NOFILE)",
            fds_limit.clone(),
        );
        Metrics {
            alerts,
            registry,
            files_parked,
            files_skipped,
            fds_open,
            fds_limit,
            lines_read,
            bytes_read,
            lines_truncated,
            timestamp_failures,
            matches,
            messages_sent,
            messages_failed,
            messages_throttled,
            messages_rejected,
            input_files,
            events_dropped,
            pending_events,
            rate_budget_left,
            reloads,
            files_watched,
            last_delivery_seconds,
            chat_connected,
            chat_connections,
            chat_commands,
            chat_callbacks_refused,
            messages_unanswered,
            state_errors,
            state_degraded,
            cluster_sender: Family::default(),
            cluster_hosts: Gauge::default(),
            cluster_handoff_lag_seconds: Family::default(),
            cluster_connected: Gauge::default(),
            cluster_silences_synced: Gauge::default(),
            cluster_silences: Gauge::default(),
            cluster_threshold_flushes: Counter::default(),
            cluster_threshold_local: Gauge::default(),
            lines_invalid,
            journal_running,
            journal_restarts,
            journal_skipped,
        }
    }

    /// Every series, and those of a cluster member (issue 15): only a daemon with `cluster:`
    /// shows them.
    pub fn with_cluster() -> Metrics {
        let mut metrics = Metrics::new();
        let registry = &mut metrics.registry;
        registry.register(
            "cluster_sender",
            "1 on the daemon that holds the robot's sender lease",
            metrics.cluster_sender.clone(),
        );
        registry.register(
            "cluster_hosts",
            "Hosts seen in the cluster recently",
            metrics.cluster_hosts.clone(),
        );
        registry.register(
            "cluster_handoff_lag_seconds",
            "Age of the oldest hand-off the sender has not delivered",
            metrics.cluster_handoff_lag_seconds.clone(),
        );
        registry.register(
            "cluster_connected",
            "1 while Redis answers heartbeats",
            metrics.cluster_connected.clone(),
        );
        registry.register(
            "cluster_silences_synced",
            "1 while silences and acknowledgements are shared through Redis",
            metrics.cluster_silences_synced.clone(),
        );
        registry.register(
            "cluster_silences",
            "Silences the cluster shares in Redis",
            metrics.cluster_silences.clone(),
        );
        registry.register(
            "cluster_threshold_flushes",
            "Exchanges of scope: cluster threshold counts with Redis",
            metrics.cluster_threshold_flushes.clone(),
        );
        registry.register(
            "cluster_threshold_local",
            "1 while scope: cluster rules count on this host alone (Redis unreachable)",
            metrics.cluster_threshold_local.clone(),
        );
        metrics
    }

    /// The OpenMetrics text exposition of every series.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            // Writing to a String cannot fail; keep whatever was written.
            tracing::debug!("metrics encoding reported an error");
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use crate::metrics::{InputLabel, Metrics, RobotLabel};

    #[test]
    fn series_are_encoded_with_labels() {
        let metrics = Metrics::new();
        metrics
            .lines_read
            .get_or_create(&InputLabel {
                input: "nginx".into(),
            })
            .inc_by(3);
        metrics
            .messages_sent
            .get_or_create(&RobotLabel {
                robot: "ops".into(),
            })
            .inc();
        metrics.files_watched.set(7);
        let text = metrics.encode();
        assert!(
            text.contains("dingtail_lines_read_total{input=\"nginx\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("dingtail_messages_sent_total{robot=\"ops\"} 1"),
            "{text}"
        );
        assert!(text.contains("dingtail_files_watched 7"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}

/// Labels of alert-kind notices.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NoticeLabel {
    /// The rule's name.
    pub rule: String,
    /// `repeat`, `resolved`, `absent`, `recovered` or `silence`.
    pub kind: String,
}

/// The series of alert kinds and silences (issue 13).
#[derive(Debug)]
pub struct AlertMetrics {
    /// Keys each rule with alert keys tracks.
    pub keys: Family<RuleLabel, Gauge>,
    /// Keys with an open incident.
    pub firing: Family<RuleLabel, Gauge>,
    /// Heartbeat keys reported absent.
    pub absent: Family<RuleLabel, Gauge>,
    /// Keys evicted at `max_groups`.
    pub evicted: Family<RuleLabel, Counter>,
    /// Matches sent ungrouped because every key held an open incident.
    pub overflow: Family<RuleLabel, Counter>,
    /// Notices decided (sent or muted), by rule and kind.
    pub notices: Family<NoticeLabel, Counter>,
    /// Matches muted by silences, per rule.
    pub muted: Family<RuleLabel, Counter>,
    /// Silences known (in force or waiting to start).
    pub silences: Gauge<i64, AtomicI64>,
}

impl AlertMetrics {
    fn register(registry: &mut Registry) -> AlertMetrics {
        let metrics = AlertMetrics {
            keys: Family::default(),
            firing: Family::default(),
            absent: Family::default(),
            evicted: Family::default(),
            overflow: Family::default(),
            notices: Family::default(),
            muted: Family::default(),
            silences: Gauge::default(),
        };
        registry.register(
            "alert_keys",
            "Keys a rule with alert keys tracks",
            metrics.keys.clone(),
        );
        registry.register(
            "alert_firing",
            "Keys with an open incident",
            metrics.firing.clone(),
        );
        registry.register(
            "alert_absent",
            "Heartbeat keys reported absent",
            metrics.absent.clone(),
        );
        registry.register(
            "alert_evicted",
            "Keys evicted at max_groups",
            metrics.evicted.clone(),
        );
        registry.register(
            "alert_overflow",
            "Matches sent ungrouped because every key held an open incident",
            metrics.overflow.clone(),
        );
        registry.register(
            "alert_notices",
            "Notices decided (repeat, resolved, absent, recovered, silence), sent or muted",
            metrics.notices.clone(),
        );
        registry.register("muted", "Matches muted by silences", metrics.muted.clone());
        registry.register(
            "silences",
            "Silences known (in force or waiting to start)",
            metrics.silences.clone(),
        );
        metrics
    }
}
