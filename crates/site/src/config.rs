//! Site configuration: a TOML file, `AUTHBROKER_*` environment overrides, then command-line flags.

use std::net::SocketAddr;
use std::path::PathBuf;

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

fn default_brokers() -> Vec<KnownBrokerConfig> {
    vec![KnownBrokerConfig {
        id: "https://apps.wp-api.org/".to_owned(),
        verification_url: "https://apps.wp-api.org/broker/confirm/".to_owned(),
    }]
}

impl SiteConfig {
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
        }
    }

    /// Parses a TOML document.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml_from_str(text)
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

fn toml_from_str(text: &str) -> Result<SiteConfig, String> {
    toml::from_str(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_file_gets_the_defaults() {
        let config = SiteConfig::from_toml("home_url = \"https://site.example/\"").unwrap();
        assert_eq!(config.home(), "https://site.example");
        assert!(config.is_https());
        assert_eq!(config.known_brokers, default_brokers());
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
}
