//! Running the `authbroker` binary in tests: a clean environment, one-shot commands, and servers that are
//! killed when dropped.
#![allow(dead_code, clippy::unwrap_used, unreachable_pub)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as StdCommand, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use assert_cmd::Command;
use authbroker_broker::BrokerConfig;
use authbroker_site::SiteConfig;

/// The configuration variables a developer's or CI's environment might hold; every test starts without them.
pub fn clean_env(command: &mut StdCommand) {
    for key in SiteConfig::KEYS.iter().chain(BrokerConfig::KEYS) {
        if let Some(env) = key.env {
            command.env_remove(env);
        }
    }
    command.env_remove("AUTHBROKER_ADMIN_PASSWORD");
    command.env("RUST_LOG", "info");
}

/// `authbroker ARGS` in a clean environment.
pub fn authbroker(args: &[&str]) -> Command {
    let mut command = StdCommand::new(assert_cmd::cargo::cargo_bin("authbroker"));
    clean_env(&mut command);
    command.args(args);
    Command::from_std(command)
}

pub fn path(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// A running `authbroker … serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    /// The URL it says it listens on.
    pub url: String,
    /// Everything it printed on standard output before and including that line.
    pub stdout: Vec<String>,
    stderr: PathBuf,
}

impl Server {
    /// Starts `authbroker ARGS` (with `envs` set) and waits for the line that says where it listens.
    pub fn start<I, S>(dir: &Path, args: I, envs: &[(&str, &str)]) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let stderr = dir.join("serve.stderr");
        let mut command = StdCommand::new(assert_cmd::cargo::cargo_bin("authbroker"));
        clean_env(&mut command);
        command
            .args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"));
        let mut child = command.spawn().expect("authbroker starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if sender.send(line).is_err() {
                    return;
                }
            }
        });
        let mut lines = Vec::new();
        let url = loop {
            match receiver.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => {
                    let url = line
                        .split_once("listening on ")
                        .map(|(_, url)| url.trim().to_owned());
                    lines.push(line);
                    if let Some(url) = url {
                        break url;
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "the server did not say where it listens; stdout:\n{}\nstderr:\n{}",
                        lines.join("\n"),
                        std::fs::read_to_string(&stderr).unwrap_or_default()
                    );
                }
            }
        };
        // The lines printed right after the address (home URL, broker ID, …).
        while let Ok(line) = receiver.recv_timeout(Duration::from_millis(200)) {
            lines.push(line);
        }
        Self {
            child,
            url,
            stdout: lines,
            stderr,
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Sends SIGTERM and waits (at most 30 s) for a successful exit.
    #[cfg(unix)]
    pub fn terminate(&mut self) {
        let status = StdCommand::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the server did not stop"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "{status:?}\n{}", self.stderr());
        assert!(self.stderr().contains("shutting down"), "{}", self.stderr());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn blocking_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// The password `init` printed, if it printed one.
pub fn password_line(stdout: &str) -> Option<String> {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("Password: "))
        .map(str::to_owned)
}
