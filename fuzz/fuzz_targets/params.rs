//! Parameter collection on arbitrary input: `parse_form`, `percent_decode` and
//! `SignedRequest::from_parts` must never panic, and a request they accept must yield a base string and go
//! through the secret-free checks without panicking either.
//!
//! Input layout: `uri 0xFF body 0xFF authorization 0xFF method`, each part UTF-8 (0xFF never occurs in
//! UTF-8, so it is a safe separator). A missing part is `None` (body, header) or `GET` (method).

#![no_main]

use authbroker_oauth1::{
    MemoryNonceStore, Plus, RequestParts, Secrets, SignedRequest, Verifier, parse_form,
    percent_decode,
};
use libfuzzer_sys::fuzz_target;

const NOW: i64 = 1_700_000_000;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|&b| b == 0xFF).map(std::str::from_utf8);
    let Some(Ok(uri)) = parts.next() else {
        return;
    };
    let mut next = || match parts.next() {
        None => Ok(None),
        Some(Ok(text)) => Ok(Some(text)),
        Some(Err(_)) => Err(()),
    };
    let (Ok(body), Ok(authorization), Ok(method)) = (next(), next(), next()) else {
        return;
    };

    for text in [Some(uri), body, authorization].into_iter().flatten() {
        let _ = parse_form(text);
        let _ = percent_decode(text, Plus::Space);
        let _ = percent_decode(text, Plus::Literal);
    }

    let Ok(request) = SignedRequest::from_parts(&RequestParts {
        method: method.unwrap_or("GET"),
        uri,
        form_body: body,
        authorization,
    }) else {
        return;
    };
    let base = request.base_string();
    assert!(base.starts_with(&*authbroker_oauth1::percent_encode(request.method())));
    let _ = request.has_oauth_params();

    let verifier = Verifier::new()
        .require_token(false)
        .timestamp_window(i64::from(u32::MAX));
    if let Ok(checked) = verifier.check(&request, NOW) {
        let _ = checked.verify_signature(Secrets {
            consumer_secret: "cs",
            token_secret: "ts",
        });
        let _ = checked.record_nonce(&mut MemoryNonceStore::new());
    }
});
