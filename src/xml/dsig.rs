//! fedgate's XML-DSig profile: strict, minimal, enveloped signatures only.
//!
//! What is accepted, and nothing looser (XML-DSig Core §3.2 "Core
//! Validation", narrowed to what SAML 2.0 and metadata need):
//!
//! - the `ds:Signature` is a direct child of the element it signs (the caller
//!   hands both in), with children `SignedInfo`, `SignatureValue`, and an
//!   optional `KeyInfo`; no `Object` (a classic hiding place in wrapping
//!   attacks), nothing else;
//! - `SignedInfo` is `CanonicalizationMethod`, `SignatureMethod` and exactly
//!   one `Reference`; the canonicalization is exclusive C14N without comments;
//! - the `Reference` URI is `#` + the signed element's own `ID`;
//! - its transforms are exactly enveloped-signature then exclusive C14N (the
//!   latter with or without an `InclusiveNamespaces PrefixList`);
//! - signature RSA-SHA256/384/512 or ECDSA-SHA256/384, digest SHA-256/384/512;
//!   SHA-1 (either) only when the caller allows it;
//! - the key comes from the trusted certificates only: a `KeyInfo`
//!   certificate may select one of them, but never adds one.
//!
//! Validation order: profile checks (no crypto), then the signature over the
//! canonical `SignedInfo` (§3.2.2), then the reference digest (§3.2.1) — so
//! nothing that an unauthenticated `SignedInfo` says is used before its
//! signature holds, except to choose the algorithm.

use std::borrow::Cow;

use super::Node;
use aws_lc_rs::{constant_time, digest};

use super::{base64_decode, c14n, is, NS_DS};
use crate::trust::certs::{SigAlg, TrustedCert};

pub const ALG_EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
pub const ALG_ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
pub const ALG_RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
pub const ALG_RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
pub const ALG_RSA_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384";
pub const ALG_RSA_SHA512: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512";
pub const ALG_ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
pub const ALG_ECDSA_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384";
pub const DIGEST_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
pub const DIGEST_SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
pub const DIGEST_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#sha384";
pub const DIGEST_SHA512: &str = "http://www.w3.org/2001/04/xmlenc#sha512";

/// Most names an `InclusiveNamespaces PrefixList` may hold. Entra and
/// xmlsec write none or one (`xs`), signxml a handful; 64 is more than any
/// document can usefully name, and keeps the list a constant next to the
/// subtree it applies to (a 90,000-entry list was issue 15).
pub const MAX_PREFIX_LIST_ENTRIES: usize = 64;
/// Most `X509Certificate` elements one `KeyInfo` may hold (all of them are
/// compared with the trusted certificates). Entra sends one; a chain of
/// four is already more than any IdP sends.
pub const MAX_KEYINFO_CERTIFICATES: usize = 4;

/// What the verifier tolerates beyond the strict default.
#[derive(Debug, Clone, Copy)]
pub struct Profile {
    /// Accept RSA-SHA1 signatures and SHA-1 digests (legacy IdPs only).
    pub allow_sha1: bool,
    /// Smallest RSA modulus accepted (default 2048; never below 1024).
    pub min_rsa_bits: usize,
}

impl Default for Profile {
    fn default() -> Self {
        Profile {
            allow_sha1: false,
            min_rsa_bits: 2048,
        }
    }
}

/// Why a signature was not accepted. The `code_suffix` names the reason
/// after the protocol prefix (`saml.` + `signature_invalid`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DsigError {
    /// The Signature element is not shaped as the profile requires.
    #[error("signature is malformed: {0}")]
    Malformed(String),
    /// The element carries more than one direct ds:Signature child.
    #[error("the element carries more than one ds:Signature")]
    Multiple,
    /// The Reference does not point at the signed element itself.
    #[error("signature reference is not the signed element: {0}")]
    Reference(String),
    /// A transform other than enveloped-signature + exclusive C14N.
    #[error("unsupported transform chain: {0}")]
    Transform(String),
    /// A canonicalization, signature or digest algorithm outside the profile.
    #[error("unsupported algorithm: {0}")]
    Algorithm(String),
    /// SHA-1 was used and the caller does not allow it.
    #[error("SHA-1 is refused ({0}); allow it only for a legacy IdP (--allow-sha1)")]
    Sha1(String),
    /// KeyInfo names a certificate that is not in the trusted set.
    #[error(
        "the signing certificate in KeyInfo (sha256 {0}) is not one of the trusted certificates"
    )]
    CertUntrusted(String),
    /// The only trusted keys that could verify are below the minimum size.
    #[error("the signing key has {0} bits; at least {1} are required")]
    KeyTooWeak(usize, usize),
    /// No trusted key verifies the signature over SignedInfo.
    #[error("the signature does not verify with any trusted certificate{0}")]
    SignatureInvalid(String),
    /// The digest of the signed element does not match the Reference.
    #[error("the signed element was modified after signing (digest mismatch)")]
    DigestMismatch,
    /// A count beyond one of the limits above (`what`, the constant's
    /// `name`, the `limit`): refused before any cryptography.
    #[error("more than {limit} {what} ({name})")]
    LimitExceeded {
        what: &'static str,
        name: &'static str,
        limit: usize,
    },
}

impl DsigError {
    /// The stable reason, to be prefixed by the protocol (`saml.`, `metadata.`).
    pub fn code_suffix(&self) -> &'static str {
        match self {
            DsigError::Malformed(_) => "signature_malformed",
            DsigError::Multiple => "signature_multiple",
            DsigError::Reference(_) => "reference_invalid",
            DsigError::Transform(_) => "transform_unsupported",
            DsigError::Algorithm(_) => "algorithm_unsupported",
            DsigError::Sha1(_) => "sha1_forbidden",
            DsigError::CertUntrusted(_) => "cert_untrusted",
            DsigError::KeyTooWeak(..) => "key_too_weak",
            DsigError::SignatureInvalid(_) => "signature_invalid",
            DsigError::DigestMismatch => "digest_mismatch",
            DsigError::LimitExceeded { .. } => "limit_exceeded",
        }
    }
}

/// A signature that held.
#[derive(Debug, Clone)]
pub struct Verified {
    pub algorithm: SigAlg,
    pub algorithm_uri: &'static str,
    /// Index into the trusted certificates of the one that verified.
    pub cert_index: usize,
}

/// The direct `ds:Signature` child of `element`, if any.
pub fn signature_child<'a, 'i>(element: Node<'a, 'i>) -> Result<Option<Node<'a, 'i>>, DsigError> {
    super::only_child(element, NS_DS, "Signature").map_err(|()| DsigError::Multiple)
}

/// Verify the enveloped signature `sig` (a direct child of `element`) with
/// the trusted certificates.
pub fn verify_enveloped(
    element: Node,
    sig: Node,
    trusted: &[TrustedCert],
    profile: &Profile,
) -> Result<Verified, DsigError> {
    if sig.parent_element().map(|p| p.id()) != Some(element.id()) {
        return Err(DsigError::Malformed(
            "ds:Signature is not a direct child of the signed element".into(),
        ));
    }
    let parts = SignatureParts::read(sig)?;

    // Reference: exactly `#` + the element's own ID.
    let id = element
        .attribute("ID")
        .ok_or_else(|| DsigError::Reference("the signed element has no ID attribute".into()))?;
    let uri = parts.reference.attribute("URI").unwrap_or_default();
    if uri.strip_prefix('#') != Some(id) || id.is_empty() {
        return Err(DsigError::Reference(format!(
            "Reference URI is {uri:?}, expected \"#{id}\""
        )));
    }

    let (sig_alg, sig_uri) = signature_algorithm(parts.signature_method)?;
    let digest_alg = digest_algorithm(parts.digest_method)?;
    if sig_alg.is_sha1() && !profile.allow_sha1 {
        return Err(DsigError::Sha1(sig_uri.into()));
    }
    if digest_alg.1 == DIGEST_SHA1 && !profile.allow_sha1 {
        return Err(DsigError::Sha1(DIGEST_SHA1.into()));
    }

    let digest_value = base64_decode(&super::text_content(parts.digest_value))
        .map_err(|e| DsigError::Malformed(format!("DigestValue is not base64: {e}")))?;
    let signature_value = base64_decode(&super::text_content(parts.signature_value))
        .map_err(|e| DsigError::Malformed(format!("SignatureValue is not base64: {e}")))?;

    // Key selection: KeyInfo may only choose among trusted certificates.
    let mut candidates: Vec<usize> = match parts.keyinfo_cert_texts()? {
        named if named.is_empty() => (0..trusted.len()).collect(),
        named => select_named(&named, trusted)?,
    };
    candidates.retain(|i| trusted[*i].supports(sig_alg));
    let strong: Vec<usize> = candidates
        .iter()
        .copied()
        .filter(|i| trusted[*i].rsa_bits() == 0 || trusted[*i].rsa_bits() >= profile.min_rsa_bits)
        .collect();
    if strong.is_empty() {
        if let Some(weak) = candidates.first() {
            return Err(DsigError::KeyTooWeak(
                trusted[*weak].rsa_bits(),
                profile.min_rsa_bits,
            ));
        }
        return Err(DsigError::SignatureInvalid(format!(
            " (no trusted certificate has a key for {sig_uri})"
        )));
    }

    // §3.2.2: the signature over the canonical SignedInfo.
    let signed_info = c14n::canonicalize(parts.signed_info, None, &parts.signed_info_prefixes);
    let cert_index = strong
        .into_iter()
        .find(|i| trusted[*i].verify(sig_alg, &signed_info, &signature_value) == Some(true))
        .ok_or_else(|| DsigError::SignatureInvalid(String::new()))?;

    // §3.2.1: the digest of the referenced element, minus this signature.
    let canonical = c14n::canonicalize(element, Some(sig.id()), &parts.transform_prefixes);
    let actual = digest::digest(digest_alg.0, &canonical);
    if constant_time::verify_slices_are_equal(actual.as_ref(), &digest_value).is_err() {
        return Err(DsigError::DigestMismatch);
    }
    Ok(Verified {
        algorithm: sig_alg,
        algorithm_uri: sig_uri,
        cert_index,
    })
}

/// The parts of a Signature, checked against the profile's shape.
struct SignatureParts<'a, 'i> {
    signed_info: Node<'a, 'i>,
    signature_method: Node<'a, 'i>,
    reference: Node<'a, 'i>,
    digest_method: Node<'a, 'i>,
    digest_value: Node<'a, 'i>,
    signature_value: Node<'a, 'i>,
    key_info: Option<Node<'a, 'i>>,
    signed_info_prefixes: Vec<&'a str>,
    transform_prefixes: Vec<&'a str>,
}

impl<'a, 'i> SignatureParts<'a, 'i> {
    fn read(sig: Node<'a, 'i>) -> Result<Self, DsigError> {
        let kids = element_children(sig)?;
        let (signed_info, signature_value, key_info) = match kids.as_slice() {
            [si, sv] => (*si, *sv, None),
            [si, sv, ki] => (*si, *sv, Some(*ki)),
            _ => {
                return Err(DsigError::Malformed(
                    "ds:Signature must hold SignedInfo, SignatureValue and at most a KeyInfo"
                        .into(),
                ))
            }
        };
        expect(signed_info, "SignedInfo")?;
        expect(signature_value, "SignatureValue")?;
        if let Some(ki) = key_info {
            expect(ki, "KeyInfo")?;
        }

        let si_kids = element_children(signed_info)?;
        let refs = si_kids.iter().filter(|n| is(n, NS_DS, "Reference")).count();
        if refs != 1 {
            return Err(DsigError::Reference(format!(
                "SignedInfo has {refs} Reference elements; exactly one is allowed"
            )));
        }
        let [c14n_method, signature_method, reference] = si_kids.as_slice() else {
            return Err(DsigError::Malformed(
                "SignedInfo must hold CanonicalizationMethod, SignatureMethod, Reference".into(),
            ));
        };
        expect(*c14n_method, "CanonicalizationMethod")?;
        expect(*signature_method, "SignatureMethod")?;
        expect(*reference, "Reference")?;
        if c14n_method.attribute("Algorithm") != Some(ALG_EXC_C14N) {
            return Err(DsigError::Algorithm(format!(
                "CanonicalizationMethod {:?}; only exclusive C14N without comments is accepted",
                c14n_method.attribute("Algorithm").unwrap_or_default()
            )));
        }
        check_c14n_children(*c14n_method)?;
        let signed_info_prefixes = inclusive_prefixes(*c14n_method)?;
        if !element_children(*signature_method)?.is_empty() {
            return Err(DsigError::Algorithm(
                "SignatureMethod parameters (e.g. HMACOutputLength) are not accepted".into(),
            ));
        }

        let ref_kids = element_children(*reference)?;
        let [transforms, digest_method, digest_value] = ref_kids.as_slice() else {
            return Err(DsigError::Transform(
                "Reference must hold Transforms, DigestMethod, DigestValue".into(),
            ));
        };
        expect(*transforms, "Transforms").map_err(|_| {
            DsigError::Transform(
                "the Reference has no Transforms (enveloped-signature is required)".into(),
            )
        })?;
        expect(*digest_method, "DigestMethod")?;
        expect(*digest_value, "DigestValue")?;
        let transform_prefixes = check_transforms(*transforms)?;
        Ok(SignatureParts {
            signed_info,
            signature_method: *signature_method,
            reference: *reference,
            digest_method: *digest_method,
            digest_value: *digest_value,
            signature_value,
            key_info,
            signed_info_prefixes,
            transform_prefixes,
        })
    }

    /// The base64 texts of the certificates named in
    /// `KeyInfo/X509Data/X509Certificate`.
    fn keyinfo_cert_texts(&self) -> Result<Vec<Cow<'a, str>>, DsigError> {
        let Some(ki) = self.key_info else {
            return Ok(Vec::new());
        };
        let certs = super::children(ki, NS_DS, "X509Data")
            .flat_map(|data| super::children(data, NS_DS, "X509Certificate"));
        let mut out = Vec::with_capacity(1);
        for cert in certs {
            if out.len() == MAX_KEYINFO_CERTIFICATES {
                return Err(DsigError::LimitExceeded {
                    what: "X509Certificate elements in one KeyInfo",
                    name: "MAX_KEYINFO_CERTIFICATES",
                    limit: MAX_KEYINFO_CERTIFICATES,
                });
            }
            out.push(super::text_content(cert));
        }
        Ok(out)
    }
}

/// The trusted certificates that `KeyInfo` names (by index): KeyInfo may
/// choose among them, never add one. The usual case, the IdP's certificate
/// as its own metadata encodes it, is matched on the base64 text; anything
/// else is decoded and compared as DER.
fn select_named(named: &[Cow<str>], trusted: &[TrustedCert]) -> Result<Vec<usize>, DsigError> {
    let mut picked: Vec<usize> = Vec::with_capacity(1);
    let mut untrusted: Vec<Vec<u8>> = Vec::new();
    // Every trusted certificate `is` names (the same one may be listed twice).
    let mut pick = |is: &dyn Fn(&TrustedCert) -> bool| {
        let mut matched = false;
        for (i, cert) in trusted.iter().enumerate() {
            if is(cert) {
                matched = true;
                if !picked.contains(&i) {
                    picked.push(i);
                }
            }
        }
        matched
    };
    for text in named {
        if pick(&|c| c.is_base64_of(text)) {
            continue;
        }
        let der = base64_decode(text)
            .map_err(|e| DsigError::Malformed(format!("X509Certificate is not base64: {e}")))?;
        if !pick(&|c| c.der == der) {
            untrusted.push(der);
        }
    }
    if picked.is_empty() {
        let thumb = untrusted
            .first()
            .map(|d| crate::util::hex(digest::digest(&digest::SHA256, d).as_ref()))
            .unwrap_or_default();
        return Err(DsigError::CertUntrusted(thumb));
    }
    picked.sort_unstable();
    Ok(picked)
}

/// Element children, refusing any non-whitespace text between them.
fn element_children<'a, 'i>(node: Node<'a, 'i>) -> Result<Vec<Node<'a, 'i>>, DsigError> {
    let mut out = Vec::new();
    for c in node.children() {
        if c.is_element() {
            out.push(c);
        } else if c.is_text() && !c.text().unwrap_or_default().trim().is_empty() {
            return Err(DsigError::Malformed(format!(
                "unexpected text inside ds:{}",
                node.tag_name().name()
            )));
        }
    }
    Ok(out)
}

fn expect(node: Node, local: &str) -> Result<(), DsigError> {
    if is(&node, NS_DS, local) {
        Ok(())
    } else {
        Err(DsigError::Malformed(format!(
            "expected ds:{local}, found {}",
            node.tag_name().name()
        )))
    }
}

fn check_transforms<'a>(transforms: Node<'a, '_>) -> Result<Vec<&'a str>, DsigError> {
    let list = element_children(transforms)?;
    let algs: Vec<&str> = list
        .iter()
        .map(|t| {
            if is(t, NS_DS, "Transform") {
                t.attribute("Algorithm").unwrap_or_default()
            } else {
                "(not a ds:Transform)"
            }
        })
        .collect();
    if algs != [ALG_ENVELOPED, ALG_EXC_C14N] {
        return Err(DsigError::Transform(format!(
            "[{}]; exactly [enveloped-signature, exclusive C14N] is accepted",
            algs.join(", ")
        )));
    }
    let [enveloped, exc] = list.as_slice() else {
        return Err(DsigError::Transform("two transforms expected".into()));
    };
    if !element_children(*enveloped)?.is_empty() {
        return Err(DsigError::Transform(
            "the enveloped-signature transform takes no parameters".into(),
        ));
    }
    check_c14n_children(*exc)?;
    inclusive_prefixes(*exc)
}

/// An exclusive C14N method may carry one `InclusiveNamespaces`, nothing else.
fn check_c14n_children(node: Node) -> Result<(), DsigError> {
    let kids = element_children(node)?;
    let ok = match kids.as_slice() {
        [] => true,
        [one] => {
            one.tag_name().name() == "InclusiveNamespaces"
                && one.tag_name().namespace() == Some(ALG_EXC_C14N)
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(DsigError::Transform(
            "exclusive C14N takes only an InclusiveNamespaces parameter".into(),
        ))
    }
}

/// The PrefixList of the method's `InclusiveNamespaces`, at most
/// [`MAX_PREFIX_LIST_ENTRIES`] names (counted as written, repeats included).
fn inclusive_prefixes<'a>(node: Node<'a, '_>) -> Result<Vec<&'a str>, DsigError> {
    let list = node
        .children()
        .find(|c| c.is_element() && c.tag_name().name() == "InclusiveNamespaces")
        .and_then(|n| n.attribute("PrefixList"))
        .unwrap_or_default();
    let prefixes: Vec<&str> = list
        .split_ascii_whitespace()
        .take(MAX_PREFIX_LIST_ENTRIES + 1)
        .collect();
    if prefixes.len() > MAX_PREFIX_LIST_ENTRIES {
        return Err(prefix_list_too_long());
    }
    Ok(prefixes)
}

/// The error for a PrefixList of more than [`MAX_PREFIX_LIST_ENTRIES`] names.
pub fn prefix_list_too_long() -> DsigError {
    DsigError::LimitExceeded {
        what: "names in an InclusiveNamespaces PrefixList",
        name: "MAX_PREFIX_LIST_ENTRIES",
        limit: MAX_PREFIX_LIST_ENTRIES,
    }
}

fn signature_algorithm(method: Node) -> Result<(SigAlg, &'static str), DsigError> {
    let uri = method.attribute("Algorithm").unwrap_or_default();
    signature_algorithm_uri(uri)
        .ok_or_else(|| DsigError::Algorithm(format!("SignatureMethod {uri:?}")))
}

/// The signature algorithm a URI names (also the HTTP-Redirect binding's
/// `SigAlg`), within the profile's list.
pub fn signature_algorithm_uri(uri: &str) -> Option<(SigAlg, &'static str)> {
    Some(match uri {
        ALG_RSA_SHA1 => (SigAlg::RsaSha1, ALG_RSA_SHA1),
        ALG_RSA_SHA256 => (SigAlg::RsaSha256, ALG_RSA_SHA256),
        ALG_RSA_SHA384 => (SigAlg::RsaSha384, ALG_RSA_SHA384),
        ALG_RSA_SHA512 => (SigAlg::RsaSha512, ALG_RSA_SHA512),
        ALG_ECDSA_SHA256 => (SigAlg::EcdsaSha256, ALG_ECDSA_SHA256),
        ALG_ECDSA_SHA384 => (SigAlg::EcdsaSha384, ALG_ECDSA_SHA384),
        _ => return None,
    })
}

fn digest_algorithm(method: Node) -> Result<(&'static digest::Algorithm, &'static str), DsigError> {
    let uri = method.attribute("Algorithm").unwrap_or_default();
    Ok(match uri {
        DIGEST_SHA1 => (&digest::SHA1_FOR_LEGACY_USE_ONLY, DIGEST_SHA1),
        DIGEST_SHA256 => (&digest::SHA256, DIGEST_SHA256),
        DIGEST_SHA384 => (&digest::SHA384, DIGEST_SHA384),
        DIGEST_SHA512 => (&digest::SHA512, DIGEST_SHA512),
        other => return Err(DsigError::Algorithm(format!("DigestMethod {other:?}"))),
    })
}

/// Why fedgate could not sign a document.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    #[error(transparent)]
    Xml(#[from] super::XmlError),
    /// No element, or several, carry that ID.
    #[error("no single element with ID {0:?}")]
    NoElement(String),
    /// The element is empty or already signed.
    #[error(
        "the element with ID {0:?} cannot take an enveloped signature (empty or already signed)"
    )]
    NotSignable(String),
    #[error(transparent)]
    Key(#[from] crate::trust::signing::SigningError),
}

/// Sign the element whose `ID` is `id` with an enveloped signature in
/// fedgate's profile (exclusive C14N, RSA-SHA256 or ECDSA-SHA256, SHA-256
/// digest, the certificate in KeyInfo). The Signature goes right after the
/// element's `saml:Issuer` (the schema's place for it), or first.
///
/// The digest and the SignedInfo are canonicalized by the same code the
/// verifier uses, on the parsed document, so what fedgate signs is what a
/// verifier (fedgate's, or libxmlsec's) canonicalizes.
pub fn sign_enveloped(
    xml_text: &str,
    id: &str,
    key: &crate::trust::signing::SigningKey,
) -> Result<String, SignError> {
    sign_enveloped_as(xml_text, id, key, key.algorithm())
}

/// [`sign_enveloped`] with the signature algorithm `alg` (RSA-SHA256/384/512
/// with an RSA key, ECDSA-SHA256 with an EC key), and the digest of the same
/// strength (SHA-256/384/512).
pub fn sign_enveloped_as(
    xml_text: &str,
    id: &str,
    key: &crate::trust::signing::SigningKey,
    alg: SigAlg,
) -> Result<String, SignError> {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);

    let doc = super::parse(xml_text)?;
    let mut matches = doc
        .descendants()
        .filter(|n| n.is_element() && n.attribute("ID") == Some(id));
    let element = matches
        .next()
        .ok_or_else(|| SignError::NoElement(id.to_string()))?;
    if matches.next().is_some() {
        return Err(SignError::NoElement(id.to_string()));
    }
    if signature_child(element).ok().flatten().is_some() {
        return Err(SignError::NotSignable(id.to_string()));
    }
    let insert_at = match super::children(element, super::NS_SAML, "Issuer").next() {
        Some(issuer) => issuer.range().end,
        None => element
            .first_child()
            .map(|c| c.range().start)
            .ok_or_else(|| SignError::NotSignable(id.to_string()))?,
    };
    let (sig_alg, digest_alg, digest_uri) = match alg {
        SigAlg::EcdsaSha256 => (ALG_ECDSA_SHA256, &digest::SHA256, DIGEST_SHA256),
        SigAlg::RsaSha256 => (ALG_RSA_SHA256, &digest::SHA256, DIGEST_SHA256),
        SigAlg::RsaSha384 => (ALG_RSA_SHA384, &digest::SHA384, DIGEST_SHA384),
        SigAlg::RsaSha512 => (ALG_RSA_SHA512, &digest::SHA512, DIGEST_SHA512),
        other => {
            return Err(SignError::Key(
                crate::trust::signing::SigningError::AlgorithmUnsupported(other),
            ))
        }
    };
    let digest = digest::digest(digest_alg, &c14n::canonicalize(element, None, &[]));
    const PLACEHOLDER: &str = "fedgate-signature-value";
    let signature = format!(
        "<ds:Signature xmlns:ds=\"{NS_DS}\"><ds:SignedInfo>\
         <ds:CanonicalizationMethod Algorithm=\"{ALG_EXC_C14N}\"/>\
         <ds:SignatureMethod Algorithm=\"{sig_alg}\"/>\
         <ds:Reference URI=\"#{}\"><ds:Transforms>\
         <ds:Transform Algorithm=\"{ALG_ENVELOPED}\"/>\
         <ds:Transform Algorithm=\"{ALG_EXC_C14N}\"/></ds:Transforms>\
         <ds:DigestMethod Algorithm=\"{digest_uri}\"/>\
         <ds:DigestValue>{}</ds:DigestValue></ds:Reference></ds:SignedInfo>\
         <ds:SignatureValue>{PLACEHOLDER}</ds:SignatureValue>\
         <ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>\
         </ds:Signature>",
        super::escape(id),
        b64(digest.as_ref()),
        b64(&key.cert.der),
    );
    let mut with_sig = String::with_capacity(xml_text.len() + signature.len() + 512);
    with_sig.push_str(&xml_text[..insert_at]);
    with_sig.push_str(&signature);
    with_sig.push_str(&xml_text[insert_at..]);

    // Canonicalize SignedInfo where it now stands, with its inherited context.
    let signed_info_c14n = {
        let doc = super::parse(&with_sig)?;
        let si = doc
            .descendants()
            .find(|n| {
                is(n, NS_DS, "SignedInfo")
                    && n.ancestors().nth(2).and_then(|e| e.attribute("ID")) == Some(id)
            })
            .ok_or_else(|| SignError::NoElement(id.to_string()))?;
        c14n::canonicalize(si, None, &[])
    };
    let value = key.sign_as(alg, &signed_info_c14n)?;
    let placeholder_at = insert_at
        + signature
            .find(PLACEHOLDER)
            .ok_or_else(|| SignError::NotSignable(id.to_string()))?;
    with_sig.replace_range(
        placeholder_at..placeholder_at + PLACEHOLDER.len(),
        &b64(&value),
    );
    Ok(with_sig)
}
