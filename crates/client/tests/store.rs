//! The token store against the real OS keyring and a temporary directory. Without a D-Bus session (CI, this
//! container) `KeyringPolicy::Auto` must fall back to `credentials.json`; where a keyring is available the
//! tests accept it and clean up after themselves.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;

use authbroker_client::store::{
    Connection, KeyringPolicy, SecretBackend, Secrets, StoreError, TokenStore,
};

/// Whether an OS keyring may be reachable, in which case `Auto` may legitimately pick it.
fn keyring_may_exist() -> bool {
    if !cfg!(target_os = "linux") {
        return cfg!(any(target_os = "macos", target_os = "windows"));
    }
    let runtime_bus =
        std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| Path::new(&d).join("bus").exists());
    std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some() || runtime_bus
}

/// A site key no real connection uses, distinct per test so parallel tests do not share keyring entries.
fn site(test: &str) -> String {
    format!(
        "https://{test}-{}.authbroker-test.invalid",
        std::process::id()
    )
}

fn conn(site: &str) -> Connection {
    Connection {
        site: site.to_owned(),
        api_root: format!("{site}/wp-json/"),
        name: "Test blog".to_owned(),
        user: "Ada Lovelace".to_owned(),
        broker: Some("b-123".to_owned()),
        consumer_key: "ck-public".to_owned(),
        token: "tk-public".to_owned(),
        connected_at: 1_700_000_000,
        secrets: Secrets {
            consumer_secret: "cs-VERY-SECRET-value".to_owned(),
            token_secret: "ts-VERY-SECRET-value".to_owned(),
        },
    }
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn auto_falls_back_to_file_without_keyring() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("authbroker");
    let store = TokenStore::open(dir.clone(), KeyringPolicy::Auto).unwrap();
    let site = site("auto");
    let c = conn(&site);

    let backend = store.save(&c).unwrap();
    if !keyring_may_exist() {
        assert_eq!(backend, SecretBackend::File);
    }
    let (connections, credentials) = store.files();
    assert_eq!(connections, dir.join("connections.json"));
    assert_eq!(credentials, dir.join("credentials.json"));

    let meta = fs::read_to_string(&connections).unwrap();
    assert!(!meta.contains("cs-VERY-SECRET-value"), "{meta}");
    assert!(!meta.contains("ts-VERY-SECRET-value"), "{meta}");
    assert!(meta.contains("tk-public"), "{meta}");
    #[cfg(unix)]
    {
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&connections), 0o600);
    }
    if backend == SecretBackend::File {
        let creds = fs::read_to_string(&credentials).unwrap();
        assert!(creds.contains("ts-VERY-SECRET-value"), "{creds}");
        #[cfg(unix)]
        assert_eq!(mode(&credentials), 0o600);
    } else {
        assert!(!credentials.exists());
    }

    // Round trip, through a second store on the same directory, as a later CLI run would.
    let later = TokenStore::open(dir, KeyringPolicy::Auto).unwrap();
    assert_eq!(later.list().unwrap(), vec![c.clone()]);
    let host = site.trim_start_matches("https://");
    assert_eq!(later.get(host).unwrap(), Some(c.clone()));
    assert_eq!(later.get(&format!("www.{host}")).unwrap(), Some(c));

    assert!(later.remove(&site).unwrap());
    assert!(!later.remove(&site).unwrap());
    assert!(later.list().unwrap().is_empty());
    assert!(!credentials.exists());
}

#[test]
fn never_policy_writes_private_file() {
    let tmp = tempfile::tempdir().unwrap();
    let store = TokenStore::open(tmp.path().to_owned(), KeyringPolicy::Never).unwrap();
    let site = site("never");
    let c = conn(&site);
    assert_eq!(store.save(&c).unwrap(), SecretBackend::File);
    let (connections, credentials) = store.files();
    let meta = fs::read_to_string(&connections).unwrap();
    assert!(!meta.contains("VERY-SECRET"), "{meta}");
    #[cfg(unix)]
    assert_eq!(mode(&credentials), 0o600);

    // Replacing keeps one entry with the new values.
    let mut newer = c.clone();
    newer.token = "tk-newer".to_owned();
    newer.secrets.token_secret = "ts-newer-SECRET".to_owned();
    assert_eq!(store.save(&newer).unwrap(), SecretBackend::File);
    assert_eq!(store.list().unwrap(), vec![newer]);
    let creds = fs::read_to_string(&credentials).unwrap();
    assert!(!creds.contains("ts-VERY-SECRET-value"), "{creds}");
    assert!(store.remove(&site).unwrap());
}

#[cfg(unix)]
#[test]
fn too_open_credentials_file_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let store = TokenStore::open(tmp.path().to_owned(), KeyringPolicy::Never).unwrap();
    let site = site("perms");
    store.save(&conn(&site)).unwrap();
    let (_, credentials) = store.files();
    fs::set_permissions(&credentials, fs::Permissions::from_mode(0o640)).unwrap();
    let err = store.get(&site).unwrap_err();
    assert!(
        matches!(err, StoreError::PermissionsTooOpen { .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains(&format!("chmod 600 {}", credentials.display())),
        "{err}"
    );
}

#[test]
fn debug_output_has_no_secrets() {
    let c = conn(&site("debug"));
    let text = format!("{c:?} {:?}", c.secrets);
    assert!(!text.contains("VERY-SECRET"), "{text}");
}
