//! `LinkStatus`: how `chat` is reachable right now, published through a `tokio::sync::watch` for
//! `/healthz`, systemd's `STATUS=` and metrics. The transitions are pure methods that take `now`;
//! the connection code calls them.

use std::time::{Duration, SystemTime};

/// What the link is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// Opening a Stream connection (a ticket, then the WebSocket).
    Connecting,
    /// The Stream WebSocket is up.
    Connected,
    /// The HTTP callback endpoint is listening.
    Listening,
    /// Waiting before the next attempt after a failure or a disconnect.
    Retrying {
        /// When the next attempt starts.
        next_attempt: SystemTime,
    },
    /// Gave up for good (the HTTP endpoint failed); a restart or reload is needed.
    Stopped,
}

/// The link's state, since when, and the last thing that went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkStatus {
    /// What it is doing.
    pub state: LinkState,
    /// Since when it has been up (connected or listening), or down (connecting or retrying).
    pub since: SystemTime,
    /// The last failure (kept after recovering, for `status`); never holds a secret.
    pub last_error: Option<String>,
    /// Stream connections established so far.
    pub n_connections: u64,
}

impl LinkStatus {
    /// A link that is starting to connect.
    pub fn connecting(now: SystemTime) -> LinkStatus {
        LinkStatus {
            state: LinkState::Connecting,
            since: now,
            last_error: None,
            n_connections: 0,
        }
    }

    /// An HTTP endpoint that is listening.
    pub fn listening(now: SystemTime) -> LinkStatus {
        LinkStatus {
            state: LinkState::Listening,
            since: now,
            last_error: None,
            n_connections: 0,
        }
    }

    /// Commands can arrive: connected or listening.
    pub fn is_up(&self) -> bool {
        matches!(self.state, LinkState::Connected | LinkState::Listening)
    }

    /// A new attempt starts.
    pub fn attempt(&mut self, now: SystemTime) {
        self.set(LinkState::Connecting, now);
    }

    /// The WebSocket is up.
    pub fn connected(&mut self, now: SystemTime) {
        self.n_connections += 1;
        self.set(LinkState::Connected, now);
    }

    /// The connection ended or failed; the next attempt is `delay` from `now`. `error` is
    /// `None` for a routine end (a disconnect frame).
    pub fn retrying(&mut self, now: SystemTime, delay: Duration, error: Option<String>) {
        if error.is_some() {
            self.last_error = error;
        }
        let next_attempt = now.checked_add(delay).unwrap_or(now);
        self.set(LinkState::Retrying { next_attempt }, now);
    }

    /// The link failed for good with `error`.
    pub fn stopped(&mut self, now: SystemTime, error: String) {
        self.last_error = Some(error);
        self.set(LinkState::Stopped, now);
    }

    /// `since` moves only when the link goes up or down, so that retries keep "down since".
    fn set(&mut self, state: LinkState, now: SystemTime) {
        let was_up = self.is_up();
        self.state = state;
        if self.is_up() != was_up {
            self.since = now;
        }
    }

    /// One line for systemd's `STATUS=` and logs, e.g. `chat connected for 5m`.
    pub fn summary(&self, now: SystemTime) -> String {
        let age = now.duration_since(self.since).unwrap_or_default();
        let age = humantime::format_duration(Duration::from_secs(age.as_secs()));
        match self.state {
            LinkState::Connecting => format!("chat connecting (down for {age})"),
            LinkState::Connected => format!("chat connected for {age}"),
            LinkState::Listening => format!("chat listening for {age}"),
            LinkState::Stopped => format!(
                "chat stopped {age} ago: {}",
                self.last_error.as_deref().unwrap_or("unknown error")
            ),
            LinkState::Retrying { next_attempt } => {
                let wait = next_attempt.duration_since(now).unwrap_or_default();
                let wait = humantime::format_duration(Duration::from_secs(wait.as_secs()));
                match &self.last_error {
                    Some(error) => format!("chat down for {age}, retrying in {wait}: {error}"),
                    None => format!("chat reconnecting in {wait}"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use crate::chat::link::{LinkState, LinkStatus};

    #[test]
    fn transitions_keep_since_count_connections_and_remember_errors() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000);
        let mut status = LinkStatus::connecting(t0);
        assert!(!status.is_up());
        status.connected(t0 + Duration::from_secs(1));
        assert!(status.is_up());
        assert_eq!(status.n_connections, 1);
        assert_eq!(
            status.summary(t0 + Duration::from_secs(301)),
            "chat connected for 5m"
        );
        status.retrying(
            t0 + Duration::from_secs(400),
            Duration::from_secs(4),
            Some("cannot connect".into()),
        );
        assert_eq!(
            status.state,
            LinkState::Retrying {
                next_attempt: t0 + Duration::from_secs(404)
            }
        );
        assert_eq!(
            status.summary(t0 + Duration::from_secs(401)),
            "chat down for 1s, retrying in 3s: cannot connect"
        );
        // Retrying keeps "down since"; an attempt does not forget the error; a routine
        // disconnect does not overwrite it.
        status.attempt(t0 + Duration::from_secs(404));
        assert_eq!(status.since, t0 + Duration::from_secs(400));
        assert_eq!(
            status.summary(t0 + Duration::from_secs(460)),
            "chat connecting (down for 1m)"
        );
        status.connected(t0 + Duration::from_secs(405));
        status.retrying(t0 + Duration::from_secs(500), Duration::ZERO, None);
        assert_eq!(status.last_error.as_deref(), Some("cannot connect"));
        assert_eq!(status.n_connections, 2);
        assert!(LinkStatus::listening(t0).is_up());
    }
}
