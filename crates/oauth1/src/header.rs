//! The `Authorization: OAuth …` header (RFC 5849 §3.5.1).

use std::fmt;

use crate::encode::{DecodeError, Plus, percent_decode, percent_encode_into};

/// The parsed value of an `Authorization: OAuth …` header.
///
/// Only `oauth_*` parameters are kept: a real client also puts `server_url` in the header, and counting it
/// there as well as in the body would break its signature. `realm` is kept for formatting but never signed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthorizationHeader {
    /// The `realm` attribute, if any (RFC 2617 quoted-string, not percent-encoded).
    pub realm: Option<String>,
    /// The `oauth_*` parameters, percent-decoded, in header order, each name at most once.
    pub params: Vec<(String, String)>,
}

/// Why an `Authorization: OAuth` header could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// The header does not follow `name="value", …` syntax; the text says where.
    Malformed(&'static str),
    /// A name or value has a bad percent-escape or is not UTF-8.
    Encoding(DecodeError),
    /// The same `oauth_*` parameter appears twice.
    DuplicateParameter(String),
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(what) => write!(f, "malformed OAuth Authorization header: {what}"),
            Self::Encoding(err) => write!(f, "malformed OAuth Authorization header: {err}"),
            Self::DuplicateParameter(name) => {
                write!(f, "OAuth Authorization header repeats parameter {name}")
            }
        }
    }
}

impl std::error::Error for HeaderError {}

impl From<DecodeError> for HeaderError {
    fn from(err: DecodeError) -> Self {
        Self::Encoding(err)
    }
}

const SCHEME: &str = "OAuth";

impl AuthorizationHeader {
    /// Parses a header value.
    ///
    /// Returns `Ok(None)` when the scheme is not `OAuth` (for example `Basic` or `Bearer`): such a request is
    /// simply not an OAuth 1.0a request. The scheme name is case-insensitive (RFC 7235 §2.1).
    pub fn parse(value: &str) -> Result<Option<Self>, HeaderError> {
        let value = value.trim_start();
        let Some(rest) = strip_scheme(value) else {
            return Ok(None);
        };
        let mut header = AuthorizationHeader::default();
        let mut cursor = Cursor { rest };
        loop {
            cursor.skip_separators();
            if cursor.rest.is_empty() {
                break;
            }
            let raw_name = cursor.token();
            if raw_name.is_empty() {
                return Err(HeaderError::Malformed("expected a parameter name"));
            }
            cursor.skip_whitespace();
            if !cursor.eat('=') {
                return Err(HeaderError::Malformed(
                    "expected '=' after a parameter name",
                ));
            }
            cursor.skip_whitespace();
            let raw_value = cursor.value()?;
            cursor.skip_whitespace();
            if !(cursor.rest.is_empty() || cursor.rest.starts_with(',')) {
                return Err(HeaderError::Malformed("expected ',' between parameters"));
            }
            if raw_name.eq_ignore_ascii_case("realm") {
                header.realm = Some(raw_value.into_owned());
                continue;
            }
            let name = percent_decode(raw_name, Plus::Literal)?;
            if !name.starts_with("oauth_") {
                continue;
            }
            let value = percent_decode(&raw_value, Plus::Literal)?;
            if header.params.iter().any(|(n, _)| *n == name) {
                return Err(HeaderError::DuplicateParameter(name));
            }
            header.params.push((name, value));
        }
        Ok(Some(header))
    }

    /// The value of one parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Formats the header value: `OAuth realm="…", oauth_a="…", …` with every name and value
    /// percent-encoded (RFC 5849 §3.5.1).
    pub fn to_header_value(&self) -> String {
        let mut out = String::from(SCHEME);
        let mut first = true;
        let mut separator = |out: &mut String| {
            out.push_str(if first { " " } else { ", " });
            first = false;
        };
        if let Some(realm) = &self.realm {
            separator(&mut out);
            out.push_str("realm=\"");
            for c in realm.chars() {
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        }
        for (name, value) in &self.params {
            separator(&mut out);
            percent_encode_into(name, &mut out);
            out.push_str("=\"");
            percent_encode_into(value, &mut out);
            out.push('"');
        }
        out
    }
}

impl fmt::Display for AuthorizationHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_header_value())
    }
}

fn strip_scheme(value: &str) -> Option<&str> {
    let scheme = value.get(..SCHEME.len())?;
    if !scheme.eq_ignore_ascii_case(SCHEME) {
        return None;
    }
    let rest = &value[SCHEME.len()..];
    // "OAuthx" is another scheme; "OAuth" alone is an OAuth header with no parameters.
    match rest.chars().next() {
        None => Some(rest),
        Some(c) if WHITESPACE.contains(&c) => Some(rest),
        Some(_) => None,
    }
}

/// Spaces, tabs and the line breaks of an obsolete folded header (RFC 7230 §3.2.4).
const WHITESPACE: [char; 4] = [' ', '\t', '\r', '\n'];

struct Cursor<'a> {
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    fn skip_whitespace(&mut self) {
        self.rest = self.rest.trim_start_matches(WHITESPACE);
    }

    fn skip_separators(&mut self) {
        self.rest = self.rest.trim_start_matches([' ', '\t', '\r', '\n', ',']);
    }

    fn eat(&mut self, c: char) -> bool {
        match self.rest.strip_prefix(c) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    /// A name: everything up to `=`, whitespace or `,`.
    fn token(&mut self) -> &'a str {
        let end = self
            .rest
            .find(['=', ' ', '\t', '\r', '\n', ',', '"'])
            .unwrap_or(self.rest.len());
        let (token, rest) = self.rest.split_at(end);
        self.rest = rest;
        token
    }

    /// A value: an RFC 7230 quoted-string (with `\` escapes) or a bare token.
    fn value(&mut self) -> Result<std::borrow::Cow<'a, str>, HeaderError> {
        if let Some(body) = self.rest.strip_prefix('"') {
            // Most values have no escape: find the closing quote with a byte scan and borrow.
            let stop = body.bytes().position(|b| b == b'"' || b == b'\\');
            if let Some(end) = stop.filter(|&end| body.as_bytes()[end] == b'"') {
                self.rest = &body[end + 1..];
                return Ok(std::borrow::Cow::Borrowed(&body[..end]));
            }
            let mut unescaped: Option<String> = None;
            let mut chars = body.char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        self.rest = &body[i + 1..];
                        return Ok(match unescaped {
                            Some(s) => std::borrow::Cow::Owned(s),
                            None => std::borrow::Cow::Borrowed(&body[..i]),
                        });
                    }
                    '\\' => {
                        let (_, escaped) = chars
                            .next()
                            .ok_or(HeaderError::Malformed("unterminated quoted value"))?;
                        unescaped
                            .get_or_insert_with(|| body[..i].to_owned())
                            .push(escaped);
                    }
                    other => {
                        if let Some(s) = unescaped.as_mut() {
                            s.push(other);
                        }
                    }
                }
            }
            Err(HeaderError::Malformed("unterminated quoted value"))
        } else {
            let end = self
                .rest
                .find([',', ' ', '\t', '\r', '\n', '"'])
                .unwrap_or(self.rest.len());
            let (value, rest) = self.rest.split_at(end);
            self.rest = rest;
            Ok(std::borrow::Cow::Borrowed(value))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: &str) -> AuthorizationHeader {
        AuthorizationHeader::parse(value)
            .expect("parses")
            .expect("is OAuth")
    }

    #[test]
    fn parses_the_rfc_example() {
        let h = parse(
            "OAuth realm=\"Example\",\n oauth_consumer_key=\"9djdj82h48djs9d2\",\
             oauth_token=\"kkk9d7dh3k39sjv7\",oauth_signature_method=\"HMAC-SHA1\",\
             oauth_timestamp=\"137131201\",oauth_nonce=\"7d8f3e4a\",\
             oauth_signature=\"bYT5CMsGcbgUdFHObYMEfcx6bsw%3D\"",
        );
        assert_eq!(h.realm.as_deref(), Some("Example"));
        assert_eq!(
            h.get("oauth_signature"),
            Some("bYT5CMsGcbgUdFHObYMEfcx6bsw=")
        );
        assert_eq!(h.params.len(), 6);
    }

    #[test]
    fn keeps_only_oauth_parameters_and_reads_bare_values() {
        let h = parse("oauth oauth_nonce=abc, server_url=\"https://x/\" ,oauth_token=t%2Bu+v");
        assert_eq!(
            h.params,
            vec![
                ("oauth_nonce".to_owned(), "abc".to_owned()),
                ("oauth_token".to_owned(), "t+u+v".to_owned()),
            ]
        );
    }

    #[test]
    fn other_schemes_are_not_oauth() {
        assert_eq!(AuthorizationHeader::parse("Bearer abc").unwrap(), None);
        assert_eq!(AuthorizationHeader::parse("OAuthx a=b").unwrap(), None);
        assert_eq!(AuthorizationHeader::parse("").unwrap(), None);
        assert_eq!(parse("OAuth"), AuthorizationHeader::default());
    }

    #[test]
    fn malformed_headers_are_typed_errors() {
        for bad in [
            "OAuth oauth_nonce=\"abc",
            "OAuth oauth_nonce",
            "OAuth =abc",
            "OAuth oauth_nonce=\"a\"b",
            "OAuth oauth_nonce=\"a\\",
        ] {
            assert!(
                matches!(
                    AuthorizationHeader::parse(bad),
                    Err(HeaderError::Malformed(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            AuthorizationHeader::parse("OAuth oauth_nonce=\"%zz\""),
            Err(HeaderError::Encoding(_))
        ));
        assert_eq!(
            AuthorizationHeader::parse("OAuth oauth_nonce=a, oauth_nonce=b"),
            Err(HeaderError::DuplicateParameter("oauth_nonce".into()))
        );
    }

    #[test]
    fn formats_with_encoding_and_escaped_realm() {
        let h = AuthorizationHeader {
            realm: Some("a \"b\"".into()),
            params: vec![("oauth_callback".into(), "http://x/?a=b c".into())],
        };
        let value = h.to_header_value();
        assert_eq!(
            value,
            "OAuth realm=\"a \\\"b\\\"\", oauth_callback=\"http%3A%2F%2Fx%2F%3Fa%3Db%20c\""
        );
        assert_eq!(parse(&value), h);
    }
}
