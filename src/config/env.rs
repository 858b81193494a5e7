//! `${VAR}` and `${VAR:-default}` expansion from the environment, applied to every string value of
//! the main config (webhooks and secrets usually come from here) and of the rule files (mobiles
//! to @, robot names, anything: [`expand_value`]). `$${` writes a literal `${`.
//!
//! Expansion happens on parsed scalar values, never on the YAML text, so a value from the
//! environment cannot change the structure of the file (a secret containing `: ` or `"` is safe).

use crate::config::span::Seg;

/// Why a value could not be expanded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    /// `${NAME}` without a default, and `NAME` is not set.
    #[error("environment variable `{0}` is not set (use `${{{0}:-default}}` for a default)")]
    Unset(String),
    /// `${` without its closing `}`.
    #[error("unterminated `${{` in value")]
    Unterminated,
    /// `${}` or a name with characters other than letters, digits and `_`.
    #[error("invalid environment variable name `{0}`")]
    BadName(String),
}

/// Expands `${VAR}` and `${VAR:-default}` in `value`, looking variables up with `lookup`.
///
/// # Errors
/// The first unset variable (without default), unterminated reference or bad name.
pub fn expand(value: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, EnvError> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        let (before, from_dollar) = rest.split_at(at);
        out.push_str(before);
        if let Some(after) = from_dollar.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = from_dollar.strip_prefix("${") {
            let end = after.find('}').ok_or(EnvError::Unterminated)?;
            let (reference, tail) = after.split_at(end);
            let (name, default) = match reference.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (reference, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(EnvError::BadName(name.to_string()));
            }
            match (lookup(name), default) {
                (Some(found), _) => out.push_str(&found),
                (None, Some(default)) => out.push_str(default),
                (None, None) => return Err(EnvError::Unset(name.to_string())),
            }
            rest = tail.strip_prefix('}').unwrap_or(tail);
        } else {
            out.push('$');
            rest = from_dollar.strip_prefix('$').unwrap_or(from_dollar);
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Expands `${VAR}` in every string of `value` (mapping keys excepted), in place. `path` is
/// where `value` stands in its document (extended while walking); each string that cannot be
/// expanded is left as it is and reported to `on_error` with its path.
pub fn expand_value(
    value: &mut serde_yaml::Value,
    path: &mut Vec<Seg>,
    lookup: &dyn Fn(&str) -> Option<String>,
    on_error: &mut dyn FnMut(&[Seg], EnvError),
) {
    match value {
        serde_yaml::Value::String(text) => {
            if text.contains('$') {
                match expand(text, lookup) {
                    Ok(expanded) => *text = expanded,
                    Err(err) => on_error(path, err),
                }
            }
        }
        serde_yaml::Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(Seg::Index(i));
                expand_value(item, path, lookup, on_error);
                path.pop();
            }
        }
        serde_yaml::Value::Mapping(entries) => {
            for (key, item) in entries.iter_mut() {
                path.push(Seg::Key(key.as_str().unwrap_or_default().to_string()));
                expand_value(item, path, lookup, on_error);
                path.pop();
            }
        }
        serde_yaml::Value::Tagged(tagged) => {
            expand_value(&mut tagged.value, path, lookup, on_error)
        }
        serde_yaml::Value::Null | serde_yaml::Value::Bool(_) | serde_yaml::Value::Number(_) => {}
    }
}

/// Looks variables up in the process environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests {
    use crate::config::env::{EnvError, expand, expand_value};
    use crate::config::span::Seg;

    #[test]
    fn every_string_of_a_tree_expands_and_failures_have_their_path() {
        let mut value: serde_yaml::Value =
            serde_yaml::from_str("name: x\nat: {mobiles: ['${TOKEN}', 139, '${NOPE}']}\n").unwrap();
        let mut failed = Vec::new();
        expand_value(
            &mut value,
            &mut vec![Seg::Index(3)],
            &lookup,
            &mut |at, err| {
                failed.push((at.to_vec(), err));
            },
        );
        assert_eq!(value["at"]["mobiles"][0], "abc");
        assert_eq!(value["at"]["mobiles"][1], 139);
        assert_eq!(
            failed,
            [(
                vec![
                    Seg::Index(3),
                    Seg::Key("at".into()),
                    Seg::Key("mobiles".into()),
                    Seg::Index(2)
                ],
                EnvError::Unset("NOPE".into())
            )]
        );
    }

    fn lookup(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("abc".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_set_unset_default_and_escapes() {
        let check = |input: &str| expand(input, &lookup);
        assert_eq!(
            check("https://x/?access_token=${TOKEN}").unwrap(),
            "https://x/?access_token=abc"
        );
        assert_eq!(check("${MISSING:-20}").unwrap(), "20");
        assert_eq!(check("${TOKEN:-zz}").unwrap(), "abc");
        assert_eq!(check("${EMPTY:-x}").unwrap(), "");
        assert_eq!(check("$${TOKEN} costs $5").unwrap(), "${TOKEN} costs $5");
        assert_eq!(check("${MISSING}"), Err(EnvError::Unset("MISSING".into())));
        assert_eq!(check("${TOKEN"), Err(EnvError::Unterminated));
        assert_eq!(check("${A-B}"), Err(EnvError::BadName("A-B".into())));
        assert_eq!(check("日本${TOKEN}語").unwrap(), "日本abc語");
    }
}
