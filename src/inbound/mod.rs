//! Verifiers for what Entra ID sends: SAML responses and bearer tokens.
//! Bytes and a clock in, an [`crate::identity::Identity`] or a coded error out.

pub mod bearer;
pub mod oidc;
pub mod saml;
