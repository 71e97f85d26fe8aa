//! fedgate's own TLS server credentials (`server.tls_cert_file`,
//! `server.tls_key_file`): read, parsed, matched and turned into a rustls
//! configuration **before anything listens**, so `fedgate serve` refuses to
//! start (naming the file) and `fedgate check` reports the same finding,
//! instead of a server that says "listening" and then dies.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::identity::ErrorCode;
use crate::trust::certs::TrustedCert;

/// Why the TLS files cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    #[error("{path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("{path}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it")]
    NoCertificate { path: PathBuf },
    #[error("{path}: {reason}")]
    CertificateInvalid { path: PathBuf, reason: String },
    #[error("{path}: no usable private key (PKCS#8, PKCS#1 RSA or SEC1 EC PEM): {reason}")]
    KeyInvalid { path: PathBuf, reason: String },
    #[error(
        "the private key {key} does not belong to the certificate {cert} (their public keys differ): \
         a renewed certificate with the old key, or the other way round"
    )]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("{cert} with {key}: {reason}")]
    Unusable {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

impl ErrorCode for TlsError {
    fn code(&self) -> &'static str {
        match self {
            TlsError::Unreadable { .. } => "tls.unreadable",
            TlsError::NoCertificate { .. } => "tls.no_certificate",
            TlsError::CertificateInvalid { .. } => "tls.certificate_invalid",
            TlsError::KeyInvalid { .. } => "tls.key_invalid",
            TlsError::KeyMismatch { .. } => "tls.key_mismatch",
            TlsError::Unusable { .. } => "tls.unusable",
        }
    }
}

/// A checked certificate chain and key, ready to serve.
#[derive(Debug)]
pub struct TlsCredentials {
    pub config: Arc<rustls::ServerConfig>,
    /// The end-entity certificate (subject, validity, thumbprint).
    pub leaf: TrustedCert,
    /// The DNS names (and IP addresses, as text) the leaf is valid for.
    pub names: Vec<String>,
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Unreadable {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Load and check `cert_file` (a PEM chain, leaf first) and `key_file`.
pub fn load(cert_file: &Path, key_file: &Path) -> Result<TlsCredentials, TlsError> {
    crate::trust::install_crypto_provider();
    let cert_pem = read(cert_file)?;
    let key_pem = read(key_file)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::CertificateInvalid {
            path: cert_file.to_path_buf(),
            reason: format!("not PEM: {e}"),
        })?;
    let Some(first) = chain.first() else {
        return Err(TlsError::NoCertificate {
            path: cert_file.to_path_buf(),
        });
    };
    let leaf = TrustedCert::from_der(first).map_err(|e| TlsError::CertificateInvalid {
        path: cert_file.to_path_buf(),
        reason: e.to_string(),
    })?;
    let names = subject_names(first);
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::KeyInvalid {
        path: key_file.to_path_buf(),
        reason: e.to_string(),
    })?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch {
                cert: cert_file.to_path_buf(),
                key: key_file.to_path_buf(),
            },
            other => TlsError::Unusable {
                cert: cert_file.to_path_buf(),
                key: key_file.to_path_buf(),
                reason: other.to_string(),
            },
        })?;
    // HTTP/1.1 only: fedgate's server (src/http/server.rs) speaks HTTP/1.1,
    // whose header-read timeout bounds slow clients; offering h2 here would
    // let a client pick a protocol the server then cannot serve.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsCredentials {
        config: Arc::new(config),
        leaf,
        names,
    })
}

/// The subjectAltName DNS names and IP addresses of a certificate.
fn subject_names(der: &[u8]) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return vec![];
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return vec![];
    };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
            GeneralName::IPAddress(b) => match b.len() {
                4 => Some(std::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string()),
                16 => <[u8; 16]>::try_from(*b)
                    .ok()
                    .map(|a| std::net::Ipv6Addr::from(a).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// Whether `host` is covered by one of the certificate's `names` (one
/// leading `*.` label matches exactly one label, as browsers do).
pub fn covers(names: &[String], host: &str) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    names.iter().any(|n| {
        if let Some(rest) = n.strip_prefix("*.") {
            host.split_once('.')
                .is_some_and(|(first, tail)| !first.is_empty() && tail.eq_ignore_ascii_case(rest))
        } else {
            *n == host
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_one_label() {
        let names = vec!["*.example.com".to_string(), "localhost".to_string()];
        assert!(covers(&names, "fedgate.example.com"));
        assert!(!covers(&names, "a.b.example.com"));
        assert!(!covers(&names, "example.com"));
        assert!(covers(&names, "LOCALHOST"));
        assert!(!covers(&names, "127.0.0.1"));
    }
}
