//! What the packages and the image ship, as far as the binary decides it (issue 17): the version
//! names its commit, `generate` writes a page and completions for every subcommand the CLI has,
//! and the shipped `/etc/dingtail/dingtail.yaml` is valid, sends nowhere, and fits the example
//! rules. The packages themselves are built and installed by `.ci/packaging`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::CommandFactory;

use crate::support::harness::{Dir, run_expect, stdout_ok};

/// The repository's top folder.
fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The config the packages install as /etc/dingtail/dingtail.yaml.
fn shipped_config() -> PathBuf {
    repo().join("packaging/dingtail.yaml")
}

#[test]
fn version_names_the_package_version_and_the_commit() {
    let dir = Dir::new("version");
    let stdout = stdout_ok(dir.command().arg("--version"));
    let version = env!("CARGO_PKG_VERSION");
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(repo())
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string());
    match (std::env::var("DINGTAIL_COMMIT"), commit) {
        // Built from this checkout: the commit is HEAD's.
        (Err(_), Some(commit)) => {
            assert_eq!(stdout, format!("dingtail {version} ({commit})\n"));
        }
        // Built with the override, or where git cannot tell: still a version and a commit field.
        _ => {
            let rest = stdout
                .strip_prefix(&format!("dingtail {version} ("))
                .unwrap();
            assert!(rest.ends_with(")\n") && rest.len() > 2, "{stdout}");
        }
    }
}

/// Every subcommand path of the CLI as the binary defines it (`run`, `cluster status`), hidden
/// ones left out, each with the name its man page has (`dingtail-cluster-status`).
fn visible_subcommands(command: &clap::Command, prefix: &str) -> Vec<String> {
    let mut names = Vec::new();
    for sub in command.get_subcommands().filter(|sub| !sub.is_hide_set()) {
        if sub.get_name() == "help" {
            continue;
        }
        let name = format!("{prefix}-{}", sub.get_name());
        names.extend(visible_subcommands(sub, &name));
        names.push(name);
    }
    names
}

#[test]
fn generate_man_writes_one_page_per_subcommand() {
    let dir = Dir::new("generate-man");
    run_expect(dir.command().args(["generate", "man", "out/man1"]), 0);
    let mut pages: Vec<String> = fs::read_dir(dir.join("out/man1"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    let mut expected: Vec<String> = visible_subcommands(&dingtail::cli::Cli::command(), "dingtail")
        .into_iter()
        .chain(["dingtail".to_string()])
        .map(|name| format!("{name}.1"))
        .collect();
    expected.sort();
    assert_eq!(pages, expected);
    assert!(pages.contains(&"dingtail-check.1".to_string()));

    let top = fs::read_to_string(dir.join("out/man1/dingtail.1")).unwrap();
    for name in expected.iter().filter(|name| *name != "dingtail.1") {
        let page = name.trim_end_matches(".1");
        assert!(
            top.contains(&format!(".BR {page} (1)")),
            "{page} not in SEE ALSO:\n{top}"
        );
    }
    // What `man` needs to file it: a title line naming the page and section 1.
    let check = fs::read_to_string(dir.join("out/man1/dingtail-check.1")).unwrap();
    assert!(check.contains("\n.TH dingtail-check 1 "), "{check}");
}

#[test]
fn generate_completions_cover_every_subcommand_for_each_shell() {
    let dir = Dir::new("generate-completions");
    let subcommands = visible_subcommands(&dingtail::cli::Cli::command(), "");
    // How each shell's script offers a subcommand word.
    type Offer = fn(&str) -> String;
    let offers: [(&str, Offer); 3] = [
        ("bash", |word| format!(",{word})")),
        ("zsh", |word| format!("({word})")),
        ("fish", |word| format!("-a \"{word}\"")),
    ];
    for (shell, offer) in offers {
        let script = stdout_ok(dir.command().args(["generate", "completions", shell]));
        for sub in &subcommands {
            let word = sub.rsplit('-').next().unwrap();
            assert!(script.contains(&offer(word)), "{shell}: `{word}` missing");
        }
        assert!(script.contains("config"), "{shell}: no --config");
        assert!(
            !script.contains("generate"),
            "{shell} completes the hidden `generate`"
        );
    }
    let output = run_expect(dir.command().args(["generate", "completions", "tcsh"]), 2);
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid value 'tcsh'"));
}

#[test]
fn the_shipped_config_is_valid_and_sends_nowhere() {
    let dir = Dir::new("shipped-config");
    let stdout = stdout_ok(dir.command().args(["check", "-c"]).arg(shipped_config()));
    assert!(stdout.contains(": valid\n"), "{stdout}");
    let robots = stdout.split("robots (").nth(1).unwrap();
    assert!(
        robots.starts_with("1):\n  console: stdout (dry run),"),
        "{stdout}"
    );
    assert!(!stdout.contains("webhook"), "{stdout}");
}

/// The shipped config with its commented examples (`# java:`, `#   paths: …`, `# listen: …`)
/// switched on.
fn uncommented(config: &str) -> String {
    let mut out = String::new();
    for line in config.lines() {
        let indent = line.len() - line.trim_start().len();
        let body = line.trim_start().strip_prefix("# ");
        let is_example = body.is_some_and(|body| {
            let key_value = body.split_once(':').is_some_and(|(key, _)| {
                !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c == '_' || c == '-')
            });
            // Indented keys of a commented block (`#   paths: …`) belong to the entry above.
            key_value || (indent > 0 && body.starts_with("  ") && body.trim_start().contains(':'))
        });
        match body {
            Some(body) if is_example => {
                out.push_str(&" ".repeat(indent));
                out.push_str(body);
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[test]
fn every_example_rule_fits_the_shipped_config_with_its_examples_switched_on() {
    let dir = Dir::new("shipped-examples");
    let text = fs::read_to_string(shipped_config()).unwrap();
    let rules = repo().join("rules/*.yaml");
    let config =
        uncommented(&text).replace("/etc/dingtail/rules.d/*.yaml", &rules.display().to_string());
    assert!(config.contains("\nlisten: 127.0.0.1:9184\n"), "{config}");
    assert!(config.contains("\n  java:\n    paths: "), "{config}");
    dir.create("dingtail.yaml", &config);
    let stdout = stdout_ok(
        dir.command()
            .args(["check", "-c", "dingtail.yaml"])
            .env("DINGTALK_OPS_TOKEN", "t0ken")
            .env("DINGTALK_OPS_SECRET", "SECabc"),
    );
    let n_files = fs::read_dir(repo().join("rules")).unwrap().count();
    assert!(
        stdout.contains(&format!(" in {n_files} files\n")),
        "not every rule file loaded:\n{stdout}"
    );
    for input in ["java", "python", "kubernetes"] {
        assert!(
            stdout.contains(&format!("\n  {input}: ")),
            "{input}:\n{stdout}"
        );
    }
    assert!(stdout.contains("\n  ops: webhook, signed,"), "{stdout}");
}
