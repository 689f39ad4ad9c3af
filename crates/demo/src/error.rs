//! What can go wrong while starting the demo world or approving in it.

use std::path::PathBuf;

use authbroker_broker::BrokerError;
use authbroker_site::SiteError;
use authbroker_web::serve::ServeError;

/// Why the demo world could not start, or why the scripted approver could not approve.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A file or directory under the data directory could not be created, read or written.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done (`"creating the data directory"`, `"writing the CA certificate"`, …).
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The local CA or the server certificate could not be generated.
    #[error("generating the local CA and certificates: {0}")]
    Certificates(#[from] rcgen::Error),
    /// A service could not listen (the port is taken, the certificate does not load).
    #[error("starting the {service}: {source}")]
    Listen {
        service: &'static str,
        #[source]
        source: ServeError,
    },
    /// The broker refused or failed an operation (opening its database, registering the developer or app).
    #[error("broker: {what}: {source}")]
    Broker {
        what: &'static str,
        #[source]
        source: BrokerError,
    },
    /// The site refused or failed an operation (opening its database, creating a user).
    #[error("site: {what}: {source}")]
    Site {
        what: &'static str,
        #[source]
        source: SiteError,
    },
    /// A query the demo runs on the site's database failed.
    #[error("site: {what}: {source}")]
    SiteStorage {
        what: &'static str,
        #[source]
        source: authbroker_store::sqlx::Error,
    },
    /// The credentials file of a previous world is unreadable, or missing while its accounts exist.
    #[error("demo credentials {}: {message}", path.display())]
    Credentials { path: PathBuf, message: String },
    /// The data directory holds a previous world that cannot be reused as it is.
    #[error("reusing the demo world in {}: {message}", path.display())]
    Reuse { path: PathBuf, message: String },
    /// An HTTP request of the scripted approver failed (connection, TLS, timeout).
    #[error("{what}: {source}")]
    Http {
        what: String,
        #[source]
        source: reqwest::Error,
    },
    /// The site did not answer the scripted approver as a browser would expect (an unexpected status or
    /// page, a refused login).
    #[error("approving: {0}")]
    Approval(String),
    /// A step of the scenario failed in the client SDK (its message says what to do).
    #[error(transparent)]
    Client(#[from] authbroker_client::Error),
    /// A step of the scenario produced something other than expected.
    #[error("{0}")]
    Scenario(String),
}
