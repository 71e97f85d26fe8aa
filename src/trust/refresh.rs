//! A tenant's SAML trust that follows the IdP: federation metadata from a
//! file (fixed) or from a URL (Entra's `federationmetadata.xml?appid=…`),
//! fetched at start and then on an interval, with a conditional GET
//! (`If-None-Match` / `If-Modified-Since`).
//!
//! A fetch that fails, a document that does not parse, one for another
//! tenant, or one without a signing certificate never replaces what is
//! trusted: the last-known-good set stays, a failure is counted, and a
//! warning is logged. Every accepted document is written to the state
//! directory (atomically: a temporary file, then a rename), so a restart
//! during an IdP outage starts on the last-known-good metadata.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use time::OffsetDateTime;

use crate::identity::ErrorCode;
use crate::trust::metadata::IdpMetadata;

/// Why a refresh did not change the trusted metadata.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshError {
    #[error("fetching {url} failed: {reason}")]
    Fetch { url: String, reason: String },
    #[error("the document from {url} was refused: [{code}] {reason}")]
    Refused {
        url: String,
        code: &'static str,
        reason: String,
    },
}

impl ErrorCode for RefreshError {
    fn code(&self) -> &'static str {
        match self {
            RefreshError::Fetch { .. } => "metadata.fetch_failed",
            RefreshError::Refused { code, .. } => code,
        }
    }
}

/// What a refresh did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refreshed {
    /// A new document was accepted (certificates may have changed).
    Updated,
    /// The server answered 304, or the same document.
    Unchanged,
    /// Fixed metadata (a file): nothing to do.
    Fixed,
}

/// Health of a tenant's metadata, for metrics, `/readyz` and the admin tools.
#[derive(Debug, Clone, Default)]
pub struct RefreshStatus {
    pub last_success: Option<OffsetDateTime>,
    pub last_attempt: Option<OffsetDateTime>,
    pub failures_total: u64,
    pub consecutive_failures: u64,
    pub last_error: Option<String>,
    /// When the IdP last confirmed the metadata in force: a fetch that
    /// returned it (or 304 Not Modified), or, after a restart, the saved
    /// copy's modification time (touched on every such confirmation).
    pub confirmed_at: Option<OffsetDateTime>,
}

/// One tenant's SAML IdP trust.
pub struct IdpTrust {
    tenant: String,
    /// The Entra tenant id the metadata must belong to.
    entra_tenant_id: String,
    url: Option<String>,
    state_file: Option<PathBuf>,
    pub interval: Duration,
    http: Option<reqwest::Client>,
    current: RwLock<Option<Arc<IdpMetadata>>>,
    validators: Mutex<(Option<String>, Option<String>, Vec<u8>)>,
    status: Mutex<RefreshStatus>,
}

impl std::fmt::Debug for IdpTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdpTrust")
            .field("tenant", &self.tenant)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl IdpTrust {
    /// Fixed metadata (from a file).
    pub fn fixed(tenant: &str, md: IdpMetadata) -> Self {
        IdpTrust {
            tenant: tenant.to_string(),
            entra_tenant_id: String::new(),
            url: None,
            state_file: None,
            interval: Duration::from_secs(3600),
            http: None,
            current: RwLock::new(Some(Arc::new(md))),
            validators: Mutex::new((None, None, Vec::new())),
            status: Mutex::new(RefreshStatus::default()),
        }
    }

    /// Metadata from `url`, refreshed every `interval`; the last-known-good
    /// copy is read from (and written to) `state_file`. Nothing is fetched
    /// here: call [`IdpTrust::refresh`] (at start and on the interval).
    pub fn remote(
        tenant: &str,
        entra_tenant_id: &str,
        url: String,
        state_file: Option<PathBuf>,
        interval: Duration,
    ) -> Result<Self, String> {
        let http = crate::trust::oidc::http_client()?;
        let t = IdpTrust {
            tenant: tenant.to_string(),
            entra_tenant_id: entra_tenant_id.to_string(),
            url: Some(url),
            state_file,
            interval,
            http: Some(http),
            current: RwLock::new(None),
            validators: Mutex::new((None, None, Vec::new())),
            status: Mutex::new(RefreshStatus::default()),
        };
        // The last-known-good copy, if a previous run left one.
        if let Some(path) = &t.state_file {
            if let Ok(bytes) = std::fs::read(path) {
                match t.accept(&bytes) {
                    Ok(md) => {
                        let saved = std::fs::metadata(path)
                            .and_then(|m| m.modified())
                            .ok()
                            .map(OffsetDateTime::from);
                        tracing::info!(tenant, file = %path.display(), saved = ?saved.map(crate::timefmt::format), "last-known-good metadata loaded");
                        t.set(md, &bytes);
                        if let Ok(mut s) = t.status.lock() {
                            s.confirmed_at = saved;
                        }
                    }
                    Err((code, reason)) => {
                        tracing::warn!(tenant, file = %path.display(), code, %reason, "the saved metadata is not usable; ignoring it");
                    }
                }
            }
        }
        Ok(t)
    }

    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// The metadata trusted now (`None` only for a URL tenant that was never
    /// fetched and has no saved copy).
    pub fn current(&self) -> Option<Arc<IdpMetadata>> {
        self.current.read().ok().and_then(|c| c.clone())
    }

    pub fn status(&self) -> RefreshStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// When the IdP last confirmed the metadata in force (a successful fetch
    /// or a 304; after a restart, when the saved copy was last confirmed).
    /// `None` for file tenants and for metadata never fetched nor saved.
    pub fn confirmed_at(&self) -> Option<OffsetDateTime> {
        self.status().confirmed_at
    }

    /// Check a fetched document: parses, has a signing certificate (the
    /// parser refuses one without), and belongs to this tenant.
    fn accept(&self, bytes: &[u8]) -> Result<IdpMetadata, (&'static str, String)> {
        let md = IdpMetadata::parse(bytes).map_err(|e| (e.code(), e.to_string()))?;
        if let Some(tid) = crate::inbound::saml::entra_tenant_of_issuer(&md.entity_id) {
            if !self.entra_tenant_id.is_empty() && !tid.eq_ignore_ascii_case(&self.entra_tenant_id)
            {
                return Err((
                    "metadata.wrong_tenant",
                    format!(
                        "this is tenant {tid}'s metadata, not {}'s",
                        self.entra_tenant_id
                    ),
                ));
            }
        }
        Ok(md)
    }

    fn set(&self, md: IdpMetadata, bytes: &[u8]) {
        if let Ok(mut c) = self.current.write() {
            *c = Some(Arc::new(md));
        }
        if let Ok(mut v) = self.validators.lock() {
            v.2 = bytes.to_vec();
        }
    }

    /// The IdP confirmed the saved copy: its modification time says when, so
    /// that a restart during a later outage knows how old the copy is.
    fn touch_saved_copy(&self) {
        let Some(path) = &self.state_file else {
            return;
        };
        let result = std::fs::File::options()
            .write(true)
            .open(path)
            .and_then(|f| f.set_modified(std::time::SystemTime::now()));
        if let Err(e) = result {
            tracing::debug!(tenant = %self.tenant, file = %path.display(), error = %e, "could not touch the saved metadata");
        }
    }

    fn persist(&self, bytes: &[u8]) {
        let Some(path) = &self.state_file else {
            return;
        };
        let tmp = path.with_extension("tmp");
        let result = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = result {
            tracing::warn!(tenant = %self.tenant, file = %path.display(), error = %e, "could not save the last-known-good metadata");
        }
    }

    /// Fetch now (conditional GET) and take the document if it is good.
    pub async fn refresh(&self, now: OffsetDateTime) -> Result<Refreshed, RefreshError> {
        let (Some(url), Some(http)) = (&self.url, &self.http) else {
            return Ok(Refreshed::Fixed);
        };
        let result = self.fetch(url, http).await;
        if let Ok(mut s) = self.status.lock() {
            s.last_attempt = Some(now);
            match &result {
                Ok(_) => {
                    s.last_success = Some(now);
                    s.consecutive_failures = 0;
                    s.last_error = None;
                    s.confirmed_at = Some(now);
                }
                Err(e) => {
                    s.failures_total += 1;
                    s.consecutive_failures += 1;
                    s.last_error = Some(format!("[{}] {e}", e.code()));
                }
            }
        }
        if let Ok(Refreshed::Unchanged) = &result {
            self.touch_saved_copy();
        }
        if let Err(e) = &result {
            let kept = if self.current().is_some() {
                "keeping the last-known-good metadata"
            } else {
                "no metadata is trusted yet: SAML logins are refused"
            };
            tracing::warn!(tenant = %self.tenant, code = e.code(), error = %e, "metadata refresh failed; {kept}");
        }
        result
    }

    async fn fetch(&self, url: &str, http: &reqwest::Client) -> Result<Refreshed, RefreshError> {
        let fail = |reason: String| RefreshError::Fetch {
            url: url.to_string(),
            reason,
        };
        let (etag, modified) = self
            .validators
            .lock()
            .map(|v| (v.0.clone(), v.1.clone()))
            .unwrap_or_default();
        let mut req = http.get(url);
        // Only conditional when there is something to keep.
        if self.current().is_some() {
            if let Some(e) = &etag {
                req = req.header(reqwest::header::IF_NONE_MATCH, e);
            }
            if let Some(m) = &modified {
                req = req.header(reqwest::header::IF_MODIFIED_SINCE, m);
            }
        }
        let resp = req.send().await.map_err(|e| fail(e.to_string()))?;
        if resp.status() == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(Refreshed::Unchanged);
        }
        if !resp.status().is_success() {
            return Err(fail(format!(
                "HTTP {} (redirects are not followed)",
                resp.status()
            )));
        }
        let header = |h: reqwest::header::HeaderName| {
            resp.headers()
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(String::from)
        };
        let new_etag = header(reqwest::header::ETAG);
        let new_modified = header(reqwest::header::LAST_MODIFIED);
        let bytes = resp.bytes().await.map_err(|e| fail(e.to_string()))?;
        if bytes.len() > 1024 * 1024 {
            return Err(fail(format!("{} bytes, over the 1 MiB limit", bytes.len())));
        }
        let md = self
            .accept(&bytes)
            .map_err(|(code, reason)| RefreshError::Refused {
                url: url.to_string(),
                code,
                reason,
            })?;
        if let Ok(mut v) = self.validators.lock() {
            v.0 = new_etag;
            v.1 = new_modified;
            if v.2 == bytes.as_ref() {
                return Ok(Refreshed::Unchanged);
            }
        }
        let before: Vec<String> = self
            .current()
            .map(|c| {
                c.signing_certs
                    .iter()
                    .map(|c| c.thumbprint_sha256.clone())
                    .collect()
            })
            .unwrap_or_default();
        let after: Vec<String> = md
            .signing_certs
            .iter()
            .map(|c| c.thumbprint_sha256.clone())
            .collect();
        if before != after {
            tracing::info!(tenant = %self.tenant, before = ?before, after = ?after, "the IdP's signing certificates changed");
        }
        self.set(md, &bytes);
        self.persist(&bytes);
        Ok(Refreshed::Updated)
    }
}

/// The next wait: `interval` with ±10% jitter, so instances do not fetch in step.
pub fn jittered(interval: Duration) -> Duration {
    use aws_lc_rs::rand::SecureRandom;
    let mut b = [0u8; 2];
    let _ = aws_lc_rs::rand::SystemRandom::new().fill(&mut b);
    let r = f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX); // 0..1
    interval.mul_f64(0.9 + 0.2 * r)
}

impl IdpTrust {
    /// Refresh on the jittered interval until the returned task is aborted
    /// or the runtime stops.
    pub fn spawn_loop(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = Arc::downgrade(self);
        let interval = self.interval;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(jittered(interval)).await;
                let Some(t) = me.upgrade() else { return };
                if let Ok(Refreshed::Updated) = t.refresh(OffsetDateTime::now_utc()).await {
                    tracing::info!(tenant = %t.tenant, "metadata refreshed");
                }
            }
        })
    }
}
