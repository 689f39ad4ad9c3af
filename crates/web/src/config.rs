//! The configuration mechanism both services share: a TOML file, `AUTHBROKER_*` environment overrides, then
//! command-line flags, each overriding the one before.
//!
//! A service lists its keys once (a `&'static [ConfigKey]`, which its command-line help is generated from),
//! gathers the layers into [`Layers`], then converts key by key into its own configuration type, so an
//! error always names the key and the place to fix it
//! (`listen: invalid socket address syntax (from AUTHBROKER_LISTEN)`).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

/// One configuration key: its name in the TOML file, its environment variable and command-line flag (where
/// it has them), how a value written as text (environment, flag) is read, and what it means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigKey {
    /// The key in the TOML file, also the name errors use.
    pub key: &'static str,
    /// The `AUTHBROKER_*` environment variable that overrides it.
    pub env: Option<&'static str>,
    /// The command-line flag that overrides the environment.
    pub flag: Option<&'static str>,
    /// How a value from the environment or a flag is read.
    pub kind: ValueKind,
    /// One paragraph of help.
    pub help: &'static str,
}

/// How a value given as text (an environment variable, a flag) becomes a TOML value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    /// A string (URLs, paths, addresses: the key's type parses it).
    Text,
    /// A list of paths separated like `PATH`.
    PathList,
    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`).
    Bool,
    /// A decimal integer.
    Integer,
}

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A TOML file (or a TOML string, when there is no path).
    File(Option<PathBuf>),
    /// An environment variable.
    Env(&'static str),
    /// A command-line flag.
    Flag(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(Some(path)) => write!(f, "{}", path.display()),
            Self::File(None) => f.write_str("the TOML document"),
            Self::Env(name) => f.write_str(name),
            Self::Flag(flag) => f.write_str(flag),
        }
    }
}

/// Why a configuration could not be loaded. Every variant says which key or file to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read the configuration file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML.
    #[error("{origin}: {message}")]
    Syntax { origin: Origin, message: String },
    /// One key is missing, unknown or has an unusable value.
    #[error("{key}: {message}{}", from_suffix(.origin))]
    Key {
        key: String,
        message: String,
        origin: Option<Origin>,
    },
}

fn from_suffix(origin: &Option<Origin>) -> String {
    origin
        .as_ref()
        .map(|origin| format!(" (from {origin})"))
        .unwrap_or_default()
}

impl ConfigError {
    /// The key at fault, when the error is about one key.
    pub fn key(&self) -> Option<&str> {
        match self {
            Self::Key { key, .. } => Some(key),
            _ => None,
        }
    }
}

/// The values gathered so far: per key, the last value set and where it came from.
#[derive(Debug)]
pub struct Layers {
    keys: &'static [ConfigKey],
    values: BTreeMap<&'static str, (toml::Value, Origin)>,
}

impl Layers {
    /// No values yet, for a service whose keys are `keys`.
    pub fn new(keys: &'static [ConfigKey]) -> Self {
        Self {
            keys,
            values: BTreeMap::new(),
        }
    }

    /// The TOML file at `path` (if any), then the `AUTHBROKER_*` variables of `env`, then `flags`.
    ///
    /// `env` is the environment as name/value pairs (`std::env::vars_os()` in a program, a literal list in
    /// tests). Variables that are not configuration keys are ignored, as are empty values (an empty variable
    /// counts as unset). `flags` are pairs of a key (`"listen"`) and its value written as in the environment.
    pub fn load<I, K, V, F, S>(
        keys: &'static [ConfigKey],
        path: Option<&Path>,
        env: I,
        flags: F,
    ) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
        F: IntoIterator<Item = (&'static str, S)>,
        S: Into<String>,
    {
        let mut layers = Self::new(keys);
        if let Some(path) = path {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_owned(),
                source,
            })?;
            layers.toml(&text, Origin::File(Some(path.to_owned())))?;
        }
        layers.env(env)?;
        layers.flags(flags)?;
        Ok(layers)
    }

    fn key_named(&self, name: &str) -> Option<&'static ConfigKey> {
        self.keys.iter().find(|k| k.key == name)
    }

    /// A TOML document on top of what is there; unknown keys are refused by name.
    pub fn toml(&mut self, text: &str, origin: Origin) -> Result<(), ConfigError> {
        let table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ConfigError::Syntax {
                    origin: origin.clone(),
                    message: e.to_string().trim_end().to_owned(),
                })?;
        for (name, value) in table {
            let Some(key) = self.key_named(&name) else {
                return Err(ConfigError::Key {
                    key: name,
                    message: "unknown key".to_owned(),
                    origin: Some(origin),
                });
            };
            self.values.insert(key.key, (value, origin.clone()));
        }
        Ok(())
    }

    /// The keys' environment variables among `env` on top of what is there.
    pub fn env<I, K, V>(&mut self, env: I) -> Result<(), ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for (name, value) in env {
            let Some(key) = self
                .keys
                .iter()
                .find(|k| k.env.is_some_and(|env| OsStr::new(env) == name.as_ref()))
            else {
                continue;
            };
            let Some(env_name) = key.env else { continue };
            let value = value.as_ref();
            if value.is_empty() {
                continue;
            }
            let origin = Origin::Env(env_name);
            let value = text_value(key, value, &origin)?;
            self.values.insert(key.key, (value, origin));
        }
        Ok(())
    }

    /// Command-line values on top of what is there: pairs of a key and its value as text.
    pub fn flags<F, S>(&mut self, flags: F) -> Result<(), ConfigError>
    where
        F: IntoIterator<Item = (&'static str, S)>,
        S: Into<String>,
    {
        for (name, value) in flags {
            let key = self.key_named(name).ok_or_else(|| ConfigError::Key {
                key: name.to_owned(),
                message: "unknown key".to_owned(),
                origin: None,
            })?;
            let origin = Origin::Flag(key.flag.unwrap_or(key.key));
            let value = text_value(key, OsStr::new(&value.into()), &origin)?;
            self.values.insert(key.key, (value, origin));
        }
        Ok(())
    }

    /// The value of `key` converted to `T`, if set.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, ConfigError> {
        let Some((value, origin)) = self.values.get(key) else {
            return Ok(None);
        };
        value
            .clone()
            .try_into()
            .map(Some)
            .map_err(|e: toml::de::Error| ConfigError::Key {
                key: key.to_owned(),
                message: e.to_string().trim_end().to_owned(),
                origin: Some(origin.clone()),
            })
    }

    /// The value of a key that has no default; the error says every way to set it.
    pub fn required<T: DeserializeOwned>(&self, key: &str) -> Result<T, ConfigError> {
        self.get(key)?.ok_or_else(|| {
            let mut ways = vec!["the configuration file".to_owned()];
            if let Some(spec) = self.key_named(key) {
                ways.extend(spec.env.map(str::to_owned));
                ways.extend(spec.flag.map(str::to_owned));
            }
            let ways = match ways.split_last() {
                Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
                _ => ways.join(""),
            };
            ConfigError::Key {
                key: key.to_owned(),
                message: format!("required: set it in {ways}"),
                origin: None,
            }
        })
    }

    /// The raw value of `key` and where it came from (for keys converted entry by entry).
    pub fn raw(&self, key: &str) -> Option<&(toml::Value, Origin)> {
        self.values.get(key)
    }

    /// Where `key` was set, if it was.
    pub fn origin(&self, key: &str) -> Option<Origin> {
        self.values.get(key).map(|(_, origin)| origin.clone())
    }

    /// An error about `key`, naming where its value came from (for checks across keys).
    pub fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Key {
            key: key.to_owned(),
            message: message.into(),
            origin: self.origin(key),
        }
    }
}

/// A value written as text, read as its key's kind says.
fn text_value(key: &ConfigKey, value: &OsStr, origin: &Origin) -> Result<toml::Value, ConfigError> {
    let invalid = |message: String| ConfigError::Key {
        key: key.key.to_owned(),
        message,
        origin: Some(origin.clone()),
    };
    Ok(match key.kind {
        ValueKind::PathList => {
            let mut paths = Vec::new();
            for path in std::env::split_paths(value) {
                paths.push(toml::Value::String(utf8(key, &path, origin)?));
            }
            toml::Value::Array(paths)
        }
        ValueKind::Text => toml::Value::String(utf8(key, value, origin)?),
        ValueKind::Bool => {
            let text = utf8(key, value, origin)?;
            match text.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => toml::Value::Boolean(true),
                "false" | "0" | "no" | "off" => toml::Value::Boolean(false),
                _ => return Err(invalid(format!("{text:?} is not true or false"))),
            }
        }
        ValueKind::Integer => {
            let text = utf8(key, value, origin)?;
            toml::Value::Integer(
                text.trim()
                    .parse()
                    .map_err(|_| invalid(format!("{text:?} is not an integer")))?,
            )
        }
    })
}

fn utf8(key: &ConfigKey, value: impl AsRef<OsStr>, origin: &Origin) -> Result<String, ConfigError> {
    value
        .as_ref()
        .to_str()
        .map(str::to_owned)
        .ok_or_else(|| ConfigError::Key {
            key: key.key.to_owned(),
            message: "not valid UTF-8".to_owned(),
            origin: Some(origin.clone()),
        })
}

/// A service's configuration type: its keys and how it is built from [`Layers`]; loading is shared.
pub trait ServiceConfig: Sized {
    /// The service's keys, listed once.
    fn keys() -> &'static [ConfigKey];

    /// Converts the gathered layers key by key, then checks what no single key can.
    fn build(layers: &Layers) -> Result<Self, ConfigError>;

    /// Parses a TOML document.
    fn from_toml(text: &str) -> Result<Self, String> {
        let mut layers = Layers::new(Self::keys());
        layers
            .toml(text, Origin::File(None))
            .map_err(|e| e.to_string())?;
        Self::build(&layers).map_err(|e| e.to_string())
    }

    /// The TOML file at `path` (if any), then the `AUTHBROKER_*` variables of `env` on top.
    ///
    /// `env` is the environment as name/value pairs (`std::env::vars_os()` in a program, a literal list in
    /// tests). Variables that are not configuration keys are ignored, as are empty values (an empty
    /// variable counts as unset).
    fn load<I, K, V>(path: Option<&Path>, env: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        Self::load_with_flags(path, env, std::iter::empty::<(&str, String)>())
    }

    /// Like [`ServiceConfig::load`], with command-line values on top: pairs of a key (`"listen"`) and its
    /// value as it would be written in the environment.
    fn load_with_flags<I, K, V, F, S>(
        path: Option<&Path>,
        env: I,
        flags: F,
    ) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
        F: IntoIterator<Item = (&'static str, S)>,
        S: Into<String>,
    {
        Self::build(&Layers::load(Self::keys(), path, env, flags)?)
    }

    /// The keys with their environment variables and flags, as help text for the command line.
    fn keys_help() -> String {
        keys_help(Self::keys())
    }
}

/// The keys with their environment variables and flags, as help text for the command line.
pub fn keys_help(keys: &[ConfigKey]) -> String {
    let mut help = String::from(
        "Configuration: a TOML file (--config), then AUTHBROKER_* environment variables, then flags; \
         each overrides the one before. An empty variable counts as unset.\n\nKeys:\n",
    );
    for key in keys {
        let mut names = Vec::new();
        names.extend(key.env);
        names.extend(key.flag);
        help.push_str(&format!("  {}", key.key));
        if !names.is_empty() {
            help.push_str(&format!("  [{}]", names.join(", ")));
        }
        help.push('\n');
        for line in wrap(key.help, 72) {
            help.push_str("      ");
            help.push_str(&line);
            help.push('\n');
        }
    }
    help
}

/// Wraps one paragraph at `width` columns.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: &[ConfigKey] = &[
        ConfigKey {
            key: "url",
            env: Some("AUTHBROKER_URL"),
            flag: Some("--url"),
            kind: ValueKind::Text,
            help: "A URL.",
        },
        ConfigKey {
            key: "on",
            env: Some("AUTHBROKER_ON"),
            flag: Some("--on"),
            kind: ValueKind::Bool,
            help: "A switch.",
        },
        ConfigKey {
            key: "count",
            env: Some("AUTHBROKER_COUNT"),
            flag: None,
            kind: ValueKind::Integer,
            help: "A number.",
        },
        ConfigKey {
            key: "roots",
            env: Some("AUTHBROKER_ROOTS"),
            flag: None,
            kind: ValueKind::PathList,
            help: "Paths.",
        },
    ];

    const NO_FLAGS: [(&str, &str); 0] = [];

    #[test]
    fn text_values_become_their_kind() {
        let roots = std::env::join_paths(["a.pem", "b.pem"]).unwrap();
        let env: Vec<(&OsStr, &OsStr)> = vec![
            (OsStr::new("AUTHBROKER_ON"), OsStr::new("yes")),
            (OsStr::new("AUTHBROKER_COUNT"), OsStr::new(" 42 ")),
            (OsStr::new("AUTHBROKER_ROOTS"), &roots),
            (OsStr::new("AUTHBROKER_URL"), OsStr::new("")),
        ];
        let layers = Layers::load(KEYS, None, env, NO_FLAGS).unwrap();
        assert_eq!(layers.get::<bool>("on").unwrap(), Some(true));
        assert_eq!(layers.get::<u64>("count").unwrap(), Some(42));
        assert_eq!(
            layers.get::<Vec<PathBuf>>("roots").unwrap(),
            Some(vec![PathBuf::from("a.pem"), PathBuf::from("b.pem")])
        );
        assert_eq!(layers.get::<String>("url").unwrap(), None);
        let layers = Layers::load(
            KEYS,
            None,
            [("AUTHBROKER_ON", "true")],
            [("on", "false"), ("url", "https://x/")],
        )
        .unwrap();
        assert_eq!(layers.get::<bool>("on").unwrap(), Some(false));
        assert_eq!(layers.origin("on"), Some(Origin::Flag("--on")));
    }

    #[test]
    fn bad_values_name_the_key_and_the_place() {
        let err = Layers::load(KEYS, None, [("AUTHBROKER_ON", "maybe")], NO_FLAGS).unwrap_err();
        assert_eq!(err.key(), Some("on"));
        assert!(err.to_string().ends_with("(from AUTHBROKER_ON)"), "{err}");
        let err = Layers::load(KEYS, None, [("AUTHBROKER_COUNT", "x")], NO_FLAGS).unwrap_err();
        assert_eq!(err.key(), Some("count"));
        let mut layers = Layers::new(KEYS);
        layers.toml("count = \"many\"", Origin::File(None)).unwrap();
        let err = layers.get::<u64>("count").unwrap_err();
        assert!(err.to_string().starts_with("count: "), "{err}");
        assert!(
            err.to_string().ends_with("(from the TOML document)"),
            "{err}"
        );
        let err = layers.toml("cuont = 1", Origin::File(None)).unwrap_err();
        assert_eq!(err.key(), Some("cuont"));
        let err = Layers::load(KEYS, None, [("X", "y")], [("nope", "1")]).unwrap_err();
        assert_eq!(err.key(), Some("nope"));
    }

    #[test]
    fn a_required_key_says_how_to_set_it() {
        let layers = Layers::new(KEYS);
        let err = layers.required::<String>("url").unwrap_err();
        assert_eq!(
            err.to_string(),
            "url: required: set it in the configuration file, AUTHBROKER_URL or --url"
        );
    }

    #[test]
    fn the_help_lists_every_key() {
        let help = keys_help(KEYS);
        for key in KEYS {
            assert!(help.contains(key.key), "{}", key.key);
        }
        assert!(help.contains("[AUTHBROKER_URL, --url]"), "{help}");
    }
}
