//! Single logout through fedgate (issue 17, part 3), with the mock tenant
//! as Entra and the demo's mock consoles: Entra's LogoutRequest ends the
//! user's fedgate sessions and reaches the consoles they reached; a forged
//! or unsigned one ends nothing; `/logout` names the consoles that could
//! not be told, told side by side within the timeout. The python3-saml
//! console peer is in `it::slo_peer`.

use fedgate::demo::{self, Browser, Environment, Page};

const COMMCELL: &str = "Contoso CommCell (mock)";

/// Erin signs in to the CommCell console (it starts the login; its rule
/// wants MFA: a step-up at the SAML tenant).
async fn erin_at_commcell(env: &Environment, browser: &Browser) {
    let login = format!(
        "{}/webconsole/login?login_hint=erin@contoso.example",
        env.api_url
    );
    let page = through_forms(browser, browser.get(&login).await.unwrap()).await;
    let href = super::step_up_link(&page.body, COMMCELL);
    let console = through_forms(browser, browser.get(&href).await.unwrap()).await;
    let v: serde_json::Value = serde_json::from_str(&console.body).unwrap();
    assert_eq!(v["ok"], true, "{}", console.body);
}

/// Submit self-posting forms (Entra's to fedgate, fedgate's to the
/// console) until a page that is not one.
async fn through_forms(browser: &Browser, mut page: Page) -> Page {
    for _ in 0..4 {
        if !page.body.contains("document.forms[0].submit()") {
            break;
        }
        page = browser.submit(&page).await.unwrap();
    }
    page
}

async fn console_logouts(url: String) -> serde_json::Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

fn audit_logouts(env: &Environment) -> Vec<serde_json::Value> {
    std::fs::read_to_string(env.dir.join("audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["code"] == "logout")
        .collect()
}

/// The mock tenant's signed LogoutRequest for `user`, as a redirect URL to
/// fedgate (what `/{tid}/saml2/logout` sends the browser to).
async fn entra_logout_url(env: &Environment, user: &str) -> String {
    let resp = super::no_redirects()
        .get(format!(
            "{}/{}/saml2/logout?user={user}",
            env.entra_url,
            demo::TENANT_ID
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    resp.headers()["location"].to_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_signs_the_user_out_and_fedgate_tells_every_console_the_session_reached() {
    let env = Environment::start_saml_only().await.unwrap();
    let browser = Browser::new();
    erin_at_commcell(&env, &browser).await;

    // Entra signs erin out, with the NameID only (as Entra's LogoutRequest).
    let out: Page = browser
        .get(&format!(
            "{}/{}/saml2/logout?user=erin@contoso.example",
            env.entra_url,
            demo::TENANT_ID
        ))
        .await
        .unwrap();
    assert_eq!(out.status, 200, "{}", out.body);
    assert!(
        out.body
            .contains("signed out of your account (urn:oasis:names:tc:SAML:2.0:status:Success)"),
        "Entra got a LogoutResponse saying Success: {}",
        out.body
    );
    assert!(out
        .hops
        .iter()
        .any(|h| h.contains("/saml/contoso/slo?SAMLRequest=")));
    assert!(out.hops.iter().any(|h| h.contains("/saml2?SAMLResponse=")));

    // The console: fedgate's signed LogoutRequest ended erin's session.
    let v = console_logouts(format!("{}/webconsole/logouts", env.api_url)).await;
    assert_eq!(
        v["logouts"],
        serde_json::json!(["erin@contoso.example"]),
        "{v}"
    );
    assert_eq!(v["live"], 0, "{v}");

    // fedgate: the session is gone, so the console's next login goes to Entra.
    let again = browser
        .get(&format!(
            "{}/webconsole/login?login_hint=erin@contoso.example",
            env.api_url
        ))
        .await
        .unwrap();
    assert!(
        again.hops.iter().any(|h| h.contains("/saml2?SAMLRequest=")),
        "{:?}",
        again.hops
    );

    // One audit event, naming the console and what it answered.
    let events = audit_logouts(&env);
    assert_eq!(events.len(), 1, "{events:?}");
    let reason = events[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("by the tenant's LogoutRequest (1 session)"),
        "{reason}"
    );
    assert!(reason.contains("commcell-demo (confirmed)"), "{reason}");
    assert_eq!(events[0]["subject"], "erin@contoso.example");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsigned_or_forged_logout_request_ends_nothing() {
    let env = Environment::start_saml_only().await.unwrap();
    let browser = Browser::new();
    erin_at_commcell(&env, &browser).await;
    let signed = entra_logout_url(&env, "erin@contoso.example").await;

    // The same LogoutRequest without its signature.
    let unsigned: String = signed
        .split('&')
        .filter(|kv| !kv.starts_with("SigAlg=") && !kv.starts_with("Signature="))
        .collect::<Vec<_>>()
        .join("&");
    // Signed by a key that is not the tenant's.
    let query = signed.split_once('?').unwrap().1;
    let xml = {
        let m = fedgate::binding::decode(fedgate::binding::Incoming::Redirect { query }).unwrap();
        m.xml
    };
    let other = fedgate::trust::signing::SigningKey::from_pem(
        &std::fs::read_to_string(super::fixture("saml/keys/idp_next_key.pem")).unwrap(),
        &std::fs::read_to_string(super::fixture("saml/keys/idp_next_cert.pem")).unwrap(),
    )
    .unwrap();
    let forged = fedgate::binding::redirect_url(
        &format!("{}/saml/contoso/slo", env.fedgate_url),
        fedgate::binding::Kind::Request,
        &xml,
        None,
        Some(&other),
    )
    .unwrap();
    for (url, code) in [
        (unsigned, "slo.request_unsigned"),
        (forged, "slo.signature_invalid"),
    ] {
        let r = super::no_redirects().get(&url).send().await.unwrap();
        assert_eq!(r.status(), 400);
        let body = r.text().await.unwrap();
        assert!(body.contains(code), "{code}: {body}");
    }
    // Nothing ended: the console's next login is answered from the session.
    let v = console_logouts(format!("{}/webconsole/logouts", env.api_url)).await;
    assert_eq!(v["logouts"], serde_json::json!([]), "{v}");
    let page = browser
        .get(&format!(
            "{}/webconsole/login?login_hint=erin@contoso.example",
            env.api_url
        ))
        .await
        .unwrap();
    assert!(
        !page.hops.iter().any(|h| h.contains("/saml2?")),
        "no trip to Entra: {:?}",
        page.hops
    );
    assert!(audit_logouts(&env).is_empty());
    env.stop().await;
}

/// A console whose logout URL takes connections and never answers.
async fn silent_listener() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/slo", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        while let Ok(Ok((s, _))) = tokio::time::timeout_at(deadline, listener.accept()).await {
            held.push(s);
        }
    });
    (url, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_logout_consoles_are_told_side_by_side_and_those_not_told_are_named() {
    let (a, task_a) = silent_listener().await;
    let (b, task_b) = silent_listener().await;
    let console = |id: &str, url: &str| {
        format!(
            r#"
[[consoles]]
id = "{id}"
kind = "generic"
display_name = "Silent {id}"
identifier = "https://{id}.example/sp"
reply_url = "https://{id}.example/acs"
logout_url = "{url}"

[[rules]]
id = "eng-{id}"
tenant = "contoso"
console = "{id}"
groups = ["{eng}"]
roles = ["viewer"]
"#,
            eng = demo::ENGINEERING_GROUP
        )
    };
    let extra = format!("{}{}", console("silent-a", &a), console("silent-b", &b));
    let env = Environment::start_with(&extra).await.unwrap();
    let browser = Browser::new();
    // Alice reaches both consoles and the autotask one (no logout URL).
    let b64 = env.entra_response(&demo::alice(), None).unwrap();
    let page = browser
        .post_form(
            &format!("{}/saml/contoso/acs", env.fedgate_url),
            &[("SAMLResponse".into(), b64)],
        )
        .await
        .unwrap();
    assert!(page.body.contains("/launch/silent-a"), "{}", page.body);
    for c in ["silent-a", "silent-b", demo::CONSOLE_ID] {
        let p = browser
            .get(&format!("{}/launch/{c}", env.fedgate_url))
            .await
            .unwrap();
        assert_eq!(p.status, 200, "{c}: {}", p.body);
    }

    let started = std::time::Instant::now();
    let out = browser
        .get(&format!("{}/logout", env.fedgate_url))
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(out.status, 200, "{}", out.body);
    // Both silent consoles waited for at once: one timeout, not two.
    let timeout = std::time::Duration::from_millis(env.app.config.server.logout_timeout_ms);
    assert!(took < timeout * 2, "took {took:?}");
    for c in ["silent-a", "silent-b"] {
        assert!(
            out.body.contains(&format!(
                "data-console=\"{c}\" data-via=\"saml\" data-result=\"failed\">Silent {c}: no answer within {} ms",
                timeout.as_millis()
            )),
            "{}",
            out.body
        );
    }
    assert!(out.body.contains(&format!(
        "data-console=\"{}\" data-via=\"saml\" data-result=\"not_supported\"",
        demo::CONSOLE_ID
    )));
    assert!(out.body.contains("These consoles could not be told"));
    // …and then Entra was told too (the session was a SAML one).
    assert!(out.hops.iter().any(|h| h.contains("/saml2?SAMLRequest=")));
    assert_eq!(
        env.entra_saml.logouts.lock().unwrap().as_slice(),
        ["alice@contoso.example"]
    );
    let events = audit_logouts(&env);
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0]["reason"]
        .as_str()
        .unwrap()
        .contains("silent-a (failed: no answer within"));
    task_a.abort();
    task_b.abort();
    env.stop().await;
}

/// Whether `xmlsec1 --verify` accepts `xml` with fedgate's demo signing
/// certificate (IDs of logout messages registered).
fn xmlsec1_verifies(xml: &str) -> bool {
    let dir = super::TempDir::new("slo-xmlsec1");
    let file = dir.join("msg.xml");
    std::fs::write(&file, xml).unwrap();
    std::process::Command::new("xmlsec1")
        .arg("--verify")
        .arg("--pubkey-cert-pem")
        .arg(super::data("fedgate_rsa_cert.pem"))
        .args([
            "--id-attr:ID",
            "urn:oasis:names:tc:SAML:2.0:protocol:LogoutRequest",
        ])
        .arg(&file)
        .output()
        .expect("xmlsec1 (scripts/install-test-deps)")
        .status
        .success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_post_binding_both_ways() {
    // The CommCell console takes its LogoutRequest by HTTP-POST.
    let probe = Environment::start_saml_only().await.unwrap();
    let index = probe
        .app
        .config
        .consoles
        .iter()
        .position(|c| c.id == demo::COMMCELL_ID)
        .unwrap();
    probe.stop().await;
    let overrides = [(
        format!("FEDGATE_CONSOLES__{index}__LOGOUT_BINDING"),
        "post".to_string(),
    )];
    let env = Environment::start_saml_only_with_overrides("", &overrides)
        .await
        .unwrap();
    assert_eq!(
        env.app.config.consoles[index].logout_binding,
        fedgate::config::LogoutBinding::Post
    );
    let browser = Browser::new();
    erin_at_commcell(&env, &browser).await;

    // Entra's LogoutRequest by HTTP-POST, signed inside (enveloped).
    let id = "_entra_post_1";
    let xml = fedgate::slo::logout_request(
        &fedgate::slo::OutRequest {
            id,
            issuer: &format!("https://sts.windows.net/{}/", demo::TENANT_ID),
            destination: &format!("{}/saml/contoso/slo", env.fedgate_url),
            name_id: "erin@contoso.example",
            name_id_format: None,
            session_index: None,
        },
        time::OffsetDateTime::now_utc(),
    );
    let signed = fedgate::xml::dsig::sign_enveloped(&xml, id, &env.entra_key).unwrap();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&signed);
    let out = browser
        .post_form(
            &format!("{}/saml/contoso/slo", env.fedgate_url),
            &[("SAMLRequest".into(), b64)],
        )
        .await
        .unwrap();
    assert!(
        out.body
            .contains("urn:oasis:names:tc:SAML:2.0:status:Success"),
        "{} {:?}",
        out.body,
        out.hops
    );
    // fedgate POSTed its LogoutRequest to the console (signed inside, as
    // xmlsec1 confirms), and took the console's LogoutResponse from the
    // form it answered with.
    let v = console_logouts(format!("{}/webconsole/logouts", env.api_url)).await;
    assert_eq!(
        v["logouts"],
        serde_json::json!(["erin@contoso.example"]),
        "{v}"
    );
    let posted = v["last_posted"].as_str().expect("a POSTed LogoutRequest");
    assert!(posted.contains("<ds:Signature"), "{posted}");
    assert!(xmlsec1_verifies(posted), "{posted}");
    assert!(!xmlsec1_verifies(&posted.replace("erin@", "mallory@")));
    let events = audit_logouts(&env);
    assert!(
        events[0]["reason"]
            .as_str()
            .unwrap()
            .contains("commcell-demo (confirmed)"),
        "{events:?}"
    );
    env.stop().await;
}

/// python3-saml's own logout vectors (the corpus): its unsigned
/// LogoutRequests are refused whatever else they hold (fedgate ends
/// sessions only on a signed one), its LogoutResponses are read with their
/// status, by both bindings, and a response without a status is malformed.
#[test]
fn python3_samls_logout_vectors() {
    use base64::Engine;
    use fedgate::binding::Incoming;
    use fedgate::slo::{read, Party, Received};
    let dir = "python3-saml/tests/data";
    let text =
        |rel: &str| std::fs::read_to_string(super::corpus_path(&format!("{dir}/{rel}"))).unwrap();
    let b64 = |xml: &str| base64::engine::general_purpose::STANDARD.encode(xml);
    let party = [Party {
        id: "idp".into(),
        entity_id: "http://idp.example.com/".into(),
        certs: Vec::new(),
    }];
    let endpoint = "http://stuff.com/endpoints/endpoints/sls.php";
    let now = fedgate::timefmt::parse("2013-12-10T04:40:00Z").unwrap();
    let skew = time::Duration::minutes(3);
    let post = |field: &str, value: &str| {
        let (req, resp) = match field {
            "SAMLRequest" => (Some(value), None),
            _ => (None, Some(value)),
        };
        read(
            Incoming::Post {
                saml_request: req,
                saml_response: resp,
                relay_state: None,
            },
            &party,
            endpoint,
            now,
            skew,
        )
    };
    for rel in [
        "logout_requests/logout_request.xml",
        "logout_requests/logout_request_with_sessionindex.xml",
    ] {
        let e = post("SAMLRequest", &b64(&text(rel))).unwrap_err();
        assert_eq!(
            fedgate::identity::ErrorCode::code(&e),
            "slo.request_unsigned",
            "{rel}"
        );
    }
    // From an issuer this endpoint does not serve: refused before anything else.
    let e = post(
        "SAMLRequest",
        &b64(&text("logout_requests/invalids/no_nameId.xml")),
    )
    .unwrap_err();
    assert_eq!(fedgate::identity::ErrorCode::code(&e), "slo.issuer_unknown");
    // The HTTP-Redirect binding (DEFLATEd, as python3-saml sends it).
    let deflated = text("logout_requests/logout_request_deflated.xml.base64");
    let query = format!("SAMLRequest={}", fedgate::util::urlencode(deflated.trim()));
    let e = read(
        Incoming::Redirect { query: &query },
        &party,
        endpoint,
        now,
        skew,
    )
    .unwrap_err();
    assert_eq!(
        fedgate::identity::ErrorCode::code(&e),
        "slo.request_unsigned"
    );

    let Received::Response(r) = post(
        "SAMLResponse",
        &b64(&text("logout_responses/logout_response.xml")),
    )
    .unwrap() else {
        panic!("a LogoutResponse")
    };
    assert!(r.success() && !r.signed);
    assert_eq!(
        r.in_response_to,
        "ONELOGIN_21584ccdfaca36a145ae990442dcd96bfe60151e"
    );
    let deflated = text("logout_responses/logout_response_deflated.xml.base64");
    let query = format!("SAMLResponse={}", fedgate::util::urlencode(deflated.trim()));
    assert!(matches!(
        read(
            Incoming::Redirect { query: &query },
            &party,
            endpoint,
            now,
            skew
        ),
        Ok(Received::Response(_))
    ));
    // python3-saml's invalid responses come DEFLATEd (HTTP-Redirect).
    let redirect = |rel: &str| {
        let query = format!(
            "SAMLResponse={}",
            fedgate::util::urlencode(text(rel).trim())
        );
        read(
            Incoming::Redirect { query: &query },
            &party,
            endpoint,
            now,
            skew,
        )
    };
    let Received::Response(r) =
        redirect("logout_responses/invalids/status_code_responder.xml.base64").unwrap()
    else {
        panic!("a LogoutResponse")
    };
    assert!(!r.success());
    assert_eq!(r.status, fedgate::slo::STATUS_RESPONDER);
    let e = redirect("logout_responses/invalids/no_status.xml.base64").unwrap_err();
    assert_eq!(
        fedgate::identity::ErrorCode::code(&e),
        "slo.message_invalid"
    );
}
