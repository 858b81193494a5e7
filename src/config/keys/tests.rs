//! The key reference (`docs/configuration.md`) against the keys the loader accepts.
//!
//! The reference's convention: a heading names, in backticks, the path of the keys in the
//! tables under it (`.` is the top of the main file, `inputs.<name>` one input, `<rule>` one
//! rule, `<rule>.at` a rule's `at:`); the first cell of each table row is a key in backticks.

use std::collections::BTreeMap;

use crate::config::keys::{Key, main_keys, rule_keys};

const REFERENCE: &str = "docs/configuration.md";

/// Every key path the reference documents, with the line of its row.
fn documented(text: &str) -> BTreeMap<String, usize> {
    let is_path = |token: &str| {
        token == "."
            || (token.starts_with(|c: char| c.is_ascii_lowercase() || c == '<')
                && token
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.<>".contains(c)))
    };
    let mut prefix: Option<String> = None;
    let mut keys = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('#') {
            prefix = line
                .split('`')
                .skip(1)
                .step_by(2)
                .find(|token| is_path(token))
                .map(str::to_string);
            continue;
        }
        let (Some(prefix), Some(row)) = (&prefix, line.strip_prefix('|')) else {
            continue;
        };
        let cell = row.split('|').next().unwrap_or_default().trim();
        let Some(key) = cell.strip_prefix('`').and_then(|c| c.strip_suffix('`')) else {
            continue;
        };
        let path = if prefix == "." {
            key.to_string()
        } else {
            format!("{prefix}.{key}")
        };
        keys.insert(path, i + 1);
    }
    keys
}

/// Where a missing key goes: the heading of its parent path.
fn parent(path: &str) -> &str {
    match path.rsplit_once('.') {
        Some((parent, _)) => parent,
        None => ".",
    }
}

#[test]
fn the_probe_sees_nested_keys_renames_and_maps() {
    let main: Vec<String> = main_keys().unwrap().into_iter().map(|k| k.path).collect();
    for key in [
        "state_dir",
        "inputs",
        "inputs.<name>.paths",
        "inputs.<name>.multiline.start",
        "robots.<name>.throttle_pause",
        "chat.allow.users",
    ] {
        assert!(main.iter().any(|k| k == key), "{key} not in {main:#?}");
    }
    let rule = rule_keys().unwrap();
    let owner = |path: &str| rule.iter().find(|k| k.path == path).map(|k| k.owner);
    assert_eq!(owner("<rule>.match"), Some("RawRule"));
    assert_eq!(owner("<rule>.at.user_ids"), Some("RawAt"));
}

/// Issue 12: the reference lists every key the loader accepts, and nothing else. When this
/// fails, its message says which key and where it goes.
#[test]
fn the_reference_documents_every_key_the_loader_accepts() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(REFERENCE);
    let text = std::fs::read_to_string(&path).unwrap();
    let documented = documented(&text);
    let accepted: Vec<Key> = main_keys()
        .unwrap()
        .into_iter()
        .chain(rule_keys().unwrap())
        .collect();
    let mut problems = Vec::new();
    for key in &accepted {
        if documented.contains_key(&key.path) {
            continue;
        }
        let section = parent(&key.path);
        let name = key.path.rsplit('.').next().unwrap_or(&key.path);
        let heading = documented
            .keys()
            .any(|documented| parent(documented) == section);
        let place = if heading {
            format!("add a row to the table under the heading that names `{section}`")
        } else {
            format!(
                "add a section whose heading names `{section}` (e.g. \"### `{section}`\") with a \
                 table of its keys"
            )
        };
        problems.push(format!(
            "{REFERENCE} does not document `{}` (field `{name}` of `{}` in src/config/raw.rs): \
             {place}:\n    | `{name}` | TYPE | DEFAULT | what it does | `{name}: EXAMPLE` |",
            key.path, key.owner
        ));
    }
    for (path, line) in &documented {
        if !accepted.iter().any(|key| &key.path == path) {
            problems.push(format!(
                "{REFERENCE}:{line} documents `{path}`, which the loader does not accept: \
                 remove the row (or fix its heading's path)"
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}
