//! The process's own sections of `fedgate.toml`: `[admin]`, `[server]`,
//! `[signing]`, `[audit]` (with its sinks) and `[store]`, with their
//! defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

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
