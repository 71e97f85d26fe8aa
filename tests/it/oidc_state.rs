//! Issue 14, findings 4 (OIDC) and 7, end to end over real HTTP on loopback:
//! fedgate as relying party of the mock Entra tenant (its login state bound
//! to the browser and consumed only by a verified callback), and fedgate as
//! OpenID provider of the Acronis-style console (`prompt=login`,
//! `prompt=none`, `max_age`, an honest `auth_time`), driven through the
//! console's real authorization request.

use std::sync::atomic::Ordering;

use fedgate::demo::{Browser, Environment, CONSOLE_ID};

fn code_in(body: &str) -> &str {
    body.split("<code>")
        .nth(1)
        .and_then(|s| s.split("</code>").next())
        .unwrap_or("?")
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn location(resp: &reqwest::Response) -> String {
    resp.headers()["location"].to_str().unwrap().to_string()
}

async fn get(url: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut req = no_redirects().get(url);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    req.send().await.unwrap()
}

// ---- finding 4, OIDC: the state is the browser's and is taken only after verification ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oidc_callback_from_another_browser_or_with_a_forged_code_does_not_consume_the_state() {
    let env = Environment::start().await.unwrap();
    // The victim's browser starts a login: fedgate → Entra, with the cookie.
    let start = get(
        &format!(
            "{}/oidc/contoso/login?console={CONSOLE_ID}",
            env.fedgate_url
        ),
        None,
    )
    .await;
    assert_eq!(start.status(), 303);
    let cookie = start
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("fedgate_login="))
        .map(|v| v.split(';').next().unwrap().to_string())
        .unwrap_or_default();
    let at_entra = get(&location(&start), None).await;
    let callback = location(&at_entra);
    assert!(
        callback.contains("/oidc/contoso/callback?code="),
        "{callback}"
    );
    let state = callback
        .split(['?', '&'])
        .find_map(|kv| kv.strip_prefix("state="))
        .unwrap()
        .to_string();

    // The callback from a browser that did not start the login.
    let r = get(&callback, None).await;
    assert_eq!(r.status(), 403);
    assert_eq!(code_in(&r.text().await.unwrap()), "oidc.state_unbound");
    // A forged code with the victim's state (a cross-site request carries
    // the cookie): refused at the token endpoint, the state stays.
    let forged = format!(
        "{}/oidc/contoso/callback?code=forged&state={state}",
        env.fedgate_url
    );
    let r = get(&forged, Some(&cookie)).await;
    assert_eq!(
        code_in(&r.text().await.unwrap()),
        "oidc.token_request_failed"
    );
    // An error answer with the victim's state does not consume it either.
    let err = format!(
        "{}/oidc/contoso/callback?error=access_denied&state={state}",
        env.fedgate_url
    );
    let r = get(&err, Some(&cookie)).await;
    assert_eq!(code_in(&r.text().await.unwrap()), "oidc.provider_error");

    // The victim's real callback still signs them in, once.
    let r = get(&callback, Some(&cookie)).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("SAMLResponse"));
    let r = get(&callback, Some(&cookie)).await;
    assert_eq!(code_in(&r.text().await.unwrap()), "oidc.state_unknown");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oidc_callback_at_another_tenants_endpoint_is_refused_and_consumes_nothing() {
    use fedgate::demo::{FEDGATE_CLIENT_ID, TENANT_ID};
    // The tenants' Entra side: one mock tenant, served by `a`.
    let a = Environment::start().await.unwrap();
    // fedgate with a second tenant, fabrikam, that also signs in by OIDC.
    let fabrikam = format!(
        r#"
[[tenants]]
id = "fabrikam"
entra_tenant_id = "{TENANT_ID}"
[tenants.oidc]
issuer = "{}/{TENANT_ID}/v2.0"
client_id = "{FEDGATE_CLIENT_ID}"
client_secret_file = "contoso-oidc-secret.txt"
"#,
        a.entra_url
    );
    let b = Environment::start_sharing(&fabrikam, Some(&a.fedgate_url), Some(&a.entra_url))
        .await
        .unwrap();
    let start = get(
        &format!("{}/oidc/contoso/login?console={CONSOLE_ID}", b.fedgate_url),
        None,
    )
    .await;
    assert_eq!(start.status(), 303);
    let cookie = start
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("fedgate_login="))
        .map(|v| v.split(';').next().unwrap().to_string())
        .unwrap_or_default();
    let at_entra = get(&location(&start), None).await;
    // Entra answers at the public URL (a's); this fedgate is b.
    let callback = location(&at_entra).replace(&a.fedgate_url, &b.fedgate_url);
    assert!(
        callback.contains("/oidc/contoso/callback?code="),
        "{callback}"
    );
    // contoso's login answered at fabrikam's callback, from the same browser.
    let elsewhere = callback.replace("/oidc/contoso/", "/oidc/fabrikam/");
    let r = get(&elsewhere, Some(&cookie)).await;
    assert_eq!(r.status(), 403);
    assert_eq!(code_in(&r.text().await.unwrap()), "oidc.state_other_tenant");
    // The login is still contoso's to finish.
    let r = get(&callback, Some(&cookie)).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("SAMLResponse"));
    b.stop().await;
    a.stop().await;
}

// ---- finding 7: prompt=login, prompt=none, max_age, auth_time ----

fn prompts(env: &Environment) -> Vec<String> {
    env.entra_oidc.prompts.lock().unwrap().clone()
}

async fn console_login(env: &Environment, browser: &Browser, extra: &str) -> serde_json::Value {
    let page = browser
        .get(&format!(
            "{}/login?login_hint=carol@contoso.example{extra}",
            env.acronis_url
        ))
        .await
        .unwrap();
    serde_json::from_str(&page.body).unwrap_or_else(|_| panic!("{} {:?}", page.body, page.hops))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_login_forces_a_new_sign_in_at_the_tenant_even_with_a_session() {
    let env = Environment::start().await.unwrap();
    let browser = Browser::new();
    let first = console_login(&env, &browser, "").await;
    assert_eq!(first["ok"], true, "{first}");
    assert_eq!(prompts(&env), vec![""]);
    // The ID token's auth_time is the tenant's, not a time fedgate made up.
    assert!(first["auth_time"].is_i64(), "{first}");
    // With the session: single sign-on, no trip to the tenant.
    let sso = console_login(&env, &browser, "").await;
    assert_eq!(sso["ok"], true, "{sso}");
    assert_eq!(prompts(&env).len(), 1);
    // prompt=login: the tenant is asked for a fresh sign-in (prompt=login).
    let fresh = console_login(&env, &browser, "&prompt=login").await;
    assert_eq!(fresh["ok"], true, "{fresh}");
    assert_eq!(prompts(&env), vec!["", "login"]);
    assert!(fresh["auth_time"].as_i64() >= first["auth_time"].as_i64());
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_none_without_a_session_returns_login_required() {
    let env = Environment::start().await.unwrap();
    let browser = Browser::new();
    let none = console_login(&env, &browser, "&prompt=none").await;
    assert_eq!(none["error"], "login_required", "{none}");
    assert!(
        none["message"]
            .as_str()
            .unwrap()
            .starts_with("oauth.login_required"),
        "{none}"
    );
    assert!(prompts(&env).is_empty(), "never sent to the tenant");
    // Signed in, prompt=none is answered from the session.
    assert_eq!(console_login(&env, &browser, "").await["ok"], true);
    let with_session = console_login(&env, &browser, "&prompt=none").await;
    assert_eq!(with_session["ok"], true, "{with_session}");
    assert_eq!(prompts(&env).len(), 1);
    // prompt=none with a session too old for max_age: login_required.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let old = console_login(&env, &browser, "&prompt=none&max_age=0").await;
    assert_eq!(old["error"], "login_required", "{old}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_age_forces_a_new_sign_in_when_the_session_is_older() {
    let env = Environment::start().await.unwrap();
    let browser = Browser::new();
    let first = console_login(&env, &browser, "").await;
    assert_eq!(first["ok"], true, "{first}");
    // Young enough: single sign-on.
    let young = console_login(&env, &browser, "&max_age=3600").await;
    assert_eq!(young["ok"], true, "{young}");
    assert_eq!(prompts(&env).len(), 1);
    // Older than max_age: a fresh sign-in at the tenant.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let fresh = console_login(&env, &browser, "&max_age=0").await;
    assert_eq!(fresh["ok"], true, "{fresh}");
    assert_eq!(prompts(&env), vec!["", "login"]);
    assert!(fresh["auth_time"].as_i64() > first["auth_time"].as_i64());
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_auth_time_is_omitted_and_max_age_then_signs_in_again() {
    let env = Environment::start().await.unwrap();
    // The tenant sends no auth_time (Entra without the optional claim).
    env.entra_oidc
        .auth_time_claim
        .store(false, Ordering::SeqCst);
    let browser = Browser::new();
    let first = console_login(&env, &browser, "").await;
    assert_eq!(first["ok"], true, "{first}");
    assert!(first["auth_time"].is_null(), "never invented: {first}");
    // max_age with a session of unknown age: a fresh sign-in is forced; as
    // the tenant still says nothing of when, the console is told so.
    let aged = console_login(&env, &browser, "&max_age=3600").await;
    assert_eq!(prompts(&env), vec!["", "login"]);
    assert_eq!(aged["error"], "login_required", "{aged}");
    assert!(
        aged["message"]
            .as_str()
            .unwrap()
            .starts_with("oauth.auth_time_unknown"),
        "{aged}"
    );
    // prompt=login needs no time: the sign-in was forced fresh.
    let fresh = console_login(&env, &browser, "&prompt=login").await;
    assert_eq!(fresh["ok"], true, "{fresh}");
    assert!(fresh["auth_time"].is_null(), "{fresh}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_login_at_a_saml_only_tenant_sends_force_authn_and_auth_time_is_the_authn_instant() {
    let env = Environment::start_saml_only().await.unwrap();
    let browser = Browser::new();
    let first = browser
        .get(&format!(
            "{}/login?login_hint=carol@contoso.example",
            env.acronis_url
        ))
        .await
        .unwrap();
    let request_of = |hops: &[String]| {
        let hop = hops
            .iter()
            .find(|h| h.contains("/saml2?SAMLRequest="))
            .expect("a trip to the tenant's SAML endpoint")
            .clone();
        let raw = hop
            .split(['?', '&'])
            .find_map(|kv| kv.strip_prefix("SAMLRequest="))
            .unwrap()
            .replace("%2B", "+")
            .replace("%2F", "/")
            .replace("%3D", "=");
        fedgate::inbound::saml::authn_request::decode_redirect(&raw).unwrap()
    };
    assert!(!request_of(&first.hops).contains("ForceAuthn"));
    let page = browser.submit(&first).await.unwrap();
    let v: serde_json::Value = serde_json::from_str(&page.body).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    // The AuthnInstant of the assertion, as a number.
    assert!(v["auth_time"].is_i64(), "{v}");
    // prompt=login with the session: an AuthnRequest with ForceAuthn.
    let again = browser
        .get(&format!(
            "{}/login?login_hint=carol@contoso.example&prompt=login",
            env.acronis_url
        ))
        .await
        .unwrap();
    assert!(
        request_of(&again.hops).contains(" ForceAuthn=\"true\""),
        "{:?}",
        again.hops
    );
    let page = browser.submit(&again).await.unwrap();
    let v: serde_json::Value = serde_json::from_str(&page.body).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_prompt_and_max_age_go_back_as_invalid_request() {
    let env = Environment::start().await.unwrap();
    for (extra, code) in [
        ("&prompt=none%20login", "oauth.prompt_invalid"),
        ("&max_age=soon", "oauth.max_age_invalid"),
        ("&max_age=-1", "oauth.max_age_invalid"),
    ] {
        let r = get(
            &format!(
                "{}/oauth2/authorize?response_type=code&scope=openid&client_id=acronis-demo&redirect_uri={}/callback&state=s1&code_challenge=abc&code_challenge_method=S256{extra}",
                env.fedgate_url, env.acronis_url
            ),
            None,
        )
        .await;
        let to = location(&r);
        assert!(to.contains("error=invalid_request"), "{to}");
        assert!(to.contains(code), "{to}");
    }
    env.stop().await;
}
