//! Upkeep of a running [`App`]: metadata refresh, key reload, expiry
//! warnings, audit checkpoints and fsyncs, and the trust metrics.

use std::sync::Arc;

use time::OffsetDateTime;

use super::App;
use crate::config::Config;

impl App {
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

    /// Reload `signing.key_dir` every 30 seconds (SIGHUP reloads it too:
    /// [`crate::gateway::Live::spawn_upkeep`]). Call it from within the runtime.
    pub fn spawn_key_reload(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let has_dir = self.config.signing.key_dir.is_some();
        let app = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
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

    /// The tasks that ship audit lines to `audit.sinks` (once: the sinks
    /// outlive configuration reloads, as the audit file does).
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
