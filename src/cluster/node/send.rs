//! The node's per-robot work as lease holder: claiming and renewing the lease, taking over what
//! the last holder left, reading new hand-offs, and the send task (the ledger's permit, then the
//! POST) with what its outcome means for the queue, the Stream and the shared pause.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;

use crate::cluster::Keys;
use crate::cluster::holder::{HolderQueue, HolderSend};
use crate::cluster::node::{Deliver, Node, READ_COUNT, READ_EVERY, guarded, ms};
use crate::cluster::redis_io::{self, Permit};
use crate::dingtalk::{Outcome, Verdict};
use crate::metrics::RobotLabel;

/// One call to Redis may take this long before it counts as failed.
const CALL: Duration = Duration::from_secs(3);

/// Everything a send task needs.
pub(super) struct SendJob {
    pub(super) conn: ConnectionManager,
    pub(super) keys: Keys,
    pub(super) rid: String,
    pub(super) robot: String,
    pub(super) per_minute: u32,
    pub(super) window: Duration,
    pub(super) holder: String,
    pub(super) held_until: Arc<Mutex<Option<Instant>>>,
    pub(super) deliver: Deliver,
    pub(super) not_before: Instant,
}

/// A send task's end.
pub(super) struct SendDone {
    rid: String,
    id: u64,
    entries: Vec<String>,
    /// `None`: not sent (the lease lapsed or was lost before a permit).
    outcome: Option<Outcome>,
}

impl SendJob {
    fn is_held(&self, now: Instant) -> bool {
        self.held_until
            .lock()
            .ok()
            .and_then(|guard| *guard)
            .is_some_and(|until| now < until)
    }

    async fn run(mut self, send: HolderSend) -> SendDone {
        let HolderSend {
            id,
            batch,
            repeat,
            entries,
        } = send;
        let done = |outcome| SendDone {
            rid: self.rid.clone(),
            id,
            entries: entries.clone(),
            outcome,
        };
        tokio::time::sleep_until(self.not_before.into()).await;
        let member = format!("{}:{:016x}", self.holder, rand::random::<u64>());
        loop {
            if !self.is_held(Instant::now()) {
                return done(None);
            }
            let permit = redis_io::acquire(
                &mut self.conn,
                &self.keys,
                &self.rid,
                self.per_minute,
                ms(self.window),
                &member,
                &self.holder,
                &entries,
            );
            match tokio::time::timeout(CALL, permit).await {
                Ok(Ok(Permit::Granted)) => break,
                Ok(Ok(Permit::LeaseLost)) => return done(None),
                Ok(Ok(Permit::Wait(wait))) => {
                    let wait = Duration::from_millis(wait).min(Duration::from_secs(5));
                    tokio::time::sleep(wait).await;
                }
                Ok(Err(_)) | Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
        let outcome = (self.deliver)(self.robot.clone(), batch, repeat).await;
        done(Some(outcome))
    }
}

impl Node {
    /// Lease, takeover, reads and sends of robot `rid`, as due.
    pub(super) async fn step_robot(&mut self, rid: &str) {
        let now = Instant::now();
        let usable = self.link.is_connected() && !self.conflict;
        let redis_now = self.redis_now_ms();
        let Some(held) = self.held.get_mut(rid) else {
            return;
        };
        if held.lease.next_claim().is_none_or(|at| now >= at) {
            if usable {
                let claim = redis_io::claim(
                    &mut self.conn,
                    &self.keys,
                    rid,
                    &self.holder_id,
                    ms(self.config.lease),
                );
                match tokio::time::timeout(CALL, claim).await {
                    Ok(Ok(is_held)) => {
                        held.lease.on_claim(now, is_held);
                    }
                    Ok(Err(_)) | Err(_) => held.lease.on_error(now),
                }
            } else {
                held.lease.on_error(now);
            }
            held.set_held_until(held.lease.held_until());
        }
        if !held.lease.is_held(Instant::now()) {
            if held.queue.take().is_some() {
                tracing::warn!(
                    "cluster: robot `{}`: this host no longer holds the sender lease; another host sends",
                    held.spec.name
                );
            }
            held.set_held_until(None);
            held.wake = None;
            return;
        }
        if held.queue.is_none() {
            if !usable {
                return;
            }
            match take_over(&mut self.conn, &self.keys, rid, &self.host, held).await {
                Ok(mut queue) => {
                    // Sends this host made as an earlier holder still count at DingTalk.
                    if let Some(sent) = self.holder_sends.get(rid) {
                        let sent: Vec<Instant> = sent.iter().copied().collect();
                        queue.seed_history(&sent);
                    }
                    held.queue = Some(queue);
                }
                Err(err) => {
                    tracing::warn!(
                        "cluster: robot `{}`: cannot take over the hand-offs yet: {err}",
                        held.spec.name
                    );
                    return;
                }
            }
        }
        let Some(queue) = held.queue.as_mut() else {
            return;
        };
        if usable && now >= held.next_read {
            let read = redis_io::read_new(&mut self.conn, &self.keys, rid, &self.host, READ_COUNT);
            if let Ok(Ok(entries)) = tokio::time::timeout(CALL, read).await {
                let full = entries.len() >= READ_COUNT;
                for entry in entries {
                    match entry.batch {
                        Some(batch) => {
                            queue.add(&entry.id, batch, false, now);
                        }
                        None => undecodable(&held.spec.name, &entry.id, &entry.host),
                    }
                }
                // A backlog is read at once, not one page per poll.
                held.next_read = if full { now } else { now + READ_EVERY };
            } else {
                held.next_read = now + READ_EVERY;
            }
        }
        self.metrics
            .cluster_handoff_lag_seconds
            .get_or_create(&RobotLabel {
                robot: held.spec.name.clone(),
            })
            .set(lag_seconds(queue.oldest_entry_ms(), redis_now));
        if held.sending {
            return;
        }
        match queue.poll(Instant::now()) {
            Ok(send) => {
                held.sending = true;
                held.wake = None;
                let job = SendJob {
                    conn: self.conn.clone(),
                    keys: self.keys.clone(),
                    rid: rid.to_owned(),
                    robot: held.spec.name.clone(),
                    per_minute: held.spec.queue.per_minute,
                    window: guarded(held.spec.queue.window),
                    holder: self.holder_id.clone(),
                    held_until: held.held_until.clone(),
                    deliver: self.deliver.clone(),
                    not_before: self.send_after,
                };
                self.sends.spawn(job.run(send));
            }
            Err(wake) => held.wake = wake,
        }
    }

    /// A send task ended: settle its entries, say what happened, pause the robot for everyone
    /// on a throttle answer.
    pub(super) async fn on_send_done(&mut self, done: SendDone) {
        let SendDone {
            rid,
            id,
            entries,
            outcome,
        } = done;
        let Some(held) = self.held.get_mut(&rid) else {
            return;
        };
        held.sending = false;
        let robot = held.spec.name.clone();
        if outcome.is_some() {
            self.note_holder_send(&rid, Instant::now());
        }
        let Some(held) = self.held.get_mut(&rid) else {
            return;
        };
        let label = RobotLabel {
            robot: robot.clone(),
        };
        let verdict = outcome
            .as_ref()
            .map_or(Verdict::Transient, Outcome::verdict);
        match &outcome {
            None => tracing::info!(
                "cluster: robot `{robot}`: not sent (the sender lease lapsed first); the hand-offs stay in Redis"
            ),
            Some(Outcome::Delivered) => {
                self.metrics.messages_sent.get_or_create(&label).inc();
                tracing::debug!(
                    "cluster: robot `{robot}`: {} hand-off(s) delivered",
                    entries.len()
                );
            }
            Some(Outcome::Throttled { code, .. }) => {
                self.metrics.messages_throttled.get_or_create(&label).inc();
                let pause = held.spec.queue.throttle_pause;
                tracing::warn!(
                    "cluster: robot `{robot}`: DingTalk throttled it (errcode {code}); every host pauses it for {}",
                    humantime::format_duration(pause)
                );
                if let Err(err) = redis_io::block(&mut self.conn, &self.keys, &rid, ms(pause)).await
                {
                    tracing::warn!("cluster: robot `{robot}`: cannot share the pause: {err}");
                }
            }
            Some(Outcome::Unknown { reason }) => {
                self.metrics.messages_unanswered.get_or_create(&label).inc();
                tracing::warn!(
                    "cluster: robot `{robot}`: no answer ({reason}); sent again by itself, marked as a possible repeat"
                );
            }
            Some(other) => {
                self.metrics.messages_failed.get_or_create(&label).inc();
                tracing::warn!("cluster: robot `{robot}`: delivery failed: {other:?}");
            }
        }
        let Some(queue) = held.queue.as_mut() else {
            // The lease went while the message was on its way: what arrived is acknowledged
            // (the new holder may have taken the entries, and sends what is left).
            if outcome == Some(Outcome::Delivered) {
                self.acks.push((rid, entries));
            }
            return;
        };
        let settled = queue.on_verdict(id, verdict, Instant::now(), rand::random::<f64>());
        if !settled.ack.is_empty() {
            self.acks.push((rid, settled.ack));
            self.flush_acks().await;
        } else if settled.not_delivered
            && let Err(err) = redis_io::clear_inflight(&mut self.conn, &self.keys, &rid).await
        {
            tracing::debug!("cluster: robot `{robot}`: cannot clear the in-flight record: {err}");
        }
    }
}

/// Seconds since the oldest hand-off the holder has not delivered was added (by Redis's clock,
/// as the Stream ids are).
fn lag_seconds(oldest_ms: Option<u64>, redis_now_ms: Option<u64>) -> f64 {
    match (oldest_ms, redis_now_ms) {
        (Some(oldest), Some(now)) => now.saturating_sub(oldest) as f64 / 1000.0,
        _ => 0.0,
    }
}

/// The lease is newly held: read which entries the last holder had in flight and claim every
/// entry not acknowledged; returns the robot's queue.
async fn take_over(
    conn: &mut ConnectionManager,
    keys: &Keys,
    rid: &str,
    host: &str,
    held: &super::Held,
) -> redis::RedisResult<HolderQueue> {
    redis_io::ensure_group(conn, keys, rid, &held.spec.name).await?;
    let in_flight: BTreeSet<String> = redis_io::inflight(conn, keys, rid)
        .await?
        .into_iter()
        .collect();
    let entries = redis_io::claim_all(conn, keys, rid, host).await?;
    let now = Instant::now();
    let mut queue = HolderQueue::new(held.spec.queue);
    let (mut taken, mut maybe_sent) = (0, 0);
    for entry in entries {
        let Some(batch) = entry.batch else {
            undecodable(&held.spec.name, &entry.id, &entry.host);
            continue;
        };
        let doubtful = in_flight.contains(&entry.id);
        if queue.add(&entry.id, batch, doubtful, now) {
            taken += 1;
            maybe_sent += usize::from(doubtful);
        }
    }
    tracing::info!(
        "cluster: this host now sends for robot `{}` ({taken} hand-off(s) taken over, {maybe_sent} of them possibly sent by the last sender and marked as such)",
        held.spec.name
    );
    Ok(queue)
}

fn undecodable(robot: &str, entry: &str, host: &str) {
    tracing::error!(
        "cluster: robot `{robot}`: hand-off {entry} from host `{}` cannot be read (a newer dingtail?); it stays in Redis",
        host.escape_debug()
    );
}
