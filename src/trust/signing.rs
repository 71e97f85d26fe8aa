//! fedgate's own signing keys: a private key (PEM, PKCS#8 or PKCS#1 RSA, or
//! PKCS#8/SEC1 EC P-256) with its certificate, as consoles will pin it.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};

use crate::identity::ErrorCode;
use crate::trust::certs::{CertError, SigAlg, TrustedCert};

/// Why a signing key could not be loaded or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SigningError {
    /// No PEM private key block, or one that does not parse.
    #[error("the private key cannot be read: {0}")]
    KeyMalformed(String),
    /// The certificate cannot be read.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// The certificate does not carry the private key's public key.
    #[error("the certificate does not match the private key")]
    Mismatch,
    /// The signature operation failed.
    #[error("signing failed")]
    Failed,
}

impl ErrorCode for SigningError {
    fn code(&self) -> &'static str {
        match self {
            SigningError::KeyMalformed(_) => "keys.key_malformed",
            SigningError::Cert(_) => "keys.cert_malformed",
            SigningError::Mismatch => "keys.cert_mismatch",
            SigningError::Failed => "keys.sign_failed",
        }
    }
}

enum Inner {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

/// A private key and its certificate.
pub struct SigningKey {
    inner: Inner,
    pub cert: TrustedCert,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key material.
        f.debug_struct("SigningKey")
            .field("cert", &self.cert.thumbprint_sha256)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Load from a PEM private key and a PEM certificate.
    pub fn from_pem(key_pem: &str, cert_pem: &str) -> Result<Self, SigningError> {
        let cert = TrustedCert::from_pem_bundle(cert_pem)?
            .into_iter()
            .next()
            .ok_or_else(|| CertError::Malformed("no certificate".into()))?;
        let (label, der) = pem_block(key_pem)
            .ok_or_else(|| SigningError::KeyMalformed("no PEM private key block".into()))?;
        let inner = match label.as_str() {
            "RSA PRIVATE KEY" => Inner::Rsa(
                RsaKeyPair::from_der(&der)
                    .map_err(|e| SigningError::KeyMalformed(e.to_string()))?,
            ),
            "EC PRIVATE KEY" => Inner::Ec(
                EcdsaKeyPair::from_private_key_der(
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    &der,
                )
                .map_err(|e| SigningError::KeyMalformed(e.to_string()))?,
            ),
            "PRIVATE KEY" => match RsaKeyPair::from_pkcs8(&der) {
                Ok(k) => Inner::Rsa(k),
                Err(_) => Inner::Ec(
                    EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &der)
                        .map_err(|e| SigningError::KeyMalformed(e.to_string()))?,
                ),
            },
            other => {
                return Err(SigningError::KeyMalformed(format!(
                    "unsupported PEM block {other:?}"
                )))
            }
        };
        let key = SigningKey { inner, cert };
        // Prove the pair: sign and verify with the certificate's key.
        let probe = b"fedgate key/certificate pairing check";
        let sig = key.sign(probe)?;
        if key.cert.verify(key.algorithm(), probe, &sig) != Some(true) {
            return Err(SigningError::Mismatch);
        }
        Ok(key)
    }

    /// The signature algorithm this key makes: RSA-SHA256 or ECDSA-SHA256 (P-256).
    pub fn algorithm(&self) -> SigAlg {
        match self.inner {
            Inner::Rsa(_) => SigAlg::RsaSha256,
            Inner::Ec(_) => SigAlg::EcdsaSha256,
        }
    }

    /// Sign `message` (RSA PKCS#1 v1.5 SHA-256, or ECDSA P-256 SHA-256 as r||s).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        let rng = SystemRandom::new();
        match &self.inner {
            Inner::Rsa(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut sig)
                    .map_err(|_| SigningError::Failed)?;
                Ok(sig)
            }
            Inner::Ec(k) => k
                .sign(&rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| SigningError::Failed),
        }
    }

    /// The public key bytes (for JWKS publication later).
    pub fn public_key(&self) -> Vec<u8> {
        match &self.inner {
            Inner::Rsa(k) => k.public_key().as_ref().to_vec(),
            Inner::Ec(k) => k.public_key().as_ref().to_vec(),
        }
    }
}

/// The first PEM block: its label and DER body.
fn pem_block(pem: &str) -> Option<(String, Vec<u8>)> {
    let start = pem.find("-----BEGIN ")?;
    let rest = &pem[start + 11..];
    let label_end = rest.find("-----")?;
    let label = rest[..label_end].to_string();
    let body_start = label_end + 5;
    let end_marker = format!("-----END {label}-----");
    let body_end = rest.find(&end_marker)?;
    let der = crate::xml::base64_decode(rest.get(body_start..body_end)?).ok()?;
    Some((label, der))
}
