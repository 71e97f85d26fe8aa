//! Decrypting an `EncryptedAssertion` (XML Encryption 1.0 and 1.1, the
//! subset Entra's "token encryption" and the common SAML IdPs use), strictly.
//!
//! The ACS uses it for a tenant with `[[tenants.encryption_keys]]`
//! (`verify_encrypted` in this module's parent): the Response's signature,
//! when present, is checked before anything is decrypted; the plaintext is
//! parsed and verified as a document of its own.
//!
//! What is accepted, and nothing looser:
//! - one `xenc:EncryptedData` (Type, if given, `#Element`) with its
//!   `CipherValue` inline (no `CipherReference`), its key in an
//!   `xenc:EncryptedKey` inside its `ds:KeyInfo` or beside it in the
//!   EncryptedAssertion (a `RetrievalMethod` only as a same-document
//!   reference to such a sibling, as Okta sends it; no external key);
//! - key transport RSA-OAEP: `xmlenc#rsa-oaep-mgf1p` (SHA-1), or
//!   `xmlenc11#rsa-oaep` with SHA-1/MGF1-SHA-1 or SHA-256/MGF1-SHA-256;
//!   RSA PKCS#1 v1.5 (`rsa-1_5`, Bleichenbacher's oracle) is refused;
//! - content AES-128/256-GCM; AES-128/256-CBC only when the tenant allows
//!   it (`allow_cbc`): CBC is malleable, so by default it is refused with
//!   its own code, and when allowed every failure after the key is
//!   unwrapped (padding, text, size) is the one `saml.decryption_failed`,
//!   so the answer is no padding oracle;
//! - at most [`MAX_ENCRYPTED_KEYS`] EncryptedKeys tried against at most the
//!   configured keys (current and next, for a rollover).
//!
//! Decryption never stands in for a signature: the caller verifies the
//! decrypted Assertion's own signature (or the Response's, made over the
//! ciphertext) on the document it reads the identity from.

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{DecryptingKey, DecryptionContext, UnboundCipherKey};
use aws_lc_rs::rsa::{OaepAlgorithm, OaepPrivateDecryptingKey, PrivateDecryptingKey};

use crate::xml::{self, Node, NS_DS, NS_XENC};

pub const NS_XENC11: &str = "http://www.w3.org/2009/xmlenc11#";
pub const ALG_AES128_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes128-gcm";
pub const ALG_AES256_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes256-gcm";
pub const ALG_AES128_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes128-cbc";
pub const ALG_AES256_CBC: &str = "http://www.w3.org/2001/04/xmlenc#aes256-cbc";
pub const ALG_RSA_OAEP_MGF1P: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";
pub const ALG_RSA_OAEP_11: &str = "http://www.w3.org/2009/xmlenc11#rsa-oaep";
pub const ALG_RSA_1_5: &str = "http://www.w3.org/2001/04/xmlenc#rsa-1_5";
const MGF1_SHA1: &str = "http://www.w3.org/2009/xmlenc11#mgf1sha1";
const MGF1_SHA256: &str = "http://www.w3.org/2009/xmlenc11#mgf1sha256";
const DIGEST_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
const DIGEST_SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
const TYPE_ELEMENT: &str = "http://www.w3.org/2001/04/xmlenc#Element";

/// Most EncryptedKey elements tried (one per recipient key is usual).
pub const MAX_ENCRYPTED_KEYS: usize = 4;

/// A decryption key of fedgate's SP for a tenant (RSA, PKCS#8 PEM).
pub struct DecryptionKey {
    key: OaepPrivateDecryptingKey,
}

impl std::fmt::Debug for DecryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key material.
        f.debug_struct("DecryptionKey").finish_non_exhaustive()
    }
}

impl DecryptionKey {
    /// From an RSA private key in PEM: PKCS#8 (`BEGIN PRIVATE KEY`) or
    /// PKCS#1 (`BEGIN RSA PRIVATE KEY`).
    pub fn from_pem(pem: &str) -> Result<DecryptionKey, DecryptError> {
        let bad = || {
            DecryptError::Key(
                "not an RSA private key of at least 2,048 bits in PEM (PKCS#8 or PKCS#1)".into(),
            )
        };
        let der = match crate::trust::signing::pem_block(pem).ok_or_else(bad)? {
            (label, der) if label == "PRIVATE KEY" => der,
            (label, der) if label == "RSA PRIVATE KEY" => pkcs1_to_pkcs8(&der),
            _ => return Err(bad()),
        };
        let key = PrivateDecryptingKey::from_pkcs8(&der).map_err(|_| bad())?;
        Ok(DecryptionKey {
            key: OaepPrivateDecryptingKey::new(key).map_err(|_| bad())?,
        })
    }
}

/// A PKCS#1 RSAPrivateKey wrapped as a PKCS#8 PrivateKeyInfo (version 0,
/// rsaEncryption with NULL parameters).
fn pkcs1_to_pkcs8(pkcs1: &[u8]) -> Vec<u8> {
    fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let n = body.len();
        if n < 0x80 {
            out.push(n as u8);
        } else {
            let bytes: Vec<u8> = n
                .to_be_bytes()
                .into_iter()
                .skip_while(|b| *b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend_from_slice(body);
        out
    }
    const ALG_ID: [u8; 15] = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut body = vec![0x02, 0x01, 0x00];
    body.extend_from_slice(&ALG_ID);
    body.extend(tlv(0x04, pkcs1));
    tlv(0x30, &body)
}

/// What the tenant allows beyond the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    /// Accept AES-CBC content (malleable: only for an IdP that cannot do GCM).
    pub allow_cbc: bool,
}

/// Why an EncryptedAssertion was not decrypted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecryptError {
    #[error("the EncryptedAssertion is malformed: {0}")]
    Malformed(String),
    #[error("encryption algorithm refused: {0}")]
    Algorithm(String),
    #[error("the assertion is encrypted with AES-CBC, which is refused unless the tenant allows it (allow_cbc): CBC is malleable")]
    CbcRefused,
    /// One error for every failure once decryption starts: no key fits,
    /// the tag, the padding, the plaintext (no oracle).
    #[error("the encrypted assertion could not be decrypted with fedgate's keys for this tenant")]
    Failed,
    #[error("the decryption key cannot be used: {0}")]
    Key(String),
}

impl crate::identity::ErrorCode for DecryptError {
    fn code(&self) -> &'static str {
        match self {
            DecryptError::Malformed(_) => "saml.encryption_malformed",
            DecryptError::Algorithm(_) => "saml.encryption_algorithm_refused",
            DecryptError::CbcRefused => "saml.encryption_cbc_refused",
            DecryptError::Failed => "saml.decryption_failed",
            DecryptError::Key(_) => "saml.decryption_key_invalid",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Content {
    Gcm(&'static aead::Algorithm, usize),
    Cbc(&'static aws_lc_rs::cipher::Algorithm, usize),
}

fn malformed(what: &str) -> DecryptError {
    DecryptError::Malformed(what.to_string())
}

fn only<'a, 'i>(
    node: Node<'a, 'i>,
    ns: &'a str,
    local: &'a str,
) -> Result<Option<Node<'a, 'i>>, DecryptError> {
    xml::only_child(node, ns, local)
        .map_err(|()| DecryptError::Malformed(format!("more than one {local}")))
}

fn algorithm<'a>(node: Node<'a, '_>) -> Result<&'a str, DecryptError> {
    only(node, NS_XENC, "EncryptionMethod")?
        .and_then(|m| m.attribute("Algorithm"))
        .ok_or_else(|| malformed("no EncryptionMethod Algorithm"))
}

fn cipher_value(node: Node) -> Result<Vec<u8>, DecryptError> {
    let data = only(node, NS_XENC, "CipherData")?.ok_or_else(|| malformed("no CipherData"))?;
    if only(data, NS_XENC, "CipherReference")?.is_some() {
        return Err(malformed(
            "a CipherReference (external ciphertext) is refused",
        ));
    }
    let value = only(data, NS_XENC, "CipherValue")?.ok_or_else(|| malformed("no CipherValue"))?;
    xml::base64_decode(&xml::text_content(value))
        .map_err(|_| malformed("CipherValue is not base64"))
}

/// The RSA-OAEP variant an EncryptedKey names.
fn oaep(encrypted_key: Node) -> Result<&'static OaepAlgorithm, DecryptError> {
    use aws_lc_rs::rsa::{OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256};
    let method = only(encrypted_key, NS_XENC, "EncryptionMethod")?
        .ok_or_else(|| malformed("an EncryptedKey has no EncryptionMethod"))?;
    if only(method, NS_XENC, "OAEPparams")?.is_some() {
        return Err(DecryptError::Algorithm(
            "OAEPparams (a label) are not supported".into(),
        ));
    }
    let digest = only(method, NS_DS, "DigestMethod")?
        .and_then(|d| d.attribute("Algorithm"))
        .unwrap_or(DIGEST_SHA1);
    let mgf = only(method, NS_XENC11, "MGF")?
        .and_then(|m| m.attribute("Algorithm"))
        .unwrap_or(MGF1_SHA1);
    match (
        method.attribute("Algorithm").unwrap_or_default(),
        digest,
        mgf,
    ) {
        (ALG_RSA_OAEP_MGF1P, DIGEST_SHA1, MGF1_SHA1)
        | (ALG_RSA_OAEP_11, DIGEST_SHA1, MGF1_SHA1) => Ok(&OAEP_SHA1_MGF1SHA1),
        (ALG_RSA_OAEP_11, DIGEST_SHA256, MGF1_SHA256) => Ok(&OAEP_SHA256_MGF1SHA256),
        (ALG_RSA_1_5, _, _) => Err(DecryptError::Algorithm(
            "RSA PKCS#1 v1.5 key transport (rsa-1_5) is refused: use RSA-OAEP".into(),
        )),
        (alg, d, m) => Err(DecryptError::Algorithm(format!(
            "key transport {alg:?} with digest {d:?} and MGF {m:?}"
        ))),
    }
}

/// Decrypt `encrypted_assertion` (a `saml:EncryptedAssertion`): the
/// plaintext bytes (the Assertion's XML, to be parsed and verified).
pub fn decrypt(
    encrypted_assertion: Node,
    keys: &[DecryptionKey],
    policy: &Policy,
) -> Result<Vec<u8>, DecryptError> {
    let data = only(encrypted_assertion, NS_XENC, "EncryptedData")?
        .ok_or_else(|| malformed("no EncryptedData"))?;
    if data.attribute("Type").is_some_and(|t| t != TYPE_ELEMENT) {
        return Err(malformed("EncryptedData Type is not #Element"));
    }
    let content = match algorithm(data)? {
        ALG_AES128_GCM => Content::Gcm(&aead::AES_128_GCM, 16),
        ALG_AES256_GCM => Content::Gcm(&aead::AES_256_GCM, 32),
        ALG_AES128_CBC | ALG_AES256_CBC if !policy.allow_cbc => {
            return Err(DecryptError::CbcRefused)
        }
        ALG_AES128_CBC => Content::Cbc(&aws_lc_rs::cipher::AES_128, 16),
        ALG_AES256_CBC => Content::Cbc(&aws_lc_rs::cipher::AES_256, 32),
        other => {
            return Err(DecryptError::Algorithm(format!(
                "content encryption {other:?}"
            )))
        }
    };
    // The EncryptedKeys: in the KeyInfo, or beside the EncryptedData.
    let mut encrypted_keys = Vec::new();
    let siblings: Vec<Node> = xml::children(encrypted_assertion, NS_XENC, "EncryptedKey").collect();
    if let Some(info) = only(data, NS_DS, "KeyInfo")? {
        // A RetrievalMethod may only point at an EncryptedKey beside the
        // EncryptedData (as Okta and Shibboleth send it): never elsewhere.
        for r in xml::children(info, NS_DS, "RetrievalMethod") {
            let id = r.attribute("URI").and_then(|u| u.strip_prefix('#'));
            let local = id.is_some_and(|id| siblings.iter().any(|k| k.attribute("Id") == Some(id)));
            let typed = r
                .attribute("Type")
                .is_none_or(|t| t == "http://www.w3.org/2001/04/xmlenc#EncryptedKey");
            if !local || !typed {
                return Err(malformed(
                    "a RetrievalMethod that is not a same-document reference to an EncryptedKey beside the EncryptedData is refused",
                ));
            }
        }
        encrypted_keys.extend(xml::children(info, NS_XENC, "EncryptedKey"));
    }
    encrypted_keys.extend(siblings);
    if encrypted_keys.is_empty() {
        return Err(malformed("no EncryptedKey"));
    }
    if encrypted_keys.len() > MAX_ENCRYPTED_KEYS {
        return Err(malformed("too many EncryptedKey elements"));
    }
    let ciphertext = cipher_value(data)?;
    // Check every EncryptedKey's algorithm before any RSA operation.
    let wrapped: Vec<(&OaepAlgorithm, Vec<u8>)> = encrypted_keys
        .iter()
        .map(|k| Ok((oaep(*k)?, cipher_value(*k)?)))
        .collect::<Result<_, DecryptError>>()?;
    let key_len = match content {
        Content::Gcm(_, n) | Content::Cbc(_, n) => n,
    };
    let mut buf = [0u8; 1024];
    let session = wrapped
        .iter()
        .flat_map(|(alg, ct)| keys.iter().map(move |k| (alg, ct, k)))
        .find_map(|(alg, ct, k)| {
            k.key
                .decrypt(alg, ct, &mut buf, None)
                .ok()
                .filter(|p| p.len() == key_len)
                .map(|p| p.to_vec())
        })
        .ok_or(DecryptError::Failed)?;
    decrypt_content(content, &session, ciphertext)
}

fn decrypt_content(
    content: Content,
    key: &[u8],
    mut data: Vec<u8>,
) -> Result<Vec<u8>, DecryptError> {
    match content {
        Content::Gcm(alg, _) => {
            // XML Encryption 1.1 §5.2.4: IV (12 bytes) || ciphertext || tag.
            if data.len() < 12 + 16 {
                return Err(DecryptError::Failed);
            }
            let mut nonce = [0u8; 12];
            nonce.copy_from_slice(&data[..12]);
            let key =
                LessSafeKey::new(UnboundKey::new(alg, key).map_err(|_| DecryptError::Failed)?);
            let mut body = data.split_off(12);
            let plain = key
                .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut body)
                .map_err(|_| DecryptError::Failed)?;
            let n = plain.len();
            body.truncate(n);
            Ok(body)
        }
        Content::Cbc(alg, _) => {
            // §5.2.1: IV (16 bytes) || ciphertext, ISO 10126 padding (the
            // last byte is the pad's length; the others are arbitrary).
            if data.len() < 32 || data.len() % 16 != 0 {
                return Err(DecryptError::Failed);
            }
            let mut iv = [0u8; 16];
            iv.copy_from_slice(&data[..16]);
            let key = UnboundCipherKey::new(alg, key)
                .and_then(DecryptingKey::cbc)
                .map_err(|_| DecryptError::Failed)?;
            let mut body = data.split_off(16);
            let n = key
                .decrypt(&mut body, DecryptionContext::Iv128(iv.into()))
                .map_err(|_| DecryptError::Failed)?
                .len();
            let pad = usize::from(body[n - 1]);
            if pad == 0 || pad > 16 || pad > n {
                return Err(DecryptError::Failed);
            }
            body.truncate(n - pad);
            Ok(body)
        }
    }
}
