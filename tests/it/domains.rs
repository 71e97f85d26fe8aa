//! Identity bound to its tenant (issue 14, finding 1), driven as the
//! attacker did: two tenants, contoso (the demo's) and fabrikam, each with
//! its own signing key, one shared Autotask-style SAML console and one
//! shared Acronis-style OIDC console, over real HTTP on loopback.
//!
//! The fabrikam admin sets a fabrikam user's `mail` (or remaps the UPN
//! claim) to `alice@contoso.example`. fedgate must never hand that value
//! to a console: the login is refused with `identity.domain_not_owned`.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use fedgate::demo::{self, Browser, Environment, CONSOLE_ID};
use fedgate::inbound::saml::claims;
use fedgate::mock::entra::{self, MockLogin, MockUser};
use fedgate::trust::signing::SigningKey;

const FABRIKAM_TID: &str = "b1a2c3d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d";
const FABRIKAM_GROUP: &str = "fab0a0a0-1111-4222-8333-444455556666";
const SHARED_OIDC: &str = "shared-acronis";

fn code_in(body: &str) -> &str {
    body.split("<code>")
        .nth(1)
        .and_then(|s| s.split("</code>").next())
        .unwrap_or("?")
}

/// What the fabrikam admin makes Entra send for one user.
#[derive(Clone)]
struct Sent {
    user: MockUser,
    /// The `emailaddress` claim (user.mail), when not the UPN.
    mail: Option<&'static str>,
    /// Whether the `name` claim (the UPN) is sent at all.
    upn_claim: bool,
}

fn fabrikam_user(name: &str, upn: &str) -> MockUser {
    MockUser {
        object_id: format!("{:0>8}-0000-4000-8000-00000000fab1", name.len()),
        upn: upn.into(),
        display_name: name.into(),
        groups: vec![FABRIKAM_GROUP.into()],
        roles: vec![],
        mfa: true,
        groups_overage: false,
    }
}

/// fabrikam's users, by login hint.
fn fabrikam_users() -> HashMap<&'static str, Sent> {
    let mut m = HashMap::new();
    // mail set to Alice's address; the UPN claim removed from the app's claims.
    m.insert(
        "mallory-mail",
        Sent {
            user: fabrikam_user("mallory", "mallory@fabrikam.example"),
            mail: Some("alice@contoso.example"),
            upn_claim: false,
        },
    );
    // The UPN claim itself mapped to a value in contoso's domain.
    m.insert(
        "mallory-upn",
        Sent {
            user: fabrikam_user("mallory", "alice@contoso.example"),
            mail: None,
            upn_claim: true,
        },
    );
    // The real UPN, and mail set to Alice's address.
    m.insert(
        "mallory-both",
        Sent {
            user: fabrikam_user("mallory", "mallory@fabrikam.example"),
            mail: Some("alice@contoso.example"),
            upn_claim: true,
        },
    );
    // An honest fabrikam user in fabrikam's own domain.
    m.insert(
        "erin",
        Sent {
            user: fabrikam_user("erin", "erin@fabrikam.example"),
            mail: None,
            upn_claim: true,
        },
    );
    m
}

/// A Response as fabrikam's Entra signs it (its own key).
fn fabrikam_response(
    sent: &Sent,
    sp_entity_id: &str,
    acs_url: &str,
    in_response_to: Option<String>,
    key: &SigningKey,
) -> String {
    let login = MockLogin {
        tenant_id: FABRIKAM_TID.into(),
        sp_entity_id: sp_entity_id.into(),
        acs_url: acs_url.into(),
        issue_instant: time::OffsetDateTime::now_utc(),
        in_response_to,
        id_seed: fedgate::util::random_id().unwrap(),
    };
    let (xml, assertion_id) = entra::response_xml(&sent.user, &login);
    let attr = |name: &str, v: &str| {
        format!("<Attribute Name=\"{name}\"><AttributeValue>{v}</AttributeValue></Attribute>")
    };
    let email = attr(claims::EMAIL, &sent.user.upn);
    let name = attr(claims::NAME, &sent.user.upn);
    assert!(xml.contains(&email) && xml.contains(&name), "{xml}");
    let mut xml = xml.replace(
        &email,
        &attr(claims::EMAIL, sent.mail.unwrap_or(&sent.user.upn)),
    );
    if !sent.upn_claim {
        xml = xml.replace(&name, "");
    }
    fedgate::xml::dsig::sign_enveloped(&xml, &assertion_id, key).unwrap()
}

/// fabrikam's Entra on loopback: answers SP-initiated AuthnRequests
/// (HTTP-Redirect) with a signed Response for the user named by login_hint.
struct FabrikamIdp {
    key: SigningKey,
    users: HashMap<&'static str, Sent>,
}

#[derive(serde::Deserialize)]
struct SsoQuery {
    #[serde(rename = "SAMLRequest")]
    saml_request: String,
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
    login_hint: Option<String>,
}

async fn fabrikam_sso(
    axum::extract::State(idp): axum::extract::State<Arc<FabrikamIdp>>,
    axum::extract::Query(q): axum::extract::Query<SsoQuery>,
) -> axum::response::Html<String> {
    let xml = fedgate::inbound::saml::authn_request::decode_redirect(&q.saml_request).unwrap();
    let doc = fedgate::xml::parse(&xml).unwrap();
    let req = doc.root_element();
    let issuer = req
        .children()
        .find(|c| c.tag_name().name() == "Issuer")
        .map(fedgate::xml::text_content)
        .unwrap()
        .to_string();
    let acs = req.attribute("AssertionConsumerServiceURL").unwrap();
    let id = req.attribute("ID").unwrap().to_string();
    let sent = &idp.users[q.login_hint.as_deref().unwrap_or("erin")];
    let response = fabrikam_response(sent, &issuer, acs, Some(id), &idp.key);
    axum::response::Html(fedgate::outbound::saml_post::post_form(
        acs,
        &response,
        q.relay_state.as_deref(),
        "fedgate",
    ))
}

/// The demo (tenant contoso) plus tenant fabrikam on the same consoles.
struct TwoTenants {
    env: Environment,
    key: SigningKey,
    oidc_console: String,
    _dir: super::TempDir,
    stop: Vec<tokio::sync::oneshot::Sender<()>>,
}

async fn two_tenants(fabrikam_domains: &str) -> Result<TwoTenants, String> {
    fedgate::trust::install_crypto_provider();
    let key = SigningKey::from_pem(
        &std::fs::read_to_string(super::fixture("saml/keys/idp_next_key.pem")).unwrap(),
        &std::fs::read_to_string(super::fixture("saml/keys/idp_next_cert.pem")).unwrap(),
    )
    .unwrap();
    let dir = super::TempDir::new("domains");
    let mut stop = Vec::new();
    // fabrikam's Entra (SP-initiated sign-in) and the shared OIDC console.
    let idp_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let idp_url = format!("http://{}", idp_listener.local_addr().unwrap());
    let console_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let oidc_console = format!("http://{}", console_listener.local_addr().unwrap());
    std::fs::write(
        dir.join("fabrikam-md.xml"),
        entra::federation_metadata_at(&idp_url, FABRIKAM_TID, &[&key.cert]),
    )
    .unwrap();
    std::fs::write(dir.join("shared-secret"), "shared-secret\n").unwrap();
    let extra = format!(
        r#"
[[tenants]]
id = "fabrikam"
entra_tenant_id = "{FABRIKAM_TID}"
domains = {fabrikam_domains}
metadata_file = "{md}"

[[rules]]
id = "fabrikam-operators"
tenant = "fabrikam"
console = "{CONSOLE_ID}"
groups = ["{FABRIKAM_GROUP}"]
roles = ["Backup Operator"]
scope = "fabrikam"

[[consoles]]
id = "{SHARED_OIDC}"
kind = "acronis"
display_name = "Shared Cyber Protect (mock)"
[consoles.oidc]
client_id = "{SHARED_OIDC}"
client_secret_file = "{secret}"
redirect_uris = ["{oidc_console}/callback"]
tenants = ["contoso", "fabrikam"]

[[rules]]
id = "fabrikam-unit-admins"
tenant = "fabrikam"
console = "{SHARED_OIDC}"
groups = ["{FABRIKAM_GROUP}"]
roles = ["unit_admin"]
scope = "fabrikam/it"
"#,
        md = dir.join("fabrikam-md.xml").display(),
        secret = dir.join("shared-secret").display(),
    );
    let env = Environment::start_with(&extra).await?;
    let idp = Arc::new(FabrikamIdp {
        key: SigningKey::from_pem(
            &std::fs::read_to_string(super::fixture("saml/keys/idp_next_key.pem")).unwrap(),
            &std::fs::read_to_string(super::fixture("saml/keys/idp_next_cert.pem")).unwrap(),
        )
        .unwrap(),
        users: fabrikam_users(),
    });
    let router = axum::Router::new()
        .route(
            &format!("/{FABRIKAM_TID}/saml2"),
            axum::routing::get(fabrikam_sso),
        )
        .with_state(idp);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    stop.push(tx);
    tokio::spawn(async move {
        let _ = axum::serve(idp_listener, router)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    let console = Arc::new(fedgate::mock::oidc_console::MockOidcConsole::new(
        oidc_console.clone(),
        env.fedgate_url.clone(),
        SHARED_OIDC.into(),
        "shared-secret".into(),
    ));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    stop.push(tx);
    tokio::spawn(async move {
        let _ = axum::serve(
            console_listener,
            fedgate::mock::oidc_console::oidc_router(console),
        )
        .with_graceful_shutdown(async {
            let _ = rx.await;
        })
        .await;
    });
    Ok(TwoTenants {
        env,
        key,
        oidc_console,
        _dir: dir,
        stop,
    })
}

impl TwoTenants {
    /// An IdP-initiated fabrikam login posted to fabrikam's ACS for the shared console.
    async fn saml_login(&self, hint: &str) -> (u16, String) {
        let rt = &self.env.app.tenants["fabrikam"];
        let xml = fabrikam_response(
            &fabrikam_users()[hint],
            &rt.settings.sp_entity_id,
            &rt.settings.acs_url,
            None,
            &self.key,
        );
        let resp = reqwest::Client::new()
            .post(format!("{}/saml/fabrikam/acs", self.env.fedgate_url))
            .form(&[
                (
                    "SAMLResponse",
                    base64::engine::general_purpose::STANDARD.encode(xml),
                ),
                ("RelayState", CONSOLE_ID.to_string()),
            ])
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    /// The shared OIDC console's login for a fabrikam user, through
    /// fedgate's OpenID provider and fabrikam's SAML sign-in: the console's
    /// final answer (its JSON).
    async fn oidc_login(&self, hint: &str) -> (u16, serde_json::Value) {
        let browser = Browser::new();
        let idp_page = browser
            .get(&format!(
                "{}/login?tenant=fabrikam&login_hint={hint}",
                self.oidc_console
            ))
            .await
            .unwrap();
        assert_eq!(
            idp_page.status, 200,
            "{} {:?}",
            idp_page.body, idp_page.hops
        );
        let page = browser.submit(&idp_page).await.unwrap();
        (
            page.status,
            serde_json::from_str(&page.body).unwrap_or(serde_json::Value::String(page.body)),
        )
    }

    fn last_audit(&self) -> serde_json::Value {
        let audit = std::fs::read_to_string(self.env.dir.join("audit.jsonl")).unwrap();
        serde_json::from_str(audit.lines().last().unwrap()).unwrap()
    }

    async fn stop(self) {
        for tx in self.stop {
            let _ = tx.send(());
        }
        self.env.stop().await;
    }
}

/// The SAML assertion fedgate's auto-post page carries, decoded.
fn posted_assertion(html: &str) -> String {
    let (_, fields) = demo::parse_form(html).unwrap();
    let b64 = &fields.iter().find(|(n, _)| n == "SAMLResponse").unwrap().1;
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fabrikam_user_with_a_contoso_address_never_reaches_the_shared_saml_console_as_alice() {
    let t = two_tenants(r#"["fabrikam.example"]"#).await.unwrap();
    // mail = alice@contoso.example (no UPN claim), and the UPN claim itself
    // in contoso's domain: refused, 403, the tenant and the domain named.
    for hint in ["mallory-mail", "mallory-upn"] {
        let (status, body) = t.saml_login(hint).await;
        assert_eq!(
            (status, code_in(&body)),
            (403, "identity.domain_not_owned"),
            "{hint}: {body}"
        );
        assert!(
            body.contains("fabrikam") && body.contains("contoso.example"),
            "{hint}: {body}"
        );
        assert!(!body.contains("SAMLResponse"), "{hint}: no assertion");
        assert!(
            body.contains("Domain names"),
            "{hint}: the page's hint: {body}"
        );
        let event = t.last_audit();
        assert_eq!(
            (
                event["outcome"].as_str(),
                event["code"].as_str(),
                event["tenant"].as_str()
            ),
            (
                Some("denied"),
                Some("identity.domain_not_owned"),
                Some("fabrikam")
            ),
            "{hint}: {event}"
        );
    }
    // The real UPN beside the forged mail: the UPN is the console identity;
    // Alice's address appears nowhere in what the console receives.
    let (status, html) = t.saml_login("mallory-both").await;
    assert_eq!(status, 200, "{html}");
    let assertion = posted_assertion(&html);
    assert!(
        assertion.contains(">mallory@fabrikam.example</saml:NameID>"),
        "{assertion}"
    );
    assert!(!assertion.contains("alice@contoso.example"), "{assertion}");
    let (cs, body) = t.env.follow_form(&html).await.unwrap();
    assert_eq!(
        (cs, body["error"].as_str()),
        (403, Some("user_not_provisioned")),
        "{body}"
    );
    // A fabrikam user in fabrikam's own domain still gets in, under that name
    // (the console verified fedgate's assertion; it has no such user yet).
    let (status, html) = t.saml_login("erin").await;
    assert_eq!(status, 200, "{html}");
    let assertion = posted_assertion(&html);
    assert!(
        assertion.contains(">erin@fabrikam.example</saml:NameID>"),
        "{assertion}"
    );
    let (_, body) = t.env.follow_form(&html).await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("erin@fabrikam.example")),
        "{body}"
    );
    // contoso's Alice is unaffected.
    let (status, html) = t.env.login(&demo::alice(), Some(CONSOLE_ID)).await.unwrap();
    assert_eq!(status, 200, "{html}");
    let (cs, body) = t.env.follow_form(&html).await.unwrap();
    assert_eq!(
        (cs, body["user"].as_str()),
        (200, Some("alice@contoso.example"))
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fabrikam_user_with_a_contoso_address_gets_no_id_token_from_fedgates_openid_provider() {
    let t = two_tenants(r#"["fabrikam.example"]"#).await.unwrap();
    for hint in ["mallory-mail", "mallory-upn"] {
        let (status, v) = t.oidc_login(hint).await;
        assert_eq!(status, 403, "{hint}: {v}");
        assert_eq!(v["error"], "access_denied", "{hint}: {v}");
        let m = v["message"].as_str().unwrap_or_default();
        assert!(
            m.starts_with("identity.domain_not_owned") && m.contains("\"fabrikam\""),
            "{hint}: {v}"
        );
        let event = t.last_audit();
        assert_eq!(event["code"], "identity.domain_not_owned", "{event}");
        assert_eq!(event["console"], SHARED_OIDC, "{event}");
    }
    // The forged mail beside the real UPN: the ID token names the UPN.
    let (status, v) = t.oidc_login("mallory-both").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["user"], "mallory@fabrikam.example", "{v}");
    // An honest fabrikam user: e-mail in fabrikam's domain, a tenant-bound sub.
    let (status, v) = t.oidc_login("erin").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["user"], "erin@fabrikam.example", "{v}");
    assert_eq!(
        v["sub"],
        format!("{FABRIKAM_TID}:{}", fabrikam_user("erin", "").object_id),
        "{v}"
    );
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tenants_claiming_one_domain_refuse_to_load() {
    let e = two_tenants(r#"["fabrikam.example", "Contoso.Example"]"#)
        .await
        .err()
        .expect("two directories claiming contoso.example must not load");
    assert!(
        e.contains("both claim the domain \"contoso.example\"")
            && e.contains("\"contoso\"")
            && e.contains("\"fabrikam\""),
        "{e}"
    );
}

/// A tenant that declares no domains delivers no e-mail at all (fail
/// closed), and says what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_without_domains_delivers_no_email_identity() {
    let t = two_tenants("[]").await.unwrap();
    let (status, body) = t.saml_login("erin").await;
    assert_eq!(
        (status, code_in(&body)),
        (403, "identity.domain_not_owned"),
        "{body}"
    );
    assert!(body.contains("declares no domains"), "{body}");
    t.stop().await;
}
