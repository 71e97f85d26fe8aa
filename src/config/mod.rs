//! Typed configuration: `fedgate.toml`, with every key overridable by a
//! `FEDGATE_*` environment variable, validated with the file, the key path
//! and the reason in every error.
//!
//! Environment overrides name the key path in upper case with `__` between
//! levels, and array positions as numbers:
//! `FEDGATE_SERVER__LISTEN=0.0.0.0:8443`,
//! `FEDGATE_TENANTS__0__METADATA_FILE=/etc/fedgate/contoso.xml`.
//! Values are parsed as TOML when they can be (numbers, booleans, arrays),
//! otherwise taken as strings. Secrets (private keys) are never inline: the
//! configuration names files (`*_file`), which an orchestrator mounts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::consoles::{ConsoleKind, NameIdSource};
use crate::identity::ErrorCode;
use crate::policy::Rule;

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("{file}: {reason}")]
    Read { file: String, reason: String },
    #[error("{file}: {key}: {reason}")]
    Invalid {
        file: String,
        key: String,
        reason: String,
    },
}

impl ErrorCode for ConfigError {
    fn code(&self) -> &'static str {
        match self {
            ConfigError::Read { .. } => "config.unreadable",
            ConfigError::Invalid { .. } => "config.invalid",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The configuration format version (1).
    #[serde(default = "one")]
    pub version: u32,
    pub server: Server,
    #[serde(default)]
    pub signing: Signing,
    #[serde(default)]
    pub audit: Audit,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub tenants: Vec<Tenant>,
    #[serde(default)]
    pub consoles: Vec<Console>,
    #[serde(default)]
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub admin: Admin,
}

/// Who may open `/admin`: users of `tenant` signed in by SSO with one of
/// these groups or app roles; and, for first setup, anyone with the local
/// token in the environment variable `FEDGATE_ADMIN_TOKEN`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    pub tenant: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub app_roles: Vec<String>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The public base URL users and Entra reach fedgate at (no trailing slash).
    pub public_url: String,
    /// TLS certificate chain (PEM). Without TLS, fedgate only listens on loopback.
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// Where fedgate keeps what it learned (last-known-good IdP metadata).
    /// Default: `state/` next to the configuration file.
    pub state_dir: Option<PathBuf>,
    /// Lifetime of the assertions fedgate issues to consoles.
    #[serde(default = "default_assertion_lifetime")]
    pub assertion_lifetime_secs: u64,
    /// Reverse proxies (CIDR blocks, e.g. `10.0.0.0/8`) whose
    /// `X-Forwarded-For` names the client (audit `client`, the admin token
    /// throttle). Default: none; the TCP peer is the client.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Worker threads for signature verification and signing (0: one per
    /// core). Login CPU work runs there, never on the I/O threads.
    #[serde(default)]
    pub cpu_threads: usize,
    /// New verifications that may wait for a worker; past that fedgate
    /// answers 503 `server.busy` with `Retry-After` at once.
    #[serde(default = "default_cpu_queue")]
    pub cpu_queue: usize,
    /// Logins one client (IPv6: one /64) may start per minute at
    /// `/saml/{t}/login`, `/oidc/{t}/login` and `/oauth2/authorize`, each of
    /// which stores login state before anyone is authenticated; past it, 429
    /// `login.rate_limited` with `Retry-After`.
    #[serde(default = "default_login_starts_per_minute")]
    pub login_starts_per_minute: u32,
    /// Login starts per tenant (and per OpenID provider client) within 10
    /// minutes, the lifetime of login state, whatever the client address:
    /// the cap on unauthenticated login state (pending state stays below
    /// about twice this). Past it, 503 `login.tenant_busy` with
    /// `Retry-After`. Per instance.
    #[serde(default = "default_login_states_per_tenant")]
    pub login_states_per_tenant: u32,
    /// The whole request head (request line and headers) must arrive within
    /// this; it also bounds a keep-alive connection waiting for its next
    /// request. Past it fedgate closes the connection.
    #[serde(default = "default_conn_timeout")]
    pub header_timeout_secs: u64,
    /// Total deadline for reading a request body; past it, 408 `http.body_timeout`.
    #[serde(default = "default_conn_timeout")]
    pub body_timeout_secs: u64,
    /// A TLS client must finish its handshake within this, or is closed.
    #[serde(default = "default_conn_timeout")]
    pub tls_handshake_timeout_secs: u64,
    /// Connections open at once; more are accepted and closed at once. At
    /// start clamped below the open-file limit (minus a margin for the
    /// store, the audit file and outbound fetches).
    #[serde(default = "default_max_connections")]
    pub max_connections: u64,
    /// How long fedgate waits for each console it tells of a sign-out
    /// (SAML LogoutRequest, OIDC back-channel logout). They are told at
    /// once, side by side: one that does not answer delays none of the
    /// others, and the signed-out page names it. Default 3000.
    #[serde(default = "default_logout_timeout")]
    pub logout_timeout_ms: u64,
    /// Connections one client (an IPv4 address, an IPv6 /64) may hold
    /// open at once; more are accepted and closed at once. Peers listed in
    /// `trusted_proxies` are not limited (every browser behind a proxy
    /// shares its address).
    #[serde(default = "default_max_connections_per_client")]
    pub max_connections_per_client: u64,
    /// Request-body bytes fedgate holds at once, over all requests (bodies
    /// are read whole before a handler runs, each up to 2 MiB). A body that
    /// would go over it gets 503 `server.busy` with `Retry-After: 1`.
    #[serde(default = "default_max_body_bytes_in_flight")]
    pub max_body_bytes_in_flight: u64,
    /// On SIGTERM: stop accepting, let in-flight requests finish for up to
    /// this long, then close what is left.
    #[serde(default = "default_shutdown_grace")]
    pub shutdown_grace_secs: u64,
}

impl Server {
    /// `trusted_proxies`, parsed (validated when the configuration loads).
    pub fn trusted_proxies(&self) -> Vec<crate::net::Cidr> {
        self.trusted_proxies
            .iter()
            .filter_map(|c| crate::net::Cidr::parse(c).ok())
            .collect()
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8443))
}

fn default_login_starts_per_minute() -> u32 {
    120
}

fn default_login_states_per_tenant() -> u32 {
    10_000
}

fn default_cpu_queue() -> usize {
    256
}

fn default_assertion_lifetime() -> u64 {
    300
}

fn default_conn_timeout() -> u64 {
    10
}

fn default_max_body_bytes_in_flight() -> u64 {
    64 * 1024 * 1024
}

fn default_max_connections_per_client() -> u64 {
    256
}

fn default_logout_timeout() -> u64 {
    3000
}

fn default_max_connections() -> u64 {
    4096
}

fn default_shutdown_grace() -> u64 {
    20
}

/// fedgate's own IdP signing key towards the consoles.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signing {
    pub key_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    /// …or a key directory with `current/`, `next/`, `previous/` (see
    /// `fedgate keys`): rollover without a restart.
    pub key_dir: Option<PathBuf>,
    /// EC P-256 private key (PKCS#8 PEM) for the ES256 console tokens of the
    /// token exchange. RS256 tokens use `key_file` (an RSA key).
    pub token_key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Audit {
    /// JSON-lines file every decision is appended to (besides the log),
    /// hash-chained, with signed checkpoints (docs/audit.md).
    pub file: Option<PathBuf>,
    /// How often a checkpoint signed with fedgate's signing key is written
    /// (when events were written since the last one); one is also written
    /// at shutdown. 0: only at shutdown. Default 300.
    #[serde(default = "default_checkpoint_secs")]
    pub checkpoint_secs: u64,
    /// No audit, no access: while the last write to the audit file failed,
    /// `/readyz` says not ready (a load balancer stops sending logins).
    /// Default false (a failed write is logged and counted).
    #[serde(default)]
    pub required: bool,
    /// Rotate the file once it has this many bytes (0: never by size), at
    /// the next checkpoint: the old one is renamed `{file}.{UTC time}`,
    /// and the chain goes on. Default 0.
    #[serde(default)]
    pub rotate_bytes: u64,
    /// Rotate the file when the UTC day changes (at the next checkpoint).
    #[serde(default)]
    pub rotate_daily: bool,
    /// When writes reach the disk: `event` (an fsync per event, before the
    /// login goes on), `second` (one a second when something was written;
    /// the default), `checkpoint` (only at checkpoints). docs/audit.md has
    /// the cost of each.
    #[serde(default)]
    pub fsync: AuditSync,
    /// Where else every audit line goes: syslog (RFC 5424 over TCP or TLS)
    /// or an HTTPS webhook, each with a bounded buffer (docs/audit.md,
    /// "Shipping events off the box").
    #[serde(default)]
    pub sinks: Vec<AuditSink>,
}

/// One `[[audit.sinks]]`: a copy of the audit stream shipped off the box.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSink {
    /// `syslog` or `webhook`.
    pub kind: AuditSinkKind,
    /// The metric label (letters, digits, `-`, `_`); default its index.
    pub name: Option<String>,
    /// syslog: `tcp://host:port` or `tls://host:port`; webhook:
    /// `https://…` (plain `http://` only to loopback).
    pub url: String,
    /// Lines held while the sink is slow or down. Default 10000.
    #[serde(default = "default_sink_buffer")]
    pub buffer_events: usize,
    /// When the buffer is full: `drop` (new lines are dropped for this
    /// sink and counted; a notice says how many once it takes lines again)
    /// or `refuse` (the same, and `/readyz` answers 503 while it is full).
    #[serde(default)]
    pub on_full: AuditSinkOnFull,
    /// PEM CA certificate(s) to trust (tls://, https://) instead of the
    /// system's roots.
    pub ca_file: Option<PathBuf>,
    /// webhook: a file holding a bearer token (sent as `Authorization`).
    pub token_file: Option<PathBuf>,
    /// syslog facility: `authpriv` (the default), `auth`, `local0`…`local7`.
    #[serde(default = "default_sink_facility")]
    pub facility: String,
    /// Bound on connecting and on each write or request, in milliseconds.
    /// Default 5000.
    #[serde(default = "default_sink_timeout")]
    pub timeout_ms: u64,
    /// webhook: at most this many events a request. Default 100.
    #[serde(default = "default_sink_batch")]
    pub batch_events: usize,
    /// webhook: how long the first line of a batch waits for more, in
    /// milliseconds. Default 1000.
    #[serde(default = "default_sink_batch_ms")]
    pub batch_ms: u64,
    /// The longest wait between retries (exponential backoff with jitter
    /// from 100 ms up to this), in milliseconds. Default 30000.
    #[serde(default = "default_sink_retry_max")]
    pub retry_max_ms: u64,
}

/// `audit.sinks[].kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditSinkKind {
    Syslog,
    Webhook,
}

/// `audit.sinks[].on_full`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditSinkOnFull {
    #[default]
    Drop,
    Refuse,
}

fn default_sink_buffer() -> usize {
    10_000
}

fn default_sink_facility() -> String {
    "authpriv".into()
}

fn default_sink_timeout() -> u64 {
    5_000
}

fn default_sink_batch() -> usize {
    100
}

fn default_sink_batch_ms() -> u64 {
    1_000
}

fn default_sink_retry_max() -> u64 {
    30_000
}

/// `audit.fsync`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditSync {
    Event,
    #[default]
    Second,
    Checkpoint,
}

fn default_checkpoint_secs() -> u64 {
    300
}

/// Where sessions, login state and the replay cache live.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `memory` (one instance; the default) or `redis` (several instances).
    #[serde(default = "default_store_kind")]
    pub kind: String,
    /// `redis://host:6379/0` or `rediss://…` (TLS). The environment variable
    /// `FEDGATE_STORE_URL` wins over this key. May carry `:password@`.
    pub url: Option<String>,
    /// A file holding the Redis password (wins over a password in the URL).
    pub password_file: Option<PathBuf>,
    /// PEM CA certificate(s) to trust for `rediss://` instead of the
    /// system's roots (a Redis with a private CA).
    pub ca_file: Option<PathBuf>,
    /// Bound on each store operation, in milliseconds.
    #[serde(default = "default_store_timeout")]
    pub timeout_ms: u64,
    /// The memory store's hard cap on each kind of entry (replay claims,
    /// sessions, login states). At the cap new entries are refused
    /// (`store.full`, 503) and `/readyz` says not ready.
    #[serde(default = "default_memory_max_entries")]
    pub memory_max_entries: usize,
}

fn default_memory_max_entries() -> usize {
    crate::store::memory::DEFAULT_MAX_ENTRIES
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            kind: default_store_kind(),
            url: None,
            password_file: None,
            ca_file: None,
            timeout_ms: default_store_timeout(),
            memory_max_entries: default_memory_max_entries(),
        }
    }
}

/// Never shows a password that the URL carries.
impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("kind", &self.kind)
            .field(
                "url",
                &self.url.as_deref().map(crate::store::redis::redact_url),
            )
            .field("password_file", &self.password_file)
            .field("ca_file", &self.ca_file)
            .field("timeout_ms", &self.timeout_ms)
            .field("memory_max_entries", &self.memory_max_entries)
            .finish()
    }
}

fn default_store_kind() -> String {
    "memory".into()
}

fn default_store_timeout() -> u64 {
    250
}

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

/// The directory a configuration file's relative paths resolve against:
/// its own (`fedgate.toml` alone has the parent "": ".").
pub fn base_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

impl Config {
    /// Read, apply `FEDGATE_*` overrides from `env`, deserialize and validate.
    pub fn load(path: &Path, env: &[(String, String)]) -> Result<Config, ConfigError> {
        Self::read(path, env).map(|(config, _)| config)
    }

    /// [`Config::load`], with the text it was made from (read once: what
    /// the history stores is exactly what was applied).
    pub fn read(path: &Path, env: &[(String, String)]) -> Result<(Config, String), ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            file: file.clone(),
            reason: e.to_string(),
        })?;
        let config = Self::from_str(&text, &file, env, base_dir(path))?;
        Ok((config, text))
    }

    /// Parse `text` (named `file` in errors); relative paths resolve against `base`.
    pub fn from_str(
        text: &str,
        file: &str,
        env: &[(String, String)],
        base: &Path,
    ) -> Result<Config, ConfigError> {
        let mut value: toml::Value = toml::from_str(text).map_err(|e| ConfigError::Read {
            file: file.to_string(),
            reason: e.to_string().trim().to_string(),
        })?;
        let mut store_url = None;
        // Which key paths came from which variable: an error in one of them
        // names the variable, not the file (which does not hold that key).
        let mut from_env: Vec<(String, String)> = Vec::new();
        for (k, v) in env {
            let Some(path) = k.strip_prefix("FEDGATE_") else {
                continue;
            };
            // FEDGATE_STORE_URL names store.url, and wins over FEDGATE_STORE__URL.
            if path == "STORE_URL" {
                store_url = Some(v);
                continue;
            }
            // FEDGATE_CONFIG and FEDGATE_LOG are not keys.
            if !path.contains("__") && matches!(path, "CONFIG" | "LOG" | "ADMIN_TOKEN") {
                continue;
            }
            apply_override(&mut value, path, v).map_err(|reason| ConfigError::Invalid {
                file: "environment".into(),
                key: k.clone(),
                reason,
            })?;
            from_env.push((env_key_path(path), k.clone()));
        }
        if let Some(url) = store_url {
            let store = value
                .as_table_mut()
                .map(|t| {
                    t.entry("store")
                        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                })
                .and_then(|s| s.as_table_mut());
            match store {
                Some(t) => {
                    t.insert("url".into(), toml::Value::String(url.clone()));
                }
                None => {
                    return Err(ConfigError::Invalid {
                        file: "environment".into(),
                        key: "FEDGATE_STORE_URL".into(),
                        reason: "[store] is not a table".into(),
                    })
                }
            }
        }
        if store_url.is_some() {
            from_env.push(("store.url".into(), "FEDGATE_STORE_URL".into()));
        }
        let mut config: Config = serde_path_to_error::deserialize(value).map_err(|e| {
            let key = e.path().to_string();
            let var = from_env.iter().rev().find(|(p, _)| {
                key == *p || key.starts_with(&format!("{p}.")) || key.starts_with(&format!("{p}["))
            });
            ConfigError::Invalid {
                file: match var {
                    Some((_, var)) => format!("environment variable {var}"),
                    None => file.to_string(),
                },
                key,
                reason: e.inner().to_string(),
            }
        })?;
        config.resolve_paths(base);
        config.normalize_domains(file)?;
        config.validate(file)?;
        Ok(config)
    }

    /// Every file fedgate reads at start, with the key naming it (the key
    /// directory and the files fedgate writes are not listed).
    pub fn input_files(&self) -> Vec<(String, &Path)> {
        let mut named: Vec<(String, &Option<PathBuf>)> = Vec::new();
        let mut add = |key: String, p| named.push((key, p));
        add("server.tls_cert_file".into(), &self.server.tls_cert_file);
        add("server.tls_key_file".into(), &self.server.tls_key_file);
        add("signing.key_file".into(), &self.signing.key_file);
        add("signing.cert_file".into(), &self.signing.cert_file);
        add(
            "signing.token_key_file".into(),
            &self.signing.token_key_file,
        );
        add("store.password_file".into(), &self.store.password_file);
        add("store.ca_file".into(), &self.store.ca_file);
        for (i, t) in self.tenants.iter().enumerate() {
            let k = |name: &str| format!("tenants[{i}].{name}");
            add(k("metadata_file"), &t.metadata_file);
            if let Some(o) = &t.oidc {
                add(k("oidc.jwks_file"), &o.jwks_file);
                add(k("oidc.client_secret_file"), &o.client_secret_file);
                add(k("oidc.client_cert_file"), &o.client_cert_file);
                add(k("oidc.client_key_file"), &o.client_key_file);
                add(k("oidc.client_pfx_file"), &o.client_pfx_file);
            }
            if let Some(g) = &t.graph {
                add(k("graph.client_secret_file"), &g.client_secret_file);
                add(k("graph.client_cert_file"), &g.client_cert_file);
                add(k("graph.client_key_file"), &g.client_key_file);
            }
        }
        for (i, c) in self.consoles.iter().enumerate() {
            add(
                format!("consoles[{i}].certificate_file"),
                &c.certificate_file,
            );
            add(
                format!("consoles[{i}].encryption_certificate_file"),
                &c.encryption_certificate_file,
            );
            if let Some(o) = &c.oidc {
                add(
                    format!("consoles[{i}].oidc.client_secret_file"),
                    &o.client_secret_file,
                );
            }
        }
        let encryption = self.tenants.iter().enumerate().flat_map(|(i, t)| {
            t.encryption_keys
                .iter()
                .enumerate()
                .flat_map(move |(j, e)| {
                    let k = |f: &str| format!("tenants[{i}].encryption_keys[{j}].{f}");
                    [
                        (k("key_file"), e.key_file.as_path()),
                        (k("cert_file"), e.cert_file.as_path()),
                    ]
                })
        });
        named
            .into_iter()
            .filter_map(|(k, p)| p.as_deref().map(|p| (k, p)))
            .chain(encryption)
            .collect()
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        for t in &mut self.tenants {
            let mut files: Vec<&mut PathBuf> = Vec::new();
            files.extend(t.metadata_file.as_mut());
            if let Some(o) = &mut t.oidc {
                files.extend(o.jwks_file.as_mut());
                files.extend(o.client_secret_file.as_mut());
                files.extend(o.client_cert_file.as_mut());
                files.extend(o.client_key_file.as_mut());
                files.extend(o.client_pfx_file.as_mut());
            }
            if let Some(g) = &mut t.graph {
                files.extend(g.client_secret_file.as_mut());
                files.extend(g.client_cert_file.as_mut());
                files.extend(g.client_key_file.as_mut());
            }
            for e in &mut t.encryption_keys {
                files.push(&mut e.key_file);
                files.push(&mut e.cert_file);
            }
            for f in files {
                fix(f);
            }
        }
        if self.server.state_dir.is_none() {
            self.server.state_dir = Some(PathBuf::from("state"));
        }
        for c in &mut self.consoles {
            if let Some(p) = c.oidc.as_mut().and_then(|o| o.client_secret_file.as_mut()) {
                fix(p);
            }
            if let Some(p) = c.certificate_file.as_mut() {
                fix(p);
            }
            if let Some(p) = c.encryption_certificate_file.as_mut() {
                fix(p);
            }
        }
        for s in &mut self.audit.sinks {
            for p in [&mut s.ca_file, &mut s.token_file].into_iter().flatten() {
                fix(p);
            }
        }
        for p in [
            &mut self.signing.key_file,
            &mut self.signing.key_dir,
            &mut self.signing.cert_file,
            &mut self.signing.token_key_file,
            &mut self.audit.file,
            &mut self.store.password_file,
            &mut self.store.ca_file,
            &mut self.server.tls_cert_file,
            &mut self.server.tls_key_file,
            &mut self.server.state_dir,
        ]
        .into_iter()
        .flatten()
        {
            fix(p);
        }
    }
}

pub mod diff;
pub mod history;
mod validate;

impl Config {
    /// Every `secret_expires` the configuration records, with its key path.
    pub fn secret_expiry_dates(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (i, t) in self.tenants.iter().enumerate() {
            if let Some(d) = t.oidc.as_ref().and_then(|o| o.secret_expires.clone()) {
                out.push((format!("tenants[{i}].oidc.secret_expires"), d));
            }
            if let Some(d) = t.graph.as_ref().and_then(|g| g.secret_expires.clone()) {
                out.push((format!("tenants[{i}].graph.secret_expires"), d));
            }
        }
        for (i, c) in self.consoles.iter().enumerate() {
            if let Some(d) = c.oidc.as_ref().and_then(|o| o.secret_expires.clone()) {
                out.push((format!("consoles[{i}].oidc.secret_expires"), d));
            }
        }
        out
    }
}

/// A `YYYY-MM-DD` date, as midnight UTC.
pub fn parse_date(s: &str) -> Option<time::OffsetDateTime> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s.trim(), &fmt)
        .ok()
        .map(|d| d.midnight().assume_utc())
}

/// Set the value at `PATH__TO__KEY` (upper case; array indexes as numbers).
/// `TENANTS__0__METADATA_FILE` as serde_path_to_error writes it:
/// `tenants[0].metadata_file`.
fn env_key_path(path: &str) -> String {
    let mut out = String::new();
    for part in path.split("__").map(str::to_ascii_lowercase) {
        if part.bytes().all(|b| b.is_ascii_digit()) && !part.is_empty() {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&part);
        }
    }
    out
}

fn apply_override(root: &mut toml::Value, path: &str, raw: &str) -> Result<(), String> {
    let parts: Vec<String> = path.split("__").map(|p| p.to_ascii_lowercase()).collect();
    let parsed: toml::Value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let mut cur = root;
    for (n, part) in parts.iter().enumerate() {
        let last = n + 1 == parts.len();
        cur = match cur {
            toml::Value::Table(t) => {
                if last {
                    t.insert(part.clone(), parsed);
                    return Ok(());
                }
                t.entry(part.clone())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            }
            toml::Value::Array(a) => {
                let i: usize = part
                    .parse()
                    .map_err(|_| format!("{part:?} is not an array index"))?;
                let len = a.len();
                let slot = a
                    .get_mut(i)
                    .ok_or_else(|| format!("index {i} is past the {len} entries in the file"))?;
                if last {
                    *slot = parsed;
                    return Ok(());
                }
                slot
            }
            _ => return Err(format!("{part:?} is below a value that is not a table")),
        };
    }
    Err("empty key path".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = r#"
[server]
public_url = "http://127.0.0.1:8443"
"#;

    #[test]
    fn minimal_config_takes_defaults() {
        let c = Config::from_str(MIN, "t.toml", &[], Path::new("/etc/fedgate")).unwrap();
        assert_eq!(c.server.listen.port(), 8443);
        assert_eq!(c.server.assertion_lifetime_secs, 300);
        assert_eq!(c.server.header_timeout_secs, 10);
        assert_eq!(c.server.body_timeout_secs, 10);
        assert_eq!(c.server.tls_handshake_timeout_secs, 10);
        assert_eq!(c.server.max_connections, 4096);
        assert_eq!(c.server.max_connections_per_client, 256);
        assert_eq!(c.server.max_body_bytes_in_flight, 64 * 1024 * 1024);
        assert_eq!(c.server.shutdown_grace_secs, 20);
    }

    #[test]
    fn connection_bounds_of_zero_are_refused_with_the_key() {
        for key in [
            "header_timeout_secs",
            "body_timeout_secs",
            "tls_handshake_timeout_secs",
            "max_connections",
            "max_connections_per_client",
            "max_body_bytes_in_flight",
            "shutdown_grace_secs",
        ] {
            let text = format!("{MIN}{key} = 0\n");
            let e = Config::from_str(&text, "t.toml", &[], Path::new(".")).unwrap_err();
            assert_eq!(e.code(), "config.invalid", "{key}");
            assert!(e.to_string().contains(&format!("server.{key}")), "{e}");
            let text = format!("{MIN}{key} = 3\n");
            assert!(Config::from_str(&text, "t.toml", &[], Path::new(".")).is_ok());
        }
    }

    #[test]
    fn unknown_keys_and_bad_types_name_the_key_path() {
        let bad = format!("{MIN}\n[[tenants]]\nid = \"a\"\nentra_tenant_id = \"x\"\nmetadata_file = \"m.xml\"\nclock_skew_secs = \"soon\"\n");
        let e = Config::from_str(&bad, "t.toml", &[], Path::new(".")).unwrap_err();
        assert!(e.to_string().contains("tenants[0].clock_skew_secs"), "{e}");
        let bad = format!("{MIN}\nlisten_on = 1\n");
        let e = Config::from_str(&bad, "t.toml", &[], Path::new(".")).unwrap_err();
        assert!(e.to_string().starts_with("t.toml"), "{e}");
    }

    #[test]
    fn a_bad_key_from_the_environment_names_the_variable_not_the_file() {
        for (var, value, key) in [
            ("FEDGATE_SERVER__LISTN", "127.0.0.1:1", "server"),
            (
                "FEDGATE_SERVER__ASSERTION_LIFETIME_SECS",
                "\"soon\"",
                "server.assertion_lifetime_secs",
            ),
            (
                "FEDGATE_TENANTS__0__CLOCK_SKEW_SECS",
                "\"x\"",
                "tenants[0].clock_skew_secs",
            ),
        ] {
            let text = format!("{MIN}\n[[tenants]]\nid = \"a\"\nentra_tenant_id = \"x\"\nmetadata_file = \"m.xml\"\n");
            let env = vec![(var.to_string(), value.to_string())];
            let e = Config::from_str(&text, "t.toml", &env, Path::new(".")).unwrap_err();
            let s = e.to_string();
            assert!(
                s.starts_with(&format!("environment variable {var}: {key}")),
                "{s}"
            );
            assert!(!s.contains("t.toml"), "{s}");
        }
        // The same mistake in the file names the file.
        let text = format!("{MIN}listn = 1\n");
        let e = Config::from_str(&text, "t.toml", &[], Path::new(".")).unwrap_err();
        assert!(e.to_string().starts_with("t.toml: server"), "{e}");
    }

    #[test]
    fn environment_overrides_any_key() {
        let env = vec![
            (
                "FEDGATE_SERVER__LISTEN".to_string(),
                "127.0.0.1:9000".to_string(),
            ),
            (
                "FEDGATE_SERVER__ASSERTION_LIFETIME_SECS".to_string(),
                "120".to_string(),
            ),
            ("FEDGATE_LOG".to_string(), "debug".to_string()),
        ];
        let c = Config::from_str(MIN, "t.toml", &env, Path::new(".")).unwrap();
        assert_eq!(c.server.listen.port(), 9000);
        assert_eq!(c.server.assertion_lifetime_secs, 120);
    }

    #[test]
    fn the_store_is_memory_by_default_and_redis_takes_its_url_from_the_environment() {
        let c = Config::from_str(MIN, "t.toml", &[], Path::new(".")).unwrap();
        assert_eq!((c.store.kind.as_str(), c.store.timeout_ms), ("memory", 250));
        let redis = format!("{MIN}\n[store]\nkind = \"redis\"\nurl = \"redis://file:6379\"\npassword_file = \"pw\"\n");
        let c = Config::from_str(&redis, "t.toml", &[], Path::new("/etc/fedgate")).unwrap();
        assert_eq!(c.store.url.as_deref(), Some("redis://file:6379"));
        assert_eq!(
            c.store.password_file.as_deref(),
            Some(Path::new("/etc/fedgate/pw"))
        );
        // FEDGATE_STORE_URL wins, over the file and over FEDGATE_STORE__URL, in any order.
        let env = vec![
            (
                "FEDGATE_STORE_URL".to_string(),
                "rediss://:pw@env:6380/1".to_string(),
            ),
            (
                "FEDGATE_STORE__URL".to_string(),
                "redis://nested:6379".to_string(),
            ),
        ];
        let c = Config::from_str(&redis, "t.toml", &env, Path::new(".")).unwrap();
        assert_eq!(c.store.url.as_deref(), Some("rediss://:pw@env:6380/1"));
        assert!(
            !format!("{c:?}").contains(":pw@"),
            "Debug shows no password"
        );
        // Redis without a URL, a URL of another scheme, an unknown kind: config.invalid with the key.
        for (toml, key) in [
            ("[store]\nkind = \"redis\"\n", "store.url"),
            (
                "[store]\nkind = \"redis\"\nurl = \"http://:pw@x:1\"\n",
                "store.url",
            ),
            ("[store]\nkind = \"memcached\"\n", "store.kind"),
            ("[store]\ntimeout_ms = 0\n", "store.timeout_ms"),
        ] {
            let e = Config::from_str(&format!("{MIN}\n{toml}"), "t.toml", &[], Path::new("."))
                .unwrap_err();
            assert_eq!(e.code(), "config.invalid");
            assert!(e.to_string().contains(key), "{e}");
            assert!(!e.to_string().contains(":pw@"), "{e}");
        }
    }

    #[test]
    fn tenant_domains_are_normalised_and_one_domain_has_one_owner() {
        let tenant = |id: &str, tid: &str, domains: &str| {
            format!("\n[[tenants]]\nid = \"{id}\"\nentra_tenant_id = \"{tid}\"\nmetadata_file = \"m.xml\"\ndomains = {domains}\n")
        };
        let text = format!(
            "{MIN}{}",
            tenant(
                "contoso",
                "a",
                r#"["Contoso.COM.", "contoso.com", "contoso.onmicrosoft.com"]"#
            )
        );
        let c = Config::from_str(&text, "t.toml", &[], Path::new(".")).unwrap();
        assert_eq!(
            c.tenants[0].domains,
            vec!["contoso.com".to_string(), "contoso.onmicrosoft.com".into()]
        );
        for bad in [r#"[""]"#, r#"["*.contoso.com"]"#, r#"["a@contoso.com"]"#] {
            let e = Config::from_str(
                &format!("{MIN}{}", tenant("contoso", "a", bad)),
                "t.toml",
                &[],
                Path::new("."),
            )
            .unwrap_err();
            assert_eq!(e.code(), "config.invalid");
            assert!(e.to_string().contains("tenants[0].domains[0]"), "{e}");
        }
        // Two directories, one domain (in any case): refused, naming both tenants.
        let text = format!(
            "{MIN}{}{}",
            tenant("contoso", "a", r#"["contoso.com"]"#),
            tenant("fabrikam", "b", r#"["fabrikam.com", "CONTOSO.com"]"#)
        );
        let e = Config::from_str(&text, "t.toml", &[], Path::new(".")).unwrap_err();
        assert_eq!(e.code(), "config.invalid");
        let s = e.to_string();
        assert!(
            s.contains("tenants[1].domains")
                && s.contains("\"contoso\"")
                && s.contains("\"fabrikam\"")
                && s.contains("\"contoso.com\""),
            "{s}"
        );
        // Two entries for one Entra tenant may share its domains.
        let text = format!(
            "{MIN}{}{}",
            tenant("contoso", "a", r#"["contoso.com"]"#),
            tenant("contoso-oidc", "A", r#"["contoso.com"]"#)
        );
        assert!(Config::from_str(&text, "t.toml", &[], Path::new(".")).is_ok());
    }

    #[test]
    fn plain_http_only_on_loopback() {
        let env = vec![(
            "FEDGATE_SERVER__LISTEN".to_string(),
            "0.0.0.0:8443".to_string(),
        )];
        let e = Config::from_str(MIN, "t.toml", &env, Path::new(".")).unwrap_err();
        assert!(e.to_string().contains("server.listen"), "{e}");
    }
}

#[cfg(test)]
mod example_tests {
    use super::*;

    /// The shipped example must stay loadable: it is the documentation.
    #[test]
    fn the_example_configuration_loads() {
        let text = include_str!("../../fedgate.example.toml");
        let c =
            Config::from_str(text, "fedgate.example.toml", &[], Path::new("/etc/fedgate")).unwrap();
        assert_eq!(c.tenants.len(), 1);
        assert_eq!(c.consoles[0].kind, ConsoleKind::Autotask);
        assert_eq!(
            c.tenants[0].metadata_file.as_deref(),
            Some(Path::new(
                "/etc/fedgate/tenants/contoso-federationmetadata.xml"
            ))
        );
        assert_eq!(
            c.tenants[0].acs_url(&c.server.public_url),
            "https://fedgate.example.com/saml/contoso/acs"
        );
    }

    #[test]
    fn a_rule_naming_an_unknown_role_is_refused_with_its_path() {
        let text = include_str!("../../fedgate.example.toml")
            .replace("roles = [\"Administrator\"]", "roles = [\"Wizard\"]")
            .replace("extra_roles = []", "extra_roles = [\"Backup Operator\"]");
        let e = Config::from_str(&text, "f.toml", &[], Path::new(".")).unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("rules[0]") && s.contains("policy.unknown_role"),
            "{s}"
        );
        // Every role the rule could have named: the profile's and the console's own.
        assert!(
            s.contains("\"Administrator\"") && s.contains("extra_roles: [\"Backup Operator\"]"),
            "{s}"
        );
    }
}
