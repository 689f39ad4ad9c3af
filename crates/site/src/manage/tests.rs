#![allow(clippy::unwrap_used)]

use askama::Template;

use super::applications::{ApplicationPage, ApplicationRow, ApplicationsPage, Brokered};
use super::brokers::{BrokerRow, BrokersPage, RuleGroup};
use super::connected::{AppRow, ConnectedAppsPage};
use super::{Done, Nav, format_time, store};
use crate::oauth1::consumers::Consumer;

const CSRF: &str = "CsrfTokenCsrfTokenCsrfToken12345";

fn nav(is_admin: bool, current: &'static str) -> Nav<'static> {
    Nav {
        user_name: "Ada <Admin>",
        is_admin,
        csrf: CSRF,
        current,
    }
}

fn consumer(brokered: bool, status: &str) -> Consumer {
    Consumer {
        id: "c0nsumer1d".into(),
        key: "KeyKeyKey123".into(),
        secret: "S".repeat(48),
        name: "Pocket <Poster>".into(),
        description: "Posts from your pocket".into(),
        callback: "myapp://callback".into(),
        broker_id: brokered.then(|| "https://apps.example/".into()),
        broker_client_id: brokered.then(|| "client-42".into()),
        details_url: brokered.then(|| "https://apps.example/app/42".into()),
        status: status.into(),
    }
}

/// Every form of a page carries the CSRF field.
fn assert_forms_have_csrf(html: &str) {
    let forms = html.matches("<form").count();
    let fields = html
        .matches(&format!("name=\"_csrf\" value=\"{CSRF}\""))
        .count();
    assert!(forms > 0, "{html}");
    assert_eq!(forms, fields, "a form without the CSRF field:\n{html}");
    assert!(!html.contains("<script"), "{html}");
}

#[test]
fn the_connected_apps_page_renders() {
    let apps = vec![
        AppRow {
            id: "app1".into(),
            name: "Pocket <Poster>".into(),
            description: "Posts".into(),
            broker: Some("https://apps.example/".into()),
            blocked: false,
            connected: format_time(1_700_000_000),
            last_used: format_time(1_700_100_000),
        },
        AppRow {
            id: "app2".into(),
            name: "Desk".into(),
            description: String::new(),
            broker: None,
            blocked: true,
            connected: format_time(0),
            last_used: format_time(0),
        },
    ];
    let html = ConnectedAppsPage {
        site_name: "Test Site",
        nav: nav(false, "connected-apps"),
        notice: Done {
            done: Some("revoked".into()),
        }
        .notice(),
        apps,
    }
    .render()
    .unwrap();
    assert!(html.contains("Pocket &#60;Poster&#62;") || html.contains("Pocket &lt;Poster&gt;"));
    assert!(!html.contains("<Poster>"));
    assert!(html.contains("2023-11-14 22:13 UTC"), "{html}");
    assert!(html.contains("registered directly"));
    assert!(html.contains("through the broker"));
    assert!(html.contains("id=\"notice\""));
    assert_eq!(html.matches("class=\"connected-app\"").count(), 2);
    assert!(
        !html.contains("/wp-admin/brokers"),
        "subscribers see no admin links"
    );
    assert_forms_have_csrf(&html);

    let empty = ConnectedAppsPage {
        site_name: "Test Site",
        nav: nav(true, "connected-apps"),
        notice: None,
        apps: Vec::new(),
    }
    .render()
    .unwrap();
    assert!(empty.contains("id=\"no-apps\""));
    assert!(empty.contains("/wp-admin/brokers"));
    assert_forms_have_csrf(&empty);
}

#[test]
fn the_applications_page_renders() {
    let rows: Vec<ApplicationRow> = [consumer(true, "active"), consumer(false, "blocked")]
        .into_iter()
        .map(|consumer| {
            ApplicationRow::from(store::Application {
                consumer,
                created_at: 1_700_000_000,
                users: 3,
            })
        })
        .collect();
    let html = ApplicationsPage {
        site_name: "Test Site",
        nav: nav(true, "applications"),
        notice: Done {
            done: Some("deleted".into()),
        }
        .notice(),
        apps: rows,
    }
    .render()
    .unwrap();
    assert_eq!(html.matches("class=\"application\"").count(), 2);
    assert!(html.contains("https://apps.example/app/42"));
    assert!(html.contains("client-42"));
    assert!(html.contains("blocked"));
    assert!(html.contains("id=\"register\""));
    assert_forms_have_csrf(&html);

    let empty = ApplicationsPage {
        site_name: "Test Site",
        nav: nav(true, "applications"),
        notice: None,
        apps: Vec::new(),
    }
    .render()
    .unwrap();
    assert!(empty.contains("id=\"no-applications\""));
}

#[test]
fn the_application_page_renders_in_every_state() {
    for (brokered, status, rule) in [
        (false, "active", None),
        (false, "blocked", None),
        (true, "active", Some("deny")),
        (true, "pending", None),
    ] {
        let app = consumer(brokered, status);
        let html = ApplicationPage {
            site_name: "Test Site",
            nav: nav(true, "applications"),
            notice: Done {
                done: Some("secret".into()),
            }
            .notice(),
            app: &app,
            details_link: app.details_url.as_deref(),
            brokered: app.broker_id.as_deref().map(|broker_id| Brokered {
                broker_id,
                client_id: "client-42",
                rule,
            }),
            registered: format_time(1_700_000_000),
            users: 1,
        }
        .render()
        .unwrap();
        assert!(html.contains("KeyKeyKey123"));
        assert!(html.contains(&"S".repeat(48)));
        assert!(html.contains("part of every signature"));
        assert_eq!(html.contains("id=\"block\""), status == "active");
        assert_eq!(html.contains("id=\"unblock\""), status == "blocked");
        assert_eq!(html.contains("id=\"rule-deny\""), brokered);
        assert_eq!(html.contains("id=\"rule-clear\""), rule.is_some());
        assert_forms_have_csrf(&html);
    }
}

#[test]
fn the_brokers_page_renders() {
    let brokers = vec![BrokerRow {
        broker_id: "https://apps.example/".into(),
        verification_url: "https://apps.example/broker/confirm/".into(),
        added: format_time(1_700_000_000),
    }];
    let rule = |client_id: &str, rule: &str| store::ClientRule {
        broker_id: "https://apps.example/".into(),
        client_id: client_id.into(),
        rule: rule.into(),
    };
    let html = BrokersPage {
        site_name: "Test Site",
        nav: nav(true, "brokers"),
        notice: Done {
            done: Some("broker-added".into()),
        }
        .notice(),
        brokers,
        rules: vec![RuleGroup {
            broker_id: "https://apps.example/".into(),
            known: true,
            allow_list: true,
            rules: vec![rule("a", "allow"), rule("b", "deny")],
        }],
    }
    .render()
    .unwrap();
    assert!(html.contains("https://apps.example/broker/confirm/"));
    assert_eq!(html.matches("class=\"rule\"").count(), 2);
    assert!(html.contains("aria-current=\"page\">Brokers"));
    assert_forms_have_csrf(&html);

    let empty = BrokersPage {
        site_name: "Test Site",
        nav: nav(true, "brokers"),
        notice: None,
        brokers: Vec::new(),
        rules: Vec::new(),
    }
    .render()
    .unwrap();
    assert!(empty.contains("id=\"no-brokers\""));
    assert!(empty.contains("id=\"no-rules\""));
}

#[test]
fn notices_are_fixed_texts() {
    let notice = |done: &str| {
        Done {
            done: Some(done.into()),
        }
        .notice()
    };
    assert!(notice("revoked").is_some());
    assert!(notice("<script>").is_none());
    assert!(Done::default().notice().is_none());
}
