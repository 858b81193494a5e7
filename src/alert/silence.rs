//! `Silence`: "mute rule R where KEY=VALUE until T, because …, said X", with its short, stable,
//! human-typable [`SilenceId`] (6 characters of Crockford's base 32: `unmute k3x9pa` is easy to
//! type in a chat).
//!
//! A silence is plain data so that the shell (`dingtail mute`), the chat (`mute`, issue 16) and
//! other hosts (Redis, issue 15) can create and share the same objects; [`Silence::new`] holds
//! its invariants, and is also what decoding a stored or shared silence goes through. The id's
//! random bits come from the caller (no randomness, no clock here). What is muted, and how it is
//! counted, is [`crate::alert::SilenceSet`]'s.
//!
//! A matcher compares a name's value exactly: a capture or context value for a line; for a
//! tracker notice only its `group_by` labels exist, so a silence naming anything else does not
//! mute notices.

use std::fmt;
use std::time::SystemTime;

/// The id of a silence: 6 characters of Crockford's base 32 in lower case (`0-9`, `a-z` without
/// `i`, `l`, `o`, `u`), e.g. `k3x9pa`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SilenceId(String);

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

impl SilenceId {
    /// Characters in an id.
    pub const LEN: usize = 6;

    /// The id made of the low 30 bits of `bits` (the caller draws them at random, and draws
    /// again if [`crate::alert::SilenceSet::add`] finds the id taken).
    pub fn from_bits(bits: u64) -> SilenceId {
        let text = (0..SilenceId::LEN)
            .rev()
            .map(|i| {
                let digit = (bits >> (5 * i)) & 31;
                ALPHABET
                    .get(usize::try_from(digit).unwrap_or(0))
                    .map_or('0', |b| char::from(*b))
            })
            .collect();
        SilenceId(text)
    }

    /// Reads an id as typed: case-insensitive, surrounding spaces ignored, and the letters
    /// people confuse with digits read as those digits (`i`, `l` → 1, `o` → 0).
    pub fn parse(text: &str) -> Option<SilenceId> {
        let text = text.trim();
        if text.chars().count() != SilenceId::LEN {
            return None;
        }
        let mut id = String::with_capacity(SilenceId::LEN);
        for c in text.chars() {
            let c = match c.to_ascii_lowercase() {
                'i' | 'l' => '1',
                'o' => '0',
                c => c,
            };
            if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) {
                return None;
            }
            id.push(c);
        }
        Some(SilenceId(id))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SilenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A silence as asked for (shell or chat), before it gets its id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SilenceDraft {
    /// The rule to mute.
    pub rule: String,
    /// `KEY=VALUE` pairs a match (or notice) must all have, on captures or context names.
    pub matchers: Vec<(String, String)>,
    /// From when.
    pub starts: SystemTime,
    /// Until when.
    pub ends: SystemTime,
    /// Why.
    pub reason: String,
    /// Who (a user name or a DingTalk staff id).
    pub author: String,
}

/// Why a silence cannot be made or added.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SilenceError {
    /// No rule named.
    #[error("a silence needs a rule")]
    NoRule,
    /// `ends` not after `starts`.
    #[error("a silence must end after it starts")]
    EndsBeforeStart,
    /// A matcher with an empty name.
    #[error("a matcher needs a name (KEY=VALUE)")]
    EmptyMatcherName,
    /// A name in two matchers.
    #[error("`{name}` is given twice")]
    DuplicateMatcher {
        /// The name.
        name: String,
    },
    /// A text field is too long.
    #[error("the {field} is longer than {max} characters")]
    TooLong {
        /// `reason` or `author`.
        field: &'static str,
        /// The limit.
        max: usize,
    },
    /// The id is taken (draw another).
    #[error("silence id `{id}` is taken")]
    DuplicateId {
        /// The id.
        id: SilenceId,
    },
}

/// A validated silence. Invariants: a rule is named, `ends > starts`, matcher names are
/// non-empty and distinct, `reason` and `author` are bounded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Silence {
    id: SilenceId,
    rule: String,
    matchers: Vec<(String, String)>,
    starts: SystemTime,
    ends: SystemTime,
    reason: String,
    author: String,
    created: SystemTime,
}

impl Silence {
    /// The longest `reason`, in characters.
    pub const MAX_REASON_CHARS: usize = 500;
    /// The longest `author`, in characters.
    pub const MAX_AUTHOR_CHARS: usize = 100;

    /// Checks `draft` and gives it `id`; `created` is when it was asked for.
    ///
    /// # Errors
    /// The first invariant the draft breaks.
    pub fn new(
        id: SilenceId,
        draft: SilenceDraft,
        created: SystemTime,
    ) -> Result<Silence, SilenceError> {
        if draft.rule.trim().is_empty() {
            return Err(SilenceError::NoRule);
        }
        if draft.ends <= draft.starts {
            return Err(SilenceError::EndsBeforeStart);
        }
        for (i, (name, _)) in draft.matchers.iter().enumerate() {
            if name.is_empty() {
                return Err(SilenceError::EmptyMatcherName);
            }
            if draft.matchers.iter().take(i).any(|(n, _)| n == name) {
                return Err(SilenceError::DuplicateMatcher { name: name.clone() });
            }
        }
        if draft.reason.chars().count() > Silence::MAX_REASON_CHARS {
            return Err(SilenceError::TooLong {
                field: "reason",
                max: Silence::MAX_REASON_CHARS,
            });
        }
        if draft.author.chars().count() > Silence::MAX_AUTHOR_CHARS {
            return Err(SilenceError::TooLong {
                field: "author",
                max: Silence::MAX_AUTHOR_CHARS,
            });
        }
        Ok(Silence {
            id,
            rule: draft.rule,
            matchers: draft.matchers,
            starts: draft.starts,
            ends: draft.ends,
            reason: draft.reason,
            author: draft.author,
            created,
        })
    }

    /// Its id.
    pub fn id(&self) -> &SilenceId {
        &self.id
    }

    /// The rule it mutes.
    pub fn rule(&self) -> &str {
        &self.rule
    }

    /// The `KEY=VALUE` pairs a match must all have.
    pub fn matchers(&self) -> &[(String, String)] {
        &self.matchers
    }

    /// From when.
    pub fn starts(&self) -> SystemTime {
        self.starts
    }

    /// Until when.
    pub fn ends(&self) -> SystemTime {
        self.ends
    }

    /// Why.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// Who.
    pub fn author(&self) -> &str {
        &self.author
    }

    /// When it was asked for.
    pub fn created(&self) -> SystemTime {
        self.created
    }

    /// True when it is in force at `now` (`starts <= now < ends`).
    pub fn is_active(&self, now: SystemTime) -> bool {
        self.starts <= now && now < self.ends
    }

    /// True when it mutes something of `rule` with these values at `now`.
    pub fn mutes<'v>(
        &self,
        rule: &str,
        value_of: impl Fn(&str) -> Option<&'v str>,
        now: SystemTime,
    ) -> bool {
        self.rule == rule
            && self.is_active(now)
            && self
                .matchers
                .iter()
                .all(|(name, value)| value_of(name) == Some(value.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use crate::alert::silence::{Silence, SilenceDraft, SilenceError, SilenceId};

    fn t(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000 + seconds)
    }

    fn draft(rule: &str, matchers: &[(&str, &str)], starts: u64, ends: u64) -> SilenceDraft {
        SilenceDraft {
            rule: rule.into(),
            matchers: matchers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            starts: t(starts),
            ends: t(ends),
            reason: "deploy".into(),
            author: "zhang.san".into(),
        }
    }

    fn silence(bits: u64, rule: &str, matchers: &[(&str, &str)], ends: u64) -> Silence {
        Silence::new(
            SilenceId::from_bits(bits),
            draft(rule, matchers, 0, ends),
            t(0),
        )
        .unwrap()
    }

    fn values<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> {
        move |name| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    #[test]
    fn ids_are_short_typable_and_read_leniently() {
        let id = SilenceId::from_bits(0x2a5f_93c1);
        assert_eq!(id.as_str().len(), 6);
        assert_eq!(SilenceId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(
            SilenceId::parse(&format!(" {} ", id.as_str().to_uppercase())),
            Some(id)
        );
        assert_eq!(SilenceId::from_bits(0).as_str(), "000000");
        assert_eq!(SilenceId::from_bits(31).as_str(), "00000z");
        // Letters people confuse with digits read as the digits.
        assert_eq!(SilenceId::parse("O1lIab"), SilenceId::parse("0111ab"));
        assert_eq!(SilenceId::parse("0111ab").unwrap().as_str(), "0111ab");
        assert_eq!(SilenceId::parse("abcdu0"), None, "u is not in the alphabet");
        assert_eq!(SilenceId::parse("abc"), None);
        assert_eq!(SilenceId::parse("abcdéf"), None);
        // Distinct bits give distinct ids over the 30 bits used.
        let ids: std::collections::BTreeSet<String> = (0..1000u64)
            .map(|i| SilenceId::from_bits(i * 1_000_003).to_string())
            .collect();
        assert_eq!(ids.len(), 1000);
    }

    #[test]
    fn drafts_are_checked() {
        let id = || SilenceId::from_bits(1);
        let bad = |d: SilenceDraft| Silence::new(id(), d, t(0)).unwrap_err();
        assert_eq!(bad(draft(" ", &[], 0, 10)), SilenceError::NoRule);
        assert_eq!(bad(draft("r", &[], 10, 10)), SilenceError::EndsBeforeStart);
        assert_eq!(
            bad(draft("r", &[("", "x")], 0, 10)),
            SilenceError::EmptyMatcherName
        );
        assert_eq!(
            bad(draft("r", &[("ip", "1"), ("ip", "2")], 0, 10)),
            SilenceError::DuplicateMatcher { name: "ip".into() }
        );
        let mut long = draft("r", &[], 0, 10);
        long.reason = "x".repeat(501);
        assert!(matches!(
            bad(long),
            SilenceError::TooLong {
                field: "reason",
                ..
            }
        ));
    }

    #[test]
    fn a_silence_mutes_its_rule_where_every_matcher_holds_while_active() {
        let silence = silence(1, "r", &[("ip", "1.2.3.4"), ("host", "web-1")], 100);
        let both = [("ip", "1.2.3.4"), ("host", "web-1"), ("path", "/x")];
        assert!(silence.mutes("r", values(&both), t(0)));
        assert!(!silence.mutes("other", values(&both), t(0)));
        assert!(
            !silence.mutes("r", values(&both[..1]), t(0)),
            "host missing"
        );
        let other_host = [("ip", "1.2.3.4"), ("host", "web-2")];
        assert!(!silence.mutes("r", values(&other_host), t(0)));
        assert!(!silence.mutes("r", values(&both), t(100)), "ended");
        assert_eq!(silence.author(), "zhang.san");
    }
}
