//! The `scope: cluster` threshold script against a real `redis-server` on 127.0.0.1, through
//! the library API (issue 15): hosts' counts add up in a window on Redis's clock, the host
//! whose count crosses `count` claims the incident once, later matches fold into it, a lapsed
//! owner's incident is taken over (not opened anew), the cluster's quiet ends it once, and log
//! text never shapes a Redis key.

use std::time::Duration;

use dingtail::alert::GroupKey;
use dingtail::cluster::Keys;
use dingtail::cluster::threshold::{Answer, State, Step};
use dingtail::cluster::threshold_io::exchange;
use redis::aio::ConnectionManager;

use crate::support::redis::{RedisServer, connect, runtime};

fn step(key: &str, n: u64, reported: u64) -> Step {
    Step {
        rule: "upstream-errors".into(),
        key: GroupKey::new([key]),
        n,
        count: 10,
        within_ms: 60_000,
        bucket_ms: 5_000,
        end_after_ms: 600,
        reported,
        claim: true,
    }
}

async fn one(conn: &mut ConnectionManager, host: &str, step: Step) -> Answer {
    let keys = Keys::new("t:");
    let mut answers = exchange(conn, &keys, host, 300, &[step]).await.unwrap();
    assert_eq!(answers.len(), 1);
    answers.remove(0)
}

#[test]
fn hosts_counts_add_up_and_the_host_crossing_the_count_claims_one_incident() {
    let server = RedisServer::start();
    runtime().block_on(async {
        let mut conn = connect(&server).await;
        let a = one(&mut conn, "web-1", step("db-1", 6, 0)).await;
        assert_eq!(
            (a.state, a.sum),
            (State::Below, 6),
            "one host alone is below"
        );
        let b = one(&mut conn, "web-2", step("db-1", 6, 0)).await;
        assert_eq!((b.state, b.sum, b.total), (State::Claimed, 12, 12));
        assert!(b.first_ms <= b.now_ms && b.now_ms - b.first_ms < 10_000);
        // A count without a line (restored after a restart) counts but opens nothing.
        let restored = Step {
            claim: false,
            ..step("db-3", 12, 0)
        };
        let r = one(&mut conn, "web-1", restored).await;
        assert_eq!((r.state, r.sum), (State::Below, 12));
        let r = one(&mut conn, "web-2", step("db-3", 1, 0)).await;
        assert_eq!(
            (r.state, r.sum),
            (State::Claimed, 13),
            "the next match anywhere fires"
        );
        // Another key is counted apart.
        let other = one(&mut conn, "web-1", step("db-2", 9, 0)).await;
        assert_eq!((other.state, other.sum), (State::Below, 9));
        // Matches elsewhere fold into the open incident; they open nothing.
        let a = one(&mut conn, "web-1", step("db-1", 3, 0)).await;
        assert_eq!((a.state, a.total, a.reported), (State::Theirs, 15, 12));
        let b = one(&mut conn, "web-2", step("db-1", 0, 12)).await;
        assert_eq!((b.state, b.total), (State::Mine, 15));
        // The owner stops renewing (300 ms lease): the next host takes it over, not anew.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let a = one(&mut conn, "web-1", step("db-1", 1, 0)).await;
        assert_eq!((a.state, a.total, a.reported), (State::Took, 16, 12));
        let b = one(&mut conn, "web-2", step("db-1", 0, 12)).await;
        assert_eq!(b.state, State::Theirs, "the old owner learns it lost it");
        // Quiet across the cluster for the end period: its owner (renewing its lease) ends
        // it, once; the other host never does.
        let mut ended = Vec::new();
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_millis(150)).await;
            let b = one(&mut conn, "web-2", step("db-1", 0, 0)).await;
            assert_ne!(b.state, State::Ended, "only the owner ends it");
            // The owner tells what it reported while the incident is open to it.
            let told = if ended.is_empty() { 12 } else { 0 };
            let a = one(&mut conn, "web-1", step("db-1", 0, told)).await;
            if a.state == State::Ended {
                ended.push((a.total, a.reported));
            } else if ended.is_empty() {
                assert_eq!(a.state, State::Mine);
            } else {
                assert_eq!((a.state, a.sum), (State::Below, 0), "counting starts over");
            }
        }
        assert_eq!(ended, vec![(16, 12)]);
    });
}

#[test]
fn the_window_forgets_old_buckets_and_one_call_steps_many_keys() {
    let server = RedisServer::start();
    runtime().block_on(async {
        let mut conn = connect(&server).await;
        let keys = Keys::new("t:");
        let short = |key: &str, n: u64| Step {
            within_ms: 300,
            bucket_ms: 25,
            ..step(key, n, 0)
        };
        let answers = exchange(
            &mut conn,
            &keys,
            "web-1",
            300,
            &[short("a", 5), short("b", 9)],
        )
        .await
        .unwrap();
        assert_eq!(
            answers.iter().map(|a| a.sum).collect::<Vec<_>>(),
            vec![5, 9]
        );
        tokio::time::sleep(Duration::from_millis(400)).await;
        let answers = exchange(&mut conn, &keys, "web-2", 300, &[short("a", 5)])
            .await
            .unwrap();
        assert_eq!((answers[0].state, answers[0].sum), (State::Below, 5));
        // No steps: a ping.
        assert!(
            exchange(&mut conn, &keys, "web-1", 300, &[])
                .await
                .unwrap()
                .is_empty()
        );
    });
}

#[test]
fn log_text_in_a_key_never_shapes_a_redis_key() {
    let server = RedisServer::start();
    runtime().block_on(async {
        let mut conn = connect(&server).await;
        let evil = "x}:{y'); redis.call('FLUSHALL') --\n*";
        let a = one(&mut conn, "web-1", step(evil, 3, 0)).await;
        assert_eq!((a.state, a.sum), (State::Below, 3));
        let names: Vec<String> = redis::cmd("KEYS")
            .arg("*")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(names.len(), 1, "{names:?}");
        let name = &names[0];
        let hash = name
            .strip_prefix("t:{thr:")
            .and_then(|rest| rest.strip_suffix("}:n"))
            .unwrap_or_else(|| panic!("unexpected key {name}"));
        assert_eq!(hash.len(), 32);
        assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
    });
}

#[test]
fn an_owner_whose_claim_answer_was_lost_claims_again_once_and_a_takeover_never_does() {
    let server = RedisServer::start();
    runtime().block_on(async {
        let mut conn = connect(&server).await;
        let first = one(&mut conn, "web-1", step("db-1", 10, 0)).await;
        assert_eq!(first.state, State::Claimed);
        // That answer never reached web-1 (a timeout): it steps again knowing nothing, with its
        // line and the counts it re-sends. Nobody sent the alert yet: it is claimed again.
        let again = one(&mut conn, "web-1", step("db-1", 10, 0)).await;
        assert_eq!(
            (again.state, again.sum, again.total),
            (State::Claimed, 20, 20)
        );
        assert_eq!(again.first_ms, first.first_ms, "the same incident");
        // Once the owner reports what it knows, it is the incident's, never claimed again.
        let mine = one(&mut conn, "web-1", step("db-1", 0, 20)).await;
        assert_eq!(mine.state, State::Mine);
        let restarted = one(&mut conn, "web-1", step("db-1", 1, 0)).await;
        assert_eq!(restarted.state, State::Mine, "known: continued, not fired");
        // Another host never claims an open incident, even when its owner is silent.
        let b = one(&mut conn, "web-2", step("db-2", 10, 0)).await;
        assert_eq!(b.state, State::Claimed);
        tokio::time::sleep(Duration::from_millis(400)).await;
        let took = one(&mut conn, "web-3", step("db-2", 1, 0)).await;
        assert_eq!(took.state, State::Took);
        let after = one(&mut conn, "web-3", step("db-2", 1, 0)).await;
        assert_eq!(
            after.state,
            State::Mine,
            "a takeover whose answer was lost is not a claim"
        );
    });
}

#[test]
fn buckets_of_another_width_never_count_in_the_window() {
    let server = RedisServer::start();
    runtime().block_on(async {
        let mut conn = connect(&server).await;
        // `within: 1.2s` (100 ms buckets), then the rule is reloaded with `within: 60s`.
        let narrow = Step {
            within_ms: 1_200,
            bucket_ms: 100,
            ..step("db-1", 9, 0)
        };
        let a = one(&mut conn, "web-1", narrow).await;
        assert_eq!((a.state, a.sum), (State::Below, 9));
        let b = one(&mut conn, "web-1", step("db-1", 1, 0)).await;
        assert_eq!(
            (b.state, b.sum),
            (State::Below, 1),
            "a bucket numbered past the current one is not in the window"
        );
    });
}

#[test]
fn an_owner_whose_ended_answer_was_lost_gets_it_again_and_nobody_else_does() {
    let server = RedisServer::start();
    runtime().block_on(async {
        let mut conn = connect(&server).await;
        let claimed = one(&mut conn, "web-1", step("db-1", 10, 0)).await;
        assert_eq!(claimed.state, State::Claimed);
        tokio::time::sleep(Duration::from_millis(700)).await;
        let ended = one(&mut conn, "web-1", step("db-1", 0, 10)).await;
        assert_eq!((ended.state, ended.total), (State::Ended, 10));
        // Another host sees no incident: it counts anew.
        let other = one(&mut conn, "web-2", step("db-1", 2, 0)).await;
        assert_eq!((other.state, other.sum), (State::Below, 2));
        // That answer never reached web-1: it steps the incident as open again (with a match
        // that came meanwhile) and is told again, once; its match counts in the window.
        let again = one(&mut conn, "web-1", step("db-1", 1, 10)).await;
        assert_eq!(
            (again.state, again.total, again.reported, again.first_ms),
            (State::Ended, 10, 10, ended.first_ms)
        );
        let then = one(&mut conn, "web-1", step("db-1", 0, 10)).await;
        assert_eq!((then.state, then.sum), (State::Below, 3));
    });
}
