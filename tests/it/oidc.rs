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
    assert!(page.hops[1].contains("/oauth2/v2.0/authorize?"), "{:?}", page.hops);
    for p in ["code_challenge_method=S256", "nonce=", "state=", "response_type=code"] {
        assert!(page.hops[1].contains(p), "authorize URL lacks {p}: {}", page.hops[1]);
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
    assert!(audit.lines().any(|l| l.contains("\"via\":\"oidc\"") && l.contains("\"outcome\":\"allowed\"")), "{audit}");
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
