//! The Redis side of `scope: cluster` thresholds: the Lua script that counts a key's matches on
//! Redis's clock, claims, folds into, hands over and ends its incident, and the one pipelined
//! call that runs it for every key of an exchange. What to step when, and what the answers
//! mean, is [`crate::cluster::threshold`]'s.
//!
//! Per key (rule and `group_by` values, hashed: log text never shapes a Redis key and reaches
//! the script only as an argument) two keys share one hash tag, so the script touches one slot:
//! `P{thr:<hash>}:n`, a HASH bucket → count (bucket = Redis ms / width), and `P{thr:<hash>}:inc`,
//! the open incident (`owner`, `until`, `first`, `total`, `reported`, `last`).

use std::sync::LazyLock;

use redis::aio::ConnectionManager;
use redis::{ErrorKind, RedisResult, Script, Value};
use sha2::{Digest, Sha256};

use crate::alert::GroupKey;
use crate::cluster::Keys;
use crate::cluster::threshold::{Answer, State, Step};

/// KEYS: buckets, incident. ARGV: n, host, count, within ms, bucket ms, hold ms (the owner's
/// lease), end ms (quiet that ends an incident), reported (as the caller knows it), claim (1:
/// the caller holds a line and may open the incident).
///
/// With an open incident: the `n` matches fold into it (`total`, `last`); its owner (or the
/// first caller after the owner's lease lapsed: `took`) renews the lease, and ends it when the
/// cluster has been quiet for the end period (`ended`, only on a step without matches; the
/// ended incident stays three leases for its owner only, which gets `ended` again if it steps
/// it as still open: the first answer was lost; for everyone else it is gone). The
/// owner that opened it and has not yet said so (`known` is 0 until a step of the owner
/// reports something) gets `claimed` again while it still holds a line: the answer to its
/// claim was lost (a failed or timed-out exchange), so the alert was never sent.
/// Without one: `n` goes into the current bucket, the buckets of the window are summed (older
/// ones deleted, and those past the current one: left by another bucket width, after `within`
/// changed), and a sum of at least `count` with matches in this step opens the incident
/// for the caller if it may claim (`claimed`; the buckets go: the incident absorbs every match until it ends).
/// Returns {state, sum, first ms, total, reported, last ms, now ms}.
static STEP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = tonumber(ARGV[1])
local host = ARGV[2]
local count = tonumber(ARGV[3])
local within = tonumber(ARGV[4])
local width = tonumber(ARGV[5])
local hold = tonumber(ARGV[6])
local quiet = tonumber(ARGV[7])
local told = tonumber(ARGV[8])
local may_claim = ARGV[9] == '1'
local keep = quiet + hold * 3
local inc = redis.call('HMGET', KEYS[2], 'owner', 'until', 'first', 'total', 'reported', 'last',
  'known', 'ended')
if inc[1] and inc[8] then
  -- An ended incident, kept a little for its owner: the answer 'ended' may have been lost.
  if inc[1] == host and told > 0 then
    redis.call('DEL', KEYS[2])
    if n > 0 then
      redis.call('HINCRBY', KEYS[1], math.floor(now / width), n)
      redis.call('PEXPIRE', KEYS[1], within + width)
    end
    return {'ended', 0, tonumber(inc[3]), tonumber(inc[4]), tonumber(inc[5]), tonumber(inc[6]),
      now}
  end
  inc[1] = false
end
if inc[1] then
  local total = tonumber(inc[4]) + n
  local reported = math.max(tonumber(inc[5]), told)
  local last = tonumber(inc[6])
  if n > 0 then last = now end
  if inc[1] == host and told == 0 and inc[7] == '0' and may_claim then
    redis.call('HSET', KEYS[2], 'until', now + hold, 'total', total, 'reported', total,
      'last', last)
    redis.call('PEXPIRE', KEYS[2], keep)
    return {'claimed', total, tonumber(inc[3]), total, total, last, now}
  end
  local state = 'theirs'
  if inc[1] == host then
    state = 'mine'
  elseif tonumber(inc[2]) < now then
    state = 'took'
  end
  if state ~= 'theirs' and n == 0 and now - last >= quiet then
    redis.call('HSET', KEYS[2], 'owner', host, 'total', total, 'reported', reported, 'ended', 1)
    redis.call('PEXPIRE', KEYS[2], hold * 3)
    return {'ended', 0, tonumber(inc[3]), total, reported, last, now}
  end
  redis.call('HSET', KEYS[2], 'total', total, 'reported', reported, 'last', last)
  if state ~= 'theirs' then
    redis.call('HSET', KEYS[2], 'owner', host, 'until', now + hold)
    -- A takeover continues the incident; an owner reporting something got its claim.
    if state == 'took' or told > 0 then redis.call('HSET', KEYS[2], 'known', 1) end
  end
  redis.call('PEXPIRE', KEYS[2], keep)
  return {state, 0, tonumber(inc[3]), total, reported, last, now}
end
local b = math.floor(now / width)
local span = math.ceil(within / width)
if n > 0 then
  redis.call('HINCRBY', KEYS[1], b, n)
  redis.call('PEXPIRE', KEYS[1], within + width)
end
local sum = 0
local first = b
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local k = tonumber(all[i])
  if k > b - span and k <= b then
    sum = sum + tonumber(all[i + 1])
    if k < first then first = k end
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
if n > 0 and may_claim and sum >= count then
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('HSET', KEYS[2], 'owner', host, 'until', now + hold, 'first', first * width,
    'total', sum, 'reported', sum, 'last', now, 'known', 0)
  redis.call('PEXPIRE', KEYS[2], keep)
  return {'claimed', sum, first * width, sum, sum, now, now}
end
return {'below', sum, first * width, 0, 0, 0, now}",
    )
});

/// The hash naming `key` of `rule` in the key space (each part length-prefixed, so that no
/// two keys share it by where their values split).
pub fn key_hash(rule: &str, key: &GroupKey) -> String {
    let mut hasher = Sha256::new();
    for part in std::iter::once(rule).chain(key.values()) {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hasher
        .finalize()
        .iter()
        .take(16)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Runs `steps` for `host` (owner lease `hold_ms`) in one pipelined call, their answers in
/// order; with no steps, a `PING` (is Redis back?).
///
/// # Errors
/// Redis failed or answered something the script does not return.
pub async fn exchange(
    conn: &mut ConnectionManager,
    keys: &Keys,
    host: &str,
    hold_ms: u64,
    steps: &[Step],
) -> RedisResult<Vec<Answer>> {
    if steps.is_empty() {
        redis::cmd("PING").query_async::<String>(conn).await?;
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for step in steps {
        let hash = key_hash(&step.rule, &step.key);
        pipe.cmd("EVALSHA")
            .arg(STEP.get_hash())
            .arg(2)
            .arg(keys.threshold(&hash, "n"))
            .arg(keys.threshold(&hash, "inc"))
            .arg(step.n)
            .arg(host)
            .arg(step.count)
            .arg(step.within_ms)
            .arg(step.bucket_ms)
            .arg(hold_ms)
            .arg(step.end_after_ms)
            .arg(step.reported)
            .arg(if step.claim { "1" } else { "0" });
    }
    let values: Vec<Value> = match pipe.query_async(conn).await {
        Err(err) if err.kind() == ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
            STEP.prepare_invoke().load_async(conn).await?;
            pipe.query_async(conn).await?
        }
        other => other?,
    };
    values.into_iter().map(answer).collect()
}

fn answer(value: Value) -> RedisResult<Answer> {
    let (state, sum, first_ms, total, reported, last_ms, now_ms): (
        String,
        u64,
        i64,
        u64,
        u64,
        i64,
        i64,
    ) = redis::from_redis_value(value)?;
    let state = match state.as_str() {
        "below" => State::Below,
        "claimed" => State::Claimed,
        "mine" => State::Mine,
        "took" => State::Took,
        "theirs" => State::Theirs,
        "ended" => State::Ended,
        other => {
            return Err(redis::RedisError::from((
                ErrorKind::Parse,
                "unknown threshold state",
                other.to_string(),
            )));
        }
    };
    Ok(Answer {
        state,
        sum,
        first_ms,
        total,
        reported,
        last_ms,
        now_ms,
    })
}
