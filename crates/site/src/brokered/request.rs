//! Parsing and validating a connection request (R4).

use std::collections::HashMap;

use authbroker_protocol::ErrorCode;
use authbroker_store::sqlx::{self, Row};
use authbroker_web::input::{drop_nul, has_nul};
use axum::http::{HeaderMap, header};

use crate::error::SiteError;
use crate::oauth1::consumers::valid_callback;
use crate::state::SiteState;

/// The longest `client_id` and `verifier` the protocol allows.
const MAX_ID_LEN: usize = 255;
/// Longest callback we store (browsers and proxies stop at about this length anyway).
const MAX_CALLBACK_LEN: usize = 2048;
/// Free text from the broker is cut to these lengths rather than refused (the plugin stored anything).
const MAX_NAME_CHARS: usize = 200;
const MAX_DESCRIPTION_CHARS: usize = 2000;

/// The parameters that must be present, in the order WordPress lists missing ones.
const REQUIRED: [&str; 4] = ["client_id", "broker", "verifier", "callback_url"];

/// The request's parameters: query string, then the body (form-encoded or JSON) on top, as WordPress merges
/// them. For a repeated name the last value wins (PHP's behaviour).
#[derive(Debug, Default)]
pub(super) struct Params(HashMap<String, String>);

impl Params {
    pub(super) fn parse(
        query: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Self, SiteError> {
        let mut params = HashMap::new();
        if let Some(query) = query {
            params.extend(form_pairs(query.as_bytes()));
        }
        if is_json(headers) {
            if !body.iter().all(u8::is_ascii_whitespace) {
                let value: serde_json::Value =
                    serde_json::from_slice(body).map_err(|_| invalid_json())?;
                let serde_json::Value::Object(object) = value else {
                    return Err(invalid_json());
                };
                for (name, value) in object {
                    let text = match value {
                        serde_json::Value::Null => continue,
                        serde_json::Value::String(s) => s,
                        serde_json::Value::Bool(b) => b.to_string(),
                        serde_json::Value::Number(n) => n.to_string(),
                        // Not a scalar: present, but no valid value (validation then names the field).
                        serde_json::Value::Array(_) | serde_json::Value::Object(_) => String::new(),
                    };
                    params.insert(name, text);
                }
            }
        } else {
            // Form-encoded, with or without a Content-Type (brokers in the wild omit it).
            params.extend(form_pairs(body));
        }
        Ok(Self(params))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

fn form_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    // Decoding to pairs of strings cannot fail: invalid UTF-8 is replaced, as PHP would pass it through.
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(bytes).unwrap_or_default()
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let essence = v.split(';').next().unwrap_or_default().trim();
            essence.eq_ignore_ascii_case("application/json")
                || essence.to_ascii_lowercase().ends_with("+json")
        })
}

fn invalid_json() -> SiteError {
    SiteError::rest("rest_invalid_json", 400, "Invalid JSON body passed.")
}

/// A connection request that passed validation, with the verification URL configured for its broker.
pub(super) struct ConnectionRequest {
    pub(super) broker_id: String,
    pub(super) verification_url: String,
    pub(super) client_id: String,
    pub(super) verifier: String,
    pub(super) callback: String,
    pub(super) name: String,
    pub(super) description: String,
    pub(super) details_url: Option<String>,
}

impl std::fmt::Debug for ConnectionRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionRequest")
            .field("broker_id", &self.broker_id)
            .field("verification_url", &self.verification_url)
            .field("client_id", &self.client_id)
            .field("verifier", &"<redacted>")
            .field("callback", &self.callback)
            .field("name", &self.name)
            .field("details_url", &self.details_url)
            .finish_non_exhaustive()
    }
}

/// Validates in the protocol's order: missing parameters, `client_id`, `verifier`, `callback_url`, the
/// broker, then the site's allow/deny rules. Every refusal is a 400 in the WordPress envelope.
pub(super) async fn validate(
    state: &SiteState,
    params: Params,
) -> Result<ConnectionRequest, SiteError> {
    let missing: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|name| params.get(name).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(SiteError::protocol(
            ErrorCode::RestMissingCallbackParam,
            format!("Missing parameter(s): {}", missing.join(", ")),
        ));
    }
    let param = |name: &str| params.get(name).unwrap_or_default().to_owned();
    let client_id = param("client_id");
    let broker_id = param("broker");
    let verifier = param("verifier");
    let callback = param("callback_url");

    if client_id.is_empty() || client_id.len() > MAX_ID_LEN || has_nul(&client_id) {
        return Err(SiteError::protocol(
            ErrorCode::BaInvalidClientId,
            "The client ID must be between 1 and 255 characters.",
        ));
    }
    if !valid_verifier(&verifier) {
        return Err(SiteError::protocol(
            ErrorCode::BaInvalidVerifier,
            "The verifier must be between 1 and 255 alphanumeric characters.",
        ));
    }
    if callback.len() > MAX_CALLBACK_LEN || !valid_callback(&callback) {
        return Err(SiteError::protocol(
            ErrorCode::BaInvalidCallback,
            "The callback URL must be an absolute URL with a host.",
        ));
    }
    // A broker ID with NUL names no known broker (and PostgreSQL could not even look it up).
    let known = if has_nul(&broker_id) {
        None
    } else {
        verification_url(state, &broker_id).await?
    };
    let Some(verification_url) = known else {
        return Err(SiteError::protocol(
            ErrorCode::BaUnknownBroker,
            "The broker is not known to this site.",
        ));
    };
    if !client_allowed(state, &broker_id, &client_id).await? {
        return Err(SiteError::protocol(
            ErrorCode::BaRejectedClient,
            "This site does not accept this application.",
        ));
    }

    // NUL characters are dropped from display text, as WordPress's `wp_kses_no_null` does.
    let client_name = params.get("client_name").map(drop_nul);
    let name = match client_name.as_deref().map(str::trim) {
        Some(name) if !name.is_empty() => truncate(name, MAX_NAME_CHARS),
        _ => truncate(&client_id, MAX_NAME_CHARS),
    };
    let description = truncate(
        &drop_nul(params.get("client_description").unwrap_or_default()),
        MAX_DESCRIPTION_CHARS,
    );
    let details_url = params
        .get("client_details")
        .and_then(safe_details_url)
        .map(str::to_owned);
    Ok(ConnectionRequest {
        broker_id,
        verification_url,
        client_id,
        verifier,
        callback,
        name,
        description,
        details_url,
    })
}

/// 1–255 characters of `[A-Za-z0-9]` (the protocol asks brokers for ≥ 32; older brokers send fewer).
fn valid_verifier(verifier: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The app's details page is shown as a link on management pages: only plain web URLs are kept (not one
/// with NUL, which URL parsers strip at either end but PostgreSQL cannot store).
fn safe_details_url(url: &str) -> Option<&str> {
    if has_nul(url) {
        return None;
    }
    let parsed = url::Url::parse(url).ok()?;
    (matches!(parsed.scheme(), "https" | "http")
        && parsed.host_str().is_some()
        && url.len() <= MAX_CALLBACK_LEN)
        .then_some(url)
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

/// The verification URL configured for a broker ID (exact string match), if the site knows the broker.
async fn verification_url(state: &SiteState, broker_id: &str) -> Result<Option<String>, SiteError> {
    let row = sqlx::query("SELECT verification_url FROM known_brokers WHERE broker_id = $1")
        .bind(broker_id)
        .fetch_optional(state.db())
        .await?;
    Ok(row.map(|row| row.try_get("verification_url")).transpose()?)
}

/// The site's rules: a `deny` for the app refuses it; when the broker has any `allow` rule, only allowed apps
/// pass.
async fn client_allowed(
    state: &SiteState,
    broker_id: &str,
    client_id: &str,
) -> Result<bool, SiteError> {
    let rule: Option<String> =
        sqlx::query("SELECT rule FROM client_rules WHERE broker_id = $1 AND client_id = $2")
            .bind(broker_id)
            .bind(client_id)
            .fetch_optional(state.db())
            .await?
            .map(|row| row.try_get("rule"))
            .transpose()?;
    match rule.as_deref() {
        Some("deny") => return Ok(false),
        Some("allow") => return Ok(true),
        _ => {}
    }
    let allow_list = sqlx::query(
        "SELECT client_id FROM client_rules WHERE broker_id = $1 AND rule = 'allow' LIMIT 1",
    )
    .bind(broker_id)
    .fetch_optional(state.db())
    .await?;
    Ok(allow_list.is_none())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifiers_are_short_alphanumeric_strings() {
        assert!(valid_verifier("a"));
        assert!(valid_verifier(&"Ab9".repeat(85)));
        assert!(!valid_verifier(&"a".repeat(256)));
        assert!(!valid_verifier(""));
        assert!(!valid_verifier("abc-def"));
        assert!(!valid_verifier("abcé"));
    }

    #[test]
    fn details_urls_are_web_urls() {
        assert!(safe_details_url("https://apps.example/app").is_some());
        assert!(safe_details_url("javascript:alert(1)").is_none());
        assert!(safe_details_url("data:text/html,x").is_none());
        assert!(safe_details_url("/relative").is_none());
        assert!(safe_details_url("https://apps.example/app\0").is_none());
    }

    #[test]
    fn json_and_form_bodies_merge_over_the_query() {
        let mut headers = HeaderMap::new();
        let params = Params::parse(Some("a=1&b=2"), &headers, b"b=3&c=4&c=5").unwrap();
        assert_eq!(params.get("a"), Some("1"));
        assert_eq!(params.get("b"), Some("3"));
        assert_eq!(params.get("c"), Some("5"));
        headers.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        let params = Params::parse(None, &headers, br#"{"a":"x","n":7,"z":null,"o":{}}"#).unwrap();
        assert_eq!(params.get("a"), Some("x"));
        assert_eq!(params.get("n"), Some("7"));
        assert_eq!(params.get("z"), None);
        assert_eq!(params.get("o"), Some(""));
        assert!(Params::parse(None, &headers, b"{not json").is_err());
        assert!(Params::parse(None, &headers, b"[1]").is_err());
    }
}
