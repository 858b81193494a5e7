//! The lease holder's deciding parts, pure: [`HolderQueue`] (the robot's queue fed with every
//! host's hand-offs, knowing which Stream entries each send carries, so that exactly the
//! delivered ones are acknowledged) and [`LeaseTimer`] (when to renew, and when a lease that
//! could not be renewed has lapsed and sending must stop).
//!
//! The queue is the daemon's own `RobotQueue` (gathering, pacing, backoff, throttle pause,
//! doubtful batches sent alone and marked), so a cluster's sender behaves like a lone daemon;
//! the ledger on Redis is an extra gate in front of each send. Entry ids follow their batch
//! through the queue's transitions: a send takes the pending (or doubtful) ids with the
//! batch; `Delivered` acknowledges them; no answer makes them doubtful; a failure with an
//! answer puts them back where the batch went.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::batch::Batch;
use crate::dingtalk::Verdict;
use crate::dispatch::queue::{Action, QueueConfig, RobotQueue};

/// A send the holder must make now.
#[derive(Debug, PartialEq)]
pub struct HolderSend {
    /// The queue's id of the send (report it back with [`HolderQueue::on_verdict`]).
    pub id: u64,
    /// What to send: every host's hand-offs folded, counts exact.
    pub batch: Batch,
    /// It may repeat a message the group has (mark it).
    pub repeat: bool,
    /// The Stream entries it carries.
    pub entries: Vec<String>,
}

/// What the holder must do after a verdict.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Settled {
    /// Entries delivered (or given up): acknowledge and delete them.
    pub ack: Vec<String>,
    /// The send failed with an answer: nothing of it arrived, so it is no longer in flight.
    pub not_delivered: bool,
}

#[derive(Debug)]
struct InFlight {
    id: u64,
    entries: Vec<String>,
    repeat: bool,
    had_samples: bool,
}

/// One robot's queue on the lease holder.
#[derive(Debug)]
pub struct HolderQueue {
    queue: RobotQueue,
    pending: Vec<String>,
    doubtful: Vec<String>,
    in_flight: Option<InFlight>,
    known: BTreeSet<String>,
}

impl HolderQueue {
    /// An empty queue with the robot's timing.
    pub fn new(config: QueueConfig) -> HolderQueue {
        HolderQueue {
            queue: RobotQueue::new(config),
            pending: Vec::new(),
            doubtful: Vec::new(),
            in_flight: None,
            known: BTreeSet::new(),
        }
    }

    /// Adds hand-off `entry`; `maybe_sent` when an earlier holder may have sent it already (it
    /// was in flight when that holder stopped): it is then sent alone, marked. An entry already
    /// in the queue is ignored. Returns whether it was new.
    pub fn add(&mut self, entry: &str, batch: Batch, maybe_sent: bool, now: Instant) -> bool {
        if !self.known.insert(entry.to_owned()) {
            return false;
        }
        if maybe_sent {
            self.doubtful.push(entry.to_owned());
            self.queue.restore(Batch::default(), batch, now);
        } else {
            self.pending.push(entry.to_owned());
            self.queue.restore(batch, Batch::default(), now);
        }
        true
    }

    /// What to do at `now`: a send, or when to look again (`None`: nothing pending, or a send
    /// is in flight).
    pub fn poll(&mut self, now: Instant) -> Result<HolderSend, Option<Instant>> {
        match self.queue.poll(now) {
            Action::Send { id, batch, repeat } => {
                let entries = std::mem::take(if repeat {
                    &mut self.doubtful
                } else {
                    &mut self.pending
                });
                self.in_flight = Some(InFlight {
                    id,
                    entries: entries.clone(),
                    repeat,
                    had_samples: batch.has_samples(),
                });
                Ok(HolderSend {
                    id,
                    batch,
                    repeat,
                    entries,
                })
            }
            Action::WakeAt(at) => Err(Some(at)),
            Action::AwaitVerdict | Action::Idle => Err(None),
        }
    }

    /// Reports how send `id` went; `unit` is a random draw in `[0, 1)`.
    pub fn on_verdict(&mut self, id: u64, verdict: Verdict, now: Instant, unit: f64) -> Settled {
        let flight = match self.in_flight.take() {
            Some(flight) if flight.id == id => flight,
            other => {
                self.in_flight = other;
                return Settled::default();
            }
        };
        self.queue.on_verdict(id, verdict, now, unit);
        let InFlight {
            entries,
            repeat,
            had_samples,
            ..
        } = flight;
        let back = |this: &mut HolderQueue, entries: Vec<String>| {
            if repeat {
                this.doubtful.extend(entries);
            } else {
                this.pending.extend(entries);
            }
        };
        match verdict {
            Verdict::Delivered => self.settle(entries, false),
            Verdict::RejectedContent if !had_samples => self.settle(entries, true),
            Verdict::Unknown => {
                self.doubtful.extend(entries);
                Settled::default()
            }
            Verdict::Throttled
            | Verdict::Transient
            | Verdict::Rejected
            | Verdict::RejectedContent => {
                back(self, entries);
                Settled {
                    ack: Vec::new(),
                    not_delivered: true,
                }
            }
        }
    }

    fn settle(&mut self, entries: Vec<String>, not_delivered: bool) -> Settled {
        for entry in &entries {
            self.known.remove(entry);
        }
        Settled {
            ack: entries,
            not_delivered,
        }
    }

    /// The Redis time (ms) at which the oldest entry held was added (Stream ids start with it).
    pub fn oldest_entry_ms(&self) -> Option<u64> {
        let in_flight = self
            .in_flight
            .iter()
            .flat_map(|flight| flight.entries.iter());
        self.pending
            .iter()
            .chain(&self.doubtful)
            .chain(in_flight)
            .filter_map(|id| id.split_once('-').and_then(|(ms, _)| ms.parse().ok()))
            .min()
    }

    /// Matches held (pending, doubtful, in flight).
    pub fn n_undelivered(&self) -> u64 {
        self.queue.n_undelivered()
    }

    /// Takes over the robot's sends of the last window (seen on this host, oldest first).
    pub fn seed_history(&mut self, sent: &[Instant]) {
        self.queue.seed_history(sent);
    }
}

/// The lease as its holder sees it: held until the last successful claim was *sent* plus the
/// lease (Redis started the lease's time later than that, so this side always stops first).
#[derive(Clone, Copy, Debug)]
pub struct LeaseTimer {
    lease: Duration,
    held_until: Option<Instant>,
    last_try: Option<Instant>,
}

impl LeaseTimer {
    /// No lease held yet.
    pub fn new(lease: Duration) -> LeaseTimer {
        LeaseTimer {
            lease,
            held_until: None,
            last_try: None,
        }
    }

    /// A claim (or renewal) was sent at `sent_at`; `held` is Redis's answer. Returns true when
    /// this made the lease newly held (a takeover: read what others left).
    pub fn on_claim(&mut self, sent_at: Instant, held: bool) -> bool {
        let was_held = self.is_held(sent_at);
        self.last_try = Some(sent_at);
        self.held_until = held.then_some(sent_at + self.lease);
        held && !was_held
    }

    /// A claim could not be made (Redis unreachable) at `now`: the lease stays until it lapses.
    pub fn on_error(&mut self, now: Instant) {
        self.last_try = Some(now);
    }

    /// True while this host may send as the holder.
    pub fn is_held(&self, now: Instant) -> bool {
        self.held_until.is_some_and(|until| now < until)
    }

    /// When the lease lapses unless renewed.
    pub fn held_until(&self) -> Option<Instant> {
        self.held_until
    }

    /// When to claim (renew) next: every third of the lease.
    pub fn next_claim(&self) -> Option<Instant> {
        self.last_try.map(|at| at + self.lease / 3)
    }

    /// The lease was given back (shutdown).
    pub fn release(&mut self) {
        self.held_until = None;
    }
}

#[cfg(test)]
mod tests;
