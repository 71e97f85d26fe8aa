//! Any SAML 2.0 IdP as a tenant (issue 16, part 4): pysaml2's IdP
//! (`scripts/pysaml2_idp.py`, signing with xmlsec1), which names things
//! the LDAP / education way (the e-mail as the emailAddress NameID, groups
//! in `isMemberOf` as `urn:oid:` names, MFA as the REFEDS authentication
//! context), signs a user in to a console through a tenant with a
//! `[tenants.claims]` map; the same tenant without the map is refused with
//! a code, never a server error.

use fedgate::demo::{parse_form, Environment};

const IDP: &str = "https://idp.uni.example/idp/shibboleth";
const REPLY: &str = "https://backup.uni.example/saml/acs";

struct Uni {
    dir: super::TempDir,
}

impl Uni {
    fn new() -> Uni {
        let uni = Uni {
            dir: super::TempDir::new("pysaml2-idp"),
        };
        let out = uni
            .cmd("metadata")
            .arg("--out")
            .arg(uni.dir.join("idp.xml"))
            .output()
            .expect("the tests' Python with pysaml2 (scripts/install-test-deps)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        uni
    }

    fn cmd(&self, command: &str) -> std::process::Command {
        let mut c = super::python();
        c.arg(super::repo_path("scripts", "pysaml2_idp.py"))
            .arg(command)
            .arg("--key")
            .arg(super::fixture("saml/keys/idp_next_key.pem"))
            .arg("--cert")
            .arg(super::fixture("saml/keys/idp_next_cert.pem"))
            .arg("--entity-id")
            .arg(IDP);
        c
    }

    /// The tenant, the console and the rule; `claims` is the map's body.
    fn toml(&self, claims: &str) -> String {
        format!(
            r#"
[[tenants]]
id = "uni"
domains = ["uni.example"]
metadata_file = "{md}"
{claims}

[[consoles]]
id = "uni-backup"
kind = "generic"
display_name = "Uni backup"
identifier = "https://backup.uni.example/saml/metadata"
reply_url = "{REPLY}"

[[rules]]
id = "uni-backup-admins"
tenant = "uni"
console = "uni-backup"
group_names = ["backup-admins"]
roles = ["admin"]
require_mfa = true
"#,
            md = self.dir.join("idp.xml").display()
        )
    }

    /// A signed, unsolicited Response for fedgate's `uni` tenant.
    async fn response(&self, env: &Environment, authn_class: &str) -> String {
        let sp_md = reqwest::get(format!("{}/saml/uni/metadata", env.fedgate_url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let sp_file = self.dir.join("sp.xml");
        std::fs::write(&sp_file, sp_md).unwrap();
        let out = self
            .cmd("respond")
            .arg("--sp-metadata")
            .arg(&sp_file)
            .arg("--acs")
            .arg(format!("{}/saml/uni/acs", env.fedgate_url))
            .args(["--nameid", "jo@uni.example"])
            .args(["--attr", "isMemberOf=backup-admins"])
            .args(["--attr", "isMemberOf=staff"])
            .args(["--attr", "displayName=Jo Example"])
            .args(["--authn-class", authn_class])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }
}

const CLAIMS: &str = r#"
[tenants.claims]
email = ["nameid"]
groups = ["isMemberOf", "urn:oid:1.3.6.1.4.1.5923.1.5.1.1"]
display_name = ["displayName", "urn:oid:2.16.840.1.113730.3.1.241"]
mfa = ["authn_context"]
mfa_values = ["https://refeds.org/profile/mfa"]
"#;

async fn post(env: &Environment, response: &str) -> (u16, String) {
    let resp = reqwest::Client::new()
        .post(format!("{}/saml/uni/acs", env.fedgate_url))
        .form(&[("SAMLResponse", response), ("RelayState", "uni-backup")])
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pysaml2_idp_signs_a_user_in_through_a_tenant_with_a_claim_map() {
    let uni = Uni::new();
    let env = Environment::start_with(&uni.toml(CLAIMS)).await.unwrap();
    let response = uni.response(&env, "https://refeds.org/profile/mfa").await;
    let (status, html) = post(&env, &response).await;
    assert_eq!(status, 200, "{html}");
    let (action, fields) = parse_form(&html).unwrap();
    assert_eq!(action, REPLY);
    let b64 = &fields.iter().find(|(k, _)| k == "SAMLResponse").unwrap().1;
    let xml = String::from_utf8(fedgate::xml::base64_decode(b64).unwrap()).unwrap();
    assert!(xml.contains(">jo@uni.example</saml:NameID>"), "{xml}");
    assert!(
        xml.contains("<saml:AttributeValue>admin</saml:AttributeValue>"),
        "{xml}"
    );
    assert!(
        xml.contains("<saml:AttributeValue>Jo Example</saml:AttributeValue>"),
        "{xml}"
    );

    // The rule asks for MFA: a password sign-in gets a step-up at the IdP,
    // asking for what the map says MFA is (REFEDS), not Entra's class.
    let weak = uni
        .response(
            &env,
            "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
        )
        .await;
    let (status, html) = post(&env, &weak).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Signing you in again"), "{html}");
    let href = super::step_up_link(&html, "Uni backup");
    assert!(
        href.starts_with("https://idp.uni.example/sso?SAMLRequest="),
        "{href}"
    );
    let request = super::authn_request_in(&href);
    assert!(
        request.contains(
            "<saml:AuthnContextClassRef>https://refeds.org/profile/mfa</saml:AuthnContextClassRef>"
        ),
        "{request}"
    );
    assert!(!request.contains("multipleauthn"), "{request}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_claim_map_the_same_idp_is_refused_with_a_code_not_a_server_error() {
    let uni = Uni::new();
    // Read with Entra's names: no groups, no e-mail.
    let toml = uni.toml("").replace(
        "domains = [\"uni.example\"]",
        "domains = [\"uni.example\"]\nentra_tenant_id = \"00000000-0000-4000-8000-0000000000aa\"",
    );
    let env = Environment::start_with(&toml).await.unwrap();
    let response = uni.response(&env, "https://refeds.org/profile/mfa").await;
    let (status, html) = post(&env, &response).await;
    assert_eq!(status, 403, "{html}");
    assert!(html.contains("policy.no_rule_matched"), "{html}");
    env.stop().await;
}

#[test]
fn a_tenant_without_an_entra_id_needs_a_claim_map_and_a_map_is_checked() {
    let dir = super::TempDir::new("claims-config");
    let base = "[server]\npublic_url = \"http://127.0.0.1:1\"\n[signing]\nkey_file = \"k\"\ncert_file = \"c\"\n";
    let load = |tenant: &str| {
        let p = dir.join("fedgate.toml");
        std::fs::write(
            &p,
            format!("{base}[[tenants]]\nid = \"uni\"\nmetadata_file = \"m.xml\"\n{tenant}"),
        )
        .unwrap();
        fedgate::config::Config::load(&p, &[])
            .err()
            .map(|e| e.to_string())
    };
    let e = load("").expect("refused");
    assert!(
        e.contains("tenants[0].entra_tenant_id") && e.contains("[tenants.claims]"),
        "{e}"
    );
    let e = load("[tenants.claims]\ngroups = [\"nameid\"]\n").expect("refused");
    assert!(e.contains("tenants[0].claims.groups"), "{e}");
    let e = load("[tenants.claims]\nemail = [\"nameid\"]\n[tenants.oidc]\naudiences = [\"x\"]\n")
        .expect("refused");
    assert!(e.contains("need the Entra tenant id"), "{e}");
    assert_eq!(load("[tenants.claims]\nemail = [\"nameid\"]\n"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idp_whose_metadata_names_a_script_url_as_its_sso_is_never_sent_there() {
    let uni = Uni::new();
    let md = uni.dir.join("idp.xml");
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(text.contains("https://idp.uni.example/sso"));
    std::fs::write(
        &md,
        text.replace(
            "https://idp.uni.example/sso",
            "javascript:alert(document.cookie)",
        ),
    )
    .unwrap();
    let env = Environment::start_with(&uni.toml(CLAIMS)).await.unwrap();
    // A password sign-in needs a step-up, which would send the user to the IdP.
    let weak = uni
        .response(
            &env,
            "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
        )
        .await;
    let (status, html) = post(&env, &weak).await;
    assert_eq!(status, 502, "{html}");
    assert!(html.contains("metadata.sso_url_invalid"), "{html}");
    assert!(!html.contains("href=\"javascript"), "{html}");
    env.stop().await;
}
