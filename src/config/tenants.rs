//! The sections that name the parties: `[[tenants]]` (a customer's Entra
//! tenant: its metadata, OIDC client, Graph access, keys) and
//! `[[consoles]]` (a backup console fedgate signs users into).

use std::path::PathBuf;

use serde::Deserialize;

use crate::consoles::{ConsoleKind, NameIdSource};

/// One customer's Entra tenant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    /// fedgate's name for the tenant, used in URLs (`/saml/{id}/acs`).
    pub id: String,
    /// The Entra tenant id (GUID). Required, unless the tenant is another
    /// SAML IdP described by a `[tenants.claims]` map.
    #[serde(default)]
    pub entra_tenant_id: String,
    /// The domains this tenant owns: its verified domains in Entra (admin
    /// center → Settings → Domain names), `*.onmicrosoft.com` included.
    /// Matched exactly (case-insensitive): list every subdomain the tenant
    /// uses too. An e-mail or UPN is delivered to a console only in one of
    /// these; without any, no e-mail or UPN of this tenant is. Two tenants
    /// (of different Entra directories) cannot claim the same domain.
    #[serde(default)]
    pub domains: Vec<String>,
    /// The tenant's federation metadata XML (Entra: "Federation Metadata XML").
    /// Without it (and without `metadata_url`) the tenant signs in by OIDC only.
    pub metadata_file: Option<PathBuf>,
    /// …or its URL (Entra: "App Federation Metadata Url"), fetched at start
    /// and every `metadata_refresh_secs` (jittered), the last-known-good copy
    /// kept in `server.state_dir`.
    pub metadata_url: Option<String>,
    #[serde(default = "default_refresh")]
    pub metadata_refresh_secs: u64,
    /// fedgate's SP entity id for this tenant (Entra: Identifier).
    /// Default: `{public_url}/saml/{id}/metadata`.
    pub sp_entity_id: Option<String>,
    #[serde(default = "default_skew")]
    pub clock_skew_secs: u32,
    #[serde(default)]
    pub allow_sha1: bool,
    /// Bearer tokens from this tenant (token exchange for API automation).
    pub oidc: Option<TenantOidc>,
    /// Microsoft Graph access, to resolve groups overage.
    pub graph: Option<TenantGraph>,
    /// Which SAML attributes (or the NameID) carry the e-mail, UPN, object
    /// id, display name, groups, roles and MFA: for an IdP that is not
    /// Entra (default: Entra's claim names).
    pub claims: Option<crate::inbound::saml::claims::ClaimMap>,
    /// fedgate's decryption keys for this tenant's encrypted assertions
    /// (Entra's token encryption): the current one and, during a rollover,
    /// the next; each certificate is published in the SP metadata
    /// (`KeyDescriptor use="encryption"`).
    #[serde(default)]
    pub encryption_keys: Vec<EncryptionKey>,
    /// Accept AES-CBC encrypted assertions (malleable; refused by default
    /// with `saml.encryption_cbc_refused`). Entra uses AES-256-CBC unless
    /// told otherwise: see docs/encryption.md.
    #[serde(default)]
    pub encryption_allow_cbc: bool,
}

/// One decryption key of fedgate's SP and its certificate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionKey {
    /// The RSA private key (PEM, at least 2,048 bits).
    pub key_file: PathBuf,
    /// Its certificate (PEM), as uploaded to Entra for token encryption.
    pub cert_file: PathBuf,
}

/// The tenant's app registration for Microsoft Graph (application permission
/// `GroupMember.Read.All`), used only to resolve groups overage.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantGraph {
    pub client_id: String,
    /// A file holding the client secret (never the secret inline)…
    pub client_secret_file: Option<PathBuf>,
    /// …or a certificate credential: the certificate uploaded to the app
    /// registration (PEM) and its RSA private key (PEM).
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
    /// When the client secret expires, as Entra shows it (`YYYY-MM-DD`):
    /// `fedgate check` and the expiry metric warn before it does.
    pub secret_expires: Option<String>,
    /// Default: `https://login.microsoftonline.com/{entra_tenant_id}/oauth2/v2.0/token`.
    pub token_url: Option<String>,
    /// Default: `https://graph.microsoft.com/v1.0`.
    pub base_url: Option<String>,
}

/// The tenant as an OpenID provider: how fedgate verifies its tokens, and
/// (with `client_id`) signs users in by the authorization code flow.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantOidc {
    /// The exact `iss`. Default: Entra v2, `https://login.microsoftonline.com/{entra_tenant_id}/v2.0`.
    pub issuer: Option<String>,
    /// Default: `{issuer}/.well-known/openid-configuration`.
    pub discovery_url: Option<String>,
    /// Pin the tenant's JWKS from a file instead of fetching `jwks_uri`.
    pub jwks_file: Option<PathBuf>,
    /// The `aud` values accepted on access tokens (token exchange): fedgate's
    /// app registration's client id or Application ID URI.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// fedgate's app registration (client) id, for the login code flow.
    pub client_id: Option<String>,
    /// A file holding the client secret…
    pub client_secret_file: Option<PathBuf>,
    /// …or a certificate credential (PEM certificate and RSA key), or a PFX/P12
    /// file whose password is in the environment variable `client_pfx_password_env`.
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
    pub client_pfx_file: Option<PathBuf>,
    pub client_pfx_password_env: Option<String>,
    /// When the client secret expires, as Entra shows it (`YYYY-MM-DD`).
    pub secret_expires: Option<String>,
    /// Scopes asked for at login (default `openid profile email`).
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// A Conditional Access authentication context (`c1`…`c99`) whose
    /// policy requires MFA: a step-up over OIDC asks Entra for it (the
    /// `claims` request for `acrs`), and an ID token whose `acrs` holds it
    /// counts as a multi-factor sign-in. Without it, a step-up is only
    /// `prompt=login`, and the tenant's Conditional Access decides.
    pub mfa_auth_context: Option<String>,
}

fn default_scopes() -> Vec<String> {
    ["openid", "profile", "email"].map(String::from).to_vec()
}

impl Tenant {
    /// The issuer fedgate expects on this tenant's tokens.
    pub fn token_issuer(&self) -> Option<String> {
        let oidc = self.oidc.as_ref()?;
        Some(oidc.issuer.clone().unwrap_or_else(|| {
            format!(
                "https://login.microsoftonline.com/{}/v2.0",
                self.entra_tenant_id
            )
        }))
    }
}

fn default_refresh() -> u64 {
    3600
}

fn default_skew() -> u32 {
    180
}

/// One backup console fedgate signs users into.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Console {
    pub id: String,
    pub kind: ConsoleKind,
    pub display_name: String,
    /// The console's SAML entity id (its "Identifier"). Required unless the
    /// console signs in by OIDC only.
    #[serde(default)]
    pub identifier: String,
    /// The console's ACS URL (its "Reply URL").
    #[serde(default)]
    pub reply_url: String,
    /// The console as an OpenID Connect client of fedgate (Acronis-style).
    pub oidc: Option<ConsoleOidc>,
    /// Which Identity value becomes the NameID (default: the profile's).
    pub nameid: Option<NameIdSource>,
    /// What fedgate signs in the SAML Response: `assertion` (default),
    /// `response`, or `both`.
    #[serde(default)]
    pub sign: crate::consoles::SignWhat,
    /// The signatures' algorithm: `rsa-sha256`, `rsa-sha384`, `rsa-sha512`
    /// (default: the signing key's own, RSA-SHA256 or ECDSA-SHA256).
    pub signature_algorithm: Option<crate::consoles::SignatureAlgorithm>,
    /// The NameID Format stated: `email_address`, `unspecified`,
    /// `persistent` (or their SAML URIs); default: the one of `nameid`.
    pub nameid_format: Option<crate::consoles::NameIdFormat>,
    /// The console's own signing certificate(s) (PEM): its signed
    /// AuthnRequests (SP-initiated logins at fedgate's IdP) are verified
    /// with it. A signed request from a console without one is refused.
    pub certificate_file: Option<PathBuf>,
    /// Refuse this console's unsigned AuthnRequests (needs
    /// `certificate_file`). Commvault signs its requests.
    #[serde(default)]
    pub authn_requests_signed: bool,
    /// The console's encryption certificate (PEM): the Assertions fedgate
    /// sends it are encrypted for it (AES-256-GCM, RSA-OAEP), after signing.
    pub encryption_certificate_file: Option<PathBuf>,
    /// The console's SAML SingleLogoutService URL: at sign-out fedgate sends
    /// it a signed LogoutRequest for each session that reached it, from the
    /// server (back-channel), and waits `server.logout_timeout_ms` at most.
    pub logout_url: Option<String>,
    /// `redirect` (default: the LogoutRequest in the query, signed there,
    /// as a GET) or `post` (a form POST, the request signed inside).
    #[serde(default)]
    pub logout_binding: LogoutBinding,
    /// Override the SAML attribute that carries the roles.
    pub role_attribute: Option<String>,
    /// Roles this console has beyond the profile's vocabulary.
    #[serde(default)]
    pub extra_roles: Vec<String>,
    /// Lifetime of the console tokens issued by the token exchange (never
    /// longer than the subject token's remaining life). Default 600.
    #[serde(default = "default_token_lifetime")]
    pub token_lifetime_secs: u64,
    /// `ES256` (default) or `RS256`.
    #[serde(default = "default_token_alg")]
    pub token_alg: String,
}

/// A console registered as an OIDC client of fedgate's OpenID provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleOidc {
    pub client_id: String,
    /// The client secret: a file, or an environment variable's name.
    pub client_secret_file: Option<PathBuf>,
    pub client_secret_env: Option<String>,
    /// When the client secret should be rotated (`YYYY-MM-DD`).
    pub secret_expires: Option<String>,
    /// Redirect URIs, compared exactly (no prefix, no wildcard).
    pub redirect_uris: Vec<String>,
    /// The tenants whose users may sign in to this console (home realms):
    /// with one, it is used; with several, fedgate asks, or takes `tenant=`.
    pub tenants: Vec<String>,
    /// The console's "initiate login" URL (OpenID Connect Core §4): where
    /// fedgate's launcher sends a user to start a login at the console.
    pub initiate_login_uri: Option<String>,
    /// Where the console may send users after its RP-initiated logout
    /// (`post_logout_redirect_uri`), compared exactly.
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// OpenID Connect Back-Channel Logout 1.0: fedgate POSTs a signed
    /// logout token (with the `sid` of its ID tokens) here at sign-out.
    pub backchannel_logout_uri: Option<String>,
}

/// How fedgate sends a console its LogoutRequest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogoutBinding {
    #[default]
    Redirect,
    Post,
}

fn default_token_lifetime() -> u64 {
    600
}

fn default_token_alg() -> String {
    "ES256".into()
}

impl Tenant {
    pub fn sp_entity_id(&self, public_url: &str) -> String {
        self.sp_entity_id
            .clone()
            .unwrap_or_else(|| format!("{public_url}/saml/{}/metadata", self.id))
    }
    pub fn acs_url(&self, public_url: &str) -> String {
        format!("{public_url}/saml/{}/acs", self.id)
    }
}
