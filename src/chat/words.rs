//! What the daemon answers to chat commands, worded in the configured language and time zone.
//! Pure: the daemon fills plain views of its state ([`StatusView`], [`SilenceView`], …) and
//! these functions turn them into the short text the group reads on a phone. No clock: times are
//! shown against the `now` in [`Clock`].
//!
//! Replies are `text` messages (never markdown), so nothing in them becomes markup; what people
//! typed (a rule name, a reason) is shown as typed.

use std::time::{Duration, SystemTime};

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::lang::Language;
use crate::noun;

/// How replies show times: `14:05` on the same local day as `now`, `11-30 14:05` otherwise.
#[derive(Clone, Debug)]
pub struct Clock {
    /// The configured zone.
    pub zone: TimeZone,
    /// The reply's now.
    pub now: SystemTime,
}

impl Clock {
    /// `at` as a reply shows it.
    pub fn at(&self, at: SystemTime) -> String {
        let (Ok(at), Ok(now)) = (Timestamp::try_from(at), Timestamp::try_from(self.now)) else {
            return "?".to_owned();
        };
        let at = at.to_zoned_datetime(self.zone.clone());
        let today = now.to_zoned_datetime(self.zone.clone()).date() == at.date();
        let format = if today { "%H:%M" } else { "%m-%d %H:%M" };
        jiff::fmt::strtime::format(format, &at).unwrap_or_else(|_| "?".to_owned())
    }
}

/// One robot in `status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RobotView {
    /// Its name.
    pub name: String,
    /// Events waiting to be sent to it.
    pub pending: u64,
    /// Messages DingTalk still takes in the current window.
    pub budget_left: usize,
    /// Messages per window.
    pub per_minute: u32,
    /// Why it is not sending, and until when.
    pub held: Option<Held>,
}

/// Why a robot waits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Held {
    /// DingTalk throttled it (or a send failed): it waits until then.
    Until(SystemTime),
    /// DingTalk refused its configuration; a reload that fixes it lifts this.
    Rejected,
}

/// One silence, as `status` and `mutes` list it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SilenceView {
    /// Its id (`k3x9pa`).
    pub id: String,
    /// The rule.
    pub rule: String,
    /// `KEY=VALUE` limits.
    pub matchers: Vec<(String, String)>,
    /// Until when.
    pub ends: SystemTime,
    /// Who set it.
    pub author: String,
    /// Why.
    pub reason: String,
    /// What it muted so far.
    pub muted: u64,
}

/// One firing alert (a rule's key over its threshold, or absent), as `status` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncidentView {
    /// The rule.
    pub rule: String,
    /// Its key's labels (`host=web-3`), empty for a rule without `group_by`.
    pub key: Vec<(String, String)>,
    /// Since when it fires.
    pub since: SystemTime,
    /// Acknowledged: no repeats until it resolves.
    pub acked: bool,
}

/// Everything `status` shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusView {
    /// This host's name.
    pub host: String,
    /// Files followed.
    pub files: usize,
    /// Rules loaded.
    pub rules: usize,
    /// Events waiting to be sent, all robots.
    pub pending: u64,
    /// The last message DingTalk took.
    pub last_delivery: Option<SystemTime>,
    /// Per robot.
    pub robots: Vec<RobotView>,
    /// Active silences.
    pub silences: Vec<SilenceView>,
    /// Firing alerts.
    pub incidents: Vec<IncidentView>,
    /// What is wrong (a state that cannot be written, a reload that failed, …), as logged.
    pub problems: Vec<String>,
}

/// At most this many silences or incidents are listed one per line; more are counted.
const LISTED: usize = 10;

/// The answer to `status`.
pub fn status(lang: Language, clock: &Clock, view: &StatusView) -> String {
    let mut lines = Vec::new();
    let last = view
        .last_delivery
        .map_or_else(|| never(lang).to_owned(), |at| clock.at(at));
    lines.push(match lang {
        Language::ZhCn => format!(
            "dingtail（{}）：文件 {} 个，规则 {} 条，待发 {} 条，最近投递 {last}",
            view.host, view.files, view.rules, view.pending
        ),
        Language::En => format!(
            "dingtail on {}: {}, {}, {} pending, last delivery {last}",
            view.host,
            noun::count(view.files, "file"),
            noun::count(view.rules, "rule"),
            view.pending
        ),
    });
    for robot in &view.robots {
        lines.push(robot_line(lang, clock, robot));
    }
    for problem in &view.problems {
        lines.push(format!("⚠ {problem}"));
    }
    lines.push(match lang {
        Language::ZhCn => format!("静默 {} 个", view.silences.len()),
        Language::En => noun::count(view.silences.len(), "active silence"),
    });
    push_listed(&mut lines, lang, &view.silences, |s| {
        silence_line(lang, clock, s)
    });
    lines.push(match lang {
        Language::ZhCn => format!("告警中 {} 个", view.incidents.len()),
        Language::En => format!("{} firing", view.incidents.len()),
    });
    push_listed(&mut lines, lang, &view.incidents, |i| {
        incident_line(lang, clock, i)
    });
    lines.join("\n")
}

fn never(lang: Language) -> &'static str {
    match lang {
        Language::ZhCn => "无",
        Language::En => "never",
    }
}

fn robot_line(lang: Language, clock: &Clock, robot: &RobotView) -> String {
    let held = match (&robot.held, lang) {
        (None, _) => String::new(),
        (Some(Held::Until(at)), Language::ZhCn) => format!("，暂停至 {}", clock.at(*at)),
        (Some(Held::Until(at)), Language::En) => format!(", holding until {}", clock.at(*at)),
        (Some(Held::Rejected), Language::ZhCn) => "，配置被钉钉拒绝，已停发".to_owned(),
        (Some(Held::Rejected), Language::En) => {
            ", stopped: DingTalk refused its configuration".to_owned()
        }
    };
    match lang {
        Language::ZhCn => format!(
            "机器人 {}：待发 {}，本窗口余量 {}/{}{held}",
            robot.name, robot.pending, robot.budget_left, robot.per_minute
        ),
        Language::En => format!(
            "robot {}: {} pending, {}/{} sends left this window{held}",
            robot.name, robot.pending, robot.budget_left, robot.per_minute
        ),
    }
}

fn push_listed<T>(
    lines: &mut Vec<String>,
    lang: Language,
    items: &[T],
    line: impl Fn(&T) -> String,
) {
    for item in items.iter().take(LISTED) {
        lines.push(format!("- {}", line(item)));
    }
    if items.len() > LISTED {
        lines.push(format!("- {}", lang.and_more_items(items.len() - LISTED)));
    }
}

/// `rule` with its limits: `nginx-5xx host=web-3`.
fn target(rule: &str, matchers: &[(String, String)]) -> String {
    let mut text = rule.to_owned();
    for (key, value) in matchers {
        text.push(' ');
        text.push_str(key);
        text.push('=');
        text.push_str(value);
    }
    text
}

fn silence_line(lang: Language, clock: &Clock, s: &SilenceView) -> String {
    let target = target(&s.rule, &s.matchers);
    let ends = clock.at(s.ends);
    let mut line = match lang {
        Language::ZhCn => format!("{} {target} 至 {ends}（{}", s.id, s.author),
        Language::En => format!("{} {target} until {ends} ({}", s.id, s.author),
    };
    if !s.reason.is_empty() {
        line.push_str(lang.colon());
        line.push_str(&s.reason);
    }
    if s.muted > 0 {
        line.push_str(&match lang {
            Language::ZhCn => format!("；已静默 {} 条", s.muted),
            Language::En => format!("; {} muted", s.muted),
        });
    }
    line.push_str(match lang {
        Language::ZhCn => "）",
        Language::En => ")",
    });
    line
}

fn incident_line(lang: Language, clock: &Clock, i: &IncidentView) -> String {
    let target = target(&i.rule, &i.key);
    let since = clock.at(i.since);
    match (lang, i.acked) {
        (Language::ZhCn, false) => format!("{target} 自 {since}"),
        (Language::ZhCn, true) => format!("{target} 自 {since}（已确认）"),
        (Language::En, false) => format!("{target} since {since}"),
        (Language::En, true) => format!("{target} since {since} (acknowledged)"),
    }
}

/// The answer to `mutes`.
pub fn mutes(lang: Language, clock: &Clock, silences: &[SilenceView]) -> String {
    if silences.is_empty() {
        return match lang {
            Language::ZhCn => "没有生效的静默".to_owned(),
            Language::En => "no active silences".to_owned(),
        };
    }
    let mut lines = vec![match lang {
        Language::ZhCn => format!("生效的静默 {} 个：", silences.len()),
        Language::En => format!("{}:", noun::count(silences.len(), "active silence")),
    }];
    push_listed(&mut lines, lang, silences, |s| silence_line(lang, clock, s));
    lines.join("\n")
}

/// The answer to a `mute` that took effect.
pub fn muted(
    lang: Language,
    clock: &Clock,
    who: &str,
    silence: &SilenceView,
    duration: Duration,
) -> String {
    let target = target(&silence.rule, &silence.matchers);
    let span = lang.duration(duration);
    let ends = clock.at(silence.ends);
    let mut text = match lang {
        Language::ZhCn => format!(
            "{who} 静默了 {target} {span}，至 {ends}，编号 {}",
            silence.id
        ),
        Language::En => format!(
            "{who} muted {target} for {span} until {ends}, id {}",
            silence.id
        ),
    };
    if !silence.reason.is_empty() {
        text.push_str(&match lang {
            Language::ZhCn => format!("，原因：{}", silence.reason),
            Language::En => format!(" ({})", silence.reason),
        });
    }
    text.push_str(match lang {
        Language::ZhCn => "。结束时报告期间静默的条数",
        Language::En => ". When it ends, the count of muted alerts is sent",
    });
    text
}

/// The answer to an `unmute` that ended `ended` (one or more silences).
pub fn unmuted(lang: Language, who: &str, ended: &[SilenceView]) -> String {
    let list = ended
        .iter()
        .map(|s| match lang {
            Language::ZhCn => format!(
                "{}（{}，已静默 {} 条）",
                s.id,
                target(&s.rule, &s.matchers),
                s.muted
            ),
            Language::En => format!(
                "{} ({}, {} muted)",
                s.id,
                target(&s.rule, &s.matchers),
                s.muted
            ),
        })
        .collect::<Vec<_>>()
        .join(lang.list_separator());
    match lang {
        Language::ZhCn => format!("{who} 取消了静默 {list}"),
        Language::En => format!("{who} ended silence {list}"),
    }
}

/// The answer to an `unmute` whose target is neither an active silence's id nor a muted rule.
pub fn no_silence(lang: Language, target: &str) -> String {
    match lang {
        Language::ZhCn => format!("没有编号或规则为 {target} 的生效静默（发送 mutes 查看列表）"),
        Language::En => {
            format!("no active silence has the id or rule {target} (send mutes for the list)")
        }
    }
}

/// The answer to an `ack` that acknowledged `keys` of `rule`.
pub fn acked(lang: Language, who: &str, rule: &str, keys: &[Vec<(String, String)>]) -> String {
    let list = keys
        .iter()
        .map(|key| target(rule, key))
        .collect::<Vec<_>>()
        .join(lang.list_separator());
    match lang {
        Language::ZhCn => format!("{who} 确认了 {list}：恢复前不再重复提醒"),
        Language::En => format!("{who} acknowledged {list}: no more repeats until it resolves"),
    }
}

/// The answer to an `ack` that found nothing firing.
pub fn nothing_firing(lang: Language, rule: &str, matchers: &[(String, String)]) -> String {
    let target = target(rule, matchers);
    match lang {
        Language::ZhCn => format!("{target} 没有正在告警的事件，无需确认"),
        Language::En => format!("{target} is not firing: nothing to acknowledge"),
    }
}

/// The answer to an `ack` in a cluster when nothing fires on the answering host: the
/// acknowledgement was passed on to the other hosts, where the incident may be.
pub fn ack_passed_on(
    lang: Language,
    who: &str,
    rule: &str,
    matchers: &[(String, String)],
) -> String {
    let target = target(rule, matchers);
    match lang {
        Language::ZhCn => {
            format!("本机 {target} 没有正在告警的事件；{who} 的确认已转给集群中的其他主机")
        }
        Language::En => format!(
            "{target} is not firing on this host; {who}'s acknowledgement was passed on to the \
             cluster's other hosts"
        ),
    }
}

/// The answer to an `ack` of a rule that has no alert kind that fires (no threshold, repeat or
/// absence): its lines are sent as they come and there is nothing to acknowledge.
pub fn not_acknowledgeable(lang: Language, rule: &str) -> String {
    match lang {
        Language::ZhCn => {
            format!("规则 {rule} 逐条发送、不会持续告警，无需确认；可用 mute 静默它")
        }
        Language::En => format!(
            "rule {rule} sends each match and never stays firing, so there is nothing to acknowledge; mute it instead"
        ),
    }
}

/// The answer to a command naming a rule that is not loaded.
pub fn unknown_rule(lang: Language, rule: &str) -> String {
    match lang {
        Language::ZhCn => format!("没有名为 {rule} 的规则"),
        Language::En => format!("there is no rule named {rule}"),
    }
}

/// The answer to a `mute` limited by a name (`KEY=VALUE`) that is neither one of the rule's
/// captures nor a context name; `hint` is the closest known name.
pub fn unknown_name(lang: Language, rule: &str, name: &str, hint: Option<&str>) -> String {
    let mut text = match lang {
        Language::ZhCn => format!("规则 {rule} 没有名为 {name} 的捕获或上下文值"),
        Language::En => format!("rule {rule} has no capture or context value named {name}"),
    };
    if let Some(hint) = hint {
        text.push_str(&match lang {
            Language::ZhCn => format!("（是否想用 {hint}？）"),
            Language::En => format!(" (did you mean {hint}?)"),
        });
    }
    text
}

/// What `test` shows of the rule's last match: its rendering as the robot would send it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestView {
    /// The rule.
    pub rule: String,
    /// When the matching line was read (or the event's own time).
    pub at: SystemTime,
    /// Where it came from (a file, or a journal input's name).
    pub source: String,
    /// The rendered title.
    pub title: String,
    /// The rendered text (plain: the reply is a text message).
    pub text: String,
}

/// The answer to `test RULE`.
pub fn test(lang: Language, clock: &Clock, view: &TestView) -> String {
    let at = clock.at(view.at);
    let head = match lang {
        Language::ZhCn => format!(
            "{} 最近一次匹配（{at}，{}）渲染如下：",
            view.rule, view.source
        ),
        Language::En => format!(
            "{}'s last match ({at}, {}) renders as:",
            view.rule, view.source
        ),
    };
    format!("{head}\n——\n{}\n{}", view.title, view.text)
}

/// The answer to `test RULE` when the rule has not matched since the daemon started.
pub fn no_match_yet(lang: Language, rule: &str) -> String {
    match lang {
        Language::ZhCn => format!("规则 {rule} 自本次启动以来没有匹配"),
        Language::En => format!("rule {rule} has not matched since dingtail started"),
    }
}

/// The answer when a change could not be stored (it was not made).
pub fn not_stored(lang: Language, why: &str) -> String {
    match lang {
        Language::ZhCn => format!("未生效：无法写入状态（{why}）"),
        Language::En => format!("not done: cannot write the state ({why})"),
    }
}

#[cfg(test)]
mod tests;
