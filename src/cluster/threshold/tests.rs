//! The pure core on a fake clock: what a match does, which steps go, what answers mean.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Action, Answer, Route, ScopeRule, State, Step, ThresholdBook};
use crate::alert::{GroupKey, NoticeKind};

fn rule(realert: Option<u64>, notify: bool) -> ScopeRule {
    ScopeRule {
        count: 10,
        within: Duration::from_secs(60),
        realert: realert.map(Duration::from_secs),
        end_after: Duration::from_secs(120),
        notify,
        group_by: vec!["upstream".into()],
        max_groups: 100,
    }
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn rms(secs: u64) -> i64 {
    i64::try_from(1_700_000_000_000 + secs * 1000).unwrap()
}

fn book(realert: Option<u64>, notify: bool) -> ThresholdBook {
    let mut book = ThresholdBook::new();
    book.set_rules([("r".to_string(), rule(realert, notify))]);
    book
}

fn key() -> GroupKey {
    GroupKey::new(["db-1"])
}

fn answer(state: State, sum: u64, total: u64, reported: u64, now: u64) -> Answer {
    Answer {
        state,
        sum,
        first_ms: rms(0),
        total,
        reported,
        last_ms: rms(now),
        now_ms: rms(now),
    }
}

fn steps(book: &mut ThresholdBook, now: u64) -> Vec<Step> {
    book.take_steps(at(now)).expect("a step is due")
}

#[test]
fn matches_are_held_and_flushed_at_most_once_a_second_in_one_step_per_key() {
    let mut book = book(None, true);
    assert_eq!(
        book.on_match("r", &key(), at(0)),
        Route::Held { keep_line: true }
    );
    for _ in 0..5 {
        assert_eq!(
            book.on_match("r", &key(), at(0)),
            Route::Held { keep_line: false },
            "one line kept per key per second"
        );
    }
    let sent = steps(&mut book, 0);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].n, 6);
    assert_eq!(sent[0].bucket_ms, 5000);
    assert_eq!(sent[0].within_ms, 60_000);
    assert!(sent[0].claim, "a line is kept: it may open the incident");
    assert_eq!(book.take_steps(at(0)), None, "one exchange at a time");
    let actions = book.on_answers(Some(vec![answer(State::Below, 6, 0, 0, 0)]), at(0));
    assert!(actions.is_empty());
    assert_eq!(book.take_steps(at(0)), None, "not within a second");
    assert_eq!(
        book.take_steps(at(1)),
        None,
        "nothing pending: nothing to step"
    );
    assert_eq!(
        book.n_keys(),
        0,
        "a key below the threshold is Redis's alone"
    );
    book.on_match("r", &key(), at(2));
    assert_eq!(steps(&mut book, 2)[0].n, 1);
}

#[test]
fn a_claim_fires_the_held_line_with_the_clusters_count_and_later_matches_fold() {
    let mut book = book(None, true);
    book.on_match("r", &key(), at(0));
    steps(&mut book, 0);
    let actions = book.on_answers(Some(vec![answer(State::Claimed, 12, 12, 12, 0)]), at(0));
    assert_eq!(
        actions,
        vec![Action::Fire {
            rule: "r".into(),
            key: key(),
            count: 12,
            since: at(0),
            within: Duration::from_secs(60),
        }]
    );
    assert!(!book.wants_line("r", &key()));
    assert_eq!(
        book.on_match("r", &key(), at(1)),
        Route::Held { keep_line: false },
        "a match of an open incident needs no line"
    );
    let tended = steps(&mut book, 1);
    assert_eq!((tended[0].n, tended[0].reported), (1, 12));
    // No realert: nothing until the end, which reports the whole incident once.
    assert!(
        book.on_answers(Some(vec![answer(State::Mine, 0, 13, 12, 1)]), at(1))
            .is_empty()
    );
    let tended = steps(&mut book, 2);
    assert_eq!(
        tended[0].n, 0,
        "an owned incident is tended without matches"
    );
    let mut end = answer(State::Ended, 0, 13, 12, 200);
    end.last_ms = rms(1);
    let actions = book.on_answers(Some(vec![end]), at(200));
    let [Action::Notice(notice)] = actions.as_slice() else {
        panic!("one resolved notice, got {actions:?}");
    };
    assert_eq!(notice.labels, vec![("upstream".into(), "db-1".into())]);
    assert_eq!(
        notice.kind,
        NoticeKind::Resolved {
            first: at(0),
            last: at(1),
            duration: Duration::from_secs(1),
            total: 13,
            unreported: 1,
            acked_at: None,
        }
    );
    assert_eq!(book.n_keys(), 0);
    assert_eq!(book.take_steps(at(300)), None);
}

#[test]
fn the_owner_repeats_what_the_cluster_folded_once_per_realert_period() {
    let mut book = book(Some(10), false);
    book.on_match("r", &key(), at(0));
    steps(&mut book, 0);
    book.on_answers(Some(vec![answer(State::Claimed, 10, 10, 10, 0)]), at(0));
    steps(&mut book, 5);
    assert!(
        book.on_answers(Some(vec![answer(State::Mine, 0, 30, 10, 5)]), at(5))
            .is_empty(),
        "within the period"
    );
    steps(&mut book, 10);
    let actions = book.on_answers(Some(vec![answer(State::Mine, 0, 40, 10, 10)]), at(10));
    let [Action::Notice(notice)] = actions.as_slice() else {
        panic!("one repeat, got {actions:?}");
    };
    assert_eq!(
        notice.kind,
        NoticeKind::Repeat {
            folded: 30,
            since: at(0),
            total: 40
        }
    );
    assert_eq!(
        steps(&mut book, 11)[0].reported,
        40,
        "Redis learns what was reported"
    );
    assert!(
        book.on_answers(Some(vec![answer(State::Mine, 0, 40, 40, 11)]), at(11))
            .is_empty()
    );
    // Without notify, the end carries what is unreported as a last repeat; nothing if none.
    steps(&mut book, 200);
    let actions = book.on_answers(Some(vec![answer(State::Ended, 0, 40, 40, 200)]), at(200));
    assert!(actions.is_empty(), "{actions:?}");
}

#[test]
fn another_hosts_incident_folds_here_and_is_continued_not_fired_when_taken_over() {
    let mut book = book(Some(10), true);
    book.on_match("r", &key(), at(0));
    steps(&mut book, 0);
    assert!(
        book.on_answers(Some(vec![answer(State::Theirs, 0, 20, 10, 0)]), at(0))
            .is_empty()
    );
    assert_eq!(
        book.on_match("r", &key(), at(1)),
        Route::Held { keep_line: false }
    );
    steps(&mut book, 1);
    // The owner died: this host takes the incident over, with what was reported.
    let actions = book.on_answers(Some(vec![answer(State::Took, 0, 25, 10, 1)]), at(1));
    assert!(actions.is_empty(), "a takeover fires nothing: {actions:?}");
    steps(&mut book, 11);
    let actions = book.on_answers(Some(vec![answer(State::Mine, 0, 25, 10, 11)]), at(11));
    assert!(
        matches!(
            actions.as_slice(),
            [Action::Notice(n)] if n.kind == NoticeKind::Repeat { folded: 15, since: at(1), total: 25 }
        ),
        "{actions:?}"
    );
}

#[test]
fn redis_away_sends_matches_to_the_local_tracker_and_keeps_counts_for_a_window() {
    let mut book = book(None, true);
    book.on_match("r", &key(), at(0));
    book.on_match("r", &key(), at(0));
    steps(&mut book, 0);
    assert!(book.on_answers(None, at(0)).is_empty());
    assert!(!book.is_up());
    assert_eq!(book.on_match("r", &key(), at(1)), Route::Local);
    // A probe while away: no key steps, but an exchange is due.
    let probe = steps(&mut book, 1);
    assert_eq!(probe.len(), 1, "the failed count goes again");
    assert_eq!(probe[0].n, 2);
    book.on_answers(None, at(1));
    // Past the window the kept count no longer counts: only a probe.
    assert_eq!(steps(&mut book, 70), vec![]);
    book.on_answers(Some(vec![]), at(70));
    assert!(book.is_up());
    assert_eq!(
        book.on_match("r", &key(), at(71)),
        Route::Held { keep_line: true }
    );
}

#[test]
fn a_book_down_from_the_start_counts_locally_until_a_probe_succeeds() {
    let mut book = book(None, true);
    book.down();
    assert_eq!(book.on_match("r", &key(), at(0)), Route::Local);
    assert_eq!(steps(&mut book, 0), vec![], "a probe");
    book.on_answers(Some(vec![]), at(0));
    assert_eq!(
        book.on_match("r", &key(), at(1)),
        Route::Held { keep_line: true }
    );
    let mut empty = ThresholdBook::new();
    empty.down();
    assert_eq!(empty.take_steps(at(0)), None, "no rules: no probe");
}

#[test]
fn a_rule_with_new_group_by_forgets_its_keys_and_other_rules_are_local() {
    let mut book = book(None, true);
    book.on_match("r", &key(), at(0));
    assert_eq!(book.on_match("other", &key(), at(0)), Route::Local);
    book.set_rules([("r".to_string(), rule(None, true))]);
    assert_eq!(book.n_keys(), 1, "same rule: kept");
    let regrouped = ScopeRule {
        group_by: vec!["host".into()],
        ..rule(None, true)
    };
    book.set_rules([("r".to_string(), regrouped)]);
    assert_eq!(book.n_keys(), 0);
    assert!(book.has_rule("r"));
    assert!(!book.has_rule("other"));
}

#[test]
fn a_reload_that_changes_when_or_realert_keeps_counts_incidents_and_the_claim_under_way() {
    let mut book = book(None, true);
    book.on_match("r", &key(), at(0));
    steps(&mut book, 0);
    // Reloaded while the exchange is under way.
    let changed = ScopeRule {
        count: 20,
        ..rule(Some(5), true)
    };
    book.set_rules([("r".to_string(), changed.clone())]);
    assert!(
        book.wants_line("r", &key()),
        "the line of the claim under way is kept"
    );
    let actions = book.on_answers(Some(vec![answer(State::Claimed, 10, 10, 10, 0)]), at(0));
    assert!(
        matches!(actions.as_slice(), [Action::Fire { count: 10, .. }]),
        "the claim Redis made for this host fires: {actions:?}"
    );
    // Reloaded again: the incident this host owns goes on (repeats, resolution).
    book.set_rules([("r".to_string(), rule(Some(5), true))]);
    let tend = steps(&mut book, 1);
    assert_eq!((tend[0].n, tend[0].reported), (0, 10));
    let actions = book.on_answers(Some(vec![answer(State::Mine, 0, 15, 10, 6)]), at(6));
    assert!(
        matches!(actions.as_slice(), [Action::Notice(n)] if matches!(n.kind, NoticeKind::Repeat { folded: 5, .. })),
        "{actions:?}"
    );
}

#[test]
fn an_ack_stops_the_owners_repeats_and_is_reported_at_the_end() {
    let mut book = book(Some(10), true);
    book.on_match("r", &key(), at(0));
    steps(&mut book, 0);
    book.on_answers(Some(vec![answer(State::Claimed, 10, 10, 10, 0)]), at(0));
    let wrong = [("host".to_string(), "db-1".to_string())];
    assert!(
        book.ack_where("r", &wrong, at(3)).is_empty(),
        "not a group_by name"
    );
    let matchers = [("upstream".to_string(), "db-1".to_string())];
    assert_eq!(book.ack_where("r", &matchers, at(3)), vec![key()]);
    assert!(
        book.ack_where("r", &matchers, at(4)).is_empty(),
        "acked before"
    );
    steps(&mut book, 20);
    assert!(
        book.on_answers(Some(vec![answer(State::Mine, 0, 30, 10, 20)]), at(20))
            .is_empty(),
        "no repeat once acknowledged"
    );
    steps(&mut book, 200);
    let actions = book.on_answers(Some(vec![answer(State::Ended, 0, 30, 10, 200)]), at(200));
    assert!(
        matches!(
            actions.as_slice(),
            [Action::Notice(n)] if matches!(n.kind, NoticeKind::Resolved { unreported: 20, acked_at: Some(t), .. } if t == at(3))
        ),
        "{actions:?}"
    );
}

#[test]
fn a_claim_whose_answer_was_lost_is_retried_with_the_line_and_fires_once() {
    let mut book = book(None, true);
    book.on_match("r", &key(), at(0));
    steps(&mut book, 0);
    // The exchange timed out (Redis may have opened the incident for this host).
    assert!(book.on_answers(None, at(3)).is_empty());
    assert!(
        book.wants_line("r", &key()),
        "the line is kept for the retry"
    );
    let retry = steps(&mut book, 4);
    assert_eq!(
        (retry[0].n, retry[0].claim, retry[0].reported),
        (1, true, 0)
    );
    // Redis answers `claimed` again (the script's retry of a lost claim): one alert.
    let actions = book.on_answers(Some(vec![answer(State::Claimed, 12, 12, 12, 4)]), at(4));
    assert!(
        matches!(actions.as_slice(), [Action::Fire { count: 12, .. }]),
        "{actions:?}"
    );
    let next = steps(&mut book, 5);
    assert_eq!(next[0].reported, 12, "the owner now tells Redis it knows");
}

#[test]
fn keys_past_max_groups_count_on_this_host() {
    let mut book = ThresholdBook::new();
    book.set_rules([(
        "r".to_string(),
        ScopeRule {
            max_groups: 2,
            ..rule(None, true)
        },
    )]);
    let k = |v: &str| GroupKey::new([v]);
    assert!(matches!(
        book.on_match("r", &k("a"), at(0)),
        Route::Held { .. }
    ));
    assert!(matches!(
        book.on_match("r", &k("b"), at(0)),
        Route::Held { .. }
    ));
    assert_eq!(
        book.on_match("r", &k("c"), at(0)),
        Route::Local,
        "a third key"
    );
    assert!(
        matches!(book.on_match("r", &k("a"), at(0)), Route::Held { .. }),
        "a held key still counts for the cluster"
    );
    assert_eq!(steps(&mut book, 0).len(), 2);
}
