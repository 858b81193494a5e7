//! The words of alert kinds (issue 13): notices (repeat, resolved, absent, recovered, a silence
//! that ended) and what a firing alert's line stands for. Values come in as text already
//! formatted (times in the config's zone) and raw: the caller escapes log-derived ones.

use std::time::Duration;

use crate::event::Severity;
use crate::lang::{Language, plural};

/// What a notice is, for its title and its tallies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoticeWord {
    /// An incident goes on: matches folded since the last message.
    Repeat,
    /// An incident is over.
    Resolved,
    /// A heartbeat is missing.
    Absent,
    /// A missing heartbeat is back.
    Recovered,
    /// A silence ended.
    SilenceEnded,
}

impl NoticeWord {
    /// The kind's English name (`batch::BatchNotice::kind_name`).
    pub fn parse(name: &str) -> Option<NoticeWord> {
        match name {
            "repeat" => Some(NoticeWord::Repeat),
            "resolved" => Some(NoticeWord::Resolved),
            "absent" => Some(NoticeWord::Absent),
            "recovered" => Some(NoticeWord::Recovered),
            "silence" => Some(NoticeWord::SilenceEnded),
            _ => None,
        }
    }
}

impl Language {
    /// The name of a kind of notice: 仍在发生 / still firing, 已恢复 / resolved, 无日志 /
    /// absent, 已重现 / recovered, 静默结束 / silence ended.
    pub fn notice_word(self, word: NoticeWord) -> &'static str {
        match (self, word) {
            (Language::ZhCn, NoticeWord::Repeat) => "仍在发生",
            (Language::ZhCn, NoticeWord::Resolved) => "已恢复",
            (Language::ZhCn, NoticeWord::Absent) => "无日志",
            (Language::ZhCn, NoticeWord::Recovered) => "已重现",
            (Language::ZhCn, NoticeWord::SilenceEnded) => "静默结束",
            (Language::En, NoticeWord::Repeat) => "still firing",
            (Language::En, NoticeWord::Resolved) => "resolved",
            (Language::En, NoticeWord::Absent) => "absent",
            (Language::En, NoticeWord::Recovered) => "recovered",
            (Language::En, NoticeWord::SilenceEnded) => "silence ended",
        }
    }

    /// A notice's title. Notices that call for attention (a repeat, an absence) start with the
    /// rule's level; the others with what happened:
    /// `【警告】ssh 仍在发生 · ip=10.0.0.1 · web-1`, `[resolved] ssh (ip=10.0.0.1) on web-1`.
    /// `labels` is the key as [`Language::labels`] writes it (empty without `group_by`).
    pub fn notice_title(
        self,
        word: NoticeWord,
        severity: Severity,
        rule: &str,
        labels: &str,
        host: &str,
    ) -> String {
        let what = self.notice_word(word);
        let head = match word {
            NoticeWord::Repeat | NoticeWord::Absent => match self {
                Language::ZhCn => format!("{}{rule} {what}", self.level_tag(severity)),
                Language::En => format!("{}{rule} {what}", self.level_tag(severity)),
            },
            NoticeWord::Resolved | NoticeWord::Recovered | NoticeWord::SilenceEnded => match self {
                Language::ZhCn => format!("【{what}】{rule}"),
                Language::En => format!("[{what}] {rule}"),
            },
        };
        match (self, labels.is_empty()) {
            (Language::ZhCn, true) => format!("{head} · {host}"),
            (Language::ZhCn, false) => format!("{head} · {labels} · {host}"),
            (Language::En, true) => format!("{head} on {host}"),
            (Language::En, false) => format!("{head} ({labels}) on {host}"),
        }
    }

    /// A key or a silence's matchers: `ip=10.0.0.1, user=root` / `ip=10.0.0.1，user=root`.
    pub fn labels(self, labels: &[(String, String)]) -> String {
        let separator = match self {
            Language::ZhCn => "，",
            Language::En => ", ",
        };
        labels
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join(separator)
    }

    /// Matches folded since the last message: `+37 since 12:04:05 (42 in total)` /
    /// `+37 次，自 12:04:05 起（共 42 次）`.
    pub fn repeat(self, folded: u64, since: &str, total: u64) -> String {
        match self {
            Language::ZhCn => format!("+{folded} 次，自 {since} 起（共 {total} 次）"),
            Language::En => format!("+{folded} since {since} ({total} in total)"),
        }
    }

    /// An incident's end: `lasted 4 min 8 s: 123 matches, first 12:00:01, last 12:04:09` /
    /// `持续 4 分 8 秒：共 123 次，首次 12:00:01，末次 12:04:09`.
    pub fn resolved(self, duration: Duration, total: u64, first: &str, last: &str) -> String {
        let lasted = self.duration(duration);
        match self {
            Language::ZhCn => format!("持续 {lasted}：共 {total} 次，首次 {first}，末次 {last}"),
            Language::En => format!(
                "lasted {lasted}: {}, first {first}, last {last}",
                n_matches(total)
            ),
        }
    }

    /// The matches of an ended incident no message reported before.
    pub fn unreported(self, n: u64) -> String {
        match self {
            Language::ZhCn => format!("其中 {n} 次此前未报告"),
            Language::En => format!("{n} of them not reported before"),
        }
    }

    /// When an incident was acknowledged.
    pub fn acknowledged(self, at: &str) -> String {
        match self {
            Language::ZhCn => format!("已于 {at} 确认"),
            Language::En => format!("acknowledged at {at}"),
        }
    }

    /// A missing heartbeat: `no matching line for 5 min (last seen 12:00:01)` /
    /// `5 分钟无日志（最后一次 12:00:01）`; `last_seen` `None`: not seen since dingtail started.
    pub fn absent(self, silent_for: Duration, last_seen: Option<&str>) -> String {
        let quiet = self.duration(silent_for);
        match (self, last_seen) {
            (Language::ZhCn, Some(at)) => format!("无日志 {quiet}（最后一次 {at}）"),
            (Language::ZhCn, None) => format!("无日志 {quiet}（启动以来未见）"),
            (Language::En, Some(at)) => {
                format!("no matching line for {quiet} (last seen {at})")
            }
            (Language::En, None) => {
                format!("no matching line for {quiet} (none since dingtail started)")
            }
        }
    }

    /// A heartbeat back: `back at 12:10:00 after 10 min without lines` /
    /// `12:10:00 已重现（无日志 10 分）`.
    pub fn recovered(self, back: &str, absent_for: Duration) -> String {
        let quiet = self.duration(absent_for);
        match self {
            Language::ZhCn => format!("{back} 已重现（无日志 {quiet}）"),
            Language::En => format!("back at {back} after {quiet} without lines"),
        }
    }

    /// What a silence muted: `静默期间 123 次` / `123 matches while muted`, with the notices
    /// and when (`span`, if anything was muted).
    pub fn muted(self, matches: u64, notices: u64, span: Option<&str>) -> String {
        let mut text = match self {
            Language::ZhCn => format!("静默期间 {matches} 次"),
            Language::En => format!("{} while muted", n_matches(matches)),
        };
        if notices > 0 {
            text.push_str(&match self {
                Language::ZhCn => format!("，{notices} 条通知"),
                Language::En => format!(", {}", plural(notices, "notice")),
            });
        }
        if let Some(span) = span {
            text.push_str(&match self {
                Language::ZhCn => format!("（{span}）"),
                Language::En => format!(" ({span})"),
            });
        }
        text
    }

    /// How a silence ended, who set it and why: `expired; set by zhang.san: deploy` /
    /// `已到期；设置人 zhang.san：deploy`.
    pub fn silence_ending(self, expired: bool, author: &str, reason: &str) -> String {
        let how = match (self, expired) {
            (Language::ZhCn, true) => "已到期",
            (Language::ZhCn, false) => "已解除",
            (Language::En, true) => "expired",
            (Language::En, false) => "removed",
        };
        match (self, reason.is_empty()) {
            (Language::ZhCn, true) => format!("{how}；设置人 {author}"),
            (Language::ZhCn, false) => format!("{how}；设置人 {author}：{reason}"),
            (Language::En, true) => format!("{how}; set by {author}"),
            (Language::En, false) => format!("{how}; set by {author}: {reason}"),
        }
    }

    /// What a firing alert's line stands for: `5 matches within 10 min (since 12:03:04)` /
    /// `10 分钟内 5 次（自 12:03:04 起）`.
    pub fn firing(self, count: u32, within: Duration, since: &str) -> String {
        let span = self.duration(within);
        match self {
            Language::ZhCn => format!("{span}内 {count} 次（自 {since} 起）"),
            Language::En => format!(
                "{} within {span} (since {since})",
                n_matches(u64::from(count))
            ),
        }
    }

    /// A line of an open incident sent again: `still firing: 123 matches so far` /
    /// `仍在发生：共 123 次`.
    pub fn realert(self, total: u64) -> String {
        match self {
            Language::ZhCn => format!("仍在发生：共 {total} 次"),
            Language::En => format!("still firing: {} so far", n_matches(total)),
        }
    }

    /// A line sent ungrouped because the rule's `max_groups` keys all hold open incidents.
    pub fn overflow(self) -> &'static str {
        match self {
            Language::ZhCn => "分组数已达上限（max_groups），本条未分组发送",
            Language::En => "max_groups reached: sent without grouping",
        }
    }

    /// Notices beyond a batch's bound: `and 7 more resolved notices (70 matches)` /
    /// `另有 7 条「已恢复」通知（共 70 次）`.
    pub fn more_notices(self, n: u64, word: Option<NoticeWord>, n_matches: u64) -> String {
        let what = word.map(|w| self.notice_word(w)).unwrap_or_default();
        match (self, n_matches) {
            (Language::ZhCn, 0) => format!("另有 {n} 条「{what}」通知"),
            (Language::ZhCn, _) => format!("另有 {n} 条「{what}」通知（共 {n_matches} 次）"),
            (Language::En, 0) => format!("and {n} more {what} notices"),
            (Language::En, _) => format!(
                "and {n} more {what} notices ({})",
                self::n_matches(n_matches)
            ),
        }
    }

    /// A summary's notices in its title: `, 2 notices` after the alerts, or alone:
    /// `[warning] web-1: 2 notices` / `【警告】web-1：2 条通知`.
    pub fn notices_in_title(self, n: u64, after_alerts: bool) -> String {
        match (self, after_alerts) {
            (Language::ZhCn, true) => format!("，另有 {n} 条通知"),
            (Language::ZhCn, false) => format!("{n} 条通知"),
            (Language::En, true) => format!(", {}", plural(n, "notice")),
            (Language::En, false) => plural(n, "notice"),
        }
    }

    /// A summary made of notices only: `[warning] web-1: 2 notices`.
    pub fn notices_title(self, severity: Severity, hosts: &[&str], n: u64) -> String {
        let tag = self.level_tag(severity);
        let from = self.hosts_phrase(hosts);
        let notices = self.notices_in_title(n, false);
        match self {
            Language::ZhCn => format!("{tag}{from}：{notices}"),
            Language::En => format!("{tag}{from}: {notices}"),
        }
    }

    /// The heading of a summary's section of notices: 通知 / notices.
    pub fn notices_heading(self) -> &'static str {
        match self {
            Language::ZhCn => "通知",
            Language::En => "notices",
        }
    }
}

/// "1 match", "2 matches".
fn n_matches(n: u64) -> String {
    if n == 1 {
        "1 match".to_string()
    } else {
        format!("{n} matches")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::event::Severity;
    use crate::lang::Language;
    use crate::lang::alert::NoticeWord;

    #[test]
    fn notices_read_in_both_languages() {
        let (zh, en) = (Language::ZhCn, Language::En);
        assert_eq!(
            zh.notice_title(
                NoticeWord::Resolved,
                Severity::Warning,
                "ssh",
                "ip=1.2.3.4",
                "web-1"
            ),
            "【已恢复】ssh · ip=1.2.3.4 · web-1"
        );
        assert_eq!(
            en.notice_title(NoticeWord::Absent, Severity::Critical, "beat", "", "web-1"),
            "[critical] beat absent on web-1"
        );
        assert_eq!(
            zh.repeat(37, "12:04:05", 42),
            "+37 次，自 12:04:05 起（共 42 次）"
        );
        assert_eq!(en.repeat(37, "12:04", 42), "+37 since 12:04 (42 in total)");
        assert_eq!(
            zh.resolved(Duration::from_secs(248), 123, "12:00:01", "12:04:09"),
            "持续 4 分 8 秒：共 123 次，首次 12:00:01，末次 12:04:09"
        );
        assert_eq!(zh.muted(123, 0, None), "静默期间 123 次");
        assert_eq!(
            en.muted(1, 2, Some("a → b")),
            "1 match while muted, 2 notices (a → b)"
        );
        assert_eq!(
            en.firing(5, Duration::from_secs(600), "12:03:04"),
            "5 matches within 10 min (since 12:03:04)"
        );
        assert_eq!(
            zh.absent(Duration::from_secs(300), None),
            "无日志 5 分（启动以来未见）"
        );
        assert_eq!(
            en.more_notices(7, Some(NoticeWord::Resolved), 70),
            "and 7 more resolved notices (70 matches)"
        );
        assert_eq!(
            en.labels(&[("ip".into(), "1.2.3.4".into()), ("u".into(), "x".into())]),
            "ip=1.2.3.4, u=x"
        );
    }
}
