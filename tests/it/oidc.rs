//! OIDC both ways, end to end over real HTTP on loopback.
//!
//! Relying party: fedgate signs users in at the mock Entra tenant's v2.0
//! endpoints (authorization code + PKCE + nonce + state), verifies the ID
//! token against the tenant's JWKS fetched through discovery, and delivers
//! to the console like the SAML path.

use fedgate::demo::{Browser, Environment, CONSOLE_ID};

fn code_in(body: &str) -> &str {
    body.split("<code>")
        .nth(1)
        .and_then(|s| s.split("</code>").next())
        .unwrap_or("?")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_login_reaches_the_saml_console_and_the_callback_works_once() {
    let env = Environment::start().await.unwrap();
    let browser = Browser::new();
    let page = browser
        .get(&format!(
            "{}/oidc/contoso/login?console={CONSOLE_ID}",
            env.fedgate_url
        ))
        .await
        .unwrap();
    // fedgate → Entra authorize → fedgate callback → the console's form.
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.hops[1].contains("/oauth2/v2.0/authorize?"),
        "{:?}",
        page.hops
    );
    for p in [
        "code_challenge_method=S256",
        "nonce=",
        "state=",
        "response_type=code",
    ] {
        assert!(
            page.hops[1].contains(p),
            "authorize URL lacks {p}: {}",
            page.hops[1]
        );
    }
    assert!(page.hops[2].contains("/oidc/contoso/callback?code="));
    let console = browser.submit(&page).await.unwrap();
    assert_eq!(console.status, 200, "{}", console.body);
    let v: serde_json::Value = serde_json::from_str(&console.body).unwrap();
    assert_eq!(v["user"], "alice@contoso.example");
    assert_eq!(v["roles"], serde_json::json!(["Backup Operator"]));

    // The same callback again (a replayed redirect): the state was taken.
    let again = Browser::new().get(&page.hops[2]).await.unwrap();
    assert_eq!(again.status, 400);
    assert_eq!(code_in(&again.body), "oidc.state_unknown");

    // A callback with a state fedgate never issued.
    let forged = Browser::new()
        .get(&format!(
            "{}/oidc/contoso/callback?code=x&state=forged",
            env.fedgate_url
        ))
        .await
        .unwrap();
    assert_eq!(code_in(&forged.body), "oidc.state_unknown");

    // The audit log names the OIDC path.
    let audit = std::fs::read_to_string(env.dir.join("audit.jsonl")).unwrap();
    assert!(
        audit
            .lines()
            .any(|l| l.contains("\"via\":\"oidc\"") && l.contains("\"outcome\":\"allowed\"")),
        "{audit}"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_user_without_a_mapped_group_is_refused_with_the_policy_code() {
    let env = Environment::start().await.unwrap();
    let page = Browser::new()
        .get(&format!(
            "{}/oidc/contoso/login?console={CONSOLE_ID}&login_hint=bob@contoso.example",
            env.fedgate_url
        ))
        .await
        .unwrap();
    assert_eq!(page.status, 403, "{}", page.body);
    assert_eq!(code_in(&page.body), "policy.no_rule_matched");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_errors_and_unknown_users_are_shown_with_their_code() {
    let env = Environment::start().await.unwrap();
    let page = Browser::new()
        .get(&format!(
            "{}/oidc/contoso/login?login_hint=mallory@contoso.example",
            env.fedgate_url
        ))
        .await
        .unwrap();
    assert_eq!(page.status, 403);
    assert_eq!(code_in(&page.body), "oidc.provider_error");
    assert!(page.body.contains("AADSTS50034"), "{}", page.body);
    env.stop().await;
}

/// The mock tenant alone, with one app registration using a certificate
/// credential; returns its base URL.
async fn mock_tenant_with_cert_client(cert_pem: &str) -> (String, tokio::task::JoinHandle<()>) {
    use fedgate::mock::entra_oidc::{router, rsa_public_key_of_cert, MockClient, MockEntraOidc};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let key = std::fs::read_to_string(super::fixture("saml/keys/idp_current_key.pem")).unwrap();
    let mock = std::sync::Arc::new(MockEntraOidc::new(
        base.clone(),
        fedgate::demo::TENANT_ID.into(),
        fedgate::trust::signing::JwtSigner::from_pem(&key).unwrap(),
        vec![MockClient {
            client_id: "cert-app".into(),
            cert_public_key: Some(rsa_public_key_of_cert(cert_pem).unwrap()),
            app_roles: vec!["Backup.Automation".into()],
            service_principal_id: "sp-1".into(),
            ..MockClient::default()
        }],
        vec![],
    ));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router(mock)).await;
    });
    (base, task)
}

async fn client_credentials(
    base: &str,
    credential: &fedgate::trust::credential::ClientCredential,
) -> (u16, serde_json::Value) {
    let token_url = format!("{base}/{}/oauth2/v2.0/token", fedgate::demo::TENANT_ID);
    let mut form = credential
        .form_params("cert-app", &token_url, time::OffsetDateTime::now_utc())
        .unwrap();
    form.push(("grant_type", "client_credentials".into()));
    form.push(("scope", "api://fedgate/.default".into()));
    let resp = reqwest::Client::new()
        .post(&token_url)
        .form(&form)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn certificate_credentials_sign_client_assertions_the_token_endpoint_accepts() {
    use fedgate::trust::credential::ClientCredential;
    let cert = std::fs::read_to_string(super::data("fedgate_rsa_cert.pem")).unwrap();
    let key = std::fs::read_to_string(super::data("fedgate_rsa_key.pem")).unwrap();
    let (base, task) = mock_tenant_with_cert_client(&cert).await;

    // PEM key and certificate.
    let pem = ClientCredential::certificate(&key, &cert).unwrap();
    let (status, body) = client_credentials(&base, &pem).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].as_str().unwrap().len() > 100);

    // The same credential as PFX files made by Python's cryptography, with
    // modern (PBES2/AES-256) and legacy (3DES, as older Windows exports) encryption.
    let dir = std::env::temp_dir().join(format!("fedgate-pfx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = r#"
import sys
from cryptography import x509
from cryptography.hazmat.primitives import serialization, hashes
from cryptography.hazmat.primitives.serialization import pkcs12
key = serialization.load_pem_private_key(open(sys.argv[1], 'rb').read(), None)
cert = x509.load_pem_x509_certificate(open(sys.argv[2], 'rb').read())
modern = pkcs12.serialize_key_and_certificates(b"app", key, cert, None, serialization.BestAvailableEncryption(b"pfx-pass"))
open(sys.argv[3] + "/modern.pfx", "wb").write(modern)
enc = (serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(2048)
       .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC).hmac_hash(hashes.SHA1()).build(b"pfx-pass"))
open(sys.argv[3] + "/legacy.pfx", "wb").write(pkcs12.serialize_key_and_certificates(b"app", key, cert, None, enc))
"#;
    let out = super::python()
        .args(["-c", script])
        .arg(super::data("fedgate_rsa_key.pem"))
        .arg(super::data("fedgate_rsa_cert.pem"))
        .arg(&dir)
        .output()
        .expect("the tests' Python, with cryptography (scripts/install-test-deps)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in ["modern.pfx", "legacy.pfx"] {
        let pfx = std::fs::read(dir.join(name)).unwrap();
        let cred = ClientCredential::from_pfx(&pfx, "pfx-pass").unwrap();
        let (status, body) = client_credentials(&base, &cred).await;
        assert_eq!(status, 200, "{name}: {body}");
        assert!(matches!(
            ClientCredential::from_pfx(&pfx, "wrong"),
            Err(fedgate::trust::signing::SigningError::KeyMalformed(_))
        ));
    }
    let _ = std::fs::remove_dir_all(&dir);

    // A certificate that is not the registered one is refused by the tenant.
    let other_key =
        std::fs::read_to_string(super::fixture("saml/keys/idp_current_key.pem")).unwrap();
    let other_cert =
        std::fs::read_to_string(super::fixture("saml/keys/idp_current_cert.pem")).unwrap();
    let other = ClientCredential::certificate(&other_key, &other_cert).unwrap();
    let (status, body) = client_credentials(&base, &other).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid_client");
    // A key that does not match its certificate is refused before any request.
    assert!(ClientCredential::certificate(&other_key, &cert).is_err());
    task.abort();
}

// ---- fedgate as OpenID provider for an Acronis-style console ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acronis_style_console_signs_in_through_fedgate_with_a_unit_scoped_role() {
    let env = Environment::start().await.unwrap();
    let browser = Browser::new();
    let page = browser
        .get(&format!(
            "{}/login?login_hint=carol@contoso.example",
            env.acronis_url
        ))
        .await
        .unwrap();
    assert_eq!(page.status, 200, "{} {:?}", page.body, page.hops);
    // console → fedgate authorize → Entra → fedgate callback → resume → console.
    let path: Vec<&str> = page
        .hops
        .iter()
        .map(|h| h.split('?').next().unwrap())
        .collect();
    assert!(path[1].ends_with("/oauth2/authorize"), "{path:?}");
    assert!(path[2].ends_with("/oauth2/v2.0/authorize"), "{path:?}");
    assert!(path[3].ends_with("/oidc/contoso/callback"), "{path:?}");
    assert!(path[4].ends_with("/oauth2/authorize/resume"), "{path:?}");
    assert!(
        path[5].ends_with("/callback") && path[5].starts_with(&env.acronis_url),
        "{path:?}"
    );
    let v: serde_json::Value = serde_json::from_str(&page.body).unwrap();
    assert_eq!(v["user"], "carol@contoso.example");
    assert_eq!(
        v["role_assignments"],
        serde_json::json!([{"role": "unit_admin", "tenant": "contoso/engineering"}])
    );
    assert_eq!(v["alg"], "EcdsaP256Sha256");

    // Signed in now: a second console login is single sign-on (no Entra hop).
    let again = browser
        .get(&format!("{}/login", env.acronis_url))
        .await
        .unwrap();
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.hops.len(), 3, "{:?}", again.hops);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_a_console_rule_goes_back_to_the_console_with_access_denied() {
    let env = Environment::start().await.unwrap();
    let page = Browser::new()
        .get(&format!(
            "{}/login?login_hint=alice@contoso.example",
            env.acronis_url
        ))
        .await
        .unwrap();
    assert_eq!(page.status, 403, "{}", page.body);
    let v: serde_json::Value = serde_json::from_str(&page.body).unwrap();
    assert_eq!(v["error"], "access_denied");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("policy.no_rule_matched"),
        "{v}"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorize_refuses_unknown_clients_and_redirect_uris_without_redirecting() {
    let env = Environment::start().await.unwrap();
    let b = Browser::new();
    let base = format!(
        "{}/oauth2/authorize?response_type=code&scope=openid&code_challenge=abc&code_challenge_method=S256",
        env.fedgate_url
    );
    let p = b
        .get(&format!(
            "{base}&client_id=nobody&redirect_uri=https://evil.example/cb"
        ))
        .await
        .unwrap();
    assert_eq!((p.status, code_in(&p.body)), (400, "oauth.client_unknown"));
    let p = b
        .get(&format!(
            "{base}&client_id=acronis-demo&redirect_uri={}/callback/",
            env.acronis_url
        ))
        .await
        .unwrap();
    assert_eq!(
        (p.status, code_in(&p.body)),
        (400, "oauth.redirect_uri_mismatch")
    );
    assert_eq!(p.hops.len(), 1, "never redirected: {:?}", p.hops);
    // A known client without PKCE gets the error at its redirect URI.
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!(
            "{}/oauth2/authorize?response_type=code&scope=openid&client_id=acronis-demo&redirect_uri={}/callback&state=s1",
            env.fedgate_url, env.acronis_url
        ))
        .send()
        .await
        .unwrap();
    let loc = resp.headers()["location"].to_str().unwrap();
    assert!(
        loc.contains("error=invalid_request")
            && loc.contains("oauth.pkce_required")
            && loc.ends_with("state=s1"),
        "{loc}"
    );
    env.stop().await;
}

/// Run an authorization up to the code, with our own PKCE pair: (code, verifier).
async fn code_for_carol(env: &Environment) -> (String, String) {
    use base64::Engine;
    let verifier = "a-verifier-of-sufficient-length-0123456789abcdef";
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes()).as_ref(),
    );
    let b = Browser::new();
    // Sign in first (any console login makes the session), then authorize.
    let url = format!(
        "{}/oauth2/authorize?response_type=code&scope=openid&client_id=acronis-demo&redirect_uri={}/callback&state=st&nonce=n1&code_challenge={challenge}&code_challenge_method=S256&login_hint=carol@contoso.example",
        env.fedgate_url, env.acronis_url
    );
    let p = b.get(&url).await.unwrap();
    // The last hop is the console's callback (which refuses our unknown state); the code is in it.
    let last = p.hops.last().unwrap();
    let code = last
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();
    (code, verifier.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_endpoint_checks_client_pkce_redirect_and_uses_each_code_once() {
    let env = Environment::start().await.unwrap();
    let http = reqwest::Client::new();
    let token_url = format!("{}/oauth2/token", env.fedgate_url);
    let redirect = format!("{}/callback", env.acronis_url);
    let post = |form: Vec<(&'static str, String)>, basic: Option<(&'static str, &'static str)>| {
        let mut r = http.post(&token_url).form(&form);
        if let Some((u, p)) = basic {
            r = r.basic_auth(u, Some(p));
        }
        r.send()
    };

    let (code, verifier) = code_for_carol(&env).await;
    let form = |code: &str, verifier: &str| {
        vec![
            ("grant_type", "authorization_code".to_string()),
            ("code", code.to_string()),
            ("redirect_uri", redirect.clone()),
            ("code_verifier", verifier.to_string()),
        ]
    };
    // Wrong secret: invalid_client (and the code is not consumed).
    let r = post(form(&code, &verifier), Some(("acronis-demo", "wrong")))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Wrong verifier: invalid_grant, and the code is spent.
    let r = post(
        form(&code, "another-verifier-of-sufficient-length-000000"),
        Some(("acronis-demo", "demo-only-acronis-secret")),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .starts_with("oauth.pkce_mismatch"),
        "{v}"
    );
    let r = post(
        form(&code, &verifier),
        Some(("acronis-demo", "demo-only-acronis-secret")),
    )
    .await
    .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .starts_with("oauth.code_invalid"),
        "{v}"
    );

    // A fresh code with the right verifier and secret (client_secret_post).
    let (code, verifier) = code_for_carol(&env).await;
    let mut f = form(&code, &verifier);
    f.push(("client_id", "acronis-demo".into()));
    f.push(("client_secret", "demo-only-acronis-secret".into()));
    let r = post(f, None).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let v: serde_json::Value = r.json().await.unwrap();
    let id = fedgate_token_claims(&v["id_token"]);
    assert_eq!(id["aud"], "acronis-demo");
    assert_eq!(id["nonce"], "n1");
    assert_eq!(id["iss"], env.fedgate_url.as_str());
    // userinfo with the access token.
    let info: serde_json::Value = http
        .get(format!("{}/oauth2/userinfo", env.fedgate_url))
        .bearer_auth(v["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["email"], "carol@contoso.example");
    assert_eq!(info["roles"], serde_json::json!(["unit_admin"]));
    let r = http
        .get(format!("{}/oauth2/userinfo", env.fedgate_url))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    env.stop().await;
}

fn fedgate_token_claims(token: &serde_json::Value) -> serde_json::Value {
    use base64::Engine;
    let p = token.as_str().unwrap().split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(p)
            .unwrap(),
    )
    .unwrap()
}

// ---- independent peers (Python Authlib) ----

fn python(script: &str, args: &[&str]) -> (bool, serde_json::Value) {
    let out = super::python()
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/").to_string() + script)
        .args(args)
        .output()
        .expect("the tests' Python, with authlib (scripts/install-test-deps)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v = serde_json::from_str(stdout.lines().last().unwrap_or("null")).unwrap_or_else(|_| {
        panic!(
            "{script}: no JSON answer\nstdout: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), v)
}

/// A client registration for the independent RP (RS256 ID tokens), with a
/// rule granting carol's group a role there.
const INDEPENDENT_RP: &str = r#"
[[consoles]]
id = "independent-rp"
kind = "acronis"
display_name = "Authlib relying party"
token_alg = "RS256"
[consoles.oidc]
client_id = "independent-rp"
client_secret_env = "INDEPENDENT_RP_SECRET_FOR_TESTS"
redirect_uris = ["http://127.0.0.1:9/authlib/callback"]
tenants = ["contoso"]

[[rules]]
id = "unit-admins-independent"
tenant = "contoso"
console = "independent-rp"
groups = ["8d2c4b6a-7e1f-4a3b-9c5d-6e7f8a9b0c1d"]
roles = ["readonly_admin"]
scope = "contoso/engineering"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_independent_relying_party_signs_in_at_fedgates_openid_provider() {
    // The secret comes from the environment, as the registration says.
    std::env::set_var("INDEPENDENT_RP_SECRET_FOR_TESTS", "independent-secret");
    let env = Environment::start_with(INDEPENDENT_RP).await.unwrap();
    let issuer = env.fedgate_url.clone();
    let run = |hint: &'static str, secret: &'static str| {
        let issuer = issuer.clone();
        tokio::task::spawn_blocking(move || {
            python(
                "independent_rp.py",
                &[
                    &issuer,
                    "independent-rp",
                    secret,
                    "http://127.0.0.1:9/authlib/callback",
                    hint,
                ],
            )
        })
    };
    let (ok, v) = run("carol@contoso.example", "independent-secret")
        .await
        .unwrap();
    assert!(ok, "{v}");
    assert_eq!(v["alg"], "RS256");
    assert_eq!(v["id_token"]["iss"], issuer.as_str());
    assert_eq!(v["id_token"]["aud"], "independent-rp");
    assert_eq!(v["id_token"]["email"], "carol@contoso.example");
    assert_eq!(
        v["id_token"]["role_assignments"],
        serde_json::json!([{"role": "readonly_admin", "tenant": "contoso/engineering"}])
    );
    assert_eq!(
        v["userinfo"]["roles"],
        serde_json::json!(["readonly_admin"])
    );

    // Alice has no rule for this console: the RP gets access_denied.
    let (ok, v) = run("alice@contoso.example", "independent-secret")
        .await
        .unwrap();
    assert!(!ok);
    assert!(
        v["redirect"]
            .as_str()
            .unwrap()
            .contains("error=access_denied"),
        "{v}"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_cookie_is_secure_whenever_fedgate_is_public_over_https() {
    for (public, secure) in [(None, false), (Some("https://fedgate.example.test"), true)] {
        let env = Environment::start_instance("", public).await.unwrap();
        // An IdP-initiated login made for the instance's own ACS URL.
        let resp = reqwest::Client::new()
            .post(format!("{}/saml/contoso/acs", env.fedgate_url))
            .form(&[
                (
                    "SAMLResponse",
                    env.entra_response(&fedgate::demo::alice(), None).unwrap(),
                ),
                ("RelayState", CONSOLE_ID.to_string()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
            "{cookie}"
        );
        assert_eq!(cookie.contains("; Secure"), secure, "{public:?}: {cookie}");
        env.stop().await;
    }
}

/// Authlib's OpenID provider as a child process, killed on drop.
struct IndependentOp {
    child: std::process::Child,
    issuer: String,
}

impl IndependentOp {
    fn start(secret: &str) -> IndependentOp {
        use std::io::BufRead;
        fedgate::trust::install_crypto_provider();
        let mut child = super::python()
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/scripts/independent_op.py"
            ))
            .args(["fedgate-rp", secret])
            .arg(super::data("fedgate_rsa_key.pem"))
            .arg(fedgate::demo::TENANT_ID)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the tests' Python, with authlib and flask (scripts/install-test-deps)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("independent_op.py did not start: {line:?}"));
        IndependentOp {
            child,
            issuer: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Wait until the OP answers discovery.
    async fn ready(&self) {
        for _ in 0..100 {
            if reqwest::get(format!("{}/.well-known/openid-configuration", self.issuer))
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the independent OP never answered");
    }
}

impl Drop for IndependentOp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fedgate_signs_users_in_at_an_independent_openid_provider() {
    let op = IndependentOp::start("op-secret");
    op.ready().await;
    let secret = std::env::temp_dir().join(format!("fedgate-op-secret-{}", std::process::id()));
    std::fs::write(&secret, "op-secret\n").unwrap();
    // A second tenant that signs in by OIDC only, at Authlib's provider.
    let extra = format!(
        r#"
[[tenants]]
id = "indep"
entra_tenant_id = "{tid}"
domains = ["contoso.example"]
[tenants.oidc]
issuer = "{issuer}"
client_id = "fedgate-rp"
client_secret_file = "{secret}"

[[rules]]
id = "indep-engineering"
tenant = "indep"
console = "{CONSOLE_ID}"
groups = ["{group}"]
roles = ["Backup Operator"]
scope = "contoso"
"#,
        tid = fedgate::demo::TENANT_ID,
        issuer = op.issuer,
        secret = secret.display(),
        group = fedgate::demo::ENGINEERING_GROUP,
    );
    let env = Environment::start_with(&extra).await.unwrap();
    let browser = Browser::new();
    let page = browser
        .get(&format!(
            "{}/oidc/indep/login?console={CONSOLE_ID}&login_hint=alice@contoso.example",
            env.fedgate_url
        ))
        .await
        .unwrap();
    assert_eq!(page.status, 200, "{} {:?}", page.body, page.hops);
    assert!(page.hops[1].starts_with(&format!("{}/authorize?", op.issuer)));
    let console = browser.submit(&page).await.unwrap();
    let v: serde_json::Value = serde_json::from_str(&console.body).unwrap();
    assert_eq!(v["user"], "alice@contoso.example", "{v}");
    assert_eq!(v["roles"], serde_json::json!(["Backup Operator"]));

    // A user the provider refuses: its error is shown with fedgate's code.
    let page = Browser::new()
        .get(&format!(
            "{}/oidc/indep/login?console={CONSOLE_ID}&login_hint=nobody@contoso.example",
            env.fedgate_url
        ))
        .await
        .unwrap();
    assert_eq!(code_in(&page.body), "oidc.provider_error", "{}", page.body);
    // A user with no mapped group: policy refuses.
    let page = Browser::new()
        .get(&format!(
            "{}/oidc/indep/login?console={CONSOLE_ID}&login_hint=mallory@contoso.example",
            env.fedgate_url
        ))
        .await
        .unwrap();
    assert_eq!(
        code_in(&page.body),
        "policy.no_rule_matched",
        "{}",
        page.body
    );
    // The SAML path is not configured for this tenant.
    let r = reqwest::Client::new()
        .post(format!("{}/saml/indep/acs", env.fedgate_url))
        .form(&[("SAMLResponse", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        code_in(&r.text().await.unwrap()),
        "tenant.saml_not_configured"
    );
    let _ = std::fs::remove_file(&secret);
    env.stop().await;
}

// ---- SP-initiated SAML ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sp_initiated_saml_login_answers_its_request_once() {
    let env = Environment::start().await.unwrap();
    let browser = Browser::new();
    // fedgate → Entra (AuthnRequest, HTTP-Redirect) → the IdP's auto-post page.
    let idp_page = browser
        .get(&format!(
            "{}/saml/contoso/login?console={CONSOLE_ID}",
            env.fedgate_url
        ))
        .await
        .unwrap();
    assert_eq!(idp_page.status, 200, "{}", idp_page.body);
    assert!(
        idp_page.hops[1].contains("/saml2?SAMLRequest="),
        "{:?}",
        idp_page.hops
    );
    let (_, fields) = fedgate::demo::parse_form(&idp_page.body).unwrap();
    let relay = fields
        .iter()
        .find(|(k, _)| k == "RelayState")
        .unwrap()
        .1
        .clone();
    assert!(relay.starts_with("req:_fg"), "{relay}");
    let fedgate_page = browser.submit(&idp_page).await.unwrap();
    assert_eq!(fedgate_page.status, 200, "{}", fedgate_page.body);
    let console = browser.submit(&fedgate_page).await.unwrap();
    assert_eq!(console.status, 200, "{}", console.body);

    // The IdP's answer posted again: the request was answered already.
    let again = Browser::new().submit(&idp_page).await.unwrap();
    assert_eq!(
        (again.status, code_in(&again.body)),
        (403, "saml.request_unknown")
    );

    // A response to one request presented as the answer to another.
    let other = browser
        .get(&format!(
            "{}/saml/contoso/login?console={CONSOLE_ID}",
            env.fedgate_url
        ))
        .await
        .unwrap();
    let (_, other_fields) = fedgate::demo::parse_form(&other.body).unwrap();
    let other_relay = other_fields
        .iter()
        .find(|(k, _)| k == "RelayState")
        .unwrap()
        .1
        .clone();
    let third = browser
        .get(&format!(
            "{}/saml/contoso/login?console={CONSOLE_ID}",
            env.fedgate_url
        ))
        .await
        .unwrap();
    let (action, mut swapped) = fedgate::demo::parse_form(&third.body).unwrap();
    for f in swapped.iter_mut().filter(|(k, _)| k == "RelayState") {
        f.1 = other_relay.clone();
    }
    let mixed = browser.post_form(&action, &swapped).await.unwrap();
    assert_eq!(
        (mixed.status, code_in(&mixed.body)),
        (403, "saml.in_response_to_mismatch")
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openid_provider_signs_in_at_a_saml_only_tenant_with_an_authn_request() {
    let env = Environment::start_saml_only().await.unwrap();
    let browser = Browser::new();
    let idp_page = browser
        .get(&format!(
            "{}/login?login_hint=carol@contoso.example",
            env.acronis_url
        ))
        .await
        .unwrap();
    // console → fedgate authorize → Entra's SAML endpoint (auto-post page).
    assert!(
        idp_page.hops[2].contains("/saml2?SAMLRequest="),
        "{:?}",
        idp_page.hops
    );
    // The post lands at fedgate's ACS, which resumes the console's request.
    let page = browser.submit(&idp_page).await.unwrap();
    assert_eq!(page.status, 200, "{} {:?}", page.body, page.hops);
    let v: serde_json::Value = serde_json::from_str(&page.body).unwrap();
    assert_eq!(v["user"], "carol@contoso.example");
    assert_eq!(
        v["role_assignments"],
        serde_json::json!([{"role": "unit_admin", "tenant": "contoso/engineering"}])
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_signs_the_user_out_of_fedgate_and_gets_its_user_back_at_its_registered_uri() {
    let env = Environment::start().await.unwrap();
    let browser = Browser::new();
    let login = format!("{}/login?login_hint=carol@contoso.example", env.acronis_url);
    let first = browser.get(&login).await.unwrap();
    assert_eq!(first.status, 200, "{}", first.body);
    // Discovery names the endpoint.
    let d: serde_json::Value = reqwest::get(format!(
        "{}/.well-known/openid-configuration",
        env.fedgate_url
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        d["end_session_endpoint"],
        format!("{}/oauth2/logout", env.fedgate_url)
    );
    // Somewhere the console did not register: refused, no redirect.
    let evil = browser
        .get(&format!(
            "{}/oauth2/logout?client_id=acronis-demo&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F",
            env.fedgate_url
        ))
        .await
        .unwrap();
    assert_eq!(evil.status, 400, "{}", evil.body);
    assert!(evil
        .body
        .contains("oauth.post_logout_redirect_uri_mismatch"));
    assert_eq!(evil.hops.len(), 1);
    // The registered URI, with the console's state.
    let back = format!("{}/signed-out", env.acronis_url);
    let out = browser
        .get(&format!(
            "{}/oauth2/logout?client_id=acronis-demo&post_logout_redirect_uri={}&state=s%201",
            env.fedgate_url,
            fedgate::util::urlencode(&back)
        ))
        .await
        .unwrap();
    // fedgate signs the user out at Entra too (its end_session_endpoint,
    // back to fedgate), then sends them to the console's URI.
    assert_eq!(
        out.hops.last().map(String::as_str),
        Some(format!("{back}?state=s%201").as_str()),
        "{:?}",
        out.hops
    );
    assert!(
        out.hops[1].contains("/oauth2/v2.0/logout?post_logout_redirect_uri="),
        "{:?}",
        out.hops
    );
    assert_eq!(
        env.entra_oidc.signed_out.lock().unwrap().as_slice(),
        ["carol@contoso.example"]
    );
    // The fedgate session is gone: the next console login goes to Entra again.
    let again = browser.get(&login).await.unwrap();
    assert!(
        again
            .hops
            .iter()
            .any(|h| h.contains("/oauth2/v2.0/authorize")),
        "{:?}",
        again.hops
    );
    // Audited.
    let audit = std::fs::read_to_string(env.dir.join("audit.jsonl")).unwrap();
    assert!(
        audit
            .lines()
            .any(|l| l.contains("\"code\":\"logout\"") && l.contains("carol@contoso.example")),
        "{audit}"
    );
    // /logout without a session: the signed-out page, the cookie cleared.
    let resp = reqwest::get(format!("{}/logout", env.fedgate_url))
        .await
        .unwrap();
    let cleared = resp.headers().get_all("set-cookie").iter().any(|v| {
        v.to_str()
            .unwrap_or_default()
            .starts_with("fedgate_session=; Path=/; Max-Age=0")
    });
    assert!(cleared);
    assert!(resp.text().await.unwrap().contains("Signed out of fedgate"));
    env.stop().await;
}

/// OpenID Connect Back-Channel Logout: at `/logout`, fedgate POSTs the
/// Acronis-style console a logout token naming the `sid` of the ID token it
/// issued; **PyJWT** verifies it against fedgate's JWKS (signature, issuer,
/// audience, `typ`, the event, no nonce).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_logout_an_oidc_console_gets_a_back_channel_logout_token_pyjwt_verifies() {
    // A receiver on loopback that keeps what it is posted.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = format!("http://{}/bc", listener.local_addr().unwrap());
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(4);
    let app = axum::Router::new().route(
        "/bc",
        axum::routing::post(move |body: String| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(body).await;
                "ok"
            }
        }),
    );
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let probe = Environment::start().await.unwrap();
    let index = probe
        .app
        .config
        .consoles
        .iter()
        .position(|c| c.id == fedgate::demo::ACRONIS_ID)
        .unwrap();
    probe.stop().await;
    let overrides = [(
        format!("FEDGATE_CONSOLES__{index}__OIDC__BACKCHANNEL_LOGOUT_URI"),
        receiver.clone(),
    )];
    let env = Environment::start_with_overrides("", &overrides)
        .await
        .unwrap();
    let browser = Browser::new();
    let page = browser
        .get(&format!(
            "{}/login?login_hint=carol@contoso.example",
            env.acronis_url
        ))
        .await
        .unwrap();
    assert_eq!(page.status, 200, "{}", page.body);
    let signed_in: serde_json::Value = serde_json::from_str(&page.body).unwrap();
    let sid = signed_in["sid"]
        .as_str()
        .expect("the ID token's sid")
        .to_string();
    let out = browser
        .get(&format!("{}/logout", env.fedgate_url))
        .await
        .unwrap();
    assert!(
        out.body.contains(&format!(
            "data-console=\"{}\" data-via=\"oidc\" data-result=\"confirmed\"",
            fedgate::demo::ACRONIS_ID
        )),
        "{}",
        out.body
    );
    let body = rx.recv().await.unwrap();
    let token = body.strip_prefix("logout_token=").unwrap().to_string();
    let jwks = reqwest::get(format!("{}/oauth2/jwks", env.fedgate_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let dir = super::TempDir::new("backchannel");
    std::fs::write(dir.join("jwks.json"), &jwks).unwrap();
    let script = r#"
import json, sys, jwt
token, jwks_file, issuer, audience = sys.argv[1:5]
header = jwt.get_unverified_header(token)
keys = {k["kid"]: k for k in json.load(open(jwks_file))["keys"]}
key = jwt.PyJWK(keys[header["kid"]]).key
claims = jwt.decode(token, key, algorithms=["ES256", "RS256"], audience=audience, issuer=issuer,
                    options={"require": ["iss", "aud", "iat", "exp", "jti"]})
print(json.dumps({"typ": header.get("typ"), "claims": claims}))
"#;
    let out = super::python()
        .args(["-c", script, &token])
        .arg(dir.join("jwks.json"))
        .args([&env.fedgate_url, fedgate::demo::ACRONIS_ID])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "PyJWT refused the logout token: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["typ"], "logout+jwt");
    assert!(v["claims"]["events"]
        .get("http://schemas.openid.net/event/backchannel-logout")
        .is_some());
    assert!(v["claims"].get("nonce").is_none());
    // Its sid is the one of the ID token the console got at sign-in.
    assert_eq!(v["claims"]["sid"], sid.as_str());
    assert_eq!(v["claims"]["aud"], fedgate::demo::ACRONIS_ID);
    server.abort();
    env.stop().await;
}
