//! SP-initiated logins at fedgate's IdP (issue 16, part 1), driven by an
//! independent console SP: python3-saml in strict mode
//! (`scripts/python3_saml_sp.py`), which makes the AuthnRequests (signed by
//! its own xmlsec-based signer) and checks fedgate's answers.

use fedgate::demo::{parse_form, Browser, Environment, Page};

pub(super) const SP: &str = "https://commcell.contoso.example/webconsole";
const ACS: &str = "https://commcell.contoso.example/webconsole";
pub(super) const CONSOLE: &str = "commvault-saml";

/// A Commvault-style SAML console that signs its AuthnRequests with the
/// key behind `idp_next_cert.pem`, and a rule for the engineering group
/// (alice) and bob's group.
fn console_toml() -> String {
    console_toml_with("")
}

/// [`console_toml`] with more keys for the console.
pub(super) fn console_toml_with(keys: &str) -> String {
    format!(
        r#"
[[consoles]]
id = "{CONSOLE}"
kind = "commvault"
display_name = "Contoso CommCell (python3-saml)"
identifier = "{SP}"
reply_url = "{ACS}"
certificate_file = "{cert}"
authn_requests_signed = true
{keys}

[[rules]]
id = "commcell-engineering"
tenant = "contoso"
console = "{CONSOLE}"
groups = ["{eng}", "0aa0a0a0-1111-4222-8333-444455556666"]
roles = ["BackupOperator"]
"#,
        cert = super::fixture("saml/keys/idp_next_cert.pem").display(),
        eng = fedgate::demo::ENGINEERING_GROUP,
    )
}

/// The console SP's settings for python3-saml: its key is the one
/// fedgate has the certificate of, unless `key` names another fixture pair.
pub(super) struct Sp {
    pub(super) settings: serde_json::Value,
    pub(super) dir: super::TempDir,
}

impl Sp {
    pub(super) fn new(env: &Environment) -> Sp {
        let read = |p: &str| std::fs::read_to_string(super::fixture(p)).unwrap();
        let settings = serde_json::json!({
            "sp_entity_id": SP,
            "acs_url": ACS,
            "sp_cert": read("saml/keys/idp_next_cert.pem"),
            "sp_key": read("saml/keys/idp_next_key.pem"),
            "idp_entity_id": format!("{}/idp/metadata", env.fedgate_url),
            "sso_url": format!("{}/idp/sso", env.fedgate_url),
            "idp_cert": std::fs::read_to_string(super::data("fedgate_rsa_cert.pem")).unwrap(),
            "sign_requests": true,
            "want_messages_signed": false,
            "authn_context": true,
        });
        Sp {
            settings,
            dir: super::TempDir::new("python3-saml-sp"),
        }
    }

    pub(super) fn set(mut self, key: &str, value: serde_json::Value) -> Sp {
        self.settings[key] = value;
        self
    }

    pub(super) fn run(&self, args: &[&str]) -> (bool, serde_json::Value) {
        let path = self.dir.join("settings.json");
        std::fs::write(&path, self.settings.to_string()).unwrap();
        let out = super::python()
            .arg(super::repo_path("scripts", "python3_saml_sp.py"))
            .arg(args[0])
            .arg(&path)
            .args(&args[1..])
            .output()
            .expect("the tests' Python with python3-saml (scripts/install-test-deps)");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let v = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
            panic!(
                "python3-saml SP printed no JSON: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.success(), v)
    }

    /// An AuthnRequest: (the URL to send the browser to, the request ID).
    pub(super) fn login(&self, extra: &[&str]) -> (String, String) {
        let mut args = vec!["login"];
        args.extend_from_slice(extra);
        let (ok, v) = self.run(&args);
        assert!(ok, "{v}");
        (
            v["url"].as_str().unwrap().to_string(),
            v["id"].as_str().unwrap().to_string(),
        )
    }

    /// What the console makes of fedgate's answer page (the form it posts).
    pub(super) fn acs(&self, page: &Page, request_id: &str) -> (bool, serde_json::Value) {
        let (action, fields) = parse_form(&page.body)
            .unwrap_or_else(|| panic!("no form on {}: {}", page.url, page.body));
        assert_eq!(action, ACS, "answers go to the registered reply URL only");
        let field = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let response = self.dir.join("response.b64");
        std::fs::write(&response, field("SAMLResponse").unwrap()).unwrap();
        let mut args = vec![
            "acs".to_string(),
            "--request-id".into(),
            request_id.into(),
            "--response".into(),
            response.display().to_string(),
        ];
        if let Some(r) = field("RelayState") {
            args.push("--relay".into());
            args.push(r);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&args)
    }
}

fn refused(page: &Page, code: &str) {
    assert!(
        page.body.contains(code),
        "expected {code} on {}: {} {}",
        page.url,
        page.status,
        page.body
    );
    assert_eq!(
        page.hops.len(),
        1,
        "refused where it arrived: {:?}",
        page.hops
    );
    assert!(
        parse_form(&page.body).is_none(),
        "a refusal posts nothing anywhere"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python3_saml_console_signs_in_by_a_signed_redirect_request_and_gets_its_answer() {
    let env = Environment::start_with(&console_toml()).await.unwrap();
    let sp = Sp::new(&env);
    let browser = Browser::new();
    let relay = "https://commcell.contoso.example/webconsole/applications/#/jobs?x=1&y=2";
    let (url, id) = sp.login(&["--relay", relay, "--nameid", "alice@contoso.example"]);
    assert!(url.starts_with(&format!("{}/idp/sso?SAMLRequest=", env.fedgate_url)));
    assert!(url.contains("&Signature="), "python3-saml signed it: {url}");

    // No fedgate session: sign in at the tenant first, then come back.
    let page = browser.get(&url).await.unwrap();
    assert_eq!(page.status, 200, "{} {:?}", page.body, page.hops);
    let path: Vec<&str> = page
        .hops
        .iter()
        .map(|h| h.split('?').next().unwrap())
        .collect();
    assert!(path[1].ends_with("/oauth2/v2.0/authorize"), "{path:?}");
    assert!(path[2].ends_with("/oidc/contoso/callback"), "{path:?}");
    assert!(path[3].ends_with("/idp/sso/resume"), "{path:?}");
    let (ok, v) = sp.acs(&page, &id);
    assert!(ok, "python3-saml (strict) refused fedgate's answer: {v}");
    assert_eq!(v["nameid"], "alice@contoso.example");
    assert_eq!(v["relay_state"], relay, "RelayState comes back unchanged");
    assert_eq!(
        v["attributes"]["UserGroups"],
        serde_json::json!(["BackupOperator"])
    );
    assert_eq!(
        v["authn_contexts"],
        serde_json::json!(["urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"])
    );
    // The answer names the request it answers; another request's id does not fit.
    let (ok, v) = sp.acs(&page, "_another_request");
    assert!(!ok, "{v}");

    // Signed in now: the next request is answered at once.
    let (url2, id2) = sp.login(&[]);
    let again = browser.get(&url2).await.unwrap();
    assert_eq!(again.hops.len(), 1, "{:?}", again.hops);
    let (ok, v) = sp.acs(&again, &id2);
    assert!(ok, "{v}");
    // A signed request is answered once.
    let replay = browser.get(&url2).await.unwrap();
    assert_eq!(replay.status, 400);
    refused(&replay, "idp.request_replayed");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_do_not_hold_are_refused_on_fedgates_page_and_never_redirected() {
    let env = Environment::start_with(&console_toml()).await.unwrap();
    let browser = Browser::new();
    let read =
        |p: &str| serde_json::Value::from(std::fs::read_to_string(super::fixture(p)).unwrap());
    let cases = [
        // The answer asked at a URL that is not the console's registered one.
        (
            Sp::new(&env).set("acs_url", "https://evil.example/webconsole/acs".into()),
            "idp.acs_mismatch",
        ),
        // Unsigned, from a console set to sign (authn_requests_signed).
        (
            Sp::new(&env).set("sign_requests", false.into()),
            "idp.request_unsigned",
        ),
        // Signed with a key that is not the console's.
        (
            Sp::new(&env)
                .set("sp_key", read("saml/keys/idp_current_key.pem"))
                .set("sp_cert", read("saml/keys/idp_current_cert.pem")),
            "idp.signature_invalid",
        ),
        // From an SP fedgate does not know.
        (
            Sp::new(&env).set("sp_entity_id", "https://unknown.example/sp".into()),
            "idp.issuer_unknown",
        ),
    ];
    for (sp, code) in cases {
        let (url, _) = sp.login(&[]);
        let page = browser.get(&url).await.unwrap();
        assert_eq!(page.status, 400, "{code}: {}", page.body);
        refused(&page, code);
        assert!(!page.body.contains("href=\"https://evil"), "{}", page.body);
    }
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_post_binding_takes_requests_signed_by_python3_saml_and_refuses_unsigned_ones() {
    let env = Environment::start_with(&console_toml()).await.unwrap();
    let sso = format!("{}/idp/sso", env.fedgate_url);
    let sp = Sp::new(&env);
    let (ok, v) = sp.run(&[
        "login",
        "--post",
        "--relay",
        "rs-42",
        "--nameid",
        "alice@contoso.example",
    ]);
    assert!(ok, "{v}");
    let form = |v: &serde_json::Value| {
        vec![
            (
                "SAMLRequest".to_string(),
                v["saml_request"].as_str().unwrap().to_string(),
            ),
            ("RelayState".to_string(), "rs-42".to_string()),
        ]
    };
    let browser = Browser::new();
    let page = browser.post_form(&sso, &form(&v)).await.unwrap();
    assert_eq!(page.status, 200, "{} {:?}", page.body, page.hops);
    let (ok, answer) = sp.acs(&page, v["id"].as_str().unwrap());
    assert!(ok, "{answer}");
    assert_eq!(answer["relay_state"], "rs-42");

    let unsigned = Sp::new(&env).set("sign_requests", false.into());
    let (_, v) = unsigned.run(&["login", "--post"]);
    let page = browser.post_form(&sso, &form(&v)).await.unwrap();
    refused(&page, "idp.request_unsigned");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn force_authn_signs_in_afresh_and_is_passive_never_shows_a_sign_in() {
    let env = Environment::start_with(&console_toml()).await.unwrap();
    let sp = Sp::new(&env);
    let browser = Browser::new();

    // IsPassive without a session: the console hears NoPassive, signed, at
    // its reply URL, and no sign-in was started.
    let (url, id) = sp.login(&["--passive"]);
    let page = browser.get(&url).await.unwrap();
    assert_eq!(page.hops.len(), 1, "{:?}", page.hops);
    let (ok, v) = sp.acs(&page, &id);
    assert!(!ok);
    assert!(v["reason"].as_str().unwrap().contains("Responder"), "{v}");
    let (_, fields) = parse_form(&page.body).unwrap();
    let b64 = &fields.iter().find(|(k, _)| k == "SAMLResponse").unwrap().1;
    let xml = String::from_utf8(fedgate::xml::base64_decode(b64).unwrap()).unwrap();
    assert!(
        xml.contains("urn:oasis:names:tc:SAML:2.0:status:NoPassive"),
        "{xml}"
    );
    assert!(xml.contains(&format!("InResponseTo=\"{id}\"")), "{xml}");
    assert!(!xml.contains("Assertion"), "{xml}");

    let (url, id) = sp.login(&["--nameid", "alice@contoso.example"]);
    let first = browser.get(&url).await.unwrap();
    assert!(sp.acs(&first, &id).0);
    let prompts_before = env.entra_oidc.prompts.lock().unwrap().len();
    // ForceAuthn: back to the tenant with prompt=login, even with a session.
    let (url, id) = sp.login(&["--force", "--nameid", "alice@contoso.example"]);
    let forced = browser.get(&url).await.unwrap();
    assert!(forced.hops.len() > 1, "{:?}", forced.hops);
    let prompts = env.entra_oidc.prompts.lock().unwrap().clone();
    assert_eq!(prompts.len(), prompts_before + 1);
    assert!(prompts.last().unwrap().contains("login"), "{prompts:?}");
    let (ok, v) = sp.acs(&forced, &id);
    assert!(ok, "{v}");
    // IsPassive with the session: answered, silently.
    let (url, id) = sp.login(&["--passive"]);
    let passive = browser.get(&url).await.unwrap();
    assert_eq!(passive.hops.len(), 1);
    assert!(sp.acs(&passive, &id).0);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_asking_for_mfa_gets_a_step_up_at_a_saml_tenant() {
    // bob signs in without MFA; the console asks for Entra's multipleauthn.
    let env = Environment::start_saml_only_with(&console_toml())
        .await
        .unwrap();
    let browser = Browser::new();
    let plain = Sp::new(&env).set("authn_context", false.into());
    let (url, id) = plain.login(&["--nameid", "bob@contoso.example"]);
    let entra = browser.get(&url).await.unwrap();
    let page = browser.submit(&entra).await.unwrap();
    let (ok, v) = plain.acs(&page, &id);
    assert!(ok, "{v}");
    assert_eq!(
        v["authn_contexts"],
        serde_json::json!(["urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"])
    );

    let mfa = Sp::new(&env).set(
        "authn_context",
        serde_json::json!(["http://schemas.microsoft.com/claims/multipleauthn"]),
    );
    let (url, id) = mfa.login(&["--nameid", "bob@contoso.example"]);
    let entra = browser.get(&url).await.unwrap();
    // The session has no MFA: a fresh sign-in at the tenant that asks for it.
    assert!(entra.hops.len() > 1, "{:?}", entra.hops);
    let xml = super::authn_request_in(entra.hops.last().unwrap());
    assert!(xml.contains("ForceAuthn=\"true\""), "{xml}");
    assert!(
        xml.contains("http://schemas.microsoft.com/claims/multipleauthn"),
        "{xml}"
    );
    let page = browser.submit(&entra).await.unwrap();
    let (ok, v) = mfa.acs(&page, &id);
    assert!(ok, "{v}");
    assert_eq!(
        v["authn_contexts"],
        serde_json::json!(["http://schemas.microsoft.com/claims/multipleauthn"])
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_console_signing_and_nameid_format_satisfy_python3_saml_with_its_defaults() {
    let keys = "sign = \"both\"\nsignature_algorithm = \"rsa-sha512\"\nnameid_format = \"urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified\"\nnameid = \"upn\"";
    let env = Environment::start_with(&console_toml_with(keys))
        .await
        .unwrap();
    let sp = Sp::new(&env).set("defaults", true.into());
    let (url, id) = sp.login(&["--nameid", "alice@contoso.example"]);
    let page = Browser::new().get(&url).await.unwrap();
    let (ok, v) = sp.acs(&page, &id);
    assert!(ok, "python3-saml with its defaults: {v}");
    assert_eq!(v["nameid"], "alice@contoso.example");
    let (_, fields) = parse_form(&page.body).unwrap();
    let b64 = &fields.iter().find(|(k, _)| k == "SAMLResponse").unwrap().1;
    let xml = String::from_utf8(fedgate::xml::base64_decode(b64).unwrap()).unwrap();
    assert_eq!(
        xml.matches(
            "<ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#rsa-sha512\"/>"
        )
        .count(),
        2,
        "{xml}"
    );
    assert_eq!(
        xml.matches("<ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha512\"/>")
            .count(),
        2
    );
    assert!(
        xml.contains("<saml:NameID Format=\"urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified\">alice@contoso.example</saml:NameID>"),
        "{xml}"
    );
    // The independent oracle agrees: xmlsec1 verifies the outer signature.
    let file = sp.dir.join("answer.xml");
    std::fs::write(&file, &xml).unwrap();
    let out = std::process::Command::new("xmlsec1")
        .args([
            "--verify",
            "--enabled-reference-uris",
            "same-doc",
            "--id-attr:ID",
            "urn:oasis:names:tc:SAML:2.0:protocol:Response",
            "--pubkey-cert-pem",
        ])
        .arg(super::data("fedgate_rsa_cert.pem"))
        .arg(&file)
        .output()
        .expect("xmlsec1 (scripts/install-test-deps)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_that_does_not_sign_is_answered_and_python3_saml_defaults_take_a_signed_response()
{
    // No certificate_file, no authn_requests_signed: unsigned requests are
    // answered; the Response alone is signed (sign = "response").
    let toml = console_toml_with("sign = \"response\"")
        .replace(
            &format!(
                "certificate_file = \"{}\"\n",
                super::fixture("saml/keys/idp_next_cert.pem").display()
            ),
            "",
        )
        .replace("authn_requests_signed = true\n", "");
    let env = Environment::start_with(&toml).await.unwrap();
    let sp = Sp::new(&env)
        .set("sign_requests", false.into())
        .set("defaults", true.into());
    let browser = Browser::new();
    for binding in ["redirect", "post"] {
        let (page, id) = if binding == "redirect" {
            let (url, id) = sp.login(&["--nameid", "alice@contoso.example"]);
            assert!(!url.contains("Signature="), "{url}");
            (browser.get(&url).await.unwrap(), id)
        } else {
            let (ok, v) = sp.run(&["login", "--post"]);
            assert!(ok, "{v}");
            let form = vec![(
                "SAMLRequest".to_string(),
                v["saml_request"].as_str().unwrap().to_string(),
            )];
            let page = browser
                .post_form(&format!("{}/idp/sso", env.fedgate_url), &form)
                .await
                .unwrap();
            (page, v["id"].as_str().unwrap().to_string())
        };
        let (ok, v) = sp.acs(&page, &id);
        assert!(ok, "{binding}: {v}");
        let (_, fields) = parse_form(&page.body).unwrap();
        let b64 = &fields.iter().find(|(k, _)| k == "SAMLResponse").unwrap().1;
        let xml = String::from_utf8(fedgate::xml::base64_decode(b64).unwrap()).unwrap();
        assert_eq!(xml.matches("<ds:Signature ").count(), 1, "{binding}");
        assert!(
            xml.find("<ds:Signature ").unwrap() < xml.find("<saml:Assertion ").unwrap(),
            "the Response is signed, not the Assertion"
        );
    }
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_with_an_encryption_certificate_gets_an_assertion_python3_saml_decrypts() {
    let keys = format!(
        "encryption_certificate_file = \"{}\"\nsign = \"both\"",
        super::fixture("saml/keys/idp_next_cert.pem").display()
    );
    let env = Environment::start_with(&console_toml_with(&keys))
        .await
        .unwrap();
    let sp = Sp::new(&env).set("want_assertions_encrypted", true.into());
    let (url, id) = sp.login(&["--nameid", "alice@contoso.example"]);
    let page = Browser::new().get(&url).await.unwrap();
    let (_, fields) = parse_form(&page.body).unwrap();
    let b64 = &fields.iter().find(|(k, _)| k == "SAMLResponse").unwrap().1;
    let xml = String::from_utf8(fedgate::xml::base64_decode(b64).unwrap()).unwrap();
    assert!(xml.contains("<saml:EncryptedAssertion"), "{xml}");
    assert!(xml.contains("http://www.w3.org/2009/xmlenc11#aes256-gcm"));
    assert!(
        !xml.contains("alice@contoso.example"),
        "nothing of the user in the clear"
    );
    // fedgate's own decryption reads it too: the signed Assertion, whole.
    let doc = fedgate::xml::parse(&xml).unwrap();
    let enc = doc
        .descendants()
        .find(|n| fedgate::xml::is(n, fedgate::xml::NS_SAML, "EncryptedAssertion"))
        .unwrap();
    let pem = std::fs::read_to_string(super::fixture("saml/keys/idp_next_key.pem")).unwrap();
    let key = fedgate::inbound::saml::decrypt::DecryptionKey::from_pem(&pem).unwrap();
    let plain = fedgate::inbound::saml::decrypt::decrypt(enc, &[key], &Default::default()).unwrap();
    let plain = String::from_utf8(plain).unwrap();
    assert!(plain.starts_with("<saml:Assertion xmlns:saml="), "{plain}");
    assert!(plain.contains("<ds:Signature") && plain.contains("alice@contoso.example"));
    // python3-saml (strict) decrypts it, checks the Assertion's signature
    // inside and the Response's over the ciphertext.
    let (ok, v) = sp.acs(&page, &id);
    assert!(ok, "{v}");
    assert_eq!(v["nameid"], "alice@contoso.example");
    assert_eq!(
        v["attributes"]["UserGroups"],
        serde_json::json!(["BackupOperator"])
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_saml_console_starts_a_login_and_takes_the_answer_with_its_defaults() {
    // node-saml wants the Response and the Assertion signed (its defaults);
    // its AuthnRequests are unsigned unless it is given a key.
    let toml = console_toml_with("sign = \"both\"").replace("authn_requests_signed = true\n", "");
    let env = Environment::start_with(&toml).await.unwrap();
    let dir = super::TempDir::new("node-saml-sp");
    let settings = serde_json::json!({
        "sp_entity_id": SP,
        "acs_url": ACS,
        "idp_entity_id": format!("{}/idp/metadata", env.fedgate_url),
        "sso_url": format!("{}/idp/sso", env.fedgate_url),
        "idp_cert": std::fs::read_to_string(super::data("fedgate_rsa_cert.pem")).unwrap(),
    });
    std::fs::write(dir.join("settings.json"), settings.to_string()).unwrap();
    let node = |args: &[&std::ffi::OsStr]| {
        let out = super::node()
            .arg(super::repo_path("scripts", "node_saml_sp.js"))
            .arg(dir.join("settings.json"))
            .args(args)
            .output()
            .expect("node (scripts/install-test-deps)");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
            panic!(
                "{} {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.success(), v)
    };
    let (ok, v) = node(&["--login".as_ref(), "relay-7".as_ref()]);
    assert!(ok, "{v}");
    let url = v["url"].as_str().unwrap().to_string();
    assert!(
        url.starts_with(&format!("{}/idp/sso?SAMLRequest=", env.fedgate_url)),
        "{url}"
    );
    let request = super::authn_request_in(&url);
    assert!(
        request.contains("RequestedAuthnContext"),
        "node-saml asks for a context: {request}"
    );
    let page = Browser::new().get(&url).await.unwrap();
    assert_eq!(page.status, 200, "{} {:?}", page.body, page.hops);
    let (action, fields) = parse_form(&page.body).unwrap();
    assert_eq!(action, ACS);
    let field = |n: &str| {
        fields
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(field("RelayState"), "relay-7");
    std::fs::write(dir.join("resp.b64"), field("SAMLResponse")).unwrap();
    let (ok, v) = node(&[dir.join("resp.b64").as_os_str()]);
    assert!(ok, "node-saml with its defaults: {v}");
    assert_eq!(v["name_id"], "alice@contoso.example");
    env.stop().await;
}
