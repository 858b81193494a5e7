//! One hand-off of a host's batch to its robot's Stream, retried with the same id.
//!
//! The id is a hash of the host and the encoded batch ([`crate::cluster::hid`]), and the
//! script adds an entry only for an id it has not seen within an hour. So a call that timed out
//! (it may have been applied) is simply made again: Redis adds the batch once. After a crash the
//! store gives the in-flight batch back to the millisecond, so its id is the same then too.
//! The daemon never hands off a new batch while an unconfirmed one waits (see
//! `daemon::cluster`), so an unconfirmed batch is never merged with another, which would change
//! its id.

use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;

use crate::batch::Batch;
use crate::cluster::{Keys, hid, redis_io};
use crate::state::pending::encode_batch;

/// How one call may take before it counts as unanswered.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// How a hand-off ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandedOff {
    /// Redis has the batch (now, or from an earlier try): the local copy may go.
    Done,
    /// Redis does not have it: keep it and try later.
    NotAdded {
        /// Why, for the log.
        reason: String,
    },
    /// No answer: Redis may have it. Try again with the same batch, alone.
    Unconfirmed {
        /// Why, for the log.
        reason: String,
    },
}

/// Hands `batch` of `host` to robot `rid`, retrying unanswered calls for up to `retry_for`.
pub async fn hand_off(
    mut conn: ConnectionManager,
    keys: &Keys,
    rid: &str,
    host: &str,
    batch: &Batch,
    retry_for: Duration,
) -> HandedOff {
    let encoded = match encode_batch(batch) {
        Ok(encoded) => encoded,
        Err(err) => {
            return HandedOff::NotAdded {
                reason: format!("cannot encode the batch: {err}"),
            };
        }
    };
    let id = hid(host, &encoded);
    let started = Instant::now();
    let mut delay = Duration::from_millis(100);
    let mut unanswered = false;
    loop {
        let call = redis_io::handoff(&mut conn, keys, rid, &id, host, &encoded);
        let reason = match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok(_added)) => return HandedOff::Done,
            Ok(Err(err)) => {
                // An error reply or a refused connection: the script did not run. Anything
                // else (a dropped connection, a timeout) may have come after it ran.
                let before_running = err.is_connection_refusal()
                    || matches!(err.kind(), redis::ErrorKind::Server(_));
                unanswered |= !before_running;
                format!("Redis: {err}")
            }
            Err(_) => {
                unanswered = true;
                format!("Redis did not answer within {}s", CALL_TIMEOUT.as_secs())
            }
        };
        if started.elapsed() + delay >= retry_for {
            return if unanswered {
                HandedOff::Unconfirmed { reason }
            } else {
                HandedOff::NotAdded { reason }
            };
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}
