//! Unit tests of `crate::dingtalk::message`.
use serde_json::{Value, json};

use crate::dingtalk::message::{
    BtnOrientation, Button, Buttons, FeedLink, Mentions, Message, MessageError,
};

fn json_of(message: &Message) -> Value {
    serde_json::from_str(&message.to_json()).unwrap()
}

fn mobile(m: &str) -> Mentions {
    Mentions {
        mobiles: vec![m.into()],
        ..Mentions::default()
    }
}

#[test]
fn text_matches_the_spec_example() {
    let message = Message::text(
        "[ALERT] nginx 5xx rate high on web-3 @13800000000",
        mobile("13800000000"),
    );
    assert_eq!(
        json_of(&message),
        json!({"msgtype":"text",
             "text":{"content":"[ALERT] nginx 5xx rate high on web-3 @13800000000"},
             "at":{"atMobiles":["13800000000"],"atUserIds":[],"isAtAll":false}})
    );
}

#[test]
fn link_matches_the_spec_example() {
    let message = Message::link(
        "Disk almost full",
        "/var at 97% on db-1",
        "https://grafana.example/d/abc",
        "",
    );
    assert_eq!(
        json_of(&message),
        json!({"msgtype":"link",
             "link":{"title":"Disk almost full","text":"/var at 97% on db-1",
                     "messageUrl":"https://grafana.example/d/abc","picUrl":""}})
    );
}

#[test]
fn markdown_matches_the_spec_example() {
    let message = Message::markdown(
        "ERROR in payments",
        "#### ERROR in payments\n\n> 12 errors in 1 min\n\n@13800000000",
        mobile("13800000000"),
    );
    // The spec's example omits the empty `atUserIds`; we always send all three `at` fields.
    assert_eq!(
        json_of(&message),
        json!({"msgtype":"markdown",
             "markdown":{"title":"ERROR in payments","text":"#### ERROR in payments\n\n> 12 errors in 1 min\n\n@13800000000"},
             "at":{"atMobiles":["13800000000"],"atUserIds":[],"isAtAll":false}})
    );
}

#[test]
fn action_card_with_one_button_matches_the_spec_example() {
    let message = Message::action_card(
        "Build failed",
        "### Build #42 failed\n\nstage: test",
        Buttons::Single {
            title: "Open log".into(),
            url: "https://ci.example/42".into(),
        },
    );
    assert_eq!(
        json_of(&message),
        json!({"msgtype":"actionCard",
             "actionCard":{"title":"Build failed","text":"### Build #42 failed\n\nstage: test",
                           "btnOrientation":"0","singleTitle":"Open log","singleURL":"https://ci.example/42"}})
    );
}

#[test]
fn action_card_with_several_buttons_matches_the_spec_example() {
    let mut message = Message::action_card(
        "Build failed",
        "### Build #42 failed",
        Buttons::Several(vec![
            Button {
                title: "Log".into(),
                url: "https://ci.example/42/log".into(),
            },
            Button {
                title: "Retry".into(),
                url: "https://ci.example/42/retry".into(),
            },
        ]),
    );
    if let Message::ActionCard {
        orientation,
        hide_avatar,
        ..
    } = &mut message
    {
        *orientation = BtnOrientation::Horizontal;
        *hide_avatar = Some(false);
    }
    assert_eq!(
        json_of(&message),
        json!({"msgtype":"actionCard",
             "actionCard":{"title":"Build failed","text":"### Build #42 failed",
                           "btnOrientation":"1","hideAvatar":"0",
                           "btns":[{"title":"Log","actionURL":"https://ci.example/42/log"},
                                   {"title":"Retry","actionURL":"https://ci.example/42/retry"}]}})
    );
}

#[test]
fn feed_card_matches_the_spec_example() {
    let message = Message::feed_card(vec![
        FeedLink {
            title: "web-3: 5xx burst".into(),
            message_url: "https://grafana.example/1".into(),
            pic_url: "https://img.example/a.png".into(),
        },
        FeedLink {
            title: "db-1: disk 97%".into(),
            message_url: "https://grafana.example/2".into(),
            pic_url: "https://img.example/b.png".into(),
        },
    ]);
    assert_eq!(
        json_of(&message),
        json!({"msgtype":"feedCard",
             "feedCard":{"links":[
               {"title":"web-3: 5xx burst","messageURL":"https://grafana.example/1","picURL":"https://img.example/a.png"},
               {"title":"db-1: disk 97%","messageURL":"https://grafana.example/2","picURL":"https://img.example/b.png"}]}})
    );
}

#[test]
fn is_at_all_is_a_json_boolean() {
    let message = Message::text(
        "x",
        Mentions {
            all: true,
            ..Mentions::default()
        },
    );
    assert_eq!(json_of(&message)["at"]["isAtAll"], Value::Bool(true));
}

#[test]
fn mentions_on_link_and_feed_card_are_an_error() {
    let link = Message::link("t", "x", "https://a.example", "");
    assert_eq!(
        link.clone().mention(mobile("1")),
        Err(MessageError::MentionsUnsupported { msgtype: "link" })
    );
    assert_eq!(link.clone().mention(Mentions::default()), Ok(link));
    let feed = Message::feed_card(vec![]);
    assert!(matches!(
        feed.mention(mobile("1")),
        Err(MessageError::MentionsUnsupported {
            msgtype: "feedCard"
        })
    ));
    let text = Message::text("x", Mentions::default())
        .mention(mobile("1"))
        .unwrap();
    assert_eq!(text.at(), Some(&mobile("1")));
}

#[test]
fn empty_required_fields_are_named() {
    assert_eq!(
        Message::markdown("", "x", Mentions::default()).validate(),
        Err(MessageError::Empty {
            msgtype: "markdown",
            field: "title"
        })
    );
    assert_eq!(
        Message::action_card("t", "x", Buttons::Several(vec![])).validate(),
        Err(MessageError::Empty {
            msgtype: "actionCard",
            field: "btns"
        })
    );
    assert!(Message::text("x", Mentions::default()).validate().is_ok());
}
