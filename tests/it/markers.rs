//! Issue 14, findings 2 and 6, driven as the attacker did: over real HTTP on
//! loopback, two tenants (contoso, and fabrikam with its own signing key), one
//! shared console. The fabrikam tenant admin controls every attribute their
//! tenant sends, names included: fedgate's internal marker names sent as
//! SAML attributes must change nothing (no admin, no false "groups from
//! Graph" in the audit trail), and a verified user no rule grants anything
//! gets the denial page and no session cookie, whatever the RelayState.

use base64::Engine;
use fedgate::demo::{self, Environment, CONSOLE_ID};
use fedgate::mock::entra::{self, MockLogin, MockUser};
use fedgate::trust::signing::SigningKey;

const FABRIKAM_TID: &str = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f";
/// fabrikam's group that a rule grants on the shared console.
const FABRIKAM_OPERATORS: &str = "6e5d4c3b-2a19-4f08-9e7d-6c5b4a392817";
/// contoso's fedgate admins (the `[admin]` rule), granted nothing on any console.
const ADMIN_GROUP: &str = "a1d2e3f4-0b1c-4d2e-8f3a-4b5c6d7e8f90";

/// Every internal marker name fedgate ever kept in the attribute map
/// (`grep '"fedgate:' src`), with the value that would help an attacker.
const MARKERS: &[(&str, &str)] = &[
    ("fedgate:admin", "local"),
    ("fedgate:groups_source", "graph"),
    ("fedgate:tenant", "contoso"),
];

struct TwoTenants {
    env: Environment,
    fabrikam_key: SigningKey,
}

async fn start() -> TwoTenants {
    let now = time::OffsetDateTime::now_utc();
    let (key_pem, cert_pem) = fedgate::trust::keys::generate("fabrikam test IdP", 30, now).unwrap();
    let fabrikam_key = SigningKey::from_pem(&key_pem, &cert_pem).unwrap();
    let dir = std::env::temp_dir().join(format!(
        "fedgate-markers-{}-{}",
        std::process::id(),
        fedgate::util::random_id().unwrap()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let metadata = dir.join("fabrikam-federationmetadata.xml");
    std::fs::write(
        &metadata,
        entra::federation_metadata(FABRIKAM_TID, &[&fabrikam_key.cert]),
    )
    .unwrap();
    let extra = format!(
        r#"
[[tenants]]
id = "fabrikam"
entra_tenant_id = "{FABRIKAM_TID}"
metadata_file = "{}"
domains = ["fabrikam.example"]

[[rules]]
id = "fabrikam-operators"
tenant = "fabrikam"
console = "{CONSOLE_ID}"
groups = ["{FABRIKAM_OPERATORS}"]
roles = ["Backup Operator"]
scope = "fabrikam"

[admin]
tenant = "contoso"
groups = ["{ADMIN_GROUP}"]
"#,
        metadata.display()
    );
    let env = Environment::start_with(&extra).await.unwrap();
    std::fs::remove_dir_all(&dir).ok();
    TwoTenants { env, fabrikam_key }
}

fn user(name: &str, tenant: &str, oid: &str, groups: &[&str]) -> MockUser {
    MockUser {
        object_id: oid.into(),
        upn: format!("{name}@{tenant}.example"),
        display_name: name.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        roles: vec![],
        mfa: true,
        groups_overage: false,
    }
}

/// mallory: a fabrikam user the fabrikam rule grants Backup Operator, who
/// also claims contoso's admin group id (group ids are no secret).
fn mallory() -> MockUser {
    user(
        "mallory",
        "fabrikam",
        "0f1e2d3c-4b5a-4697-8887-766554433221",
        &[FABRIKAM_OPERATORS, ADMIN_GROUP],
    )
}

/// eve: a fabrikam user no rule grants anything.
fn eve() -> MockUser {
    user(
        "eve",
        "fabrikam",
        "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        &["99999999-8888-4777-8666-555544443333"],
    )
}

impl TwoTenants {
    /// A response signed with `tenant`'s own key, carrying `extra`
    /// attributes in the signed Assertion.
    fn response(&self, tenant: &str, user: &MockUser, extra: &[(&str, &str)]) -> String {
        let rt = self.env.app.tenants.get(tenant).unwrap();
        let (tid, key) = match tenant {
            "fabrikam" => (FABRIKAM_TID, &self.fabrikam_key),
            _ => (demo::TENANT_ID, &self.env.entra_key),
        };
        let login = MockLogin {
            tenant_id: tid.into(),
            sp_entity_id: rt.settings.sp_entity_id.clone(),
            acs_url: rt.settings.acs_url.clone(),
            issue_instant: time::OffsetDateTime::now_utc(),
            in_response_to: None,
            id_seed: fedgate::util::random_id().unwrap(),
        };
        let (xml, assertion_id) = entra::response_xml(user, &login);
        let attrs: String = extra
            .iter()
            .map(|(n, v)| {
                format!("<Attribute Name=\"{n}\"><AttributeValue>{v}</AttributeValue></Attribute>")
            })
            .collect();
        let xml = xml.replacen(
            "</AttributeStatement>",
            &format!("{attrs}</AttributeStatement>"),
            1,
        );
        let signed = fedgate::xml::dsig::sign_enveloped(&xml, &assertion_id, key).unwrap();
        base64::engine::general_purpose::STANDARD.encode(signed)
    }

    /// POST to `tenant`'s ACS without following redirects: (status, session
    /// cookie if one was set, body).
    async fn post(
        &self,
        tenant: &str,
        b64: &str,
        relay: Option<&str>,
    ) -> (u16, Option<String>, String) {
        let mut form = vec![("SAMLResponse", b64.to_string())];
        if let Some(r) = relay {
            form.push(("RelayState", r.to_string()));
        }
        let resp = client()
            .post(format!("{}/saml/{tenant}/acs", self.env.fedgate_url))
            .form(&form)
            .send()
            .await
            .unwrap();
        let cookie = session_cookie(&resp);
        (resp.status().as_u16(), cookie, resp.text().await.unwrap())
    }

    /// GET /admin with a session cookie: (status, body).
    async fn admin_page(&self, session: &str) -> (u16, String) {
        let resp = client()
            .get(format!("{}/admin", self.env.fedgate_url))
            .header("cookie", format!("fedgate_session={session}"))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    fn last_event(&self) -> serde_json::Value {
        let audit = std::fs::read_to_string(self.env.dir.join("audit.jsonl")).unwrap();
        serde_json::from_str(audit.lines().last().unwrap()).unwrap()
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn session_cookie(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("fedgate_session="))
        .and_then(|c| c.split(';').next())
        .filter(|c| !c.is_empty())
        .map(str::to_string)
}

fn code_in(body: &str) -> &str {
    body.split("<code>")
        .nth(1)
        .and_then(|s| s.split("</code>").next())
        .unwrap_or("?")
}

fn is_dashboard(body: &str) -> bool {
    body.contains("<h1>Dashboard</h1>")
}

/// Finding 2: a fabrikam user with a console right, who sends every marker
/// name and contoso's admin group id, signs in (RelayState `authorize:…`, and
/// to the console path) and is never let into /admin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marker_attributes_from_another_tenant_make_nobody_an_admin() {
    let t = start().await;
    for relay in ["authorize:x", CONSOLE_ID] {
        let r = t.response("fabrikam", &mallory(), MARKERS);
        let (status, cookie, body) = t.post("fabrikam", &r, Some(relay)).await;
        assert!(status < 400, "{relay}: {status} {body}");
        let cookie = cookie.unwrap_or_else(|| panic!("{relay}: a granted user gets a session"));
        let (_, page) = t.admin_page(&cookie).await;
        assert!(
            !is_dashboard(&page),
            "{relay}: fabrikam's user is not a fedgate admin: {page}"
        );
        assert!(page.contains("Sign in"), "{page}");
    }
    t.env.stop().await;
}

/// Finding 2: `fedgate:groups_source = graph` sent by the tenant does not make
/// the audit trail say the groups came from Microsoft Graph.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_groups_source_attribute_does_not_reach_the_audit_trail() {
    let t = start().await;
    let r = t.response("fabrikam", &mallory(), MARKERS);
    let (status, _, body) = t.post("fabrikam", &r, Some(CONSOLE_ID)).await;
    assert_eq!(status, 200, "{body}");
    let event = t.last_event();
    assert_eq!(event["outcome"], "allowed", "{event}");
    assert_eq!(event["tenant"], "fabrikam", "{event}");
    assert!(event.get("groups_resolved_by").is_none(), "{event}");
    assert_eq!(event["groups_source"], "idp", "{event}");
    t.env.stop().await;
}

/// Finding 6: a verified user no rule grants anything gets the denial page
/// with the policy code and no session cookie, whatever the RelayState; the
/// marker attributes change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_session_for_a_user_no_rule_grants_anything() {
    let t = start().await;
    for (relay, code) in [
        (Some("authorize:x"), "policy.no_console"),
        (Some(CONSOLE_ID), "policy.no_rule_matched"),
        (None, "policy.no_console"),
    ] {
        let r = t.response("fabrikam", &eve(), MARKERS);
        let (status, cookie, body) = t.post("fabrikam", &r, relay).await;
        assert_eq!((status, code_in(&body)), (403, code), "{relay:?}: {body}");
        assert_eq!(cookie, None, "{relay:?}: no session cookie");
        assert_eq!(t.last_event()["code"], code);
    }
    t.env.stop().await;
}

/// The `[admin]` rule still works: a contoso member of the admin group (who
/// no console rule grants anything) gets a session and the dashboard; a
/// contoso user with console rights but outside the group does not get in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_group_member_still_gets_in() {
    let t = start().await;
    let root = user(
        "root",
        "contoso",
        "2b3c4d5e-6f70-4a81-9b2c-3d4e5f607182",
        &[ADMIN_GROUP],
    );
    let r = t.response("contoso", &root, &[]);
    let (status, cookie, body) = t.post("contoso", &r, Some("authorize:x")).await;
    assert!(status < 400, "{status} {body}");
    let (_, page) = t
        .admin_page(&cookie.expect("an admin gets a session"))
        .await;
    assert!(is_dashboard(&page), "{page}");
    // Alice: console rights, not in the admin group.
    let r = t.response("contoso", &demo::alice(), &[]);
    let (_, cookie, body) = t.post("contoso", &r, Some("authorize:x")).await;
    let (_, page) = t.admin_page(&cookie.expect(&body)).await;
    assert!(!is_dashboard(&page), "{page}");
    t.env.stop().await;
}

/// The local admin token: 5 tries a minute per client, then 429 with
/// Retry-After (even for the right token), audited as `admin.throttled`.
/// Without `server.trusted_proxies`, `X-Forwarded-For` is ignored: a new
/// forged address per try is still the same client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_admin_token_is_throttled_per_client() {
    // The same token as tests/it/admin.rs (the variable is process-wide).
    const TOKEN: &str = "admin-token-for-the-tests-0123456789";
    std::env::set_var("FEDGATE_ADMIN_TOKEN", TOKEN);
    let env = Environment::start().await.unwrap();
    let http = client();
    let page = http
        .get(format!("{}/admin", env.fedgate_url))
        .send()
        .await
        .unwrap();
    let csrf = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("fedgate_csrf="))
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_string();
    let attempt = |token: &'static str, forged: String| {
        let http = http.clone();
        let csrf = csrf.clone();
        let url = format!("{}/admin/login", env.fedgate_url);
        async move {
            http.post(url)
                .header("cookie", format!("fedgate_csrf={csrf}"))
                .header("x-forwarded-for", forged)
                .form(&[("csrf", csrf.as_str()), ("token", token)])
                .send()
                .await
                .unwrap()
        }
    };
    for i in 0..5 {
        let r = attempt("wrong-token", format!("203.0.113.{i}")).await;
        assert_eq!(r.status(), 403, "try {i}");
    }
    let r = attempt(TOKEN, "198.51.100.77".into()).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(session_cookie(&r).is_none());
    assert!(r.text().await.unwrap().contains("admin.throttled"));
    let audit = std::fs::read_to_string(env.dir.join("audit.jsonl")).unwrap();
    let event: serde_json::Value = serde_json::from_str(audit.lines().last().unwrap()).unwrap();
    assert_eq!(event["code"], "admin.throttled");
    assert_eq!(
        event["client"], "127.0.0.1",
        "X-Forwarded-For from an untrusted peer is ignored"
    );
    env.stop().await;
}

/// Behind a trusted proxy (`server.trusted_proxies`): the audit's client is
/// the address the proxy saw, and the throttle counts per that client, so
/// one client's guesses do not lock out another behind the same proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_forwarded_for_is_honoured_from_a_trusted_proxy_only() {
    const TOKEN: &str = "admin-token-for-the-tests-0123456789";
    std::env::set_var("FEDGATE_ADMIN_TOKEN", TOKEN);
    let env = Environment::start_with_overrides(
        "",
        &[(
            "FEDGATE_SERVER__TRUSTED_PROXIES".to_string(),
            "[\"127.0.0.0/8\"]".to_string(),
        )],
    )
    .await
    .unwrap();
    let http = client();
    let page = http
        .get(format!("{}/admin", env.fedgate_url))
        .send()
        .await
        .unwrap();
    let csrf = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("fedgate_csrf="))
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_string();
    let attempt = |token: &'static str, client_ip: &'static str| {
        let http = http.clone();
        let csrf = csrf.clone();
        let url = format!("{}/admin/login", env.fedgate_url);
        async move {
            http.post(url)
                .header("cookie", format!("fedgate_csrf={csrf}"))
                .header("x-forwarded-for", format!("198.51.100.1, {client_ip}"))
                .form(&[("csrf", csrf.as_str()), ("token", token)])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    for _ in 0..5 {
        assert_eq!(attempt("wrong-token", "203.0.113.5").await, 403);
    }
    assert_eq!(attempt("wrong-token", "203.0.113.5").await, 429);
    // Another client behind the same proxy is not locked out.
    assert_ne!(attempt(TOKEN, "203.0.113.6").await, 429);
    let audit = std::fs::read_to_string(env.dir.join("audit.jsonl")).unwrap();
    let clients: Vec<String> = audit
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|e| e["client"].as_str().map(String::from))
        .collect();
    assert!(clients.iter().any(|c| c == "203.0.113.5"), "{clients:?}");
    assert!(
        !clients
            .iter()
            .any(|c| c == "127.0.0.1" || c == "198.51.100.1"),
        "{clients:?}"
    );
    env.stop().await;
}

/// `/admin/sso` for a verified user the `[admin]` rule does not name (Alice:
/// console rights, not in the admin group): `admin.not_admin`, no session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_sso_for_a_non_admin_makes_no_session() {
    let t = start().await;
    let b = demo::Browser::new();
    let page = b
        .get(&format!("{}/admin/sso", t.env.fedgate_url))
        .await
        .unwrap();
    assert_eq!(
        (page.status, code_in(&page.body)),
        (403, "admin.not_admin"),
        "{:?}",
        page.hops
    );
    let page = b
        .get(&format!("{}/admin", t.env.fedgate_url))
        .await
        .unwrap();
    assert!(!is_dashboard(&page.body), "{}", page.body);
    assert_eq!(t.last_event()["code"], "admin.not_admin");
    t.env.stop().await;
}
