//! Every page renders with sample data, and what developers typed is escaped.

use askama::Template;

use super::accounts::tests_support::{login_page, signup_page};
use super::admin::{AdminAppRow, AppsPage as AdminAppsPage, DeveloperRow, DevelopersPage};
use super::apps::{AppPage, AppRow, AppsPage, ConnectionRow, RegisterValues};
use super::tokens::{TokenRow, TokensPage};
use super::{Done, MessagePage, Nav};
use crate::apps::App;

fn nav(is_admin: bool) -> Nav<'static> {
    Nav {
        user_name: "Dev <&> Co",
        is_admin,
        csrf: "CSRFTOKEN",
        current: "apps",
    }
}

fn sample_app(status: &str) -> App {
    App {
        id: "id1".into(),
        developer_id: "dev1".into(),
        client_id: "CLIENTKEY123".into(),
        client_secret: "SECRET".repeat(8),
        name: "Pressly <script>".into(),
        description: "Publishes <b>Markdown</b>".into(),
        callback_url: "myapp://callback".into(),
        details_url: "javascript:alert(1)".into(),
        status: status.into(),
        created_at: 1_700_000_000,
    }
}

#[test]
fn the_apps_page_lists_apps_and_keeps_the_form() {
    let page = AppsPage {
        broker_name: "Broker",
        nav: nav(false),
        notice: Done {
            done: Some("welcome".into()),
        }
        .notice(),
        apps: vec![AppRow::from(sample_app("suspended"))],
        form: RegisterValues {
            name: "\"><img>".into(),
            ..RegisterValues::default()
        },
        error: Some("The callback URL must be …".into()),
    }
    .render()
    .unwrap();
    assert!(
        page.contains("Pressly &#60;script&#62;") || page.contains("Pressly &lt;script&gt;"),
        "{page}"
    );
    assert!(!page.contains("<img>"), "{page}");
    assert!(page.contains("CLIENTKEY123"));
    assert!(page.contains("status-suspended"));
    assert!(page.contains("name=\"_csrf\" value=\"CSRFTOKEN\""));
    assert!(page.contains("Welcome"));
    assert!(!page.contains("nav-admin-developers"));

    let empty = AppsPage {
        broker_name: "Broker",
        nav: nav(true),
        notice: None,
        apps: Vec::new(),
        form: RegisterValues::default(),
        error: None,
    }
    .render()
    .unwrap();
    assert!(empty.contains("id=\"no-apps\""));
    assert!(empty.contains("nav-admin-developers"));
}

#[test]
fn the_app_page_shows_credentials_and_the_log() {
    let app = sample_app("active");
    let page = AppPage {
        broker_name: "Broker",
        nav: nav(false),
        notice: None,
        app: &app,
        details_link: None,
        registered: "2023-11-14 22:13 UTC".into(),
        connections: vec![
            ConnectionRow {
                site_url: "https://site.example/".into(),
                time: "2023-11-14 22:13 UTC".into(),
                result: "success".into(),
                ok: true,
            },
            ConnectionRow {
                site_url: "https://other.example/".into(),
                time: "2023-11-14 22:14 UTC".into(),
                result: "ba.timed_out".into(),
                ok: false,
            },
        ],
    }
    .render()
    .unwrap();
    assert!(page.contains("id=\"client-secret\">SECRETSECRET"));
    assert!(page.contains("https://other.example/"));
    assert!(page.contains("ba.timed_out"));
    assert!(!page.contains("javascript:"), "only web URLs become links");
    assert!(!page.contains("app-suspended"));
    assert!(page.contains("/apps/CLIENTKEY123/secret"));

    let suspended = sample_app("suspended");
    let page = AppPage {
        broker_name: "Broker",
        nav: nav(false),
        notice: None,
        app: &suspended,
        details_link: Some("https://app.example/"),
        registered: String::new(),
        connections: Vec::new(),
    }
    .render()
    .unwrap();
    assert!(page.contains("app-suspended"));
    assert!(page.contains("no-connections"));
    assert!(page.contains("href=\"https://app.example/\""));
}

#[test]
fn the_tokens_page_shows_a_new_token_once() {
    let page = TokensPage {
        broker_name: "Broker",
        nav: nav(false),
        notice: None,
        new_token: Some("abt_NEW"),
        tokens: vec![TokenRow {
            token_hash: "ab12".into(),
            label: "CI".into(),
            created: "then".into(),
        }],
        api_base: "https://broker.example/api/v1",
    }
    .render()
    .unwrap();
    assert!(page.contains("id=\"new-token\">abt_NEW"));
    assert!(page.contains("name=\"token\" value=\"ab12\""));
    assert!(page.contains("https://broker.example/api/v1/"));
}

#[test]
fn the_admin_pages_render() {
    let page = DevelopersPage {
        broker_name: "Broker",
        nav: nav(true),
        notice: None,
        viewer_id: "me",
        developers: vec![
            DeveloperRow {
                id: "me".into(),
                email: "admin@b.example".into(),
                name: "Admin".into(),
                role: "admin".into(),
                status: "active".into(),
                apps: 0,
                joined: "then".into(),
            },
            DeveloperRow {
                id: "dev2".into(),
                email: "dev@b.example".into(),
                name: "Dev".into(),
                role: "developer".into(),
                status: "suspended".into(),
                apps: 2,
                joined: "then".into(),
            },
        ],
    }
    .render()
    .unwrap();
    assert!(
        !page.contains("/admin/developers/me/suspend"),
        "no suspending oneself"
    );
    assert!(page.contains("/admin/developers/dev2/unsuspend"));

    let page = AdminAppsPage {
        broker_name: "Broker",
        nav: nav(true),
        notice: None,
        apps: vec![AdminAppRow {
            client_id: "CLIENTKEY123".into(),
            name: "Pressly".into(),
            developer: "dev@b.example".into(),
            developer_active: false,
            status: "active".into(),
            registered: "then".into(),
        }],
    }
    .render()
    .unwrap();
    assert!(page.contains("/admin/apps/CLIENTKEY123/suspend"));
    assert!(page.contains("(suspended)"));
}

#[test]
fn the_account_pages_render() {
    let page = login_page("/apps/x", "dev@b.example", Some("Unknown email"));
    assert!(page.contains("name=\"redirect_to\" value=\"/apps/x\""));
    assert!(page.contains("Unknown email"));
    let page = signup_page("dev@b.example", "Dev", Some("Use a password"));
    assert!(page.contains("minlength=\"12\""));
    let page = MessagePage {
        broker_name: "Broker",
        heading: "Something went wrong",
        text: "<oops>",
    }
    .render()
    .unwrap();
    assert!(!page.contains("<oops>"));
}

#[test]
fn notices_are_fixed_texts() {
    let notice = |done: &str| {
        Done {
            done: Some(done.into()),
        }
        .notice()
    };
    for done in [
        "welcome",
        "registered",
        "secret",
        "deleted",
        "token-created",
        "token-revoked",
        "suspended",
        "unsuspended",
    ] {
        assert!(notice(done).is_some(), "{done}");
    }
    assert!(notice("<script>").is_none());
    assert!(Done::default().notice().is_none());
}
