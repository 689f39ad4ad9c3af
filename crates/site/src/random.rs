//! Unguessable identifiers and credentials (shared with the broker).

pub(crate) use authbroker_web::random::{alnum, id};
