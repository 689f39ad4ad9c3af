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

/// `--interactive`: the browser opens on the consent flow and the person (here: a script with the printed
/// password, trusting the printed CA) approves.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactive_demo_waits_for_the_person() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempfile::tempdir().unwrap();
    let opened = dir.path().join("opened.txt");
    let script = dir.path().join("browser.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$1\" > {}\n", opened.display()),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut command = tokio::process::Command::new(assert_cmd::cargo::cargo_bin("authbroker"));
    command
        .args(["demo", "--interactive"])
        .env("BROWSER", &script)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let (password, ca) = loop {
        let line = stderr
            .next_line()
            .await
            .unwrap()
            .expect("the demo explains what to do");
        if let Some(rest) = line.split_once("with the password \"").map(|(_, r)| r) {
            let password = rest.split('"').next().unwrap().to_owned();
            let next = stderr.next_line().await.unwrap().unwrap();
            let ca = next
                .split_once("CA (")
                .and_then(|(_, r)| r.split_once(')'))
                .unwrap()
                .0
                .to_owned();
            break (password, ca);
        }
    };
    let url = loop {
        if let Ok(text) = std::fs::read_to_string(&opened)
            && text.contains("oauth_token=")
        {
            break text.trim().to_owned();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let login = authbroker_demo::Login {
        login: "author".to_owned(),
        password,
    };
    let approver =
        authbroker_demo::Approver::new(&std::fs::read_to_string(&ca).unwrap(), &login).unwrap();
    let location = approver.approve(&url).await.unwrap();
    assert_eq!(approver.visit(&location).await.unwrap(), 200);
    let output = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("All 11 steps worked"), "{stdout}");
}

#[test]
fn up_on_a_taken_port_says_what_to_do() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let output = authbroker(&[
        "up",
        "--data-dir",
        data.to_str().unwrap(),
        "--broker-port",
        &port,
        "--site-port",
        "0",
    ])
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--broker-port"), "{stderr}");
}
