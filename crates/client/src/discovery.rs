//! From what a person typed to a [`Site`]: the REST API root and its authentication endpoints.
//!
//! Order of attempts (the same evidence WordPress clients use): the `Link: <…>; rel="https://api.w.org/"`
//! header of the address itself, then `/wp-json/`, then `index.php?rest_route=/` and `?rest_route=/` (sites
//! without pretty permalinks; WordPress itself advertises the `index.php` form).
//!
//! Every URL the site hands us (API root, OAuth endpoints) must be https unless it is on this machine: a
//! site that pointed its token endpoint at plain HTTP would have the token secret travel in the clear.

use serde_json::Value;
use url::Url;

use crate::{Client, Error, Result};

/// The `rel` of the discovery link every WordPress site sends.
const API_REL: &str = "https://api.w.org/";
/// Redirects followed while looking for the site (the broker allows as many).
const MAX_REDIRECTS: usize = 5;

/// The site's OAuth 1.0a endpoints, from `authentication.oauth1` of its REST index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuth1Endpoints {
    pub request: String,
    pub authorize: String,
    pub access: String,
}

/// A discovered site.
#[derive(Debug, Clone)]
pub struct Site {
    /// The home URL without a trailing slash (from the index's `home`), e.g. `https://blog.example`.
    pub home: String,
    /// The REST root, e.g. `https://blog.example/wp-json/` or `https://blog.example/?rest_route=/`.
    pub api_root: String,
    /// The site's name.
    pub name: String,
    pub oauth1: Option<OAuth1Endpoints>,
    /// `authentication.broker`: where brokers send connection requests. Present when the site accepts them.
    pub broker_endpoint: Option<String>,
    /// The whole REST index (`Value::Null` for a site rebuilt from stored parts).
    pub index: Value,
}

impl Site {
    /// A site from its REST index document (as fetched, or as a broker relayed it in `site_data`).
    pub fn from_index(api_root: &str, index: Value, fallback_home: &str) -> Result<Self> {
        if !index.is_object() {
            return Err(Error::NotAWordPressSite {
                url: fallback_home.to_owned(),
                detail: Some("its REST index is not a JSON object".to_owned()),
            });
        }
        let text = |value: &Value| value.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
        let home = text(&index["home"])
            .or_else(|| text(&index["url"]))
            .unwrap_or_else(|| fallback_home.to_owned())
            .trim_end_matches('/')
            .to_owned();
        let auth = &index["authentication"];
        let oauth1 = &auth["oauth1"];
        let oauth1 = match (
            text(&oauth1["request"]),
            text(&oauth1["authorize"]),
            text(&oauth1["access"]),
        ) {
            (Some(request), Some(authorize), Some(access)) => Some(OAuth1Endpoints {
                request,
                authorize,
                access,
            }),
            _ => None,
        };
        // `home` is only shown and used to build the revocation URL, which is checked when used: sites
        // behind a TLS proxy often report an http home.
        check_transport(api_root)?;
        if let Some(endpoints) = &oauth1 {
            for url in [&endpoints.request, &endpoints.authorize, &endpoints.access] {
                check_transport(url)?;
            }
        }
        Ok(Self {
            name: text(&index["name"]).unwrap_or_else(|| home.clone()),
            broker_endpoint: text(&auth["broker"]),
            oauth1,
            api_root: api_root.to_owned(),
            home,
            index,
        })
    }

    /// A site rebuilt from what a token store kept (no index; the OAuth endpoints are not needed to make
    /// signed calls).
    pub fn from_parts(home: &str, api_root: &str, name: &str) -> Self {
        Self {
            home: home.trim_end_matches('/').to_owned(),
            api_root: api_root.to_owned(),
            name: name.to_owned(),
            oauth1: None,
            broker_endpoint: None,
            index: Value::Null,
        }
    }

    /// The URL of a REST route such as `/wp/v2/posts`, with query parameters, for either form of REST root.
    pub fn route_url(&self, route: &str, query: &[(&str, &str)]) -> Result<String> {
        let mut url = Url::parse(&self.api_root)
            .map_err(|err| Error::protocol(&self.home, format!("REST root: {err}")))?;
        if url.query_pairs().any(|(name, _)| name == "rest_route") {
            let others: Vec<(String, String)> = url
                .query_pairs()
                .filter(|(name, _)| name != "rest_route")
                .map(|(n, v)| (n.into_owned(), v.into_owned()))
                .collect();
            url.query_pairs_mut()
                .clear()
                .extend_pairs(others)
                .append_pair("rest_route", route);
        } else {
            let path = format!(
                "{}/{}",
                url.path().trim_end_matches('/'),
                route.trim_start_matches('/')
            );
            url.set_path(&path);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url.into())
    }

    /// A short name for messages: the home URL without its scheme.
    pub fn display(&self) -> &str {
        self.home
            .split_once("://")
            .map_or(self.home.as_str(), |(_, rest)| rest)
    }
}

/// The URLs to try for what a person typed, best first: `https://` unless the host is this machine, a
/// trailing slash, then the same with `www.` added or removed.
pub fn candidate_urls(typed: &str) -> Result<Vec<Url>> {
    let invalid = |reason: &str| Error::InvalidUrl {
        input: typed.to_owned(),
        reason: reason.to_owned(),
    };
    let trimmed = typed.trim();
    if trimmed.is_empty() {
        return Err(invalid("it is empty"));
    }
    let with_scheme = if trimmed.contains("://") {
        trimmed.to_owned()
    } else {
        format!("https://{trimmed}")
    };
    let mut url = Url::parse(&with_scheme).map_err(|err| invalid(&err.to_string()))?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        // Typed http:// for a remote site: use https, never send tokens in the clear.
        "http" => url
            .set_scheme("https")
            .map_err(|()| invalid("cannot use https"))?,
        other => return Err(invalid(&format!("the scheme {other}: is not http(s)"))),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("it has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("it contains a user name or password"));
    }
    url.set_query(None);
    url.set_fragment(None);
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    let mut candidates = vec![url.clone()];
    if let Some(url::Host::Domain(host)) = url.host() {
        let toggled = match host.strip_prefix("www.") {
            Some(bare) => bare.to_owned(),
            None if host.contains('.') => format!("www.{host}"),
            None => String::new(),
        };
        if !toggled.is_empty() {
            let mut other = url.clone();
            if other.set_host(Some(&toggled)).is_ok() {
                candidates.push(other);
            }
        }
    }
    Ok(candidates)
}

/// Whether the URL names this machine, where plain HTTP is acceptable.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(host)) => host.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// The targets of `rel="https://api.w.org/"` links in `Link` header values, resolved against `base`.
fn api_links<'a>(values: impl Iterator<Item = &'a str>, base: &Url) -> Vec<Url> {
    let mut found = Vec::new();
    for value in values {
        for link in value.split(',') {
            let Some((target, params)) = link.trim().split_once('>') else {
                continue;
            };
            let target = target.trim().trim_start_matches('<');
            let is_api = params.split(';').any(|param| {
                param
                    .trim()
                    .strip_prefix("rel=")
                    .map(|rel| rel.trim_matches('"'))
                    .is_some_and(|rel| rel.split_whitespace().any(|r| r == API_REL))
            });
            if is_api && let Ok(url) = base.join(target) {
                found.push(url);
            }
        }
    }
    found
}

impl Client {
    /// Finds the site behind what a person typed: `blog.example`, `https://www.blog.example/`,
    /// `http://127.0.0.1:8080`.
    pub async fn discover(&self, typed: &str) -> Result<Site> {
        let candidates = candidate_urls(typed)?;
        let mut first_error = None;
        for candidate in candidates {
            match self.discover_at(candidate).await {
                Ok(site) => return Ok(site),
                // Only an unreachable host sends us to the www./bare twin: a site that answered is the site.
                Err(err @ Error::Unreachable { .. }) => {
                    first_error.get_or_insert(err);
                }
                Err(err) => return Err(err),
            }
        }
        Err(first_error.unwrap_or_else(|| Error::InvalidUrl {
            input: typed.to_owned(),
            reason: "no address to try".to_owned(),
        }))
    }

    async fn discover_at(&self, url: Url) -> Result<Site> {
        let (landed, response) = self.get_following(url).await?;
        let links = api_links(
            response
                .headers()
                .get_all(reqwest::header::LINK)
                .iter()
                .filter_map(|v| v.to_str().ok()),
            &landed,
        );
        let mut roots = links;
        for fallback in ["wp-json/", "index.php?rest_route=/", "?rest_route=/"] {
            if let Ok(url) = landed.join(fallback) {
                roots.push(url);
            }
        }
        let home = landed.as_str().trim_end_matches('/').to_owned();
        let mut detail = None;
        for root in roots {
            // A Link to a plain-HTTP API root is skipped, never fetched.
            if let Err(err) = check_transport(root.as_str()) {
                detail.get_or_insert(err.to_string());
                continue;
            }
            match self.fetch_index(&root).await {
                Ok(index) => return Site::from_index(root.as_str(), index, &home),
                Err(reason) => {
                    if !reason.starts_with("HTTP 404") {
                        detail.get_or_insert(format!("{root}: {reason}"));
                    }
                }
            }
        }
        Err(Error::NotAWordPressSite { url: home, detail })
    }

    /// GET with redirects followed by hand, so that none leaves https for a remote host.
    async fn get_following(&self, mut url: Url) -> Result<(Url, reqwest::Response)> {
        for _ in 0..=MAX_REDIRECTS {
            let response = self
                .http
                .get(url.clone())
                .timeout(self.timeout)
                .send()
                .await
                .map_err(|err| Error::unreachable(url.as_str(), &err))?;
            if !response.status().is_redirection() {
                return Ok((url, response));
            }
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| url.join(v).ok())
                .ok_or_else(|| Error::protocol(url.as_str(), "a redirect without a Location"))?;
            check_transport(location.as_str())?;
            url = location;
        }
        Err(Error::protocol(url.as_str(), "too many redirects"))
    }

    /// The REST index at `root`, or why there is none there.
    async fn fetch_index(&self, root: &Url) -> std::result::Result<Value, String> {
        let (_, response) = self
            .get_following(root.clone())
            .await
            .map_err(|err| err.to_string())?;
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            return Err(format!("HTTP {status}"));
        }
        let index = response
            .json::<Value>()
            .await
            .map_err(|_| "not JSON".to_owned())?;
        if index
            .as_object()
            .is_some_and(|o| o.contains_key("namespaces") || o.contains_key("routes"))
        {
            Ok(index)
        } else {
            Err("JSON, but not a REST index (no namespaces or routes)".to_owned())
        }
    }
}

/// Refuses plain HTTP to anything but this machine.
pub(crate) fn check_transport(url: &str) -> Result<()> {
    let parsed = Url::parse(url).map_err(|err| Error::InvalidUrl {
        input: url.to_owned(),
        reason: err.to_string(),
    })?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&parsed) => Ok(()),
        _ => Err(Error::InsecureUrl {
            url: url.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn candidates(typed: &str) -> Vec<String> {
        candidate_urls(typed)
            .unwrap()
            .into_iter()
            .map(String::from)
            .collect()
    }

    #[test]
    fn typed_addresses_are_normalised() {
        assert_eq!(
            candidates("blog.example"),
            ["https://blog.example/", "https://www.blog.example/"]
        );
        assert_eq!(
            candidates("  https://www.blog.example "),
            ["https://www.blog.example/", "https://blog.example/"]
        );
        assert_eq!(
            candidates("http://blog.example/news?x=1#top"),
            [
                "https://blog.example/news/",
                "https://www.blog.example/news/"
            ]
        );
        assert_eq!(
            candidates("http://127.0.0.1:8080"),
            ["http://127.0.0.1:8080/"]
        );
        assert_eq!(candidates("localhost:3000"), ["https://localhost:3000/"]);
        assert_eq!(
            candidates("http://localhost:3000"),
            ["http://localhost:3000/"]
        );
    }

    #[test]
    fn unusable_addresses_are_refused() {
        for typed in [
            "",
            "   ",
            "ftp://blog.example",
            "https://user:pw@blog.example",
            "https://",
        ] {
            assert!(
                matches!(candidate_urls(typed), Err(Error::InvalidUrl { .. })),
                "{typed:?}"
            );
        }
    }

    #[test]
    fn api_links_are_found_in_every_shape() {
        let base = Url::parse("https://blog.example/").unwrap();
        let found = api_links(
            [
                r#"<https://blog.example/wp-json/wp/v2/pages/2>; rel="alternate"; type="application/json", <https://blog.example/wp-json/>; rel="https://api.w.org/""#,
                "</?rest_route=/>; rel=https://api.w.org/",
            ]
            .into_iter(),
            &base,
        );
        let found: Vec<String> = found.into_iter().map(String::from).collect();
        assert_eq!(
            found,
            [
                "https://blog.example/wp-json/",
                "https://blog.example/?rest_route=/"
            ]
        );
    }

    #[test]
    fn routes_are_built_for_both_root_forms() {
        let pretty = Site::from_parts("https://b.example", "https://b.example/wp-json/", "B");
        assert_eq!(
            pretty
                .route_url("/wp/v2/posts", &[("per_page", "5")])
                .unwrap(),
            "https://b.example/wp-json/wp/v2/posts?per_page=5"
        );
        let plain = Site::from_parts("https://b.example", "https://b.example/?rest_route=/", "B");
        assert_eq!(
            plain.route_url("/wp/v2/users/me", &[]).unwrap(),
            "https://b.example/?rest_route=%2Fwp%2Fv2%2Fusers%2Fme"
        );
    }

    #[test]
    fn plain_http_only_on_this_machine() {
        assert!(check_transport("http://127.0.0.1:9/").is_ok());
        assert!(check_transport("http://[::1]:9/").is_ok());
        assert!(check_transport("https://blog.example/").is_ok());
        assert!(matches!(
            check_transport("http://blog.example/"),
            Err(Error::InsecureUrl { .. })
        ));
    }
}
