//! The cluster's Redis calls: its Lua scripts and the typed commands around them. The only file
//! that knows the scripts' arguments and the replies' shapes; everything that decides is
//! elsewhere.
//!
//! Every script reads Redis's `TIME` itself, so no host's clock reaches the ledger, the lease or
//! the heartbeats (since Redis 5 scripts replicate by their effects, so `TIME` before writes is
//! fine). Scripts go by `EVALSHA`; after a Redis restart or failover the script cache is empty
//! and `redis::Script::invoke_async` loads the script and retries on `NOSCRIPT`.

use std::sync::LazyLock;

use redis::aio::ConnectionManager;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use redis::{RedisResult, Script};

use crate::batch::Batch;
use crate::cluster::{DEDUPE_TTL_SECS, GROUP, Keys};
use crate::state::pending::decode_batch;

/// `now` in ms from Redis `TIME`, as a Lua prelude.
const NOW: &str = "local t = redis.call('TIME')\n\
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n";

/// KEYS: claim, hosts, pending. ARGV: instance, ttl ms, host, pending, recent ms.
/// Returns {1 | 0 (the name is another instance's), now, hosts seen within `recent`}.
static HEARTBEAT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{NOW}
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then
  return {{0, now, 0}}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('ZADD', KEYS[2], now, ARGV[3])
redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 86400000)
return {{1, now, redis.call('ZCOUNT', KEYS[2], now - tonumber(ARGV[5]), '+inf')}}"
    ))
});

/// KEYS: stream, seen. ARGV: hid, host, batch, ttl s. Adds the entry unless `hid` was seen.
/// Returns 1 (added) or 0 (a retry of a hand-off Redis already has). The entry is added before
/// its id is remembered: a script stopped by an error in between (out of memory) has added
/// nothing.
static HANDOFF: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "if redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('XGROUP', 'CREATE', KEYS[1], '{GROUP}', '0', 'MKSTREAM')
end
redis.call('XADD', KEYS[1], '*', 'id', ARGV[1], 'host', ARGV[2], 'batch', ARGV[3])
redis.call('SET', KEYS[2], '1', 'EX', ARGV[4])
return 1"
    ))
});

/// KEYS: lease. ARGV: holder, ttl ms. Takes or renews the lease when it is free or the
/// caller's. Returns 1 (held) or 0 (another holder's).
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1",
    )
});

/// KEYS: lease. ARGV: holder. Frees the lease if it is the caller's.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0",
    )
});

/// KEYS: sent, blocked_until, lease, inflight. ARGV: per_minute, window ms, member, holder (''
/// when not a lease holder), then the Stream entries the send carries.
/// Returns {1, 0} (spend it: send now), {0, wait ms} or {-1, 0} (the lease is not the caller's).
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{NOW}
if ARGV[4] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[4] then
  return {{-1, 0}}
end
local blocked = tonumber(redis.call('GET', KEYS[2]) or '0')
if blocked > now then
  return {{0, blocked - now}}
end
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - window))
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  if #ARGV > 4 then
    redis.call('DEL', KEYS[4])
    for i = 5, #ARGV do
      redis.call('SADD', KEYS[4], ARGV[i])
    end
    redis.call('PEXPIRE', KEYS[4], 86400000)
  end
  return {{1, 0}}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {{0, math.max(1, tonumber(oldest[2]) + window - now)}}"
    ))
});

/// KEYS: blocked_until. ARGV: pause ms. Pauses the robot for everyone (never shortens a pause).
static BLOCK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{NOW}
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local till = math.max(cur, now + tonumber(ARGV[1]))
redis.call('SET', KEYS[1], till, 'PX', till - now)
return till - now"
    ))
});

/// KEYS: stream, inflight. ARGV: the delivered entries. Acknowledges and deletes them.
static ACK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "for i = 1, #ARGV do
  redis.call('XACK', KEYS[1], '{GROUP}', ARGV[i])
  redis.call('XDEL', KEYS[1], ARGV[i])
end
redis.call('DEL', KEYS[2])
return #ARGV"
    ))
});

/// KEYS: sent, blocked_until. ARGV: window ms, member prefix, `always` or `if_empty`, then ages
/// in ms of this host's sends. Adds them at Redis's now minus their age (`if_empty`: only when
/// the ledger has nothing in the window, i.e. Redis lost it); returns the robot's block (ms
/// left).
static RESEED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{NOW}
local window = tonumber(ARGV[1])
local add = ARGV[3] == 'always' or redis.call('ZCOUNT', KEYS[1], now - window, '+inf') == 0
if add and #ARGV > 3 then
  for i = 4, #ARGV do
    local age = tonumber(ARGV[i])
    if age < window then
      redis.call('ZADD', KEYS[1], now - age, ARGV[2] .. ':' .. i)
    end
  end
  redis.call('PEXPIRE', KEYS[1], window)
end
local blocked = tonumber(redis.call('GET', KEYS[2]) or '0')
return math.max(0, blocked - now)"
    ))
});

/// What a heartbeat learned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Beat {
    /// The host name is held by another instance: two daemons with one name.
    pub conflict: bool,
    /// Redis's clock, ms.
    pub now_ms: i64,
    /// Hosts whose heartbeat is recent.
    pub hosts: u32,
}

/// The ledger's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permit {
    /// A send was counted: send now.
    Granted,
    /// The budget (or a throttle pause) says wait this many ms.
    Wait(u64),
    /// The caller no longer holds the lease: it must not send.
    LeaseLost,
}

/// One hand-off read from a robot's Stream.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The Stream entry id (what is acknowledged).
    pub id: String,
    /// The host that handed it off.
    pub host: String,
    /// Its batch, or `None` when it cannot be decoded (a newer dingtail's format).
    pub batch: Option<Batch>,
}

/// Beats for `host` (instance `instance`), saying how many matches it holds.
///
/// # Errors
/// Redis failures.
pub async fn heartbeat(
    conn: &mut ConnectionManager,
    keys: &Keys,
    host: &str,
    instance: &str,
    ttl_ms: u64,
    pending: u64,
    recent_ms: u64,
) -> RedisResult<Beat> {
    let (ok, now_ms, hosts): (i64, i64, i64) = HEARTBEAT
        .key(keys.claim(host))
        .key(keys.hosts())
        .key(keys.pending())
        .arg(instance)
        .arg(ttl_ms)
        .arg(host)
        .arg(pending)
        .arg(recent_ms)
        .invoke_async(conn)
        .await?;
    Ok(Beat {
        conflict: ok == 0,
        now_ms,
        hosts: u32::try_from(hosts).unwrap_or(u32::MAX),
    })
}

/// Hands `encoded` (hand-off id `hid`) to robot `rid`'s Stream. True when added, false when
/// Redis already had it.
///
/// # Errors
/// Redis failures: the hand-off may or may not have been added; retry with the same `hid`.
pub async fn handoff(
    conn: &mut ConnectionManager,
    keys: &Keys,
    rid: &str,
    hid: &str,
    host: &str,
    encoded: &str,
) -> RedisResult<bool> {
    let added: i64 = HANDOFF
        .key(keys.robot(rid, "stream"))
        .key(keys.seen(rid, hid))
        .arg(hid)
        .arg(host)
        .arg(encoded)
        .arg(DEDUPE_TTL_SECS)
        .invoke_async(conn)
        .await?;
    Ok(added == 1)
}

/// Takes or renews robot `rid`'s lease for `holder`. True when held.
///
/// # Errors
/// Redis failures.
pub async fn claim(
    conn: &mut ConnectionManager,
    keys: &Keys,
    rid: &str,
    holder: &str,
    ttl_ms: u64,
) -> RedisResult<bool> {
    let held: i64 = CLAIM
        .key(keys.robot(rid, "lease"))
        .arg(holder)
        .arg(ttl_ms)
        .invoke_async(conn)
        .await?;
    Ok(held == 1)
}

/// Frees robot `rid`'s lease if `holder` has it.
///
/// # Errors
/// Redis failures.
pub async fn release(
    conn: &mut ConnectionManager,
    keys: &Keys,
    rid: &str,
    holder: &str,
) -> RedisResult<()> {
    let _: i64 = RELEASE
        .key(keys.robot(rid, "lease"))
        .arg(holder)
        .invoke_async(conn)
        .await?;
    Ok(())
}

/// Asks the ledger for one send of robot `rid`: `per_minute` per `window_ms` for the whole
/// cluster. `holder` (empty when not sending as lease holder) must still hold the lease;
/// `entries` are the Stream entries the send carries (recorded as in flight).
///
/// # Errors
/// Redis failures: nothing may be sent then.
#[allow(clippy::too_many_arguments)]
pub async fn acquire(
    conn: &mut ConnectionManager,
    keys: &Keys,
    rid: &str,
    per_minute: u32,
    window_ms: u64,
    member: &str,
    holder: &str,
    entries: &[String],
) -> RedisResult<Permit> {
    let mut call = ACQUIRE.key(keys.robot(rid, "sent"));
    call.key(keys.robot(rid, "blocked_until"))
        .key(keys.robot(rid, "lease"))
        .key(keys.robot(rid, "inflight"))
        .arg(per_minute)
        .arg(window_ms)
        .arg(member)
        .arg(holder);
    for entry in entries {
        call.arg(entry);
    }
    let (code, wait): (i64, i64) = call.invoke_async(conn).await?;
    Ok(match code {
        1 => Permit::Granted,
        -1 => Permit::LeaseLost,
        _ => Permit::Wait(u64::try_from(wait).unwrap_or(1).max(1)),
    })
}

/// DingTalk throttled robot `rid`: pause it for everyone for `pause_ms`.
///
/// # Errors
/// Redis failures.
pub async fn block(
    conn: &mut ConnectionManager,
    keys: &Keys,
    rid: &str,
    pause_ms: u64,
) -> RedisResult<()> {
    let _: i64 = BLOCK
        .key(keys.robot(rid, "blocked_until"))
        .arg(pause_ms)
        .invoke_async(conn)
        .await?;
    Ok(())
}

/// Acknowledges (and deletes) robot `rid`'s delivered `entries`; clears the in-flight record.
///
/// # Errors
/// Redis failures.
pub async fn ack(
    conn: &mut ConnectionManager,
    keys: &Keys,
    rid: &str,
    entries: &[String],
) -> RedisResult<()> {
    let mut call = ACK.key(keys.robot(rid, "stream"));
    call.key(keys.robot(rid, "inflight"));
    for entry in entries {
        call.arg(entry);
    }
    let _: i64 = call.invoke_async(conn).await?;
    Ok(())
}

/// The send under way failed with an answer (nothing was delivered): forget its entries as in
/// flight, so that a takeover does not mark them as possible repeats.
///
/// # Errors
/// Redis failures.
pub async fn clear_inflight(
    conn: &mut ConnectionManager,
    keys: &Keys,
    rid: &str,
) -> RedisResult<()> {
    redis::cmd("DEL")
        .arg(keys.robot(rid, "inflight"))
        .query_async(conn)
        .await
}

/// Adds this host's sends of the last window (`ages_ms` ago) to robot `rid`'s ledger: direct
/// sends always, a sender's own sends only when Redis lost the ledger (`only_if_empty`);
/// returns how long the robot is still throttled (ms).
///
/// # Errors
/// Redis failures.
pub async fn reseed(
    conn: &mut ConnectionManager,
    keys: &Keys,
    rid: &str,
    window_ms: u64,
    member_prefix: &str,
    only_if_empty: bool,
    ages_ms: &[u64],
) -> RedisResult<u64> {
    let mut call = RESEED.key(keys.robot(rid, "sent"));
    call.key(keys.robot(rid, "blocked_until"))
        .arg(window_ms)
        .arg(member_prefix)
        .arg(if only_if_empty { "if_empty" } else { "always" });
    for age in ages_ms {
        call.arg(*age);
    }
    let left: i64 = call.invoke_async(conn).await?;
    Ok(u64::try_from(left).unwrap_or(0))
}

/// Creates robot `rid`'s consumer group (and Stream) unless it exists, and names the robot.
///
/// # Errors
/// Redis failures other than "the group exists".
pub async fn ensure_group(
    conn: &mut ConnectionManager,
    keys: &Keys,
    rid: &str,
    name: &str,
) -> RedisResult<()> {
    let created: RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(keys.robot(rid, "stream"))
        .arg(GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    if let Err(err) = created
        && err.code() != Some("BUSYGROUP")
    {
        return Err(err);
    }
    redis::cmd("SET")
        .arg(keys.robot(rid, "name"))
        .arg(name)
        .query_async(conn)
        .await
}

/// The Stream entries of the send that was under way when the last holder stopped.
///
/// # Errors
/// Redis failures.
pub async fn inflight(
    conn: &mut ConnectionManager,
    keys: &Keys,
    rid: &str,
) -> RedisResult<Vec<String>> {
    redis::cmd("SMEMBERS")
        .arg(keys.robot(rid, "inflight"))
        .query_async(conn)
        .await
}

/// Takes every entry handed off but not acknowledged, whoever read it before (a takeover).
///
/// # Errors
/// Redis failures.
pub async fn claim_all(
    conn: &mut ConnectionManager,
    keys: &Keys,
    rid: &str,
    consumer: &str,
) -> RedisResult<Vec<Entry>> {
    let stream = keys.robot(rid, "stream");
    let mut cursor = "0-0".to_owned();
    let mut out = Vec::new();
    loop {
        let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
            .arg(&stream)
            .arg(GROUP)
            .arg(consumer)
            .arg(0)
            .arg(&cursor)
            .arg("COUNT")
            .arg(500)
            .query_async(conn)
            .await?;
        out.extend(reply.claimed.iter().map(entry));
        if reply.next_stream_id == "0-0" || reply.claimed.is_empty() {
            return Ok(out);
        }
        cursor = reply.next_stream_id;
    }
}

/// Reads up to `count` entries no consumer has read yet (no blocking: the connection is
/// shared).
///
/// # Errors
/// Redis failures.
pub async fn read_new(
    conn: &mut ConnectionManager,
    keys: &Keys,
    rid: &str,
    consumer: &str,
    count: usize,
) -> RedisResult<Vec<Entry>> {
    let reply: Option<StreamReadReply> = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(GROUP)
        .arg(consumer)
        .arg("COUNT")
        .arg(count)
        .arg("STREAMS")
        .arg(keys.robot(rid, "stream"))
        .arg(">")
        .query_async(conn)
        .await?;
    Ok(reply
        .map(|reply| {
            reply
                .keys
                .iter()
                .flat_map(|key| key.ids.iter().map(entry))
                .collect()
        })
        .unwrap_or_default())
}

fn entry(id: &StreamId) -> Entry {
    let text = |field: &str| id.get::<String>(field).unwrap_or_default();
    Entry {
        id: id.id.clone(),
        host: text("host"),
        batch: decode_batch(&text("batch")).ok(),
    }
}
