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
