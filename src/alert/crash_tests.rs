//! A `kill -9` at every step of an incident: the daemon's loop is modelled as "apply one step
//! (a match or a poll), then commit the tracker's changes together with the messages the step
//! produced". A crash before a commit loses the step's messages and its state changes together;
//! the daemon restores the stored records, catches up (its input re-reads the uncommitted line,
//! or it polls again) and goes on. Such a run must send exactly what a run with a clean restart
//! at the same step sends — nothing lost, nothing twice — and in every run each incident that
//! fired is resolved exactly once.

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::alert::tests::{by_ip, key, parts, secs, t};
use crate::alert::{
    Absent, AlertParts, AlertSpec, Decision, GroupKey, KeyRecord, Notice, NoticeKind, Resolve,
    Tracker, When,
};

#[derive(Clone, Copy, Debug)]
enum Step {
    /// A match of a key: event time, read time.
    Match(&'static str, u64, u64),
    Poll(u64),
    Ack(&'static str, u64),
}

impl Step {
    fn now(self) -> SystemTime {
        match self {
            Step::Match(_, _, now) | Step::Poll(now) | Step::Ack(_, now) => t(now),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Sent {
    Line(GroupKey, Decision),
    Notice(Notice),
}

fn apply(tracker: &mut Tracker, step: Step) -> Vec<Sent> {
    match step {
        Step::Match(k, at, now) => {
            let decision = tracker.on_match(&key(k), t(at), t(now));
            if decision.sends_line() {
                vec![Sent::Line(key(k), decision)]
            } else {
                vec![]
            }
        }
        Step::Poll(now) => tracker.poll(t(now)).into_iter().map(Sent::Notice).collect(),
        Step::Ack(k, now) => {
            tracker.ack(&key(k), t(now));
            vec![]
        }
    }
}

fn commit(tracker: &mut Tracker, store: &mut BTreeMap<GroupKey, KeyRecord>) {
    let changes = tracker.changes();
    for record in &changes.upserts {
        store.insert(record.key.clone(), record.clone());
    }
    for key in &changes.removals {
        store.remove(key);
    }
    tracker.committed(&changes);
}

/// What is sent when the daemon restarts cleanly before step `restart` (or never).
fn reference(spec: &AlertSpec, steps: &[Step], restart: Option<usize>) -> Vec<Sent> {
    let mut tracker = Tracker::new("r", spec.clone());
    tracker.caught_up(t(0));
    let mut sent = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        if Some(i) == restart {
            tracker.behind();
            tracker.caught_up(step.now());
        }
        sent.extend(apply(&mut tracker, *step));
    }
    sent
}

/// What is sent when the daemon is killed during step `crash`, before its commit.
fn crashed(spec: &AlertSpec, steps: &[Step], crash: usize) -> Vec<Sent> {
    let mut store = BTreeMap::new();
    let mut tracker = Tracker::new("r", spec.clone());
    tracker.caught_up(t(0));
    let mut sent = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let out = apply(&mut tracker, *step);
        if i == crash {
            // kill -9: the messages of this step and its changes were never committed.
            drop(out);
            tracker = Tracker::restore("r", spec.clone(), store.values().cloned().collect());
            tracker.caught_up(step.now());
            sent.extend(apply(&mut tracker, *step));
        } else {
            sent.extend(out);
        }
        commit(&mut tracker, &mut store);
    }
    sent
}

/// Each key's firing alerts and resolutions alternate, and every incident is resolved.
fn assert_resolved_once(sent: &[Sent], what: &str) {
    let mut open: BTreeMap<GroupKey, bool> = BTreeMap::new();
    for item in sent {
        match item {
            Sent::Line(key, Decision::Alert { .. }) => {
                assert!(
                    !open.insert(key.clone(), true).unwrap_or(false),
                    "{what}: {key:?} fired twice"
                );
            }
            Sent::Notice(Notice {
                key,
                kind: NoticeKind::Resolved { .. },
                ..
            }) => {
                assert_eq!(
                    open.insert(key.clone(), false),
                    Some(true),
                    "{what}: {key:?} resolved without firing"
                );
            }
            _ => {}
        }
    }
    assert!(
        open.values().all(|firing| !firing),
        "{what}: never resolved: {open:?}"
    );
}

fn check_every_crash_point(spec: &AlertSpec, steps: &[Step]) {
    let plain = reference(spec, steps, None);
    assert_resolved_once(&plain, "without a crash");
    for crash in 0..steps.len() {
        let expected = reference(spec, steps, Some(crash));
        assert_resolved_once(&expected, &format!("restart at step {crash}"));
        let got = crashed(spec, steps, crash);
        assert_eq!(
            got, expected,
            "a crash at step {crash} ({:?}) differs from a clean restart",
            steps[crash]
        );
    }
}

#[test]
fn a_kill_at_every_step_of_an_incident_neither_loses_its_resolution_nor_fires_it_twice() {
    let spec = AlertSpec::new(by_ip(AlertParts {
        when: Some(When {
            count: 3,
            within: secs(60),
        }),
        realert: Some(secs(120)),
        resolve: Some(Resolve {
            after: secs(300),
            notify: true,
        }),
        ..parts()
    }))
    .unwrap();
    let mut steps = vec![
        Step::Match("a", 0, 0),
        Step::Match("b", 5, 5),
        Step::Match("a", 10, 10),
        Step::Match("b", 15, 15),
        Step::Match("a", 20, 20), // fires
    ];
    for i in 0..8 {
        steps.push(Step::Match("a", 30 + 10 * i, 30 + 10 * i)); // folded
    }
    steps.extend([
        Step::Poll(100), // b's window drains
        Step::Poll(140), // repeat of a
        Step::Match("a", 150, 150),
        Step::Ack("a", 160),
        Step::Match("a", 170, 170),
        Step::Poll(260),
        Step::Match("c", 300, 400), // a backlogged line: event time 300, read at 400
        Step::Match("c", 301, 400),
        Step::Match("c", 302, 400), // fires
        Step::Poll(470),            // a resolves
        Step::Poll(700),            // c resolves
        Step::Match("a", 1000, 1000),
        Step::Match("a", 1001, 1001),
        Step::Match("a", 1002, 1002), // fires again: a new incident
        Step::Poll(1122),
        Step::Poll(1400),
        Step::Poll(5000),
    ]);
    check_every_crash_point(&spec, &steps);
    // The run without a crash sends what the steps describe.
    let sent = reference(&spec, &steps, None);
    let resolved: Vec<(GroupKey, u64)> = sent
        .iter()
        .filter_map(|s| match s {
            Sent::Notice(Notice {
                key,
                kind: NoticeKind::Resolved { total, .. },
                ..
            }) => Some((key.clone(), *total)),
            _ => None,
        })
        .collect();
    assert_eq!(resolved, [(key("a"), 13), (key("c"), 3), (key("a"), 3)]);
}

#[test]
fn a_kill_at_every_step_of_an_absence_neither_loses_nor_repeats_its_notices() {
    let spec = AlertSpec::new(AlertParts {
        group_by: vec!["host".into()],
        absent: Some(Absent { for_: secs(300) }),
        forget_after: Some(secs(3000)),
        ..parts()
    })
    .unwrap();
    let steps = [
        Step::Match("web-1", 10, 10),
        Step::Match("web-2", 20, 20),
        Step::Poll(200),
        Step::Match("web-2", 250, 250),
        Step::Poll(310), // web-1 absent
        Step::Poll(560), // web-2 absent
        Step::Match("web-1", 900, 900),
        Step::Match("web-1", 901, 901),
        Step::Poll(902), // web-1 recovered
        Step::Poll(3500),
        Step::Poll(9000), // web-2 forgotten
    ];
    let sent = reference(&spec, &steps, None);
    let kinds: Vec<(GroupKey, &str)> = sent
        .iter()
        .filter_map(|s| match s {
            Sent::Notice(n) => Some((
                n.key.clone(),
                match n.kind {
                    NoticeKind::Absent { .. } => "absent",
                    NoticeKind::Recovered { .. } => "recovered",
                    _ => "other",
                },
            )),
            Sent::Line(..) => None,
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (key("web-1"), "absent"),
            (key("web-2"), "absent"),
            (key("web-1"), "recovered"),
            (key("web-1"), "absent"),
        ]
    );
    for crash in 0..steps.len() {
        assert_eq!(
            crashed(&spec, &steps, crash),
            reference(&spec, &steps, Some(crash)),
            "crash at step {crash}"
        );
    }
}
