//! Inbound SAML 2.0: verify a Response from Entra ID (or any SAML 2.0 IdP)
//! and turn it into an [`Identity`].
//!
//! The checks follow SAML Core §2–3 and the Web Browser SSO profile's
//! processing rules (SAML Profiles §4.1.4.3), quoted where they are applied.
//! The one rule that matters most is fedgate's own: **every value in the
//! Identity is read from the element whose signature was verified** — the
//! very parsed nodes the digest covered. Nothing is looked up again by
//! ID or path after the signature check, and the document must hold exactly
//! one Assertion, a direct child of the Response, so there is no second
//! candidate for a wrapping attack to slip in.

pub mod authn_request;
pub mod decode;
pub mod limits;
pub mod sp_metadata;

use std::borrow::Cow;
use std::collections::HashSet;

use time::{Duration, OffsetDateTime};

use crate::identity::{ErrorCode, Identity, PrincipalKind, Source, Verification};
use crate::trust::metadata::IdpMetadata;
use crate::xml::dsig::{self, DsigError, Profile};
use crate::xml::{
    self, children, is, only_child, Document, Node, XmlError, NS_DS, NS_SAML, NS_SAMLP,
};

/// Default largest decoded SAMLResponse accepted.
pub const DEFAULT_MAX_BYTES: usize = 512 * 1024;
/// Default allowed clock skew.
pub const DEFAULT_SKEW: Duration = Duration::seconds(180);

const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const CM_BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";

mod checks;
/// Entra's claim names in SAML attribute form, and a tenant's own map.
pub mod claims;
pub mod decrypt;
mod error;
mod scan;
use checks::*;
pub use error::SamlError;
use scan::*;

/// What the service provider (fedgate's side of one tenant) expects.
#[derive(Debug, Clone)]
pub struct SamlSettings {
    /// fedgate's SP entity id for this tenant (Entra's "Identifier").
    pub sp_entity_id: String,
    /// fedgate's ACS URL for this tenant (Entra's "Reply URL").
    pub acs_url: String,
    pub skew: Duration,
    pub max_bytes: usize,
    pub profile: Profile,
    /// The AuthnRequest ID when the login was started here (SP-initiated).
    /// `None` accepts unsolicited (IdP-initiated) responses, including those
    /// carrying an InResponseTo fedgate cannot check (Entra's "Test SSO").
    pub expected_in_response_to: Option<String>,
    /// Which attributes carry what (the tenant's claim map; Entra's names
    /// by default).
    pub claims: std::sync::Arc<claims::ClaimNames>,
    /// The tenant's decryption keys (current and next) and what it allows:
    /// without them an EncryptedAssertion is refused.
    pub decryption: Option<std::sync::Arc<Decryption>>,
}

/// fedgate's SP decryption keys for one tenant.
#[derive(Debug)]
pub struct Decryption {
    pub keys: Vec<decrypt::DecryptionKey>,
    pub policy: decrypt::Policy,
}

impl SamlSettings {
    pub fn new(sp_entity_id: impl Into<String>, acs_url: impl Into<String>) -> Self {
        SamlSettings {
            sp_entity_id: sp_entity_id.into(),
            acs_url: acs_url.into(),
            skew: DEFAULT_SKEW,
            max_bytes: DEFAULT_MAX_BYTES,
            profile: Profile::default(),
            expected_in_response_to: None,
            claims: Default::default(),
            decryption: None,
        }
    }
}

/// Turn what was posted (the base64 `SAMLResponse` form value, or raw XML)
/// into XML text, refusing oversized input before decoding or parsing it.
pub fn decode_input(input: &[u8], max_bytes: usize) -> Result<String, SamlError> {
    let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
    let trimmed = input.trim_ascii();
    if trimmed.first() == Some(&b'<') {
        if trimmed.len() > max_bytes {
            return Err(SamlError::TooLarge(trimmed.len(), max_bytes));
        }
        return Ok(xml::utf8(trimmed)?.to_string());
    }
    // Base64 inflates by 4/3: refuse what cannot decode under the limit.
    let encoded_limit = max_bytes / 3 * 4 + 4 + max_bytes / 38; // plus line breaks
    if trimmed.len() > encoded_limit {
        return Err(SamlError::TooLarge(trimmed.len() / 4 * 3, max_bytes));
    }
    let text = std::str::from_utf8(trimmed).map_err(|_| SamlError::Base64("not ASCII".into()))?;
    let bytes = xml::base64_decode(text).map_err(|e| SamlError::Base64(e.to_string()))?;
    if bytes.len() > max_bytes {
        return Err(SamlError::TooLarge(bytes.len(), max_bytes));
    }
    Ok(xml::utf8_owned(bytes)?)
}

/// Verify a SAML Response and return the Identity it proves.
pub fn verify(
    input: &[u8],
    idp: &IdpMetadata,
    settings: &SamlSettings,
    now: OffsetDateTime,
) -> Result<Identity, SamlError> {
    let text = decode_input(input, settings.max_bytes)?;
    let doc = xml::parse_message(&text)?;
    verify_document(&doc, idp, settings, now)
}

/// Verify an already-parsed Response.
pub fn verify_document(
    doc: &Document,
    idp: &IdpMetadata,
    settings: &SamlSettings,
    now: OffsetDateTime,
) -> Result<Identity, SamlError> {
    verify_parsed(doc, idp, settings, now).map(|v| v.identity)
}

/// A verified Response: the Identity, and the latest time at which any part
/// of the assertion could still be accepted (the replay cache must remember
/// its ID until then).
#[derive(Debug)]
pub struct Verified {
    pub identity: Identity,
    /// The latest NotOnOrAfter of every SubjectConfirmationData and of the
    /// Conditions (skew not included).
    pub acceptable_until: OffsetDateTime,
}

/// [`verify`], with the assertion's acceptance window (for the ACS's
/// replay cache). Takes the posted value by value and lets it go once it
/// is decoded, so a large response is not held twice while it is parsed.
pub fn verify_with_window(
    input: Vec<u8>,
    idp: &IdpMetadata,
    settings: &SamlSettings,
    now: OffsetDateTime,
) -> Result<Verified, SamlError> {
    let text = decode_input(&input, settings.max_bytes)?;
    drop(input);
    let doc = xml::parse_message(&text)?;
    verify_parsed(&doc, idp, settings, now)
}

/// The longest a replay-cache entry is kept: an IdP whose assertions stay
/// acceptable longer than this (Entra's last 70 minutes) would outlive the
/// cache, so they are refused (`saml.validity_too_long`) rather than made
/// replayable after a day.
pub const MAX_REPLAY_WINDOW: Duration = Duration::hours(24);
/// The shortest: clocks of several instances sharing one store may differ
/// by this much, and an entry never expires before the assertion does on
/// the slowest of them.
pub const REPLAY_MARGIN: Duration = Duration::minutes(5);

/// Until when the replay cache must remember an assertion accepted at
/// `now`: its latest acceptance time plus the skew (fedgate accepts while
/// `now - skew < NotOnOrAfter`) plus [`REPLAY_MARGIN`]; never less than
/// `now + REPLAY_MARGIN`. `Err` (with the time) when that is past
/// `now + MAX_REPLAY_WINDOW`: the cache could not remember it long enough.
pub fn replay_until(
    acceptable_until: OffsetDateTime,
    skew: Duration,
    now: OffsetDateTime,
) -> Result<OffsetDateTime, OffsetDateTime> {
    let until = (acceptable_until + skew + REPLAY_MARGIN).max(now + REPLAY_MARGIN);
    if until > now + MAX_REPLAY_WINDOW + REPLAY_MARGIN {
        return Err(acceptable_until);
    }
    Ok(until)
}

/// The latest NotOnOrAfter of every SubjectConfirmationData (of any
/// confirmation, not only the one that was checked: another one may accept
/// the same assertion later) and of the Conditions. Unreadable times are
/// skipped: a confirmation with one is never accepted.
fn latest_acceptance(
    subject: Node,
    conditions_end: Option<OffsetDateTime>,
    checked: OffsetDateTime,
) -> OffsetDateTime {
    children(subject, NS_SAML, "SubjectConfirmation")
        .flat_map(|sc| children(sc, NS_SAML, "SubjectConfirmationData"))
        .filter_map(|scd| timestamp(scd, "NotOnOrAfter").ok().flatten())
        .chain(conditions_end)
        .fold(checked, OffsetDateTime::max)
}

fn verify_parsed(
    doc: &Document,
    idp: &IdpMetadata,
    settings: &SamlSettings,
    now: OffsetDateTime,
) -> Result<Verified, SamlError> {
    let response = doc.root_element();
    if !is(&response, NS_SAMLP, "Response") {
        return Err(SamlError::NotAResponse(
            response.tag_name().name().to_string(),
        ));
    }
    // SAML Core §3.2.2: Version is required; only 2.0 is understood.
    let version = response.attribute("Version").unwrap_or_default();
    if version != "2.0" {
        return Err(SamlError::VersionUnsupported(version.to_string()));
    }

    // Core §3.2.2.2: anything but Success means no assertion is to be used.
    check_status(response)?;

    // One pass over the document: every ID must be unique (an ID that
    // resolves to two elements is the root of most wrapping attacks), no
    // EncryptedAssertion, and exactly one Assertion, a direct child of the
    // Response; and every per-document limit (`limits`) holds.
    let scan = scan_document(doc)?;
    if scan.encrypted {
        return verify_encrypted(doc, response, &scan, idp, settings, now);
    }
    let assertions = scan.assertions;
    let assertion = match assertions.as_slice() {
        [] => return Err(SamlError::NoAssertion),
        [one] => *one,
        many => return Err(SamlError::MultipleAssertions(many.len())),
    };
    if assertion.parent_element().map(|p| p.id()) != Some(response.id()) {
        let parent = assertion
            .parent_element()
            .map(|p| p.tag_name().name().to_string())
            .unwrap_or_default();
        return Err(SamlError::AssertionMisplaced(parent));
    }

    let response_signature = check_signature("Response", response, idp, settings)?;
    verify_assertion(response, response_signature, assertion, idp, settings, now)
}

/// The enveloped signature of `node`, if it has one, checked against the
/// IdP's certificates.
fn check_signature(
    element: &'static str,
    node: Node,
    idp: &IdpMetadata,
    settings: &SamlSettings,
) -> Result<Option<dsig::Verified>, SamlError> {
    let sig_err = |source| SamlError::Signature { element, source };
    let Some(sig) = dsig::signature_child(node).map_err(sig_err)? else {
        return Ok(None);
    };
    dsig::verify_enveloped(node, sig, &idp.signing_certs, &settings.profile)
        .map(Some)
        .map_err(sig_err)
}

/// A Response whose Assertion is encrypted: exactly one EncryptedAssertion,
/// a direct child of the Response, and no plaintext Assertion. A Response
/// signature, when there is one, is checked first (it covers the
/// ciphertext, so no altered ciphertext is ever decrypted); the plaintext
/// is parsed as a document of its own, scanned with the same limits, and
/// its Assertion is then verified and read exactly as a plaintext one:
/// decryption never stands in for a signature, and what was verified is
/// what is read.
fn verify_encrypted(
    doc: &Document,
    response: Node,
    scan: &Scan,
    idp: &IdpMetadata,
    settings: &SamlSettings,
    now: OffsetDateTime,
) -> Result<Verified, SamlError> {
    let Some(dec) = settings.decryption.as_deref() else {
        return Err(SamlError::EncryptedAssertion);
    };
    if !scan.assertions.is_empty() {
        return Err(SamlError::MultipleAssertions(scan.assertions.len() + 1));
    }
    let all: Vec<Node> = doc
        .descendants()
        .filter(|n| is(n, NS_SAML, "EncryptedAssertion"))
        .collect();
    let encrypted = match all.as_slice() {
        [one] => *one,
        many => return Err(SamlError::MultipleAssertions(many.len())),
    };
    if encrypted.parent_element().map(|p| p.id()) != Some(response.id()) {
        return Err(SamlError::AssertionMisplaced("not the Response".into()));
    }
    let response_signature = check_signature("Response", response, idp, settings)?;
    let failed = || SamlError::Decrypt(decrypt::DecryptError::Failed);
    let plain = decrypt::decrypt(encrypted, &dec.keys, &dec.policy)?;
    if plain.len() > settings.max_bytes {
        return Err(SamlError::TooLarge(plain.len(), settings.max_bytes));
    }
    let text = String::from_utf8(plain).map_err(|_| failed())?;
    let inner = xml::parse_message(&text).map_err(|_| failed())?;
    let inner_scan = scan_document(&inner)?;
    if inner_scan.encrypted {
        return Err(SamlError::Malformed(
            "an EncryptedAssertion inside an EncryptedAssertion".into(),
        ));
    }
    let assertion = inner.root_element();
    if !is(&assertion, NS_SAML, "Assertion") || inner_scan.assertions.len() != 1 {
        return Err(SamlError::Malformed(
            "the EncryptedAssertion does not hold exactly one Assertion".into(),
        ));
    }
    let mut verified =
        verify_assertion(response, response_signature, assertion, idp, settings, now)?;
    verified.identity.verification.decrypted = true;
    Ok(verified)
}

/// The Assertion's signature and every check of an Assertion and its
/// Response (the Assertion may come from a decrypted document of its own);
/// `response_signature` is the Response's, already checked.
fn verify_assertion(
    response: Node,
    response_signature: Option<dsig::Verified>,
    assertion: Node,
    idp: &IdpMetadata,
    settings: &SamlSettings,
    now: OffsetDateTime,
) -> Result<Verified, SamlError> {
    // Signatures: the Response, the Assertion, or both. Each one present must hold.
    let assertion_signature = check_signature("Assertion", assertion, idp, settings)?;
    let mut verification = Verification::default();
    for (element, v) in [
        ("Response", response_signature),
        ("Assertion", assertion_signature),
    ] {
        let Some(v) = v else { continue };
        verification.signed.push(element.to_ascii_lowercase());
        verification.algorithm = v.algorithm_uri.to_string();
        verification.key = idp
            .signing_certs
            .get(v.cert_index)
            .map(|c| c.thumbprint_sha256.clone())
            .unwrap_or_default();
    }
    if verification.signed.is_empty() {
        return Err(SamlError::Unsigned);
    }
    // From here on, `assertion` is signed: by its own signature, or as part of
    // the signed Response that contains it. Everything below reads from it.

    // Issuer: Profiles §4.1.4.2 — the Assertion's Issuer MUST be the IdP; the
    // Response's, when present, too.
    let expected_issuer = idp.entity_id.as_str();
    if let Some(found) = issuer(response)? {
        if found != expected_issuer {
            return Err(SamlError::IssuerMismatch {
                element: "Response",
                found,
                expected: expected_issuer.into(),
            });
        }
    }
    let assertion_issuer = issuer(assertion)?.ok_or(SamlError::IssuerMissing("Assertion"))?;
    if assertion_issuer != expected_issuer {
        return Err(SamlError::IssuerMismatch {
            element: "Assertion",
            found: assertion_issuer,
            expected: expected_issuer.into(),
        });
    }
    let assertion_version = assertion.attribute("Version").unwrap_or_default();
    if assertion_version != "2.0" {
        return Err(SamlError::VersionUnsupported(assertion_version.to_string()));
    }
    // Core §2.3.3: the Assertion's ID is required; it is also the replay key.
    if assertion
        .attribute("ID")
        .is_none_or(|id| id.trim().is_empty())
    {
        return Err(SamlError::Malformed("the Assertion has no ID".into()));
    }

    // Core §3.2.2: Destination, when present, MUST be where it was received.
    if let Some(dest) = response.attribute("Destination") {
        if dest != settings.acs_url {
            return Err(SamlError::DestinationMismatch {
                found: dest.into(),
                expected: settings.acs_url.clone(),
            });
        }
    }
    if let (Some(expected), Some(found)) = (
        &settings.expected_in_response_to,
        response.attribute("InResponseTo"),
    ) {
        if found != expected {
            return Err(SamlError::InResponseToMismatch {
                found: found.into(),
                expected: expected.clone(),
            });
        }
    }

    let subject = only_child(assertion, NS_SAML, "Subject")
        .map_err(|()| SamlError::Malformed("more than one Subject".into()))?
        .ok_or_else(|| SamlError::SubjectMissing("no Subject".into()))?;
    let name_id = only_child(subject, NS_SAML, "NameID")
        .map_err(|()| SamlError::SubjectMissing("more than one NameID".into()))?
        .ok_or_else(|| {
            if children(subject, NS_SAML, "EncryptedID").next().is_some() {
                SamlError::SubjectMissing(
                    "the NameID is encrypted (EncryptedID), which fedgate does not decrypt".into(),
                )
            } else {
                SamlError::SubjectMissing("no NameID".into())
            }
        })?;
    let subject_value = xml::trimmed_text(name_id).into_owned();
    if subject_value.is_empty() {
        return Err(SamlError::SubjectMissing("the NameID is empty".into()));
    }

    let confirmation = check_bearer_confirmation(subject, settings, now)?;
    let conditions_end = check_conditions(assertion, settings, now)?;
    let expires_at = conditions_end.unwrap_or(confirmation.not_on_or_after);
    let acceptable_until = latest_acceptance(subject, conditions_end, confirmation.not_on_or_after);
    let (auth_time, authn_class) = check_authn_statement(assertion, settings, now)?;
    let attrs = read_attributes(assertion)?;

    let single = |name: &str| -> Result<Option<String>, SamlError> {
        match attrs.iter().find(|(n, _)| *n == name) {
            None => Ok(None),
            Some((_, v)) if v.len() == 1 && !v[0].is_empty() => Ok(Some(v[0].to_string())),
            Some(_) => Err(SamlError::AttributeInvalid(name.into())),
        }
    };
    let multi = |name: &str| -> Vec<String> {
        attrs
            .iter()
            .filter(|(n, _)| *n == name)
            .flat_map(|(_, v)| v.iter().filter(|s| !s.is_empty()).map(|s| s.to_string()))
            .collect()
    };
    // The tenant's claim map (Entra's names unless it says otherwise): a
    // single value from the first name present (or the NameID), lists from
    // every name.
    let names = &settings.claims;
    let first = |sources: &[String]| -> Result<Option<String>, SamlError> {
        for source in sources {
            if source == claims::FROM_NAMEID {
                return Ok(Some(subject_value.clone()));
            }
            if let Some(v) = single(source)? {
                return Ok(Some(v));
            }
        }
        Ok(None)
    };
    let all =
        |sources: &[String]| -> Vec<String> { sources.iter().flat_map(|s| multi(s)).collect() };
    let tenant_id = single(claims::TENANT_ID)?;
    let object_id = first(&settings.claims.object_id)?;
    // The Entra tenant is in the issuer; the claim must agree with it.
    if let Some(issuer_tid) = entra_tenant_of_issuer(expected_issuer) {
        match &tenant_id {
            Some(t) if t.eq_ignore_ascii_case(issuer_tid) => {}
            Some(t) => {
                return Err(SamlError::TenantMismatch(format!(
                    "the tenantid claim is {t}, the issuer is tenant {issuer_tid}"
                )))
            }
            None => {
                return Err(SamlError::TenantMismatch(format!(
                    "the tenantid claim is missing; the issuer is tenant {issuer_tid}"
                )))
            }
        }
        if object_id.is_none() {
            return Err(SamlError::ObjectIdMissing);
        }
    }
    let mut auth_methods = Vec::new();
    for source in &names.mfa {
        if source == claims::FROM_AUTHN_CONTEXT {
            auth_methods.extend(authn_class.clone());
        } else {
            auth_methods.extend(multi(source));
        }
    }
    let mfa = auth_methods.iter().any(|m| names.is_mfa(m));
    let groups_link = single(claims::GROUPS_LINK)?;
    let roles = all(&names.roles);
    verification.in_response_to = confirmation.in_response_to;
    let upn = first(&names.upn)?;
    let email = first(&names.email)?;
    let display_name = first(&names.display_name)?;
    let groups = all(&names.groups);
    let attributes = attrs
        .into_iter()
        .map(|(n, v)| (n.to_string(), v.into_iter().map(Cow::into_owned).collect()))
        .collect();

    let identity = Identity {
        subject: subject_value,
        subject_format: name_id.attribute("Format").map(str::to_string),
        issuer: assertion_issuer,
        tenant_id,
        object_id,
        kind: PrincipalKind::User,
        source: Source::Saml,
        upn,
        email,
        display_name,
        groups,
        groups_overage: groups_link.is_some(),
        groups_link,
        groups_source: Default::default(),
        roles,
        auth_methods,
        mfa,
        auth_time,
        expires_at,
        app_id: None,
        token_id: assertion.attribute("ID").map(str::to_string),
        idp_session: children(assertion, NS_SAML, "AuthnStatement")
            .next()
            .and_then(|s| s.attribute("SessionIndex"))
            .filter(|s| !s.is_empty() && s.len() <= 256)
            .map(str::to_string),
        verification,
        attributes,
    };
    Ok(Verified {
        identity,
        acceptable_until,
    })
}

/// The tenant id in an Entra issuer: `https://sts.windows.net/{tid}/`.
pub fn entra_tenant_of_issuer(issuer: &str) -> Option<&str> {
    let tid = issuer
        .strip_prefix("https://sts.windows.net/")?
        .strip_suffix('/')?;
    (!tid.is_empty() && !tid.contains('/')).then_some(tid)
}

fn check_status(response: Node) -> Result<(), SamlError> {
    let status = only_child(response, NS_SAMLP, "Status")
        .map_err(|()| SamlError::Malformed("more than one Status".into()))?
        .ok_or_else(|| SamlError::Malformed("the Response has no Status".into()))?;
    let code = only_child(status, NS_SAMLP, "StatusCode")
        .ok()
        .flatten()
        .ok_or_else(|| SamlError::Malformed("the Status has no StatusCode".into()))?;
    let value = code.attribute("Value").unwrap_or_default();
    if value == STATUS_SUCCESS {
        return Ok(());
    }
    let sub = children(code, NS_SAMLP, "StatusCode")
        .next()
        .and_then(|s| s.attribute("Value"));
    let message = children(status, NS_SAMLP, "StatusMessage")
        .next()
        .map(|m| xml::text_content(m).trim().to_string());
    let signed = dsig::signature_child(response).ok().flatten().is_some();
    let mut detail = String::new();
    if let Some(sub) = sub {
        detail.push_str(&format!(" / {sub}"));
    }
    if let Some(m) = message.filter(|m| !m.is_empty()) {
        // Entra puts the AADSTS error here; it is the admin's best clue.
        detail.push_str(&format!(": {}", m.chars().take(300).collect::<String>()));
    }
    if !signed {
        detail.push_str(" (unsigned error response)");
    }
    Err(SamlError::Status {
        code: value.to_string(),
        message: detail,
    })
}

/// Used by `decode`: the signature children of an element, if any.
pub(crate) fn signature_of<'a, 'i>(node: Node<'a, 'i>) -> Option<Node<'a, 'i>> {
    children(node, NS_DS, "Signature").next()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Assertion ID is the replay-cache key: an assertion without one
    /// (possible when only the Response is signed) is refused.
    #[test]
    fn an_assertion_without_id_is_refused() {
        let data = |f: &str| {
            std::fs::read_to_string(format!("{}/tests/data/{f}", env!("CARGO_MANIFEST_DIR")))
                .unwrap()
        };
        let key = crate::trust::signing::SigningKey::from_pem(
            &data("fedgate_rsa_key.pem"),
            &data("fedgate_rsa_cert.pem"),
        )
        .unwrap();
        let login = crate::mock::entra::MockLogin {
            tenant_id: "t1".into(),
            sp_entity_id: "https://sp/".into(),
            acs_url: "https://sp/acs".into(),
            issue_instant: crate::timefmt::parse("2026-03-02T10:00:00Z").unwrap(),
            in_response_to: None,
            id_seed: "x1".into(),
        };
        let (xml, assertion_id) =
            crate::mock::entra::response_xml(&crate::mock::entra::user_with_groups(1), &login);
        // Sign the Response (not the Assertion), after removing the Assertion's ID.
        let xml = xml.replace(&format!(" ID=\"{assertion_id}\""), "");
        let signed = crate::xml::dsig::sign_enveloped(&xml, "_rx1", &key).unwrap();
        let idp =
            IdpMetadata::from_pem(&data("fedgate_rsa_cert.pem"), "https://sts.windows.net/t1/")
                .unwrap();
        let now = crate::timefmt::parse("2026-03-02T10:01:00Z").unwrap();
        let err = verify(
            signed.as_bytes(),
            &idp,
            &SamlSettings::new("https://sp/", "https://sp/acs"),
            now,
        )
        .unwrap_err();
        assert_eq!(err.code(), "saml.malformed", "{err}");
        // With its ID the same response verifies.
        let (xml, _) =
            crate::mock::entra::response_xml(&crate::mock::entra::user_with_groups(1), &login);
        let signed = crate::xml::dsig::sign_enveloped(&xml, "_rx1", &key).unwrap();
        assert!(verify(
            signed.as_bytes(),
            &idp,
            &SamlSettings::new("https://sp/", "https://sp/acs"),
            now
        )
        .is_ok());
    }

    /// Several SubjectConfirmations and no Conditions NotOnOrAfter: the
    /// acceptance window runs to the latest confirmation, not to the first
    /// (the one checked), and the replay entry lasts until then plus the
    /// skew and the margin.
    #[test]
    fn the_replay_window_is_the_latest_confirmation_of_all() {
        let data = |f: &str| {
            std::fs::read_to_string(format!("{}/tests/data/{f}", env!("CARGO_MANIFEST_DIR")))
                .unwrap()
        };
        let key = crate::trust::signing::SigningKey::from_pem(
            &data("fedgate_rsa_key.pem"),
            &data("fedgate_rsa_cert.pem"),
        )
        .unwrap();
        let at = crate::timefmt::parse("2026-03-02T10:00:00Z").unwrap();
        let login = crate::mock::entra::MockLogin {
            tenant_id: "t1".into(),
            sp_entity_id: "https://sp/".into(),
            acs_url: "https://sp/acs".into(),
            issue_instant: at,
            in_response_to: None,
            id_seed: "w1".into(),
        };
        let (xml, assertion_id) =
            crate::mock::entra::response_xml(&crate::mock::entra::user_with_groups(1), &login);
        let sc = |end: &str, method: &str| {
            format!("<SubjectConfirmation Method=\"{method}\"><SubjectConfirmationData NotOnOrAfter=\"{end}\" Recipient=\"https://sp/acs\"/></SubjectConfirmation>")
        };
        let extra = sc("2026-03-02T11:00:00Z", CM_BEARER)
            + &sc("2026-03-02T10:30:00Z", CM_BEARER)
            + &sc("not a time", CM_BEARER);
        let xml = xml
            .replacen(
                "</SubjectConfirmation>",
                &format!("</SubjectConfirmation>{extra}"),
                1,
            )
            .replacen(" NotOnOrAfter=\"2026-03-02T11:10:00Z\">", ">", 1);
        let signed = crate::xml::dsig::sign_enveloped(&xml, &assertion_id, &key).unwrap();
        let idp =
            IdpMetadata::from_pem(&data("fedgate_rsa_cert.pem"), "https://sts.windows.net/t1/")
                .unwrap();
        let settings = SamlSettings::new("https://sp/", "https://sp/acs");
        let now = crate::timefmt::parse("2026-03-02T10:01:00Z").unwrap();
        let v = verify_with_window(signed.clone().into_bytes(), &idp, &settings, now).unwrap();
        // The first (checked) confirmation ends at 10:05; the latest at 11:00.
        assert_eq!(
            v.identity.expires_at,
            crate::timefmt::parse("2026-03-02T10:05:00Z").unwrap()
        );
        let latest = crate::timefmt::parse("2026-03-02T11:00:00Z").unwrap();
        assert_eq!(v.acceptable_until, latest);
        // The later confirmation does accept it after the first one's time.
        let later = crate::timefmt::parse("2026-03-02T10:40:00Z").unwrap();
        assert!(verify(signed.as_bytes(), &idp, &settings, later).is_ok());
        assert_eq!(
            replay_until(v.acceptable_until, settings.skew, now),
            Ok(latest + settings.skew + REPLAY_MARGIN)
        );
        // With Conditions NotOnOrAfter later still, that is the end.
        let with_conditions = xml.replacen(
            "<Conditions NotBefore=\"2026-03-02T09:55:00Z\">",
            "<Conditions NotBefore=\"2026-03-02T09:55:00Z\" NotOnOrAfter=\"2026-03-02T12:00:00Z\">",
            1,
        );
        assert_ne!(with_conditions, xml);
        let signed =
            crate::xml::dsig::sign_enveloped(&with_conditions, &assertion_id, &key).unwrap();
        let v = verify_with_window(signed.clone().into_bytes(), &idp, &settings, now).unwrap();
        assert_eq!(
            v.acceptable_until,
            crate::timefmt::parse("2026-03-02T12:00:00Z").unwrap()
        );
    }

    #[test]
    fn the_replay_entry_has_a_floor_and_a_cap() {
        let now = crate::timefmt::parse("2026-03-02T10:00:00Z").unwrap();
        let skew = DEFAULT_SKEW;
        // Floor: never shorter than the margin from now.
        assert_eq!(
            replay_until(now - Duration::hours(1), skew, now),
            Ok(now + REPLAY_MARGIN)
        );
        assert_eq!(
            replay_until(now + Duration::minutes(70), skew, now),
            Ok(now + Duration::minutes(70) + skew + REPLAY_MARGIN)
        );
        // Cap: an assertion acceptable for longer than the cache remembers
        // is refused, not made replayable once the entry expires.
        assert!(replay_until(now + MAX_REPLAY_WINDOW - skew, skew, now).is_ok());
        let far = now + MAX_REPLAY_WINDOW + Duration::minutes(1);
        assert_eq!(replay_until(far, skew, now), Err(far));
    }
}
