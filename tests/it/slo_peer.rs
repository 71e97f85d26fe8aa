//! Single logout with an independent console (issue 17, part 3):
//! python3-saml in strict mode (`scripts/python3_saml_sp.py`) as a SAML
//! console with fedgate as its IdP, and the mock tenant as Entra, both
//! directions. python3-saml makes and signs its own messages (its
//! xmlsec-based signer, HTTP-Redirect binding) and checks fedgate's
//! (signature over the query as received, issuer, Destination,
//! InResponseTo, NotOnOrAfter).

use std::io::BufRead;

use fedgate::demo::{parse_form, Browser, Environment, Page};

use super::sso::{console_toml_with, Sp, CONSOLE};

/// The console's SLS, served by python3-saml on loopback (`serve`).
struct SlsServer {
    child: std::process::Child,
    log: std::path::PathBuf,
}

impl SlsServer {
    /// The lines python3-saml logged, one per LogoutRequest it processed.
    fn entries(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for SlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A python3-saml console that signs its logout messages and wants
/// fedgate's signed, at `http://127.0.0.1:{port}/webconsole/sls`.
fn sp_with_slo(env: &Environment, port: u16) -> Sp {
    Sp::new(env)
        .set(
            "slo_url",
            serde_json::json!(format!("{}/idp/slo", env.fedgate_url)),
        )
        .set(
            "sls_url",
            serde_json::json!(format!("http://127.0.0.1:{port}/webconsole/sls")),
        )
        .set("sign_logout", serde_json::json!(true))
        .set("want_messages_signed", serde_json::json!(true))
}

fn serve(sp: &Sp) -> SlsServer {
    let settings = sp.dir.join("settings-serve.json");
    std::fs::write(&settings, sp.settings.to_string()).unwrap();
    let log = sp.dir.join("sls.jsonl");
    let mut child = super::python()
        .arg(super::repo_path("scripts", "python3_saml_sp.py"))
        .args(["serve", settings.to_str().unwrap(), "--log"])
        .arg(&log)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the tests' Python with python3-saml (scripts/install-test-deps)");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("\"port\""), "python3-saml serve: {line}");
    SlsServer { child, log }
}

/// The logout URL in fedgate's configuration for the console.
fn toml(port: u16) -> String {
    // It wants every message signed (want_messages_signed): the Response too.
    console_toml_with(&format!(
        "logout_url = \"http://127.0.0.1:{port}/webconsole/sls\"\nsign = \"both\""
    ))
}

/// Alice signs in to the python3-saml console (SP-initiated; at the SAML
/// tenant first): the NameID and SessionIndex the console keeps.
async fn sign_in(sp: &Sp, browser: &Browser) -> (String, String) {
    let (url, id) = sp.login(&["--nameid", "alice@contoso.example"]);
    let mut page: Page = browser.get(&url).await.unwrap();
    // Entra's auto-posting form to fedgate's ACS.
    if page.hops.iter().any(|h| h.contains("/saml2?SAMLRequest=")) {
        page = browser.submit(&page).await.unwrap();
    }
    let (ok, v) = sp.acs(&page, &id);
    assert!(ok, "python3-saml refused fedgate's answer: {v}");
    let (_, fields) = parse_form(&page.body).unwrap();
    let b64 = &fields.iter().find(|(k, _)| k == "SAMLResponse").unwrap().1;
    let xml = String::from_utf8(fedgate::xml::base64_decode(b64).unwrap()).unwrap();
    let index = xml
        .split("SessionIndex=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    (v["nameid"].as_str().unwrap().to_string(), index)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_signs_the_user_out_and_python3_saml_takes_fedgates_logout_request() {
    let port = super::free_port();
    let env = Environment::start_saml_only_with(&toml(port))
        .await
        .unwrap();
    let sp = sp_with_slo(&env, port);
    let sls = serve(&sp);
    let browser = Browser::new();
    let (nameid, index) = sign_in(&sp, &browser).await;

    let out = browser
        .get(&format!(
            "{}/{}/saml2/logout?user=alice@contoso.example",
            env.entra_url,
            fedgate::demo::TENANT_ID
        ))
        .await
        .unwrap();
    assert!(
        out.body
            .contains("signed out of your account (urn:oasis:names:tc:SAML:2.0:status:Success)"),
        "{} {:?}",
        out.body,
        out.hops
    );
    // python3-saml (strict) took fedgate's signed LogoutRequest, for the
    // NameID and SessionIndex fedgate gave it at sign-in…
    let entries = sls.entries();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["ok"], true, "{entries:?}");
    assert_eq!(entries[0]["nameid"], nameid.as_str());
    assert_eq!(entries[0]["session_indexes"], serde_json::json!([index]));
    // …and fedgate took its signed LogoutResponse.
    let events: Vec<serde_json::Value> = std::fs::read_to_string(env.dir.join("audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["code"] == "logout")
        .collect();
    assert_eq!(events.len(), 1);
    assert!(
        events[0]["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("{CONSOLE} (confirmed)")),
        "{events:?}"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python3_saml_signs_the_user_out_through_fedgate_and_entra_and_checks_the_answer() {
    let port = super::free_port();
    let env = Environment::start_saml_only_with(&toml(port))
        .await
        .unwrap();
    let sp = sp_with_slo(&env, port);
    // The console's SLS is up (the browser ends there; `sls` checks what it carries).
    let _sls = serve(&sp);
    let browser = Browser::new();
    let (nameid, index) = sign_in(&sp, &browser).await;

    // The console's signed LogoutRequest, made by python3-saml.
    let (ok, v) = sp.run(&[
        "logout",
        "--nameid",
        &nameid,
        "--session-index",
        &index,
        "--relay",
        "back-to-jobs",
    ]);
    assert!(ok, "{v}");
    let url = v["url"].as_str().unwrap();
    let request_id = v["id"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/idp/slo?SAMLRequest=", env.fedgate_url)));
    assert!(url.contains("&Signature="), "{url}");
    let page = browser.get(url).await.unwrap();
    // fedgate → Entra (its LogoutRequest) → fedgate (Entra's answer) → the
    // console's SLS with fedgate's LogoutResponse.
    let path: Vec<&str> = page
        .hops
        .iter()
        .map(|h| h.split('?').next().unwrap())
        .collect();
    assert!(path[1].ends_with("/saml2"), "{path:?}");
    assert!(path[2].ends_with("/saml/contoso/slo"), "{path:?}");
    assert!(path[3].ends_with("/webconsole/sls"), "{path:?}");
    assert_eq!(
        env.entra_saml.logouts.lock().unwrap().as_slice(),
        ["alice@contoso.example"],
        "Entra was told"
    );
    let (ok, v) = sp.run(&["sls", "--url", &page.hops[3], "--request-id", request_id]);
    assert!(ok, "python3-saml refused fedgate's LogoutResponse: {v}");
    assert_eq!(v["status"], "urn:oasis:names:tc:SAML:2.0:status:Success");
    assert_eq!(v["relay_state"], "back-to-jobs", "RelayState comes back");
    // The answer names this request only.
    let (ok, _) = sp.run(&["sls", "--url", &page.hops[3], "--request-id", "_other"]);
    assert!(!ok);

    // The fedgate session is gone: the console's next login signs in at Entra.
    let (url, _) = sp.login(&["--nameid", "alice@contoso.example"]);
    let again = browser.get(&url).await.unwrap();
    assert!(
        again.hops.iter().any(|h| h.contains("/saml2?SAMLRequest=")),
        "{:?}",
        again.hops
    );

    // A LogoutRequest naming another user's NameID ends nothing of alice's.
    let (_, index) = sign_in(&sp, &browser).await;
    let (ok, v) = sp.run(&[
        "logout",
        "--nameid",
        "mallory@contoso.example",
        "--session-index",
        &index,
    ]);
    assert!(ok, "{v}");
    let _ = browser.get(v["url"].as_str().unwrap()).await.unwrap();
    let (url, _) = sp.login(&["--nameid", "alice@contoso.example"]);
    let still = browser.get(&url).await.unwrap();
    assert_eq!(still.hops.len(), 1, "still signed in: {:?}", still.hops);
    env.stop().await;
}
