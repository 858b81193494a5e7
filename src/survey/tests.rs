//! The survey's warnings on made-up facts, and the reminder on a fake clock.

use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::config::Diagnostic;
use crate::config::span::Spans;
use crate::pipeline::Pipeline;
use crate::survey::{
    Facts, GlobFacts, InputFacts, REMIND_EVERY, Reminder, StateDir, glob_dir, warnings,
};

const CONFIG: &str = "\
state_dir: /srv/state
inputs:
  web:
    paths: [/srv/web/*.log]
  app:
    paths: [/srv/app.log]
robots:
  ops:
    webhook: stdout
  spare:
    webhook: stdout
rules: [rules.yaml]
";

fn load(rules: &str) -> (tempfile::TempDir, Pipeline, Spans) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("dingtail.yaml");
    fs::write(&config, CONFIG).unwrap();
    fs::write(dir.path().join("rules.yaml"), rules).unwrap();
    let pipeline = Pipeline::load(&config).unwrap();
    (dir, pipeline, Spans::parse(CONFIG).unwrap())
}

/// The warnings' texts, without the temporary directory.
fn texts(dir: &tempfile::TempDir, found: &[Diagnostic]) -> Vec<String> {
    let prefix = format!("{}/", dir.path().display());
    found
        .iter()
        .map(|d| d.to_string().replace(&prefix, ""))
        .collect()
}

fn facts(web_files: &[&str], state_dir: StateDir) -> Facts {
    let mut facts = Facts {
        state_dir,
        ..Facts::default()
    };
    facts.inputs.insert(
        "web".into(),
        InputFacts {
            files: web_files.iter().map(PathBuf::from).collect(),
            globs: vec![GlobFacts {
                glob: "/srv/web/*.log".into(),
                dir: "/srv/web".into(),
                dir_exists: false,
            }],
            ..InputFacts::default()
        },
    );
    facts.inputs.insert(
        "app".into(),
        InputFacts {
            files: vec!["/srv/app.log".into()],
            unreadable: vec![("/srv/app.log".into(), "permission denied".into())],
            unlisted: vec![("/srv/private".into(), "permission denied".into())],
            ..InputFacts::default()
        },
    );
    facts
}

#[test]
fn every_kind_of_warning_in_config_order_with_positions() {
    let (dir, pipeline, spans) = load(
        "- name: web-5xx\n  input: web\n  match: ' 5\\d\\d '\n  robot: ops\n\
         - name: app-error\n  input: app\n  match: ERROR\n  robot: ops\n",
    );
    let found = warnings(
        &pipeline,
        &facts(
            &[],
            StateDir::CannotCreate {
                ancestor: "/srv".into(),
                reason: "permission denied".into(),
            },
        ),
        &spans,
    );
    assert_eq!(
        texts(&dir, &found),
        [
            "dingtail.yaml:6:5: input `app`: cannot read 1 file: /srv/app.log (permission denied)",
            "dingtail.yaml:6:5: input `app`: cannot list 1 directory: /srv/private (permission denied); files there are not seen",
            "dingtail.yaml:4:5: input `web`: no file matches now (`/srv/web/*.log`: the directory /srv/web does not exist); it is watched, but nothing is read until one appears",
            "dingtail.yaml:1:1: state_dir /srv/state does not exist and cannot be created: /srv is not writable (permission denied)",
            "rules.yaml:1: rule `web-5xx`: no input feeds it: `web` matches no file now",
            "dingtail.yaml:10:3: robot `spare` is used by no rule",
        ]
    );
}

#[test]
fn a_config_without_rules_and_a_usable_one() {
    let (dir, pipeline, spans) = load("");
    let found = warnings(
        &pipeline,
        &facts(&["/srv/web/a.log"], StateDir::Usable),
        &spans,
    );
    let found = texts(&dir, &found);
    assert!(
        found.contains(&"dingtail.yaml:12:1: no rules: the inputs are read but nothing can alert (`rules:` names no rule file, or its files hold no rule)".to_string()),
        "{found:#?}"
    );
    assert!(
        found
            .iter()
            .any(|w| w.contains("robot `ops` is used by no rule"))
    );

    let (_dir, pipeline, spans) =
        load("- name: a\n  inputs: [web, app]\n  match: x\n  robots: [ops, spare]\n");
    let mut facts = facts(&["/srv/web/a.log"], StateDir::Usable);
    facts.inputs.get_mut("app").unwrap().unreadable.clear();
    facts.inputs.get_mut("app").unwrap().unlisted.clear();
    assert!(warnings(&pipeline, &facts, &spans).is_empty());
}

#[test]
fn glob_directories() {
    assert_eq!(
        glob_dir("/var/log/nginx/*.log"),
        PathBuf::from("/var/log/nginx")
    );
    assert_eq!(glob_dir("/var/log/**/x.log"), PathBuf::from("/var/log"));
    assert_eq!(glob_dir("/var/log/syslog"), PathBuf::from("/var/log"));
    assert_eq!(glob_dir("/srv/app-*/log/*.log"), PathBuf::from("/srv"));
}

#[test]
fn warnings_are_said_at_once_then_hourly_while_they_hold() {
    let one = Diagnostic::at(std::path::Path::new("a.yaml"), 0, 0, "one");
    let two = Diagnostic::at(std::path::Path::new("a.yaml"), 0, 0, "two");
    let mut reminder = Reminder::default();
    let t0 = Instant::now();
    let both = [one.clone(), two.clone()];
    assert_eq!(reminder.due(&both, t0).len(), 2);
    assert!(reminder.due(&both, t0 + Duration::from_secs(60)).is_empty());
    // `two` stops holding; when it comes back it is said at once.
    assert!(
        reminder
            .due(std::slice::from_ref(&one), t0 + Duration::from_secs(120))
            .is_empty()
    );
    assert_eq!(
        reminder.due(&both, t0 + Duration::from_secs(180)),
        [&two],
        "a warning that came back"
    );
    assert_eq!(reminder.due(&both, t0 + REMIND_EVERY), [&one]);
}
