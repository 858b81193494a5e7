//! `Language`: every word dingtail itself puts into a message (titles, severity names, labels,
//! "and N more", durations), in one place, so that a group reads its alerts in its own language
//! (`language: zh-CN | en` at the top of the config, default `zh-CN`).
//!
//! Only message text is translated: the rule author's templates are used as written, and the
//! command line and the daemon's own log stay in English. A feature that adds wording to
//! messages (resolved notices, muted counts, …) adds a method here with both languages, so that
//! no message text is spelled anywhere else.

mod alert;

use std::time::Duration;

use crate::event::Severity;
pub use crate::lang::alert::NoticeWord;

/// The language of the words dingtail writes into messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Language {
    /// Simplified Chinese (`zh-CN`), the default: DingTalk groups are mostly Chinese-speaking.
    #[default]
    ZhCn,
    /// English (`en`).
    En,
}

impl Language {
    /// The names `language:` accepts.
    pub const NAMES: &'static [&'static str] = &["zh-CN", "en"];

    /// Parses a `language:` value (`zh-CN` or `en`, any case).
    pub fn parse(name: &str) -> Option<Language> {
        match name.to_ascii_lowercase().as_str() {
            "zh-cn" => Some(Language::ZhCn),
            "en" => Some(Language::En),
            _ => None,
        }
    }

    /// The name as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Language::ZhCn => "zh-CN",
            Language::En => "en",
        }
    }

    /// A severity's name in messages: 严重 / 警告 / 提示, or critical / warning / info.
    pub fn severity(self, severity: Severity) -> &'static str {
        match self {
            Language::ZhCn => match severity {
                Severity::Critical => "严重",
                Severity::Warning => "警告",
                Severity::Info => "提示",
            },
            Language::En => severity.as_str(),
        }
    }

    /// `[critical] ` / `【严重】`: how a title starts.
    pub fn level_tag(self, severity: Severity) -> String {
        match self {
            Language::ZhCn => format!("【{}】", self.severity(severity)),
            Language::En => format!("[{}] ", self.severity(severity)),
        }
    }

    /// The title of a lone event whose rule has no `title:`.
    pub fn event_title(self, rule: &str, severity: Severity, host: &str) -> String {
        match self {
            Language::ZhCn => format!("{rule}（{}）· {host}", self.severity(severity)),
            Language::En => format!("{rule} ({}) on {host}", self.severity(severity)),
        }
    }

    /// Where a summary's events come from: the host, or how many hosts.
    pub fn hosts_phrase(self, hosts: &[&str]) -> String {
        match (hosts, self) {
            ([one], _) => (*one).to_string(),
            (_, Language::ZhCn) => format!("{} 台主机", hosts.len()),
            (_, Language::En) => format!("{} hosts", hosts.len()),
        }
    }

    /// The default summary title: level, host(s), count and rules.
    /// `[critical] web-1: 15 alerts from 5 rules` / `【严重】web-1：5 条规则共 15 条告警`.
    pub fn summary_title(
        self,
        severity: Severity,
        hosts: &[&str],
        count: u64,
        n_rules: usize,
    ) -> String {
        let tag = self.level_tag(severity);
        let from = self.hosts_phrase(hosts);
        match self {
            Language::ZhCn => format!("{tag}{from}：{n_rules} 条规则共 {count} 条告警"),
            Language::En => format!(
                "{tag}{from}: {} from {}",
                plural(count, "alert"),
                plural(n_rules as u64, "rule")
            ),
        }
    }

    /// How often a rule fired, in a summary heading: `12×` / `12 次`.
    pub fn times(self, count: u64) -> String {
        match self {
            Language::ZhCn => format!("{count} 次"),
            Language::En => format!("{count}×"),
        }
    }

    /// The last line of a section whose samples were not all shown: `and 8 more` / `另有 8 条`.
    pub fn and_more(self, n: u64) -> String {
        match self {
            Language::ZhCn => format!("另有 {n} 条"),
            Language::En => format!("and {n} more"),
        }
    }

    /// The end of a list of items with some left out: `and 2 more` / `等 2 个`.
    pub fn and_more_items(self, n: usize) -> String {
        match self {
            Language::ZhCn => format!("另有 {n} 个"),
            Language::En => format!("and {n} more"),
        }
    }

    /// The footer of a summary whose last sections did not fit.
    pub fn more_rules(self, n_rules: u64, n_events: u64) -> String {
        match self {
            Language::ZhCn => format!("另有 {n_rules} 条规则（{n_events} 条告警）"),
            Language::En => format!(
                "and {n_rules} more {} ({})",
                if n_rules == 1 { "rule" } else { "rules" },
                plural(n_events, "alert")
            ),
        }
    }

    /// The label of a summary fact.
    pub fn label(self, label: Label) -> &'static str {
        match (self, label) {
            (Language::ZhCn, Label::Hosts) => "主机",
            (Language::ZhCn, Label::Files) => "文件",
            (Language::En, Label::Hosts) => "hosts",
            (Language::En, Label::Files) => "files",
        }
    }

    /// Between a label and its items: `: ` / `：`.
    pub fn colon(self) -> &'static str {
        match self {
            Language::ZhCn => "：",
            Language::En => ": ",
        }
    }

    /// Between the items of a list: `, ` / `、`.
    pub fn list_separator(self) -> &'static str {
        match self {
            Language::ZhCn => "、",
            Language::En => ", ",
        }
    }

    /// The end of a `top:` list that does not show every value: how many distinct values there
    /// were, or that the bound on counted values was passed.
    pub fn distinct(self, n_distinct: usize, bound_passed: bool) -> String {
        match (self, bound_passed) {
            (Language::ZhCn, false) => format!("…（共 {n_distinct} 个不同值）"),
            (Language::ZhCn, true) => {
                format!("…（超过 {n_distinct} 个不同值，之后的新值未计数）")
            }
            (Language::En, false) => format!("… ({n_distinct} distinct)"),
            (Language::En, true) => format!(
                "… (over {n_distinct} distinct; values first seen after that are not counted)"
            ),
        }
    }

    /// The mark after the title of a message that may repeat an earlier one.
    pub fn possible_repeat_mark(self) -> &'static str {
        match self {
            Language::ZhCn => "（可能重复）",
            Language::En => " (possible repeat)",
        }
    }

    /// The note of a message that may repeat an earlier one.
    pub fn possible_repeat(self) -> &'static str {
        match self {
            Language::ZhCn => "⚠ 可能重复：这些事件之前发送过但未收到应答，钉钉可能已经送达",
            Language::En => {
                "⚠ possible repeat: an earlier send of these events got no answer, DingTalk may \
                 have delivered them already"
            }
        }
    }

    /// The note of a message sent while dingtail cannot write its state.
    pub fn degraded(self, reason: &str) -> String {
        match self {
            Language::ZhCn => {
                format!("⚠ 投递降级：dingtail 无法写入状态（{reason}）；重启可能重复或丢失事件")
            }
            Language::En => format!(
                "⚠ delivery degraded: dingtail cannot write its state ({reason}); a restart may \
                 repeat or lose events"
            ),
        }
    }

    /// A time span's length: `45 s`, `4 min 8 s`, `2 h 5 min`, `3 d 2 h` (and in Chinese).
    pub fn duration(self, duration: Duration) -> String {
        let seconds = duration.as_secs();
        let (days, hours, minutes, secs) = (
            seconds / 86_400,
            seconds / 3600 % 24,
            seconds / 60 % 60,
            seconds % 60,
        );
        let units = match self {
            Language::ZhCn => ["天", "小时", "分", "秒"],
            Language::En => ["d", "h", "min", "s"],
        };
        let parts: [(u64, &str); 2] = if days > 0 {
            [(days, units[0]), (hours, units[1])]
        } else if hours > 0 {
            [(hours, units[1]), (minutes, units[2])]
        } else if minutes > 0 {
            [(minutes, units[2]), (secs, units[3])]
        } else {
            [(secs, units[3]), (0, "")]
        };
        let shown: Vec<String> = parts
            .iter()
            .enumerate()
            .filter(|(i, (n, unit))| !unit.is_empty() && (*i == 0 || *n > 0))
            .map(|(_, (n, unit))| format!("{n} {unit}"))
            .collect();
        shown.join(" ")
    }

    /// A span of time with its length in brackets: `… (4 min 8 s)` / `…（4 分 8 秒）`.
    pub fn lasting(self, span: &str, duration: Duration) -> String {
        match self {
            Language::ZhCn => format!("{span}（{}）", self.duration(duration)),
            Language::En => format!("{span} ({})", self.duration(duration)),
        }
    }
}

/// The labelled facts of a summary section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Label {
    /// The hosts a rule fired on.
    Hosts,
    /// The files it fired in.
    Files,
}

/// "1 alert", "2 alerts".
fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::event::Severity;
    use crate::lang::Language;

    #[test]
    fn titles_name_level_host_and_count_in_both_languages() {
        let (zh, en) = (Language::ZhCn, Language::En);
        assert_eq!(
            zh.summary_title(Severity::Critical, &["web-1"], 15, 5),
            "【严重】web-1：5 条规则共 15 条告警"
        );
        assert_eq!(
            en.summary_title(Severity::Critical, &["web-1"], 15, 5),
            "[critical] web-1: 15 alerts from 5 rules"
        );
        assert_eq!(
            en.summary_title(Severity::Info, &["a", "b", "c"], 1, 1),
            "[info] 3 hosts: 1 alert from 1 rule"
        );
        assert_eq!(zh.severity(Severity::Warning), "警告");
        assert_eq!(zh.severity(Severity::Info), "提示");
        assert_eq!(zh.and_more(8), "另有 8 条");
        assert_eq!(en.more_rules(2, 40), "and 2 more rules (40 alerts)");
        assert_eq!(Language::parse("ZH-cn"), Some(zh));
        assert_eq!(Language::parse("fr"), None);
    }

    #[test]
    fn durations_show_the_two_largest_units() {
        let en = Language::En;
        let zh = Language::ZhCn;
        assert_eq!(en.duration(Duration::from_secs(0)), "0 s");
        assert_eq!(en.duration(Duration::from_secs(45)), "45 s");
        assert_eq!(en.duration(Duration::from_secs(248)), "4 min 8 s");
        assert_eq!(en.duration(Duration::from_secs(240)), "4 min");
        assert_eq!(
            en.duration(Duration::from_secs(6 * 3600 + 300)),
            "6 h 5 min"
        );
        assert_eq!(zh.duration(Duration::from_secs(90_000)), "1 天 1 小时");
        assert_eq!(zh.duration(Duration::from_secs(248)), "4 分 8 秒");
    }
}
