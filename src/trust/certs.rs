//! Certificates fedgate trusts: parsed once, inspected with x509-parser,
//! with their public keys pre-parsed for every signature algorithm the
//! profile allows, so a verification does no parsing.
//!
//! A pinned certificate is trusted for its key, not its validity period:
//! Entra and Shibboleth keep verifying with a metadata-pinned certificate
//! past its not-after, and so does fedgate. Expiry is reported (by
//! `metadata show`, and by the expiry warnings), never silently enforced.

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, ParsedPublicKey, VerificationAlgorithm};
use base64::Engine;
use serde::Serialize;
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

use crate::identity::ErrorCode;
use crate::util::hex;

/// The kind and size of a certificate's public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum KeyKind {
    Rsa { bits: usize },
    Ec { curve: Curve },
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Curve {
    #[serde(rename = "P-256")]
    P256,
    #[serde(rename = "P-384")]
    P384,
}

/// A signature algorithm of fedgate's XML-DSig profile (and of JOSE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigAlg {
    RsaSha1,
    RsaSha256,
    RsaSha384,
    RsaSha512,
    EcdsaSha256,
    EcdsaSha384,
}

impl SigAlg {
    pub const ALL: [SigAlg; 6] = [
        SigAlg::RsaSha1,
        SigAlg::RsaSha256,
        SigAlg::RsaSha384,
        SigAlg::RsaSha512,
        SigAlg::EcdsaSha256,
        SigAlg::EcdsaSha384,
    ];

    pub fn is_sha1(self) -> bool {
        self == SigAlg::RsaSha1
    }

    /// The aws-lc-rs algorithm for this signature with this key, if the
    /// combination is supported. RSA keys of 1024..2047 bits get the legacy
    /// verifiers (the caller decides whether weak keys are acceptable).
    fn verifier(self, kind: KeyKind) -> Option<&'static dyn VerificationAlgorithm> {
        use signature as s;
        let alg: &'static dyn VerificationAlgorithm = match (self, kind) {
            (SigAlg::RsaSha1, KeyKind::Rsa { bits }) if bits >= 2048 => {
                &s::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY
            }
            (SigAlg::RsaSha1, KeyKind::Rsa { .. }) => {
                &s::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY
            }
            (SigAlg::RsaSha256, KeyKind::Rsa { bits }) if bits >= 2048 => {
                &s::RSA_PKCS1_2048_8192_SHA256
            }
            (SigAlg::RsaSha256, KeyKind::Rsa { .. }) => {
                &s::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY
            }
            (SigAlg::RsaSha384, KeyKind::Rsa { bits }) if bits >= 2048 => {
                &s::RSA_PKCS1_2048_8192_SHA384
            }
            (SigAlg::RsaSha512, KeyKind::Rsa { bits }) if bits >= 2048 => {
                &s::RSA_PKCS1_2048_8192_SHA512
            }
            (SigAlg::RsaSha512, KeyKind::Rsa { .. }) => {
                &s::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY
            }
            (SigAlg::EcdsaSha256, KeyKind::Ec { curve: Curve::P256 }) => {
                &s::ECDSA_P256_SHA256_FIXED
            }
            (SigAlg::EcdsaSha384, KeyKind::Ec { curve: Curve::P384 }) => {
                &s::ECDSA_P384_SHA384_FIXED
            }
            _ => return None,
        };
        Some(alg)
    }
}

/// Why a certificate could not be taken into the trust set.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// The bytes are not a DER (or PEM) X.509 certificate.
    #[error("not an X.509 certificate: {0}")]
    Malformed(String),
    /// The public key is neither RSA nor EC P-256/P-384.
    #[error("unsupported public key type in certificate {0}")]
    UnsupportedKey(String),
}

impl ErrorCode for CertError {
    fn code(&self) -> &'static str {
        match self {
            CertError::Malformed(_) => "cert.malformed",
            CertError::UnsupportedKey(_) => "cert.unsupported_key",
        }
    }
}

/// A certificate fedgate trusts, with what an admin needs to see of it.
#[derive(Clone, Serialize)]
pub struct TrustedCert {
    /// Lower-case hex SHA-256 of the DER: the name fedgate uses everywhere.
    pub thumbprint_sha256: String,
    /// Lower-case hex SHA-1 of the DER: what Entra's portal shows.
    pub thumbprint_sha1: String,
    pub subject: String,
    pub issuer: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    pub key: KeyKind,
    /// The signature algorithm the certificate itself was signed with.
    pub signature_algorithm: String,
    #[serde(skip)]
    pub der: Vec<u8>,
    /// The DER in standard base64, to recognise this certificate in a
    /// `ds:X509Certificate` without decoding it on every verification.
    #[serde(skip)]
    der_base64: String,
    /// The SubjectPublicKeyInfo, DER (encrypting to this certificate).
    #[serde(skip)]
    pub spki: Vec<u8>,
    #[serde(skip)]
    verifiers: Vec<(SigAlg, ParsedPublicKey)>,
}

impl std::fmt::Debug for TrustedCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustedCert")
            .field("thumbprint_sha256", &self.thumbprint_sha256)
            .field("subject", &self.subject)
            .field("not_after", &self.not_after)
            .field("key", &self.key)
            .finish()
    }
}

impl TrustedCert {
    /// Take a DER certificate into trust.
    pub fn from_der(der: &[u8]) -> Result<Self, CertError> {
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|e| CertError::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(CertError::Malformed(
                "trailing bytes after the certificate".into(),
            ));
        }
        let thumb = hex(digest::digest(&digest::SHA256, der).as_ref());
        let spki = cert.public_key();
        let raw_key = spki.subject_public_key.data.to_vec();
        let key = match spki.parsed() {
            Ok(PublicKey::RSA(rsa)) => KeyKind::Rsa {
                bits: rsa.key_size(),
            },
            Ok(PublicKey::EC(_)) => {
                let curve_oid = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .map(|o| o.to_id_string());
                match curve_oid.as_deref() {
                    Some("1.2.840.10045.3.1.7") => KeyKind::Ec { curve: Curve::P256 },
                    Some("1.3.132.0.34") => KeyKind::Ec { curve: Curve::P384 },
                    _ => KeyKind::Other,
                }
            }
            _ => KeyKind::Other,
        };
        if key == KeyKind::Other {
            return Err(CertError::UnsupportedKey(thumb));
        }
        let verifiers = SigAlg::ALL
            .iter()
            .filter_map(|alg| {
                let v = alg.verifier(key)?;
                ParsedPublicKey::new(v, &raw_key).ok().map(|k| (*alg, k))
            })
            .collect::<Vec<_>>();
        if verifiers.is_empty() {
            return Err(CertError::UnsupportedKey(thumb));
        }
        let validity = cert.validity();
        Ok(TrustedCert {
            thumbprint_sha1: hex(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, der).as_ref()),
            thumbprint_sha256: thumb,
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            not_before: validity.not_before.to_datetime(),
            not_after: validity.not_after.to_datetime(),
            key,
            signature_algorithm: sig_alg_name(&cert.signature_algorithm.algorithm.to_id_string()),
            der: der.to_vec(),
            der_base64: base64::engine::general_purpose::STANDARD.encode(der),
            spki: spki.raw.to_vec(),
            verifiers,
        })
    }

    /// Take a base64 certificate (as in `ds:X509Certificate`) into trust.
    pub fn from_base64(b64: &str) -> Result<Self, CertError> {
        let der = crate::xml::base64_decode(b64)
            .map_err(|e| CertError::Malformed(format!("bad base64: {e}")))?;
        Self::from_der(&der)
    }

    /// Every certificate in a PEM bundle.
    pub fn from_pem_bundle(pem: &str) -> Result<Vec<Self>, CertError> {
        let mut out = Vec::new();
        let mut rest = pem;
        while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
            let body_start = start + "-----BEGIN CERTIFICATE-----".len();
            let Some(end) = rest[body_start..].find("-----END CERTIFICATE-----") else {
                return Err(CertError::Malformed("unterminated PEM block".into()));
            };
            out.push(Self::from_base64(&rest[body_start..body_start + end])?);
            rest = &rest[body_start + end..];
        }
        if out.is_empty() {
            return Err(CertError::Malformed("no PEM CERTIFICATE block".into()));
        }
        Ok(out)
    }

    /// Whether `b64` (a `ds:X509Certificate` text, line breaks and all) is
    /// this certificate's standard base64, byte for byte outside white space.
    /// `false` is not proof of a different certificate: another encoding of
    /// the same DER (say, non-zero padding bits) needs decoding to compare.
    pub fn is_base64_of(&self, b64: &str) -> bool {
        let mut ours = self.der_base64.as_bytes();
        if ours.is_empty() {
            return false;
        }
        if b64.len() == ours.len() {
            return b64.as_bytes() == ours;
        }
        // Line-wrapped (every 64 or 76 characters): compare line by line.
        let text = b64.as_bytes();
        let mut start = 0;
        while start <= text.len() {
            let end = memchr::memchr(b'\n', &text[start..]).map_or(text.len(), |n| start + n);
            // White space inside a line fails the comparison: the caller decodes.
            let line = text[start..end].trim_ascii();
            match ours.strip_prefix(line) {
                Some(rest) => ours = rest,
                None => return false,
            }
            start = end + 1;
        }
        ours.is_empty()
    }

    /// Verify `signature` over `message` with this certificate's key.
    /// `None` when the key cannot make this kind of signature.
    pub fn verify(&self, alg: SigAlg, message: &[u8], signature: &[u8]) -> Option<bool> {
        let (_, key) = self.verifiers.iter().find(|(a, _)| *a == alg)?;
        Some(key.verify_sig(message, signature).is_ok())
    }

    /// Whether this key can make signatures of this algorithm.
    pub fn supports(&self, alg: SigAlg) -> bool {
        self.verifiers.iter().any(|(a, _)| *a == alg)
    }

    /// RSA modulus size in bits (0 for EC keys).
    pub fn rsa_bits(&self) -> usize {
        match self.key {
            KeyKind::Rsa { bits } => bits,
            _ => 0,
        }
    }

    /// Whole days until not-after, negative once expired.
    pub fn days_left(&self, now: OffsetDateTime) -> i64 {
        (self.not_after - now).whole_days()
    }

    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        self.not_after <= now
    }
}

fn sig_alg_name(oid: &str) -> String {
    match oid {
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption".into(),
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption".into(),
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption".into(),
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption".into(),
        "1.2.840.113549.1.1.4" => "md5WithRSAEncryption".into(),
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256".into(),
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384".into(),
        other => other.to_string(),
    }
}
