//! Encrypting the Assertion fedgate sends a console that asks for it (the
//! console's `encryption_certificate_file`): AES-256-GCM content with a
//! fresh key and nonce, the key transported by RSA-OAEP (`rsa-oaep-mgf1p`)
//! to the console's certificate, as `saml:EncryptedAssertion` (XML
//! Encryption 1.1). Done after the Assertion is signed, so the console
//! verifies the signature on what it decrypts; a Response signature, when
//! asked for, is made over the ciphertext.

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::rand::SecureRandom;
use aws_lc_rs::rsa::{OaepPublicEncryptingKey, PublicEncryptingKey, OAEP_SHA1_MGF1SHA1};
use base64::Engine;

use crate::trust::certs::TrustedCert;

/// Why fedgate could not encrypt for a console.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncryptError {
    #[error("the console's encryption certificate has no usable RSA key")]
    Key,
    #[error("the system random number generator failed")]
    Random,
    #[error("encryption failed")]
    Failed,
}

/// `<saml:EncryptedAssertion>` holding `plaintext` (a whole Assertion
/// element that declares its own namespaces), for `cert`'s key.
pub fn encrypted_assertion(plaintext: &str, cert: &TrustedCert) -> Result<String, EncryptError> {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let mut key = [0u8; 32];
    let mut nonce = [0u8; 12];
    rng.fill(&mut key).map_err(|_| EncryptError::Random)?;
    rng.fill(&mut nonce).map_err(|_| EncryptError::Random)?;
    let sealing = LessSafeKey::new(
        UnboundKey::new(&aead::AES_256_GCM, &key).map_err(|_| EncryptError::Failed)?,
    );
    let mut body = plaintext.as_bytes().to_vec();
    sealing
        .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut body)
        .map_err(|_| EncryptError::Failed)?;
    let content = [nonce.as_slice(), &body].concat();
    let public = PublicEncryptingKey::from_der(&cert.spki).map_err(|_| EncryptError::Key)?;
    let oaep = OaepPublicEncryptingKey::new(public).map_err(|_| EncryptError::Key)?;
    let mut wrapped = vec![0u8; oaep.ciphertext_size()];
    let wrapped = oaep
        .encrypt(&OAEP_SHA1_MGF1SHA1, &key, &mut wrapped, None)
        .map_err(|_| EncryptError::Failed)?
        .to_vec();
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    Ok(format!(
        "<saml:EncryptedAssertion xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\">\
<xenc:EncryptedData xmlns:xenc=\"http://www.w3.org/2001/04/xmlenc#\" Type=\"http://www.w3.org/2001/04/xmlenc#Element\">\
<xenc:EncryptionMethod Algorithm=\"http://www.w3.org/2009/xmlenc11#aes256-gcm\"/>\
<ds:KeyInfo xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><xenc:EncryptedKey>\
<xenc:EncryptionMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p\"><ds:DigestMethod Algorithm=\"http://www.w3.org/2000/09/xmldsig#sha1\"/></xenc:EncryptionMethod>\
<xenc:CipherData><xenc:CipherValue>{}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedKey></ds:KeyInfo>\
<xenc:CipherData><xenc:CipherValue>{}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedData></saml:EncryptedAssertion>",
        b64(&wrapped),
        b64(&content)
    ))
}
