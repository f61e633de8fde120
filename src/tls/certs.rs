//! The local certificate authority's files in `<data dir>/tls/`: `ca.pem` (the CA certificate
//! clients trust), `server.pem` (the server certificate, then the CA's) and `server.key`
//! (mode 0600). Made once, all together, written atomically; the CA's private key never
//! touches the disk. Files that cannot be read back are made again.

use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The CA certificate's file name.
pub const CA_FILE: &str = "ca.pem";
const CERT_FILE: &str = "server.pem";
const KEY_FILE: &str = "server.key";

/// Why HTTPS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be written or read.
    #[error("cannot use {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A certificate could not be made.
    #[error("cannot make a certificate: {0}")]
    Generate(String),
    /// The TLS configuration was refused.
    #[error("cannot set up TLS: {0}")]
    Config(String),
}

/// What the server needs from the files.
pub struct Files {
    /// The CA certificate's path.
    pub ca_path: PathBuf,
    /// The server certificate and the CA certificate.
    pub chain: Vec<CertificateDer<'static>>,
    /// The server's private key.
    pub key: PrivateKeyDer<'static>,
}

/// Reads the files under `dir`, making them first when any is missing or unreadable.
///
/// # Errors
///
/// When they cannot be made or written.
pub fn load_or_create(dir: &Path) -> Result<Files, TlsError> {
    if let Some(files) = read(dir) {
        return Ok(files);
    }
    let made = generate()?;
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    write(dir, KEY_FILE, made.key_pem.as_bytes(), true)?;
    write(dir, CERT_FILE, made.chain_pem.as_bytes(), false)?;
    write(dir, CA_FILE, made.ca_pem.as_bytes(), false)?;
    read(dir).ok_or_else(|| TlsError::Io {
        path: dir.join(CERT_FILE),
        source: std::io::Error::other("the certificates just written cannot be read back"),
    })
}

fn read(dir: &Path) -> Option<Files> {
    let ca_path = dir.join(CA_FILE);
    if !ca_path.is_file() {
        return None;
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join(CERT_FILE))
        .ok()?
        .collect::<Result<_, _>>()
        .ok()?;
    let key = PrivateKeyDer::from_pem_file(dir.join(KEY_FILE)).ok()?;
    (!chain.is_empty()).then_some(Files {
        ca_path,
        chain,
        key,
    })
}

/// The PEM texts of a fresh CA and server certificate.
struct Made {
    ca_pem: String,
    chain_pem: String,
    key_pem: String,
}

fn generate() -> Result<Made, TlsError> {
    let failed = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let ca_key = KeyPair::generate().map_err(failed)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
    ca.distinguished_name = name("bitrouter local CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).map_err(failed)?;
    let issuer = Issuer::new(ca, ca_key);

    let server_key = KeyPair::generate().map_err(failed)?;
    let mut server = CertificateParams::new(vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ])
    .map_err(failed)?;
    server.distinguished_name = name("bitrouter");
    server.is_ca = IsCa::ExplicitNoCa;
    server.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.use_authority_key_identifier_extension = true;
    let server_cert = server.signed_by(&server_key, &issuer).map_err(failed)?;
    Ok(Made {
        ca_pem: ca_cert.pem(),
        chain_pem: format!("{}{}", server_cert.pem(), ca_cert.pem()),
        key_pem: server_key.serialize_pem(),
    })
}

fn name(common: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common);
    dn
}

/// Writes one file atomically (temp file, then rename); `private` files get mode 0600.
fn write(dir: &Path, file: &str, contents: &[u8], private: bool) -> Result<(), TlsError> {
    let path = dir.join(file);
    let io = |source| TlsError::Io {
        path: path.clone(),
        source,
    };
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = if private { 0o600 } else { 0o644 };
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(io)?;
    }
    #[cfg(not(unix))]
    let _ = private;
    tmp.write_all(contents).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(&path).map_err(|e| io(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_once_then_read_back_with_a_private_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join("tls");
        let first = load_or_create(&tls).unwrap();
        assert_eq!(first.chain.len(), 2, "server certificate, then the CA's");
        let ca = std::fs::read_to_string(tls.join(CA_FILE)).unwrap();
        assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(!ca.contains("PRIVATE KEY"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(tls.join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = load_or_create(&tls).unwrap();
        assert_eq!(again.chain, first.chain, "not made again");
        // A damaged file is made again.
        std::fs::write(tls.join(CERT_FILE), "garbage").unwrap();
        let remade = load_or_create(&tls).unwrap();
        assert_ne!(remade.chain, first.chain);
    }
}
