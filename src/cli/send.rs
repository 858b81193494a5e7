//! `dingtail send`: one message to one robot, for scripts and cron jobs.
//!
//! The flags map one to one onto `dingtalk::Message`; everything DingTalk-specific (signing,
//! keywords, mentions, size) is the library's. This file only reads the flags (and stdin for a
//! body of `-`), runs one `Client::send` with retries, and turns the `Outcome` into an exit
//! status a script can branch on (`cli::exit`): 0 delivered, 1 invalid config (`--robot`), 2
//! usage error or unreadable config, 3 rejected by DingTalk, 4 network failure after retries, 5
//! throttled (or, with `--robot`, refused because the robot is blocked or out of budget). The
//! webhook and the secret are never printed: they come in as `Secret`s and errors about them do
//! not echo them.
//!
//! `--robot NAME [-c CONFIG]` sends through a robot of the config instead (`cli::robot`): its
//! webhook, secret, keywords and rate history.

// This is the command line: it reports to the user on stderr (and prints the body for --dry-run).
#![allow(clippy::print_stderr, clippy::print_stdout)]

use std::io::Read;
use std::process::ExitCode;
use std::time::Duration;

use std::path::PathBuf;

use clap::ValueEnum;

use crate::cli::exit::Exit;
use crate::cli::robot::exit_of;
use crate::config::DEFAULT_CONFIG_PATH;
use crate::dingtalk::{
    BtnOrientation, Button, Buttons, Client, ClientConfig, FeedLink, Mentions, Message,
    RetryPolicy, Robot, body,
};
use crate::secret::Secret;

/// Arguments of `dingtail send` (boxed: the flags are many, and `Command` stays small).
#[derive(Debug, clap::Args)]
pub struct SendArgs {
    #[command(flatten)]
    flags: Box<SendFlags>,
}

/// The flags of `dingtail send`.
///
/// Message kinds: `--text T` alone sends a text message; `--markdown TEXT --title T`;
/// `--link --title T --text T --message-url U [--pic-url U]`;
/// `--action-card --title T --text MD (--single-title T --single-url U | --button TITLE=URL...)
/// [--btn-orientation vertical|horizontal]`; `--feed-card --item TITLE=MSGURL[=PICURL]...`.
#[derive(Debug, clap::Args)]
#[command(
    group(clap::ArgGroup::new("kind").args(["markdown", "link", "action_card", "feed_card"])),
    after_help = "Message kinds:\n  \
        --text T\n  \
        --markdown TEXT --title T\n  \
        --link --title T --text T --message-url URL [--pic-url URL]\n  \
        --action-card --title T --text MARKDOWN (--single-title T --single-url URL | \
        --button TITLE=URL...) [--btn-orientation horizontal]\n  \
        --feed-card --item TITLE=MSGURL[=PICURL]...\n\
        A body of '-' (--text - or --markdown -) is read from stdin.\n\n\
        --robot NAME [-c CONFIG] sends through a robot of the config (its webhook, secret, \
        keywords and rate history) instead of --webhook/--secret/--keyword; it refuses (exit 5) \
        when the robot is throttled or has spent its minute budget.\n\n\
        Exit status: 0 delivered, 1 invalid config (--robot), 2 usage error or unreadable \
        config, 3 rejected by DingTalk (errcode and errmsg printed), 4 network failure after \
        retries, 5 throttled or refused by the robot's budget."
)]
struct SendFlags {
    /// Send through this robot of the config (its webhook, secret, keywords and rate history;
    /// DINGTAIL_WEBHOOK and DINGTAIL_SECRET are then ignored).
    #[arg(long, value_name = "NAME", conflicts_with = "keywords")]
    robot: Option<String>,
    /// The main config file (with --robot).
    #[arg(short = 'c', long = "config", default_value = DEFAULT_CONFIG_PATH, requires = "robot")]
    config: PathBuf,

    /// The robot's webhook URL, including its access_token.
    #[arg(
        long,
        env = "DINGTAIL_WEBHOOK",
        hide_env_values = true,
        value_name = "URL",
        value_parser = secret_value
    )]
    webhook: Option<Secret>,
    /// The robot's signing secret (SEC…), when signing (加签) is on.
    #[arg(
        long,
        env = "DINGTAIL_SECRET",
        hide_env_values = true,
        value_name = "SECRET",
        value_parser = secret_value
    )]
    secret: Option<Secret>,
    /// A keyword of the robot's keyword security; the first is added to the text when it
    /// contains none (repeatable).
    #[arg(long = "keyword", value_name = "K")]
    keywords: Vec<String>,

    /// Send a text message with this content; with --link or --action-card, their text.
    #[arg(long, value_name = "TEXT", allow_hyphen_values = true)]
    text: Option<String>,
    /// Send a markdown message with this text (needs --title).
    #[arg(
        long,
        value_name = "TEXT",
        requires = "title",
        allow_hyphen_values = true
    )]
    markdown: Option<String>,
    /// Send a link message (needs --title, --text, --message-url; optional --pic-url).
    #[arg(long, requires_all = ["title", "text", "message_url"])]
    link: bool,
    /// Send an action card (needs --title, --text and either --single-title/--single-url or
    /// --button).
    #[arg(long = "action-card", requires_all = ["title", "text"])]
    action_card: bool,
    /// Send a feed card (needs at least one --item).
    #[arg(long = "feed-card", requires = "items")]
    feed_card: bool,

    /// Title of a markdown, link or action card message (shown in previews).
    #[arg(long, value_name = "T")]
    title: Option<String>,
    /// Where a link message goes when clicked.
    #[arg(long = "message-url", value_name = "URL")]
    message_url: Option<String>,
    /// Picture of a link message.
    #[arg(long = "pic-url", value_name = "URL", default_value = "")]
    pic_url: String,
    /// Action card: the label of its single whole-card button.
    #[arg(long = "single-title", value_name = "T", requires = "single_url")]
    single_title: Option<String>,
    /// Action card: where its single button goes.
    #[arg(long = "single-url", value_name = "URL", requires = "single_title")]
    single_url: Option<String>,
    /// Action card: one of several independent buttons (repeatable).
    #[arg(
        long = "button",
        value_name = "TITLE=URL",
        conflicts_with = "single_title"
    )]
    buttons: Vec<String>,
    /// Action card: button layout.
    #[arg(long = "btn-orientation", value_enum, default_value_t = Orientation::Vertical)]
    btn_orientation: Orientation,
    /// Feed card: one entry (repeatable). The title may not contain '='; PICURL starts at the
    /// last '=http://' or '=https://'.
    #[arg(long = "item", value_name = "TITLE=MSGURL[=PICURL]")]
    items: Vec<String>,

    /// @-mention the group member with this mobile number (repeatable).
    #[arg(long = "at-mobile", value_name = "M")]
    at_mobiles: Vec<String>,
    /// @-mention the DingTalk user with this userId (repeatable).
    #[arg(long = "at-user", value_name = "ID")]
    at_users: Vec<String>,
    /// @-mention everyone in the group.
    #[arg(long = "at-all")]
    at_all: bool,

    /// Retries after a network failure, HTTP 5xx or a busy answer (-1, 500100).
    #[arg(long, value_name = "N", default_value_t = 3)]
    retries: u32,
    /// Limit for each attempt (e.g. 10s, 500ms).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Wait before the first retry; doubles each time, with jitter (e.g. 1s, 50ms).
    #[arg(long = "retry-delay", value_name = "DURATION", default_value = "1s", value_parser = humantime::parse_duration)]
    retry_delay: Duration,
    /// Print the JSON body that would be sent and exit without sending.
    #[arg(long = "dry-run")]
    dry_run: bool,
}

/// Wraps the webhook and the secret as soon as they are parsed, so `Debug` of the arguments
/// cannot show them.
fn secret_value(value: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::new(value))
}

/// `--btn-orientation` values.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Orientation {
    /// Buttons one under the other.
    Vertical,
    /// Buttons side by side.
    Horizontal,
}

/// Runs `dingtail send` and returns its exit status.
pub fn run(args: SendArgs) -> ExitCode {
    match send(*args.flags) {
        Ok(()) => Exit::Ok.into(),
        Err(Failure { status, message }) => {
            if !message.is_empty() {
                eprintln!("dingtail send: {message}");
            }
            status.into()
        }
    }
}

/// Why the send did not deliver; an empty message was printed already.
struct Failure {
    status: Exit,
    message: String,
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        status: Exit::Usage,
        message: message.into(),
    }
}

fn send(mut args: SendFlags) -> Result<(), Failure> {
    let message = build_message(&mut args)?;
    if let Some(name) = args.robot.take() {
        return send_robot(&args, &name, &message);
    }
    let webhook = args
        .webhook
        .take()
        .filter(|w| !w.expose().trim().is_empty());
    let has_webhook = webhook.is_some();
    let robot = Robot {
        webhook: webhook.unwrap_or_else(|| Secret::new("")),
        secret: args.secret.take().filter(|s| !s.is_empty()),
        keywords: args.keywords.clone(),
    };
    if args.dry_run {
        let json = body(&robot.keywords, &message).map_err(|e| usage(e.to_string()))?;
        println!("{json}");
        return Ok(());
    }
    if !has_webhook {
        return Err(usage(
            "no webhook: pass --webhook URL or set DINGTAIL_WEBHOOK",
        ));
    }
    robot.validate().map_err(|e| usage(e.to_string()))?;
    body(&robot.keywords, &message).map_err(|e| usage(e.to_string()))?;
    let client = Client::new(ClientConfig {
        connect_timeout: args.timeout.min(Duration::from_secs(5)),
        request_timeout: args.timeout,
    })
    .map_err(|e| usage(format!("{e:#}")))?;
    let policy = RetryPolicy {
        max_attempts: args.retries.saturating_add(1),
        base_delay: args.retry_delay,
        max_delay: args
            .retry_delay
            .saturating_mul(30)
            .max(Duration::from_secs(1)),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| usage(format!("cannot start the async runtime: {e}")))?;
    let outcome = runtime.block_on(client.send(&robot, &message, policy));
    match exit_of(&outcome) {
        Exit::Ok => Ok(()),
        Exit::Network => Err(Failure {
            status: Exit::Network,
            message: format!(
                "{outcome} (after {})",
                crate::noun::count(policy.max_attempts, "attempt")
            ),
        }),
        status => Err(Failure {
            status,
            message: outcome.to_string(),
        }),
    }
}

/// `--robot NAME`: through a robot of the config, under its recorded budget.
fn send_robot(args: &SendFlags, name: &str, message: &Message) -> Result<(), Failure> {
    // clap cannot tell `--webhook` from `DINGTAIL_WEBHOOK`; only the flags are refused.
    let explicit = std::env::args().any(|arg| {
        ["--webhook", "--secret"]
            .iter()
            .any(|flag| arg == *flag || arg.starts_with(&format!("{flag}=")))
    });
    if explicit {
        return Err(usage(
            "--webhook and --secret cannot be combined with --robot (the robot's come from the config)",
        ));
    }
    let config = crate::cli::load_config(&args.config).map_err(|status| Failure {
        status,
        message: String::new(),
    })?;
    if args.dry_run {
        let robot = crate::cli::robot::find(&config, name).map_err(|failure| Failure {
            status: failure.exit,
            message: failure.message,
        })?;
        let json = body(&robot.keywords, message).map_err(|e| usage(e.to_string()))?;
        println!("{json}");
        return Ok(());
    }
    let policy = RetryPolicy {
        max_attempts: args.retries.saturating_add(1),
        base_delay: args.retry_delay,
        max_delay: args
            .retry_delay
            .saturating_mul(30)
            .max(Duration::from_secs(1)),
    };
    crate::cli::robot::send(&config, name, message, policy, args.timeout)
        .map(drop)
        .map_err(|failure| Failure {
            status: failure.exit,
            message: failure.message,
        })
}

/// The message the flags describe, with stdin read for a body of `-`.
fn build_message(args: &mut SendFlags) -> Result<Message, Failure> {
    let at = Mentions {
        mobiles: args.at_mobiles.clone(),
        user_ids: args.at_users.clone(),
        all: args.at_all,
    };
    let text = args.text.take().map(read_stdin_if_dash).transpose()?;
    let title = args.title.take();
    let message = if let Some(markdown) = args.markdown.take() {
        if text.is_some() {
            return Err(usage("--text cannot be combined with --markdown"));
        }
        Message::markdown(
            title.unwrap_or_default(),
            read_stdin_if_dash(markdown)?,
            Mentions::default(),
        )
    } else if args.link {
        Message::link(
            title.unwrap_or_default(),
            text.unwrap_or_default(),
            args.message_url.take().unwrap_or_default(),
            std::mem::take(&mut args.pic_url),
        )
    } else if args.action_card {
        let buttons = match (args.single_title.take(), args.single_url.take()) {
            (Some(title), Some(url)) => Buttons::Single { title, url },
            _ if !args.buttons.is_empty() => Buttons::Several(
                args.buttons
                    .iter()
                    .map(|b| parse_button(b))
                    .collect::<Result<_, _>>()?,
            ),
            _ => {
                return Err(usage(
                    "--action-card needs --single-title and --single-url, or --button TITLE=URL",
                ));
            }
        };
        let mut card =
            Message::action_card(title.unwrap_or_default(), text.unwrap_or_default(), buttons);
        if let Message::ActionCard { orientation, .. } = &mut card {
            *orientation = match args.btn_orientation {
                Orientation::Vertical => BtnOrientation::Vertical,
                Orientation::Horizontal => BtnOrientation::Horizontal,
            };
        }
        card
    } else if args.feed_card {
        Message::feed_card(
            args.items
                .iter()
                .map(|i| parse_item(i))
                .collect::<Result<_, _>>()?,
        )
    } else if let Some(text) = text {
        Message::text(text, Mentions::default())
    } else {
        return Err(usage(
            "nothing to send: give --text, --markdown, --link, --action-card or --feed-card",
        ));
    };
    let message = message.mention(at).map_err(|e| usage(e.to_string()))?;
    message.validate().map_err(|e| usage(e.to_string()))?;
    Ok(message)
}

fn read_stdin_if_dash(value: String) -> Result<String, Failure> {
    if value != "-" {
        return Ok(value);
    }
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|e| usage(format!("cannot read the message from stdin: {e}")))?;
    Ok(text)
}

/// `TITLE=URL`.
fn parse_button(spec: &str) -> Result<Button, Failure> {
    match spec.split_once('=') {
        Some((title, url)) if !title.is_empty() && !url.is_empty() => Ok(Button {
            title: title.to_owned(),
            url: url.to_owned(),
        }),
        _ => Err(usage(format!("--button {spec:?}: expected TITLE=URL"))),
    }
}

/// `TITLE=MSGURL[=PICURL]`; PICURL starts at the last `=http://` or `=https://`.
fn parse_item(spec: &str) -> Result<FeedLink, Failure> {
    let invalid = || usage(format!("--item {spec:?}: expected TITLE=MSGURL[=PICURL]"));
    let (title, rest) = spec.split_once('=').ok_or_else(invalid)?;
    let pic_at = ["=http://", "=https://"]
        .iter()
        .filter_map(|marker| rest.rfind(marker))
        .max();
    let (message_url, pic_url) = match pic_at {
        Some(at) => (
            rest.get(..at).unwrap_or_default(),
            rest.get(at + 1..).unwrap_or_default(),
        ),
        None => (rest, ""),
    };
    if title.is_empty() || message_url.is_empty() {
        return Err(invalid());
    }
    Ok(FeedLink {
        title: title.to_owned(),
        message_url: message_url.to_owned(),
        pic_url: pic_url.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::Cli;
    use crate::cli::send::{parse_button, parse_item};

    #[test]
    fn debug_of_the_arguments_shows_neither_webhook_nor_secret() {
        let cli = Cli::try_parse_from([
            "dingtail",
            "send",
            "--webhook",
            "https://h.example/robot/send?access_token=zz9token",
            "--secret",
            "SECzz9",
            "--text",
            "x",
        ])
        .unwrap();
        let debug = format!("{cli:?}");
        assert!(!debug.contains("zz9"), "{debug}");
    }

    #[test]
    fn feed_items_split_title_message_url_and_picture() {
        let item = parse_item("web-3=https://g.example/d?a=1&b=2=https://img.example/a.png")
            .ok()
            .unwrap();
        assert_eq!(item.title, "web-3");
        assert_eq!(item.message_url, "https://g.example/d?a=1&b=2");
        assert_eq!(item.pic_url, "https://img.example/a.png");
        let item = parse_item("db=https://g.example/2").ok().unwrap();
        assert_eq!(
            (item.message_url.as_str(), item.pic_url.as_str()),
            ("https://g.example/2", "")
        );
        assert!(parse_item("no-url").is_err());
        assert!(parse_item("=https://x").is_err());
    }

    #[test]
    fn buttons_split_at_the_first_equals_sign() {
        let button = parse_button("Log=https://ci.example/42?x=1").ok().unwrap();
        assert_eq!(button.title, "Log");
        assert_eq!(button.url, "https://ci.example/42?x=1");
        assert!(parse_button("Log").is_err());
    }
}
