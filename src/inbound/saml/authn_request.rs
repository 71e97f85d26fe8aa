//! SP-initiated SAML: the AuthnRequest fedgate sends to the tenant's IdP
//! with the HTTP-Redirect binding (SAML 2.0 Bindings §3.4): raw DEFLATE,
//! base64, URL-encoded, unsigned (fedgate's SP metadata says
//! `AuthnRequestsSigned="false"`, which is Entra's default). The request
//! id is kept in the `Store` with where the login should end; the Response
//! must carry it as `InResponseTo`, and each id is answered once.

use std::io::Write;

use base64::Engine;
use time::OffsetDateTime;

use crate::xml::escape as esc;

/// The store namespace of pending AuthnRequests.
pub const REQUEST_NS: &str = "saml-request";
/// How long the IdP may take to answer.
pub const REQUEST_TTL: time::Duration = time::Duration::minutes(10);

/// What fedgate asks of the tenant's sign-in.
#[derive(Debug, Default, Clone, Copy)]
pub struct Ask<'a> {
    /// ForceAuthn (Core §3.4.1): the IdP must authenticate the user
    /// afresh, not reuse its session (the OpenID provider's prompt=login,
    /// max_age; a console's own ForceAuthn).
    pub force_authn: bool,
    /// A multi-factor sign-in: `RequestedAuthnContext` (exact) with these
    /// classes (Entra: `http://schemas.microsoft.com/claims/multipleauthn`,
    /// which it honours by asking for a second factor; another IdP: its
    /// claim map's `mfa_values`). Empty: no RequestedAuthnContext.
    pub mfa_classes: &'a [String],
}

/// The classes a step-up asks a tenant for: its claim map's `mfa_values`
/// when its MFA comes from the authentication context, else Entra's.
pub fn mfa_classes(claims: &super::claims::ClaimNames) -> Vec<String> {
    if claims
        .mfa
        .iter()
        .any(|m| m == super::claims::FROM_AUTHN_CONTEXT)
    {
        claims.mfa_values.clone()
    } else {
        vec![super::claims::MFA_METHOD.to_string()]
    }
}

/// The AuthnRequest XML.
pub fn authn_request(
    id: &str,
    sp_entity_id: &str,
    acs_url: &str,
    destination: &str,
    ask: &Ask,
    now: OffsetDateTime,
) -> String {
    let force = if ask.force_authn {
        " ForceAuthn=\"true\""
    } else {
        ""
    };
    let context = if ask.mfa_classes.is_empty() {
        String::new()
    } else {
        let refs: String = ask
            .mfa_classes
            .iter()
            .map(|c| {
                format!(
                    "<saml:AuthnContextClassRef>{}</saml:AuthnContextClassRef>",
                    esc(c)
                )
            })
            .collect();
        format!("<samlp:RequestedAuthnContext Comparison=\"exact\">{refs}</samlp:RequestedAuthnContext>")
    };
    format!(
        "<samlp:AuthnRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" \
ID=\"{}\" Version=\"2.0\" IssueInstant=\"{}\" Destination=\"{}\" AssertionConsumerServiceURL=\"{}\"{force} \
ProtocolBinding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST\">\
<saml:Issuer>{}</saml:Issuer>\
<samlp:NameIDPolicy Format=\"urn:oasis:names:tc:SAML:2.0:nameid-format:persistent\" AllowCreate=\"true\"/>{context}\
</samlp:AuthnRequest>",
        esc(id),
        crate::timefmt::format(now),
        esc(destination),
        esc(acs_url),
        esc(sp_entity_id)
    )
}

/// The HTTP-Redirect binding's URL: `{sso}?SAMLRequest=…&RelayState=…`
/// (plus `login_hint`, which Entra honours on its SAML endpoint).
pub fn redirect_url(
    sso_url: &str,
    request_xml: &str,
    relay_state: &str,
    login_hint: Option<&str>,
) -> std::io::Result<String> {
    let mut deflate =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    deflate.write_all(request_xml.as_bytes())?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(deflate.finish()?);
    let enc = crate::util::urlencode;
    let sep = if sso_url.contains('?') { '&' } else { '?' };
    let mut url = format!(
        "{sso_url}{sep}SAMLRequest={}&RelayState={}",
        enc(&b64),
        enc(relay_state)
    );
    if let Some(h) = login_hint {
        url.push_str(&format!("&login_hint={}", enc(h)));
    }
    Ok(url)
}

/// Decode a `SAMLRequest` of the HTTP-Redirect binding (for the mock IdP
/// and the admin tools): base64, then raw INFLATE, at most 64 KiB.
pub fn decode_redirect(saml_request: &str) -> Option<String> {
    use std::io::Read;
    let raw = crate::xml::base64_decode(saml_request).ok()?;
    let mut out = String::new();
    flate2::read::DeflateDecoder::new(&raw[..])
        .take(64 * 1024)
        .read_to_string(&mut out)
        .ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_redirect_binding_round_trips_and_the_request_parses() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let xml = authn_request(
            "_id1",
            "https://fedgate.example/saml/contoso/metadata",
            "https://fedgate.example/saml/contoso/acs",
            "https://login.microsoftonline.com/t/saml2",
            &Ask::default(),
            now,
        );
        assert!(!xml.contains("ForceAuthn") && !xml.contains("RequestedAuthnContext"));
        let force = Ask {
            force_authn: true,
            mfa_classes: &[],
        };
        assert!(authn_request("_id2", "sp", "acs", "sso", &force, now)
            .contains(" ForceAuthn=\"true\" "));
        let classes = mfa_classes(&Default::default());
        let mfa = Ask {
            force_authn: true,
            mfa_classes: &classes,
        };
        let stepped = authn_request("_id3", "sp", "acs", "sso", &mfa, now);
        let doc = crate::xml::parse(&stepped).unwrap();
        let ctx = doc
            .descendants()
            .find(|n| n.tag_name().name() == "AuthnContextClassRef")
            .unwrap();
        assert_eq!(
            crate::xml::text_content(ctx),
            "http://schemas.microsoft.com/claims/multipleauthn"
        );
        let url = redirect_url(
            "https://login.microsoftonline.com/t/saml2",
            &xml,
            "req:_id1",
            None,
        )
        .unwrap();
        let q = url.split_once('?').unwrap().1;
        let req = q
            .split('&')
            .find_map(|kv| kv.strip_prefix("SAMLRequest="))
            .unwrap();
        let req = req
            .replace("%2B", "+")
            .replace("%2F", "/")
            .replace("%3D", "=");
        let back = decode_redirect(&req).unwrap();
        assert_eq!(back, xml);
        let doc = crate::xml::parse(&back).unwrap();
        assert_eq!(doc.root_element().attribute("ID"), Some("_id1"));
        assert!(url.contains("RelayState=req%3A_id1"));
    }
}
