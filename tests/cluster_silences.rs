//! Silences shared through Redis (issues 15 and 16): two real `dingtail run` daemons, each with
//! its own state directory, log and host name, one real `redis-server` on 127.0.0.1 and the
//! DingTalk stand-in. A `dingtail mute` on host A stops that rule's messages from host B too,
//! `dingtail mutes` on B lists it, `dingtail unmute` on B ends it everywhere and the lines come
//! back, and what both hosts muted arrives once, with the total — when unmuted, and when the
//! silence expires on both hosts at once. A `mute` and an `ack` typed in the chat, answered by
//! host A (the Stream gateway stand-in), hold on host B too. A mute made while Redis is down
//! reaches the other host when Redis is back; a host that lost its state ends no silence.

use std::thread;
use std::time::{Duration, Instant};

use crate::chat_daemon::{reply_containing, stream_chat};
use crate::support::chat::{Said, robot_message};
use crate::support::cluster::{Host, lines, shown};
use crate::support::daemon::Daemon;
use crate::support::gateway::{Gateway, GatewayConfig};

use crate::support::redis::RedisServer;
use crate::support::standin::{Received, Standin, StandinConfig};

/// The id `dingtail mute` printed.
fn silence_id(out: &str) -> String {
    let (_, rest) = out
        .split_once(", id ")
        .unwrap_or_else(|| panic!("no id in {out:?}"));
    rest.chars().take(6).collect()
}

fn wait_message(
    standin: &Standin,
    daemons: &[&Daemon],
    what: &str,
    timeout: Duration,
    found: impl Fn(&Received) -> bool,
) -> Received {
    let ok = standin.wait_for(
        |received| received.iter().any(|r| r.is_delivered() && found(r)),
        timeout,
    );
    if !ok {
        let logs: Vec<String> = daemons.iter().map(|d| d.describe()).collect();
        panic!(
            "no message {what} within {timeout:?}; delivered:\n{}\n{}",
            shown(standin),
            logs.join("\n=====\n")
        );
    }
    standin.delivered().into_iter().find(|r| found(r)).unwrap()
}

fn ended_messages(standin: &Standin) -> Vec<Received> {
    standin
        .delivered()
        .into_iter()
        .filter(|r| r.title().contains("[silence ended]"))
        .collect()
}

/// Waits until `host`'s `dingtail mutes` lists `id` (or, `listed` false, no longer does).
fn wait_listed(host: &Host, id: &str, listed: bool, daemons: &[&Daemon]) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let out = host.cli(&["mutes"]);
        if out.contains(id) == listed {
            return;
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = daemons.iter().map(|d| d.describe()).collect();
            panic!(
                "`mutes` on {:?} {} {id}: {out}\n{}",
                host.state(),
                if listed {
                    "never listed"
                } else {
                    "still lists"
                },
                logs.join("\n=====\n")
            );
        }
        thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_mute_on_one_host_holds_on_the_other_and_an_unmute_there_ends_it_with_one_total() {
    let redis = RedisServer::start();
    let standin = Standin::start_with(StandinConfig::signed());
    let a = Host::new("web-a", &standin, &redis);
    let b = Host::new("web-b", &standin, &redis);
    let da = a.start();
    let db = b.start();
    let daemons = [&da, &db];
    let out = a.cli(&[
        "mute",
        "nginx",
        "--where",
        "upstream=web-3",
        "--for",
        "10m",
        "--reason",
        "deploy",
    ]);
    let id = silence_id(&out);
    // Host B adopts it: its own `mutes` lists the cluster's silence.
    wait_listed(&b, &id, true, &daemons);
    db.wait_for_log("adopted from another host", Duration::from_secs(5));
    // Both hosts mute web-3; B still alerts for web-4.
    a.append(&lines("web-3", 5, "a"));
    b.append(&lines("web-3", 7, "b"));
    b.append(&lines("web-4", 1, "b"));
    wait_message(
        &standin,
        &daemons,
        "for web-4",
        Duration::from_secs(20),
        |r| r.title().contains("from web-4"),
    );
    // The running counts reach Redis within a second or two.
    thread::sleep(Duration::from_secs(2));
    assert!(
        !shown(&standin).contains("host=web-3"),
        "web-3 alerted while muted: {}",
        shown(&standin)
    );
    // Unmuted on the other host: ended everywhere, one message with both hosts' count.
    let out = b.cli(&["unmute", &id]);
    assert!(out.contains(&format!("unmuted {id}")), "{out}");
    let ended = wait_message(
        &standin,
        &daemons,
        "reporting what the silence muted",
        Duration::from_secs(30),
        |r| r.title().contains("[silence ended]"),
    );
    let text = ended.visible_text();
    assert!(text.contains("12 matches while muted"), "{text}");
    assert!(text.contains("deploy"), "{text}");
    wait_listed(&a, &id, false, &daemons);
    // Its lines come back on both hosts.
    a.append(&lines("web-3", 1, "after-a"));
    b.append(&lines("web-3", 1, "after-b"));
    let ok = standin.wait_for(
        |received| {
            let text: String = received
                .iter()
                .filter(|r| r.is_delivered())
                .map(Received::visible_text)
                .collect();
            text.contains("request after-a-0") && text.contains("request after-b-0")
        },
        Duration::from_secs(20),
    );
    assert!(ok, "web-3 did not come back: {}", shown(&standin));
    // Reported once: no host sends its own part.
    thread::sleep(Duration::from_secs(6));
    assert_eq!(ended_messages(&standin).len(), 1, "{}", shown(&standin));
}

#[test]
fn a_silence_expiring_on_every_host_at_once_is_reported_once_with_the_total() {
    let redis = RedisServer::start();
    let standin = Standin::start_with(StandinConfig::signed());
    let a = Host::new("exp-a", &standin, &redis);
    let b = Host::new("exp-b", &standin, &redis);
    let da = a.start();
    let db = b.start();
    let daemons = [&da, &db];
    let out = b.cli(&["mute", "nginx", "--for", "12s", "--reason", "maintenance"]);
    let id = silence_id(&out);
    wait_listed(&a, &id, true, &daemons);
    thread::sleep(Duration::from_millis(1500));
    a.append(&lines("web-1", 4, "a"));
    b.append(&lines("web-2", 9, "b"));
    let ended = wait_message(
        &standin,
        &daemons,
        "reporting what the silence muted",
        Duration::from_secs(30),
        |r| r.title().contains("[silence ended]"),
    );
    let text = ended.visible_text();
    assert!(text.contains("13 matches while muted"), "{text}");
    assert!(text.contains("expired"), "{text}");
    thread::sleep(Duration::from_secs(6));
    assert_eq!(ended_messages(&standin).len(), 1, "{}", shown(&standin));
    assert!(
        !shown(&standin).contains("status=502"),
        "a muted line alerted: {}",
        shown(&standin)
    );
}

#[test]
fn a_mute_while_redis_is_down_holds_here_and_reaches_the_other_host_when_redis_is_back() {
    let mut redis = RedisServer::start();
    let standin = Standin::start_with(StandinConfig::signed());
    let a = Host::new("down-a", &standin, &redis);
    let b = Host::new("down-b", &standin, &redis);
    let da = a.start();
    let db = b.start();
    let daemons = [&da, &db];
    redis.stop();
    let out = a.cli(&["mute", "nginx", "--where", "upstream=web-3", "--for", "10m"]);
    let id = silence_id(&out);
    da.wait_for_log(
        "cannot share silences through Redis",
        Duration::from_secs(10),
    );
    // Redis comes back empty (no persistence): the silence is shared again from A's state.
    redis.restart();
    da.wait_for_log(
        "sharing silences through Redis again",
        Duration::from_secs(15),
    );
    wait_listed(&b, &id, true, &daemons);
    a.append(&lines("web-3", 2, "a"));
    b.append(&lines("web-3", 3, "b"));
    b.append(&lines("web-4", 1, "b"));
    wait_message(
        &standin,
        &daemons,
        "for web-4",
        Duration::from_secs(30),
        |r| r.visible_text().contains("host=web-4"),
    );
    thread::sleep(Duration::from_secs(1));
    assert!(
        !shown(&standin).contains("host=web-3"),
        "web-3 alerted while muted: {}",
        shown(&standin)
    );
}

#[test]
fn a_host_that_lost_its_state_adopts_the_silences_again_and_ends_none() {
    let redis = RedisServer::start();
    let standin = Standin::start_with(StandinConfig::signed());
    let a = Host::new("lost-a", &standin, &redis);
    let b = Host::new("lost-b", &standin, &redis);
    let da = a.start();
    let mut db = b.start();
    let out = a.cli(&["mute", "nginx", "--for", "10m"]);
    let id = silence_id(&out);
    wait_listed(&b, &id, true, &[&da, &db]);
    // In step on B: its file says so.
    let in_step = b.state().join("state/cluster-silences");
    db.wait_for("the silence in step", Duration::from_secs(10), |_| {
        std::fs::read_to_string(&in_step).is_ok_and(|text| text.contains(&id))
    });
    // B's state database is lost (its file of silences in step stays).
    db.stop();
    for file in ["state.db", "state.db-wal", "state.db-shm"] {
        std::fs::remove_file(b.state().join("state").join(file)).ok();
    }
    let db = b.start();
    wait_listed(&b, &id, true, &[&da, &db]);
    thread::sleep(Duration::from_secs(2));
    let listed = a.cli(&["mutes"]);
    assert!(
        listed.contains(&id),
        "ended on A: {listed}\n{}",
        db.describe()
    );
}

const CHAT_RULES: &str = "- name: api
  input: app
  match: 'ERR (?P<code>\\d+)'
  robot: ops
  title: 'api error {{ code }}'
  group_by: code
  when: {count: 2, within: 1m}
  realert: 2s
  resolve: {after: 1h}
- name: oops
  input: app
  match: 'OOPS (?P<what>\\S+)'
  robot: ops
  title: 'oops {{ what }}'
";

/// The delivered messages' texts joined.
fn delivered_text(standin: &Standin) -> String {
    standin
        .delivered()
        .iter()
        .map(Received::visible_text)
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mute_and_an_ack_typed_in_the_chat_hold_on_every_host() {
    let gateway = Gateway::start(GatewayConfig::default()).await;
    let redis = RedisServer::start();
    let standin = Standin::start_with(StandinConfig::signed());
    let session = Standin::start();
    let a = Host::with(
        "chat-a",
        &standin,
        &redis,
        CHAT_RULES,
        &stream_chat(&gateway),
    );
    let b = Host::with("chat-b", &standin, &redis, CHAT_RULES, "");
    let (da, db) = tokio::task::block_in_place(|| (a.start(), b.start()));
    gateway.wait_connections(1, Duration::from_secs(15)).await;
    let said = Said::by_zhang(&session.webhook_url());

    // An incident on each host; the ack typed in the chat reaches host A only.
    a.append(&["ERR 500 a1".to_owned(), "ERR 500 a2".to_owned()]);
    b.append(&["ERR 500 b1".to_owned(), "ERR 500 b2".to_owned()]);
    tokio::task::block_in_place(|| {
        let ok = standin.wait_for(
            |received| {
                let text: String = received.iter().map(Received::visible_text).collect();
                text.contains("ERR 500 a2") && text.contains("ERR 500 b2")
            },
            Duration::from_secs(20),
        );
        assert!(ok, "both incidents fire: {}", shown(&standin));
    });
    gateway.push_robot_message(&robot_message("ack api code=500", &said));
    let reply = reply_containing(&session, "acknowledged");
    assert!(reply.contains("张三 acknowledged api code=500"), "{reply}");
    // Host B acknowledges its incident too: its matches after the ack are not repeated when
    // the realert period (2 s) ends.
    tokio::task::block_in_place(|| {
        db.wait_for_log(
            "acknowledged rule `api` on host `chat-a`",
            Duration::from_secs(10),
        )
    });
    let before = standin.delivered().len();
    b.append(&["ERR 500 b3".to_owned(), "ERR 500 b4".to_owned()]);
    a.append(&["ERR 500 a3".to_owned()]);
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        standin.delivered().len(),
        before,
        "a repeat after the ack: {}",
        shown(&standin)
    );

    // A mute typed in the chat holds on host B too; `mutes` on B's shell lists it.
    gateway.push_robot_message(&robot_message("mute oops 1h deploy", &said));
    let reply = reply_containing(&session, "muted oops");
    let id = reply
        .split(", id ")
        .nth(1)
        .and_then(|rest| rest.split([' ', '.', ',']).next())
        .unwrap()
        .to_owned();
    tokio::task::block_in_place(|| wait_listed(&b, &id, true, &[&da, &db]));
    a.append(&["OOPS a-muted".to_owned()]);
    b.append(&["OOPS b-muted-1".to_owned(), "OOPS b-muted-2".to_owned()]);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !delivered_text(&standin).contains("OOPS"),
        "a muted line alerted: {}",
        shown(&standin)
    );
    // `unmute` in the chat: one message with both hosts' count.
    gateway.push_robot_message(&robot_message("unmute oops", &said));
    reply_containing(&session, "ended silence");
    tokio::task::block_in_place(|| {
        let ended = wait_message(
            &standin,
            &[&da, &db],
            "reporting what the silence muted",
            Duration::from_secs(30),
            |r| r.title().contains("[silence ended]"),
        );
        let text = ended.visible_text();
        assert!(
            text.contains("3 matches while muted"),
            "{text}\n{}\n=====\n{}",
            da.describe(),
            db.describe()
        );
        wait_listed(&b, &id, false, &[&da, &db]);
    });
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(ended_messages(&standin).len(), 1, "{}", shown(&standin));
}
