//! The authbroker client SDK: connect an app to any WordPress-compatible site and act for its user.
//!
//! * [`Client::discover`] turns what a person typed (`blog.example`, `https://www.blog.example/`) into a
//!   [`Site`]: the REST root and its OAuth 1.0a and brokered-connection endpoints.
//! * [`Client::connect_via_broker`] asks a broker that vouches for the app to obtain consumer credentials
//!   from the site (the 2016 Brokered Authentication protocol, R1–R6); apps registered directly on a site
//!   use their own [`Credentials`] instead.
//! * [`Client::authorize`] runs the OAuth 1.0a three-legged flow: request token, the user approves in their
//!   browser on their own site, a [`LoopbackCallback`] on `127.0.0.1` catches the redirect (or the user
//!   pastes the verifier), access token.
//! * [`Session`] makes signed REST calls, with typed calls for `users/me` and `wp/v2/posts`.
//! * [`store::TokenStore`] keeps connections: the OS keyring for secrets, a 0600 file where there is none.
//!
//! ```no_run
//! use authbroker_client::{Approval, Client, Credentials, NewPost};
//!
//! # async fn example() -> Result<(), authbroker_client::Error> {
//! let client = Client::new()?;
//! let site = client.discover("blog.example").await?;
//! // The app's key and secret at its broker.
//! let app = Credentials::new("broker-key", "broker-secret");
//! let consumer = client
//!     .connect_via_broker("https://apps.wp-api.org/", &app, &site, |progress| {
//!         eprintln!("{progress:?}")
//!     })
//!     .await?;
//! // Opens nothing by itself: show the URL (or open a browser) and wait for the redirect.
//! let session = client
//!     .authorize(&site, &consumer.credentials, Approval::loopback("/callback"), |url| {
//!         println!("Approve the app at {url}");
//!     })
//!     .await?;
//! let me = session.me().await?;
//! let post = session
//!     .create_post(&NewPost {
//!         title: "Hello".into(),
//!         content: "<p>Written with authbroker</p>".into(),
//!         status: "draft".into(),
//!         slug: None,
//!     })
//!     .await?;
//! println!("{} published {}", me.name, post.link);
//! # Ok(())
//! # }
//! ```

mod api;
mod broker;
mod discovery;
mod error;
mod flow;
mod loopback;
pub mod store;

use std::time::Duration;

pub use api::{Id, NewPost, Post, PostList, Rendered, Revocation, Session, User};
pub use broker::{BrokerProgress, Brokered};
pub use discovery::{OAuth1Endpoints, Site, candidate_urls};
pub use error::{Error, Result};
pub use flow::{Approval, RequestToken, verifier_from_paste};
pub use loopback::{CallbackOutcome, LoopbackCallback};

pub use authbroker_oauth1::SignatureMethod;

/// A key and its secret: an app's broker credentials, a site consumer, a request or an access token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub key: String,
    pub secret: String,
}

impl Credentials {
    pub fn new(key: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            secret: secret.into(),
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("key", &self.key)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// Settings of a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    roots: Vec<reqwest::Certificate>,
    timeout: Duration,
    broker_timeout: Duration,
    signature_method: SignatureMethod,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self {
            roots: Vec::new(),
            timeout: Duration::from_secs(30),
            broker_timeout: Duration::from_secs(60),
            signature_method: SignatureMethod::HmacSha1,
        }
    }
}

impl ClientBuilder {
    /// Trusts an extra certificate authority (PEM), besides the system's roots — for a local CA such as
    /// the one `authbroker demo` makes.
    pub fn add_root_pem(mut self, pem: &[u8]) -> Result<Self> {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|err| Error::protocol("the CA file", err.to_string()))?;
        if certs.is_empty() {
            return Err(Error::protocol("the CA file", "no PEM certificate in it"));
        }
        self.roots.extend(certs);
        Ok(self)
    }

    /// Timeout of one request to a site (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long to wait for a broker holding a connection (default 60 s; brokers answer within 25 s).
    pub fn broker_timeout(mut self, timeout: Duration) -> Self {
        self.broker_timeout = timeout;
        self
    }

    /// HMAC-SHA1 (default, what every WordPress site speaks) or HMAC-SHA256.
    pub fn signature_method(mut self, method: SignatureMethod) -> Self {
        self.signature_method = method;
        self
    }

    pub fn build(self) -> Result<Client> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("authbroker/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none());
        for root in self.roots {
            builder = builder.add_root_certificate(root);
        }
        let http = builder
            .build()
            .map_err(|err| Error::protocol("the HTTP client", err.to_string()))?;
        Ok(Client {
            http,
            timeout: self.timeout,
            broker_timeout: self.broker_timeout,
            method: self.signature_method,
        })
    }
}

/// The entry point: one per app, cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    timeout: Duration,
    broker_timeout: Duration,
    method: SignatureMethod,
}

impl Client {
    /// A client with the system's certificate authorities and default timeouts.
    pub fn new() -> Result<Self> {
        ClientBuilder::default().build()
    }

    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A session for a connection made earlier (e.g. read back from the [`store::TokenStore`]).
    pub fn session(&self, site: Site, consumer: Credentials, token: Credentials) -> Session {
        Session::new(self.clone(), site, consumer, token)
    }
}

/// Unix seconds now, for `oauth_timestamp`.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A fresh nonce: 32 letters and digits (190 bits).
pub(crate) fn nonce() -> String {
    use rand::Rng;
    rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}
