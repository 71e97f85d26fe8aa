//! Issue 14, findings 4 and 5, driven as the attacker did: two tenants,
//! contoso and fabrikam, each with its own signing key; responses signed by
//! the mock tenant; fedgate served over real HTTP on loopback, with a clock
//! the test can move forward.
//!
//! - SP-initiated login state is bound to its tenant and to the browser that
//!   started it, and consumed only by a response that verified.
//! - The replay cache remembers an assertion until the latest time any of
//!   its confirmations (or its Conditions) could still be accepted.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use base64::Engine;
use fedgate::gateway::App;
use fedgate::mock::entra::{self, MockLogin, MockUser};
use fedgate::trust::signing::SigningKey;
use time::{Duration, OffsetDateTime};

const CONTOSO_TID: &str = "11111111-2222-4333-8444-555555555555";
const FABRIKAM_TID: &str = "99999999-8888-4777-8666-555555555555";
const CONTOSO_GROUP: &str = "0c0c0c0c-1111-4222-8333-444444444444";
const FABRIKAM_GROUP: &str = "0f0f0f0f-1111-4222-8333-444444444444";
const CONSOLE: &str = "shared-console";

fn code_in(body: &str) -> &str {
    body.split("<code>")
        .nth(1)
        .and_then(|s| s.split("</code>").next())
        .unwrap_or("?")
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

/// fedgate with two tenants and one console both may reach.
pub struct Gate {
    pub url: String,
    pub app: Arc<App>,
    /// Seconds added to the real clock.
    offset: Arc<AtomicI64>,
    contoso_key: SigningKey,
    fabrikam_key: SigningKey,
    dir: std::path::PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

pub fn contoso_user() -> MockUser {
    MockUser {
        object_id: "aaaaaaaa-0000-4000-8000-000000000001".into(),
        upn: "alice@contoso.example".into(),
        display_name: "Alice".into(),
        groups: vec![CONTOSO_GROUP.into()],
        roles: vec![],
        mfa: true,
        groups_overage: false,
    }
}

pub fn fabrikam_user() -> MockUser {
    MockUser {
        object_id: "bbbbbbbb-0000-4000-8000-000000000002".into(),
        upn: "frank@fabrikam.example".into(),
        display_name: "Frank".into(),
        groups: vec![FABRIKAM_GROUP.into()],
        roles: vec![],
        mfa: true,
        groups_overage: false,
    }
}

impl Gate {
    pub async fn start() -> Gate {
        fedgate::trust::install_crypto_provider();
        let dir = std::env::temp_dir().join(format!(
            "fedgate-state-{}-{}",
            std::process::id(),
            fedgate::util::random_id().unwrap()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let contoso_key = key("idp_current");
        let fabrikam_key = key("idp_next");
        let write = |name: &str, body: &str| std::fs::write(dir.join(name), body).unwrap();
        write(
            "contoso.xml",
            &entra::federation_metadata(CONTOSO_TID, &[&contoso_key.cert]),
        );
        write(
            "fabrikam.xml",
            &entra::federation_metadata(FABRIKAM_TID, &[&fabrikam_key.cert]),
        );
        for f in ["fedgate_rsa_key.pem", "fedgate_rsa_cert.pem"] {
            write(f, &std::fs::read_to_string(super::data(f)).unwrap());
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let url = format!("http://{addr}");
        write(
            "fedgate.toml",
            &format!(
                r#"
[server]
listen = "{addr}"
public_url = "{url}"

[signing]
key_file = "fedgate_rsa_key.pem"
cert_file = "fedgate_rsa_cert.pem"

[audit]
file = "audit.jsonl"

[[tenants]]
id = "contoso"
entra_tenant_id = "{CONTOSO_TID}"
metadata_file = "contoso.xml"
domains = ["contoso.example"]

[[tenants]]
id = "fabrikam"
entra_tenant_id = "{FABRIKAM_TID}"
metadata_file = "fabrikam.xml"
domains = ["fabrikam.example"]

[[consoles]]
id = "{CONSOLE}"
kind = "generic"
display_name = "Shared backup console"
identifier = "https://console.example.test/saml"
reply_url = "https://console.example.test/saml/acs"

[[rules]]
id = "contoso-operators"
tenant = "contoso"
console = "{CONSOLE}"
groups = ["{CONTOSO_GROUP}"]
roles = ["operator"]

[[rules]]
id = "fabrikam-operators"
tenant = "fabrikam"
console = "{CONSOLE}"
groups = ["{FABRIKAM_GROUP}"]
roles = ["operator"]
"#
            ),
        );
        let config = fedgate::config::Config::load(&dir.join("fedgate.toml"), &[]).unwrap();
        let store = fedgate::store::from_config(&config.store).unwrap();
        let offset = Arc::new(AtomicI64::new(0));
        let o = offset.clone();
        let clock = Box::new(move || {
            OffsetDateTime::now_utc() + Duration::seconds(o.load(Ordering::SeqCst))
        });
        let app = Arc::new(App::new(config, store, clock).unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let served = app.clone();
        let task = tokio::spawn(async move {
            let _ = fedgate::http::serve(served, listener, async {
                let _ = rx.await;
            })
            .await;
        });
        Gate {
            url,
            app,
            offset,
            contoso_key,
            fabrikam_key,
            dir,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub fn now(&self) -> OffsetDateTime {
        self.app.now()
    }

    /// Move fedgate's clock forward.
    pub fn advance(&self, by: Duration) {
        self.offset.fetch_add(by.whole_seconds(), Ordering::SeqCst);
    }

    /// Start an SP-initiated login at `tenant` as a browser: the AuthnRequest
    /// id (from the RelayState fedgate sends to the IdP) and the browser's
    /// binding cookie (`name=value`).
    pub async fn start_login(&self, tenant: &str) -> (String, String) {
        let resp = no_redirects()
            .get(format!(
                "{}/saml/{tenant}/login?console={CONSOLE}",
                self.url
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303);
        let location = resp.headers()["location"].to_str().unwrap().to_string();
        let relay = location
            .split(['?', '&'])
            .find_map(|kv| kv.strip_prefix("RelayState="))
            .unwrap()
            .replace("%3A", ":");
        let id = relay.strip_prefix("req:").unwrap().to_string();
        let cookie = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("fedgate_login="))
            .map(|v| v.split(';').next().unwrap().to_string())
            .unwrap_or_default();
        (id, cookie)
    }

    /// A response of `tenant`'s IdP for `user`, signed with that tenant's
    /// key, issued at `at`, answering `in_response_to`.
    pub fn response(
        &self,
        tenant: &str,
        user: &MockUser,
        in_response_to: Option<&str>,
        at: OffsetDateTime,
    ) -> String {
        let xml = self.response_xml(tenant, user, in_response_to, at);
        self.sign(tenant, &xml)
    }

    pub fn response_xml(
        &self,
        tenant: &str,
        user: &MockUser,
        in_response_to: Option<&str>,
        at: OffsetDateTime,
    ) -> String {
        let rt = &self.app.tenants[tenant];
        let login = MockLogin {
            tenant_id: if tenant == "contoso" {
                CONTOSO_TID
            } else {
                FABRIKAM_TID
            }
            .into(),
            sp_entity_id: rt.settings.sp_entity_id.clone(),
            acs_url: rt.settings.acs_url.clone(),
            issue_instant: at,
            in_response_to: in_response_to.map(str::to_string),
            id_seed: fedgate::util::random_id().unwrap(),
        };
        entra::response_xml(user, &login).0
    }

    /// Sign (the Assertion) with `tenant`'s key and base64 it.
    pub fn sign(&self, tenant: &str, xml: &str) -> String {
        let key = if tenant == "contoso" {
            &self.contoso_key
        } else {
            &self.fabrikam_key
        };
        let assertion_id = xml
            .split("<Assertion ")
            .nth(1)
            .and_then(|a| a.split("ID=\"").nth(1))
            .and_then(|a| a.split('"').next())
            .unwrap();
        let signed = fedgate::xml::dsig::sign_enveloped(xml, assertion_id, key).unwrap();
        base64::engine::general_purpose::STANDARD.encode(signed)
    }

    /// POST to `tenant`'s ACS, with `cookie` (`name=value`) if any.
    pub async fn post_acs(
        &self,
        tenant: &str,
        saml_response: &str,
        relay: Option<&str>,
        cookie: Option<&str>,
    ) -> (u16, String) {
        let mut form = vec![("SAMLResponse", saml_response.to_string())];
        if let Some(r) = relay {
            form.push(("RelayState", r.to_string()));
        }
        let mut req = no_redirects()
            .post(format!("{}/saml/{tenant}/acs", self.url))
            .form(&form);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The user a delivered assertion names (fedgate's form to the console).
fn delivered(body: &str) -> bool {
    body.contains("https://console.example.test/saml/acs") && body.contains("SAMLResponse")
}

// ---- finding 4: login state bound to its tenant and its browser ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fabrikams_pending_request_answered_on_contosos_acs_is_refused() {
    let gate = Gate::start().await;
    // A fabrikam user starts a login at fabrikam.
    let (id, cookie) = gate.start_login("fabrikam").await;
    let relay = format!("req:{id}");
    // Contoso's admin answers it with a contoso response signed by contoso's
    // key, InResponseTo the fabrikam request, at contoso's ACS, even from
    // the same browser (the cookie sent).
    let forged = gate.response("contoso", &contoso_user(), Some(&id), gate.now());
    let (status, body) = gate
        .post_acs("contoso", &forged, Some(&relay), Some(&cookie))
        .await;
    assert_eq!(
        (status, code_in(&body)),
        (403, "saml.request_other_tenant"),
        "{body}"
    );
    assert!(!delivered(&body));
    // The request is still fabrikam's to answer: its real response succeeds.
    let real = gate.response("fabrikam", &fabrikam_user(), Some(&id), gate.now());
    let (status, body) = gate
        .post_acs("fabrikam", &real, Some(&relay), Some(&cookie))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(delivered(&body), "{body}");
    gate.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsigned_post_does_not_consume_a_victims_pending_login() {
    let gate = Gate::start().await;
    let (id, cookie) = gate.start_login("contoso").await;
    let relay = format!("req:{id}");
    // The attacker, knowing the request id, posts an unsigned response: from
    // their own browser (no cookie), and as a cross-site auto-post from a
    // page the victim opened (the victim's cookie comes along).
    let unsigned = base64::engine::general_purpose::STANDARD.encode(gate.response_xml(
        "contoso",
        &contoso_user(),
        Some(&id),
        gate.now(),
    ));
    let (status, body) = gate
        .post_acs("contoso", &unsigned, Some(&relay), None)
        .await;
    assert_eq!((status, code_in(&body)), (403, "saml.request_unbound"));
    let (status, body) = gate
        .post_acs("contoso", &unsigned, Some(&relay), Some(&cookie))
        .await;
    assert_eq!((status, code_in(&body)), (403, "saml.unsigned"));
    let (status, body) = gate
        .post_acs("contoso", "not base64!", Some(&relay), Some(&cookie))
        .await;
    assert_eq!((status, code_in(&body)), (400, "saml.base64_invalid"));
    // A response signed by the other tenant's key does not consume it either.
    let wrong_key = gate.sign(
        "fabrikam",
        &gate.response_xml("contoso", &contoso_user(), Some(&id), gate.now()),
    );
    let (status, body) = gate
        .post_acs("contoso", &wrong_key, Some(&relay), Some(&cookie))
        .await;
    assert_eq!((status, code_in(&body)), (403, "saml.cert_untrusted"));
    // The victim's real response still succeeds, once.
    let real = gate.response("contoso", &contoso_user(), Some(&id), gate.now());
    let (status, body) = gate
        .post_acs("contoso", &real, Some(&relay), Some(&cookie))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(delivered(&body), "{body}");
    let again = gate.response("contoso", &contoso_user(), Some(&id), gate.now());
    let (status, body) = gate
        .post_acs("contoso", &again, Some(&relay), Some(&cookie))
        .await;
    assert_eq!((status, code_in(&body)), (403, "saml.request_unknown"));
    gate.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_without_the_browsers_cookie_is_refused() {
    let gate = Gate::start().await;
    let (id, cookie) = gate.start_login("contoso").await;
    let relay = format!("req:{id}");
    // The real, signed response, posted from a browser that did not start
    // the login (no cookie; another browser's cookie).
    let real = gate.response("contoso", &contoso_user(), Some(&id), gate.now());
    let (status, body) = gate.post_acs("contoso", &real, Some(&relay), None).await;
    assert_eq!((status, code_in(&body)), (403, "saml.request_unbound"));
    let (_, other_cookie) = gate.start_login("contoso").await;
    assert_ne!(other_cookie, cookie);
    let (status, body) = gate
        .post_acs("contoso", &real, Some(&relay), Some(&other_cookie))
        .await;
    assert_eq!((status, code_in(&body)), (403, "saml.request_unbound"));
    // From the browser that started it: accepted.
    assert!(cookie.starts_with("fedgate_login="), "{cookie}");
    let (status, body) = gate
        .post_acs("contoso", &real, Some(&relay), Some(&cookie))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(delivered(&body));
    gate.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_cookie_is_httponly_and_cross_site_only_over_https() {
    let gate = Gate::start().await;
    let resp = no_redirects()
        .get(format!("{}/saml/contoso/login?console={CONSOLE}", gate.url))
        .send()
        .await
        .unwrap();
    let set = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    // Loopback (http): Lax, not Secure (a browser refuses SameSite=None
    // without Secure); over https it is SameSite=None; Secure (unit tested
    // in http::tests).
    assert!(
        set.contains("HttpOnly") && set.contains("Max-Age=600"),
        "{set}"
    );
    assert!(
        set.contains("SameSite=Lax") && !set.contains("Secure"),
        "{set}"
    );
    gate.stop().await;
}

// ---- finding 5: the replay cache holds until the latest confirmation ----

/// Several SubjectConfirmations, no Conditions NotOnOrAfter: the first
/// confirmation ends 5 minutes after issue, a later one after 60.
fn with_late_confirmations(xml: &str, gate: &Gate, at: OffsetDateTime) -> String {
    let acs = &gate.app.tenants["contoso"].settings.acs_url;
    let ts = fedgate::timefmt::format;
    let later = |end: OffsetDateTime| {
        format!(
            "<SubjectConfirmation Method=\"urn:oasis:names:tc:SAML:2.0:cm:bearer\"><SubjectConfirmationData NotOnOrAfter=\"{}\" Recipient=\"{acs}\"/></SubjectConfirmation>",
            ts(end)
        )
    };
    let extra = later(at + Duration::minutes(60)) + &later(at + Duration::minutes(30));
    let xml = xml.replacen(
        "</SubjectConfirmation>",
        &format!("</SubjectConfirmation>{extra}"),
        1,
    );
    let conditions_end = format!(" NotOnOrAfter=\"{}\">", ts(at + Duration::minutes(70)));
    assert!(xml.contains(&conditions_end));
    xml.replacen(&conditions_end, ">", 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_after_the_first_confirmations_time_is_refused() {
    let gate = Gate::start().await;
    let at = gate.now();
    let xml = gate.response_xml("contoso", &contoso_user(), None, at);
    let signed = gate.sign("contoso", &with_late_confirmations(&xml, &gate, at));
    let (status, body) = gate.post_acs("contoso", &signed, Some(CONSOLE), None).await;
    assert_eq!(status, 200, "{body}");
    // Past the first confirmation's NotOnOrAfter, its skew and the 5-minute
    // margin (5 + 3 + 5 minutes), but before the last one's (60 minutes):
    // the later confirmation would accept the assertion again.
    gate.advance(Duration::minutes(20));
    let (status, body) = gate.post_acs("contoso", &signed, Some(CONSOLE), None).await;
    assert_eq!((status, code_in(&body)), (403, "saml.replayed"), "{body}");
    gate.advance(Duration::minutes(35));
    let (status, body) = gate.post_acs("contoso", &signed, Some(CONSOLE), None).await;
    assert_eq!((status, code_in(&body)), (403, "saml.replayed"), "{body}");
    gate.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assertion_valid_longer_than_the_replay_cache_is_refused() {
    let gate = Gate::start().await;
    let at = gate.now();
    let xml = gate.response_xml("contoso", &contoso_user(), None, at);
    let end = fedgate::timefmt::format(at + Duration::minutes(70));
    let long = fedgate::timefmt::format(at + Duration::days(30));
    let xml = xml.replace(&end, &long);
    let signed = gate.sign("contoso", &xml);
    let (status, body) = gate.post_acs("contoso", &signed, Some(CONSOLE), None).await;
    assert_eq!(
        (status, code_in(&body)),
        (403, "saml.validity_too_long"),
        "{body}"
    );
    gate.stop().await;
}
