//! How fedgate proves itself to a tenant's Entra token endpoint: a client
//! secret, or a certificate credential (the app registration's "Certificates
//! & secrets"), with which fedgate signs a client assertion JWT
//! (`private_key_jwt`, RFC 7523), the way Entra documents it: RS256, the
//! certificate's thumbprints in `x5t` (SHA-1) and `x5t#S256` headers, `aud`
//! the token endpoint, `iss` = `sub` = the client id, a fresh `jti`, five
//! minutes of life.

use base64::Engine;
use serde_json::json;
use time::OffsetDateTime;

use crate::trust::signing::{JwtSigner, SigningError};

/// The `client_assertion_type` of a JWT client assertion.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A client credential. Its `Debug` never shows the secret.
pub enum ClientCredential {
    Secret(String),
    Certificate {
        signer: JwtSigner,
        /// The certificate (for its expiry).
        cert: Box<crate::trust::certs::TrustedCert>,
        /// base64url SHA-1 of the certificate's DER (`x5t`).
        x5t: String,
        /// base64url SHA-256 of the certificate's DER (`x5t#S256`).
        x5t_s256: String,
    },
}

impl std::fmt::Debug for ClientCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientCredential::Secret(_) => f.write_str("ClientCredential::Secret(..)"),
            ClientCredential::Certificate { x5t_s256, .. } => {
                write!(f, "ClientCredential::Certificate(x5t#S256={x5t_s256})")
            }
        }
    }
}

impl ClientCredential {
    /// A certificate credential from PEM: an RSA private key (PKCS#8 or
    /// PKCS#1) and the certificate uploaded to the app registration.
    pub fn certificate(key_pem: &str, cert_pem: &str) -> Result<Self, SigningError> {
        // The pair must match: SigningKey checks the certificate carries the key.
        let pair = crate::trust::signing::SigningKey::from_pem(key_pem, cert_pem)?;
        let signer = JwtSigner::from_pem(key_pem)?;
        if signer.alg() != "RS256" {
            return Err(SigningError::KeyMalformed(
                "Entra client assertions are RS256: the certificate credential needs an RSA key"
                    .into(),
            ));
        }
        let der = &pair.cert.der;
        let b64 = |d: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d);
        let sha1 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, der);
        let sha256 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
        Ok(ClientCredential::Certificate {
            cert: Box::new(pair.cert.clone()),
            signer,
            x5t: b64(sha1.as_ref()),
            x5t_s256: b64(sha256.as_ref()),
        })
    }

    /// A certificate credential from a PFX/PKCS#12 file (as Windows and
    /// Azure Key Vault export it): its private key and leaf certificate.
    pub fn from_pfx(pfx: &[u8], password: &str) -> Result<Self, SigningError> {
        use p12_keystore::{KeyStore, Pkcs12ImportPolicy};
        let store = KeyStore::from_pkcs12(pfx, password, Pkcs12ImportPolicy::Strict)
            .map_err(|e| SigningError::KeyMalformed(format!("PFX: {e} (wrong password?)")))?;
        let (_, chain) = store.private_key_chain().ok_or_else(|| {
            SigningError::KeyMalformed("PFX: no private key with its certificate".into())
        })?;
        let cert = chain.certs().first().ok_or_else(|| {
            SigningError::KeyMalformed("PFX: the private key has no certificate".into())
        })?;
        let pem = |label: &str, der: &[u8]| {
            let b64 = base64::engine::general_purpose::STANDARD.encode(der);
            format!("-----BEGIN {label}-----\n{b64}\n-----END {label}-----\n")
        };
        Self::certificate(
            &pem("PRIVATE KEY", chain.key().as_der()),
            &pem("CERTIFICATE", cert.as_der()),
        )
    }

    /// The form parameters that authenticate `client_id` at `token_url`.
    pub fn form_params(
        &self,
        client_id: &str,
        token_url: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<(&'static str, String)>, SigningError> {
        match self {
            ClientCredential::Secret(s) => Ok(vec![
                ("client_id", client_id.to_string()),
                ("client_secret", s.clone()),
            ]),
            ClientCredential::Certificate { .. } => Ok(vec![
                ("client_id", client_id.to_string()),
                ("client_assertion_type", ASSERTION_TYPE.to_string()),
                (
                    "client_assertion",
                    self.client_assertion(client_id, token_url, now)?,
                ),
            ]),
        }
    }

    /// A signed client assertion (certificate credentials only).
    pub fn client_assertion(
        &self,
        client_id: &str,
        token_url: &str,
        now: OffsetDateTime,
    ) -> Result<String, SigningError> {
        let ClientCredential::Certificate {
            signer,
            x5t,
            x5t_s256,
            ..
        } = self
        else {
            return Err(SigningError::KeyMalformed(
                "a client secret makes no client assertion".into(),
            ));
        };
        let jti = crate::util::random_id().ok_or(SigningError::Failed)?;
        let iat = now.unix_timestamp();
        let header = json!({"x5t": x5t, "x5t#S256": x5t_s256});
        let claims = json!({
            "aud": token_url,
            "iss": client_id,
            "sub": client_id,
            "jti": jti,
            "nbf": iat,
            "iat": iat,
            "exp": iat + 300,
        });
        signer.sign_jwt_with(&header, &claims)
    }
}
