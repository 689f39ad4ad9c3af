//! The token store: what the CLI remembers about each connected site, so that `authbroker sites`, `whoami`,
//! `post` and `disconnect` work later without asking again.
//!
//! Two files live in one directory (the XDG config dir by default, see [`default_dir`]):
//!
//! - `connections.json` — the non-secret metadata of every connection (site, API root, names, consumer key,
//!   token key, when) and, per entry, which backend holds its secrets. Mode 0600.
//! - `credentials.json` — a map site → [`Secrets`] for the connections whose secrets are not in the OS keyring.
//!   Mode 0600; an existing file readable by group or others is refused. Deleted when it becomes empty.
//!
//! Secrets go to the OS keyring (service `authbroker`, user = the site key, value = the JSON of [`Secrets`])
//! when [`KeyringPolicy::Auto`] is in force and the keyring accepts them; otherwise to `credentials.json`.
//! Both files are written atomically (a temporary file in the same directory, then a rename).
//!
//! All methods are synchronous and may block (files, D-Bus). From async code call them through
//! `tokio::task::spawn_blocking`; calling them directly on a runtime thread works but blocks that thread.
//! One `TokenStore` serialises its own read-modify-write cycles; two processes saving at the same instant can
//! still lose one of the updates (the CLI runs one command at a time).

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// The keyring service name under which secrets are stored.
const KEYRING_SERVICE: &str = "authbroker";
const CONNECTIONS_FILE: &str = "connections.json";
const CREDENTIALS_FILE: &str = "credentials.json";
/// Format version of `connections.json`.
const CONNECTIONS_VERSION: u32 = 1;
/// Environment variable that overrides [`default_dir`].
pub const CONFIG_DIR_ENV: &str = "AUTHBROKER_CONFIG_DIR";

/// One connected site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    /// The site's home URL, normalised (e.g. `https://blog.example`), no trailing slash. The key.
    pub site: String,
    /// The REST API root, e.g. `https://blog.example/wp-json/`.
    pub api_root: String,
    /// The site name from its REST index.
    pub name: String,
    /// Display name of the approving user (may be empty).
    pub user: String,
    /// The broker ID used; `None` for direct credentials.
    pub broker: Option<String>,
    /// The OAuth 1.0a consumer key.
    pub consumer_key: String,
    /// The OAuth 1.0a access token key.
    pub token: String,
    /// When the connection was made, unix seconds.
    pub connected_at: i64,
    /// The secret parts.
    pub secrets: Secrets,
}

/// The secret parts of a connection; kept in the OS keyring when one is available, else in a 0600 file.
/// `Debug` shows neither value.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secrets {
    /// The OAuth 1.0a consumer secret.
    pub consumer_secret: String,
    /// The OAuth 1.0a access token secret.
    pub token_secret: String,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("consumer_secret", &"<redacted>")
            .field("token_secret", &"<redacted>")
            .finish()
    }
}

/// Where the secrets of a connection are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretBackend {
    /// The OS keyring (Secret Service, Keychain, Credential Manager).
    Keyring,
    /// `credentials.json` in the store directory (mode 0600).
    File,
}

/// Whether the store may use the OS keyring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyringPolicy {
    /// Try the OS keyring; fall back to `credentials.json` when it fails.
    #[default]
    Auto,
    /// Never touch the OS keyring: secrets go to `credentials.json` only. Connections saved earlier with their
    /// secrets in the keyring cannot be read or removed under this policy ([`StoreError::KeyringDisabled`]).
    Never,
}

/// Errors of the token store. Every message says what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store path exists but is not a directory.
    #[error(
        "{path} is not a directory; point AUTHBROKER_CONFIG_DIR at a directory, or move the file away"
    )]
    NotADirectory {
        /// The configured store directory.
        path: PathBuf,
    },
    /// The store directory could not be created.
    #[error(
        "cannot create the directory {path}: {source}; create it yourself (mode 700) or set AUTHBROKER_CONFIG_DIR"
    )]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A store file could not be read.
    #[error("cannot read {path}: {source}; check that it belongs to you and is readable")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A store file could not be written.
    #[error(
        "cannot write {path}: {source}; check that its directory is writable and the disk is not full"
    )]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A store file is not valid JSON of the expected shape.
    #[error(
        "{path} is damaged ({source}); repair it, or delete it and run `authbroker connect <site>` again for each site"
    )]
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// `connections.json` was written by a newer version.
    #[error(
        "{path} has format version {version}, newer than this authbroker understands; upgrade authbroker"
    )]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found.
        version: u32,
    },
    /// The credentials file can be read by group or others (Unix).
    #[error(
        "{path} is accessible to other users (mode {mode:03o}); run `chmod 600 {path}` and try again"
    )]
    PermissionsTooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The secrets of a known connection are gone (keyring entry deleted, line removed from the file).
    #[error("the stored secrets for {site} are missing; run `authbroker connect {site}` again")]
    MissingSecret {
        /// The site key.
        site: String,
    },
    /// The secrets of a connection are there but unreadable.
    #[error(
        "the stored secrets for {site} are unreadable ({reason}); run `authbroker connect {site}` again"
    )]
    BadSecret {
        /// The site key.
        site: String,
        /// What is wrong.
        reason: String,
    },
    /// The OS keyring failed while reading or deleting a secret it holds.
    #[error(
        "the OS keyring failed for {site}: {message}; unlock the keyring and retry, or run `authbroker connect {site}` again"
    )]
    Keyring {
        /// The site key.
        site: String,
        /// The keyring's error.
        message: String,
    },
    /// The secrets are in the OS keyring but the store was opened with [`KeyringPolicy::Never`].
    #[error(
        "the secrets for {site} are in the OS keyring, which is disabled (AUTHBROKER_KEYRING=never); enable it, or run `authbroker connect {site}` again"
    )]
    KeyringDisabled {
        /// The site key.
        site: String,
    },
    /// What the user typed matches several connections.
    #[error("several connected sites match: {}; give the full site URL", .0.join(", "))]
    Ambiguous(Vec<String>),
    /// The connection to save has no usable site key.
    #[error("invalid site {0:?}: expected a URL such as https://blog.example")]
    InvalidSite(String),
}

/// The directory for the store files: `$AUTHBROKER_CONFIG_DIR` if set and non-empty, else the XDG config dir
/// (`~/.config/authbroker` on Linux). `None` when no home directory is known.
pub fn default_dir() -> Option<PathBuf> {
    dir_from(std::env::var_os(CONFIG_DIR_ENV))
}

fn dir_from(env: Option<std::ffi::OsString>) -> Option<PathBuf> {
    match env {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => directories::ProjectDirs::from("", "", "authbroker")
            .map(|p| p.config_dir().to_path_buf()),
    }
}

/// A credential store keyed by site. Errors are strings: the store only shows them or falls back.
pub(crate) trait Keyring: Send + Sync + fmt::Debug {
    /// Store `secret` for `site`, replacing any previous value.
    fn set(&self, site: &str, secret: &str) -> Result<(), String>;
    /// The value stored for `site`, `None` when there is none.
    fn get(&self, site: &str) -> Result<Option<String>, String>;
    /// Delete the value for `site`; `Ok(false)` when there was none.
    fn delete(&self, site: &str) -> Result<bool, String>;
}

/// The OS keyring through the `keyring` crate.
#[derive(Debug)]
struct OsKeyring;

impl OsKeyring {
    /// Runs a keyring operation. On Linux the Secret Service client blocks on a runtime of its own, which
    /// panics on a thread that is already inside a tokio runtime; there the operation runs on a short-lived
    /// thread instead. A panic becomes an error, so the store falls back to the file.
    fn run<T: Send>(op: impl FnOnce() -> Result<T, String> + Send) -> Result<T, String> {
        let joined = if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| s.spawn(op).join())
        } else {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(op))
        };
        joined.unwrap_or_else(|_| Err("the keyring library panicked".to_owned()))
    }
}

#[cfg(any(target_os = "linux", target_os = "macos", target_os = "windows"))]
impl Keyring for OsKeyring {
    fn set(&self, site: &str, secret: &str) -> Result<(), String> {
        Self::run(|| {
            keyring::Entry::new(KEYRING_SERVICE, site)
                .and_then(|e| e.set_password(secret))
                .map_err(|e| e.to_string())
        })
    }

    fn get(&self, site: &str) -> Result<Option<String>, String> {
        Self::run(|| {
            match keyring::Entry::new(KEYRING_SERVICE, site).and_then(|e| e.get_password()) {
                Ok(v) => Ok(Some(v)),
                Err(keyring::Error::NoEntry) => Ok(None),
                Err(e) => Err(e.to_string()),
            }
        })
    }

    fn delete(&self, site: &str) -> Result<bool, String> {
        Self::run(|| {
            match keyring::Entry::new(KEYRING_SERVICE, site).and_then(|e| e.delete_credential()) {
                Ok(()) => Ok(true),
                Err(keyring::Error::NoEntry) => Ok(false),
                Err(e) => Err(e.to_string()),
            }
        })
    }
}

/// Elsewhere the `keyring` crate has no persistent store compiled in (only its in-memory mock), so the keyring
/// counts as unavailable and secrets go to the file.
#[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "windows")))]
impl Keyring for OsKeyring {
    fn set(&self, _site: &str, _secret: &str) -> Result<(), String> {
        Err("no OS keyring support on this platform".to_owned())
    }

    fn get(&self, _site: &str) -> Result<Option<String>, String> {
        Err("no OS keyring support on this platform".to_owned())
    }

    fn delete(&self, _site: &str) -> Result<bool, String> {
        Ok(false)
    }
}

/// An entry of `connections.json`: a [`Connection`] without its secrets, plus where they are.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredConnection {
    site: String,
    api_root: String,
    name: String,
    user: String,
    broker: Option<String>,
    consumer_key: String,
    token: String,
    connected_at: i64,
    secrets_in: SecretBackend,
}

impl StoredConnection {
    fn new(c: &Connection, secrets_in: SecretBackend) -> Self {
        StoredConnection {
            site: c.site.clone(),
            api_root: c.api_root.clone(),
            name: c.name.clone(),
            user: c.user.clone(),
            broker: c.broker.clone(),
            consumer_key: c.consumer_key.clone(),
            token: c.token.clone(),
            connected_at: c.connected_at,
            secrets_in,
        }
    }

    fn with_secrets(self, secrets: Secrets) -> Connection {
        Connection {
            site: self.site,
            api_root: self.api_root,
            name: self.name,
            user: self.user,
            broker: self.broker,
            consumer_key: self.consumer_key,
            token: self.token,
            connected_at: self.connected_at,
            secrets,
        }
    }
}

/// The shape of `connections.json`.
#[derive(Debug, Serialize, Deserialize)]
struct ConnectionsFile {
    version: u32,
    connections: Vec<StoredConnection>,
}

type Metadata = BTreeMap<String, StoredConnection>;
type Credentials = BTreeMap<String, Secrets>;

/// The token store. See the [module documentation](self).
#[derive(Debug)]
pub struct TokenStore {
    dir: PathBuf,
    /// `None` under [`KeyringPolicy::Never`].
    keyring: Option<Box<dyn Keyring>>,
    /// Serialises this store's read-modify-write cycles.
    lock: Mutex<()>,
}

impl TokenStore {
    /// Opens the store kept in `dir` (created, mode 0700, on the first save). Nothing is read yet.
    pub fn open(dir: PathBuf, keyring: KeyringPolicy) -> Result<TokenStore, StoreError> {
        let keyring: Option<Box<dyn Keyring>> = match keyring {
            KeyringPolicy::Auto => Some(Box::new(OsKeyring)),
            KeyringPolicy::Never => None,
        };
        Self::build(dir, keyring)
    }

    /// A store whose keyring is `keyring` (tests use an in-memory or a failing one).
    #[cfg_attr(not(test), allow(dead_code))] // only the unit tests use it
    pub(crate) fn with_keyring(
        dir: PathBuf,
        keyring: Box<dyn Keyring>,
    ) -> Result<TokenStore, StoreError> {
        Self::build(dir, Some(keyring))
    }

    fn build(dir: PathBuf, keyring: Option<Box<dyn Keyring>>) -> Result<TokenStore, StoreError> {
        match fs::metadata(&dir) {
            Ok(m) if !m.is_dir() => return Err(StoreError::NotADirectory { path: dir }),
            _ => {}
        }
        Ok(TokenStore {
            dir,
            keyring,
            lock: Mutex::new(()),
        })
    }

    /// The two files: `(connections.json, credentials.json)`.
    pub fn files(&self) -> (PathBuf, PathBuf) {
        (self.connections_path(), self.credentials_path())
    }

    fn connections_path(&self) -> PathBuf {
        self.dir.join(CONNECTIONS_FILE)
    }

    fn credentials_path(&self) -> PathBuf {
        self.dir.join(CREDENTIALS_FILE)
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Saves `conn`, replacing any entry with the same `site` (its old secret is removed from the other
    /// backend). Returns where the secrets went: the OS keyring if it accepted them, else `credentials.json`.
    pub fn save(&self, conn: &Connection) -> Result<SecretBackend, StoreError> {
        if url::Url::parse(&conn.site).map_or(true, |u| u.host_str().is_none()) {
            return Err(StoreError::InvalidSite(conn.site.clone()));
        }
        let _guard = self.guard();
        let mut meta = self.read_metadata()?;
        let old = meta.get(&conn.site).map(|c| c.secrets_in);
        let secret_json =
            serde_json::to_string(&conn.secrets).map_err(|e| StoreError::BadSecret {
                site: conn.site.clone(),
                reason: e.to_string(),
            })?;

        let backend = match &self.keyring {
            Some(k) if keyring_accepts(k.as_ref(), &conn.site, &secret_json) => {
                SecretBackend::Keyring
            }
            _ => SecretBackend::File,
        };
        match backend {
            SecretBackend::Keyring => {
                if old == Some(SecretBackend::File) {
                    let mut creds = self.read_credentials()?;
                    if creds.remove(&conn.site).is_some() {
                        self.write_credentials(&creds)?;
                    }
                }
            }
            SecretBackend::File => {
                let mut creds = self.read_credentials()?;
                creds.insert(conn.site.clone(), conn.secrets.clone());
                self.write_credentials(&creds)?;
                if old == Some(SecretBackend::Keyring) {
                    if let Some(k) = &self.keyring {
                        // Best effort: the keyring just refused a write, so this may fail too; the entry
                        // now points at the file either way.
                        let _ = k.delete(&conn.site);
                    }
                }
            }
        }
        meta.insert(conn.site.clone(), StoredConnection::new(conn, backend));
        self.write_metadata(&meta)?;
        Ok(backend)
    }

    /// All connections, sorted by site, with their secrets.
    pub fn list(&self) -> Result<Vec<Connection>, StoreError> {
        let _guard = self.guard();
        let meta = self.read_metadata()?;
        let mut creds = None;
        meta.into_values()
            .map(|stored| self.load(stored, &mut creds))
            .collect()
    }

    /// The connection for `site`, which may be what the user typed: the exact normalised URL, else the unique
    /// connection on that host (with or without `www.`), else on that host and port (and scheme, if typed),
    /// else on that host, port and path. Several matches give [`StoreError::Ambiguous`].
    pub fn get(&self, site: &str) -> Result<Option<Connection>, StoreError> {
        let _guard = self.guard();
        let mut meta = self.read_metadata()?;
        let keys: Vec<&str> = meta.keys().map(String::as_str).collect();
        let Some(key) = resolve(&keys, site)?.map(str::to_owned) else {
            return Ok(None);
        };
        let Some(stored) = meta.remove(&key) else {
            return Ok(None);
        };
        self.load(stored, &mut None).map(Some)
    }

    /// Removes the connection stored under exactly `site_key` (a [`Connection::site`]) from the metadata, the
    /// keyring and the credentials file. `Ok(false)` when there was nothing to remove.
    pub fn remove(&self, site_key: &str) -> Result<bool, StoreError> {
        let _guard = self.guard();
        let mut meta = self.read_metadata()?;
        let recorded = meta.get(site_key).map(|c| c.secrets_in);
        let mut removed = false;

        match (&self.keyring, recorded) {
            (Some(k), Some(SecretBackend::Keyring)) => {
                removed |= k.delete(site_key).map_err(|message| StoreError::Keyring {
                    site: site_key.to_owned(),
                    message,
                })?;
            }
            // The keyring is not expected to hold it; clear a leftover if it can, ignoring failures.
            (Some(k), _) => removed |= k.delete(site_key).unwrap_or(false),
            (None, Some(SecretBackend::Keyring)) => {
                return Err(StoreError::KeyringDisabled {
                    site: site_key.to_owned(),
                });
            }
            (None, _) => {}
        }
        let mut creds = self.read_credentials()?;
        if creds.remove(site_key).is_some() {
            self.write_credentials(&creds)?;
            removed = true;
        }
        if meta.remove(site_key).is_some() {
            self.write_metadata(&meta)?;
            removed = true;
        }
        Ok(removed)
    }

    /// Attaches the secrets to a stored entry. `creds` caches `credentials.json` across entries.
    fn load(
        &self,
        stored: StoredConnection,
        creds: &mut Option<Credentials>,
    ) -> Result<Connection, StoreError> {
        let site = stored.site.clone();
        let secrets = match stored.secrets_in {
            SecretBackend::Keyring => {
                let Some(k) = &self.keyring else {
                    return Err(StoreError::KeyringDisabled { site });
                };
                let json = k
                    .get(&site)
                    .map_err(|message| StoreError::Keyring {
                        site: site.clone(),
                        message,
                    })?
                    .ok_or_else(|| StoreError::MissingSecret { site: site.clone() })?;
                serde_json::from_str::<Secrets>(&json).map_err(|e| StoreError::BadSecret {
                    site: site.clone(),
                    reason: e.to_string(),
                })?
            }
            SecretBackend::File => {
                let creds = match creds {
                    Some(c) => c,
                    None => creds.insert(self.read_credentials()?),
                };
                creds
                    .get(&site)
                    .cloned()
                    .ok_or(StoreError::MissingSecret { site })?
            }
        };
        Ok(stored.with_secrets(secrets))
    }

    fn read_metadata(&self) -> Result<Metadata, StoreError> {
        let path = self.connections_path();
        let Some(text) = read_file(&path, false)? else {
            return Ok(Metadata::new());
        };
        let file: ConnectionsFile =
            serde_json::from_str(&text).map_err(|source| StoreError::Parse {
                path: path.clone(),
                source,
            })?;
        if file.version > CONNECTIONS_VERSION {
            return Err(StoreError::UnsupportedVersion {
                path,
                version: file.version,
            });
        }
        Ok(file
            .connections
            .into_iter()
            .map(|c| (c.site.clone(), c))
            .collect())
    }

    fn write_metadata(&self, meta: &Metadata) -> Result<(), StoreError> {
        let file = ConnectionsFile {
            version: CONNECTIONS_VERSION,
            connections: meta.values().cloned().collect(),
        };
        self.write_json(&self.connections_path(), &file)
    }

    fn read_credentials(&self) -> Result<Credentials, StoreError> {
        let path = self.credentials_path();
        match read_file(&path, true)? {
            None => Ok(Credentials::new()),
            Some(text) => {
                serde_json::from_str(&text).map_err(|source| StoreError::Parse { path, source })
            }
        }
    }

    /// Writes `credentials.json`, or deletes it once no secret is left in it.
    fn write_credentials(&self, creds: &Credentials) -> Result<(), StoreError> {
        let path = self.credentials_path();
        if creds.is_empty() {
            return match fs::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(source) => Err(StoreError::Write { path, source }),
            };
        }
        self.write_json(&path, creds)
    }

    fn write_json<T: Serialize>(&self, path: &Path, value: &T) -> Result<(), StoreError> {
        let mut text = serde_json::to_vec_pretty(value).map_err(|e| StoreError::Write {
            path: path.to_owned(),
            source: io::Error::other(e),
        })?;
        text.push(b'\n');
        self.ensure_dir()?;
        write_atomic(&self.dir, path, &text).map_err(|source| StoreError::Write {
            path: path.to_owned(),
            source,
        })
    }

    /// Creates the store directory (mode 0700) if it is missing.
    fn ensure_dir(&self) -> Result<(), StoreError> {
        if self.dir.is_dir() {
            return Ok(());
        }
        let err = |source| StoreError::CreateDir {
            path: self.dir.clone(),
            source,
        };
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
            builder.mode(0o700);
            builder.create(&self.dir).map_err(err)?;
            fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700)).map_err(err)?;
        }
        #[cfg(not(unix))]
        builder.create(&self.dir).map_err(err)?;
        Ok(())
    }
}

/// Whether the keyring stored `secret` for `site` and gives it back unchanged.
fn keyring_accepts(k: &dyn Keyring, site: &str, secret: &str) -> bool {
    k.set(site, secret).is_ok() && matches!(k.get(site), Ok(Some(v)) if v == secret)
}

/// Reads a whole file, `None` if it does not exist. With `private`, refuses (on Unix) a file that group or
/// others may access.
fn read_file(path: &Path, private: bool) -> Result<Option<String>, StoreError> {
    let err = |source| StoreError::Read {
        path: path.to_owned(),
        source,
    };
    let mut file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(e)),
    };
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        let mode = file.metadata().map_err(err)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(StoreError::PermissionsTooOpen {
                path: path.to_owned(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(err)?;
    Ok(Some(text))
}

/// Writes `contents` to `path` atomically: a new 0600 file in `dir`, synced, then renamed over `path`.
fn write_atomic(dir: &Path, path: &Path, contents: &[u8]) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("store");
    let (tmp, mut file) = loop {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let tmp = dir.join(format!(
            ".{file_name}.{}.{}.{nanos}.tmp",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(&tmp) {
            Ok(file) => break (tmp, file),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    };
    let written = (|| {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(fs::Permissions::from_mode(0o600))?;
        }
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    // Make the rename durable; failure here does not undo the write.
    #[cfg(unix)]
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// What the user typed, parsed for matching.
struct Typed {
    url: url::Url,
    /// A scheme was typed (`http://…`), so scheme and default port count.
    scheme: bool,
}

fn parse_typed(input: &str) -> Option<Typed> {
    let input = input.trim();
    let scheme = input.contains("://");
    let url = if scheme {
        url::Url::parse(input)
    } else {
        url::Url::parse(&format!("https://{input}"))
    };
    let url = url.ok()?;
    url.host_str()?;
    Some(Typed { url, scheme })
}

/// `scheme://host[:port]/path` without a trailing slash, query or fragment.
fn normalise(url: &url::Url) -> String {
    format!(
        "{}{}",
        url.origin().ascii_serialization(),
        url.path().trim_end_matches('/')
    )
}

fn bare_host(url: &url::Url) -> Option<String> {
    let host = url.host_str()?.to_ascii_lowercase();
    Some(host.strip_prefix("www.").map(str::to_owned).unwrap_or(host))
}

/// Picks the key among `keys` that `input` designates (see [`TokenStore::get`]).
fn resolve<'k>(keys: &[&'k str], input: &str) -> Result<Option<&'k str>, StoreError> {
    let trimmed = input.trim().trim_end_matches('/');
    if let Some(k) = keys.iter().find(|k| **k == trimmed) {
        return Ok(Some(*k));
    }
    let Some(typed) = parse_typed(input) else {
        return Ok(None);
    };
    let parsed: Vec<(&str, url::Url)> = keys
        .iter()
        .filter_map(|k| url::Url::parse(k).ok().map(|u| (*k, u)))
        .collect();
    let wanted = normalise(&typed.url);
    if let Some((k, _)) = parsed.iter().find(|(_, u)| normalise(u) == wanted) {
        return Ok(Some(k));
    }

    let host = bare_host(&typed.url);
    let mut candidates: Vec<&(&str, url::Url)> = parsed
        .iter()
        .filter(|(_, u)| bare_host(u) == host)
        .collect();
    let port_known = typed.scheme || typed.url.port().is_some();
    let stages: [&dyn Fn(&url::Url) -> bool; 2] = [
        &|u| {
            port_known
                && u.port_or_known_default() == typed.url.port_or_known_default()
                && (!typed.scheme || u.scheme() == typed.url.scheme())
        },
        &|u| u.path().trim_end_matches('/') == typed.url.path().trim_end_matches('/'),
    ];
    for stage in stages {
        if candidates.len() <= 1 {
            break;
        }
        let narrower: Vec<_> = candidates
            .iter()
            .copied()
            .filter(|(_, u)| stage(u))
            .collect();
        if !narrower.is_empty() {
            candidates = narrower;
        }
    }
    match candidates.as_slice() {
        [] => Ok(None),
        [(k, _)] => Ok(Some(k)),
        many => Err(StoreError::Ambiguous(
            many.iter().map(|(k, _)| (*k).to_owned()).collect(),
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::collections::HashMap;
    use std::sync::Arc;

    /// An in-memory keyring whose entries the test can inspect and delete.
    #[derive(Debug, Clone, Default)]
    struct MemKeyring(Arc<Mutex<HashMap<String, String>>>);

    impl MemKeyring {
        fn entries(&self) -> HashMap<String, String> {
            self.0.lock().unwrap().clone()
        }
    }

    impl Keyring for MemKeyring {
        fn set(&self, site: &str, secret: &str) -> Result<(), String> {
            self.0
                .lock()
                .unwrap()
                .insert(site.to_owned(), secret.to_owned());
            Ok(())
        }
        fn get(&self, site: &str) -> Result<Option<String>, String> {
            Ok(self.0.lock().unwrap().get(site).cloned())
        }
        fn delete(&self, site: &str) -> Result<bool, String> {
            Ok(self.0.lock().unwrap().remove(site).is_some())
        }
    }

    /// A keyring that is never available, like Secret Service without a D-Bus session.
    #[derive(Debug)]
    struct FailingKeyring;

    impl Keyring for FailingKeyring {
        fn set(&self, _: &str, _: &str) -> Result<(), String> {
            Err("Platform secure storage failure: no session bus".to_owned())
        }
        fn get(&self, _: &str) -> Result<Option<String>, String> {
            Err("Platform secure storage failure: no session bus".to_owned())
        }
        fn delete(&self, _: &str) -> Result<bool, String> {
            Err("Platform secure storage failure: no session bus".to_owned())
        }
    }

    fn conn(site: &str, n: u32) -> Connection {
        Connection {
            site: site.to_owned(),
            api_root: format!("{site}/wp-json/"),
            name: format!("Site {n}"),
            user: "Ada".to_owned(),
            broker: Some("broker-1".to_owned()),
            consumer_key: format!("ck-{n}"),
            token: format!("tk-{n}"),
            connected_at: 1_700_000_000 + i64::from(n),
            secrets: Secrets {
                consumer_secret: format!("CONSUMER-SECRET-{n}-zq"),
                token_secret: format!("TOKEN-SECRET-{n}-zq"),
            },
        }
    }

    fn read(path: &Path) -> String {
        fs::read_to_string(path).unwrap()
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn mem_store(dir: &Path) -> (TokenStore, MemKeyring) {
        let k = MemKeyring::default();
        (
            TokenStore::with_keyring(dir.to_owned(), Box::new(k.clone())).unwrap(),
            k,
        )
    }

    #[test]
    fn round_trip_save_list_get_remove() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, _k) = mem_store(tmp.path());
        assert!(store.list().unwrap().is_empty());
        assert_eq!(store.get("https://a.example").unwrap(), None);

        let b = conn("https://b.example", 2);
        let a = conn("https://a.example", 1);
        assert_eq!(store.save(&b).unwrap(), SecretBackend::Keyring);
        assert_eq!(store.save(&a).unwrap(), SecretBackend::Keyring);
        assert_eq!(store.list().unwrap(), vec![a.clone(), b.clone()]);
        assert_eq!(store.get("https://a.example").unwrap(), Some(a.clone()));
        assert_eq!(store.get("https://a.example/").unwrap(), Some(a.clone()));

        // A fresh store on the same directory sees the same thing.
        let again = TokenStore::with_keyring(tmp.path().to_owned(), Box::new(_k.clone())).unwrap();
        assert_eq!(again.list().unwrap(), vec![a.clone(), b.clone()]);

        assert!(store.remove("https://a.example").unwrap());
        assert!(!store.remove("https://a.example").unwrap());
        assert_eq!(store.get("https://a.example").unwrap(), None);
        assert_eq!(store.list().unwrap(), vec![b]);
    }

    #[test]
    fn in_memory_keyring_keeps_secrets_out_of_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("nested").join("authbroker");
        let (store, k) = mem_store(&dir);
        let c = conn("https://blog.example", 1);
        assert_eq!(store.save(&c).unwrap(), SecretBackend::Keyring);

        let (connections, credentials) = store.files();
        assert_eq!(connections, dir.join("connections.json"));
        assert_eq!(credentials, dir.join("credentials.json"));
        assert!(
            !credentials.exists(),
            "no credentials file when the keyring holds the secrets"
        );
        let text = read(&connections);
        assert!(!text.contains("SECRET"), "{text}");
        assert!(text.contains("\"secrets_in\": \"keyring\""), "{text}");
        let stored: Secrets = serde_json::from_str(&k.entries()["https://blog.example"]).unwrap();
        assert_eq!(stored, c.secrets);
        #[cfg(unix)]
        {
            assert_eq!(mode(&dir), 0o700);
            assert_eq!(mode(&connections), 0o600);
        }
        // No temporary files left behind.
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("connections.json")]);
    }

    #[test]
    fn failing_keyring_falls_back_to_file() {
        let tmp = tempfile::tempdir().unwrap();
        let store =
            TokenStore::with_keyring(tmp.path().to_owned(), Box::new(FailingKeyring)).unwrap();
        let c = conn("https://blog.example", 1);
        assert_eq!(store.save(&c).unwrap(), SecretBackend::File);
        let (connections, credentials) = store.files();
        let meta = read(&connections);
        assert!(!meta.contains("SECRET"), "{meta}");
        assert!(meta.contains("\"secrets_in\": \"file\""), "{meta}");
        assert!(read(&credentials).contains("TOKEN-SECRET-1-zq"));
        #[cfg(unix)]
        {
            assert_eq!(mode(&credentials), 0o600);
            assert_eq!(mode(&connections), 0o600);
        }
        assert_eq!(store.get("blog.example").unwrap(), Some(c.clone()));
        assert_eq!(store.list().unwrap(), vec![c]);
        // Removing works although the keyring cannot even delete.
        assert!(store.remove("https://blog.example").unwrap());
        assert!(!credentials.exists(), "empty credentials file is deleted");
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn never_policy_uses_file_only() {
        let tmp = tempfile::tempdir().unwrap();
        let store = TokenStore::open(tmp.path().to_owned(), KeyringPolicy::Never).unwrap();
        let c = conn("https://blog.example", 1);
        assert_eq!(store.save(&c).unwrap(), SecretBackend::File);
        assert_eq!(store.list().unwrap(), vec![c]);
        assert!(store.remove("https://blog.example").unwrap());
    }

    #[test]
    fn never_policy_reports_secrets_left_in_keyring() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, _k) = mem_store(tmp.path());
        store.save(&conn("https://blog.example", 1)).unwrap();
        let never = TokenStore::open(tmp.path().to_owned(), KeyringPolicy::Never).unwrap();
        let err = never.get("blog.example").unwrap_err();
        assert!(matches!(err, StoreError::KeyringDisabled { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("authbroker connect https://blog.example"),
            "{err}"
        );
        assert!(matches!(
            never.remove("https://blog.example"),
            Err(StoreError::KeyringDisabled { .. })
        ));
        // Reconnecting under Never works and moves the entry to the file.
        assert_eq!(
            never.save(&conn("https://blog.example", 2)).unwrap(),
            SecretBackend::File
        );
        assert_eq!(
            never.get("blog.example").unwrap(),
            Some(conn("https://blog.example", 2))
        );
    }

    #[test]
    fn lookup_by_typed_host_www_port_and_ambiguous() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, _k) = mem_store(tmp.path());
        let blog = conn("https://blog.example", 1);
        let www = conn("https://www.shop.example", 2);
        let local1 = conn("http://localhost:8080", 3);
        let local2 = conn("http://localhost:8081", 4);
        let path1 = conn("https://multi.example/one", 5);
        let path2 = conn("https://multi.example/two", 6);
        for c in [&blog, &www, &local1, &local2, &path1, &path2] {
            store.save(c).unwrap();
        }
        assert_eq!(
            store.get("https://blog.example").unwrap(),
            Some(blog.clone())
        );
        assert_eq!(store.get("blog.example").unwrap(), Some(blog.clone()));
        assert_eq!(store.get("BLOG.example/").unwrap(), Some(blog.clone()));
        assert_eq!(store.get("www.blog.example").unwrap(), Some(blog.clone()));
        assert_eq!(
            store.get("http://blog.example").unwrap(),
            Some(blog.clone())
        );
        assert_eq!(store.get("shop.example").unwrap(), Some(www.clone()));
        assert_eq!(
            store.get("https://shop.example").unwrap(),
            Some(www.clone())
        );
        assert_eq!(store.get("localhost:8081").unwrap(), Some(local2.clone()));
        assert_eq!(
            store.get("http://localhost:8080/").unwrap(),
            Some(local1.clone())
        );
        assert_eq!(store.get("multi.example/two").unwrap(), Some(path2.clone()));
        assert_eq!(store.get("nowhere.example").unwrap(), None);
        assert_eq!(store.get("").unwrap(), None);
        assert_eq!(store.get("not a url at all").unwrap(), None);

        match store.get("localhost") {
            Err(StoreError::Ambiguous(sites)) => {
                assert_eq!(
                    sites,
                    vec![
                        "http://localhost:8080".to_owned(),
                        "http://localhost:8081".to_owned()
                    ]
                );
                let msg = StoreError::Ambiguous(sites).to_string();
                assert!(
                    msg.contains("http://localhost:8080, http://localhost:8081"),
                    "{msg}"
                );
            }
            other => panic!("expected Ambiguous, got {other:?}"),
        }
        assert!(
            matches!(store.get("multi.example"), Err(StoreError::Ambiguous(s)) if s.len() == 2)
        );
    }

    #[test]
    fn replace_entry_moves_secret_between_backends() {
        let tmp = tempfile::tempdir().unwrap();
        let failing =
            TokenStore::with_keyring(tmp.path().to_owned(), Box::new(FailingKeyring)).unwrap();
        let (store, k) = mem_store(tmp.path());
        let (_, credentials) = store.files();

        // First in the file, then replaced while the keyring works: the file copy goes away.
        let first = conn("https://blog.example", 1);
        assert_eq!(failing.save(&first).unwrap(), SecretBackend::File);
        let mut second = conn("https://blog.example", 2);
        second.broker = None;
        assert_eq!(store.save(&second).unwrap(), SecretBackend::Keyring);
        assert!(!credentials.exists());
        assert_eq!(store.list().unwrap(), vec![second.clone()]);

        // Keyring → file: the keyring copy goes away.
        let mem_then_file =
            TokenStore::with_keyring(tmp.path().to_owned(), Box::new(RefusingSet(k.clone())))
                .unwrap();
        let third = conn("https://blog.example", 3);
        assert_eq!(mem_then_file.save(&third).unwrap(), SecretBackend::File);
        assert!(k.entries().is_empty(), "old keyring secret removed");
        assert_eq!(store.list().unwrap(), vec![third]);
        assert_eq!(read(&store.files().0).matches("\"site\"").count(), 1);
    }

    /// A keyring that refuses writes but can delete (a locked collection, say).
    #[derive(Debug)]
    struct RefusingSet(MemKeyring);

    impl Keyring for RefusingSet {
        fn set(&self, _: &str, _: &str) -> Result<(), String> {
            Err("locked".to_owned())
        }
        fn get(&self, site: &str) -> Result<Option<String>, String> {
            self.0.get(site)
        }
        fn delete(&self, site: &str) -> Result<bool, String> {
            self.0.delete(site)
        }
    }

    #[test]
    fn vanished_keyring_secret_is_missing_secret() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, k) = mem_store(tmp.path());
        store.save(&conn("https://blog.example", 1)).unwrap();
        k.0.lock().unwrap().clear();
        let err = store.get("blog.example").unwrap_err();
        assert!(
            matches!(&err, StoreError::MissingSecret { site } if site == "https://blog.example"),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("run `authbroker connect https://blog.example` again"),
            "{err}"
        );
        assert!(matches!(
            store.list(),
            Err(StoreError::MissingSecret { .. })
        ));
        // It can still be removed.
        assert!(store.remove("https://blog.example").unwrap());

        store.save(&conn("https://x.example", 1)).unwrap();
        k.set("https://x.example", "not json").unwrap();
        assert!(matches!(
            store.get("x.example"),
            Err(StoreError::BadSecret { .. })
        ));
    }

    #[cfg(unix)]
    #[test]
    fn too_open_credentials_refused() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let store =
            TokenStore::with_keyring(tmp.path().to_owned(), Box::new(FailingKeyring)).unwrap();
        store.save(&conn("https://blog.example", 1)).unwrap();
        let (_, credentials) = store.files();
        fs::set_permissions(&credentials, fs::Permissions::from_mode(0o644)).unwrap();

        let err = store.get("blog.example").unwrap_err();
        assert!(
            matches!(err, StoreError::PermissionsTooOpen { mode: 0o644, .. }),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains(&format!("chmod 600 {}", credentials.display())),
            "{err}"
        );
        assert!(matches!(
            store.save(&conn("https://b.example", 2)),
            Err(StoreError::PermissionsTooOpen { .. })
        ));
        assert!(matches!(
            store.list(),
            Err(StoreError::PermissionsTooOpen { .. })
        ));

        fs::set_permissions(&credentials, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(store.get("blog.example").unwrap().is_some());
    }

    #[test]
    fn damaged_files_name_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, _k) = mem_store(tmp.path());
        let (connections, _) = store.files();
        fs::write(&connections, "{not json").unwrap();
        let err = store.list().unwrap_err();
        assert!(matches!(err, StoreError::Parse { .. }), "{err}");
        assert!(
            err.to_string().contains(&connections.display().to_string()),
            "{err}"
        );

        fs::write(&connections, r#"{"version": 99, "connections": []}"#).unwrap();
        assert!(matches!(
            store.list(),
            Err(StoreError::UnsupportedVersion { version: 99, .. })
        ));
    }

    #[test]
    fn invalid_site_and_not_a_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, _k) = mem_store(tmp.path());
        assert!(matches!(
            store.save(&conn("blog.example", 1)),
            Err(StoreError::InvalidSite(_))
        ));
        let file = tmp.path().join("file");
        fs::write(&file, "").unwrap();
        assert!(matches!(
            TokenStore::open(file, KeyringPolicy::Auto),
            Err(StoreError::NotADirectory { .. })
        ));
    }

    #[test]
    fn debug_redacts_secrets() {
        let c = conn("https://blog.example", 1);
        for text in [
            format!("{c:?}"),
            format!("{c:#?}"),
            format!("{:?}", c.secrets),
        ] {
            assert!(!text.contains("CONSUMER-SECRET"), "{text}");
            assert!(!text.contains("TOKEN-SECRET"), "{text}");
            assert!(text.contains("<redacted>"), "{text}");
        }
        assert!(
            format!("{c:?}").contains("tk-1"),
            "non-secret fields still shown"
        );
    }

    #[test]
    fn default_dir_honours_env() {
        assert_eq!(
            dir_from(Some("/tmp/ab-conf".into())),
            Some(PathBuf::from("/tmp/ab-conf"))
        );
        let xdg = dir_from(None);
        assert_eq!(dir_from(Some("".into())), xdg);
        if let Some(d) = xdg {
            assert!(d.ends_with("authbroker"), "{}", d.display());
        }
    }

    #[tokio::test]
    async fn os_keyring_callable_inside_runtime() {
        // Must not panic on a runtime thread (zbus would start a nested runtime); any result is fine.
        let tmp = tempfile::tempdir().unwrap();
        let store = TokenStore::open(tmp.path().to_owned(), KeyringPolicy::Auto).unwrap();
        let site = format!("https://authbroker-unit-{}.invalid", std::process::id());
        let backend = store.save(&conn(&site, 1)).unwrap();
        assert!(store.get(&site).unwrap().is_some(), "{backend:?}");
        assert!(store.remove(&site).unwrap());
    }
}
