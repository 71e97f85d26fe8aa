//! The SAML 2.0 HTTP bindings fedgate reads and writes (SAML Bindings §3.4
//! HTTP-Redirect, §3.5 HTTP-POST), whatever the message: a console's
//! AuthnRequest, a LogoutRequest or LogoutResponse from a tenant or a
//! console. Decoding is bounded before anything is parsed: the query or
//! form field by size, DEFLATE by what it inflates to (a small input can
//! inflate a thousandfold).
//!
//! - HTTP-Redirect: the message is raw DEFLATE + base64 in the query, as
//!   `SAMLRequest` or `SAMLResponse`; a signature is the query's `SigAlg`
//!   and `Signature`, over the octets `SAMLRequest=…&RelayState=…&SigAlg=…`
//!   exactly as they were encoded in the URL (§3.4.4.1), never re-encoded.
//! - HTTP-POST: the message is base64 of the XML in a form field; its
//!   signature is an enveloped `ds:Signature` on the root, which the reader
//!   of the message verifies with fedgate's XML-DSig profile.

use std::io::{Read, Write};

use base64::Engine;

use crate::trust::certs::{SigAlg, TrustedCert};
use crate::trust::signing::SigningKey;
use crate::xml::dsig;

/// Largest message accepted, decoded (and inflated): real ones are one or
/// two kilobytes.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Largest `RelayState` carried through (the binding says 80 bytes; SPs
/// such as python3-saml put a return URL there).
pub const MAX_RELAY_STATE_BYTES: usize = 2048;

pub const BINDING_REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
pub const BINDING_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";

/// An HTTP-POST binding form (§3.5.4) as posted to an endpoint: the
/// message's field (`SAMLResponse` at the ACS) once and `RelayState` at most
/// once, other fields ignored, both URL-decoded (the message is still
/// base64).
#[derive(Debug)]
pub struct PostForm {
    pub message: String,
    pub relay_state: Option<String>,
}

impl PostForm {
    /// The form in `body`, if the content type is
    /// `application/x-www-form-urlencoded` (parameters allowed) and `field`
    /// is there once; `None` for anything else (fail closed: the field
    /// twice, a bad escape, a body that is not UTF-8). One pass over the
    /// body ([`crate::util::form_fields`]): a generic form decoder took 3% of
    /// a login's CPU (docs/performance.md).
    pub fn read(content_type: Option<&str>, body: &[u8], field: &str) -> Option<PostForm> {
        let form = content_type
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !form {
            return None;
        }
        let [message, relay_state] = crate::util::form_fields(body, [field, "RelayState"])?;
        Some(PostForm {
            message: message?,
            relay_state,
        })
    }
}

/// A message as it arrived.
#[derive(Debug, Clone, Copy)]
pub enum Incoming<'a> {
    /// HTTP-Redirect: the raw query string (its encoding is what is signed).
    Redirect { query: &'a str },
    /// HTTP-POST: the form's fields (`SAMLRequest` or `SAMLResponse`).
    Post {
        saml_request: Option<&'a str>,
        saml_response: Option<&'a str>,
        relay_state: Option<&'a str>,
    },
}

/// Which of the two a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Response,
}

impl Kind {
    pub fn param(self) -> &'static str {
        match self {
            Kind::Request => "SAMLRequest",
            Kind::Response => "SAMLResponse",
        }
    }
}

/// A decoded message, not yet parsed or verified.
#[derive(Debug)]
pub struct Message {
    pub kind: Kind,
    pub xml: String,
    pub relay_state: Option<String>,
    /// HTTP-Redirect's signature, when the query carried one.
    pub query_signature: Option<QuerySignature>,
    /// `redirect` or `post`.
    pub binding: &'static str,
}

/// Why a message could not be decoded or its query signature checked.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BindingError {
    #[error("the message is malformed: {0}")]
    Malformed(String),
    #[error("the message is larger than {MAX_MESSAGE_BYTES} bytes")]
    TooLarge,
    #[error("the RelayState is longer than {MAX_RELAY_STATE_BYTES} bytes")]
    RelayStateTooLong,
    #[error("the signature does not hold: {0}")]
    Signature(String),
    #[error("SHA-1 signatures are refused ({0})")]
    Sha1(String),
}

/// Decode a message of either binding.
pub fn decode(incoming: Incoming) -> Result<Message, BindingError> {
    let message = match incoming {
        Incoming::Redirect { query } => {
            let q = RedirectQuery::parse(query)?;
            let (kind, raw) = match (q.saml_request, q.saml_response) {
                (Some(r), None) => (Kind::Request, r),
                (None, Some(r)) => (Kind::Response, r),
                (None, None) => {
                    return Err(BindingError::Malformed(
                        "the query has no SAMLRequest or SAMLResponse".into(),
                    ))
                }
                (Some(_), Some(_)) => {
                    return Err(BindingError::Malformed(
                        "the query has both SAMLRequest and SAMLResponse".into(),
                    ))
                }
            };
            let xml = inflate(&base64_field(raw, kind.param())?)?;
            let relay_state = q.relay_state.map(form_field).transpose()?;
            let query_signature = match (q.sig_alg, q.signature) {
                (Some(alg), Some(sig)) => Some(QuerySignature {
                    alg: form_field(alg)?,
                    signature: base64_field(sig, "Signature")?,
                    signed_octets: q.signed_octets(kind, raw),
                }),
                (None, None) => None,
                _ => {
                    return Err(BindingError::Malformed(
                        "SigAlg and Signature come together or not at all".into(),
                    ))
                }
            };
            Message {
                kind,
                xml,
                relay_state,
                query_signature,
                binding: "redirect",
            }
        }
        Incoming::Post {
            saml_request,
            saml_response,
            relay_state,
        } => {
            let (kind, raw) = match (saml_request, saml_response) {
                (Some(r), None) => (Kind::Request, r),
                (None, Some(r)) => (Kind::Response, r),
                _ => {
                    return Err(BindingError::Malformed(
                        "the form carries neither or both of SAMLRequest and SAMLResponse".into(),
                    ))
                }
            };
            if raw.len() > MAX_MESSAGE_BYTES / 3 * 4 + 4 + MAX_MESSAGE_BYTES / 38 {
                return Err(BindingError::TooLarge);
            }
            let bytes = crate::xml::base64_decode(raw)
                .map_err(|_| BindingError::Malformed(format!("{} is not base64", kind.param())))?;
            if bytes.len() > MAX_MESSAGE_BYTES {
                return Err(BindingError::TooLarge);
            }
            let xml = String::from_utf8(bytes)
                .map_err(|_| BindingError::Malformed("the message is not UTF-8".into()))?;
            Message {
                kind,
                xml,
                relay_state: relay_state.map(str::to_string),
                query_signature: None,
                binding: "post",
            }
        }
    };
    if message
        .relay_state
        .as_ref()
        .is_some_and(|r| r.len() > MAX_RELAY_STATE_BYTES)
    {
        return Err(BindingError::RelayStateTooLong);
    }
    Ok(message)
}

/// The HTTP-Redirect binding's signature, from the query.
#[derive(Debug)]
pub struct QuerySignature {
    pub alg: String,
    pub signature: Vec<u8>,
    pub signed_octets: String,
}

impl QuerySignature {
    /// Check it with `certs` (SHA-1 and RSA keys under 2,048 bits refused);
    /// `whose` names their owner in the error.
    pub fn verify(&self, certs: &[TrustedCert], whose: &str) -> Result<(), BindingError> {
        let (alg, uri) = dsig::signature_algorithm_uri(&self.alg).ok_or_else(|| {
            BindingError::Signature(format!(
                "SigAlg {:?} is not one fedgate accepts",
                crate::util::clip(&self.alg, crate::audit::CLIP)
            ))
        })?;
        if alg.is_sha1() {
            return Err(BindingError::Sha1(uri.to_string()));
        }
        let strong = |c: &&TrustedCert| c.rsa_bits() == 0 || c.rsa_bits() >= 2048;
        let verified = certs
            .iter()
            .filter(strong)
            .any(|c| c.verify(alg, self.signed_octets.as_bytes(), &self.signature) == Some(true));
        if verified {
            Ok(())
        } else {
            Err(BindingError::Signature(format!(
                "no certificate of {whose} verifies it"
            )))
        }
    }
}

/// The HTTP-Redirect binding's parameters, raw (still URL-encoded).
#[derive(Default)]
struct RedirectQuery<'a> {
    saml_request: Option<&'a str>,
    saml_response: Option<&'a str>,
    relay_state: Option<&'a str>,
    sig_alg: Option<&'a str>,
    signature: Option<&'a str>,
}

impl<'a> RedirectQuery<'a> {
    fn parse(query: &'a str) -> Result<Self, BindingError> {
        // Base64 grows by 4/3 and URL-encoding by up to 3: a message that
        // inflates under the limit arrives well under it.
        if query.len() > MAX_MESSAGE_BYTES {
            return Err(BindingError::TooLarge);
        }
        let mut q = RedirectQuery::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match name {
                "SAMLRequest" => &mut q.saml_request,
                "SAMLResponse" => &mut q.saml_response,
                "RelayState" => &mut q.relay_state,
                "SigAlg" => &mut q.sig_alg,
                "Signature" => &mut q.signature,
                // Other parameters (a console's own, a login hint) are not signed.
                _ => continue,
            };
            if slot.replace(value).is_some() {
                return Err(BindingError::Malformed(format!(
                    "{name} appears twice in the query"
                )));
            }
        }
        Ok(q)
    }

    /// What the signature covers (SAML Bindings §3.4.4.1): the parameters
    /// as encoded in the URL, in this order, RelayState only when present.
    fn signed_octets(&self, kind: Kind, message: &str) -> String {
        let mut s = format!("{}={message}", kind.param());
        if let Some(r) = self.relay_state {
            s.push_str("&RelayState=");
            s.push_str(r);
        }
        s.push_str("&SigAlg=");
        s.push_str(self.sig_alg.unwrap_or_default());
        s
    }
}

fn form_field(raw: &str) -> Result<String, BindingError> {
    crate::util::form_decode(raw).ok_or_else(|| {
        BindingError::Malformed("a query parameter is not validly URL-encoded".into())
    })
}

/// A base64 field of a query: URL-decoded first; a `+` that was not
/// encoded as `%2B` arrives as a space, and is put back.
fn base64_field(raw: &str, name: &str) -> Result<Vec<u8>, BindingError> {
    let text = form_field(raw)?.replace(' ', "+");
    crate::xml::base64_decode(&text)
        .map_err(|_| BindingError::Malformed(format!("{name} is not base64")))
}

/// Raw INFLATE (the HTTP-Redirect binding's DEFLATE), refusing more than
/// [`MAX_MESSAGE_BYTES`] of output.
fn inflate(raw: &[u8]) -> Result<String, BindingError> {
    let mut out = Vec::new();
    flate2::read::DeflateDecoder::new(raw)
        .take(MAX_MESSAGE_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| BindingError::Malformed("the message is not DEFLATE-compressed".into()))?;
    if out.len() > MAX_MESSAGE_BYTES {
        return Err(BindingError::TooLarge);
    }
    String::from_utf8(out).map_err(|_| BindingError::Malformed("the message is not UTF-8".into()))
}

/// Why fedgate could not encode a message.
#[derive(Debug, thiserror::Error)]
#[error("could not encode the {0} message: {1}")]
pub struct EncodeError(pub &'static str, pub String);

/// The HTTP-Redirect URL carrying `xml` to `location`, signed in the query
/// with `key` when given (RSA-SHA256 or ECDSA-SHA256, as the key is).
pub fn redirect_url(
    location: &str,
    kind: Kind,
    xml: &str,
    relay_state: Option<&str>,
    key: Option<&SigningKey>,
) -> Result<String, EncodeError> {
    let mut deflate =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    deflate
        .write_all(xml.as_bytes())
        .map_err(|e| EncodeError(kind.param(), e.to_string()))?;
    let raw = deflate
        .finish()
        .map_err(|e| EncodeError(kind.param(), e.to_string()))?;
    let enc = crate::util::urlencode;
    let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
    let mut query = format!("{}={}", kind.param(), enc(&b64));
    if let Some(r) = relay_state {
        query.push_str("&RelayState=");
        query.push_str(&enc(r));
    }
    if let Some(key) = key {
        let uri = sig_alg_uri(key.algorithm());
        query.push_str("&SigAlg=");
        query.push_str(&enc(uri));
        let sig = key
            .sign(query.as_bytes())
            .map_err(|e| EncodeError(kind.param(), e.to_string()))?;
        query.push_str("&Signature=");
        query.push_str(&enc(&base64::engine::general_purpose::STANDARD.encode(sig)));
    }
    let sep = if location.contains('?') { '&' } else { '?' };
    Ok(format!("{location}{sep}{query}"))
}

/// The `SigAlg` URI of what a fedgate key signs with.
fn sig_alg_uri(alg: SigAlg) -> &'static str {
    match alg {
        SigAlg::EcdsaSha256 => dsig::ALG_ECDSA_SHA256,
        _ => dsig::ALG_RSA_SHA256,
    }
}

/// The HTTP-POST binding's self-posting form carrying `xml` to `action`:
/// the page's `title`, and where its button says it goes (`to`, without
/// JavaScript).
pub fn post_form(
    action: &str,
    kind: Kind,
    xml: &str,
    relay_state: Option<&str>,
    title: &str,
    to: &str,
) -> String {
    let esc = crate::xml::escape;
    let b64 = base64::engine::general_purpose::STANDARD.encode(xml);
    let relay = relay_state
        .map(|r| {
            format!(
                "<input type=\"hidden\" name=\"RelayState\" value=\"{}\">",
                esc(r)
            )
        })
        .unwrap_or_default();
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
<body onload=\"document.forms[0].submit()\"><form method=\"post\" action=\"{action}\">\
<input type=\"hidden\" name=\"{param}\" value=\"{b64}\">{relay}\
<noscript><p>JavaScript is off: press the button to continue to {to}.</p></noscript>\
<button type=\"submit\">Continue to {to}</button></form></body></html>",
        title = esc(title),
        to = esc(to),
        action = esc(action),
        param = kind.param(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_redirect_round_trips_and_a_changed_octet_breaks_it() {
        let now = time::OffsetDateTime::now_utc();
        let (key_pem, cert_pem) = crate::trust::keys::generate("t", 2, now).unwrap();
        let key = SigningKey::from_pem(&key_pem, &cert_pem).unwrap();
        let cert = TrustedCert::from_pem_bundle(&cert_pem).unwrap().remove(0);
        let xml =
            "<samlp:LogoutRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" ID=\"_a\"/>";
        let url = redirect_url(
            "https://idp.example/slo?x=1",
            Kind::Request,
            xml,
            Some("r s"),
            Some(&key),
        )
        .unwrap();
        let query = url.split_once('?').unwrap().1;
        let m = decode(Incoming::Redirect { query }).unwrap();
        assert_eq!(m.kind, Kind::Request);
        assert_eq!(m.xml, xml);
        assert_eq!(m.relay_state.as_deref(), Some("r s"));
        let sig = m.query_signature.unwrap();
        sig.verify(std::slice::from_ref(&cert), "the test").unwrap();
        // RelayState changed after signing: the octets differ.
        let forged = query.replace("RelayState=r", "RelayState=q");
        let m = decode(Incoming::Redirect { query: &forged }).unwrap();
        assert!(matches!(
            m.query_signature.unwrap().verify(&[cert], "the test"),
            Err(BindingError::Signature(_))
        ));
    }

    #[test]
    fn both_kinds_or_neither_are_refused_and_a_bomb_stops_at_the_limit() {
        for query in [
            "SAMLRequest=a&SAMLResponse=b",
            "RelayState=x",
            "SAMLRequest=a&SAMLRequest=a",
        ] {
            assert!(matches!(
                decode(Incoming::Redirect { query }),
                Err(BindingError::Malformed(_))
            ));
        }
        let zeros = vec![0u8; MAX_MESSAGE_BYTES * 4];
        let mut d = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        d.write_all(&zeros).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(d.finish().unwrap());
        let query = format!("SAMLResponse={}", crate::util::urlencode(&b64));
        assert_eq!(
            decode(Incoming::Redirect { query: &query }).unwrap_err(),
            BindingError::TooLarge
        );
    }
}
