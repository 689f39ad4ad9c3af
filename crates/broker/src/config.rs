//! Broker configuration: a TOML file, `AUTHBROKER_*` environment overrides, then command-line flags, through
//! the loader the site uses too ([`authbroker_web::config`]). The keys are listed once, in
//! [`BrokerConfig::KEYS`], which the command-line help is generated from; every error names its key and
//! where the value came from.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use authbroker_web::config::ServiceConfig;
use authbroker_web::config::{ConfigError, ConfigKey, Layers, ValueKind};
use serde::Deserialize;

/// Everything a broker needs to run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// The broker ID sites know this broker by: a URI with a trailing slash, compared as an exact string
    /// (e.g. `https://apps.example/`).
    pub broker_id: String,
    /// The canonical public URL the broker is reached at; signatures and links use it, never `Host`.
    /// Defaults to the broker ID without its trailing slash.
    #[serde(default)]
    pub home_url: Option<String>,
    /// Name shown on pages.
    #[serde(default = "default_name")]
    pub name: String,
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    #[serde(default)]
    pub database_url: Option<String>,
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// How long R1 holds its response waiting for the site (the reference broker's 25 s).
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// Most R1 connections held at once; beyond it R1 answers 503 at once.
    #[serde(default = "default_max_held")]
    pub max_held_connections: usize,
    /// Let discovery and connection requests reach loopback addresses (tests, `demo`).
    #[serde(default)]
    pub allow_loopback_targets: bool,
    /// Let them reach private networks (a company broker for intranet sites).
    #[serde(default)]
    pub allow_private_targets: bool,
    /// Extra PEM roots trusted for outbound HTTPS (a private CA).
    #[serde(default)]
    pub extra_root_certs: Vec<PathBuf>,
    /// Rate limits on R1 (keys `rate_limit_per_app`, `rate_limit_per_server`, `rate_limit_per_ip`,
    /// `trusted_proxies`).
    #[serde(default)]
    pub rate_limits: RateLimits,
}

/// Rate limits on `POST /broker/connect`, in requests per minute (a burst of that many, then that rate);
/// `0` turns one off. A refused request gets `429` with `Retry-After`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RateLimits {
    /// Per app (broker client id), counted only once its signature verified.
    pub per_app_per_minute: u32,
    /// Per target site (the host and port of `server_url`), before any request is sent to it.
    pub per_server_per_minute: u32,
    /// Per client IP (the TCP peer; IPv6 by /64), before anything else is checked.
    pub per_ip_per_minute: u32,
    /// Reverse proxies (addresses or CIDR blocks) whose `X-Forwarded-For` names the client. Empty: the
    /// header is never trusted.
    pub trusted_proxies: Vec<String>,
    /// Most keys each limiter tracks; beyond it the buckets closest to full are forgotten.
    #[serde(skip)]
    pub max_keys: usize,
}

/// `trusted_proxies`: a TOML array of strings, or one string of comma-separated entries (the form the
/// environment gives).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ListOrText {
    List(Vec<String>),
    Text(String),
}

impl ListOrText {
    fn into_list(self) -> Vec<String> {
        match self {
            Self::List(list) => list,
            Self::Text(text) => text
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            per_app_per_minute: 60,
            per_server_per_minute: 30,
            per_ip_per_minute: 120,
            trusted_proxies: Vec::new(),
            max_keys: 100_000,
        }
    }
}

fn default_name() -> String {
    "authbroker".to_owned()
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data/broker")
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8443))
}

fn default_connect_timeout() -> u64 {
    25
}

fn default_max_held() -> usize {
    20_000
}

impl BrokerConfig {
    /// Every key of the configuration, in the order the help lists them.
    pub const KEYS: &'static [ConfigKey] = &[
        ConfigKey {
            key: "broker_id",
            env: Some("AUTHBROKER_BROKER_ID"),
            flag: Some("--broker-id"),
            kind: ValueKind::Text,
            help: "The broker ID sites know this broker by: an absolute http(s) URI ending in '/' \
                   (https://apps.example/), compared by sites as an exact string. Required.",
        },
        ConfigKey {
            key: "home_url",
            env: Some("AUTHBROKER_HOME_URL"),
            flag: Some("--home-url"),
            kind: ValueKind::Text,
            help: "The canonical public URL of the broker. R1 signatures, links and cookies are built from \
                   it, never from the Host header. Default: the broker ID.",
        },
        ConfigKey {
            key: "name",
            env: Some("AUTHBROKER_NAME"),
            flag: Some("--name"),
            kind: ValueKind::Text,
            help: "The broker's name on its pages. Default: \"authbroker\".",
        },
        ConfigKey {
            key: "data_dir",
            env: Some("AUTHBROKER_DATA_DIR"),
            flag: Some("--data-dir"),
            kind: ValueKind::Text,
            help: "Directory of the SQLite database (broker.db, created with mode 0600) when database_url \
                   is not set. Default: data/broker.",
        },
        ConfigKey {
            key: "database_url",
            env: Some("AUTHBROKER_DATABASE_URL"),
            flag: Some("--database-url"),
            kind: ValueKind::Text,
            help: "sqlite://PATH or postgres://USER:PASSWORD@HOST/DB; several broker processes may share \
                   one PostgreSQL database. Default: sqlite://{data_dir}/broker.db.",
        },
        ConfigKey {
            key: "listen",
            env: Some("AUTHBROKER_LISTEN"),
            flag: Some("--listen"),
            kind: ValueKind::Text,
            help: "Address and port to listen on; port 0 picks a free port (the address served is \
                   printed). Plain HTTP is only allowed on a loopback address. Default: 127.0.0.1:8443.",
        },
        ConfigKey {
            key: "tls_cert",
            env: Some("AUTHBROKER_TLS_CERT"),
            flag: Some("--tls-cert"),
            kind: ValueKind::Text,
            help: "PEM file with the certificate chain for HTTPS, leaf first. Set together with \
                   tls_key; without both the broker serves plain HTTP (sites send R5 over HTTPS only, \
                   so put a TLS proxy in front).",
        },
        ConfigKey {
            key: "tls_key",
            env: Some("AUTHBROKER_TLS_KEY"),
            flag: Some("--tls-key"),
            kind: ValueKind::Text,
            help: "PEM file with the private key of tls_cert (PKCS#8, PKCS#1 or SEC1).",
        },
        ConfigKey {
            key: "connect_timeout_secs",
            env: Some("AUTHBROKER_CONNECT_TIMEOUT_SECS"),
            flag: None,
            kind: ValueKind::Integer,
            help: "How long R1 holds its response waiting for the site, in seconds. Default: 25.",
        },
        ConfigKey {
            key: "max_held_connections",
            env: Some("AUTHBROKER_MAX_HELD_CONNECTIONS"),
            flag: None,
            kind: ValueKind::Integer,
            help: "Most R1 connections held at once; beyond it R1 answers 503 at once. Default: 20000.",
        },
        ConfigKey {
            key: "allow_loopback_targets",
            env: Some("AUTHBROKER_ALLOW_LOOPBACK_TARGETS"),
            flag: Some("--allow-loopback-targets"),
            kind: ValueKind::Bool,
            help: "Let discovery and connection requests reach loopback addresses (tests, a site on the \
                   same machine). Default: false.",
        },
        ConfigKey {
            key: "allow_private_targets",
            env: Some("AUTHBROKER_ALLOW_PRIVATE_TARGETS"),
            flag: None,
            kind: ValueKind::Bool,
            help: "Let them reach private networks (a company broker for intranet sites). Link-local and \
                   metadata addresses stay refused. Default: false.",
        },
        ConfigKey {
            key: "extra_root_certs",
            env: Some("AUTHBROKER_EXTRA_ROOT_CERTS"),
            flag: None,
            kind: ValueKind::PathList,
            help: "PEM files of extra root certificates trusted for outbound HTTPS (sites behind a \
                   private CA). In the environment, a list separated like PATH. Default: none.",
        },
        ConfigKey {
            key: "rate_limit_per_app",
            env: Some("AUTHBROKER_RATE_LIMIT_PER_APP"),
            flag: None,
            kind: ValueKind::Integer,
            help: "Connection requests (R1) per minute per app, counted once its signature verified; \
                   429 with Retry-After beyond it, 0 for no limit. Default: 60.",
        },
        ConfigKey {
            key: "rate_limit_per_server",
            env: Some("AUTHBROKER_RATE_LIMIT_PER_SERVER"),
            flag: None,
            kind: ValueKind::Integer,
            help: "Connection requests per minute per target site (host and port of server_url), \
                   checked before any request goes to it; 0 for no limit. Default: 30.",
        },
        ConfigKey {
            key: "rate_limit_per_ip",
            env: Some("AUTHBROKER_RATE_LIMIT_PER_IP"),
            flag: None,
            kind: ValueKind::Integer,
            help: "Connection requests per minute per client IP (the TCP peer; IPv6 by /64), checked \
                   before anything else; 0 for no limit. Default: 120.",
        },
        ConfigKey {
            key: "trusted_proxies",
            env: Some("AUTHBROKER_TRUSTED_PROXIES"),
            flag: None,
            kind: ValueKind::Text,
            help: "Reverse proxies (addresses or CIDR blocks, comma-separated) whose X-Forwarded-For \
                   names the client for the per-IP limit. Default: none (the header is never trusted).",
        },
    ];

    /// A configuration with defaults for everything but the broker ID.
    pub fn new(broker_id: impl Into<String>) -> Self {
        Self {
            broker_id: broker_id.into(),
            home_url: None,
            name: default_name(),
            data_dir: default_data_dir(),
            database_url: None,
            listen: default_listen(),
            tls_cert: None,
            tls_key: None,
            connect_timeout_secs: default_connect_timeout(),
            max_held_connections: default_max_held(),
            allow_loopback_targets: false,
            allow_private_targets: false,
            extra_root_certs: Vec::new(),
            rate_limits: RateLimits::default(),
        }
    }

    /// Checks beyond each key's type.
    fn validate(&self, layers: &Layers) -> Result<(), ConfigError> {
        if !self.broker_id.ends_with('/') || !is_web_url(&self.broker_id) {
            return Err(layers.error(
                "broker_id",
                format!(
                    "{:?} is not an http:// or https:// URI with a host ending in '/'",
                    self.broker_id
                ),
            ));
        }
        if let Some(home) = &self.home_url {
            if !is_web_url(home) {
                return Err(layers.error(
                    "home_url",
                    format!(
                        "{home:?} is not an http:// or https:// URL with a host and without query or fragment"
                    ),
                ));
            }
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => Err(layers.error("tls_key", "required when tls_cert is set")),
            (None, Some(_)) => Err(layers.error("tls_cert", "required when tls_key is set")),
            _ => Ok(()),
        }?;
        if self.connect_timeout_secs == 0 {
            return Err(layers.error("connect_timeout_secs", "must be at least 1"));
        }
        if self.max_held_connections == 0 {
            return Err(layers.error("max_held_connections", "must be at least 1"));
        }
        Ok(())
    }

    /// Whether the broker is reached over HTTPS (`Secure` cookies, PLAINTEXT signatures depend on it).
    pub fn is_https(&self) -> bool {
        self.home().starts_with("https://")
    }

    /// The home URL without a trailing slash.
    pub fn home(&self) -> &str {
        self.home_url
            .as_deref()
            .unwrap_or(&self.broker_id)
            .trim_end_matches('/')
    }

    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("broker.db").display()
            )
        })
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.connect_timeout_secs)
    }
}

fn rate_limits(layers: &Layers) -> Result<RateLimits, ConfigError> {
    let defaults = RateLimits::default();
    let limits = RateLimits {
        per_app_per_minute: layers
            .get("rate_limit_per_app")?
            .unwrap_or(defaults.per_app_per_minute),
        per_server_per_minute: layers
            .get("rate_limit_per_server")?
            .unwrap_or(defaults.per_server_per_minute),
        per_ip_per_minute: layers
            .get("rate_limit_per_ip")?
            .unwrap_or(defaults.per_ip_per_minute),
        trusted_proxies: layers
            .get::<ListOrText>("trusted_proxies")?
            .map(ListOrText::into_list)
            .unwrap_or_default(),
        max_keys: defaults.max_keys,
    };
    crate::limits::Limits::new(&limits).map_err(|e| layers.error("trusted_proxies", e))?;
    Ok(limits)
}

fn is_web_url(text: &str) -> bool {
    url::Url::parse(text).is_ok_and(|url| {
        matches!(url.scheme(), "http" | "https")
            && url.host().is_some()
            && url.query().is_none()
            && url.fragment().is_none()
    })
}

impl ServiceConfig for BrokerConfig {
    fn keys() -> &'static [ConfigKey] {
        Self::KEYS
    }

    fn build(layers: &Layers) -> Result<Self, ConfigError> {
        let config = Self {
            broker_id: layers.required("broker_id")?,
            home_url: layers.get("home_url")?,
            name: layers.get("name")?.unwrap_or_else(default_name),
            data_dir: layers.get("data_dir")?.unwrap_or_else(default_data_dir),
            database_url: layers.get("database_url")?,
            listen: layers.get("listen")?.unwrap_or_else(default_listen),
            tls_cert: layers.get("tls_cert")?,
            tls_key: layers.get("tls_key")?,
            connect_timeout_secs: layers
                .get("connect_timeout_secs")?
                .unwrap_or_else(default_connect_timeout),
            max_held_connections: layers
                .get("max_held_connections")?
                .unwrap_or_else(default_max_held),
            allow_loopback_targets: layers.get("allow_loopback_targets")?.unwrap_or(false),
            allow_private_targets: layers.get("allow_private_targets")?.unwrap_or(false),
            extra_root_certs: layers.get("extra_root_certs")?.unwrap_or_default(),
            rate_limits: rate_limits(layers)?,
        };
        config.validate(layers)?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_defaults_to_the_broker_id() {
        let config = BrokerConfig::from_toml("broker_id = \"https://apps.example/\"").unwrap();
        assert_eq!(config.home(), "https://apps.example");
        assert_eq!(config.connect_timeout(), Duration::from_secs(25));
        assert!(!config.allow_loopback_targets);
    }

    #[test]
    fn rate_limits_have_defaults_and_can_be_set() {
        let config = BrokerConfig::from_toml("broker_id = \"https://a/\"").unwrap();
        assert_eq!(config.rate_limits.per_app_per_minute, 60);
        assert_eq!(config.rate_limits.per_server_per_minute, 30);
        assert_eq!(config.rate_limits.per_ip_per_minute, 120);
        assert!(config.rate_limits.trusted_proxies.is_empty());
        let config = BrokerConfig::from_toml(
            "broker_id = \"https://a/\"\nrate_limit_per_ip = 0\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]",
        )
        .unwrap();
        assert_eq!(config.rate_limits.per_ip_per_minute, 0);
        assert_eq!(config.rate_limits.per_app_per_minute, 60);
        assert_eq!(config.rate_limits.trusted_proxies, ["10.0.0.0/8", "::1"]);
        let config = BrokerConfig::load(
            None,
            [
                ("AUTHBROKER_BROKER_ID", "https://a/"),
                ("AUTHBROKER_RATE_LIMIT_PER_APP", "5"),
                ("AUTHBROKER_RATE_LIMIT_PER_SERVER", "6"),
                ("AUTHBROKER_TRUSTED_PROXIES", "10.0.0.0/8, 2001:db8::/32"),
            ],
        )
        .unwrap();
        assert_eq!(config.rate_limits.per_app_per_minute, 5);
        assert_eq!(config.rate_limits.per_server_per_minute, 6);
        assert_eq!(
            config.rate_limits.trusted_proxies,
            ["10.0.0.0/8", "2001:db8::/32"]
        );
        let err = BrokerConfig::load(
            None,
            [
                ("AUTHBROKER_BROKER_ID", "https://a/"),
                ("AUTHBROKER_TRUSTED_PROXIES", "proxy.internal"),
            ],
        )
        .unwrap_err();
        assert_eq!(err.key(), Some("trusted_proxies"));
        let err = BrokerConfig::from_toml("broker_id = \"https://a/\"\nrate_limit_per_app = -1")
            .unwrap_err();
        assert!(err.starts_with("rate_limit_per_app"), "{err}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = BrokerConfig::from_toml("broker_id = \"https://a/\"\nbrokerid = 1").unwrap_err();
        assert!(err.starts_with("brokerid: unknown key"), "{err}");
    }

    const NO_ENV: [(&str, &str); 0] = [];

    #[test]
    fn file_then_environment_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("broker.toml");
        std::fs::write(
            &path,
            "broker_id = \"https://file.example/\"\nname = \"File\"\nconnect_timeout_secs = 5\nallow_loopback_targets = true",
        )
        .unwrap();
        let env = [
            ("AUTHBROKER_BROKER_ID", "https://env.example/"),
            ("AUTHBROKER_MAX_HELD_CONNECTIONS", "7"),
            ("AUTHBROKER_ALLOW_LOOPBACK_TARGETS", "false"),
            ("AUTHBROKER_TEST_DATABASE_URL", "postgres://ignored/"),
        ];
        let config = BrokerConfig::load(Some(&path), env).unwrap();
        assert_eq!(config.broker_id, "https://env.example/");
        assert_eq!(config.name, "File");
        assert_eq!(config.connect_timeout_secs, 5);
        assert_eq!(config.max_held_connections, 7);
        assert!(!config.allow_loopback_targets);
        assert_eq!(config.database_url, None);

        let config = BrokerConfig::load_with_flags(
            Some(&path),
            env,
            [
                ("allow_loopback_targets", "true"),
                ("home_url", "https://public.example"),
                ("listen", "127.0.0.1:0"),
            ],
        )
        .unwrap();
        assert!(config.allow_loopback_targets);
        assert_eq!(config.home(), "https://public.example");
        assert!(config.is_https());
        assert_eq!(config.listen.port(), 0);
    }

    #[test]
    fn every_variable_is_named_after_its_key() {
        for key in BrokerConfig::KEYS {
            if let Some(env) = key.env {
                assert_eq!(env, format!("AUTHBROKER_{}", key.key.to_uppercase()));
            }
        }
        let help = BrokerConfig::keys_help();
        for key in BrokerConfig::KEYS {
            assert!(help.contains(key.key), "{}", key.key);
        }
    }

    #[test]
    fn errors_name_the_key_and_where_it_came_from() {
        let err = BrokerConfig::load(None, NO_ENV).unwrap_err();
        assert_eq!(err.key(), Some("broker_id"));
        assert!(err.to_string().contains("--broker-id"), "{err}");

        let err = BrokerConfig::load(None, [("AUTHBROKER_BROKER_ID", "https://apps.example")])
            .unwrap_err();
        assert_eq!(err.key(), Some("broker_id"));
        assert!(
            err.to_string().ends_with("(from AUTHBROKER_BROKER_ID)"),
            "{err}"
        );

        let err = BrokerConfig::load_with_flags(
            None,
            [("AUTHBROKER_BROKER_ID", "https://apps.example/")],
            [("listen", "nowhere")],
        )
        .unwrap_err();
        assert_eq!(err.key(), Some("listen"));
        assert!(err.to_string().ends_with("(from --listen)"), "{err}");

        let err = BrokerConfig::load(
            None,
            [
                ("AUTHBROKER_BROKER_ID", "https://apps.example/"),
                ("AUTHBROKER_CONNECT_TIMEOUT_SECS", "soon"),
            ],
        )
        .unwrap_err();
        assert_eq!(err.key(), Some("connect_timeout_secs"));

        let err = BrokerConfig::load(
            None,
            [
                ("AUTHBROKER_BROKER_ID", "https://apps.example/"),
                ("AUTHBROKER_TLS_KEY", "key.pem"),
            ],
        )
        .unwrap_err();
        assert_eq!(err.key(), Some("tls_cert"));
    }
}
