//! NUL characters in request input.
//!
//! PostgreSQL `text` cannot hold U+0000: a statement binding a string with one fails, and a service would
//! answer 500. Bad input must get the endpoint's own 4xx instead, so every field is checked where its form
//! or body is parsed, one of two ways:
//!
//! * identifiers, keys, ids, emails and URLs holding NUL name nothing that can exist: [`has_nul`] → the
//!   endpoint's usual validation error (or "not found");
//! * free text shown to people (names, descriptions, labels) loses its NULs: [`drop_nul`], as WordPress's
//!   `wp_kses_no_null` does.

use std::borrow::Cow;

/// Whether `value` holds a NUL character (U+0000), which PostgreSQL `text` cannot store.
pub fn has_nul(value: &str) -> bool {
    value.contains('\0')
}

/// `value` without its NUL characters (borrowed when it has none).
pub fn drop_nul(value: &str) -> Cow<'_, str> {
    if has_nul(value) {
        Cow::Owned(value.replace('\0', ""))
    } else {
        Cow::Borrowed(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_is_found_and_dropped() {
        assert!(has_nul("a\0b"));
        assert!(has_nul("\0"));
        assert!(!has_nul("a b%00"));
        assert_eq!(drop_nul("\0a\0b\0"), "ab");
        assert!(matches!(drop_nul("plain"), Cow::Borrowed("plain")));
        assert_eq!(drop_nul("\0"), "");
    }
}
