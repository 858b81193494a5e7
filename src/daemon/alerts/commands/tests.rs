//! The chat's commands on the alert state, on a fake clock: ids drawn again on a clash, unmute
//! by id or by rule with the counts to report, taking back a silence that was not stored, and
//! the incidents `status` lists and `ack` acknowledges.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::alert::{AlertParts, AlertSpec, GroupKey, SilenceDraft, SilenceId, SilenceSet, Tracker};
use crate::daemon::alerts::Alerts;
use crate::daemon::alerts::commands::AckResult;
use crate::state::silences::SharedAck;

fn t(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + seconds)
}

fn alerts(trackers: Vec<Tracker>) -> Alerts {
    Alerts {
        trackers: trackers
            .into_iter()
            .map(|tracker| (tracker.rule().to_owned(), tracker))
            .collect(),
        rules: BTreeMap::new(),
        forgotten: BTreeSet::new(),
        silences: SilenceSet::new(),
        ended: Vec::new(),
        seen_version: None,
        waiting: BTreeMap::new(),
        behind_since: BTreeMap::new(),
        last_poll: None,
        counted: BTreeMap::new(),
        share_ends: false,
        shared_ends: Vec::new(),
        scope: crate::cluster::threshold::ThresholdBook::new(),
        held: std::collections::HashMap::new(),
    }
}

fn draft(rule: &str, ends: u64) -> SilenceDraft {
    SilenceDraft {
        rule: rule.into(),
        matchers: vec![("host".into(), "web-3".into())],
        starts: t(0),
        ends: t(ends),
        reason: "deploy".into(),
        author: "张三".into(),
    }
}

/// A tracker of rule `api` per `ip`, firing at once, repeats folded for a minute.
fn api() -> Tracker {
    let spec = AlertSpec::new(AlertParts {
        group_by: vec!["ip".into()],
        when: None,
        realert: Some(Duration::from_secs(60)),
        resolve: None,
        absent: None,
        forget_after: None,
        max_groups: None,
    })
    .unwrap();
    let mut tracker = Tracker::new("api", spec);
    tracker.caught_up(t(0));
    tracker
}

#[test]
fn a_chat_silence_is_added_as_made_here_and_an_id_clash_draws_again() {
    let mut alerts = alerts(Vec::new());
    let mut bits = [7u64, 7, 8].into_iter();
    let first = alerts
        .add_silence(&draft("nginx", 3600), t(0), || bits.next().unwrap())
        .unwrap();
    assert_eq!(first.id(), &SilenceId::from_bits(7));
    let second = alerts
        .add_silence(&draft("nginx", 60), t(0), || bits.next().unwrap())
        .unwrap();
    assert_eq!(second.id(), &SilenceId::from_bits(8), "drawn again");
    assert_eq!(second.author(), "张三");
    // Both definitions go to the store with the next commit.
    assert_eq!(alerts.changes().silences.added.len(), 2);
    let views = alerts.silence_views(t(1));
    assert_eq!(views.len(), 2);
    assert_eq!(views[0].id, second.id().to_string(), "ending soonest first");
    assert_eq!(views[0].matchers, [("host".to_owned(), "web-3".to_owned())]);
    // An ended silence is not listed.
    assert_eq!(alerts.silence_views(t(60)).len(), 1);
    // An invalid draft is refused.
    assert!(alerts.add_silence(&draft("nginx", 0), t(0), || 9).is_err());
}

#[test]
fn unmute_ends_by_id_then_by_rule_and_queues_the_counts_to_report() {
    let mut alerts = alerts(Vec::new());
    let mut bits = [1u64, 2, 3].into_iter();
    let mut next = || bits.next().unwrap();
    let a = alerts
        .add_silence(&draft("nginx", 3600), t(0), &mut next)
        .unwrap();
    alerts
        .add_silence(&draft("nginx", 3600), t(0), &mut next)
        .unwrap();
    alerts
        .add_silence(&draft("disk", 3600), t(0), &mut next)
        .unwrap();
    let muted = alerts.silences.mute(
        "nginx",
        |name| (name == "host").then_some("web-3"),
        5,
        t(10),
    );
    assert!(muted.is_some());
    let ended = alerts.unmute(a.id().as_str(), t(20));
    assert_eq!(ended.len(), 1);
    assert_eq!(alerts.ended.len(), 1, "reported by the next poll");
    let ended = alerts.unmute("nginx", t(20));
    assert_eq!(ended.len(), 1, "the other silence of the rule");
    assert_eq!(
        alerts.ended.iter().map(|e| e.muted.matches).sum::<u64>(),
        5,
        "the count goes with the silence that muted"
    );
    assert!(alerts.unmute("nginx", t(21)).is_empty());
    assert!(alerts.unmute("zzzzzz", t(21)).is_empty());
    assert_eq!(alerts.silence_views(t(21)).len(), 1, "disk's stays");
}

#[test]
fn a_silence_taken_back_is_neither_listed_nor_reported() {
    let mut alerts = alerts(Vec::new());
    let silence = alerts
        .add_silence(&draft("nginx", 3600), t(0), || 5)
        .unwrap();
    alerts.take_back(silence.id(), t(0));
    assert!(alerts.silence_views(t(1)).is_empty());
    assert!(alerts.ended.is_empty());
    let changes = alerts.changes().silences;
    assert!(changes.added.is_empty(), "{changes:?}");
}

#[test]
fn status_lists_firing_keys_and_ack_acknowledges_the_matching_ones() {
    let mut alerts = alerts(vec![api()]);
    let tracker = alerts.trackers.get_mut("api").unwrap();
    for ip in ["10.0.0.1", "10.0.0.2"] {
        let decision = tracker.on_match(&GroupKey::new([ip]), t(5), t(5));
        assert!(decision.sends_line(), "{decision:?}");
    }
    let views = alerts.incident_views();
    assert_eq!(views.len(), 2);
    assert_eq!(views[0].key, [("ip".to_owned(), "10.0.0.1".to_owned())]);
    assert_eq!(views[0].since, t(5));
    assert!(!views[0].acked);

    let only = |ip: &str| vec![("ip".to_owned(), ip.to_owned())];
    assert_eq!(
        alerts.ack("api", &only("10.9.9.9"), t(6)),
        AckResult::NothingFiring
    );
    assert_eq!(
        alerts.ack("api", &[("host".into(), "x".into())], t(6)),
        AckResult::NothingFiring,
        "a name not in group_by matches nothing"
    );
    assert_eq!(
        alerts.ack("api", &only("10.0.0.2"), t(6)),
        AckResult::Acked(vec![only("10.0.0.2")])
    );
    let views = alerts.incident_views();
    assert_eq!(
        views.iter().map(|v| v.acked).collect::<Vec<_>>(),
        [false, true]
    );
    assert_eq!(
        alerts.ack("api", &[], t(7)),
        AckResult::Acked(vec![only("10.0.0.1")]),
        "the rest"
    );
    assert_eq!(alerts.ack("api", &[], t(8)), AckResult::NothingFiring);
    assert_eq!(alerts.ack("plain", &[], t(8)), AckResult::NotTracked);
    // Acknowledged is state to commit.
    assert!(!alerts.changes().is_empty());
}

#[test]
fn another_hosts_ack_acknowledges_the_matching_incidents_opened_before_it() {
    let mut alerts = alerts(vec![api()]);
    let tracker = alerts.trackers.get_mut("api").unwrap();
    for (ip, at) in [("10.0.0.1", 5), ("10.0.0.2", 5), ("10.0.0.3", 500)] {
        let decision = tracker.on_match(&GroupKey::new([ip]), t(at), t(at));
        assert!(decision.sends_line(), "{decision:?}");
    }
    let ack = |matchers: Vec<(String, String)>, rule: &str| SharedAck {
        host: "web-2".into(),
        by: "张三".into(),
        rule: rule.into(),
        matchers,
        at: t(100),
    };
    assert_eq!(alerts.apply_shared_ack(&ack(vec![], "plain")), 0);
    assert_eq!(
        alerts.apply_shared_ack(&ack(vec![("host".into(), "x".into())], "api")),
        0,
        "a name not in group_by matches nothing"
    );
    assert_eq!(
        alerts.apply_shared_ack(&ack(vec![("ip".into(), "10.0.0.2".into())], "api")),
        1
    );
    // Every key: 10.0.0.1 (opened before); 10.0.0.3 opened long after the ack: a new incident.
    assert_eq!(alerts.apply_shared_ack(&ack(vec![], "api")), 1);
    let acked: Vec<bool> = alerts.incident_views().iter().map(|v| v.acked).collect();
    assert_eq!(acked, [true, true, false]);
    assert!(!alerts.changes().is_empty());
}
