//! What an event says besides its text, and the `where:` conditions that read it.
//!
//! Defined here, below `event`, `config` and `intake`, because all three carry these values: a
//! decoder produces them, a `LogLine` carries them to the rules and the templates, and a rule's
//! `where:` ([`FieldCondition`], validated by `config`) is compiled into a [`Where`] that the
//! rules evaluate. Nothing here depends on the rest of the crate.
//!
//! A record has two kinds of named values. [`Context`] holds what the input itself knows about
//! the line: the container `stream`, the `namespace`, `pod` and `container` of a Kubernetes log
//! path, docker's `attrs.NAME`, or every field of a journal entry under its journal name
//! (`_SYSTEMD_UNIT`, `PRIORITY`, …; a repeated journal field appears once per value). [`Fields`]
//! holds the top-level fields of a JSON line (or of the JSON content of a container line), for
//! templates (`fields.NAME`) and conditions.
//!
//! Both are shaped for the hot path, where most records are never matched. A file's context is
//! built once and shared by its records (one reference count each). A JSON line's fields are
//! validated and indexed in one pass, but a value is parsed only when something asks for it: the
//! record keeps the line's text and where each top-level value lies in it.
//!
//! [`Where`] is a rule's compiled `where: {FIELD: VALUE | [VALUES]}`: every field must have one
//! of its values, compared exactly and case-sensitively. A name is looked up in the context
//! first, then in the JSON fields, where `a.b` reaches into nested objects (a top-level key that
//! itself holds a dot, as ECS's `log.level`, is tried first). JSON numbers, booleans and null
//! compare by their JSON text, so `status: 500` matches both `500` and `"500"`; an array
//! matches when one of its elements does. A top-level string or number is compared without
//! allocating.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use serde::Deserializer as _;
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Map, Number, Value};

/// One entry of a rule's `where:`: a field and the values it may have (any of them), each as
/// text (YAML numbers, booleans and null as written: `500`, `true`, `null`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldCondition {
    /// A context name (`stream`, `_SYSTEMD_UNIT`, …) or a JSON field path (`status`, `http.code`).
    pub field: String,
    /// The accepted values (never empty).
    pub values: Vec<String>,
}

/// One context pair.
pub type Pair = (Arc<str>, Arc<str>);

/// The context of a record: (name, value) pairs in the order the input produced them. Names may
/// repeat (a repeated journal field). Immutable and cheap to clone: records of one file share
/// one list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Context(Option<Arc<[Pair]>>);

impl Context {
    /// An empty context (allocates nothing).
    pub fn new() -> Context {
        Context(None)
    }

    /// A context of `pairs`.
    pub fn from_pairs(pairs: Vec<Pair>) -> Context {
        if pairs.is_empty() {
            Context(None)
        } else {
            Context(Some(Arc::from(pairs)))
        }
    }

    fn pairs(&self) -> &[Pair] {
        self.0.as_deref().unwrap_or_default()
    }

    /// Every value of `name`, in order.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs()
            .iter()
            .filter(move |(key, _)| &**key == name)
            .map(|(_, value)| &**value)
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs()
            .iter()
            .find(|(key, _)| &**key == name)
            .map(|(_, value)| &**value)
    }

    /// Every pair, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs().iter().map(|(name, value)| (&**name, &**value))
    }

    /// How many pairs there are.
    pub fn len(&self) -> usize {
        self.pairs().len()
    }

    /// True when there is no pair.
    pub fn is_empty(&self) -> bool {
        self.pairs().is_empty()
    }
}

/// The top-level fields of a JSON object line: its text, validated, and where each top-level
/// value lies in it. Values are parsed when asked for.
#[derive(Clone, PartialEq, Eq)]
pub struct Fields {
    source: String,
    entries: Vec<Entry>,
}

/// One top-level field: its key and the byte range of its raw value in `source`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    key: Key,
    value: Range<usize>,
}

/// A key as written (a range of `source`), or unescaped when it held escapes.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Key {
    Span(Range<usize>),
    Owned(Box<str>),
}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Fields").field(&self.source).finish()
    }
}

impl Fields {
    /// The fields of `text` if it is one JSON object (whitespace around it allowed); `None` for
    /// anything else (invalid JSON, an array, a string, trailing text).
    pub fn parse(text: &str) -> Option<Fields> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let entries = deserializer
            .deserialize_map(ObjectVisitor { base: text })
            .ok()?;
        deserializer.end().ok()?;
        Some(Fields {
            source: text.to_string(),
            entries,
        })
    }

    /// The object's text, as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// How many top-level fields there are (duplicates counted).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the object is `{}`.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The top-level names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|entry| self.key(entry))
    }

    fn key<'a>(&'a self, entry: &'a Entry) -> &'a str {
        match &entry.key {
            Key::Span(range) => self.source.get(range.clone()).unwrap_or_default(),
            Key::Owned(key) => key,
        }
    }

    /// The raw JSON text of top-level field `name` (the last one, if it is repeated).
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|entry| self.key(entry) == name)
            .and_then(|entry| self.source.get(entry.value.clone()))
    }

    /// The value at `path`, parsed: the top-level key `path` itself if there is one, else
    /// `a.b` steps into the object (or the array, by index) at `a`, by the same rule.
    pub fn get(&self, path: &str) -> Option<Value> {
        if let Some(raw) = self.raw(path) {
            return serde_json::from_str(raw).ok();
        }
        path.match_indices('.').find_map(|(i, _)| {
            let (head, rest) = (path.get(..i)?, path.get(i + 1..)?);
            let value: Value = serde_json::from_str(self.raw(head)?).ok()?;
            step(&value, rest).cloned()
        })
    }

    /// The text of top-level field `name` if it is a string, unescaped.
    pub fn text(&self, name: &str) -> Option<String> {
        string_text(self.raw(name)?)
    }

    /// Every field, parsed (for templates: `fields.NAME`). The last of repeated keys wins; a
    /// value serde_json cannot hold (a number such as `1e400`) is kept as its JSON text, so
    /// that one odd field does not hide the others.
    pub fn to_map(&self) -> Map<String, Value> {
        let mut map = Map::new();
        for entry in &self.entries {
            let raw = self.source.get(entry.value.clone()).unwrap_or_default();
            let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::from(raw));
            map.insert(self.key(entry).to_string(), value);
        }
        map
    }
}

/// The string a raw JSON value (a quoted, escaped string) holds, unescaped; `None` when it is
/// not a string.
pub fn string_text(raw: &str) -> Option<String> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        serde_json::from_str(raw).ok()
    } else {
        Some(inner.to_string())
    }
}

/// `path` in `map`: the whole key first, then split at each dot from the left.
fn lookup<'a>(map: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(value) = map.get(path) {
        return Some(value);
    }
    path.match_indices('.').find_map(|(i, _)| {
        let (head, rest) = (path.get(..i)?, path.get(i + 1..)?);
        step(map.get(head)?, rest)
    })
}

/// `path` inside `value` (an object or an array).
fn step<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    match value {
        Value::Object(map) => lookup(map, path),
        Value::Array(items) => {
            let (index, rest) = match path.split_once('.') {
                Some((index, rest)) => (index, Some(rest)),
                None => (path, None),
            };
            let item = items.get(index.parse::<usize>().ok()?)?;
            match rest {
                Some(rest) => step(item, rest),
                None => Some(item),
            }
        }
        _ => None,
    }
}

/// Indexes a top-level object: keys and the ranges of their raw values in `base`.
struct ObjectVisitor<'a> {
    base: &'a str,
}

/// Where `part` (a slice of `base`) starts in `base`.
fn offset_in(base: &str, part: &str) -> usize {
    (part.as_ptr() as usize).saturating_sub(base.as_ptr() as usize)
}

impl<'de> Visitor<'de> for ObjectVisitor<'de> {
    type Value = Vec<Entry>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<Entry>, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key_seed(KeySeed { base: self.base })? {
            let raw: &'de RawValue = map.next_value()?;
            let start = offset_in(self.base, raw.get());
            entries.push(Entry {
                key,
                value: start..start + raw.get().len(),
            });
        }
        Ok(entries)
    }
}

/// A key: a range of `base` when the parser could lend it, unescaped text otherwise.
struct KeySeed<'a> {
    base: &'a str,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'de> {
    type Value = Key;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'de> {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Key, E> {
        let start = offset_in(self.base, key);
        Ok(Key::Span(start..start + key.len()))
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        Ok(Key::Owned(key.into()))
    }
}

/// A rule's compiled `where:`: all its conditions must hold.
#[derive(Clone, Debug, Default)]
pub struct Where {
    conditions: Vec<Condition>,
}

/// One field and the values it may have.
#[derive(Clone, Debug)]
struct Condition {
    field: String,
    wanted: Vec<Wanted>,
}

/// One accepted value: its text, and the number it reads as (for JSON numbers).
#[derive(Clone, Debug)]
struct Wanted {
    text: String,
    number: Option<Number>,
}

impl Where {
    /// Compiles a rule's conditions (`RuleSpec::conditions`). No condition: always true.
    pub fn new(conditions: &[FieldCondition]) -> Where {
        Where {
            conditions: conditions
                .iter()
                .map(|condition| Condition {
                    field: condition.field.clone(),
                    wanted: condition
                        .values
                        .iter()
                        .map(|text| Wanted {
                            text: text.clone(),
                            number: text.parse::<Number>().ok(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    /// True when there is no condition.
    pub fn is_empty(&self) -> bool {
        self.conditions.is_empty()
    }

    /// True when every condition holds for a record with this context and these JSON fields.
    pub fn matches(&self, context: &Context, fields: Option<&Fields>) -> bool {
        self.conditions
            .iter()
            .all(|condition| condition.holds(context, fields))
    }
}

impl Condition {
    fn holds(&self, context: &Context, fields: Option<&Fields>) -> bool {
        let mut in_context = context.values(&self.field).peekable();
        if in_context.peek().is_some() {
            return in_context.any(|value| self.wanted.iter().any(|want| want.text == value));
        }
        let Some(fields) = fields else {
            return false;
        };
        if let Some(raw) = fields.raw(&self.field) {
            return self.wanted.iter().any(|want| raw_matches(raw, want));
        }
        match fields.get(&self.field) {
            Some(value) => self
                .wanted
                .iter()
                .any(|want| json_matches(&value, want, true)),
            None => false,
        }
    }
}

/// [`json_matches`] on a raw top-level value, parsing only what must be parsed.
fn raw_matches(raw: &str, want: &Wanted) -> bool {
    match raw.as_bytes().first() {
        Some(b'"') => match raw.get(1..raw.len() - 1) {
            Some(inner) if !inner.contains('\\') => inner == want.text,
            _ => string_text(raw).is_some_and(|text| text == want.text),
        },
        Some(b'[') => {
            serde_json::from_str::<Value>(raw).is_ok_and(|value| json_matches(&value, want, true))
        }
        Some(b'{') => false,
        Some(b't' | b'f' | b'n') => raw == want.text,
        _ => match (&want.number, raw.parse::<Number>()) {
            (Some(wanted), Ok(number)) => number == *wanted,
            _ => false,
        },
    }
}

/// True when `value`'s text is `want` (an array: when one of its scalar elements' is).
fn json_matches(value: &Value, want: &Wanted, descend: bool) -> bool {
    match value {
        Value::String(text) => *text == want.text,
        Value::Number(number) => match &want.number {
            Some(wanted) => number == wanted,
            None => false,
        },
        Value::Bool(true) => want.text == "true",
        Value::Bool(false) => want.text == "false",
        Value::Null => want.text == "null",
        Value::Array(items) if descend => items.iter().any(|item| json_matches(item, want, false)),
        Value::Array(_) | Value::Object(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use crate::fields::{Context, FieldCondition, Fields, Where};

    fn fields(text: &str) -> Fields {
        Fields::parse(text).unwrap()
    }

    fn condition(field: &str, values: &[&str]) -> FieldCondition {
        FieldCondition {
            field: field.into(),
            values: values.iter().map(|v| (*v).to_string()).collect(),
        }
    }

    fn check(conditions: &[FieldCondition], context: &Context, fields: Option<&Fields>) -> bool {
        Where::new(conditions).matches(context, fields)
    }

    #[test]
    fn only_objects_parse_and_keys_and_values_are_indexed() {
        let f = fields(r#" {"a":1, "b" : "two", "c\u0041":[1,{"x":null}], "a":"again"} "#);
        assert_eq!(f.names().collect::<Vec<_>>(), ["a", "b", "cA", "a"]);
        assert_eq!(f.raw("b"), Some(r#""two""#));
        assert_eq!(f.raw("cA"), Some(r#"[1,{"x":null}]"#));
        assert_eq!(f.raw("a"), Some(r#""again""#), "the last duplicate wins");
        assert_eq!(f.text("b").as_deref(), Some("two"));
        assert_eq!(f.text("cA"), None);
        assert_eq!(f.len(), 4);
        assert_eq!(f.to_map().get("a"), Some(&json!("again")));
        let odd = fields(r#"{"huge":1e400,"ok":1}"#);
        assert_eq!(odd.to_map().get("huge"), Some(&json!("1e400")));
        assert_eq!(odd.to_map().get("ok"), Some(&json!(1)));
        assert!(fields("{}").is_empty());
        for text in [
            "",
            "[]",
            "\"s\"",
            "1",
            "{",
            "{\"a\":}",
            "{} x",
            "{\"a\":tru}",
            "{'a':1}",
        ] {
            assert!(Fields::parse(text).is_none(), "{text}");
        }
    }

    #[test]
    fn paths_reach_nested_values_dotted_keys_and_array_items() {
        let f = fields(
            r#"{"log.level":"error","http":{"status":502,"req":{"method":"GET"}},"tags":["a","b"],"a":{"b.c":1},"esc":"q\"\u4f60"}"#,
        );
        assert_eq!(f.get("log.level"), Some(json!("error")));
        assert_eq!(f.get("http.status"), Some(json!(502)));
        assert_eq!(f.get("http.req.method"), Some(json!("GET")));
        assert_eq!(f.get("tags.1"), Some(json!("b")));
        assert_eq!(f.get("a.b.c"), Some(json!(1)));
        assert_eq!(f.get("esc"), Some(json!("q\"你")));
        assert_eq!(f.text("esc").as_deref(), Some("q\"你"));
        assert_eq!(f.get("http.nope"), None);
        assert_eq!(f.get("tags.9"), None);
        assert_eq!(f.get("tags.x"), None);
        assert_eq!(f.get(""), None);
    }

    #[test]
    fn numbers_booleans_and_null_compare_by_their_json_text() {
        let f = fields(
            r#"{"status":500,"code":"500","neg":-3,"ratio":0.5,"ok":true,"bad":false,"none":null,"big":18446744073709551615,"esc":"a\/b","nested":{"status":404}}"#,
        );
        let f = Some(&f);
        let none = Context::new();
        assert!(check(&[condition("status", &["500"])], &none, f));
        assert!(check(&[condition("code", &["500"])], &none, f));
        assert!(!check(&[condition("status", &["0500"])], &none, f));
        assert!(!check(&[condition("status", &["500.0"])], &none, f));
        assert!(check(&[condition("neg", &["-3"])], &none, f));
        assert!(check(&[condition("ratio", &["0.5"])], &none, f));
        assert!(check(&[condition("ok", &["true"])], &none, f));
        assert!(!check(&[condition("ok", &["True"])], &none, f));
        assert!(check(&[condition("bad", &["false"])], &none, f));
        assert!(check(&[condition("none", &["null"])], &none, f));
        assert!(check(
            &[condition("big", &["18446744073709551615"])],
            &none,
            f
        ));
        assert!(
            check(&[condition("esc", &["a/b"])], &none, f),
            "escapes are undone"
        );
        assert!(check(&[condition("nested.status", &["404"])], &none, f));
        assert!(!check(&[condition("nested", &["404"])], &none, f));
        // A string never matches a number's text by accident of case or spacing.
        assert!(!check(&[condition("code", &[" 500"])], &none, f));
    }

    #[test]
    fn lists_mean_any_of_and_all_conditions_must_hold() {
        let f = fields(r#"{"level":"ERROR","svc":"pay","tags":["db","slow"]}"#);
        let f = Some(&f);
        let none = Context::new();
        assert!(check(&[condition("level", &["WARN", "ERROR"])], &none, f));
        assert!(
            !check(&[condition("level", &["error"])], &none, f),
            "case-sensitive"
        );
        assert!(check(
            &[condition("level", &["ERROR"]), condition("svc", &["pay"])],
            &none,
            f
        ));
        assert!(!check(
            &[condition("level", &["ERROR"]), condition("svc", &["shop"])],
            &none,
            f
        ));
        assert!(check(&[condition("tags", &["slow"])], &none, f));
        assert!(!check(&[condition("missing", &["x"])], &none, f));
        assert!(check(&[], &none, f), "no condition always holds");
        assert!(!check(&[condition("level", &["ERROR"])], &none, None));
    }

    #[test]
    fn context_comes_first_and_repeated_values_match_any() {
        let context = Context::from_pairs(vec![
            (Arc::from("stream"), Arc::from("stderr")),
            (Arc::from("FOO"), Arc::from("a")),
            (Arc::from("FOO"), Arc::from("b")),
        ]);
        let f = fields(r#"{"stream":"app-stream","n":1}"#);
        assert!(check(
            &[condition("stream", &["stderr"])],
            &context,
            Some(&f)
        ));
        assert!(!check(
            &[condition("stream", &["app-stream"])],
            &context,
            Some(&f)
        ));
        assert!(check(&[condition("FOO", &["b"])], &context, Some(&f)));
        assert!(check(&[condition("n", &["1"])], &context, Some(&f)));
        assert_eq!(context.values("FOO").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(context.get("stream"), Some("stderr"));
        assert_eq!(context.len(), 3);
        assert!(Context::from_pairs(vec![]).is_empty());
    }
}
