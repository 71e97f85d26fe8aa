//! Delivering a Grant to a console, in the form the console speaks.

pub mod encrypt;
pub mod saml_post;
pub mod sso;
pub mod token;
