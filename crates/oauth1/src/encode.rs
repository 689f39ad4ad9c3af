//! Percent-encoding as RFC 5849 §3.6 wants it, and the two decodings the protocol meets.

use std::fmt;

/// Characters RFC 3986 calls unreserved: the only ones that are never encoded.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Encodes `value` per RFC 5849 §3.6: UTF-8 bytes, every byte outside the unreserved set as `%XX` with
/// upper-case hex.
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + value.len() / 2);
    percent_encode_into(value, &mut out);
    out
}

/// [`percent_encode`] appending to `out`, so the base string is built without temporary strings.
pub(crate) fn percent_encode_into(value: &str, out: &mut String) {
    for &byte in value.as_bytes() {
        if is_unreserved(byte) {
            out.push(byte as char);
        } else {
            out.push('%');
            out.push(HEX_UPPER[usize::from(byte >> 4)] as char);
            out.push(HEX_UPPER[usize::from(byte & 0x0f)] as char);
        }
    }
}

/// Why a percent-encoded string could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// A `%` not followed by two hexadecimal digits, at this byte offset.
    InvalidEscape(usize),
    /// The decoded bytes are not UTF-8.
    InvalidUtf8,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidEscape(at) => write!(f, "invalid percent-escape at byte {at}"),
            Self::InvalidUtf8 => f.write_str("percent-decoded value is not UTF-8"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// How `+` is read while decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plus {
    /// `application/x-www-form-urlencoded` (query strings and form bodies): `+` is a space.
    Space,
    /// RFC 3986 (the `Authorization` header): `+` is a literal plus.
    Literal,
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes (and `+` as `plus` says) into a UTF-8 string.
pub fn percent_decode(value: &str, plus: Plus) -> Result<String, DecodeError> {
    let bytes = value.as_bytes();
    if !bytes
        .iter()
        .any(|&b| b == b'%' || (b == b'+' && plus == Plus::Space))
    {
        return Ok(value.to_owned());
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_value);
                let lo = bytes.get(i + 2).copied().and_then(hex_value);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                    _ => return Err(DecodeError::InvalidEscape(i)),
                }
                i += 3;
            }
            b'+' if plus == Plus::Space => {
                out.push(b' ');
                i += 1;
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| DecodeError::InvalidUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_everything_but_unreserved() {
        assert_eq!(percent_encode("abcXYZ019-._~"), "abcXYZ019-._~");
        assert_eq!(percent_encode("a b+c%d&e=f/g"), "a%20b%2Bc%25d%26e%3Df%2Fg");
        assert_eq!(percent_encode("é☃"), "%C3%A9%E2%98%83");
        assert_eq!(percent_encode(""), "");
    }

    #[test]
    fn plus_depends_on_the_context() {
        assert_eq!(percent_decode("a+b%2B", Plus::Space).unwrap(), "a b+");
        assert_eq!(percent_decode("a+b%2B", Plus::Literal).unwrap(), "a+b+");
    }

    #[test]
    fn decoding_accepts_lower_case_hex() {
        assert_eq!(percent_decode("%c3%a9", Plus::Literal).unwrap(), "é");
    }

    #[test]
    fn bad_escapes_and_bad_utf8_are_errors() {
        assert_eq!(
            percent_decode("ab%2", Plus::Literal),
            Err(DecodeError::InvalidEscape(2))
        );
        assert_eq!(
            percent_decode("%zz", Plus::Literal),
            Err(DecodeError::InvalidEscape(0))
        );
        assert_eq!(
            percent_decode("%", Plus::Space),
            Err(DecodeError::InvalidEscape(0))
        );
        assert_eq!(
            percent_decode("%FF", Plus::Space),
            Err(DecodeError::InvalidUtf8)
        );
    }
}
