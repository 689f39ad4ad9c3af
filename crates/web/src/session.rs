//! Login sessions: a random id in a cookie, only its SHA-256 in the database.
//!
//! A leaked database (or backup) then does not hand out live sessions. The same hashing serves any bearer
//! value that only needs verifying (API tokens). Each service keeps its own table and cookie name (a site
//! and a broker on one host, e.g. `demo` on 127.0.0.1, must not log each other out: cookies ignore ports).

use axum::http::HeaderMap;
use axum::http::HeaderValue;
use axum::http::header::InvalidHeaderValue;
use sha2::{Digest, Sha256};

use crate::cookies::{self, CookieOptions};

/// Length of a session id (`[A-Za-z0-9]`, about 256 bits).
pub const ID_LEN: usize = 43;

/// The lowercase hex SHA-256 of `value`: what the database holds for a session id or an API token.
pub fn hash_id(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(char::from(HEX[usize::from(byte >> 4)]));
        hex.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    hex
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A fresh session: the id for the cookie and the hash for the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub id: String,
    pub id_hash: String,
}

impl NewSession {
    pub fn generate() -> Self {
        let id = crate::random::alnum(ID_LEN);
        let id_hash = hash_id(&id);
        Self { id, id_hash }
    }
}

/// The session cookie of one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionCookie {
    /// The cookie's name (`ab_session` on a site, `ab_broker_session` on a broker).
    pub name: &'static str,
    /// How long a session lives, in seconds.
    pub lifetime: i64,
    /// Whether the service is reached over HTTPS (adds `Secure`).
    pub secure: bool,
}

impl SessionCookie {
    /// The hash of the request's session id, when it carries one (look it up; it may have expired).
    pub fn id_hash(&self, headers: &HeaderMap) -> Option<String> {
        cookies::get(headers, self.name)
            .filter(|id| !id.is_empty())
            .map(|id| hash_id(&id))
    }

    /// The `Set-Cookie` that starts `session` in the browser.
    pub fn start(&self, session: &NewSession) -> Result<HeaderValue, InvalidHeaderValue> {
        cookies::set(
            self.name,
            &session.id,
            CookieOptions::new(self.secure).max_age(self.lifetime),
        )
    }

    /// The `Set-Cookie` that ends the session in the browser.
    pub fn clear(&self) -> Result<HeaderValue, InvalidHeaderValue> {
        cookies::clear(self.name, CookieOptions::new(self.secure))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header;

    #[test]
    fn ids_are_hashed_with_sha256() {
        assert_eq!(
            hash_id("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let session = NewSession::generate();
        assert_eq!(session.id.len(), ID_LEN);
        assert_eq!(session.id_hash, hash_id(&session.id));
    }

    #[test]
    fn the_cookie_round_trips() {
        let cookie = SessionCookie {
            name: "ab_session",
            lifetime: 60,
            secure: false,
        };
        let session = NewSession::generate();
        let set = cookie.start(&session).unwrap();
        assert!(
            set.to_str()
                .unwrap()
                .starts_with(&format!("ab_session={}; Path=/; HttpOnly", session.id))
        );
        let mut headers = HeaderMap::new();
        assert_eq!(cookie.id_hash(&headers), None);
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("ab_session={}", session.id)).unwrap(),
        );
        assert_eq!(cookie.id_hash(&headers), Some(session.id_hash));
        assert!(
            cookie
                .clear()
                .unwrap()
                .to_str()
                .unwrap()
                .contains("Max-Age=0")
        );
    }
}
