//! `fedgate::outbound::sso::read`: a console's AuthnRequest, read strictly
//! (both bindings, signatures, who asks, where the answer goes, limits), and
//! how a requested authentication context is met.

use std::io::Write;

use base64::Engine;

use fedgate::identity::ErrorCode;
use fedgate::outbound::sso::*;
use fedgate::trust::signing::SigningKey;
use fedgate::util::urlencode;
use fedgate::xml::dsig;
use time::{Duration, OffsetDateTime};

const SSO: &str = "https://fedgate.example/idp/sso";
const SP: &str = "https://cv.example/webconsole";
const ACS: &str = "https://cv.example/webconsole/samlAcsIdpInitCallback.do";

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

fn key() -> SigningKey {
    SigningKey::from_pem(
        include_str!("../../fixtures/saml/keys/idp_current_key.pem"),
        include_str!("../../fixtures/saml/keys/idp_current_cert.pem"),
    )
    .unwrap()
}

fn other_key() -> SigningKey {
    SigningKey::from_pem(
        include_str!("../../fixtures/saml/keys/idp_next_key.pem"),
        include_str!("../../fixtures/saml/keys/idp_next_cert.pem"),
    )
    .unwrap()
}

fn console(require_signed: bool, with_cert: bool) -> Vec<RequestingConsole> {
    vec![RequestingConsole {
        id: "commvault".into(),
        identifier: SP.into(),
        reply_url: ACS.into(),
        certs: if with_cert { vec![key().cert] } else { vec![] },
        require_signed,
    }]
}

fn request(extra_attrs: &str, body: &str) -> String {
    format!(
        "<samlp:AuthnRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" \
ID=\"_req1\" Version=\"2.0\" IssueInstant=\"{}\" Destination=\"{SSO}\" AssertionConsumerServiceURL=\"{ACS}\" \
ProtocolBinding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST\"{extra_attrs}><saml:Issuer>{SP}</saml:Issuer>{body}</samlp:AuthnRequest>",
        fedgate::timefmt::format(now() - Duration::seconds(5))
    )
}

fn deflated(xml: &str) -> String {
    let mut d = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    d.write_all(xml.as_bytes()).unwrap();
    base64::engine::general_purpose::STANDARD.encode(d.finish().unwrap())
}

/// The query a redirecting SP sends, signed with `key` when given.
fn redirect_query(xml: &str, relay: Option<&str>, key: Option<&SigningKey>) -> String {
    let mut q = format!("SAMLRequest={}", urlencode(&deflated(xml)));
    if let Some(r) = relay {
        q.push_str(&format!("&RelayState={}", urlencode(r)));
    }
    if let Some(k) = key {
        q.push_str(&format!("&SigAlg={}", urlencode(dsig::ALG_RSA_SHA256)));
        let sig = k.sign(q.as_bytes()).unwrap();
        q.push_str(&format!(
            "&Signature={}",
            urlencode(&base64::engine::general_purpose::STANDARD.encode(sig))
        ));
    }
    q
}

fn read_redirect(q: &str, consoles: &[RequestingConsole]) -> Result<ConsoleRequest, SsoError> {
    read(
        Incoming::Redirect { query: q },
        consoles,
        SSO,
        now(),
        Duration::minutes(3),
    )
}

fn read_post(xml: &str, consoles: &[RequestingConsole]) -> Result<ConsoleRequest, SsoError> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(xml);
    read(
        Incoming::Post {
            saml_request: Some(&b64),
            saml_response: None,
            relay_state: Some("rs"),
        },
        consoles,
        SSO,
        now(),
        Duration::minutes(3),
    )
}

fn code(r: Result<ConsoleRequest, SsoError>) -> &'static str {
    r.err().map(|e| e.code()).unwrap_or("ok")
}

#[test]
fn an_unsigned_redirect_request_is_read_with_what_it_asks_for() {
    let xml = request(
        " ForceAuthn=\"true\"",
        "<samlp:NameIDPolicy Format=\"urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress\"/>\
<samlp:RequestedAuthnContext Comparison=\"exact\"><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></samlp:RequestedAuthnContext>",
    );
    let relay = "https://cv.example/webconsole/applications/#/?a=b c";
    let r = read_redirect(
        &redirect_query(&xml, Some(relay), None),
        &console(false, false),
    )
    .unwrap();
    assert_eq!(r.console, "commvault");
    assert_eq!(r.id, "_req1");
    assert_eq!(
        r.relay_state.as_deref(),
        Some(relay),
        "RelayState comes back unchanged"
    );
    assert!(r.force_authn && !r.is_passive && !r.signed);
    assert_eq!(r.binding, "redirect");
    assert_eq!(
        r.nameid_format.as_deref(),
        Some("urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress")
    );
    let ctx = r.authn_context.unwrap();
    assert_eq!(ctx.comparison, Comparison::Exact);
    assert_eq!(
        ctx.answer(false),
        ContextAnswer::Met(AC_PASSWORD_PROTECTED.into())
    );
}

#[test]
fn a_signed_redirect_request_verifies_over_the_query_as_encoded() {
    let xml = request("", "");
    let consoles = console(true, true);
    let q = redirect_query(&xml, Some("state 1"), Some(&key()));
    let r = read_redirect(&q, &consoles).unwrap();
    assert!(r.signed);
    // Signed by another key; RelayState changed after signing; signature dropped.
    assert_eq!(
        code(read_redirect(
            &redirect_query(&xml, Some("state 1"), Some(&other_key())),
            &consoles
        )),
        "idp.signature_invalid"
    );
    let swapped = q.replace("RelayState=state%201", "RelayState=state%202");
    assert_eq!(
        code(read_redirect(&swapped, &consoles)),
        "idp.signature_invalid"
    );
    assert_eq!(
        code(read_redirect(
            &redirect_query(&xml, Some("state 1"), None),
            &consoles
        )),
        "idp.request_unsigned"
    );
    // Signed, and the console has no certificate to check it with.
    assert_eq!(
        code(read_redirect(&q, &console(false, false))),
        "idp.signature_unverifiable"
    );
    // SHA-1 is refused before any verification.
    let sha1 = q.replace(
        &urlencode(dsig::ALG_RSA_SHA256),
        &urlencode(dsig::ALG_RSA_SHA1),
    );
    assert_eq!(code(read_redirect(&sha1, &consoles)), "idp.sha1_forbidden");
    // A parameter twice.
    assert_eq!(
        code(read_redirect(&format!("{q}&RelayState=x"), &consoles)),
        "idp.request_invalid"
    );
}

#[test]
fn a_signed_post_request_is_verified_on_its_root() {
    let xml = request("", "");
    let signed = fedgate::xml::dsig::sign_enveloped(&xml, "_req1", &key()).unwrap();
    let r = read_post(&signed, &console(true, true)).unwrap();
    assert!(r.signed);
    assert_eq!(r.binding, "post");
    assert_eq!(r.relay_state.as_deref(), Some("rs"));
    let tampered = signed.replace(ACS, "https://cv.example/other");
    assert_ne!(code(read_post(&tampered, &console(true, true))), "ok");
    let by_other = fedgate::xml::dsig::sign_enveloped(&xml, "_req1", &other_key()).unwrap();
    assert_eq!(
        code(read_post(&by_other, &console(true, true))),
        "idp.signature_invalid"
    );
    assert_eq!(
        code(read_post(&xml, &console(true, true))),
        "idp.request_unsigned"
    );
    assert_eq!(code(read_post(&xml, &console(false, true))), "ok");
    // An XML signature inside a redirected request is not how that binding signs.
    assert_eq!(
        code(read_redirect(
            &redirect_query(&signed, None, None),
            &console(false, true)
        )),
        "idp.request_invalid"
    );
}

#[test]
fn who_asks_and_where_the_answer_goes_are_checked_exactly() {
    let c = console(false, false);
    let q = |xml: String| read_redirect(&redirect_query(&xml, None, None), &c);
    assert_eq!(
        code(q(request("", "").replace(SP, "https://evil.example/sp"))),
        "idp.issuer_unknown"
    );
    assert_eq!(
        code(q(request("", "").replace(ACS, "https://evil.example/acs"))),
        "idp.acs_mismatch"
    );
    assert_eq!(
        code(q(request("", "").replace(ACS, &format!("{ACS}/")))),
        "idp.acs_mismatch"
    );
    assert_eq!(
        code(q(request("", "").replace(
            "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST",
            "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact"
        ))),
        "idp.binding_unsupported"
    );
    assert_eq!(
        code(q(
            request("", "").replace(SSO, "https://other.example/idp/sso")
        )),
        "idp.destination_mismatch"
    );
    // An index stands for the registered URL; both at once is malformed.
    let by_index = request("", "").replace(
        &format!("AssertionConsumerServiceURL=\"{ACS}\""),
        "AssertionConsumerServiceIndex=\"0\"",
    );
    assert_eq!(code(q(by_index)), "ok");
    assert_eq!(
        code(q(request(" AssertionConsumerServiceIndex=\"0\"", ""))),
        "idp.request_invalid"
    );
    // Stale and future requests.
    let at = |t: OffsetDateTime| {
        request("", "").replace(
            &fedgate::timefmt::format(now() - Duration::seconds(5)),
            &fedgate::timefmt::format(t),
        )
    };
    assert_eq!(
        code(q(at(now() - Duration::minutes(14)))),
        "idp.request_expired"
    );
    assert_eq!(
        code(q(at(now() + Duration::minutes(4)))),
        "idp.request_expired"
    );
    assert_eq!(code(q(at(now() - Duration::minutes(12)))), "ok");
    // Not an AuthnRequest; no ID; a DTD.
    assert_eq!(
        code(q(request("", "").replace("AuthnRequest", "LogoutRequest"))),
        "idp.request_invalid"
    );
    assert_eq!(
        code(q(request("", "").replace("ID=\"_req1\" ", ""))),
        "idp.request_invalid"
    );
    assert_eq!(
        code(q(format!(
            "<!DOCTYPE x [<!ENTITY a \"b\">]>{}",
            request("", "")
        ))),
        "idp.request_invalid"
    );
}

#[test]
fn oversized_input_is_refused_before_it_is_inflated_whole() {
    let c = console(false, false);
    // 1 MiB of zeros deflates to about a kilobyte.
    let bomb = deflated(&"0".repeat(1 << 20));
    assert!(bomb.len() < 4096);
    let q = format!("SAMLRequest={}", urlencode(&bomb));
    assert_eq!(code(read_redirect(&q, &c)), "idp.request_too_large");
    let long_relay = redirect_query(&request("", ""), Some(&"r".repeat(3000)), None);
    assert_eq!(
        code(read_redirect(&long_relay, &c)),
        "idp.relay_state_too_long"
    );
    assert_eq!(
        code(read_redirect("RelayState=x", &c)),
        "idp.request_invalid"
    );
    assert_eq!(
        code(read_redirect("SAMLRequest=%%%", &c)),
        "idp.request_invalid"
    );
}

#[test]
fn requested_contexts_are_met_only_by_what_the_tenant_did() {
    let ctx = |comparison, classes: &[&str]| AuthnContextRequest {
        comparison,
        classes: classes.iter().map(|c| c.to_string()).collect(),
    };
    use Comparison::*;
    let mfa = ctx(Exact, &[AC_ENTRA_MFA]);
    assert_eq!(mfa.answer(false), ContextAnswer::NeedsMfa);
    assert_eq!(mfa.answer(true), ContextAnswer::Met(AC_ENTRA_MFA.into()));
    let either = ctx(Exact, &[AC_PASSWORD_PROTECTED, AC_REFEDS_MFA]);
    assert_eq!(
        either.answer(false),
        ContextAnswer::Met(AC_PASSWORD_PROTECTED.into())
    );
    assert_eq!(
        either.answer(true),
        ContextAnswer::Met(AC_REFEDS_MFA.into())
    );
    let min = ctx(Minimum, &[AC_PASSWORD_PROTECTED]);
    assert_eq!(min.answer(true), ContextAnswer::Met(AC_ENTRA_MFA.into()));
    assert_eq!(
        ctx(Better, &[AC_PASSWORD]).answer(false),
        ContextAnswer::NeedsMfa
    );
    assert_eq!(
        ctx(Better, &[AC_ENTRA_MFA]).answer(true),
        ContextAnswer::Impossible
    );
    assert_eq!(
        ctx(Maximum, &[AC_ENTRA_MFA]).answer(false),
        ContextAnswer::Met(AC_PASSWORD_PROTECTED.into())
    );
    let smartcard = ctx(Exact, &["urn:oasis:names:tc:SAML:2.0:ac:classes:Smartcard"]);
    assert_eq!(
        smartcard.answer(true),
        ContextAnswer::Impossible,
        "never claimed"
    );
}
