//! `authbroker demo` and `authbroker up` as a person runs them.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command as StdCommand, Stdio};

use common::{authbroker, clean_env};
use serde_json::Value;

#[test]
fn demo_runs_every_step_and_says_so() {
    let output = authbroker(&["demo", "--json"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["ok"], true);
    let steps: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps.len(), 11, "{steps:?}");
    assert_eq!(steps[0], authbroker_demo::STEP_CERTIFICATES);
    assert!(steps.contains(&authbroker_demo::scenario::STEP_BROKERED));
    assert_eq!(
        *steps.last().unwrap(),
        authbroker_demo::scenario::STEP_REVOKED
    );
    assert_eq!(report["post_title"], "Hello from authbroker");
    assert!(report["total_ms"].as_f64().unwrap() > 0.0);

    // The plain form prints one line per step with its duration.
    let output = authbroker(&["demo"]).output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        text.lines()
            .filter(|l| l.trim_start().starts_with('✓'))
            .count(),
        11,
        "{text}"
    );
    assert!(text.contains("All 11 steps worked in"), "{text}");
}

#[cfg(unix)]
#[test]
fn up_keeps_the_world_running_and_prints_how_to_use_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = StdCommand::new(assert_cmd::cargo::cargo_bin("authbroker"));
    clean_env(&mut command);
    let data = dir.path().join("demo");
    command
        .args([
            "up",
            "--data-dir",
            data.to_str().unwrap(),
            "--broker-port",
            "0",
            "--site-port",
            "0",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = command.spawn().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    for line in stdout.lines() {
        let line = line.unwrap();
        let done = line.starts_with("Ctrl-C stops both");
        lines.push(line);
        if done {
            break;
        }
    }
    let text = lines.join("\n");
    let value = |prefix: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in\n{text}"))
            .trim()
            .to_owned()
    };
    let site = value("Site ");
    let ca = value("CA ");
    assert!(text.contains("export AUTHBROKER_APP_KEY="), "{text}");
    assert!(text.contains("log in as admin / "), "{text}");
    let client = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap())
        .build()
        .unwrap();
    let index: Value = client
        .get(format!("{site}wp-json/"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(index["name"], "Demo Site");

    let status = StdCommand::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());
}
