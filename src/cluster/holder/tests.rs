//! Unit tests of `crate::cluster::holder` on a fake timeline.
use std::time::{Duration, Instant, SystemTime};

use crate::batch::{Batch, Hit, Rendered};
use crate::cluster::holder::{HolderQueue, LeaseTimer, Settled};
use crate::dingtalk::Verdict;
use crate::dispatch::queue::QueueConfig;
use crate::event::{Mentions, Severity};

fn config() -> QueueConfig {
    QueueConfig {
        per_minute: 20,
        window: Duration::from_secs(60),
        linger: Duration::from_secs(2),
        throttle_pause: Duration::from_secs(600),
        backoff_max: Duration::from_secs(30),
    }
}

fn batch(host: &str, n: u64) -> Batch {
    let none = Mentions::default();
    let mut batch = Batch::default();
    for i in 0..n {
        let line = format!("{host} line {i}");
        batch.add(
            Hit {
                rule: "r",
                severity: Severity::Warning,
                line: &line,
                file: "/f",
                host,
                at: SystemTime::UNIX_EPOCH + Duration::from_secs(i),
                mentions: &none,
                top: &[],
            },
            || Rendered::markdown("t", line.clone()),
        );
    }
    batch
}

#[test]
fn hand_offs_of_all_hosts_fold_into_one_send_and_only_delivered_entries_are_acked() {
    let t0 = Instant::now();
    let mut queue = HolderQueue::new(config());
    assert!(queue.add("1-0", batch("web-1", 3), false, t0));
    assert!(queue.add("2-0", batch("web-2", 4), false, t0));
    assert!(
        !queue.add("2-0", batch("web-2", 4), false, t0),
        "a re-read entry counts once"
    );
    let send = queue.poll(t0).unwrap();
    assert_eq!(send.batch.count(), 7);
    assert_eq!(send.entries, ["1-0", "2-0"]);
    let rule = send.batch.ordered()[0];
    assert_eq!(rule.hosts.len(), 2);
    assert!(!send.repeat);
    // Arrives while the first is in flight.
    queue.add("3-0", batch("web-3", 5), false, t0);
    assert_eq!(queue.poll(t0), Err(None), "one send in flight at a time");
    let settled = queue.on_verdict(send.id, Verdict::Delivered, t0, 0.5);
    assert_eq!(
        settled,
        Settled {
            ack: vec!["1-0".into(), "2-0".into()],
            not_delivered: false
        }
    );
    let next = queue.poll(t0 + Duration::from_secs(10)).unwrap();
    assert_eq!(next.entries, ["3-0"]);
    assert_eq!(next.batch.count(), 5);
}

#[test]
fn a_failure_with_an_answer_keeps_the_entries_and_no_answer_makes_them_a_marked_repeat() {
    let t0 = Instant::now();
    let mut queue = HolderQueue::new(config());
    queue.add("1-0", batch("web-1", 2), false, t0);
    let send = queue.poll(t0).unwrap();
    let settled = queue.on_verdict(send.id, Verdict::Transient, t0, 0.0);
    assert!(settled.ack.is_empty());
    assert!(settled.not_delivered);
    queue.add("2-0", batch("web-2", 1), false, t0);
    let t1 = t0 + Duration::from_secs(5);
    let retry = queue.poll(t1).unwrap();
    assert_eq!(retry.entries, ["1-0", "2-0"]);
    assert_eq!(retry.batch.count(), 3, "counts exact after folding back");
    // No answer: may have arrived; sent again alone, marked, never folded into newer entries.
    let settled = queue.on_verdict(retry.id, Verdict::Unknown, t1, 0.0);
    assert_eq!(settled, Settled::default());
    queue.add("3-0", batch("web-3", 7), false, t1);
    let t2 = t1 + Duration::from_secs(60);
    let repeat = queue.poll(t2).unwrap();
    assert!(repeat.repeat);
    assert_eq!(repeat.batch.count(), 3);
    assert_eq!(repeat.entries, ["1-0", "2-0"]);
    let settled = queue.on_verdict(repeat.id, Verdict::Delivered, t2, 0.0);
    assert_eq!(settled.ack, ["1-0", "2-0"]);
    let fresh = queue.poll(t2 + Duration::from_secs(60)).unwrap();
    assert!(!fresh.repeat);
    assert_eq!(fresh.entries, ["3-0"]);
}

#[test]
fn entries_a_dead_holder_had_in_flight_go_out_alone_marked() {
    let t0 = Instant::now();
    let mut queue = HolderQueue::new(config());
    queue.add("1-0", batch("web-1", 2), true, t0);
    queue.add("2-0", batch("web-2", 3), false, t0);
    let first = queue.poll(t0).unwrap();
    assert!(first.repeat);
    assert_eq!(first.entries, ["1-0"]);
    assert_eq!(first.batch.count(), 2);
}

#[test]
fn a_content_rejection_without_samples_gives_the_entries_up() {
    let t0 = Instant::now();
    let mut queue = HolderQueue::new(config());
    queue.add("1-0", batch("web-1", 2), false, t0);
    let send = queue.poll(t0).unwrap();
    let settled = queue.on_verdict(send.id, Verdict::RejectedContent, t0, 0.0);
    assert!(settled.ack.is_empty(), "first retried without samples");
    let again = queue.poll(t0 + Duration::from_secs(10)).unwrap();
    assert!(!again.batch.has_samples());
    let settled = queue.on_verdict(again.id, Verdict::RejectedContent, t0, 0.0);
    assert_eq!(settled.ack, ["1-0"]);
    assert!(settled.not_delivered);
    assert_eq!(queue.n_undelivered(), 0);
}

#[test]
fn a_lease_counts_from_the_claim_sent_renews_at_a_third_and_lapses_without_renewal() {
    let lease = Duration::from_secs(9);
    let t0 = Instant::now();
    let mut timer = LeaseTimer::new(lease);
    assert!(!timer.is_held(t0));
    assert!(timer.on_claim(t0, true), "newly held: a takeover");
    assert_eq!(timer.next_claim(), Some(t0 + Duration::from_secs(3)));
    let t1 = t0 + Duration::from_secs(3);
    assert!(!timer.on_claim(t1, true), "a renewal is no takeover");
    // Redis unreachable from now on: held until the last claim sent + lease, then not.
    timer.on_error(t1 + Duration::from_secs(3));
    assert!(timer.is_held(t1 + lease - Duration::from_millis(1)));
    assert!(!timer.is_held(t1 + lease));
    // Another holder answered: not held at once.
    let mut lost = LeaseTimer::new(lease);
    lost.on_claim(t0, true);
    lost.on_claim(t1, false);
    assert!(!lost.is_held(t1));
    assert!(
        lost.on_claim(t1 + lease, true),
        "held again: read what was left"
    );
}
