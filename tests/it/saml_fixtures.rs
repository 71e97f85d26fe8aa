//! fedgate's own Entra-shaped SAML fixtures (fixtures/saml/, made by
//! scripts/make_saml_fixtures.py with signxml and the xmlsec1 tool as
//! independent signers): every valid case must give its subject, object id,
//! MFA flag and group count; every hostile case its exact error code. The
//! xmlsec1 verdict recorded for each case is re-checked live where it
//! matters: fedgate must never accept what libxmlsec1 refuses.

use std::process::Command;

use fedgate::identity::ErrorCode;
use fedgate::inbound::saml::{self, SamlSettings};
use fedgate::trust::metadata::IdpMetadata;
use serde_json::Value;

use super::fixture;

fn index() -> Vec<Value> {
    serde_json::from_slice(&std::fs::read(fixture("saml/index.json")).unwrap()).unwrap()
}

fn run(case: &Value) -> Result<fedgate::identity::Identity, saml::SamlError> {
    let s = |k: &str| case[k].as_str().unwrap_or_default().to_string();
    let md = std::fs::read(fixture(&format!("saml/{}", s("metadata")))).unwrap();
    let idp = IdpMetadata::parse(&md).unwrap_or_else(|e| panic!("{}: metadata: {e}", s("file")));
    let mut settings = SamlSettings::new(s("sp_entity_id"), s("acs_url"));
    settings.profile.allow_sha1 = case["allow_sha1"].as_bool().unwrap_or(false);
    settings.expected_in_response_to = case["in_response_to"].as_str().map(str::to_string);
    let now = fedgate::timefmt::parse(&s("now")).unwrap();
    let input = std::fs::read(fixture(&format!("saml/{}", s("file")))).unwrap();
    saml::verify(&input, &idp, &settings, now)
}

#[test]
fn every_fixture_gives_its_subject_or_its_exact_code() {
    let cases = index();
    assert!(cases.len() >= 60, "the fixture index lost cases");
    let mut failures = Vec::new();
    for case in &cases {
        let file = case["file"].as_str().unwrap();
        let expect = case["expect"].as_str().unwrap();
        match (run(case), expect) {
            (Ok(id), "valid") => {
                let mut bad = Vec::new();
                if id.subject != case["subject"].as_str().unwrap() {
                    bad.push(format!("subject {:?}", id.subject));
                }
                if id.object_id.as_deref() != case["object_id"].as_str() {
                    bad.push(format!("object_id {:?}", id.object_id));
                }
                if Some(id.mfa) != case["mfa"].as_bool() {
                    bad.push(format!("mfa {}", id.mfa));
                }
                if Some(id.groups.len() as u64) != case["groups_count"].as_u64() {
                    bad.push(format!("groups {}", id.groups.len()));
                }
                if Some(id.groups_overage) != case["groups_overage"].as_bool() {
                    bad.push(format!("overage {}", id.groups_overage));
                }
                if !bad.is_empty() {
                    failures.push(format!("{file}: accepted but {}", bad.join(", ")));
                }
            }
            (Ok(id), code) => failures.push(format!(
                "{file}: expected {code}, accepted as {}",
                id.subject
            )),
            (Err(e), "valid") => {
                failures.push(format!("{file}: expected valid, got {} ({e})", e.code()))
            }
            (Err(e), code) if e.code() != code => {
                failures.push(format!("{file}: expected {code}, got {} ({e})", e.code()))
            }
            (Err(_), _) => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Live differential check against libxmlsec1: for every XML fixture whose
/// signatures xmlsec1 rejects, fedgate must reject it too; for every valid
/// one, both accept. (fedgate rejects more: its profile is stricter.)
#[test]
fn fedgate_never_accepts_what_xmlsec1_rejects() {
    let mut compared = 0;
    for case in index() {
        let file = case["file"].as_str().unwrap();
        if !file.ends_with(".xml") || case["xmlsec1_verify"].as_str().is_none() {
            continue;
        }
        let ours = run(&case).is_ok();
        let md = case["metadata"].as_str().unwrap();
        let certs = certs_for(md);
        let path = fixture(&format!("saml/{file}"));
        let theirs = certs.iter().any(|cert| {
            Command::new("xmlsec1")
                .args([
                    "--verify",
                    "--enabled-reference-uris",
                    "same-doc,empty",
                    "--pubkey-cert-pem",
                ])
                .arg(fixture(&format!("saml/{cert}")))
                .args([
                    "--id-attr:ID",
                    "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
                ])
                .args([
                    "--id-attr:ID",
                    "urn:oasis:names:tc:SAML:2.0:protocol:Response",
                ])
                .arg(&path)
                .output()
                .expect("xmlsec1 is required: run scripts/install-test-deps")
                .status
                .success()
        });
        if ours {
            assert!(theirs, "{file}: fedgate accepted what xmlsec1 rejects");
        }
        compared += 1;
    }
    assert!(compared >= 40, "only {compared} fixtures compared");
}

/// The certificates a metadata fixture trusts, as PEM files under fixtures/saml.
fn certs_for(metadata: &str) -> Vec<String> {
    let keys = std::fs::read_dir(fixture("saml/keys")).unwrap();
    let md =
        IdpMetadata::parse(&std::fs::read(fixture(&format!("saml/{metadata}"))).unwrap()).unwrap();
    let mut out = Vec::new();
    for entry in keys.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.ends_with("cert.pem") {
            continue;
        }
        let pem = std::fs::read_to_string(entry.path()).unwrap();
        if let Ok(c) = fedgate::trust::certs::TrustedCert::from_pem_bundle(&pem) {
            if md
                .signing_certs
                .iter()
                .any(|m| m.thumbprint_sha256 == c[0].thumbprint_sha256)
            {
                out.push(format!("keys/{name}"));
            }
        }
    }
    assert!(!out.is_empty(), "no certificate file for {metadata}");
    out
}
