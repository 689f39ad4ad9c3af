//! R1/R6: asking a broker to obtain consumer credentials for the app from a site.

use authbroker_oauth1::Signer;
use futures_util::StreamExt;
use serde_json::Value;

use crate::discovery::check_transport;
use crate::{Client, Credentials, Error, Result, Site, nonce, unix_now};

/// What the broker is doing, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BrokerProgress {
    /// R1 is on its way.
    Sent,
    /// The broker accepted the request and holds the connection while it talks to the site.
    Accepted,
    /// The broker said `{"status":"processing"}` (NDJSON framing).
    Processing,
}

/// The result of a brokered connection.
#[derive(Debug, Clone)]
pub struct Brokered {
    /// The consumer credentials the site issued for this app.
    pub credentials: Credentials,
    /// The site as the broker discovered it (`api_root`, `site_data`), or as we did when it sent neither.
    pub site: Site,
    /// The broker ID that vouched for the app.
    pub broker: String,
}

impl Client {
    /// Asks the broker at `broker_url` to connect the app (`app`: its broker key and secret) to `site`.
    ///
    /// The broker answers at once and holds the response until the site has issued and confirmed the
    /// credentials (up to ~25 s); `progress` hears about each stage.
    pub async fn connect_via_broker(
        &self,
        broker_url: &str,
        app: &Credentials,
        site: &Site,
        mut progress: impl FnMut(BrokerProgress),
    ) -> Result<Brokered> {
        check_transport(broker_url)?;
        let broker = if broker_url.ends_with('/') {
            broker_url.to_owned()
        } else {
            format!("{broker_url}/")
        };
        let url = format!("{broker}broker/connect");
        let server_url = format!("{}/", site.home);
        let form = vec![("server_url".to_owned(), server_url)];
        let header = Signer::new(self.method, &app.key, &app.secret)
            .sign("POST", &url, &form, &nonce(), unix_now())
            .map_err(|err| Error::protocol(&url, err.to_string()))?;
        progress(BrokerProgress::Sent);
        let response = self
            .http
            .post(&url)
            .header(reqwest::header::AUTHORIZATION, header.to_header_value())
            .header(reqwest::header::ACCEPT, "application/x-ndjson")
            .form(&form)
            .timeout(self.broker_timeout)
            .send()
            .await
            .map_err(|err| Error::unreachable(&url, &err))?;
        let status = response.status();
        if matches!(status.as_u16(), 404 | 405) {
            return Err(Error::protocol(
                &broker,
                format!(
                    "no brokered-connection endpoint at {url} (HTTP {status}): check the broker URL (--broker, broker_url)"
                ),
            ));
        }
        if status.is_success() {
            progress(BrokerProgress::Accepted);
        }
        // Read line by line whatever the Content-Type says: NDJSON brokers send `{"status":"processing"}`
        // first, JSON brokers one object (which a proxy may have pretty-printed over several lines). Stop at
        // the first final object instead of waiting for the end of a stream someone keeps open.
        let mut body = response.bytes_stream();
        let mut buffer: Vec<u8> = Vec::new();
        let mut candidate: Vec<u8> = Vec::new();
        let mut processing = false;
        loop {
            let chunk = match body.next().await {
                None => break,
                Some(Ok(chunk)) => chunk,
                Some(Err(err)) => return Err(self.cut_short(&broker, status, &err)),
            };
            buffer.extend_from_slice(&chunk);
            while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                candidate.extend(buffer.drain(..=end));
                let Ok(value) = serde_json::from_slice::<Value>(candidate.trim_ascii()) else {
                    continue;
                };
                candidate.clear();
                if value["status"] == "processing" {
                    processing = true;
                    progress(BrokerProgress::Processing);
                } else {
                    return self.brokered(value, &broker, site);
                }
            }
        }
        candidate.extend(buffer);
        let text = candidate.trim_ascii();
        if text.is_empty() {
            if processing {
                return Err(Error::Broker {
                    code: "ba.timed_out".to_owned(),
                    message: "the broker stopped answering before the site confirmed".to_owned(),
                    site_error: None,
                });
            }
            return Err(Error::protocol(
                &broker,
                format!("an empty answer (HTTP {status})"),
            ));
        }
        let value = serde_json::from_slice::<Value>(text).map_err(|_| {
            let start: String = String::from_utf8_lossy(text).chars().take(80).collect();
            Error::protocol(
                &broker,
                format!("HTTP {status} with a body that is not JSON: {start:?}"),
            )
        })?;
        self.brokered(value, &broker, site)
    }

    /// The broker's answer broke off after its status line.
    fn cut_short(&self, broker: &str, status: reqwest::StatusCode, err: &reqwest::Error) -> Error {
        if err.is_timeout() {
            return Error::Broker {
                code: "ba.timed_out".to_owned(),
                message: format!(
                    "the broker did not finish within {} s",
                    self.broker_timeout.as_secs()
                ),
                site_error: None,
            };
        }
        Error::protocol(
            broker,
            format!(
                "HTTP {status}, then the connection closed before the answer was complete ({err}); try again"
            ),
        )
    }

    fn brokered(&self, reply: Value, broker: &str, site: &Site) -> Result<Brokered> {
        let text = |v: &Value| v.as_str().map(str::to_owned);
        if let (Some(key), Some(secret)) =
            (text(&reply["client_token"]), text(&reply["client_secret"]))
        {
            let relayed = match (text(&reply["api_root"]), reply.get("site_data")) {
                (Some(api_root), Some(index)) if index.is_object() => {
                    Site::from_index(&api_root, index.clone(), &site.home).ok()
                }
                _ => None,
            };
            return Ok(Brokered {
                credentials: Credentials::new(key, secret),
                // The broker's copy is fresher, but only when it describes the same site.
                site: relayed
                    .filter(|s| s.home == site.home && s.oauth1.is_some())
                    .unwrap_or_else(|| site.clone()),
                broker: broker.to_owned(),
            });
        }
        // The spec names it `code`, the reference broker and its clients read `type`: accept either.
        let code = text(&reply["code"])
            .or_else(|| text(&reply["type"]))
            .unwrap_or_else(|| "unknown".to_owned());
        Err(Error::Broker {
            code,
            message: text(&reply["message"]).unwrap_or_else(|| reply.to_string()),
            site_error: text(&reply["data"]["site_error"]["code"]),
        })
    }
}
