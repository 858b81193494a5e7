use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::alert::{Ended, EndedBy, Muted, Silence, SilenceDraft, SilenceId};
use crate::cluster::silences::{
    LOCAL_REPORT_AFTER, Plan, REPORT_GRACE, ReportStep, Reports, Shared, plan, total,
};

fn t(s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
}

fn silence(bits: u64, rule: &str, ends: u64) -> Silence {
    Silence::new(
        SilenceId::from_bits(bits),
        SilenceDraft {
            rule: rule.into(),
            matchers: vec![],
            starts: t(0),
            ends: t(ends),
            reason: "deploy".into(),
            author: "ops".into(),
        },
        t(0),
    )
    .unwrap()
}

fn id(bits: u64) -> SilenceId {
    SilenceId::from_bits(bits)
}

fn ids(bits: &[u64]) -> BTreeSet<SilenceId> {
    bits.iter().map(|b| id(*b)).collect()
}

fn ended(bits: u64, muted: u64, at: u64) -> Ended {
    Ended {
        silence: silence(bits, "ssh", 100),
        muted: Muted {
            matches: muted,
            notices: 0,
            first: Some(t(1)),
            last: Some(t(2)),
        },
        by: EndedBy::Removed,
        at: t(at),
    }
}

#[test]
fn a_new_local_silence_is_published_and_a_remote_one_adopted() {
    let shared = Shared {
        silences: vec![silence(2, "nginx", 100)],
        ended: BTreeSet::new(),
    };
    let out = plan(
        &[silence(1, "ssh", 100)],
        &shared,
        &BTreeSet::new(),
        &BTreeSet::new(),
        t(10),
    );
    assert_eq!(
        out,
        Plan {
            publish: vec![silence(1, "ssh", 100)],
            adopt: vec![silence(2, "nginx", 100)],
            ..Plan::default()
        }
    );
}

#[test]
fn in_step_silences_are_known_and_nothing_moves() {
    let both = vec![silence(1, "ssh", 100), silence(2, "nginx", 100)];
    let shared = Shared {
        silences: both.clone(),
        ended: BTreeSet::new(),
    };
    let out = plan(&both, &shared, &ids(&[1]), &BTreeSet::new(), t(10));
    assert_eq!(
        out,
        Plan {
            known: ids(&[1, 2]),
            ..Plan::default()
        }
    );
}

#[test]
fn a_known_silence_missing_here_was_unmuted_here_and_ends_everywhere() {
    let shared = Shared {
        silences: vec![silence(1, "ssh", 100)],
        ended: BTreeSet::new(),
    };
    let out = plan(&[], &shared, &ids(&[1]), &BTreeSet::new(), t(10));
    assert_eq!(out.end, vec![silence(1, "ssh", 100)]);
    assert!(out.adopt.is_empty());
    // Not known: another host's new silence, adopted.
    let out = plan(&[], &shared, &BTreeSet::new(), &BTreeSet::new(), t(10));
    assert_eq!(out.adopt, vec![silence(1, "ssh", 100)]);
    assert!(out.end.is_empty());
}

#[test]
fn a_silence_ended_elsewhere_is_dropped_here_and_never_published_again() {
    let shared = Shared {
        silences: vec![],
        ended: ids(&[1]),
    };
    let out = plan(
        &[silence(1, "ssh", 100)],
        &shared,
        &ids(&[1]),
        &BTreeSet::new(),
        t(10),
    );
    assert_eq!(out.drop, vec![id(1)]);
    assert!(out.publish.is_empty());
}

#[test]
fn redis_losing_its_silences_gets_them_back_from_the_hosts() {
    let local = vec![silence(1, "ssh", 100)];
    let out = plan(
        &local,
        &Shared::default(),
        &ids(&[1]),
        &BTreeSet::new(),
        t(10),
    );
    assert_eq!(out.publish, local);
}

#[test]
fn over_silences_are_neither_published_nor_adopted() {
    let shared = Shared {
        silences: vec![silence(2, "nginx", 10)],
        ended: BTreeSet::new(),
    };
    let out = plan(
        &[silence(1, "ssh", 10)],
        &shared,
        &BTreeSet::new(),
        &BTreeSet::new(),
        t(10),
    );
    assert_eq!(out, Plan::default());
}

#[test]
fn an_id_held_with_another_definition_is_a_clash_and_stays_local() {
    let shared = Shared {
        silences: vec![silence(1, "nginx", 100)],
        ended: BTreeSet::new(),
    };
    let local = [silence(1, "ssh", 100)];
    let out = plan(&local, &shared, &BTreeSet::new(), &BTreeSet::new(), t(10));
    assert_eq!(out.clash, vec![id(1)]);
    assert!(out.publish.is_empty() && out.adopt.is_empty() && out.known.is_empty());
    // Once marked local-only, it is not published even when Redis no longer has the other.
    let out = plan(
        &local,
        &Shared::default(),
        &BTreeSet::new(),
        &ids(&[1]),
        t(10),
    );
    assert_eq!(out, Plan::default());
}

#[test]
fn the_total_adds_counts_and_spans_the_hosts_times() {
    let a = Muted {
        matches: 3,
        notices: 1,
        first: Some(t(5)),
        last: Some(t(9)),
    };
    let b = Muted {
        matches: 4,
        notices: 0,
        first: Some(t(2)),
        last: Some(t(7)),
    };
    let none = Muted::default();
    assert_eq!(
        total([&a, &b, &none]),
        Muted {
            matches: 7,
            notices: 1,
            first: Some(t(2)),
            last: Some(t(9)),
        }
    );
    assert_eq!(total([]), Muted::default());
}

#[test]
fn an_end_is_counted_then_claimed_after_the_grace() {
    let mut reports = Reports::new();
    reports.push(ended(1, 3, 20), t(20));
    assert_eq!(
        reports.due(t(20), true),
        vec![ReportStep::Count(ended(1, 3, 20))]
    );
    reports.counted(&id(1));
    assert!(reports.due(t(21), true).is_empty());
    assert_eq!(reports.next_due(), Some(t(20) + REPORT_GRACE));
    assert_eq!(
        reports.due(t(20) + REPORT_GRACE, true),
        vec![ReportStep::Claim(ended(1, 3, 20))]
    );
    reports.done(&id(1));
    assert!(reports.is_empty());
    assert_eq!(reports.next_due(), None);
}

#[test]
fn without_redis_an_end_is_reported_alone_after_a_while() {
    let mut reports = Reports::new();
    reports.push(ended(1, 3, 20), t(20));
    assert!(reports.due(t(21), false).is_empty());
    assert_eq!(
        reports.due(t(20) + LOCAL_REPORT_AFTER, false),
        vec![ReportStep::Alone(ended(1, 3, 20))]
    );
    // Redis back before that: counted and claimed as usual.
    assert_eq!(
        reports.due(t(30), true),
        vec![ReportStep::Count(ended(1, 3, 20))]
    );
    assert_eq!(reports.len(), 1);
}
