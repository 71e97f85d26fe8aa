//! `fedgate lint metadata`, driven as an admin would: real files (fedgate's
//! fixtures, Entra's real metadata from tests/corpus), console
//! SP metadata with the usual mistakes, a URL served on loopback.

use std::process::{Command, Output};

use fedgate::mock::entra::federation_metadata;
use fedgate::trust::certs::TrustedCert;

const TID: &str = "7d3a0c5e-1b2f-4c8d-9e6a-5f4b3c2d1e0f";
const NOW: &str = "2026-11-23T00:00:00Z";
const ID: &str = "https://contoso.backup.autotask.net/singlesignon/saml/metadata";
const ACS: &str = "https://contoso.backup.autotask.net/singlesignon/saml/SSO";

fn lint(args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_fedgate"))
        .args(["lint", "metadata", "--format", "json"])
        .args(if args.contains(&"--now") {
            &[][..]
        } else {
            &["--now", NOW][..]
        })
        .args(args)
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), v)
}

fn codes(v: &serde_json::Value) -> Vec<String> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{}:{}",
                f["severity"].as_str().unwrap(),
                f["code"].as_str().unwrap()
            )
        })
        .collect()
}

fn cert(name: &str) -> TrustedCert {
    let pem = std::fs::read_to_string(super::fixture(&format!("saml/keys/{name}"))).unwrap();
    TrustedCert::from_pem_bundle(&pem).unwrap().remove(0)
}

fn write(dir: &std::path::Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p.to_str().unwrap().to_string()
}

fn dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "fedgate-lint-{}-{}",
        std::process::id(),
        fedgate::util::random_id().unwrap()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn idp_metadata_certificates_and_structure() {
    let d = dir();
    // A good Entra-shaped document: only the "unsigned" info, exit 0.
    let good = write(
        &d,
        "good.xml",
        &federation_metadata(TID, &[&cert("idp_current_cert.pem")]),
    );
    let (code, v) = lint(&[&good]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(
        codes(&v),
        vec!["info:lint.unsigned", "info:lint.endpoints"],
        "{v}"
    );
    assert!(v["findings"][1]["message"]
        .as_str()
        .unwrap()
        .contains("HTTP-Redirect https://login.microsoftonline.com/"));
    // Expired, weak (1024-bit), and expiring within 30 days.
    let bad = write(
        &d,
        "bad.xml",
        &federation_metadata(
            TID,
            &[&cert("idp_expired_cert.pem"), &cert("idp_weak_cert.pem")],
        ),
    );
    let (code, v) = lint(&[&bad]);
    assert_eq!(code, Some(1));
    let c = codes(&v);
    assert!(
        c.contains(&"error:lint.cert_expired".into())
            && c.contains(&"error:lint.key_too_small".into()),
        "{c:?}"
    );
    let (_, v) = lint(&[&good, "--now", "2034-12-20T00:00:00Z"]);
    assert!(
        codes(&v).contains(&"warning:lint.cert_expiring".into()),
        "{v}"
    );
    // A certificate signed with SHA-1: a warning, not an error.
    let sha1 = TrustedCert::from_pem_bundle(
        &std::fs::read_to_string(super::data("sha1_signed_cert.pem")).unwrap(),
    )
    .unwrap()
    .remove(0);
    let f = write(&d, "sha1.xml", &federation_metadata(TID, &[&sha1]));
    let (code, v) = lint(&[&f]);
    assert_eq!(code, Some(0), "{v}");
    assert!(
        codes(&v).contains(&"warning:lint.sha1_signature".into()),
        "{v}"
    );
    // No SSO endpoint.
    let head = federation_metadata(TID, &[&cert("idp_current_cert.pem")]);
    let head = head.split("<SingleLogoutService").next().unwrap();
    let f = write(
        &d,
        "nosso.xml",
        &format!("{head}</IDPSSODescriptor></EntityDescriptor>"),
    );
    assert!(codes(&lint(&[&f]).1).contains(&"warning:lint.no_sso_endpoint".into()));
    // No signing certificate; malformed; a DOCTYPE; no entity id.
    let none = write(&d, "none.xml", &federation_metadata(TID, &[]));
    assert!(codes(&lint(&[&none]).1).contains(&"error:lint.no_signing_cert".into()));
    let broken = write(&d, "broken.xml", "<EntityDescriptor");
    assert!(codes(&lint(&[&broken]).1).contains(&"error:lint.xml_malformed".into()));
    let doctype = write(
        &d,
        "doctype.xml",
        "<!DOCTYPE x [<!ENTITY e \"e\">]><x>&e;</x>",
    );
    assert!(codes(&lint(&[&doctype]).1).contains(&"error:lint.xml_malformed".into()));
    let noid = write(
        &d,
        "noid.xml",
        &federation_metadata(TID, &[&cert("idp_current_cert.pem")])
            .replace(&format!(" entityID=\"https://sts.windows.net/{TID}/\""), ""),
    );
    assert!(codes(&lint(&[&noid]).1).contains(&"error:lint.entity_id_missing".into()));
    let not_md = write(&d, "notmd.xml", "<html/>");
    assert!(codes(&lint(&[&not_md]).1).contains(&"error:lint.not_metadata".into()));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn the_real_entra_metadata_signature_is_checked_against_a_trust_anchor() {
    let md = super::corpus_path("entra/identitymodel/AADCommonMetadata.xml");
    let md = md.to_str().unwrap();
    let anchor = super::corpus_path("entra/identitymodel/aad_signing_cert1.pem");
    let (_, v) = lint(&[md, "--trust", anchor.to_str().unwrap()]);
    let c = codes(&v);
    assert!(c.contains(&"info:lint.signature_valid".into()), "{c:?}");
    // Its certificates expired years ago: errors, with the fix.
    assert!(c.contains(&"error:lint.cert_expired".into()));
    // The reformatted copy does not verify (white space is signed).
    let formatted = super::corpus_path("entra/identitymodel/AADTenantMetadata_formatted.xml");
    let (_, v) = lint(&[
        formatted.to_str().unwrap(),
        "--trust",
        anchor.to_str().unwrap(),
    ]);
    assert!(
        codes(&v).contains(&"error:lint.signature_invalid".into()),
        "{v}"
    );
    // Signed, no anchor given: said so.
    let (_, v) = lint(&[md]);
    assert!(codes(&v).contains(&"info:lint.signed_not_checked".into()));
    // An anchor for an unsigned document.
    let d = dir();
    let unsigned = write(
        &d,
        "u.xml",
        &federation_metadata(TID, &[&cert("idp_current_cert.pem")]),
    );
    let (code, v) = lint(&[&unsigned, "--trust", anchor.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(codes(&v).contains(&"error:lint.unsigned".into()));
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn console_sp_metadata_and_reply_urls_against_the_autotask_profile() {
    let d = dir();
    let sp = |id: &str, acs: &str| {
        fedgate::inbound::saml::sp_metadata::sp_metadata(id, acs, &Default::default(), &[])
    };
    let check = |id: &str, acs: &str| {
        let f = write(&d, "sp.xml", &sp(id, acs));
        lint(&[&f, "--as", "sp", "--profile", "autotask"])
    };
    let (code, v) = check(ID, ACS);
    assert_eq!(code, Some(0), "{v}");
    for (id, acs, expected, aadsts) in [
        (
            ID,
            &format!("{ACS}/")[..],
            "lint.trailing_slash",
            "AADSTS50011",
        ),
        (
            ID,
            "https://<SUBDOMAIN>.backup.autotask.net/singlesignon/saml/SSO",
            "lint.placeholder_left",
            "AADSTS50011",
        ),
        (
            ID,
            "https://contoso.backup.autotask.net/SingleSignOn/saml/SSO",
            "lint.case_mismatch",
            "AADSTS50011",
        ),
        (
            ID,
            "http://contoso.backup.autotask.net/singlesignon/saml/SSO",
            "lint.not_https",
            "AADSTS50011",
        ),
        (
            ID,
            "https://contoso.backup.example.net/singlesignon/saml/SSO",
            "lint.reply_url_mismatch",
            "AADSTS50011",
        ),
        (
            "https://contoso.backup.autotask.net/saml/metadata",
            ACS,
            "lint.identifier_mismatch",
            "AADSTS700016",
        ),
    ] {
        let (code, v) = check(id, acs);
        assert_eq!(code, Some(1), "{expected}: {v}");
        let f = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["code"] == expected)
            .unwrap_or_else(|| panic!("{expected}: {v}"));
        assert_eq!(f["aadsts"], aadsts);
        assert!(!f["fix"].as_str().unwrap().is_empty());
    }
    // URLs alone, without a document.
    let (code, v) = lint(&[
        "--reply-url",
        &format!("{ACS}/"),
        "--identifier",
        ID,
        "--profile",
        "autotask",
    ]);
    assert_eq!(code, Some(1));
    assert_eq!(codes(&v), vec!["error:lint.trailing_slash"]);
    // IdP metadata linted as SP metadata, and the reverse.
    let good = write(
        &d,
        "idp.xml",
        &federation_metadata(TID, &[&cert("idp_current_cert.pem")]),
    );
    assert!(codes(&lint(&[&good, "--as", "sp"]).1).contains(&"error:lint.no_sp_descriptor".into()));
    let spf = write(&d, "sp2.xml", &sp(ID, ACS));
    assert!(codes(&lint(&[&spf, "--as", "idp"]).1).contains(&"error:lint.no_idp_descriptor".into()));
    // SP metadata with no ACS.
    let no_acs = write(&d, "noacs.xml", &sp(ID, ACS).replace(&format!("<md:AssertionConsumerService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST\" Location=\"{ACS}\" index=\"0\" isDefault=\"true\"/>"), ""));
    assert!(codes(&lint(&[&no_acs, "--as", "sp"]).1).contains(&"error:lint.no_acs".into()));
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_from_a_url() {
    fedgate::trust::install_crypto_provider();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/federationmetadata.xml",
        listener.local_addr().unwrap()
    );
    let body = federation_metadata(TID, &[&cert("idp_current_cert.pem")]);
    let app = axum::Router::new()
        .route(
            "/federationmetadata.xml",
            axum::routing::get(move || {
                let b = body.clone();
                async move { b }
            }),
        )
        .route(
            "/moved",
            axum::routing::get(|| async {
                (
                    axum::http::StatusCode::FOUND,
                    [("location", "/federationmetadata.xml")],
                )
            }),
        );
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let u = url.clone();
    let (code, v) = tokio::task::spawn_blocking(move || lint(&[&u]))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{v}");
    // Redirects are not followed.
    let moved = url.replace("federationmetadata.xml", "moved");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_fedgate"))
            .args(["lint", "metadata", &moved])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("lint.fetch_failed"));
    task.abort();
}

/// A console profile with a single logout URL (Acronis): its SP metadata's
/// SingleLogoutService is what to set as `logout_url`; metadata without
/// one is a warning (the console's session would outlive a sign-out).
#[test]
fn a_consoles_single_logout_service_is_found_or_its_absence_warned() {
    let d = dir();
    let id = "urn:cyber:protect:saml:8f3e1c";
    let acs = "https://eu2-cloud.acronis.com/api/2/saml/callback";
    let sp = |logout: &str| {
        let l = fedgate::inbound::saml::sp_metadata::Logout {
            url: logout.to_string(),
            signing: Vec::new(),
        };
        fedgate::inbound::saml::sp_metadata::sp_metadata(id, acs, &l, &[])
    };
    let run = |name: &str, body: &str| {
        let f = write(&d, name, body);
        lint(&[&f, "--as", "sp", "--profile", "acronis"]).1
    };
    let none = run("none.xml", &sp(""));
    assert!(
        codes(&none).contains(&"warning:lint.logout_url_missing".into()),
        "{none}"
    );
    let good = run(
        "good.xml",
        &sp("https://eu2-cloud.acronis.com/api/2/saml/logout"),
    );
    let found = good["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "lint.logout_url")
        .unwrap_or_else(|| panic!("{good}"));
    assert_eq!(
        found["fix"],
        "set logout_url = \"https://eu2-cloud.acronis.com/api/2/saml/logout\" and logout_binding = \"redirect\" for this console, so that signing out of fedgate signs the user out of it"
    );
    assert!(
        !codes(&good).iter().any(|c| c.starts_with("warning:")),
        "{good}"
    );
    let odd = run("odd.xml", &sp("https://eu2-cloud.acronis.com/logout"));
    assert!(
        codes(&odd).contains(&"warning:lint.logout_url_pattern".into()),
        "{odd}"
    );
    let _ = std::fs::remove_dir_all(&d);
}
