//! fedgate as a SAML IdP towards a console: a Response with a signed
//! Assertion (fedgate's key, exclusive C14N through the same canonicalizer
//! the verifier uses) for the console's Identifier, posted to its Reply URL
//! by an auto-submitting HTML form (with a button for browsers without
//! JavaScript). IdP-initiated (no InResponseTo), or the answer to a
//! console's AuthnRequest ([`InResponse`]: its ID as InResponseTo on the
//! Response and the SubjectConfirmationData, the authentication context
//! it asked for, its RelayState posted back unchanged).

use crate::xml::escape as esc;
use base64::Engine;
use time::{Duration, OffsetDateTime};

use crate::consoles::{self, NameIdSource};
use crate::identity::{Grant, Identity};
use crate::trust::signing::SigningKey;
use crate::xml::dsig::{sign_enveloped_as, SignError};

/// Where and how to deliver.
pub struct Delivery<'a> {
    /// fedgate's IdP entity id (`{public_url}/idp/metadata`).
    pub idp_entity_id: &'a str,
    /// The console's SAML entity id (its Identifier).
    pub audience: &'a str,
    /// The console's ACS URL (its Reply URL).
    pub reply_url: &'a str,
    pub nameid: NameIdSource,
    pub role_attribute: &'a str,
    pub scope_attribute: &'a str,
    pub lifetime: Duration,
    /// fedgate's id of the user's tenant, and the domains it owns: an
    /// e-mail or UPN outside them is never delivered (`crate::domains`).
    pub tenant: &'a str,
    pub domains: &'a [String],
    /// What is signed: the Assertion, the Response, or both.
    pub sign: consoles::SignWhat,
    /// The console's AuthnRequest this answers, if any.
    pub in_response: Option<&'a InResponse>,
    /// The signature algorithm (None: the key's own).
    pub signature_algorithm: Option<crate::trust::certs::SigAlg>,
    /// The NameID Format stated (None: the one that goes with `nameid`).
    pub nameid_format: Option<&'static str>,
    /// Encrypt the Assertion for this certificate (the console's).
    pub encrypt_for: Option<&'a crate::trust::certs::TrustedCert>,
    /// The `SessionIndex`: the fedgate session's id, which the console's
    /// LogoutRequest names and fedgate's names to it (None: the assertion id).
    pub session_index: Option<&'a str>,
}

/// What an answer to a console's AuthnRequest carries back.
#[derive(Debug, Clone, Default)]
pub struct InResponse {
    /// The request's ID.
    pub id: String,
    /// The console's RelayState, unchanged.
    pub relay_state: Option<String>,
    /// The authentication context class met (`AuthnContextClassRef`).
    pub authn_class: Option<String>,
}

/// The class fedgate states when the console asked for none.
pub const DEFAULT_AUTHN_CLASS: &str =
    "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport";

/// Why fedgate could not build the assertion for the console.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutboundError {
    /// The Identity lacks what the console's NameID needs.
    #[error("the identity has no {0}, which this console uses as NameID")]
    NameIdMissing(&'static str),
    /// The e-mail or UPN is not in a domain the user's tenant owns.
    #[error(transparent)]
    Domain(#[from] crate::domains::DomainError),
    #[error(transparent)]
    Sign(#[from] SignError),
    #[error(transparent)]
    Encrypt(#[from] crate::outbound::encrypt::EncryptError),
}

impl OutboundError {
    /// The HTTP status of the refusal: 403 for an identity fedgate will not
    /// deliver, 500 for fedgate's own failures.
    pub fn status(&self) -> u16 {
        match self {
            // What the IdP sent lacks a value the console needs: not
            // fedgate's failure, and not the user's to fix (a hint says
            // what to check).
            OutboundError::NameIdMissing(_) | OutboundError::Domain(_) => 403,
            OutboundError::Sign(_) | OutboundError::Encrypt(_) => 500,
        }
    }
}

impl crate::identity::ErrorCode for OutboundError {
    fn code(&self) -> &'static str {
        match self {
            OutboundError::NameIdMissing(_) => "outbound.nameid_missing",
            OutboundError::Domain(e) => crate::identity::ErrorCode::code(e),
            OutboundError::Sign(_) => "outbound.sign_failed",
            OutboundError::Encrypt(_) => "outbound.encrypt_failed",
        }
    }
}

/// The NameID value and format for this console. An e-mail-like NameID is
/// the UPN when the identity has one, else the mail, and only in a domain
/// the tenant owns (`domains`).
pub fn nameid(
    identity: &Identity,
    source: NameIdSource,
    tenant: &str,
    domains: &[String],
) -> Result<(String, &'static str), OutboundError> {
    const EMAIL: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";
    const UNSPEC: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified";
    const PERSISTENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";
    match source {
        NameIdSource::Email => crate::domains::console_address(identity, tenant, domains)?
            .map(|v| (v, EMAIL))
            .ok_or(OutboundError::NameIdMissing("email")),
        NameIdSource::Upn => crate::domains::console_upn(identity, tenant, domains)?
            .map(|v| (v, UNSPEC))
            .ok_or(OutboundError::NameIdMissing("UPN")),
        NameIdSource::ObjectId => identity
            .object_id
            .clone()
            .map(|v| (v, PERSISTENT))
            .ok_or(OutboundError::NameIdMissing("object id")),
    }
}

/// A signed SAML Response for the console. `id_seed` makes the IDs unique
/// (random in production, fixed in tests).
pub fn response(
    identity: &Identity,
    grants: &[Grant],
    d: &Delivery,
    key: &SigningKey,
    now: OffsetDateTime,
    id_seed: &str,
) -> Result<String, OutboundError> {
    let unsigned = unsigned_response(identity, grants, d, now, id_seed)?;
    unsigned.sign(key)
}

/// A Response built and checked, not yet signed: signing (the RSA
/// operation) is the part the gateway runs on its CPU pool.
pub struct UnsignedResponse {
    xml: String,
    response_id: String,
    assertion_id: String,
    sign: consoles::SignWhat,
    algorithm: Option<crate::trust::certs::SigAlg>,
    encrypt_for: Option<crate::trust::certs::TrustedCert>,
}

impl UnsignedResponse {
    /// Sign what the console asked for (enveloped signatures): the
    /// Assertion, the Response, or the Assertion and then the Response
    /// around it, so the Response's signature covers the Assertion's.
    pub fn sign(&self, key: &SigningKey) -> Result<String, OutboundError> {
        use consoles::SignWhat;
        let alg = self.algorithm.unwrap_or(key.algorithm());
        let sign = |xml: &str, id: &str| sign_enveloped_as(xml, id, key, alg);
        // The Assertion's signature first, then its encryption, then the
        // Response's signature over what the console receives.
        let inner = match self.sign {
            SignWhat::Assertion | SignWhat::Both => sign(&self.xml, &self.assertion_id)?,
            SignWhat::Response => self.xml.clone(),
        };
        let inner = match &self.encrypt_for {
            Some(cert) => encrypt_element(&inner, &self.assertion_id, cert)?,
            None => inner,
        };
        Ok(match self.sign {
            SignWhat::Assertion => inner,
            SignWhat::Response | SignWhat::Both => sign(&inner, &self.response_id)?,
        })
    }
}

/// `xml` with the element whose ID is `id` replaced by its
/// EncryptedAssertion.
fn encrypt_element(
    xml: &str,
    id: &str,
    cert: &crate::trust::certs::TrustedCert,
) -> Result<String, OutboundError> {
    let doc = crate::xml::parse(xml).map_err(SignError::from)?;
    let range = doc
        .descendants()
        .find(|n| n.is_element() && n.attribute("ID") == Some(id))
        .map(|n| n.range())
        .ok_or_else(|| SignError::NoElement(id.to_string()))?;
    let encrypted = crate::outbound::encrypt::encrypted_assertion(&xml[range.clone()], cert)?;
    let mut out = String::with_capacity(xml.len() + encrypted.len());
    out.push_str(&xml[..range.start]);
    out.push_str(&encrypted);
    out.push_str(&xml[range.end..]);
    Ok(out)
}

/// [`response`] without its signature.
pub fn unsigned_response(
    identity: &Identity,
    grants: &[Grant],
    d: &Delivery,
    now: OffsetDateTime,
    id_seed: &str,
) -> Result<UnsignedResponse, OutboundError> {
    let (name, format) = nameid(identity, d.nameid, d.tenant, d.domains)?;
    let format = d.nameid_format.unwrap_or(format);
    // The `email` attribute: the same checked value. With an object-id
    // NameID it is only added when its domain is owned (never refused).
    let email = match d.nameid {
        NameIdSource::ObjectId => crate::domains::console_address(identity, d.tenant, d.domains)
            .ok()
            .flatten(),
        _ => crate::domains::console_address(identity, d.tenant, d.domains)?,
    };
    let response_id = format!("_fgr{id_seed}");
    let assertion_id = format!("_fga{id_seed}");
    let t = |x: OffsetDateTime| crate::timefmt::format(x);
    let mut roles: Vec<&str> = grants.iter().map(|g| g.role.as_str()).collect();
    roles.dedup();
    let mut scopes: Vec<&str> = grants
        .iter()
        .map(|g| g.scope.as_str())
        .filter(|s| !s.is_empty())
        .collect();
    scopes.sort_unstable();
    scopes.dedup();
    let mut attrs = String::new();
    let mut attr = |n: &str, vals: &[&str]| {
        if vals.is_empty() {
            return;
        }
        attrs.push_str(&format!(
            "<saml:Attribute Name=\"{}\" NameFormat=\"urn:oasis:names:tc:SAML:2.0:attrname-format:basic\">",
            esc(n)
        ));
        for v in vals {
            attrs.push_str(&format!(
                "<saml:AttributeValue>{}</saml:AttributeValue>",
                esc(v)
            ));
        }
        attrs.push_str("</saml:Attribute>");
    };
    attr(d.role_attribute, &roles);
    attr(d.scope_attribute, &scopes);
    if let Some(e) = email.as_deref() {
        attr("email", &[e]);
    }
    if let Some(n) = identity.display_name.as_deref() {
        attr("displayName", &[n]);
    }
    let authn_instant = identity.auth_time.unwrap_or(now);
    let irt = d
        .in_response
        .map(|r| format!(" InResponseTo=\"{}\"", esc(&r.id)))
        .unwrap_or_default();
    let class = d
        .in_response
        .and_then(|r| r.authn_class.as_deref())
        .unwrap_or(DEFAULT_AUTHN_CLASS);
    let xml = format!(
        "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" \
ID=\"{response_id}\" Version=\"2.0\" IssueInstant=\"{now}\" Destination=\"{dest}\"{irt}>\
<saml:Issuer>{issuer}</saml:Issuer><samlp:Status><samlp:StatusCode Value=\"urn:oasis:names:tc:SAML:2.0:status:Success\"/></samlp:Status>\
<saml:Assertion{own_ns} ID=\"{assertion_id}\" Version=\"2.0\" IssueInstant=\"{now}\"><saml:Issuer>{issuer}</saml:Issuer>\
<saml:Subject><saml:NameID Format=\"{format}\">{name}</saml:NameID><saml:SubjectConfirmation Method=\"urn:oasis:names:tc:SAML:2.0:cm:bearer\">\
<saml:SubjectConfirmationData NotOnOrAfter=\"{end}\" Recipient=\"{dest}\"{irt}/></saml:SubjectConfirmation></saml:Subject>\
<saml:Conditions NotBefore=\"{nb}\" NotOnOrAfter=\"{end}\"><saml:AudienceRestriction><saml:Audience>{aud}</saml:Audience></saml:AudienceRestriction></saml:Conditions>\
<saml:AuthnStatement AuthnInstant=\"{ai}\" SessionIndex=\"{si}\"><saml:AuthnContext><saml:AuthnContextClassRef>{class}</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>\
<saml:AttributeStatement>{attrs}</saml:AttributeStatement></saml:Assertion></samlp:Response>",
        now = t(now),
        dest = esc(d.reply_url),
        issuer = esc(d.idp_entity_id),
        name = esc(&name),
        end = t(now + d.lifetime),
        nb = t(now - Duration::seconds(30)),
        aud = esc(d.audience),
        ai = t(authn_instant),
        si = esc(d.session_index.unwrap_or(&assertion_id)),
        class = esc(class),
        // An Assertion to be encrypted declares its namespace itself: the
        // console decrypts it as a document of its own.
        own_ns = if d.encrypt_for.is_some() {
            " xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\""
        } else {
            ""
        },
    );
    // An AttributeStatement must not be empty (schema): drop it when it is.
    let xml = xml.replace("<saml:AttributeStatement></saml:AttributeStatement>", "");
    Ok(UnsignedResponse {
        xml,
        response_id,
        assertion_id,
        sign: d.sign,
        algorithm: d.signature_algorithm,
        encrypt_for: d.encrypt_for.cloned(),
    })
}

/// A Response without an assertion, for a console's AuthnRequest fedgate
/// answers with a SAML status (SAML Core §3.2.2.2): `Responder` with the
/// second-level `status` (`NoPassive`, `NoAuthnContext`), signed (the
/// Response) with `algorithm`, or the key's own.
#[allow(clippy::too_many_arguments)]
pub fn status_response(
    idp_entity_id: &str,
    reply_url: &str,
    algorithm: Option<crate::trust::certs::SigAlg>,
    in_response_to: &str,
    status: &str,
    message: &str,
    now: OffsetDateTime,
    id_seed: &str,
) -> UnsignedResponse {
    let response_id = format!("_fgr{id_seed}");
    let xml = format!(
        "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" \
ID=\"{response_id}\" Version=\"2.0\" IssueInstant=\"{now}\" Destination=\"{dest}\" InResponseTo=\"{irt}\">\
<saml:Issuer>{issuer}</saml:Issuer><samlp:Status><samlp:StatusCode Value=\"urn:oasis:names:tc:SAML:2.0:status:Responder\">\
<samlp:StatusCode Value=\"urn:oasis:names:tc:SAML:2.0:status:{status}\"/></samlp:StatusCode>\
<samlp:StatusMessage>{message}</samlp:StatusMessage></samlp:Status></samlp:Response>",
        now = crate::timefmt::format(now),
        dest = esc(reply_url),
        irt = esc(in_response_to),
        issuer = esc(idp_entity_id),
        status = esc(status),
        message = esc(message),
    );
    UnsignedResponse {
        xml,
        assertion_id: String::new(),
        response_id,
        sign: consoles::SignWhat::Response,
        algorithm,
        encrypt_for: None,
    }
}

/// The HTML page that posts the response to the console (HTTP-POST binding).
pub fn post_form(
    reply_url: &str,
    response_xml: &str,
    relay_state: Option<&str>,
    console_name: &str,
) -> String {
    crate::binding::post_form(
        reply_url,
        crate::binding::Kind::Response,
        response_xml,
        relay_state,
        &format!("Signing in to {console_name}"),
        console_name,
    )
}

/// fedgate's IdP metadata for the consoles (`GET /idp/metadata`).
pub fn idp_metadata(
    entity_id: &str,
    sso_url: &str,
    slo_url: &str,
    certs: &[&crate::trust::certs::TrustedCert],
) -> String {
    let mut kds = String::new();
    for c in certs {
        kds.push_str(&format!(
            "<md:KeyDescriptor use=\"signing\"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>",
            base64::engine::general_purpose::STANDARD.encode(&c.der)
        ));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<md:EntityDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\" xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" entityID=\"{eid}\">\
<md:IDPSSODescriptor WantAuthnRequestsSigned=\"false\" protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">{kds}\
<md:SingleLogoutService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect\" Location=\"{slo}\"/>\
<md:SingleLogoutService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST\" Location=\"{slo}\"/>\
<md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>\
<md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified</md:NameIDFormat>\
<md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>\
<md:SingleSignOnService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect\" Location=\"{sso}\"/>\
<md:SingleSignOnService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST\" Location=\"{sso}\"/>\
</md:IDPSSODescriptor></md:EntityDescriptor>\n",
        eid = esc(entity_id),
        sso = esc(sso_url),
        slo = esc(slo_url),
    )
}

/// The delivery parameters for a configured console, for a user of `tenant`.
pub fn delivery<'a>(
    console: &'a crate::config::Console,
    idp_entity_id: &'a str,
    lifetime: Duration,
    tenant: &'a crate::config::Tenant,
) -> Delivery<'a> {
    let profile = consoles::profile(console.kind);
    Delivery {
        idp_entity_id,
        audience: &console.identifier,
        reply_url: &console.reply_url,
        nameid: console.nameid.unwrap_or(profile.default_nameid),
        role_attribute: console
            .role_attribute
            .as_deref()
            .unwrap_or(profile.role_attribute),
        scope_attribute: profile.scope_attribute,
        lifetime,
        tenant: &tenant.id,
        domains: &tenant.domains,
        sign: console.sign,
        in_response: None,
        signature_algorithm: console.signature_algorithm.map(|a| a.sig_alg()),
        nameid_format: console.nameid_format.map(|f| f.uri()),
        encrypt_for: None,
        session_index: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_nameid_value_is_a_refusal_with_a_code_not_a_server_error() {
        let e = OutboundError::NameIdMissing("e-mail or UPN");
        assert_eq!(e.status(), 403);
        assert_eq!(
            crate::identity::ErrorCode::code(&e),
            "outbound.nameid_missing"
        );
        let (meaning, check) = crate::http::pages::hint("outbound.nameid_missing");
        assert!(
            meaning.contains("NameID") && check.contains("nameid"),
            "{meaning} {check}"
        );
    }
}
