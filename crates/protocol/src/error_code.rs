use std::fmt;
use std::str::FromStr;

/// Every error code authbroker puts on the wire.
///
/// The strings are fixed by deployed WordPress clients, sites and brokers (see PROTOCOL.md); they must never
/// change. The default status is the one the WP-API plugins send, except where PROTOCOL.md fixes a plugin bug
/// (`json_oauth1_invalid_callback` is 400 here, never 500).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    // --- OAuth 1.0a provider (WP-API OAuth1 plugin) ---
    /// A required `oauth_*` parameter is absent, or the OAuth parameters cannot be read at all.
    OAuth1MissingParameter,
    /// `oauth_consumer_key` names no active consumer.
    ConsumerNotFound,
    /// The signature does not verify.
    OAuth1SignatureMismatch,
    /// `oauth_signature_method` is not one the endpoint accepts.
    OAuth1InvalidSignatureMethod,
    /// `oauth_timestamp` is not a number or outside the allowed window.
    OAuth1InvalidTimestamp,
    /// The (consumer, token, timestamp, nonce) tuple was seen before.
    OAuth1NonceAlreadyUsed,
    /// `oauth_token` names no token (or one that belongs to another consumer).
    OAuth1InvalidToken,
    /// The request token is past its lifetime.
    OAuth1ExpiredToken,
    /// The request token has not been approved by the user.
    OAuth1UnauthorizedToken,
    /// `oauth_verifier` does not match.
    OAuth1InvalidVerifier,
    /// `oauth_callback` does not match the registered callback.
    OAuth1InvalidCallback,

    // --- Brokered connection request, site side (R4) ---
    /// `client_id` empty or longer than 255 characters.
    BaInvalidClientId,
    /// `verifier` malformed (R4) or not matching a pending request (R5).
    BaInvalidVerifier,
    /// `callback_url` missing a host, or `oob`.
    BaInvalidCallback,
    /// The `broker` is not one the site trusts.
    BaUnknownBroker,
    /// The site's allow/deny list refuses this client.
    BaRejectedClient,
    /// The broker waited too long (R1) or the verification came too late (R5).
    BaTimedOut,
    /// A required parameter of a WordPress REST route is missing.
    RestMissingCallbackParam,
    /// A parameter of a WordPress REST route has an invalid value.
    RestInvalidParam,
    /// A REST route needs authentication (a session, or the broker API's bearer token) and got none that
    /// is valid.
    RestNotLoggedIn,
    /// The caller is authenticated but may not do this (a suspended account, a non-administrator).
    RestForbidden,
    /// The resource does not exist, or is not the caller's (the broker API never reveals other
    /// developers' apps).
    RestNotFound,
    /// No REST route matches the URL and method.
    RestNoRoute,

    // --- Broker connection (R1/R2) ---
    /// The site's REST index has no `authentication.broker`.
    BrokerAuthNotSupported,
    /// Discovery found no WordPress REST API at `server_url`.
    NotAWordPressSite,
    /// The site answered with an unexpected status, or a server-side failure happened.
    ServerError,
    /// The site's answer was not the JSON it should be.
    JsonDecodeError,
    /// The site refused the connection request.
    BrokerConnectFailure,
}

/// All codes, for exhaustive tests and lookups.
const ALL: [ErrorCode; 28] = [
    ErrorCode::OAuth1MissingParameter,
    ErrorCode::ConsumerNotFound,
    ErrorCode::OAuth1SignatureMismatch,
    ErrorCode::OAuth1InvalidSignatureMethod,
    ErrorCode::OAuth1InvalidTimestamp,
    ErrorCode::OAuth1NonceAlreadyUsed,
    ErrorCode::OAuth1InvalidToken,
    ErrorCode::OAuth1ExpiredToken,
    ErrorCode::OAuth1UnauthorizedToken,
    ErrorCode::OAuth1InvalidVerifier,
    ErrorCode::OAuth1InvalidCallback,
    ErrorCode::BaInvalidClientId,
    ErrorCode::BaInvalidVerifier,
    ErrorCode::BaInvalidCallback,
    ErrorCode::BaUnknownBroker,
    ErrorCode::BaRejectedClient,
    ErrorCode::BaTimedOut,
    ErrorCode::RestMissingCallbackParam,
    ErrorCode::RestInvalidParam,
    ErrorCode::RestNotLoggedIn,
    ErrorCode::RestForbidden,
    ErrorCode::RestNotFound,
    ErrorCode::RestNoRoute,
    ErrorCode::BrokerAuthNotSupported,
    ErrorCode::NotAWordPressSite,
    ErrorCode::ServerError,
    ErrorCode::JsonDecodeError,
    ErrorCode::BrokerConnectFailure,
];

impl ErrorCode {
    /// Every code this crate knows.
    pub const ALL: &'static [ErrorCode] = &ALL;

    /// The code exactly as it appears on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::OAuth1MissingParameter => "json_oauth1_missing_parameter",
            Self::ConsumerNotFound => "json_consumer_notfound",
            Self::OAuth1SignatureMismatch => "json_oauth1_signature_mismatch",
            Self::OAuth1InvalidSignatureMethod => "json_oauth1_invalid_signature_method",
            Self::OAuth1InvalidTimestamp => "json_oauth1_invalid_timestamp",
            Self::OAuth1NonceAlreadyUsed => "json_oauth1_nonce_already_used",
            Self::OAuth1InvalidToken => "json_oauth1_invalid_token",
            Self::OAuth1ExpiredToken => "json_oauth1_expired_token",
            Self::OAuth1UnauthorizedToken => "json_oauth1_unauthorized_token",
            Self::OAuth1InvalidVerifier => "json_oauth1_invalid_verifier",
            Self::OAuth1InvalidCallback => "json_oauth1_invalid_callback",
            Self::BaInvalidClientId => "ba.invalid_client_id",
            Self::BaInvalidVerifier => "ba.invalid_verifier",
            Self::BaInvalidCallback => "ba.invalid_callback",
            Self::BaUnknownBroker => "ba.unknown_broker",
            Self::BaRejectedClient => "ba.rejected_client",
            Self::BaTimedOut => "ba.timed_out",
            Self::RestMissingCallbackParam => "rest_missing_callback_param",
            Self::RestInvalidParam => "rest_invalid_param",
            Self::RestNotLoggedIn => "rest_not_logged_in",
            Self::RestForbidden => "rest_forbidden",
            Self::RestNotFound => "rest_not_found",
            Self::RestNoRoute => "rest_no_route",
            Self::BrokerAuthNotSupported => "broker-auth-not-supported",
            Self::NotAWordPressSite => "not-a-wordpress-site",
            Self::ServerError => "server-error",
            Self::JsonDecodeError => "json-decode-error",
            Self::BrokerConnectFailure => "broker.connect.failure",
        }
    }

    /// The HTTP status this code travels with unless the endpoint says otherwise.
    ///
    /// OAuth 1.0a statuses are the WP-API OAuth1 plugin's: authentication failures are 401, malformed token
    /// exchanges 400. `ba.timed_out` is 409 as the verification endpoint sends it; a connection request's
    /// validation errors are 400.
    pub const fn default_status(self) -> u16 {
        match self {
            Self::OAuth1MissingParameter
            | Self::ConsumerNotFound
            | Self::OAuth1SignatureMismatch
            | Self::OAuth1InvalidSignatureMethod
            | Self::OAuth1InvalidTimestamp
            | Self::OAuth1NonceAlreadyUsed
            | Self::OAuth1ExpiredToken
            | Self::OAuth1UnauthorizedToken => 401,
            Self::OAuth1InvalidToken
            | Self::OAuth1InvalidVerifier
            | Self::OAuth1InvalidCallback
            | Self::BaInvalidClientId
            | Self::BaInvalidVerifier
            | Self::BaInvalidCallback
            | Self::BaUnknownBroker
            | Self::BaRejectedClient
            | Self::RestMissingCallbackParam
            | Self::RestInvalidParam => 400,
            Self::RestNotLoggedIn => 401,
            Self::RestForbidden => 403,
            Self::RestNotFound | Self::RestNoRoute => 404,
            Self::BaTimedOut => 409,
            Self::BrokerAuthNotSupported
            | Self::NotAWordPressSite
            | Self::JsonDecodeError
            | Self::BrokerConnectFailure => 502,
            Self::ServerError => 500,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of the protocol's error codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownErrorCode(pub String);

impl fmt::Display for UnknownErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown error code {:?}", self.0)
    }
}

impl std::error::Error for UnknownErrorCode {}

impl FromStr for ErrorCode {
    type Err = UnknownErrorCode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ALL.iter()
            .copied()
            .find(|code| code.as_str() == s)
            .ok_or_else(|| UnknownErrorCode(s.to_owned()))
    }
}

impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn codes_are_unique_and_round_trip() {
        let mut seen = HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate wire code {code}");
            assert_eq!(code.as_str().parse::<ErrorCode>(), Ok(*code));
        }
        assert_eq!(seen.len(), ErrorCode::ALL.len());
    }

    #[test]
    fn statuses_match_the_wp_api_plugins() {
        assert_eq!(ErrorCode::OAuth1SignatureMismatch.default_status(), 401);
        assert_eq!(ErrorCode::OAuth1InvalidVerifier.default_status(), 400);
        assert_eq!(ErrorCode::OAuth1InvalidToken.default_status(), 400);
        assert_eq!(ErrorCode::OAuth1InvalidCallback.default_status(), 400);
        assert_eq!(ErrorCode::BaTimedOut.default_status(), 409);
        assert_eq!(ErrorCode::BaUnknownBroker.default_status(), 400);
        assert_eq!(ErrorCode::RestNotLoggedIn.default_status(), 401);
        assert_eq!(ErrorCode::RestForbidden.default_status(), 403);
        assert_eq!(ErrorCode::RestNotFound.default_status(), 404);
        assert_eq!(ErrorCode::RestNoRoute.default_status(), 404);
    }

    #[test]
    fn unknown_codes_are_refused() {
        assert_eq!(
            "json_oauth1_nope".parse::<ErrorCode>(),
            Err(UnknownErrorCode("json_oauth1_nope".into()))
        );
    }
}
