//! Unit tests of `crate::dispatch::queue`: the per-robot state machine on a fake timeline.
use std::time::{Duration, Instant, SystemTime};

use crate::batch::{Batch, Hit, Rendered};
use crate::dingtalk::Verdict;
use crate::dispatch::queue::{Action, Hold, QueueConfig, RobotQueue, Standing};
use crate::event::{Mentions, Severity};

const NONE: Mentions = Mentions {
    mobiles: Vec::new(),
    user_ids: Vec::new(),
    all: false,
};

fn queue() -> RobotQueue {
    RobotQueue::new(QueueConfig {
        per_minute: 20,
        window: Duration::from_secs(60),
        linger: Duration::from_secs(2),
        throttle_pause: Duration::from_secs(600),
        backoff_max: Duration::from_secs(30),
    })
}

fn add(queue: &mut RobotQueue, rule: &str, severity: Severity, line: &str, now: Instant) {
    let hit = Hit {
        rule,
        severity,
        line,
        file: "/f",
        host: "h",
        at: SystemTime::now(),
        mentions: &NONE,
        top: &[],
    };
    queue.on_hit(hit, || Rendered::markdown("t", line), now);
}

fn send(queue: &mut RobotQueue, now: Instant) -> (u64, u64) {
    match queue.poll(now) {
        Action::Send { id, batch, .. } => (id, batch.count()),
        other => panic!("expected a send at {now:?}, got {other:?}"),
    }
}

#[test]
fn a_lone_match_waits_for_linger_then_goes_alone() {
    let mut queue = queue();
    let t0 = Instant::now();
    assert_eq!(queue.poll(t0), Action::Idle);
    add(&mut queue, "r", Severity::Info, "x", t0);
    assert_eq!(
        queue.poll(t0 + Duration::from_secs(1)),
        Action::WakeAt(t0 + Duration::from_secs(2))
    );
    match queue.poll(t0 + Duration::from_secs(2)) {
        Action::Send { batch, .. } => assert!(batch.lone().is_some()),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        queue.poll(t0 + Duration::from_secs(3)),
        Action::AwaitVerdict
    );
}

#[test]
fn throttled_batches_wait_the_pause_and_counts_add_up() {
    let mut queue = queue();
    let t0 = Instant::now();
    for i in 0..3 {
        add(&mut queue, "r", Severity::Warning, &format!("l{i}"), t0);
    }
    let (id, n) = send(&mut queue, t0 + Duration::from_secs(2));
    assert_eq!(n, 3);
    add(
        &mut queue,
        "r",
        Severity::Warning,
        "later",
        t0 + Duration::from_secs(3),
    );
    queue.on_verdict(id, Verdict::Throttled, t0 + Duration::from_secs(3), 0.5);
    assert_eq!(queue.n_undelivered(), 4);
    let resume = t0 + Duration::from_secs(603);
    assert_eq!(
        queue.poll(t0 + Duration::from_secs(10)),
        Action::WakeAt(resume)
    );
    let (id, n) = send(&mut queue, resume);
    assert_eq!(n, 4, "the throttled batch and what came later go together");
    queue.on_verdict(id, Verdict::Delivered, resume, 0.5);
    assert_eq!(queue.n_undelivered(), 0);
    assert_eq!(queue.poll(resume), Action::Idle);
}

#[test]
fn transient_failures_back_off_and_rejections_retry_slowly() {
    let mut queue = queue();
    let t0 = Instant::now();
    add(&mut queue, "r", Severity::Critical, "x", t0);
    let (id, _) = send(&mut queue, t0 + Duration::from_secs(2));
    let t1 = t0 + Duration::from_secs(2);
    queue.on_verdict(id, Verdict::Transient, t1, 0.999_999);
    match queue.poll(t1) {
        Action::WakeAt(at) => assert!(at - t1 <= Duration::from_secs(1) && at > t1),
        other => panic!("{other:?}"),
    }
    let (id, _) = send(&mut queue, t1 + Duration::from_secs(1));
    let t2 = t1 + Duration::from_secs(1);
    queue.on_verdict(id, Verdict::Rejected, t2, 0.0);
    assert_eq!(
        queue.poll(t2),
        Action::WakeAt(t2 + Duration::from_secs(300))
    );
    assert_eq!(queue.n_undelivered(), 1);
}

#[test]
fn a_flood_becomes_paced_summaries_with_exact_counts() {
    let mut queue = queue();
    let t0 = Instant::now();
    let mut delivered = 0;
    let mut sends = Vec::new();
    let mut now = t0;
    // 100 matches a second for two minutes, polled every 100 ms.
    for tick in 0..1200u32 {
        now = t0 + Duration::from_millis(100 * u64::from(tick));
        for i in 0..10 {
            add(
                &mut queue,
                if i % 3 == 0 { "crit" } else { "noise" },
                Severity::Info,
                "l",
                now,
            );
        }
        if let Action::Send { id, batch, .. } = queue.poll(now) {
            delivered += batch.count();
            sends.push(now);
            queue.on_verdict(id, Verdict::Delivered, now, 0.5);
        }
    }
    loop {
        now += Duration::from_millis(100);
        match queue.poll(now) {
            Action::Send { id, batch, .. } => {
                delivered += batch.count();
                sends.push(now);
                queue.on_verdict(id, Verdict::Delivered, now, 0.5);
            }
            Action::Idle => break,
            _ => {}
        }
    }
    assert_eq!(delivered, 12_000);
    for (i, &t) in sends.iter().enumerate() {
        let n = sends[i..]
            .iter()
            .take_while(|&&u| u - t < Duration::from_secs(60))
            .count();
        assert!(n <= 20, "{n} sends within 60 s from {:?}", t - t0);
    }
    let longest_gap = sends.windows(2).map(|w| w[1] - w[0]).max().unwrap();
    assert!(
        longest_gap <= Duration::from_millis(3700),
        "summaries are spread, longest gap {longest_gap:?}"
    );
}

#[test]
fn refused_content_is_resent_as_counts_and_then_given_up() {
    let mut queue = queue();
    let t0 = Instant::now();
    for i in 0..3 {
        add(
            &mut queue,
            "r",
            Severity::Warning,
            &format!("blocked word {i}"),
            t0,
        );
    }
    let t1 = t0 + Duration::from_secs(2);
    let id = match queue.poll(t1) {
        Action::Send { id, batch, .. } => {
            assert!(batch.has_samples());
            id
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(queue.on_verdict(id, Verdict::RejectedContent, t1, 0.5), 0);
    assert_eq!(queue.n_undelivered(), 3, "nothing given up yet");
    let t2 = t1 + Duration::from_secs(4);
    let id = match queue.poll(t2) {
        Action::Send { id, batch, .. } => {
            assert!(!batch.has_samples(), "the retry carries counts only");
            assert_eq!(batch.count(), 3);
            id
        }
        other => panic!("{other:?}"),
    };
    // Something new arrives meanwhile; it is not given up with the refused batch.
    add(&mut queue, "r", Severity::Warning, "fine", t2);
    assert_eq!(queue.on_verdict(id, Verdict::RejectedContent, t2, 0.5), 3);
    assert_eq!(queue.n_undelivered(), 1);
    match queue.poll(t2 + Duration::from_secs(4)) {
        Action::Send { batch, .. } => assert_eq!(batch.count(), 1),
        other => panic!("{other:?}"),
    }
}

#[test]
fn sends_before_a_restart_count_against_the_window() {
    let mut queue = queue();
    let t0 = Instant::now();
    // Twenty sends in the last 30 s (before a restart): the window is full.
    let sent: Vec<Instant> = (0..20)
        .map(|i| t0 + Duration::from_millis(1500 * i))
        .collect();
    let now = t0 + Duration::from_secs(30);
    queue.seed_history(&sent);
    add(&mut queue, "r", Severity::Critical, "x", now);
    match queue.poll(now + Duration::from_secs(2)) {
        Action::WakeAt(at) => assert!(
            at >= t0 + Duration::from_secs(60),
            "the first seeded send must leave the window first: {:?}",
            at - t0
        ),
        other => panic!("expected to wait, got {other:?}"),
    }
}

/// A batch sent without an answer is never folded into newer events: it is sent again by
/// itself, marked, alternating with the newer batches, until an answer settles it.
#[test]
fn an_unanswered_batch_is_resent_alone_and_marked() {
    let mut queue = queue();
    let t0 = Instant::now();
    add(&mut queue, "r", Severity::Warning, "a", t0);
    add(&mut queue, "r", Severity::Warning, "b", t0);
    let at = t0 + Duration::from_secs(2);
    let (first, n) = send(&mut queue, at);
    assert_eq!(n, 2);
    assert_eq!(queue.on_verdict(first, Verdict::Unknown, at, 0.0), 0);
    assert_eq!(queue.doubtful().count(), 2);
    assert!(queue.pending().is_empty(), "not folded into what gathers");
    add(&mut queue, "r", Severity::Warning, "c", at);
    // The doubtful batch goes first, alone and marked, after the (half-jittered) backoff.
    let later = at + Duration::from_secs(10);
    let (resend, batch, repeat) = match queue.poll(later) {
        Action::Send { id, batch, repeat } => (id, batch, repeat),
        other => panic!("{other:?}"),
    };
    assert!(repeat);
    assert_eq!(batch.count(), 2);
    // Still no answer: it stays doubtful; the newer event goes next, unmarked.
    queue.on_verdict(resend, Verdict::Unknown, later, 0.0);
    let next = later + Duration::from_secs(10);
    match queue.poll(next) {
        Action::Send { id, batch, repeat } => {
            assert!(!repeat, "alternates with newer events");
            assert_eq!(batch.count(), 1);
            queue.on_verdict(id, Verdict::Delivered, next, 0.0);
        }
        other => panic!("{other:?}"),
    }
    let last = next + Duration::from_secs(10);
    match queue.poll(last) {
        Action::Send { id, batch, repeat } => {
            assert!(repeat);
            assert_eq!(batch.count(), 2);
            queue.on_verdict(id, Verdict::Delivered, last, 0.0);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(queue.n_undelivered(), 0);
    assert_eq!(queue.poll(last + Duration::from_secs(60)), Action::Idle);
}

/// A resend that fails without reaching DingTalk keeps the batch doubtful (it may still have
/// been delivered the first time), never pending.
#[test]
fn a_failed_resend_stays_doubtful() {
    let mut queue = queue();
    let t0 = Instant::now();
    queue.restore(Batch::default(), doubtful_batch(3), t0);
    let (id, batch, repeat) = match queue.poll(t0) {
        Action::Send { id, batch, repeat } => (id, batch, repeat),
        other => panic!("{other:?}"),
    };
    assert!(repeat && batch.count() == 3);
    queue.on_verdict(id, Verdict::Transient, t0, 0.0);
    assert_eq!(queue.doubtful().count(), 3);
    assert!(queue.pending().is_empty());
}

/// Backoff waits never pass `backoff_max`, and an answer from DingTalk (to another robot)
/// lifts a wait imposed by failures without one.
#[test]
fn backoff_is_capped_and_an_answer_lifts_it() {
    let mut queue = RobotQueue::new(QueueConfig {
        per_minute: 1000,
        window: Duration::from_secs(60),
        linger: Duration::ZERO,
        throttle_pause: Duration::from_secs(600),
        backoff_max: Duration::from_secs(5),
    });
    let mut now = Instant::now();
    add(&mut queue, "r", Severity::Critical, "x", now);
    for _ in 0..10 {
        let (id, _) = send(&mut queue, now);
        queue.on_verdict(id, Verdict::Transient, now, 0.999);
        let Action::WakeAt(at) = queue.poll(now) else {
            panic!("waits after a failure");
        };
        assert!(at - now <= Duration::from_secs(5), "{:?}", at - now);
        now = at;
    }
    let (id, _) = send(&mut queue, now);
    queue.on_verdict(id, Verdict::Transient, now, 0.999);
    assert!(matches!(queue.poll(now), Action::WakeAt(_)));
    queue.lift_network_wait();
    assert!(
        matches!(queue.poll(now), Action::Send { .. }),
        "probes at once"
    );
}

fn doubtful_batch(n: u64) -> Batch {
    let mut batch = Batch::default();
    for i in 0..n {
        let line = format!("d{i}");
        batch.add(
            Hit {
                rule: "r",
                severity: Severity::Warning,
                line: &line,
                file: "/f",
                host: "h",
                at: SystemTime::now(),
                mentions: &NONE,
                top: &[],
            },
            || Rendered::markdown("t", line.clone()),
        );
    }
    batch
}

/// Issue 13: a doubtful batch of warnings never holds a critical alert back; the critical one
/// goes at the next slot, and the doubtful batch right after it.
#[test]
fn pending_critical_events_go_before_a_doubtful_batch_of_warnings() {
    let mut queue = queue();
    let t0 = Instant::now();
    add(&mut queue, "noise", Severity::Warning, "w1", t0);
    let at = t0 + Duration::from_secs(2);
    let (first, _) = send(&mut queue, at);
    queue.on_verdict(first, Verdict::Unknown, at, 0.0);
    add(&mut queue, "noise", Severity::Warning, "w2", at);
    // The doubtful batch goes first when nothing outranks it (alternation as before).
    let later = at + Duration::from_secs(10);
    let (resend, batch, repeat) = match queue.poll(later) {
        Action::Send { id, batch, repeat } => (id, batch, repeat),
        other => panic!("{other:?}"),
    };
    assert!(repeat && batch.count() == 1);
    queue.on_verdict(resend, Verdict::Unknown, later, 0.0);
    let next = later + Duration::from_secs(10);
    let (id, _) = send(&mut queue, next);
    queue.on_verdict(id, Verdict::Delivered, next, 0.0);
    // Now the doubtful batch's turn would come, but a critical line arrived: it goes first.
    add(&mut queue, "boom", Severity::Critical, "c", next);
    let then = next + Duration::from_secs(10);
    match queue.poll(then) {
        Action::Send { id, batch, repeat } => {
            assert!(
                !repeat,
                "the critical line is not held behind the doubtful batch"
            );
            assert_eq!(batch.severity(), Some(Severity::Critical));
            queue.on_verdict(id, Verdict::Delivered, then, 0.0);
        }
        other => panic!("{other:?}"),
    }
    let last = then + Duration::from_secs(10);
    match queue.poll(last) {
        Action::Send { repeat, batch, .. } => assert!(repeat && batch.count() == 1),
        other => panic!("{other:?}"),
    }
}

/// Issue 13: whatever floods the queue, a critical line goes out in the first message sent
/// after it was added, most severe first, with every count exact.
#[test]
fn a_warning_flood_delays_a_critical_line_by_at_most_the_send_in_flight() {
    let mut queue = queue();
    let mut now = Instant::now();
    let mut n_added = 0u64;
    let mut n_sent = 0u64;
    let mut in_flight: Option<u64> = None;
    let mut critical_added_at: Option<usize> = None;
    let mut sends_since_critical = 0usize;
    for step in 0..400usize {
        add(
            &mut queue,
            "noise",
            Severity::Warning,
            &format!("w{step}"),
            now,
        );
        n_added += 1;
        if step == 200 {
            add(&mut queue, "boom", Severity::Critical, "disk on fire", now);
            n_added += 1;
            critical_added_at = Some(step);
        }
        if let Some(id) = in_flight.take() {
            queue.on_verdict(id, Verdict::Delivered, now, 0.5);
        }
        if let Action::Send { id, batch, .. } = queue.poll(now) {
            n_sent += batch.n_undelivered();
            in_flight = Some(id);
            if critical_added_at.is_some() {
                sends_since_critical += 1;
                if batch.severity() == Some(Severity::Critical) {
                    assert_eq!(sends_since_critical, 1, "the first send after it holds it");
                    assert_eq!(batch.ordered()[0].rule, "boom", "most severe first");
                    critical_added_at = None;
                }
            }
        }
        now += Duration::from_millis(500);
    }
    assert!(critical_added_at.is_none(), "the critical line was sent");
    if let Some(id) = in_flight.take() {
        queue.on_verdict(id, Verdict::Delivered, now, 0.5);
    }
    assert_eq!(n_sent + queue.n_undelivered(), n_added, "counts exact");
}

#[test]
fn the_standing_shows_pending_budget_and_why_a_robot_waits() {
    let mut queue = queue();
    let t0 = Instant::now();
    add(&mut queue, "r", Severity::Warning, "a", t0);
    assert_eq!(
        queue.standing(t0),
        Standing {
            pending: 1,
            budget_left: 20,
            per_minute: 20,
            held: None,
        }
    );
    let (id, _) = send(&mut queue, t0 + Duration::from_secs(2));
    let t1 = t0 + Duration::from_secs(3);
    queue.on_verdict(id, Verdict::Throttled, t1, 0.5);
    let standing = queue.standing(t1);
    assert_eq!(standing.pending, 1);
    assert_eq!(standing.budget_left, 19);
    assert_eq!(
        standing.held,
        Some(Hold::Until(t1 + Duration::from_secs(600)))
    );
    // The pause over, nothing holds it.
    assert_eq!(queue.standing(t1 + Duration::from_secs(601)).held, None);
    let (id, _) = send(&mut queue, t1 + Duration::from_secs(601));
    queue.on_verdict(id, Verdict::Rejected, t1 + Duration::from_secs(602), 0.5);
    assert_eq!(
        queue.standing(t1 + Duration::from_secs(603)).held,
        Some(Hold::Rejected)
    );
}
