//! Many hosts, one robot (issue 15): daemons on many hosts share each DingTalk robot through one
//! Redis. Every daemon still tails, matches and keeps its matches durable locally; its robot
//! queues hand their batches to Redis instead of DingTalk (a Stream per robot, deduplicated by a
//! content hash), and one daemon per robot — the holder of its lease — folds every host's
//! hand-offs into one summary and sends it under a budget ledger kept on Redis's clock. While
//! Redis is unreachable nothing leaves the host; after `fallback_after` each host sends directly
//! at its share of the budget.
//!
//! Shape: the deciding parts are pure and tested on a fake clock — [`link`] (connected, down,
//! fallback; the fallback share), [`holder`] (the holder's queue and which Stream entries each
//! send carries; the lease's renew/lapse times) — and the I/O sits at the edge: [`redis_io`]
//! (the Lua scripts and typed calls), [`handoff`] (one idempotent hand-off), [`node`] (the task
//! that beats, holds leases and sends) and [`status`] (`dingtail cluster status`).
//!
//! Silences and acknowledgements (issues 15 and 16) are shared through the same Redis, beside
//! the robots: [`silences`] decides (pure), [`silence_io`] has the scripts, [`share`] is the
//! task that meets Redis every second for the daemon. `scope: cluster` thresholds:
//! [`threshold`] decides (pure), [`threshold_io`] has the script and the pipelined call.
//!
//! # Key space
//! Everything lives under `key_prefix` (`P`, default `dingtail:`). Per robot the keys share the
//! hash tag `{rid}`, `rid` being a hash of the webhook (never the token itself), so that two
//! robot names on one webhook share one budget and every script touches one slot:
//!
//! | key | type | what |
//! |---|---|---|
//! | `P{hosts}` | ZSET | host → last heartbeat (ms, Redis `TIME`) |
//! | `P{hosts}:claim:<host>` | STRING | the instance id holding the host name (PX 3 leases) |
//! | `P{hosts}:pending` | HASH | host → matches it has not handed off |
//! | `P{rid}:stream` | STREAM | hand-offs: `id`, `host`, `repeat`, `batch`; group `senders` |
//! | `P{rid}:seen:<hid>` | STRING | a hand-off id already added (EX 1 h): retries add nothing |
//! | `P{rid}:lease` | STRING | the sender's `host/instance` (PX `lease`) |
//! | `P{rid}:sent` | ZSET | the budget ledger: one member per send, score = Redis ms |
//! | `P{rid}:blocked_until` | STRING | Redis ms until which DingTalk throttles the robot |
//! | `P{rid}:inflight` | SET | Stream entries of the send under way (a takeover marks them) |
//! | `P{rid}:name` | STRING | the robot's name, for `cluster status` |
//! | `P{silences}` | HASH | the cluster's silences: id → the silence (`state::silences`' row) |
//! | `P{silences}:ends` | ZSET | id → its end (ms): what Redis forgets once over |
//! | `P{silences}:ended` | ZSET | silences unmuted early (tombstones), kept until end + 1 h |
//! | `P{silences}:muted:<id>` | HASH | host → what it muted under the silence (EX 1 day) |
//! | `P{silences}:reported:<id>` | STRING | the host that reported the silence's end (EX 1 day) |
//! | `P{silences}:acks` | ZSET | acknowledgements offered to every host, score Redis ms (10 min) |
//! | `P{thr:<h>}:n` | HASH | `scope: cluster`: bucket → matches of one rule's key (`h` its hash) |
//! | `P{thr:<h>}:inc` | HASH | its open incident: owner, lease, first, total, reported, last |

pub mod handoff;
pub mod holder;
pub mod link;
pub mod node;
pub mod redis_io;
pub mod share;
pub mod silence_io;
pub mod silences;
pub mod status;
pub mod threshold;
pub mod threshold_io;

use sha2::{Digest, Sha256};

use crate::config::{RobotConfig, Webhook};

/// The consumer group of every robot's Stream.
pub const GROUP: &str = "senders";
/// How long a hand-off id is remembered: a retry (a timeout, a restart after a crash) within
/// it adds nothing. A batch handed off again later is marked as a possible repeat anyway.
pub const DEDUPE_TTL_SECS: u64 = 3600;

/// The names of every key of one cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// The keys under `prefix`.
    pub fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.to_owned(),
        }
    }

    /// The hosts' heartbeats (ZSET host → ms).
    pub fn hosts(&self) -> String {
        format!("{}{{hosts}}", self.prefix)
    }

    /// Who holds `host`'s name.
    pub fn claim(&self, host: &str) -> String {
        format!("{}{{hosts}}:claim:{host}", self.prefix)
    }

    /// The hosts' pending counts (HASH).
    pub fn pending(&self) -> String {
        format!("{}{{hosts}}:pending", self.prefix)
    }

    /// The shared silences (HASH id → silence).
    pub fn silences(&self) -> String {
        format!("{}{{silences}}", self.prefix)
    }

    /// A key beside the shared silences (`ends`, `ended`, `acks`).
    pub fn silences_part(&self, what: &str) -> String {
        format!("{}{{silences}}:{what}", self.prefix)
    }

    /// Silence `id`'s key `what` (`muted`, `reported`).
    pub fn silence_of(&self, id: &str, what: &str) -> String {
        format!("{}{{silences}}:{what}:{id}", self.prefix)
    }

    /// A robot's key `what` (`stream`, `lease`, `sent`, …).
    pub fn robot(&self, rid: &str, what: &str) -> String {
        format!("{}{{{rid}}}:{what}", self.prefix)
    }

    /// Key `what` (`n`, `inc`) of the `scope: cluster` threshold key hashed `hash`.
    pub fn threshold(&self, hash: &str, what: &str) -> String {
        format!("{}{{thr:{hash}}}:{what}", self.prefix)
    }

    /// The dedupe key of hand-off `hid` to robot `rid`.
    pub fn seen(&self, rid: &str, hid: &str) -> String {
        format!("{}{{{rid}}}:seen:{hid}", self.prefix)
    }
}

/// A robot's id in the key space: a hash of its webhook (the token never reaches Redis), or of
/// its name for the dry-run robots (`stdout`, `console`).
pub fn rid(robot: &RobotConfig) -> String {
    let seed = match &robot.webhook {
        Webhook::Url(url) => format!("url:{}", url.expose()),
        Webhook::Stdout | Webhook::Console => format!("print:{}", robot.name),
    };
    hex16(Sha256::digest(seed.as_bytes()).as_slice())
}

/// A hand-off's id: the hash of the sending host and the encoded batch. The same batch sent
/// again (a timeout, a crash and restart: the store gives it back to the millisecond) has the
/// same id, so Redis adds it once.
pub fn hid(host: &str, encoded: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(host.as_bytes());
    hasher.update([0]);
    hasher.update(encoded.as_bytes());
    hex16(hasher.finalize().as_slice())
}

fn hex16(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(16)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{Keys, hid};

    #[test]
    fn robot_keys_share_one_hash_tag_and_hids_depend_on_host_and_content() {
        let keys = Keys::new("dt:");
        assert_eq!(keys.robot("ab12", "stream"), "dt:{ab12}:stream");
        assert_eq!(keys.seen("ab12", "ff"), "dt:{ab12}:seen:ff");
        assert_eq!(keys.hosts(), "dt:{hosts}");
        assert_eq!(keys.claim("web-1"), "dt:{hosts}:claim:web-1");
        assert_eq!(keys.silences(), "dt:{silences}");
        assert_eq!(
            keys.silence_of("k3x9pa", "muted"),
            "dt:{silences}:muted:k3x9pa"
        );
        assert_eq!(hid("web-1", "{}"), hid("web-1", "{}"));
        assert_ne!(hid("web-1", "{}"), hid("web-2", "{}"));
        assert_ne!(hid("web-1", "{}"), hid("web-1", "{ }"));
        assert_eq!(hid("a", "b").len(), 32);
    }
}
