//! Commvault (Command Center / Web Console, and Commvault Cloud): security
//! associations of (user or group, role, entity). SAML with fedgate as the
//! IdP, SP- and IdP-initiated, the AuthnRequests signed: Identifier and
//! Reply URL both `https://<HOST>/webconsole` (the docs write
//! `https://hostname:443/webconsole`); NameID the UPN by default; Entra group
//! *names* must equal Commvault user-group names; the company name for
//! multi-tenant CommCells. Its OIDC login calls back to
//! `/webconsole/openIdConnectCallback.do` with `scope=openid email` and takes
//! RS256 only. Its REST API takes bearer tokens (the token exchange).

use super::{ConsoleKind, NameIdSource, Profile};

pub static PROFILE: Profile = Profile {
    kind: ConsoleKind::Commvault,
    label: "Commvault",
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
    saml: true,
    oidc: true,
    api_tokens: true,
    idp_initiated: true,
    sp_initiated: true,
    signs_authn_requests: true,
    identifier_pattern: Some("https://<HOST>/webconsole"),
    reply_url_pattern: Some("https://<HOST>/webconsole"),
    logout_url_pattern: None,
    oidc_redirect_pattern: Some("https://<HOST>/webconsole/openIdConnectCallback.do"),
    id_token_algs: &["RS256"],
    oidc_scopes: "openid email",
    default_nameid: NameIdSource::Upn,
    role_attribute: "UserGroups",
    scope_attribute: "Company",
    users_must_exist: false,
    scoped_roles: false,
    accepts_ecdsa: false,
    notes: "Roles are Commvault user-group names (equal to the Entra group names); the scope is the company. NameID: the UPN. Signed AuthnRequests: give fedgate the console's certificate. OIDC: RS256 ID tokens only. Its API layer takes OAuth access tokens (token exchange).",
};
