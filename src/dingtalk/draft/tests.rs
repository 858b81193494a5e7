//! Composing drafts: layouts per kind, exact rests when fitting, escaping of raw parts.

use crate::dingtalk::draft::{
    Body, DEFAULT_MAX_TEXT_BYTES, Draft, Fact, Heading, Link, Markup, MsgType, Note, Section,
    compose, cut_to, markdown, title,
};
use crate::dingtalk::escape::{
    self,
    tests::{HOSTILE, constructs},
};
use crate::dingtalk::{self, Buttons, Mentions, Message};
use crate::lang::Language;

fn section(name: &str, count: u64, samples: usize) -> Section {
    Section {
        heading: Heading::Named {
            name: name.into(),
            facts: vec!["warning".into(), format!("{count}×")],
        },
        facts: vec![Fact {
            label: "files".into(),
            items: vec!["/var/log/a.log".into()],
            more: None,
        }],
        samples: (0..samples).map(|i| format!("{name} sample {i}")).collect(),
        count,
        link: None,
    }
}

fn draft(title: &str, body: Body) -> Draft {
    Draft {
        title: title.into(),
        body,
        mentions: Mentions::default(),
        link: None,
        markup: Markup::Markdown,
        kind: MsgType::Markdown,
        language: Language::En,
        notes: Vec::new(),
    }
}

#[test]
fn one_event_is_its_title_and_text() {
    let draft = draft("oom title", Body::Event("sample killed".into()));
    assert_eq!(
        markdown(&draft, 20_000),
        "#### oom title\n\nsample killed\n"
    );
}

#[test]
fn a_summary_lists_sections_samples_and_exact_rests() {
    let draft = draft(
        "[warning] 12 alerts from 2 rules",
        Body::Summary(vec![section("a", 10, 2), section("b", 2, 2)]),
    );
    assert_eq!(
        markdown(&draft, 20_000),
        "#### \\[warning\\] 12 alerts from 2 rules\n\
         \n**a** · warning · 10×\n\nfiles: /var/log/a.log\n\n\
         - a sample 0\n- a sample 1\n- and 8 more\n\
         \n**b** · warning · 2×\n\nfiles: /var/log/a.log\n\n\
         - b sample 0\n- b sample 1\n"
    );
}

#[test]
fn a_summary_in_chinese() {
    let mut draft = draft(
        "【警告】web-1：2 条规则共 12 条告警",
        Body::Summary(vec![section("a", 10, 2)]),
    );
    draft.language = Language::ZhCn;
    if let Body::Summary(sections) = &mut draft.body {
        sections[0].facts[0].items.push("/var/log/b.log".into());
        sections[0].facts[0].more = Some(Language::ZhCn.and_more_items(3));
    }
    let text = markdown(&draft, 20_000);
    assert!(
        text.contains("files：/var/log/a.log、/var/log/b.log、另有 3 个\n"),
        "{text}"
    );
    assert!(text.contains("- 另有 8 条\n"), "{text}");
}

#[test]
fn sections_that_do_not_fit_are_counted_whole() {
    let sections: Vec<Section> = (0..40)
        .map(|i| section(&format!("r{i:02}"), i + 1, 3))
        .collect();
    let total: u64 = (1..=40).sum();
    let draft = draft(
        &format!("[warning] {total} alerts from 40 rules"),
        Body::Summary(sections),
    );
    let text = markdown(&draft, 2_000);
    assert!(text.len() <= 2_000);
    let shown: Vec<u64> = text
        .lines()
        .filter(|l| l.starts_with("**r"))
        .map(|l| {
            l.split(" · ")
                .nth(2)
                .unwrap()
                .trim_end_matches('×')
                .parse()
                .unwrap()
        })
        .collect();
    let footer = text.lines().last().unwrap();
    let words: Vec<&str> = footer.split(' ').collect();
    let n_rules: u64 = words[1].parse().unwrap();
    let n_alerts: u64 = words[4].trim_start_matches('(').parse().unwrap();
    assert_eq!(shown.len() as u64 + n_rules, 40, "{footer}");
    assert_eq!(shown.iter().sum::<u64>() + n_alerts, total, "{footer}");
}

#[test]
fn compose_shrinks_until_the_whole_request_fits() {
    // Quotes and newlines double in JSON and in hard breaks: the worst case for the budget.
    let noisy = "\"q\" ".repeat(200);
    let sections: Vec<Section> = (0..60)
        .map(|r| Section {
            samples: (0..8)
                .map(|s| format!("{r}-{s} {noisy}\n{noisy}"))
                .collect(),
            ..section(&format!("rule-{r:02}"), 8, 0)
        })
        .collect();
    let mut draft = draft(
        "[warning] 480 alerts from 60 rules",
        Body::Summary(sections),
    );
    draft.mentions = Mentions {
        mobiles: vec!["13800000000".into()],
        ..Mentions::default()
    };
    let keywords = vec!["告警".to_string()];
    let unshrunk = Message::markdown(
        draft.title.clone(),
        markdown(&draft, DEFAULT_MAX_TEXT_BYTES),
        Mentions::default(),
    );
    assert!(
        !dingtalk::fits_uncut(&keywords, &unshrunk),
        "the test needs a big draft"
    );
    for kind in [MsgType::Markdown, MsgType::Text] {
        let message = compose(&draft, kind, &keywords);
        assert_eq!(message.msgtype(), kind.as_str());
        assert!(dingtalk::fits_uncut(&keywords, &message));
        let body = dingtalk::body(&keywords, &message).unwrap();
        assert!(body.len() <= dingtalk::MAX_BODY_BYTES);
        assert!(!body.contains("… truncated"), "shrunk, not cut");
    }
}

#[test]
fn raw_parts_are_escaped_and_never_put_in_code() {
    let link = Link {
        title: "run[book]".into(),
        url: "https://wiki.example/r (1)".into(),
    };
    for hostile in HOSTILE {
        let mut with_facts = section("sshd", 3, 1);
        with_facts.facts = vec![Fact {
            label: "files".into(),
            items: vec![(*hostile).into()],
            more: None,
        }];
        with_facts.link = Some(link.clone());
        // Titles reach a draft as plain one-line text.
        let draft = draft(&escape::title(hostile), Body::Summary(vec![with_facts]));
        let text = markdown(&draft, 20_000);
        let found = constructs(&text);
        // The layout's own: a heading, the rule name in bold, paragraphs, the link, the samples.
        let expected = [
            "Heading",
            "Paragraph",
            "Strong",
            "Paragraph",
            "Paragraph",
            "Link",
            "List",
            "Item",
            "Item",
        ];
        assert_eq!(found, expected, "{hostile:?}:\n{text}");
        assert!(!text.contains('`') || text.contains("\\`"), "{text}");
    }
}

#[test]
fn plain_samples_are_escaped_in_markdown_and_markdown_shown_as_is_in_text() {
    let mut plain = draft(
        "t",
        Body::Event("[click](http://evil.example) **x**".into()),
    );
    plain.markup = Markup::Plain;
    assert_eq!(
        constructs(&markdown(&plain, 20_000)),
        ["Heading", "Paragraph"],
        "a text-message rendering forms nothing in markdown"
    );
    let Message::Text { content, .. } = compose(&plain, MsgType::Text, &[]) else {
        panic!("a text message");
    };
    assert_eq!(content, "t\n\n[click](http://evil.example) **x**\n");
}

#[test]
fn each_kind_has_its_layout_and_an_action_card_its_button() {
    let mut event = draft(
        "nginx 502 on web-1",
        Body::Event("**502** POST /api".into()),
    );
    event.link = Some(Link {
        title: "Dashboard".into(),
        url: "https://grafana.example/d/x?host=web-1".into(),
    });
    let Message::Markdown { title, text, .. } = compose(&event, MsgType::Markdown, &[]) else {
        panic!("markdown");
    };
    assert_eq!(title, "nginx 502 on web-1");
    assert_eq!(
        text,
        "#### nginx 502 on web-1\n\n**502** POST /api\n\n[Dashboard](https://grafana.example/d/x?host=web-1)\n"
    );
    let Message::ActionCard { text, buttons, .. } = compose(&event, MsgType::ActionCard, &[])
    else {
        panic!("actionCard");
    };
    assert_eq!(text, "#### nginx 502 on web-1\n\n**502** POST /api\n");
    assert_eq!(
        buttons,
        Buttons::Single {
            title: "Dashboard".into(),
            url: "https://grafana.example/d/x?host=web-1".into()
        }
    );
    let Message::Text { content, .. } = compose(&event, MsgType::Text, &[]) else {
        panic!("text");
    };
    assert_eq!(
        content,
        "nginx 502 on web-1\n\n**502** POST /api\n\nDashboard: https://grafana.example/d/x?host=web-1\n"
    );
    // Without a link an action card has no button: it goes as markdown.
    event.link = None;
    assert_eq!(
        compose(&event, MsgType::ActionCard, &[]).msgtype(),
        "markdown"
    );
}

#[test]
fn cutting_respects_characters_and_the_limit() {
    let text = "日本語".repeat(100);
    for max in [0, 1, 2, 3, 4, 10, 299] {
        let cut = cut_to(text.clone(), max);
        assert!(cut.len() <= max, "{max}: {}", cut.len());
    }
    assert_eq!(cut_to("short".into(), 10), "short");
}

#[test]
fn notes_mark_the_title_and_close_the_text_whatever_the_budget() {
    let mut draft = draft(
        "[warning] 12 alerts from 2 rules",
        Body::Summary(vec![section("a", 10, 5), section("b", 2, 2)]),
    );
    draft.notes = vec![
        Note::PossibleRepeat,
        Note::Degraded {
            reason: "no space left on device".into(),
        },
    ];
    assert_eq!(
        title(&draft),
        "[warning] 12 alerts from 2 rules (possible repeat)"
    );
    for budget in [20_000, 600] {
        let text = markdown(&draft, budget);
        assert!(text.len() <= budget, "{budget}: {}", text.len());
        assert!(
            text.starts_with("#### \\[warning\\] 12 alerts from 2 rules (possible repeat)\n"),
            "{text}"
        );
        assert!(
            text.ends_with(
                "> ⚠ delivery degraded: dingtail cannot write its state (no space left on \
                 device); a restart may repeat or lose events\n"
            ),
            "{text}"
        );
        assert!(text.contains("\n> ⚠ possible repeat: "), "{text}");
    }
    draft.language = Language::ZhCn;
    assert_eq!(
        title(&draft),
        "[warning] 12 alerts from 2 rules（可能重复）"
    );
    let Message::Text { content, .. } = compose(&draft, MsgType::Text, &[]) else {
        panic!("a text message");
    };
    assert!(
        content.ends_with("\n⚠ 投递降级：dingtail 无法写入状态（no space left on device）；重启可能重复或丢失事件\n"),
        "{content}"
    );
}
