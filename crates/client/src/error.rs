//! The one error type of the SDK. Every variant's message tells the person at the other end what to do.

/// What went wrong, worded for the person using the app.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The typed address is not a URL we can use.
    #[error("{input:?} is not a site address: {reason}")]
    InvalidUrl { input: String, reason: String },
    /// Plain HTTP to a host that is not this machine: tokens would travel in the clear.
    #[error(
        "{url} uses plain http; authbroker only talks to sites over https (plain http is allowed for 127.0.0.1, ::1 and localhost only)"
    )]
    InsecureUrl { url: String },
    /// No request reached the site (DNS, connection refused, TLS, timeout).
    #[error("cannot reach {url}: {cause}")]
    Unreachable { url: String, cause: String },
    /// The site answered but has no WordPress REST API we could find.
    #[error(
        "{url} does not look like a WordPress site: no REST API found (tried the api.w.org Link header, /wp-json/ and ?rest_route=/){}",
        detail.as_deref().map(|d| format!("; {d}")).unwrap_or_default()
    )]
    NotAWordPressSite {
        url: String,
        /// Why the most telling attempt failed (a TLS error, a 401 from a locked-down API), if one did.
        detail: Option<String>,
    },
    /// The site's REST index names no OAuth 1.0a endpoints.
    #[error(
        "{site} does not offer OAuth 1.0a (its REST index has no authentication.oauth1); the site owner needs to enable it"
    )]
    NoOAuth1 { site: String },
    /// The site does not accept brokered connections.
    #[error(
        "{site} does not accept brokered connections (its REST index has no authentication.broker); ask its owner to install broker support, or register the app on the site and use direct credentials"
    )]
    NoBrokerSupport { site: String },
    /// The broker refused or failed the connection; `code` is the protocol's error code.
    #[error("the broker could not connect the app to the site: {message} ({code}){hint}", hint = broker_hint(code, site_error.as_deref()))]
    Broker {
        code: String,
        message: String,
        /// The site's own refusal, when the broker relayed one (e.g. `ba.unknown_broker`).
        site_error: Option<String>,
    },
    /// The site refused an OAuth request; `code` is the protocol's error code where the site sent one.
    #[error("{site} refused the request: {message}{hint}", hint = oauth_hint(code.as_deref()))]
    OAuth {
        site: String,
        status: u16,
        code: Option<String>,
        message: String,
    },
    /// The stored access token no longer works (revoked on the site, or the site forgot it).
    #[error(
        "the connection to {site} is no longer valid ({message}); run `authbroker connect {site}` again"
    )]
    TokenRejected { site: String, message: String },
    /// The user pressed Cancel on the consent page.
    #[error("the request was denied on {site}: nothing was connected")]
    Denied { site: String },
    /// Nobody completed the approval in time.
    #[error(
        "no approval arrived within {seconds} s; run the command again and approve in the browser"
    )]
    ApprovalTimedOut { seconds: u64 },
    /// The REST API answered with an error.
    #[error("{site} answered {status}: {message} ({code})")]
    Api {
        site: String,
        status: u16,
        code: String,
        message: String,
    },
    /// The other side sent something that does not follow the protocol.
    #[error("{what} sent an answer authbroker cannot read: {detail}")]
    Protocol { what: String, detail: String },
    /// A local I/O problem (the loopback listener, the terminal).
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The token store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

fn broker_hint(code: &str, site_error: Option<&str>) -> String {
    match (code, site_error) {
        (_, Some("ba.unknown_broker")) => {
            "; the site does not trust this broker: its owner can add the broker on the site's Brokers page"
                .to_owned()
        }
        (_, Some("ba.rejected_client")) => {
            "; the site's owner has blocked this app".to_owned()
        }
        (_, Some(other)) => format!("; the site said {other}"),
        ("json_consumer_notfound", None) => {
            "; the app's broker key is unknown or suspended: check the app credentials".to_owned()
        }
        ("json_oauth1_signature_mismatch", None) => {
            "; the app's broker secret is wrong: check the app credentials".to_owned()
        }
        ("json_oauth1_invalid_timestamp", None) => {
            "; this computer's clock is off by more than 15 minutes".to_owned()
        }
        ("ba.timed_out", None) => "; the site did not confirm in time, try again".to_owned(),
        _ => String::new(),
    }
}

fn oauth_hint(code: Option<&str>) -> &'static str {
    match code {
        Some("json_oauth1_invalid_timestamp") => {
            "; this computer's clock is off by more than 15 minutes"
        }
        Some("json_oauth1_invalid_callback") => {
            "; the callback URL does not match the one registered for the app"
        }
        Some("json_consumer_notfound") => {
            "; the app's credentials for this site are unknown or blocked: connect again"
        }
        _ => "",
    }
}

impl Error {
    pub(crate) fn unreachable(url: &str, err: &reqwest::Error) -> Self {
        // reqwest's Display stops at the outermost layer ("error sending request"); the cause chain says why.
        let mut cause = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(inner) = source {
            cause.push_str(": ");
            cause.push_str(&inner.to_string());
            source = inner.source();
        }
        Self::Unreachable {
            url: url.to_owned(),
            cause,
        }
    }

    pub(crate) fn protocol(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::Protocol {
            what: what.into(),
            detail: detail.into(),
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// Whether the fix is to connect to the site again (the CLI exits with a distinct code for this).
    pub fn needs_reconnect(&self) -> bool {
        matches!(self, Self::TokenRejected { .. })
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
