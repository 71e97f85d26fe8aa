//! Trust material: IdP federation metadata, certificates, JWKS.

pub mod certs;
pub mod credential;
pub mod graph;
pub mod jwks;
pub mod keys;
pub mod metadata;
pub mod oidc;
pub mod refresh;
pub mod signing;
pub mod tls;

/// Make aws-lc-rs rustls's process-wide crypto provider (two providers are
/// compiled in through dependencies; the first call wins, later ones are no-ops).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
