//! The worked examples of RFC 5849, byte for byte.

use authbroker_oauth1::{
    MemoryNonceStore, RequestParts, SignatureMethod, SignedRequest, Signer, Verifier, normalize,
};

const CONSUMER_KEY: &str = "dpf43f3p2l4k3l03";
const CONSUMER_SECRET: &str = "kd94hf93k423kf44";

fn sign_and_check(
    signer: Signer<'_>,
    method: &str,
    uri: &str,
    nonce: &str,
    ts: i64,
    expected: &str,
) {
    let header = signer
        .with_version(false)
        .sign(method, uri, &[], nonce, ts)
        .expect("RFC URIs are absolute");
    assert_eq!(header.get("oauth_signature"), Some(expected));
}

/// §1.2: the temporary credential request.
#[test]
fn section_1_2_temporary_credentials() {
    sign_and_check(
        Signer::new(SignatureMethod::HmacSha1, CONSUMER_KEY, CONSUMER_SECRET)
            .callback("http://printer.example.com/ready"),
        "POST",
        "https://photos.example.net/initiate",
        "wIjqoS",
        137131200,
        "74KNZJeDHnMBp0EMJ9ZHt/XKycU=",
    );
}

/// §1.2: the token request.
#[test]
fn section_1_2_token_credentials() {
    sign_and_check(
        Signer::new(SignatureMethod::HmacSha1, CONSUMER_KEY, CONSUMER_SECRET)
            .token("hh5s93j4hdidpola", "hdhd0244k9j7ao03")
            .verifier("hfdp7dh39dks9884"),
        "POST",
        "https://photos.example.net/token",
        "walatlh",
        137131201,
        "gKgrFCywp7rO0OXSjdot/IHF7IU=",
    );
}

/// §1.2: the protected resource request.
#[test]
fn section_1_2_protected_resource() {
    sign_and_check(
        Signer::new(SignatureMethod::HmacSha1, CONSUMER_KEY, CONSUMER_SECRET)
            .token("nnch734d00sl2jdk", "pfkkdhi9sl3r4s00"),
        "GET",
        "http://photos.example.net/photos?file=vacation.jpg&size=original",
        "chapoH",
        137131202,
        "MdpQcU8iPSUjWoN/UDMsK2sui9I=",
    );
}

/// §1.2 from the server's side: the protected resource request as received verifies.
#[test]
fn section_1_2_protected_resource_verifies_as_received() {
    let request = SignedRequest::from_parts(&RequestParts {
        method: "GET",
        uri: "http://photos.example.net/photos?file=vacation.jpg&size=original",
        form_body: None,
        authorization: Some(
            "OAuth realm=\"Photos\", oauth_consumer_key=\"dpf43f3p2l4k3l03\", \
             oauth_token=\"nnch734d00sl2jdk\", oauth_signature_method=\"HMAC-SHA1\", \
             oauth_timestamp=\"137131202\", oauth_nonce=\"chapoH\", \
             oauth_signature=\"MdpQcU8iPSUjWoN%2FUDMsK2sui9I%3D\"",
        ),
    })
    .expect("well-formed");
    Verifier::new()
        .verify(
            &request,
            137131202,
            |_| Ok((CONSUMER_SECRET.to_owned(), "pfkkdhi9sl3r4s00".to_owned())),
            &mut MemoryNonceStore::new(),
        )
        .expect("the RFC's request verifies");
}

fn section_3_4_1_1_request() -> SignedRequest {
    SignedRequest::from_parts(&RequestParts {
        method: "POST",
        uri: "http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b",
        form_body: Some("c2&a3=2+q"),
        authorization: Some(
            "OAuth realm=\"Example\", oauth_consumer_key=\"9djdj82h48djs9d2\", \
             oauth_token=\"kkk9d7dh3k39sjv7\", oauth_signature_method=\"HMAC-SHA1\", \
             oauth_timestamp=\"137131201\", oauth_nonce=\"7d8f3e4a\", \
             oauth_signature=\"bYT5CMsGcbgUdFHObYMEfcx6bsw%3D\"",
        ),
    })
    .expect("well-formed")
}

/// §3.4.1.1: the signature base string.
#[test]
fn section_3_4_1_1_base_string() {
    assert_eq!(
        section_3_4_1_1_request().base_string(),
        "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q\
         %26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_\
         key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_m\
         ethod%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk\
         9d7dh3k39sjv7"
    );
}

/// §3.4.1.3.2: the normalised parameters of the same request.
#[test]
fn section_3_4_1_3_2_normalized_parameters() {
    let request = section_3_4_1_1_request();
    assert_eq!(
        normalize(
            request
                .params()
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
        ),
        "a2=r%20b&a3=2%20q&a3=a&b5=%3D%253D&c%40=&c2=&oauth_consumer_key=9dj\
         dj82h48djs9d2&oauth_nonce=7d8f3e4a&oauth_signature_method=HMAC-SHA1\
         &oauth_timestamp=137131201&oauth_token=kkk9d7dh3k39sjv7"
    );
}
