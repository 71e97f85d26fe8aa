//! The served login path, one direction: verify (inbound) → replay cache
//! (store) → policy → deliver (outbound), with one audit event and one
//! metric per decision. HTTP handlers call one function here and render
//! what it returns; nothing here knows axum.

use std::collections::HashMap;
use std::sync::Arc;

use time::{Duration, OffsetDateTime};

use crate::audit::{AuditEvent, AuditLog};
use crate::config::{Config, Console};
use crate::consoles;
use crate::identity::{ErrorCode, Identity};
use crate::inbound::saml::{self, SamlSettings};
use crate::metrics::Metrics;
use crate::outbound::saml_post;
use crate::policy::{self, ConsoleRef};
use crate::store::Store;
use crate::trust::metadata::IdpMetadata;
use crate::util::{random_id, urlencode};

/// A tenant ready to verify logins.
pub struct TenantRuntime {
    pub config: crate::config::Tenant,
    /// The SAML IdP, when the tenant has federation metadata (a file, or a
    /// URL refreshed on an interval).
    pub idp: Option<Arc<crate::trust::refresh::IdpTrust>>,
    pub settings: SamlSettings,
    /// The tenant as an OpenID provider (discovery, JWKS), with an `[tenants.oidc]` block.
    pub provider: Option<Arc<crate::trust::oidc::ProviderTrust>>,
    /// How access tokens are checked (token exchange), when audiences are configured.
    pub token_policy: Option<crate::inbound::bearer::BearerPolicy>,
    /// fedgate's app registration for OIDC logins, when `client_id` is configured.
    pub login: Option<crate::inbound::oidc::OidcClient>,
    /// Graph access, to resolve groups overage, when configured.
    pub graph: Option<crate::trust::graph::GraphClient>,
}

impl TenantRuntime {
    fn load(
        t: &crate::config::Tenant,
        public: &str,
        state_dir: Option<&std::path::Path>,
    ) -> Result<Self, StartError> {
        let fail = |file: &std::path::Path, reason: String| StartError::Metadata {
            tenant: t.id.clone(),
            file: file.display().to_string(),
            reason,
        };
        let read =
            |file: &std::path::Path| std::fs::read(file).map_err(|e| fail(file, e.to_string()));
        let mut settings = SamlSettings::new(t.sp_entity_id(public), t.acs_url(public));
        settings.skew = Duration::seconds(i64::from(t.clock_skew_secs));
        settings.profile.allow_sha1 = t.allow_sha1;
        let idp = match (&t.metadata_file, &t.metadata_url) {
            (Some(file), _) => {
                let idp = IdpMetadata::parse(&read(file)?)
                    .map_err(|e| fail(file, format!("[{}] {e}", e.code())))?;
                // The metadata must be the configured tenant's: Entra's entity id names it.
                if let Some(tid) = saml::entra_tenant_of_issuer(&idp.entity_id) {
                    if !tid.eq_ignore_ascii_case(&t.entra_tenant_id) {
                        return Err(fail(
                            file,
                            format!(
                                "this is tenant {tid}'s metadata, but entra_tenant_id is {}",
                                t.entra_tenant_id
                            ),
                        ));
                    }
                }
                Some(Arc::new(crate::trust::refresh::IdpTrust::fixed(&t.id, idp)))
            }
            (None, Some(url)) => {
                let state_file = state_dir.map(|d| d.join(format!("{}-metadata.xml", t.id)));
                let trust = crate::trust::refresh::IdpTrust::remote(
                    &t.id,
                    &t.entra_tenant_id,
                    url.clone(),
                    state_file,
                    std::time::Duration::from_secs(t.metadata_refresh_secs),
                )
                .map_err(|e| StartError::Signing(format!("tenant {}: {e}", t.id)))?;
                Some(Arc::new(trust))
            }
            (None, None) => None,
        };
        let (mut provider, mut token_policy, mut login) = (None, None, None);
        if let (Some(oidc), Some(issuer)) = (&t.oidc, t.token_issuer()) {
            let pinned = match &oidc.jwks_file {
                Some(file) => Some(
                    crate::trust::jwks::Jwks::from_json(&read(file)?)
                        .map_err(|e| fail(file, format!("[{}] {e}", e.code())))?,
                ),
                None => None,
            };
            let trust = crate::trust::oidc::ProviderTrust::new(
                issuer.clone(),
                oidc.discovery_url.clone(),
                pinned,
            )
            .map_err(|e| StartError::Signing(format!("tenant {}: {e}", t.id)))?;
            let trust = match state_dir {
                Some(d) => trust.with_state_file(d.join(format!("{}-oidc.json", t.id))),
                None => trust,
            };
            provider = Some(Arc::new(trust));
            if !oidc.audiences.is_empty() {
                let mut policy = crate::inbound::bearer::BearerPolicy::new(
                    issuer.clone(),
                    oidc.audiences.clone(),
                );
                policy.skew = settings.skew;
                token_policy = Some(policy);
            }
            if let Some(client_id) = &oidc.client_id {
                let credential = load_credential(
                    oidc.client_secret_file.as_deref(),
                    oidc.client_cert_file
                        .as_deref()
                        .zip(oidc.client_key_file.as_deref()),
                    oidc.client_pfx_file
                        .as_deref()
                        .zip(oidc.client_pfx_password_env.as_deref()),
                )
                .map_err(|(file, reason)| fail(&file, reason))?;
                let mut policy =
                    crate::inbound::bearer::BearerPolicy::new(issuer, client_id.clone());
                policy.skew = settings.skew;
                login = Some(crate::inbound::oidc::OidcClient {
                    client_id: client_id.clone(),
                    credential,
                    scopes: oidc.scopes.clone(),
                    redirect_uri: format!("{public}/oidc/{}/callback", t.id),
                    id_token_policy: policy,
                });
            }
        }
        let graph = match &t.graph {
            Some(g) => {
                let credential = load_credential(
                    g.client_secret_file.as_deref(),
                    g.client_cert_file
                        .as_deref()
                        .zip(g.client_key_file.as_deref()),
                    None,
                )
                .map_err(|(file, reason)| fail(&file, reason))?;
                let client = crate::trust::graph::GraphClient::new(
                    g.token_url.clone().unwrap_or_else(|| {
                        format!(
                            "https://login.microsoftonline.com/{}/oauth2/v2.0/token",
                            t.entra_tenant_id
                        )
                    }),
                    g.base_url
                        .clone()
                        .unwrap_or_else(|| "https://graph.microsoft.com/v1.0".into()),
                    g.client_id.clone(),
                    credential,
                )
                .map_err(|e| StartError::Signing(format!("graph client: {e}")))?;
                Some(client)
            }
            None => None,
        };
        Ok(TenantRuntime {
            config: t.clone(),
            idp,
            settings,
            provider,
            token_policy,
            login,
            graph,
        })
    }
}

/// A client credential from the files the configuration names (validated
/// there: exactly one kind is set).
fn load_credential(
    secret_file: Option<&std::path::Path>,
    cert_and_key: Option<(&std::path::Path, &std::path::Path)>,
    pfx: Option<(&std::path::Path, &str)>,
) -> Result<crate::trust::credential::ClientCredential, (std::path::PathBuf, String)> {
    use crate::trust::credential::ClientCredential;
    let read = |p: &std::path::Path| std::fs::read(p).map_err(|e| (p.to_path_buf(), e.to_string()));
    let text = |p: &std::path::Path| {
        read(p).and_then(|b| {
            String::from_utf8(b).map_err(|_| (p.to_path_buf(), "not UTF-8 text".to_string()))
        })
    };
    if let Some(p) = secret_file {
        return Ok(ClientCredential::Secret(text(p)?.trim().to_string()));
    }
    if let Some((cert, key)) = cert_and_key {
        return ClientCredential::certificate(&text(key)?, &text(cert)?)
            .map_err(|e| (key.to_path_buf(), format!("[{}] {e}", e.code())));
    }
    if let Some((file, env)) = pfx {
        let password = std::env::var(env).map_err(|_| {
            (
                file.to_path_buf(),
                format!("the PFX password variable {env} is not set"),
            )
        })?;
        return ClientCredential::from_pfx(&read(file)?, &password)
            .map_err(|e| (file.to_path_buf(), format!("[{}] {e}", e.code())));
    }
    Err((
        std::path::PathBuf::new(),
        "no client credential configured".into(),
    ))
}

/// Everything a running fedgate needs.
pub struct App {
    pub config: Config,
    pub tenants: HashMap<String, TenantRuntime>,
    /// fedgate's signing keys towards the consoles (current, next, previous),
    /// reloaded from `signing.key_dir` without a restart.
    keys: std::sync::RwLock<Arc<crate::trust::keys::KeySet>>,
    /// Console-token key for ES256 (`signing.token_key_file`); RS256 tokens
    /// use the current signing key.
    pub token_es256: Option<crate::trust::signing::JwtSigner>,
    pub idp_entity_id: String,
    pub store: Arc<dyn Store>,
    pub audit: AuditLog,
    pub metrics: Metrics,
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
}

impl ErrorCode for StartError {
    fn code(&self) -> &'static str {
        match self {
            StartError::Metadata { .. } => "start.metadata_invalid",
            StartError::Signing(_) => "start.signing_key",
            StartError::Audit(_) => "start.audit_file",
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
        }
        let audit = AuditLog::new(config.audit.file.as_deref()).map_err(|e| {
            let path = config
                .audit
                .file
                .as_deref()
                .unwrap_or(std::path::Path::new("-"));
            StartError::Audit(format!("{} (audit.file): {e}", path.display()))
        })?;
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
        Ok(App {
            token_es256,
            keys: std::sync::RwLock::new(Arc::new(keys)),
            idp_entity_id: format!("{public}/idp/metadata"),
            config,
            tenants,
            store,
            audit,
            metrics: Metrics::default(),
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
        }
        for k in self.keys().published() {
            out.push(Expiry::cert("console", "*", "fedgate_signing", k.cert()));
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
            &format!("{}/launch", self.config.server.public_url),
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
        Some(saml::sp_metadata::sp_metadata(
            &t.settings.sp_entity_id,
            &t.settings.acs_url,
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
    /// Several consoles: a launcher, backed by a session.
    Launcher {
        session: String,
        consoles: Vec<(String, String)>,
    },
    /// Home-realm discovery: links (href, tenant) to sign in at one tenant.
    ChooseTenant { links: Vec<(String, String)> },
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
}

impl Refusal {
    fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            status,
            code,
            message: message.into(),
            console: None,
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

/// `POST /saml/{tenant}/acs`: an Entra SAML response arrives.
pub async fn saml_acs(
    app: &App,
    tenant: &str,
    saml_response: &str,
    relay_state: Option<&str>,
    client: Option<String>,
) -> Outcome {
    let now = app.now();
    let mut event = AuditEvent::new(now, tenant, "saml", client);
    let Some(rt) = app.tenants.get(tenant) else {
        let r = Refusal::new(
            404,
            "tenant.unknown",
            format!("no tenant {tenant:?} is configured"),
        );
        return refuse(app, event, r);
    };
    let started = std::time::Instant::now();
    let Some(idp_trust) = rt.idp.as_ref() else {
        let r = Refusal::new(
            404,
            "tenant.saml_not_configured",
            format!("tenant {tenant:?} has no SAML metadata: it signs in by OIDC"),
        );
        return refuse(app, event, r);
    };
    let Some(idp) = idp_trust.current() else {
        let r = Refusal::new(
            503,
            "metadata.unavailable",
            format!("tenant {tenant:?}'s metadata URL has not been fetched yet and no last-known-good copy exists"),
        );
        return refuse(app, event, r);
    };
    // SP-initiated: the RelayState names the AuthnRequest fedgate sent; it is
    // taken once, and the Response must answer exactly it (InResponseTo).
    let mut settings = std::borrow::Cow::Borrowed(&rt.settings);
    let mut requested_target = None;
    if let Some(id) = relay_state
        .map(str::trim)
        .and_then(|r| r.strip_prefix("req:"))
    {
        match app
            .store
            .take_state(saml::authn_request::REQUEST_NS, id, now)
            .await
        {
            Ok(Some(target)) => {
                settings.to_mut().expected_in_response_to = Some(id.to_string());
                requested_target = Some(String::from_utf8_lossy(&target).into_owned());
            }
            Ok(None) => {
                let r = Refusal::new(
                    403,
                    "saml.request_unknown",
                    "this response answers a sign-in request fedgate does not know: expired (10 minutes), already answered, or never sent",
                );
                return refuse(app, event, r);
            }
            Err(e) => return refuse(app, event, store_down(app, "take_state", e)),
        }
    }
    let verified = saml::verify(saml_response.as_bytes(), &idp, &settings, now);
    app.metrics
        .verification_seconds(started.elapsed().as_secs_f64());
    let identity = match verified {
        Ok(id) => id,
        Err(e) => {
            let r = Refusal::new(status_for(e.code()), e.code(), e.to_string());
            return refuse(app, event, r);
        }
    };
    let identity = match resolve_overage(rt, identity).await {
        Ok(id) => id,
        Err((id, e)) => {
            let event = event.with_identity(&id);
            return refuse(app, event, Refusal::new(502, e.code(), e.to_string()));
        }
    };
    event = event.with_identity(&identity);

    // One-time use: the assertion id, until the assertion could no longer be
    // accepted anyway (its latest NotOnOrAfter plus the skew).
    let replay_key = format!(
        "{}|{}",
        identity.issuer,
        identity.token_id.as_deref().unwrap_or_default()
    );
    let until = identity.expires_at + rt.settings.skew + Duration::minutes(5);
    match app
        .store
        .claim_once("saml-assertion", &replay_key, until, now)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            let r = Refusal::new(
                403,
                "saml.replayed",
                "this SAML assertion was already used; each login is accepted once",
            );
            return refuse(app, event, r);
        }
        Err(e) => return refuse(app, event, store_down(app, "claim_once", e)),
    }

    let target = match relay_state.map(str::trim).filter(|s| !s.is_empty()) {
        _ if requested_target.is_some() => requested_target.unwrap_or_default(),
        Some(t) if t.contains(':') => t.to_string(),
        Some(console) => format!("console:{console}"),
        None => String::new(),
    };
    complete_login(app, rt, identity, &target, event, now).await
}

/// Where a verified interactive login ends: `console:{id}` (deliver to that
/// console), `authorize:{key}` (resume an OpenID provider request), or
/// empty (the one console the user may reach, or the launcher). Every such
/// login gets a fedgate session (8 hours at most, never past the upstream
/// token or assertion), which the launcher and the OpenID provider use.
async fn complete_login(
    app: &App,
    rt: &TenantRuntime,
    identity: Identity,
    target: &str,
    mut event: AuditEvent,
    now: OffsetDateTime,
) -> Outcome {
    let tenant = rt.config.id.as_str();
    let Some(session) = random_id() else {
        return refuse(app, event, rng_failed());
    };
    let expires = identity.expires_at.min(now + Duration::hours(8));
    let mut with_tenant = identity.clone();
    with_tenant
        .attributes
        .insert("fedgate:tenant".into(), vec![tenant.to_string()]);
    if let Err(e) = app.store.put_session(&session, &with_tenant, expires).await {
        return refuse(app, event, store_down(app, "put_session", e));
    }
    if target == "admin" {
        event.outcome = "allowed";
        event.code = "ok".into();
        event.reason = "signed in to the admin page (admin rights are checked there)".into();
        app.audit.record(&event);
        return Outcome::Redirect {
            location: format!("{}/admin", app.config.server.public_url),
            session: Some(session),
        };
    }
    if let Some(key) = target.strip_prefix("authorize:") {
        event.outcome = "allowed";
        event.code = "ok".into();
        event.reason = "signed in; resuming the console's OpenID Connect request".into();
        app.audit.record(&event);
        app.metrics.login(tenant, "-", "signed_in", "ok");
        return Outcome::Redirect {
            location: format!(
                "{}/oauth2/authorize/resume?k={}",
                app.config.server.public_url,
                urlencode(key)
            ),
            session: Some(session),
        };
    }
    let with_session = |o: Outcome| match o {
        Outcome::Deliver { console, html, .. } => Outcome::Deliver {
            console,
            html,
            session: Some(session.clone()),
        },
        Outcome::Redirect { location, .. } => Outcome::Redirect {
            location,
            session: Some(session.clone()),
        },
        other => other,
    };
    if let Some(console) = target.strip_prefix("console:") {
        return with_session(deliver(app, rt, &identity, console, event, now));
    }
    let allowed: Vec<(String, String)> = app
        .config
        .consoles
        .iter()
        .filter(|c| decide(app, rt, &identity, c, now).allowed())
        .map(|c| (c.id.clone(), c.display_name.clone()))
        .collect();
    match allowed.as_slice() {
        [] => {
            let r = Refusal::new(
                403,
                "policy.no_console",
                "no console grants this user a role (see the rules for this tenant)",
            );
            refuse(app, event, r)
        }
        [(only, _)] => {
            let only = only.clone();
            with_session(deliver(app, rt, &identity, &only, event, now))
        }
        _ => {
            event.outcome = "allowed";
            event.code = "ok".into();
            event.reason = format!("{} consoles available: launcher shown", allowed.len());
            app.audit.record(&event);
            app.metrics.login(tenant, "-", "launcher", "ok");
            Outcome::Launcher {
                session,
                consoles: allowed,
            }
        }
    }
}

/// `GET /saml/{tenant}/login?console=…`: start an SP-initiated SAML login
/// (an AuthnRequest to the tenant's SSO endpoint, HTTP-Redirect binding).
pub async fn saml_login(
    app: &App,
    tenant: &str,
    target: &str,
    login_hint: Option<&str>,
    client: Option<String>,
) -> Outcome {
    use crate::inbound::saml::authn_request as ar;
    let now = app.now();
    let event = AuditEvent::new(now, tenant, "saml", client);
    let Some(rt) = app.tenants.get(tenant) else {
        let r = Refusal::new(
            404,
            "tenant.unknown",
            format!("no tenant {tenant:?} is configured"),
        );
        return refuse(app, event, r);
    };
    let Some(idp) = rt.idp.as_ref().and_then(|t| t.current()) else {
        let r = Refusal::new(
            404,
            "tenant.saml_not_configured",
            format!("tenant {tenant:?} has no SAML metadata (or it was never fetched)"),
        );
        return refuse(app, event, r);
    };
    let Some(sso) = idp
        .sso_endpoints
        .iter()
        .find(|e| e.binding == "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect")
    else {
        let r = Refusal::new(
            502,
            "metadata.no_redirect_sso",
            "the tenant's metadata has no HTTP-Redirect SingleSignOnService: SP-initiated sign-in is not possible",
        );
        return refuse(app, event, r);
    };
    let Some(id) = random_id().map(|r| format!("_fg{r}")) else {
        return refuse(app, event, rng_failed());
    };
    if let Err(e) = app
        .store
        .put_state(
            ar::REQUEST_NS,
            &id,
            target.as_bytes(),
            now + ar::REQUEST_TTL,
        )
        .await
    {
        return refuse(app, event, store_down(app, "put_state", e));
    }
    let xml = ar::authn_request(
        &id,
        &rt.settings.sp_entity_id,
        &rt.settings.acs_url,
        &sso.location,
        now,
    );
    match ar::redirect_url(&sso.location, &xml, &format!("req:{id}"), login_hint) {
        Ok(location) => Outcome::Redirect {
            location,
            session: None,
        },
        Err(e) => refuse(
            app,
            event,
            Refusal::new(500, "internal.encode_failed", e.to_string()),
        ),
    }
}

/// A tenant that signs in by OIDC: its runtime, fedgate's app registration
/// there, and its provider trust.
fn oidc_tenant<'a>(
    app: &'a App,
    tenant: &str,
) -> Result<
    (
        &'a TenantRuntime,
        &'a crate::inbound::oidc::OidcClient,
        &'a crate::trust::oidc::ProviderTrust,
    ),
    Refusal,
> {
    let rt = app.tenants.get(tenant).ok_or_else(|| {
        Refusal::new(
            404,
            "tenant.unknown",
            format!("no tenant {tenant:?} is configured"),
        )
    })?;
    match (rt.login.as_ref(), rt.provider.as_ref()) {
        (Some(rp), Some(trust)) => Ok((rt, rp, trust)),
        _ => Err(Refusal::new(
            404,
            "tenant.oidc_not_configured",
            format!(
                "tenant {tenant:?} has no [tenants.oidc] client_id: it does not sign in by OIDC"
            ),
        )),
    }
}

/// `GET /oidc/{tenant}/login?console=…`: start an Entra OIDC login.
pub async fn oidc_login(
    app: &App,
    tenant: &str,
    target: &str,
    login_hint: Option<&str>,
    client: Option<String>,
) -> Outcome {
    let now = app.now();
    let event = AuditEvent::new(now, tenant, "oidc", client);
    let (_, rp, trust) = match oidc_tenant(app, tenant) {
        Ok(found) => found,
        Err(r) => return refuse(app, event, r),
    };
    match crate::inbound::oidc::start(
        rp,
        trust,
        app.store.as_ref(),
        tenant,
        target,
        login_hint,
        now,
    )
    .await
    {
        Ok(location) => Outcome::Redirect {
            location,
            session: None,
        },
        Err(e) => {
            if matches!(e, crate::inbound::oidc::OidcError::Store(_)) {
                app.metrics.store_error("oidc_state");
            }
            let r = Refusal::new(e.status(), e.code(), e.to_string());
            refuse(app, event, r)
        }
    }
}

/// `GET /oidc/{tenant}/callback`: finish an Entra OIDC login.
pub async fn oidc_callback(
    app: &App,
    tenant: &str,
    cb: &crate::inbound::oidc::Callback,
    client: Option<String>,
) -> Outcome {
    let now = app.now();
    let mut event = AuditEvent::new(now, tenant, "oidc", client);
    let (rt, rp, trust) = match oidc_tenant(app, tenant) {
        Ok(found) => found,
        Err(r) => return refuse(app, event, r),
    };
    let started = std::time::Instant::now();
    let finished =
        crate::inbound::oidc::finish(rp, trust, app.store.as_ref(), tenant, cb, now).await;
    app.metrics
        .verification_seconds(started.elapsed().as_secs_f64());
    let finished = match finished {
        Ok(f) => f,
        Err(e) => {
            if matches!(e, crate::inbound::oidc::OidcError::Store(_)) {
                app.metrics.store_error("oidc_state");
            }
            let r = Refusal::new(e.status(), e.code(), e.to_string());
            return refuse(app, event, r);
        }
    };
    let identity = match resolve_overage(rt, finished.identity).await {
        Ok(id) => id,
        Err((id, e)) => {
            let event = event.with_identity(&id);
            return refuse(app, event, Refusal::new(502, e.code(), e.to_string()));
        }
    };
    event = event.with_identity(&identity);
    // One use per ID token, across instances (the state is one-use too).
    if let Some(jti) = identity.token_id.as_deref() {
        let until = identity.expires_at + rt.settings.skew;
        match app
            .store
            .claim_once(
                "oidc-id-token",
                &format!("{}|{jti}", identity.issuer),
                until,
                now,
            )
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                let r = Refusal::new(
                    403,
                    "oidc.id_token_replayed",
                    "this ID token was already used",
                );
                return refuse(app, event, r);
            }
            Err(e) => return refuse(app, event, store_down(app, "claim_once", e)),
        }
    }
    complete_login(app, rt, identity, &finished.target, event, now).await
}

/// `GET /launch/{console}` from the launcher, with the session cookie.
pub async fn launch(
    app: &App,
    session: Option<&str>,
    console: &str,
    client: Option<String>,
) -> Outcome {
    let now = app.now();
    let identity = match session {
        None => None,
        Some(s) => match app.store.get_session(s, now).await {
            Ok(found) => found,
            Err(e) => {
                let event = AuditEvent::new(now, "-", "session", client);
                return refuse(app, event, store_down(app, "get_session", e));
            }
        },
    };
    let Some(identity) = identity else {
        let event = AuditEvent::new(now, "-", "session", client);
        let r = Refusal::new(
            401,
            "session.missing",
            "no fedgate session: sign in again from Entra (My Apps)",
        );
        return refuse(app, event, r);
    };
    let tenant = identity
        .attributes
        .get("fedgate:tenant")
        .and_then(|v| v.first())
        .cloned()
        .unwrap_or_default();
    let event = AuditEvent::new(now, &tenant, "session", client).with_identity(&identity);
    let Some(rt) = app.tenants.get(&tenant) else {
        return refuse(
            app,
            event,
            Refusal::new(404, "tenant.unknown", "the session's tenant is gone"),
        );
    };
    deliver(app, rt, &identity, console, event, now)
}

/// Groups overage: Entra sent a link instead of the groups. With Graph
/// configured for the tenant, fetch the user's transitive groups; without
/// it, leave the overage flagged (policy then denies with
/// `policy.groups_overage_unresolved`). Never "no groups".
async fn resolve_overage(
    rt: &TenantRuntime,
    mut identity: Identity,
) -> Result<Identity, (Identity, crate::trust::graph::GraphError)> {
    if !identity.groups_overage {
        return Ok(identity);
    }
    let (Some(graph), Some(oid)) = (&rt.graph, identity.object_id.clone()) else {
        return Ok(identity);
    };
    match graph.transitive_groups(&oid).await {
        Ok(groups) => {
            tracing::info!(target: "audit", tenant = %rt.config.id, groups = groups.len(), "groups overage resolved through Microsoft Graph");
            identity.groups = groups;
            identity.groups_overage = false;
            identity
                .attributes
                .insert("fedgate:groups_source".into(), vec!["graph".into()]);
            Ok(identity)
        }
        Err(e) => Err((identity, e)),
    }
}

pub(crate) fn decide(
    app: &App,
    rt: &TenantRuntime,
    identity: &Identity,
    console: &Console,
    now: OffsetDateTime,
) -> crate::identity::Decision {
    let cref = ConsoleRef {
        id: &console.id,
        kind: console.kind,
        extra_roles: &console.extra_roles,
    };
    policy::decide(identity, &rt.config.id, &cref, &app.config.rules, now)
}

fn deliver(
    app: &App,
    rt: &TenantRuntime,
    identity: &Identity,
    console_id: &str,
    mut event: AuditEvent,
    now: OffsetDateTime,
) -> Outcome {
    event.console = Some(console_id.to_string());
    let Some(console) = app.console(console_id) else {
        let r = Refusal::new(
            404,
            "console.unknown",
            format!("RelayState names console {console_id:?}, which is not configured"),
        );
        return refuse(app, event, r);
    };
    let decision = decide(app, rt, identity, console, now);
    event.rules_matched = decision.matched_rules();
    if let Some(denial) = decision
        .denial
        .as_ref()
        .filter(|_| !decision.allowed())
        .cloned()
    {
        let mut r = Refusal::new(403, denial.code, denial.message);
        r.console = Some(console.display_name.clone());
        return refuse(app, event, r);
    }
    if !decision.allowed() {
        let r = Refusal::new(403, "policy.no_rule_matched", "no rule grants a role");
        return refuse(app, event, r);
    }
    if console.reply_url.is_empty() {
        // An OIDC-only console: the user starts its login there, and its
        // OpenID Connect request finds the fedgate session.
        let Some(location) = console
            .oidc
            .as_ref()
            .and_then(|o| o.initiate_login_uri.clone())
        else {
            let r = Refusal::new(
                404,
                "console.no_login_url",
                format!("console {console_id:?} signs in by OIDC and has no initiate_login_uri: open the console itself"),
            );
            return refuse(app, event, r);
        };
        event.outcome = "allowed";
        event.code = "ok".into();
        event.roles_granted = decision.grants.clone();
        event.reason = "sent to the console's login (OpenID Connect)".into();
        app.audit.record(&event);
        app.metrics
            .login(&rt.config.id, console_id, "allowed", "ok");
        return Outcome::Redirect {
            location,
            session: None,
        };
    }
    let lifetime = Duration::seconds(app.config.server.assertion_lifetime_secs as i64);
    let delivery = saml_post::delivery(console, &app.idp_entity_id, lifetime);
    let Some(seed) = random_id() else {
        return refuse(app, event, rng_failed());
    };
    let xml = match saml_post::response(
        identity,
        &decision.grants,
        &delivery,
        &app.keys().current.saml,
        now,
        &seed,
    ) {
        Ok(x) => x,
        Err(e) => return refuse(app, event, Refusal::new(500, e.code(), e.to_string())),
    };
    let mut html = saml_post::post_form(&console.reply_url, &xml, None, &console.display_name);
    if consoles::profile(console.kind).users_must_exist {
        html = html.replace(
            "</form>",
            "</form><p>This console does not create users: if it answers that the user is unknown, \
             an administrator must first create the user (with the same e-mail address) in the console.</p>",
        );
    }
    event.outcome = "allowed";
    event.code = "ok".into();
    event.roles_granted = decision.grants.clone();
    event.reason = format!("granted by {}", event.rules_matched.join(", "));
    app.audit.record(&event);
    app.metrics
        .login(&rt.config.id, console_id, "allowed", "ok");
    Outcome::Deliver {
        console: console_id.to_string(),
        html,
        session: None,
    }
}

/// The store did not answer: count it, log it, and fail closed with 503.
pub(crate) fn store_down(app: &App, op: &'static str, e: crate::store::StoreError) -> Refusal {
    app.metrics.store_error(op);
    tracing::warn!(op, error = %e, "store unavailable: login refused (fail closed)");
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

/// `POST /oauth2/token` with `grant_type=token-exchange`: an Entra access
/// token for a console-scoped JWT.
pub async fn token_exchange(
    app: &App,
    form: &crate::outbound::token::ExchangeForm,
    client: Option<String>,
) -> Result<crate::outbound::token::Issued, crate::outbound::token::ExchangeError> {
    use crate::outbound::token::{self as tok, ExchangeError};
    let now = app.now();
    let mut event = AuditEvent::new(now, "-", "token_exchange", client);
    let fail = |app: &App, mut event: AuditEvent, e: ExchangeError| {
        event.outcome = "denied";
        event.code = e.code.to_string();
        event.reason = e.error_description.clone();
        app.audit.record(&event);
        app.metrics.login(
            &event.tenant,
            event.console.as_deref().unwrap_or("-"),
            "denied",
            e.code,
        );
        Err(e)
    };
    if form.grant_type != tok::GRANT_TOKEN_EXCHANGE {
        let e = ExchangeError::new(
            400,
            "unsupported_grant_type",
            "token.grant_unsupported",
            "only token exchange (RFC 8693) is served here",
        );
        return fail(app, event, e);
    }
    if form.subject_token.is_empty()
        || !matches!(
            form.subject_token_type.as_str(),
            tok::TYPE_ACCESS_TOKEN | tok::TYPE_JWT
        )
    {
        let e = ExchangeError::new(
            400,
            "invalid_request",
            "token.request_invalid",
            "subject_token and subject_token_type (access_token or jwt) are required",
        );
        return fail(app, event, e);
    }
    let Some(console_id) = form.audience.as_deref().filter(|a| !a.is_empty()) else {
        let e = ExchangeError::new(
            400,
            "invalid_request",
            "token.request_invalid",
            "audience (the console id) is required",
        );
        return fail(app, event, e);
    };
    event.console = Some(console_id.to_string());
    let Some(console) = app.console(console_id) else {
        let e = ExchangeError::new(
            400,
            "invalid_target",
            "console.unknown",
            format!("no console {console_id:?}"),
        );
        return fail(app, event, e);
    };
    // Which tenant: the unverified `tid` only selects whose trust to verify
    // with; a lie there fails that tenant's issuer and key checks.
    let tid = unverified_tid(&form.subject_token).unwrap_or_default();
    let Some(rt) = app
        .tenants
        .values()
        .find(|t| t.config.entra_tenant_id.eq_ignore_ascii_case(&tid) && t.token_policy.is_some())
    else {
        let e = ExchangeError::new(
            400,
            "invalid_grant",
            "tenant.unknown",
            "the subject token's tenant is not configured for token exchange",
        );
        return fail(app, event, e);
    };
    event.tenant = rt.config.id.clone();
    let (Some(trust), Some(policy)) = (rt.provider.as_ref(), rt.token_policy.as_ref()) else {
        let e = ExchangeError::new(
            400,
            "invalid_grant",
            "tenant.unknown",
            "no token trust for this tenant",
        );
        return fail(app, event, e);
    };
    let started = std::time::Instant::now();
    let verified = crate::trust::oidc::verify_token(trust, &form.subject_token, policy, now).await;
    app.metrics
        .verification_seconds(started.elapsed().as_secs_f64());
    let identity = match verified {
        Ok(id) => id,
        Err(crate::trust::oidc::TokenTrustError::Trust(e)) => {
            return fail(
                app,
                event,
                ExchangeError::new(502, "temporarily_unavailable", e.code(), &e),
            )
        }
        Err(e) => {
            return fail(
                app,
                event,
                ExchangeError::new(400, "invalid_grant", e.code(), &e),
            )
        }
    };
    let identity = match resolve_overage(rt, identity).await {
        Ok(id) => id,
        Err((id, e)) => {
            let event = event.with_identity(&id);
            return fail(
                app,
                event,
                ExchangeError::new(502, "temporarily_unavailable", e.code(), &e),
            );
        }
    };
    event = event.with_identity(&identity);
    event.console = Some(console_id.to_string());
    event.via = format!("{:?}", identity.source).to_ascii_lowercase();
    let decision = decide(app, rt, &identity, console, now);
    event.rules_matched = decision.matched_rules();
    if !decision.allowed() {
        let (code, message) = decision.denial_reason();
        return fail(
            app,
            event,
            ExchangeError::new(403, "access_denied", code, message),
        );
    }
    // Lifetime: the console's, capped by every matching rule's cap, and never
    // past the subject token's own expiry.
    let mut lifetime = Duration::seconds(console.token_lifetime_secs as i64);
    for cap in app
        .config
        .rules
        .iter()
        .filter(|r| event.rules_matched.contains(&r.id))
        .filter_map(|r| r.max_token_lifetime_secs)
    {
        lifetime = lifetime.min(Duration::seconds(cap as i64));
    }
    let expires = (now + lifetime).min(identity.expires_at);
    if expires <= now {
        let e = ExchangeError::new(
            400,
            "invalid_grant",
            "jwt.expired",
            "the subject token has no lifetime left",
        );
        return fail(app, event, e);
    }
    let keys = app.keys();
    let signer = match console.token_alg.as_str() {
        "RS256" => keys.current.jwt.as_ref(),
        _ => app.token_es256.as_ref(),
    };
    let Some(signer) = signer else {
        let e = ExchangeError::new(
            500,
            "server_error",
            "token.key_missing",
            format!(
                "no {} key is configured for console tokens",
                console.token_alg
            ),
        );
        return fail(app, event, e);
    };
    let profile = consoles::profile(console.kind);
    let Some(jti) = random_id() else {
        return fail(
            app,
            event,
            ExchangeError::new(
                500,
                "server_error",
                "internal.rng_failed",
                "the system random number generator failed",
            ),
        );
    };
    let claims = tok::console_claims(
        &identity,
        &decision.grants,
        &app.config.server.public_url,
        &console.identifier,
        &console.id,
        console
            .role_attribute
            .as_deref()
            .unwrap_or(profile.role_attribute),
        profile.scope_attribute,
        now,
        expires,
        &jti,
    );
    let token = match signer.sign_jwt(&claims) {
        Ok(t) => t,
        Err(e) => {
            return fail(
                app,
                event,
                ExchangeError::new(500, "server_error", e.code(), &e),
            )
        }
    };
    event.outcome = "allowed";
    event.code = "ok".into();
    event.roles_granted = decision.grants.clone();
    event.reason = format!(
        "console token for {} s, granted by {}",
        (expires - now).whole_seconds(),
        event.rules_matched.join(", ")
    );
    app.audit.record(&event);
    app.metrics
        .login(&rt.config.id, console_id, "allowed", "ok");
    Ok(tok::Issued {
        access_token: token,
        issued_token_type: tok::TYPE_JWT,
        token_type: "Bearer",
        expires_in: (expires - now).whole_seconds(),
    })
}

/// The `tid` claim of a JWT, read without verifying (to select the tenant).
fn unverified_tid(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("tid")?.as_str().map(str::to_string)
}

impl App {
    /// fedgate's JWKS for console tokens (`GET /oauth2/jwks`).
    pub fn jwks(&self) -> serde_json::Value {
        let ks = self.keys();
        let keys: Vec<serde_json::Value> = self
            .token_es256
            .iter()
            .chain(ks.published().iter().filter_map(|k| k.jwt.as_ref()))
            .map(|k| k.jwk())
            .collect();
        serde_json::json!({ "keys": keys })
    }
}
