//! `Command`: what a message to the robot asks for, parsed from its text. Pure: no I/O, no clock.
//!
//! The grammar is a command word followed by positional words, split on any Unicode whitespace
//! (DingTalk puts ideographic and narrow spaces around mentions). Leading `@mentions` and a
//! leading `/` are dropped, because people type `@dingtail /mute …`. Every command has an
//! English and a Chinese word:
//!
//! | command | words | arguments |
//! | --- | --- | --- |
//! | status | `status`, `状态` | |
//! | mute | `mute`, `静默` | `RULE [KEY=VALUE]… DURATION [reason…]` |
//! | unmute | `unmute`, `取消静默` | `ID\|RULE` |
//! | mutes | `mutes`, `静默列表` | |
//! | ack | `ack`, `确认` | `RULE [KEY=VALUE]…` |
//! | test | `test`, `测试` | `RULE` |
//! | help | `help`, `帮助`, `?` | |
//!
//! Durations are humantime's (`90s`, `30m`, `1h30m`, `2d`) or Chinese (`30分钟`, `1小时`, `2天`),
//! longer than zero and at most [`MAX_MUTE`]. A mistake is a [`CommandError`] whose text says
//! what is wrong and shows the command's usage, ready to be sent back.

use std::fmt;
use std::time::Duration;

/// The longest silence a chat command may set: a forgotten mute must not hide alerts for good.
pub const MAX_MUTE: Duration = Duration::from_secs(30 * 24 * 3600);

/// A parsed command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// The daemon's state: files, rules, pending, last delivery, rate state per robot, active
    /// silences and incidents.
    Status,
    /// Silence a rule (or some of its matches) for a while.
    Mute(Mute),
    /// End a silence, named by its id or by its rule.
    Unmute {
        /// A silence id or a rule name, as typed; the daemon tries it as an id first.
        target: String,
    },
    /// List the active silences.
    Mutes,
    /// Acknowledge a firing incident: no more repeats until it resolves.
    Ack {
        /// The rule.
        rule: String,
        /// Which of the rule's keys (all when empty).
        matchers: Vec<Matcher>,
    },
    /// Render the rule's last match.
    Test {
        /// The rule.
        rule: String,
    },
    /// The list of commands (answered by `chat` itself).
    Help,
}

/// The arguments of `mute`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mute {
    /// The rule.
    pub rule: String,
    /// Only matches whose values equal these (all matches when empty).
    pub matchers: Vec<Matcher>,
    /// How long, from when the daemon applies it.
    pub duration: Duration,
    /// Why, as typed (whitespace inside kept).
    pub reason: Option<String>,
}

/// `KEY=VALUE`: a capture or context value (`host=web-3`) a silence or ack is limited to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matcher {
    /// A capture or context name: letters, digits and `_`, not starting with a digit.
    pub key: String,
    /// The value it must equal (not empty).
    pub value: String,
}

impl Command {
    /// The command's English word (for logs and metric labels).
    pub fn name(&self) -> &'static str {
        match self {
            Command::Status => "status",
            Command::Mute(_) => "mute",
            Command::Unmute { .. } => "unmute",
            Command::Mutes => "mutes",
            Command::Ack { .. } => "ack",
            Command::Test { .. } => "test",
            Command::Help => "help",
        }
    }
}

/// Why a text is not a command. `Display` is the reply: the problem, then the usage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandError {
    /// Nothing but mentions and whitespace.
    Empty,
    /// The first word is no command.
    Unknown(String),
    /// A known command with wrong arguments.
    Usage {
        /// The command.
        command: &'static str,
        /// What is wrong.
        problem: String,
    },
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Empty => write!(f, "What should I do?\n\n{}", help_text()),
            CommandError::Unknown(word) => {
                write!(f, "Unknown command `{word}`.\n\n{}", help_text())
            }
            CommandError::Usage { command, problem } => {
                write!(f, "{problem}\nUsage: {}", usage(command))
            }
        }
    }
}

impl std::error::Error for CommandError {}

/// One line per command: its words and arguments.
const USAGE: &[(&str, &str, &str)] = &[
    ("status", "status | 状态", "the daemon's state"),
    (
        "mute",
        "mute | 静默 RULE [KEY=VALUE]… DURATION [reason]",
        "silence a rule, e.g. `mute nginx-5xx host=web-3 1h deploy`",
    ),
    ("unmute", "unmute | 取消静默 ID|RULE", "end a silence"),
    ("mutes", "mutes | 静默列表", "list active silences"),
    (
        "ack",
        "ack | 确认 RULE [KEY=VALUE]…",
        "acknowledge a firing incident (no repeats until it resolves)",
    ),
    ("test", "test | 测试 RULE", "render the rule's last match"),
    ("help", "help | 帮助", "this list"),
];

/// The usage line of `command`.
pub fn usage(command: &str) -> &'static str {
    USAGE
        .iter()
        .find(|(name, _, _)| *name == command)
        .map_or("help", |(_, usage, _)| *usage)
}

/// The reply to `help`: every command with its words and arguments.
pub fn help_text() -> String {
    let mut text = String::from("dingtail commands (命令):");
    for (_, usage, what) in USAGE {
        text.push_str(&format!("\n• {usage} — {what}"));
    }
    text.push_str("\nDURATION: 30m, 2h, 1h30m, 1d, 30分钟, 2小时, 1天");
    text
}

/// Parses the text of a message (mentions and surrounding whitespace included).
///
/// # Errors
/// A [`CommandError`] whose `Display` is the reply to send.
pub fn parse(text: &str) -> Result<Command, CommandError> {
    let mut words = Words { rest: text };
    let word = loop {
        match words.next() {
            None => return Err(CommandError::Empty),
            Some(word) if word.starts_with(['@', '＠']) => {}
            Some(word) => break word,
        }
    };
    let word = word.strip_prefix('/').unwrap_or(word);
    match word.to_lowercase().as_str() {
        "status" | "状态" => no_arguments(Command::Status, "status", &words),
        "mutes" | "静默列表" => no_arguments(Command::Mutes, "mutes", &words),
        "help" | "帮助" | "?" | "？" => Ok(Command::Help),
        "mute" | "静默" => parse_mute(&mut words),
        "unmute" | "取消静默" => {
            let target = one_word("unmute", &mut words, "which silence: its ID or its RULE")?;
            Ok(Command::Unmute { target })
        }
        "ack" | "确认" => {
            let rule = rule("ack", &mut words)?;
            let mut matchers = Vec::new();
            while let Some(word) = words.next() {
                matchers.push(matcher("ack", word)?);
            }
            Ok(Command::Ack { rule, matchers })
        }
        "test" | "测试" => Ok(Command::Test {
            rule: one_word("test", &mut words, "which RULE")?,
        }),
        _ => Err(CommandError::Unknown(word.to_owned())),
    }
}

fn parse_mute(words: &mut Words<'_>) -> Result<Command, CommandError> {
    let rule = rule("mute", words)?;
    let mut matchers = Vec::new();
    let duration = loop {
        let Some(word) = words.next() else {
            return Err(usage_error(
                "mute",
                "For how long? Give a DURATION such as 1h or 30m.",
            ));
        };
        if word.contains('=') {
            matchers.push(matcher("mute", word)?);
            continue;
        }
        break duration(word)?;
    };
    let reason = Some(words.rest().to_owned()).filter(|r| !r.is_empty());
    Ok(Command::Mute(Mute {
        rule,
        matchers,
        duration,
        reason,
    }))
}

fn no_arguments(
    command: Command,
    name: &'static str,
    words: &Words<'_>,
) -> Result<Command, CommandError> {
    if words.rest().is_empty() {
        Ok(command)
    } else {
        Err(usage_error(name, format!("`{name}` takes no arguments.")))
    }
}

fn rule(command: &'static str, words: &mut Words<'_>) -> Result<String, CommandError> {
    match words.next() {
        None => Err(usage_error(command, "Which RULE?")),
        Some(word) if word.contains('=') => Err(usage_error(
            command,
            format!("The RULE comes first, before `{word}`."),
        )),
        Some(word) => Ok(word.to_owned()),
    }
}

fn one_word(
    command: &'static str,
    words: &mut Words<'_>,
    missing: &str,
) -> Result<String, CommandError> {
    let word = words
        .next()
        .ok_or_else(|| usage_error(command, format!("Name {missing}.")))?;
    if !words.rest().is_empty() {
        return Err(usage_error(
            command,
            format!("`{command}` takes one argument."),
        ));
    }
    Ok(word.to_owned())
}

fn matcher(command: &'static str, word: &str) -> Result<Matcher, CommandError> {
    let (key, value) = word.split_once('=').unwrap_or((word, ""));
    let valid_key = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_key || value.is_empty() {
        return Err(usage_error(
            command,
            format!("`{word}` is not KEY=VALUE (a capture name, `=`, a value)."),
        ));
    }
    Ok(Matcher {
        key: key.to_owned(),
        value: value.to_owned(),
    })
}

/// A duration word: humantime's units, or a number with a Chinese unit.
fn duration(word: &str) -> Result<Duration, CommandError> {
    const UNITS: [(&str, &str); 7] = [
        ("分钟", "m"),
        ("小时", "h"),
        ("秒", "s"),
        ("分", "m"),
        ("时", "h"),
        ("天", "d"),
        ("周", "w"),
    ];
    let mut english = word.to_owned();
    for (chinese, unit) in UNITS {
        english = english.replace(chinese, unit);
    }
    let bad = || {
        usage_error(
            "mute",
            format!("`{word}` is not a DURATION (write e.g. 30m, 2h, 1d or 2小时)."),
        )
    };
    let duration = humantime::parse_duration(&english).map_err(|_| bad())?;
    if duration.is_zero() {
        return Err(usage_error(
            "mute",
            "The DURATION must be longer than zero.",
        ));
    }
    if duration > MAX_MUTE {
        return Err(usage_error(
            "mute",
            format!(
                "`{word}` is longer than {}, the longest mute.",
                humantime::format_duration(MAX_MUTE)
            ),
        ));
    }
    Ok(duration)
}

fn usage_error(command: &'static str, problem: impl Into<String>) -> CommandError {
    CommandError::Usage {
        command,
        problem: problem.into(),
    }
}

/// Whitespace-separated words of a text, with access to the untouched rest.
struct Words<'a> {
    rest: &'a str,
}

impl<'a> Words<'a> {
    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest.trim_start();
        if rest.is_empty() {
            self.rest = rest;
            return None;
        }
        let (word, after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        self.rest = after;
        Some(word)
    }

    /// What follows the words taken so far, trimmed.
    fn rest(&self) -> &'a str {
        self.rest.trim()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::chat::command::{Command, CommandError, Matcher, Mute, help_text, parse};

    fn check(text: &str, expected: Command) {
        assert_eq!(parse(text), Ok(expected), "{text:?}");
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    fn matcher(key: &str, value: &str) -> Matcher {
        Matcher {
            key: key.into(),
            value: value.into(),
        }
    }

    #[test]
    fn simple_commands_in_both_languages_with_mentions_and_odd_spaces() {
        check(" status", Command::Status);
        check("@dingtail 状态", Command::Status);
        check("＠值班机器人\u{2005}STATUS\u{3000}", Command::Status);
        check("/mutes", Command::Mutes);
        check("静默列表", Command::Mutes);
        check("help", Command::Help);
        check("帮助", Command::Help);
        check(
            "test nginx-5xx",
            Command::Test {
                rule: "nginx-5xx".into(),
            },
        );
        check(
            "测试 nginx-5xx",
            Command::Test {
                rule: "nginx-5xx".into(),
            },
        );
        check(
            "unmute 7f3a",
            Command::Unmute {
                target: "7f3a".into(),
            },
        );
        check(
            "取消静默 nginx-5xx",
            Command::Unmute {
                target: "nginx-5xx".into(),
            },
        );
    }

    #[test]
    fn mute_takes_matchers_a_duration_and_a_free_reason() {
        check(
            "@dingtail mute nginx-5xx host=web-3 status=502 1h30m deploy of  v2.1 ",
            Command::Mute(Mute {
                rule: "nginx-5xx".into(),
                matchers: vec![matcher("host", "web-3"), matcher("status", "502")],
                duration: Duration::from_secs(5400),
                reason: Some("deploy of  v2.1".into()),
            }),
        );
        check(
            "静默 db-slow 2小时 数据库维护",
            Command::Mute(Mute {
                rule: "db-slow".into(),
                matchers: vec![],
                duration: Duration::from_secs(7200),
                reason: Some("数据库维护".into()),
            }),
        );
        check(
            "mute x 30分钟",
            Command::Mute(Mute {
                rule: "x".into(),
                matchers: vec![],
                duration: Duration::from_secs(1800),
                reason: None,
            }),
        );
        check(
            "确认 nginx-5xx host=web-3",
            Command::Ack {
                rule: "nginx-5xx".into(),
                matchers: vec![matcher("host", "web-3")],
            },
        );
        check(
            "ack r",
            Command::Ack {
                rule: "r".into(),
                matchers: vec![],
            },
        );
    }

    #[test]
    fn mistakes_say_what_is_wrong_and_show_the_usage() {
        let cases = [
            ("mute", "Which RULE?"),
            ("mute nginx", "For how long?"),
            ("mute nginx host=web-3", "For how long?"),
            ("mute nginx soon", "`soon` is not a DURATION"),
            ("mute nginx 0s", "longer than zero"),
            ("mute nginx 400d", "the longest mute"),
            ("mute host=web-3 1h", "The RULE comes first"),
            ("mute nginx =x 1h", "`=x` is not KEY=VALUE"),
            ("mute nginx host= 1h", "`host=` is not KEY=VALUE"),
            ("ack nginx 9x=1", "`9x=1` is not KEY=VALUE"),
            ("ack nginx host", "`host` is not KEY=VALUE"),
            ("unmute", "Name which silence"),
            ("unmute a b", "takes one argument"),
            ("test", "Name which RULE"),
            ("status now", "takes no arguments"),
        ];
        for (text, want) in cases {
            let err = error(text);
            assert!(err.contains(want), "{text:?}: {err}");
            assert!(err.contains("\nUsage: "), "{text:?}: {err}");
        }
        assert!(error("mute nginx soon").contains("Usage: mute | 静默 RULE"));
    }

    #[test]
    fn unknown_and_empty_texts_answer_with_the_help() {
        assert_eq!(parse("  @dingtail  "), Err(CommandError::Empty));
        assert_eq!(parse(""), Err(CommandError::Empty));
        assert_eq!(
            parse("reboot now"),
            Err(CommandError::Unknown("reboot".into()))
        );
        let err = error("reboot");
        assert!(err.starts_with("Unknown command `reboot`."), "{err}");
        assert!(err.ends_with(&help_text()), "{err}");
        for word in [
            "status",
            "静默",
            "取消静默",
            "静默列表",
            "确认",
            "测试",
            "帮助",
        ] {
            assert!(help_text().contains(word), "{word}");
        }
    }
}
