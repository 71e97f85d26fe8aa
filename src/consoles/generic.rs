//! Any SAML service provider, with roles named in the configuration.

use super::{ConsoleKind, NameIdSource, Profile};

pub static PROFILE: Profile = Profile {
    kind: ConsoleKind::Generic,
    label: "Generic SAML service provider or OIDC client",
    roles: &[],
    saml: true,
    oidc: true,
    api_tokens: true,
    idp_initiated: true,
    sp_initiated: true,
    signs_authn_requests: false,
    identifier_pattern: None,
    reply_url_pattern: None,
    logout_url_pattern: None,
    oidc_redirect_pattern: None,
    id_token_algs: &[],
    oidc_scopes: "openid profile email",
    default_nameid: NameIdSource::Email,
    role_attribute: "roles",
    scope_attribute: "scope",
    users_must_exist: false,
    scoped_roles: false,
    accepts_ecdsa: true,
    notes: "Any SAML SP; roles are whatever the rules name.",
};
