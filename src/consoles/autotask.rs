//! Autotask Endpoint Backup (Datto): IdP-initiated SAML only; Identifier
//! `https://<SUBDOMAIN>.backup.autotask.net/singlesignon/saml/metadata`,
//! Reply URL `.../singlesignon/saml/SSO`; users must already exist in the
//! console and are matched by e-mail (NameID). Roles travel in `Role`, the
//! scope in `Scope`.

use super::{ConsoleKind, NameIdSource, Profile};

pub static PROFILE: Profile = Profile {
    kind: ConsoleKind::Autotask,
    label: "Autotask Endpoint Backup",
    roles: &["Administrator", "Tech", "Business", "Security Admin"],
    saml: true,
    oidc: false,
    api_tokens: false,
    idp_initiated: true,
    sp_initiated: false,
    signs_authn_requests: false,
    identifier_pattern: Some("https://<SUBDOMAIN>.backup.autotask.net/singlesignon/saml/metadata"),
    reply_url_pattern: Some("https://<SUBDOMAIN>.backup.autotask.net/singlesignon/saml/SSO"),
    logout_url_pattern: None,
    oidc_redirect_pattern: None,
    id_token_algs: &[],
    oidc_scopes: "",
    default_nameid: NameIdSource::Email,
    role_attribute: "Role",
    scope_attribute: "Scope",
    users_must_exist: true,
    scoped_roles: false,
    accepts_ecdsa: false,
    notes: "IdP-initiated only. Users are matched by e-mail and must already exist in the console (no provisioning): a login for an unknown user is refused by the console.",
};
