//! `${VAR}` and `${VAR:-default}` expansion from the environment, applied to every string value of
//! the main config (webhooks and secrets usually come from here). `$${` writes a literal `${`.
//!
//! Expansion happens on parsed scalar values, never on the YAML text, so a value from the
//! environment cannot change the structure of the file (a secret containing `: ` or `"` is safe).

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

/// Looks variables up in the process environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests {
    use crate::config::env::{EnvError, expand};

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
