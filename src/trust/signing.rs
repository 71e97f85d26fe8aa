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
    /// This key cannot make this kind of signature (an EC key and RSA-SHA512).
    #[error("the signing key cannot make {0:?} signatures")]
    AlgorithmUnsupported(SigAlg),
}

impl ErrorCode for SigningError {
    fn code(&self) -> &'static str {
        match self {
            SigningError::KeyMalformed(_) => "keys.key_malformed",
            SigningError::Cert(_) => "keys.cert_malformed",
            SigningError::Mismatch => "keys.cert_mismatch",
            SigningError::Failed => "keys.sign_failed",
            SigningError::AlgorithmUnsupported(_) => "keys.algorithm_unsupported",
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
        let inner = parse_key(key_pem)?;
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
        sign_with(&self.inner, message)
    }

    /// Sign `message` with `alg`: RSA-SHA256/384/512 with an RSA key,
    /// ECDSA-SHA256 with a P-256 key; anything else is refused.
    pub fn sign_as(&self, alg: SigAlg, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        let padding: &'static dyn signature::RsaEncoding = match (&self.inner, alg) {
            (Inner::Rsa(_), SigAlg::RsaSha256) | (Inner::Ec(_), SigAlg::EcdsaSha256) => {
                return self.sign(message)
            }
            (Inner::Rsa(_), SigAlg::RsaSha384) => &signature::RSA_PKCS1_SHA384,
            (Inner::Rsa(_), SigAlg::RsaSha512) => &signature::RSA_PKCS1_SHA512,
            _ => return Err(SigningError::AlgorithmUnsupported(alg)),
        };
        let Inner::Rsa(k) = &self.inner else {
            return Err(SigningError::AlgorithmUnsupported(alg));
        };
        let mut sig = vec![0u8; k.public_modulus_len()];
        k.sign(padding, &SystemRandom::new(), message, &mut sig)
            .map_err(|_| SigningError::Failed)?;
        Ok(sig)
    }

    /// The public key bytes (for JWKS publication later).
    pub fn public_key(&self) -> Vec<u8> {
        match &self.inner {
            Inner::Rsa(k) => k.public_key().as_ref().to_vec(),
            Inner::Ec(k) => k.public_key().as_ref().to_vec(),
        }
    }
}

fn parse_key(key_pem: &str) -> Result<Inner, SigningError> {
    let (label, der) = pem_block(key_pem)
        .ok_or_else(|| SigningError::KeyMalformed("no PEM private key block".into()))?;
    Ok(match label.as_str() {
        "RSA PRIVATE KEY" => Inner::Rsa(
            RsaKeyPair::from_der(&der).map_err(|e| SigningError::KeyMalformed(e.to_string()))?,
        ),
        "EC PRIVATE KEY" => Inner::Ec(
            EcdsaKeyPair::from_private_key_der(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &der)
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
    })
}

fn sign_with(inner: &Inner, message: &[u8]) -> Result<Vec<u8>, SigningError> {
    let rng = SystemRandom::new();
    match inner {
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

/// The public key as a JWK (RFC 7517), with `kid`, `use` and `alg`.
fn jwk_of(inner: &Inner, kid: &str) -> serde_json::Value {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    match inner {
        Inner::Rsa(k) => {
            let pk = k.public_key();
            serde_json::json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
                "n": b64(pk.modulus().big_endian_without_leading_zero()),
                "e": b64(pk.exponent().big_endian_without_leading_zero())})
        }
        Inner::Ec(k) => {
            let point = k.public_key().as_ref();
            let (x, y) = point
                .get(1..)
                .unwrap_or_default()
                .split_at(point.len().saturating_sub(1) / 2);
            serde_json::json!({"kty": "EC", "use": "sig", "alg": "ES256", "kid": kid, "crv": "P-256",
                "x": b64(x), "y": b64(y)})
        }
    }
}

/// The key id fedgate publishes: the first 16 bytes of the SHA-256 of the
/// public key, base64url.
fn kid_of(inner: &Inner) -> String {
    use base64::Engine;
    let public = match inner {
        Inner::Rsa(k) => k.public_key().as_ref().to_vec(),
        Inner::Ec(k) => k.public_key().as_ref().to_vec(),
    };
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &public);
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(d.as_ref().get(..16).unwrap_or_default())
}

/// A JOSE signing key (no certificate needed): fedgate's console tokens.
pub struct JwtSigner {
    inner: Inner,
    pub kid: String,
}

impl std::fmt::Debug for JwtSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtSigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl JwtSigner {
    pub fn from_pem(key_pem: &str) -> Result<Self, SigningError> {
        let inner = parse_key(key_pem)?;
        Ok(JwtSigner {
            kid: kid_of(&inner),
            inner,
        })
    }

    /// `ES256` or `RS256`.
    pub fn alg(&self) -> &'static str {
        match self.inner {
            Inner::Rsa(_) => "RS256",
            Inner::Ec(_) => "ES256",
        }
    }

    /// A compact JWS of `claims`.
    pub fn sign_jwt(&self, claims: &serde_json::Value) -> Result<String, SigningError> {
        self.sign_jwt_with(&serde_json::json!({"kid": self.kid}), claims)
    }

    /// A compact JWS of `claims` whose header carries `alg`, `typ` and the
    /// members of `extra_header` (a JSON object: `kid`, `x5t`…).
    pub fn sign_jwt_with(
        &self,
        extra_header: &serde_json::Value,
        claims: &serde_json::Value,
    ) -> Result<String, SigningError> {
        use base64::Engine;
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let mut header = serde_json::json!({"alg": self.alg(), "typ": "JWT"});
        if let (Some(h), Some(extra)) = (header.as_object_mut(), extra_header.as_object()) {
            for (k, v) in extra {
                h.insert(k.clone(), v.clone());
            }
        }
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = sign_with(&self.inner, input.as_bytes())?;
        Ok(format!("{input}.{}", b64(&sig)))
    }

    pub fn jwk(&self) -> serde_json::Value {
        jwk_of(&self.inner, &self.kid)
    }
}

/// The first PEM block: its label and DER body.
pub(crate) fn pem_block(pem: &str) -> Option<(String, Vec<u8>)> {
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
