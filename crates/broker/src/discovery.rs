//! R2 autodiscovery: `server_url` → REST API root, index, connection-request endpoint.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use authbroker_outbound::{Outbound, OutboundError};
use authbroker_protocol::ErrorCode;
use serde_json::Value;

/// The `rel` of the REST API discovery link.
pub const API_REL: &str = "https://api.w.org/";
/// How long a successful discovery is reused (PROTOCOL.md: ≤ 24 h).
pub const CACHE_TTL: Duration = Duration::from_secs(24 * 3600);

/// What discovery found.
#[derive(Debug, Clone, PartialEq)]
pub struct Discovered {
    /// The REST API root (`…/wp-json/`), when known.
    pub api_root: Option<String>,
    /// The site's full REST index, when fetched.
    pub site_data: Option<Value>,
    /// Where to send the connection request (R4).
    pub endpoint: String,
}

/// Why discovery failed, with the protocol code the broker reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DiscoveryError {
    pub code: ErrorCode,
    pub message: String,
}

impl DiscoveryError {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

fn transport(url: &str, err: &OutboundError) -> DiscoveryError {
    DiscoveryError::new(
        ErrorCode::ServerError,
        format!("could not reach {url}: {err}"),
    )
}

/// Runs R2 for `server_url`:
/// 1. `HEAD` (falling back to `GET` when HEAD is refused), redirects followed and re-checked; non-2xx is
///    `server-error`.
/// 2. `X-BA-Endpoint: connection-request` → that URL is the endpoint.
/// 3. Else the `Link` with `rel="https://api.w.org/"` is the API root; without one, `server_url` itself
///    (the spec's fallback), and if that is no REST index, `not-a-wordpress-site`.
/// 4. `GET` the root: 200 JSON whose `authentication.broker` is an absolute URL, else
///    `broker-auth-not-supported` (`json-decode-error` for a root that is not JSON).
pub async fn discover(outbound: &Outbound, server_url: &str) -> Result<Discovered, DiscoveryError> {
    let probe = match outbound.head(server_url).await {
        Ok(fetched) if !matches!(fetched.status.as_u16(), 405 | 501) => fetched,
        Ok(_) => outbound
            .get(server_url)
            .await
            .map_err(|e| transport(server_url, &e))?,
        Err(err @ OutboundError::Forbidden(_)) | Err(err @ OutboundError::InvalidUrl(_)) => {
            return Err(DiscoveryError::new(ErrorCode::ServerError, err.to_string()));
        }
        Err(_) => outbound
            .get(server_url)
            .await
            .map_err(|e| transport(server_url, &e))?,
    };
    if !probe.status.is_success() {
        return Err(DiscoveryError::new(
            ErrorCode::ServerError,
            format!("{server_url} answered {}", probe.status.as_u16()),
        ));
    }
    let is_endpoint = probe
        .headers
        .get_all("x-ba-endpoint")
        .iter()
        .any(|v| v.as_bytes().eq_ignore_ascii_case(b"connection-request"));
    if is_endpoint {
        return Ok(Discovered {
            api_root: None,
            site_data: None,
            endpoint: probe.url.to_string(),
        });
    }
    let link = api_root_from_links(
        probe
            .headers
            .get_all("link")
            .iter()
            .filter_map(|v| v.to_str().ok()),
        &probe.url,
    );
    let (api_root, fell_back) = match link {
        Some(root) => (root, false),
        None => (probe.url.to_string(), true),
    };
    let index = fetch_index(outbound, &api_root, fell_back).await?;
    let endpoint = index
        .pointer("/authentication/broker")
        .and_then(Value::as_str)
        .filter(|u| url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https")))
        .map(str::to_owned)
        .ok_or_else(|| {
            DiscoveryError::new(
                ErrorCode::BrokerAuthNotSupported,
                "the site's REST index has no authentication.broker endpoint",
            )
        })?;
    Ok(Discovered {
        api_root: Some(api_root),
        site_data: Some(index),
        endpoint,
    })
}

async fn fetch_index(
    outbound: &Outbound,
    api_root: &str,
    fell_back: bool,
) -> Result<Value, DiscoveryError> {
    let not_a_site = || {
        DiscoveryError::new(
            ErrorCode::NotAWordPressSite,
            format!("no WordPress REST API found at {api_root}"),
        )
    };
    let fetched = outbound.get(api_root).await.map_err(|e| {
        if fell_back {
            not_a_site()
        } else {
            transport(api_root, &e)
        }
    })?;
    if fetched.status.as_u16() != 200 {
        return Err(if fell_back {
            not_a_site()
        } else {
            DiscoveryError::new(
                ErrorCode::ServerError,
                format!("{api_root} answered {}", fetched.status.as_u16()),
            )
        });
    }
    let body = outbound
        .read_body(fetched)
        .await
        .map_err(|e| transport(api_root, &e))?;
    match serde_json::from_slice::<Value>(&body) {
        Ok(index) if index.is_object() => Ok(index),
        _ if fell_back => Err(not_a_site()),
        _ => Err(DiscoveryError::new(
            ErrorCode::JsonDecodeError,
            format!("the REST index at {api_root} is not a JSON object"),
        )),
    }
}

/// Finds the API root among `Link` header values (several headers and comma-separated values occur),
/// resolving a relative target against the URL the header came from.
pub fn api_root_from_links<'a>(
    values: impl Iterator<Item = &'a str>,
    base: &url::Url,
) -> Option<String> {
    values
        .flat_map(parse_link_values)
        .find(|(_, rels)| rels.iter().any(|r| r == API_REL))
        .and_then(|(target, _)| base.join(&target).ok())
        .map(|u| u.to_string())
}

/// Parses one `Link` header value into (target, rels). Commas inside `<…>` or quoted strings do not
/// separate links.
fn parse_link_values(value: &str) -> Vec<(String, Vec<String>)> {
    let mut links = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        let Some(open) = rest.strip_prefix('<') else {
            break;
        };
        let Some(close) = open.find('>') else { break };
        let target = open[..close].trim().to_owned();
        rest = &open[close + 1..];
        let mut rels = Vec::new();
        // Parameters until the next top-level comma.
        loop {
            rest = rest.trim_start();
            let Some(param) = rest.strip_prefix(';') else {
                break;
            };
            let param = param.trim_start();
            let name_end = param.find(['=', ';', ',']).unwrap_or(param.len());
            let name = param[..name_end].trim().to_ascii_lowercase();
            rest = &param[name_end..];
            let mut value = String::new();
            if let Some(after_eq) = rest.strip_prefix('=') {
                let after_eq = after_eq.trim_start();
                if let Some(quoted) = after_eq.strip_prefix('"') {
                    let end = quoted.find('"').unwrap_or(quoted.len());
                    value = quoted[..end].to_owned();
                    rest = quoted.get(end + 1..).unwrap_or("");
                } else {
                    let end = after_eq.find([';', ',']).unwrap_or(after_eq.len());
                    value = after_eq[..end].trim().to_owned();
                    rest = &after_eq[end..];
                }
            }
            if name == "rel" {
                rels.extend(value.split_whitespace().map(str::to_owned));
            }
        }
        links.push((target, rels));
        match rest.find(',') {
            Some(comma) => rest = &rest[comma..],
            None => break,
        }
    }
    links
}

/// Successful discoveries, reused for up to [`CACHE_TTL`].
#[derive(Debug, Default)]
pub struct DiscoveryCache {
    entries: Mutex<HashMap<String, (Instant, Discovered)>>,
}

impl DiscoveryCache {
    /// Discovers through the cache. Failures are not cached: a site fixing its setup works at once.
    pub async fn discover(
        &self,
        outbound: &Outbound,
        server_url: &str,
    ) -> Result<Discovered, DiscoveryError> {
        if let Some(hit) = self.get(server_url) {
            return Ok(hit);
        }
        let found = discover(outbound, server_url).await?;
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() > 100_000 {
                entries.retain(|_, (at, _)| at.elapsed() < CACHE_TTL);
            }
            entries.insert(server_url.to_owned(), (Instant::now(), found.clone()));
        }
        Ok(found)
    }

    fn get(&self, server_url: &str) -> Option<Discovered> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(server_url)
            .filter(|(at, _)| at.elapsed() < CACHE_TTL)
            .map(|(_, d)| d.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> url::Url {
        url::Url::parse("https://site.example/blog/").unwrap()
    }

    #[test]
    fn finds_the_api_link_among_many() {
        let values = [
            "<https://site.example/?p=1>; rel=shortlink",
            "<https://site.example/wp-json/>; rel=\"https://api.w.org/\", <https://site.example/feed>; rel=\"alternate\"",
        ];
        assert_eq!(
            api_root_from_links(values.into_iter(), &base()).as_deref(),
            Some("https://site.example/wp-json/")
        );
    }

    #[test]
    fn comma_separated_and_relative_links() {
        let value = "<https://cdn.example/a,b>; rel=\"preload\"; as=style, </blog/wp-json/>; rel=\"https://api.w.org/\"";
        assert_eq!(
            api_root_from_links([value].into_iter(), &base()).as_deref(),
            Some("https://site.example/blog/wp-json/")
        );
    }

    #[test]
    fn rel_lists_and_missing_links() {
        let value = "<https://s.example/wp-json/>; rel=\"alternate https://api.w.org/\"";
        assert!(api_root_from_links([value].into_iter(), &base()).is_some());
        assert!(
            api_root_from_links(["<https://s.example/>; rel=next"].into_iter(), &base()).is_none()
        );
        assert!(api_root_from_links(["garbage"].into_iter(), &base()).is_none());
        assert!(api_root_from_links(["<unterminated; rel=x"].into_iter(), &base()).is_none());
    }
}
