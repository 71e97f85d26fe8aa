//! Commvault-style consoles: security associations of (user or group,
//! role, entity). NameID is the e-mail or UPN; Entra group *names* must equal
//! Commvault user-group names. Roles travel in `UserGroups`, the company in
//! `Company`.

use super::{ConsoleKind, NameIdSource, Profile};

pub static PROFILE: Profile = Profile {
    kind: ConsoleKind::Commvault,
    label: "Commvault-style",
    roles: &[
        "Master",
        "Tenant Admin",
        "Tenant Users",
        "End Users",
        "Client Admins",
        "BackupAdmin",
        "BackupOperator",
        "BackupUser",
        "SecurityAdmin",
    ],
    idp_initiated_only: false,
    identifier_pattern: None,
    reply_url_pattern: None,
    default_nameid: NameIdSource::Email,
    role_attribute: "UserGroups",
    scope_attribute: "Company",
    users_must_exist: false,
    scoped_roles: false,
    accepts_ecdsa: false,
    notes: "Roles are Commvault user-group names; the scope is the company. Its API layer takes OAuth access tokens (token exchange).",
};
