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

use std::io::Read;

use time::{Duration, OffsetDateTime};

use crate::identity::ErrorCode;
use crate::trust::certs::TrustedCert;
use crate::xml::dsig::{self, DsigError};
use crate::xml::{self, NS_SAML, NS_SAMLP};

/// The path of fedgate's IdP `SingleSignOnService`.
pub const SSO_PATH: &str = "/idp/sso";
/// Largest AuthnRequest accepted, decoded (and inflated): real ones are
/// one or two kilobytes.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// Largest `RelayState` carried through (the binding says 80 bytes; SPs
/// such as python3-saml put a return URL there).
pub const MAX_RELAY_STATE_BYTES: usize = 2048;
/// How old a request may be when it arrives.
pub const MAX_REQUEST_AGE: Duration = Duration::minutes(10);

pub const BINDING_REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
pub const BINDING_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";

/// Entra's authentication context class for a multi-factor sign-in.
pub const AC_ENTRA_MFA: &str = "http://schemas.microsoft.com/claims/multipleauthn";
/// The REFEDS MFA profile's class.
pub const AC_REFEDS_MFA: &str = "https://refeds.org/profile/mfa";
pub const AC_PASSWORD_PROTECTED: &str =
    "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport";
pub const AC_PASSWORD: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:Password";
pub const AC_UNSPECIFIED: &str = "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified";

/// A request as it arrived.
#[derive(Debug, Clone, Copy)]
pub enum Incoming<'a> {
    /// HTTP-Redirect: the raw query string (its encoding is what is signed).
    Redirect { query: &'a str },
    /// HTTP-POST: the form's fields.
    Post {
        saml_request: &'a str,
        relay_state: Option<&'a str>,
    },
}

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
    let (xml_text, relay_state, query_signature, binding) = match incoming {
        Incoming::Redirect { query } => {
            let q = RedirectQuery::parse(query)?;
            let saml_request = q
                .saml_request
                .ok_or_else(|| SsoError::Malformed("the query has no SAMLRequest".into()))?;
            let text = inflate(&base64_field(saml_request, "SAMLRequest")?)?;
            let relay = q.relay_state.map(form_field).transpose()?;
            let signature = match (q.sig_alg, q.signature) {
                (Some(alg), Some(sig)) => Some(QuerySignature {
                    alg: form_field(alg)?,
                    signature: base64_field(sig, "Signature")?,
                    signed_octets: q.signed_octets(),
                }),
                (None, None) => None,
                _ => {
                    return Err(SsoError::Malformed(
                        "SigAlg and Signature come together or not at all".into(),
                    ))
                }
            };
            (text, relay, signature, "redirect")
        }
        Incoming::Post {
            saml_request,
            relay_state,
        } => {
            if saml_request.len() > MAX_REQUEST_BYTES / 3 * 4 + 4 + MAX_REQUEST_BYTES / 38 {
                return Err(SsoError::TooLarge);
            }
            let bytes = base64_field(saml_request, "SAMLRequest")?;
            if bytes.len() > MAX_REQUEST_BYTES {
                return Err(SsoError::TooLarge);
            }
            let text = String::from_utf8(bytes)
                .map_err(|_| SsoError::Malformed("the AuthnRequest is not UTF-8".into()))?;
            (text, relay_state.map(str::to_string), None, "post")
        }
    };
    if relay_state
        .as_ref()
        .is_some_and(|r| r.len() > MAX_RELAY_STATE_BYTES)
    {
        return Err(SsoError::RelayStateTooLong);
    }
    let doc = xml::parse(&xml_text).map_err(|e| SsoError::Malformed(e.to_string()))?;
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
            verify_query_signature(&q, console)?;
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

/// The HTTP-Redirect binding's signature, from the query.
struct QuerySignature {
    alg: String,
    signature: Vec<u8>,
    signed_octets: String,
}

fn verify_query_signature(q: &QuerySignature, console: &RequestingConsole) -> Result<(), SsoError> {
    if console.certs.is_empty() {
        return Err(SsoError::Unverifiable(console.id.clone()));
    }
    let (alg, uri) = dsig::signature_algorithm_uri(&q.alg).ok_or_else(|| {
        SsoError::Signature(format!(
            "SigAlg {:?} is not one fedgate accepts",
            crate::util::clip(&q.alg, crate::audit::CLIP)
        ))
    })?;
    if alg.is_sha1() {
        return Err(SsoError::Sha1(uri.to_string()));
    }
    let strong = |c: &&TrustedCert| c.rsa_bits() == 0 || c.rsa_bits() >= 2048;
    let verified = console
        .certs
        .iter()
        .filter(strong)
        .any(|c| c.verify(alg, q.signed_octets.as_bytes(), &q.signature) == Some(true));
    if verified {
        Ok(())
    } else {
        Err(SsoError::Signature(format!(
            "no certificate of console {:?} verifies it",
            console.id
        )))
    }
}

/// The HTTP-Redirect binding's parameters, raw (still URL-encoded).
#[derive(Default)]
struct RedirectQuery<'a> {
    saml_request: Option<&'a str>,
    relay_state: Option<&'a str>,
    sig_alg: Option<&'a str>,
    signature: Option<&'a str>,
}

impl<'a> RedirectQuery<'a> {
    fn parse(query: &'a str) -> Result<Self, SsoError> {
        // Base64 grows by 4/3 and URL-encoding by up to 3: a request that
        // inflates under the limit arrives well under it.
        if query.len() > MAX_REQUEST_BYTES {
            return Err(SsoError::TooLarge);
        }
        let mut q = RedirectQuery::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match name {
                "SAMLRequest" => &mut q.saml_request,
                "RelayState" => &mut q.relay_state,
                "SigAlg" => &mut q.sig_alg,
                "Signature" => &mut q.signature,
                // Other parameters (a console's own, a login hint) are not signed.
                _ => continue,
            };
            if slot.replace(value).is_some() {
                return Err(SsoError::Malformed(format!(
                    "{name} appears twice in the query"
                )));
            }
        }
        Ok(q)
    }

    /// What the signature covers (SAML Bindings §3.4.4.1): the parameters
    /// as encoded in the URL, in this order, RelayState only when present.
    fn signed_octets(&self) -> String {
        let mut s = format!("SAMLRequest={}", self.saml_request.unwrap_or_default());
        if let Some(r) = self.relay_state {
            s.push_str("&RelayState=");
            s.push_str(r);
        }
        s.push_str("&SigAlg=");
        s.push_str(self.sig_alg.unwrap_or_default());
        s
    }
}

fn form_field(raw: &str) -> Result<String, SsoError> {
    crate::util::form_decode(raw)
        .ok_or_else(|| SsoError::Malformed("a query parameter is not validly URL-encoded".into()))
}

/// A base64 field (URL- or form-decoded first when it came in a query): a
/// `+` that was not encoded as `%2B` arrives as a space, and is put back.
fn base64_field(raw: &str, name: &str) -> Result<Vec<u8>, SsoError> {
    let text = form_field(raw)?.replace(' ', "+");
    xml::base64_decode(&text).map_err(|_| SsoError::Malformed(format!("{name} is not base64")))
}

/// Raw INFLATE (the HTTP-Redirect binding's DEFLATE), refusing more than
/// [`MAX_REQUEST_BYTES`] of output (a small input can inflate a thousandfold).
fn inflate(raw: &[u8]) -> Result<String, SsoError> {
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(raw)
        .take(MAX_REQUEST_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| SsoError::Malformed("SAMLRequest is not DEFLATE-compressed".into()))?;
    if out.len() > MAX_REQUEST_BYTES {
        return Err(SsoError::TooLarge);
    }
    String::from_utf8(out).map_err(|_| SsoError::Malformed("the AuthnRequest is not UTF-8".into()))
}
