//! The Redis calls of shared silences and acknowledgements: their Lua scripts and typed
//! wrappers. Values cross as text (`state::silences` encodes them); what to call when is
//! [`crate::cluster::silences`]'s and [`crate::cluster::share`]'s.
//!
//! Every key has the hash tag `{silences}`, so each script touches one slot. Scripts read
//! Redis's `TIME` for expiry, so a host's clock never decides what Redis forgets. The key space
//! is in [`crate::cluster`]'s module doc.

use std::sync::LazyLock;

use redis::aio::ConnectionManager;
use redis::{RedisResult, Script};

use crate::cluster::Keys;

/// `now` in ms from Redis `TIME`, as a Lua prelude.
const NOW: &str = "local t = redis.call('TIME')\n\
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n";

/// How long a tombstone outlives the silence's own end (hosts that were down meanwhile end it
/// as expired anyway).
pub const ENDED_KEEP_MS: u64 = 3_600_000;
/// How long a host's count, and the record of who reported a silence, are kept.
pub const COUNT_KEEP_SECS: u64 = 86_400;
/// How long an acknowledgement is offered to the hosts.
pub const ACK_KEEP_MS: u64 = 600_000;

/// KEYS: silences, ends, ended, acks. ARGV: ended keep ms, ack keep ms. Forgets what is over
/// (silences past their end, tombstones past their silence's end plus the keep, old acks), then
/// returns {now, silences (id, data, …), ended ids, acks}.
static READ: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{NOW}
local over = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, id in ipairs(over) do
  redis.call('HDEL', KEYS[1], id)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[1]))
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - tonumber(ARGV[2]))
return {{now, redis.call('HGETALL', KEYS[1]), redis.call('ZRANGE', KEYS[3], 0, -1),
  redis.call('ZRANGE', KEYS[4], 0, -1)}}"
    ))
});

/// KEYS: silences, ends, ended. ARGV: id, data, ends ms. Adds the silence unless it ended,
/// is over by Redis's clock, or its id is taken. Returns {code, data held}: 1 added, 0 the same
/// id is there (its data returned: the same silence, or a clash), 2 ended, 3 over.
static PUBLISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{NOW}
if redis.call('ZSCORE', KEYS[3], ARGV[1]) then
  return {{2, ''}}
end
if tonumber(ARGV[3]) <= now then
  return {{3, ''}}
end
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  return {{0, cur}}
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return {{1, ''}}"
    ))
});

/// KEYS: silences, ends, ended. ARGV: id, ends ms. Ends the silence for everyone: its
/// definition goes, a tombstone stays until its own end plus the keep.
static END: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return 1",
    )
});

/// KEYS: muted, reported. ARGV: host, data, keep s. Records the host's count; returns 1 when
/// the silence was already reported (this count came too late for it).
static COUNT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return redis.call('EXISTS', KEYS[2])",
    )
});

/// KEYS: reported, muted. ARGV: host, keep s. The first host to call it reports the silence:
/// returns {1, counts (host, data, …)} and forgets the counts; others get {0, {}}.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  return {0, {}}
end
local counts = redis.call('HGETALL', KEYS[2])
redis.call('DEL', KEYS[2])
return {1, counts}",
    )
});

/// KEYS: acks. ARGV: data. Offers an acknowledgement to every host, at Redis's time.
static ACK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{NOW}
redis.call('ZADD', KEYS[1], now, ARGV[1])
return now"
    ))
});

/// What Redis holds, as text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Held {
    /// Redis's clock, ms.
    pub now_ms: i64,
    /// (id, encoded silence).
    pub silences: Vec<(String, String)>,
    /// Ids ended early.
    pub ended: Vec<String>,
    /// Encoded acknowledgements of the last [`ACK_KEEP_MS`].
    pub acks: Vec<String>,
}

/// What [`publish`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Published {
    /// Added.
    Added,
    /// Its id is there already, with this data (the same silence, or a clash).
    Held(String),
    /// The silence was ended early somewhere.
    Ended,
    /// Over by Redis's clock.
    Over,
}

/// Reads the shared silences, tombstones and acknowledgements, forgetting what is over.
///
/// # Errors
/// Redis failures.
pub async fn read(conn: &mut ConnectionManager, keys: &Keys) -> RedisResult<Held> {
    let (now_ms, pairs, ended, acks): (i64, Vec<String>, Vec<String>, Vec<String>) = READ
        .key(keys.silences())
        .key(keys.silences_part("ends"))
        .key(keys.silences_part("ended"))
        .key(keys.silences_part("acks"))
        .arg(ENDED_KEEP_MS)
        .arg(ACK_KEEP_MS)
        .invoke_async(conn)
        .await?;
    let silences = pairs
        .chunks_exact(2)
        .filter_map(|pair| match pair {
            [id, data] => Some((id.clone(), data.clone())),
            _ => None,
        })
        .collect();
    Ok(Held {
        now_ms,
        silences,
        ended,
        acks,
    })
}

/// Adds silence `id` (encoded `data`, ending at `ends_ms`) unless ended, over or taken.
///
/// # Errors
/// Redis failures.
pub async fn publish(
    conn: &mut ConnectionManager,
    keys: &Keys,
    id: &str,
    data: &str,
    ends_ms: i64,
) -> RedisResult<Published> {
    let (code, held): (i64, String) = PUBLISH
        .key(keys.silences())
        .key(keys.silences_part("ends"))
        .key(keys.silences_part("ended"))
        .arg(id)
        .arg(data)
        .arg(ends_ms)
        .invoke_async(conn)
        .await?;
    Ok(match code {
        1 => Published::Added,
        2 => Published::Ended,
        3 => Published::Over,
        _ => Published::Held(held),
    })
}

/// Ends silence `id` (which would have ended at `ends_ms`) for every host.
///
/// # Errors
/// Redis failures.
pub async fn end(
    conn: &mut ConnectionManager,
    keys: &Keys,
    id: &str,
    ends_ms: i64,
) -> RedisResult<()> {
    let _: i64 = END
        .key(keys.silences())
        .key(keys.silences_part("ends"))
        .key(keys.silences_part("ended"))
        .arg(id)
        .arg(ends_ms)
        .invoke_async(conn)
        .await?;
    Ok(())
}

/// Records `host`'s count of silence `id` (encoded), kept `keep_secs` (at least
/// [`COUNT_KEEP_SECS`]: pass more for a silence that ends later than that). True when the
/// silence was reported already.
///
/// # Errors
/// Redis failures.
pub async fn count(
    conn: &mut ConnectionManager,
    keys: &Keys,
    id: &str,
    host: &str,
    data: &str,
    keep_secs: u64,
) -> RedisResult<bool> {
    let reported: i64 = COUNT
        .key(keys.silence_of(id, "muted"))
        .key(keys.silence_of(id, "reported"))
        .arg(host)
        .arg(data)
        .arg(keep_secs.max(COUNT_KEEP_SECS))
        .invoke_async(conn)
        .await?;
    Ok(reported == 1)
}

/// Tries to be the host that reports silence `id`: `Some(counts)` ((host, encoded count), every
/// host's) for the winner, `None` when another host reports it.
///
/// # Errors
/// Redis failures.
pub async fn claim(
    conn: &mut ConnectionManager,
    keys: &Keys,
    id: &str,
    host: &str,
) -> RedisResult<Option<Vec<(String, String)>>> {
    let (won, pairs): (i64, Vec<String>) = CLAIM
        .key(keys.silence_of(id, "reported"))
        .key(keys.silence_of(id, "muted"))
        .arg(host)
        .arg(COUNT_KEEP_SECS)
        .invoke_async(conn)
        .await?;
    if won != 1 {
        return Ok(None);
    }
    Ok(Some(
        pairs
            .chunks_exact(2)
            .filter_map(|pair| match pair {
                [host, data] => Some((host.clone(), data.clone())),
                _ => None,
            })
            .collect(),
    ))
}

/// Offers an acknowledgement (encoded) to every host.
///
/// # Errors
/// Redis failures.
pub async fn offer_ack(conn: &mut ConnectionManager, keys: &Keys, data: &str) -> RedisResult<()> {
    let _: i64 = ACK
        .key(keys.silences_part("acks"))
        .arg(data)
        .invoke_async(conn)
        .await?;
    Ok(())
}
