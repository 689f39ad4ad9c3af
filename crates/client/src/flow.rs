//! R7–R11 from the client's side: request token, the user's approval, access token.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use authbroker_oauth1::{Signer, parse_form};

use crate::loopback::{CallbackOutcome, LoopbackCallback};
use crate::{Client, Credentials, Error, OAuth1Endpoints, Result, Session, Site, nonce, unix_now};

/// How long `/oauth1/request` is retried while brokered credentials are not active yet. The reference
/// broker hands them over before the site has activated them; our site activates first, but clients must
/// cope with both (PROTOCOL.md R5).
const ACTIVATION_GRACE: Duration = Duration::from_secs(3);
const RETRY_EVERY: Duration = Duration::from_millis(50);

/// A request token, before the user approved it.
#[derive(Debug, Clone)]
pub struct RequestToken {
    pub credentials: Credentials,
    /// The callback it was issued for (`oob` for pasted verifiers).
    pub callback: String,
}

type Paste = Pin<Box<dyn Future<Output = Option<String>> + Send>>;

/// How the user's approval comes back to the app.
pub struct Approval {
    loopback: Option<(String, u16)>,
    pasted: Option<Paste>,
    timeout: Duration,
}

impl std::fmt::Debug for Approval {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Approval")
            .field("loopback", &self.loopback)
            .field("pasted", &self.pasted.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Approval {
    /// A listener on `http://127.0.0.1:{ephemeral port}{path}` catches the browser's redirect (RFC 8252
    /// §7.3). The app's registered callback should be `http://127.0.0.1{path}`; sites built on authbroker
    /// accept any port for it.
    pub fn loopback(path: &str) -> Self {
        Self {
            loopback: Some((path.to_owned(), 0)),
            pasted: None,
            timeout: Duration::from_secs(600),
        }
    }

    /// Listen on a fixed port (for sites that compare the callback's port, such as WordPress).
    pub fn port(mut self, port: u16) -> Self {
        if let Some((_, p)) = &mut self.loopback {
            *p = port;
        }
        self
    }

    /// The callback `oob`: the site shows the verifier and the user pastes it (`paste` yields the text).
    pub fn out_of_band(paste: impl Future<Output = Option<String>> + Send + 'static) -> Self {
        Self {
            loopback: None,
            pasted: Some(Box::pin(paste)),
            timeout: Duration::from_secs(600),
        }
    }

    /// Also accept a pasted verifier, or the whole URL the browser was sent to, whichever comes first —
    /// for a browser on another machine, whose redirect to 127.0.0.1 cannot reach this one.
    pub fn or_pasted(
        mut self,
        paste: impl Future<Output = Option<String>> + Send + 'static,
    ) -> Self {
        self.pasted = Some(Box::pin(paste));
        self
    }

    /// How long to wait for the user (default 10 minutes).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// What a person pasted: a verifier (see [`verifier_from_paste`]) or the address of a denial
/// (`denied=<this request token>`).
fn outcome_from_paste(text: &str, request_token: &str) -> Option<CallbackOutcome> {
    let query = text.trim().split_once('?').map_or(text.trim(), |(_, q)| q);
    if let Ok(pairs) = parse_form(query)
        && pairs
            .iter()
            .any(|(name, value)| name == "denied" && value == request_token)
    {
        return Some(CallbackOutcome::Denied);
    }
    verifier_from_paste(text, request_token).map(CallbackOutcome::Approved)
}

/// The verifier in what a person pasted: the verifier itself, or a callback URL (or its query) carrying
/// `oauth_verifier`, whose `oauth_token` (when present) must be this request token's.
pub fn verifier_from_paste(text: &str, request_token: &str) -> Option<String> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if !text.contains('=') {
        return text
            .chars()
            .all(|c| c.is_ascii_alphanumeric())
            .then(|| text.to_owned());
    }
    let query = text.split_once('?').map_or(text, |(_, q)| q);
    let query = query.split('#').next().unwrap_or(query);
    let pairs = parse_form(query).ok()?;
    let get = |name: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    if get("oauth_token").is_some_and(|token| token != request_token) {
        return None;
    }
    get("oauth_verifier")
}

fn endpoints(site: &Site) -> Result<&OAuth1Endpoints> {
    site.oauth1.as_ref().ok_or_else(|| Error::NoOAuth1 {
        site: site.home.clone(),
    })
}

impl Client {
    /// R7: a request token for `consumer`, to come back to `callback` (`oob` for a pasted verifier).
    pub async fn request_token(
        &self,
        site: &Site,
        consumer: &Credentials,
        callback: &str,
    ) -> Result<RequestToken> {
        let url = &endpoints(site)?.request;
        let deadline = Instant::now() + ACTIVATION_GRACE;
        loop {
            let signer =
                Signer::new(self.method, &consumer.key, &consumer.secret).callback(callback);
            match self.oauth_post(site, url, signer).await {
                Err(Error::OAuth {
                    status: 401,
                    code,
                    message,
                    ..
                }) if is_unknown_consumer(code.as_deref(), &message)
                    && Instant::now() < deadline =>
                {
                    tokio::time::sleep(RETRY_EVERY).await;
                }
                Err(err) => return Err(err),
                Ok(reply) => {
                    if field(&reply, "oauth_callback_confirmed").as_deref() != Some("true") {
                        return Err(Error::protocol(
                            &site.home,
                            "a request token without oauth_callback_confirmed=true",
                        ));
                    }
                    return Ok(RequestToken {
                        credentials: token_from(&reply, &site.home)?,
                        callback: callback.to_owned(),
                    });
                }
            }
        }
    }

    /// R8: the page where the user approves the request token.
    pub fn authorize_url(&self, site: &Site, token: &RequestToken) -> Result<String> {
        let mut url = url::Url::parse(&endpoints(site)?.authorize)
            .map_err(|err| Error::protocol(&site.home, format!("authorize URL: {err}")))?;
        url.query_pairs_mut()
            .append_pair("oauth_token", &token.credentials.key);
        Ok(url.into())
    }

    /// R10–R11: trades the approved request token and its verifier for an access token.
    pub async fn access_token(
        &self,
        site: &Site,
        consumer: &Credentials,
        token: &RequestToken,
        verifier: &str,
    ) -> Result<Credentials> {
        let url = &endpoints(site)?.access;
        let signer = Signer::new(self.method, &consumer.key, &consumer.secret)
            .token(&token.credentials.key, &token.credentials.secret)
            .verifier(verifier);
        let reply = self.oauth_post(site, url, signer).await?;
        token_from(&reply, &site.home)
    }

    /// The whole three-legged flow: `show` gets the URL the user must open (print it, open a browser);
    /// returns a session acting as the user who approved.
    pub async fn authorize(
        &self,
        site: &Site,
        consumer: &Credentials,
        approval: Approval,
        show: impl FnOnce(&str),
    ) -> Result<Session> {
        let Approval {
            loopback,
            pasted,
            timeout,
        } = approval;
        let listener = match &loopback {
            Some((path, port)) => Some(LoopbackCallback::bind(path, *port).await?),
            None => None,
        };
        let callback = listener
            .as_ref()
            .map_or_else(|| "oob".to_owned(), |l| l.callback_url().to_owned());
        let request = self.request_token(site, consumer, &callback).await?;
        show(&self.authorize_url(site, &request)?);
        let token_key = request.credentials.key.clone();
        let has_listener = listener.is_some();
        let from_browser = async {
            match listener {
                Some(listener) => listener.wait(&token_key).await,
                None => std::future::pending().await,
            }
        };
        let from_paste = async {
            let Some(paste) = pasted else {
                return std::future::pending().await;
            };
            match paste.await {
                Some(text) => outcome_from_paste(&text, &token_key).ok_or_else(|| {
                    Error::protocol(
                        "the pasted text",
                        "it holds no verifier for this request: paste the code the site showed, or the whole address the browser ended on",
                    )
                }),
                // Input closed: with a listener the browser may still come back; without one nothing can.
                None if has_listener => std::future::pending().await,
                None => Err(Error::protocol(
                    "the terminal",
                    "standard input closed before a verifier was pasted; run the command in a terminal",
                )),
            }
        };
        let outcome = tokio::time::timeout(timeout, async {
            tokio::select! {
                outcome = from_browser => outcome,
                outcome = from_paste => outcome,
            }
        })
        .await
        .map_err(|_| Error::ApprovalTimedOut {
            seconds: timeout.as_secs(),
        })??;
        let verifier = match outcome {
            CallbackOutcome::Approved(verifier) => verifier,
            CallbackOutcome::Denied => {
                return Err(Error::Denied {
                    site: site.home.clone(),
                });
            }
        };
        let token = self
            .access_token(site, consumer, &request, &verifier)
            .await?;
        Ok(self.session(site.clone(), consumer.clone(), token))
    }

    /// A signed POST to an OAuth endpoint (no body); the form-encoded reply's pairs.
    async fn oauth_post(
        &self,
        site: &Site,
        url: &str,
        signer: Signer<'_>,
    ) -> Result<Vec<(String, String)>> {
        let header = signer
            .sign("POST", url, &[], &nonce(), unix_now())
            .map_err(|err| Error::protocol(url, err.to_string()))?;
        let response = self
            .http
            .post(url)
            .header(reqwest::header::AUTHORIZATION, header.to_header_value())
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|err| Error::unreachable(url, &err))?;
        let status = response.status().as_u16();
        let body = response
            .text()
            .await
            .map_err(|err| Error::unreachable(url, &err))?;
        if status != 200 {
            return Err(oauth_error(&site.home, status, &body));
        }
        parse_form(&body).map_err(|err| Error::protocol(url, err.to_string()))
    }
}

/// The error of an OAuth endpoint: our site sends the JSON envelope when asked, the WordPress plugin plain
/// text.
pub(crate) fn oauth_error(site: &str, status: u16, body: &str) -> Error {
    let json: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let code = json
        .as_ref()
        .and_then(|j| j["code"].as_str())
        .map(str::to_owned);
    let message = json
        .as_ref()
        .and_then(|j| j["message"].as_str())
        .map_or_else(|| body.trim().chars().take(300).collect(), str::to_owned);
    Error::OAuth {
        site: site.to_owned(),
        status,
        code,
        message,
    }
}

fn is_unknown_consumer(code: Option<&str>, message: &str) -> bool {
    code == Some("json_consumer_notfound") || message.contains("Consumer ID is invalid")
}

fn field(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
}

fn token_from(pairs: &[(String, String)], site: &str) -> Result<Credentials> {
    match (
        field(pairs, "oauth_token"),
        field(pairs, "oauth_token_secret"),
    ) {
        (Some(key), Some(secret)) if !key.is_empty() => Ok(Credentials::new(key, secret)),
        _ => Err(Error::protocol(
            site,
            "a token reply without oauth_token and oauth_token_secret",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pasted_verifiers_in_every_shape() {
        let token = "RequestToken123";
        assert_eq!(
            verifier_from_paste("  abcDEF123 \n", token).as_deref(),
            Some("abcDEF123")
        );
        assert_eq!(
            verifier_from_paste(
                "http://127.0.0.1:4711/callback?oauth_token=RequestToken123&oauth_verifier=V3r1f13r&wp_scope=*",
                token
            )
            .as_deref(),
            Some("V3r1f13r")
        );
        assert_eq!(
            verifier_from_paste("oauth_verifier=V3r1f13r", token).as_deref(),
            Some("V3r1f13r")
        );
        // Another request's callback, an empty line, junk: nothing.
        assert_eq!(
            verifier_from_paste(
                "http://127.0.0.1/callback?oauth_token=Other&oauth_verifier=V",
                token
            ),
            None
        );
        assert_eq!(verifier_from_paste("", token), None);
        assert_eq!(verifier_from_paste("not a verifier!", token), None);
    }

    #[test]
    fn a_pasted_denial_is_a_denial() {
        let token = "RequestToken123";
        assert_eq!(
            outcome_from_paste(
                "http://127.0.0.1:4711/callback?denied=RequestToken123",
                token
            ),
            Some(CallbackOutcome::Denied)
        );
        assert_eq!(
            outcome_from_paste("http://127.0.0.1:4711/callback?denied=Other", token),
            None
        );
        assert_eq!(
            outcome_from_paste("V3r1f13r", token),
            Some(CallbackOutcome::Approved("V3r1f13r".to_owned()))
        );
    }

    #[test]
    fn oauth_errors_read_json_and_plain_text() {
        let Error::OAuth { code, message, .. } = oauth_error(
            "s",
            401,
            r#"{"code":"json_consumer_notfound","message":"Consumer ID is invalid","data":{"status":401}}"#,
        ) else {
            panic!("an OAuth error")
        };
        assert_eq!(code.as_deref(), Some("json_consumer_notfound"));
        assert!(is_unknown_consumer(code.as_deref(), &message));
        let Error::OAuth { code, message, .. } = oauth_error("s", 401, "Consumer ID is invalid")
        else {
            panic!("an OAuth error")
        };
        assert_eq!(code, None);
        assert!(is_unknown_consumer(None, &message));
    }
}
