//! Validation of `cluster:` (issue 15), the Redis that daemons on many hosts share. A child
//! module of `load`, like `chat`, so that it uses the loader's `${VAR}` expansion and positions.
//!
//! What it insists on, and why: the URL is `redis://` or `rediss://` with a host, and is kept as
//! a [`Secret`] (it may carry the password; only a copy without it is ever shown); the key
//! prefix is printable and short; the lease is at least a second (it is renewed every third of
//! it). A `fallback_after` under a minute is not refused here but warned about by
//! [`fallback_warning`] (the tests run with seconds): a host must not send on its own while the
//! last holder's sends of the window may still count at DingTalk.

use std::time::Duration;

use crate::config::ClusterConfig;
use crate::config::load::Loader;
use crate::config::raw::{RawCluster, Switch};
use crate::secret::Secret;
use crate::yaml_path;

/// The default key prefix.
pub const DEFAULT_KEY_PREFIX: &str = "dingtail:";
/// The default sender lease.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(10);
/// The default wait before hosts send on their own while Redis is unreachable.
pub const DEFAULT_FALLBACK_AFTER: Duration = Duration::from_secs(120);
/// Below this, `check` warns about `fallback_after`: DingTalk's window is a minute.
pub const MIN_FALLBACK_AFTER: Duration = Duration::from_secs(60);

impl Loader<'_> {
    /// Validates `cluster:`; `None` (with diagnostics) when it is unusable.
    pub(super) fn cluster(&mut self, raw: &RawCluster) -> Option<ClusterConfig> {
        let at = |key: &str| yaml_path!["cluster", key];
        let url = self.text(&at("redis"), &raw.redis);
        let shown = url.as_deref().and_then(|url| match redis_url_shown(url) {
            Ok(shown) => Some(shown),
            Err(message) => {
                // Never echo the value: it may hold the password.
                self.error_value(&at("redis"), message);
                None
            }
        });
        let key_prefix = match &raw.key_prefix {
            Some(prefix) => self.text(&at("key_prefix"), prefix),
            None => Some(DEFAULT_KEY_PREFIX.to_owned()),
        };
        if let Some(prefix) = &key_prefix
            && (prefix.len() > 64 || prefix.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            self.error_value(
                &at("key_prefix"),
                "`cluster.key_prefix` must be at most 64 characters without spaces",
            );
        }
        let lease = self.duration(&at("lease"), raw.lease.as_deref(), DEFAULT_LEASE);
        if lease < Duration::from_secs(1) {
            self.error_value(&at("lease"), "`cluster.lease` must be at least 1s");
        }
        let fallback_after = self.duration(
            &at("fallback_after"),
            raw.fallback_after.as_deref(),
            DEFAULT_FALLBACK_AFTER,
        );
        let fallback = match &raw.fallback {
            None => Some(true),
            Some(Switch::Bool(on)) => Some(*on),
            Some(Switch::Text(word)) => match word.trim() {
                "on" | "true" | "yes" => Some(true),
                "off" | "false" | "no" => Some(false),
                other => {
                    self.error_value(
                        &at("fallback"),
                        format!("`cluster.fallback` must be `on` or `off`, not `{other}`"),
                    );
                    None
                }
            },
        };
        Some(ClusterConfig {
            redis: Secret::new(url?),
            redis_shown: shown?,
            key_prefix: key_prefix?,
            lease,
            fallback_after,
            fallback: fallback?,
        })
    }
}

/// The URL without its password (`redis://user:***@host:port/db`), or why it is not a Redis URL.
/// The error never contains the URL.
pub fn redis_url_shown(url: &str) -> Result<String, String> {
    let mut parsed = url::Url::parse(url.trim())
        .map_err(|err| format!("`cluster.redis` is not a URL ({err})"))?;
    if !matches!(parsed.scheme(), "redis" | "rediss") {
        return Err(format!(
            "`cluster.redis` must start with `redis://` or `rediss://` (TLS), not `{}://`",
            parsed.scheme()
        ));
    }
    if parsed.host().is_none() {
        return Err("`cluster.redis` has no host".into());
    }
    if parsed.password().is_some() && parsed.set_password(Some("***")).is_err() {
        return Err("`cluster.redis` has a password but no host".into());
    }
    Ok(parsed.to_string())
}

/// The warning `check` and `run` give for a `fallback_after` shorter than a minute, if any.
pub fn fallback_warning(cluster: &ClusterConfig) -> Option<String> {
    (cluster.fallback && cluster.fallback_after < MIN_FALLBACK_AFTER).then(|| {
        format!(
            "cluster: `fallback_after` {} is under {}: hosts may start sending on their own while \
             the last sender's messages of the minute still count at DingTalk",
            humantime::format_duration(cluster.fallback_after),
            humantime::format_duration(MIN_FALLBACK_AFTER)
        )
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::{fallback_warning, redis_url_shown};
    use crate::config::load::parse;

    const BASE: &str = "inputs:\n  app:\n    paths: [\"/var/log/app.log\"]\nrobots:\n  ops:\n    webhook: stdout\n";

    fn env(name: &str) -> Option<String> {
        (name == "REDIS_PASSWORD").then(|| "hunter2".to_owned())
    }

    fn load(cluster: &str) -> Result<crate::config::Config, Vec<String>> {
        parse(
            Path::new("/etc/dingtail/dingtail.yaml"),
            &format!("{BASE}{cluster}"),
            &env,
        )
        .map_err(|diags| diags.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn defaults_the_password_from_the_environment_and_never_shown() {
        let config =
            load("cluster:\n  redis: \"redis://:${REDIS_PASSWORD}@10.0.0.5:6379/0\"\n").unwrap();
        let cluster = config.cluster.unwrap();
        assert_eq!(cluster.redis.expose(), "redis://:hunter2@10.0.0.5:6379/0");
        assert_eq!(cluster.redis_shown, "redis://:***@10.0.0.5:6379/0");
        assert_eq!(cluster.key_prefix, "dingtail:");
        assert_eq!(cluster.lease, Duration::from_secs(10));
        assert_eq!(cluster.fallback_after, Duration::from_secs(120));
        assert!(cluster.fallback);
        assert!(!format!("{cluster:?}").contains("hunter2"));
        assert_eq!(fallback_warning(&cluster), None);
        assert!(
            load("").unwrap().cluster.is_none(),
            "no cluster: nothing changes"
        );
    }

    #[test]
    fn settings_are_checked_and_a_short_fallback_is_only_warned_about() {
        let config = load(
            "cluster:\n  redis: rediss://r:6380\n  key_prefix: 'a:'\n  lease: 3s\n  fallback_after: 5s\n  fallback: off\n",
        )
        .unwrap();
        let cluster = config.cluster.unwrap();
        assert_eq!(
            (cluster.lease, cluster.fallback),
            (Duration::from_secs(3), false)
        );
        assert_eq!(
            fallback_warning(&cluster),
            None,
            "no fallback, nothing to warn about"
        );
        let short = load("cluster:\n  redis: redis://r\n  fallback_after: 5s\n").unwrap();
        assert!(fallback_warning(&short.cluster.unwrap()).is_some());
        let errors = load(
            "cluster:\n  redis: \"http://:${REDIS_PASSWORD}@r\"\n  lease: 200ms\n  fallback: maybe\n",
        )
        .unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(
            errors[0].contains("`redis://` or `rediss://`"),
            "{errors:?}"
        );
        assert!(errors[1].contains("at least 1s"), "{errors:?}");
        assert!(
            errors[2].contains("`on` or `off`, not `maybe`"),
            "{errors:?}"
        );
        assert!(errors.iter().all(|e| !e.contains("hunter2")), "{errors:?}");
    }

    #[test]
    fn the_shown_url_hides_the_password_and_errors_never_echo_it() {
        assert_eq!(
            redis_url_shown("redis://:s3cret@10.0.0.5:6379/2").unwrap(),
            "redis://:***@10.0.0.5:6379/2"
        );
        assert_eq!(
            redis_url_shown("rediss://app:s3cret@redis.example:6380").unwrap(),
            "rediss://app:***@redis.example:6380"
        );
        let err = redis_url_shown("http://:s3cret@10.0.0.5/").unwrap_err();
        assert!(err.contains("redis://"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        let err = redis_url_shown("s3cret").unwrap_err();
        assert!(!err.contains("s3cret"), "{err}");
    }
}
