//! The burst of `dingtail test LOG --render`: the messages the daemon would send for the whole
//! log as one burst (title, mentions, text) and the exact request body it would POST, as the
//! `stdout` robot prints it. Kept apart from the scan so that `test.rs` holds only reading,
//! matching and counting.

use std::collections::BTreeMap;

use crate::batch::Batch;
use crate::daemon::deliver;
use crate::dingtalk;
use crate::pipeline::Pipeline;

/// The messages the daemon would send for the whole log as one burst, and their bodies.
pub(super) fn render(pipeline: &Pipeline, batches: &BTreeMap<String, Batch>, out: &mut String) {
    for (robot, batch) in batches {
        let keywords = pipeline
            .config
            .robots
            .get(robot)
            .map(|robot| robot.keywords.as_slice())
            .unwrap_or_default();
        let message = deliver::message(pipeline, batch, robot, keywords, Vec::new());
        outln!(out);
        outln!(out, "--- message to robot `{robot}` ---");
        outln!(out, "title: {}", message.title().unwrap_or_default());
        if let Some(mentions) = message.at().filter(|at| !at.is_empty()) {
            let mut at: Vec<String> = mentions
                .mobiles
                .iter()
                .chain(&mentions.user_ids)
                .map(|who| format!("@{who}"))
                .collect();
            if mentions.all {
                at.push("@all".to_string());
            }
            outln!(out, "at: {}", at.join(" "));
        }
        outln!(out, "{}", message.main_text().trim_end());
        // The exact request body the daemon would POST (keyword, mentions, line breaks and
        // size limit applied), as the `stdout` robot prints it.
        match dingtalk::body(keywords, &message) {
            Ok(body) => outln!(out, "body: {body}"),
            Err(err) => outln!(out, "body: cannot be built: {err}"),
        }
    }
    if batches.is_empty() {
        outln!(out);
        outln!(out, "--- no message: nothing matched ---");
    }
}
