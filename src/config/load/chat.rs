//! Validation of `chat:` (issue 16), the app robot through which a group answers back. It lives
//! beside `load` (a child module, so it uses the loader's `${VAR}` expansion and positions) to
//! keep the main loader short and this key's rules in one place.
//!
//! What it insists on, and why: the secret is a [`Secret`]; `listen` belongs to http mode only
//! and is required there; stream mode needs the client id; `api_base` is `https`, or `http` on
//! a loopback host (tests' stand-ins), never plain text across a network; and `allow` must
//! restrict something, because without it anyone who can message the robot could mute alerts.

use std::net::SocketAddr;

use crate::config::load::Loader;
use crate::config::raw::{RawChat, RawChatAllow};
use crate::config::span::Seg;
use crate::config::{ChatAllow, ChatConfig, ChatMode, is_loopback};
use crate::secret::Secret;
use crate::yaml_path;

/// DingTalk's open API, where Stream connections are opened.
pub const DEFAULT_API_BASE: &str = "https://api.dingtalk.com";

impl Loader<'_> {
    /// Validates `chat:`; `None` (with diagnostics) when it is unusable.
    pub(super) fn chat(&mut self, raw: &RawChat) -> Option<ChatConfig> {
        let at = |key: &str| yaml_path!["chat", key];
        let mode = raw
            .mode
            .as_deref()
            .map_or(Some("stream".to_owned()), |mode| {
                self.text(&at("mode"), mode)
            });
        let listen = raw.listen.as_deref().and_then(|listen| {
            let listen = self.text(&at("listen"), listen)?;
            match listen.parse::<SocketAddr>() {
                Ok(addr) => Some(addr),
                Err(_) => {
                    self.error_value(
                        &at("listen"),
                        format!(
                            "`chat.listen` must be an address like 0.0.0.0:9185, not `{listen}`"
                        ),
                    );
                    None
                }
            }
        });
        let mode = match mode.as_deref() {
            Some("stream") => {
                if raw.listen.is_some() {
                    self.error(
                        &at("listen"),
                        "`chat.listen` is for `mode: http`; stream mode opens its own connection",
                    );
                }
                Some(ChatMode::Stream)
            }
            Some("http") => match (listen, &raw.listen) {
                (Some(listen), _) => Some(ChatMode::Http { listen }),
                (None, Some(_)) => None,
                (None, None) => {
                    self.error(
                        &yaml_path!["chat"],
                        "`chat.mode: http` needs `listen:` (where DingTalk's callbacks arrive)",
                    );
                    None
                }
            },
            Some(other) => {
                self.error_value(
                    &at("mode"),
                    format!("`chat.mode` must be `stream` or `http`, not `{other}`"),
                );
                None
            }
            None => None,
        };
        let client_id = match &raw.client_id {
            Some(id) => self.text(&at("client_id"), id),
            None => Some(String::new()),
        };
        if mode == Some(ChatMode::Stream) && client_id.as_deref() == Some("") {
            self.error(
                &at(if raw.client_id.is_some() {
                    "client_id"
                } else {
                    "client_secret"
                }),
                "stream mode needs `chat.client_id` (the app's AppKey / Client ID)",
            );
        }
        let client_secret = self
            .text(&at("client_secret"), &raw.client_secret)
            .map(Secret::new);
        if client_secret.as_ref().is_some_and(Secret::is_empty) {
            // Never echo the value: it is the app's secret.
            self.error_value(&at("client_secret"), "`chat.client_secret` is empty");
        }
        let allow = self.chat_allow(raw.allow.as_ref());
        let api_base = self.api_base(raw.api_base.as_deref());
        let client_secret = client_secret.filter(|secret| !secret.is_empty());
        Some(ChatConfig {
            mode: mode?,
            client_id: client_id?,
            client_secret: client_secret?,
            allow: allow?,
            api_base: api_base?,
        })
    }

    fn chat_allow(&mut self, raw: Option<&RawChatAllow>) -> Option<ChatAllow> {
        let Some(raw) = raw else {
            self.error(
                &yaml_path!["chat"],
                "`chat` needs `allow:` with `users`, `conversations` or `admins_only: true`; \
                 otherwise anyone who can message the robot could mute alerts",
            );
            return None;
        };
        let mut ok = true;
        let mut users = Vec::new();
        for (i, user) in raw.users.iter().enumerate() {
            let path = yaml_path!["chat", "allow", "users", i];
            // serde_yaml keeps `0123` a string, so an unquoted number loses nothing.
            match self.id(&path, &user.text()) {
                Some(id) => users.push(id),
                None => ok = false,
            }
        }
        let mut conversations = Vec::new();
        for (i, conversation) in raw.conversations.iter().enumerate() {
            let path = yaml_path!["chat", "allow", "conversations", i];
            match self.id(&path, conversation) {
                Some(id) => conversations.push(id),
                None => ok = false,
            }
        }
        // `admins_only` alone is accepted (issue 16 names it as a restriction) but warned about
        // by `admins_only_warning`: anyone can make a group of their own and be its admin there.
        if ok && users.is_empty() && conversations.is_empty() && !raw.admins_only {
            self.error(
                &yaml_path!["chat", "allow"],
                "`chat.allow` restricts nobody: name `users`, `conversations` or set \
                 `admins_only: true`",
            );
            ok = false;
        }
        ok.then_some(ChatAllow {
            users,
            conversations,
            admins_only: raw.admins_only,
        })
    }

    /// One staff or conversation id: expanded, trimmed, not empty.
    fn id(&mut self, path: &[Seg], raw: &str) -> Option<String> {
        let id = self.text(path, raw)?.trim().to_owned();
        if id.is_empty() {
            self.error_value(path, "empty id");
            return None;
        }
        Some(id)
    }

    fn api_base(&mut self, raw: Option<&str>) -> Option<url::Url> {
        let path = yaml_path!["chat", "api_base"];
        let text = match raw {
            Some(raw) => self.text(&path, raw)?,
            None => DEFAULT_API_BASE.to_owned(),
        };
        let url = match url::Url::parse(text.trim()) {
            Ok(url) if url.host().is_some() => url,
            _ => {
                self.error_value(&path, format!("`chat.api_base` is not a URL: `{text}`"));
                return None;
            }
        };
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" => {
                self.error_value(
                    &path,
                    "`chat.api_base` must be https (plain http only to a loopback host)",
                );
                return None;
            }
            scheme => {
                self.error_value(
                    &path,
                    format!("`chat.api_base` must be an https URL, not `{scheme}:`"),
                );
                return None;
            }
        }
        if url.query().is_some() || url.fragment().is_some() {
            self.error_value(&path, "`chat.api_base` takes no query or fragment");
            return None;
        }
        Some(url)
    }
}

/// The warning `check` and `run` give when `chat.allow` restricts by `admins_only` alone: anyone
/// can create a group, add the robot and be its admin there, so name `users` or `conversations`.
pub fn admins_only_warning(chat: &ChatConfig) -> Option<String> {
    let allow = &chat.allow;
    (allow.admins_only && allow.users.is_empty() && allow.conversations.is_empty()).then(|| {
        "chat: `allow.admins_only` alone lets the admin of any group the robot is added to \
         command dingtail (anyone can create a group and be its admin); name `users` or \
         `conversations` too"
            .to_owned()
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::load::parse;
    use crate::config::{ChatConfig, ChatMode, Diagnostics};

    const INPUTS: &str = "inputs:\n  app:\n    paths: /var/log/app.log\n";

    fn env(name: &str) -> Option<String> {
        match name {
            "APP_SECRET" => Some("appsecret-zz9".into()),
            "APP_KEY" => Some("dingabc".into()),
            _ => None,
        }
    }

    fn check(chat: &str) -> Result<Option<ChatConfig>, Diagnostics> {
        let text = format!("{INPUTS}{chat}");
        parse(Path::new("/etc/dingtail/dingtail.yaml"), &text, &env).map(|c| c.chat)
    }

    fn errors(chat: &str) -> Vec<String> {
        check(chat)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn no_chat_key_means_no_chat() {
        assert_eq!(check("").unwrap(), None);
    }

    #[test]
    fn a_stream_config_loads_with_expansion_and_defaults() {
        let chat = check(
            "chat:\n  client_id: ${APP_KEY}\n  client_secret: ${APP_SECRET}\n  allow:\n    users: [0123, manager42, 42]\n    conversations: [cidAbC==]\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(chat.mode, ChatMode::Stream);
        assert_eq!(chat.client_id, "dingabc");
        assert_eq!(chat.client_secret.expose(), "appsecret-zz9");
        assert_eq!(chat.allow.users, ["0123", "manager42", "42"]);
        assert_eq!(chat.allow.conversations, ["cidAbC=="]);
        assert!(!chat.allow.admins_only);
        assert_eq!(chat.api_base.as_str(), "https://api.dingtalk.com/");
        let debug = format!("{chat:?}");
        assert!(!debug.contains("zz9"), "{debug}");
    }

    #[test]
    fn an_http_config_loads_with_its_listen_address_and_a_loopback_api_base() {
        let chat = check(
            "chat:\n  mode: http\n  client_secret: s3cret\n  listen: 127.0.0.1:9185\n  allow: {users: [u1], admins_only: true}\n  api_base: http://127.0.0.1:4000\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            chat.mode,
            ChatMode::Http {
                listen: "127.0.0.1:9185".parse().unwrap()
            }
        );
        assert_eq!(chat.client_id, "");
        assert!(chat.allow.admins_only);
        assert_eq!(chat.api_base.as_str(), "http://127.0.0.1:4000/");
    }

    #[test]
    fn bad_chat_configs_point_at_each_problem() {
        let cases: &[(&str, &str)] = &[
            (
                "chat:\n  mode: carrier-pigeon\n  client_id: x\n  client_secret: s\n  allow: {users: [u1], admins_only: true}\n",
                "dingtail.yaml:5:9: `chat.mode` must be `stream` or `http`, not `carrier-pigeon`",
            ),
            (
                "chat:\n  mode: http\n  client_secret: s\n  allow: {users: [u1], admins_only: true}\n",
                "dingtail.yaml:4:1: `chat.mode: http` needs `listen:`",
            ),
            (
                "chat:\n  mode: http\n  listen: everywhere\n  client_secret: s\n  allow: {users: [u1], admins_only: true}\n",
                "dingtail.yaml:6:11: `chat.listen` must be an address",
            ),
            (
                "chat:\n  client_id: x\n  listen: 127.0.0.1:1\n  client_secret: s\n  allow: {users: [u1], admins_only: true}\n",
                "dingtail.yaml:6:3: `chat.listen` is for `mode: http`",
            ),
            (
                "chat:\n  client_secret: s\n  allow: {users: [u1], admins_only: true}\n",
                "dingtail.yaml:5:3: stream mode needs `chat.client_id`",
            ),
            (
                "chat:\n  client_id: x\n  client_secret: ${NOPE}\n  allow: {users: [u1], admins_only: true}\n",
                "dingtail.yaml:6:18: environment variable `NOPE` is not set",
            ),
            (
                "chat:\n  client_id: x\n  client_secret: \"\"\n  allow: {users: [u1], admins_only: true}\n",
                "dingtail.yaml:6:18: `chat.client_secret` is empty",
            ),
            (
                "chat:\n  client_id: x\n  client_secret: s\n",
                "dingtail.yaml:4:1: `chat` needs `allow:`",
            ),
            (
                "chat:\n  client_id: x\n  client_secret: s\n  allow: {users: []}\n",
                "dingtail.yaml:7:3: `chat.allow` restricts nobody",
            ),
            (
                "chat:\n  client_id: x\n  client_secret: s\n  allow:\n    conversations: [\" \"]\n",
                "dingtail.yaml:8:21: empty id",
            ),
            (
                "chat:\n  client_id: x\n  client_secret: s\n  allow: {users: [u1], admins_only: true}\n  api_base: http://api.example.com\n",
                "dingtail.yaml:8:13: `chat.api_base` must be https (plain http only to a loopback host)",
            ),
            (
                "chat:\n  client_id: x\n  client_secret: s\n  allow: {users: [u1], admins_only: true}\n  api_base: ws://127.0.0.1:9\n",
                "dingtail.yaml:8:13: `chat.api_base` must be an https URL, not `ws:`",
            ),
            (
                "chat:\n  client_id: x\n  client_secret: s\n  allow: {users: [u1], admins_only: true}\n  api_base: not a url\n",
                "dingtail.yaml:8:13: `chat.api_base` is not a URL",
            ),
            (
                "chat:\n  client_id: x\n  client_secret: s\n  allow: {users: [u1], admins_only: true}\n  api_bse: x\n",
                "did you mean `api_base`?",
            ),
        ];
        for (chat, want) in cases {
            let errs = errors(chat);
            assert!(
                errs.len() == 1 && errs[0].contains(want),
                "for {chat:?}: want one error with {want:?}, got {errs:#?}"
            );
        }
    }

    #[test]
    fn all_chat_problems_are_reported_together_and_the_secret_is_never_echoed() {
        let errs = errors(
            "chat:\n  mode: http\n  listen: nowhere\n  client_secret: zz9secret\n  allow:\n    users: [\"\"]\n  api_base: ftp://x\n",
        );
        assert_eq!(errs.len(), 3, "{errs:#?}");
        assert!(errs.iter().all(|e| !e.contains("zz9")), "{errs:#?}");
    }
}
