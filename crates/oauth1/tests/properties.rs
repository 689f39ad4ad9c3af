//! Property tests: sign → verify round trips over arbitrary parameter sets and every way of delivering the
//! protocol parameters, header format/parse round trips, tamper detection, and parsers that never panic.

#![allow(clippy::unwrap_used)]

use authbroker_oauth1::{
    AuthorizationHeader, MemoryNonceStore, Param, Plus, RequestParts, Secrets, SignatureMethod,
    SignedRequest, Signer, Verifier, VerifyError, normalize, parse_form, percent_decode,
    percent_encode,
};
use proptest::prelude::*;
use proptest::sample::Index;

const ALL_METHODS: [SignatureMethod; 3] = [
    SignatureMethod::HmacSha1,
    SignatureMethod::HmacSha256,
    SignatureMethod::Plaintext,
];

// ---------------------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------------------

/// Text that is hard to encode: arbitrary characters (control characters, astral planes, …) mixed with
/// the characters that matter to the protocol.
fn text() -> impl Strategy<Value = String> {
    let tricky = prop_oneof![
        Just("+"),
        Just("%"),
        Just("~"),
        Just("&"),
        Just("="),
        Just(" "),
        Just("%20"),
        Just("%2B"),
        Just("\""),
        Just("\\"),
        Just(","),
        Just("#"),
        Just("?"),
        Just("a"),
        Just("Z"),
        Just("0"),
        Just("-._"),
        Just("é"),
        Just("☃"),
        Just("😀"),
        Just("oauth_"),
    ]
    .prop_map(str::to_owned);
    let piece = prop_oneof![
        2 => tricky,
        1 => any::<char>().prop_map(String::from),
    ];
    prop_oneof![
        1 => Just(String::new()),
        6 => prop::collection::vec(piece, 1..8).prop_map(|pieces| pieces.concat()),
    ]
}

fn non_empty_text() -> impl Strategy<Value = String> {
    text().prop_map(|s| if s.is_empty() { "x".to_owned() } else { s })
}

/// A consumer key, token or nonce: hard text that a store can hold (no NUL, at most 255 bytes, as the
/// verifier requires).
fn identifier() -> impl Strategy<Value = String> {
    non_empty_text().prop_map(|text| {
        let mut text = text.replace('\0', "0");
        while text.len() > authbroker_oauth1::MAX_IDENTIFIER_LEN {
            text.pop();
        }
        text
    })
}

/// A parameter name that is not an OAuth protocol parameter, often repeated thanks to the small pool.
fn plain_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec!["a", "b", "a b", "+", "%", "~", "&", "=", "é", ""])
            .prop_map(str::to_owned),
        2 => text(),
    ]
    .prop_map(|name| {
        if name.starts_with("oauth_") {
            format!("x{name}")
        } else {
            name
        }
    })
}

fn plain_params() -> impl Strategy<Value = Vec<Param>> {
    prop::collection::vec((plain_name(), text()), 0..6)
}

/// Parameters including protocol ones, with repeated names and repeated values.
fn any_params() -> impl Strategy<Value = Vec<Param>> {
    let name = prop_oneof![
        2 => plain_name(),
        1 => prop::sample::select(vec![
            "oauth_signature",
            "oauth_signature_method",
            "oauth_nonce",
            "oauth_token",
        ])
        .prop_map(str::to_owned),
    ];
    let value = prop_oneof![
        2 => text(),
        1 => prop::sample::select(vec!["", "1", "2", "a b", "a+b"]).prop_map(str::to_owned),
    ];
    prop::collection::vec((name, value), 0..10)
}

/// How a client percent-encodes a query string or a form body.
#[derive(Debug, Clone, Copy)]
struct FormStyle {
    /// Space as `+` (HTML forms) rather than `%20`.
    space_as_plus: bool,
    /// Lower-case hexadecimal digits in escapes.
    lower_hex: bool,
}

fn form_style() -> impl Strategy<Value = FormStyle> {
    (any::<bool>(), any::<bool>()).prop_map(|(space_as_plus, lower_hex)| FormStyle {
        space_as_plus,
        lower_hex,
    })
}

/// Encodes as a client would, independently of the crate's own encoder.
fn form_encode_component(value: &str, style: FormStyle, out: &mut String) {
    for &byte in value.as_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(byte));
            }
            b' ' if style.space_as_plus => out.push('+'),
            _ if style.lower_hex => out.push_str(&format!("%{byte:02x}")),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
}

fn form_encode(params: &[Param], style: FormStyle) -> String {
    let mut out = String::new();
    for (i, (name, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        form_encode_component(name, style, &mut out);
        out.push('=');
        form_encode_component(value, style, &mut out);
    }
    out
}

/// `scheme://host[:port]/path` without a query: mixed-case scheme and host, default and other ports.
fn base_uri() -> impl Strategy<Value = String> {
    let scheme = prop::sample::select(vec!["http", "https", "HTTPS", "Http"]);
    let host = "[a-zA-Z0-9]{1,10}(\\.[a-z0-9]{1,6})?\\.example";
    let port = prop_oneof![
        2 => Just(None),
        1 => prop::sample::select(vec![80_u16, 443, 8080]).prop_map(Some),
        1 => (1_u16..).prop_map(Some),
    ];
    let segment = prop_oneof![
        4 => "[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,7}",
        1 => Just("wp-json".to_owned()),
        1 => Just("r%20v".to_owned()),
    ];
    let path = (prop::collection::vec(segment, 0..4), any::<bool>()).prop_map(|(segs, slash)| {
        let mut path: String = segs.iter().map(|s| format!("/{s}")).collect();
        if slash || path.is_empty() {
            path.push('/');
        }
        path
    });
    (scheme, host, port, path).prop_map(|(scheme, host, port, path)| match port {
        Some(port) => format!("{scheme}://{host}:{port}{path}"),
        None => format!("{scheme}://{host}{path}"),
    })
}

fn http_method() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "post", "Get"])
            .prop_map(str::to_owned),
        1 => "[A-Za-z]{1,8}",
    ]
}

/// Where the client puts the `oauth_*` parameters (RFC 5849 §3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    Header,
    Query,
    Body,
}

/// Everything a client chooses when it signs a request.
#[derive(Debug, Clone)]
struct ClientRequest {
    method: String,
    base: String,
    query: Vec<Param>,
    body: Vec<Param>,
    /// Send an (empty) form body even when there are no body parameters.
    send_empty_body: bool,
    style: FormStyle,
    delivery: Delivery,
    /// Put the protocol parameters before the others in the query or body instead of after them.
    oauth_first: bool,
    realm: Option<String>,
    signature_method: SignatureMethod,
    consumer: (String, String),
    token: Option<(String, String)>,
    callback: Option<String>,
    verifier: Option<String>,
    version: bool,
    nonce: String,
    timestamp: i64,
    /// `now - timestamp` on the server, within the default window.
    clock_skew: i64,
}

fn client_request(methods: &'static [SignatureMethod]) -> impl Strategy<Value = ClientRequest> {
    let shape = (
        http_method(),
        base_uri(),
        plain_params(),
        plain_params(),
        any::<bool>(),
        form_style(),
        prop::sample::select(vec![Delivery::Header, Delivery::Query, Delivery::Body]),
        any::<bool>(),
        prop::option::of(text()),
    );
    let credentials = (
        prop::sample::select(methods),
        (identifier(), text()),
        prop::option::of((identifier(), text())),
        prop::option::of(text()),
        prop::option::of(text()),
        any::<bool>(),
        identifier(),
        1_i64..100_000_000_000,
        -900_i64..=900,
    );
    (shape, credentials).prop_map(
        |(
            (method, base, query, body, send_empty_body, style, delivery, oauth_first, realm),
            (
                signature_method,
                consumer,
                token,
                callback,
                verifier,
                version,
                nonce,
                timestamp,
                clock_skew,
            ),
        )| ClientRequest {
            method,
            base,
            query,
            body,
            send_empty_body,
            style,
            delivery,
            oauth_first,
            realm,
            signature_method,
            consumer,
            token,
            callback,
            verifier,
            version,
            nonce,
            timestamp,
            clock_skew,
        },
    )
}

// ---------------------------------------------------------------------------------------------------------
// The request on the wire
// ---------------------------------------------------------------------------------------------------------

/// A signed request as decoded parameter lists, rendered to the strings a server receives by
/// [`Wire::render`]. Tamper tests edit the lists or the rendered strings.
#[derive(Debug, Clone)]
struct Wire {
    method: String,
    base: String,
    query: Vec<Param>,
    body: Option<Vec<Param>>,
    header: Option<AuthorizationHeader>,
    style: FormStyle,
}

/// The strings of a request as received.
#[derive(Debug, Clone)]
struct Rendered {
    method: String,
    uri: String,
    body: Option<String>,
    authorization: Option<String>,
}

impl Rendered {
    fn parts(&self) -> RequestParts<'_> {
        RequestParts {
            method: &self.method,
            uri: &self.uri,
            form_body: self.body.as_deref(),
            authorization: self.authorization.as_deref(),
        }
    }
}

impl Wire {
    fn render(&self) -> Rendered {
        let uri = if self.query.is_empty() {
            self.base.clone()
        } else {
            format!("{}?{}", self.base, form_encode(&self.query, self.style))
        };
        Rendered {
            method: self.method.clone(),
            uri,
            body: self.body.as_ref().map(|b| form_encode(b, self.style)),
            authorization: self
                .header
                .as_ref()
                .map(AuthorizationHeader::to_header_value),
        }
    }

    /// Every parameter on the wire, wherever it is.
    fn params_mut(&mut self) -> Vec<&mut Param> {
        self.query
            .iter_mut()
            .chain(self.body.iter_mut().flatten())
            .chain(self.header.iter_mut().flat_map(|h| h.params.iter_mut()))
            .collect()
    }

    fn param_mut(&mut self, name: &str) -> &mut Param {
        self.params_mut()
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap()
    }
}

impl ClientRequest {
    fn uri(&self) -> String {
        if self.query.is_empty() {
            self.base.clone()
        } else {
            format!("{}?{}", self.base, form_encode(&self.query, self.style))
        }
    }

    /// Signs as a client does, then places the protocol parameters as `delivery` says.
    fn sign(&self) -> Wire {
        let mut signer = Signer::new(self.signature_method, &self.consumer.0, &self.consumer.1)
            .with_version(self.version);
        if let Some((key, secret)) = &self.token {
            signer = signer.token(key, secret);
        }
        if let Some(callback) = &self.callback {
            signer = signer.callback(callback);
        }
        if let Some(verifier) = &self.verifier {
            signer = signer.verifier(verifier);
        }
        let header = signer
            .sign(
                &self.method,
                &self.uri(),
                &self.body,
                &self.nonce,
                self.timestamp,
            )
            .unwrap();
        let place = |mut others: Vec<Param>| {
            if self.oauth_first {
                let mut all = header.params.clone();
                all.append(&mut others);
                all
            } else {
                others.extend(header.params.iter().cloned());
                others
            }
        };
        let body = (self.send_empty_body || !self.body.is_empty()).then(|| self.body.clone());
        match self.delivery {
            Delivery::Header => Wire {
                method: self.method.clone(),
                base: self.base.clone(),
                query: self.query.clone(),
                body,
                header: Some(AuthorizationHeader {
                    realm: self.realm.clone(),
                    params: header.params,
                }),
                style: self.style,
            },
            Delivery::Query => Wire {
                method: self.method.clone(),
                base: self.base.clone(),
                query: place(self.query.clone()),
                body,
                header: None,
                style: self.style,
            },
            Delivery::Body => Wire {
                method: self.method.clone(),
                base: self.base.clone(),
                query: self.query.clone(),
                body: Some(place(self.body.clone())),
                header: None,
                style: self.style,
            },
        }
    }

    fn now(&self) -> i64 {
        self.timestamp + self.clock_skew
    }

    fn secrets(&self) -> (String, String) {
        let token_secret = self.token.as_ref().map_or("", |(_, s)| s.as_str());
        (self.consumer.1.clone(), token_secret.to_owned())
    }

    /// Verifies a received request the way a server does, with a fresh nonce store. The lookup hands out
    /// the right secrets whatever the keys say, so only the signature can catch a tampered request.
    fn verify(&self, received: &Rendered) -> Result<(), VerifyError> {
        let request = SignedRequest::from_parts(&received.parts())?;
        let mut nonces = MemoryNonceStore::new();
        Verifier::new()
            .methods(&ALL_METHODS)
            .require_token(self.token.is_some())
            .verify(&request, self.now(), |_| Ok(self.secrets()), &mut nonces)
            .map(|_| ())
    }
}

/// Flips one bit of `value`'s UTF-8 bytes; `None` when the result is not UTF-8 (it could not be a `&str`).
fn flip_bit(value: &str, bit: Index) -> Option<String> {
    let mut bytes = value.as_bytes().to_vec();
    let bit = bit.index(bytes.len() * 8);
    bytes[bit / 8] ^= 1 << (bit % 8);
    String::from_utf8(bytes).ok()
}

/// Whether a one-bit change to a URI leaves it denoting the same resource with the same parameters, so
/// that the signed content does not change. Exactly three cases qualify:
///
/// * the case of a letter in the scheme or host, both lower-cased by RFC 5849 §3.4.1.2;
/// * the case of a hexadecimal digit of a `%XX` escape in the query: the decoded parameter is the same;
/// * `/` → `?` when the path is just `/` and nothing follows it: `http://h/` becomes `http://h?`, an empty
///   path (which means `/`, RFC 3986 §6.2.3 and RFC 5849 §3.4.1.2) with an empty query (no parameters).
fn same_canonical_uri(original: &str, flipped: &str) -> bool {
    let Some(at) = original
        .bytes()
        .zip(flipped.bytes())
        .position(|(a, b)| a != b)
    else {
        return true;
    };
    let authority_end = original
        .find("://")
        .and_then(|s| original[s + 3..].find('/').map(|p| s + 3 + p))
        .unwrap_or(original.len());
    if at == authority_end && &original[at..] == "/" && &flipped[at..] == "?" {
        return true;
    }
    if !original.eq_ignore_ascii_case(flipped) {
        return false;
    }
    if at < authority_end {
        return true;
    }
    let query_start = original.find('?').unwrap_or(original.len());
    let bytes = original.as_bytes();
    at > query_start
        && bytes[at].is_ascii_hexdigit()
        && (bytes[at - 1] == b'%' || (at >= 2 && bytes[at - 2] == b'%'))
}

// ---------------------------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------------------------

proptest! {
    /// Whatever the parameters, the signature method and where the protocol parameters travel, a request
    /// signed by `Signer` verifies on the server — once.
    #[test]
    fn signed_requests_verify(client in client_request(&ALL_METHODS)) {
        let wire = client.sign();
        let received = wire.render();
        let request = SignedRequest::from_parts(&received.parts())
            .map_err(|e| TestCaseError::fail(format!("{e}: {received:?}")))?;
        let mut nonces = MemoryNonceStore::new();
        let verifier = Verifier::new()
            .methods(&ALL_METHODS)
            .require_token(client.token.is_some());
        let lookup = |c: &authbroker_oauth1::Checked<'_>| {
            assert_eq!(c.consumer_key(), client.consumer.0);
            assert_eq!(c.token(), client.token.as_ref().map(|(k, _)| k.as_str()));
            Ok(client.secrets())
        };
        let checked = verifier
            .verify(&request, client.now(), lookup, &mut nonces)
            .map_err(|e| TestCaseError::fail(format!("{e}: {received:?}")))?;
        prop_assert_eq!(checked.signature_method(), client.signature_method);
        prop_assert_eq!(checked.timestamp(), client.timestamp);

        // Every parameter the client sent is in the collected set, decoded.
        let sent: usize = client.query.len() + client.body.len();
        prop_assert_eq!(request.params().len(), sent + wire_oauth_count(&wire));

        // The same request again is a replay.
        prop_assert_eq!(
            verifier.verify(&request, client.now(), |_| Ok(client.secrets()), &mut nonces).err(),
            Some(VerifyError::NonceAlreadyUsed)
        );
    }

    /// Formatting a header and parsing it back gives the same header.
    #[test]
    fn header_format_parse_round_trip(
        realm in prop::option::of(text()),
        params in prop::collection::btree_map(text(), text(), 0..8),
    ) {
        let header = AuthorizationHeader {
            realm,
            params: params
                .into_iter()
                .map(|(suffix, value)| (format!("oauth_{suffix}"), value))
                .collect(),
        };
        let formatted = header.to_header_value();
        prop_assert_eq!(AuthorizationHeader::parse(&formatted), Ok(Some(header)));
    }

    /// The crate's encoder and both decodings are inverse.
    #[test]
    fn percent_encoding_round_trips(value in text()) {
        let encoded = percent_encode(&value);
        prop_assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
        prop_assert_eq!(percent_decode(&encoded, Plus::Space), Ok(value.clone()));
        prop_assert_eq!(percent_decode(&encoded, Plus::Literal), Ok(value));
    }

    /// `normalize` is RFC 5849 §3.4.1.3.2 to the letter, checked against a direct transcription: drop
    /// `oauth_signature`, encode names and values, sort by name then value (byte order), join.
    #[test]
    fn normalization_follows_the_rfc(params in any_params()) {
        let upper = FormStyle { space_as_plus: false, lower_hex: false };
        let encode = |text: &str| {
            let mut out = String::new();
            form_encode_component(text, upper, &mut out);
            out
        };
        let mut pairs: Vec<(String, String)> = params
            .iter()
            .filter(|(name, _)| name != "oauth_signature")
            .map(|(name, value)| (encode(name), encode(value)))
            .collect();
        pairs.sort();
        let expected: Vec<String> = pairs.iter().map(|(n, v)| format!("{n}={v}")).collect();
        prop_assert_eq!(
            normalize(params.iter().map(|(n, v)| (n.as_str(), v.as_str()))),
            expected.join("&")
        );
    }

    /// The order in which parameters arrive (query, body, header, or interleaved) does not matter.
    #[test]
    fn normalization_ignores_parameter_order(
        (params, shuffled) in any_params().prop_flat_map(|p| (Just(p.clone()), Just(p).prop_shuffle())),
    ) {
        let norm = |list: &[Param]| normalize(list.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        prop_assert_eq!(norm(&params), norm(&shuffled));
    }

    /// A form encoded by a client (either spelling of a space, either case of hex) parses back to the
    /// same pairs in the same order.
    #[test]
    fn form_encoding_round_trips(params in plain_params(), style in form_style()) {
        prop_assert_eq!(parse_form(&form_encode(&params, style)), Ok(params));
    }
}

fn wire_oauth_count(wire: &Wire) -> usize {
    let mut wire = wire.clone();
    wire.params_mut()
        .into_iter()
        .filter(|(n, _)| n.starts_with("oauth_"))
        .count()
}

// ---------------------------------------------------------------------------------------------------------
// Tampering
// ---------------------------------------------------------------------------------------------------------

/// PLAINTEXT signs nothing but the secrets (RFC 5849 §3.4.4): a changed request keeps a valid PLAINTEXT
/// signature by design, so only the HMAC methods protect the request's content.
const HMAC_METHODS: [SignatureMethod; 2] = [SignatureMethod::HmacSha1, SignatureMethod::HmacSha256];

/// Header parameter names that are not protocol parameters, some deceptively close. Not empty: a header
/// attribute needs a name.
fn header_noise_name() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => prop::sample::select(vec![
            "server_url",
            "oauth",
            "oauthx",
            "oauth-nonce",
            "OAuth_nonce",
            "OAUTH_TOKEN",
            "realm",
            "Realm",
        ])
        .prop_map(str::to_owned),
        1 => plain_name().prop_filter("a header attribute needs a name", |n| !n.is_empty()),
    ]
}

/// The untampered request must verify, or the tamper test proves nothing.
fn assert_verifies(client: &ClientRequest, received: &Rendered) -> Result<(), TestCaseError> {
    client
        .verify(received)
        .map_err(|e| TestCaseError::fail(format!("untampered request fails: {e}: {received:?}")))
}

fn assert_rejected(client: &ClientRequest, tampered: &Rendered) -> Result<(), TestCaseError> {
    prop_assert!(
        client.verify(tampered).is_err(),
        "tampered request verifies: {:?}",
        tampered
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn a_changed_method_fails(client in client_request(&HMAC_METHODS), bit in any::<Index>()) {
        let received = client.sign().render();
        assert_verifies(&client, &received)?;
        let flipped = flip_bit(&received.method, bit);
        // A method that is not UTF-8 cannot reach the server as a `&str`.
        prop_assume!(flipped.is_some());
        let flipped = flipped.unwrap();
        // The method is upper-cased for the base string (RFC 5849 §3.4.1.1): a case flip signs the same.
        prop_assume!(!flipped.eq_ignore_ascii_case(&received.method));
        assert_rejected(&client, &Rendered { method: flipped, ..received })?;
    }

    #[test]
    fn a_changed_uri_fails(client in client_request(&HMAC_METHODS), bit in any::<Index>()) {
        let received = client.sign().render();
        assert_verifies(&client, &received)?;
        let flipped = flip_bit(&received.uri, bit);
        // A URI that is not UTF-8 cannot reach the server as a `&str`.
        prop_assume!(flipped.is_some());
        let flipped = flipped.unwrap();
        // Scheme and host are lower-cased for the base string (RFC 5849 §3.4.1.2), `%2b` decodes like `%2B`
        // and `http://h?` is `http://h/` with no parameters: such a flip does not change the signed content
        // (see `same_canonical_uri`).
        prop_assume!(!same_canonical_uri(&received.uri, &flipped));
        assert_rejected(&client, &Rendered { uri: flipped, ..received })?;
    }

    #[test]
    fn a_changed_parameter_fails(
        client in client_request(&HMAC_METHODS),
        which in any::<Index>(),
        bit in any::<Index>(),
    ) {
        let mut wire = client.sign();
        assert_verifies(&client, &wire.render())?;
        // Every non-empty name or value on the wire, protocol parameters included.
        let mut targets: Vec<&mut String> = wire
            .params_mut()
            .into_iter()
            .flat_map(|(name, value)| [name, value])
            .filter(|s| !s.is_empty())
            .collect();
        let target = which.get_mut(&mut targets);
        let flipped = flip_bit(target, bit);
        // A name or value whose bytes are not UTF-8 cannot be decoded into a parameter.
        prop_assume!(flipped.is_some());
        **target = flipped.unwrap();
        assert_rejected(&client, &wire.render())?;
    }

    #[test]
    fn a_changed_timestamp_fails(client in client_request(&HMAC_METHODS), bit in any::<Index>()) {
        let mut wire = client.sign();
        assert_verifies(&client, &wire.render())?;
        let (_, timestamp) = wire.param_mut("oauth_timestamp");
        let flipped = flip_bit(timestamp, bit);
        // A timestamp whose bytes are not UTF-8 cannot be decoded into a parameter.
        prop_assume!(flipped.is_some());
        *timestamp = flipped.unwrap();
        assert_rejected(&client, &wire.render())?;
    }

    /// This one holds for PLAINTEXT too.
    #[test]
    fn a_changed_signature_fails(client in client_request(&ALL_METHODS), bit in any::<Index>()) {
        let mut wire = client.sign();
        assert_verifies(&client, &wire.render())?;
        let (_, signature) = wire.param_mut("oauth_signature");
        let flipped = flip_bit(signature, bit);
        // A signature whose bytes are not UTF-8 cannot be decoded into a parameter.
        prop_assume!(flipped.is_some());
        *signature = flipped.unwrap();
        assert_rejected(&client, &wire.render())?;
    }

    /// Only `oauth_*` parameters are read from the header: a client that also puts others there (one real
    /// client sends `server_url` in the header as well as in the body) still verifies.
    #[test]
    fn other_header_parameters_are_ignored(
        client in client_request(&HMAC_METHODS).prop_map(|c| ClientRequest { delivery: Delivery::Header, ..c }),
        extra in prop::collection::vec((header_noise_name(), text()), 1..4),
    ) {
        let mut wire = client.sign();
        wire.header.as_mut().unwrap().params.extend(extra);
        assert_verifies(&client, &wire.render())?;
    }

    /// `realm` is not signed: changing it does not matter.
    #[test]
    fn the_realm_is_not_signed(
        client in client_request(&HMAC_METHODS).prop_map(|c| ClientRequest { delivery: Delivery::Header, ..c }),
        realm in prop::option::of(text()),
    ) {
        let mut wire = client.sign();
        wire.header.as_mut().unwrap().realm = realm;
        assert_verifies(&client, &wire.render())?;
    }
}

// ---------------------------------------------------------------------------------------------------------
// Parsers never panic
// ---------------------------------------------------------------------------------------------------------

/// Arbitrary strings, and strings made of the protocol's own syntax so that the parsers get past their
/// first checks.
fn hostile() -> impl Strategy<Value = String> {
    let syntax = prop_oneof![
        Just("OAuth "),
        Just("oauth_nonce"),
        Just("realm"),
        Just("="),
        Just("\""),
        Just("\\"),
        Just(","),
        Just(" "),
        Just("\t"),
        Just("\r\n"),
        Just("%"),
        Just("%4"),
        Just("%41"),
        Just("%FF"),
        Just("%C3"),
        Just("+"),
        Just("&"),
        Just("?"),
        Just("#"),
        Just("https://"),
        Just("site.example"),
        Just(":"),
        Just("/"),
        Just("["),
        Just("@"),
    ]
    .prop_map(str::to_owned);
    let piece = prop_oneof![
        3 => syntax,
        1 => any::<char>().prop_map(String::from),
    ];
    prop_oneof![
        1 => any::<String>(),
        3 => prop::collection::vec(piece, 0..24).prop_map(|p| p.concat()),
    ]
}

proptest! {
    #[test]
    fn header_parser_never_panics(input in hostile()) {
        if let Ok(Some(header)) = AuthorizationHeader::parse(&input) {
            // Whatever it accepts, it can format and read back.
            prop_assert_eq!(AuthorizationHeader::parse(&header.to_header_value()), Ok(Some(header)));
        }
        let _ = AuthorizationHeader::parse(&format!("OAuth {input}"));
    }

    #[test]
    fn form_parser_and_decoder_never_panic(input in hostile()) {
        let _ = parse_form(&input);
        let _ = percent_decode(&input, Plus::Space);
        let _ = percent_decode(&input, Plus::Literal);
    }

    #[test]
    fn request_collection_never_panics(
        method in hostile(),
        uri in prop_oneof![hostile(), hostile().prop_map(|q| format!("https://site.example/p?{q}"))],
        body in prop::option::of(hostile()),
        authorization in prop::option::of(prop_oneof![
            hostile(),
            hostile().prop_map(|h| format!("OAuth {h}")),
        ]),
    ) {
        let parts = RequestParts {
            method: &method,
            uri: &uri,
            form_body: body.as_deref(),
            authorization: authorization.as_deref(),
        };
        if let Ok(request) = SignedRequest::from_parts(&parts) {
            let _ = request.base_string();
            let _ = request.has_oauth_params();
            if let Ok(checked) = Verifier::new().require_token(false).check(&request, 1_700_000_000) {
                let _ = checked.verify_signature(Secrets { consumer_secret: "cs", token_secret: "" });
            }
        }
    }
}
