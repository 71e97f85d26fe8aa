pub mod access_review;
pub mod admin;
pub mod audit_chain;
pub mod audit_query;
pub mod audit_sink;
pub mod busy;
pub mod c14n;
pub mod claims;
pub mod cli;
pub mod config_history;
pub mod conn;
pub mod corpus;
pub mod decrypt;
pub mod decrypt_shapes;
pub mod deploy;
pub mod domains;
pub mod evidence;
pub mod example_config;
pub mod hostile;
pub mod http;
pub mod jwt;
pub mod lint;
pub mod markers;
pub mod mutation;
pub mod oidc;
pub mod oidc_state;
pub mod redis;
pub mod rotation;
pub mod saml_fixtures;
pub mod slo;
pub mod slo_peer;
pub mod sso;
pub mod sso_read;
pub mod state;
pub mod step_up;
pub mod token;
pub mod xml_oracle;
pub mod xml_parser;
pub mod xmldsig;
use std::path::{Path, PathBuf};

/// A free TCP port on 127.0.0.1, for a server a test starts as a process.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// `rel` inside the repository folder `dir`, which must exist: every file
/// the tests read is part of the repository, so a missing one is named, with
/// the likely cause, rather than left to a bare "No such file or directory".
#[track_caller]
pub fn repo_path(dir: &str, rel: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir).join(rel);
    if !path.exists() {
        panic!(
            "test data missing: {} ({dir} is part of the repository; is the checkout complete?)",
            path.display()
        );
    }
    path
}

/// A file (or, with "", the folder) of the third-party corpus, tests/corpus
/// (sources and licences in tests/corpus/README.md, per-file index in
/// tests/corpus/INDEX.md).
#[track_caller]
pub fn corpus_path(rel: &str) -> PathBuf {
    repo_path("tests/corpus", rel)
}

/// A file of fedgate's own fixtures.
#[track_caller]
pub fn fixture(rel: &str) -> PathBuf {
    repo_path("fixtures", rel)
}

/// A file of tests/data (keys and certificates made for the tests).
#[track_caller]
pub fn data(rel: &str) -> PathBuf {
    repo_path("tests/data", rel)
}

/// Every file under `dir` (from `corpus_path` or `fixture`), recursively and
/// sorted. Panics, naming `dir`, if it holds fewer than `min` files: a suite
/// that walks a folder must not pass on a short checkout by comparing less.
#[track_caller]
pub fn files_under(dir: &Path, min: usize) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("test data unreadable: {}: {e}", dir.display()));
        for e in entries {
            let p = e
                .unwrap_or_else(|e| panic!("test data unreadable: {}: {e}", dir.display()))
                .path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    if out.len() < min {
        panic!(
            "test data short: only {} files under {}, expected at least {min} (it is part of the repository; is the checkout complete?)",
            out.len(),
            dir.display()
        );
    }
    out.sort();
    out
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
    // One file per call: tests run in parallel. In cargo's scratch folder
    // for integration tests (under target/), not the system's temp dir.
    let secret = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "fedgate-graph-secret-{}-{}",
        std::process::id(),
        fedgate::util::random_id().unwrap()
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
         pysaml2, python3-saml, authlib, flask, requests and selenium)",
        venv.display()
    );
    std::process::Command::new(venv)
}

/// A `Command` for Node.js with the npm packages `scripts/install-test-deps`
/// puts at `target/test-node` (@node-saml/node-saml) on its module path.
pub fn node() -> std::process::Command {
    let modules = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-node/node_modules");
    assert!(
        modules.join("@node-saml/node-saml").exists(),
        "the tests' Node.js packages are missing: {} has no @node-saml/node-saml; run scripts/install-test-deps",
        modules.display()
    );
    let mut cmd = std::process::Command::new("node");
    cmd.env("NODE_PATH", modules);
    cmd
}

/// The link of fedgate's step-up page ("Signing you in again"), checking
/// that the page says which console asks for MFA.
#[track_caller]
pub fn step_up_link(body: &str, console: &str) -> String {
    assert!(body.contains("Signing you in again"), "{body}");
    assert!(
        body.contains(&format!("{console} requires a multi-factor sign-in")),
        "{body}"
    );
    let href = body
        .split("id=\"continue\" href=\"")
        .nth(1)
        .expect("the step-up page's link");
    href.split('"')
        .next()
        .unwrap_or_default()
        .replace("&amp;", "&")
}

/// The AuthnRequest XML a redirect URL (HTTP-Redirect binding) carries.
#[track_caller]
pub fn authn_request_in(url: &str) -> String {
    let raw = url
        .split_once('?')
        .and_then(|(_, q)| q.split('&').find_map(|kv| kv.strip_prefix("SAMLRequest=")))
        .unwrap_or_else(|| panic!("no SAMLRequest in {url}"));
    let b64 = fedgate::util::form_decode(raw).expect("a URL-encoded SAMLRequest");
    fedgate::inbound::saml::authn_request::decode_redirect(&b64).expect("a DEFLATEd AuthnRequest")
}

/// A fresh directory under the system temp directory, named
/// `fedgate-<what>-<pid>-<random>`, removed when dropped (also when the test
/// panics), so `cargo test` leaves nothing behind.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(what: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "fedgate-{what}-{}-{}",
            std::process::id(),
            fedgate::util::random_id().expect("randomness")
        ));
        std::fs::create_dir_all(&path).expect("a temp directory");
        TempDir(path)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn join(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The text of fedgate's `/metrics`.
pub async fn metrics_text(env: &fedgate::demo::Environment) -> String {
    reqwest::get(format!("{}/metrics", env.fedgate_url))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("the /metrics body")
}

/// An HTTP client that shows redirects instead of following them.
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client")
}

/// One CPU-pool worker of `env` held busy until `release` is sent (or 60 s).
pub struct HeldWorker {
    pub release: std::sync::mpsc::Sender<()>,
    pub task: tokio::task::JoinHandle<()>,
}

pub async fn hold_cpu_worker(env: &fedgate::demo::Environment) -> HeldWorker {
    let (release, hold) = std::sync::mpsc::channel::<()>();
    let (started_tx, started) = tokio::sync::oneshot::channel::<()>();
    let app = env.app.clone();
    let task = tokio::spawn(async move {
        let _ = app
            .cpu
            .continue_with(move || {
                let _ = started_tx.send(());
                let _ = hold.recv_timeout(std::time::Duration::from_secs(60));
            })
            .await;
    });
    started.await.expect("the held job started");
    HeldWorker { release, task }
}
