//! Serving the broker (`authbroker broker serve`) and setting up a new broker's first administrator
//! (`authbroker broker init`). The listener is the one the site uses too ([`authbroker_web::serve`]).

pub use authbroker_web::serve::{Listener, SHUTDOWN_GRACE, ServeError};

use crate::accounts::{MIN_PASSWORD_LEN, check_new_account, first_admin};
use crate::apps::{ROLE_ADMIN, create_developer};
use crate::config::BrokerConfig;
use crate::error::BrokerError;
use crate::state::BrokerState;

/// Loads the TLS certificate and key (if configured), checks that plain HTTP is only served on loopback, and
/// binds `config.listen`. Serve with `listener.serve(router(state), shutdown)`.
pub async fn bind(config: &BrokerConfig) -> Result<Listener, ServeError> {
    Listener::bind(
        config.listen,
        config.tls_cert.as_deref(),
        config.tls_key.as_deref(),
    )
    .await
}

/// The first administrator of a new broker, for [`init`].
#[derive(Debug, Clone)]
pub struct NewAdministrator {
    pub email: String,
    pub name: String,
    /// `None` generates a password of 24 letters and digits.
    pub password: Option<String>,
}

/// What [`init`] did.
#[derive(Debug, Clone)]
pub struct Initialized {
    pub developer_id: String,
    pub email: String,
    /// The password, when it was generated (shown once; only its hash is stored).
    pub generated_password: Option<String>,
}

/// Why [`init`] did nothing.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The broker already has an administrator: `init` is for new brokers only.
    #[error(
        "the broker already has an administrator ({email:?}); init only sets up a new broker, nothing was changed"
    )]
    AdministratorExists { email: String },
    /// The email, name or password was refused (the password needs at least 12 characters).
    #[error("admin account: {0}")]
    Invalid(String),
    /// Storage failed.
    #[error("{0}")]
    Broker(BrokerError),
}

impl From<BrokerError> for InitError {
    fn from(err: BrokerError) -> Self {
        Self::Broker(err)
    }
}

/// Creates the first administrator of a broker whose database was just opened (and migrated) by
/// [`BrokerState::open`]. Refuses when an administrator already exists.
pub async fn init(state: &BrokerState, admin: NewAdministrator) -> Result<Initialized, InitError> {
    if let Some(email) = first_admin(state).await? {
        return Err(InitError::AdministratorExists { email });
    }
    let (password, generated) = authbroker_web::password::chosen_or_generated(admin.password);
    let name = if admin.name.trim().is_empty() {
        "Administrator"
    } else {
        admin.name.trim()
    };
    let email = check_new_account(&admin.email, name, &password).map_err(|err| match err {
        BrokerError::Protocol { message, .. } => InitError::Invalid(message),
        other => InitError::Broker(other),
    })?;
    let developer = create_developer(state, &email, name, &password, ROLE_ADMIN).await?;
    tracing::info!(email = %developer.email, "created the first administrator");
    Ok(Initialized {
        developer_id: developer.id,
        email: developer.email,
        generated_password: generated.then_some(password),
    })
}

/// The shortest administrator password [`init`] accepts.
pub const MIN_ADMIN_PASSWORD_LEN: usize = MIN_PASSWORD_LEN;

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use authbroker_web::SystemClock;

    async fn state(dir: &std::path::Path) -> BrokerState {
        let mut config = BrokerConfig::new("http://127.0.0.1:8443/");
        config.data_dir = dir.to_owned();
        BrokerState::open(config, Arc::new(SystemClock))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn init_creates_one_administrator_and_refuses_a_second() {
        let dir = tempfile::tempdir().unwrap();
        let state = state(dir.path()).await;
        let done = init(
            &state,
            NewAdministrator {
                email: "Admin@Broker.example".into(),
                name: String::new(),
                password: None,
            },
        )
        .await
        .unwrap();
        assert_eq!(done.email, "admin@broker.example");
        let password = done.generated_password.unwrap();
        assert_eq!(password.len(), 24);
        let admin = crate::accounts::authenticate(&state, "admin@broker.example", &password)
            .await
            .unwrap()
            .unwrap();
        assert!(admin.is_admin());
        let err = init(
            &state,
            NewAdministrator {
                email: "other@broker.example".into(),
                name: "Other".into(),
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
    async fn a_short_password_or_a_bad_email_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let state = state(dir.path()).await;
        for (email, password) in [
            ("admin@b.example", "short"),
            ("admin", "long enough password"),
        ] {
            let err = init(
                &state,
                NewAdministrator {
                    email: email.into(),
                    name: "Admin".into(),
                    password: Some(password.into()),
                },
            )
            .await
            .unwrap_err();
            assert!(matches!(err, InitError::Invalid(_)), "{err}");
        }
        assert_eq!(first_admin(&state).await.unwrap(), None);
    }

    #[tokio::test]
    async fn plain_http_is_refused_off_loopback() {
        let mut config = BrokerConfig::new("https://apps.example/");
        config.listen = "0.0.0.0:0".parse().unwrap();
        let err = bind(&config).await.unwrap_err();
        assert!(matches!(err, ServeError::PlainHttpNotLoopback(_)), "{err}");
    }
}
