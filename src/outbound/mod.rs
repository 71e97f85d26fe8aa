//! Delivering a Grant to a console, in the form the console speaks.

pub mod saml_post;
pub mod token;
