//! `fedgate::inbound::saml::decrypt` on shapes built here with aws-lc-rs:
//! both OAEP forms, GCM and CBC, tampering, a swapped key, refused
//! algorithms and external references.

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{DecryptionContext, UnboundCipherKey};
use aws_lc_rs::rsa::{
    OaepAlgorithm, OaepPublicEncryptingKey, PrivateDecryptingKey, OAEP_SHA1_MGF1SHA1,
    OAEP_SHA256_MGF1SHA256,
};
use base64::Engine;

use fedgate::inbound::saml::decrypt::*;

const KEY: &str = include_str!("../../fixtures/saml/keys/idp_next_key.pem");
const OTHER: &str = include_str!("../../tests/data/fedgate_rsa_key.pem");
const PLAIN: &str = "<saml:Assertion xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"_a1\"><saml:Issuer>x</saml:Issuer></saml:Assertion>";

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Wrap `session` for `KEY` with OAEP.
fn wrap(session: &[u8], alg: &'static OaepAlgorithm, pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    let private = PrivateDecryptingKey::from_pkcs8(&der).unwrap();
    let public = OaepPublicEncryptingKey::new(private.public_key()).unwrap();
    let mut out = vec![0u8; public.ciphertext_size()];
    public
        .encrypt(alg, session, &mut out, None)
        .unwrap()
        .to_vec()
}

fn gcm(session: &[u8], alg: &'static aead::Algorithm, plain: &[u8]) -> Vec<u8> {
    let key = LessSafeKey::new(UnboundKey::new(alg, session).unwrap());
    let nonce = [7u8; 12];
    let mut body = plain.to_vec();
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut body)
        .unwrap();
    [nonce.to_vec(), body].concat()
}

fn cbc(session: &[u8], plain: &[u8]) -> Vec<u8> {
    use aws_lc_rs::cipher::PaddedBlockEncryptingKey;
    let key = PaddedBlockEncryptingKey::cbc_pkcs7(
        UnboundCipherKey::new(&aws_lc_rs::cipher::AES_256, session).unwrap(),
    )
    .unwrap();
    let mut body = plain.to_vec();
    let ctx = key.encrypt(&mut body).unwrap();
    let DecryptionContext::Iv128(iv) = ctx else {
        panic!()
    };
    let iv: &[u8] = iv.as_ref();
    [iv.to_vec(), body].concat()
}

fn document(
    content_alg: &str,
    key_method: &str,
    wrapped: &[u8],
    ciphertext: &[u8],
    key_info_extra: &str,
) -> String {
    format!(
        "<saml:EncryptedAssertion xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\">\
<xenc:EncryptedData xmlns:xenc=\"http://www.w3.org/2001/04/xmlenc#\" Type=\"http://www.w3.org/2001/04/xmlenc#Element\">\
<xenc:EncryptionMethod Algorithm=\"{content_alg}\"/>\
<ds:KeyInfo xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\">{key_info_extra}<xenc:EncryptedKey>{key_method}\
<xenc:CipherData><xenc:CipherValue>{}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedKey></ds:KeyInfo>\
<xenc:CipherData><xenc:CipherValue>{}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData></saml:EncryptedAssertion>",
        b64(wrapped),
        b64(ciphertext)
    )
}

const MGF1P: &str = "<xenc:EncryptionMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p\"><ds:DigestMethod Algorithm=\"http://www.w3.org/2000/09/xmldsig#sha1\"/></xenc:EncryptionMethod>";
const OAEP11_SHA256: &str = "<xenc:EncryptionMethod Algorithm=\"http://www.w3.org/2009/xmlenc11#rsa-oaep\"><ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/><xenc11:MGF xmlns:xenc11=\"http://www.w3.org/2009/xmlenc11#\" Algorithm=\"http://www.w3.org/2009/xmlenc11#mgf1sha256\"/></xenc:EncryptionMethod>";

fn run(doc: &str, policy: &Policy) -> Result<Vec<u8>, DecryptError> {
    let d = fedgate::xml::parse(doc).unwrap();
    let keys = [
        DecryptionKey::from_pem(OTHER).unwrap(),
        DecryptionKey::from_pem(KEY).unwrap(),
    ];
    decrypt(d.root_element(), &keys, policy)
}

#[test]
fn aes_gcm_with_either_oaep_form_decrypts_with_the_key_that_fits() {
    let session = [3u8; 32];
    for (method, alg) in [
        (MGF1P, &OAEP_SHA1_MGF1SHA1),
        (OAEP11_SHA256, &OAEP_SHA256_MGF1SHA256),
    ] {
        let doc = document(
            ALG_AES256_GCM,
            method,
            &wrap(&session, alg, KEY),
            &gcm(&session, &aead::AES_256_GCM, PLAIN.as_bytes()),
            "",
        );
        assert_eq!(run(&doc, &Policy::default()).unwrap(), PLAIN.as_bytes());
    }
    let s128 = [4u8; 16];
    let doc = document(
        ALG_AES128_GCM,
        MGF1P,
        &wrap(&s128, &OAEP_SHA1_MGF1SHA1, KEY),
        &gcm(&s128, &aead::AES_128_GCM, PLAIN.as_bytes()),
        "",
    );
    assert_eq!(run(&doc, &Policy::default()).unwrap(), PLAIN.as_bytes());
}

#[test]
fn a_tampered_ciphertext_a_swapped_key_and_a_wrong_key_size_all_fail_alike() {
    use fedgate::identity::ErrorCode;
    let session = [3u8; 32];
    let mut ct = gcm(&session, &aead::AES_256_GCM, PLAIN.as_bytes());
    ct[20] ^= 1;
    let tampered = document(
        ALG_AES256_GCM,
        MGF1P,
        &wrap(&session, &OAEP_SHA1_MGF1SHA1, KEY),
        &ct,
        "",
    );
    let fine = gcm(&session, &aead::AES_256_GCM, PLAIN.as_bytes());
    // Wrapped for a key fedgate does not hold.
    let stranger = include_str!("../../fixtures/saml/keys/idp_current_key.pem");
    let swapped = document(
        ALG_AES256_GCM,
        MGF1P,
        &wrap(&session, &OAEP_SHA1_MGF1SHA1, stranger),
        &fine,
        "",
    );
    // A 16-byte key where AES-256 needs 32.
    let short = document(
        ALG_AES256_GCM,
        MGF1P,
        &wrap(&[3u8; 16], &OAEP_SHA1_MGF1SHA1, KEY),
        &fine,
        "",
    );
    for doc in [tampered, swapped, short] {
        let e = run(&doc, &Policy::default()).unwrap_err();
        assert_eq!(e, DecryptError::Failed);
        assert_eq!(e.code(), "saml.decryption_failed");
    }
}

#[test]
fn cbc_is_refused_by_default_and_when_allowed_a_bad_padding_is_the_same_failure() {
    let session = [5u8; 32];
    let wrapped = wrap(&session, &OAEP_SHA1_MGF1SHA1, KEY);
    let ct = cbc(&session, PLAIN.as_bytes());
    let doc = document(ALG_AES256_CBC, MGF1P, &wrapped, &ct, "");
    assert_eq!(run(&doc, &Policy::default()), Err(DecryptError::CbcRefused));
    let allow = Policy { allow_cbc: true };
    assert_eq!(run(&doc, &allow).unwrap(), PLAIN.as_bytes());
    // The classic padding-oracle probe: flip the last byte of the
    // next-to-last block, so the last block's padding byte changes.
    let mut probe = ct.clone();
    let n = probe.len();
    probe[n - 17] ^= 0x5a;
    let doc = document(ALG_AES256_CBC, MGF1P, &wrapped, &probe, "");
    match run(&doc, &allow) {
        Err(DecryptError::Failed) => {}
        // A padding byte that still reads as a valid length: the plaintext
        // is garbage, which the caller's parse and signature refuse.
        Ok(p) => assert_ne!(p, PLAIN.as_bytes()),
        Err(e) => panic!("a padding probe must fail as any other: {e:?}"),
    }
    let truncated = document(ALG_AES256_CBC, MGF1P, &wrapped, &ct[..ct.len() - 3], "");
    assert_eq!(run(&truncated, &allow), Err(DecryptError::Failed));
}

#[test]
fn pkcs1_v15_key_transport_external_keys_and_unknown_algorithms_are_refused() {
    use fedgate::identity::ErrorCode;
    let session = [3u8; 32];
    let wrapped = wrap(&session, &OAEP_SHA1_MGF1SHA1, KEY);
    let ct = gcm(&session, &aead::AES_256_GCM, PLAIN.as_bytes());
    let v15 = "<xenc:EncryptionMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#rsa-1_5\"/>";
    let e = run(
        &document(ALG_AES256_GCM, v15, &wrapped, &ct, ""),
        &Policy::default(),
    )
    .unwrap_err();
    assert_eq!(e.code(), "saml.encryption_algorithm_refused");
    let mixed = OAEP11_SHA256.replace("mgf1sha256", "mgf1sha1");
    let e = run(
        &document(ALG_AES256_GCM, &mixed, &wrapped, &ct, ""),
        &Policy::default(),
    )
    .unwrap_err();
    assert_eq!(e.code(), "saml.encryption_algorithm_refused");
    let retrieval = "<ds:RetrievalMethod URI=\"https://evil.example/key\"/>";
    let e = run(
        &document(ALG_AES256_GCM, MGF1P, &wrapped, &ct, retrieval),
        &Policy::default(),
    )
    .unwrap_err();
    assert_eq!(e.code(), "saml.encryption_malformed");
    let tdes = "http://www.w3.org/2001/04/xmlenc#tripledes-cbc";
    let e = run(
        &document(tdes, MGF1P, &wrapped, &ct, ""),
        &Policy::default(),
    )
    .unwrap_err();
    assert_eq!(e.code(), "saml.encryption_algorithm_refused");
}
