//! The persisted form of what alert kinds add to a pending row (row version 3, issue 13): a
//! sample's [`Annotation`] and a rule's notices and tallies. Plain serde structs, apart from the
//! runtime types (`batch::notice`, `alert`), so that those can change without breaking stored
//! rows. Times are milliseconds since the Unix epoch, as in the rest of the row.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::alert::{EndedBy, Muted, NoticeKind};
use crate::batch::{Annotation, BatchNotice, NoticeEvent, NoticeTally, Notices, SilenceEnd};
use crate::event::{Mentions, Severity};

/// A sample's annotation.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(super) enum NoteV3 {
    Firing {
        count: u32,
        since_ms: u64,
        within_ms: Option<u64>,
    },
    Realert {
        total: u64,
    },
    Overflow,
}

/// One notice.
#[derive(Serialize, Deserialize)]
pub(super) struct NoticeV3 {
    level: String,
    at_ms: u64,
    labels: Vec<(String, String)>,
    mobiles: Vec<String>,
    user_ids: Vec<String>,
    all: bool,
    #[serde(flatten)]
    event: EventV3,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum EventV3 {
    Repeat {
        folded: u64,
        since_ms: u64,
        total: u64,
    },
    Resolved {
        first_ms: u64,
        last_ms: u64,
        duration_ms: u64,
        total: u64,
        unreported: u64,
        acked_ms: Option<u64>,
    },
    Absent {
        last_seen_ms: Option<u64>,
        for_ms: u64,
        silent_for_ms: u64,
    },
    Recovered {
        last_seen_ms: Option<u64>,
        back_ms: u64,
        absent_for_ms: u64,
    },
    Silence {
        id: String,
        reason: String,
        author: String,
        /// `expired` or `removed`.
        by: String,
        matches: u64,
        notices: u64,
        first_ms: Option<u64>,
        last_ms: Option<u64>,
    },
}

/// Notices of one kind beyond the batch's bound, counted.
#[derive(Serialize, Deserialize)]
pub(super) struct TallyV3 {
    kind: String,
    n: u64,
    n_matches: u64,
    level: Option<String>,
}

/// The stored form of `note` (`None` for a plain line).
pub(super) fn note_to_row(note: Annotation) -> Option<NoteV3> {
    match note {
        Annotation::Plain => None,
        Annotation::Firing {
            count,
            since,
            within,
        } => Some(NoteV3::Firing {
            count,
            since_ms: to_ms(since),
            within_ms: within.map(duration_ms),
        }),
        Annotation::Realert { total } => Some(NoteV3::Realert { total }),
        Annotation::Overflow => Some(NoteV3::Overflow),
    }
}

/// The annotation of a stored sample.
pub(super) fn note_from_row(note: Option<NoteV3>) -> Annotation {
    match note {
        None => Annotation::Plain,
        Some(NoteV3::Firing {
            count,
            since_ms,
            within_ms,
        }) => Annotation::Firing {
            count,
            since: from_ms(since_ms),
            within: within_ms.map(Duration::from_millis),
        },
        Some(NoteV3::Realert { total }) => Annotation::Realert { total },
        Some(NoteV3::Overflow) => Annotation::Overflow,
    }
}

/// The stored form of one rule's `notices` (kept and tallied).
pub(super) fn notices_to_rows(notices: &Notices) -> (Vec<NoticeV3>, Vec<TallyV3>) {
    let kept = notices.kept.iter().map(notice_to_row).collect();
    let tallies = notices
        .tallies
        .iter()
        .map(|((_, kind), tally)| TallyV3 {
            kind: kind.clone(),
            n: tally.n,
            n_matches: tally.n_matches,
            level: tally.severity.map(|s| s.as_str().to_string()),
        })
        .collect();
    (kept, tallies)
}

/// Rule `rule`'s notices from their stored form.
pub(super) fn notices_from_rows(rule: &str, kept: Vec<NoticeV3>, tallies: Vec<TallyV3>) -> Notices {
    let mut notices = Notices::default();
    for row in kept {
        notices.kept.push(notice_from_row(rule, row));
    }
    for tally in tallies {
        let severity = tally.level.as_deref().and_then(Severity::parse);
        let entry = notices
            .tallies
            .entry((rule.to_string(), tally.kind))
            .or_insert_with(NoticeTally::default);
        entry.n = entry.n.saturating_add(tally.n);
        entry.n_matches = entry.n_matches.saturating_add(tally.n_matches);
        entry.severity = entry.severity.max(severity);
    }
    notices
}

fn notice_to_row(notice: &BatchNotice) -> NoticeV3 {
    let event = match &notice.event {
        NoticeEvent::Alert(NoticeKind::Repeat {
            folded,
            since,
            total,
        }) => EventV3::Repeat {
            folded: *folded,
            since_ms: to_ms(*since),
            total: *total,
        },
        NoticeEvent::Alert(NoticeKind::Resolved {
            first,
            last,
            duration,
            total,
            unreported,
            acked_at,
        }) => EventV3::Resolved {
            first_ms: to_ms(*first),
            last_ms: to_ms(*last),
            duration_ms: duration_ms(*duration),
            total: *total,
            unreported: *unreported,
            acked_ms: acked_at.map(to_ms),
        },
        NoticeEvent::Alert(NoticeKind::Absent {
            last_seen,
            for_,
            silent_for,
        }) => EventV3::Absent {
            last_seen_ms: last_seen.map(to_ms),
            for_ms: duration_ms(*for_),
            silent_for_ms: duration_ms(*silent_for),
        },
        NoticeEvent::Alert(NoticeKind::Recovered {
            last_seen,
            back,
            absent_for,
        }) => EventV3::Recovered {
            last_seen_ms: last_seen.map(to_ms),
            back_ms: to_ms(*back),
            absent_for_ms: duration_ms(*absent_for),
        },
        NoticeEvent::SilenceEnded(end) => EventV3::Silence {
            id: end.id.clone(),
            reason: end.reason.clone(),
            author: end.author.clone(),
            by: match end.by {
                EndedBy::Expired => "expired",
                EndedBy::Removed => "removed",
            }
            .to_string(),
            matches: end.muted.matches,
            notices: end.muted.notices,
            first_ms: end.muted.first.map(to_ms),
            last_ms: end.muted.last.map(to_ms),
        },
    };
    NoticeV3 {
        level: notice.severity.as_str().to_string(),
        at_ms: to_ms(notice.at),
        labels: notice.labels.clone(),
        mobiles: notice.mentions.mobiles.clone(),
        user_ids: notice.mentions.user_ids.clone(),
        all: notice.mentions.all,
        event,
    }
}

fn notice_from_row(rule: &str, row: NoticeV3) -> BatchNotice {
    let event = match row.event {
        EventV3::Repeat {
            folded,
            since_ms,
            total,
        } => NoticeEvent::Alert(NoticeKind::Repeat {
            folded,
            since: from_ms(since_ms),
            total,
        }),
        EventV3::Resolved {
            first_ms,
            last_ms,
            duration_ms,
            total,
            unreported,
            acked_ms,
        } => NoticeEvent::Alert(NoticeKind::Resolved {
            first: from_ms(first_ms),
            last: from_ms(last_ms),
            duration: Duration::from_millis(duration_ms),
            total,
            unreported,
            acked_at: acked_ms.map(from_ms),
        }),
        EventV3::Absent {
            last_seen_ms,
            for_ms,
            silent_for_ms,
        } => NoticeEvent::Alert(NoticeKind::Absent {
            last_seen: last_seen_ms.map(from_ms),
            for_: Duration::from_millis(for_ms),
            silent_for: Duration::from_millis(silent_for_ms),
        }),
        EventV3::Recovered {
            last_seen_ms,
            back_ms,
            absent_for_ms,
        } => NoticeEvent::Alert(NoticeKind::Recovered {
            last_seen: last_seen_ms.map(from_ms),
            back: from_ms(back_ms),
            absent_for: Duration::from_millis(absent_for_ms),
        }),
        EventV3::Silence {
            id,
            reason,
            author,
            by,
            matches,
            notices,
            first_ms,
            last_ms,
        } => NoticeEvent::SilenceEnded(SilenceEnd {
            id,
            reason,
            author,
            by: if by == "expired" {
                EndedBy::Expired
            } else {
                EndedBy::Removed
            },
            muted: Muted {
                matches,
                notices,
                first: first_ms.map(from_ms),
                last: last_ms.map(from_ms),
            },
        }),
    };
    BatchNotice {
        rule: rule.to_string(),
        severity: Severity::parse(&row.level).unwrap_or(Severity::Info),
        labels: row.labels,
        at: from_ms(row.at_ms),
        mentions: Mentions {
            mobiles: row.mobiles,
            user_ids: row.user_ids,
            all: row.all,
        },
        event,
    }
}

fn to_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn from_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
