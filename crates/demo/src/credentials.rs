//! The passwords of the demo accounts, kept in the data directory (0600) so that a rerun on the same
//! directory can hand them out again: the services store only argon2id hashes.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::DemoError;
use crate::files::{read_optional, write_file};

/// Generated passwords: 20 letters and digits each (about 119 bits).
const PASSWORD_LEN: usize = 20;

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Credentials {
    pub(crate) developer_password: String,
    pub(crate) admin_password: String,
    pub(crate) author_password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials { .. }")
    }
}

impl Credentials {
    pub(crate) fn generate() -> Self {
        let password = || authbroker_web::random::alnum(PASSWORD_LEN);
        Self {
            developer_password: password(),
            admin_password: password(),
            author_password: password(),
        }
    }

    /// The credentials saved by a previous run, if any.
    pub(crate) fn load(path: &Path) -> Result<Option<Self>, DemoError> {
        let Some(text) = read_optional(path, "reading the demo credentials")? else {
            return Ok(None);
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|err| DemoError::Credentials {
                path: path.to_owned(),
                message: format!("not a credentials file of this version ({err})"),
            })
    }

    pub(crate) fn save(&self, path: &Path) -> Result<(), DemoError> {
        let json = serde_json::to_string_pretty(self).map_err(|err| DemoError::Credentials {
            path: path.to_owned(),
            message: err.to_string(),
        })?;
        write_file(path, json.as_bytes(), true, "writing the demo credentials")
    }
}
