//! The served login path, one direction: verify (inbound) → replay cache
//! (store) → policy → deliver (outbound), with one audit event and one
//! metric per decision. HTTP handlers call one function here and render
//! what it returns; nothing here knows axum.
//!
//! The files follow the flow: `saml.rs` and `oidc.rs` take a login in,
//! `deliver.rs` ends every login (session, overage, policy, console),
//! `sso.rs` answers consoles' AuthnRequests at fedgate's IdP,
//! `token.rs` is the token exchange, `tenant.rs` loads a tenant's trust;
//! this file holds [`App`], its start-up and upkeep, and [`Outcome`].

mod deliver;
pub mod login_state;
pub mod logout;
mod oidc;
pub mod oidc_provider;
pub mod reload;
mod saml;
pub mod session;
mod sso;
mod start;
mod tenant;
mod token;
mod upkeep;

pub(crate) use deliver::decide;
pub use deliver::launch;
pub use deliver::{curable, step_up_message, Need};
pub use login_state::LoginStart;
pub use oidc::{oidc_callback, oidc_login, oidc_login_with};
pub use reload::Live;
pub use saml::{saml_acs, saml_login, saml_login_with};
pub use session::{Opened, Reach};
pub use sso::{idp_sso, realm as sso_realm, resume as sso_resume, SsoRequest};
pub use start::StartError;
pub use tenant::TenantRuntime;
pub(crate) use token::jwt_sign_error;
pub use token::token_exchange;
pub use upkeep::Expiry;

use std::collections::HashMap;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::audit::{AuditEvent, AuditLog};
use crate::config::{Config, Console};
use crate::identity::ErrorCode;
use crate::metrics::Metrics;
use crate::outbound::saml_post;
use crate::store::Store;

/// The last readiness probe: when it ran and what it answered.
pub type Probe = (std::time::Instant, Result<(), String>);

/// Everything a running fedgate needs.
pub struct App {
    pub config: Config,
    /// The configuration's version (see [`crate::config::history`]), named
    /// by every audit event decided under it; `None` for an App built from
    /// a configuration that was never a file (tests, the demo's helpers).
    pub config_version: Option<String>,
    /// Shared with the next configuration when its tenant's settings did
    /// not change (a reload keeps its trust caches).
    pub tenants: HashMap<String, Arc<TenantRuntime>>,
    /// fedgate's signing keys towards the consoles (current, next, previous),
    /// reloaded from `signing.key_dir` without a restart.
    keys: Arc<std::sync::RwLock<Arc<crate::trust::keys::KeySet>>>,
    /// Console-token key for ES256 (`signing.token_key_file`); RS256 tokens
    /// use the current signing key.
    pub token_es256: Option<Arc<crate::trust::signing::JwtSigner>>,
    pub idp_entity_id: String,
    pub store: Arc<dyn Store>,
    pub audit: Arc<AuditLog>,
    pub metrics: Arc<Metrics>,
    /// Tries of the local admin token: 5 a minute per client, 4096 clients.
    pub admin_throttle: Arc<crate::net::Throttle>,
    /// Where signature verification and signing run (`server.cpu_threads`,
    /// `server.cpu_queue`): off the I/O threads, with admission control.
    pub cpu: Arc<crate::cpu::CpuPool>,
    /// Login starts per client (`server.login_starts_per_minute`), 16,384
    /// clients remembered: unauthenticated requests that store login state.
    pub login_throttle: Arc<crate::net::Throttle>,
    /// Login starts per tenant (`{tenant}`) and OpenID provider client
    /// (`console:{id}`) within the lifetime of login state.
    pub pending_budget: login_state::PendingBudget,
    /// The consoles that may send AuthnRequests, with their certificates.
    pub sso_consoles: Arc<Vec<crate::outbound::sso::RequestingConsole>>,
    /// The consoles' encryption certificates, by console id.
    pub console_encryption: HashMap<String, crate::trust::certs::TrustedCert>,
    /// The last readiness probe of the store and when it ran (`/readyz`).
    pub readiness: Arc<tokio::sync::Mutex<Option<Probe>>>,
    clock: Arc<dyn Fn() -> OffsetDateTime + Send + Sync>,
}

impl App {
    /// Write `event` to the audit trail, naming this App's configuration
    /// version.
    pub fn record_audit(&self, event: &AuditEvent) {
        self.audit.record_under(
            event,
            self.config_version
                .as_deref()
                .map(crate::config::history::short),
        );
    }

    /// Whether RS256 console tokens can be signed (an RSA current key).
    pub fn has_rs256(&self) -> bool {
        self.keys().current.jwt.is_some()
    }

    pub fn now(&self) -> OffsetDateTime {
        (self.clock)()
    }

    pub fn console(&self, id: &str) -> Option<&Console> {
        self.config.consoles.iter().find(|c| c.id == id)
    }

    /// fedgate's IdP metadata for the consoles.
    pub fn idp_metadata(&self) -> String {
        saml_post::idp_metadata(
            &self.idp_entity_id,
            &format!(
                "{}{}",
                self.config.server.public_url,
                crate::outbound::sso::SSO_PATH
            ),
            &format!("{}{}", self.config.server.public_url, logout::IDP_SLO_PATH),
            &self
                .keys()
                .published()
                .iter()
                .map(|k| k.cert())
                .collect::<Vec<_>>(),
        )
    }

    /// The SP metadata to upload into a tenant's Entra app.
    pub fn sp_metadata(&self, tenant: &str) -> Option<String> {
        let t = self.tenants.get(tenant)?;
        let keys = self.keys();
        let signing: Vec<_> = keys.published().iter().map(|k| k.cert().clone()).collect();
        Some(crate::inbound::saml::sp_metadata::sp_metadata(
            &t.settings.sp_entity_id,
            &t.settings.acs_url,
            &crate::inbound::saml::sp_metadata::Logout {
                url: format!("{}/saml/{}/slo", self.config.server.public_url, t.config.id),
                signing,
            },
            &t.encryption_certs,
        ))
    }
}

/// What the browser gets.
#[derive(Debug)]
pub enum Outcome {
    /// An auto-submitting form to the console (and the new fedgate session).
    Deliver {
        console: String,
        html: String,
        session: Option<String>,
    },
    /// A redirect (OIDC logins, the OpenID provider), maybe with a new session.
    Redirect {
        location: String,
        session: Option<String>,
    },
    /// A login started at a tenant: a redirect there, and the browser
    /// binding cookie the answer must come back with
    /// (see [`login_state`]).
    StartLogin { location: String, binding: String },
    /// A step-up: a page saying why the user signs in again, going on by
    /// itself to the tenant's sign-in (`location`), with the binding cookie.
    StepUp {
        location: String,
        binding: String,
        message: String,
    },
    /// Several consoles: a launcher, backed by a session.
    Launcher {
        session: String,
        consoles: Vec<(String, String)>,
    },
    /// Signed out: the session cookie cleared, then a redirect (a console's
    /// registered post-logout URI) or fedgate's signed-out page.
    /// `told`: what became of each console (the page lists them); `html`:
    /// an auto-posting form carrying a logout message (HTTP-POST binding).
    SignedOut {
        location: Option<String>,
        told: Vec<logout::Told>,
        html: Option<String>,
        /// Clear the browser's session cookie (its session has ended).
        clear: bool,
    },
    /// Home-realm discovery: links (href, tenant) to sign in at one tenant,
    /// and the browser binding of the login state the links continue.
    ChooseTenant {
        links: Vec<(String, String)>,
        binding: Option<String>,
    },
    /// Refused, with a stable code.
    Refused(Refusal),
}

/// A refusal, with what the HTML error page needs.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub console: Option<String>,
    /// Seconds for a `Retry-After` header (503 `server.busy`).
    pub retry_after: Option<u32>,
}

impl Refusal {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            status,
            code,
            message: message.into(),
            console: None,
            retry_after: None,
        }
    }

    /// The CPU pool refused or failed the work: 503 `server.busy` with
    /// `Retry-After`, or 500 for a worker that failed.
    pub(crate) fn from_pool(e: crate::cpu::PoolError) -> Self {
        match e {
            crate::cpu::PoolError::Busy { .. } => Refusal {
                retry_after: Some(crate::cpu::RETRY_AFTER_SECS),
                ..Refusal::new(503, e.code(), e.to_string())
            },
            _ => Refusal::new(500, e.code(), e.to_string()),
        }
    }
}

/// HTTP status for a verification error code.
fn status_for(code: &str) -> u16 {
    match code {
        "saml.too_large" => 413,
        "saml.base64_invalid"
        | "saml.xml_malformed"
        | "saml.doctype_forbidden"
        | "saml.not_a_response" => 400,
        "store.unavailable" => 503,
        _ => 403,
    }
}

/// Whether `client` may start another login (`/saml/{t}/login`,
/// `/oidc/{t}/login`, `/oauth2/authorize`), which stores state before anyone
/// is authenticated. First per client address: past
/// `server.login_starts_per_minute`, 429 `login.rate_limited`. Then per
/// tenant (or OpenID provider client, `console:{id}`), `scope`, whatever
/// the address: past `server.login_states_per_tenant` in 10 minutes, 503
/// `login.tenant_busy`. Both with `Retry-After`. Not audited one by one (a
/// flood would grow the audit file): counted in the metrics and logged at
/// debug level.
pub fn login_start_allowed(
    app: &App,
    client: std::net::IpAddr,
    scope: Option<&str>,
) -> Result<(), Refusal> {
    let now = app.now();
    if let Err(secs) = app.login_throttle.attempt(client, now) {
        app.metrics.login("-", "-", "denied", "login.rate_limited");
        tracing::debug!(%client, retry_after = secs, "login starts throttled");
        return Err(Refusal {
            retry_after: Some(u32::try_from(secs).unwrap_or(60)),
            ..Refusal::new(
                429,
                "login.rate_limited",
                format!(
                    "too many sign-ins started from this address: wait {secs} seconds and try again"
                ),
            )
        });
    }
    let Some(scope) = scope else {
        return Ok(());
    };
    let Err(over) = app.pending_budget.take(scope, now) else {
        return Ok(());
    };
    let secs = over.retry_after;
    let (tenant, console) = match scope.strip_prefix("console:") {
        Some(c) => ("-", c),
        None => (scope, "-"),
    };
    app.metrics
        .login(tenant, console, "denied", "login.tenant_busy");
    // One warning a window per id (a flood must not grow the log); the
    // refusals are counted in the metrics.
    if over.first {
        tracing::warn!(
            scope = crate::util::clip(scope, crate::audit::CLIP),
            retry_after = secs,
            limit = app.config.server.login_states_per_tenant,
            "login starts for this tenant or client reached server.login_states_per_tenant: refusing them until the window moves (counted in fedgate_logins_total, code login.tenant_busy)"
        );
    } else {
        tracing::debug!(
            scope,
            retry_after = secs,
            "login start refused: login.tenant_busy"
        );
    }
    Err(Refusal {
        retry_after: Some(u32::try_from(secs).unwrap_or(60)),
        ..Refusal::new(
            503,
            "login.tenant_busy",
            format!(
                "too many sign-ins were started for {} in the last 10 minutes (server.login_states_per_tenant = {}): try again in {secs} seconds",
                crate::util::clip(scope, crate::audit::CLIP),
                app.config.server.login_states_per_tenant
            ),
        )
    })
}

/// How long one readiness probe answers for: a flood of `/readyz` makes at
/// most one store write a second.
const READY_CACHE: std::time::Duration = std::time::Duration::from_secs(1);
/// A store that does not answer the probe within this is not ready.
const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

impl App {
    /// Whether the store takes writes now (`/readyz`): the last probe's
    /// answer while it is under a second old, else a new probe (one at a
    /// time: the others wait for it, at most `READY_TIMEOUT`, and share
    /// its answer). Counted in the metrics.
    pub async fn readiness(&self) -> Result<(), String> {
        // No audit, no access (audit.required): a failing audit file makes
        // fedgate not ready until a write succeeds again.
        if self.config.audit.required && self.audit.failing() {
            return Err(
                "the audit file cannot be written (audit.required = true): see fedgate_audit_write_failures_total".into(),
            );
        }
        if let Some(e) = self.audit.sinks().refusing() {
            return Err(e);
        }
        let mut last = self.readiness.lock().await;
        if let Some((_, r)) = last.as_ref().filter(|(at, _)| at.elapsed() < READY_CACHE) {
            return r.clone();
        }
        let r = match tokio::time::timeout(READY_TIMEOUT, self.store.ready()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "the store did not answer the readiness probe within {} s",
                READY_TIMEOUT.as_secs()
            )),
        };
        self.metrics.store_ready(r.is_ok());
        if r.is_err() {
            self.metrics.store_error("ready");
        }
        *last = Some((std::time::Instant::now(), r.clone()));
        r
    }
}

/// The store did not answer: count it, log it, and fail closed with 503.
pub(crate) fn store_down(app: &App, op: &'static str, e: crate::store::StoreError) -> Refusal {
    app.metrics.store_error(op);
    // What /readyz said a moment ago no longer holds: probe again.
    if let Ok(mut last) = app.readiness.try_lock() {
        *last = None;
    }
    // One warning a second at most: every login fails while the store is
    // down, and the log must not grow with the request rate (the metric
    // counts each).
    static LAST_WARNED: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    let second = app.now().unix_timestamp();
    if LAST_WARNED.swap(second, std::sync::atomic::Ordering::Relaxed) != second {
        tracing::warn!(op, error = %e, "store unavailable: login refused (fail closed)");
    } else {
        tracing::debug!(op, error = %e, "store unavailable: login refused (fail closed)");
    }
    Refusal::new(503, e.code(), e.to_string())
}

fn refuse(app: &App, mut event: AuditEvent, r: Refusal) -> Outcome {
    event.outcome = "denied";
    event.code = r.code.to_string();
    event.reason = r.message.clone();
    app.record_audit(&event);
    app.metrics.login(
        &event.tenant,
        event.console.as_deref().unwrap_or("-"),
        "denied",
        r.code,
    );
    Outcome::Refused(r)
}

fn rng_failed() -> Refusal {
    Refusal::new(
        500,
        "internal.rng_failed",
        "the system random number generator failed",
    )
}
