//! `authbroker demo` and `authbroker up`: the demo world (crates/demo) driven from the terminal.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use authbroker_demo::scenario::{self, Approve};
use authbroker_demo::{World, WorldOptions};
use clap::Args;
use serde_json::json;

use crate::client::Failure;

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Approve in your browser instead of letting the scripted user do it.
    #[arg(long)]
    interactive: bool,
    /// Print the steps and their durations as JSON on standard output.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    /// Where the certificates, databases and generated passwords live; a rerun reuses them.
    /// Default: the demo directory under the user's data directory.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The broker's port on 127.0.0.1.
    #[arg(long, value_name = "PORT", default_value_t = 8443)]
    broker_port: u16,
    /// The site's port on 127.0.0.1.
    #[arg(long, value_name = "PORT", default_value_t = 8444)]
    site_port: u16,
}

/// `authbroker demo`: start everything, run the scenario, print each step; exit 0 only if all worked.
pub(crate) async fn demo(args: DemoArgs) -> Result<(), Failure> {
    let started = Instant::now();
    let mut steps: Vec<(String, Duration)> = Vec::new();
    let json = args.json;
    let mut step = |name: &str, took: Duration| {
        if !json {
            println!("  ✓ {name:<72} {:>7.1} ms", took.as_secs_f64() * 1000.0);
        }
        steps.push((name.to_owned(), took));
    };
    if !json {
        println!(
            "authbroker demo: a broker, a site and an app on this machine, over HTTPS with a local CA"
        );
    }
    let world = World::start(
        WorldOptions {
            quiet_logs: true,
            ..WorldOptions::default()
        },
        &mut step,
    )
    .await
    .map_err(|err| Failure::from(format!("the demo could not start: {err}")))?;
    if !json {
        println!(
            "    broker {}  ·  site {}",
            world.broker_url(),
            world.site_url()
        );
    }
    let approve = if args.interactive {
        let author = world.site_author().clone();
        let ca = world.ca_pem_path().to_owned();
        Approve::Person(Box::new(move |url: &str| {
            eprintln!(
                "\nApprove the app in your browser, logged in as {:?} with the password {:?}.\nThe browser must trust the demo's CA ({}), or accept its warning. If it did not open, visit:\n\n  {url}\n",
                author.login,
                author.password,
                ca.display()
            );
            if let Err(err) = webbrowser::open(url) {
                eprintln!("(could not open a browser: {err})");
            }
        }))
    } else {
        Approve::Scripted
    };
    let outcome = scenario::run(&world, approve, &mut step).await;
    world.shutdown().await;
    let outcome = outcome.map_err(|err| Failure::from(format!("the demo failed: {err}")))?;
    let total = started.elapsed();
    if json {
        let list: Vec<_> = steps
            .iter()
            .map(|(name, took)| json!({"step": name, "ms": took.as_secs_f64() * 1000.0}))
            .collect();
        println!(
            "{:#}",
            json!({
                "ok": true,
                "steps": list,
                "total_ms": total.as_secs_f64() * 1000.0,
                "user": outcome.user,
                "post_link": outcome.post_link,
                "post_title": outcome.post_title,
            })
        );
    } else {
        println!(
            "{} published {:?} at {}",
            outcome.user, outcome.post_title, outcome.post_link
        );
        println!(
            "All {} steps worked in {:.2} s.",
            steps.len(),
            total.as_secs_f64()
        );
    }
    Ok(())
}

/// `authbroker up`: start the broker and the site and keep them running for a person to click through.
pub(crate) async fn up(args: UpArgs, shutdown: impl Future<Output = ()>) -> Result<(), Failure> {
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => directories::ProjectDirs::from("", "", "authbroker")
            .map(|dirs| dirs.data_dir().join("demo"))
            .ok_or_else(|| {
                Failure::from("cannot find a data directory: pass --data-dir".to_owned())
            })?,
    };
    let world = World::start(
        WorldOptions {
            data_dir: Some(data_dir),
            broker_port: args.broker_port,
            site_port: args.site_port,
            quiet_logs: false,
        },
        &mut |_, _| {},
    )
    .await
    .map_err(|err| {
        let hint = match err {
            authbroker_demo::DemoError::Listen { .. } => {
                " (is another `authbroker up` running? --broker-port and --site-port choose other ports)"
            }
            _ => "",
        };
        Failure::from(format!("cannot start: {err}{hint}"))
    })?;
    let app = world.app();
    let developer = world.developer();
    let admin = world.site_admin();
    let author = world.site_author();
    println!(
        "authbroker is up{}.",
        if world.reused() {
            " (reusing the previous demo data)"
        } else {
            ""
        }
    );
    println!();
    println!("Broker  {}/", world.broker_url());
    println!(
        "        developer portal: log in as {} / {}",
        developer.login, developer.password
    );
    println!("Site    {}/", world.site_url());
    println!(
        "        log in as {} / {} (administrator) or {} / {} (author)",
        admin.login, admin.password, author.login, author.password
    );
    println!("CA      {}", world.ca_pem_path().display());
    println!("        the browser warns about the certificate unless it trusts this CA");
    println!("Data    {}", world.data_dir().display());
    println!();
    println!(
        "Connect the CLI to the demo site as the app {:?}:",
        app.name
    );
    println!(
        "  export AUTHBROKER_CA_FILE={}",
        world.ca_pem_path().display()
    );
    println!("  export AUTHBROKER_BROKER_URL={}", world.broker_id());
    println!("  export AUTHBROKER_APP_KEY={}", app.client_id);
    println!("  export AUTHBROKER_APP_SECRET={}", app.client_secret);
    println!("  authbroker connect {}", world.site_url());
    println!();
    println!("Ctrl-C stops both.");
    shutdown.await;
    eprintln!("shutting down");
    world.shutdown().await;
    Ok(())
}
