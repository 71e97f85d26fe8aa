pub mod c14n;
pub mod cli;
pub mod corpus;
pub mod deploy;
pub mod http;
pub mod jwt;
pub mod mutation;
pub mod oidc;
pub mod redis;
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let g = std::sync::Arc::new(fedgate::mock::graph::MockGraph {
        base: base.clone(),
        client_id: "graph-app".into(),
        client_secret: "graph-secret".into(),
        memberships,
        page_size: 2,
        down,
        requests: Default::default(),
    });
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let served = g.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, fedgate::mock::graph::router(served))
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    (base, g, tx)
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
    std::fs::write(&secret, "graph-secret\n").unwrap();
    format!(
        "\n[tenants.graph]\nclient_id = \"graph-app\"\nclient_secret_file = \"{}\"\ntoken_url = \"{base}/token\"\nbase_url = \"{base}/v1.0\"\n",
        secret.display()
    )
}
