//! Interop with an independent OAuth 1.0a implementation, Python's oauthlib (3.2.2) and requests-oauthlib
//! (2.0.0), in both directions:
//!
//! 1. `interop/oauthlib_sign.py` signs requests with `requests_oauthlib.OAuth1` and `oauthlib.oauth1.Client`;
//!    [`Verifier`] must accept each one with the right secrets, once, and refuse it with a wrong secret.
//! 2. [`Signer`] signs requests; `interop/oauthlib_verify.py` checks them with oauthlib's server endpoints
//!    and must accept each one, and refuse the deliberately tampered ones.
//!
//! Both cover HMAC-SHA1, HMAC-SHA256 and PLAINTEXT; the protocol parameters in the `Authorization` header, in
//! the query and in a form body; requests with and without a token; temporary-credential requests with a
//! callback and token requests with a verifier; and parameter values with unicode, spaces, `+`, `%`, `~`,
//! `&`, `=` and repeated names.
//!
//! The Python interpreter comes from `AUTHBROKER_PYTHON`, which `scripts/test` sets to its venv. Without it
//! the tests fail: they are never skipped.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use authbroker_oauth1::{
    MemoryNonceStore, RequestParts, SignatureMethod, SignedRequest, Signer, Verifier, VerifyError,
};
use serde_json::{Value, json};

// Credentials shared with the scripts (sent to them as JSON). Keys, tokens, verifier and nonces satisfy
// oauthlib's default format checks (20–30 ASCII letters and digits); secrets have characters that must be
// percent-encoded in the signing key.
const CONSUMER_KEY: &str = "interopConsumerKey0001";
const CONSUMER_SECRET: &str = "c0nsumer sécret+&=%~";
const REQUEST_TOKEN: &str = "interopRequestToken001";
const REQUEST_TOKEN_SECRET: &str = "request/secret 1+&";
const ACCESS_TOKEN: &str = "interopAccessToken0001";
const ACCESS_TOKEN_SECRET: &str = "t0ken/secret+&=%~ ☃";
const VERIFIER: &str = "interopVerifier0000001";
const CALLBACK: &str = "https://client.example/oauth/callback?state=x y&next=/home+page~";
const REALM: &str = "authbroker";

/// The credentials a request is signed with.
#[derive(Debug)]
struct Credentials {
    consumer_key: &'static str,
    consumer_secret: &'static str,
    request_token: &'static str,
    request_token_secret: &'static str,
    access_token: &'static str,
    access_token_secret: &'static str,
}

const MAIN: Credentials = Credentials {
    consumer_key: CONSUMER_KEY,
    consumer_secret: CONSUMER_SECRET,
    request_token: REQUEST_TOKEN,
    request_token_secret: REQUEST_TOKEN_SECRET,
    access_token: ACCESS_TOKEN,
    access_token_secret: ACCESS_TOKEN_SECRET,
};

/// Secrets of unreserved characters only, for PLAINTEXT with the parameters in the query or the body.
///
/// oauthlib 3.2.2 cannot verify such requests when a secret has a character that percent-encoding
/// changes: its server percent-decodes `oauth_*` values from the query and the body a second time after
/// form-decoding them (`signature.collect_parameters` unescapes what `urldecode` already decoded), so the
/// PLAINTEXT signature `encode(cs)&encode(ts)` it receives no longer matches. It refuses the PLAINTEXT
/// query and body requests its own `Client` signs with such secrets just the same, while direction 1
/// shows that authbroker accepts them. The header, where oauthlib decodes once, uses [`MAIN`].
const PLAIN: Credentials = Credentials {
    consumer_key: "interopPlainConsumer01",
    consumer_secret: "plain-consumer_secret.1~",
    request_token: "interopPlainRequest001",
    request_token_secret: "plain-request.secret~",
    access_token: "interopPlainAccess0001",
    access_token_secret: "plain-access_secret.~",
};

const ALL_METHODS: [SignatureMethod; 3] = [
    SignatureMethod::HmacSha1,
    SignatureMethod::HmacSha256,
    SignatureMethod::Plaintext,
];

/// The pinned oauthlib of requirements-test.txt.
const OAUTHLIB_VERSION: &str = "3.2.2";

fn python() -> String {
    match std::env::var("AUTHBROKER_PYTHON") {
        Ok(path) if !path.trim().is_empty() => path,
        _ => panic!(
            "AUTHBROKER_PYTHON is not set: run scripts/test, which installs the interop venv, or set \
             AUTHBROKER_PYTHON to a Python with the packages of requirements-test.txt \
             (e.g. AUTHBROKER_PYTHON=~/.cache/authbroker/venv/bin/python)"
        ),
    }
}

/// Runs `tests/interop/<script>` with `input` as JSON on stdin and returns its JSON stdout.
fn run_script(script: &str, input: &Value) -> Value {
    let python = python();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("interop")
        .join(script);
    let mut child = Command::new(&python)
        .arg(&path)
        .env("PYTHONIOENCODING", "utf-8")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run AUTHBROKER_PYTHON={python}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = serde_json::to_vec(input).unwrap();
    // Written from another thread so that a script that talks before it has read everything cannot
    // deadlock against us.
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().unwrap();
    let written = writer.join().unwrap();
    assert!(
        output.status.success(),
        "{} failed ({}):\n{}",
        path.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    written.unwrap();
    let value: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{script} printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    assert_eq!(
        value["oauthlib"], OAUTHLIB_VERSION,
        "the interop venv is not the pinned one; rerun scripts/test"
    );
    value
}

fn str_field<'v>(value: &'v Value, name: &str) -> &'v str {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("field {name} missing in {value}"))
}

// ---------------------------------------------------------------------------------------------------------
// Direction 1: oauthlib signs, authbroker verifies.
// ---------------------------------------------------------------------------------------------------------

#[test]
fn oauthlib_signs_and_authbroker_verifies() {
    let signed = run_script(
        "oauthlib_sign.py",
        &json!({
            "consumer_key": CONSUMER_KEY,
            "consumer_secret": CONSUMER_SECRET,
            "request_token": REQUEST_TOKEN,
            "request_token_secret": REQUEST_TOKEN_SECRET,
            "access_token": ACCESS_TOKEN,
            "access_token_secret": ACCESS_TOKEN_SECRET,
            "verifier": VERIFIER,
            "callback": CALLBACK,
            "realm": REALM,
        }),
    );
    let requests = signed["requests"].as_array().unwrap();
    assert!(
        requests.len() >= 50,
        "expected the full case list, got {}",
        requests.len()
    );

    let mut nonces = MemoryNonceStore::new();
    let mut failures = Vec::new();
    let mut covered = BTreeSet::new();
    for request in requests {
        let id = str_field(request, "id");
        if let Err(why) = verify_python_signed(request, &mut nonces) {
            failures.push(format!("{id}: {why}"));
        }
        covered.insert((
            str_field(request, "signature_method"),
            str_field(request, "signature_type"),
            str_field(request, "token"),
        ));
    }
    assert!(
        failures.is_empty(),
        "{} of {} oauthlib-signed requests failed:\n{}",
        failures.len(),
        requests.len(),
        failures.join("\n")
    );
    // 3 methods x 3 places x (no token, request token, access token).
    assert_eq!(covered.len(), 27, "coverage: {covered:?}");
}

/// A header of a request printed by the script, by case-insensitive name.
fn header<'v>(request: &'v Value, name: &str) -> Option<&'v str> {
    request["headers"]
        .as_object()?
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
}

fn verify_python_signed(request: &Value, nonces: &mut MemoryNonceStore) -> Result<(), String> {
    let content_type = header(request, "Content-Type").unwrap_or_default();
    let is_form = content_type
        .to_ascii_lowercase()
        .contains("application/x-www-form-urlencoded");
    let parts = RequestParts {
        method: str_field(request, "method"),
        uri: str_field(request, "url"),
        form_body: if is_form {
            request["body"].as_str()
        } else {
            None
        },
        authorization: header(request, "Authorization"),
    };
    let signed = SignedRequest::from_parts(&parts)
        .map_err(|e| format!("cannot read the request ({e:?}): {parts:?}"))?;
    // Verify at the request's own timestamp: oauthlib took it from its clock, or the case fixed it.
    let now: i64 = signed
        .param("oauth_timestamp")
        .and_then(|t| t.parse().ok())
        .ok_or("no numeric oauth_timestamp")?;

    let (token, token_secret) = match str_field(request, "token") {
        "access" => (Some(ACCESS_TOKEN), ACCESS_TOKEN_SECRET),
        "request" => (Some(REQUEST_TOKEN), REQUEST_TOKEN_SECRET),
        _ => (None, ""),
    };
    let verifier = Verifier::new()
        .methods(&ALL_METHODS)
        .require_token(token.is_some());
    let lookup = |consumer_secret: &'static str, token_secret: &'static str| {
        move |c: &authbroker_oauth1::Checked<'_>| {
            if c.consumer_key() != CONSUMER_KEY {
                return Err(VerifyError::ConsumerNotFound);
            }
            if c.token() != token {
                return Err(VerifyError::InvalidToken);
            }
            Ok((consumer_secret.to_owned(), token_secret.to_owned()))
        }
    };

    // Wrong secrets first: a forged signature must neither verify nor burn the nonce.
    match verifier.verify(&signed, now, lookup("not the secret", token_secret), nonces) {
        Err(VerifyError::SignatureMismatch) => {}
        other => return Err(format!("with a wrong consumer secret: {other:?}")),
    }
    if token.is_some() {
        match verifier.verify(&signed, now, lookup(CONSUMER_SECRET, "not it"), nonces) {
            Err(VerifyError::SignatureMismatch) => {}
            other => return Err(format!("with a wrong token secret: {other:?}")),
        }
    }

    let checked = verifier
        .verify(&signed, now, lookup(CONSUMER_SECRET, token_secret), nonces)
        .map_err(|e| {
            format!(
                "refused: {e:?} ({e})\n  request: {parts:?}\n  our base string: {}",
                signed.base_string()
            )
        })?;
    if checked.signature_method().as_str() != str_field(request, "signature_method") {
        return Err(format!(
            "signature method read as {}",
            checked.signature_method()
        ));
    }
    if checked.token() != token {
        return Err(format!("token read as {:?}", checked.token()));
    }
    if str_field(request, "id").ends_with("/temporary-credentials")
        && signed.param("oauth_callback") != Some(CALLBACK)
    {
        return Err(format!(
            "callback read as {:?}",
            signed.param("oauth_callback")
        ));
    }
    if token == Some(REQUEST_TOKEN) && signed.param("oauth_verifier") != Some(VERIFIER) {
        return Err(format!(
            "verifier read as {:?}",
            signed.param("oauth_verifier")
        ));
    }

    // And only once.
    match verifier.verify(&signed, now, lookup(CONSUMER_SECRET, token_secret), nonces) {
        Err(VerifyError::NonceAlreadyUsed) => Ok(()),
        other => Err(format!("a replay gave {other:?}")),
    }
}

// ---------------------------------------------------------------------------------------------------------
// Direction 2: authbroker signs, oauthlib verifies.
// ---------------------------------------------------------------------------------------------------------

/// Where the signed protocol parameters travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Header,
    Query,
    Body,
}

/// What a case's request is, which decides the signer's credentials and the oauthlib endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A REST call with the access token (`ResourceEndpoint`).
    Resource,
    /// A temporary-credential request with a callback (`RequestTokenEndpoint`).
    TemporaryCredentials,
    /// A token request with the request token and verifier (`AccessTokenEndpoint`).
    TokenRequest,
    /// A two-legged call without a token (`SignatureOnlyEndpoint`).
    TwoLegged,
}

impl Kind {
    fn endpoint(self) -> &'static str {
        match self {
            Self::Resource => "resource",
            Self::TemporaryCredentials => "request_token",
            Self::TokenRequest => "access_token",
            Self::TwoLegged => "signature_only",
        }
    }
}

/// One request for oauthlib.
struct Case {
    id: String,
    kind: Kind,
    method: &'static str,
    place: Place,
    signature_method: SignatureMethod,
    /// The URI including any query of the request itself.
    uri: String,
    /// A form body's decoded pairs (signed).
    form: Vec<(String, String)>,
    /// A JSON body (not signed).
    json: Option<&'static str>,
    /// Whether to send the optional `oauth_version`.
    version: bool,
    credentials: &'static Credentials,
    /// Sign with this consumer secret instead of the right one.
    wrong_consumer_secret: Option<&'static str>,
    /// Applied after signing: `from` is replaced by `to` once, in the final URI or else in the body.
    tamper: Option<(&'static str, &'static str)>,
}

impl Case {
    fn new(
        id: impl Into<String>,
        kind: Kind,
        method: &'static str,
        uri: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            kind,
            method,
            place: Place::Header,
            signature_method: SignatureMethod::HmacSha1,
            uri: uri.into(),
            form: Vec::new(),
            json: None,
            version: true,
            credentials: &MAIN,
            wrong_consumer_secret: None,
            tamper: None,
        }
    }

    fn place(mut self, place: Place) -> Self {
        self.place = place;
        self
    }

    fn signature_method(mut self, method: SignatureMethod) -> Self {
        self.signature_method = method;
        self
    }

    fn form(mut self, pairs: &[(&str, &str)]) -> Self {
        self.form = owned(pairs);
        self
    }

    fn expects_valid(&self) -> bool {
        self.tamper.is_none() && self.wrong_consumer_secret.is_none()
    }

    /// Signs the case and renders it as the JSON request the script reads.
    fn render(&self, nonce: &str, timestamp: i64) -> Value {
        let creds = self.credentials;
        let consumer_secret = self.wrong_consumer_secret.unwrap_or(creds.consumer_secret);
        let mut signer = Signer::new(self.signature_method, creds.consumer_key, consumer_secret)
            .with_version(self.version);
        signer = match self.kind {
            Kind::Resource => signer.token(creds.access_token, creds.access_token_secret),
            Kind::TemporaryCredentials => signer.callback(CALLBACK),
            Kind::TokenRequest => signer
                .token(creds.request_token, creds.request_token_secret)
                .verifier(VERIFIER),
            Kind::TwoLegged => signer,
        };
        let mut oauth = signer
            .sign(self.method, &self.uri, &self.form, nonce, timestamp)
            .unwrap_or_else(|e| panic!("{}: cannot sign: {e}", self.id));

        let mut uri = self.uri.clone();
        let mut headers = serde_json::Map::new();
        let mut body = (!self.form.is_empty()).then(|| form_encode(&self.form));
        match self.place {
            Place::Header => {
                if self.kind == Kind::TemporaryCredentials {
                    oauth.realm = Some(REALM.to_owned());
                }
                headers.insert("Authorization".into(), oauth.to_header_value().into());
            }
            Place::Query => {
                uri.push(if uri.contains('?') { '&' } else { '?' });
                uri.push_str(&form_encode(&oauth.params));
            }
            Place::Body => {
                let params = form_encode(&oauth.params);
                body = Some(match body {
                    Some(form) => format!("{form}&{params}"),
                    None => params,
                });
            }
        }
        if body.is_some() {
            headers.insert(
                "Content-Type".into(),
                "application/x-www-form-urlencoded".into(),
            );
        }
        if let Some(json) = self.json {
            headers.insert("Content-Type".into(), "application/json".into());
            body = Some(json.to_owned());
        }
        if let Some((from, to)) = self.tamper {
            let in_uri = uri.contains(from);
            if in_uri {
                uri = uri.replacen(from, to, 1);
            } else {
                let tampered = body.as_deref().filter(|b| b.contains(from));
                let tampered = tampered.unwrap_or_else(|| panic!("{}: nothing to tamper", self.id));
                body = Some(tampered.replacen(from, to, 1));
            }
        }
        json!({
            "id": self.id,
            "endpoint": self.kind.endpoint(),
            "method": self.method,
            "url": uri,
            "headers": headers,
            "body": body,
        })
    }
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

/// `application/x-www-form-urlencoded` as browsers write it: unreserved bytes as they are, space as `+`,
/// every other byte `%XX`. Written here rather than taken from the crate, so the crate's encoder is not
/// trusted to produce its own test input.
fn form_encode(pairs: &[(String, String)]) -> String {
    fn escape(s: &str, out: &mut String) {
        for &b in s.as_bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    out.push(char::from(b));
                }
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{b:02X}")),
            }
        }
    }
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        escape(name, &mut out);
        out.push('=');
        escape(value, &mut out);
    }
    out
}

/// Query parameters of REST calls, with every awkward character and repeated names.
const QUERY: [(&str, &str); 9] = [
    ("search", "café ☕ crème brûlée"),
    ("filter", "a+b=c&d"),
    ("discount", "100% ~off~"),
    ("tags[]", "zeta"),
    ("tags[]", "alpha"),
    ("tags[]", "alpha beta"),
    ("odd name&=", "v"),
    ("empty", ""),
    ("per_page", "5"),
];

/// Form fields of POST calls.
const FORM: [(&str, &str); 8] = [
    ("title", "Hello, wörld! 1+1=2 & 50% off ~today~"),
    ("content", "line one\nline \"two\" <b>bold</b>"),
    ("status", "draft"),
    ("categories[]", "7"),
    ("categories[]", "3"),
    ("categories[]", "3"),
    ("emoji", "🦀 + 🐍"),
    ("empty", ""),
];

fn rust_cases() -> Vec<Case> {
    let query = form_encode(&owned(&QUERY));
    let mut cases = Vec::new();
    for method in ALL_METHODS {
        for place in [Place::Header, Place::Query, Place::Body] {
            let tag = format!("{method}/{place:?}");
            let credentials = if method == SignatureMethod::Plaintext && place != Place::Header {
                &PLAIN
            } else {
                &MAIN
            };
            let case = |id: &str, kind, http_method, uri: &str| {
                let mut case = Case::new(format!("{tag}/{id}"), kind, http_method, uri)
                    .place(place)
                    .signature_method(method);
                case.credentials = credentials;
                case
            };
            // A GET cannot carry its parameters in a body.
            if place != Place::Body {
                cases.push(case(
                    "get-query",
                    Kind::Resource,
                    "GET",
                    &format!("https://Site.Example/wp-json/wp/v2/posts?{query}"),
                ));
            }
            cases.push(
                case(
                    "post-form",
                    Kind::Resource,
                    "POST",
                    "http://site.example:8080/wp-json/wp/v2/posts?context=edit&lang=fr+CA",
                )
                .form(&FORM),
            );
            cases.push(case(
                "temporary-credentials",
                Kind::TemporaryCredentials,
                "POST",
                "https://site.example/oauth1/request",
            ));
            cases.push(case(
                "token-request",
                Kind::TokenRequest,
                "POST",
                "https://site.example/oauth1/access",
            ));
            cases.push(case(
                "two-legged",
                Kind::TwoLegged,
                if place == Place::Body { "POST" } else { "GET" },
                "https://site.example/wp-json/broker/v1/connect?site=https%3A%2F%2Fblog.example%2F~me%2F&scope=read+write",
            ));
        }
    }

    // A JSON body is not signed.
    let mut json_put = Case::new(
        "json-body",
        Kind::Resource,
        "PUT",
        "https://site.example/wp-json/wp/v2/posts/42",
    )
    .signature_method(SignatureMethod::HmacSha256);
    json_put.json = Some(r#"{"title":"a=b&c","tags":["x","y"]}"#);
    cases.push(json_put);
    // DELETE, explicit default port, percent-encoded unicode and sub-delims in the path.
    cases.push(Case::new(
        "delete-odd-path",
        Kind::Resource,
        "DELETE",
        "https://site.example:443/wp-json/wp/v2/pages/caf%C3%A9/a~b!c'd(e)*,;:@$?force=true",
    ));
    // A hand-written query: a name without '=', an empty value, '+' for a space, lower-case hex.
    cases.push(
        Case::new(
            "literal-query",
            Kind::Resource,
            "GET",
            "https://site.example/wp-json/wp/v2/posts?flag&empty=&q=one+two%2bthree&u=%c3%a9",
        )
        .signature_method(SignatureMethod::HmacSha256),
    );
    // Without the optional oauth_version.
    let mut no_version = Case::new(
        "no-oauth-version",
        Kind::Resource,
        "GET",
        "https://site.example/wp-json/wp/v2/users/me?context=edit",
    );
    no_version.version = false;
    cases.push(no_version);

    // Raw request targets: the path is signed exactly as sent (RFC 5849 §3.4.1.2), with its dot-segments,
    // percent-encoded dot-segments and braces, as oauthlib does.
    for (i, uri) in [
        "https://site.example/wp-json/wp/v2/posts/../users/me",
        "https://site.example/wp-json/wp/v2/posts/%2e%2e/users/me",
        "https://site.example/wp-json/wp/v2/posts/{id}",
    ]
    .into_iter()
    .enumerate()
    {
        cases.push(Case::new(
            format!("raw-path-{i}"),
            Kind::Resource,
            "GET",
            uri,
        ));
    }

    // Tampered requests oauthlib must refuse.
    let mut changed_body = Case::new(
        "tampered/form-value-changed-after-signing",
        Kind::Resource,
        "POST",
        "https://site.example/wp-json/wp/v2/posts",
    )
    .form(&FORM);
    changed_body.tamper = Some(("status=draft", "status=publish"));
    cases.push(changed_body);
    let mut changed_query = Case::new(
        "tampered/query-value-changed-after-signing",
        Kind::Resource,
        "GET",
        "https://site.example/wp-json/wp/v2/posts?per_page=5",
    )
    .signature_method(SignatureMethod::HmacSha256);
    changed_query.tamper = Some(("per_page=5", "per_page=50"));
    cases.push(changed_query);
    let mut wrong_secret = Case::new(
        "tampered/signed-with-a-wrong-consumer-secret",
        Kind::Resource,
        "GET",
        "https://site.example/wp-json/wp/v2/users/me",
    )
    .signature_method(SignatureMethod::Plaintext);
    wrong_secret.wrong_consumer_secret = Some("not the consumer secret");
    cases.push(wrong_secret);
    cases
}

fn request_token(creds: &Credentials) -> Value {
    json!({
        "consumer": creds.consumer_key,
        "secret": creds.request_token_secret,
        "verifier": VERIFIER,
        "callback": CALLBACK,
    })
}

#[test]
fn authbroker_signs_and_oauthlib_verifies() {
    // oauthlib checks timestamps against its own clock (±600 s), so sign with the real time.
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap();
    let cases = rust_cases();
    let requests: Vec<Value> = cases
        .iter()
        .enumerate()
        // 25 letters and digits: oauthlib's default nonce format.
        .map(|(i, case)| case.render(&format!("authbroker{i:04}x{now}"), now))
        .collect();
    let verdicts = run_script(
        "oauthlib_verify.py",
        &json!({
            "consumers": {
                MAIN.consumer_key: MAIN.consumer_secret,
                PLAIN.consumer_key: PLAIN.consumer_secret,
            },
            "request_tokens": {
                MAIN.request_token: request_token(&MAIN),
                PLAIN.request_token: request_token(&PLAIN),
            },
            "access_tokens": {
                MAIN.access_token: { "consumer": MAIN.consumer_key, "secret": MAIN.access_token_secret },
                PLAIN.access_token: { "consumer": PLAIN.consumer_key, "secret": PLAIN.access_token_secret },
            },
            "realms": [REALM],
            "requests": requests,
        }),
    );
    let results = verdicts["results"].as_array().unwrap();
    assert_eq!(results.len(), cases.len(), "one verdict per request");

    let mut failures = Vec::new();
    for ((case, request), result) in cases.iter().zip(&requests).zip(results) {
        assert_eq!(str_field(result, "id"), case.id, "verdicts out of order");
        let valid = result["valid"].as_bool().unwrap();
        let detail = str_field(result, "detail");
        if valid != case.expects_valid() {
            failures.push(format!(
                "{}: oauthlib says valid={valid}, expected {}\n  oauthlib: {detail}\n  request: {request}",
                case.id,
                case.expects_valid()
            ));
        } else if !valid && !detail.contains("'signature': False") {
            // Refused, but it must be for the signature and not for an unrelated check.
            failures.push(format!(
                "{}: refused for another reason than the signature: {detail}",
                case.id
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} authbroker-signed requests were judged wrongly by oauthlib:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(
        cases.iter().filter(|c| c.tamper.is_some()).count() >= 2
            && cases.iter().any(|c| c.wrong_consumer_secret.is_some()),
        "the tampered cases must be there"
    );
}
