//! The local CA and the one server certificate both services present.
//!
//! The CA signs a single certificate for `127.0.0.1` and `localhost` and its private key is then dropped:
//! it is never written anywhere, so trusting the CA (which the demo's client must do) trusts nothing else
//! that could ever be issued. A data directory that already holds the three files keeps them, so a client
//! that trusts the CA of a previous run still connects after a restart.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

use crate::DemoError;
use crate::files::{read_optional, write_file};

/// The certificate files in the TLS directory.
#[derive(Debug)]
pub(crate) struct Pki {
    /// The CA certificate, PEM.
    pub(crate) ca_pem: String,
    pub(crate) ca_path: PathBuf,
    /// The server certificate followed by the CA certificate, PEM.
    pub(crate) chain_path: PathBuf,
    /// The server's private key, PEM, 0600.
    pub(crate) key_path: PathBuf,
    /// Whether the files of a previous run were kept.
    pub(crate) reused: bool,
}

/// Reuses the CA and server certificate in `dir` when all three files are there, otherwise makes new ones.
pub(crate) fn ensure(dir: &Path) -> Result<Pki, DemoError> {
    let pki = Pki {
        ca_pem: String::new(),
        ca_path: dir.join("ca.pem"),
        chain_path: dir.join("server.pem"),
        key_path: dir.join("server.key"),
        reused: false,
    };
    if pki.chain_path.is_file() && pki.key_path.is_file() {
        if let Some(ca_pem) = read_optional(&pki.ca_path, "reading the CA certificate")? {
            return Ok(Pki {
                ca_pem,
                reused: true,
                ..pki
            });
        }
    }
    let (ca_pem, chain_pem, key_pem) = generate()?;
    // The CA goes last: its presence marks a complete set.
    write_file(
        &pki.key_path,
        key_pem.as_bytes(),
        true,
        "writing the server key",
    )?;
    write_file(
        &pki.chain_path,
        chain_pem.as_bytes(),
        false,
        "writing the server certificate",
    )?;
    write_file(
        &pki.ca_path,
        ca_pem.as_bytes(),
        false,
        "writing the CA certificate",
    )?;
    Ok(Pki { ca_pem, ..pki })
}

/// A fresh CA and a server certificate signed by it: (CA PEM, server chain PEM, server key PEM).
fn generate() -> Result<(String, String, String), DemoError> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "authbroker demo CA");
    // May sign end-entity certificates only, not other CAs.
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = ca_params.self_signed(&ca_key)?;

    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
    params
        .distinguished_name
        .push(DnType::CommonName, "authbroker demo");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &ca, &ca_key)?;
    let ca_pem = ca.pem();
    Ok((
        ca_pem.clone(),
        format!("{}{ca_pem}", cert.pem()),
        key.serialize_pem(),
    ))
}
