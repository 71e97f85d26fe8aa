//! Conformance against third-party vectors in tests/corpus (unmodified
//! copies, never edited; sources and licences in tests/corpus/README.md):
//! real IdP responses (Google, OneLogin, SecureWorks, SimpleSAMLphp via
//! python3-saml), real Entra metadata and a real Entra-issued assertion, the
//! synthetic Entra-shaped cases, and the published XML-signature-wrapping
//! permutations. Each case pins `now`
//! inside its window and asserts either the subject or the exact error code.

use fedgate::identity::ErrorCode;
use fedgate::inbound::saml::{self, SamlSettings};
use fedgate::trust::metadata::IdpMetadata;
use fedgate::xml;

use super::corpus_path as path;

struct Case {
    file: String,
    cert: &'static str,
    issuer: &'static str,
    sp: &'static str,
    acs: &'static str,
    now: &'static str,
    legacy: bool,
    expect: Result<&'static str, &'static str>,
}

const PY: &str = "python3-saml/tests/data/responses";
const PITBULK_SP: &str = "https://pitbulk.no-ip.org/newonelogin/demo1/metadata.php";
const PITBULK_ACS: &str = "https://pitbulk.no-ip.org/newonelogin/demo1/index.php?acs";
const PITBULK_IDP: &str = "https://pitbulk.no-ip.org/simplesaml/saml2/idp/metadata.php";
const FEIDE: &str = "python3-saml/_extracted_certs/afe71c28.pem";
const NGROK_SP: &str = "https://29ee6d2e.ngrok.io/saml/metadata";
const NGROK_ACS: &str = "https://29ee6d2e.ngrok.io/saml/acs";
const GOOGLE_IDP: &str = "https://accounts.google.com/o/saml2?idpid=C02dfl1r1";
const GOOGLE_CERT: &str = "crewjam-saml/_extracted_certs/177779ad.pem";
const EXAMPLE_SP: &str = "http://sp.example.com/demo1/metadata.php";
const EXAMPLE_ACS: &str = "http://sp.example.com/demo1/index.php?acs";
const EXAMPLE_IDP: &str = "http://idp.example.com/metadata.php";
const EXAMPLE_CERT: &str = "crewjam-saml/_extracted_certs/5614657a.pem";
const ENTRA_TID: &str = "https://sts.windows.net/aaaabbbb-0000-cccc-1111-dddd2222eeee/";
const ENTRA_SP: &str = "https://gateway.example.test/saml/metadata";
const ENTRA_ACS: &str = "https://gateway.example.test/saml/acs";
const ENTRA_CERT: &str = "entra/generated/idp_signing_cert.pem";
const ENTRA_NOW: &str = "2025-01-15T12:00:00Z";

fn py(file: &'static str, legacy: bool, expect: Result<&'static str, &'static str>) -> Case {
    Case {
        file: format!("{PY}/{file}"),
        cert: FEIDE,
        issuer: PITBULK_IDP,
        sp: PITBULK_SP,
        acs: PITBULK_ACS,
        now: "2014-04-01T00:00:00Z",
        legacy,
        expect,
    }
}

fn google(file: &'static str, expect: Result<&'static str, &'static str>) -> Case {
    Case {
        file: file.into(),
        cert: GOOGLE_CERT,
        issuer: GOOGLE_IDP,
        sp: NGROK_SP,
        acs: NGROK_ACS,
        now: "2016-01-05T16:55:39Z",
        legacy: false,
        expect,
    }
}

fn xsw(file: &'static str, now: &'static str, expect: &'static str) -> Case {
    Case {
        file: file.into(),
        cert: EXAMPLE_CERT,
        issuer: EXAMPLE_IDP,
        sp: EXAMPLE_SP,
        acs: EXAMPLE_ACS,
        now,
        legacy: true,
        expect: Err(expect),
    }
}

fn entra(file: &'static str, legacy: bool, expect: Result<&'static str, &'static str>) -> Case {
    Case {
        file: file.into(),
        cert: ENTRA_CERT,
        issuer: ENTRA_TID,
        sp: ENTRA_SP,
        acs: ENTRA_ACS,
        now: ENTRA_NOW,
        legacy,
        expect,
    }
}

fn cases() -> Vec<Case> {
    let entra_subject = "Uz2Pqz1X7pxe4XLWxV9KJQ+n59d573SepSAkuYKSde8=";
    let mut v = vec![
        // python3-saml: SimpleSAMLphp responses signed rsa-sha1 by a 1024-bit key.
        py(
            "signed_assertion_response.xml.base64",
            true,
            Ok("_3af62f1d03513bdd61dd5bf04d3deb7aa617480e22"),
        ),
        py(
            "signed_message_response.xml.base64",
            true,
            Ok("_b98f98bb1ab512ced653b58baaff543448daed535d"),
        ),
        Case {
            // Its IdP session ends (SessionNotOnOrAfter) eight hours after issue.
            now: "2014-03-21T13:45:00Z",
            ..py(
                "double_signed_response.xml.base64",
                true,
                Ok("_2126dd19b8a9a28238d88fdc7385e60995004a7782"),
            )
        },
        py(
            "valid_response_without_inresponseto.xml.base64",
            true,
            Ok("492882615acf31c8096b627245d76ae53036c090"),
        ),
        // The same, without the legacy allowances: SHA-1 is refused by name.
        py(
            "signed_assertion_response.xml.base64",
            false,
            Err("saml.sha1_forbidden"),
        ),
        py(
            "invalids/duplicated_attributes.xml.base64",
            true,
            Err("saml.duplicate_attribute"),
        ),
        py(
            "invalids/empty_nameid.xml.base64",
            true,
            Err("saml.subject_missing"),
        ),
        py(
            "invalids/no_authnstatement.xml.base64",
            true,
            Err("saml.authn_statement_missing"),
        ),
        py(
            "invalids/no_conditions.xml.base64",
            true,
            Err("saml.conditions_missing"),
        ),
        py(
            "invalids/no_issuer_assertion.xml.base64",
            true,
            Err("saml.issuer_missing"),
        ),
        py(
            "invalids/bad_reference.xml.base64",
            true,
            Err("saml.digest_mismatch"),
        ),
        py(
            "invalids/multiple_assertions.xml.base64",
            true,
            Err("saml.multiple_assertions"),
        ),
        py(
            "valid_unsigned_response.xml.base64",
            true,
            Err("saml.unsigned"),
        ),
        py(
            "invalids/invalid_audience.xml.base64",
            true,
            Err("saml.unsigned"),
        ),
        py(
            "pretty_signed_message_response.xml",
            true,
            Err("saml.digest_mismatch"),
        ),
        py(
            "response4.xml.base64",
            true,
            Err("saml.multiple_assertions"),
        ),
        py("wrapped_response_2.xml.base64", true, Err("saml.unsigned")),
        py(
            "invalids/encrypted_attrs.xml.base64",
            true,
            Err("saml.unsigned"),
        ),
        py(
            "signed_message_encrypted_assertion.xml.base64",
            true,
            Err("saml.encrypted_assertion_unsupported"),
        ),
        // Google Workspace (rsa-sha256, 2048-bit), and its comment mutations.
        google(
            "crewjam-saml/testdata/TestSPCanHandlePlaintextResponse_response",
            Ok("ross@octolabs.io"),
        ),
        google(
            "crewjam-saml/derived/google_comment_inside_nameid.xml",
            Ok("ross@octolabs.io"),
        ),
        google(
            "crewjam-saml/derived/google_cve-2018-7340_comment_suffix.xml",
            Err("saml.digest_mismatch"),
        ),
        Case {
            file: "crewjam-saml/testdata/TestSPCanHandleOneloginResponse_response".into(),
            cert: "crewjam-saml/_extracted_certs/ef69ae37.pem",
            issuer: "https://app.onelogin.com/saml/metadata/503983",
            sp: NGROK_SP,
            acs: NGROK_ACS,
            now: "2016-01-05T17:53:12Z",
            legacy: true,
            expect: Ok("ross@kndr.org"),
        },
        Case {
            // KeyInfo holds an RSAKeyValue, not a certificate: the key still comes from trust.
            file: "crewjam-saml/testdata/TestSPRealWorldAssertionSignedNotResponse_response".into(),
            cert: "crewjam-saml/_extracted_certs/62cb2032.pem",
            issuer: "https://idp.secureworks.com/SAML2",
            sp: "https://preview.docrocket-ross.test.octolabs.io/saml/metadata",
            acs: "https://preview.docrocket-ross.test.octolabs.io/saml/acs",
            now: "2017-04-21T13:12:51Z",
            legacy: true,
            expect: Ok("rkinder@secureworks.com"),
        },
        Case {
            file: "crewjam-saml/testdata/TestSPMultipleAssertions".into(),
            cert: "crewjam-saml/_extracted_certs/62cb2032.pem",
            issuer: "https://idp.secureworks.com/SAML2",
            sp: "https://preview.docrocket-ross.test.octolabs.io/saml/metadata",
            acs: "https://preview.docrocket-ross.test.octolabs.io/saml/acs",
            now: "2017-04-21T13:12:51Z",
            legacy: true,
            // The evil assertion reuses the signed one's ID: caught before counting.
            expect: Err("saml.duplicate_id"),
        },
        xsw(
            "crewjam-saml/testdata/TestServiceProviderCanHandleSignedAssertionsResponse_response",
            "2014-07-17T14:12:57Z",
            "unused",
        ),
        // The XSW catalogue (crewjam's permutations 3-9 on a signed assertion).
        xsw(
            "crewjam-saml/testdata/TestXswPermutationThreeIsRejected_response",
            "2014-07-17T01:02:59Z",
            "saml.multiple_assertions",
        ),
        xsw(
            "crewjam-saml/testdata/TestXswPermutationFourIsRejected_response",
            "2014-07-17T01:02:59Z",
            "saml.multiple_assertions",
        ),
        xsw(
            "crewjam-saml/testdata/TestXswPermutationFiveIsRejected_response",
            "2014-07-17T01:02:59Z",
            "saml.multiple_assertions",
        ),
        xsw(
            "crewjam-saml/testdata/TestXswPermutationSixIsRejected_response",
            "2014-07-17T01:02:59Z",
            "saml.multiple_assertions",
        ),
        xsw(
            "crewjam-saml/testdata/TestXswPermutationSevenIsRejected_response",
            "2014-07-17T14:12:57Z",
            "saml.duplicate_id",
        ),
        xsw(
            "crewjam-saml/testdata/TestXswPermutationEightIsRejected_response",
            "2014-07-17T14:12:57Z",
            "saml.duplicate_id",
        ),
        xsw(
            "crewjam-saml/testdata/TestXswPermutationNineIsRejected_response",
            "2014-07-17T14:12:57Z",
            "saml.multiple_assertions",
        ),
        // Synthetic Entra-shaped cases (corpus/entra/generated/index.json).
        entra(
            "entra/generated/valid_signxml_rsa256.xml",
            false,
            Ok(entra_subject),
        ),
        entra(
            "entra/generated/valid_xmlsec_rsa256.xml",
            false,
            Ok(entra_subject),
        ),
        entra(
            "entra/generated/valid_groups_overage.xml",
            false,
            Ok(entra_subject),
        ),
        entra(
            "entra/generated/valid_comment_in_nameid.xml",
            false,
            Ok(entra_subject),
        ),
        entra(
            "entra/generated/invalid_sha1.xml",
            false,
            Err("saml.sha1_forbidden"),
        ),
        entra("entra/generated/invalid_sha1.xml", true, Ok(entra_subject)),
        entra(
            "entra/generated/invalid_expired.xml",
            false,
            Err("saml.expired"),
        ),
        entra(
            "entra/generated/invalid_not_yet_valid.xml",
            false,
            Err("saml.not_yet_valid"),
        ),
        entra(
            "entra/generated/invalid_wrong_audience.xml",
            false,
            Err("saml.audience_mismatch"),
        ),
        entra(
            "entra/generated/invalid_wrong_recipient.xml",
            false,
            Err("saml.destination_mismatch"),
        ),
        entra(
            "entra/generated/invalid_duplicate_oid_attribute.xml",
            false,
            Err("saml.duplicate_attribute"),
        ),
        entra(
            "entra/generated/invalid_unsigned.xml",
            false,
            Err("saml.unsigned"),
        ),
        entra(
            "entra/generated/invalid_attacker_signed.xml",
            false,
            Err("saml.cert_untrusted"),
        ),
        entra(
            "entra/generated/invalid_tampered_tenantid.xml",
            false,
            Err("saml.digest_mismatch"),
        ),
        entra(
            "entra/generated/invalid_xsw_evil_first.xml",
            false,
            Err("saml.multiple_assertions"),
        ),
        entra(
            "entra/generated/invalid_xsw_signed_in_advice.xml",
            false,
            Err("saml.duplicate_id"),
        ),
    ];
    // The signed-assertions response is the base of the XSW permutations: valid.
    if let Some(c) = v
        .iter_mut()
        .find(|c| c.file.ends_with("SignedAssertionsResponse_response"))
    {
        c.expect = Ok("_ce3d2948b4cf20146dee0a0b3dd6f69b6cf86f62d7");
    }
    v
}

#[test]
fn corpus_responses_give_the_expected_subject_or_code() {
    let mut failures = Vec::new();
    let cases = cases();
    for c in &cases {
        let pem = std::fs::read_to_string(path(c.cert)).unwrap();
        let idp = IdpMetadata::from_pem(&pem, c.issuer).unwrap();
        let mut settings = SamlSettings::new(c.sp, c.acs);
        if c.legacy {
            settings.profile.allow_sha1 = true;
            settings.profile.min_rsa_bits = 1024;
        }
        let now = fedgate::timefmt::parse(c.now).unwrap();
        let input = std::fs::read(path(&c.file)).unwrap();
        let got = saml::verify(&input, &idp, &settings, now);
        let got_s = match &got {
            Ok(id) => Ok(id.subject.as_str()),
            Err(e) => Err(e.code()),
        };
        if got_s != c.expect {
            failures.push(format!(
                "{}: expected {:?}, got {:?} ({})",
                c.file,
                c.expect,
                got_s,
                got.as_ref()
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_default()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn one_kilobit_keys_are_refused_by_default() {
    let pem = std::fs::read_to_string(path(FEIDE)).unwrap();
    let idp = IdpMetadata::from_pem(&pem, PITBULK_IDP).unwrap();
    let mut settings = SamlSettings::new(PITBULK_SP, PITBULK_ACS);
    settings.profile.allow_sha1 = true;
    let input = std::fs::read(path(&format!("{PY}/signed_assertion_response.xml.base64"))).unwrap();
    let now = fedgate::timefmt::parse("2014-04-01T00:00:00Z").unwrap();
    let err = saml::verify(&input, &idp, &settings, now).unwrap_err();
    assert_eq!(err.code(), "saml.key_too_weak");
}

#[test]
fn reference_uri_empty_is_outside_the_profile() {
    // xmlsec1 accepts URI="" (the whole document); fedgate's profile requires "#ID".
    let cert = "python3-saml/_extracted_certs/emb_657302a5.pem";
    let Ok(pem) = std::fs::read_to_string(path(cert)) else {
        panic!("corpus cert {cert} missing");
    };
    let idp = IdpMetadata::from_pem(&pem, "https://app.onelogin.com/saml/metadata/372046").unwrap();
    let mut settings = SamlSettings::new(
        "http://localhost:9001/",
        "http://localhost:9001/v1/users/authorize/saml",
    );
    settings.profile.allow_sha1 = true;
    settings.profile.min_rsa_bits = 1024;
    let input = std::fs::read(path(&format!(
        "{PY}/response_without_reference_uri.xml.base64"
    )))
    .unwrap();
    let now = fedgate::timefmt::parse("2015-01-02T22:50:00Z").unwrap();
    let err = saml::verify(&input, &idp, &settings, now).unwrap_err();
    assert_eq!(err.code(), "saml.reference_invalid", "{err}");
}

#[test]
fn real_entra_metadata_yields_every_signing_certificate() {
    let bytes = std::fs::read(path("entra/identitymodel/AADCommonMetadata.xml")).unwrap();
    let md = IdpMetadata::parse(&bytes).unwrap();
    assert_eq!(md.entity_id, "https://sts.windows.net/{tenantid}/");
    assert_eq!(
        md.signing_certs.len(),
        3,
        "Entra publishes three during a rollover"
    );
    assert!(md.document_signed);
    assert!(md
        .sso_endpoints
        .iter()
        .any(|e| e.location.starts_with("https://login.microsoftonline.com/")));
    // Every certificate expired in 2019 or so: still loaded (pinned), reported as expired.
    let now = fedgate::timefmt::parse("2026-01-01T00:00:00Z").unwrap();
    assert!(md.signing_certs.iter().all(|c| c.is_expired(now)));
    // The trusted set equals the three certificates shipped beside it.
    for n in 1..=3 {
        let pem = std::fs::read_to_string(path(&format!(
            "entra/identitymodel/aad_signing_cert{n}.pem"
        )))
        .unwrap();
        let c = &fedgate::trust::certs::TrustedCert::from_pem_bundle(&pem).unwrap()[0];
        assert!(md
            .signing_certs
            .iter()
            .any(|m| m.thumbprint_sha256 == c.thumbprint_sha256));
    }
}

#[test]
fn real_entra_metadata_signature_verifies_with_the_profile() {
    // The metadata document's own enveloped signature, by Entra's key: a real
    // Entra signature through fedgate's canonicalizer and verifier.
    let text = std::fs::read_to_string(path("entra/identitymodel/AADCommonMetadata.xml")).unwrap();
    let pem = std::fs::read_to_string(path("entra/identitymodel/aad_signing_cert1.pem")).unwrap();
    let trusted = fedgate::trust::certs::TrustedCert::from_pem_bundle(&pem).unwrap();
    let doc = xml::parse(&text).unwrap();
    let root = doc.root_element();
    let sig = xml::dsig::signature_child(root).unwrap().unwrap();
    xml::dsig::verify_enveloped(root, sig, &trusted, &Default::default()).unwrap();
    // The reformatted tenant metadata does not (white space is signed).
    let text = std::fs::read_to_string(path("entra/identitymodel/AADTenantMetadata_formatted.xml"))
        .unwrap();
    let doc = xml::parse(&text).unwrap();
    let root = doc.root_element();
    let sig = xml::dsig::signature_child(root).unwrap().unwrap();
    assert!(xml::dsig::verify_enveloped(root, sig, &trusted, &Default::default()).is_err());
}

#[test]
fn real_entra_assertion_signature_verifies_and_tampering_is_caught() {
    let pem = std::fs::read_to_string(path("entra/identitymodel/aad_signing_cert1.pem")).unwrap();
    let trusted = fedgate::trust::certs::TrustedCert::from_pem_bundle(&pem).unwrap();
    let check = |file: &str| -> Result<(), xml::dsig::DsigError> {
        let text =
            std::fs::read_to_string(path(&format!("entra/identitymodel/saml2_tokens/{file}")))
                .unwrap();
        let doc = xml::parse(&text).unwrap();
        let root = doc.root_element();
        let sig = xml::dsig::signature_child(root)?
            .ok_or(xml::dsig::DsigError::Malformed("unsigned".into()))?;
        xml::dsig::verify_enveloped(root, sig, &trusted, &Default::default()).map(|_| ())
    };
    for ok in [
        "Saml2Token_Valid.xml",
        "Saml2Token_Valid_WithNoKeyInfo.xml",
        "Saml2Token_Valid_WithRsaKeyValue.xml",
        "Saml2Token_Valid_Spaces_Added.xml",
        "RefXml_Saml2TokenValidSigned.xml",
    ] {
        check(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for bad in [
        "Saml2Token_AttributeTampered.xml",
        "Saml2Token_DigestTampered.xml",
        "Saml2Token_SignatureTampered.xml",
        "Saml2Token_Formated.xml",
        "RefXml_Saml2TokenTwoSignatures.xml",
        "Saml2Token_IdMissing.xml",
    ] {
        assert!(check(bad).is_err(), "{bad} must not verify");
    }
}
