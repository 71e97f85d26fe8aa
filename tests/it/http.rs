//! End to end over real HTTP on loopback: the mock Entra tenant signs, fedgate
//! verifies and maps, the mock Autotask-style console (a real SAML SP that
//! reads fedgate's IdP metadata over HTTP) verifies fedgate's assertion. And
//! an independent SP implementation (pysaml2, through
//! scripts/independent_sp.py) accepts fedgate's assertion and rejects a
//! tampered copy.

use std::process::Command;

use fedgate::demo::{self, Environment, CONSOLE_ID};

fn code_in(body: &str) -> &str {
    body.split("<code>")
        .nth(1)
        .and_then(|s| s.split("</code>").next())
        .unwrap_or("?")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engineer_reaches_the_console_with_the_mapped_role() {
    let env = Environment::start().await.unwrap();
    let (status, html) = env.login(&demo::alice(), Some(CONSOLE_ID)).await.unwrap();
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("document.forms[0].submit()") && html.contains("<button"),
        "auto-post form with a no-JS button"
    );
    let (cs, body) = env.follow_form(&html).await.unwrap();
    assert_eq!(cs, 200, "{body}");
    assert_eq!(body["user"], "alice@contoso.example");
    assert_eq!(body["roles"], serde_json::json!(["Backup Operator"]));
    assert_eq!(body["scope"], serde_json::json!(["contoso"]));
    // The audit log has the decision, without the assertion.
    let audit = std::fs::read_to_string(env.dir.join("audit.jsonl")).unwrap();
    let event: serde_json::Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert_eq!(event["outcome"], "allowed");
    assert_eq!(event["object_id"], "3f2504e0-4f89-11d3-9a0c-0305e82c3301");
    assert_eq!(event["roles_granted"][0]["role"], "Backup Operator");
    assert!(
        !audit.contains("SignatureValue") && !audit.contains("PHNhbWxw"),
        "no raw assertion in the audit log"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_carry_their_code_status_and_hint() {
    let env = Environment::start().await.unwrap();
    // No mapped group: denied by policy.
    let (status, body) = env.login(&demo::bob(), Some(CONSOLE_ID)).await.unwrap();
    assert_eq!((status, code_in(&body)), (403, "policy.no_rule_matched"));
    assert!(body.contains("For the administrator"));
    // Replay: the second post of the same response.
    let once = env.entra_response(&demo::alice(), None).unwrap();
    assert_eq!(
        env.post_to_fedgate(&once, Some(CONSOLE_ID))
            .await
            .unwrap()
            .0,
        200
    );
    let (status, body) = env.post_to_fedgate(&once, Some(CONSOLE_ID)).await.unwrap();
    assert_eq!((status, code_in(&body)), (403, "saml.replayed"));
    // Wrong audience, with Entra's Identifier named in the hint.
    let wrong = env
        .entra_response(&demo::alice(), Some("https://other.example/sp"))
        .unwrap();
    let (status, body) = env.post_to_fedgate(&wrong, Some(CONSOLE_ID)).await.unwrap();
    assert_eq!((status, code_in(&body)), (403, "saml.audience_mismatch"));
    assert!(body.contains("Identifier"));
    // Garbage: 400.
    let (status, body) = env
        .post_to_fedgate("not base64!", Some(CONSOLE_ID))
        .await
        .unwrap();
    assert_eq!((status, code_in(&body)), (400, "saml.base64_invalid"));
    // Not a SAML form at all: 400 with a code, not a framework error.
    let resp = reqwest::Client::new()
        .post(format!("{}/saml/contoso/acs", env.fedgate_url))
        .form(&[("RelayState", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(code_in(&resp.text().await.unwrap()), "saml.form_invalid");
    // A valid response twice in one form, or in a body that does not say
    // it is a form: which would be meant? Refused, before any verification.
    let valid = env.entra_response(&demo::alice(), None).unwrap();
    for (content_type, body) in [
        (
            "application/x-www-form-urlencoded",
            format!(
                "SAMLResponse={v}&SAMLResponse={v}",
                v = fedgate::util::urlencode(&valid)
            ),
        ),
        (
            "text/plain",
            format!("SAMLResponse={}", fedgate::util::urlencode(&valid)),
        ),
        (
            "application/x-www-form-urlencoded",
            "SAMLResponse=%zz".into(),
        ),
    ] {
        let resp = reqwest::Client::new()
            .post(format!("{}/saml/contoso/acs", env.fedgate_url))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{content_type}");
        assert_eq!(code_in(&resp.text().await.unwrap()), "saml.form_invalid");
    }
    // The same response once, with a charset parameter: a login.
    let resp = super::no_redirects()
        .post(format!("{}/saml/contoso/acs", env.fedgate_url))
        .header(
            "content-type",
            "Application/X-WWW-Form-Urlencoded; charset=UTF-8",
        )
        .body(format!(
            "SAMLResponse={}&RelayState={CONSOLE_ID}",
            fedgate::util::urlencode(&valid)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // Unknown console in RelayState.
    let r = env.entra_response(&demo::alice(), None).unwrap();
    let (status, body) = env.post_to_fedgate(&r, Some("nope")).await.unwrap();
    assert_eq!((status, code_in(&body)), (404, "console.unknown"));
    // Metrics count logins by outcome and code.
    let metrics = super::metrics_text(&env).await;
    assert!(metrics.contains("code=\"saml.replayed\"} 1"), "{metrics}");
    // The memory store's gauges: the two logins above left their sessions.
    let gauge = |name: &str| -> u64 {
        let line = metrics
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_default();
        line.rsplit(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{name}: {metrics}"))
    };
    assert!(gauge("fedgate_store_entries{kind=\"sessions\"}") >= 2);
    assert!(gauge("fedgate_store_entries{kind=\"replay_claims\"}") >= 2);
    assert_eq!(gauge("fedgate_store_max_entries"), 250_000);
    assert!(gauge("fedgate_store_slab_bytes") >= 64 * 1024);
    assert!(
        metrics.contains("fedgate_verification_seconds_count"),
        "{metrics}"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idp_initiated_without_relay_state_goes_to_the_only_console() {
    let env = Environment::start().await.unwrap();
    let (status, html) = env.login(&demo::alice(), None).await.unwrap();
    assert_eq!(status, 200, "{html}");
    assert_eq!(env.follow_form(&html).await.unwrap().0, 200);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_health_and_readiness() {
    let env = Environment::start().await.unwrap();
    let get = |p: &str| reqwest::get(format!("{}{p}", env.fedgate_url));
    let sp = get("/saml/contoso/metadata")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(sp.contains(&format!(
        "entityID=\"{}/saml/contoso/metadata\"",
        env.fedgate_url
    )));
    assert!(sp.contains(&format!(
        "Location=\"{}/saml/contoso/acs\"",
        env.fedgate_url
    )));
    let idp = get("/idp/metadata").await.unwrap().text().await.unwrap();
    let parsed = fedgate::trust::metadata::IdpMetadata::parse(idp.as_bytes()).unwrap();
    assert_eq!(parsed.signing_certs.len(), 1);
    // Single logout: both bindings, at both faces; the SP side names the
    // certificate fedgate signs its logout messages to the tenant with.
    let slo = format!("{}/idp/slo", env.fedgate_url);
    assert_eq!(
        parsed
            .slo_endpoints
            .iter()
            .map(|e| (e.binding.as_str(), e.location.as_str()))
            .collect::<Vec<_>>(),
        [
            (fedgate::binding::BINDING_REDIRECT, slo.as_str()),
            (fedgate::binding::BINDING_POST, slo.as_str())
        ]
    );
    assert!(sp.contains(&format!(
        "<md:SingleLogoutService Binding=\"{}\" Location=\"{}/saml/contoso/slo\"/>",
        fedgate::binding::BINDING_REDIRECT,
        env.fedgate_url
    )));
    assert!(sp.contains("<md:KeyDescriptor use=\"signing\">"));
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    assert_eq!(get("/readyz").await.unwrap().status(), 200);
    assert_eq!(get("/saml/nope/metadata").await.unwrap().status(), 404);
    env.stop().await;
}

/// pysaml2 (an independent SAML SP, verifying with xmlsec1) accepts
/// fedgate's outgoing assertion, and rejects a tampered copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_independent_sp_accepts_fedgates_assertion_and_rejects_a_tampered_copy() {
    use base64::Engine;
    let env = Environment::start().await.unwrap();
    let (_, html) = env.login(&demo::alice(), Some(CONSOLE_ID)).await.unwrap();
    let (_, fields) = demo::parse_form(&html).unwrap();
    let response_b64 = fields
        .iter()
        .find(|(n, _)| n == "SAMLResponse")
        .unwrap()
        .1
        .clone();
    let sp = IndependentSp::new(&env, "pysaml2", false).await;
    let run = |resp: &str| sp.run(resp);
    let ok = run(&response_b64);
    let out = String::from_utf8_lossy(&ok.stdout).to_string();
    assert!(
        ok.status.success(),
        "pysaml2 refused fedgate's assertion: {out} {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["name_id"], "alice@contoso.example");
    // Tamper: change the role after signing.
    let xml = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(&response_b64)
            .unwrap(),
    )
    .unwrap();
    assert!(xml.contains("Backup Operator"));
    let tampered = base64::engine::general_purpose::STANDARD
        .encode(xml.replace("Backup Operator", "Administrator"));
    let bad = run(&tampered);
    assert!(
        !bad.status.success(),
        "pysaml2 accepted a tampered assertion: {}",
        String::from_utf8_lossy(&bad.stdout)
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_consoles_show_a_launcher_backed_by_a_session() {
    let extra = r#"
[[consoles]]
id = "generic-reports"
kind = "generic"
display_name = "Backup reports"
identifier = "https://reports.example.test/saml"
reply_url = "https://reports.example.test/saml/acs"

[[rules]]
id = "engineering-reports"
tenant = "contoso"
console = "generic-reports"
groups = ["5b8f2a1c-3d4e-4f60-8a9b-0c1d2e3f4a5b"]
roles = ["viewer"]
"#;
    let env = Environment::start_with(extra).await.unwrap();
    let resp = reqwest::Client::new()
        .post(format!("{}/saml/contoso/acs", env.fedgate_url))
        .form(&[(
            "SAMLResponse",
            env.entra_response(&demo::alice(), None).unwrap(),
        )])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let cookie = resp.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("fedgate_session="));
    // The session is compact (issue 15, part 5): of alice's two groups only
    // the one a rule names, and none of the IdP's raw attributes.
    let id = cookie.trim_start_matches("fedgate_session=");
    let stored = env
        .app
        .open_session(id, time::OffsetDateTime::now_utc())
        .await
        .unwrap()
        .expect("the session is stored")
        .session;
    assert_eq!(
        stored.identity.groups,
        vec!["5b8f2a1c-3d4e-4f60-8a9b-0c1d2e3f4a5b".to_string()],
        "only the groups a rule names"
    );
    assert!(stored.identity.attributes.is_empty());
    assert_eq!(
        stored.identity.upn.as_deref(),
        Some("alice@contoso.example")
    );
    let page = resp.text().await.unwrap();
    assert!(
        page.contains("/launch/autotask-demo") && page.contains("/launch/generic-reports"),
        "{page}"
    );
    // Launch one of them with the session.
    let html = reqwest::Client::new()
        .get(format!("{}/launch/autotask-demo", env.fedgate_url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (status, body) = env.follow_form(&html).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["roles"], serde_json::json!(["Backup Operator"]));
    // Without the session: refused.
    let resp = reqwest::get(format!("{}/launch/autotask-demo", env.fedgate_url))
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    env.stop().await;
}

/// HTTPS with rustls: a real TLS client (curl) reaches fedgate and verifies
/// its certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_with_rustls() {
    let env = Environment::start().await.unwrap();
    let data = format!("{}/tests/data", env!("CARGO_MANIFEST_DIR"));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = env.app.clone();
    let tls = fedgate::trust::tls::load(
        std::path::Path::new(&format!("{data}/tls_cert.pem")),
        std::path::Path::new(&format!("{data}/tls_key.pem")),
    )
    .unwrap();
    let server = tokio::spawn(async move {
        fedgate::http::serve_tls(app, listener, &tls, async {
            let _ = rx.await;
        })
        .await
    });
    let url = format!("https://127.0.0.1:{port}/idp/metadata");
    let out = tokio::task::spawn_blocking(move || {
        let mut last = None;
        for _ in 0..50 {
            let o = Command::new("curl")
                .args([
                    "-sS",
                    "--fail",
                    "--cacert",
                    &format!("{data}/tls_cert.pem"),
                    &url,
                ])
                .output()
                .expect("curl is required");
            if o.status.success() {
                return o;
            }
            last = Some(o);
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        last.unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("IDPSSODescriptor"));
    let _ = tx.send(());
    server.await.unwrap().unwrap();
    env.stop().await;
}

/// The mock tenant's HTTP face, as a browser uses it in `demo --keep`:
/// its IdP-initiated login page posts to fedgate, whose page posts to the console.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_click_through_from_the_mock_tenant() {
    let env = Environment::start().await.unwrap();
    let md = reqwest::get(format!(
        "{}/{}/federationmetadata/2007-06/federationmetadata.xml",
        env.entra_url,
        demo::TENANT_ID
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert_eq!(
        fedgate::trust::metadata::IdpMetadata::parse(md.as_bytes())
            .unwrap()
            .entity_id,
        format!("https://sts.windows.net/{}/", demo::TENANT_ID)
    );
    let page = reqwest::get(format!(
        "{}/{}/saml2/idp-initiated?user=alice&console={CONSOLE_ID}",
        env.entra_url,
        demo::TENANT_ID
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    let (action, fields) = demo::parse_form(&page).unwrap();
    assert_eq!(action, format!("{}/saml/contoso/acs", env.fedgate_url));
    let html = reqwest::Client::new()
        .post(action)
        .form(&fields)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (status, body) = env.follow_form(&html).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"], "alice@contoso.example");
    env.stop().await;
}

/// fedgate signs with ECDSA only when every console's profile accepts it.
#[test]
fn an_ecdsa_key_is_refused_for_rsa_only_consoles() {
    let dir = std::env::temp_dir().join(format!("fedgate-ec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data = format!("{}/tests/data", env!("CARGO_MANIFEST_DIR"));
    let md = fedgate::mock::entra::federation_metadata(
        demo::TENANT_ID,
        &[&fedgate::trust::certs::TrustedCert::from_pem_bundle(
            &std::fs::read_to_string(format!("{data}/fedgate_rsa_cert.pem")).unwrap(),
        )
        .unwrap()[0]],
    );
    std::fs::write(dir.join("md.xml"), md).unwrap();
    let toml = |kind: &str| {
        format!(
            "[server]\npublic_url = \"http://127.0.0.1:1\"\n[signing]\nkey_file = \"{data}/fedgate_ec_key.pem\"\ncert_file = \"{data}/fedgate_ec_cert.pem\"\n\
[[tenants]]\nid = \"t\"\nentra_tenant_id = \"{tid}\"\nmetadata_file = \"md.xml\"\n\
[[consoles]]\nid = \"c\"\nkind = \"{kind}\"\ndisplay_name = \"C\"\nidentifier = \"https://c.example/sp\"\nreply_url = \"https://c.example/acs\"\n",
            tid = demo::TENANT_ID
        )
    };
    let load = |kind: &str| {
        let path = dir.join(format!("{kind}.toml"));
        std::fs::write(&path, toml(kind)).unwrap();
        let config = fedgate::config::Config::load(&path, &[]).unwrap();
        fedgate::gateway::App::new(
            config,
            std::sync::Arc::new(fedgate::store::memory::MemoryStore::new()),
            Box::new(time::OffsetDateTime::now_utc),
        )
    };
    let err = load("autotask")
        .err()
        .expect("an EC key must be refused for an Autotask-style console");
    assert!(err.to_string().contains("RSA-SHA256 only"), "{err}");
    assert!(load("generic").is_ok());
    std::fs::remove_dir_all(&dir).ok();
}

/// Another tenant's metadata under this tenant's name is refused at start.
#[test]
fn metadata_of_another_tenant_is_refused_at_start() {
    let dir = std::env::temp_dir().join(format!("fedgate-tid-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let data = format!("{}/tests/data", env!("CARGO_MANIFEST_DIR"));
    let cert = fedgate::trust::certs::TrustedCert::from_pem_bundle(
        &std::fs::read_to_string(format!("{data}/fedgate_rsa_cert.pem")).unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join("md.xml"),
        fedgate::mock::entra::federation_metadata(
            "11111111-2222-3333-4444-555555555555",
            &[&cert[0]],
        ),
    )
    .unwrap();
    let path = dir.join("f.toml");
    std::fs::write(&path, format!(
        "[server]\npublic_url = \"http://127.0.0.1:1\"\n[signing]\nkey_file = \"{data}/fedgate_rsa_key.pem\"\ncert_file = \"{data}/fedgate_rsa_cert.pem\"\n\
[[tenants]]\nid = \"t\"\nentra_tenant_id = \"{}\"\nmetadata_file = \"md.xml\"\n", demo::TENANT_ID)).unwrap();
    let config = fedgate::config::Config::load(&path, &[]).unwrap();
    let err = fedgate::gateway::App::new(
        config,
        std::sync::Arc::new(fedgate::store::memory::MemoryStore::new()),
        Box::new(time::OffsetDateTime::now_utc),
    )
    .err()
    .expect("must refuse");
    assert!(
        err.to_string()
            .contains("11111111-2222-3333-4444-555555555555"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Alice (the engineer) is in 5 groups, one of them the engineering group.
fn alice_groups() -> std::collections::HashMap<String, Vec<String>> {
    let mut m = std::collections::HashMap::new();
    m.insert(
        demo::alice().object_id,
        vec![
            "g-1".into(),
            "g-2".into(),
            demo::ENGINEERING_GROUP.into(),
            "g-4".into(),
            "g-5".into(),
        ],
    );
    m
}

/// Groups overage (Entra's groups.link): resolved through (mock) Microsoft
/// Graph, paged, and recorded in the audit event; a Graph outage denies with
/// its own code, never as "no groups".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_overage_is_resolved_through_graph_or_denied_with_a_code() {
    let (base, graph, stop) = super::mock_graph(false, alice_groups()).await;
    let env = Environment::start_with(&super::graph_toml(&base))
        .await
        .unwrap();
    let mut alice = demo::alice();
    alice.groups_overage = true;
    let (status, html) = env.login(&alice, Some(CONSOLE_ID)).await.unwrap();
    assert_eq!(status, 200, "{html}");
    let (cs, body) = env.follow_form(&html).await.unwrap();
    assert_eq!(
        (cs, &body["roles"]),
        (200, &serde_json::json!(["Backup Operator"]))
    );
    assert_eq!(
        graph.requests.load(std::sync::atomic::Ordering::SeqCst),
        3,
        "5 groups, 2 per page: 3 pages"
    );
    let audit = std::fs::read_to_string(env.dir.join("audit.jsonl")).unwrap();
    let event: serde_json::Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert_eq!(event["groups_resolved_by"], "graph");
    assert_eq!(event["groups"].as_array().unwrap().len(), 5);
    env.stop().await;
    let _ = stop.send(());

    // Graph down: a 502 with graph.request_failed.
    let (base, _graph, stop) = super::mock_graph(true, alice_groups()).await;
    let env = Environment::start_with(&super::graph_toml(&base))
        .await
        .unwrap();
    let (status, body) = env.login(&alice, Some(CONSOLE_ID)).await.unwrap();
    assert_eq!((status, code_in(&body)), (502, "graph.request_failed"));
    env.stop().await;
    let _ = stop.send(());

    // No Graph configured: policy says the groups are unresolved.
    let env = Environment::start().await.unwrap();
    let (status, body) = env.login(&alice, Some(CONSOLE_ID)).await.unwrap();
    assert_eq!(
        (status, code_in(&body)),
        (403, "policy.groups_overage_unresolved")
    );
    env.stop().await;
}

/// `[[consoles]] sign` (issue 16, part 2): with `response` or `both`,
/// pysaml2 as the console with its *default* settings (which want the
/// Response signed) accepts fedgate's answer; with the default `assertion`
/// it refuses it. node-saml with its defaults (the Response *and* the
/// Assertion signed) accepts only `both`. fedgate's own console (the mock)
/// accepts all three, and each answer carries the signatures it says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_is_signed_is_per_console_and_satisfies_pysaml2_and_node_saml_defaults() {
    use base64::Engine;
    let env = Environment::start().await.unwrap();
    let index = env
        .app
        .config
        .consoles
        .iter()
        .position(|c| c.id == CONSOLE_ID)
        .unwrap();
    env.stop().await;
    for (mode, signatures, pysaml2_defaults_accept, node_saml_defaults_accept) in [
        ("assertion", 1, false, false),
        ("response", 1, true, false),
        ("both", 2, true, true),
    ] {
        let overrides = [(format!("FEDGATE_CONSOLES__{index}__SIGN"), mode.to_string())];
        let env = Environment::start_with_overrides("", &overrides)
            .await
            .unwrap();
        let (status, html) = env.login(&demo::alice(), Some(CONSOLE_ID)).await.unwrap();
        assert_eq!(status, 200, "{mode}: {html}");
        let (_, fields) = demo::parse_form(&html).unwrap();
        let b64 = fields
            .iter()
            .find(|(n, _)| n == "SAMLResponse")
            .unwrap()
            .1
            .clone();
        let xml = String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(&b64)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(xml.matches("<ds:Signature ").count(), signatures, "{mode}");
        let response_signed = xml
            .find("<ds:Signature ")
            .is_some_and(|at| at < xml.find("<saml:Assertion ").unwrap());
        assert_eq!(response_signed, mode != "assertion", "{mode}");
        // fedgate's own console verifies it.
        let (status, body) = env.follow_form(&html).await.unwrap();
        assert_eq!(status, 200, "{mode}: {body}");
        // pysaml2 with its defaults.
        let out = IndependentSp::new(&env, &format!("pysaml2-{mode}"), true)
            .await
            .run(&b64);
        let said = String::from_utf8_lossy(&out.stdout).to_string();
        assert_eq!(
            out.status.success(),
            pysaml2_defaults_accept,
            "{mode}: pysaml2 said {said} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if pysaml2_defaults_accept {
            let v: serde_json::Value = serde_json::from_str(&said).unwrap();
            assert_eq!(v["name_id"], "alice@contoso.example", "{mode}");
        }
        // node-saml with its defaults.
        let (ok, v) = node_saml(&env, &b64).await;
        assert_eq!(ok, node_saml_defaults_accept, "{mode}: node-saml said {v}");
        if ok {
            assert_eq!(v["name_id"], "alice@contoso.example", "{mode}");
        } else {
            assert!(
                v["error"].as_str().unwrap().contains("signature"),
                "{mode}: {v}"
            );
        }
        env.stop().await;
    }
}

/// `scripts/node_saml_sp.js` (@node-saml/node-saml 5, its default settings)
/// as the demo's console: what it makes of a SAMLResponse.
async fn node_saml(env: &Environment, response_b64: &str) -> (bool, serde_json::Value) {
    let dir = env.dir.join("node-saml");
    std::fs::create_dir_all(&dir).unwrap();
    let settings = serde_json::json!({
        "sp_entity_id": format!("{}/singlesignon/saml/metadata", env.console_url),
        "acs_url": format!("{}/singlesignon/saml/SSO", env.console_url),
        "idp_entity_id": format!("{}/idp/metadata", env.fedgate_url),
        "sso_url": format!("{}/idp/sso", env.fedgate_url),
        "idp_cert": std::fs::read_to_string(super::data("fedgate_rsa_cert.pem")).unwrap(),
    });
    std::fs::write(dir.join("settings.json"), settings.to_string()).unwrap();
    std::fs::write(dir.join("resp.b64"), response_b64).unwrap();
    let out = super::node()
        .arg(super::repo_path("scripts", "node_saml_sp.js"))
        .arg(dir.join("settings.json"))
        .arg(dir.join("resp.b64"))
        .output()
        .expect("node (scripts/install-test-deps)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "node-saml printed no JSON: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), v)
}

/// `scripts/independent_sp.py` (pysaml2, verifying with xmlsec1) set up as
/// the demo's console, trusting fedgate's IdP metadata as served; with
/// `defaults`, pysaml2's own defaults decide what must be signed.
struct IndependentSp {
    dir: std::path::PathBuf,
    console_url: String,
    defaults: bool,
}

impl IndependentSp {
    async fn new(env: &Environment, name: &str, defaults: bool) -> IndependentSp {
        let dir = env.dir.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let idp_md = reqwest::get(format!("{}/idp/metadata", env.fedgate_url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        std::fs::write(dir.join("idp.xml"), &idp_md).unwrap();
        IndependentSp {
            dir,
            console_url: env.console_url.clone(),
            defaults,
        }
    }

    /// Hand it a SAMLResponse (base64, as posted).
    fn run(&self, response_b64: &str) -> std::process::Output {
        std::fs::write(self.dir.join("resp.b64"), response_b64).unwrap();
        let mut cmd = super::python();
        cmd.arg(format!(
            "{}/scripts/independent_sp.py",
            env!("CARGO_MANIFEST_DIR")
        ));
        if self.defaults {
            cmd.arg("--defaults");
        }
        cmd.arg("--idp-metadata")
            .arg(self.dir.join("idp.xml"))
            .arg("--sp-entity-id")
            .arg(format!("{}/singlesignon/saml/metadata", self.console_url))
            .arg("--acs-url")
            .arg(format!("{}/singlesignon/saml/SSO", self.console_url))
            .arg(self.dir.join("resp.b64"))
            .output()
            .expect("the tests' Python, with pysaml2 (scripts/install-test-deps)")
    }
}
