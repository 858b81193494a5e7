//! State-machine tests of heartbeat rules (`absent`, `forget_after`) and of catching up: no
//! absence or resolution for lines not read yet.

use crate::alert::tests::{
    hit, key, kinds, parts, secs, t, tracker, tracker_with_threshold_and_resolve,
};
use crate::alert::{
    Absent, AlertParts, AlertSpec, Decision, KeyRecord, NoticeKind, PhaseRecord, Tracker,
};

#[test]
fn a_heartbeat_key_goes_absent_once_and_recovers_once() {
    let mut tracker = tracker(AlertParts {
        group_by: vec!["host".into()],
        absent: Some(Absent { for_: secs(600) }),
        ..parts()
    });
    assert_eq!(hit(&mut tracker, "web-1", t(100)), Decision::Heartbeat);
    assert_eq!(hit(&mut tracker, "web-2", t(100)), Decision::Heartbeat);
    assert_eq!(hit(&mut tracker, "web-2", t(650)), Decision::Heartbeat);
    assert!(kinds(&mut tracker, t(699)).is_empty());
    assert_eq!(
        kinds(&mut tracker, t(700)),
        [(
            "web-1".into(),
            NoticeKind::Absent {
                last_seen: Some(t(100)),
                for_: secs(600),
                silent_for: secs(600)
            }
        )]
    );
    assert_eq!(tracker.stats().n_absent, 1);
    assert_eq!(
        kinds(&mut tracker, t(1250)),
        [(
            "web-2".into(),
            NoticeKind::Absent {
                last_seen: Some(t(650)),
                for_: secs(600),
                silent_for: secs(600)
            }
        )]
    );
    assert!(
        kinds(&mut tracker, t(5000)).is_empty(),
        "an absence is reported once"
    );
    assert_eq!(hit(&mut tracker, "web-1", t(5000)), Decision::Heartbeat);
    assert_eq!(hit(&mut tracker, "web-1", t(5001)), Decision::Heartbeat);
    assert!(
        tracker.next_deadline().unwrap() <= t(5001),
        "a recovery is due at once"
    );
    assert_eq!(
        kinds(&mut tracker, t(5001)),
        [(
            "web-1".into(),
            NoticeKind::Recovered {
                last_seen: Some(t(100)),
                back: t(5000),
                absent_for: secs(4900)
            }
        )]
    );
    assert!(kinds(&mut tracker, t(5600)).is_empty());
    assert_eq!(kinds(&mut tracker, t(5601)).len(), 1, "absent again");
    // A key never seen is never reported.
    assert!(tracker.record(&key("web-3")).is_none());
}

#[test]
fn a_heartbeat_rule_without_group_by_expects_its_line_from_the_start() {
    let spec = AlertSpec::new(AlertParts {
        absent: Some(Absent { for_: secs(600) }),
        ..parts()
    })
    .unwrap();
    let mut tracker = Tracker::new("beat", spec);
    assert_eq!(
        tracker.next_deadline(),
        None,
        "not before the inputs caught up"
    );
    tracker.caught_up(t(50));
    assert_eq!(
        kinds(&mut tracker, t(650)),
        [(
            String::new(),
            NoticeKind::Absent {
                last_seen: None,
                for_: secs(600),
                silent_for: secs(600)
            }
        )]
    );
}

#[test]
fn no_false_absence_or_resolution_before_the_inputs_caught_up() {
    let spec = AlertSpec::new(AlertParts {
        group_by: vec!["host".into()],
        absent: Some(Absent { for_: secs(600) }),
        ..parts()
    })
    .unwrap();
    // Stored before a restart: web-1 last matched at 100.
    let record = KeyRecord {
        key: key("web-1"),
        window: vec![],
        last_seen: Some(t(100)),
        last_active: Some(t(100)),
        phase: PhaseRecord::Idle,
    };
    let mut tracker = Tracker::restore("beat", spec, vec![record]);
    // The daemon comes back at 5000 with a backlog: nothing goes absent while it reads it.
    assert_eq!(tracker.next_deadline(), None);
    assert!(tracker.poll(t(9000)).is_empty());
    // The backlog holds web-1's line of 4000 (read at 9000).
    tracker.on_match(&key("web-1"), t(4000), t(9000));
    tracker.caught_up(t(9100));
    // Timers count from max(last match, catch-up).
    assert_eq!(tracker.next_deadline(), Some(t(9700)));
    assert!(tracker.poll(t(9699)).is_empty());
    assert_eq!(tracker.poll(t(9700)).len(), 1);
    // A later backlog: timers stop, and restart at the catch-up.
    let mut tracker = tracker_with_threshold_and_resolve();
    hit(&mut tracker, "a", t(0));
    hit(&mut tracker, "a", t(1));
    tracker.behind();
    assert_eq!(tracker.next_deadline(), None);
    assert!(
        tracker.poll(t(5000)).is_empty(),
        "no resolution while behind"
    );
    tracker.caught_up(t(5000));
    tracker.caught_up(t(5500)); // already caught up: changes nothing
    assert_eq!(tracker.next_deadline(), Some(t(5600)));
    assert!(matches!(
        tracker.poll(t(5600))[0].kind,
        NoticeKind::Resolved { total: 2, .. }
    ));
}

#[test]
fn forget_after_retires_an_absent_key() {
    let mut tracker = tracker(AlertParts {
        group_by: vec!["host".into()],
        absent: Some(Absent { for_: secs(600) }),
        forget_after: Some(secs(3600)),
        ..parts()
    });
    hit(&mut tracker, "old", t(0));
    assert_eq!(kinds(&mut tracker, t(600)).len(), 1);
    assert_eq!(tracker.next_deadline(), Some(t(3600)));
    let changes = tracker.changes();
    tracker.committed(&changes);
    assert!(
        kinds(&mut tracker, t(3600)).is_empty(),
        "forgotten silently"
    );
    let stats = tracker.stats();
    assert_eq!((stats.n_keys, stats.n_forgotten), (0, 1));
    assert_eq!(tracker.changes().removals, [key("old")]);
    // Back after being forgotten: a new key, no recovery notice.
    hit(&mut tracker, "old", t(4000));
    assert!(kinds(&mut tracker, t(4001)).is_empty());
}
