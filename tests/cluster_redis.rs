//! The cluster's Redis scripts against a real `redis-server` on 127.0.0.1, through the library
//! API (issue 15): a hand-off retried with the same batch is added once; the ledger never grants
//! more than the budget per window whoever asks, honours a shared pause, and refuses a caller
//! that lost the lease; a takeover finds what the last holder had in flight. Shared silences
//! (issue 16) are published once, ended for good, and reported by one host.

use std::time::{Duration, SystemTime};

use dingtail::batch::{Batch, Hit, Rendered};
use dingtail::cluster::handoff::{HandedOff, hand_off};
use dingtail::cluster::redis_io::{self, Permit};
use dingtail::cluster::{Keys, hid};
use dingtail::event::{Mentions, Severity};
use dingtail::state::pending::encode_batch;
use dingtail::state::{Change, Store};

use crate::support::redis::{RedisServer, connect, runtime};

fn batch(host: &str, n: u64) -> Batch {
    let none = Mentions::default();
    let mut batch = Batch::default();
    for i in 0..n {
        let line = format!("line {i}");
        batch.add(
            Hit {
                rule: "r",
                severity: Severity::Warning,
                line: &line,
                file: "/var/log/app.log",
                host,
                at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + i),
                mentions: &none,
                top: &[],
            },
            || Rendered::markdown("t", line.clone()),
        );
    }
    batch
}

#[test]
fn a_hand_off_retried_with_the_same_batch_is_added_once_and_read_back_exactly() {
    let server = RedisServer::start();
    runtime().block_on(async {
        let mut conn = connect(&server).await;
        let keys = Keys::new("t:");
        let one = batch("web-1", 7);
        let retry = Duration::from_secs(2);
        for _ in 0..3 {
            let done = hand_off(conn.clone(), &keys, "r1", "web-1", &one, retry).await;
            assert_eq!(done, HandedOff::Done);
        }
        // The same content from another host is another hand-off.
        let done = hand_off(conn.clone(), &keys, "r1", "web-2", &one, retry).await;
        assert_eq!(done, HandedOff::Done);
        let encoded = encode_batch(&one).unwrap();
        let added = redis_io::handoff(
            &mut conn,
            &keys,
            "r1",
            &hid("web-1", &encoded),
            "web-1",
            &encoded,
        )
        .await
        .unwrap();
        assert!(!added, "the script says it had it");
        redis_io::ensure_group(&mut conn, &keys, "r1", "ops")
            .await
            .unwrap();
        let entries = redis_io::claim_all(&mut conn, &keys, "r1", "web-9")
            .await
            .unwrap();
        assert!(entries.is_empty(), "nothing read yet, nothing to claim");
        let entries = redis_io::read_new(&mut conn, &keys, "r1", "web-9", 100)
            .await
            .unwrap();
        assert_eq!(entries.len(), 2, "{entries:?}");
        assert_eq!(entries[0].host, "web-1");
        assert_eq!(
            entries[0].batch.as_ref(),
            Some(&one),
            "the batch comes back exactly"
        );
        // Read but not acknowledged: a takeover claims both.
        let claimed = redis_io::claim_all(&mut conn, &keys, "r1", "web-8")
            .await
            .unwrap();
        assert_eq!(claimed.len(), 2);
        let ids: Vec<String> = claimed.iter().map(|e| e.id.clone()).collect();
        redis_io::ack(&mut conn, &keys, "r1", &ids).await.unwrap();
        let left = redis_io::claim_all(&mut conn, &keys, "r1", "web-7")
            .await
            .unwrap();
        assert!(left.is_empty(), "acknowledged entries are gone");
    });
}

#[test]
fn hand_offs_to_an_unreachable_redis_are_not_added() {
    let mut server = RedisServer::start();
    runtime().block_on(async {
        let conn = connect(&server).await;
        server.stop();
        let keys = Keys::new("t:");
        let done = hand_off(
            conn,
            &keys,
            "r1",
            "web-1",
            &batch("web-1", 1),
            Duration::from_secs(1),
        )
        .await;
        assert!(
            matches!(
                done,
                HandedOff::NotAdded { .. } | HandedOff::Unconfirmed { .. }
            ),
            "{done:?}"
        );
    });
}

#[test]
fn the_ledger_grants_the_budget_per_window_to_all_callers_and_honours_pause_and_lease() {
    let server = RedisServer::start();
    runtime().block_on(async {
        let mut conn = connect(&server).await;
        let keys = Keys::new("t:");
        assert!(
            redis_io::claim(&mut conn, &keys, "r1", "web-1/a", 10_000)
                .await
                .unwrap()
        );
        assert!(
            !redis_io::claim(&mut conn, &keys, "r1", "web-2/b", 10_000)
                .await
                .unwrap(),
            "one holder"
        );
        let entries = vec!["1-0".to_owned(), "2-0".to_owned()];
        let mut granted = 0;
        let mut waits = Vec::new();
        // The holder and two hosts without the lease (fallback, `dingtail send`) share it.
        for (i, holder) in ["web-1/a", "", ""].iter().cycle().take(30).enumerate() {
            let member = format!("m{i}");
            let permit = redis_io::acquire(
                &mut conn, &keys, "r1", 20, 60_000, &member, holder, &entries,
            )
            .await
            .unwrap();
            match permit {
                Permit::Granted => granted += 1,
                Permit::Wait(ms) => waits.push(ms),
                Permit::LeaseLost => panic!("the holder holds it"),
            }
        }
        assert_eq!(granted, 20, "never more than per_minute in the window");
        assert!(
            waits.iter().all(|ms| *ms > 55_000 && *ms <= 60_000),
            "{waits:?}"
        );
        // What the holder had in flight is there for a takeover.
        let mut in_flight = redis_io::inflight(&mut conn, &keys, "r1").await.unwrap();
        in_flight.sort();
        assert_eq!(in_flight, entries);
        // A caller that lost the lease may not send.
        let permit = redis_io::acquire(&mut conn, &keys, "r2", 20, 60_000, "x", "web-2/b", &[])
            .await
            .unwrap();
        assert_eq!(permit, Permit::LeaseLost);
        // A throttle answer pauses the robot for everyone.
        redis_io::block(&mut conn, &keys, "r3", 30_000)
            .await
            .unwrap();
        let permit = redis_io::acquire(&mut conn, &keys, "r3", 20, 60_000, "y", "", &[])
            .await
            .unwrap();
        assert!(
            matches!(permit, Permit::Wait(ms) if ms > 29_000),
            "{permit:?}"
        );
        // Re-seeding: direct sends always count; a holder's own only into an empty ledger.
        redis_io::reseed(&mut conn, &keys, "r4", 60_000, "h", true, &[1_000, 2_000])
            .await
            .unwrap();
        redis_io::reseed(&mut conn, &keys, "r4", 60_000, "h2", true, &[1_000])
            .await
            .unwrap();
        redis_io::reseed(&mut conn, &keys, "r4", 60_000, "d", false, &[500, 70_000])
            .await
            .unwrap();
        let count: u64 = redis::cmd("ZCARD")
            .arg(keys.robot("r4", "sent"))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            count, 3,
            "2 into the empty ledger, then 1 direct (the other too old)"
        );
        // Release only by the holder.
        redis_io::release(&mut conn, &keys, "r1", "web-2/b")
            .await
            .unwrap();
        assert!(
            !redis_io::claim(&mut conn, &keys, "r1", "web-2/b", 10_000)
                .await
                .unwrap()
        );
        redis_io::release(&mut conn, &keys, "r1", "web-1/a")
            .await
            .unwrap();
        assert!(
            redis_io::claim(&mut conn, &keys, "r1", "web-2/b", 10_000)
                .await
                .unwrap()
        );
    });
}

#[test]
fn a_second_instance_with_the_same_host_name_conflicts_and_hosts_are_counted() {
    let server = RedisServer::start();
    runtime().block_on(async {
        let mut conn = connect(&server).await;
        let keys = Keys::new("t:");
        let beat = redis_io::heartbeat(&mut conn, &keys, "web-1", "i1", 10_000, 3, 600_000)
            .await
            .unwrap();
        assert!(!beat.conflict);
        assert_eq!(beat.hosts, 1);
        let beat = redis_io::heartbeat(&mut conn, &keys, "web-2", "i2", 10_000, 0, 600_000)
            .await
            .unwrap();
        assert_eq!(beat.hosts, 2);
        let twin = redis_io::heartbeat(&mut conn, &keys, "web-1", "i3", 10_000, 0, 600_000)
            .await
            .unwrap();
        assert!(twin.conflict, "web-1 belongs to instance i1");
        let again = redis_io::heartbeat(&mut conn, &keys, "web-1", "i1", 10_000, 0, 600_000)
            .await
            .unwrap();
        assert!(!again.conflict);
    });
}

#[test]
fn a_batch_in_flight_at_a_crash_comes_back_with_the_same_hand_off_id() {
    // Times with nanoseconds, as the tailer stamps them; the store keeps milliseconds.
    let none = Mentions::default();
    let mut live = Batch::default();
    for i in 0..50 {
        let line = format!("FLOOD {i}");
        live.add(
            Hit {
                rule: if i % 2 == 0 { "even" } else { "odd" },
                severity: Severity::Warning,
                line: &line,
                file: "/var/log/app.log",
                host: "web-1",
                at: SystemTime::now(),
                mentions: &none,
                top: &[],
            },
            || Rendered::markdown("t", line.clone()),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = Store::open(dir.path()).unwrap();
        let empty = Batch::default();
        store
            .commit(&[
                Change::Undelivered {
                    robot: "ops",
                    pending: &live,
                    doubtful: &empty,
                },
                Change::Sending {
                    robot: "ops",
                    id: 1,
                    at: SystemTime::now(),
                },
            ])
            .unwrap();
        // kill -9 here: the hand-off's answer never came.
    }
    let mut store = Store::open(dir.path()).unwrap();
    let restored = store.restore_undelivered().unwrap();
    let doubtful = &restored["ops"].doubtful;
    assert_eq!(doubtful.count(), 50);
    let before = encode_batch(&live).unwrap();
    let after = encode_batch(doubtful).unwrap();
    assert_eq!(hid("web-1", &before), hid("web-1", &after));
}

/// Shared silences (issues 15, 16): published once, a clash answered with the holder's data,
/// ended with a tombstone that refuses publishing again, forgotten once over; counts of several
/// hosts claimed once, a late count told it came after the report.
#[test]
fn shared_silences_are_published_once_ended_for_good_and_reported_by_one_host() {
    use dingtail::cluster::silence_io::{self, Published};
    let server = RedisServer::start();
    runtime().block_on(async {
        let mut conn = connect(&server).await;
        let keys = Keys::new("s:");
        let now_ms = i64::try_from(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap();
        let later = now_ms + 600_000;
        let published = silence_io::publish(&mut conn, &keys, "aaaaaa", "{one}", later).await;
        assert_eq!(published.unwrap(), Published::Added);
        let again = silence_io::publish(&mut conn, &keys, "aaaaaa", "{other}", later).await;
        assert_eq!(again.unwrap(), Published::Held("{one}".into()));
        let over = silence_io::publish(&mut conn, &keys, "bbbbbb", "{b}", now_ms - 1).await;
        assert_eq!(over.unwrap(), Published::Over);
        // Over by Redis's clock: forgotten at the next read.
        redis::cmd("HSET")
            .arg(keys.silences())
            .arg("cccccc")
            .arg("{c}")
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
        redis::cmd("ZADD")
            .arg(keys.silences_part("ends"))
            .arg(now_ms - 1)
            .arg("cccccc")
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
        let held = silence_io::read(&mut conn, &keys).await.unwrap();
        assert_eq!(held.silences, [("aaaaaa".to_owned(), "{one}".to_owned())]);
        assert!(held.ended.is_empty());
        // Ended early: gone, and never published again.
        silence_io::end(&mut conn, &keys, "aaaaaa", later)
            .await
            .unwrap();
        let held = silence_io::read(&mut conn, &keys).await.unwrap();
        assert!(held.silences.is_empty());
        assert_eq!(held.ended, ["aaaaaa"]);
        let again = silence_io::publish(&mut conn, &keys, "aaaaaa", "{one}", later).await;
        assert_eq!(again.unwrap(), Published::Ended);
        // Two hosts count; the first claim wins with both counts, the second gets nothing.
        for (host, data) in [("web-1", "{1}"), ("web-2", "{2}")] {
            let late = silence_io::count(&mut conn, &keys, "aaaaaa", host, data, 60).await;
            assert!(!late.unwrap());
        }
        let won = silence_io::claim(&mut conn, &keys, "aaaaaa", "web-2").await;
        let mut counts = won.unwrap().unwrap();
        counts.sort();
        assert_eq!(
            counts,
            [
                ("web-1".to_owned(), "{1}".to_owned()),
                ("web-2".to_owned(), "{2}".to_owned())
            ]
        );
        let lost = silence_io::claim(&mut conn, &keys, "aaaaaa", "web-1").await;
        assert_eq!(lost.unwrap(), None);
        let late = silence_io::count(&mut conn, &keys, "aaaaaa", "web-3", "{3}", 60).await;
        assert!(late.unwrap(), "reported already");
        // Acknowledgements are offered to every host.
        silence_io::offer_ack(&mut conn, &keys, "{ack}")
            .await
            .unwrap();
        let held = silence_io::read(&mut conn, &keys).await.unwrap();
        assert_eq!(held.acks, ["{ack}"]);
    });
}
