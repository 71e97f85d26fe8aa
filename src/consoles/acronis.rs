//! Acronis Cyber Protect Cloud: roles are granted per tenant level
//! (partner, folder, customer, unit), so every grant carries a scope. Two
//! ways in: SAML (its Microsoft Entra ID integration, SP- and
//! IdP-initiated: Identifier `urn:cyber:protect:saml:<YOUR_ID>`, Reply URL
//! `https://<HOST>/api/2/saml/callback`, Logout URL
//! `https://<HOST>/api/2/saml/logout`), and OIDC (fedgate as its OpenID
//! provider, the flavour fedgate had first). Users must already exist.
//! Roles travel in `roles`, scopes in `tenant` (fedgate's guess: the
//! console's docs name no role attribute for SAML).

use super::{ConsoleKind, NameIdSource, Profile};

pub static PROFILE: Profile = Profile {
    kind: ConsoleKind::Acronis,
    label: "Acronis Cyber Protect Cloud",
    roles: &[
        "partner_admin",
        "company_admin",
        "unit_admin",
        "root_admin",
        "readonly_admin",
        "backup_admin",
        "backup_user",
        "monitoring_admin",
    ],
    saml: true,
    oidc: true,
    api_tokens: false,
    idp_initiated: true,
    sp_initiated: true,
    signs_authn_requests: false,
    identifier_pattern: Some("urn:cyber:protect:saml:<YOUR_ID>"),
    reply_url_pattern: Some("https://<HOST>/api/2/saml/callback"),
    logout_url_pattern: Some("https://<HOST>/api/2/saml/logout"),
    oidc_redirect_pattern: None,
    id_token_algs: &[],
    oidc_scopes: "openid profile email",
    default_nameid: NameIdSource::Email,
    role_attribute: "roles",
    scope_attribute: "tenant",
    users_must_exist: true,
    scoped_roles: true,
    accepts_ecdsa: false,
    notes: "A role is granted on a tenant level (customer or unit): every rule for this console needs a scope. Users must already exist in Acronis (matched by e-mail). SAML: SP- and IdP-initiated; an optional token-encryption certificate (not yet used by fedgate).",
};
