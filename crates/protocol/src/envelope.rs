use serde::{Deserialize, Serialize};

use crate::ErrorCode;

/// The WordPress REST API error envelope: `{"code":…,"message":…,"data":{"status":…}}`.
///
/// `code` is a plain string because sites relay codes we do not know (a WordPress plugin's own), and clients
/// must be able to read them back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WpError {
    pub code: String,
    pub message: String,
    pub data: WpErrorData,
}

/// The `data` member of [`WpError`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WpErrorData {
    pub status: u16,
}

impl WpError {
    /// An envelope for one of our codes with its default status.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::with_status(code, code.default_status(), message)
    }

    /// An envelope for one of our codes with an explicit status.
    pub fn with_status(code: ErrorCode, status: u16, message: impl Into<String>) -> Self {
        Self {
            code: code.as_str().to_owned(),
            message: message.into(),
            data: WpErrorData { status },
        }
    }
}

/// The broker's R1 error object.
///
/// `{"status":"error","code":C,"type":C,"message":M,"data":{…}}`: the spec names the code `code`, the
/// reference broker and every client written against it read `type`, so both carry the same value. `data`
/// relays what the site said (for example its own `ba.unknown_broker` envelope) instead of swallowing it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrokerError {
    pub status: BrokerErrorStatus,
    pub code: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
    #[serde(default)]
    pub data: serde_json::Value,
}

/// The constant `"error"` in a [`BrokerError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BrokerErrorStatus {
    Error,
}

impl BrokerError {
    /// An error object for `code`, with `data` as an empty object.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::with_data(code, message, serde_json::Value::Object(Default::default()))
    }

    /// An error object for `code` relaying `data`.
    pub fn with_data(code: ErrorCode, message: impl Into<String>, data: serde_json::Value) -> Self {
        Self {
            status: BrokerErrorStatus::Error,
            code: code.as_str().to_owned(),
            kind: code.as_str().to_owned(),
            message: message.into(),
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wp_error_has_the_wordpress_shape() {
        let err = WpError::new(ErrorCode::BaUnknownBroker, "Broker is not known.");
        assert_eq!(
            serde_json::to_value(&err).unwrap(),
            json!({"code":"ba.unknown_broker","message":"Broker is not known.","data":{"status":400}})
        );
    }

    #[test]
    fn broker_error_sends_code_and_type() {
        let relayed = json!({"code":"ba.unknown_broker","message":"x","data":{"status":400}});
        let err = BrokerError::with_data(
            ErrorCode::BrokerConnectFailure,
            "site refused",
            relayed.clone(),
        );
        let value = serde_json::to_value(&err).unwrap();
        assert_eq!(
            value,
            json!({
                "status": "error",
                "code": "broker.connect.failure",
                "type": "broker.connect.failure",
                "message": "site refused",
                "data": relayed,
            })
        );
        let back: BrokerError = serde_json::from_value(value).unwrap();
        assert_eq!(back, err);
    }

    #[test]
    fn broker_error_without_data_sends_an_empty_object() {
        let value = serde_json::to_value(BrokerError::new(ErrorCode::BaTimedOut, "late")).unwrap();
        assert_eq!(value["data"], json!({}));
        assert_eq!(value["type"], "ba.timed_out");
    }
}
