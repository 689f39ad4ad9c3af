//! The outbound HTTP client every authbroker service uses to reach URLs it did not choose (a `server_url`
//! typed by a user, a site's REST index, a broker's JWKS).
//!
//! What it guarantees, whatever the URL:
//! * **SSRF guard** — loopback, private (RFC 1918, ULA), link-local (including the cloud metadata address
//!   169.254.169.254), CGNAT, unspecified, multicast, broadcast and IPv4-mapped forms of these are refused,
//!   both as literal hosts and as DNS answers (the resolver drops them, so a name that resolves to a private
//!   address fails instead of connecting). Tests and `demo` allow loopback explicitly with [`Allow`].
//! * **Redirects** are followed by hand, at most [`OutboundConfig::max_redirects`], and every hop is checked
//!   again (a public URL redirecting to `http://127.0.0.1/` is refused).
//! * **Limits** — connect and total timeouts, and a cap on the body read.
//! * **TLS** with rustls and certificate verification always on; extra roots (a private CA) by config.

mod guard;

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, LOCATION};
use reqwest::{Method, StatusCode};

pub use guard::{Allow, is_forbidden};
pub use reqwest::Certificate;

/// How the client behaves.
#[derive(Debug, Clone)]
pub struct OutboundConfig {
    /// Which otherwise-forbidden address classes may be reached.
    pub allow: Allow,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// TCP + TLS connect timeout.
    pub connect_timeout: Duration,
    /// Redirects followed before giving up.
    pub max_redirects: usize,
    /// Largest body [`Outbound::read_body`] accepts.
    pub max_body: usize,
    /// Extra trusted roots (a private CA).
    pub extra_roots: Vec<Certificate>,
    /// Sent as `User-Agent`.
    pub user_agent: String,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self {
            allow: Allow::default(),
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            max_redirects: 5,
            max_body: 2 * 1024 * 1024,
            extra_roots: Vec::new(),
            user_agent: concat!("authbroker/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// Why an outbound request failed. The variants are what callers map to protocol errors.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("not an http(s) URL: {0}")]
    InvalidUrl(String),
    #[error("refusing to connect to {0}: private, loopback, link-local or metadata address")]
    Forbidden(String),
    #[error("more than {0} redirects")]
    TooManyRedirects(usize),
    #[error("redirect without a usable Location header")]
    BadRedirect,
    #[error("response body larger than {0} bytes")]
    BodyTooLarge(usize),
    #[error("timed out")]
    Timeout,
    #[error("request failed: {0}")]
    Transport(String),
}

impl From<reqwest::Error> for OutboundError {
    fn from(err: reqwest::Error) -> Self {
        if err.is_timeout() {
            return Self::Timeout;
        }
        // The resolver's refusal travels inside reqwest's error chain; surface it as what it is.
        let mut source: Option<&dyn std::error::Error> = Some(&err);
        while let Some(e) = source {
            if let Some(guard::Refused(host)) = e.downcast_ref::<guard::Refused>() {
                return Self::Forbidden(host.clone());
            }
            source = e.source();
        }
        Self::Transport(error_chain(&err))
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// A response after redirects, with the URL it finally came from.
#[derive(Debug)]
pub struct Fetched {
    pub url: url::Url,
    pub status: StatusCode,
    pub headers: HeaderMap,
    response: reqwest::Response,
}

/// The guarded client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Outbound {
    client: reqwest::Client,
    config: Arc<OutboundConfig>,
}

impl Outbound {
    /// Builds the client.
    pub fn new(config: OutboundConfig) -> Result<Self, OutboundError> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(config.user_agent.clone())
            .dns_resolver(Arc::new(guard::GuardedResolver::new(config.allow)));
        for root in &config.extra_roots {
            builder = builder.add_root_certificate(root.clone());
        }
        let client = builder
            .build()
            .map_err(|e| OutboundError::Transport(error_chain(&e)))?;
        Ok(Self {
            client,
            config: Arc::new(config),
        })
    }

    /// The configuration in effect.
    pub fn config(&self) -> &OutboundConfig {
        &self.config
    }

    /// `GET url`, following redirects.
    pub async fn get(&self, url: &str) -> Result<Fetched, OutboundError> {
        self.send(Method::GET, url, None).await
    }

    /// `HEAD url`, following redirects.
    pub async fn head(&self, url: &str) -> Result<Fetched, OutboundError> {
        self.send(Method::HEAD, url, None).await
    }

    /// `POST url` with a form body. Redirects are not followed for POST (a redirected connection request
    /// is an error, not something to replay elsewhere).
    pub async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<Fetched, OutboundError> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        self.send(Method::POST, url, Some(body)).await
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        form: Option<String>,
    ) -> Result<Fetched, OutboundError> {
        let mut current = parse_checked(url, self.config.allow)?;
        let mut redirects = 0;
        loop {
            let mut request = self.client.request(method.clone(), current.clone());
            if let Some(body) = &form {
                request = request
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(body.clone());
            }
            let response = request.send().await?;
            let status = response.status();
            if status.is_redirection() && form.is_none() && status != StatusCode::NOT_MODIFIED {
                if redirects == self.config.max_redirects {
                    return Err(OutboundError::TooManyRedirects(self.config.max_redirects));
                }
                redirects += 1;
                let location = response
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or(OutboundError::BadRedirect)?;
                let next = current
                    .join(location)
                    .map_err(|_| OutboundError::BadRedirect)?;
                current = parse_checked(next.as_str(), self.config.allow)?;
                continue;
            }
            return Ok(Fetched {
                url: current,
                status,
                headers: response.headers().clone(),
                response,
            });
        }
    }

    /// Reads a body, refusing one larger than the configured cap without buffering it all.
    pub async fn read_body(&self, fetched: Fetched) -> Result<Vec<u8>, OutboundError> {
        let limit = self.config.max_body;
        if fetched
            .response
            .content_length()
            .is_some_and(|len| len > limit as u64)
        {
            return Err(OutboundError::BodyTooLarge(limit));
        }
        let mut response = fetched.response;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > limit {
                return Err(OutboundError::BodyTooLarge(limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// Parses `url`, requires http(s) and a host, and refuses literal forbidden addresses (which never reach
/// the resolver).
fn parse_checked(url: &str, allow: Allow) -> Result<url::Url, OutboundError> {
    let parsed = url::Url::parse(url).map_err(|_| OutboundError::InvalidUrl(url.to_owned()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(OutboundError::InvalidUrl(url.to_owned()));
    }
    match parsed.host() {
        None => Err(OutboundError::InvalidUrl(url.to_owned())),
        Some(url::Host::Ipv4(ip)) if is_forbidden(ip.into(), allow) => {
            Err(OutboundError::Forbidden(ip.to_string()))
        }
        Some(url::Host::Ipv6(ip)) if is_forbidden(ip.into(), allow) => {
            Err(OutboundError::Forbidden(ip.to_string()))
        }
        Some(url::Host::Domain(name))
            if name.eq_ignore_ascii_case("localhost") || name.ends_with(".localhost") =>
        {
            if allow.loopback {
                Ok(parsed)
            } else {
                Err(OutboundError::Forbidden(name.to_owned()))
            }
        }
        Some(_) => Ok(parsed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_hosts_are_checked_before_any_connection() {
        let none = Allow::default();
        for url in [
            "http://127.0.0.1/",
            "http://[::1]:8080/",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.1/",
            "http://localhost:80/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0/",
        ] {
            assert!(
                matches!(parse_checked(url, none), Err(OutboundError::Forbidden(_))),
                "{url}"
            );
        }
        assert!(parse_checked("https://93.184.215.14/", none).is_ok());
        assert!(parse_checked("https://site.example/", none).is_ok());
        assert!(matches!(
            parse_checked("ftp://site.example/", none),
            Err(OutboundError::InvalidUrl(_))
        ));
        assert!(matches!(
            parse_checked("not a url", none),
            Err(OutboundError::InvalidUrl(_))
        ));
        let loopback = Allow {
            loopback: true,
            private: false,
        };
        assert!(parse_checked("http://127.0.0.1:9/", loopback).is_ok());
        assert!(parse_checked("http://localhost/", loopback).is_ok());
        assert!(parse_checked("http://10.0.0.1/", loopback).is_err());
    }
}
