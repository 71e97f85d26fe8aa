//! A mock Entra ID tenant's SAML side: builds Responses shaped as Entra
//! sends them (claim names, NameID, conditions, one signed Assertion) and
//! signs them with the tenant's key through fedgate's XML-DSig signer.
//! Used by the benchmarks, tests, and (later) the demo and drills.

use crate::xml::escape as esc;
use std::fmt::Write;

use time::{Duration, OffsetDateTime};

use crate::inbound::saml::claims;
use crate::trust::signing::SigningKey;
use crate::xml::dsig::{sign_enveloped, SignError};

/// A user of the mock tenant.
#[derive(Debug, Clone)]
pub struct MockUser {
    pub object_id: String,
    pub upn: String,
    pub display_name: String,
    pub groups: Vec<String>,
    pub roles: Vec<String>,
    pub mfa: bool,
    /// Send Entra's overage link instead of the groups (as for a user in
    /// more than 150 groups).
    pub groups_overage: bool,
}

/// Where and when the response goes.
#[derive(Debug, Clone)]
pub struct MockLogin {
    pub tenant_id: String,
    pub sp_entity_id: String,
    pub acs_url: String,
    pub issue_instant: OffsetDateTime,
    pub in_response_to: Option<String>,
    /// A unique suffix for the Response and Assertion IDs.
    pub id_seed: String,
}

impl MockLogin {
    /// The issuer Entra uses for this tenant in SAML.
    pub fn issuer(&self) -> String {
        format!("https://sts.windows.net/{}/", self.tenant_id)
    }
}

fn ts(t: OffsetDateTime) -> String {
    crate::timefmt::format(t)
}

/// The unsigned Response XML, as Entra lays it out. Returns the XML and the Assertion ID.
pub fn response_xml(user: &MockUser, login: &MockLogin) -> (String, String) {
    let response_id = format!("_r{}", login.id_seed);
    let assertion_id = format!("_a{}", login.id_seed);
    let issuer = esc(&login.issuer());
    let now = login.issue_instant;
    let irt = login
        .in_response_to
        .as_ref()
        .map(|i| format!(" InResponseTo=\"{}\"", esc(i)))
        .unwrap_or_default();
    let mut attrs = String::new();
    let mut attr = |name: &str, values: &[String]| {
        if values.is_empty() {
            return;
        }
        let _ = write!(attrs, "<Attribute Name=\"{name}\">");
        for v in values {
            let _ = write!(attrs, "<AttributeValue>{}</AttributeValue>", esc(v));
        }
        attrs.push_str("</Attribute>");
    };
    attr(claims::TENANT_ID, std::slice::from_ref(&login.tenant_id));
    attr(claims::OBJECT_ID, std::slice::from_ref(&user.object_id));
    attr(
        claims::DISPLAY_NAME,
        std::slice::from_ref(&user.display_name),
    );
    attr(
        "http://schemas.microsoft.com/identity/claims/identityprovider",
        &[login.issuer()],
    );
    let mut methods = vec![
        "http://schemas.microsoft.com/ws/2008/06/identity/authenticationmethod/password"
            .to_string(),
    ];
    if user.mfa {
        methods.push(claims::MFA_METHOD.to_string());
    }
    attr(claims::AUTHN_METHODS, &methods);
    attr(claims::EMAIL, std::slice::from_ref(&user.upn));
    attr(claims::NAME, std::slice::from_ref(&user.upn));
    if user.groups_overage {
        attr(
            claims::GROUPS_LINK,
            &[format!(
                "https://graph.windows.net/{}/users/{}/getMemberObjects",
                login.tenant_id, user.object_id
            )],
        );
    } else {
        attr(claims::GROUPS, &user.groups);
    }
    attr(claims::ROLE, &user.roles);

    let xml = format!(
        "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" ID=\"{response_id}\" Version=\"2.0\" \
IssueInstant=\"{now}\" Destination=\"{acs}\"{irt}><Issuer xmlns=\"urn:oasis:names:tc:SAML:2.0:assertion\">{issuer}</Issuer>\
<samlp:Status><samlp:StatusCode Value=\"urn:oasis:names:tc:SAML:2.0:status:Success\"/></samlp:Status>\
<Assertion xmlns=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"{assertion_id}\" IssueInstant=\"{now}\" Version=\"2.0\">\
<Issuer>{issuer}</Issuer><Subject><NameID Format=\"urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress\">{upn}</NameID>\
<SubjectConfirmation Method=\"urn:oasis:names:tc:SAML:2.0:cm:bearer\"><SubjectConfirmationData{irt} NotOnOrAfter=\"{scd_end}\" Recipient=\"{acs}\"/>\
</SubjectConfirmation></Subject><Conditions NotBefore=\"{nb}\" NotOnOrAfter=\"{end}\"><AudienceRestriction><Audience>{aud}</Audience>\
</AudienceRestriction></Conditions><AttributeStatement>{attrs}</AttributeStatement><AuthnStatement AuthnInstant=\"{now}\" SessionIndex=\"{assertion_id}\">\
<AuthnContext><AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:Password</AuthnContextClassRef></AuthnContext></AuthnStatement></Assertion></samlp:Response>",
        now = ts(now),
        acs = esc(&login.acs_url),
        upn = esc(&user.upn),
        scd_end = ts(now + Duration::minutes(5)),
        nb = ts(now - Duration::minutes(5)),
        end = ts(now + Duration::minutes(70)),
        aud = esc(&login.sp_entity_id),
    );
    (xml, assertion_id)
}

/// A Response with its Assertion signed by `key`, as Entra signs by default.
pub fn signed_response(
    user: &MockUser,
    login: &MockLogin,
    key: &SigningKey,
) -> Result<String, SignError> {
    let (xml, assertion_id) = response_xml(user, login);
    sign_enveloped(&xml, &assertion_id, key)
}

/// A user with `n` group object ids, for Entra-sized responses.
pub fn user_with_groups(n: usize) -> MockUser {
    MockUser {
        object_id: "3f2504e0-4f89-11d3-9a0c-0305e82c3301".into(),
        upn: "alice@contoso.example".into(),
        display_name: "Alice Example".into(),
        groups: (0..n)
            .map(|i| format!("{i:08x}-7a1b-4c2d-9e3f-0a1b2c3d4e5f"))
            .collect(),
        roles: vec!["Backup.Operator".into()],
        mfa: true,
        groups_overage: false,
    }
}

/// Federation metadata as Entra publishes it for a tenant (the parts fedgate
/// reads: entity id, signing certificates, SSO endpoints), for `certs` in
/// order (during a rollover Entra lists several).
pub fn federation_metadata(tenant_id: &str, certs: &[&crate::trust::certs::TrustedCert]) -> String {
    federation_metadata_at("https://login.microsoftonline.com", tenant_id, certs)
}

/// The same, with the sign-in endpoints at `base` (a mock tenant on loopback).
pub fn federation_metadata_at(
    base: &str,
    tenant_id: &str,
    certs: &[&crate::trust::certs::TrustedCert],
) -> String {
    use base64::Engine;
    let mut kds = String::new();
    for c in certs {
        let _ = write!(
            kds,
            "<KeyDescriptor use=\"signing\"><KeyInfo xmlns=\"http://www.w3.org/2000/09/xmldsig#\"><X509Data><X509Certificate>{}</X509Certificate></X509Data></KeyInfo></KeyDescriptor>",
            base64::engine::general_purpose::STANDARD.encode(&c.der)
        );
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><EntityDescriptor ID=\"_{tenant_id}\" entityID=\"https://sts.windows.net/{tenant_id}/\" xmlns=\"urn:oasis:names:tc:SAML:2.0:metadata\">\
<IDPSSODescriptor protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">{kds}\
<SingleLogoutService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect\" Location=\"{base}/{tenant_id}/saml2\"/>\
<SingleSignOnService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect\" Location=\"{base}/{tenant_id}/saml2\"/>\
<SingleSignOnService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST\" Location=\"{base}/{tenant_id}/saml2\"/>\
</IDPSSODescriptor></EntityDescriptor>"
    )
}
