//! Private directories and files under the data directory: directories 0700, secrets 0600 (on Unix).

use std::io::Write;
use std::path::Path;

use crate::DemoError;

/// Creates `path` (and its parents) if missing; directories it creates are readable by the owner only.
pub(crate) fn create_private_dir(path: &Path) -> Result<(), DemoError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path).map_err(|source| DemoError::Io {
        what: "creating the directory",
        path: path.to_owned(),
        source,
    })
}

/// Writes `contents` to `path`, replacing it; with `secret`, the file is readable by the owner only (also
/// when it existed before with wider permissions).
pub(crate) fn write_file(
    path: &Path,
    contents: &[u8],
    secret: bool,
    what: &'static str,
) -> Result<(), DemoError> {
    let io = |source| DemoError::Io {
        what,
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    }
    let mut file = options.open(path).map_err(io)?;
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io)?;
    }
    #[cfg(not(unix))]
    let _ = secret;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)
}

/// Reads `path` as UTF-8, `None` when it does not exist.
pub(crate) fn read_optional(path: &Path, what: &'static str) -> Result<Option<String>, DemoError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(DemoError::Io {
            what,
            path: path.to_owned(),
            source,
        }),
    }
}
