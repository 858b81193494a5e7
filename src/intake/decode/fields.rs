//! What a record says besides its text, and the `where:` conditions that read it.
//!
//! A record has two kinds of named values. [`Context`] holds what the input itself knows about
//! the line: the container `stream`, the `namespace`, `pod` and `container` of a Kubernetes log
//! path, docker's `attrs.NAME`, or every field of a journal entry under its journal name
//! (`_SYSTEMD_UNIT`, `PRIORITY`, …; a repeated journal field appears once per value). [`Fields`]
//! holds the top-level fields of a JSON line (or of the JSON content of a container line), for
//! templates (`fields.NAME`) and conditions.
//!
//! [`Where`] is a rule's compiled `where: {FIELD: VALUE | [VALUES]}`: every field must have one
//! of its values, compared exactly and case-sensitively. A name is looked up in the context
//! first, then in the JSON fields, where `a.b` reaches into nested objects (a top-level key that
//! itself holds a dot, as ECS's `log.level`, is tried first). JSON numbers, booleans and null
//! compare by their JSON text, so `status: 500` matches both `500` and `"500"`; an array
//! matches when one of its elements does. Pure, no allocation on the hot path.

use std::sync::Arc;

use serde_json::{Map, Number, Value};

use crate::config::FieldCondition;

/// The context of a record: (name, value) pairs in the order the input produced them. Names may
/// repeat (a repeated journal field). Names and values are shared (`Arc`), since most of them
/// (a file's pod, the stream names) are the same for every record of a file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Context(Vec<(Arc<str>, Arc<str>)>);

impl Context {
    /// An empty context (allocates nothing).
    pub fn new() -> Context {
        Context(Vec::new())
    }

    /// Adds a pair.
    pub fn push(&mut self, name: Arc<str>, value: Arc<str>) {
        self.0.push((name, value));
    }

    /// Every value of `name`, in order.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(key, _)| &**key == name)
            .map(|(_, value)| &**value)
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| &**key == name)
            .map(|(_, value)| &**value)
    }

    /// Every pair, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(name, value)| (&**name, &**value))
    }

    /// How many pairs there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there is no pair.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The top-level fields of a JSON object line, kept whole for templates and conditions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Fields(Map<String, Value>);

impl Fields {
    /// The fields of a decoded JSON object.
    pub fn new(map: Map<String, Value>) -> Fields {
        Fields(map)
    }

    /// The value at `path`: the top-level key `path` itself if there is one, else `a.b` steps
    /// into the object (or the array, by index) at `a`, by the same rule.
    pub fn get(&self, path: &str) -> Option<&Value> {
        lookup(&self.0, path)
    }

    /// The fields as a JSON map (what `fields` is in a template).
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// The fields as a JSON map, by value.
    pub fn into_map(self) -> Map<String, Value> {
        self.0
    }
}

/// `path` in `map`: the whole key first, then split at each dot from the left.
fn lookup<'a>(map: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(value) = map.get(path) {
        return Some(value);
    }
    let mut dots = path.match_indices('.').map(|(i, _)| i);
    dots.find_map(|i| {
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
        match fields.and_then(|fields| fields.get(&self.field)) {
            Some(value) => self
                .wanted
                .iter()
                .any(|want| json_matches(value, want, true)),
            None => false,
        }
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

    use serde_json::{Map, Value, json};

    use crate::config::FieldCondition;
    use crate::intake::decode::fields::{Context, Fields, Where};

    fn fields(value: Value) -> Fields {
        match value {
            Value::Object(map) => Fields::new(map),
            _ => panic!("not an object"),
        }
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
    fn paths_reach_nested_values_dotted_keys_and_array_items() {
        let f = fields(json!({
            "log.level": "error",
            "http": {"status": 502, "req": {"method": "GET"}},
            "tags": ["a", "b"],
            "a": {"b.c": 1}
        }));
        assert_eq!(f.get("log.level"), Some(&json!("error")));
        assert_eq!(f.get("http.status"), Some(&json!(502)));
        assert_eq!(f.get("http.req.method"), Some(&json!("GET")));
        assert_eq!(f.get("tags.1"), Some(&json!("b")));
        assert_eq!(f.get("a.b.c"), Some(&json!(1)));
        assert_eq!(f.get("http.nope"), None);
        assert_eq!(f.get("tags.9"), None);
        assert_eq!(f.get("tags.x"), None);
        assert_eq!(f.get(""), None);
    }

    #[test]
    fn numbers_booleans_and_null_compare_by_their_json_text() {
        let f = fields(json!({
            "status": 500, "code": "500", "neg": -3, "ratio": 0.5, "ok": true, "bad": false,
            "none": null, "big": 18446744073709551615u64
        }));
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
        // A string never matches a number's text by accident of case or spacing.
        assert!(!check(&[condition("code", &[" 500"])], &none, f));
    }

    #[test]
    fn lists_mean_any_of_and_all_conditions_must_hold() {
        let f = fields(json!({"level": "ERROR", "svc": "pay", "tags": ["db", "slow"]}));
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
        let mut context = Context::new();
        context.push(Arc::from("stream"), Arc::from("stderr"));
        context.push(Arc::from("FOO"), Arc::from("a"));
        context.push(Arc::from("FOO"), Arc::from("b"));
        let f = fields(json!({"stream": "app-stream", "n": 1}));
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
        assert_eq!(Fields::new(Map::new()).get("x"), None);
    }
}
