//! Inputs where the logs really are (issue 14), through the real binary and the DingTalk
//! stand-in: Kubernetes CRI logs with lines split by the runtime and a kubelet rotation in the
//! middle of one, docker json-file chunks, JSON lines with nested and odd fields (and lines that
//! are no JSON, counted and matched as text), and GBK text; `dingtail test` on the same files.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::alerts::{free_port, get, metric};
use crate::support::daemon::Daemon;
use crate::support::harness::{Dir, stdout_ok};
use crate::support::standin::{Received, Standin};

const WAIT: Duration = Duration::from_secs(20);

/// The Kubernetes layout of one container's logs under `dir`.
const POD_DIR: &str = "pods/shop_pay-0_5b3c6f0e-8f1c-4c1e-9a55-0c6d3b1f2a77/api";

/// A config with the four inputs, each read from the beginning, and the rules of `RULES`.
fn config(dir: &Dir, standin: &Standin, port: u16) -> PathBuf {
    fs::create_dir_all(dir.join(POD_DIR)).unwrap();
    fs::create_dir_all(dir.join("docker")).unwrap();
    fs::create_dir_all(dir.join("json")).unwrap();
    fs::create_dir_all(dir.join("gbk")).unwrap();
    dir.create("rules.yaml", RULES);
    dir.create(
        "dingtail.yaml",
        format!(
            "language: en
timezone: UTC
host: node-1
state_dir: state
listen: 127.0.0.1:{port}
inputs:
  pods:
    paths: [\"pods/*/*/*\"]
    format: cri
    partial_timeout: 1s
    start_at: beginning
    poll_interval: 100ms
  docker:
    paths: [\"docker/*.log\"]
    format: docker
    start_at: beginning
    poll_interval: 100ms
  json:
    paths: [\"json/*.log\"]
    format: json
    start_at: beginning
    poll_interval: 100ms
  gbk:
    paths: [\"gbk/*.log\"]
    encoding: gbk
    start_at: beginning
    poll_interval: 100ms
robots:
{}    linger: 300ms
rules: [\"rules.yaml\"]
",
            standin.robot_yaml("ops")
        ),
    )
}

const RULES: &str = r#"- name: pod-error
  input: pods
  match: 'ERROR (?P<what>\S+)'
  where: {stream: stderr}
  robot: ops
  template: '{{ namespace }}/{{ pod }}/{{ container }} {{ stream }} {{ what }} len={{ line | length }}'
- name: docker-error
  input: docker
  match: 'ERROR'
  robot: ops
  template: 'docker {{ stream }}: {{ line }}'
- name: json-error
  input: json
  where: {level: [error, fatal], http.status: 502}
  robot: ops
  template: 'json {{ fields.user.id }} {{ fields.http.status }} {{ fields.tags[1] }} {{ fields["weird key"] }}: {{ line }}'
- name: not-json
  input: json
  match: 'plain text line'
  robot: ops
  template: 'text: {{ line }}'
- name: gbk
  input: gbk
  match: '订单(?P<what>失败)'
  robot: ops
  template: 'gbk {{ what }}: {{ line }}'
"#;

/// A CRI line: `TIME STREAM TAG CONTENT`.
fn cri(second: u32, stream: &str, tag: &str, content: &str) -> String {
    format!("2026-11-24T12:00:{second:02}.123456789Z {stream} {tag} {content}\n")
}

/// A docker json-file line.
fn docker(log: &str, stream: &str) -> String {
    format!(
        "{}\n",
        serde_json::json!({"log": log, "stream": stream, "time": "2026-11-24T12:00:00.5Z"})
    )
}

/// The samples and counts of every delivered message, one text.
fn delivered_text(standin: &Standin) -> String {
    standin
        .delivered()
        .iter()
        .map(Received::visible_text)
        .collect::<Vec<_>>()
        .join("\n")
}

fn total(standin: &Standin) -> u64 {
    standin.delivered().iter().map(Received::alerts).sum()
}

#[test]
fn container_json_and_gbk_logs_reach_the_group_decoded() {
    let standin = Standin::start();
    let dir = Dir::new("inputs");
    let port = free_port();
    let config = config(&dir, &standin, port);
    let pod_log = dir.join(POD_DIR).join("0.log");
    // A message containerd split at 16 KiB: two P pieces and the F that ends it.
    let big = "x".repeat(16 * 1024);
    let mut cri_text = cri(1, "stdout", "F", "starting");
    cri_text += &cri(2, "stderr", "P", &format!("ERROR big {big}"));
    cri_text += &cri(2, "stderr", "P", &big);
    cri_text += &cri(2, "stderr", "F", "end-of-big");
    cri_text += &cri(
        3,
        "stdout",
        "F",
        "ERROR on-stdout is not a match (where: stderr)",
    );
    // The head of a message whose rest the runtime writes after kubelet rotates the file.
    cri_text += &cri(4, "stderr", "P", "ERROR across-rotation head ");
    fs::write(&pod_log, cri_text).unwrap();
    // kubelet's compression in progress: never read, whatever it holds.
    dir.create(
        format!("{POD_DIR}/0.log.20261124-110000.tmp"),
        cri(0, "stderr", "F", "ERROR from-tmp"),
    );
    dir.create(
        "docker/c1-json.log",
        docker("ERROR docker partial ", "stderr") + &docker("and its end\n", "stderr"),
    );
    dir.create(
        "json/app.log",
        concat!(
            r#"{"level":"error","msg":"db down","http":{"status":502},"user":{"id":"u-7"},"tags":["a","b"],"weird key":"w","n":null,"big":1e400}"#,
            "\n",
            r#"{"level":"error","msg":"other status","http":{"status":"500"}}"#,
            "\n",
            r#"{"level":"info","msg":"fine","http":{"status":502}}"#,
            "\n",
            "plain text line, not JSON\n",
            r#"{"level":"fatal","message":"disk gone","http":{"status":"502"},"user":{"id":"u-9"},"tags":["c","d"],"weird key":"v"}"#,
            "\n",
        ),
    );
    let (gbk_line, _, _) = encoding_rs::GBK.encode("2026-11-24 订单失败 数据库连接超时\n");
    dir.create("gbk/app.log", gbk_line.as_ref());

    let mut daemon = Daemon::start(dir.path(), &config, &[]);
    // pods: the big one; docker: 1; json: 2 + 1 text; gbk: 1.
    assert!(
        standin.wait_for(
            |received| received.iter().map(Received::alerts).sum::<u64>() >= 6,
            WAIT
        ),
        "{}{}",
        delivered_text(&standin),
        daemon.describe()
    );

    // kubelet rotates: the old file is renamed, a new one started; the runtime writes the rest
    // of the split message (which went out with the old file, as a record of its own) and more.
    fs::rename(&pod_log, dir.join(POD_DIR).join("0.log.20261124-120000")).unwrap();
    fs::write(
        &pod_log,
        cri(5, "stderr", "F", "tail-of-the-split-line")
            + &cri(6, "stderr", "F", "ERROR after-rotation"),
    )
    .unwrap();
    assert!(
        standin.wait_for(
            |received| received.iter().map(Received::alerts).sum::<u64>() >= 8,
            WAIT
        ),
        "{}{}",
        delivered_text(&standin),
        daemon.describe()
    );
    std::thread::sleep(Duration::from_secs(2));
    let text = delivered_text(&standin);
    assert_eq!(total(&standin), 8, "nothing twice, nothing else:\n{text}");
    let big_len = "ERROR big ".len() + 2 * big.len() + "end-of-big".len();
    for expected in [
        format!("shop/pay-0/api stderr big len={big_len}"),
        "shop/pay-0/api stderr across-rotation len=27".to_string(),
        "shop/pay-0/api stderr after-rotation".to_string(),
        "docker stderr: ERROR docker partial and its end".to_string(),
        "json u-7 502 b w: db down".to_string(),
        "json u-9 502 d v: disk gone".to_string(),
        "text: plain text line, not JSON".to_string(),
        "gbk 失败: 2026-11-24 订单失败 数据库连接超时".to_string(),
    ] {
        assert!(text.contains(&expected), "{expected:?} in:\n{text}");
    }
    for absent in ["on-stdout", "from-tmp", "other status", "fine"] {
        assert!(!text.contains(absent), "{absent:?} in:\n{text}");
    }
    let metrics = get(port, "/metrics");
    assert_eq!(
        metric(&metrics, "dingtail_lines_invalid_total{input=\"json\"}"),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "dingtail_lines_read_total{input=\"pods\"}"),
        Some(6.0),
        "starting, big, on-stdout, head, tail, after: the big one is one event\n{metrics}"
    );
    assert_eq!(daemon.stop().code(), Some(0));
}

/// `dingtail test --input` decodes each file as its input does.
#[test]
fn test_reads_each_input_in_its_format() {
    let standin = Standin::start();
    let dir = Dir::new("inputs-test");
    let config = config(&dir, &standin, free_port());
    let pod_log = dir.create(
        format!("{POD_DIR}/0.log"),
        cri(1, "stderr", "P", "ERROR split ")
            + &cri(1, "stderr", "F", "here")
            + &cri(2, "stdout", "F", "ERROR stdout"),
    );
    let json_log = dir.create(
        "json/app.log",
        "{\"level\":\"error\",\"msg\":\"db down\",\"http\":{\"status\":502},\"user\":{\"id\":\"u-7\"},\"tags\":[1,2],\"weird key\":0}\n\
         {broken json\n\
         plain text line\n",
    );
    let test = |input: &str, log: &Path| {
        let mut cmd = dir.command();
        cmd.arg("test")
            .arg("-c")
            .arg(&config)
            .arg("--input")
            .arg(input)
            .arg(log)
            .arg("--render");
        stdout_ok(&mut cmd)
    };
    let pods = test("pods", &pod_log);
    assert!(pods.contains("format cri"), "{pods}");
    assert!(pods.contains("scanned 3 lines (2 events)"), "{pods}");
    assert!(pods.contains("pod-error: 1 "), "{pods}");
    assert!(pods.contains("shop/pay-0/api stderr split"), "{pods}");
    let json = test("json", &json_log);
    assert!(json.contains("json-error: 1 "), "{json}");
    assert!(json.contains("not-json: 1 "), "{json}");
    assert!(
        json.contains("2 events not in the input's format, matched as plain text"),
        "{json}"
    );
    assert!(json.contains("json u-7 502 2 0: db down"), "{json}");
    // GBK from stdin.
    let (gbk, _, _) = encoding_rs::GBK.encode("订单失败\n");
    let mut cmd = dir.command();
    cmd.arg("test")
        .arg("-c")
        .arg(&config)
        .arg("--input")
        .arg("gbk")
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), gbk.as_ref()).unwrap();
    let output = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(out.contains("gbk: 1 "), "{out}");
    assert!(out.contains("encoding GBK"), "{out}");
}
