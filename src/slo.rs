//! SAML 2.0 single logout messages (SAML Core §3.7): the `LogoutRequest`
//! and `LogoutResponse` fedgate writes, to a tenant (as its SP) and to
//! consoles (as their IdP), and those it reads from either, over the
//! HTTP-Redirect or HTTP-POST binding ([`crate::binding`]). Pure: no I/O.
//!
//! What must hold for a message fedgate acts on, else an `slo.*` refusal:
//!
//! - the `Issuer` is the party the endpoint serves (the tenant's entity id
//!   at `/saml/{tenant}/slo`, a configured console's Identifier at
//!   `/idp/slo`), exactly;
//! - a **LogoutRequest is signed** (SAML Profiles §4.4.4.1: the requester
//!   authenticates itself): in the query for HTTP-Redirect, enveloped on
//!   the root for HTTP-POST, verified with that party's certificates (the
//!   tenant's metadata, the console's `certificate_file`); SHA-1 and RSA
//!   under 2,048 bits refused. An unsigned one could end anyone's session;
//! - a **LogoutResponse** is verified when signed and accepted unsigned:
//!   Entra does not sign its LogoutResponses on the HTTP-Redirect binding,
//!   and a response only finishes a logout fedgate began (its
//!   `InResponseTo` must name it), after the session has already ended;
//! - `Destination`, when present, is the endpoint's own URL (required when
//!   signed); `IssueInstant` no older than ten minutes and not in the
//!   future, `NotOnOrAfter` not passed (with the clock skew allowed).

use time::{Duration, OffsetDateTime};

use crate::binding::{self, BindingError, Incoming, Kind};
use crate::identity::ErrorCode;
use crate::trust::certs::TrustedCert;
use crate::xml::dsig::{self, DsigError};
use crate::xml::{self, NS_SAML, NS_SAMLP};

/// How old a logout message may be when it arrives.
pub const MAX_MESSAGE_AGE: Duration = Duration::minutes(10);
/// How long a LogoutRequest fedgate sends stays valid (`NotOnOrAfter`).
pub const REQUEST_LIFETIME: Duration = Duration::minutes(5);

pub const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
pub const STATUS_PARTIAL: &str = "urn:oasis:names:tc:SAML:2.0:status:PartialLogout";
pub const STATUS_REQUESTER: &str = "urn:oasis:names:tc:SAML:2.0:status:Requester";
pub const STATUS_RESPONDER: &str = "urn:oasis:names:tc:SAML:2.0:status:Responder";
pub const STATUS_UNKNOWN_PRINCIPAL: &str = "urn:oasis:names:tc:SAML:2.0:status:UnknownPrincipal";

/// A party that may send fedgate logout messages: a tenant or a console.
#[derive(Debug, Clone)]
pub struct Party {
    /// fedgate's id of the tenant or console.
    pub id: String,
    /// Its SAML entity id (the messages' `Issuer`).
    pub entity_id: String,
    /// Its signing certificates.
    pub certs: Vec<TrustedCert>,
}

/// A LogoutRequest, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutRequest {
    /// The party's id.
    pub from: String,
    pub id: String,
    pub name_id: String,
    pub name_id_format: Option<String>,
    pub session_indexes: Vec<String>,
    pub relay_state: Option<String>,
    pub binding: &'static str,
}

/// A LogoutResponse, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutResponse {
    pub from: String,
    pub in_response_to: String,
    /// The top-level status code.
    pub status: String,
    /// The second-level status code, if any (`PartialLogout`…).
    pub sub_status: Option<String>,
    pub signed: bool,
    pub relay_state: Option<String>,
}

/// What arrived at a SingleLogoutService.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    Request(LogoutRequest),
    Response(LogoutResponse),
}

impl LogoutResponse {
    /// Whether the party says it signed the user out.
    pub fn success(&self) -> bool {
        self.status == STATUS_SUCCESS && self.sub_status.as_deref() != Some(STATUS_PARTIAL)
    }
}

/// Why a logout message is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SloError {
    #[error("the logout message is malformed: {0}")]
    Malformed(String),
    #[error(
        "the logout message is larger than {} bytes",
        binding::MAX_MESSAGE_BYTES
    )]
    TooLarge,
    #[error(
        "the RelayState is longer than {} bytes",
        binding::MAX_RELAY_STATE_BYTES
    )]
    RelayStateTooLong,
    #[error("the message's Issuer {0:?} is not a party this endpoint serves")]
    IssuerUnknown(String),
    #[error("the message is addressed to {got:?}, not to {want:?}")]
    DestinationMismatch { got: String, want: String },
    #[error("the message was issued at {0}, outside the accepted window")]
    Stale(String),
    #[error("the LogoutRequest is unsigned: a logout request must be signed by its sender (SAML Profiles §4.4.4.1)")]
    Unsigned,
    #[error("{0} has no certificate to check a signature with")]
    Unverifiable(String),
    #[error("the signature does not hold: {0}")]
    Signature(String),
    #[error("SHA-1 signatures are refused ({0})")]
    Sha1(String),
}

impl ErrorCode for SloError {
    fn code(&self) -> &'static str {
        match self {
            SloError::Malformed(_) => "slo.message_invalid",
            SloError::TooLarge => "slo.message_too_large",
            SloError::RelayStateTooLong => "slo.relay_state_too_long",
            SloError::IssuerUnknown(_) => "slo.issuer_unknown",
            SloError::DestinationMismatch { .. } => "slo.destination_mismatch",
            SloError::Stale(_) => "slo.message_expired",
            SloError::Unsigned => "slo.request_unsigned",
            SloError::Unverifiable(_) => "slo.signature_unverifiable",
            SloError::Signature(_) => "slo.signature_invalid",
            SloError::Sha1(_) => "slo.sha1_forbidden",
        }
    }
}

impl From<BindingError> for SloError {
    fn from(e: BindingError) -> Self {
        match e {
            BindingError::Malformed(m) => SloError::Malformed(m),
            BindingError::TooLarge => SloError::TooLarge,
            BindingError::RelayStateTooLong => SloError::RelayStateTooLong,
            BindingError::Signature(m) => SloError::Signature(m),
            BindingError::Sha1(a) => SloError::Sha1(a),
        }
    }
}

impl From<DsigError> for SloError {
    fn from(e: DsigError) -> Self {
        match e {
            DsigError::Sha1(a) => SloError::Sha1(a),
            other => SloError::Signature(other.to_string()),
        }
    }
}

/// Read and check a logout message arriving at `endpoint` (fedgate's own
/// SingleLogoutService URL) from one of `parties`.
pub fn read(
    incoming: Incoming,
    parties: &[Party],
    endpoint: &str,
    now: OffsetDateTime,
    skew: Duration,
) -> Result<Received, SloError> {
    let message = binding::decode(incoming)?;
    let doc = xml::parse_message(&message.xml).map_err(|e| SloError::Malformed(e.to_string()))?;
    let root = doc.root_element();
    let want = match message.kind {
        Kind::Request => "LogoutRequest",
        Kind::Response => "LogoutResponse",
    };
    if !xml::is(&root, NS_SAMLP, want) {
        return Err(SloError::Malformed(format!(
            "a {} arrived as {}, not a samlp:{want}",
            root.tag_name().name(),
            message.kind.param()
        )));
    }
    if root.attribute("Version") != Some("2.0") {
        return Err(SloError::Malformed("Version is not 2.0".into()));
    }
    let id = root
        .attribute("ID")
        .filter(|i| !i.is_empty() && i.len() <= 256)
        .ok_or_else(|| SloError::Malformed("no ID (or one over 256 characters)".into()))?;
    let issuer = xml::only_child(root, NS_SAML, "Issuer")
        .map_err(|()| SloError::Malformed("more than one Issuer".into()))?
        .map(|i| xml::trimmed_text(i).into_owned())
        .filter(|i| !i.is_empty())
        .ok_or_else(|| SloError::Malformed("the message has no Issuer".into()))?;
    let party = parties
        .iter()
        .find(|p| !p.entity_id.is_empty() && p.entity_id == issuer)
        .ok_or_else(|| SloError::IssuerUnknown(crate::util::clip(&issuer, crate::audit::CLIP)))?;

    let xml_signature = dsig::signature_child(root)?;
    let signed = match (&message.query_signature, xml_signature) {
        (Some(_), Some(_)) => {
            return Err(SloError::Malformed(
                "signed twice (query and XML): the HTTP-Redirect binding signs in the query only"
                    .into(),
            ))
        }
        (None, Some(_)) if message.binding == "redirect" => {
            return Err(SloError::Malformed(
                "an XML signature inside a redirected message: the HTTP-Redirect binding signs in the query (SigAlg, Signature)".into(),
            ))
        }
        (Some(q), None) => {
            if party.certs.is_empty() {
                return Err(SloError::Unverifiable(party.id.clone()));
            }
            q.verify(&party.certs, &party.id)?;
            true
        }
        (None, Some(sig)) => {
            if party.certs.is_empty() {
                return Err(SloError::Unverifiable(party.id.clone()));
            }
            dsig::verify_enveloped(root, sig, &party.certs, &dsig::Profile::default())?;
            true
        }
        (None, None) => false,
    };
    if !signed && message.kind == Kind::Request {
        return Err(SloError::Unsigned);
    }
    match root.attribute("Destination") {
        Some(d) if d != endpoint => {
            return Err(SloError::DestinationMismatch {
                got: crate::util::clip(d, crate::audit::CLIP),
                want: endpoint.to_string(),
            })
        }
        None if signed => {
            return Err(SloError::Malformed(
                "a signed message must name its Destination (SAML Bindings §3.4.5.2, §3.5.5.2)"
                    .into(),
            ))
        }
        _ => {}
    }
    let issued = root
        .attribute("IssueInstant")
        .ok_or_else(|| SloError::Malformed("no IssueInstant".into()))?;
    let at = crate::timefmt::parse(issued)
        .ok_or_else(|| SloError::Malformed(format!("IssueInstant {issued:?} is not a time")))?;
    if at > now + skew || at < now - MAX_MESSAGE_AGE - skew {
        return Err(SloError::Stale(issued.to_string()));
    }
    if let Some(end) = root.attribute("NotOnOrAfter") {
        let end = crate::timefmt::parse(end)
            .ok_or_else(|| SloError::Malformed("NotOnOrAfter is not a time".into()))?;
        if end + skew <= now {
            return Err(SloError::Stale(crate::timefmt::format(end)));
        }
    }
    let relay_state = message.relay_state;
    match message.kind {
        Kind::Request => {
            let name = xml::only_child(root, NS_SAML, "NameID")
                .map_err(|()| SloError::Malformed("more than one NameID".into()))?
                .ok_or_else(|| {
                    SloError::Malformed(
                        "the LogoutRequest has no NameID (an encrypted one is not supported)"
                            .into(),
                    )
                })?;
            let name_id = xml::trimmed_text(name).into_owned();
            if name_id.is_empty() || name_id.len() > 512 {
                return Err(SloError::Malformed(
                    "the NameID is empty or too long".into(),
                ));
            }
            let mut session_indexes = Vec::new();
            for s in xml::children(root, NS_SAMLP, "SessionIndex") {
                if session_indexes.len() == 16 {
                    return Err(SloError::Malformed("more than 16 SessionIndex".into()));
                }
                session_indexes.push(xml::trimmed_text(s).into_owned());
            }
            Ok(Received::Request(LogoutRequest {
                from: party.id.clone(),
                id: id.to_string(),
                name_id,
                name_id_format: name.attribute("Format").map(str::to_string),
                session_indexes,
                relay_state,
                binding: message.binding,
            }))
        }
        Kind::Response => {
            let in_response_to = root
                .attribute("InResponseTo")
                .filter(|i| !i.is_empty())
                .ok_or_else(|| {
                    SloError::Malformed("the LogoutResponse has no InResponseTo".into())
                })?
                .to_string();
            let code = xml::only_child(root, NS_SAMLP, "Status")
                .ok()
                .flatten()
                .and_then(|s| xml::only_child(s, NS_SAMLP, "StatusCode").ok().flatten())
                .ok_or_else(|| {
                    SloError::Malformed("the LogoutResponse has no StatusCode".into())
                })?;
            let status = code.attribute("Value").unwrap_or_default().to_string();
            let sub_status = xml::only_child(code, NS_SAMLP, "StatusCode")
                .ok()
                .flatten()
                .and_then(|c| c.attribute("Value"))
                .map(str::to_string);
            Ok(Received::Response(LogoutResponse {
                from: party.id.clone(),
                in_response_to,
                status,
                sub_status,
                signed,
                relay_state,
            }))
        }
    }
}

/// A LogoutRequest fedgate sends (unsigned: the binding signs it).
#[derive(Debug, Clone)]
pub struct OutRequest<'a> {
    pub id: &'a str,
    /// fedgate's entity id toward the receiver.
    pub issuer: &'a str,
    pub destination: &'a str,
    pub name_id: &'a str,
    pub name_id_format: Option<&'a str>,
    pub session_index: Option<&'a str>,
}

/// The LogoutRequest's XML.
pub fn logout_request(r: &OutRequest, now: OffsetDateTime) -> String {
    let esc = xml::escape;
    let format = r
        .name_id_format
        .map(|f| format!(" Format=\"{}\"", esc(f)))
        .unwrap_or_default();
    let index = r
        .session_index
        .map(|s| format!("<samlp:SessionIndex>{}</samlp:SessionIndex>", esc(s)))
        .unwrap_or_default();
    format!(
        "<samlp:LogoutRequest xmlns:samlp=\"{NS_SAMLP}\" xmlns:saml=\"{NS_SAML}\" ID=\"{id}\" Version=\"2.0\" \
IssueInstant=\"{now}\" NotOnOrAfter=\"{end}\" Destination=\"{dest}\"><saml:Issuer>{issuer}</saml:Issuer>\
<saml:NameID{format}>{name}</saml:NameID>{index}</samlp:LogoutRequest>",
        id = esc(r.id),
        now = crate::timefmt::format(now),
        end = crate::timefmt::format(now + REQUEST_LIFETIME),
        dest = esc(r.destination),
        issuer = esc(r.issuer),
        name = esc(r.name_id),
    )
}

/// The LogoutResponse's XML: `status` a top-level code, `sub` a
/// second-level one (`PartialLogout` under `Success`).
pub fn logout_response(
    id: &str,
    issuer: &str,
    destination: &str,
    in_response_to: &str,
    status: &str,
    sub: Option<&str>,
    now: OffsetDateTime,
) -> String {
    let esc = xml::escape;
    let inner = sub
        .map(|s| format!("<samlp:StatusCode Value=\"{}\"/>", esc(s)))
        .unwrap_or_default();
    format!(
        "<samlp:LogoutResponse xmlns:samlp=\"{NS_SAMLP}\" xmlns:saml=\"{NS_SAML}\" ID=\"{id}\" Version=\"2.0\" \
IssueInstant=\"{now}\" Destination=\"{dest}\" InResponseTo=\"{irt}\"><saml:Issuer>{issuer}</saml:Issuer>\
<samlp:Status><samlp:StatusCode Value=\"{status}\">{inner}</samlp:StatusCode></samlp:Status></samlp:LogoutResponse>",
        id = esc(id),
        now = crate::timefmt::format(now),
        dest = esc(destination),
        irt = esc(in_response_to),
        issuer = esc(issuer),
        status = esc(status),
    )
}

const FORMATS: [(&str, &str); 5] = [
    (
        "email",
        "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
    ),
    (
        "unspecified",
        "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
    ),
    (
        "persistent",
        "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
    ),
    (
        "transient",
        "urn:oasis:names:tc:SAML:2.0:nameid-format:transient",
    ),
    ("entity", "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"),
];

/// A NameID Format as a session keeps it: a short name for the usual ones.
pub fn compact_format(uri: &str) -> String {
    FORMATS
        .iter()
        .find(|(_, u)| *u == uri)
        .map_or(uri, |(short, _)| short)
        .to_string()
}

/// The Format URI a session's [`compact_format`] stands for.
pub fn expand_format(kept: &str) -> &str {
    FORMATS
        .iter()
        .find(|(short, _)| *short == kept)
        .map_or(kept, |(_, uri)| uri)
}

/// The HTTP-Redirect endpoint among a party's SingleLogoutService
/// endpoints, else its HTTP-POST one: `(binding, location)`.
pub fn pick_endpoint(endpoints: &[crate::trust::metadata::Endpoint]) -> Option<(&str, &str)> {
    let find = |b: &str| {
        endpoints
            .iter()
            .find(|e| e.binding == b && !e.location.is_empty())
            .map(|e| (e.binding.as_str(), e.location.as_str()))
    };
    find(binding::BINDING_REDIRECT).or_else(|| find(binding::BINDING_POST))
}
