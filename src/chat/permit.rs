//! `Permit`: whether a message's author may command the daemon from where they said it. Pure.
//!
//! Three checks, each skipped when its list is empty (the loader refuses an `allow` that checks
//! nothing): the conversation must be in `allow.conversations`, the sender's `senderStaffId` in
//! `allow.users` (outsiders have none, so they never pass this check), and with `admins_only`
//! the sender must administer the group. A denial names which check failed, for the log line;
//! the reply to the sender stays vague on purpose (it does not tell an outsider who is allowed).

use crate::chat::robot_message::{Author, Conversation};
use crate::config::ChatAllow;

/// The answer of [`permit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permit {
    /// The author may command.
    Granted,
    /// The author may not.
    Denied(Denial),
}

/// Which check refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denial {
    /// The conversation is not in `allow.conversations`.
    Conversation,
    /// The sender is not in `allow.users` (or is an outsider without a staff id).
    User,
    /// `admins_only` and the sender does not administer the group.
    NotAdmin,
}

impl Denial {
    /// The reason, for logs (names the setting, not its values).
    pub fn reason(self) -> &'static str {
        match self {
            Denial::Conversation => "the conversation is not in chat.allow.conversations",
            Denial::User => "the sender is not in chat.allow.users",
            Denial::NotAdmin => "chat.allow.admins_only and the sender is not a group admin",
        }
    }
}

/// Decides whether `author` may command the daemon from `conversation`.
pub fn permit(allow: &ChatAllow, author: &Author, conversation: &Conversation) -> Permit {
    if !allow.conversations.is_empty() && !allow.conversations.contains(&conversation.id) {
        return Permit::Denied(Denial::Conversation);
    }
    if !allow.users.is_empty()
        && !author
            .staff_id
            .as_ref()
            .is_some_and(|id| allow.users.contains(id))
    {
        return Permit::Denied(Denial::User);
    }
    if allow.admins_only && !author.is_admin {
        return Permit::Denied(Denial::NotAdmin);
    }
    Permit::Granted
}

#[cfg(test)]
mod tests {
    use crate::chat::permit::{Denial, Permit, permit};
    use crate::chat::robot_message::{Author, Conversation, ConversationKind};
    use crate::config::ChatAllow;

    fn author(staff_id: Option<&str>, is_admin: bool) -> Author {
        Author {
            nick: "张三".into(),
            staff_id: staff_id.map(str::to_owned),
            is_admin,
        }
    }

    fn conversation(id: &str) -> Conversation {
        Conversation {
            id: id.into(),
            kind: ConversationKind::Group,
            title: None,
        }
    }

    fn allow(users: &[&str], conversations: &[&str], admins_only: bool) -> ChatAllow {
        ChatAllow {
            users: users.iter().map(|s| (*s).to_owned()).collect(),
            conversations: conversations.iter().map(|s| (*s).to_owned()).collect(),
            admins_only,
        }
    }

    #[test]
    fn each_check_applies_only_when_set() {
        let ops = conversation("cidOps");
        let alice = author(Some("0123"), false);
        let cases = [
            (allow(&["0123"], &[], false), &alice, &ops, Permit::Granted),
            (
                allow(&["0999"], &[], false),
                &alice,
                &ops,
                Permit::Denied(Denial::User),
            ),
            (
                allow(&[], &["cidOps"], false),
                &alice,
                &ops,
                Permit::Granted,
            ),
            (
                allow(&[], &["cidOther"], false),
                &alice,
                &ops,
                Permit::Denied(Denial::Conversation),
            ),
            (
                allow(&[], &[], true),
                &alice,
                &ops,
                Permit::Denied(Denial::NotAdmin),
            ),
            (
                allow(&["0123"], &["cidOps"], true),
                &alice,
                &ops,
                Permit::Denied(Denial::NotAdmin),
            ),
        ];
        for (allow, author, conversation, want) in cases {
            assert_eq!(permit(&allow, author, conversation), want, "{allow:?}");
        }
        let admin = author(Some("0123"), true);
        assert_eq!(
            permit(&allow(&["0123"], &["cidOps"], true), &admin, &ops),
            Permit::Granted
        );
    }

    #[test]
    fn an_outsider_without_a_staff_id_never_passes_a_user_list() {
        let outsider = author(None, true);
        let ops = conversation("cidOps");
        assert_eq!(
            permit(&allow(&["0123"], &["cidOps"], false), &outsider, &ops),
            Permit::Denied(Denial::User)
        );
        // In an allowed conversation without a user list, the conversation is what counts.
        assert_eq!(
            permit(&allow(&[], &["cidOps"], false), &outsider, &ops),
            Permit::Granted
        );
    }
}
