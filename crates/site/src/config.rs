//! Site configuration: a TOML file, `AUTHBROKER_*` environment overrides, then command-line flags.
//!
//! Every layer is reduced to the same shape — a value per key plus where it came from — and the keys are then
//! converted one by one, so an error always names the key and the place to fix it
//! (`listen: invalid socket address syntax (from AUTHBROKER_LISTEN)`). The keys are listed once, in
//! [`SiteConfig::KEYS`], which the command-line help is generated from.

use std::net::SocketAddr;
use std::path::PathBuf;

pub use authbroker_web::config::{ConfigError, ConfigKey, Origin, ServiceConfig};
use authbroker_web::config::{Layers, ValueKind};
use serde::Deserialize;

/// Everything a site needs to run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    /// The canonical home URL (`https://site.example`). Signatures, the REST index, redirects and links are
    /// all built from it, never from the `Host` header.
    pub home_url: String,
    /// The site's name in the REST index and on pages.
    #[serde(default = "default_name")]
    pub name: String,
    /// The site's tagline.
    #[serde(default)]
    pub description: String,
    /// Where the SQLite file lives when `database_url` is not set.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; default `sqlite://{data_dir}/site.db`.
    #[serde(default)]
    pub database_url: Option<String>,
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// PEM certificate chain and key for HTTPS. Without them the site serves plain HTTP, which is only
    /// allowed on loopback addresses.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// Brokers this site trusts (seeded into the database on first start; managed on the Brokers page).
    #[serde(default = "default_brokers")]
    pub known_brokers: Vec<KnownBrokerConfig>,
    /// Extra PEM root certificates trusted for verification requests (a private broker's CA).
    #[serde(default)]
    pub extra_root_certs: Vec<PathBuf>,
    /// Failed logins a login name may have before `POST /login` refuses it (then one more a minute); 0 for no
    /// limit. See `accounts::limits`.
    #[serde(default = "default_login_failures_per_account")]
    pub login_failures_per_account: u32,
    /// Failed logins a client IP (the TCP peer; IPv6 by /64) may have (then one more every 12 s); 0 for no
    /// limit — behind a reverse proxy every client has the proxy's address.
    #[serde(default = "default_login_failures_per_ip")]
    pub login_failures_per_ip: u32,
}

/// One trusted broker: its ID (exact string, with trailing slash) and where to verify connection requests.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct KnownBrokerConfig {
    pub id: String,
    pub verification_url: String,
}

fn default_name() -> String {
    "authbroker site".to_owned()
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data/site")
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_login_failures_per_account() -> u32 {
    crate::accounts::PER_LOGIN_BURST
}

fn default_login_failures_per_ip() -> u32 {
    crate::accounts::PER_IP_BURST
}

fn default_brokers() -> Vec<KnownBrokerConfig> {
    vec![KnownBrokerConfig {
        id: "https://apps.wp-api.org/".to_owned(),
        verification_url: "https://apps.wp-api.org/broker/confirm/".to_owned(),
    }]
}

impl SiteConfig {
    /// Every key of the configuration, in the order the help lists them.
    pub const KEYS: &'static [ConfigKey] = &[
        ConfigKey {
            key: "home_url",
            env: Some("AUTHBROKER_HOME_URL"),
            flag: Some("--home-url"),
            kind: ValueKind::Text,
            help: "The canonical home URL (https://site.example). The REST index, OAuth signatures, \
                   redirects and links are built from it, never from the Host header. Required.",
        },
        ConfigKey {
            key: "name",
            env: Some("AUTHBROKER_NAME"),
            flag: Some("--name"),
            kind: ValueKind::Text,
            help: "The site's name in the REST index and on pages. Default: \"authbroker site\".",
        },
        ConfigKey {
            key: "description",
            env: Some("AUTHBROKER_DESCRIPTION"),
            flag: None,
            kind: ValueKind::Text,
            help: "The site's tagline in the REST index. Default: empty.",
        },
        ConfigKey {
            key: "data_dir",
            env: Some("AUTHBROKER_DATA_DIR"),
            flag: Some("--data-dir"),
            kind: ValueKind::Text,
            help: "Directory of the SQLite database (site.db, created with mode 0600) when database_url \
                   is not set. Default: data/site.",
        },
        ConfigKey {
            key: "database_url",
            env: Some("AUTHBROKER_DATABASE_URL"),
            flag: Some("--database-url"),
            kind: ValueKind::Text,
            help: "sqlite://PATH or postgres://USER:PASSWORD@HOST/DB; several site processes may share \
                   one PostgreSQL database. Default: sqlite://{data_dir}/site.db.",
        },
        ConfigKey {
            key: "listen",
            env: Some("AUTHBROKER_LISTEN"),
            flag: Some("--listen"),
            kind: ValueKind::Text,
            help: "Address and port to listen on; port 0 picks a free port (the address served is \
                   printed). Plain HTTP is only allowed on a loopback address. Default: 127.0.0.1:8080.",
        },
        ConfigKey {
            key: "tls_cert",
            env: Some("AUTHBROKER_TLS_CERT"),
            flag: Some("--tls-cert"),
            kind: ValueKind::Text,
            help: "PEM file with the certificate chain for HTTPS, leaf first. Set together with \
                   tls_key; without both the site serves plain HTTP.",
        },
        ConfigKey {
            key: "tls_key",
            env: Some("AUTHBROKER_TLS_KEY"),
            flag: Some("--tls-key"),
            kind: ValueKind::Text,
            help: "PEM file with the private key of tls_cert (PKCS#8, PKCS#1 or SEC1).",
        },
        ConfigKey {
            key: "known_brokers",
            env: None,
            flag: None,
            kind: ValueKind::Text,
            help: "Brokers this site trusts, as [[known_brokers]] tables with `id` (exact, with \
                   trailing slash) and `verification_url`; seeded into the database on first start. \
                   File only. Default: https://apps.wp-api.org/.",
        },
        ConfigKey {
            key: "extra_root_certs",
            env: Some("AUTHBROKER_EXTRA_ROOT_CERTS"),
            flag: None,
            kind: ValueKind::PathList,
            help: "PEM files of extra root certificates trusted when verifying connection requests \
                   (a private broker's CA). In the environment, a list separated like PATH. \
                   Default: none.",
        },
        ConfigKey {
            key: "login_failures_per_account",
            env: Some("AUTHBROKER_LOGIN_FAILURES_PER_ACCOUNT"),
            flag: None,
            kind: ValueKind::Integer,
            help: "Failed logins a login name may have before the login form refuses it (429, even with \
                   the right password), then one more per minute; successful logins cost nothing. \
                   0 for no limit. Default: 10.",
        },
        ConfigKey {
            key: "login_failures_per_ip",
            env: Some("AUTHBROKER_LOGIN_FAILURES_PER_IP"),
            flag: None,
            kind: ValueKind::Integer,
            help: "Failed logins a client IP (the TCP peer; IPv6 by /64) may have across all login \
                   names, then one more every 12 seconds. Behind a reverse proxy every client has the \
                   proxy's address: set 0 (no limit) there. Default: 50.",
        },
    ];

    /// A configuration with defaults for everything but the home URL.
    pub fn new(home_url: impl Into<String>) -> Self {
        Self {
            home_url: home_url.into(),
            name: default_name(),
            description: String::new(),
            data_dir: default_data_dir(),
            database_url: None,
            listen: default_listen(),
            tls_cert: None,
            tls_key: None,
            known_brokers: default_brokers(),
            extra_root_certs: Vec::new(),
            login_failures_per_account: default_login_failures_per_account(),
            login_failures_per_ip: default_login_failures_per_ip(),
        }
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("site.db").display()
            )
        })
    }

    /// The home URL without a trailing slash, the prefix of every URL the site emits.
    pub fn home(&self) -> &str {
        self.home_url.trim_end_matches('/')
    }

    /// Whether the site is reached over HTTPS (PLAINTEXT signatures and `Secure` cookies depend on it).
    pub fn is_https(&self) -> bool {
        self.home_url.starts_with("https://")
    }
}

impl SiteConfig {
    /// Checks that need more than one key's type.
    fn validate(&self, layers: &Layers) -> Result<(), ConfigError> {
        match url::Url::parse(&self.home_url) {
            Ok(url)
                if matches!(url.scheme(), "http" | "https")
                    && url.host().is_some()
                    && url.query().is_none()
                    && url.fragment().is_none() => {}
            Ok(_) => {
                return Err(layers.error(
                    "home_url",
                    format!(
                        "{:?} is not an http:// or https:// URL with a host and without query or fragment",
                        self.home_url
                    ),
                ));
            }
            Err(err) => {
                return Err(layers.error(
                    "home_url",
                    format!("{:?} is not a URL: {err}", self.home_url),
                ));
            }
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => Err(layers.error("tls_key", "required when tls_cert is set")),
            (None, Some(_)) => Err(layers.error("tls_cert", "required when tls_key is set")),
            _ => Ok(()),
        }?;
        for broker in &self.known_brokers {
            if url::Url::parse(&broker.verification_url).is_err() {
                return Err(layers.error(
                    "known_brokers",
                    format!(
                        "verification_url {:?} of broker {:?} is not a URL",
                        broker.verification_url, broker.id
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// `known_brokers`, converted entry by entry so that an error names the entry.
fn known_brokers(layers: &Layers) -> Result<Vec<KnownBrokerConfig>, ConfigError> {
    let Some((value, origin)) = layers.raw("known_brokers") else {
        return Ok(default_brokers());
    };
    let toml::Value::Array(entries) = value else {
        return Err(layers.error(
            "known_brokers",
            format!(
                "expected an array of tables ([[known_brokers]]), found {}",
                value.type_str()
            ),
        ));
    };
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            entry
                .clone()
                .try_into()
                .map_err(|e: toml::de::Error| ConfigError::Key {
                    key: format!("known_brokers[{i}]"),
                    message: e.to_string().trim_end().to_owned(),
                    origin: Some(origin.clone()),
                })
        })
        .collect()
}

impl ServiceConfig for SiteConfig {
    fn keys() -> &'static [ConfigKey] {
        Self::KEYS
    }

    fn build(layers: &Layers) -> Result<Self, ConfigError> {
        let config = SiteConfig {
            home_url: layers.required("home_url")?,
            name: layers.get("name")?.unwrap_or_else(default_name),
            description: layers.get("description")?.unwrap_or_default(),
            data_dir: layers.get("data_dir")?.unwrap_or_else(default_data_dir),
            database_url: layers.get("database_url")?,
            listen: layers.get("listen")?.unwrap_or_else(default_listen),
            tls_cert: layers.get("tls_cert")?,
            tls_key: layers.get("tls_key")?,
            known_brokers: known_brokers(layers)?,
            extra_root_certs: layers.get("extra_root_certs")?.unwrap_or_default(),
            login_failures_per_account: layers
                .get("login_failures_per_account")?
                .unwrap_or_else(default_login_failures_per_account),
            login_failures_per_ip: layers
                .get("login_failures_per_ip")?
                .unwrap_or_else(default_login_failures_per_ip),
        };
        config.validate(layers)?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;
    use std::path::Path;

    use super::*;

    const NO_ENV: [(&str, &str); 0] = [];

    fn file(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("site.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_minimal_file_gets_the_defaults() {
        let config = SiteConfig::from_toml("home_url = \"https://site.example/\"").unwrap();
        assert_eq!(config.home(), "https://site.example");
        assert!(config.is_https());
        assert_eq!(config.known_brokers, default_brokers());
        assert_eq!(config.login_failures_per_account, 10);
        assert_eq!(config.login_failures_per_ip, 50);
        assert!(
            config
                .database_url()
                .starts_with("sqlite://data/site/site.db")
        );
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let err = SiteConfig::from_toml("home_url = \"https://s/\"\nhome_ulr = 1").unwrap_err();
        assert!(err.contains("home_ulr"), "{err}");
    }

    #[test]
    fn a_full_file_is_read() {
        let config = SiteConfig::from_toml(
            r#"
            home_url = "https://site.example"
            name = "Example"
            description = "Just another site"
            data_dir = "/var/lib/site"
            database_url = "postgres://u:p@db/site"
            listen = "[::1]:8443"
            tls_cert = "cert.pem"
            tls_key = "key.pem"
            extra_root_certs = ["ca.pem"]
            login_failures_per_account = 5
            login_failures_per_ip = 0

            [[known_brokers]]
            id = "https://broker.example/"
            verification_url = "https://broker.example/verify"
            "#,
        )
        .unwrap();
        assert_eq!(config.name, "Example");
        assert_eq!(config.description, "Just another site");
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/site"));
        assert_eq!(config.database_url(), "postgres://u:p@db/site");
        assert_eq!(config.listen, "[::1]:8443".parse().unwrap());
        assert_eq!(config.tls_cert, Some(PathBuf::from("cert.pem")));
        assert_eq!(config.tls_key, Some(PathBuf::from("key.pem")));
        assert_eq!(config.extra_root_certs, vec![PathBuf::from("ca.pem")]);
        assert_eq!(config.login_failures_per_account, 5);
        assert_eq!(config.login_failures_per_ip, 0);
        assert_eq!(
            config.known_brokers,
            vec![KnownBrokerConfig {
                id: "https://broker.example/".into(),
                verification_url: "https://broker.example/verify".into(),
            }]
        );
    }

    #[test]
    fn the_environment_overrides_the_file_and_flags_override_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(
            dir.path(),
            "home_url = \"https://file.example\"\nname = \"File\"\nlisten = \"127.0.0.1:1000\"\ndata_dir = \"file-dir\"",
        );
        let env = [
            ("AUTHBROKER_HOME_URL", "https://env.example"),
            ("AUTHBROKER_LISTEN", "127.0.0.1:2000"),
            ("AUTHBROKER_DATA_DIR", "env-dir"),
            ("PATH", "/usr/bin"),
            ("AUTHBROKER_TEST_DATABASE_URL", "postgres://ignored/"),
        ];
        let config = SiteConfig::load(Some(&path), env).unwrap();
        assert_eq!(config.home_url, "https://env.example");
        assert_eq!(config.name, "File");
        assert_eq!(config.listen, "127.0.0.1:2000".parse().unwrap());
        assert_eq!(config.data_dir, PathBuf::from("env-dir"));
        assert_eq!(config.database_url, None);

        let config = SiteConfig::load_with_flags(
            Some(&path),
            env,
            [("listen", "127.0.0.1:3000"), ("name", "Flag")],
        )
        .unwrap();
        assert_eq!(config.home_url, "https://env.example");
        assert_eq!(config.name, "Flag");
        assert_eq!(config.listen, "127.0.0.1:3000".parse().unwrap());
        assert_eq!(config.data_dir, PathBuf::from("env-dir"));
    }

    #[test]
    fn every_key_with_a_variable_is_read_from_the_environment() {
        let roots = std::env::join_paths(["a.pem", "b.pem"]).unwrap();
        let env: Vec<(&OsStr, &OsStr)> = vec![
            (
                OsStr::new("AUTHBROKER_HOME_URL"),
                OsStr::new("http://127.0.0.1:8080/"),
            ),
            (OsStr::new("AUTHBROKER_NAME"), OsStr::new("Env")),
            (OsStr::new("AUTHBROKER_DESCRIPTION"), OsStr::new("Tagline")),
            (OsStr::new("AUTHBROKER_DATA_DIR"), OsStr::new("d")),
            (
                OsStr::new("AUTHBROKER_DATABASE_URL"),
                OsStr::new("sqlite://x.db"),
            ),
            (OsStr::new("AUTHBROKER_LISTEN"), OsStr::new("127.0.0.1:0")),
            (OsStr::new("AUTHBROKER_TLS_CERT"), OsStr::new("c.pem")),
            (OsStr::new("AUTHBROKER_TLS_KEY"), OsStr::new("k.pem")),
            (OsStr::new("AUTHBROKER_EXTRA_ROOT_CERTS"), &roots),
            (
                OsStr::new("AUTHBROKER_LOGIN_FAILURES_PER_ACCOUNT"),
                OsStr::new("3"),
            ),
            (
                OsStr::new("AUTHBROKER_LOGIN_FAILURES_PER_IP"),
                OsStr::new("7"),
            ),
        ];
        let config = SiteConfig::load(None, env).unwrap();
        assert_eq!(config.home(), "http://127.0.0.1:8080");
        assert_eq!(config.name, "Env");
        assert_eq!(config.description, "Tagline");
        assert_eq!(config.data_dir, PathBuf::from("d"));
        assert_eq!(config.database_url(), "sqlite://x.db");
        assert_eq!(config.listen.port(), 0);
        assert_eq!(config.tls_cert, Some(PathBuf::from("c.pem")));
        assert_eq!(config.tls_key, Some(PathBuf::from("k.pem")));
        assert_eq!(
            config.extra_root_certs,
            vec![PathBuf::from("a.pem"), PathBuf::from("b.pem")]
        );
        assert_eq!(config.login_failures_per_account, 3);
        assert_eq!(config.login_failures_per_ip, 7);
        for key in SiteConfig::KEYS {
            if let Some(env) = key.env {
                assert_eq!(env, format!("AUTHBROKER_{}", key.key.to_uppercase()));
            }
        }
    }

    #[test]
    fn an_empty_variable_counts_as_unset() {
        let env = [
            ("AUTHBROKER_HOME_URL", "https://site.example"),
            ("AUTHBROKER_LISTEN", ""),
        ];
        let config = SiteConfig::load(None, env).unwrap();
        assert_eq!(config.listen, default_listen());
    }

    #[test]
    fn a_missing_home_url_is_named() {
        let err = SiteConfig::load(None, NO_ENV).unwrap_err();
        assert_eq!(err.key(), Some("home_url"));
        assert!(err.to_string().starts_with("home_url: required"), "{err}");
    }

    #[test]
    fn a_bad_value_names_the_key_and_where_it_came_from() {
        let env = [
            ("AUTHBROKER_HOME_URL", "https://site.example"),
            ("AUTHBROKER_LISTEN", "localhost"),
        ];
        let err = SiteConfig::load(None, env).unwrap_err();
        assert_eq!(err.key(), Some("listen"));
        let text = err.to_string();
        assert!(text.starts_with("listen: "), "{text}");
        assert!(text.ends_with("(from AUTHBROKER_LISTEN)"), "{text}");

        let dir = tempfile::tempdir().unwrap();
        let path = file(
            dir.path(),
            "home_url = \"https://s.example\"\nlisten = 8080",
        );
        let err = SiteConfig::load(Some(&path), NO_ENV).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("listen: "), "{text}");
        assert!(text.contains("site.toml"), "{text}");

        let err = SiteConfig::load_with_flags(
            None,
            [("AUTHBROKER_HOME_URL", "https://s.example")],
            [("listen", "nope")],
        )
        .unwrap_err();
        assert!(err.to_string().ends_with("(from --listen)"), "{err}");
    }

    #[test]
    fn a_bad_home_url_is_refused() {
        for bad in [
            "site.example",
            "ftp://site.example",
            "https://s.example/?x=1",
        ] {
            let err = SiteConfig::load(None, [("AUTHBROKER_HOME_URL", bad)]).unwrap_err();
            assert_eq!(err.key(), Some("home_url"), "{bad}: {err}");
            assert!(err.to_string().contains("AUTHBROKER_HOME_URL"), "{err}");
        }
    }

    #[test]
    fn half_a_tls_pair_is_refused() {
        let err = SiteConfig::load(
            None,
            [
                ("AUTHBROKER_HOME_URL", "https://site.example"),
                ("AUTHBROKER_TLS_CERT", "cert.pem"),
            ],
        )
        .unwrap_err();
        assert_eq!(err.key(), Some("tls_key"));
    }

    #[test]
    fn a_bad_broker_entry_is_named() {
        let err = SiteConfig::from_toml(
            "home_url = \"https://s.example\"\n[[known_brokers]]\nid = \"https://b/\"\nverification_url = \"https://b/v\"\n[[known_brokers]]\nid = \"https://c/\"",
        )
        .unwrap_err();
        assert!(err.starts_with("known_brokers[1]: "), "{err}");
        assert!(err.contains("verification_url"), "{err}");
    }

    #[test]
    fn syntax_errors_and_unreadable_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(dir.path(), "home_url = ");
        let err = SiteConfig::load(Some(&path), NO_ENV).unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { .. }), "{err}");
        assert!(err.to_string().contains("site.toml"), "{err}");

        let missing = dir.path().join("missing.toml");
        let err = SiteConfig::load(Some(&missing), NO_ENV).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err}");
        assert!(err.to_string().contains("missing.toml"), "{err}");
    }

    #[test]
    fn the_help_lists_every_key() {
        let help = SiteConfig::keys_help();
        for key in SiteConfig::KEYS {
            assert!(help.contains(key.key), "{}", key.key);
            for name in key.env.iter().chain(key.flag.iter()) {
                assert!(help.contains(name), "{name}");
            }
        }
    }
}
