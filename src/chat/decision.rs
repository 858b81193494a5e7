//! `Decision`: what to do with one robot message, before anything reaches the daemon. Pure.
//!
//! The order matters: permission first (a refused sender learns nothing else, not even the
//! command list), then parsing (a mistake is answered with the usage), then `help` (answered
//! here: the daemon never sees it). Only a permitted, well-formed command is forwarded.

use crate::chat::command::{Command, help_text, parse};
use crate::chat::permit::{Denial, Permit, permit};
use crate::chat::robot_message::RobotMessage;
use crate::config::ChatAllow;

/// What to do with a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Answer with `text` right away; nothing reaches the daemon.
    Reply {
        /// The reply.
        text: String,
        /// Why it is answered here.
        why: LocalAnswer,
    },
    /// Hand the command to the daemon.
    Forward(Command),
}

/// Why a message is answered without the daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalAnswer {
    /// The sender may not command from there.
    Denied(Denial),
    /// The text is not a valid command.
    Invalid,
    /// `help`.
    Help,
}

impl LocalAnswer {
    /// The metric label of the outcome: `denied`, `invalid` or `help`.
    pub fn label(self) -> &'static str {
        match self {
            LocalAnswer::Denied(_) => "denied",
            LocalAnswer::Invalid => "invalid",
            LocalAnswer::Help => "help",
        }
    }
}

/// Decides what to do with `message`.
pub fn decide(allow: &ChatAllow, message: &RobotMessage) -> Decision {
    if let Permit::Denied(denial) = permit(allow, &message.author, &message.conversation) {
        return Decision::Reply {
            text: refusal(&message.author.nick),
            why: LocalAnswer::Denied(denial),
        };
    }
    match parse(&message.text) {
        Ok(Command::Help) => Decision::Reply {
            text: help_text(),
            why: LocalAnswer::Help,
        },
        Ok(command) => Decision::Forward(command),
        Err(err) => Decision::Reply {
            text: err.to_string(),
            why: LocalAnswer::Invalid,
        },
    }
}

/// The polite refusal: says no, and who to ask; names nobody who is allowed.
pub fn refusal(nick: &str) -> String {
    let nick = if nick.is_empty() { "there" } else { nick };
    format!(
        "抱歉，{nick}，你没有权限在这里操作 dingtail，请联系管理员把你加入 chat.allow。\n\
         Sorry {nick}, you are not allowed to command dingtail here; an admin can add you to \
         chat.allow."
    )
}

#[cfg(test)]
mod tests {
    use crate::chat::command::{Command, help_text};
    use crate::chat::decision::{Decision, LocalAnswer, decide};
    use crate::chat::permit::Denial;
    use crate::chat::robot_message::RobotMessage;
    use crate::chat::robot_message::tests::group_text;
    use crate::config::ChatAllow;

    fn message(text: &str, staff_id: &str) -> RobotMessage {
        let mut value = group_text(text);
        value["senderStaffId"] = serde_json::json!(staff_id);
        RobotMessage::parse(value.to_string().as_bytes()).unwrap()
    }

    fn allow() -> ChatAllow {
        ChatAllow {
            users: vec!["0123".into()],
            conversations: vec![],
            admins_only: false,
        }
    }

    #[test]
    fn a_permitted_command_is_forwarded() {
        assert_eq!(
            decide(&allow(), &message(" status", "0123")),
            Decision::Forward(Command::Status)
        );
    }

    #[test]
    fn a_denied_sender_gets_a_polite_refusal_whatever_they_typed() {
        for text in ["mute nginx 1h", "help", "gibberish", ""] {
            let Decision::Reply { text: reply, why } = decide(&allow(), &message(text, "0999"))
            else {
                panic!("{text:?} was forwarded");
            };
            assert_eq!(why, LocalAnswer::Denied(Denial::User));
            assert!(
                reply.contains("张三") && reply.contains("not allowed"),
                "{reply}"
            );
            assert!(!reply.contains("0123"), "names nobody allowed: {reply}");
        }
    }

    #[test]
    fn help_and_mistakes_are_answered_here() {
        assert_eq!(
            decide(&allow(), &message("帮助", "0123")),
            Decision::Reply {
                text: help_text(),
                why: LocalAnswer::Help
            }
        );
        let Decision::Reply { text, why } = decide(&allow(), &message("mute x", "0123")) else {
            panic!("forwarded");
        };
        assert_eq!(why, LocalAnswer::Invalid);
        assert!(text.contains("For how long?"), "{text}");
    }
}
