//! The client commands' configuration: `config.toml` in the authbroker config directory, then
//! `AUTHBROKER_*` variables, then flags — the same loader as the services, so errors name the key and where
//! its value came from.

use std::path::{Path, PathBuf};

use authbroker_client::store::KeyringPolicy;
use authbroker_web::config::{ConfigError, ConfigKey, Layers, ServiceConfig, ValueKind};

/// What `connect`, `post` and the other client commands read.
#[derive(Debug, Clone)]
pub(crate) struct ClientConfig {
    /// The broker that vouches for the app.
    pub(crate) broker_url: Option<String>,
    /// The app's key and secret at that broker.
    pub(crate) app_key: Option<String>,
    pub(crate) app_secret: Option<String>,
    /// An extra certificate authority to trust (a local CA such as `authbroker up` prints).
    pub(crate) ca_file: Option<PathBuf>,
    pub(crate) keyring: KeyringPolicy,
    /// The loopback callback's path; the app's registered callback is `http://127.0.0.1{callback_path}`.
    pub(crate) callback_path: String,
    /// A fixed loopback port, for sites that compare the callback's port (WordPress). 0: any free port.
    pub(crate) callback_port: u16,
}

const KEYS: &[ConfigKey] = &[
    ConfigKey {
        key: "broker_url",
        env: Some("AUTHBROKER_BROKER_URL"),
        flag: Some("--broker"),
        kind: ValueKind::Text,
        help: "The broker that vouches for the app (its broker ID, e.g. https://apps.wp-api.org/).",
    },
    ConfigKey {
        key: "app_key",
        env: Some("AUTHBROKER_APP_KEY"),
        flag: None,
        kind: ValueKind::Text,
        help: "The app's key at the broker (its client_id).",
    },
    ConfigKey {
        key: "app_secret",
        env: Some("AUTHBROKER_APP_SECRET"),
        flag: None,
        kind: ValueKind::Text,
        help: "The app's secret at the broker. Prefer the environment variable or a file only you can read.",
    },
    ConfigKey {
        key: "ca_file",
        env: Some("AUTHBROKER_CA_FILE"),
        flag: Some("--ca-file"),
        kind: ValueKind::Text,
        help: "A PEM file of certificate authorities to trust besides the system's (the local CA of \
               `authbroker up`).",
    },
    ConfigKey {
        key: "keyring",
        env: Some("AUTHBROKER_KEYRING"),
        flag: None,
        kind: ValueKind::Text,
        help: "Where tokens go: \"auto\" (the OS keyring, or a 0600 file when there is none) or \"never\" \
               (always the file). Default: auto.",
    },
    ConfigKey {
        key: "callback_path",
        env: Some("AUTHBROKER_CALLBACK_PATH"),
        flag: None,
        kind: ValueKind::Text,
        help: "Path of the loopback callback; register the app with http://127.0.0.1{callback_path}. \
               Default: /callback.",
    },
    ConfigKey {
        key: "callback_port",
        env: Some("AUTHBROKER_CALLBACK_PORT"),
        flag: Some("--callback-port"),
        kind: ValueKind::Integer,
        help: "Loopback port for the callback; 0 picks a free one (authbroker sites accept any port on \
               127.0.0.1, WordPress sites need the registered one). Default: 0.",
    },
];

impl ServiceConfig for ClientConfig {
    fn keys() -> &'static [ConfigKey] {
        KEYS
    }

    fn build(layers: &Layers) -> Result<Self, ConfigError> {
        let keyring = match layers.get::<String>("keyring")?.as_deref() {
            None | Some("auto") => KeyringPolicy::Auto,
            Some("never") => KeyringPolicy::Never,
            Some(other) => {
                return Err(layers.error(
                    "keyring",
                    format!("{other:?} is neither \"auto\" nor \"never\""),
                ));
            }
        };
        let callback_path: String = layers
            .get("callback_path")?
            .unwrap_or_else(|| "/callback".to_owned());
        if !callback_path.starts_with('/') {
            return Err(layers.error("callback_path", "must start with '/'"));
        }
        Ok(Self {
            broker_url: layers.get("broker_url")?,
            app_key: layers.get("app_key")?,
            app_secret: layers.get("app_secret")?,
            ca_file: layers.get("ca_file")?,
            keyring,
            callback_path,
            callback_port: layers.get("callback_port")?.unwrap_or(0),
        })
    }
}

impl ClientConfig {
    /// The configuration file (it need not exist).
    pub(crate) fn path(dir: &Path) -> PathBuf {
        dir.join("config.toml")
    }

    /// The file if it exists, then the environment, then `flags`.
    pub(crate) fn resolve(dir: &Path, flags: Vec<(&'static str, String)>) -> Result<Self, String> {
        let path = Self::path(dir);
        let path = path.exists().then_some(path);
        Self::load_with_flags(path.as_deref(), std::env::vars_os(), flags)
            .map_err(|err| err.to_string())
    }

    /// The app's broker credentials; the error says how to set them.
    pub(crate) fn app(&self, dir: &Path) -> Result<authbroker_client::Credentials, String> {
        match (&self.app_key, &self.app_secret) {
            (Some(key), Some(secret)) => Ok(authbroker_client::Credentials::new(key, secret)),
            _ => Err(format!(
                "the app's broker credentials are not set: set app_key and app_secret in {} or \
                 AUTHBROKER_APP_KEY and AUTHBROKER_APP_SECRET (a developer gets them when registering the \
                 app at the broker); or connect with a site's own consumer: --consumer-key/--consumer-secret",
                Self::path(dir).display()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn load(toml: &str, env: &[(&str, &str)]) -> Result<ClientConfig, String> {
        let mut layers = Layers::new(KEYS);
        layers
            .toml(toml, authbroker_web::config::Origin::File(None))
            .map_err(|e| e.to_string())?;
        layers.env(env.iter().copied()).map_err(|e| e.to_string())?;
        ClientConfig::build(&layers).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_overrides() {
        let config = load("broker_url = \"https://b.example/\"", &[]).unwrap();
        assert_eq!(config.broker_url.as_deref(), Some("https://b.example/"));
        assert_eq!(config.keyring, KeyringPolicy::Auto);
        assert_eq!(config.callback_path, "/callback");
        assert_eq!(config.callback_port, 0);
        let config = load(
            "broker_url = \"https://b.example/\"",
            &[
                ("AUTHBROKER_BROKER_URL", "https://other.example/"),
                ("AUTHBROKER_KEYRING", "never"),
                ("AUTHBROKER_CALLBACK_PORT", "8914"),
            ],
        )
        .unwrap();
        assert_eq!(config.broker_url.as_deref(), Some("https://other.example/"));
        assert_eq!(config.keyring, KeyringPolicy::Never);
        assert_eq!(config.callback_port, 8914);
    }

    #[test]
    fn bad_values_name_their_key() {
        let err = load("keyring = \"sometimes\"", &[]).unwrap_err();
        assert!(err.starts_with("keyring:"), "{err}");
        let err = load("callback_path = \"cb\"", &[]).unwrap_err();
        assert!(err.starts_with("callback_path:"), "{err}");
        let err = load("", &[("AUTHBROKER_CALLBACK_PORT", "x")]).unwrap_err();
        assert!(err.contains("AUTHBROKER_CALLBACK_PORT"), "{err}");
    }
}
