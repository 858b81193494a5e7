//! `Decoder` end to end, on real-shaped lines of every format.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::config::{Content, Decoding, FieldCondition, Format};
use crate::fields::Where;
use crate::intake::decode::{Decoder, RawLine, Record};

const POD_LOG: &str = "/var/log/pods/shop_web-0_5b3c6f0e-8f1c-4c1e-9a55-0c6d3b1f2a77/nginx/0.log";

/// "2026-11-24 12:00:01 ERROR 数据库连接失败: 超时" in GBK.
const GBK_LINE: &[u8] = b"2026-11-24 12:00:01 ERROR \xca\xfd\xbe\xdd\xbf\xe2\xc1\xac\xbd\xd3\xca\xa7\xb0\xdc: \xb3\xac\xca\xb1";
const GBK_TEXT: &str = "2026-11-24 12:00:01 ERROR 数据库连接失败: 超时";

fn decoding(format: Format) -> Decoding {
    Decoding {
        format,
        ..Decoding::default()
    }
}

/// Feeds `lines` (cut as `LineReader` would: each followed by `\n`) one second apart from `t0`
/// without flushing; returns the records and the offsets past each line.
struct Feed {
    decoder: Decoder,
    t0: Instant,
    offset: u64,
    n_lines: u64,
    out: Vec<Record>,
}

impl Feed {
    fn new(decoding: &Decoding, max_line_bytes: usize, path: &str) -> Feed {
        Feed {
            decoder: Decoder::new(decoding, max_line_bytes, Path::new(path)),
            t0: Instant::now(),
            offset: 0,
            n_lines: 0,
            out: Vec::new(),
        }
    }

    fn now(&self) -> Instant {
        self.t0 + Duration::from_secs(self.n_lines)
    }

    fn line(&mut self, bytes: &[u8]) -> &mut Feed {
        self.cut(bytes, false)
    }

    fn cut(&mut self, bytes: &[u8], truncated: bool) -> &mut Feed {
        let raw = RawLine {
            bytes,
            start: self.offset,
            end: self.offset + bytes.len() as u64 + 1,
            truncated,
        };
        self.offset = raw.end;
        let now = self.now();
        self.decoder.push(raw, now, &mut self.out);
        self.n_lines += 1;
        self
    }

    fn flush(&mut self) -> &mut Feed {
        self.decoder.flush(&mut self.out);
        self
    }

    fn texts(&self) -> Vec<&str> {
        self.out.iter().map(|r| r.text.as_str()).collect()
    }

    fn spans(&self) -> Vec<(u64, u64)> {
        self.out.iter().map(|r| (r.start, r.end)).collect()
    }
}

fn context(record: &Record) -> Vec<(&str, &str)> {
    record.context.iter().collect()
}

fn at(secs: u64, nanos: u32) -> Option<SystemTime> {
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

#[test]
fn plain_is_lossy_utf8_with_offsets_and_nothing_else() {
    let mut feed = Feed::new(&Decoding::default(), 1024, POD_LOG);
    feed.line(b"ok \xe4\xbd\xa0\xe5\xa5\xbd")
        .line(b"bad \xff\xfe end")
        .line(b"");
    assert_eq!(feed.texts(), ["ok 你好", "bad \u{fffd}\u{fffd} end", ""]);
    assert_eq!(feed.spans(), [(0, 10), (10, 21), (21, 22)]);
    let first = &feed.out[0];
    assert!(!first.invalid && !first.truncated && first.time.is_none());
    assert!(first.context.is_empty() && first.fields.is_none());
    assert_eq!(feed.decoder.format(), Some(Format::Plain));
}

#[test]
fn gbk_lines_decode_and_bad_bytes_become_replacement_characters() {
    let gbk = Decoding {
        encoding: encoding_rs::Encoding::for_label(b"gbk"),
        ..Decoding::default()
    };
    let mut feed = Feed::new(&gbk, 1024, "/var/log/app.log");
    // A lone lead byte at the end, and a lead byte before a space (WHATWG: the space survives).
    feed.line(GBK_LINE)
        .line(b"\xb6\xa9\xb5\xa5 \x81\x20 x \xb6");
    assert_eq!(feed.texts(), [GBK_TEXT, "订单 \u{fffd}  x \u{fffd}"]);
    assert_eq!(
        feed.spans(),
        [(0, 47), (47, 59)],
        "offsets stay byte offsets"
    );
    // gb18030's four-byte sequences (a CJK Extension B character) decode too.
    let gb18030 = Decoding {
        encoding: encoding_rs::Encoding::for_label(b"gb18030"),
        ..Decoding::default()
    };
    let mut feed = Feed::new(&gb18030, 1024, "/var/log/app.log");
    feed.line(b"\x95\x32\x82\x36 \xa2\xe3");
    assert_eq!(feed.texts(), ["𠀀 €"]);
}

#[test]
fn cri_pieces_join_up_to_f_with_the_first_time_and_the_pod_context() {
    let mut feed = Feed::new(&decoding(Format::Cri), 1 << 20, POD_LOG);
    feed.line(b"2026-11-24T12:00:00.000000001Z stdout P {\"level\":\"error\",");
    assert!(feed.out.is_empty());
    assert_eq!(feed.decoder.open_start(), Some(0));
    assert_eq!(
        feed.decoder.deadline(),
        Some(feed.t0 + Duration::from_secs(5))
    );
    feed.line(b"2026-11-24T12:00:00.5Z stdout P \"msg\":\"db ")
        .line(b"2026-11-24T12:00:01Z stdout F down\"}")
        .line(b"2026-11-24T12:00:02+08:00 stderr F panic: boom");
    assert_eq!(
        feed.texts(),
        ["{\"level\":\"error\",\"msg\":\"db down\"}", "panic: boom"]
    );
    assert_eq!(feed.spans(), [(0, 138), (138, 185)]);
    assert_eq!(feed.out[0].time, at(1_795_521_600, 1));
    assert_eq!(feed.out[1].time, at(1_795_492_802, 0));
    assert_eq!(
        context(&feed.out[0]),
        [
            ("stream", "stdout"),
            ("namespace", "shop"),
            ("pod", "web-0"),
            ("container", "nginx")
        ]
    );
    assert_eq!(context(&feed.out[1])[0], ("stream", "stderr"));
    assert!(
        feed.out
            .iter()
            .all(|r| !r.invalid && !r.truncated && r.fields.is_none())
    );
    assert_eq!(
        (feed.decoder.open_start(), feed.decoder.deadline()),
        (None, None)
    );
}

#[test]
fn cri_interleaved_streams_join_separately() {
    let mut feed = Feed::new(&decoding(Format::Cri), 1 << 20, "/var/log/x.log");
    feed.line(b"2026-11-24T12:00:00Z stdout P out-a ")
        .line(b"2026-11-24T12:00:00Z stderr P err-a ")
        .line(b"2026-11-24T12:00:00Z stdout P out-b ")
        .line(b"2026-11-24T12:00:00Z stderr F err-b");
    assert_eq!(feed.texts(), ["err-a err-b"]);
    assert_eq!(
        feed.decoder.open_start(),
        Some(0),
        "stdout still holds its pieces"
    );
    feed.line(b"2026-11-24T12:00:00Z stdout F out-c");
    assert_eq!(feed.texts(), ["err-a err-b", "out-a out-b out-c"]);
    assert_eq!(feed.spans(), [(37, 147), (0, 183)]);
    assert_eq!(context(&feed.out[0]), [("stream", "stderr")]);
    assert_eq!(context(&feed.out[1]), [("stream", "stdout")]);
}

#[test]
fn a_cri_line_split_by_rotation_is_never_lost() {
    // kubelet renamed 0.log while the runtime was between two pieces: the old file ends with P
    // pieces and the new one starts with the rest.
    let mut old = Feed::new(&decoding(Format::Cri), 1 << 20, POD_LOG);
    old.line(b"2026-11-24T12:00:00Z stdout F before")
        .line(b"2026-11-24T12:00:01Z stdout P first ")
        .line(b"2026-11-24T12:00:01Z stdout P second ");
    assert_eq!(old.texts(), ["before"]);
    let held_from = old.decoder.open_start();
    assert_eq!(
        held_from,
        Some(37),
        "the old file's checkpoint stops before the pieces"
    );
    // The old file is drained and released: what it holds is handed out.
    old.flush();
    assert_eq!(old.texts(), ["before", "first second "]);
    assert_eq!(old.spans()[1], (37, 112));
    assert_eq!(old.decoder.open_start(), None);
    let mut new = Feed::new(&decoding(Format::Cri), 1 << 20, POD_LOG);
    new.line(b"2026-11-24T12:00:01Z stdout F third")
        .line(b"2026-11-24T12:00:02Z stdout F after");
    assert_eq!(new.texts(), ["third", "after"]);
    // Or the old file stays quiet: `partial_timeout` hands the pieces out.
    let mut quiet = Feed::new(&decoding(Format::Cri), 1 << 20, POD_LOG);
    quiet.line(b"2026-11-24T12:00:01Z stdout P first ");
    let deadline = quiet.decoder.deadline().unwrap();
    let mut out = Vec::new();
    quiet
        .decoder
        .poll(deadline - Duration::from_millis(1), &mut out);
    assert!(out.is_empty());
    quiet.decoder.poll(deadline, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].text.as_str(), out[0].start, out[0].end),
        ("first ", 0, 37)
    );
}

#[test]
fn lines_that_are_not_cri_pass_as_invalid_plain_text() {
    let mut feed = Feed::new(&decoding(Format::Cri), 1 << 20, POD_LOG);
    feed.line(b"2026-11-24T12:00:00Z stdout P held ")
        .line(b"2026-13-45T12:00:00Z stdout F bad month")
        .line(b"2026-11-24T12:00:00 stdout F no offset")
        .line(b"2026-11-24T12:00:00Z stdin F no such stream")
        .line(b"plain words")
        .line(b"2026-11-24T12:00:00Z stdout F tail");
    assert_eq!(
        feed.texts(),
        [
            "2026-13-45T12:00:00Z stdout F bad month",
            "2026-11-24T12:00:00 stdout F no offset",
            "2026-11-24T12:00:00Z stdin F no such stream",
            "plain words",
            "held tail"
        ]
    );
    let flags: Vec<bool> = feed.out.iter().map(|r| r.invalid).collect();
    assert_eq!(flags, [true, true, true, true, false]);
    assert!(feed.out[0].time.is_none());
    assert_eq!(
        context(&feed.out[0])[0],
        ("namespace", "shop"),
        "the file's names stay"
    );
}

#[test]
fn cri_joins_are_bounded_by_max_line_bytes() {
    let mut feed = Feed::new(&decoding(Format::Cri), 64, "/var/log/x.log");
    let piece = format!("2026-11-24T12:00:00Z stdout P {}", "a".repeat(30));
    feed.line(piece.as_bytes()).line(piece.as_bytes());
    assert!(feed.out.is_empty());
    feed.line(piece.as_bytes());
    assert_eq!(
        feed.out.len(),
        1,
        "handed out as soon as the bound is reached"
    );
    assert_eq!(feed.out[0].text, "a".repeat(64));
    assert!(feed.out[0].truncated);
    assert_eq!(feed.decoder.open_start(), None);
    feed.line(b"2026-11-24T12:00:00Z stdout F rest of the long one")
        .line(b"2026-11-24T12:00:00Z stdout F next");
    assert_eq!(feed.texts()[1..], ["next"]);
    // A line the reader cut is still a CRI piece, marked truncated.
    feed.cut(b"2026-11-24T12:00:00Z stdout F cut by the rea", true);
    assert_eq!(feed.out[2].text, "cut by the rea");
    assert!(feed.out[2].truncated && !feed.out[2].invalid);
}

#[test]
fn cri_gbk_content_split_inside_a_character_joins_whole() {
    let gbk = Decoding {
        format: Format::Cri,
        encoding: encoding_rs::Encoding::for_label(b"gbk"),
        ..Decoding::default()
    };
    let mut feed = Feed::new(&gbk, 1 << 20, "/var/log/x.log");
    // "订单" is b6 a9 b5 a5: the runtime cut between b6 and a9.
    feed.line(b"2026-11-24T12:00:00Z stdout P \xb6")
        .line(b"2026-11-24T12:00:00Z stdout F \xa9\xb5\xa5 ok");
    assert_eq!(feed.texts(), ["订单 ok"]);
    // UTF-8 likewise: "你" is e4 bd a0.
    let mut feed = Feed::new(&decoding(Format::Cri), 1 << 20, "/var/log/x.log");
    feed.line(b"2026-11-24T12:00:00Z stdout P \xe4\xbd")
        .line(b"2026-11-24T12:00:00Z stdout F \xa0!");
    assert_eq!(feed.texts(), ["你!"]);
}

#[test]
fn cri_content_json_is_decoded_after_joining() {
    let cri_json = Decoding {
        format: Format::Cri,
        content: Content::Json,
        ..Decoding::default()
    };
    let mut feed = Feed::new(&cri_json, 1 << 20, POD_LOG);
    feed.line(b"2026-11-24T12:00:00Z stderr P {\"level\":\"error\",\"status\":500,")
        .line(b"2026-11-24T12:00:00Z stderr F \"msg\":\"upstream timed out\",\"http\":{\"path\":\"/pay\"}}")
        .line(b"2026-11-24T12:00:00Z stdout F Starting server on :8080");
    assert_eq!(
        feed.texts(),
        ["upstream timed out", "Starting server on :8080"]
    );
    let fields = feed.out[0].fields.as_ref().unwrap();
    assert_eq!(fields.get("http.path"), Some(json!("/pay")));
    assert!(!feed.out[0].invalid);
    assert!(
        feed.out[1].invalid,
        "a banner that is not JSON is flagged, not dropped"
    );
    let condition = |field: &str, values: &[&str]| FieldCondition {
        field: field.into(),
        values: values.iter().map(|v| (*v).to_string()).collect(),
    };
    let rule = Where::new(&[
        condition("stream", &["stderr"]),
        condition("namespace", &["shop", "pay"]),
        condition("status", &["500", "502"]),
        condition("http.path", &["/pay"]),
    ]);
    let record = &feed.out[0];
    assert!(record.satisfies(&rule));
    let other = Where::new(&[condition("stream", &["stdout"])]);
    assert!(!record.satisfies(&other));
}

#[test]
fn docker_chunks_join_until_a_newline_which_is_dropped() {
    let mut feed = Feed::new(
        &decoding(Format::Docker),
        1 << 20,
        "/var/lib/docker/containers/x/x-json.log",
    );
    feed.line(br#"{"log":"Exception in thread \"main\" ","stream":"stderr","time":"2026-11-24T12:00:00.000000001Z"}"#)
        .line(br#"{"log":"GET /x 200\n","stream":"stdout","time":"2026-11-24T12:00:00.1Z"}"#)
        .line(br#"{"log":"java.lang.OutOfMemoryError\r\n","stream":"stderr","time":"2026-11-24T12:00:01Z"}"#)
        .line(br#"{"log":"\n","stream":"stdout","time":"2026-11-24T12:00:02Z"}"#);
    assert_eq!(
        feed.texts(),
        [
            "GET /x 200",
            "Exception in thread \"main\" java.lang.OutOfMemoryError",
            ""
        ]
    );
    assert_eq!(feed.out[1].time, at(1_795_521_600, 1));
    assert_eq!(feed.out[1].start, 0);
    assert_eq!(context(&feed.out[1]), [("stream", "stderr")]);
    // The last write of a container that died without a newline comes out on flush (or after
    // `partial_timeout`).
    feed.line(br#"{"log":"killed","stream":"stdout","attrs":{"tag":"api"},"time":"2026-11-24T12:00:03Z"}"#);
    assert_eq!(feed.out.len(), 3);
    feed.flush();
    assert_eq!(feed.out[3].text, "killed");
    assert_eq!(
        context(&feed.out[3]),
        [("stream", "stdout"), ("attrs.tag", "api")]
    );
}

#[test]
fn docker_lines_that_are_not_docker_pass_as_invalid_plain_text() {
    let mut feed = Feed::new(&decoding(Format::Docker), 1 << 20, "/x-json.log");
    feed.line(br#"{"log":"no stream\n"}"#)
        .line(b"plain")
        .cut(br#"{"log":"cut by the rea"#, true);
    assert_eq!(
        feed.texts(),
        [
            r#"{"log":"no stream\n"}"#,
            "plain",
            r#"{"log":"cut by the rea"#
        ]
    );
    let flags: Vec<(bool, bool)> = feed.out.iter().map(|r| (r.invalid, r.truncated)).collect();
    assert_eq!(flags, [(true, false), (true, false), (false, true)]);
}

#[test]
fn docker_content_json_and_gbk_encoded_lines() {
    let docker_json = Decoding {
        format: Format::Docker,
        content: Content::Json,
        message_field: Some("event".into()),
        ..Decoding::default()
    };
    let mut feed = Feed::new(&docker_json, 1 << 20, "/x-json.log");
    feed.line(br#"{"log":"{\"event\":\"login failed\",\"user\":\"root\",\"n\":3}\n","stream":"stdout","time":"2026-11-24T12:00:00Z"}"#);
    assert_eq!(feed.texts(), ["login failed"]);
    let fields = feed.out[0].fields.as_ref().unwrap();
    assert_eq!(fields.get("user"), Some(json!("root")));
    // A JSON-lines file written in GBK (a Windows service): decoded before parsing.
    let gbk_json = Decoding {
        format: Format::Json,
        encoding: encoding_rs::Encoding::for_label(b"gbk"),
        ..Decoding::default()
    };
    let mut feed = Feed::new(&gbk_json, 1 << 20, "/x.log");
    feed.line(b"{\"level\":\"ERROR\",\"message\":\"\xb6\xa9\xb5\xa5\xca\xa7\xb0\xdc\"}");
    assert_eq!(feed.texts(), ["订单失败"]);
    assert!(!feed.out[0].invalid);
}

#[test]
fn json_lines_keep_their_fields_and_invalid_ones_pass_as_text() {
    let mut feed = Feed::new(&decoding(Format::Json), 1 << 20, "/var/log/app.json");
    feed.line(br#"{"@timestamp":"2026-11-24T12:00:00Z","log.level":"ERROR","message":"payment failed","http":{"status":502},"retry":false,"trace":null,"tags":["pay"]}"#)
        .line(br#"{"msg":"\u8ba2\u5355 \ud83d\ude00","n":1e400}"#)
        .line(br#"{"level":"info"}"#)
        .line(b"not json at all")
        .line(br#"{"truncated":"#)
        .line(br#"[1,2,3]"#)
        .cut(br#"{"message":"cut by the rea"#, true)
        .line(b"{\"message\":\"bad utf-8 \xff\"}");
    assert_eq!(
        feed.texts(),
        [
            "payment failed",
            "订单 😀",
            r#"{"level":"info"}"#,
            "not json at all",
            r#"{"truncated":"#,
            "[1,2,3]",
            r#"{"message":"cut by the rea"#,
            "{\"message\":\"bad utf-8 \u{fffd}\"}",
        ]
    );
    let flags: Vec<(bool, bool)> = feed.out.iter().map(|r| (r.invalid, r.truncated)).collect();
    assert_eq!(
        flags,
        [
            (false, false),
            (false, false),
            (false, false),
            (true, false),
            (true, false),
            (true, false),
            (false, true),
            (true, false),
        ],
        "1e400 is valid JSON (its value is only parsed if asked for)"
    );
    let fields = feed.out[0].fields.as_ref().unwrap();
    assert_eq!(fields.get("log.level"), Some(json!("ERROR")));
    assert_eq!(fields.get("http.status"), Some(json!(502)));
    assert_eq!(fields.get("trace"), Some(json!(null)));
    assert_eq!(fields.len(), 7);
    assert_eq!(
        feed.out[2].fields.as_ref().unwrap().get("level"),
        Some(json!("info"))
    );
}

#[test]
fn auto_decides_per_file_from_the_first_non_empty_line_and_sticks() {
    let auto = decoding(Format::Auto);
    let cases: [(&[u8], Format); 4] = [
        (b"2026-11-24T12:00:00Z stdout F hello", Format::Cri),
        (
            br#"{"log":"hello\n","stream":"stdout","time":"2026-11-24T12:00:00Z"}"#,
            Format::Docker,
        ),
        (br#"{"message":"hello","level":"info"}"#, Format::Json),
        (b"Nov 24 12:00:00 web-1 sshd[42]: hello", Format::Plain),
    ];
    for (first, format) in cases {
        let mut feed = Feed::new(&auto, 1 << 20, POD_LOG);
        assert_eq!(feed.decoder.format(), None);
        feed.line(b"").line(first);
        assert_eq!(feed.decoder.format(), Some(format));
        assert_eq!(
            feed.out[0].text, "",
            "a blank first line is plain and decides nothing"
        );
        assert!(
            feed.out[1].text.ends_with("hello"),
            "{format:?}: {:?}",
            feed.out[1].text
        );
        assert!(!feed.out[1].invalid);
        // The decision sticks: a line of another format is invalid (or plain) from now on.
        feed.line(br#"{"message":"json later"}"#);
        let last = feed.out.last().unwrap();
        assert_eq!(
            last.invalid,
            matches!(format, Format::Cri | Format::Docker),
            "{format:?}"
        );
        assert_eq!(feed.decoder.format(), Some(format));
    }
}
