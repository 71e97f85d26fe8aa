pub mod admin;
pub mod c14n;
pub mod cli;
pub mod corpus;
pub mod deploy;
pub mod http;
pub mod jwt;
pub mod lint;
pub mod mutation;
pub mod oidc;
pub mod redis;
pub mod rotation;
pub mod saml_fixtures;
pub mod token;
pub mod xml_oracle;
pub mod xml_parser;
pub mod xmldsig;
use std::path::PathBuf;

/// A free TCP port on 127.0.0.1, for a server a test starts as a process.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

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

/// A file of tests/data (keys and certificates made for the tests).
pub fn data(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

/// A mock Microsoft Graph on loopback (2 groups per page), and a handle to stop it.
pub async fn mock_graph(
    down: bool,
    memberships: std::collections::HashMap<String, Vec<String>>,
) -> (
    String,
    std::sync::Arc<fedgate::mock::graph::MockGraph>,
    tokio::sync::oneshot::Sender<()>,
) {
    fedgate::mock::graph::serve_loopback(memberships, 2, down)
        .await
        .unwrap()
}

/// The `[tenants.graph]` block pointing at a mock Graph (appended after the
/// configuration, it belongs to the last `[[tenants]]`).
pub fn graph_toml(base: &str) -> String {
    // One file per call: tests run in parallel.
    let secret = std::env::temp_dir().join(format!(
        "fedgate-graph-secret-{}-{}",
        std::process::id(),
        fedgate::gateway::random_id().unwrap()
    ));
    fedgate::mock::graph::tenant_toml(base, &secret).unwrap()
}

/// A `Command` for the Python the tests run their oracles and independent
/// peers with: the virtual environment `scripts/install-test-deps` makes at
/// `target/test-venv`, or the interpreter `FEDGATE_TEST_PYTHON` names (for
/// those who manage Python themselves). Never the system's `python3`.
pub fn python() -> std::process::Command {
    if let Some(p) = std::env::var_os("FEDGATE_TEST_PYTHON").filter(|p| !p.is_empty()) {
        return std::process::Command::new(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python");
    assert!(
        venv.exists(),
        "the tests' Python is missing: {} does not exist; run scripts/install-test-deps \
         (or set FEDGATE_TEST_PYTHON to a Python with lxml, signxml, pyjwt, cryptography, \
         pysaml2, authlib, flask, requests and selenium)",
        venv.display()
    );
    std::process::Command::new(venv)
}
