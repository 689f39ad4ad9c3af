//! The signature base string (RFC 5849 §3.4.1).

use std::fmt;

use crate::encode::percent_encode_into;

/// Why a URI cannot be the base of a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UriError {
    /// Not an absolute URI with a scheme and a host.
    NotAbsolute(String),
}

impl fmt::Display for UriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAbsolute(why) => write!(f, "not an absolute http(s) URI: {why}"),
        }
    }
}

impl std::error::Error for UriError {}

/// The base string URI of RFC 5849 §3.4.1.2: scheme and host lower-cased, the default port dropped, the
/// path kept (`/` when empty), userinfo, query and fragment removed.
///
/// Servers must pass their configured canonical URL here (home URL + request path), never one built from
/// the `Host` header, which the client controls.
pub fn base_string_uri(uri: &str) -> Result<String, UriError> {
    let parsed = url::Url::parse(uri).map_err(|e| UriError::NotAbsolute(e.to_string()))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| UriError::NotAbsolute("no host".into()))?;
    let mut out = String::with_capacity(uri.len());
    out.push_str(parsed.scheme());
    out.push_str("://");
    out.push_str(&host.to_ascii_lowercase());
    // `Url::port` is `None` for the scheme's default port, which the base string must omit.
    if let Some(port) = parsed.port() {
        out.push(':');
        out.push_str(&port.to_string());
    }
    let path = parsed.path();
    out.push_str(if path.is_empty() { "/" } else { path });
    Ok(out)
}

/// `METHOD&encode(base_uri)&encode(normalized_params)` (RFC 5849 §3.4.1.1). The method is upper-cased; the
/// base URI must already be normalised by [`base_string_uri`].
pub fn signature_base_string(method: &str, base_uri: &str, normalized_params: &str) -> String {
    let mut out = String::with_capacity(
        method.len() + base_uri.len() * 3 / 2 + normalized_params.len() * 3 / 2 + 2,
    );
    percent_encode_into(&method.to_ascii_uppercase(), &mut out);
    out.push('&');
    percent_encode_into(base_uri, &mut out);
    out.push('&');
    percent_encode_into(normalized_params, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_uri_examples_of_rfc_5849_3_4_1_2() {
        assert_eq!(
            base_string_uri("http://EXAMPLE.COM:80/r%20v/X?id=123").unwrap(),
            "http://example.com/r%20v/X"
        );
        assert_eq!(
            base_string_uri("https://www.example.net:8080/?q=1").unwrap(),
            "https://www.example.net:8080/"
        );
    }

    #[test]
    fn base_uri_drops_default_https_port_userinfo_and_fragment() {
        assert_eq!(
            base_string_uri("HTTPS://user:pw@Site.Example:443/wp-json/#frag").unwrap(),
            "https://site.example/wp-json/"
        );
        assert_eq!(
            base_string_uri("https://site.example").unwrap(),
            "https://site.example/"
        );
    }

    #[test]
    fn relative_or_hostless_uris_are_refused() {
        assert!(base_string_uri("/wp-json/").is_err());
        assert!(base_string_uri("mailto:someone@example.com").is_err());
    }

    #[test]
    fn base_string_encodes_each_part() {
        assert_eq!(
            signature_base_string("post", "https://a.example/p", "a=1&b=%20"),
            "POST&https%3A%2F%2Fa.example%2Fp&a%3D1%26b%3D%2520"
        );
    }
}
