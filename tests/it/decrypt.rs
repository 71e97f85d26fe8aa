//! Decrypting EncryptedAssertions (issue 17, part 1, the cryptographic
//! layer: `fedgate::inbound::saml::decrypt`): what an independent
//! implementation encrypts (the xmlsec1 tool: AES-256-GCM, RSA-OAEP), the
//! third-party encrypted vectors of the corpus (crewjam's real TestShib and
//! Okta responses, AES-CBC: refused by default; their SP key is RSA-1024,
//! which fedgate refuses as a decryption key), and python3-saml's RSA
//! PKCS#1 v1.5 vector (refused before any RSA operation).

use fedgate::identity::ErrorCode;
use fedgate::inbound::saml::decrypt::{decrypt, DecryptionKey, Policy};
use fedgate::xml::{self, NS_SAML};

fn encrypted_assertion<'a, 'i>(doc: &'a xml::Document<'i>) -> xml::Node<'a, 'i> {
    doc.descendants()
        .find(|n| xml::is(n, NS_SAML, "EncryptedAssertion"))
        .expect("an EncryptedAssertion")
}

fn corpus_text(rel: &str) -> String {
    let raw = std::fs::read_to_string(super::corpus_path(rel)).unwrap();
    if raw.trim_start().starts_with('<') {
        raw
    } else {
        String::from_utf8(xml::base64_decode(raw.trim()).unwrap()).unwrap()
    }
}

/// fedgate's decryption key for the tests (the fixture pair's RSA-2048 key).
fn fixture_key() -> DecryptionKey {
    let pem = std::fs::read_to_string(super::fixture("saml/keys/idp_next_key.pem")).unwrap();
    DecryptionKey::from_pem(&pem).unwrap()
}

/// What the xmlsec1 tool makes of `data` (a document with an Assertion
/// inside an EncryptedAssertion): the Assertion encrypted with `content`
/// and RSA-OAEP for the fixture certificate (fedgate's key in the tests).
fn xmlsec_encrypt(data: &str, content: &str) -> String {
    let dir = super::TempDir::new("xmlsec-encrypt");
    std::fs::write(dir.join("data.xml"), data).unwrap();
    std::fs::write(
        dir.join("tmpl.xml"),
        format!("<xenc:EncryptedData xmlns:xenc=\"http://www.w3.org/2001/04/xmlenc#\" Type=\"http://www.w3.org/2001/04/xmlenc#Element\"><xenc:EncryptionMethod Algorithm=\"{content}\"/><ds:KeyInfo xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><xenc:EncryptedKey><xenc:EncryptionMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p\"/><xenc:CipherData><xenc:CipherValue/></xenc:CipherData></xenc:EncryptedKey></ds:KeyInfo><xenc:CipherData><xenc:CipherValue/></xenc:CipherData></xenc:EncryptedData>"),
    )
    .unwrap();
    let session = if content.contains("aes128") {
        "aes-128"
    } else {
        "aes-256"
    };
    let out = std::process::Command::new("xmlsec1")
        .args(["--encrypt", "--pubkey-cert-pem"])
        .arg(super::fixture("saml/keys/idp_next_cert.pem"))
        .args(["--session-key", session, "--xml-data"])
        .arg(dir.join("data.xml"))
        .args(["--node-xpath", "//*[local-name()='Assertion']"])
        .arg(dir.join("tmpl.xml"))
        .output()
        .expect("xmlsec1 (scripts/install-test-deps)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    text.trim_start_matches("<?xml version=\"1.0\"?>")
        .trim()
        .to_string()
}

#[test]
fn what_xmlsec1_encrypts_with_aes_gcm_and_rsa_oaep_is_decrypted() {
    let assertion = "<saml:Assertion xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"_x1\" Version=\"2.0\" IssueInstant=\"2026-12-03T00:00:00Z\"><saml:Issuer>https://idp.example</saml:Issuer></saml:Assertion>";
    let data = format!("<saml:EncryptedAssertion xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\">{assertion}</saml:EncryptedAssertion>");
    for content in [
        "http://www.w3.org/2009/xmlenc11#aes256-gcm",
        "http://www.w3.org/2009/xmlenc11#aes128-gcm",
        "http://www.w3.org/2001/04/xmlenc#aes256-cbc",
    ] {
        let cbc = content.ends_with("-cbc");
        let policy = Policy { allow_cbc: cbc };
        let text = xmlsec_encrypt(&data, content);
        let text = text.as_str();
        assert!(!text.contains("_x1"), "encrypted");
        let doc = xml::parse(text).unwrap();
        let k = fixture_key();
        if cbc {
            let e = decrypt(
                encrypted_assertion(&doc),
                std::slice::from_ref(&k),
                &Policy::default(),
            )
            .unwrap_err();
            assert_eq!(e.code(), "saml.encryption_cbc_refused");
        }
        let plain = decrypt(encrypted_assertion(&doc), &[k], &policy).unwrap();
        let plain = String::from_utf8(plain).unwrap();
        let back = xml::parse(&plain).expect("the plaintext is a document of its own");
        assert!(
            xml::is(&back.root_element(), NS_SAML, "Assertion"),
            "{plain}"
        );
        assert_eq!(back.root_element().attribute("ID"), Some("_x1"));
        // Another key is not the recipient's.
        let other = DecryptionKey::from_pem(
            &std::fs::read_to_string(super::data("fedgate_rsa_key.pem")).unwrap(),
        )
        .unwrap();
        let e = decrypt(encrypted_assertion(&doc), &[other], &policy).unwrap_err();
        assert_eq!(e.code(), "saml.decryption_failed");
    }
}

#[test]
fn crewjams_real_cbc_responses_are_refused_by_default_and_their_1024_bit_key_is_refused() {
    // A real TestShib response and a real Okta one (the Assertion signed
    // inside the EncryptedAssertion): AES-CBC, refused before any key is
    // used unless the tenant allows CBC.
    for rel in [
        "crewjam-saml/testdata/SP_SamlResponse",
        "crewjam-saml/testdata/TestSPCanHandleOktaResponseEncryptedSignedAssertion_response",
    ] {
        let text = corpus_text(rel);
        let doc = xml::parse(&text).unwrap();
        let e = decrypt(encrypted_assertion(&doc), &[], &Policy::default()).unwrap_err();
        assert_eq!(e.code(), "saml.encryption_cbc_refused", "{rel}");
        // Allowed, but no key of fedgate's fits: the one failure.
        let mine = fixture_key();
        let e = decrypt(
            encrypted_assertion(&doc),
            &[mine],
            &Policy { allow_cbc: true },
        )
        .unwrap_err();
        assert_eq!(e.code(), "saml.decryption_failed", "{rel}");
    }
    // Their SP key is RSA-1024: fedgate does not take it as a decryption key.
    let weak =
        std::fs::read_to_string(super::corpus_path("crewjam-saml/testdata/sp_key.pem")).unwrap();
    let e = DecryptionKey::from_pem(&weak).unwrap_err();
    assert_eq!(e.code(), "saml.decryption_key_invalid");
    assert!(e.to_string().contains("2,048"), "{e}");
}

#[test]
fn python3_samls_pkcs1_v15_vector_is_refused_before_any_rsa_operation() {
    let text =
        corpus_text("python3-saml/tests/data/responses/valid_encrypted_assertion.xml.base64");
    let doc = xml::parse(&text).unwrap();
    let e = decrypt(encrypted_assertion(&doc), &[], &Policy { allow_cbc: true }).unwrap_err();
    assert_eq!(e.code(), "saml.encryption_algorithm_refused", "{e}");
}

/// The mock tenant's Response for `user`, its Assertion encrypted by the
/// xmlsec1 tool (AES-256-GCM, RSA-OAEP) for fedgate's encryption key, as
/// Entra's token encryption sends it; `strip_signature` removes the
/// Assertion's own signature first.
fn entra_encrypted(env: &fedgate::demo::Environment, strip_signature: bool) -> String {
    let b64 = env.entra_response(&fedgate::demo::alice(), None).unwrap();
    let mut xml = String::from_utf8(xml::base64_decode(&b64).unwrap()).unwrap();
    if strip_signature {
        let start = xml.find("<ds:Signature").expect("a signed assertion");
        let end = xml.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
        xml.replace_range(start..end, "");
    }
    let xml = xml
        .replacen(
            "<Assertion ",
            "<EncryptedAssertion xmlns=\"urn:oasis:names:tc:SAML:2.0:assertion\"><Assertion ",
            1,
        )
        .replacen("</Assertion>", "</Assertion></EncryptedAssertion>", 1);
    let text = xmlsec_encrypt(&xml, "http://www.w3.org/2009/xmlenc11#aes256-gcm");
    assert!(text.contains("EncryptedData") && !text.contains("AttributeStatement"));
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn encryption_toml() -> String {
    format!(
        "\n[[tenants.encryption_keys]]\nkey_file = \"{}\"\ncert_file = \"{}\"\n",
        super::fixture("saml/keys/idp_next_key.pem").display(),
        super::fixture("saml/keys/idp_next_cert.pem").display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entra_response_with_an_encrypted_signed_assertion_signs_the_user_in() {
    let env = fedgate::demo::Environment::start_with(&encryption_toml())
        .await
        .unwrap();
    // The SP metadata publishes the encryption certificate.
    let md = reqwest::get(format!("{}/saml/contoso/metadata", env.fedgate_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(md.contains("<md:KeyDescriptor use=\"encryption\">"), "{md}");
    let cert = std::fs::read_to_string(super::fixture("saml/keys/idp_next_cert.pem")).unwrap();
    let cert_b64: String = cert.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(md.contains(&cert_b64), "the configured certificate");
    // Its expiry is watched like every certificate fedgate uses.
    assert!(
        env.app
            .expiries()
            .iter()
            .any(|e| e.kind == "fedgate_encryption"),
        "fedgate_cert_expiry_seconds covers the encryption certificate"
    );

    let (status, html) = env
        .post_to_fedgate(
            &entra_encrypted(&env, false),
            Some(fedgate::demo::CONSOLE_ID),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{html}");
    let (cs, cj) = env.follow_form(&html).await.unwrap();
    assert_eq!(cs, 200, "{cj}");
    assert_eq!(cj["user"], "alice@contoso.example");

    // Decryption never stands in for a signature: the same, unsigned inside
    // and in an unsigned Response, is refused.
    let (status, html) = env
        .post_to_fedgate(
            &entra_encrypted(&env, true),
            Some(fedgate::demo::CONSOLE_ID),
        )
        .await
        .unwrap();
    assert_eq!(status, 403, "{html}");
    assert!(html.contains("saml.unsigned"), "{html}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_without_a_decryption_key_refuses_an_encrypted_assertion_with_a_hint() {
    let env = fedgate::demo::Environment::start().await.unwrap();
    let (status, html) = env
        .post_to_fedgate(
            &entra_encrypted(&env, false),
            Some(fedgate::demo::CONSOLE_ID),
        )
        .await
        .unwrap();
    assert_eq!(status, 403, "{html}");
    assert!(
        html.contains("saml.encrypted_assertion_unsupported"),
        "{html}"
    );
    assert!(html.contains("encryption_keys"), "{html}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signature_over_the_encrypted_assertion_wrapper_alone_signs_nothing() {
    let env = fedgate::demo::Environment::start_with(&encryption_toml())
        .await
        .unwrap();
    // The Assertion inside unsigned, the Response unsigned; the tenant's
    // own key signs the EncryptedAssertion element itself.
    let b64 = entra_encrypted(&env, true);
    let xml = String::from_utf8(xml::base64_decode(&b64).unwrap()).unwrap();
    let xml = xml.replacen(
        "<EncryptedAssertion ",
        "<EncryptedAssertion ID=\"_wrapper\" ",
        1,
    );
    let signed = fedgate::xml::dsig::sign_enveloped(&xml, "_wrapper", &env.entra_key).unwrap();
    assert!(signed.contains("URI=\"#_wrapper\""));
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(signed);
    let (status, html) = env
        .post_to_fedgate(&b64, Some(fedgate::demo::CONSOLE_ID))
        .await
        .unwrap();
    assert_eq!(status, 403, "{html}");
    assert!(html.contains("saml.unsigned"), "{html}");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saml_decode_shows_the_algorithms_and_with_the_key_the_content() {
    let env = fedgate::demo::Environment::start().await.unwrap();
    let b64 = entra_encrypted(&env, false);
    env.stop().await;
    let dir = super::TempDir::new("decode-encrypted");
    let file = dir.join("response.b64");
    std::fs::write(&file, &b64).unwrap();
    let run = |extra: &[&std::ffi::OsStr]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_fedgate"))
            .args(["saml", "decode"])
            .arg(&file)
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let plain = run(&[]);
    assert!(
        plain.contains("content: http://www.w3.org/2009/xmlenc11#aes256-gcm"),
        "{plain}"
    );
    assert!(
        plain.contains("key transport: http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"),
        "{plain}"
    );
    assert!(
        plain.contains("give --key") && !plain.contains("alice@contoso.example"),
        "{plain}"
    );
    let key = super::fixture("saml/keys/idp_next_key.pem");
    let decrypted = run(&["--key".as_ref(), key.as_os_str()]);
    assert!(decrypted.contains("decrypted:"), "{decrypted}");
    assert!(
        decrypted.contains("Subject NameID: alice@contoso.example"),
        "{decrypted}"
    );
}
