//! `Secret`: a string that must never reach a log line, an error message, a metric or `Debug`
//! output (access tokens, signing secrets, webhook URLs that embed a token).
//!
//! The value is reachable only through [`Secret::expose`], a name that is easy to grep for, so
//! every place that handles the raw value can be reviewed.

use std::fmt;

/// A redacted string. `Debug` and `Display` print `"<redacted>"`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value that must not be shown.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The raw value, for the few places that must put it on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use crate::secret::Secret;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let secret = Secret::new("SEC000test");
        assert!(!format!("{secret:?}").contains("SEC000"));
        assert!(!format!("{secret}").contains("SEC000"));
        assert!(!format!("{:?}", Some(&secret)).contains("SEC000"));
        assert_eq!(secret.expose(), "SEC000test");
    }
}
