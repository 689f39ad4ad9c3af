//! The signature base string (RFC 5849 §3.4.1).

use std::fmt;
use std::net::Ipv6Addr;

use crate::encode::percent_encode_into;

/// Why a URI cannot be the base of a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UriError {
    /// Not an absolute URI of the form `scheme://authority[/path][?query][#fragment]`.
    NotAbsolute(String),
    /// The authority has no host (`http:///path`, `http://user@:8080/`).
    MissingHost,
    /// The host has a character no host can have, or is a malformed IPv6 literal.
    InvalidHost(String),
    /// The port after `:` is empty, not decimal digits, or not in 1–65535.
    InvalidPort(String),
    /// Whitespace or a control character, which a request URI cannot carry.
    ForbiddenCharacter(char),
}

impl fmt::Display for UriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAbsolute(why) => write!(f, "not an absolute http(s) URI: {why}"),
            Self::MissingHost => f.write_str("the URI has no host"),
            Self::InvalidHost(host) => write!(f, "invalid host in the URI: {host:?}"),
            Self::InvalidPort(port) => write!(f, "invalid port in the URI: {port:?}"),
            Self::ForbiddenCharacter(c) => write!(
                f,
                "the URI contains whitespace or a control character ({})",
                c.escape_unicode()
            ),
        }
    }
}

impl std::error::Error for UriError {}

/// The base string URI of RFC 5849 §3.4.1.2: scheme and host lower-cased (ASCII only), the scheme's
/// default port dropped (80 for `http`, 443 for `https`), userinfo, query and fragment removed, and the path
/// kept exactly as the request carries it (`/` when empty): no dot-segment removal, no re-encoding, as
/// oauthlib does.
///
/// The URI must be `scheme://authority...` with a non-empty host; an IPv6 literal is written in brackets
/// (`http://[::1]:8080/`). A port must be decimal digits in 1–65535; it is written back as a decimal number.
/// Whitespace and control characters are refused anywhere.
///
/// Servers must pass their configured canonical URL here (home URL + request path), never one built from
/// the `Host` header, which the client controls.
pub fn base_string_uri(uri: &str) -> Result<String, UriError> {
    if let Some(c) = uri.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Err(UriError::ForbiddenCharacter(c));
    }

    let (scheme, rest) = uri
        .split_once(':')
        .ok_or_else(|| UriError::NotAbsolute("no scheme".into()))?;
    if !is_scheme(scheme) {
        return Err(UriError::NotAbsolute(format!("invalid scheme {scheme:?}")));
    }
    let rest = rest
        .strip_prefix("//")
        .ok_or_else(|| UriError::NotAbsolute("no authority (expected scheme://host)".into()))?;

    // RFC 3986 §3.2: the authority ends at the first '/', '?' or '#'.
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path_and_more) = rest.split_at(authority_end);
    // The userinfo ends at the last '@' (as Python's urllib reads it); it is not part of the base URI.
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = split_host_port(host_port)?;

    let scheme = scheme.to_ascii_lowercase();
    let port = match port {
        None => None,
        Some(port) => {
            let number = parse_port(port)?;
            let default = matches!((scheme.as_str(), number), ("http", 80) | ("https", 443));
            (!default).then_some(number)
        }
    };
    let path = &path_and_more[..path_and_more
        .find(['?', '#'])
        .unwrap_or(path_and_more.len())];

    let mut out = String::with_capacity(uri.len() + 1);
    out.push_str(&scheme);
    out.push_str("://");
    out.push_str(&host.to_ascii_lowercase());
    if let Some(port) = port {
        out.push(':');
        out.push_str(&port.to_string());
    }
    out.push_str(if path.is_empty() { "/" } else { path });
    Ok(out)
}

/// RFC 3986 §3.1: `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`.
fn is_scheme(scheme: &str) -> bool {
    let mut bytes = scheme.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// Splits `host[:port]` (the authority without its userinfo) into the host as written and the text after
/// the `:` that introduces the port, if any. The host is checked: a bracketed IPv6 address or a registered
/// name / IPv4 address of RFC 3986 characters (non-ASCII is let through as written).
fn split_host_port(host_port: &str) -> Result<(&str, Option<&str>), UriError> {
    let (host, after_host) = if host_port.starts_with('[') {
        let close = host_port
            .find(']')
            .ok_or_else(|| UriError::InvalidHost(host_port.to_owned()))?;
        let (host, after) = host_port.split_at(close + 1);
        if host[1..close].parse::<Ipv6Addr>().is_err() {
            return Err(UriError::InvalidHost(host.to_owned()));
        }
        if !after.is_empty() && !after.starts_with(':') {
            return Err(UriError::InvalidHost(host_port.to_owned()));
        }
        (host, after)
    } else {
        let colon = host_port.find(':').unwrap_or(host_port.len());
        let (host, after) = host_port.split_at(colon);
        if host.is_empty() {
            return Err(UriError::MissingHost);
        }
        if !host.bytes().all(is_reg_name_byte) {
            return Err(UriError::InvalidHost(host.to_owned()));
        }
        (host, after)
    };
    Ok((host, after_host.strip_prefix(':')))
}

/// A byte of RFC 3986's `reg-name` (unreserved, `%` of a pct-encoded octet, sub-delims), or any byte of a
/// non-ASCII character.
fn is_reg_name_byte(b: u8) -> bool {
    !b.is_ascii()
        || b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'%'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
        )
}

/// A port: one or more decimal digits with a value in 1–65535.
fn parse_port(port: &str) -> Result<u16, UriError> {
    let invalid = || UriError::InvalidPort(port.to_owned());
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    match port.parse::<u16>() {
        Ok(0) | Err(_) => Err(invalid()),
        Ok(number) => Ok(number),
    }
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
    fn path_is_kept_exactly_as_given() {
        for path in [
            "/wp-json/wp/v2/posts/../users/me",
            "/wp-json/wp/v2/posts/./x/",
            "/a/b/..",
            "/wp-json/wp/v2/posts/%2e%2e/users/me",
            "/wp-json/wp/v2/posts/%2E%2E/users/%2e/me",
            "/wp-json/wp/v2/posts/{id}",
            "/q\"u<o>t`e|s^",
            "/back\\slash",
            "//double//slashes/",
            "/caf\u{e9}/%c3%a9/%C3%A9",
            "/a~b!c'd(e)*,;:@$&=+",
        ] {
            assert_eq!(
                base_string_uri(&format!("https://site.example{path}?x=1#f")).unwrap(),
                format!("https://site.example{path}"),
            );
        }
        assert_eq!(
            base_string_uri("http://h/p#frag?not-a-query").unwrap(),
            "http://h/p"
        );
        assert_eq!(base_string_uri("http://h?q=/x").unwrap(), "http://h/");
        assert_eq!(base_string_uri("http://h#/x").unwrap(), "http://h/");
    }

    #[test]
    fn hosts_are_kept_as_written_apart_from_case() {
        assert_eq!(
            base_string_uri("http://127.000.000.001/x").unwrap(),
            "http://127.000.000.001/x"
        );
        assert_eq!(base_string_uri("http://0x7f.1/").unwrap(), "http://0x7f.1/");
        assert_eq!(
            base_string_uri("HTTP://WWW.Example.COM/Path/UPPER").unwrap(),
            "http://www.example.com/Path/UPPER"
        );
        assert_eq!(
            base_string_uri("HtTpS://MiXeD.Example:8443/A").unwrap(),
            "https://mixed.example:8443/A"
        );
        // Only ASCII letters are lower-cased.
        assert_eq!(
            base_string_uri("https://B\u{dc}CHER.Example/").unwrap(),
            "https://b\u{dc}cher.example/"
        );
    }

    #[test]
    fn ipv6_literals_with_and_without_port() {
        assert_eq!(
            base_string_uri("http://[::1]:8080/p?q").unwrap(),
            "http://[::1]:8080/p"
        );
        assert_eq!(base_string_uri("http://[::1]/p").unwrap(), "http://[::1]/p");
        assert_eq!(base_string_uri("http://[::1]").unwrap(), "http://[::1]/");
        assert_eq!(
            base_string_uri("https://u:p@[2001:DB8::A]:443/x").unwrap(),
            "https://[2001:db8::a]/x"
        );
        assert_eq!(
            base_string_uri("http://[::ffff:192.0.2.1]:80").unwrap(),
            "http://[::ffff:192.0.2.1]/"
        );
        for bad in [
            "http://[::1/",
            "http://[not-ipv6]/",
            "http://[]/",
            "http://[::1]x/",
            "http://[::1]]/",
            "http://[fe80::1%25eth0]/",
        ] {
            assert!(
                matches!(base_string_uri(bad), Err(UriError::InvalidHost(_))),
                "{bad}: {:?}",
                base_string_uri(bad)
            );
        }
        assert!(matches!(
            base_string_uri("http://[::1]:/"),
            Err(UriError::InvalidPort(_))
        ));
    }

    #[test]
    fn only_the_default_port_of_http_and_https_is_dropped() {
        assert_eq!(base_string_uri("http://h:80/").unwrap(), "http://h/");
        assert_eq!(base_string_uri("https://h:443/").unwrap(), "https://h/");
        assert_eq!(base_string_uri("HTTP://h:80").unwrap(), "http://h/");
        assert_eq!(base_string_uri("http://h:443/").unwrap(), "http://h:443/");
        assert_eq!(base_string_uri("https://h:80/").unwrap(), "https://h:80/");
        assert_eq!(base_string_uri("http://h:8080/").unwrap(), "http://h:8080/");
        assert_eq!(
            base_string_uri("https://h:65535/").unwrap(),
            "https://h:65535/"
        );
        assert_eq!(base_string_uri("ftp://h:21/f").unwrap(), "ftp://h:21/f");
        assert_eq!(base_string_uri("ws://h:80/").unwrap(), "ws://h:80/");
        assert_eq!(base_string_uri("ftp://h/f").unwrap(), "ftp://h/f");
        // A port is a number: leading zeros do not hide the default port (as in oauthlib).
        assert_eq!(base_string_uri("http://h:0080/").unwrap(), "http://h/");
        assert_eq!(
            base_string_uri("http://h:08080/").unwrap(),
            "http://h:8080/"
        );
    }

    #[test]
    fn bad_ports_are_refused() {
        for bad in [
            "http://h:/",
            "http://h:",
            "http://h:x/",
            "http://h:80a/",
            "http://h:+80/",
            "http://h:-1/",
            "http://h:0/",
            "http://h:65536/",
            "http://h:99999999999999999999/",
            "http://h:80:80/",
            "http://user:pw@h:pw/",
        ] {
            assert!(
                matches!(base_string_uri(bad), Err(UriError::InvalidPort(_))),
                "{bad}: {:?}",
                base_string_uri(bad)
            );
        }
    }

    #[test]
    fn missing_hosts_are_refused() {
        for bad in [
            "http:///path",
            "http://",
            "https://?q=1",
            "https://#f",
            "http://:8080/",
            "http://user:pw@/p",
            "http://user@:80/",
        ] {
            assert_eq!(base_string_uri(bad), Err(UriError::MissingHost), "{bad}");
        }
    }

    #[test]
    fn malformed_uris_are_refused() {
        for bad in [
            "",
            "site.example/path",
            "//site.example/path",
            "http:/site.example/",
            "http:site.example/",
            "1http://h/",
            "h@ttp://h/",
            "://h/",
        ] {
            assert!(
                matches!(base_string_uri(bad), Err(UriError::NotAbsolute(_))),
                "{bad}: {:?}",
                base_string_uri(bad)
            );
        }
        for bad in [
            "http://a\\b/",
            "http://a\"b/",
            "http://a{b}/",
            "http://a<b/",
            "http://a]/",
        ] {
            assert!(
                matches!(base_string_uri(bad), Err(UriError::InvalidHost(_))),
                "{bad}: {:?}",
                base_string_uri(bad)
            );
        }
    }

    #[test]
    fn whitespace_and_control_characters_are_refused() {
        for (bad, c) in [
            ("http://h/a b", ' '),
            (" http://h/", ' '),
            ("ht tp://h/", ' '),
            ("http://h/\t", '\t'),
            ("http://h/\n", '\n'),
            ("http://h\r/", '\r'),
            ("http://h/\0", '\0'),
            ("http://h/\u{7f}", '\u{7f}'),
            ("http://h/\u{85}", '\u{85}'),
            ("http://h/\u{a0}", '\u{a0}'),
            ("http://h/\u{2028}", '\u{2028}'),
            ("http://h/?q=a b", ' '),
        ] {
            assert_eq!(
                base_string_uri(bad),
                Err(UriError::ForbiddenCharacter(c)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn base_string_encodes_each_part() {
        assert_eq!(
            signature_base_string("post", "https://a.example/p", "a=1&b=%20"),
            "POST&https%3A%2F%2Fa.example%2Fp&a%3D1%26b%3D%2520"
        );
    }
}
