//! Step-up instead of a dead end (issue 16, part 5): when the only rules
//! that would grant a console need MFA (or a fresher sign-in) and the login
//! lacks it, fedgate signs the user in again at the tenant asking for it,
//! once, and decides again. The mock tenant honours `ForceAuthn` and
//! `RequestedAuthnContext` (Entra's `multipleauthn`: the user does a second
//! factor) on its SAML endpoint; on its OIDC endpoint it signs bob in again
//! without MFA, so the second decision stands.

use fedgate::demo::{self, parse_form, Browser, Environment};

const REPLY: &str = "https://vault.contoso.example/saml/acs";

/// A console whose only rule (bob's group) requires MFA; bob signs in
/// without it.
fn toml() -> String {
    format!(
        r#"
[[consoles]]
id = "mfa-vault"
kind = "generic"
display_name = "Contoso Vault"
identifier = "https://vault.contoso.example/saml/metadata"
reply_url = "{REPLY}"

[[rules]]
id = "vault-with-mfa"
tenant = "contoso"
console = "mfa-vault"
groups = ["0aa0a0a0-1111-4222-8333-444455556666"]
roles = ["operator"]
require_mfa = true
"#
    )
}

/// bob's IdP-initiated login to the console, as the browser posts it.
async fn idp_initiated(env: &Environment, browser: &Browser) -> demo::Page {
    let b64 = env.entra_response(&demo::bob(), None).unwrap();
    browser
        .post_form(
            &format!("{}/saml/contoso/acs", env.fedgate_url),
            &[
                ("SAMLResponse".to_string(), b64),
                ("RelayState".to_string(), "mfa-vault".to_string()),
            ],
        )
        .await
        .unwrap()
}

/// The step-up page's link, after checking what it says.
fn step_up_link(page: &demo::Page) -> String {
    assert_eq!(page.status, 200, "{}", page.body);
    super::step_up_link(&page.body, "Contoso Vault")
}

fn audit_outcomes(env: &Environment) -> Vec<(String, String)> {
    std::fs::read_to_string(env.dir.join("audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["console"] == "mfa-vault")
        .map(|v| {
            (
                v["outcome"].as_str().unwrap().to_string(),
                v["code"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_requiring_mfa_signs_the_user_in_again_with_mfa_at_a_saml_tenant() {
    let env = Environment::start_saml_only_with(&toml()).await.unwrap();
    let browser = Browser::new();
    let page = idp_initiated(&env, &browser).await;
    let link = step_up_link(&page);
    // The tenant is asked for a fresh, multi-factor sign-in, for bob.
    let xml = super::authn_request_in(&link);
    assert!(xml.contains("ForceAuthn=\"true\""), "{xml}");
    assert!(
        xml.contains("http://schemas.microsoft.com/claims/multipleauthn"),
        "{xml}"
    );
    assert!(link.contains("login_hint=bob%40contoso.example"), "{link}");
    let entra = browser.get(&link).await.unwrap();
    let answer = browser.submit(&entra).await.unwrap();
    assert_eq!(answer.status, 200, "{}", answer.body);
    let (action, fields) = parse_form(&answer.body).unwrap();
    assert_eq!(action, REPLY, "{}", answer.body);
    let b64 = &fields.iter().find(|(k, _)| k == "SAMLResponse").unwrap().1;
    let xml = String::from_utf8(fedgate::xml::base64_decode(b64).unwrap()).unwrap();
    assert!(xml.contains(">bob@contoso.example</saml:NameID>"), "{xml}");
    assert!(xml.contains("<saml:AttributeValue>operator</saml:AttributeValue>"));
    assert_eq!(
        audit_outcomes(&env),
        [
            ("step_up".to_string(), "policy.mfa_required".to_string()),
            ("allowed".to_string(), "ok".to_string())
        ]
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_up_happens_once_and_then_the_denial_stands() {
    // An OIDC tenant whose authentication context has no Conditional Access
    // policy: the mock signs bob in again, still without MFA.
    let unknown = vec![(
        "FEDGATE_TENANTS__0__OIDC__MFA_AUTH_CONTEXT".to_string(),
        "c9".to_string(),
    )];
    let env = Environment::start_with_overrides(&toml(), &unknown)
        .await
        .unwrap();
    let browser = Browser::new();
    let page = idp_initiated(&env, &browser).await;
    let link = step_up_link(&page);
    assert!(link.contains("prompt=login"), "{link}");
    let after = browser.get(&link).await.unwrap();
    assert_eq!(after.status, 403, "{:?} {}", after.hops, after.body);
    assert!(after.body.contains("policy.mfa_required"), "{}", after.body);
    assert_eq!(
        audit_outcomes(&env),
        [
            ("step_up".to_string(), "policy.mfa_required".to_string()),
            ("denied".to_string(), "policy.mfa_required".to_string())
        ]
    );
    env.stop().await;
}

/// The tenant's `[tenants.oidc] mfa_auth_context`, as `serve` would take it
/// from the environment.
fn auth_context() -> Vec<(String, String)> {
    vec![(
        "FEDGATE_TENANTS__0__OIDC__MFA_AUTH_CONTEXT".to_string(),
        "c1".to_string(),
    )]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_an_oidc_tenant_a_step_up_asks_entra_for_the_mfa_authentication_context() {
    let env = Environment::start_with_overrides(&toml(), &auth_context())
        .await
        .unwrap();
    let browser = Browser::new();
    let page = idp_initiated(&env, &browser).await;
    let link = step_up_link(&page);
    // Entra's claims request for the Conditional Access context c1.
    let claims = link
        .split("claims=")
        .nth(1)
        .map(|c| fedgate::util::form_decode(c.split('&').next().unwrap()).unwrap())
        .unwrap_or_else(|| panic!("no claims request in {link}"));
    let claims: serde_json::Value = serde_json::from_str(&claims).unwrap();
    assert_eq!(
        claims,
        serde_json::json!({"id_token": {"acrs": {"essential": true, "value": "c1"}}})
    );
    let answer = browser.get(&link).await.unwrap();
    assert_eq!(answer.status, 200, "{:?} {}", answer.hops, answer.body);
    let (action, _) = parse_form(&answer.body).unwrap();
    assert_eq!(action, REPLY);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openid_provider_steps_up_too_and_the_console_gets_its_code() {
    let rule = r#"
[[rules]]
id = "acronis-with-mfa"
tenant = "contoso"
console = "acronis-demo"
groups = ["0aa0a0a0-1111-4222-8333-444455556666"]
roles = ["company_admin"]
scope = "contoso"
require_mfa = true
"#;
    let env = Environment::start_with_overrides(rule, &auth_context())
        .await
        .unwrap();
    let browser = Browser::new();
    let page = browser
        .get(&format!(
            "{}/login?login_hint=bob@contoso.example",
            env.acronis_url
        ))
        .await
        .unwrap();
    let link = step_up_link_for(&page, "Contoso Cyber Protect (Acronis-style, mock)");
    let done = browser.get(&link).await.unwrap();
    assert_eq!(done.status, 200, "{:?} {}", done.hops, done.body);
    let v: serde_json::Value = serde_json::from_str(&done.body).unwrap();
    assert_eq!(v["user"], "bob@contoso.example");
    env.stop().await;
}

/// [`step_up_link`] for another console's name.
fn step_up_link_for(page: &demo::Page, console: &str) -> String {
    assert_eq!(page.status, 200, "{:?} {}", page.hops, page.body);
    super::step_up_link(&page.body, console)
}
