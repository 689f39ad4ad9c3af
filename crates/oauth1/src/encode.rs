//! Percent-encoding as RFC 5849 §3.6 wants it, and the two decodings the protocol meets.

use std::fmt;

/// Characters RFC 3986 calls unreserved: the only ones that are never encoded.
fn is_unreserved(byte: u8) -> bool {
    UNRESERVED[usize::from(byte)]
}

/// [`is_unreserved`] as a table: the encoders below test every byte they see.
const UNRESERVED: [bool; 256] = {
    let mut table = [false; 256];
    let mut byte = 0;
    while byte < 256 {
        let b = byte as u8;
        table[byte] = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
        byte += 1;
    }
    table
};

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Appends `%XX` for `byte`.
fn push_escape(byte: u8, out: &mut String) {
    out.push('%');
    out.push(char::from(HEX_UPPER[usize::from(byte >> 4)]));
    out.push(char::from(HEX_UPPER[usize::from(byte & 0x0f)]));
}

/// Encodes `value` per RFC 5849 §3.6: UTF-8 bytes, every byte outside the unreserved set as `%XX` with
/// upper-case hex.
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + value.len() / 2);
    percent_encode_into(value, &mut out);
    out
}

/// Calls `escape` for every byte of `value` outside the unreserved set and appends each run of unreserved
/// bytes between them to `out` in one copy.
fn encode_runs(value: &str, out: &mut String, escape: impl Fn(u8, &mut String)) {
    out.reserve(value.len());
    let mut run_start = 0;
    for (i, &byte) in value.as_bytes().iter().enumerate() {
        if !is_unreserved(byte) {
            // A non-empty run holds only unreserved (ASCII) bytes, so both ends are char boundaries.
            if run_start < i {
                out.push_str(&value[run_start..i]);
            }
            escape(byte, out);
            run_start = i + 1;
        }
    }
    if run_start < value.len() {
        out.push_str(&value[run_start..]);
    }
}

/// [`percent_encode`] appending to `out`, so the base string is built without temporary strings.
pub(crate) fn percent_encode_into(value: &str, out: &mut String) {
    encode_runs(value, out, push_escape);
}

/// `percent_encode(&percent_encode(value))` appending to `out`, without the intermediate string: the first
/// encoding leaves unreserved bytes alone and turns every other byte into `%XX`, whose `%` the second turns
/// into `%25` (hex digits are unreserved).
pub(crate) fn percent_encode_twice_into(value: &str, out: &mut String) {
    encode_runs(value, out, |byte, out| {
        out.push_str("%25");
        out.push(char::from(HEX_UPPER[usize::from(byte >> 4)]));
        out.push(char::from(HEX_UPPER[usize::from(byte & 0x0f)]));
    });
}

/// `percent_encode(a).cmp(&percent_encode(b))` without encoding.
///
/// Encoding maps each byte to a token on its own: an unreserved byte to itself, any other to `%XX`. At the
/// first byte where `a` and `b` differ their tokens decide: `%` (0x25) sorts before every unreserved byte
/// (the smallest is `-`, 0x2D), two escapes sort as their bytes (upper-case hex digits are in ASCII order),
/// and two unreserved bytes as themselves. A string that is a prefix of the other sorts first either way.
pub(crate) fn cmp_encoded(a: &str, b: &str) -> std::cmp::Ordering {
    let key = |byte: u8| (is_unreserved(byte), byte);
    a.bytes().map(key).cmp(b.bytes().map(key))
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

    /// Strings that exercise every token class: unreserved runs, reserved ASCII, `%`, multi-byte UTF-8.
    const SAMPLES: [&str; 20] = [
        "",
        "a",
        "A",
        "z",
        "0",
        "-",
        ".",
        "_",
        "~",
        " ",
        "%",
        "&",
        "=",
        "+",
        "/",
        "é",
        "☃",
        "a b",
        "ab~",
        "\u{10FFFF}x",
    ];

    #[test]
    fn encoding_twice_in_one_pass_equals_encoding_twice() {
        for a in SAMPLES {
            for b in SAMPLES {
                let value = format!("{a}{b}x{a}");
                let mut out = String::from("prefix");
                percent_encode_twice_into(&value, &mut out);
                assert_eq!(
                    out,
                    format!("prefix{}", percent_encode(&percent_encode(&value))),
                    "{value:?}"
                );
            }
        }
    }

    #[test]
    fn encoded_order_without_encoding() {
        let mut strings: Vec<String> = Vec::new();
        for a in SAMPLES {
            for b in SAMPLES {
                strings.push(format!("{a}{b}"));
            }
        }
        for a in &strings {
            for b in &strings {
                assert_eq!(
                    cmp_encoded(a, b),
                    percent_encode(a).cmp(&percent_encode(b)),
                    "{a:?} vs {b:?}"
                );
            }
        }
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
