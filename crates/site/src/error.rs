//! The site's one error type, mapped onto the protocol's codes.

use authbroker_protocol::{ErrorCode, WpError};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Everything that can go wrong while serving a request.
///
/// Rendering depends on where it happens: REST routes send the WordPress envelope (the default
/// `IntoResponse`), OAuth endpoints send plain text unless the client asks for JSON ([`SiteError::oauth`]).
/// Internal failures are logged and answered with a generic message: their details never reach a client.
#[derive(Debug)]
pub enum SiteError {
    /// A protocol error: code, HTTP status, message for the client.
    Protocol {
        code: ErrorCode,
        status: u16,
        message: String,
    },
    /// A WordPress REST error whose code is WordPress's own (`rest_forbidden`, `rest_post_invalid_id`, …).
    Rest {
        code: &'static str,
        status: u16,
        message: String,
    },
    /// A failure of ours (storage, a bug); logged, answered with 500.
    Internal(String),
}

impl SiteError {
    /// A protocol error with the code's default status.
    pub fn protocol(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Protocol {
            code,
            status: code.default_status(),
            message: message.into(),
        }
    }

    /// A WordPress REST error.
    pub fn rest(code: &'static str, status: u16, message: impl Into<String>) -> Self {
        Self::Rest {
            code,
            status,
            message: message.into(),
        }
    }

    /// The same error with another HTTP status.
    pub(crate) fn with_status(self, status: u16) -> Self {
        match self {
            Self::Protocol { code, message, .. } => Self::Protocol {
                code,
                status,
                message,
            },
            Self::Rest { code, message, .. } => Self::Rest {
                code,
                status,
                message,
            },
            other => other,
        }
    }

    /// The wire code.
    pub fn code(&self) -> &str {
        match self {
            Self::Protocol { code, .. } => code.as_str(),
            Self::Rest { code, .. } => code,
            Self::Internal(_) => ErrorCode::ServerError.as_str(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        let status = match self {
            Self::Protocol { status, .. } | Self::Rest { status, .. } => *status,
            Self::Internal(_) => 500,
        };
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The message for the client.
    pub fn message(&self) -> &str {
        match self {
            Self::Protocol { message, .. } | Self::Rest { message, .. } => message,
            Self::Internal(_) => "The site could not complete the request.",
        }
    }

    fn log(&self) {
        if let Self::Internal(detail) = self {
            tracing::error!(%detail, "internal error");
        }
    }

    /// The WordPress envelope `{"code","message","data":{"status"}}`.
    pub fn to_wp_error(&self) -> WpError {
        WpError {
            code: self.code().to_owned(),
            message: self.message().to_owned(),
            data: authbroker_protocol::WpErrorData {
                status: self.status().as_u16(),
            },
        }
    }

    /// The response an OAuth endpoint sends: plain text (clients display it) or, when the client sends
    /// `Accept: application/json`, the JSON envelope.
    pub fn oauth(self, request_headers: &HeaderMap) -> Response {
        if wants_json(request_headers) {
            return self.into_response();
        }
        self.log();
        let mut response = (self.status(), self.message().to_owned()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }
}

impl std::fmt::Display for SiteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code(), self.message())
    }
}

impl std::error::Error for SiteError {}

impl IntoResponse for SiteError {
    fn into_response(self) -> Response {
        self.log();
        (self.status(), axum::Json(self.to_wp_error())).into_response()
    }
}

impl From<authbroker_store::Error> for SiteError {
    fn from(err: authbroker_store::Error) -> Self {
        Self::Internal(format!("storage: {err}"))
    }
}

impl From<authbroker_oauth1::VerifyError> for SiteError {
    fn from(err: authbroker_oauth1::VerifyError) -> Self {
        Self::Protocol {
            code: err.code(),
            status: err.status(),
            message: err.to_string(),
        }
    }
}

/// Whether the client asked for JSON.
pub(crate) fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/json"))
}
