//! Certificate rotation: a tenant's metadata URL refreshed through the real
//! fetch path (conditional GET, last-known-good on failure, persisted for a
//! restart), a two-certificate rollover, and the OIDC JWKS refetch on an
//! unknown `kid` with its rate limit.

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use fedgate::demo::{self, CONSOLE_ID, TENANT_ID};
use fedgate::gateway::{App, Outcome};
use fedgate::mock::entra::{self, MockLogin};
use fedgate::trust::refresh::Refreshed;
use fedgate::trust::signing::SigningKey;

/// What the metadata endpoint serves: a document, or an outage.
struct Served {
    body: Option<String>,
    etag: String,
    requests: usize,
    conditional_hits: usize,
}

async fn serve_metadata(state: Arc<Mutex<Served>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/federationmetadata.xml",
        listener.local_addr().unwrap()
    );
    let app = axum::Router::new().route(
        "/federationmetadata.xml",
        axum::routing::get(move |headers: HeaderMap| {
            let state = state.clone();
            async move {
                let mut s = state.lock().unwrap();
                s.requests += 1;
                let Some(body) = s.body.clone() else {
                    return StatusCode::SERVICE_UNAVAILABLE.into_response();
                };
                if headers.get("if-none-match").and_then(|v| v.to_str().ok()) == Some(&s.etag) {
                    s.conditional_hits += 1;
                    return StatusCode::NOT_MODIFIED.into_response();
                }
                ([("etag", s.etag.clone())], body).into_response()
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

fn key(name: &str) -> SigningKey {
    let read =
        |f: &str| std::fs::read_to_string(super::fixture(&format!("saml/keys/{f}"))).unwrap();
    SigningKey::from_pem(
        &read(&format!("{name}_key.pem")),
        &read(&format!("{name}_cert.pem")),
    )
    .unwrap()
}

fn metadata(keys: &[&SigningKey]) -> String {
    let certs: Vec<_> = keys.iter().map(|k| &k.cert).collect();
    entra::federation_metadata(TENANT_ID, &certs)
}

/// A config whose tenant reads its metadata from `url`; the state directory in `dir`.
fn app(dir: &std::path::Path, url: &str) -> Result<App, String> {
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
    let toml = format!(
        r#"
[server]
public_url = "https://fedgate.example.test"
[signing]
key_file = "{data}/fedgate_rsa_key.pem"
cert_file = "{data}/fedgate_rsa_cert.pem"
[[tenants]]
id = "contoso"
entra_tenant_id = "{TENANT_ID}"
domains = ["contoso.example"]
metadata_url = "{url}"
metadata_refresh_secs = 1
[[consoles]]
id = "{CONSOLE_ID}"
kind = "autotask"
display_name = "Console"
identifier = "https://console.example.test/singlesignon/saml/metadata"
reply_url = "https://console.example.test/singlesignon/saml/SSO"
extra_roles = ["Backup Operator"]
[[rules]]
id = "eng"
tenant = "contoso"
console = "{CONSOLE_ID}"
groups = ["{group}"]
roles = ["Backup Operator"]
scope = "contoso"
"#,
        group = demo::ENGINEERING_GROUP
    );
    let path = dir.join("fedgate.toml");
    std::fs::write(&path, toml).unwrap();
    let config = fedgate::config::Config::load(&path, &[]).map_err(|e| e.to_string())?;
    App::new(
        config,
        Arc::new(fedgate::store::memory::MemoryStore::new()),
        Box::new(time::OffsetDateTime::now_utc),
    )
    .map_err(|e| e.to_string())
}

/// A login signed with `key`: "ok" or the refusal code.
async fn login(app: &App, key: &SigningKey) -> String {
    let login = MockLogin {
        tenant_id: TENANT_ID.into(),
        sp_entity_id: "https://fedgate.example.test/saml/contoso/metadata".into(),
        acs_url: "https://fedgate.example.test/saml/contoso/acs".into(),
        issue_instant: time::OffsetDateTime::now_utc(),
        in_response_to: None,
        id_seed: fedgate::util::random_id().unwrap(),
    };
    let xml = entra::signed_response(&demo::alice(), &login, key).unwrap();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(xml);
    match fedgate::gateway::saml_acs(app, "contoso", b64, Some(CONSOLE_ID), None, None).await {
        Outcome::Deliver { .. } => "ok".into(),
        Outcome::Refused(r) => r.code.to_string(),
        other => format!("{other:?}"),
    }
}

/// Set a file's modification time `secs_ago` seconds in the past.
fn set_mtime(path: &std::path::Path, secs_ago: u64) {
    let when = std::time::SystemTime::now() - std::time::Duration::from_secs(secs_ago);
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(when))
        .unwrap();
}

/// Seconds since a file was last modified.
fn age_of(path: &std::path::Path) -> u64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map(|t| t.elapsed().unwrap_or_default().as_secs())
        .unwrap()
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "fedgate-{name}-{}-{}",
        std::process::id(),
        fedgate::util::random_id().unwrap()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idp_outage_keeps_the_last_known_good_metadata_even_across_a_restart() {
    fedgate::trust::install_crypto_provider();
    let current = key("idp_current");
    let state = Arc::new(Mutex::new(Served {
        body: Some(metadata(&[&current])),
        etag: "\"v1\"".into(),
        requests: 0,
        conditional_hits: 0,
    }));
    let url = serve_metadata(state.clone()).await;
    let dir = tempdir("lkg");
    let a = app(&dir, &url).unwrap();
    // Before the first fetch nothing is trusted: refused, with its code.
    assert_eq!(login(&a, &current).await, "metadata.unavailable");
    let r = a.refresh_trust().await;
    assert!(matches!(r[0].1, Ok(Refreshed::Updated)), "{r:?}");
    assert_eq!(login(&a, &current).await, "ok");
    assert!(dir.join("state/contoso-metadata.xml").exists());
    // The next fetch is conditional: 304, nothing changes, and the saved
    // copy's modification time records that the IdP confirmed it.
    let saved = dir.join("state/contoso-metadata.xml");
    set_mtime(&saved, 3 * 86_400);
    assert!(matches!(
        a.refresh_trust().await[0].1,
        Ok(Refreshed::Unchanged)
    ));
    assert_eq!(state.lock().unwrap().conditional_hits, 1);
    assert!(age_of(&saved) < 60, "touched on the 304");

    // The IdP goes down: refreshes fail and are counted; logins still work.
    state.lock().unwrap().body = None;
    let r = a.refresh_trust().await;
    assert!(r[0].1.as_ref().unwrap_err().to_string().contains("503"));
    assert_eq!(login(&a, &current).await, "ok");
    assert!(a
        .trust_metrics()
        .contains("fedgate_metadata_refresh_failures_total{tenant=\"contoso\"} 1"));
    // A document without a signing certificate is refused the same way.
    state.lock().unwrap().body = Some(metadata(&[]));
    state.lock().unwrap().etag = "\"v-broken\"".into();
    let r = a.refresh_trust().await;
    assert_eq!(
        fedgate::identity::ErrorCode::code(r[0].1.as_ref().unwrap_err()),
        "metadata.no_signing_cert"
    );
    assert_eq!(login(&a, &current).await, "ok");

    // A restart during the outage starts on the saved copy, and knows its
    // age: the metric shows it, `check` warns with it, and past a week
    // without the IdP confirming it, `check` calls it an error.
    state.lock().unwrap().body = None;
    for (days, severity) in [(2, "warning"), (10, "error")] {
        set_mtime(&saved, days * 86_400);
        let b = app(&dir, &url).unwrap();
        assert!(b.refresh_trust().await[0].1.is_err());
        assert!(b.tenants_without_metadata().is_empty());
        assert_eq!(login(&b, &current).await, "ok");
        let metric = b
            .trust_metrics()
            .lines()
            .find_map(|l| l.strip_prefix("fedgate_metadata_age_seconds{tenant=\"contoso\"} "))
            .map(|v| v.parse::<i64>().unwrap())
            .expect("the age of the saved copy is a metric");
        assert!((metric - days as i64 * 86_400).abs() < 120, "{metric}");
        let report =
            fedgate::check::check(&b, time::OffsetDateTime::now_utc(), false, vec![]).await;
        let finding = report
            .findings
            .iter()
            .find(|f| f.code == "check.metadata_unreachable")
            .expect("the outage is a finding");
        assert_eq!(finding.severity, severity, "{}", finding.message);
        assert!(
            finding.message.contains(&format!("confirmed it {days}d ")),
            "{}",
            finding.message
        );
    }
    // Without a saved copy the tenant has no metadata, and `serve` refuses to start.
    let empty = tempdir("lkg-empty");
    let c = app(&empty, &url).unwrap();
    c.refresh_trust().await;
    assert_eq!(c.tenants_without_metadata(), vec!["contoso".to_string()]);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&empty);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollover_with_two_certificates_then_the_old_one_removed() {
    fedgate::trust::install_crypto_provider();
    let (current, next) = (key("idp_current"), key("idp_next"));
    let state = Arc::new(Mutex::new(Served {
        body: Some(metadata(&[&current])),
        etag: "\"1\"".into(),
        requests: 0,
        conditional_hits: 0,
    }));
    let url = serve_metadata(state.clone()).await;
    let dir = tempdir("rollover");
    let a = Arc::new(app(&dir, &url).unwrap());
    a.refresh_trust().await;
    assert_eq!(login(&a, &next).await, "saml.cert_untrusted");
    // Entra publishes the next certificate beside the current one; the
    // refresh loop (1 s interval here) picks it up.
    let loops = a.spawn_refresh();
    {
        let mut s = state.lock().unwrap();
        s.body = Some(metadata(&[&current, &next]));
        s.etag = "\"2\"".into();
    }
    let mut waited = 0;
    while login(&a, &next).await != "ok" {
        waited += 1;
        assert!(waited < 50, "the refresh loop never took the new metadata");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(login(&a, &current).await, "ok");
    // The old certificate is removed: its signatures are refused.
    {
        let mut s = state.lock().unwrap();
        s.body = Some(metadata(&[&next]));
        s.etag = "\"3\"".into();
    }
    a.refresh_trust().await;
    assert_eq!(login(&a, &current).await, "saml.cert_untrusted");
    assert_eq!(login(&a, &next).await, "ok");
    for l in loops {
        l.abort();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_kid_refetches_the_jwks_once_and_then_is_rate_limited() {
    use fedgate::trust::oidc::{verify_token, ProviderTrust};
    use fedgate::trust::signing::JwtSigner;
    fedgate::trust::install_crypto_provider();
    let read =
        |f: &str| std::fs::read_to_string(super::fixture(&format!("saml/keys/{f}"))).unwrap();
    let (k1, k2, k3) = (
        JwtSigner::from_pem(&read("idp_current_key.pem")).unwrap(),
        JwtSigner::from_pem(&read("idp_next_key.pem")).unwrap(),
        JwtSigner::from_pem(&read("attacker_key.pem")).unwrap(),
    );
    let jwks = Arc::new(Mutex::new((
        serde_json::json!({"keys": [k1.jwk()]}),
        0usize,
    )));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let issuer = format!("{base}/{TENANT_ID}/v2.0");
    let (j, b) = (jwks.clone(), base.clone());
    let iss = issuer.clone();
    let router = axum::Router::new()
        .route(
            &format!("/{TENANT_ID}/v2.0/.well-known/openid-configuration"),
            axum::routing::get(move || {
                let (b, iss) = (b.clone(), iss.clone());
                async move {
                    axum::Json(serde_json::json!({"issuer": iss, "authorization_endpoint": format!("{b}/a"), "token_endpoint": format!("{b}/t"), "jwks_uri": format!("{b}/keys")}))
                }
            }),
        )
        .route(
            "/keys",
            axum::routing::get(move || {
                let j = j.clone();
                async move {
                    let mut g = j.lock().unwrap();
                    g.1 += 1;
                    axum::Json(g.0.clone())
                }
            }),
        );
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let state_dir = tempdir("oidc-state");
    let state = state_dir.join("contoso-oidc.json");
    let trust = ProviderTrust::new(issuer.clone(), None, None)
        .unwrap()
        .with_state_file(state.clone());
    let policy = fedgate::inbound::bearer::BearerPolicy::new(issuer.clone(), "api://fedgate");
    let now = time::OffsetDateTime::now_utc();
    let token = |k: &JwtSigner| {
        k.sign_jwt(&serde_json::json!({"iss": issuer, "aud": "api://fedgate", "tid": TENANT_ID, "oid": "o1", "sub": "s1", "iat": now.unix_timestamp(), "nbf": now.unix_timestamp(), "exp": now.unix_timestamp() + 600}))
            .unwrap()
    };
    let code =
        |r: Result<fedgate::identity::Identity, fedgate::trust::oidc::TokenTrustError>| match r {
            Ok(_) => "ok".to_string(),
            Err(e) => fedgate::identity::ErrorCode::code(&e).to_string(),
        };
    assert_eq!(
        code(verify_token(&trust, &token(&k1), &policy, now, None).await),
        "ok"
    );
    assert_eq!(jwks.lock().unwrap().1, 1);
    // Entra rolls its key: the JWKS now holds k2; a k2 token triggers one refetch.
    jwks.lock().unwrap().0 = serde_json::json!({"keys": [k1.jwk(), k2.jwk()]});
    assert_eq!(
        code(verify_token(&trust, &token(&k2), &policy, now, None).await),
        "ok"
    );
    assert_eq!(jwks.lock().unwrap().1, 2);
    // Unknown kids right after: no new fetch within 5 minutes, refused.
    for _ in 0..5 {
        assert_eq!(
            code(verify_token(&trust, &token(&k3), &policy, now, None).await),
            "jwt.kid_unknown"
        );
    }
    assert_eq!(jwks.lock().unwrap().1, 2, "the refetch is rate limited");
    // Concurrent unknown kids: still no fetch (single flight + rate limit).
    let trust = Arc::new(trust);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (t, p, tok) = (trust.clone(), policy.clone(), token(&k3));
            tokio::spawn(async move { verify_token(&t, &tok, &p, now, None).await.is_err() })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap());
    }
    assert_eq!(jwks.lock().unwrap().1, 2);
    // A restart while the provider is unreachable: the saved discovery and
    // JWKS verify tokens (k2 included).
    assert!(state.exists());
    let restarted = ProviderTrust::new(
        issuer.clone(),
        Some("http://127.0.0.1:9/unreachable/.well-known/openid-configuration".into()),
        None,
    )
    .unwrap()
    .with_state_file(state.clone());
    assert_eq!(
        code(verify_token(&restarted, &token(&k2), &policy, now, None).await),
        "ok"
    );
    // Without the saved copy the same outage refuses, with the trust's code.
    let cold = ProviderTrust::new(
        issuer.clone(),
        Some("http://127.0.0.1:9/unreachable/.well-known/openid-configuration".into()),
        None,
    )
    .unwrap();
    assert_eq!(
        code(verify_token(&cold, &token(&k2), &policy, now, None).await),
        "oidc.fetch_failed"
    );
    let _ = std::fs::remove_dir_all(&state_dir);
}

fn fedgate_cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_fedgate"))
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fedgate_keys_generate_promote_retire_with_reload_and_publication() {
    fedgate::trust::install_crypto_provider();
    let dir = tempdir("keys");
    let keys = dir.join("keys");
    std::fs::create_dir_all(keys.join("current")).unwrap();
    std::fs::copy(
        super::data("fedgate_rsa_key.pem"),
        keys.join("current/key.pem"),
    )
    .unwrap();
    std::fs::copy(
        super::data("fedgate_rsa_cert.pem"),
        keys.join("current/cert.pem"),
    )
    .unwrap();
    let toml = format!(
        "[server]\npublic_url = \"https://fedgate.example.test\"\n[signing]\nkey_dir = \"keys\"\n\
[[tenants]]\nid = \"contoso\"\nentra_tenant_id = \"{TENANT_ID}\"\ndomains = [\"contoso.example\"]\nmetadata_file = \"{}\"\n",
        super::fixture("saml/idp_metadata.xml").display()
    );
    std::fs::write(dir.join("fedgate.toml"), toml).unwrap();
    let config = fedgate::config::Config::load(&dir.join("fedgate.toml"), &[]).unwrap();
    let app = App::new(
        config,
        Arc::new(fedgate::store::memory::MemoryStore::new()),
        Box::new(time::OffsetDateTime::now_utc),
    )
    .unwrap();
    let published = |app: &App| {
        fedgate::trust::metadata::IdpMetadata::parse(app.idp_metadata().as_bytes())
            .unwrap()
            .signing_certs
            .iter()
            .map(|c| c.thumbprint_sha256.clone())
            .collect::<Vec<_>>()
    };
    let jwks_len = |app: &App| app.jwks()["keys"].as_array().unwrap().len();
    let original = app.keys().current.cert().thumbprint_sha256.clone();
    assert_eq!(published(&app), vec![original.clone()]);
    assert!(!app.reload_keys().unwrap(), "nothing changed yet");

    // generate-next: published at once (metadata and JWKS), signs nothing.
    let k = keys.to_str().unwrap();
    let out = fedgate_cli(&["keys", "generate-next", "--dir", k]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(app.reload_keys().unwrap());
    let both = published(&app);
    assert_eq!(both.len(), 2);
    assert_eq!(both[0], original, "current still signs");
    assert_eq!(jwks_len(&app), 2);
    assert_eq!(app.keys().current.cert().thumbprint_sha256, original);
    // A second generate-next is refused: promote first.
    assert_eq!(
        fedgate_cli(&["keys", "generate-next", "--dir", k])
            .status
            .code(),
        Some(2)
    );

    // promote: the next key signs, the old one stays published (grace).
    assert!(fedgate_cli(&["keys", "promote", "--dir", k])
        .status
        .success());
    assert!(app.reload_keys().unwrap());
    assert_eq!(app.keys().current.cert().thumbprint_sha256, both[1]);
    assert_eq!(published(&app), vec![both[1].clone(), original.clone()]);
    let status: serde_json::Value =
        serde_json::from_slice(&fedgate_cli(&["keys", "status", "--dir", k, "--json"]).stdout)
            .unwrap();
    assert_eq!(status[0]["role"], "current");
    assert_eq!(status[0]["signs"], true);
    assert_eq!(status[1]["role"], "previous");
    assert_eq!(status[1]["published"], true);

    // retire: only the new key is published.
    assert!(fedgate_cli(&["keys", "retire", "--dir", k])
        .status
        .success());
    assert!(app.reload_keys().unwrap());
    assert_eq!(published(&app), vec![both[1].clone()]);
    assert_eq!(jwks_len(&app), 1);
    // A broken directory keeps the keys in force.
    std::fs::write(keys.join("current/key.pem"), "not a key").unwrap();
    assert!(app.reload_keys().is_err());
    assert_eq!(published(&app), vec![both[1].clone()]);
    // The expiry metric names every published certificate.
    assert!(app.trust_metrics().contains(&format!(
        "fedgate_cert_expiry_seconds{{console=\"*\",kind=\"fedgate_signing\",thumbprint=\"{}\"}}",
        both[1]
    )));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_rotation_drill_passes_on_loopback_and_writes_its_report() {
    let report = std::env::temp_dir().join(format!("fedgate-drill-{}.json", std::process::id()));
    let out = fedgate_cli(&[
        "drill",
        "rotate",
        "--demo",
        "--logins",
        "10",
        "--report",
        report.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(r["ok"], true);
    let phases = r["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 7);
    for p in phases {
        assert_eq!(p["unexpected"], 0, "{p}");
    }
    // Phase 3 refused the old tenant key; phase 6 the retired fedgate key.
    assert_eq!(phases[3]["refusal_codes"]["saml.cert_untrusted"], 5);
    assert_eq!(phases[6]["refusal_codes"]["console:saml.cert_untrusted"], 1);
    let _ = std::fs::remove_file(&report);
}

#[test]
fn expiry_dates_feed_the_metric() {
    // A secret recorded as expiring is exported with its date.
    let dir = tempdir("expiry");
    let toml = format!(
        "[server]\npublic_url = \"https://fedgate.example.test\"\n[signing]\nkey_file = \"{d}/fedgate_rsa_key.pem\"\ncert_file = \"{d}/fedgate_rsa_cert.pem\"\n\
[[tenants]]\nid = \"contoso\"\nentra_tenant_id = \"{TENANT_ID}\"\ndomains = [\"contoso.example\"]\nmetadata_file = \"{md}\"\n[tenants.graph]\nclient_id = \"g\"\nclient_secret_file = \"secret\"\nsecret_expires = \"2027-01-31\"\n",
        d = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data"),
        md = super::fixture("saml/idp_metadata.xml").display()
    );
    std::fs::write(dir.join("secret"), "s").unwrap();
    std::fs::write(dir.join("fedgate.toml"), &toml).unwrap();
    let config = fedgate::config::Config::load(&dir.join("fedgate.toml"), &[]).unwrap();
    let app = App::new(
        config,
        Arc::new(fedgate::store::memory::MemoryStore::new()),
        Box::new(|| time::macros::datetime!(2027-01-01 0:00 UTC)),
    )
    .unwrap();
    let m = app.trust_metrics();
    assert!(
        m.contains("fedgate_cert_expiry_seconds{tenant=\"contoso\",kind=\"client_secret\",thumbprint=\"-\"} 2592000"),
        "{m}"
    );
    // Under 30 days: warned about (the daily log of `serve`).
    let soon = App::new(
        fedgate::config::Config::load(&dir.join("fedgate.toml"), &[]).unwrap(),
        Arc::new(fedgate::store::memory::MemoryStore::new()),
        Box::new(|| time::macros::datetime!(2027-01-20 0:00 UTC)),
    )
    .unwrap();
    assert!(soon.warn_expiries() >= 1);
    assert!(soon
        .expiries()
        .iter()
        .any(|e| e.kind == "client_secret" && (e.not_after - soon.now()).whole_days() == 11));
    // A bad date is a configuration error.
    std::fs::write(
        dir.join("fedgate.toml"),
        toml.replace("2027-01-31", "31/01/2027"),
    )
    .unwrap();
    let e = fedgate::config::Config::load(&dir.join("fedgate.toml"), &[]).unwrap_err();
    assert!(e.to_string().contains("secret_expires"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_reports_expired_and_undated_credentials_and_unreachable_consoles() {
    let dir = tempdir("check");
    let read =
        |f: &str| std::fs::read_to_string(super::fixture(&format!("saml/keys/{f}"))).unwrap();
    let cert = |f: &str| {
        fedgate::trust::certs::TrustedCert::from_pem_bundle(&read(f))
            .unwrap()
            .remove(0)
    };
    let (current, expired) = (cert("idp_current_cert.pem"), cert("idp_expired_cert.pem"));
    std::fs::write(
        dir.join("good.xml"),
        entra::federation_metadata(TENANT_ID, &[&current]),
    )
    .unwrap();
    std::fs::write(
        dir.join("old.xml"),
        entra::federation_metadata(TENANT_ID, &[&current, &expired]),
    )
    .unwrap();
    std::fs::write(dir.join("secret"), "s").unwrap();
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
    let base = format!(
        "[server]\npublic_url = \"https://fedgate.example.test\"\n[signing]\nkey_file = \"{data}/fedgate_rsa_key.pem\"\ncert_file = \"{data}/fedgate_rsa_cert.pem\"\n\
[[consoles]]\nid = \"c1\"\nkind = \"generic\"\ndisplay_name = \"C1\"\nidentifier = \"https://c1.example.test\"\nreply_url = \"https://c1.example.test/acs\"\n\
[[rules]]\nid = \"r1\"\ntenant = \"contoso\"\nconsole = \"c1\"\ngroups = [\"g\"]\nroles = [\"viewer\"]\n"
    );
    let run = |name: &str, toml: String| {
        let path = dir.join(name);
        std::fs::write(&path, toml).unwrap();
        fedgate_cli(&[
            "check",
            "--config",
            path.to_str().unwrap(),
            "--offline",
            "--now",
            "2026-11-23T00:00:00Z",
            "--json",
        ])
    };
    // A clean configuration: exit 0, no finding.
    let clean = format!(
        "{base}[[tenants]]\nid = \"contoso\"\nentra_tenant_id = \"{TENANT_ID}\"\ndomains = [\"contoso.example\"]\nmetadata_file = \"good.xml\"\n\
[tenants.graph]\nclient_id = \"g\"\nclient_secret_file = \"secret\"\nsecret_expires = \"2027-06-30\"\n"
    );
    let out = run("clean.toml", clean);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["errors"], 0);
    // Expired certificate, an undated secret, a secret about to expire, SHA-1
    // allowed, a console nobody reaches.
    let bad = format!(
        "{base}[[consoles]]\nid = \"lonely\"\nkind = \"generic\"\ndisplay_name = \"L\"\nidentifier = \"https://l.example.test\"\nreply_url = \"https://l.example.test/acs\"\n\
[[tenants]]\nid = \"contoso\"\nentra_tenant_id = \"{TENANT_ID}\"\ndomains = [\"contoso.example\"]\nmetadata_file = \"old.xml\"\nallow_sha1 = true\n\
[tenants.graph]\nclient_id = \"g\"\nclient_secret_file = \"secret\"\n\
[[consoles]]\nid = \"at\"\nkind = \"autotask\"\ndisplay_name = \"A\"\nidentifier = \"https://contoso.backup.autotask.net/singlesignon/saml/metadata\"\nreply_url = \"https://contoso.backup.autotask.net/singlesignon/saml/SSO/\"\n\
[[tenants]]\nid = \"fabrikam\"\nentra_tenant_id = \"{TENANT_ID}\"\ndomains = [\"fabrikam.example\"]\nmetadata_file = \"good.xml\"\n\
[tenants.graph]\nclient_id = \"g\"\nclient_secret_file = \"secret\"\nsecret_expires = \"2026-12-01\"\n"
    );
    let out = run("bad.toml", bad);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{v}");
    let codes: Vec<(String, String)> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (code, sev) in [
        ("check.credential_expired", "error"),
        ("check.secret_without_expiry", "error"),
        ("check.credential_expiring", "warning"),
        ("check.sha1_allowed", "warning"),
        ("check.console_unreachable", "warning"),
        ("lint.trailing_slash", "error"),
    ] {
        assert!(
            codes.contains(&(code.to_string(), sev.to_string())),
            "{code} {sev}: {codes:?}"
        );
    }
    let contoso = v["summary"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "contoso")
        .unwrap();
    assert_eq!(contoso["status"], "error");
    // A configuration that does not load is itself the finding.
    let out = run("broken.toml", "[server]\n".into());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("config.invalid"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A running `fedgate serve`: its child process and port. SIGTERM on drop.
struct RunningServer {
    child: std::process::Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl RunningServer {
    /// Start `fedgate serve` on a free loopback port, `key_dir` or not, and
    /// wait until it answers.
    fn start(name: &str, with_key_dir: bool) -> Self {
        let dir = tempdir(name);
        let signing = if with_key_dir {
            let keys = dir.join("keys/current");
            std::fs::create_dir_all(&keys).unwrap();
            std::fs::copy(super::data("fedgate_rsa_key.pem"), keys.join("key.pem")).unwrap();
            std::fs::copy(super::data("fedgate_rsa_cert.pem"), keys.join("cert.pem")).unwrap();
            "key_dir = \"keys\"".to_string()
        } else {
            let data = format!("{}/tests/data", env!("CARGO_MANIFEST_DIR"));
            format!("key_file = \"{data}/fedgate_rsa_key.pem\"\ncert_file = \"{data}/fedgate_rsa_cert.pem\"")
        };
        let port = super::free_port();
        std::fs::write(
            dir.join("fedgate.toml"),
            format!(
                "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n[signing]\n{signing}\n\
[[tenants]]\nid = \"contoso\"\nentra_tenant_id = \"{TENANT_ID}\"\ndomains = [\"contoso.example\"]\nmetadata_file = \"{}\"\n",
                super::fixture("saml/idp_metadata.xml").display()
            ),
        )
        .unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_fedgate"))
            .args([
                "serve",
                "--config",
                dir.join("fedgate.toml").to_str().unwrap(),
            ])
            .env_remove("FEDGATE_CONFIG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let served = RunningServer { child, port, dir };
        for _ in 0..200 {
            if served.get("/healthz").is_some() {
                return served;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("fedgate serve did not answer on port {port}");
    }

    /// GET a path over HTTP/1.0; the body of a 200, or `None`.
    fn get(&self, path: &str) -> Option<String> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
            .ok()?;
        let mut response = String::new();
        s.read_to_string(&mut response).ok()?;
        let (head, body) = response.split_once("\r\n\r\n")?;
        head.split(' ')
            .nth(1)
            .filter(|code| *code == "200")
            .map(|_| body.to_string())
    }

    /// How many signing certificates fedgate's IdP metadata publishes.
    fn published_keys(&self) -> usize {
        let md = self.get("/idp/metadata").expect("/idp/metadata");
        fedgate::trust::metadata::IdpMetadata::parse(md.as_bytes())
            .unwrap()
            .signing_certs
            .len()
    }

    fn signal(&self, sig: &str) {
        let status = std::process::Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGTERM, and the exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        self.signal("-TERM");
        let status = self.child.wait().unwrap();
        let _ = std::fs::remove_dir_all(&self.dir);
        status
    }
}

/// `systemctl reload` (SIGHUP) reloads fedgate's signing keys at once, not
/// at the next 30-second tick; without a key directory it changes nothing
/// and, unlike the default action of SIGHUP, does not stop the server.
#[test]
fn sighup_reloads_the_signing_keys_and_never_stops_the_server() {
    let started = std::time::Instant::now();
    let served = RunningServer::start("sighup", true);
    assert_eq!(served.published_keys(), 1);
    let keys = served.dir.join("keys");
    let out = fedgate_cli(&["keys", "generate-next", "--dir", keys.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    served.signal("-HUP");
    let mut published = 1;
    for _ in 0..100 {
        published = served.published_keys();
        if published == 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(published, 2, "the next key is published after SIGHUP");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(25),
        "too slow to tell SIGHUP from the 30 s timer: {:?}",
        started.elapsed()
    );
    let status = served.stop();
    assert!(status.success(), "fedgate serve exited with {status}");

    // No key directory: SIGHUP is logged and the server goes on.
    let served = RunningServer::start("sighup-nodir", false);
    served.signal("-HUP");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        served.get("/healthz").is_some(),
        "still serving after SIGHUP"
    );
    assert_eq!(served.published_keys(), 1);
    let status = served.stop();
    assert!(status.success(), "fedgate serve exited with {status}");
}

#[cfg(unix)]
fn mode(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// `fedgate keys init`, a new admin's first command: a key directory and a
/// token key that fedgate loads as printed, private, and never overwritten.
#[test]
fn keys_init_makes_keys_that_load_and_refuses_to_overwrite() {
    let dir = tempdir("init");
    let keys = dir.join("etc/keys");
    let out = fedgate_cli(&["keys", "init", "--dir", keys.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // What it made, with what permissions; no staging directory left behind.
    assert_eq!(names(&keys), ["signing", "token-key.pem"]);
    assert_eq!(names(&keys.join("signing")), ["current"]);
    assert_eq!(
        names(&keys.join("signing/current")),
        ["cert.pem", "key.pem"]
    );
    #[cfg(unix)]
    {
        for d in ["", "signing", "signing/current"] {
            assert_eq!(mode(&keys.join(d)), 0o700, "{d}/");
        }
        for f in ["signing/current/key.pem", "token-key.pem"] {
            assert_eq!(mode(&keys.join(f)), 0o600, "{f}");
        }
    }
    // The lines to paste, and the thumbprint.
    let signing: String = stdout
        .lines()
        .skip_while(|l| *l != "[signing]")
        .take(3)
        .map(|l| format!("{l}\n"))
        .collect();
    let abs = std::fs::canonicalize(&keys).unwrap();
    assert_eq!(
        signing,
        format!(
            "[signing]\nkey_dir = \"{}/signing\"\ntoken_key_file = \"{}/token-key.pem\"\n",
            abs.display(),
            abs.display()
        ),
        "{stdout}"
    );
    let status = fedgate_cli(&[
        "keys",
        "status",
        "--dir",
        keys.join("signing").to_str().unwrap(),
        "--json",
    ]);
    assert!(status.status.success());
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let status = status.as_array().unwrap();
    assert_eq!(status.len(), 1, "{status:?}");
    assert_eq!(status[0]["role"], "current");
    assert_eq!(status[0]["signs"], true);
    let thumb = status[0]["thumbprint_sha256"].as_str().unwrap();
    assert!(
        stdout.contains(&format!("sha256 thumbprint {thumb}")),
        "{stdout}"
    );
    assert!(status[0]["days_left"].as_i64().unwrap() >= 729);

    // A configuration with those lines loads, fedgate starts on it (the token
    // key is ES256 in the JWKS), and `check --offline` finds nothing.
    let toml = format!(
        "[server]\npublic_url = \"https://fedgate.example.test\"\n{signing}\
[[tenants]]\nid = \"contoso\"\nentra_tenant_id = \"{TENANT_ID}\"\ndomains = [\"contoso.example\"]\nmetadata_file = \"{md}\"\n\
[[consoles]]\nid = \"{CONSOLE_ID}\"\nkind = \"autotask\"\ndisplay_name = \"Console\"\n\
identifier = \"https://contoso.backup.autotask.net/singlesignon/saml/metadata\"\n\
reply_url = \"https://contoso.backup.autotask.net/singlesignon/saml/SSO\"\n\
[[rules]]\nid = \"admins\"\ntenant = \"contoso\"\nconsole = \"{CONSOLE_ID}\"\ngroups = [\"{group}\"]\nroles = [\"Administrator\"]\nscope = \"contoso\"\n",
        md = super::fixture("saml/idp_metadata.xml").display(),
        group = demo::ENGINEERING_GROUP
    );
    let config_path = dir.join("fedgate.toml");
    std::fs::write(&config_path, toml).unwrap();
    let config = fedgate::config::Config::load(&config_path, &[]).unwrap();
    fedgate::trust::install_crypto_provider();
    let app = App::new(
        config,
        Arc::new(fedgate::store::memory::MemoryStore::new()),
        Box::new(time::OffsetDateTime::now_utc),
    )
    .unwrap();
    assert_eq!(app.keys().current.cert().thumbprint_sha256, thumb);
    let jwks = app.jwks();
    let kty: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kty"].as_str().unwrap())
        .collect();
    assert_eq!(kty, ["EC", "RSA"], "{jwks}");
    let check = fedgate_cli(&[
        "check",
        "--config",
        config_path.to_str().unwrap(),
        "--offline",
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
    assert_eq!(check.status.code(), Some(0), "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    for f in report["findings"].as_array().unwrap() {
        let text = f.to_string();
        assert!(
            !text.contains("signing") && !text.contains("token_key") && !text.contains(thumb),
            "a key finding: {f}"
        );
    }

    // A second init changes nothing: exit 2, naming the path.
    let key_before = std::fs::read(keys.join("signing/current/key.pem")).unwrap();
    let token_before = std::fs::read(keys.join("token-key.pem")).unwrap();
    let again = fedgate_cli(&["keys", "init", "--dir", keys.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2));
    let msg = String::from_utf8_lossy(&again.stdout);
    assert!(
        msg.contains(&format!("{}", keys.join("signing").display())),
        "{msg}"
    );
    assert!(msg.contains("refusing to overwrite"), "{msg}");
    assert_eq!(
        std::fs::read(keys.join("signing/current/key.pem")).unwrap(),
        key_before
    );
    assert_eq!(
        std::fs::read(keys.join("token-key.pem")).unwrap(),
        token_before
    );
    assert_eq!(names(&keys), ["signing", "token-key.pem"]);

    // Only the token key exists: refused too, and no signing/ half-written.
    let other = dir.join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("token-key.pem"), "mine").unwrap();
    let out = fedgate_cli(&["keys", "init", "--dir", other.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let msg = String::from_utf8_lossy(&out.stdout);
    assert!(
        msg.contains(&format!("{}", other.join("token-key.pem").display())),
        "{msg}"
    );
    assert_eq!(names(&other), ["token-key.pem"]);
    assert_eq!(
        std::fs::read_to_string(other.join("token-key.pem")).unwrap(),
        "mine"
    );

    // `status` on a directory that is not there is an error naming it, not
    // an empty table; on the parent of the key directory, it says where it is.
    let missing = dir.join("no-such-dir");
    let out = fedgate_cli(&["keys", "status", "--dir", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let msg = String::from_utf8_lossy(&out.stdout);
    assert!(msg.contains(missing.to_str().unwrap()), "{msg}");
    let out = fedgate_cli(&["keys", "status", "--dir", keys.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let msg = String::from_utf8_lossy(&out.stdout);
    assert!(
        msg.contains(&format!("{}", keys.join("signing").display())),
        "{msg}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
