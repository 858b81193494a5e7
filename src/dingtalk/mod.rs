//! DingTalk custom-robot client: the only module that knows DingTalk's field names, limits and
//! error codes (issue 2).
//!
//! A caller builds a typed [`Message`], names the [`Robot`] (webhook, optional signing secret,
//! keywords) and hands both to a shared [`Client`], which answers with an [`Outcome`] class, never
//! a string to parse. The parts are split by what they know: `message` the wire JSON, `limits`
//! what DingTalk requires of the text (keywords, mentions, line breaks, 20,000 bytes), `sign` the
//! signature and request URL, `outcome` the meaning of errcodes, and `client` the network. Only
//! `client` does I/O or reads the clock; [`body`] is pure, so the dry-run robot and
//! `dingtail test --render` print exactly what would be sent.

pub mod client;
pub mod draft;
pub mod escape;
pub mod layout;
pub mod limits;
pub mod message;
pub mod outcome;
pub mod sign;

pub use crate::dingtalk::client::{Client, ClientConfig, ClientError, RetryPolicy};
pub use crate::dingtalk::draft::{Draft, MsgType, compose};
pub use crate::dingtalk::limits::{MAX_BODY_BYTES, body, fits_uncut};
pub use crate::dingtalk::message::{
    BtnOrientation, Button, Buttons, FeedLink, Mentions, Message, MessageError,
};
pub use crate::dingtalk::outcome::{Outcome, Rejection, THROTTLE_PAUSE, Verdict};
pub use crate::dingtalk::sign::WebhookError;

use crate::config::{RobotConfig, Webhook};
use crate::secret::Secret;

/// One custom robot: where to send and what its security settings require.
///
/// `Debug` shows neither the webhook (it embeds the access token) nor the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Robot {
    /// The full webhook URL, `access_token` included, without `timestamp`/`sign`.
    pub webhook: Secret,
    /// The signing secret (`SEC…`) when the robot has signing (加签) on.
    pub secret: Option<Secret>,
    /// The robot's keywords when it has keyword security on; messages get the first one added to
    /// their text when they contain none.
    pub keywords: Vec<String>,
}

impl Robot {
    /// The robot a `robots:` entry describes; `None` for the `stdout` and `console` dry-run
    /// robots, which print instead of sending.
    pub fn from_config(config: &RobotConfig) -> Option<Robot> {
        match &config.webhook {
            Webhook::Stdout | Webhook::Console => None,
            Webhook::Url(webhook) => Some(Robot {
                webhook: webhook.clone(),
                secret: config.secret.clone(),
                keywords: config.keywords.clone(),
            }),
        }
    }

    /// Checks that the webhook is an http(s) URL with a host.
    ///
    /// # Errors
    /// A [`WebhookError`], which never contains the URL.
    pub fn validate(&self) -> Result<(), WebhookError> {
        sign::parse_webhook(&self.webhook).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::{RobotConfig, Webhook};
    use crate::dingtalk::Robot;
    use crate::secret::Secret;

    #[test]
    fn robot_debug_shows_no_secret() {
        let robot = Robot {
            webhook: Secret::new("https://oapi.dingtalk.com/robot/send?access_token=tok123"),
            secret: Some(Secret::new("SEC000test")),
            keywords: vec!["alert".into()],
        };
        let debug = format!("{robot:?}");
        assert!(
            !debug.contains("tok123") && !debug.contains("SEC000"),
            "{debug}"
        );
        assert!(debug.contains("alert"));
    }

    #[test]
    fn a_url_robot_config_becomes_a_robot_and_stdout_does_not() {
        let mut config = RobotConfig {
            name: "ops".into(),
            webhook: Webhook::Url(Secret::new("https://h.example/robot/send?access_token=t")),
            secret: Some(Secret::new("SECx")),
            keywords: vec!["alert".into()],
            per_minute: 20,
            window: Duration::from_secs(60),
            linger: Duration::from_secs(2),
            throttle_pause: Duration::from_secs(600),
            msgtype: crate::event::MsgType::Markdown,
            summary_title: None,
            timeout: Duration::from_secs(10),
            backoff_max: Duration::from_secs(30),
        };
        let robot = Robot::from_config(&config).unwrap();
        assert_eq!(
            robot.webhook.expose(),
            "https://h.example/robot/send?access_token=t"
        );
        assert_eq!(robot.secret, Some(Secret::new("SECx")));
        assert_eq!(robot.keywords, ["alert"]);
        config.webhook = Webhook::Stdout;
        assert!(Robot::from_config(&config).is_none());
        config.webhook = Webhook::Console;
        assert!(Robot::from_config(&config).is_none());
    }
}
