use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use crate::config::MultilineConfig;
use crate::event::{FileId, LogLine};
use crate::intake::event_reader::{EventReader, Framing, Origin, RELEASE_AFTER};

fn framing(max_line_bytes: usize, multiline: Option<&str>) -> Framing {
    Framing {
        max_line_bytes,
        multiline: multiline.map(|start| MultilineConfig {
            start: regex::Regex::new(start).unwrap(),
            max_lines: 100,
            timeout: Duration::from_secs(2),
        }),
        decoding: crate::config::Decoding::default(),
        timestamp: None,
    }
}

fn reader(framing: &Framing, t0: Instant) -> EventReader {
    let origin = Origin {
        input: "app".into(),
        file_id: FileId(1),
        path: PathBuf::from("/var/log/app.log").into(),
    };
    EventReader::new(framing, origin, 0, t0)
}

/// Feeds `data` and returns the events' (start, end, text, truncated).
fn feed(reader: &mut EventReader, data: &[u8], now: Instant) -> Vec<(u64, u64, String, bool)> {
    let mut src = data;
    let mut out: Vec<LogLine> = Vec::new();
    let mut budget = usize::MAX;
    reader
        .read(
            &mut src,
            &mut budget,
            usize::MAX,
            now,
            SystemTime::now(),
            &mut out,
        )
        .unwrap();
    shape(out)
}

fn shape(out: Vec<LogLine>) -> Vec<(u64, u64, String, bool)> {
    out.into_iter()
        .map(|l| (l.start_offset, l.end_offset, l.text, l.truncated))
        .collect()
}

#[test]
fn an_unterminated_last_line_waits_for_the_partial_timeout() {
    let t0 = Instant::now();
    let mut reader = reader(&framing(100, None), t0);
    assert_eq!(
        feed(&mut reader, b"one\r\ntwo", t0),
        [(0, 5, "one".to_string(), false)]
    );
    assert_eq!(reader.checkpoint(), 5);
    assert_eq!(reader.deadline(), Some(t0 + Duration::from_secs(5)));
    let mut out = Vec::new();
    reader.poll(
        t0 + Duration::from_millis(4999),
        SystemTime::now(),
        &mut out,
    );
    assert!(out.is_empty(), "not quiet long enough");
    reader.poll(t0 + Duration::from_secs(5), SystemTime::now(), &mut out);
    assert_eq!(shape(out), [(5, 8, "two".to_string(), false)]);
    assert_eq!(reader.checkpoint(), 8);
    assert_eq!(reader.deadline(), None);
    // The writer goes on where it stopped: the rest is a line of its own.
    assert_eq!(
        feed(&mut reader, b" more\n", t0 + Duration::from_secs(6)),
        [(8, 14, " more".to_string(), false)]
    );
}

#[test]
fn a_file_written_steadily_keeps_its_read_buffer_and_a_quiet_one_gives_it_back() {
    let t0 = Instant::now();
    let mut reader = reader(&framing(100, None), t0);
    feed(&mut reader, b"one\ntw", t0);
    let held = reader.reader.capacity();
    assert!(held >= 6, "{held}");
    let mut out = Vec::new();
    reader.poll(t0 + RELEASE_AFTER / 2, SystemTime::now(), &mut out);
    assert_eq!(
        reader.reader.capacity(),
        held,
        "kept while the file is busy"
    );
    let t1 = t0 + RELEASE_AFTER / 2;
    feed(&mut reader, b"o\nthr", t1);
    reader.poll(t0 + RELEASE_AFTER, SystemTime::now(), &mut out);
    assert_eq!(reader.reader.capacity(), held, "quiet since t1 only");
    reader.poll(t1 + RELEASE_AFTER, SystemTime::now(), &mut out);
    assert_eq!(reader.reader.capacity(), 3, "only the partial line is kept");
    assert_eq!(
        feed(&mut reader, b"ee\n", t1 + RELEASE_AFTER * 2),
        [(8, 14, "three".to_string(), false)]
    );
}

#[test]
fn bytes_arriving_restart_the_partial_timeout() {
    let t0 = Instant::now();
    let mut reader = reader(&framing(100, None), t0);
    feed(&mut reader, b"par", t0);
    let t1 = t0 + Duration::from_secs(4);
    feed(&mut reader, b"tial", t1);
    assert_eq!(reader.deadline(), Some(t1 + Duration::from_secs(5)));
    let mut out = Vec::new();
    reader.poll(t0 + Duration::from_secs(6), SystemTime::now(), &mut out);
    assert!(out.is_empty());
    reader.flush(t1, SystemTime::now(), &mut out);
    assert_eq!(shape(out), [(0, 7, "partial".to_string(), false)]);
}

#[test]
fn a_cut_line_moves_the_checkpoint_past_its_skipped_tail() {
    let t0 = Instant::now();
    let mut reader = reader(&framing(4, None), t0);
    let got = feed(&mut reader, b"abcdefgh\nok\n", t0);
    assert_eq!(
        got,
        [
            (0, 9, "abcd".to_string(), true),
            (9, 12, "ok".to_string(), false)
        ]
    );
    assert_eq!(reader.checkpoint(), 12);
    assert_eq!(reader.n_cut(), 1);
}

#[test]
fn a_held_multiline_event_keeps_the_checkpoint_before_it() {
    let t0 = Instant::now();
    let mut reader = reader(&framing(100, Some(r"^\d")), t0);
    let got = feed(&mut reader, b"1 first\n  at x\n2 second\n  at y\n", t0);
    assert_eq!(got, [(0, 15, "1 first\n  at x".to_string(), false)]);
    assert_eq!(reader.checkpoint(), 15);
    let mut out = Vec::new();
    reader.poll(t0 + Duration::from_secs(2), SystemTime::now(), &mut out);
    assert_eq!(
        shape(out),
        [(15, 31, "2 second\n  at y".to_string(), false)]
    );
    assert_eq!(reader.checkpoint(), 31);
}

#[test]
fn a_cut_line_inside_a_held_event_jumps_once_the_event_is_out() {
    let t0 = Instant::now();
    let mut reader = reader(&framing(4, Some(r"^\d")), t0);
    // "1abcdefg" arrives in two reads: cut to "1abc" in the first, its tail skipped in the
    // second while the event is held.
    let got = feed(&mut reader, b"1abcdef", t0);
    assert!(got.is_empty());
    let got = feed(&mut reader, b"g\n", t0);
    assert!(got.is_empty());
    assert_eq!(reader.checkpoint(), 0);
    let mut out = Vec::new();
    reader.flush(t0, SystemTime::now(), &mut out);
    assert_eq!(shape(out), [(0, 4, "1abc".to_string(), true)]);
    assert_eq!(reader.checkpoint(), 9, "past the skipped tail");
}

/// Issue 14: a decoded record reaches the rules whole: its time, its context (the stream
/// and the pod's names) and its fields; an invalid line is flagged and kept as text.
#[test]
fn events_carry_the_decoded_time_context_and_fields() {
    let t0 = Instant::now();
    let framing = Framing {
        decoding: crate::config::Decoding {
            format: crate::config::Format::Cri,
            content: crate::config::Content::Json,
            ..crate::config::Decoding::default()
        },
        ..framing(1000, None)
    };
    let origin = Origin {
        input: "pods".into(),
        file_id: FileId(1),
        path: PathBuf::from("/var/log/pods/shop_web-0_uid/nginx/0.log").into(),
    };
    let mut reader = EventReader::new(&framing, origin, 0, t0);
    let mut src: &[u8] = b"2026-11-24T12:00:00.5Z stderr P {\"level\":\"error\",\n\
        2026-11-24T12:00:01Z stderr F \"msg\":\"db down\"}\n\
        2026-11-24T12:00:02Z stdout F not json\n";
    let mut out = Vec::new();
    let mut budget = usize::MAX;
    reader
        .read(
            &mut src,
            &mut budget,
            usize::MAX,
            t0,
            SystemTime::now(),
            &mut out,
        )
        .unwrap();
    assert_eq!(out.len(), 2);
    let joined = &out[0];
    assert_eq!(joined.text, "db down");
    assert_eq!(
        joined.event_time,
        Some(std::time::UNIX_EPOCH + Duration::from_millis(1_795_521_600_500)),
        "the first piece's time"
    );
    assert_eq!(joined.context.get("stream"), Some("stderr"));
    assert_eq!(joined.context.get("pod"), Some("web-0"));
    assert_eq!(
        joined.fields.as_ref().unwrap().text("level").as_deref(),
        Some("error")
    );
    assert!(!joined.invalid);
    assert_eq!((out[1].text.as_str(), out[1].invalid), ("not json", true));
    assert_eq!(out[1].context.get("stream"), Some("stdout"));
    assert_eq!(reader.checkpoint(), 136);
}

#[test]
fn line_starts_number_the_raw_lines() {
    let t0 = Instant::now();
    let mut reader = reader(&framing(100, Some(r"^\d")), t0);
    reader.record_line_starts();
    feed(&mut reader, b"1 a\n  b\n2 c\nlast", t0);
    let mut out = Vec::new();
    reader.flush(t0, SystemTime::now(), &mut out);
    assert_eq!(reader.take_line_starts(), [0, 4, 8, 12]);
    assert_eq!(shape(out), [(8, 16, "2 c\nlast".to_string(), false)]);
}
