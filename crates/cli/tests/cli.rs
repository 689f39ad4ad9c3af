//! The binary starts, documents itself and reports its version.

use assert_cmd::Command;
use predicates::str::contains;

fn authbroker() -> Command {
    Command::cargo_bin("authbroker").expect("the authbroker binary is built for tests")
}

#[test]
fn help_describes_the_three_roles() {
    authbroker()
        .arg("--help")
        .assert()
        .success()
        .stdout(contains("Register an app once"))
        .stdout(contains("broker"));
}

#[test]
fn version_is_the_crate_version() {
    authbroker()
        .arg("--version")
        .assert()
        .success()
        .stdout(contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn unknown_arguments_fail_with_usage() {
    authbroker()
        .arg("--no-such-flag")
        .assert()
        .code(2)
        .stderr(contains("Usage"));
}

#[test]
fn every_command_has_help() {
    let commands: &[&[&str]] = &[
        &["connect"],
        &["sites"],
        &["whoami"],
        &["disconnect"],
        &["post"],
        &["posts"],
        &["config"],
        &["config", "path"],
        &["demo"],
        &["up"],
        &["site", "serve"],
        &["site", "init"],
        &["broker", "serve"],
        &["broker", "init"],
    ];
    for command in commands {
        authbroker()
            .args(*command)
            .arg("--help")
            .assert()
            .success()
            .stdout(contains("Usage: authbroker"));
    }
}

#[test]
fn help_documents_the_exit_codes() {
    authbroker()
        .arg("--help")
        .assert()
        .success()
        .stdout(contains("Exit codes:"))
        .stdout(contains("run `authbroker connect <site>` again"));
}
