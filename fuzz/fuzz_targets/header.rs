//! `AuthorizationHeader::parse` on arbitrary input: it must never panic, and whatever it accepts must
//! survive a format/parse round trip unchanged.

#![no_main]

use authbroker_oauth1::AuthorizationHeader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Header values reach the parser as `&str`; bytes that are not UTF-8 never get this far.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(Some(header)) = AuthorizationHeader::parse(text) {
        let formatted = header.to_header_value();
        let reparsed = AuthorizationHeader::parse(&formatted);
        assert_eq!(
            reparsed,
            Ok(Some(header)),
            "input {text:?} formatted as {formatted:?} does not parse back"
        );
    }
});
