//! A robot of the config, from the shell: `dingtail send --robot NAME` and `dingtail check --ping
//! ROBOT` (issue 12). The message goes exactly as the daemon's would: the robot's webhook,
//! secret and keywords from the config, and its rate history from the state database
//! (`state::Store`), so that a test message can never be the one that trips DingTalk's
//! ten-minute block: it is refused while a recorded throttle lasts or when the robot's recorded
//! sends fill its budget (`dispatch::allowance`), and every attempt is recorded before it goes
//! (`Change::Sent`, restamped when answered), so that it counts for the daemon after its next
//! start or reload and for the next test. A throttle answer is recorded too.
//!
//! A running daemon reads the history only at start and reload: while it runs, its own budget
//! does not see these sends. Leave it headroom (`per_minute` below 20) when pinging a busy robot.

use std::time::{Duration, Instant, SystemTime};

use crate::backoff::Backoff;
use crate::cli::exit::Exit;
use crate::config::diag::did_you_mean;
use crate::config::{Config, RobotConfig, Webhook};
use crate::dingtalk::{
    Client, ClientConfig, Message, Outcome, Rejection, RetryPolicy, Robot, body,
};
use crate::dispatch::allowance::Allowance;
use crate::state::{Change, Store};

/// The text `check --ping` sends (followed by the host name).
pub const PING_TEXT: &str = "dingtail check --ping: a test message from";

/// Why nothing (or nothing good) came of a send, and the exit status that says so.
#[derive(Debug)]
pub struct Failure {
    /// The status to exit with.
    pub exit: Exit,
    /// What to tell the user.
    pub message: String,
}

impl Failure {
    fn new(exit: Exit, message: impl Into<String>) -> Failure {
        Failure {
            exit,
            message: message.into(),
        }
    }
}

/// The retries of `check --ping` (and the defaults of `send`): three after a network failure.
pub fn retry_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(30),
    }
}

/// The limit of each attempt of `check --ping` (and the default of `send --timeout`).
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The exit status of an outcome: 0 delivered, 2 not sent because the request could not be
/// built, 3 rejected, 4 network, 5 throttled.
pub fn exit_of(outcome: &Outcome) -> Exit {
    match outcome {
        Outcome::Delivered => Exit::Ok,
        Outcome::Throttled { .. } => Exit::Throttled,
        Outcome::Rejected {
            reason: Rejection::Request(_),
            ..
        } => Exit::Usage,
        Outcome::Rejected { .. } => Exit::Rejected,
        // No answer after the retries (maybe delivered): a network failure all the same.
        Outcome::Transient { .. } | Outcome::Unknown { .. } => Exit::Network,
    }
}

/// The robot named `name` in `config`.
///
/// # Errors
/// An unknown name (exit 2), with the names the config has.
pub fn find<'a>(config: &'a Config, name: &str) -> Result<&'a RobotConfig, Failure> {
    config.robots.get(name).ok_or_else(|| {
        let known: Vec<&str> = config.robots.keys().map(String::as_str).collect();
        let hint = did_you_mean(name, known.iter().copied())
            .map(|best| format!("; did you mean `{best}`?"))
            .unwrap_or_default();
        let list = if known.is_empty() {
            "it defines none".to_string()
        } else {
            format!("it has {}", known.join(", "))
        };
        Failure::new(
            Exit::Usage,
            format!(
                "{}: no robot named `{name}` ({list}{hint})",
                config.source.display()
            ),
        )
    })
}

/// Sends `message` through the robot `name` of `config`, under its recorded budget, retrying
/// network failures as `policy` says (each attempt asks the budget again, and may take
/// `timeout`). A `stdout` robot prints the body instead. Returns the outcome when it was
/// delivered.
///
/// # Errors
/// An unknown robot, a refusal by the budget or the block (nothing sent), a state database that
/// cannot be opened, or a send that did not deliver: each with its exit status.
pub fn send(
    config: &Config,
    name: &str,
    message: &Message,
    policy: RetryPolicy,
    timeout: Duration,
) -> Result<Outcome, Failure> {
    let robot_config = find(config, name)?;
    let robot = match (&robot_config.webhook, Robot::from_config(robot_config)) {
        (Webhook::Stdout | Webhook::Console, _) | (_, None) => {
            return print_body(robot_config, message);
        }
        (Webhook::Url(_), Some(robot)) => robot,
    };
    robot
        .validate()
        .map_err(|err| Failure::new(Exit::Usage, format!("robot `{name}`: {err}")))?;
    body(&robot.keywords, message)
        .map_err(|err| Failure::new(Exit::Usage, format!("robot `{name}`: {err}")))?;
    let mut store = Store::open(&config.state_dir).map_err(|err| {
        Failure::new(
            Exit::Failed,
            format!("cannot read the robot's rate history: {err}"),
        )
    })?;
    let client = Client::new(ClientConfig {
        connect_timeout: timeout.min(Duration::from_secs(5)),
        request_timeout: timeout,
    })
    .map_err(|err| Failure::new(Exit::Failed, err.to_string()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| {
            Failure::new(
                Exit::Failed,
                format!("cannot start the async runtime: {err}"),
            )
        })?;
    let mut backoff = Backoff::new(policy.base_delay, policy.max_delay);
    let mut attempt = 1;
    loop {
        admit(&store, robot_config)?;
        let sent_at = SystemTime::now();
        store
            .commit(&[Change::Sent {
                robot: name,
                at: sent_at,
            }])
            .map_err(|err| Failure::new(Exit::Failed, format!("cannot record the send: {err}")))?;
        let outcome = runtime.block_on(client.send_once(&robot, message));
        let answered = SystemTime::now();
        let mut changes = vec![Change::Answered {
            robot: name,
            at: answered,
        }];
        if matches!(outcome, Outcome::Throttled { .. }) {
            changes.push(Change::Throttled {
                robot: name,
                until: answered + robot_config.throttle_pause,
            });
        }
        if let Err(err) = store.commit(&changes) {
            tracing::warn!("robot `{name}`: cannot record the answer: {err}");
        }
        if outcome.is_transient() && attempt < policy.max_attempts {
            let delay = backoff.next_delay(rand::random::<f64>());
            tracing::debug!(attempt, ?delay, %outcome, "retrying a transient delivery failure");
            attempt += 1;
            std::thread::sleep(delay);
            continue;
        }
        return match exit_of(&outcome) {
            Exit::Ok => Ok(outcome),
            Exit::Network => Err(Failure::new(
                Exit::Network,
                format!(
                    "robot `{name}`: {outcome} (after {})",
                    crate::noun::count(attempt, "attempt")
                ),
            )),
            exit => Err(Failure::new(exit, format!("robot `{name}`: {outcome}"))),
        };
    }
}

/// Refuses (exit 5) when the robot's recorded block or budget says no message may go now.
fn admit(store: &Store, robot: &RobotConfig) -> Result<(), Failure> {
    let now = SystemTime::now();
    let now_mono = Instant::now();
    let history = |err| {
        Failure::new(
            Exit::Failed,
            format!("cannot read the robot's rate history: {err}"),
        )
    };
    let blocked_until = store
        .throttles(now)
        .map_err(history)?
        .get(&robot.name)
        .copied();
    let sends = store.recent_sends(now, robot.window * 2).map_err(history)?;
    let sent_ago = sends.get(&robot.name).cloned().unwrap_or_default();
    let allowance = Allowance {
        per_minute: robot.per_minute,
        window: robot.window,
        sent_ago: &sent_ago,
        blocked_until,
    };
    match allowance.refusal(now, now_mono) {
        None => Ok(()),
        Some(refusal) => Err(Failure::new(
            Exit::Throttled,
            format!("robot `{}`: not sent: {refusal}", robot.name),
        )),
    }
}

/// The `stdout` dry-run robot: the body it would post, on stdout.
#[allow(clippy::print_stdout)] // The `stdout` robot's purpose is to print its messages.
fn print_body(robot: &RobotConfig, message: &Message) -> Result<Outcome, Failure> {
    let json = body(&robot.keywords, message)
        .map_err(|err| Failure::new(Exit::Usage, format!("robot `{}`: {err}", robot.name)))?;
    println!("{json}");
    Ok(Outcome::Delivered)
}
