//! The demo's scenario: what an app and its user do, with the SDK, against a started [`World`]: discover
//! the site, connect through the broker, approve, publish a post and read it back.

use std::time::{Duration, Instant};

use authbroker_client::{Approval, BrokerProgress, Client, Credentials, NewPost, Revocation};

use crate::{Approver, DemoError, World};

pub const STEP_DISCOVERY: &str = "site discovered from its address";
pub const STEP_BROKERED: &str =
    "brokered connection: the broker vouched, the site issued credentials";
pub const STEP_APPROVAL: &str = "OAuth 1.0a approval: request token, consent, access token";
pub const STEP_POST: &str = "post published";
pub const STEP_READ_BACK: &str = "post read back";
pub const STEP_REVOKED: &str = "token revoked on the site";

/// Who approves on the consent page.
pub enum Approve {
    /// The scripted user (the demo's author) approves over HTTP.
    Scripted,
    /// A person: the function shows them the URL (prints it, opens a browser).
    Person(Box<dyn FnOnce(&str) + Send>),
}

impl std::fmt::Debug for Approve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Scripted => "Scripted",
            Self::Person(_) => "Person",
        })
    }
}

/// What the scenario produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Who approved (display name).
    pub user: String,
    /// The published post's URL and title as read back.
    pub post_link: String,
    pub post_title: String,
}

/// Runs the scenario against `world`, calling `step(name, duration)` after each step.
pub async fn run(
    world: &World,
    approve: Approve,
    step: &mut dyn FnMut(&str, Duration),
) -> Result<Outcome, DemoError> {
    let client = Client::builder()
        .add_root_pem(world.ca_pem().as_bytes())?
        .build()?;
    let started = Instant::now();
    // What a person types: the address without its scheme.
    let typed = world.site_url().trim_start_matches("https://");
    let site = client.discover(typed).await?;
    step(STEP_DISCOVERY, started.elapsed());

    let started = Instant::now();
    let app = world.app();
    let brokered = client
        .connect_via_broker(
            &world.broker_id(),
            &Credentials::new(&app.client_id, &app.client_secret),
            &site,
            |_: BrokerProgress| {},
        )
        .await?;
    step(STEP_BROKERED, started.elapsed());

    let started = Instant::now();
    // Either a person is shown the URL, or the scripted user gets it through a channel and approves. The
    // two run side by side; the first error ends both (a failed approval must not leave `authorize` waiting).
    let (show, url) = match approve {
        Approve::Person(show) => (Ok(show), None),
        Approve::Scripted => {
            let (shown, url) = tokio::sync::oneshot::channel::<String>();
            (Err(shown), Some(url))
        }
    };
    let scripted = async {
        let Some(url) = url else { return Ok(()) };
        let approver = Approver::new(world.ca_pem(), world.site_author())?;
        let url = url
            .await
            .map_err(|_| DemoError::Scenario("no authorize URL was shown".to_owned()))?;
        let callback = approver.approve(&url).await?;
        approver.visit(&callback).await?;
        Ok::<(), DemoError>(())
    };
    let authorizing = async {
        client
            .authorize(
                &brokered.site,
                &brokered.credentials,
                Approval::loopback(&callback_path(&app.callback_url)),
                move |authorize_url| match show {
                    Ok(show) => show(authorize_url),
                    Err(shown) => {
                        let _ = shown.send(authorize_url.to_owned());
                    }
                },
            )
            .await
            .map_err(DemoError::from)
    };
    let (session, ()) = tokio::try_join!(authorizing, scripted)?;
    let me = session.me().await?;
    step(STEP_APPROVAL, started.elapsed());

    let started = Instant::now();
    let title = "Hello from authbroker".to_owned();
    let created = session
        .create_post(&NewPost {
            title: title.clone(),
            content: "<p>Published through a brokered OAuth 1.0a connection.</p>".to_owned(),
            status: "publish".to_owned(),
            slug: None,
        })
        .await?;
    step(STEP_POST, started.elapsed());

    let started = Instant::now();
    let read = session.post(&created.id).await?;
    if read.title.rendered != title {
        return Err(DemoError::Scenario(format!(
            "the post read back has the title {:?}, not {title:?}",
            read.title.rendered
        )));
    }
    step(STEP_READ_BACK, started.elapsed());

    let started = Instant::now();
    match session.revoke().await? {
        Revocation::Revoked => {}
        other => {
            return Err(DemoError::Scenario(format!(
                "revoking the token gave {other:?}"
            )));
        }
    }
    step(STEP_REVOKED, started.elapsed());
    Ok(Outcome {
        user: me.name,
        post_link: read.link,
        post_title: read.title.rendered,
    })
}

/// The path of the app's registered loopback callback (`http://127.0.0.1/callback` → `/callback`).
fn callback_path(callback: &str) -> String {
    url::Url::parse(callback).map_or_else(|_| "/callback".to_owned(), |u| u.path().to_owned())
}
