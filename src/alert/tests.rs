//! State-machine tests of `Tracker` on a fake timeline: one per alert kind and edge, then
//! random sequences checked against a simple model.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::alert::{
    AckOutcome, AlertParts, AlertSpec, Decision, GroupKey, NoticeKind, PhaseRecord, Resolve,
    Tracker, When,
};

/// Seconds into the test's timeline.
pub(crate) fn t(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + seconds)
}

pub(crate) fn t_ms(ms: u64) -> SystemTime {
    t(0) + Duration::from_millis(ms)
}

pub(crate) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub(crate) fn parts() -> AlertParts {
    AlertParts {
        group_by: vec![],
        when: None,
        realert: None,
        resolve: None,
        absent: None,
        forget_after: None,
        max_groups: None,
    }
}

pub(crate) fn by_ip(parts: AlertParts) -> AlertParts {
    AlertParts {
        group_by: vec!["ip".into()],
        ..parts
    }
}

pub(crate) fn tracker(parts: AlertParts) -> Tracker {
    let mut tracker = Tracker::new("r", AlertSpec::new(parts).unwrap());
    tracker.caught_up(t(0));
    tracker
}

pub(crate) fn key(value: &str) -> GroupKey {
    GroupKey::new([value])
}

/// A match at `at` seen at the same time (a live log).
pub(crate) fn hit(tracker: &mut Tracker, value: &str, at: SystemTime) -> Decision {
    tracker.on_match(&key(value), at, at)
}

pub(crate) fn when(count: u32, within: u64) -> Option<When> {
    Some(When {
        count,
        within: secs(within),
    })
}

pub(crate) fn kinds(tracker: &mut Tracker, now: SystemTime) -> Vec<(String, NoticeKind)> {
    tracker
        .poll(now)
        .into_iter()
        .map(|n| (n.key.values().collect::<Vec<_>>().join(","), n.kind))
        .collect()
}

#[test]
fn a_plain_rule_alerts_every_match_and_keeps_nothing() {
    let mut tracker = tracker(parts());
    for i in 0..1000 {
        let decision = tracker.on_match(&GroupKey::empty(), t(i), t(i));
        assert_eq!(
            decision,
            Decision::Alert {
                count_in_window: 1,
                since: t(i)
            }
        );
        assert!(decision.sends_line());
    }
    assert_eq!(tracker.stats().n_keys, 0);
    assert!(tracker.changes().is_empty());
    assert_eq!(tracker.next_deadline(), None);
    assert!(tracker.poll(t(100_000)).is_empty());
}

#[test]
fn a_key_below_the_threshold_sends_nothing_and_one_at_it_sends_one_alert_with_its_count() {
    let mut tracker = tracker(by_ip(AlertParts {
        when: when(5, 60),
        ..parts()
    }));
    for i in 0..4 {
        assert_eq!(
            hit(&mut tracker, "10.0.0.1", t(i)),
            Decision::Pending {
                count_in_window: u32::try_from(i + 1).unwrap()
            }
        );
    }
    for i in 0..4 {
        assert!(!hit(&mut tracker, "10.0.0.2", t(10 + i)).sends_line());
    }
    assert_eq!(
        hit(&mut tracker, "10.0.0.1", t(20)),
        Decision::Alert {
            count_in_window: 5,
            since: t(0)
        }
    );
    // Matches while firing are counted, not alerted again.
    for i in 21..40 {
        assert_eq!(hit(&mut tracker, "10.0.0.1", t(i)), Decision::Counted);
    }
    assert_eq!(tracker.stats().n_firing, 1);
    // The other key is still below: its fifth match is what fires it, with its own count.
    assert_eq!(
        hit(&mut tracker, "10.0.0.2", t(30)),
        Decision::Alert {
            count_in_window: 5,
            since: t(10)
        }
    );
    // Without `realert` or `resolve`, an incident ends after `within` of quiet and reports what
    // it counted since the alert (10.0.0.2's ends at 90 with nothing to report).
    assert!(kinds(&mut tracker, t(39 + 59)).is_empty());
    assert_eq!(tracker.stats().n_keys, 1);
    assert_eq!(
        kinds(&mut tracker, t(39 + 60)),
        [(
            "10.0.0.1".into(),
            NoticeKind::Repeat {
                folded: 19,
                since: t(21),
                total: 24
            }
        )]
    );
    assert_eq!(tracker.stats().n_keys, 0);
}

#[test]
fn the_window_slides_and_its_edge_is_exclusive() {
    let mut tracker = tracker(by_ip(AlertParts {
        when: when(3, 60),
        ..parts()
    }));
    // A span just under `within` fires.
    hit(&mut tracker, "a", t_ms(0));
    hit(&mut tracker, "a", t_ms(30_000));
    assert!(hit(&mut tracker, "a", t_ms(59_999)).sends_line());
    // A span of exactly `within` does not; the window then slides past the oldest.
    hit(&mut tracker, "b", t_ms(0));
    hit(&mut tracker, "b", t_ms(30_000));
    assert_eq!(
        hit(&mut tracker, "b", t_ms(60_000)),
        Decision::Pending { count_in_window: 2 }
    );
    assert_eq!(
        hit(&mut tracker, "b", t_ms(61_000)),
        Decision::Alert {
            count_in_window: 3,
            since: t_ms(30_000)
        }
    );
    // Spread matches never fire.
    for i in 0..20 {
        assert!(!hit(&mut tracker, "c", t(100 + 31 * i)).sends_line());
    }
}

#[test]
fn a_quiet_window_is_forgotten() {
    let mut tracker = tracker(by_ip(AlertParts {
        when: when(3, 60),
        ..parts()
    }));
    hit(&mut tracker, "a", t(0));
    hit(&mut tracker, "a", t(10));
    assert_eq!(tracker.next_deadline(), Some(t(70)));
    let changes = tracker.changes();
    tracker.committed(&changes);
    assert!(tracker.poll(t(69)).is_empty());
    assert_eq!(tracker.stats().n_keys, 1);
    assert!(
        tracker.poll(t(70)).is_empty(),
        "a window that drains says nothing"
    );
    assert_eq!(tracker.stats().n_keys, 0);
    assert_eq!(tracker.changes().removals, [key("a")]);
}

#[test]
fn realert_folds_matches_into_one_repeat_per_period_with_exact_counts() {
    let mut tracker = tracker(by_ip(AlertParts {
        realert: Some(secs(300)),
        ..parts()
    }));
    assert!(matches!(
        hit(&mut tracker, "a", t(0)),
        Decision::Alert {
            count_in_window: 1,
            ..
        }
    ));
    for i in 0..37 {
        assert_eq!(hit(&mut tracker, "a", t(60 + i)), Decision::Folded);
    }
    assert_eq!(tracker.next_deadline(), Some(t(300)));
    assert!(kinds(&mut tracker, t(299)).is_empty());
    assert_eq!(
        kinds(&mut tracker, t(300)),
        [(
            "a".into(),
            NoticeKind::Repeat {
                folded: 37,
                since: t(60),
                total: 38
            }
        )]
    );
    // A new period began with the repeat; what comes in it is folded into the next.
    assert_eq!(hit(&mut tracker, "a", t(400)), Decision::Folded);
    assert_eq!(
        kinds(&mut tracker, t(600)),
        [(
            "a".into(),
            NoticeKind::Repeat {
                folded: 1,
                since: t(400),
                total: 39
            }
        )]
    );
    // A period without matches ends the incident (no `resolve`): the next match fires anew.
    assert!(kinds(&mut tracker, t(1000)).is_empty());
    assert_eq!(tracker.stats().n_keys, 0);
    assert!(matches!(
        hit(&mut tracker, "a", t(1001)),
        Decision::Alert { .. }
    ));
}

#[test]
fn with_resolve_a_match_after_an_empty_period_is_sent_again_as_the_same_incident() {
    let mut tracker = tracker(by_ip(AlertParts {
        realert: Some(secs(60)),
        resolve: Some(Resolve {
            after: secs(600),
            notify: true,
        }),
        ..parts()
    }));
    assert!(hit(&mut tracker, "a", t(0)).sends_line());
    assert_eq!(hit(&mut tracker, "a", t(10)), Decision::Folded);
    assert_eq!(kinds(&mut tracker, t(60)).len(), 1);
    // The period 60..120 stays empty; a match at 200 is sent at once, and starts a period.
    assert!(kinds(&mut tracker, t(190)).is_empty());
    assert_eq!(
        hit(&mut tracker, "a", t(200)),
        Decision::Realert { total: 3 }
    );
    assert_eq!(hit(&mut tracker, "a", t(230)), Decision::Folded);
    assert_eq!(
        kinds(&mut tracker, t(260)),
        [(
            "a".into(),
            NoticeKind::Repeat {
                folded: 1,
                since: t(230),
                total: 4
            }
        )]
    );
    assert_eq!(
        kinds(&mut tracker, t(830)),
        [(
            "a".into(),
            NoticeKind::Resolved {
                first: t(0),
                last: t(230),
                duration: secs(230),
                total: 4,
                unreported: 0,
                acked_at: None,
            }
        )]
    );
}

#[test]
fn an_incident_resolves_once_after_quiet_and_not_before() {
    let mut tracker = tracker(by_ip(AlertParts {
        resolve: Some(Resolve {
            after: secs(600),
            notify: true,
        }),
        ..parts()
    }));
    assert!(hit(&mut tracker, "a", t(0)).sends_line());
    assert_eq!(hit(&mut tracker, "a", t(60)), Decision::Counted);
    assert_eq!(hit(&mut tracker, "a", t(120)), Decision::Counted);
    assert!(
        kinds(&mut tracker, t(719)).is_empty(),
        "not before 600 s of quiet"
    );
    assert_eq!(tracker.next_deadline(), Some(t(720)));
    assert_eq!(
        kinds(&mut tracker, t(720)),
        [(
            "a".into(),
            NoticeKind::Resolved {
                first: t(0),
                last: t(120),
                duration: secs(120),
                total: 3,
                unreported: 2,
                acked_at: None,
            }
        )]
    );
    assert!(kinds(&mut tracker, t(10_000)).is_empty(), "once");
    assert_eq!(tracker.next_deadline(), None);
    // The key fires again as a new incident.
    assert!(hit(&mut tracker, "a", t(10_001)).sends_line());
    // A key that never fired never resolves.
    let mut threshold = tracker_with_threshold_and_resolve();
    hit(&mut threshold, "b", t(0));
    assert!(kinds(&mut threshold, t(100_000)).is_empty());
}

pub(crate) fn tracker_with_threshold_and_resolve() -> Tracker {
    tracker(by_ip(AlertParts {
        when: when(2, 60),
        resolve: Some(Resolve {
            after: secs(600),
            notify: true,
        }),
        ..parts()
    }))
}

#[test]
fn notify_false_only_ends_the_incident_but_still_reports_unreported_counts() {
    let mut tracker = tracker(by_ip(AlertParts {
        resolve: Some(Resolve {
            after: secs(600),
            notify: false,
        }),
        ..parts()
    }));
    hit(&mut tracker, "quiet", t(0));
    hit(&mut tracker, "busy", t(0));
    hit(&mut tracker, "busy", t(5));
    hit(&mut tracker, "busy", t(9));
    assert_eq!(
        kinds(&mut tracker, t(700)),
        [(
            "busy".into(),
            NoticeKind::Repeat {
                folded: 2,
                since: t(5),
                total: 3
            }
        )]
    );
    assert_eq!(tracker.stats().n_keys, 0, "both incidents ended");
}

#[test]
fn an_acknowledged_incident_sends_no_repeats_and_reports_everything_when_it_resolves() {
    let mut tracker = tracker(by_ip(AlertParts {
        realert: Some(secs(60)),
        resolve: Some(Resolve {
            after: secs(600),
            notify: true,
        }),
        ..parts()
    }));
    assert_eq!(tracker.ack(&key("a"), t(0)), AckOutcome::NotFiring);
    hit(&mut tracker, "a", t(0));
    hit(&mut tracker, "b", t(0));
    assert_eq!(hit(&mut tracker, "a", t(10)), Decision::Folded);
    assert_eq!(
        tracker.ack_where(&[("ip".into(), "a".into())], t(20)),
        [key("a")]
    );
    assert_eq!(tracker.ack(&key("a"), t(21)), AckOutcome::AlreadyAcked);
    assert!(
        tracker
            .ack_where(&[("host".into(), "a".into())], t(20))
            .is_empty()
    );
    for i in 0..5 {
        assert_eq!(hit(&mut tracker, "a", t(30 + i * 100)), Decision::Counted);
    }
    // b still repeats; a does not.
    hit(&mut tracker, "b", t(30));
    let notices = kinds(&mut tracker, t(60));
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].0, "b");
    assert!(kinds(&mut tracker, t(1029)).iter().all(|(k, _)| k != "a"));
    assert_eq!(
        kinds(&mut tracker, t(1030)),
        [(
            "a".into(),
            NoticeKind::Resolved {
                first: t(0),
                last: t(430),
                duration: secs(430),
                total: 7,
                unreported: 6,
                acked_at: Some(t(20)),
            }
        )]
    );
}

#[test]
fn at_max_groups_the_oldest_idle_key_is_evicted_and_incidents_are_kept() {
    let mut tracker = tracker(by_ip(AlertParts {
        when: when(2, 600),
        max_groups: Some(3),
        ..parts()
    }));
    hit(&mut tracker, "a", t(0));
    hit(&mut tracker, "b", t(1));
    hit(&mut tracker, "c", t(2));
    hit(&mut tracker, "a", t(3)); // a fires: an incident is never evicted
    hit(&mut tracker, "d", t(4)); // evicts b, the idle key matched longest ago
    assert_eq!(tracker.stats().n_evicted, 1);
    assert!(tracker.record(&key("b")).is_none());
    assert!(tracker.record(&key("a")).is_some());
    // b starts over: one match is not enough any more.
    assert_eq!(
        hit(&mut tracker, "b", t(5)),
        Decision::Pending { count_in_window: 1 }
    );
    assert_eq!(tracker.stats().n_evicted, 2, "c made room for b");
    assert_eq!(tracker.stats().n_keys, 3);
    // A table full of incidents: a new key's match goes out as a plain alert.
    let mut tracker = tracker_full_of_incidents();
    assert_eq!(hit(&mut tracker, "new", t(10)), Decision::Overflow);
    assert!(Decision::Overflow.sends_line());
    assert_eq!(tracker.stats().n_overflow, 1);
    assert_eq!(tracker.stats().n_keys, 2);
}

fn tracker_full_of_incidents() -> Tracker {
    let mut tracker = tracker(by_ip(AlertParts {
        realert: Some(secs(60)),
        max_groups: Some(2),
        ..parts()
    }));
    hit(&mut tracker, "a", t(0));
    hit(&mut tracker, "b", t(0));
    tracker
}

#[test]
fn out_of_order_event_times_fill_the_window_in_order() {
    let mut tracker = tracker(by_ip(AlertParts {
        when: when(3, 60),
        resolve: Some(Resolve {
            after: secs(60),
            notify: true,
        }),
        ..parts()
    }));
    let now = t(1000);
    let mut at = |s| tracker.on_match(&key("a"), t(s), now);
    assert_eq!(at(100), Decision::Pending { count_in_window: 1 });
    assert_eq!(at(170), Decision::Pending { count_in_window: 1 });
    // 140 arrives late: 140 and 170 are within 60 s of each other.
    assert_eq!(at(140), Decision::Pending { count_in_window: 2 });
    // Older than the full window's oldest: it cannot change it.
    assert_eq!(at(50), Decision::Pending { count_in_window: 2 });
    // 120 completes 120, 140, 170 (100 leaves the window of the last three).
    assert_eq!(
        at(120),
        Decision::Alert {
            count_in_window: 3,
            since: t(120)
        }
    );
    // An earlier match still counts into the incident, and moves its first time.
    assert_eq!(at(90), Decision::Counted);
    let notices = tracker.poll(t(1060));
    assert_eq!(
        notices[0].kind,
        NoticeKind::Resolved {
            first: t(90),
            last: t(170),
            duration: secs(80),
            total: 4,
            unreported: 1,
            acked_at: None
        }
    );
}

#[test]
fn a_failed_commit_loses_nothing_and_later_changes_stay_dirty() {
    let mut tracker = tracker(by_ip(AlertParts {
        realert: Some(secs(60)),
        ..parts()
    }));
    hit(&mut tracker, "a", t(0));
    let failed = tracker.changes();
    assert_eq!(failed.upserts.len(), 1);
    // The commit fails: `committed` is not called; b comes.
    hit(&mut tracker, "b", t(1));
    let changes = tracker.changes();
    assert_eq!(changes.upserts.len(), 2);
    // a changes after the changes were taken but before their commit is acknowledged.
    hit(&mut tracker, "a", t(2));
    tracker.committed(&changes);
    let next = tracker.changes();
    assert_eq!(
        next.upserts
            .iter()
            .map(|r| r.key.clone())
            .collect::<Vec<_>>(),
        [key("a")]
    );
    assert!(matches!(
        &next.upserts[0].phase,
        PhaseRecord::Firing(incident) if incident.folded == 1
    ));
    tracker.committed(&next);
    assert!(tracker.changes().is_empty());
}

#[test]
fn a_reload_keeps_incidents_and_adapts_what_the_new_spec_cannot_use() {
    let mut tracker = tracker(by_ip(AlertParts {
        when: when(3, 60),
        resolve: Some(Resolve {
            after: secs(600),
            notify: true,
        }),
        ..parts()
    }));
    for i in 0..3 {
        hit(&mut tracker, "firing", t(i));
    }
    hit(&mut tracker, "pending", t(5));
    let changes = tracker.changes();
    tracker.committed(&changes);
    // `when` goes; the incident stays, the lone window is dropped.
    tracker.reconfigure(
        AlertSpec::new(by_ip(AlertParts {
            resolve: Some(Resolve {
                after: secs(600),
                notify: true,
            }),
            ..parts()
        }))
        .unwrap(),
    );
    assert!(tracker.is_caught_up());
    assert_eq!(tracker.stats().n_firing, 1);
    assert!(tracker.record(&key("pending")).is_none());
    assert_eq!(tracker.changes().removals, [key("pending")]);
    assert_eq!(hit(&mut tracker, "firing", t(10)), Decision::Counted);
    assert!(matches!(
        tracker.poll(t(610))[0].kind,
        NoticeKind::Resolved { total: 4, .. }
    ));
    // `group_by` changes: every stored key is dropped.
    let mut tracker = tracker_full_of_incidents();
    let changes = tracker.changes();
    tracker.committed(&changes);
    tracker.reconfigure(
        AlertSpec::new(AlertParts {
            group_by: vec!["ip".into(), "user".into()],
            realert: Some(secs(60)),
            ..parts()
        })
        .unwrap(),
    );
    assert_eq!(tracker.stats().n_keys, 0);
    assert_eq!(tracker.changes().removals.len(), 2);
}
