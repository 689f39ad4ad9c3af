//! The scripted approver: a person at a browser, as plain HTTP.

use std::time::Duration;

use reqwest::StatusCode;
use url::Url;

use crate::{DemoError, Login};

/// At most this many requests from the authorize URL to the callback (a browser's redirect limit is 20;
/// the site needs at most five: authorize, login page, login, authorize, approve).
const MAX_REQUESTS: usize = 12;

/// Per-request timeout.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A site user at a browser who approves every connection: keeps cookies, trusts the demo's CA, follows
/// redirects on the site itself and stops at the first redirect elsewhere (the app's callback).
#[derive(Debug, Clone)]
pub struct Approver {
    client: reqwest::Client,
    login: Login,
}

impl Approver {
    /// A browser that trusts the CA in `ca_pem` (besides the usual roots) and logs in as `login` when asked.
    pub fn new(ca_pem: &str, login: &Login) -> Result<Self, DemoError> {
        let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).map_err(|source| {
            DemoError::Http {
                what: "reading the CA certificate".to_owned(),
                source,
            }
        })?;
        let client = reqwest::Client::builder()
            .add_root_certificate(ca)
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .user_agent(concat!(
                "authbroker-demo-approver/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|source| DemoError::Http {
                what: "building the approver's HTTP client".to_owned(),
                source,
            })?;
        Ok(Self {
            client,
            login: login.clone(),
        })
    }

    /// Opens `authorize_url` like a browser: logs in on the site's login form when redirected there, then
    /// approves on the consent page. Returns the URL the site redirected to (the app's callback with
    /// `oauth_token` and `oauth_verifier`), without visiting it.
    ///
    /// Errors never quote URLs with their query, which holds the request token.
    pub async fn approve(&self, authorize_url: &str) -> Result<String, DemoError> {
        let mut url = Url::parse(authorize_url)
            .map_err(|err| DemoError::Approval(format!("the authorize URL is not a URL: {err}")))?;
        let site = url.origin();
        let mut logged_in = false;
        for _ in 0..MAX_REQUESTS {
            let response = self.send(self.client.get(url.clone()), &url).await?;
            let status = response.status();
            if status.is_redirection() {
                let next = location(&url, &response)?;
                if next.origin() != site {
                    return Ok(next.into());
                }
                if next.path() == "/login" || next.path() == "/wp-login.php" {
                    if logged_in {
                        return Err(DemoError::Approval(format!(
                            "the site asked {} to log in again right after logging in",
                            self.login.login
                        )));
                    }
                    url = self.log_in(&next).await?;
                    logged_in = true;
                } else {
                    url = next;
                }
                continue;
            }
            let page = self.text(response, &url).await?;
            if status != StatusCode::OK {
                return Err(unexpected("GET", &url, status, &page));
            }
            if page.contains("action=\"/oauth1/authorize\"") {
                return self.consent(&url, &page).await;
            }
            return Err(DemoError::Approval(format!(
                "GET {} showed {:?}, neither a login form nor a consent page",
                without_query(&url),
                title(&page)
            )));
        }
        Err(DemoError::Approval(format!(
            "more than {MAX_REQUESTS} requests without reaching the callback"
        )))
    }

    /// Visits `url` (for instance the callback, which the client's loopback listener answers) without
    /// following redirects; returns the HTTP status.
    pub async fn visit(&self, url: &str) -> Result<u16, DemoError> {
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|source| DemoError::Http {
                what: format!("visiting {}", url.split('?').next().unwrap_or(url)),
                source,
            })?;
        Ok(response.status().as_u16())
    }

    /// Fills in the login form at `login_url` (which carries `redirect_to`); returns where the site sends
    /// the browser next.
    async fn log_in(&self, login_url: &Url) -> Result<Url, DemoError> {
        let response = self
            .send(self.client.get(login_url.clone()), login_url)
            .await?;
        let status = response.status();
        let page = self.text(response, login_url).await?;
        if status != StatusCode::OK {
            return Err(unexpected("GET", login_url, status, &page));
        }
        let csrf = hidden_field(&page, "_csrf")
            .ok_or_else(|| DemoError::Approval("the login page has no _csrf field".to_owned()))?;
        // The page repeats `redirect_to` HTML-escaped; the query has it exactly.
        let redirect_to = login_url
            .query_pairs()
            .find(|(name, _)| name == "redirect_to")
            .map(|(_, value)| value.into_owned())
            .or_else(|| hidden_field(&page, "redirect_to"))
            .unwrap_or_else(|| "/".to_owned());
        let post_url = login_url
            .join("/login")
            .map_err(|err| DemoError::Approval(format!("cannot build the login URL: {err}")))?;
        let request = self.client.post(post_url.clone()).form(&[
            ("log", self.login.login.as_str()),
            ("pwd", self.login.password.as_str()),
            ("_csrf", csrf.as_str()),
            ("redirect_to", redirect_to.as_str()),
        ]);
        let response = self.send(request, &post_url).await?;
        let status = response.status();
        if status.is_redirection() {
            return location(&post_url, &response);
        }
        let page = self.text(response, &post_url).await?;
        if status == StatusCode::UNAUTHORIZED {
            return Err(DemoError::Approval(format!(
                "the site refused the login {:?}: unknown username or incorrect password",
                self.login.login
            )));
        }
        Err(unexpected("POST", &post_url, status, &page))
    }

    /// Clicks "Authorize" on the consent page `page` shown at `page_url`; returns the callback URL.
    async fn consent(&self, page_url: &Url, page: &str) -> Result<String, DemoError> {
        let field = |name: &str| {
            hidden_field(page, name)
                .ok_or_else(|| DemoError::Approval(format!("the consent page has no {name} field")))
        };
        let csrf = field("_csrf")?;
        let token = field("oauth_token")?;
        let post_url = page_url
            .join("/oauth1/authorize")
            .map_err(|err| DemoError::Approval(format!("cannot build the consent URL: {err}")))?;
        let request = self.client.post(post_url.clone()).form(&[
            ("_csrf", csrf.as_str()),
            ("oauth_token", token.as_str()),
            ("wp-submit", "authorize"),
        ]);
        let response = self.send(request, &post_url).await?;
        let status = response.status();
        if status.is_redirection() {
            return location(&post_url, &response).map(String::from);
        }
        let page = self.text(response, &post_url).await?;
        if status == StatusCode::OK {
            return Err(DemoError::Approval(format!(
                "the site approved but showed {:?} instead of redirecting to a callback (an oob callback?)",
                title(&page)
            )));
        }
        Err(unexpected("POST", &post_url, status, &page))
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        url: &Url,
    ) -> Result<reqwest::Response, DemoError> {
        request.send().await.map_err(|source| DemoError::Http {
            what: format!("requesting {}", without_query(url)),
            source: source.without_url(),
        })
    }

    async fn text(&self, response: reqwest::Response, url: &Url) -> Result<String, DemoError> {
        response.text().await.map_err(|source| DemoError::Http {
            what: format!("reading {}", without_query(url)),
            source: source.without_url(),
        })
    }
}

/// The absolute `Location` of a redirect from `base`.
fn location(base: &Url, response: &reqwest::Response) -> Result<Url, DemoError> {
    let value = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .ok_or_else(|| {
            DemoError::Approval(format!(
                "{} redirected without a usable Location",
                without_query(base)
            ))
        })?;
    base.join(value).map_err(|err| {
        DemoError::Approval(format!(
            "{} redirected to an invalid Location: {err}",
            without_query(base)
        ))
    })
}

/// A URL without its query and fragment (which hold tokens), for messages.
fn without_query(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.into()
}

/// An unexpected answer: method, URL (without its query), status and the page's title.
fn unexpected(method: &str, url: &Url, status: StatusCode, page: &str) -> DemoError {
    DemoError::Approval(format!(
        "{method} {} answered {status}: {:?}",
        without_query(url),
        title(page)
    ))
}

/// What a page says about itself: its `<title>`, else the start of its text.
fn title(page: &str) -> String {
    let inner = page
        .find("<title>")
        .map(|start| start + "<title>".len())
        .and_then(|start| {
            page[start..]
                .find("</title>")
                .map(|end| &page[start..start + end])
        });
    let text = inner.unwrap_or(page).trim();
    let mut short: String = text.chars().take(200).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    unescape(&short)
}

/// The value of the hidden form field `name` in a page (HTML-unescaped).
fn hidden_field(page: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker)? + marker.len();
    let end = page[start..].find('"')? + start;
    Some(unescape(&page[start..end]))
}

/// Undoes the HTML escaping of attribute values and text (askama's, and the numeric forms).
fn unescape(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest.find(';').and_then(|semi| {
            let entity = &rest[1..semi];
            let ch = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                    .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                    .or_else(|| entity.strip_prefix('#').and_then(|dec| dec.parse().ok()))
                    .and_then(char::from_u32),
            };
            ch.map(|ch| (ch, semi + 1))
        });
        match decoded {
            Some((ch, len)) => {
                out.push(ch);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_fields_are_found_and_unescaped() {
        let page = r#"<input type="hidden" name="_csrf" value="abc123">
<input type="hidden" name="redirect_to" value="/oauth1/authorize?oauth_token=t&#38;oauth_callback=x&amp;y">"#;
        assert_eq!(hidden_field(page, "_csrf").as_deref(), Some("abc123"));
        assert_eq!(
            hidden_field(page, "redirect_to").as_deref(),
            Some("/oauth1/authorize?oauth_token=t&oauth_callback=x&y")
        );
        assert_eq!(hidden_field(page, "missing"), None);
    }

    #[test]
    fn unescape_leaves_bare_ampersands_and_unknown_entities() {
        assert_eq!(unescape("a & b &bogus; &#x27;c&#39;"), "a & b &bogus; 'c'");
        assert_eq!(unescape("&lt;p&gt;&quot;"), "<p>\"");
    }

    #[test]
    fn titles_are_short_and_plain() {
        assert_eq!(
            title("<html><title>Log in &#8212; Demo Site</title></html>"),
            "Log in — Demo Site"
        );
        assert_eq!(title("plain text"), "plain text");
    }

    #[test]
    fn messages_drop_the_query() {
        let url = Url::parse("https://127.0.0.1:1/oauth1/authorize?oauth_token=secret#x")
            .unwrap_or_else(|err| panic!("test URL: {err}"));
        assert_eq!(without_query(&url), "https://127.0.0.1:1/oauth1/authorize");
    }
}
