//! `dingtail cluster status`: what Redis knows about the cluster — hosts and when each was last
//! seen (and how many matches it holds), each robot's sender and lease, how many hand-offs wait
//! and for how long, the budget spent in the current window and a shared throttle pause.
//! [`read`] asks Redis (read-only commands); [`ClusterStatus::render`] is pure.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::cluster::node::guarded;
use crate::cluster::{GROUP, Keys, rid};
use crate::config::Config;

/// One host as Redis saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSeen {
    /// Its name.
    pub name: String,
    /// How long ago its last heartbeat was.
    pub ago: Duration,
    /// Its name is claimed by a running daemon.
    pub live: bool,
    /// Matches it had not handed off at that heartbeat.
    pub pending: u64,
}

/// One robot's cluster state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RobotSeen {
    /// The robot's name in this config.
    pub name: String,
    /// The lease holder (`host/instance`) and the lease's time left.
    pub sender: Option<(String, Duration)>,
    /// Hand-offs not delivered yet.
    pub waiting: u64,
    /// Of them, read by a sender (being folded or sent).
    pub reading: u64,
    /// Age of the oldest hand-off not delivered.
    pub lag: Option<Duration>,
    /// Sends counted in the ledger's current window, and the budget.
    pub sent_in_window: u64,
    /// The budget per window.
    pub per_minute: u32,
    /// A throttle pause shared by every host: time left.
    pub blocked_for: Option<Duration>,
}

/// What `cluster status` shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterStatus {
    /// The Redis URL without its password.
    pub redis: String,
    /// Hosts, most recently seen first.
    pub hosts: Vec<HostSeen>,
    /// Robots of the config.
    pub robots: Vec<RobotSeen>,
}

/// Why the status could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The config has no `cluster:`.
    #[error("the config has no `cluster:` section")]
    NotClustered,
    /// Redis could not be asked.
    #[error("cannot read the cluster from Redis at {shown}: {source}")]
    Redis {
        /// The URL without its password.
        shown: String,
        /// What the client said.
        source: redis::RedisError,
    },
}

/// Reads the cluster's state for the robots of `config`.
///
/// # Errors
/// No `cluster:`, or Redis unreachable.
pub async fn read(config: &Config) -> Result<ClusterStatus, StatusError> {
    let cluster = config.cluster.as_ref().ok_or(StatusError::NotClustered)?;
    let shown = cluster.redis_shown.clone();
    let wrap = |source| StatusError::Redis {
        shown: shown.clone(),
        source,
    };
    let client = redis::Client::open(cluster.redis.expose()).map_err(wrap)?;
    let manager = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(3)))
        .set_response_timeout(Some(Duration::from_secs(3)))
        .set_number_of_retries(1);
    let mut conn = ConnectionManager::new_with_config(client, manager)
        .await
        .map_err(wrap)?;
    let keys = Keys::new(&cluster.key_prefix);
    let (secs, micros): (u64, u64) = redis::cmd("TIME")
        .query_async(&mut conn)
        .await
        .map_err(wrap)?;
    let now_ms = secs * 1000 + micros / 1000;
    let seen: Vec<(String, f64)> = redis::cmd("ZRANGE")
        .arg(keys.hosts())
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query_async(&mut conn)
        .await
        .map_err(wrap)?;
    let pending: std::collections::HashMap<String, u64> = redis::cmd("HGETALL")
        .arg(keys.pending())
        .query_async(&mut conn)
        .await
        .map_err(wrap)?;
    let mut hosts = Vec::new();
    for (name, at) in seen {
        let live: bool = redis::cmd("EXISTS")
            .arg(keys.claim(&name))
            .query_async(&mut conn)
            .await
            .map_err(wrap)?;
        hosts.push(HostSeen {
            ago: Duration::from_millis(now_ms.saturating_sub(at as u64)),
            live,
            pending: pending.get(&name).copied().unwrap_or(0),
            name,
        });
    }
    hosts.sort_by_key(|host| host.ago);
    let mut robots = Vec::new();
    for robot in config.robots.values() {
        let rid = rid(robot);
        let key = |what: &str| keys.robot(&rid, what);
        let holder: Option<String> = redis::cmd("GET")
            .arg(key("lease"))
            .query_async(&mut conn)
            .await
            .map_err(wrap)?;
        let ttl: i64 = redis::cmd("PTTL")
            .arg(key("lease"))
            .query_async(&mut conn)
            .await
            .map_err(wrap)?;
        let waiting: u64 = redis::cmd("XLEN")
            .arg(key("stream"))
            .query_async(&mut conn)
            .await
            .map_err(wrap)?;
        let reading: u64 = if waiting == 0 {
            0
        } else {
            let summary: redis::Value = redis::cmd("XPENDING")
                .arg(key("stream"))
                .arg(GROUP)
                .query_async(&mut conn)
                .await
                .map_err(wrap)?;
            match summary {
                redis::Value::Array(items) => items
                    .first()
                    .and_then(|n| redis::from_redis_value::<u64>(n.clone()).ok())
                    .unwrap_or(0),
                _ => 0,
            }
        };
        let oldest: Vec<(String, redis::Value)> = redis::cmd("XRANGE")
            .arg(key("stream"))
            .arg("-")
            .arg("+")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut conn)
            .await
            .map_err(wrap)?;
        let lag = oldest.first().and_then(|(id, _)| {
            let ms: u64 = id.split_once('-')?.0.parse().ok()?;
            Some(Duration::from_millis(now_ms.saturating_sub(ms)))
        });
        let window = guarded(robot.window);
        let from = now_ms.saturating_sub(u64::try_from(window.as_millis()).unwrap_or(0));
        let sent_in_window: u64 = redis::cmd("ZCOUNT")
            .arg(key("sent"))
            .arg(from)
            .arg("+inf")
            .query_async(&mut conn)
            .await
            .map_err(wrap)?;
        let blocked: Option<u64> = redis::cmd("GET")
            .arg(key("blocked_until"))
            .query_async(&mut conn)
            .await
            .map_err(wrap)?;
        robots.push(RobotSeen {
            name: robot.name.clone(),
            sender: holder.map(|holder| {
                (
                    holder,
                    Duration::from_millis(u64::try_from(ttl).unwrap_or(0)),
                )
            }),
            waiting,
            reading,
            lag,
            sent_in_window,
            per_minute: robot.per_minute,
            blocked_for: blocked
                .filter(|until| *until > now_ms)
                .map(|until| Duration::from_millis(until - now_ms)),
        });
    }
    Ok(ClusterStatus {
        redis: shown,
        hosts,
        robots,
    })
}

impl ClusterStatus {
    /// The text `cluster status` prints.
    pub fn render(&self) -> String {
        let secs = |d: Duration| format!("{:.1}s", d.as_secs_f64());
        let mut out = format!("cluster through {}\n", self.redis);
        out.push_str(&format!("hosts ({}):", self.hosts.len()));
        out.push('\n');
        for host in &self.hosts {
            out.push_str(&format!(
                "  {:<24} last seen {} ago{}, {} pending",
                host.name.escape_debug().to_string(),
                secs(host.ago),
                if host.live { "" } else { " (not running)" },
                host.pending
            ));
            out.push('\n');
        }
        out.push_str(&format!("robots ({}):", self.robots.len()));
        out.push('\n');
        for robot in &self.robots {
            let sender = match &robot.sender {
                Some((holder, left)) => format!("sender {holder} (lease {} left)", secs(*left)),
                None => "no sender".to_owned(),
            };
            let lag = robot
                .lag
                .map_or_else(|| "none".to_owned(), |lag| format!("oldest {}", secs(lag)));
            out.push_str(&format!("  {}: {sender}; {} hand-off(s) waiting ({} read by the sender), {lag}; {}/{} sent this window{}",
                robot.name,
                robot.waiting,
                robot.reading,
                robot.sent_in_window,
                robot.per_minute,
                robot.blocked_for.map_or_else(String::new, |left| format!(
                    "; THROTTLED for {}",
                    secs(left)
                ))
            ));
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{ClusterStatus, HostSeen, RobotSeen};

    #[test]
    fn the_status_names_hosts_senders_lag_and_budget() {
        let status = ClusterStatus {
            redis: "redis://:***@127.0.0.1:6379".into(),
            hosts: vec![
                HostSeen {
                    name: "web-1".into(),
                    ago: Duration::from_millis(1500),
                    live: true,
                    pending: 3,
                },
                HostSeen {
                    name: "web-2".into(),
                    ago: Duration::from_secs(400),
                    live: false,
                    pending: 0,
                },
            ],
            robots: vec![RobotSeen {
                name: "ops".into(),
                sender: Some(("web-1/abc".into(), Duration::from_secs(8))),
                waiting: 4,
                reading: 2,
                lag: Some(Duration::from_millis(2500)),
                sent_in_window: 7,
                per_minute: 20,
                blocked_for: None,
            }],
        };
        let text = status.render();
        assert!(text.contains("redis://:***@127.0.0.1:6379"), "{text}");
        assert!(
            text.contains("web-1                    last seen 1.5s ago, 3 pending"),
            "{text}"
        );
        assert!(
            text.contains("web-2                    last seen 400.0s ago (not running)"),
            "{text}"
        );
        assert!(
            text.contains("ops: sender web-1/abc (lease 8.0s left); 4 hand-off(s) waiting (2 read by the sender), oldest 2.5s; 7/20 sent this window"),
            "{text}"
        );
    }
}
