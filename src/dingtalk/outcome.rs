//! `Outcome`: what became of one send, classified by DingTalk's `errcode` (never by `errmsg`,
//! whose wording has changed over the years) and by what the network did.
//!
//! DingTalk answers HTTP 200 for rejections too, so the status alone says nothing; the caller gets
//! the class (`Delivered`, `Throttled`, `Rejected`, `Transient`) and decides what to do, and never
//! has to parse a string. `Rejection` says in plain words what a rejected errcode means.

use std::fmt;
use std::time::{Duration, SystemTime};

/// How long DingTalk blocks a robot after it exceeded 20 messages a minute.
pub const THROTTLE_PAUSE: Duration = Duration::from_secs(600);

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
            Outcome::Rejected { code: 0, reason } => write!(f, "not sent: {reason}"),
            Outcome::Rejected { code, reason } => {
                write!(f, "rejected by DingTalk (errcode {code}): {reason}")
            }
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

/// Why DingTalk (or the client, before sending) refused a message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// 310000: keyword, signature, timestamp or IP allowlist check failed (the errcode does not
    /// say which).
    Security,
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
            Rejection::Security => {
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

/// Classifies an answer DingTalk gave with HTTP 200. `now` is when it arrived.
pub fn classify(errcode: i64, now: SystemTime) -> Outcome {
    let reason = match errcode {
        0 => return Outcome::Delivered,
        130_101 | 410_100 => {
            return Outcome::Throttled {
                code: errcode,
                until: now + THROTTLE_PAUSE,
            };
        }
        -1 | 500_100 => {
            return Outcome::Transient {
                reason: format!("DingTalk is busy (errcode {errcode})"),
            };
        }
        310_000 => Rejection::Security,
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
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use crate::dingtalk::outcome::{Outcome, Rejection, THROTTLE_PAUSE, classify};

    #[test]
    fn every_documented_code_has_its_class() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(classify(0, now), Outcome::Delivered);
        for code in [130_101, 410_100] {
            assert_eq!(
                classify(code, now),
                Outcome::Throttled {
                    code,
                    until: now + THROTTLE_PAUSE
                }
            );
        }
        for code in [-1, 500_100] {
            assert!(classify(code, now).is_transient(), "{code}");
        }
        let rejected = [
            (310_000, Rejection::Security),
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
            assert_eq!(classify(code, now), Outcome::Rejected { code, reason });
        }
    }

    #[test]
    fn display_says_the_code_and_plain_words() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let text = classify(310_000, now).to_string();
        assert!(
            text.contains("310000") && text.contains("keyword"),
            "{text}"
        );
        let text = classify(130_101, now).to_string();
        assert!(text.contains("2023-11-14T22:23:20Z"), "{text}");
        assert_eq!(classify(130_101, now).code(), Some(130_101));
    }
}
