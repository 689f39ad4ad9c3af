//! OAuth 1.0a consumers ("applications") and their callbacks.

use authbroker_store::sqlx::{self, Row, any::AnyRow};
use authbroker_web::input::has_nul;

use crate::error::SiteError;
use crate::state::SiteState;

/// Consumer key and secret lengths, as the WP-API broker plugin issues them.
pub(crate) const KEY_LEN: usize = 12;
pub(crate) const SECRET_LEN: usize = 48;

/// An application that may ask users for access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    pub id: String,
    pub key: String,
    pub secret: String,
    pub name: String,
    pub description: String,
    /// The registered callback URL, or `oob`.
    pub callback: String,
    /// The broker that vouched for the app, when it was connected through one.
    pub broker_id: Option<String>,
    /// The app's client id at that broker.
    pub broker_client_id: Option<String>,
    /// A page about the app, as the broker sent it.
    pub details_url: Option<String>,
    /// `active`, `pending` (brokered, awaiting verification) or `blocked`.
    pub status: String,
}

/// A consumer registered by hand by an administrator.
#[derive(Debug, Clone)]
pub struct NewConsumer<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub callback: &'a str,
}

pub(crate) const COLUMNS: &str = "id, consumer_key, consumer_secret, name, description, callback, broker_id, broker_client_id, details_url, status";

pub(crate) fn from_row(row: &AnyRow) -> Result<Consumer, SiteError> {
    Ok(Consumer {
        id: row.try_get("id")?,
        key: row.try_get("consumer_key")?,
        secret: row.try_get("consumer_secret")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        callback: row.try_get("callback")?,
        broker_id: row.try_get("broker_id")?,
        broker_client_id: row.try_get("broker_client_id")?,
        details_url: row.try_get("details_url")?,
        status: row.try_get("status")?,
    })
}

/// Registers an application directly (PROTOCOL.md §3): active at once, fresh key and secret.
pub async fn register_consumer(
    state: &SiteState,
    new: NewConsumer<'_>,
) -> Result<Consumer, SiteError> {
    if new.name.trim().is_empty() {
        return Err(SiteError::rest(
            "rest_invalid_param",
            400,
            "An application needs a name.",
        ));
    }
    if new.callback != "oob" && !valid_callback(new.callback) {
        return Err(SiteError::protocol(
            authbroker_protocol::ErrorCode::OAuth1InvalidCallback,
            "The callback must be an absolute URL with a host (myapp://callback works) or oob.",
        ));
    }
    let consumer = Consumer {
        id: crate::random::id(),
        key: crate::random::alnum(KEY_LEN),
        secret: crate::random::alnum(SECRET_LEN),
        name: new.name.trim().to_owned(),
        description: new.description.to_owned(),
        callback: new.callback.to_owned(),
        broker_id: None,
        broker_client_id: None,
        details_url: None,
        status: "active".to_owned(),
    };
    sqlx::query(
        "INSERT INTO consumers (id, consumer_key, consumer_secret, name, description, callback, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&consumer.id)
    .bind(&consumer.key)
    .bind(&consumer.secret)
    .bind(&consumer.name)
    .bind(&consumer.description)
    .bind(&consumer.callback)
    .bind(&consumer.status)
    .bind(state.now())
    .execute(state.db())
    .await?;
    Ok(consumer)
}

/// The active consumer with this key.
pub(crate) async fn active_by_key(
    state: &SiteState,
    key: &str,
) -> Result<Option<Consumer>, SiteError> {
    sqlx::query(&format!(
        "SELECT {COLUMNS} FROM consumers WHERE consumer_key = $1 AND status = 'active'"
    ))
    .bind(key)
    .fetch_optional(state.db())
    .await?
    .as_ref()
    .map(from_row)
    .transpose()
}

/// A consumer by id, whatever its status.
pub(crate) async fn by_id(state: &SiteState, id: &str) -> Result<Option<Consumer>, SiteError> {
    sqlx::query(&format!("SELECT {COLUMNS} FROM consumers WHERE id = $1"))
        .bind(id)
        .fetch_optional(state.db())
        .await?
        .as_ref()
        .map(from_row)
        .transpose()
}

/// Whether `url` may be a callback at all: it has a scheme and a host, no userinfo, and a host without
/// URL delimiters. Any scheme and port are allowed (native apps use `myapp://callback` and loopback ports).
/// NUL is refused: URL parsers strip it at either end (so it would match a registered callback), but
/// PostgreSQL cannot store it.
pub(crate) fn valid_callback(url: &str) -> bool {
    if has_nul(url) {
        return false;
    }
    let Ok(parsed) = url::Url::parse(url) else {
        return false;
    };
    parsed.host_str().is_some_and(|h| !h.is_empty())
        && parsed.username().is_empty()
        && parsed.password().is_none()
}

/// Whether a supplied callback matches the registered one: scheme, host, port, userinfo and path equal; the
/// query (and fragment) may differ. `oob` matches only `oob`.
///
/// One exception, RFC 8252 §7.3: when the registered callback is `http` on an IP loopback literal
/// (`http://127.0.0.1[:port]/path` or `http://[::1][:port]/path`), any port matches, because a native app
/// listens on an ephemeral port chosen at run time. Scheme, host, userinfo and path must still be equal.
/// `localhost` does not get the exception (RFC 8252 §8.3 recommends the IP literal: the name may resolve
/// elsewhere), nor does any other `127.0.0.0/8` address or `https`.
pub(crate) fn callback_matches(registered: &str, supplied: &str) -> bool {
    if registered.is_empty() {
        return false;
    }
    if registered == "oob" || supplied == "oob" {
        return registered == supplied;
    }
    if !valid_callback(supplied) {
        return false;
    }
    let (Ok(r), Ok(s)) = (url::Url::parse(registered), url::Url::parse(supplied)) else {
        return false;
    };
    r.scheme() == s.scheme()
        && r.host_str() == s.host_str()
        && (r.port_or_known_default() == s.port_or_known_default() || is_loopback_literal(&r))
        && r.username() == s.username()
        && r.password() == s.password()
        && normalized_path(&r) == normalized_path(&s)
}

/// Whether `url` is `http` on the IP loopback literal `127.0.0.1` or `[::1]` (RFC 8252 §7.3).
fn is_loopback_literal(url: &url::Url) -> bool {
    url.scheme() == "http"
        && match url.host() {
            Some(url::Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
            Some(url::Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
            _ => false,
        }
}

/// `http://a.example` and `http://a.example/` name the same resource; custom schemes keep their path as is.
fn normalized_path(url: &url::Url) -> &str {
    match url.path() {
        "" => "/",
        p => p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callbacks_match_on_everything_but_the_query() {
        let registered = "https://app.example/cb";
        assert!(callback_matches(registered, "https://app.example/cb"));
        assert!(callback_matches(
            registered,
            "https://app.example/cb?state=1"
        ));
        assert!(callback_matches(registered, "https://APP.example:443/cb"));
        assert!(!callback_matches(registered, "http://app.example/cb"));
        assert!(!callback_matches(registered, "https://app.example:8443/cb"));
        assert!(!callback_matches(
            registered,
            "https://app.example/cb/other"
        ));
        assert!(!callback_matches(registered, "https://evil.example/cb"));
        assert!(!callback_matches(registered, "https://user@app.example/cb"));
        assert!(!callback_matches(registered, "oob"));
    }

    #[test]
    fn oob_matches_only_oob() {
        assert!(callback_matches("oob", "oob"));
        assert!(!callback_matches("oob", "https://app.example/cb"));
        assert!(!callback_matches("", "oob"));
    }

    #[test]
    fn custom_schemes_need_a_host() {
        assert!(valid_callback("myapp://callback"));
        assert!(callback_matches("myapp://callback", "myapp://callback?x=1"));
        assert!(!valid_callback("myapp:callback"));
        assert!(!valid_callback("/relative"));
        assert!(!valid_callback("myapp://callback\0"));
        assert!(!callback_matches("myapp://callback", "myapp://callback\0"));
        assert!(!callback_matches(
            "https://app.example/cb",
            "https://app.example/cb?state=\0"
        ));
        assert!(callback_matches(
            "http://127.0.0.1:8123/cb",
            "http://127.0.0.1:8123/cb?x"
        ));
    }

    /// RFC 8252 §7.3: a registered `http` loopback IP literal matches any port.
    #[test]
    fn loopback_ip_literals_match_any_port() {
        for (registered, supplied) in [
            ("http://127.0.0.1:8123/cb", "http://127.0.0.1:9000/cb"),
            (
                "http://127.0.0.1:8123/cb",
                "http://127.0.0.1:51234/cb?state=1",
            ),
            ("http://127.0.0.1/cb", "http://127.0.0.1:51234/cb"),
            ("http://127.0.0.1:8123/cb", "http://127.0.0.1/cb"),
            ("http://127.0.0.1:8123", "http://127.0.0.1:9000/"),
            ("http://[::1]:8123/cb", "http://[::1]:9000/cb"),
            ("http://[::1]/cb", "http://[::1]:51234/cb"),
            ("http://[::1]/cb", "http://[0:0:0:0:0:0:0:1]:51234/cb"),
        ] {
            assert!(
                callback_matches(registered, supplied),
                "{registered} should match {supplied}"
            );
        }
    }

    /// Only the port is free, only for `http` on `127.0.0.1` and `[::1]`.
    #[test]
    fn the_loopback_rule_frees_nothing_else() {
        for (registered, supplied) in [
            // Another path.
            ("http://127.0.0.1:8123/cb", "http://127.0.0.1:9000/other"),
            ("http://127.0.0.1:8123/cb", "http://127.0.0.1:8123/cb/more"),
            ("http://[::1]:8123/cb", "http://[::1]:9000/"),
            // Another scheme, either way round; https is not the loopback rule.
            ("http://127.0.0.1:8123/cb", "https://127.0.0.1:9000/cb"),
            ("http://127.0.0.1:8123/cb", "https://127.0.0.1:8123/cb"),
            ("https://127.0.0.1:8123/cb", "https://127.0.0.1:9000/cb"),
            ("https://127.0.0.1:8123/cb", "http://127.0.0.1:9000/cb"),
            ("https://[::1]:8123/cb", "https://[::1]:9000/cb"),
            // localhost is a name, not the literal (RFC 8252 §8.3).
            ("http://localhost:8123/cb", "http://localhost:9000/cb"),
            ("http://localhost:8123/cb", "http://127.0.0.1:9000/cb"),
            ("http://127.0.0.1:8123/cb", "http://localhost:8123/cb"),
            // Other loopback addresses are other hosts.
            ("http://127.0.0.1:8123/cb", "http://127.0.0.2:9000/cb"),
            ("http://127.0.0.2:8123/cb", "http://127.0.0.2:9000/cb"),
            ("http://127.0.0.1:8123/cb", "http://[::1]:8123/cb"),
            ("http://[::1]:8123/cb", "http://127.0.0.1:8123/cb"),
            // Userinfo still counts.
            ("http://127.0.0.1:8123/cb", "http://user@127.0.0.1:9000/cb"),
            // A registered non-loopback host keeps its port.
            ("http://app.example:8123/cb", "http://app.example:9000/cb"),
            ("http://10.0.0.1:8123/cb", "http://10.0.0.1:9000/cb"),
            ("http://192.168.1.1/cb", "http://192.168.1.1:8080/cb"),
            // A loopback callback does not match a non-loopback registration.
            ("https://app.example/cb", "http://127.0.0.1:9000/cb"),
            ("oob", "http://127.0.0.1:9000/cb"),
        ] {
            assert!(
                !callback_matches(registered, supplied),
                "{registered} should not match {supplied}"
            );
        }
    }
}
