pub mod c14n;
pub mod cli;
pub mod corpus;
pub mod http;
pub mod jwt;
pub mod mutation;
pub mod saml_fixtures;
pub mod token;
pub mod xmldsig;
use std::path::PathBuf;

/// A file of the shared third-party corpus, read in place.
pub fn corpus_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpus")
        .join(rel)
}

/// A file of fedgate's own fixtures.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(rel)
}
