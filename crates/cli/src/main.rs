//! `authbroker`: one binary for every role. This crate is wiring only: it parses arguments and calls the
//! libraries (`authbroker-oauth1`, and later the broker, site and client crates).

use clap::Parser;

/// Register an app once, connect it to every site.
///
/// authbroker runs a broker (the app registry that vouches for apps), a site (a WordPress-compatible REST API
/// with an OAuth 1.0a provider), and the client that connects apps to sites.
#[derive(Debug, Parser)]
#[command(name = "authbroker", version, about, long_about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
