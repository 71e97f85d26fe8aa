//! Trust material: IdP federation metadata, certificates, JWKS.

pub mod certs;
pub mod jwks;
pub mod metadata;
pub mod signing;
