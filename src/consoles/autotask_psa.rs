//! Autotask PSA and the Datto partner portal: OpenID Connect, fedgate as
//! the provider (the console is configured with a client id, a client
//! secret and fedgate's discovery URL). Users must be created in the
//! console first and are matched by e-mail; their rights are the console's
//! own security levels, so a rule's role is only fedgate's permission to
//! sign in. The callback URL is the one the console shows (fedgate has no
//! pattern for it); ID tokens RS256 (as the console's setup guides use).

use super::{ConsoleKind, NameIdSource, Profile};

pub static PROFILE: Profile = Profile {
    kind: ConsoleKind::AutotaskPsa,
    label: "Autotask PSA / Datto partner portal",
    roles: &[],
    saml: false,
    oidc: true,
    api_tokens: false,
    idp_initiated: false,
    sp_initiated: false,
    signs_authn_requests: false,
    identifier_pattern: None,
    reply_url_pattern: None,
    logout_url_pattern: None,
    oidc_redirect_pattern: None,
    id_token_algs: &["RS256"],
    oidc_scopes: "openid profile email",
    default_nameid: NameIdSource::Email,
    role_attribute: "roles",
    scope_attribute: "scope",
    users_must_exist: true,
    scoped_roles: false,
    accepts_ecdsa: false,
    notes: "OIDC only. Users must already exist in the console (matched by e-mail); rights are the console's security levels, not fedgate's roles.",
};
