//! Any SAML service provider, with roles named in the configuration.

use super::{ConsoleKind, NameIdSource, Profile};

pub static PROFILE: Profile = Profile {
    kind: ConsoleKind::Generic,
    label: "Generic SAML service provider",
    roles: &[],
    idp_initiated_only: false,
    identifier_pattern: None,
    reply_url_pattern: None,
    default_nameid: NameIdSource::Email,
    role_attribute: "roles",
    scope_attribute: "scope",
    users_must_exist: false,
    scoped_roles: false,
    accepts_ecdsa: true,
    notes: "Any SAML SP; roles are whatever the rules name.",
};
