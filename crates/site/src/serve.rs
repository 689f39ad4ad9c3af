//! Serving the site (used by `authbroker site serve`) and setting up a new site's first administrator
//! (`authbroker site init`). The listener itself is shared with the broker ([`authbroker_web::serve`]).

use std::future::Future;
use std::net::SocketAddr;

use authbroker_store::sqlx::{self, Row};

pub use authbroker_web::serve::{SHUTDOWN_GRACE, ServeError};

use crate::accounts::{Role, create_user};
use crate::error::SiteError;
use crate::{SiteConfig, SiteState, router};

/// A bound listening socket, plain or TLS, ready to serve a site.
#[derive(Debug)]
pub struct SiteListener(authbroker_web::serve::Listener);

impl SiteListener {
    /// Loads the TLS certificate and key (if configured), checks that plain HTTP is only served on loopback,
    /// and binds `config.listen`.
    pub async fn bind(config: &SiteConfig) -> Result<Self, ServeError> {
        authbroker_web::serve::Listener::bind(
            config.listen,
            config.tls_cert.as_deref(),
            config.tls_key.as_deref(),
        )
        .await
        .map(Self)
    }

    /// The address actually bound (the port chosen when the configuration asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.0.local_addr()
    }

    /// Whether connections are served over TLS.
    pub fn is_tls(&self) -> bool {
        self.0.is_tls()
    }

    /// The URL of the bound socket (not the site's home URL, which is what clients should use).
    pub fn url(&self) -> String {
        self.0.url()
    }

    /// Serves the site until `shutdown` completes (then at most [`SHUTDOWN_GRACE`] for requests in flight).
    pub async fn serve(
        self,
        state: SiteState,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        self.0.serve(router(state), shutdown).await
    }
}

/// Binds the configured address and serves the site until `shutdown` completes.
pub async fn serve(
    state: SiteState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    SiteListener::bind(state.config())
        .await?
        .serve(state, shutdown)
        .await
}

/// The first administrator of a new site, for [`init`].
#[derive(Debug, Clone)]
pub struct NewAdministrator {
    pub login: String,
    pub email: String,
    /// `None` generates a password of 24 letters and digits.
    pub password: Option<String>,
}

/// What [`init`] did.
#[derive(Debug, Clone)]
pub struct Initialized {
    /// The administrator's user id.
    pub user_id: String,
    pub login: String,
    /// The password, when it was generated (it is shown once and stored only as a hash).
    pub generated_password: Option<String>,
}

/// Why [`init`] did nothing.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The site already has an administrator: `init` is for new sites only.
    #[error(
        "the site already has an administrator ({login:?}); init only sets up a new site, nothing was changed"
    )]
    AdministratorExists { login: String },
    /// The chosen password is too short.
    #[error("admin password: use at least {min} characters", min = MIN_PASSWORD_LEN)]
    PasswordTooShort,
    /// Storage failed, or the login was refused.
    #[error("{0}")]
    Site(#[from] SiteError),
}

/// The shortest administrator password [`init`] accepts.
pub const MIN_PASSWORD_LEN: usize = 12;

/// Creates the first administrator of a site whose database was just opened (and migrated) by
/// [`SiteState::open`]. Refuses when an administrator already exists.
pub async fn init(state: &SiteState, admin: NewAdministrator) -> Result<Initialized, InitError> {
    if let Some(login) = first_administrator(state).await? {
        return Err(InitError::AdministratorExists { login });
    }
    if admin
        .password
        .as_ref()
        .is_some_and(|password| password.chars().count() < MIN_PASSWORD_LEN)
    {
        return Err(InitError::PasswordTooShort);
    }
    let (password, generated) = authbroker_web::password::chosen_or_generated(admin.password);
    let user = create_user(
        state,
        &admin.login,
        &admin.login,
        &admin.email,
        &password,
        Role::Administrator,
    )
    .await?;
    tracing::info!(login = %user.login, "created the first administrator");
    Ok(Initialized {
        user_id: user.id,
        login: user.login,
        generated_password: generated.then_some(password),
    })
}

/// The login of the oldest administrator, if the site has one.
pub async fn first_administrator(state: &SiteState) -> Result<Option<String>, SiteError> {
    let row =
        sqlx::query("SELECT login FROM users WHERE role = $1 ORDER BY created_at, id LIMIT 1")
            .bind(Role::Administrator.as_str())
            .fetch_optional(state.store().pool())
            .await
            .map_err(|err| SiteError::Internal(format!("storage: {err}")))?;
    row.map(|row| row.try_get::<String, _>("login"))
        .transpose()
        .map_err(|err| SiteError::Internal(format!("storage: {err}")))
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use authbroker_web::SystemClock;

    async fn state(dir: &Path) -> SiteState {
        let mut config = SiteConfig::new("http://127.0.0.1:8080");
        config.data_dir = dir.to_owned();
        SiteState::open(config, Arc::new(SystemClock))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn plain_http_is_refused_off_loopback() {
        let mut config = SiteConfig::new("http://127.0.0.1:8080");
        config.listen = "0.0.0.0:0".parse().unwrap();
        let err = SiteListener::bind(&config).await.unwrap_err();
        assert!(matches!(err, ServeError::PlainHttpNotLoopback(_)), "{err}");
        assert!(err.to_string().contains("loopback"), "{err}");
    }

    #[tokio::test]
    async fn half_a_tls_pair_is_refused() {
        let mut config = SiteConfig::new("https://127.0.0.1:8443");
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.tls_cert = Some("cert.pem".into());
        let err = SiteListener::bind(&config).await.unwrap_err();
        assert!(matches!(err, ServeError::IncompleteTls), "{err}");
    }

    #[tokio::test]
    async fn unreadable_tls_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let mut config = SiteConfig::new("https://127.0.0.1:8443");
        config.listen = "0.0.0.0:0".parse().unwrap();
        config.tls_cert = Some(dir.path().join("missing.pem"));
        config.tls_key = Some(empty.clone());
        let err = SiteListener::bind(&config).await.unwrap_err();
        assert!(err.to_string().starts_with("tls_cert "), "{err}");
        assert!(err.to_string().contains("missing.pem"), "{err}");

        config.tls_cert = Some(empty);
        let err = SiteListener::bind(&config).await.unwrap_err();
        assert!(err.to_string().contains("no CERTIFICATE"), "{err}");
    }

    #[tokio::test]
    async fn port_zero_binds_a_free_port_and_serves_until_shutdown() {
        let dir = tempfile::tempdir().unwrap();
        let state = state(dir.path()).await;
        let mut config = state.config().clone();
        config.listen = "127.0.0.1:0".parse().unwrap();
        let listener = SiteListener::bind(&config).await.unwrap();
        let addr = listener.local_addr();
        assert_ne!(addr.port(), 0);
        assert_eq!(listener.url(), format!("http://{addr}/"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(listener.serve(state, async move {
            let _ = stopped.await;
        }));
        let response = reqwest::get(format!("http://{addr}/wp-json/"))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            response
                .headers()
                .get("link")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("<http://127.0.0.1:8080/wp-json/>"))
        );
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }

    #[tokio::test]
    async fn init_creates_one_administrator_and_refuses_a_second() {
        let dir = tempfile::tempdir().unwrap();
        let state = state(dir.path()).await;
        assert_eq!(first_administrator(&state).await.unwrap(), None);
        let done = init(
            &state,
            NewAdministrator {
                login: "admin".into(),
                email: "admin@example.com".into(),
                password: None,
            },
        )
        .await
        .unwrap();
        let password = done.generated_password.unwrap();
        assert_eq!(password.len(), 24);
        assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(
            first_administrator(&state).await.unwrap().as_deref(),
            Some("admin")
        );
        assert!(
            crate::accounts::authenticate_password(&state, "admin", &password)
                .await
                .unwrap()
                .is_some()
        );

        let err = init(
            &state,
            NewAdministrator {
                login: "other".into(),
                email: String::new(),
                password: Some("a long enough password".into()),
            },
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, InitError::AdministratorExists { .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_short_password_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let state = state(dir.path()).await;
        let err = init(
            &state,
            NewAdministrator {
                login: "admin".into(),
                email: String::new(),
                password: Some("short".into()),
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(err, InitError::PasswordTooShort), "{err}");
        assert_eq!(first_administrator(&state).await.unwrap(), None);
    }
}
