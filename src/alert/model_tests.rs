//! Random timelines of `Tracker` checked against simple models: a threshold rule against a
//! model that keeps every match, and every incident-bearing combination against conservation
//! (each match reported exactly once, each incident resolved once).

use std::collections::BTreeSet;

use crate::alert::tests::{by_ip, hit, key, parts, secs, t, tracker, when};
use crate::alert::{AlertParts, Decision, GroupKey, Notice, NoticeKind, Resolve};

/// A small deterministic generator (no dependency for random tests).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// Random in-order timelines of a `when` rule checked against a model that keeps every match:
/// a key fires when, with no incident open, `count` of its matches lie within less than
/// `within`; an incident ends after `within` without a match, reporting what came after the
/// alert.
#[test]
fn random_timelines_of_a_threshold_rule_agree_with_a_model_that_keeps_every_match() {
    for seed in 0..200 {
        let mut rng = Lcg(seed);
        let count = 1 + rng.below(4);
        let within = 5 + rng.below(30);
        let mut tracker = tracker(by_ip(AlertParts {
            when: when(u32::try_from(count).unwrap(), within),
            ..parts()
        }));
        let mut model = Model::default();
        let mut now = 0;
        for _ in 0..300 {
            now += rng.below(8);
            let k = ["a", "b", "c"][usize::try_from(rng.below(3)).unwrap()];
            for notice in tracker.poll(t(now)) {
                let k = notice.key.values().next().unwrap().to_string();
                let NoticeKind::Repeat { folded, .. } = notice.kind else {
                    panic!("seed {seed}: {notice:?}");
                };
                model.reported.push((k, folded));
            }
            model.end_quiet(now, within);
            let fires = model.on_match(k, now, count, within);
            let decision = hit(&mut tracker, k, t(now));
            assert_eq!(decision.sends_line(), fires, "seed {seed} at {now} key {k}");
        }
        for notice in tracker.poll(t(now + 1000)) {
            let k = notice.key.values().next().unwrap().to_string();
            if let NoticeKind::Repeat { folded, .. } = notice.kind {
                model.reported.push((k, folded));
            }
        }
        model.end_quiet(now + 1000, within);
        model.reported.sort();
        model.expected.sort();
        assert_eq!(model.reported, model.expected, "seed {seed}");
        assert_eq!(tracker.stats().n_keys, 0, "seed {seed}");
    }
}

#[derive(Default)]
struct Model {
    matches: Vec<(String, u64)>,
    /// Per key: (last match, matches since the alert) of an open incident.
    open: Vec<(String, u64, u64)>,
    expected: Vec<(String, u64)>,
    reported: Vec<(String, u64)>,
}

impl Model {
    fn end_quiet(&mut self, now: u64, within: u64) {
        let (ended, open): (Vec<_>, Vec<_>) = std::mem::take(&mut self.open)
            .into_iter()
            .partition(|(_, last, _)| now >= last + within);
        self.open = open;
        for (k, _, after) in ended {
            if after > 0 {
                self.expected.push((k, after));
            }
        }
    }

    fn on_match(&mut self, k: &str, now: u64, count: u64, within: u64) -> bool {
        self.matches.push((k.to_string(), now));
        if let Some(open) = self.open.iter_mut().find(|(key, ..)| key == k) {
            open.1 = now;
            open.2 += 1;
            return false;
        }
        let n_in_window = self
            .matches
            .iter()
            .filter(|(key, at)| key == k && now - at < within)
            .count();
        if u64::try_from(n_in_window).unwrap() >= count {
            self.open.push((k.to_string(), now, 0));
            return true;
        }
        false
    }
}

/// Random timelines of every combination that has incidents: each match is reported exactly
/// once (in its alert, a repeat, or a resolution), and resolutions alternate with alerts.
#[test]
fn random_timelines_report_every_match_of_an_incident_exactly_once() {
    for seed in 0..300 {
        let mut rng = Lcg(seed);
        let realert = (rng.below(2) == 0).then(|| secs(1 + rng.below(20)));
        let resolve = (rng.below(2) == 0 || realert.is_none()).then(|| Resolve {
            after: secs(1 + rng.below(40)),
            notify: rng.below(3) > 0,
        });
        let mut tracker = tracker(by_ip(AlertParts {
            realert,
            resolve,
            max_groups: Some(1 + usize::try_from(rng.below(4)).unwrap()),
            ..parts()
        }));
        let (mut n_matches, mut n_reported) = (0u64, 0u64);
        let mut open = BTreeSet::new();
        let mut now = 0;
        let check = |notices: Vec<Notice>, open: &mut BTreeSet<GroupKey>| {
            let mut n = 0;
            for notice in notices {
                n += notice.kind.n_matches();
                if let NoticeKind::Resolved { .. } = notice.kind {
                    assert!(open.remove(&notice.key), "seed {seed}: resolved twice");
                }
            }
            n
        };
        for _ in 0..300 {
            now += rng.below(6);
            n_reported += check(tracker.poll(t(now)), &mut open);
            if rng.below(20) == 0 {
                let k = key(["a", "b", "c", "d"][usize::try_from(rng.below(4)).unwrap()]);
                tracker.ack(&k, t(now));
            }
            let k = key(["a", "b", "c", "d"][usize::try_from(rng.below(4)).unwrap()]);
            n_matches += 1;
            match tracker.on_match(&k, t(now), t(now)) {
                Decision::Alert {
                    count_in_window, ..
                } => {
                    n_reported += u64::from(count_in_window);
                    if resolve.is_some_and(|r| r.notify) {
                        assert!(open.insert(k), "seed {seed}: fired twice");
                    }
                }
                Decision::Realert { .. } | Decision::Overflow => n_reported += 1,
                Decision::Folded | Decision::Counted => {}
                other => panic!("seed {seed}: {other:?}"),
            }
        }
        n_reported += check(tracker.poll(t(now + 1000)), &mut open);
        assert_eq!(n_reported, n_matches, "seed {seed}");
        assert!(open.is_empty(), "seed {seed}: never resolved: {open:?}");
    }
}
