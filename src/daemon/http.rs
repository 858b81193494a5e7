//! The optional `listen:` endpoint: `/metrics` (Prometheus text from `Metrics`) and `/healthz`
//! (200 while the tailing and dispatching loops keep beating and nothing degrades delivery, 503
//! with the reasons otherwise: a loop stopped, the state store cannot write, …). Either answer
//! ends with notes that do not fail it, such as the chat link's state.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::metrics::Metrics;

/// Heartbeats of the loops `/healthz` vouches for.
#[derive(Debug, Default)]
pub struct Health {
    tail_beat_ms: AtomicU64,
    dispatch_beat_ms: AtomicU64,
    /// What degrades delivery now, by what it is about (`state`, …): `/healthz` names it.
    problems: Mutex<BTreeMap<&'static str, String>>,
    /// What `/healthz` shows without failing (the chat link's state), by what it is about.
    notes: Mutex<BTreeMap<&'static str, String>>,
}

/// Which loop is beating.
#[derive(Clone, Copy, Debug)]
pub enum Loop {
    /// The tailing loop.
    Tail,
    /// The dispatching loop.
    Dispatch,
}

impl Health {
    /// Records that `which` is alive now.
    pub fn beat(&self, which: Loop) {
        let now = now_ms();
        match which {
            Loop::Tail => self.tail_beat_ms.store(now, Ordering::Relaxed),
            Loop::Dispatch => self.dispatch_beat_ms.store(now, Ordering::Relaxed),
        }
    }

    /// Records (`Some`) or clears (`None`) a problem that degrades delivery.
    pub fn set_problem(&self, about: &'static str, problem: Option<String>) {
        if let Ok(mut problems) = self.problems.lock() {
            match problem {
                Some(problem) => problems.insert(about, problem),
                None => problems.remove(about),
            };
        }
    }

    /// Records (`Some`) or clears (`None`) a fact `/healthz` shows without failing.
    pub fn set_note(&self, about: &'static str, note: Option<String>) {
        if let Ok(mut notes) = self.notes.lock() {
            match note {
                Some(note) => notes.insert(about, note),
                None => notes.remove(about),
            };
        }
    }

    /// The notes, one line each.
    pub fn notes(&self) -> Vec<String> {
        self.notes
            .lock()
            .map(|notes| {
                notes
                    .iter()
                    .map(|(about, note)| format!("{about}: {note}"))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The problems that degrade delivery now, one line each.
    pub fn problems(&self) -> Vec<String> {
        self.problems
            .lock()
            .map(|problems| {
                problems
                    .iter()
                    .map(|(about, problem)| format!("{about}: {problem}"))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Both loops beat within `stale`.
    pub fn is_alive(&self, stale: Duration) -> bool {
        let now = now_ms();
        let limit = u64::try_from(stale.as_millis()).unwrap_or(u64::MAX);
        [&self.tail_beat_ms, &self.dispatch_beat_ms]
            .iter()
            .all(|beat| {
                let beat = beat.load(Ordering::Relaxed);
                beat != 0 && now.saturating_sub(beat) <= limit
            })
    }
}

/// Milliseconds on a monotonic clock (since the first call), plus one so that 0 means "never
/// beat". A wall-clock step must not make a live loop look dead, or a dead one alive.
fn now_ms() -> u64 {
    static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let base = BASE.get_or_init(Instant::now);
    u64::try_from(base.elapsed().as_millis())
        .unwrap_or(u64::MAX)
        .saturating_add(1)
}

#[derive(Clone)]
struct Shared {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    stale: Duration,
}

/// Binds `addr` and serves the endpoints until the task is dropped or aborted.
///
/// # Errors
/// The address cannot be bound.
pub async fn serve(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    stale: Duration,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let app = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(health_handler))
        .with_state(Shared {
            metrics,
            health,
            stale,
        });
    Ok(tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!("metrics endpoint on {addr} stopped: {err}");
        }
    }))
}

async fn metrics_handler(State(shared): State<Shared>) -> impl IntoResponse {
    // Counting the open descriptors lists /proc/self/fd (a thousand entries with a thousand
    // files): done when someone asks, not every second of an idle daemon.
    crate::daemon::bridge::publish_descriptors(&shared.metrics);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        shared.metrics.encode(),
    )
}

async fn health_handler(State(shared): State<Shared>) -> impl IntoResponse {
    let mut problems = shared.health.problems();
    if !shared.health.is_alive(shared.stale) {
        problems.insert(0, "a loop stopped beating".to_string());
    }
    let notes: String = shared
        .health
        .notes()
        .iter()
        .map(|note| format!("{note}\n"))
        .collect();
    if problems.is_empty() {
        (StatusCode::OK, format!("ok\n{notes}"))
    } else {
        let problems: String = problems.iter().map(|p| format!("{p}\n")).collect();
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{problems}{notes}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::daemon::http::{Health, Loop};

    #[test]
    fn alive_only_while_both_loops_beat() {
        let health = Health::default();
        assert!(!health.is_alive(Duration::from_secs(10)));
        health.beat(Loop::Tail);
        assert!(!health.is_alive(Duration::from_secs(10)));
        health.beat(Loop::Dispatch);
        assert!(health.is_alive(Duration::from_secs(10)));
    }

    #[test]
    fn problems_are_named_until_cleared() {
        let health = Health::default();
        assert!(health.problems().is_empty());
        health.set_problem("state", Some("cannot write state: disk full".into()));
        assert_eq!(health.problems(), ["state: cannot write state: disk full"]);
        health.set_problem("state", None);
        assert!(health.problems().is_empty());
    }

    #[test]
    fn notes_are_shown_until_cleared_and_are_not_problems() {
        let health = Health::default();
        health.set_note("chat", Some("chat connected for 5m".into()));
        assert_eq!(health.notes(), ["chat: chat connected for 5m"]);
        assert!(health.problems().is_empty());
        health.set_note("chat", None);
        assert!(health.notes().is_empty());
    }
}
