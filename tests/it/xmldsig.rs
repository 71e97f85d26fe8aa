//! fedgate's signer and verifier against each other and against libxmlsec1
//! (the `xmlsec1` tool) as an independent oracle: a document fedgate signs
//! must verify in xmlsec1, which tests the canonicalizer from the other side.

use std::process::Command;

use fedgate::identity::ErrorCode;
use fedgate::inbound::saml::{self, SamlSettings};
use fedgate::mock::entra::{self, MockLogin};
use fedgate::trust::metadata::IdpMetadata;
use fedgate::trust::signing::SigningKey;
use fedgate::xml::dsig::sign_enveloped;

const SP: &str = "https://fedgate.example.test/saml/contoso/metadata";
const ACS: &str = "https://fedgate.example.test/saml/contoso/acs";
const TID: &str = "7d3a0c5e-1b2f-4c8d-9e6a-5f4b3c2d1e0f";

fn data(f: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/data/{f}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn key(kind: &str) -> SigningKey {
    SigningKey::from_pem(
        &data(&format!("fedgate_{kind}_key.pem")),
        &data(&format!("fedgate_{kind}_cert.pem")),
    )
    .unwrap()
}

fn login() -> MockLogin {
    MockLogin {
        tenant_id: TID.into(),
        sp_entity_id: SP.into(),
        acs_url: ACS.into(),
        issue_instant: fedgate::timefmt::parse("2026-03-02T10:00:00Z").unwrap(),
        in_response_to: None,
        id_seed: "0123456789abcdef".into(),
    }
}

/// Run `xmlsec1 --verify` trusting only `cert_pem`, with SAML IDs registered.
fn xmlsec1_verifies(xml: &str, cert_file: &str, id_attrs: &[&str]) -> bool {
    let dir = std::env::temp_dir().join(format!(
        "fedgate-xmlsec-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("doc.xml");
    std::fs::write(&file, xml).unwrap();
    let mut cmd = Command::new("xmlsec1");
    cmd.arg("--verify").arg("--pubkey-cert-pem").arg(format!(
        "{}/tests/data/{cert_file}",
        env!("CARGO_MANIFEST_DIR")
    ));
    for a in id_attrs {
        cmd.arg("--id-attr:ID").arg(a);
    }
    let out = cmd
        .arg(&file)
        .output()
        .expect("xmlsec1 is required for these tests: run scripts/install-test-deps");
    let _ = std::fs::remove_dir_all(&dir);
    out.status.success()
}

fn rand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn idp_from(cert_file: &str) -> IdpMetadata {
    IdpMetadata::from_pem(&data(cert_file), &format!("https://sts.windows.net/{TID}/")).unwrap()
}

#[test]
fn fedgate_signed_response_verifies_in_fedgate_and_in_xmlsec1() {
    for kind in ["rsa", "ec"] {
        let key = key(kind);
        let xml = entra::signed_response(&entra::user_with_groups(20), &login(), &key).unwrap();
        assert!(
            xmlsec1_verifies(
                &xml,
                &format!("fedgate_{kind}_cert.pem"),
                &["urn:oasis:names:tc:SAML:2.0:assertion:Assertion"]
            ),
            "xmlsec1 refused fedgate's {kind} signature:\n{xml}"
        );
        let idp = idp_from(&format!("fedgate_{kind}_cert.pem"));
        let now = fedgate::timefmt::parse("2026-03-02T10:01:00Z").unwrap();
        let id = saml::verify(xml.as_bytes(), &idp, &SamlSettings::new(SP, ACS), now).unwrap();
        assert_eq!(id.subject, "alice@contoso.example");
        assert_eq!(id.groups.len(), 20);
        assert!(id.mfa);
        assert_eq!(id.roles, ["Backup.Operator"]);
        assert_eq!(
            id.user_key().unwrap(),
            format!("{TID}:3f2504e0-4f89-11d3-9a0c-0305e82c3301")
        );
    }
}

/// Namespace shapes that exclusive C14N must get exactly right, signed by
/// fedgate and checked by xmlsec1: inherited prefixes used and unused,
/// default namespace undeclared, one URI under two prefixes, attribute order,
/// escapes, CRLF, CDATA, PIs, comments, xml:lang on an outer element.
#[test]
fn canonicalization_torture_documents_sign_and_verify_in_xmlsec1() {
    let docs = [
        r#"<o:outer xmlns:o="urn:outer" xmlns:u="urn:unused" xml:lang="en"><t:target xmlns:t="urn:t" ID="x1" xmlns:a="urn:a" a:z="1" b="2" a:b="3"><o:child>text</o:child><plain/></t:target></o:outer>"#,
        "<root xmlns=\"urn:default\"><inner ID=\"x1\" xmlns=\"\"><deeper xmlns=\"urn:d2\"><leaf xmlns=\"\"/></deeper></inner></root>",
        "<r xmlns:p=\"urn:same\" xmlns:q=\"urn:same\"><p:e ID=\"x1\" q:attr=\"v\"><q:f/></p:e></r>",
        "<r ID=\"x1\" a=\"tab\there&#10;nl&#13;cr &quot;q&quot; &lt;lt&gt; &amp;\">text &amp; &lt;tag&gt; &#13; <![CDATA[cdata <&>]]><?pi data?><!-- comment --></r>",
        "<r ID=\"x1\">\r\nline1\r\nline2\r\n<e  b = 'single'   a=\"x\" /></r>",
        "<a:r xmlns:a=\"urn:a\"><a:s xmlns:a=\"urn:a2\" ID=\"x1\"><a:t xmlns:a=\"urn:a\"/></a:s></a:r>",
    ];
    let key = key("rsa");
    for (i, doc) in docs.iter().enumerate() {
        let signed = sign_enveloped(doc, "x1", &key).unwrap_or_else(|e| panic!("doc {i}: {e}"));
        assert!(
            xmlsec1_verifies(&signed, "fedgate_rsa_cert.pem", &[])
                || xmlsec1_verifies_any_id(&signed),
            "doc {i} not verified by xmlsec1:\n{signed}"
        );
        // And by fedgate's own verifier.
        let parsed = fedgate::xml::parse(&signed).unwrap();
        let el = parsed
            .descendants()
            .find(|n| n.attribute("ID") == Some("x1"))
            .unwrap();
        let sig = fedgate::xml::dsig::signature_child(el).unwrap().unwrap();
        let trusted = vec![key.cert.clone()];
        fedgate::xml::dsig::verify_enveloped(el, sig, &trusted, &Default::default())
            .unwrap_or_else(|e| panic!("doc {i}: {e}"));
    }
}

/// xmlsec1 needs ID attributes registered per element name; for documents
/// with no schema, register the element's own name.
fn xmlsec1_verifies_any_id(xml: &str) -> bool {
    let doc = fedgate::xml::parse(xml).unwrap();
    let el = doc
        .descendants()
        .find(|n| n.attribute("ID") == Some("x1"))
        .unwrap();
    let name = match el.tag_name().namespace() {
        Some(ns) => format!("{ns}:{}", el.tag_name().name()),
        None => el.tag_name().name().to_string(),
    };
    xmlsec1_verifies(xml, "fedgate_rsa_cert.pem", &[name.as_str()])
}

#[test]
fn any_change_to_a_signed_assertion_is_caught() {
    let key = key("rsa");
    let xml = entra::signed_response(&entra::user_with_groups(3), &login(), &key).unwrap();
    let idp = idp_from("fedgate_rsa_cert.pem");
    let now = fedgate::timefmt::parse("2026-03-02T10:01:00Z").unwrap();
    let settings = SamlSettings::new(SP, ACS);
    assert!(saml::verify(xml.as_bytes(), &idp, &settings, now).is_ok());
    // Change one character of every attribute value, one at a time.
    let mut checked = 0;
    for (start, _) in xml.match_indices("<AttributeValue>") {
        let at = start + "<AttributeValue>".len();
        let mut bytes = xml.clone().into_bytes();
        bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
        let err = saml::verify(&bytes, &idp, &settings, now).unwrap_err();
        assert_eq!(err.code(), "saml.digest_mismatch");
        checked += 1;
    }
    assert!(checked >= 8);
    // A comment appended to the NameID's text changes nothing signed: exc-c14n drops it,
    // and the whole text is read, so the subject is unchanged.
    let commented = xml.replace(
        "alice@contoso.example</NameID>",
        "alice@<!---->contoso.example</NameID>",
    );
    assert_eq!(
        saml::verify(commented.as_bytes(), &idp, &settings, now)
            .unwrap()
            .subject,
        "alice@contoso.example"
    );
    // Text added after a comment is a change.
    let suffixed = xml.replace(
        "alice@contoso.example</NameID>",
        "alice@contoso.example<!---->.evil.example</NameID>",
    );
    assert_eq!(
        saml::verify(suffixed.as_bytes(), &idp, &settings, now)
            .unwrap_err()
            .code(),
        "saml.digest_mismatch"
    );
}

/// `KeyInfo` selects among the trusted certificates, however its base64 is
/// laid out: on one line (Entra), wrapped at 64 or 76 characters with LF or
/// CRLF and indentation (xmlsec1, ADFS), or with stray spaces (decoded and
/// compared as DER). A certificate that is not trusted is refused with its
/// thumbprint, whatever the layout; one that is not base64 is malformed.
/// (KeyInfo sits inside the enveloped Signature, so none of this touches
/// the digest or the signed SignedInfo.)
#[test]
fn keyinfo_selects_a_trusted_certificate_in_any_base64_layout() {
    let key = key("rsa");
    let xml = entra::signed_response(&entra::user_with_groups(3), &login(), &key).unwrap();
    let (open, close) = ("<ds:X509Certificate>", "</ds:X509Certificate>");
    let start = xml.find(open).expect("KeyInfo certificate") + open.len();
    let end = xml[start..].find(close).unwrap() + start;
    let cert = xml[start..end].to_string();
    assert!(cert.len() > 600 && !cert.contains(char::is_whitespace));
    let wrap = |width: usize, eol: &str, indent: &str| {
        let lines: Vec<String> = cert
            .as_bytes()
            .chunks(width)
            .map(|c| format!("{indent}{}", std::str::from_utf8(c).unwrap()))
            .collect();
        format!("{eol}{}{eol}", lines.join(eol))
    };
    let with_cert = |text: &str| format!("{}{text}{}", &xml[..start], &xml[end..]);
    let idp = idp_from("fedgate_rsa_cert.pem");
    let now = fedgate::timefmt::parse("2026-03-02T10:01:00Z").unwrap();
    let verify = |doc: &str| saml::verify(doc.as_bytes(), &idp, &SamlSettings::new(SP, ACS), now);

    let spaced = format!("{} {}", &cert[..100], &cert[100..]);
    for layout in [
        cert.clone(),
        wrap(64, "\n", ""),
        wrap(76, "\r\n", "        "),
        wrap(64, "\n", "\t"),
        spaced,
    ] {
        let id = verify(&with_cert(&layout)).unwrap_or_else(|e| panic!("{layout:?}: {e}"));
        assert_eq!(id.subject, "alice@contoso.example");
        assert_eq!(
            id.verification.key, idp.signing_certs[0].thumbprint_sha256,
            "the trusted certificate is the one that verified"
        );
    }

    let other = data("fedgate_ec_cert.pem");
    let other_b64: String = other
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .join("\n");
    let other_thumb = fedgate::trust::certs::TrustedCert::from_pem_bundle(&other).unwrap()[0]
        .thumbprint_sha256
        .clone();
    for text in [other_b64.replace('\n', ""), other_b64.clone()] {
        let err = verify(&with_cert(&text)).unwrap_err();
        assert_eq!(err.code(), "saml.cert_untrusted", "{err}");
        assert!(err.to_string().contains(&other_thumb), "{err}");
    }
    // One byte off in the middle: not the trusted certificate any more.
    let mut bent = cert.clone().into_bytes();
    bent[300] = if bent[300] == b'A' { b'B' } else { b'A' };
    let err = verify(&with_cert(std::str::from_utf8(&bent).unwrap())).unwrap_err();
    assert_eq!(err.code(), "saml.cert_untrusted", "{err}");
    let err = verify(&with_cert("not*base64")).unwrap_err();
    assert_eq!(err.code(), "saml.signature_malformed", "{err}");
}
