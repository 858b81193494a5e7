use std::time::{Duration, SystemTime};

use jiff::tz::TimeZone;

use crate::chat::words::{
    self, Clock, Held, IncidentView, RobotView, SilenceView, StatusView, TestView,
};
use crate::lang::Language;

/// 2026-11-29 14:00:00 in Shanghai (06:00 UTC).
fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_932_000)
}

fn clock() -> Clock {
    Clock {
        zone: TimeZone::get("Asia/Shanghai").unwrap(),
        now: now(),
    }
}

fn silence() -> SilenceView {
    SilenceView {
        id: "k3x9pa".into(),
        rule: "nginx-5xx".into(),
        matchers: vec![("host".into(), "web-3".into())],
        ends: now() + Duration::from_secs(3600),
        author: "张三".into(),
        reason: "发布中".into(),
        muted: 12,
    }
}

#[test]
fn times_show_the_local_clock_and_the_date_only_on_another_day() {
    let clock = clock();
    assert_eq!(clock.at(now() + Duration::from_secs(300)), "14:05");
    assert_eq!(
        clock.at(now() + Duration::from_secs(11 * 3600)),
        "11-30 01:00"
    );
    let utc = Clock {
        zone: TimeZone::UTC,
        now: now(),
    };
    assert_eq!(utc.at(now()), "06:00");
}

#[test]
fn status_lists_counts_robots_problems_silences_and_incidents() {
    let view = StatusView {
        host: "web-1".into(),
        files: 12,
        rules: 8,
        pending: 3,
        last_delivery: Some(now() - Duration::from_secs(120)),
        robots: vec![
            RobotView {
                name: "ops".into(),
                pending: 3,
                budget_left: 17,
                per_minute: 20,
                held: Some(Held::Until(now() + Duration::from_secs(600))),
            },
            RobotView {
                name: "dba".into(),
                pending: 0,
                budget_left: 20,
                per_minute: 20,
                held: Some(Held::Rejected),
            },
        ],
        silences: vec![silence()],
        incidents: vec![IncidentView {
            rule: "disk".into(),
            key: vec![("mount".into(), "/data".into())],
            since: now() - Duration::from_secs(60),
            acked: true,
        }],
        problems: vec!["cannot write state: disk full".into()],
    };
    assert_eq!(
        words::status(Language::ZhCn, &clock(), &view),
        "dingtail（web-1）：文件 12 个，规则 8 条，待发 3 条，最近投递 13:58\n\
         机器人 ops：待发 3，本窗口余量 17/20，暂停至 14:10\n\
         机器人 dba：待发 0，本窗口余量 20/20，配置被钉钉拒绝，已停发\n\
         ⚠ cannot write state: disk full\n\
         静默 1 个\n\
         - k3x9pa nginx-5xx host=web-3 至 15:00（张三：发布中；已静默 12 条）\n\
         告警中 1 个\n\
         - disk mount=/data 自 13:59（已确认）"
    );
    let en = words::status(Language::En, &clock(), &StatusView::default());
    assert_eq!(
        en,
        "dingtail on : 0 files, 0 rules, 0 pending, last delivery never\n0 active silences\n0 firing"
    );
}

#[test]
fn long_lists_are_cut_and_counted() {
    let many: Vec<SilenceView> = (0..13).map(|_| silence()).collect();
    let text = words::mutes(Language::En, &clock(), &many);
    assert_eq!(text.lines().count(), 1 + 10 + 1, "{text}");
    assert!(text.ends_with("and 3 more"), "{text}");
    assert_eq!(
        words::mutes(Language::ZhCn, &clock(), &[]),
        "没有生效的静默"
    );
}

#[test]
fn changes_name_who_did_what() {
    let s = silence();
    assert_eq!(
        words::muted(
            Language::ZhCn,
            &clock(),
            "张三",
            &s,
            Duration::from_secs(3600)
        ),
        "张三 静默了 nginx-5xx host=web-3 1 小时，至 15:00，编号 k3x9pa，原因：发布中。结束时报告期间静默的条数"
    );
    assert_eq!(
        words::muted(Language::En, &clock(), "ann", &s, Duration::from_secs(5400)),
        "ann muted nginx-5xx host=web-3 for 1 h 30 min until 15:00, id k3x9pa (发布中). When it ends, the count of muted alerts is sent"
    );
    assert_eq!(
        words::unmuted(Language::En, "ann", std::slice::from_ref(&s)),
        "ann ended silence k3x9pa (nginx-5xx host=web-3, 12 muted)"
    );
    assert_eq!(
        words::acked(
            Language::ZhCn,
            "李四",
            "disk",
            &[vec![("mount".into(), "/data".into())]]
        ),
        "李四 确认了 disk mount=/data：恢复前不再重复提醒"
    );
    assert_eq!(
        words::nothing_firing(Language::En, "disk", &[]),
        "disk is not firing: nothing to acknowledge"
    );
    assert_eq!(
        words::ack_passed_on(Language::ZhCn, "李四", "disk", &[]),
        "本机 disk 没有正在告警的事件；李四 的确认已转给集群中的其他主机"
    );
    assert_eq!(
        words::ack_passed_on(Language::En, "Li", "disk", &[]),
        "disk is not firing on this host; Li's acknowledgement was passed on to the cluster's \
         other hosts"
    );
}

#[test]
fn a_test_shows_the_rendering_under_where_it_came_from() {
    let view = TestView {
        rule: "nginx-5xx".into(),
        at: now(),
        source: "/var/log/nginx/error.log".into(),
        title: "【严重】nginx-5xx @ web-1".into(),
        text: "GET /api 502".into(),
    };
    assert_eq!(
        words::test(Language::ZhCn, &clock(), &view),
        "nginx-5xx 最近一次匹配（14:00，/var/log/nginx/error.log）渲染如下：\n——\n【严重】nginx-5xx @ web-1\nGET /api 502"
    );
    assert_eq!(
        words::no_match_yet(Language::En, "x"),
        "rule x has not matched since dingtail started"
    );
}

#[test]
fn an_unknown_name_in_a_mute_is_named_with_the_closest_one() {
    assert_eq!(
        words::unknown_name(Language::ZhCn, "api", "cod", Some("code")),
        "规则 api 没有名为 cod 的捕获或上下文值（是否想用 code？）"
    );
    assert_eq!(
        words::unknown_name(Language::En, "api", "zz", None),
        "rule api has no capture or context value named zz"
    );
}
