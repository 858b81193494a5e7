//! Signing (加签) and the request URL: `sign = base64(HMAC-SHA256(secret, "{ms}\n{secret}"))`,
//! appended as `&timestamp={ms}&sign={urlencoded}`.
//!
//! The URL is rebuilt for every attempt from the pristine webhook the user configured, so a retry
//! an hour later carries a fresh timestamp and the URL never grows; any `timestamp`/`sign` already
//! in the configured URL is dropped, and the other parameters (the token) are kept byte for byte.
//! The signature is URL-encoded exactly once, by `url`'s form encoder, which turns `+ / =` into
//! `%2B %2F %3D` (an unencoded `+` would reach DingTalk as a space and fail with
//! `sign not match`), and the result is set as the query verbatim.
//!
//! Nothing here formats the webhook or the secret into an error: they are secrets.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use url::Url;
use url::form_urlencoded::byte_serialize;

use crate::secret::Secret;

/// Why a webhook URL cannot be used. Never contains the URL itself.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// Not a URL at all (a bare access token is a common mistake).
    #[error(
        "the webhook is not a URL (expected https://oapi.dingtalk.com/robot/send?access_token=...)"
    )]
    NotAUrl,
    /// A URL, but not http or https.
    #[error("the webhook must be an http:// or https:// URL")]
    Scheme,
    /// A URL without a host.
    #[error("the webhook URL has no host")]
    NoHost,
}

/// Parses and checks a webhook URL (http or https, with a host).
///
/// # Errors
/// A [`WebhookError`] that does not echo the URL.
pub fn parse_webhook(webhook: &Secret) -> Result<Url, WebhookError> {
    let url = Url::parse(webhook.expose().trim()).map_err(|_| WebhookError::NotAUrl)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(WebhookError::Scheme);
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(WebhookError::NoHost);
    }
    Ok(url)
}

/// The base64 signature for `timestamp_ms` (not URL-encoded).
pub fn signature(secret: &Secret, timestamp_ms: u64) -> String {
    let string_to_sign = format!("{timestamp_ms}\n{}", secret.expose());
    // HMAC accepts keys of any length, so this never fails; an empty MAC would only make
    // DingTalk answer `sign not match`.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()) else {
        return String::new();
    };
    mac.update(string_to_sign.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// The URL to POST to: `webhook` without any old `timestamp`/`sign`, plus a fresh
/// `timestamp`/`sign` pair when the robot has a `secret`.
///
/// # Errors
/// A [`WebhookError`] when `webhook` is not a usable URL.
pub fn request_url(
    webhook: &Secret,
    secret: Option<&Secret>,
    timestamp_ms: u64,
) -> Result<Url, WebhookError> {
    let mut url = parse_webhook(webhook)?;
    // Keep the configured parameters byte for byte (the token is not re-encoded); drop only an
    // old signature.
    let mut query: Vec<String> = url
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|pair| {
            let key = pair.split('=').next().unwrap_or_default();
            !pair.is_empty() && key != "timestamp" && key != "sign"
        })
        .map(str::to_owned)
        .collect();
    if let Some(secret) = secret {
        let sign: String = byte_serialize(signature(secret, timestamp_ms).as_bytes()).collect();
        query.push(format!("timestamp={timestamp_ms}"));
        query.push(format!("sign={sign}"));
    }
    if query.is_empty() {
        url.set_query(None);
    } else {
        url.set_query(Some(&query.join("&")));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use crate::dingtalk::sign::{WebhookError, parse_webhook, request_url, signature};
    use crate::secret::Secret;

    /// The spec's test vectors (§3.2): secret, timestamp, base64, URL-encoded.
    const VECTORS: [(&str, u64, &str, &str); 4] = [
        (
            "SEC000test",
            1_700_000_000_000,
            "1hLl2KkRX3rps9FaitIUwaac+CtAFEaP345jvdrTL7c=",
            "1hLl2KkRX3rps9FaitIUwaac%2BCtAFEaP345jvdrTL7c%3D",
        ),
        (
            "secret",
            1_700_000_000_000,
            "OuzzJR5+xZ4/EYwqtNt6sMYZQMTa/HEGvc9miJe7XzY=",
            "OuzzJR5%2BxZ4%2FEYwqtNt6sMYZQMTa%2FHEGvc9miJe7XzY%3D",
        ),
        (
            "SEC000test",
            1_700_003_600_000,
            "TrUlWp9PYLWYjLYk2NfBidrsciq2Io+4X/rv3EQigW4=",
            "TrUlWp9PYLWYjLYk2NfBidrsciq2Io%2B4X%2Frv3EQigW4%3D",
        ),
        (
            "SEC000test",
            1_699_999_999_999,
            "hEKnWtjWGp/ItXB+nXEJ2HbcET8KOp4bXCOFP9XkZ0M=",
            "hEKnWtjWGp%2FItXB%2BnXEJ2HbcET8KOp4bXCOFP9XkZ0M%3D",
        ),
    ];

    #[test]
    fn signatures_match_the_spec_vectors() {
        for (secret, ts, b64, _) in VECTORS {
            assert_eq!(signature(&Secret::new(secret), ts), b64, "{secret} {ts}");
        }
    }

    #[test]
    fn the_url_carries_the_signature_encoded_exactly_once() {
        let webhook = Secret::new("https://oapi.dingtalk.com/robot/send?access_token=TOKEN");
        for (secret, ts, _, encoded) in VECTORS {
            let url = request_url(&webhook, Some(&Secret::new(secret)), ts).unwrap();
            assert_eq!(
                url.as_str(),
                format!(
                    "https://oapi.dingtalk.com/robot/send?access_token=TOKEN&timestamp={ts}&sign={encoded}"
                )
            );
        }
    }

    #[test]
    fn re_signing_replaces_old_parameters_and_the_url_does_not_grow() {
        let secret = Secret::new("SEC000test");
        let pristine = Secret::new("https://oapi.dingtalk.com/robot/send?access_token=TOKEN");
        let first = request_url(&pristine, Some(&secret), 1_700_000_000_000).unwrap();
        // Even if a caller fed a signed URL back in, the old pair is dropped.
        let again = request_url(
            &Secret::new(first.as_str()),
            Some(&secret),
            1_700_003_600_000,
        )
        .unwrap();
        let fresh = request_url(&pristine, Some(&secret), 1_700_003_600_000).unwrap();
        assert_eq!(again, fresh);
        assert_eq!(again.as_str().matches("timestamp=").count(), 1);
        assert!(again.as_str().contains("timestamp=1700003600000"));
    }

    #[test]
    fn without_a_secret_the_url_is_left_alone() {
        let webhook = Secret::new("http://127.0.0.1:9/robot/send?access_token=a%2Bb");
        let url = request_url(&webhook, None, 1).unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9/robot/send?access_token=a%2Bb"
        );
    }

    #[test]
    fn bad_webhooks_are_refused_without_echoing_them() {
        for (webhook, expected) in [
            ("zz9secret", WebhookError::NotAUrl),
            (
                "ftp://example.com/robot?access_token=tok",
                WebhookError::Scheme,
            ),
            ("file:///tmp/x?access_token=zz9secret", WebhookError::Scheme),
        ] {
            let err = parse_webhook(&Secret::new(webhook)).unwrap_err();
            assert_eq!(err, expected);
            assert!(!err.to_string().contains("zz9"));
        }
    }
}
