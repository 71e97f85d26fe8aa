//! Token exchange (RFC 8693) over real HTTP: Entra access tokens signed by
//! PyJWT (fixtures/jwt/) in, console-scoped JWTs out — verified by fedgate's
//! own verifier against fedgate's published JWKS, and independently by PyJWT.

use std::sync::Arc;

use fedgate::config::Config;
use fedgate::gateway::App;
use serde_json::Value;

use super::fixture;

const TID: &str = "c0ffee00-1234-4abc-8def-0123456789ab";

struct Server {
    url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    dir: std::path::PathBuf,
    tokens: Value,
}

async fn start() -> Server {
    start_with("").await
}

async fn start_with(extra_toml: &str) -> Server {
    start_full(extra_toml, r#"["contoso.example"]"#).await
}

/// The same, with the tenant's `domains` (a TOML array).
async fn start_full(extra_toml: &str, domains: &str) -> Server {
    let tokens: Value =
        serde_json::from_slice(&std::fs::read(fixture("jwt/tokens.json")).unwrap()).unwrap();
    let now = time::OffsetDateTime::from_unix_timestamp(tokens["now"].as_i64().unwrap()).unwrap();
    let data = format!("{}/tests/data", env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!(
        "fedgate-token-{}-{}",
        std::process::id(),
        fedgate::util::random_id().unwrap()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = fedgate::trust::certs::TrustedCert::from_pem_bundle(
        &std::fs::read_to_string(format!("{data}/fedgate_rsa_cert.pem")).unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join("md.xml"),
        fedgate::mock::entra::federation_metadata(TID, &[&cert[0]]),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let toml = format!(
        r#"
[server]
public_url = "{url}"
[signing]
key_file = "{data}/fedgate_rsa_key.pem"
cert_file = "{data}/fedgate_rsa_cert.pem"
token_key_file = "{data}/fedgate_ec_key.pem"
[audit]
file = "audit.jsonl"
[[tenants]]
id = "contoso"
entra_tenant_id = "{TID}"
domains = {domains}
metadata_file = "md.xml"
[tenants.oidc]
jwks_file = "{jwks}"
audiences = ["6e2f1b9a-3c4d-4e5f-8a9b-0c1d2e3f4a5b"]
[[consoles]]
id = "commvault-api"
kind = "commvault"
display_name = "Commvault API"
identifier = "https://commvault.example.test/api"
reply_url = "https://commvault.example.test/saml/acs"
[[consoles]]
id = "commvault-rs"
kind = "commvault"
display_name = "Commvault API (RS256)"
identifier = "https://commvault-rs.example.test/api"
reply_url = "https://commvault-rs.example.test/saml/acs"
token_alg = "RS256"
[[rules]]
id = "operators"
tenant = "contoso"
console = "commvault-api"
groups = ["b1c2d3e4-0000-4111-8222-333344445555"]
roles = ["BackupOperator"]
scope = "Contoso"
[[rules]]
id = "operators-rs"
tenant = "contoso"
console = "commvault-rs"
groups = ["b1c2d3e4-0000-4111-8222-333344445555"]
roles = ["BackupOperator"]
scope = "Contoso"
[[rules]]
id = "automation"
tenant = "contoso"
console = "commvault-api"
principals = "service_accounts"
app_ids = ["0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"]
roles = ["BackupAdmin"]
scope = "Contoso"
max_token_lifetime_secs = 120
"#,
        jwks = fixture("jwt/jwks.json").display()
    ) + extra_toml;
    std::fs::write(dir.join("fedgate.toml"), toml).unwrap();
    let config = Config::load(&dir.join("fedgate.toml"), &[]).unwrap();
    let app = Arc::new(
        App::new(
            config,
            Arc::new(fedgate::store::memory::MemoryStore::new()),
            Box::new(move || now),
        )
        .unwrap(),
    );
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = fedgate::http::serve(app, listener, async {
            let _ = rx.await;
        })
        .await;
    });
    Server {
        url,
        stop: Some(tx),
        task,
        dir,
        tokens,
    }
}

impl Server {
    async fn exchange(&self, token_name: &str, audience: &str) -> (u16, Value) {
        let token = self.tokens["tokens"][token_name]["jwt"]
            .as_str()
            .unwrap()
            .to_string();
        let resp = reqwest::Client::new()
            .post(format!("{}/oauth2/token", self.url))
            .form(&[
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:token-exchange",
                ),
                ("subject_token", token.as_str()),
                (
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:access_token",
                ),
                ("audience", audience),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.headers()["cache-control"], "no-store");
        let status = resp.status().as_u16();
        (
            status,
            serde_json::from_str(&resp.text().await.unwrap()).unwrap(),
        )
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = self.task.await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_token_becomes_a_console_token_verifiable_with_fedgates_jwks() {
    let s = start().await;
    let (status, body) = s.exchange("v2_user", "commvault-api").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(
        body["issued_token_type"],
        "urn:ietf:params:oauth:token-type:jwt"
    );
    assert_eq!(body["expires_in"], 600, "the console's default lifetime");
    let token = body["access_token"].as_str().unwrap().to_string();

    // fedgate's own verifier, against fedgate's published JWKS.
    let jwks_json = reqwest::get(format!("{}/oauth2/jwks", s.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let jwks = fedgate::trust::jwks::Jwks::from_json(jwks_json.as_bytes()).unwrap();
    let mut policy = fedgate::inbound::bearer::BearerPolicy::new(
        s.url.clone(),
        vec!["https://commvault.example.test/api".to_string()],
    );
    policy.algorithms = vec![jsonwebtoken::Algorithm::ES256];
    let now = time::OffsetDateTime::from_unix_timestamp(s.tokens["now"].as_i64().unwrap()).unwrap();
    let id = fedgate::inbound::bearer::verify(&token, &jwks, &policy, now).unwrap();
    assert_eq!(
        id.subject,
        format!("{TID}:3f2504e0-4f89-41d3-9a0c-0305e82c3301")
    );

    // Independently, with PyJWT: signature, audience, issuer; the claims carry the grant.
    let script = r#"
import json, sys, jwt
jwks, token, aud, iss, now = sys.argv[1:6]
key = jwt.PyJWKSet.from_json(jwks).keys[0]
claims = jwt.decode(token, key.key, algorithms=["ES256"], audience=aud, issuer=iss, options={"verify_exp": False})
assert int(now) < claims["exp"], "expired"
print(json.dumps(claims))
"#;
    let out = super::python()
        .args([
            "-c",
            script,
            &jwks_json,
            &token,
            "https://commvault.example.test/api",
            &s.url,
            &s.tokens["now"].to_string(),
        ])
        .output()
        .expect("the tests' Python, with PyJWT (scripts/install-test-deps)");
    assert!(
        out.status.success(),
        "PyJWT refused fedgate's token: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let claims: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(claims["UserGroups"], serde_json::json!(["BackupOperator"]));
    assert_eq!(claims["Company"], serde_json::json!(["Contoso"]));
    assert_eq!(claims["principal"], "user");
    assert_eq!(claims["console"], "commvault-api");
    s.stop().await;
}

/// Issue 14 (1) on the token exchange: a user whose UPN is outside the
/// tenant's domains gets no console token (its `upn` claim would name
/// someone of another tenant); a service account, with no UPN, still does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_outside_the_tenants_domains_gets_no_console_token() {
    let s = start_full("", r#"["fabrikam.example"]"#).await;
    let (status, body) = s.exchange("v2_user", "commvault-api").await;
    assert_eq!(
        (status, &body["error"]),
        (403, &Value::from("access_denied")),
        "{body}"
    );
    let d = body["error_description"].as_str().unwrap();
    assert!(
        d.starts_with("identity.domain_not_owned") && d.contains("\"contoso\""),
        "{body}"
    );
    let (status, body) = s.exchange("v2_app_only", "commvault-api").await;
    assert_eq!(status, 200, "{body}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_accounts_by_app_id_with_a_lifetime_cap_and_rs256_by_console() {
    let s = start().await;
    let (status, body) = s.exchange("v2_app_only", "commvault-api").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["expires_in"], 120,
        "the rule caps service-account tokens"
    );
    let (status, body) = s.exchange("v2_user", "commvault-rs").await;
    assert_eq!(status, 200, "{body}");
    let header = body["access_token"]
        .as_str()
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .to_string();
    use base64::Engine;
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "RS256");
    let jwks: Value = serde_json::from_str(
        &reqwest::get(format!("{}/oauth2/jwks", s.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["kid"] == header["kid"]));
    s.stop().await;
}

/// The attack of issue 14 (3): a rule that reads as MFA-protected grants an
/// app role; a service principal whose application permission has that name
/// exchanges its app-only token (a client secret, no user, no MFA). It gets
/// only what the service-account rule grants, never the users' rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_only_token_never_passes_a_users_rule_with_mfa() {
    let s = start_with(
        "[[rules]]\nid = \"mfa-masters\"\ntenant = \"contoso\"\nconsole = \"commvault-api\"\napp_roles = [\"Backup.Automation\"]\nroles = [\"Master\"]\nscope = \"Contoso\"\nrequire_mfa = true\n",
    )
    .await;
    let (status, body) = s.exchange("v2_app_only", "commvault-api").await;
    assert_eq!(status, 200, "{body}");
    use base64::Engine;
    let payload = body["access_token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap()
        .to_string();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["principal"], "service_account");
    assert_eq!(
        claims["UserGroups"],
        serde_json::json!(["BackupAdmin"]),
        "{claims}"
    );
    s.stop().await;
    // The same rule for both kinds, still with require_mfa: a configuration
    // error, named with the rule, not a rule that silently skips MFA.
    let dir = super::TempDir::new("mfa-both");
    let text = std::fs::read_to_string(super::repo_path("", "fedgate.example.toml"))
        .unwrap()
        .replace("# principals = \"users\"", "principals = \"both\"");
    let e = Config::from_str(&text, "f.toml", &[], dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("rules[0]") && e.contains("policy.mfa_for_service_accounts"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_use_rfc_6749_errors_with_fedgates_code() {
    let s = start().await;
    let check = |r: (u16, Value), status: u16, error: &str, code: &str| {
        assert_eq!(r.0, status, "{}", r.1);
        assert_eq!(r.1["error"], error, "{}", r.1);
        assert!(
            r.1["error_description"].as_str().unwrap().starts_with(code),
            "{}",
            r.1
        );
    };
    check(
        s.exchange("expired", "commvault-api").await,
        400,
        "invalid_grant",
        "jwt.expired",
    );
    check(
        s.exchange("alg_none", "commvault-api").await,
        400,
        "invalid_grant",
        "jwt.alg_forbidden",
    );
    check(
        s.exchange("wrong_audience", "commvault-api").await,
        400,
        "invalid_grant",
        "jwt.audience_mismatch",
    );
    check(
        s.exchange("v2_user", "no-such-console").await,
        400,
        "invalid_target",
        "console.unknown",
    );
    // A token for another tenant: its issuer names a tenant fedgate does not serve.
    check(
        s.exchange("wrong_issuer", "commvault-api").await,
        400,
        "invalid_grant",
        "",
    );
    // The app-only token has no rule on the RS256 console: denied by policy.
    check(
        s.exchange("v2_app_only", "commvault-rs").await,
        403,
        "access_denied",
        "policy.no_rule_matched",
    );
    // Wrong grant type.
    let resp = reqwest::Client::new()
        .post(format!("{}/oauth2/token", s.url))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(body["error"], "unsupported_grant_type");
    // Every decision was audited, none with a token in it.
    let audit = std::fs::read_to_string(s.dir.join("audit.jsonl")).unwrap();
    assert_eq!(audit.lines().count(), 7);
    assert!(!audit.contains("eyJ"), "no token in the audit log");
    s.stop().await;
}

/// A token whose groups were left out (`hasgroups`, `_claim_names`): resolved
/// through (mock) Microsoft Graph before policy; without Graph, denied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_overage_is_resolved_through_graph() {
    let mut m = std::collections::HashMap::new();
    m.insert(
        "3f2504e0-4f89-41d3-9a0c-0305e82c3301".to_string(),
        vec![
            "x-1".to_string(),
            "b1c2d3e4-0000-4111-8222-333344445555".to_string(),
            "x-3".to_string(),
        ],
    );
    let (base, graph, stop) = super::mock_graph(false, m).await;
    let s = start_with(&super::graph_toml(&base)).await;
    for name in ["v2_hasgroups", "v2_id_token_overage"] {
        let (status, body) = s.exchange(name, "commvault-api").await;
        assert_eq!(status, 200, "{name}: {body}");
    }
    assert_eq!(
        graph.requests.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "3 groups, 2 pages; then cached"
    );
    s.stop().await;
    let _ = stop.send(());
    let s = start().await;
    let (status, body) = s.exchange("v2_hasgroups", "commvault-api").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("access_denied")),
        "{body}"
    );
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .starts_with("policy.groups_overage_unresolved"));
    s.stop().await;
}

/// `fedgate explain --token`: the same token the exchange takes, explained
/// offline with the tenant's `[tenants.oidc]` trust.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_takes_a_token_and_shows_the_decision() {
    let s = start().await;
    let cfg = s.dir.join("fedgate.toml");
    let now = time::OffsetDateTime::from_unix_timestamp(s.tokens["now"].as_i64().unwrap()).unwrap();
    let run = |name: &str| {
        let jwt = s.tokens["tokens"][name]["jwt"]
            .as_str()
            .unwrap()
            .to_string();
        let file = s.dir.join(format!("{name}.jwt"));
        std::fs::write(&file, jwt).unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_fedgate"))
            .args([
                "explain",
                "--config",
                cfg.to_str().unwrap(),
                "--tenant",
                "contoso",
                "--console",
                "commvault-api",
            ])
            .args([
                "--token",
                file.to_str().unwrap(),
                "--now",
                &fedgate::timefmt::format(now),
                "--json",
            ])
            .output()
            .unwrap()
    };
    // The service account's app-only token: the automation rule grants BackupAdmin.
    let out = run("v2_app_only");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{v}");
    assert_eq!(v["identity"]["kind"], "service_account");
    assert_eq!(v["decision"]["grants"][0]["role"], "BackupAdmin");
    // A token for another audience is refused with its code.
    let out = run("wrong_audience");
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"], "jwt.audience_mismatch");
    s.stop().await;
}
