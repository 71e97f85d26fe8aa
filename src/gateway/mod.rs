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
mod saml;
pub mod session;
mod sso;
mod tenant;
mod token;

pub(crate) use deliver::decide;
pub use deliver::launch;
pub use deliver::{curable, step_up_message, Need};
pub use login_state::LoginStart;
pub use oidc::{oidc_callback, oidc_login, oidc_login_with};
pub use saml::{saml_acs, saml_login, saml_login_with};
pub use session::{Opened, Reach};
pub use sso::{idp_sso, realm as sso_realm, resume as sso_resume, SsoRequest};
pub use tenant::TenantRuntime;
pub(crate) use token::jwt_sign_error;
pub use token::token_exchange;

use std::collections::HashMap;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::audit::{AuditEvent, AuditLog};
use crate::config::{Config, Console};
use crate::consoles;
use crate::identity::ErrorCode;
use crate::metrics::Metrics;
use crate::outbound::saml_post;
use crate::store::Store;

/// Everything a running fedgate needs.
pub struct App {
    pub config: Config,
    pub tenants: HashMap<String, TenantRuntime>,
    /// fedgate's signing keys towards the consoles (current, next, previous),
    /// reloaded from `signing.key_dir` without a restart.
    keys: std::sync::RwLock<Arc<crate::trust::keys::KeySet>>,
    /// Console-token key for ES256 (`signing.token_key_file`); RS256 tokens
    /// use the current signing key.
    pub token_es256: Option<Arc<crate::trust::signing::JwtSigner>>,
    pub idp_entity_id: String,
    pub store: Arc<dyn Store>,
    pub audit: AuditLog,
    pub metrics: Metrics,
    /// Tries of the local admin token: 5 a minute per client, 4096 clients.
    pub admin_throttle: crate::net::Throttle,
    /// Where signature verification and signing run (`server.cpu_threads`,
    /// `server.cpu_queue`): off the I/O threads, with admission control.
    pub cpu: crate::cpu::CpuPool,
    /// Login starts per client (`server.login_starts_per_minute`), 16,384
    /// clients remembered: unauthenticated requests that store login state.
    pub login_throttle: crate::net::Throttle,
    /// Login starts per tenant (`{tenant}`) and OpenID provider client
    /// (`console:{id}`) within the lifetime of login state.
    pub pending_budget: login_state::PendingBudget,
    /// The consoles that may send AuthnRequests, with their certificates.
    pub sso_consoles: Arc<Vec<crate::outbound::sso::RequestingConsole>>,
    /// The consoles' encryption certificates, by console id.
    pub console_encryption: HashMap<String, crate::trust::certs::TrustedCert>,
    /// The last readiness probe of the store and when it ran (`/readyz`).
    pub readiness: tokio::sync::Mutex<Option<(std::time::Instant, Result<(), String>)>>,
    clock: Box<dyn Fn() -> OffsetDateTime + Send + Sync>,
}

/// Why fedgate could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    #[error("tenant {tenant}: metadata {file}: {reason}")]
    Metadata {
        tenant: String,
        file: String,
        reason: String,
    },
    #[error("signing key: {0}")]
    Signing(String),
    #[error("audit file: {0}")]
    Audit(String),
    #[error("audit sink: {0}")]
    AuditSink(String),
    #[error("{0}")]
    ConsoleCertificate(String),
}

impl ErrorCode for StartError {
    fn code(&self) -> &'static str {
        match self {
            StartError::Metadata { .. } => "start.metadata_invalid",
            StartError::Signing(_) => "start.signing_key",
            StartError::Audit(_) => "start.audit_file",
            StartError::AuditSink(_) => "start.audit_sink",
            StartError::ConsoleCertificate(_) => "start.console_certificate",
        }
    }
}

impl App {
    /// Load trust material and keys named by the configuration.
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        clock: Box<dyn Fn() -> OffsetDateTime + Send + Sync>,
    ) -> Result<App, StartError> {
        // Before any TLS client or server exists: aws-lc-rs for rustls.
        crate::trust::install_crypto_provider();
        let mut tenants = HashMap::new();
        let public = config.server.public_url.clone();
        for t in &config.tenants {
            tenants.insert(
                t.id.clone(),
                TenantRuntime::load(t, &public, config.server.state_dir.as_deref())?,
            );
        }
        let read = |p: &std::path::Path| {
            std::fs::read_to_string(p)
                .map_err(|e| StartError::Signing(format!("{}: {e}", p.display())))
        };
        let keys = match (
            &config.signing.key_dir,
            &config.signing.key_file,
            &config.signing.cert_file,
        ) {
            (Some(dir), _, _) => {
                crate::trust::keys::KeySet::from_dir(dir, clock()).map_err(StartError::Signing)?
            }
            (None, Some(key_file), Some(cert_file)) => crate::trust::keys::KeySet::single(
                crate::trust::keys::Key::from_pem(&read(key_file)?, &read(cert_file)?)
                    .map_err(StartError::Signing)?,
            ),
            _ => {
                return Err(StartError::Signing(
                    "signing.key_dir, or signing.key_file and signing.cert_file, are required"
                        .into(),
                ))
            }
        };
        let signing = &keys.current.saml;
        // ECDSA only towards consoles whose profile accepts it.
        if signing.algorithm() == crate::trust::certs::SigAlg::EcdsaSha256 {
            if let Some(c) = config
                .consoles
                .iter()
                .find(|c| !consoles::profile(c.kind).accepts_ecdsa)
            {
                return Err(StartError::Signing(format!(
                    "the signing key is ECDSA, but console {:?} ({}) accepts RSA-SHA256 only: configure an RSA key",
                    c.id,
                    consoles::profile(c.kind).label
                )));
            }
            if let Some(c) = config
                .consoles
                .iter()
                .find(|c| c.signature_algorithm.is_some())
            {
                return Err(StartError::Signing(format!(
                    "the signing key is ECDSA, and console {:?} has signature_algorithm = {:?}, an RSA algorithm: configure an RSA key, or remove signature_algorithm",
                    c.id,
                    c.signature_algorithm
                )));
            }
        }
        let mut audit = AuditLog::new(config.audit.file.as_deref()).map_err(|e| {
            let path = config
                .audit
                .file
                .as_deref()
                .unwrap_or(std::path::Path::new("-"));
            StartError::Audit(format!("{} (audit.file): {e}", path.display()))
        })?;
        audit.sync_each_event(config.audit.fsync == crate::config::AuditSync::Event);
        audit.set_sinks(
            crate::audit::sink::Sinks::from_config(&config.audit.sinks)
                .map_err(|e| StartError::AuditSink(e.to_string()))?,
        );
        let token_es256 = match &config.signing.token_key_file {
            Some(p) => Some(
                crate::trust::signing::JwtSigner::from_pem(&read(p)?)
                    .map_err(|e| StartError::Signing(format!("token_key_file: {e}")))?,
            ),
            None => None,
        };
        if let Some(k) = token_es256.as_ref().filter(|k| k.alg() != "ES256") {
            return Err(StartError::Signing(format!(
                "token_key_file must be an EC P-256 key (ES256), not {}",
                k.alg()
            )));
        }
        let sso_consoles =
            Arc::new(sso::requesting_consoles(&config).map_err(StartError::ConsoleCertificate)?);
        let mut console_encryption = HashMap::new();
        for c in &config.consoles {
            let Some(p) = &c.encryption_certificate_file else {
                continue;
            };
            let cert = std::fs::read_to_string(p)
                .ok()
                .and_then(|pem| crate::trust::certs::TrustedCert::from_pem_bundle(&pem).ok())
                .and_then(|certs| certs.into_iter().next())
                .filter(|c| c.rsa_bits() >= 2048)
                .ok_or_else(|| {
                    StartError::ConsoleCertificate(format!(
                        "console {:?}: encryption_certificate_file {} is not a readable PEM certificate with an RSA key of at least 2,048 bits",
                        c.id,
                        p.display()
                    ))
                })?;
            console_encryption.insert(c.id.clone(), cert);
        }
        let cpu = crate::cpu::CpuPool::new(config.server.cpu_threads, config.server.cpu_queue);
        let login_throttle = crate::net::Throttle::new(
            config.server.login_starts_per_minute,
            time::Duration::minutes(1),
            16_384,
        );
        let budget_ids: Vec<String> = config
            .tenants
            .iter()
            .map(|t| t.id.clone())
            .chain(config.consoles.iter().map(|c| format!("console:{}", c.id)))
            .collect();
        let pending_budget = login_state::PendingBudget::new(
            config.server.login_states_per_tenant,
            budget_ids.iter().map(String::as_str),
        );
        // Metric labels: the configured ids only, so no request adds a series.
        let metrics = Metrics::new(
            config.tenants.iter().map(|t| t.id.as_str()),
            config.consoles.iter().map(|c| c.id.as_str()),
        );
        Ok(App {
            token_es256: token_es256.map(Arc::new),
            keys: std::sync::RwLock::new(Arc::new(keys)),
            idp_entity_id: format!("{public}/idp/metadata"),
            config,
            tenants,
            store,
            audit,
            metrics,
            admin_throttle: crate::net::Throttle::new(5, time::Duration::minutes(1), 4096),
            cpu,
            login_throttle,
            pending_budget,
            sso_consoles,
            console_encryption,
            readiness: tokio::sync::Mutex::new(None),
            clock,
        })
    }

    /// Fetch every tenant's metadata URL once (start-up, drills).
    pub async fn refresh_trust(
        &self,
    ) -> Vec<(
        String,
        Result<crate::trust::refresh::Refreshed, crate::trust::refresh::RefreshError>,
    )> {
        let mut out = Vec::new();
        for (id, rt) in &self.tenants {
            if let Some(t) = rt.idp.as_ref().filter(|t| t.url().is_some()) {
                let r = t.refresh(self.now()).await;
                out.push((id.clone(), r));
            }
        }
        out
    }

    /// Tenants with a metadata URL but no metadata at all.
    pub fn tenants_without_metadata(&self) -> Vec<String> {
        self.tenants
            .iter()
            .filter(|(_, rt)| rt.idp.as_ref().is_some_and(|t| t.current().is_none()))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// One refresh loop per metadata URL, on its jittered interval, for as
    /// long as the runtime runs.
    pub fn spawn_refresh(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        for (id, rt) in &self.tenants {
            let Some(trust) = rt.idp.clone().filter(|t| t.url().is_some()) else {
                continue;
            };
            let app = Arc::downgrade(self);
            let id = id.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(crate::trust::refresh::jittered(trust.interval)).await;
                    let Some(app) = app.upgrade() else { return };
                    if let Ok(crate::trust::refresh::Refreshed::Updated) =
                        trust.refresh(app.now()).await
                    {
                        tracing::info!(tenant = %id, "metadata refreshed");
                    }
                }
            }));
        }
        tasks
    }

    /// Trust health as Prometheus text: metadata age and refresh failures per
    /// tenant, and `fedgate_cert_expiry_seconds` for every certificate fedgate
    /// trusts or uses and every client secret with a recorded expiry.
    pub fn trust_metrics(&self) -> String {
        use std::fmt::Write;
        let now = self.now();
        let mut out = String::new();
        out.push_str("# HELP fedgate_metadata_refresh_failures_total Failed metadata fetches per tenant (the last-known-good metadata stays in use).\n# TYPE fedgate_metadata_refresh_failures_total counter\n");
        let mut ages = String::new();
        for (id, rt) in &self.tenants {
            if let Some(t) = rt.idp.as_ref().filter(|t| t.url().is_some()) {
                let st = t.status();
                let _ = writeln!(
                    out,
                    "fedgate_metadata_refresh_failures_total{{tenant=\"{id}\"}} {}",
                    st.failures_total
                );
                if let Some(ok) = t.confirmed_at() {
                    let _ = writeln!(
                        ages,
                        "fedgate_metadata_age_seconds{{tenant=\"{id}\"}} {}",
                        (now - ok).whole_seconds()
                    );
                }
            }
        }
        out.push_str("# HELP fedgate_metadata_age_seconds Seconds since the IdP last confirmed the tenant's metadata (fetched, or 304), counting a saved copy's age after a restart.\n# TYPE fedgate_metadata_age_seconds gauge\n");
        out.push_str(&ages);
        out.push_str("# HELP fedgate_cert_expiry_seconds Seconds until a certificate or client secret expires (negative: expired).\n# TYPE fedgate_cert_expiry_seconds gauge\n");
        for e in self.expiries() {
            let _ = writeln!(
                out,
                "fedgate_cert_expiry_seconds{{{}=\"{}\",kind=\"{}\",thumbprint=\"{}\"}} {}",
                e.owner_kind,
                e.owner,
                e.kind,
                e.thumbprint,
                (e.not_after - now).whole_seconds()
            );
        }
        out
    }

    /// Every dated credential fedgate trusts or uses.
    pub fn expiries(&self) -> Vec<Expiry> {
        let mut out = Vec::new();
        for (id, rt) in &self.tenants {
            if let Some(md) = rt.idp.as_ref().and_then(|t| t.current()) {
                for c in &md.signing_certs {
                    out.push(Expiry::cert("tenant", id, "idp_signing", c));
                }
            }
            if let Some(crate::inbound::oidc::OidcClient {
                credential: crate::trust::credential::ClientCredential::Certificate { cert, .. },
                ..
            }) = rt.login.as_ref()
            {
                out.push(Expiry::cert("tenant", id, "client_certificate", cert));
            }
            for c in &rt.encryption_certs {
                out.push(Expiry::cert("tenant", id, "fedgate_encryption", c));
            }
        }
        for k in self.keys().published() {
            out.push(Expiry::cert("console", "*", "fedgate_signing", k.cert()));
        }
        for (id, c) in &self.console_encryption {
            out.push(Expiry::cert("console", id, "console_encryption", c));
        }
        for (key, date) in self.config.secret_expiry_dates() {
            if let Some(d) = crate::config::parse_date(&date) {
                let (owner_kind, owner) = secret_owner(&self.config, &key);
                out.push(Expiry {
                    owner_kind,
                    owner,
                    kind: "client_secret",
                    thumbprint: "-".into(),
                    not_after: d,
                });
            }
        }
        out
    }

    /// The signing keys in force.
    pub fn keys(&self) -> Arc<crate::trust::keys::KeySet> {
        match self.keys.read() {
            Ok(k) => k.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Re-read `signing.key_dir` (SIGHUP, a timer, a drill). Returns whether
    /// the published keys changed; a directory that does not load keeps the
    /// keys in force.
    pub fn reload_keys(&self) -> Result<bool, String> {
        let Some(dir) = &self.config.signing.key_dir else {
            return Ok(false);
        };
        let fresh = crate::trust::keys::KeySet::from_dir(dir, self.now())?;
        let thumbs = |k: &crate::trust::keys::KeySet| -> Vec<String> {
            k.published()
                .iter()
                .map(|k| k.cert().thumbprint_sha256.clone())
                .collect()
        };
        let old = self.keys();
        if thumbs(&old) == thumbs(&fresh) {
            return Ok(false);
        }
        tracing::info!(before = ?thumbs(&old), after = ?thumbs(&fresh), "fedgate's signing keys changed");
        if let Ok(mut k) = self.keys.write() {
            *k = Arc::new(fresh);
        }
        Ok(true)
    }

    /// Reload `signing.key_dir` on SIGHUP and every 30 seconds.
    ///
    /// The SIGHUP handler is installed before this returns (so a reload sent
    /// while the server is still starting is not the default action, which
    /// ends the process), and also when there is no key directory: then a
    /// SIGHUP (`systemctl reload`) is logged as having nothing to reload.
    /// Call it from within the runtime.
    pub fn spawn_key_reload(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let has_dir = self.config.signing.key_dir.is_some();
        let app = Arc::downgrade(self);
        #[cfg(unix)]
        let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::warn!(error = %e, "no SIGHUP handler: keys reload every 30 s only");
                None
            }
        };
        tokio::spawn(async move {
            loop {
                #[cfg(unix)]
                {
                    let sleep = tokio::time::sleep(std::time::Duration::from_secs(30));
                    match hup.as_mut() {
                        Some(h) => {
                            tokio::select! {
                                _ = h.recv() => if has_dir {
                                    tracing::info!("SIGHUP: reloading the signing keys");
                                } else {
                                    tracing::info!("SIGHUP: nothing to reload (no signing.key_dir; other settings need a restart)");
                                },
                                _ = sleep => {}
                            }
                        }
                        None => sleep.await,
                    }
                }
                #[cfg(not(unix))]
                tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                let Some(app) = app.upgrade() else { return };
                if !has_dir {
                    continue;
                }
                if let Err(e) = app.reload_keys() {
                    tracing::warn!(error = %e, "the key directory does not load: keeping the keys in force");
                }
            }
        })
    }

    /// Log a warning for every credential expiring within 30 days (or
    /// expired), at start and then daily.
    pub fn spawn_expiry_warnings(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let app = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(a) = app.upgrade() else { return };
                a.warn_expiries();
                drop(a);
                tokio::time::sleep(std::time::Duration::from_secs(24 * 3600)).await;
            }
        })
    }

    /// A signed checkpoint in the audit file (if events were written since
    /// the last one, or `always`): see [`crate::audit::chain`].
    pub fn checkpoint_audit(&self, always: bool) -> bool {
        let keys = self.keys();
        self.audit
            .checkpoint(&keys.current.saml, self.now(), always)
    }

    /// The tasks that ship audit lines to `audit.sinks` (once).
    pub fn spawn_audit_sinks(&self) -> Vec<tokio::task::JoinHandle<()>> {
        self.audit.sinks().spawn()
    }

    /// `audit.fsync = "second"`: an fsync of the audit file every second.
    pub fn spawn_audit_sync(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        if self.config.audit.fsync != crate::config::AuditSync::Second
            || self.config.audit.file.is_none()
        {
            return None;
        }
        let app = Arc::downgrade(self);
        Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                let Some(a) = app.upgrade() else { return };
                a.audit.sync();
            }
        }))
    }

    /// A checkpoint every `audit.checkpoint_secs` (none when 0).
    pub fn spawn_audit_checkpoints(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        let every = self.config.audit.checkpoint_secs;
        if every == 0 || self.config.audit.file.is_none() {
            return None;
        }
        let app = Arc::downgrade(self);
        Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(every)).await;
                let Some(a) = app.upgrade() else { return };
                let keys = a.keys();
                let audit = &a.config.audit;
                if a.audit
                    .rotate_if_due(
                        &keys.current.saml,
                        a.now(),
                        audit.rotate_bytes,
                        audit.rotate_daily,
                    )
                    .is_none()
                {
                    a.checkpoint_audit(false);
                }
            }
        }))
    }

    /// The warnings of [`App::spawn_expiry_warnings`], once; returns how many.
    pub fn warn_expiries(&self) -> usize {
        let now = self.now();
        let mut n = 0;
        for e in self.expiries() {
            let days = (e.not_after - now).whole_days();
            if days < 30 {
                n += 1;
                tracing::warn!(
                    owner = %format!("{} {}", e.owner_kind, e.owner),
                    kind = e.kind,
                    thumbprint = %e.thumbprint,
                    days_left = days,
                    "{}",
                    if days < 0 { "a credential has expired: renew it now" } else { "a credential expires within 30 days: renew it" }
                );
            }
        }
        n
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

/// A dated credential: a certificate (by SHA-256 thumbprint) or a client secret.
#[derive(Debug, Clone)]
pub struct Expiry {
    /// `tenant` or `console`.
    pub owner_kind: &'static str,
    pub owner: String,
    /// `idp_signing`, `client_certificate`, `fedgate_signing`, `client_secret`.
    pub kind: &'static str,
    pub thumbprint: String,
    pub not_after: OffsetDateTime,
}

impl Expiry {
    fn cert(
        owner_kind: &'static str,
        owner: &str,
        kind: &'static str,
        c: &crate::trust::certs::TrustedCert,
    ) -> Self {
        Expiry {
            owner_kind,
            owner: owner.to_string(),
            kind,
            thumbprint: c.thumbprint_sha256.clone(),
            not_after: c.not_after,
        }
    }
}

/// `tenants[0].oidc.secret_expires` → (`tenant`, its id).
fn secret_owner(config: &Config, key: &str) -> (&'static str, String) {
    let index = |prefix: &str| {
        key.strip_prefix(prefix)
            .and_then(|r| r.split(']').next())
            .and_then(|n| n.parse::<usize>().ok())
    };
    if let Some(t) = index("tenants[").and_then(|i| config.tenants.get(i)) {
        return ("tenant", t.id.clone());
    }
    if let Some(c) = index("consoles[").and_then(|i| config.consoles.get(i)) {
        return ("console", c.id.clone());
    }
    ("tenant", key.to_string())
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
    app.audit.record(&event);
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
