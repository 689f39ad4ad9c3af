//! A request as the server received it, with its OAuth parameters collected.

use std::fmt;

use crate::base::{UriError, base_string_uri};
use crate::encode::DecodeError;
use crate::header::{AuthorizationHeader, HeaderError};
use crate::params::{Param, collect_owned, parse_form};

/// What a server passes in to check a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// The HTTP method as received.
    pub method: &'a str,
    /// The request URI made absolute with the server's configured canonical origin (never the `Host`
    /// header), including the query string as received.
    pub uri: &'a str,
    /// The body, when it is `application/x-www-form-urlencoded`; `None` for any other content type (a JSON
    /// body is not signed).
    pub form_body: Option<&'a str>,
    /// The `Authorization` header, if any.
    pub authorization: Option<&'a str>,
}

/// Why a request's parameters could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// The `Authorization: OAuth` header is malformed.
    Header(HeaderError),
    /// The query string has a bad escape or is not UTF-8.
    Query(DecodeError),
    /// The form body has a bad escape or is not UTF-8.
    Body(DecodeError),
    /// The URI is not absolute.
    Uri(UriError),
    /// An `oauth_*` parameter appears more than once across query, body and header.
    DuplicateParameter(String),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Header(err) => err.fmt(f),
            Self::Query(err) => write!(f, "query string: {err}"),
            Self::Body(err) => write!(f, "form body: {err}"),
            Self::Uri(err) => err.fmt(f),
            Self::DuplicateParameter(name) => {
                write!(f, "OAuth parameter {name} is given more than once")
            }
        }
    }
}

impl std::error::Error for RequestError {}

/// A received request with its signed parameter set collected (RFC 5849 §3.4.1.3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    pub(crate) method: String,
    pub(crate) base_uri: String,
    pub(crate) params: Vec<Param>,
}

impl SignedRequest {
    /// Collects the parameters of a received request: query ∪ form body ∪ the header's `oauth_*`.
    pub fn from_parts(parts: &RequestParts<'_>) -> Result<Self, RequestError> {
        let header_params = match parts.authorization {
            Some(value) => AuthorizationHeader::parse(value)
                .map_err(RequestError::Header)?
                .map(|h| h.params)
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let query = match parts.uri.split_once('?') {
            Some((_, rest)) => {
                let query = rest.split_once('#').map_or(rest, |(q, _)| q);
                parse_form(query).map_err(RequestError::Query)?
            }
            None => Vec::new(),
        };
        let body = match parts.form_body {
            Some(body) => parse_form(body).map_err(RequestError::Body)?,
            None => Vec::new(),
        };
        let params = collect_owned(query, body, header_params);
        if let Some(name) = repeated_oauth_name(&params) {
            return Err(RequestError::DuplicateParameter(name.to_owned()));
        }
        Ok(Self {
            method: parts.method.to_ascii_uppercase(),
            base_uri: base_string_uri(parts.uri).map_err(RequestError::Uri)?,
            params,
        })
    }

    /// The upper-cased HTTP method.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The base string URI (RFC 5849 §3.4.1.2).
    pub fn base_uri(&self) -> &str {
        &self.base_uri
    }

    /// Every collected parameter, decoded, in collection order.
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// The first value of a parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the request carries any OAuth 1.0a protocol parameter at all. A request with none is simply
    /// not an OAuth request (it may use a cookie); one with some but not all is a failed OAuth request.
    pub fn has_oauth_params(&self) -> bool {
        crate::verify::REQUIRED
            .iter()
            .chain(["oauth_token"].iter())
            .any(|name| self.param(name).is_some_and(|v| !v.is_empty()))
    }

    /// The signature base string for this request (RFC 5849 §3.4.1.1).
    pub fn base_string(&self) -> String {
        crate::params::signature_base_string_of(
            &self.method,
            &self.base_uri,
            self.params.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        )
    }
}

fn repeated_oauth_name(params: &[Param]) -> Option<&str> {
    let mut oauth: Vec<&str> = params
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| n.starts_with("oauth_"))
        .collect();
    oauth.sort_unstable();
    oauth.windows(2).find(|w| w[0] == w[1]).map(|w| w[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts<'a>(uri: &'a str, body: Option<&'a str>, auth: Option<&'a str>) -> RequestParts<'a> {
        RequestParts {
            method: "post",
            uri,
            form_body: body,
            authorization: auth,
        }
    }

    #[test]
    fn collects_query_body_and_header() {
        let req = SignedRequest::from_parts(&parts(
            "https://Site.Example/p?b=1&a=2#frag",
            Some("c=3&server_url=x"),
            Some("OAuth realm=\"r\", oauth_nonce=\"n\", server_url=\"x\""),
        ))
        .unwrap();
        assert_eq!(req.method(), "POST");
        assert_eq!(req.base_uri(), "https://site.example/p");
        let names: Vec<&str> = req.params().iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["b", "a", "c", "server_url", "oauth_nonce"]);
        assert!(req.has_oauth_params());
    }

    #[test]
    fn plain_requests_have_no_oauth_params() {
        let req = SignedRequest::from_parts(&parts("https://s.example/?a=1", None, None)).unwrap();
        assert!(!req.has_oauth_params());
    }

    #[test]
    fn repeated_oauth_parameters_are_refused() {
        let err = SignedRequest::from_parts(&parts(
            "https://s.example/?oauth_nonce=a",
            Some("oauth_nonce=b"),
            None,
        ))
        .unwrap_err();
        assert_eq!(err, RequestError::DuplicateParameter("oauth_nonce".into()));
    }

    #[test]
    fn bad_encodings_are_typed() {
        assert!(matches!(
            SignedRequest::from_parts(&parts("https://s.example/?a=%", None, None)),
            Err(RequestError::Query(_))
        ));
        assert!(matches!(
            SignedRequest::from_parts(&parts("https://s.example/", Some("a=%ff"), None)),
            Err(RequestError::Body(DecodeError::InvalidUtf8))
        ));
        assert!(matches!(
            SignedRequest::from_parts(&parts("/relative", None, None)),
            Err(RequestError::Uri(_))
        ));
    }
}
