//! The broker's one error type: R1 error objects, R5 JSON errors, internal failures.

use authbroker_protocol::{BrokerError as WireError, ErrorCode};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Everything that can go wrong while serving a request.
#[derive(Debug)]
pub enum BrokerError {
    /// A protocol error: code, HTTP status, message, and what the site said (relayed, not swallowed).
    Protocol {
        code: ErrorCode,
        status: u16,
        message: String,
        data: serde_json::Value,
    },
    /// Too many requests; retry after this many seconds.
    RateLimited { retry_after: u64, message: String },
    /// A failure of ours; logged, answered with a generic 500.
    Internal(String),
}

impl BrokerError {
    pub fn protocol(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Protocol {
            code,
            status: code.default_status(),
            message: message.into(),
            data: serde_json::json!({}),
        }
    }

    pub fn with_status(self, status: u16) -> Self {
        match self {
            Self::Protocol {
                code,
                message,
                data,
                ..
            } => Self::Protocol {
                code,
                status,
                message,
                data,
            },
            other => other,
        }
    }

    pub fn with_data(self, data: serde_json::Value) -> Self {
        match self {
            Self::Protocol {
                code,
                status,
                message,
                ..
            } => Self::Protocol {
                code,
                status,
                message,
                data,
            },
            other => other,
        }
    }

    /// The wire object `{"status":"error","code","type","message","data"}`.
    pub fn to_wire(&self) -> WireError {
        match self {
            Self::Protocol {
                code,
                message,
                data,
                ..
            } => WireError::with_data(*code, message.clone(), data.clone()),
            Self::RateLimited {
                message,
                retry_after,
            } => WireError::with_data(
                ErrorCode::ServerError,
                message.clone(),
                serde_json::json!({"retry_after": retry_after}),
            ),
            Self::Internal(_) => WireError::new(
                ErrorCode::ServerError,
                "The broker could not complete the request.",
            ),
        }
    }

    pub fn status(&self) -> StatusCode {
        let status = match self {
            Self::Protocol { status, .. } => *status,
            Self::RateLimited { .. } => 429,
            Self::Internal(_) => 500,
        };
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl std::fmt::Display for BrokerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let wire = self.to_wire();
        write!(f, "{}: {}", wire.code, wire.message)
    }
}

impl std::error::Error for BrokerError {}

impl IntoResponse for BrokerError {
    fn into_response(self) -> Response {
        if let Self::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        }
        let mut response = (self.status(), axum::Json(self.to_wire())).into_response();
        if let Self::RateLimited { retry_after, .. } = &self {
            if let Ok(value) = retry_after.to_string().parse() {
                response
                    .headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, value);
            }
        }
        response
    }
}

impl From<authbroker_store::Error> for BrokerError {
    fn from(err: authbroker_store::Error) -> Self {
        Self::Internal(format!("storage: {err}"))
    }
}

impl From<authbroker_oauth1::VerifyError> for BrokerError {
    fn from(err: authbroker_oauth1::VerifyError) -> Self {
        Self::Protocol {
            code: err.code(),
            status: err.status(),
            message: err.to_string(),
            data: serde_json::json!({}),
        }
    }
}
