//! Start-up: an [`App`] from a configuration (trust material, keys,
//! the consoles' certificates), or why not.

use std::collections::HashMap;
use std::sync::Arc;

use time::OffsetDateTime;

use super::{login_state, sso, App, TenantRuntime};
use crate::audit::AuditLog;
use crate::config::Config;
use crate::consoles;
use crate::identity::ErrorCode;
use crate::metrics::Metrics;
use crate::store::Store;

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

/// What outlives a configuration reload: the store, the audit trail, the
/// metrics, the signing keys, the CPU pool and the throttles (all from
/// sections a reload may not change: see [`crate::gateway::reload`]).
struct Kept {
    keys: Arc<std::sync::RwLock<Arc<crate::trust::keys::KeySet>>>,
    token_es256: Option<Arc<crate::trust::signing::JwtSigner>>,
    store: Arc<dyn Store>,
    audit: Arc<AuditLog>,
    metrics: Arc<Metrics>,
    admin_throttle: Arc<crate::net::Throttle>,
    cpu: Arc<crate::cpu::CpuPool>,
    login_throttle: Arc<crate::net::Throttle>,
    readiness: Arc<tokio::sync::Mutex<Option<super::Probe>>>,
    clock: Arc<dyn Fn() -> OffsetDateTime + Send + Sync>,
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
        let kept = Kept {
            keys: Arc::new(std::sync::RwLock::new(Arc::new(keys))),
            token_es256: token_es256.map(Arc::new),
            store,
            audit: Arc::new(audit),
            metrics: Arc::new(Metrics::new(
                std::iter::empty::<&str>(),
                std::iter::empty::<&str>(),
            )),
            admin_throttle: Arc::new(crate::net::Throttle::new(
                5,
                time::Duration::minutes(1),
                4096,
            )),
            cpu: Arc::new(crate::cpu::CpuPool::new(
                config.server.cpu_threads,
                config.server.cpu_queue,
            )),
            login_throttle: Arc::new(crate::net::Throttle::new(
                config.server.login_starts_per_minute,
                time::Duration::minutes(1),
                16_384,
            )),
            readiness: Arc::new(tokio::sync::Mutex::new(None)),
            clock: Arc::from(clock),
        };
        assemble(config, None, kept, &HashMap::new())
    }

    /// The App for `config` (a reload), sharing with this one what outlives
    /// a configuration (the store, audit trail, metrics, keys, CPU pool,
    /// throttles) and the trust of every tenant whose settings did not
    /// change and whose metadata is not a file (a file is read again).
    pub fn reconfigured(&self, config: Config, version: String) -> Result<App, StartError> {
        let reuse: HashMap<String, Arc<TenantRuntime>> = config
            .tenants
            .iter()
            .filter(|t| t.metadata_file.is_none())
            .filter_map(|t| {
                let old = self.tenants.get(&t.id)?;
                (format!("{:?}", old.config) == format!("{t:?}"))
                    .then(|| (t.id.clone(), old.clone()))
            })
            .collect();
        let kept = Kept {
            keys: self.keys.clone(),
            token_es256: self.token_es256.clone(),
            store: self.store.clone(),
            audit: self.audit.clone(),
            metrics: self.metrics.clone(),
            admin_throttle: self.admin_throttle.clone(),
            cpu: self.cpu.clone(),
            login_throttle: self.login_throttle.clone(),
            readiness: self.readiness.clone(),
            clock: self.clock.clone(),
        };
        assemble(config, Some(version), kept, &reuse)
    }

    /// Name the configuration's version in every audit event from now on.
    pub fn with_version(mut self, version: Option<String>) -> App {
        self.config_version = version;
        self
    }
}

/// The per-configuration half of an App: tenants (loaded, or shared from
/// `reuse`), the consoles' certificates, the login-state budgets, and the
/// checks that tie the signing key to the consoles.
fn assemble(
    config: Config,
    version: Option<String>,
    kept: Kept,
    reuse: &HashMap<String, Arc<TenantRuntime>>,
) -> Result<App, StartError> {
    let public = config.server.public_url.clone();
    let mut tenants = HashMap::new();
    for t in &config.tenants {
        let rt = match reuse.get(&t.id) {
            Some(rt) => rt.clone(),
            None => Arc::new(TenantRuntime::load(
                t,
                &public,
                config.server.state_dir.as_deref(),
            )?),
        };
        tenants.insert(t.id.clone(), rt);
    }
    let signing = match kept.keys.read() {
        Ok(k) => k.current.saml.algorithm(),
        Err(p) => p.into_inner().current.saml.algorithm(),
    };
    // ECDSA only towards consoles whose profile accepts it.
    if signing == crate::trust::certs::SigAlg::EcdsaSha256 {
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
    // Metric labels: the configured ids only, so no request adds a series
    // (a reload adds the ids it configures; series never go away).
    kept.metrics.admit(
        config.tenants.iter().map(|t| t.id.as_str()),
        config.consoles.iter().map(|c| c.id.as_str()),
    );
    Ok(App {
        token_es256: kept.token_es256,
        keys: kept.keys,
        idp_entity_id: format!("{public}/idp/metadata"),
        config,
        config_version: version,
        tenants,
        store: kept.store,
        audit: kept.audit,
        metrics: kept.metrics,
        admin_throttle: kept.admin_throttle,
        cpu: kept.cpu,
        login_throttle: kept.login_throttle,
        pending_budget,
        sso_consoles,
        console_encryption,
        readiness: kept.readiness,
        clock: kept.clock,
    })
}
