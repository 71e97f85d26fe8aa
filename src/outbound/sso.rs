//! fedgate's IdP single sign-on service: a console's `AuthnRequest`
//! (SP-initiated login), read strictly before fedgate acts on it.
//!
//! Both bindings of SAML 2.0 Bindings are answered at the one
//! `SingleSignOnService` URL fedgate's IdP metadata names
//! (`{public_url}/idp/sso`):
//!
//! - HTTP-Redirect (§3.4): `SAMLRequest` is raw DEFLATE + base64 in the
//!   query; a signature is the query's `SigAlg` and `Signature`, over the
//!   octets `SAMLRequest=…&RelayState=…&SigAlg=…` exactly as they were
//!   encoded in the URL (§3.4.4.1). An XML signature inside a redirected
//!   request is refused: one way to sign per binding.
//! - HTTP-POST (§3.5): `SAMLRequest` is base64 of the XML in a form; a
//!   signature is an enveloped `ds:Signature` on the `AuthnRequest` root,
//!   verified by fedgate's XML-DSig profile (the signed element is the
//!   root, and everything is read from it).
//!
//! What must hold, else a refusal with an `idp.*` code and never a
//! redirect anywhere the request names:
//!
//! - the `Issuer` is a configured console's Identifier (exactly);
//! - `AssertionConsumerServiceURL`, when present, equals that console's
//!   registered reply URL (exactly); an `AssertionConsumerServiceIndex`
//!   stands for it (fedgate knows one reply URL per console), and the
//!   answer always goes to the registered URL;
//! - `ProtocolBinding`, when present, is HTTP-POST (the only way fedgate
//!   answers);
//! - `Destination` is fedgate's SSO URL (required when signed, §3.4.5.2);
//! - `IssueInstant` is no older than ten minutes and not in the future
//!   (with the clock skew allowed);
//! - a console with `authn_requests_signed = true` sends only signed
//!   requests; a signed request is verified with the console's
//!   `certificate_file`, and a signed request from a console without one is
//!   refused (a signature fedgate cannot check is not waved through);
//!   SHA-1 is refused, RSA keys under 2,048 bits too.
//!
//! What the request asks for is kept for the answer: its `ID` (the
//! `InResponseTo`), the console's `RelayState` (returned unchanged),
//! `ForceAuthn`, `IsPassive`, `RequestedAuthnContext`
//! ([`AuthnContextRequest`]) and the `Subject` it expects (a login hint for
//! the tenant, nothing more).

use time::{Duration, OffsetDateTime};

use crate::binding::{self, BindingError};
use crate::identity::ErrorCode;
use crate::trust::certs::TrustedCert;
use crate::xml::dsig::{self, DsigError};
use crate::xml::{self, NS_SAML, NS_SAMLP};

/// The path of fedgate's IdP `SingleSignOnService`.
pub const SSO_PATH: &str = "/idp/sso";
pub use crate::binding::{Incoming, MAX_MESSAGE_BYTES as MAX_REQUEST_BYTES, MAX_RELAY_STATE_BYTES};
/// How old a request may be when it arrives.
pub const MAX_REQUEST_AGE: Duration = Duration::minutes(10);

pub use crate::binding::{BINDING_POST, BINDING_REDIRECT};

/// Entra's authentication context class for a multi-factor sign-in.
pub const AC_ENTRA_MFA: &str = "http://schemas.microsoft.com/claims/multipleauthn";
/// The REFEDS MFA profile's class.
pub const AC_REFEDS_MFA: &str = "https://refeds.org/profile/mfa";
pub const AC_PASSWORD_PROTECTED: &str =
    "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport";
pub const AC_PASSWORD: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:Password";
pub const AC_UNSPECIFIED: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified";

/// What fedgate knows of a console that may send AuthnRequests.
#[derive(Debug, Clone)]
pub struct RequestingConsole {
    pub id: String,
    /// Its SAML entity id (the request's `Issuer`).
    pub identifier: String,
    /// Its registered reply (ACS) URL.
    pub reply_url: String,
    /// Its signing certificate(s), from `certificate_file`.
    pub certs: Vec<TrustedCert>,
    /// `authn_requests_signed = true`: unsigned requests are refused.
    pub require_signed: bool,
}

/// How a console compares the authentication context it asks for
/// (SAML Core §3.3.2.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Comparison {
    Exact,
    Minimum,
    Maximum,
    Better,
}

/// A `RequestedAuthnContext` with class references.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuthnContextRequest {
    pub comparison: Comparison,
    pub classes: Vec<String>,
}

/// What fedgate can tell a console about a sign-in: the tenant's MFA
/// verdict, nothing finer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextAnswer {
    /// The request is met: this class goes in the assertion.
    Met(String),
    /// Met only by a multi-factor sign-in, and this one was not: sign in
    /// again at the tenant asking for MFA (step-up).
    NeedsMfa,
    /// fedgate cannot meet it whatever the sign-in (`NoAuthnContext`).
    Impossible,
}

fn is_mfa_class(c: &str) -> bool {
    c == AC_ENTRA_MFA || c == AC_REFEDS_MFA
}

fn is_password_class(c: &str) -> bool {
    c == AC_PASSWORD_PROTECTED || c == AC_PASSWORD || c == AC_UNSPECIFIED
}

impl AuthnContextRequest {
    /// Whether a sign-in (with or without MFA) meets the request. fedgate
    /// knows two strengths: a password-class sign-in, and a multi-factor
    /// one (stronger); classes it does not know are never claimed.
    pub fn answer(&self, mfa: bool) -> ContextAnswer {
        let mfa_class = self.classes.iter().find(|c| is_mfa_class(c));
        let password_class = self.classes.iter().find(|c| is_password_class(c));
        let met_mfa = |wanted: Option<&String>| match (mfa, wanted) {
            (true, Some(c)) => ContextAnswer::Met(c.clone()),
            (true, None) => ContextAnswer::Met(AC_ENTRA_MFA.to_string()),
            (false, _) => ContextAnswer::NeedsMfa,
        };
        match self.comparison {
            // One of the listed classes, as it is.
            Comparison::Exact => match (password_class, mfa_class) {
                (Some(p), _) if !mfa => ContextAnswer::Met(p.clone()),
                (_, Some(m)) => met_mfa(Some(m)),
                (Some(p), None) => ContextAnswer::Met(p.clone()),
                (None, None) => ContextAnswer::Impossible,
            },
            // A listed class or a stronger one.
            Comparison::Minimum => match (password_class, mfa_class) {
                (Some(p), _) if !mfa => ContextAnswer::Met(p.clone()),
                (Some(_), _) => ContextAnswer::Met(AC_ENTRA_MFA.to_string()),
                (None, Some(m)) => met_mfa(Some(m)),
                (None, None) => ContextAnswer::Impossible,
            },
            // Stronger than every listed class.
            Comparison::Better => {
                if mfa_class.is_some() || self.classes.iter().any(|c| !is_password_class(c)) {
                    ContextAnswer::Impossible
                } else {
                    met_mfa(None)
                }
            }
            // A listed class or a weaker one: a password sign-in meets a
            // password class; an MFA sign-in meets only an MFA class.
            Comparison::Maximum => match (mfa_class, password_class) {
                (Some(m), _) if mfa => ContextAnswer::Met(m.clone()),
                (_, Some(p)) if !mfa => ContextAnswer::Met(p.clone()),
                (Some(_), _) => ContextAnswer::Met(AC_PASSWORD_PROTECTED.to_string()),
                _ => ContextAnswer::Impossible,
            },
        }
    }
}

/// A console's request, checked: what fedgate answers to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConsoleRequest {
    /// The configured console's id.
    pub console: String,
    /// The request's `ID`: the answer's `InResponseTo`.
    pub id: String,
    /// Returned unchanged with the answer.
    pub relay_state: Option<String>,
    pub force_authn: bool,
    pub is_passive: bool,
    pub authn_context: Option<AuthnContextRequest>,
    /// The request's `NameIDPolicy` format, when it named one.
    pub nameid_format: Option<String>,
    /// The user the console expects (`Subject/NameID`): passed to the
    /// tenant as a login hint, never trusted as who signs in.
    pub login_hint: Option<String>,
    /// Whether it was signed (and the signature held).
    pub signed: bool,
    /// `redirect` or `post`.
    pub binding: String,
}

/// Why a console's request is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SsoError {
    #[error("the AuthnRequest is malformed: {0}")]
    Malformed(String),
    #[error("the AuthnRequest is larger than {MAX_REQUEST_BYTES} bytes")]
    TooLarge,
    #[error("the RelayState is longer than {MAX_RELAY_STATE_BYTES} bytes")]
    RelayStateTooLong,
    #[error("no console is configured with the Identifier (entity id) {0:?}")]
    IssuerUnknown(String),
    #[error("the request asks for the answer at {got:?}, but console {console:?} is registered with the reply URL {registered:?} (compared exactly)")]
    AcsMismatch {
        console: String,
        got: String,
        registered: String,
    },
    #[error("the request asks for the answer by {0:?}; fedgate answers by HTTP-POST only")]
    BindingUnsupported(String),
    #[error("the request is addressed to {got:?}, not to fedgate's SSO URL {want:?}")]
    DestinationMismatch { got: String, want: String },
    #[error("the request was issued at {0}, outside the accepted window (ten minutes old at most, not in the future)")]
    Stale(String),
    #[error("console {0:?} is set to sign its AuthnRequests (authn_requests_signed = true), and this one is unsigned")]
    Unsigned(String),
    #[error("the request is signed, but console {0:?} has no certificate_file to check it with")]
    Unverifiable(String),
    #[error("the request's signature does not hold: {0}")]
    Signature(String),
    #[error("SHA-1 signatures are refused ({0})")]
    Sha1(String),
}

impl ErrorCode for SsoError {
    fn code(&self) -> &'static str {
        match self {
            SsoError::Malformed(_) => "idp.request_invalid",
            SsoError::TooLarge => "idp.request_too_large",
            SsoError::RelayStateTooLong => "idp.relay_state_too_long",
            SsoError::IssuerUnknown(_) => "idp.issuer_unknown",
            SsoError::AcsMismatch { .. } => "idp.acs_mismatch",
            SsoError::BindingUnsupported(_) => "idp.binding_unsupported",
            SsoError::DestinationMismatch { .. } => "idp.destination_mismatch",
            SsoError::Stale(_) => "idp.request_expired",
            SsoError::Unsigned(_) => "idp.request_unsigned",
            SsoError::Unverifiable(_) => "idp.signature_unverifiable",
            SsoError::Signature(_) => "idp.signature_invalid",
            SsoError::Sha1(_) => "idp.sha1_forbidden",
        }
    }
}

impl From<BindingError> for SsoError {
    fn from(e: BindingError) -> Self {
        match e {
            BindingError::Malformed(m) => SsoError::Malformed(m),
            BindingError::TooLarge => SsoError::TooLarge,
            BindingError::RelayStateTooLong => SsoError::RelayStateTooLong,
            BindingError::Signature(m) => SsoError::Signature(m),
            BindingError::Sha1(a) => SsoError::Sha1(a),
        }
    }
}

impl From<DsigError> for SsoError {
    fn from(e: DsigError) -> Self {
        match e {
            DsigError::Sha1(a) => SsoError::Sha1(a),
            other => SsoError::Signature(other.to_string()),
        }
    }
}

/// Read and check a console's AuthnRequest. `sso_url` is fedgate's own
/// (`{public_url}/idp/sso`), `skew` the clock skew allowed.
pub fn read(
    incoming: Incoming,
    consoles: &[RequestingConsole],
    sso_url: &str,
    now: OffsetDateTime,
    skew: Duration,
) -> Result<ConsoleRequest, SsoError> {
    let message = binding::decode(incoming)?;
    if message.kind != binding::Kind::Request {
        return Err(SsoError::Malformed(
            "a SAMLResponse sent to the single sign-on service".into(),
        ));
    }
    let (xml_text, query_signature, binding) =
        (message.xml, message.query_signature, message.binding);
    let relay_state = message.relay_state;
    let doc = xml::parse_message(&xml_text).map_err(|e| SsoError::Malformed(e.to_string()))?;
    let root = doc.root_element();
    if !xml::is(&root, NS_SAMLP, "AuthnRequest") {
        return Err(SsoError::Malformed(format!(
            "the message is a {:?}, not a samlp:AuthnRequest",
            root.tag_name().name()
        )));
    }
    if root.attribute("Version") != Some("2.0") {
        return Err(SsoError::Malformed("Version is not 2.0".into()));
    }
    let id = root
        .attribute("ID")
        .filter(|i| !i.is_empty() && i.len() <= 256)
        .ok_or_else(|| {
            SsoError::Malformed("the request has no ID (or one over 256 characters)".into())
        })?;

    // Who asks: the Issuer names the console, whose certificate then
    // decides whether the request is what that console sent.
    let issuer = xml::only_child(root, NS_SAML, "Issuer")
        .map_err(|()| SsoError::Malformed("more than one Issuer".into()))?
        .map(|i| xml::trimmed_text(i).into_owned())
        .filter(|i| !i.is_empty())
        .ok_or_else(|| SsoError::Malformed("the request has no Issuer".into()))?;
    let console = consoles
        .iter()
        .find(|c| !c.identifier.is_empty() && c.identifier == issuer)
        .ok_or_else(|| SsoError::IssuerUnknown(crate::util::clip(&issuer, crate::audit::CLIP)))?;

    let xml_signature = dsig::signature_child(root)?;
    let signed = match (query_signature, xml_signature) {
        (Some(_), Some(_)) => {
            return Err(SsoError::Malformed(
                "signed twice (query and XML): the HTTP-Redirect binding signs in the query only"
                    .into(),
            ))
        }
        (None, Some(_)) if binding == "redirect" => {
            return Err(SsoError::Malformed(
                "an XML signature inside a redirected request: the HTTP-Redirect binding signs in the query (SigAlg, Signature)".into(),
            ))
        }
        (Some(q), None) => {
            if console.certs.is_empty() {
                return Err(SsoError::Unverifiable(console.id.clone()));
            }
            q.verify(&console.certs, &format!("console {:?}", console.id))?;
            true
        }
        (None, Some(sig)) => {
            if console.certs.is_empty() {
                return Err(SsoError::Unverifiable(console.id.clone()));
            }
            dsig::verify_enveloped(root, sig, &console.certs, &dsig::Profile::default())?;
            true
        }
        (None, None) if console.require_signed => {
            return Err(SsoError::Unsigned(console.id.clone()))
        }
        (None, None) => false,
    };

    match root.attribute("Destination") {
        Some(d) if d != sso_url => {
            return Err(SsoError::DestinationMismatch {
                got: crate::util::clip(d, crate::audit::CLIP),
                want: sso_url.to_string(),
            })
        }
        None if signed => {
            return Err(SsoError::Malformed(
                "a signed request must name its Destination (SAML Bindings §3.4.5.2, §3.5.5.2)"
                    .into(),
            ))
        }
        _ => {}
    }
    let issued = root
        .attribute("IssueInstant")
        .ok_or_else(|| SsoError::Malformed("the request has no IssueInstant".into()))?;
    let at = crate::timefmt::parse(issued)
        .ok_or_else(|| SsoError::Malformed(format!("IssueInstant {issued:?} is not a time")))?;
    if at > now + skew || at < now - MAX_REQUEST_AGE - skew {
        return Err(SsoError::Stale(issued.to_string()));
    }
    let acs_url = root.attribute("AssertionConsumerServiceURL");
    let acs_index = root.attribute("AssertionConsumerServiceIndex");
    if acs_url.is_some() && acs_index.is_some() {
        return Err(SsoError::Malformed(
            "AssertionConsumerServiceURL and AssertionConsumerServiceIndex together (SAML Core §3.4.1)"
                .into(),
        ));
    }
    if let Some(url) = acs_url {
        if url != console.reply_url {
            return Err(SsoError::AcsMismatch {
                console: console.id.clone(),
                got: crate::util::clip(url, crate::audit::CLIP),
                registered: console.reply_url.clone(),
            });
        }
    }
    if let Some(i) = acs_index {
        if i.parse::<u16>().is_err() {
            return Err(SsoError::Malformed(format!(
                "AssertionConsumerServiceIndex {:?} is not a number",
                crate::util::clip(i, 16)
            )));
        }
    }
    if let Some(b) = root.attribute("ProtocolBinding") {
        if b != BINDING_POST {
            return Err(SsoError::BindingUnsupported(crate::util::clip(
                b,
                crate::audit::CLIP,
            )));
        }
    }
    let flag = |name: &str| -> Result<bool, SsoError> {
        match root.attribute(name) {
            None | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") => Ok(true),
            Some(other) => Err(SsoError::Malformed(format!(
                "{name} is {:?}, not a boolean",
                crate::util::clip(other, 16)
            ))),
        }
    };
    let force_authn = flag("ForceAuthn")?;
    let is_passive = flag("IsPassive")?;
    let nameid_format = xml::only_child(root, NS_SAMLP, "NameIDPolicy")
        .map_err(|()| SsoError::Malformed("more than one NameIDPolicy".into()))?
        .and_then(|p| p.attribute("Format"))
        .map(str::to_string);
    let authn_context = requested_context(root)?;
    let login_hint = xml::only_child(root, NS_SAML, "Subject")
        .ok()
        .flatten()
        .and_then(|subject| xml::only_child(subject, NS_SAML, "NameID").ok().flatten())
        .map(|n| xml::trimmed_text(n).into_owned())
        .filter(|n| !n.is_empty() && n.len() <= 256);
    Ok(ConsoleRequest {
        console: console.id.clone(),
        id: id.to_string(),
        relay_state,
        force_authn,
        is_passive,
        authn_context,
        nameid_format,
        login_hint,
        signed,
        binding: binding.to_string(),
    })
}

/// At most this many class references are read (SPs send one or two).
const MAX_CONTEXT_CLASSES: usize = 16;

fn requested_context(root: xml::Node) -> Result<Option<AuthnContextRequest>, SsoError> {
    let Some(rac) = xml::only_child(root, NS_SAMLP, "RequestedAuthnContext")
        .map_err(|()| SsoError::Malformed("more than one RequestedAuthnContext".into()))?
    else {
        return Ok(None);
    };
    let comparison = match rac.attribute("Comparison") {
        None | Some("exact") => Comparison::Exact,
        Some("minimum") => Comparison::Minimum,
        Some("maximum") => Comparison::Maximum,
        Some("better") => Comparison::Better,
        Some(other) => {
            return Err(SsoError::Malformed(format!(
                "RequestedAuthnContext Comparison {:?} is not exact, minimum, maximum or better",
                crate::util::clip(other, 32)
            )))
        }
    };
    if xml::children(rac, NS_SAML, "AuthnContextDeclRef")
        .next()
        .is_some()
    {
        // Declarations are not something fedgate can meet: say so as a
        // class fedgate does not know (NoAuthnContext).
        return Ok(Some(AuthnContextRequest {
            comparison,
            classes: Vec::new(),
        }));
    }
    let mut classes = Vec::new();
    for c in xml::children(rac, NS_SAML, "AuthnContextClassRef") {
        if classes.len() == MAX_CONTEXT_CLASSES {
            return Err(SsoError::Malformed(format!(
                "more than {MAX_CONTEXT_CLASSES} AuthnContextClassRef"
            )));
        }
        classes.push(xml::trimmed_text(c).into_owned());
    }
    Ok(Some(AuthnContextRequest {
        comparison,
        classes,
    }))
}
