//! Acronis Cyber Protect Cloud-style consoles: roles are granted per tenant
//! level (partner, folder, customer, unit), so every grant carries a scope.
//! SP- and IdP-initiated. Roles travel in `roles`, scopes in `tenant`.

use super::{ConsoleKind, NameIdSource, Profile};

pub static PROFILE: Profile = Profile {
    kind: ConsoleKind::Acronis,
    label: "Acronis Cyber Protect Cloud-style",
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
    idp_initiated_only: false,
    identifier_pattern: None,
    reply_url_pattern: None,
    default_nameid: NameIdSource::Email,
    role_attribute: "roles",
    scope_attribute: "tenant",
    users_must_exist: false,
    scoped_roles: true,
    accepts_ecdsa: false,
    notes: "A role is granted on a tenant level (customer or unit): every rule for this console needs a scope.",
};
