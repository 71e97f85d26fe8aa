//! Entra's claim names in SAML attribute form.

pub const TENANT_ID: &str = "http://schemas.microsoft.com/identity/claims/tenantid";
pub const OBJECT_ID: &str = "http://schemas.microsoft.com/identity/claims/objectidentifier";
pub const DISPLAY_NAME: &str = "http://schemas.microsoft.com/identity/claims/displayname";
pub const EMAIL: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress";
pub const NAME: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name";
pub const GROUPS: &str = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups";
pub const GROUPS_LINK: &str = "http://schemas.microsoft.com/claims/groups.link";
pub const ROLE: &str = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role";
pub const ROLES: &str = "http://schemas.microsoft.com/ws/2008/06/identity/claims/roles";
pub const AUTHN_METHODS: &str = "http://schemas.microsoft.com/claims/authnmethodsreferences";
pub const MFA_METHOD: &str = "http://schemas.microsoft.com/claims/multipleauthn";
