//! Verification of an HTTP callback's `timestamp` and `sign` headers (RA §6.3): `sign` must be
//! `base64(HMAC-SHA256(key = appSecret, "{timestamp}\n{appSecret}"))`, not URL-encoded, and
//! `timestamp` (milliseconds) within one hour of our clock. Pure: `now_ms` is a parameter.
//!
//! The MAC is compared in constant time (`hmac`'s `verify_slice`), after decoding the header,
//! so the time a refusal takes says nothing about how much of a guess was right. Errors name
//! what failed and never carry the header values.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::secret::Secret;

/// How far a callback's `timestamp` may be from our clock.
pub const MAX_SKEW_MS: u64 = 3_600_000;

/// Why a callback's signature is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// No `timestamp` or no `sign` header.
    #[error("missing timestamp or sign header")]
    Missing,
    /// `timestamp` is not a whole number of milliseconds.
    #[error("the timestamp header is not a number")]
    BadTimestamp,
    /// `timestamp` is more than an hour from our clock.
    #[error("the timestamp is {skew_s} s away from our clock (at most 3600 s)")]
    Stale {
        /// The distance, in seconds.
        skew_s: u64,
    },
    /// The signature does not match.
    #[error("the sign header does not match")]
    Mismatch,
}

impl SignError {
    /// The metric label: `missing`, `stale` or `bad_sign`.
    pub fn label(self) -> &'static str {
        match self {
            SignError::Missing => "missing",
            SignError::BadTimestamp | SignError::Stale { .. } => "stale",
            SignError::Mismatch => "bad_sign",
        }
    }
}

/// Checks a callback's headers against the app secret at `now_ms`.
///
/// # Errors
/// A [`SignError`] saying which check failed.
pub fn verify(
    timestamp: Option<&str>,
    sign: Option<&str>,
    secret: &Secret,
    now_ms: u64,
) -> Result<(), SignError> {
    let (Some(timestamp), Some(sign)) = (timestamp, sign) else {
        return Err(SignError::Missing);
    };
    let timestamp = timestamp.trim();
    let ms = timestamp
        .parse::<u64>()
        .map_err(|_| SignError::BadTimestamp)?;
    let skew = ms.abs_diff(now_ms);
    if skew > MAX_SKEW_MS {
        return Err(SignError::Stale {
            skew_s: skew / 1000,
        });
    }
    let claimed = STANDARD
        .decode(sign.trim())
        .map_err(|_| SignError::Mismatch)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .map_err(|_| SignError::Mismatch)?;
    mac.update(timestamp.as_bytes());
    mac.update(b"\n");
    mac.update(secret.expose().as_bytes());
    mac.verify_slice(&claimed).map_err(|_| SignError::Mismatch)
}

#[cfg(test)]
mod tests {
    use crate::chat::signature::{SignError, verify};
    use crate::dingtalk::sign::signature;
    use crate::secret::Secret;

    const NOW: u64 = 1_700_000_000_000;

    #[test]
    fn the_spec_vector_verifies_within_an_hour_either_way() {
        let secret = Secret::new("SEC000test");
        let sign = "1hLl2KkRX3rps9FaitIUwaac+CtAFEaP345jvdrTL7c=";
        assert_eq!(
            verify(Some("1700000000000"), Some(sign), &secret, NOW),
            Ok(())
        );
        for now in [NOW - 3_600_000, NOW + 3_600_000] {
            assert_eq!(
                verify(Some("1700000000000"), Some(sign), &secret, now),
                Ok(())
            );
        }
        let other = signature(&secret, NOW + 5);
        assert_eq!(
            verify(Some(&(NOW + 5).to_string()), Some(&other), &secret, NOW),
            Ok(())
        );
    }

    #[test]
    fn each_kind_of_bad_header_is_refused() {
        let secret = Secret::new("SEC000test");
        let good = "1hLl2KkRX3rps9FaitIUwaac+CtAFEaP345jvdrTL7c=";
        let cases = [
            (None, Some(good), NOW, SignError::Missing),
            (Some("1700000000000"), None, NOW, SignError::Missing),
            (Some("yesterday"), Some(good), NOW, SignError::BadTimestamp),
            (
                Some("1700000000000"),
                Some(good),
                NOW + 3_600_001,
                SignError::Stale { skew_s: 3600 },
            ),
            (
                Some("1700000000000"),
                Some(good),
                NOW - 7_200_000,
                SignError::Stale { skew_s: 7200 },
            ),
            // Another timestamp, the URL-encoded form, not base64, truncated, another secret's.
            (Some("1700000000001"), Some(good), NOW, SignError::Mismatch),
            (
                Some("1700000000000"),
                Some("1hLl2KkRX3rps9FaitIUwaac%2BCtAFEaP345jvdrTL7c%3D"),
                NOW,
                SignError::Mismatch,
            ),
            (Some("1700000000000"), Some("!!"), NOW, SignError::Mismatch),
            (
                Some("1700000000000"),
                Some("1hLl2KkR"),
                NOW,
                SignError::Mismatch,
            ),
            (
                Some("1700000000000"),
                Some("OuzzJR5+xZ4/EYwqtNt6sMYZQMTa/HEGvc9miJe7XzY="),
                NOW,
                SignError::Mismatch,
            ),
        ];
        for (timestamp, sign, now, want) in cases {
            assert_eq!(
                verify(timestamp, sign, &secret, now),
                Err(want),
                "{timestamp:?} {sign:?}"
            );
        }
    }
}
