//! `Outcome`: what became of one send, classified by DingTalk's `errcode` (never by `errmsg`,
//! whose wording has changed over the years) and by what the network did.
//!
//! DingTalk answers HTTP 200 for rejections too, so the status alone says nothing; the caller gets
//! the class (`Delivered`, `Throttled`, `Rejected`, `Transient`) and decides what to do, and never
//! has to parse a string. `Rejection` says in plain words what a rejected errcode means. The
//! `errmsg` is kept with a rejection and shown (issue 12): for 310000 it is the only thing that
//! tells a missing keyword from a bad signature, a clock off by an hour or an address outside the
//! allowlist, so it picks the [`SecurityCheck`] whose hint is shown — a refinement of the hint,
//! never of the class.

use std::fmt;
use std::time::{Duration, SystemTime};

/// How long DingTalk blocks a robot after it exceeded 20 messages a minute.
pub const THROTTLE_PAUSE: Duration = Duration::from_secs(600);

/// The longest `errmsg` kept (the rest is cut with `…`): it is shown in logs and on terminals.
pub const MAX_ERRMSG_CHARS: usize = 300;

/// The result of sending one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// errcode 0: the group has it.
    Delivered,
    /// 130101 / 410100: the robot sent too fast and is blocked for about ten minutes.
    Throttled {
        /// The errcode DingTalk answered.
        code: i64,
        /// When the block should be over (now + [`THROTTLE_PAUSE`]).
        until: SystemTime,
    },
    /// A configuration or content problem: retrying the same request will not help.
    Rejected {
        /// The errcode DingTalk answered, or 0 when there was none: the request was refused
        /// before it was sent ([`Rejection::Request`]) or the server answered an HTTP error
        /// ([`Rejection::Http`]).
        code: i64,
        /// What the code means.
        reason: Rejection,
        /// DingTalk's `errmsg` as it came (control characters removed, at most
        /// [`MAX_ERRMSG_CHARS`]); empty when there was none.
        errmsg: String,
    },
    /// Network trouble or a busy server before the message could have arrived (HTTP 5xx, -1,
    /// 500100, a refused connection): worth retrying with backoff.
    Transient {
        /// What happened, without the webhook URL.
        reason: String,
    },
    /// The request was sent but no answer came (a timeout, a connection lost after sending):
    /// DingTalk may have delivered it. Sending it again may repeat it.
    Unknown {
        /// What happened, without the webhook URL.
        reason: String,
    },
}

impl Outcome {
    /// True for [`Outcome::Transient`] and [`Outcome::Unknown`], the classes a one-shot sender
    /// may retry at once (an unknown outcome retried may repeat the message).
    pub fn is_transient(&self) -> bool {
        matches!(self, Outcome::Transient { .. } | Outcome::Unknown { .. })
    }

    /// True when DingTalk answered (whatever it said): it is reachable.
    pub fn is_answer(&self) -> bool {
        match self {
            Outcome::Delivered | Outcome::Throttled { .. } => true,
            // Code 0: refused before sending, or an HTTP error without an errcode.
            Outcome::Rejected { code, .. } => *code != 0,
            Outcome::Transient { .. } | Outcome::Unknown { .. } => false,
        }
    }

    /// The errcode DingTalk answered, when it answered one.
    #[cfg(test)]
    pub fn code(&self) -> Option<i64> {
        match self {
            Outcome::Delivered => Some(0),
            Outcome::Throttled { code, .. } => Some(*code),
            Outcome::Rejected { code, .. } if *code != 0 => Some(*code),
            Outcome::Rejected { .. } | Outcome::Transient { .. } | Outcome::Unknown { .. } => None,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Delivered => f.write_str("delivered"),
            Outcome::Throttled { code, until } => write!(
                f,
                "throttled by DingTalk (errcode {code}: more than 20 messages a minute); \
                 the robot is blocked until about {}",
                humantime::format_rfc3339_seconds(*until)
            ),
            Outcome::Rejected {
                code: 0, reason, ..
            } => write!(f, "not sent: {reason}"),
            Outcome::Rejected {
                code,
                reason,
                errmsg,
            } if errmsg.is_empty() => {
                write!(f, "rejected by DingTalk (errcode {code}): {reason}")
            }
            Outcome::Rejected {
                code,
                reason,
                errmsg,
            } => write!(
                f,
                "rejected by DingTalk (errcode {code}, errmsg {errmsg:?}): {reason}"
            ),
            Outcome::Transient { reason } => write!(f, "delivery failed: {reason}"),
            Outcome::Unknown { reason } => {
                write!(f, "no answer ({reason}); DingTalk may have delivered it")
            }
        }
    }
}

/// How a send went, as far as the queue cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// errcode 0: forget the batch.
    Delivered,
    /// 130101/410100: the robot is blocked.
    Throttled,
    /// Network trouble, HTTP 5xx, -1, 500100: retry with backoff.
    Transient,
    /// Sent, but no answer came: it may have been delivered. Send it again by itself, marked as
    /// a possible repeat, never folded into newer events.
    Unknown,
    /// Sign, keyword, token, group or robot gone: a configuration problem; retry slowly, loudly.
    Rejected,
    /// DingTalk refused what the message says (malformed, blocked content, too large): send the
    /// counts again without the samples; if even those are refused, give the batch up.
    RejectedContent,
}

impl Outcome {
    /// What this outcome means for the sender's queue. A refusal of what the message says
    /// (blocked words, too large) is told apart from every other refusal (signature, keyword,
    /// token, group or robot gone, a malformed request): the first is retried without the sample
    /// lines, the others slowly and unchanged, so that no event is given up for a configuration
    /// problem.
    pub fn verdict(&self) -> Verdict {
        match self {
            Outcome::Delivered => Verdict::Delivered,
            Outcome::Throttled { .. } => Verdict::Throttled,
            Outcome::Rejected { reason, .. } => match reason {
                // What the alert says: DingTalk's content filter, or its size.
                Rejection::ContentBlocked | Rejection::TooLarge => Verdict::RejectedContent,
                // How the request was built or carried (a proxy rewriting it, a webhook or
                // message that cannot be built) is no reason to give events up: keep them,
                // retry slowly.
                _ => Verdict::Rejected,
            },
            Outcome::Transient { .. } => Verdict::Transient,
            Outcome::Unknown { .. } => Verdict::Unknown,
        }
    }
}

/// Which of a robot's security settings refused a message (errcode 310000), told by `errmsg`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecurityCheck {
    /// `keywords not in content`: the text holds none of the robot's keywords.
    Keywords,
    /// `sign not match`: the signature is wrong (wrong or partial secret, signing off).
    Signature,
    /// `invalid timestamp`: the signed timestamp is more than an hour off DingTalk's clock.
    Timestamp,
    /// `ip X.X.X.X not in whitelist`: the sender's address is not in the IP allowlist.
    IpAllowlist,
    /// An errmsg this client does not recognise (or none).
    Unspecified,
}

impl SecurityCheck {
    /// The check an errmsg names, in DingTalk's English (2019–2021) or Chinese (2022–) wording.
    pub fn of(errmsg: &str) -> SecurityCheck {
        let lower = errmsg.to_lowercase();
        let has = |words: &[&str]| words.iter().any(|w| lower.contains(w));
        if has(&["keyword", "关键词", "关键字"]) {
            SecurityCheck::Keywords
        } else if has(&["sign not match", "签名"]) {
            SecurityCheck::Signature
        } else if has(&["timestamp", "时间戳"]) {
            SecurityCheck::Timestamp
        } else if has(&["whitelist", "白名单", "ip "]) {
            SecurityCheck::IpAllowlist
        } else {
            SecurityCheck::Unspecified
        }
    }
}

/// Why DingTalk (or the client, before sending) refused a message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// 310000: a keyword, signature, timestamp or IP allowlist check failed; `errmsg` says which.
    Security(SecurityCheck),
    /// 300001, 300005, 400101: the access token does not exist.
    Token,
    /// 400013: the group was disbanded.
    GroupGone,
    /// 400102: the robot is disabled.
    RobotDisabled,
    /// 400106: the robot is not in the group any more.
    RobotGone,
    /// 400105, 400402, 400403, 40035, 43004: the request itself is malformed.
    BadMessage,
    /// 430101–430104: DingTalk's content filter blocked it.
    ContentBlocked,
    /// 460101, 101002: the body is over 20,000 bytes.
    TooLarge,
    /// An errcode this client does not know.
    Unknown,
    /// The server answered an HTTP status that is neither success nor a server error (a wrong
    /// URL path, a proxy refusing); no errcode was given.
    Http(u16),
    /// The request could not be built (bad webhook URL, invalid message); nothing was sent.
    Request(String),
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rejection::Security(SecurityCheck::Keywords) => {
                "the message holds none of the robot's security keywords: list them under the \
                 robot's `keywords:` (dingtail adds the first one to every message)"
            }
            Rejection::Security(SecurityCheck::Signature) => {
                "the signature does not match: set the robot's `secret:` to the whole SEC… \
                 string of its signing setting (加签), or remove it if signing is off"
            }
            Rejection::Security(SecurityCheck::Timestamp) => {
                "the signed timestamp is more than an hour off DingTalk's clock: check this \
                 host's clock (NTP)"
            }
            Rejection::Security(SecurityCheck::IpAllowlist) => {
                "this host's public address (named in errmsg) is not in the robot's IP \
                 allowlist: add it to the robot's security settings"
            }
            Rejection::Security(SecurityCheck::Unspecified) => {
                "security check failed: the message lacks a keyword, the signature or \
                 timestamp does not match (check the secret and the clock), or this IP is not \
                 allowed"
            }
            Rejection::Token => "the access token does not exist (check the webhook URL)",
            Rejection::GroupGone => "the group has been disbanded",
            Rejection::RobotDisabled => "the robot is disabled",
            Rejection::RobotGone => "the robot is not in the group any more",
            Rejection::BadMessage => "the message is malformed or misses a required field",
            Rejection::ContentBlocked => "DingTalk's content filter blocked the message",
            Rejection::TooLarge => "the message is larger than 20000 bytes",
            Rejection::Unknown => "an error code this version of dingtail does not know",
            Rejection::Request(reason) => reason,
            Rejection::Http(status) => {
                return write!(
                    f,
                    "the server answered HTTP {status} (is the webhook a DingTalk robot URL?)"
                );
            }
        })
    }
}

impl Rejection {
    /// A short name of the kind of refusal, for the `reason` label of
    /// `dingtail_messages_rejected`: a fixed word, never text from the answer.
    pub fn class(&self) -> &'static str {
        match self {
            Rejection::Security(SecurityCheck::Keywords) => "keywords",
            Rejection::Security(SecurityCheck::Signature) => "signature",
            Rejection::Security(SecurityCheck::Timestamp) => "timestamp",
            Rejection::Security(SecurityCheck::IpAllowlist) => "ip_allowlist",
            Rejection::Security(SecurityCheck::Unspecified) => "security",
            Rejection::Token => "token",
            Rejection::GroupGone => "group_gone",
            Rejection::RobotDisabled => "robot_disabled",
            Rejection::RobotGone => "robot_gone",
            Rejection::BadMessage => "bad_message",
            Rejection::ContentBlocked => "content_blocked",
            Rejection::TooLarge => "too_large",
            Rejection::Unknown => "unknown",
            Rejection::Http(_) => "http",
            Rejection::Request(_) => "request",
        }
    }
}

/// `errmsg` as it is kept: control characters turned into spaces, trimmed, at most
/// [`MAX_ERRMSG_CHARS`] characters.
pub fn clean_errmsg(errmsg: &str) -> String {
    let mut out: String = errmsg
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_ERRMSG_CHARS)
        .collect();
    if errmsg.trim().chars().count() > MAX_ERRMSG_CHARS {
        out.push('…');
    }
    out
}

/// Classifies an answer DingTalk gave with HTTP 200 (by `errcode`; `errmsg` only picks the
/// security check of a 310000 and is kept). `now` is when it arrived.
pub fn classify(errcode: i64, errmsg: &str, now: SystemTime) -> Outcome {
    let errmsg = clean_errmsg(errmsg);
    let reason = match errcode {
        0 => return Outcome::Delivered,
        130_101 | 410_100 => {
            return Outcome::Throttled {
                code: errcode,
                until: now + THROTTLE_PAUSE,
            };
        }
        -1 | 500_100 if errmsg.is_empty() => {
            return Outcome::Transient {
                reason: format!("DingTalk is busy (errcode {errcode})"),
            };
        }
        -1 | 500_100 => {
            return Outcome::Transient {
                reason: format!("DingTalk is busy (errcode {errcode}, errmsg {errmsg:?})"),
            };
        }
        310_000 => Rejection::Security(SecurityCheck::of(&errmsg)),
        300_001 | 300_005 | 400_101 => Rejection::Token,
        400_013 => Rejection::GroupGone,
        400_102 => Rejection::RobotDisabled,
        400_106 => Rejection::RobotGone,
        400_105 | 400_402 | 400_403 | 40_035 | 43_004 => Rejection::BadMessage,
        430_101..=430_104 => Rejection::ContentBlocked,
        460_101 | 101_002 => Rejection::TooLarge,
        _ => Rejection::Unknown,
    };
    Outcome::Rejected {
        code: errcode,
        reason,
        errmsg,
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use crate::dingtalk::outcome::{
        Outcome, Rejection, SecurityCheck, THROTTLE_PAUSE, classify, clean_errmsg,
    };

    #[test]
    fn every_documented_code_has_its_class() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(classify(0, "ok", now), Outcome::Delivered);
        for code in [130_101, 410_100] {
            assert_eq!(
                classify(code, "", now),
                Outcome::Throttled {
                    code,
                    until: now + THROTTLE_PAUSE
                }
            );
        }
        for code in [-1, 500_100] {
            assert!(classify(code, "", now).is_transient(), "{code}");
        }
        let rejected = [
            (310_000, Rejection::Security(SecurityCheck::Unspecified)),
            (300_001, Rejection::Token),
            (400_101, Rejection::Token),
            (400_013, Rejection::GroupGone),
            (400_102, Rejection::RobotDisabled),
            (400_106, Rejection::RobotGone),
            (400_105, Rejection::BadMessage),
            (400_402, Rejection::BadMessage),
            (400_403, Rejection::BadMessage),
            (430_101, Rejection::ContentBlocked),
            (430_104, Rejection::ContentBlocked),
            (460_101, Rejection::TooLarge),
            (777_777, Rejection::Unknown),
        ];
        for (code, reason) in rejected {
            assert_eq!(
                classify(code, "", now),
                Outcome::Rejected {
                    code,
                    reason,
                    errmsg: String::new()
                }
            );
        }
    }

    #[test]
    fn display_says_the_code_and_plain_words() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let text = classify(310_000, "", now).to_string();
        assert!(
            text.contains("310000") && text.contains("keyword"),
            "{text}"
        );
        let text = classify(130_101, "send too fast", now).to_string();
        assert!(text.contains("2023-11-14T22:23:20Z"), "{text}");
        assert_eq!(classify(130_101, "", now).code(), Some(130_101));
    }

    /// The errmsg picks the hint of a 310000, in DingTalk's old English and newer Chinese
    /// wordings, and is shown as it came; the class stays the errcode's.
    #[test]
    fn the_errmsg_of_a_security_refusal_picks_its_hint_and_is_kept() {
        let now = SystemTime::UNIX_EPOCH;
        let cases = [
            (
                "keywords not in content",
                SecurityCheck::Keywords,
                "keywords:",
            ),
            (
                "sign not match, more: [https://ding-doc.dingtalk.com/doc#/serverapi2/qf2nxq]",
                SecurityCheck::Signature,
                "secret:",
            ),
            (
                "description:机器人发送签名不匹配;solution:请确认签名和生成签名的时间戳必须都放在调用的网址中;",
                SecurityCheck::Signature,
                "secret:",
            ),
            ("invalid timestamp", SecurityCheck::Timestamp, "clock"),
            (
                "ip 203.0.113.7 not in whitelist",
                SecurityCheck::IpAllowlist,
                "allowlist",
            ),
            (
                "something new",
                SecurityCheck::Unspecified,
                "security check failed",
            ),
        ];
        for (errmsg, check, hint) in cases {
            let outcome = classify(310_000, errmsg, now);
            assert_eq!(
                outcome,
                Outcome::Rejected {
                    code: 310_000,
                    reason: Rejection::Security(check),
                    errmsg: errmsg.to_string()
                }
            );
            let text = outcome.to_string();
            assert!(text.contains(errmsg) && text.contains(hint), "{text}");
            assert_eq!(outcome.verdict(), crate::dingtalk::Verdict::Rejected);
        }
        assert_eq!(
            Rejection::Security(SecurityCheck::IpAllowlist).class(),
            "ip_allowlist"
        );
        assert_eq!(clean_errmsg(" a\nb\u{1b}[31m "), "a b [31m");
        assert_eq!(clean_errmsg(&"x".repeat(400)).chars().count(), 301);
    }
}
