//! Alert kinds in words (issue 13): a notice alone as a message ([`lone`]), notices as a section
//! of a summary ([`section`]), and the line under a sample that says what it stands for
//! ([`annotation`]: a firing alert's window, a repeat of an open incident).
//!
//! Keys and silence matchers come from log lines: they are escaped for the kind of text they go
//! into (`dingtalk::escape`), titles as titles; dingtail's own words come from `lang`, times are
//! in the configured zone (the time of day alone when it is the notice's own day).

use std::time::SystemTime;

use jiff::Timestamp;

use crate::alert::{EndedBy, NoticeKind};
use crate::batch::{Annotation, BatchNotice, NoticeEvent, Notices};
use crate::dingtalk::draft::{Body, Draft, Heading, Section};
use crate::dingtalk::escape;
use crate::event::Markup;
use crate::lang::{Language, NoticeWord};
use crate::render::Renderer;
use crate::render::context::format;

/// The draft of `notice` sent alone to `robot`.
pub fn lone(renderer: &Renderer, notice: &BatchNotice, robot: &str) -> Draft {
    let kind = renderer.robot_msgtype(robot);
    let markup = kind.markup();
    Draft {
        title: title(renderer, notice),
        body: Body::Event(text(renderer, notice, markup)),
        mentions: notice.mentions.clone(),
        link: None,
        markup,
        kind,
        language: renderer.language(),
        notes: Vec::new(),
    }
}

/// A summary's section of notices: one line each (rule, what, key, facts), then the tallied
/// ones per rule and kind, escaped for `markup`.
pub fn section(renderer: &Renderer, notices: &Notices, markup: Markup) -> Section {
    let language = renderer.language();
    let mut lines: Vec<String> = notices
        .kept
        .iter()
        .map(|notice| {
            let labels = language.labels(&notice.labels);
            let head = if labels.is_empty() {
                format!("{} · {}", notice.rule, language.notice_word(word(notice)))
            } else {
                format!(
                    "{} · {} · {labels}",
                    notice.rule,
                    language.notice_word(word(notice))
                )
            };
            let head = escape::value(&head, markup);
            format!(
                "{head}{}{}",
                language.colon(),
                text(renderer, notice, markup)
            )
        })
        .collect();
    for ((rule, kind), tally) in &notices.tallies {
        let more = language.more_notices(tally.n, NoticeWord::parse(kind), tally.n_matches);
        lines.push(escape::value(&format!("{rule}: {more}"), markup));
    }
    Section {
        heading: Heading::Named {
            name: language.notices_heading().to_string(),
            facts: Vec::new(),
        },
        facts: Vec::new(),
        count: lines.len() as u64,
        samples: lines,
        link: None,
    }
}

/// The line under a sample of an alert-kind rule, escaped for `markup`; `None` for a plain line
/// (and for a firing alert of a rule without `when`: the line is all there is to say).
pub fn annotation(
    renderer: &Renderer,
    note: Annotation,
    at: SystemTime,
    markup: Markup,
) -> Option<String> {
    let language = renderer.language();
    let words = match note {
        Annotation::Plain | Annotation::Firing { within: None, .. } => return None,
        Annotation::Firing {
            count,
            since,
            within: Some(within),
        } => language.firing(count, within, &clock(renderer, since, at)),
        Annotation::Realert { total } => language.realert(total),
        Annotation::Overflow => language.overflow().to_string(),
    };
    Some(escape::value(&words, markup))
}

/// What `notice` says (without its title), escaped for `markup` (`dingtail test --render`'s
/// timeline).
pub fn describe(renderer: &Renderer, notice: &BatchNotice, markup: Markup) -> String {
    text(renderer, notice, markup)
}

/// What kind of notice `notice` is.
fn word(notice: &BatchNotice) -> NoticeWord {
    match &notice.event {
        NoticeEvent::Alert(NoticeKind::Repeat { .. }) => NoticeWord::Repeat,
        NoticeEvent::Alert(NoticeKind::Resolved { .. }) => NoticeWord::Resolved,
        NoticeEvent::Alert(NoticeKind::Absent { .. }) => NoticeWord::Absent,
        NoticeEvent::Alert(NoticeKind::Recovered { .. }) => NoticeWord::Recovered,
        NoticeEvent::SilenceEnded(_) => NoticeWord::SilenceEnded,
    }
}

/// A notice's title (plain, one line).
fn title(renderer: &Renderer, notice: &BatchNotice) -> String {
    let language = renderer.language();
    let labels = language.labels(&notice.labels);
    escape::title(&language.notice_title(
        word(notice),
        notice.severity,
        &notice.rule,
        &labels,
        renderer.host(),
    ))
}

/// What a notice says, escaped for `markup`.
fn text(renderer: &Renderer, notice: &BatchNotice, markup: Markup) -> String {
    let language = renderer.language();
    let at = |time: SystemTime| clock(renderer, time, notice.at);
    let words = match &notice.event {
        NoticeEvent::Alert(NoticeKind::Repeat {
            folded,
            since,
            total,
        }) => language.repeat(*folded, &at(*since), *total),
        NoticeEvent::Alert(NoticeKind::Resolved {
            first,
            last,
            duration,
            total,
            unreported,
            acked_at,
        }) => {
            let mut words = language.resolved(*duration, *total, &at(*first), &at(*last));
            if *unreported > 0 {
                words.push_str(language.list_separator());
                words.push_str(&language.unreported(*unreported));
            }
            if let Some(acked_at) = acked_at {
                words.push_str(language.list_separator());
                words.push_str(&language.acknowledged(&at(*acked_at)));
            }
            words
        }
        NoticeEvent::Alert(NoticeKind::Absent {
            last_seen,
            silent_for,
            ..
        }) => language.absent(*silent_for, last_seen.map(at).as_deref()),
        NoticeEvent::Alert(NoticeKind::Recovered {
            back, absent_for, ..
        }) => language.recovered(&at(*back), *absent_for),
        NoticeEvent::SilenceEnded(end) => {
            let span = match (end.muted.first, end.muted.last) {
                (Some(first), Some(last)) if first != last => {
                    Some(format!("{} → {}", at(first), at(last)))
                }
                (Some(first), _) => Some(at(first)),
                _ => None,
            };
            let mut words = language.muted(end.muted.matches, end.muted.notices, span.as_deref());
            words.push_str(separator(language));
            words.push_str(&language.silence_ending(
                end.by == EndedBy::Expired,
                &end.author,
                &end.reason,
            ));
            words.push_str(&format!(" ({})", end.id));
            words
        }
    };
    escape::value(&words, markup)
}

/// Between two clauses: `; ` / `；`.
fn separator(language: Language) -> &'static str {
    match language {
        Language::ZhCn => "；",
        Language::En => "; ",
    }
}

/// `time` in the configured zone: its time of day when it falls on the day of `reference`, else
/// its date too.
fn clock(renderer: &Renderer, time: SystemTime, reference: SystemTime) -> String {
    let zone = renderer.zone();
    let day = |at: SystemTime| {
        Timestamp::try_from(at)
            .map(|t| t.to_zoned_datetime(zone.clone()).date())
            .ok()
    };
    let pattern = if day(time) == day(reference) {
        "%H:%M:%S"
    } else {
        "%Y-%m-%d %H:%M:%S"
    };
    format(time, pattern, zone).unwrap_or_default()
}

#[cfg(test)]
mod tests;
