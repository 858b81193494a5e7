//! JSON lines: one object per line, as structured loggers write them (logback's and log4j2's
//! JSON layouts, zap, bunyan, ECS). The object's top-level fields are kept ([`Fields`]: the
//! line's text, validated and indexed, values parsed on demand); the text rules match is
//! `message_field` (default: the first present of `message`, `msg` and `log`), or the whole line
//! when the object has none.

use serde_json::Value;

use crate::fields::{Fields, string_text};

/// The fields tried, in order, when no `message_field` is set.
pub const DEFAULT_MESSAGE_FIELDS: [&str; 3] = ["message", "msg", "log"];

/// A decoded JSON object line.
#[derive(Clone, Debug, PartialEq)]
pub struct JsonLine {
    /// The message rules match.
    pub text: String,
    /// Every top-level field, the message field included.
    pub fields: Fields,
}

/// Decodes `line` as one JSON object; `None` when it is not one (invalid JSON or UTF-8, or JSON
/// that is not an object).
pub fn decode(line: &[u8], message_field: Option<&str>) -> Option<JsonLine> {
    let first = line.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' {
        return None;
    }
    let text = std::str::from_utf8(line).ok()?;
    let fields = Fields::parse(text)?;
    let message = message(&fields, message_field).unwrap_or_else(|| text.trim().to_string());
    Some(JsonLine {
        text: message,
        fields,
    })
}

/// The message of `fields`: the named field (a path such as `a.b` reaches into objects), else
/// the first present of the defaults; a string as it is, any other non-null value as JSON text.
fn message(fields: &Fields, message_field: Option<&str>) -> Option<String> {
    match message_field {
        Some(path) => match fields.raw(path) {
            Some(raw) => raw_text(raw),
            None => match fields.get(path)? {
                Value::String(text) => Some(text),
                Value::Null => None,
                other => Some(other.to_string()),
            },
        },
        None => DEFAULT_MESSAGE_FIELDS
            .iter()
            .find_map(|name| raw_text(fields.raw(name)?)),
    }
}

/// The text of a raw value: a string unescaped, `null` none, anything else as written.
fn raw_text(raw: &str) -> Option<String> {
    match raw {
        "null" => None,
        _ if raw.starts_with('"') => string_text(raw),
        _ => Some(raw.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::intake::decode::json::decode;

    #[test]
    fn message_field_and_defaults() {
        let line = br#"{"ts":1732449600.5,"level":"error","msg":"db down","message":null}"#;
        let decoded = decode(line, None).unwrap();
        assert_eq!(
            decoded.text, "db down",
            "null `message` is skipped for `msg`"
        );
        assert_eq!(decoded.fields.get("level"), Some(json!("error")));
        assert_eq!(decoded.fields.get("ts"), Some(json!(1732449600.5)));
        let decoded = decode(line, Some("level")).unwrap();
        assert_eq!(decoded.text, "error");
        let decoded = decode(br#"{"a":{"b":[1, 2]},"n":7}"#, Some("a.b")).unwrap();
        assert_eq!(decoded.text, "[1,2]", "non-strings as JSON text");
        let decoded = decode(br#"{"a":{"b":"x"},"n": 7 }"#, Some("n")).unwrap();
        assert_eq!(decoded.text, "7");
        let decoded = decode(br#" {"level":"info","n":7} "#, None).unwrap();
        assert_eq!(
            decoded.text, r#"{"level":"info","n":7}"#,
            "no message: the line"
        );
        let decoded = decode(br#"{"x":1}"#, Some("nope")).unwrap();
        assert_eq!(decoded.text, r#"{"x":1}"#);
    }

    #[test]
    fn odd_values_survive() {
        let huge = "x".repeat(200_000);
        let line = format!(
            r#"{{"message":"\u4f60\u597d \ud83d\ude00 \"q\" \\ \t","ok":true,"none":null,"neg":-1e-3,"list":[1,"a",null,{{"k":"v"}}],"deep":{{"a":{{"b":{{"c":"d"}}}}}},"huge":"{huge}","":"empty key","dup":1,"dup":2,"far":1e400}}"#
        );
        let decoded = decode(line.as_bytes(), None).unwrap();
        assert_eq!(decoded.text, "你好 😀 \"q\" \\ \t");
        let fields = &decoded.fields;
        assert_eq!(fields.get("ok"), Some(json!(true)));
        assert_eq!(fields.get("none"), Some(json!(null)));
        assert_eq!(fields.get("neg"), Some(json!(-0.001)));
        assert_eq!(fields.get("list.3.k"), Some(json!("v")));
        assert_eq!(fields.get("deep.a.b.c"), Some(json!("d")));
        assert_eq!(fields.text("huge").map(|text| text.len()), Some(200_000));
        assert_eq!(fields.get(""), Some(json!("empty key")));
        assert_eq!(fields.get("dup"), Some(json!(2)), "the last duplicate wins");
        assert_eq!(
            fields.raw("far"),
            Some("1e400"),
            "valid JSON, if out of f64's range"
        );
    }

    #[test]
    fn anything_but_an_object_is_not_a_json_line() {
        for line in [
            &b""[..],
            b"   ",
            b"plain text",
            b"[1,2]",
            b"\"string\"",
            b"42",
            b"{\"unterminated\": ",
            b"{\"a\":1} trailing",
            b"{\"a\":\"\xff\"}",
            b"{'single': 'quotes'}",
            b"{\"a\":\"raw\x01control\"}",
            b"{\"a\":\"bad \\x escape\"}",
        ] {
            assert!(
                decode(line, None).is_none(),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }
}
