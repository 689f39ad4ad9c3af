//! Benchmarks of the OAuth 1.0a server path (parse + verify) and of client-side signing.
//!
//! Run with `cargo bench -p authbroker-oauth1 --bench verify`; BENCHMARKS.md at the repository root records
//! the figures. What each benchmark measures:
//!
//! * `verify/rest_get_8_params` — the whole server path for a signed REST call (7 protocol parameters in
//!   the `Authorization` header + `?context=edit`): `SignedRequest::from_parts` + `Verifier::verify` with a
//!   secrets lookup that returns owned strings and a real `MemoryNonceStore`. Every iteration gets a
//!   freshly signed request with a distinct nonce, signed in untimed setup (`iter_batched`); the store is
//!   swapped for an empty one every `STORE_RESET` requests, also outside the timing, so its size stays
//!   realistic and the benchmark's memory bounded. Dropping the request and the header string is timed.
//! * `verify/rest_get_8_params_hmac_sha256` — the same with `HMAC-SHA256`.
//! * `verify/post_form_5_fields` — a `POST` with a 5-field `application/x-www-form-urlencoded` body.
//! * `verify/rest_get_8_params_no_replay_store` — the same request every iteration against a store that
//!   always answers "new": the whole path minus the cost of a real nonce insert, with no setup at all.
//! * `nonce_store/memory_insert` — `MemoryNonceStore::insert` of a fresh key alone.
//! * `sign/rest_get_8_params` — client side: `Signer::sign` + `AuthorizationHeader::to_header_value`.
//! * `parts/*` — the stages on their own, to see where the time goes.

use std::cell::RefCell;
use std::hint::black_box;

use authbroker_oauth1::{
    Checked, MemoryNonceStore, NonceKey, NonceStore, NonceStoreUnavailable, Param, RequestParts,
    SignatureMethod, SignedRequest, Signer, Verifier, VerifyError,
};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};

const NOW: i64 = 1_700_000_000;
const CONSUMER_KEY: &str = "Xq3mZ8pL2vRk";
const CONSUMER_SECRET: &str = "u8Fh2kQ9sLm3Wn7Rt5Yp1Zc4Vb6Nx0Ja";
const TOKEN: &str = "Hd7Kp2Qw9Ls4Mx8Vn3Bc";
const TOKEN_SECRET: &str = "Tg5Rf1Ed6Ws2Qa9Zx4Cv8Bn3Mk7Lj0Hp";
const REST_URI: &str = "https://site.example/wp-json/wp/v2/users/me?context=edit";
const FORM_URI: &str = "https://site.example/wp-json/wp/v2/posts";
const FORM_BODY: &str =
    "title=Hello%20world&status=draft&content=First+post%2C+signed&categories=3&format=standard";

/// How many requests one `MemoryNonceStore` sees before it is replaced (outside the timing).
const STORE_RESET: usize = 50_000;

/// A 128-bit nonce in hex, distinct for every `n`.
fn nonce(n: u64) -> String {
    format!(
        "{:032x}",
        u128::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
    )
}

fn signer(method: SignatureMethod) -> Signer<'static> {
    Signer::new(method, CONSUMER_KEY, CONSUMER_SECRET).token(TOKEN, TOKEN_SECRET)
}

fn form_pairs() -> Vec<Param> {
    authbroker_oauth1::parse_form(FORM_BODY).expect("valid form body")
}

/// The `Authorization` header value of a signed request.
fn header(method: SignatureMethod, http_method: &str, uri: &str, form: &[Param], n: u64) -> String {
    signer(method)
        .sign(http_method, uri, form, &nonce(n), NOW)
        .expect("absolute URI")
        .to_header_value()
}

/// The lookup a server does: owned secrets, as from a database row.
fn lookup(checked: &Checked<'_>) -> Result<(String, String), VerifyError> {
    if checked.consumer_key() == CONSUMER_KEY && checked.token() == Some(TOKEN) {
        Ok((CONSUMER_SECRET.to_owned(), TOKEN_SECRET.to_owned()))
    } else {
        Err(VerifyError::ConsumerNotFound)
    }
}

/// A store that treats every nonce as new: isolates the rest of the path from the insert.
struct AcceptAll;

impl NonceStore for AcceptAll {
    fn insert(
        &mut self,
        key: NonceKey<'_>,
        expires_at: i64,
    ) -> Result<bool, NonceStoreUnavailable> {
        black_box((key, expires_at));
        Ok(true)
    }
}

/// The server path: collect the parameters, then verify.
fn serve(
    verifier: &Verifier,
    http_method: &str,
    uri: &str,
    form_body: Option<&str>,
    authorization: &str,
    store: &mut impl NonceStore,
) -> bool {
    let request = SignedRequest::from_parts(&RequestParts {
        method: http_method,
        uri,
        form_body,
        authorization: Some(authorization),
    })
    .expect("well-formed request");
    verifier.verify(&request, NOW, lookup, store).is_ok()
}

/// One `verify/*` benchmark with fresh nonces and a real `MemoryNonceStore`.
fn bench_fresh(
    c: &mut Criterion,
    name: &str,
    method: SignatureMethod,
    http_method: &'static str,
    uri: &'static str,
    form_body: Option<&'static str>,
) {
    let form = form_body.map(|_| form_pairs()).unwrap_or_default();
    let verifier = Verifier::new();
    let store = RefCell::new(MemoryNonceStore::new());
    let mut counter = 0_u64;
    c.bench_function(name, |b| {
        b.iter_batched(
            || {
                counter += 1;
                let mut store = store.borrow_mut();
                if store.len() >= STORE_RESET {
                    *store = MemoryNonceStore::new();
                }
                header(method, http_method, uri, &form, counter)
            },
            |authorization| {
                let ok = serve(
                    &verifier,
                    http_method,
                    uri,
                    form_body,
                    &authorization,
                    &mut *store.borrow_mut(),
                );
                assert!(ok, "a fresh, correctly signed request verifies");
                ok
            },
            BatchSize::SmallInput,
        );
    });
}

fn verify_benches(c: &mut Criterion) {
    // Sanity: the benchmarked request really has 8 parameters, and replay is refused.
    let auth = header(SignatureMethod::HmacSha1, "GET", REST_URI, &[], 0);
    let request = SignedRequest::from_parts(&RequestParts {
        method: "GET",
        uri: REST_URI,
        form_body: None,
        authorization: Some(&auth),
    })
    .expect("well-formed request");
    assert_eq!(request.params().len(), 8);
    let mut store = MemoryNonceStore::new();
    assert!(
        Verifier::new()
            .verify(&request, NOW, lookup, &mut store)
            .is_ok()
    );
    assert_eq!(
        Verifier::new()
            .verify(&request, NOW, lookup, &mut store)
            .expect_err("a replay is refused"),
        VerifyError::NonceAlreadyUsed
    );

    bench_fresh(
        c,
        "verify/rest_get_8_params",
        SignatureMethod::HmacSha1,
        "GET",
        REST_URI,
        None,
    );
    bench_fresh(
        c,
        "verify/rest_get_8_params_hmac_sha256",
        SignatureMethod::HmacSha256,
        "GET",
        REST_URI,
        None,
    );
    bench_fresh(
        c,
        "verify/post_form_5_fields",
        SignatureMethod::HmacSha1,
        "POST",
        FORM_URI,
        Some(FORM_BODY),
    );

    let verifier = Verifier::new();
    c.bench_function("verify/rest_get_8_params_no_replay_store", |b| {
        b.iter(|| {
            serve(
                &verifier,
                "GET",
                black_box(REST_URI),
                None,
                black_box(&auth),
                &mut AcceptAll,
            )
        });
    });

    let store = RefCell::new(MemoryNonceStore::new());
    let mut counter = 0_u64;
    c.bench_function("nonce_store/memory_insert", |b| {
        b.iter_batched(
            || {
                counter += 1;
                let mut store = store.borrow_mut();
                if store.len() >= STORE_RESET {
                    *store = MemoryNonceStore::new();
                }
                nonce(counter)
            },
            |nonce| {
                store.borrow_mut().insert(
                    NonceKey {
                        consumer_key: CONSUMER_KEY,
                        token: TOKEN,
                        timestamp: NOW,
                        nonce: &nonce,
                    },
                    NOW + 900,
                )
            },
            BatchSize::SmallInput,
        );
    });
}

fn sign_benches(c: &mut Criterion) {
    let signer = signer(SignatureMethod::HmacSha1);
    let nonce = nonce(1);
    c.bench_function("sign/rest_get_8_params", |b| {
        b.iter(|| {
            signer
                .sign("GET", black_box(REST_URI), &[], black_box(&nonce), NOW)
                .expect("absolute URI")
                .to_header_value()
        });
    });
}

fn part_benches(c: &mut Criterion) {
    let auth = header(SignatureMethod::HmacSha1, "GET", REST_URI, &[], 0);
    let parts = RequestParts {
        method: "GET",
        uri: REST_URI,
        form_body: None,
        authorization: Some(&auth),
    };
    c.bench_function("parts/from_parts", |b| {
        b.iter(|| SignedRequest::from_parts(black_box(&parts)).expect("well-formed"));
    });
    let request = SignedRequest::from_parts(&parts).expect("well-formed");
    c.bench_function("parts/base_string", |b| {
        b.iter(|| black_box(&request).base_string());
    });
    let verifier = Verifier::new();
    c.bench_function("parts/check", |b| {
        b.iter(|| verifier.check(black_box(&request), NOW).is_ok());
    });
    c.bench_function("parts/verify_signature", |b| {
        let checked = verifier.check(&request, NOW).expect("valid");
        b.iter(|| {
            black_box(&checked)
                .verify_signature(authbroker_oauth1::Secrets {
                    consumer_secret: CONSUMER_SECRET,
                    token_secret: TOKEN_SECRET,
                })
                .is_ok()
        });
    });
}

criterion_group!(benches, verify_benches, sign_benches, part_benches);
criterion_main!(benches);
