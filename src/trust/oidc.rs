//! A tenant's OpenID provider, as fedgate trusts it: the discovery document
//! and the JWKS, fetched over HTTPS (no redirects followed, bounded time and
//! size), cached, and refreshed on an interval. A token signed with a key
//! the cached JWKS does not hold triggers one refetch — one at a time, and at
//! most once per five minutes per tenant — before it is refused, so an Entra
//! key rollover is followed without letting unknown `kid`s drive traffic to
//! Entra. A failed refresh keeps the last good document.
//!
//! A tenant may also pin its JWKS from a file (`oidc.jwks_file`): then
//! nothing is fetched for token verification.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::identity::ErrorCode;
use crate::trust::jwks::Jwks;

/// How long a fetched discovery document and JWKS are used before a refresh.
pub const REFRESH_EVERY: Duration = Duration::from_secs(3600);
/// The least time between two refetches caused by unknown key ids.
pub const KID_REFETCH_EVERY: Duration = Duration::from_secs(300);
/// Documents larger than this are refused.
const MAX_DOCUMENT: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OidcTrustError {
    #[error("fetching {url} failed: {reason}")]
    Fetch { url: String, reason: String },
    #[error("the discovery document at {url} is not usable: {reason}")]
    Discovery { url: String, reason: String },
    #[error("the JWKS at {url} is not usable: {reason}")]
    Jwks { url: String, reason: String },
}

impl ErrorCode for OidcTrustError {
    fn code(&self) -> &'static str {
        match self {
            OidcTrustError::Fetch { .. } => "oidc.fetch_failed",
            OidcTrustError::Discovery { .. } => "oidc.discovery_invalid",
            OidcTrustError::Jwks { .. } => "oidc.jwks_invalid",
        }
    }
}

/// The members of an OpenID provider's discovery document fedgate uses;
/// `raw` keeps the whole document (the relying party hands it to the
/// `openidconnect` crate).
#[derive(Debug, Clone)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub raw: serde_json::Value,
}

#[derive(Deserialize)]
struct DiscoveryFields {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

struct Fetched {
    discovery: Arc<Discovery>,
    jwks: Arc<Jwks>,
    at: Instant,
}

/// One tenant's OpenID provider trust.
pub struct ProviderTrust {
    issuer: String,
    discovery_url: String,
    pinned_jwks: Option<Arc<Jwks>>,
    http: reqwest::Client,
    state: RwLock<Option<Fetched>>,
    /// Where the last good discovery document and JWKS are saved, so a
    /// restart during an outage still verifies tokens.
    state_file: Option<std::path::PathBuf>,
    /// Serialises fetches (single flight) and remembers the last kid-driven one.
    fetching: tokio::sync::Mutex<Option<Instant>>,
}

impl std::fmt::Debug for ProviderTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderTrust")
            .field("issuer", &self.issuer)
            .field("discovery_url", &self.discovery_url)
            .finish_non_exhaustive()
    }
}

/// An HTTP client for trust fetches: no redirects, ten seconds.
pub fn http_client() -> Result<reqwest::Client, String> {
    crate::trust::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())
}

impl ProviderTrust {
    pub fn new(
        issuer: String,
        discovery_url: Option<String>,
        pinned_jwks: Option<Jwks>,
    ) -> Result<Self, OidcTrustError> {
        let discovery_url = discovery_url.unwrap_or_else(|| {
            format!(
                "{}/.well-known/openid-configuration",
                issuer.trim_end_matches('/')
            )
        });
        let http = http_client().map_err(|reason| OidcTrustError::Fetch {
            url: discovery_url.clone(),
            reason,
        })?;
        Ok(ProviderTrust {
            issuer,
            discovery_url,
            pinned_jwks: pinned_jwks.map(Arc::new),
            http,
            state: RwLock::new(None),
            state_file: None,
            fetching: tokio::sync::Mutex::new(None),
        })
    }

    /// Save every good fetch to `file`, and start from the copy found there
    /// (treated as stale: the first use tries a fetch, and falls back to it).
    pub fn with_state_file(mut self, file: std::path::PathBuf) -> Self {
        if let Ok(bytes) = std::fs::read(&file) {
            match self.parse_saved(&bytes) {
                Some(f) => {
                    tracing::info!(issuer = %self.issuer, file = %file.display(), "last-known-good OIDC discovery and JWKS loaded");
                    if let Ok(mut s) = self.state.write() {
                        *s = Some(f);
                    }
                }
                None => {
                    tracing::warn!(file = %file.display(), "the saved OIDC discovery and JWKS are not usable; ignoring them")
                }
            }
        }
        self.state_file = Some(file);
        self
    }

    fn parse_saved(&self, bytes: &[u8]) -> Option<Fetched> {
        let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
        let raw = v.get("discovery")?.clone();
        let fields: DiscoveryFields = serde_json::from_value(raw.clone()).ok()?;
        if fields.issuer != self.issuer {
            return None;
        }
        let jwks = Jwks::from_json(v.get("jwks")?.to_string().as_bytes()).ok()?;
        Some(Fetched {
            discovery: Arc::new(Discovery {
                issuer: fields.issuer,
                authorization_endpoint: fields.authorization_endpoint,
                token_endpoint: fields.token_endpoint,
                jwks_uri: fields.jwks_uri,
                raw,
            }),
            jwks: Arc::new(jwks),
            // Stale on purpose: the first use refreshes, keeping this on failure.
            at: Instant::now().checked_sub(REFRESH_EVERY + Duration::from_secs(1))?,
        })
    }

    fn save(&self, discovery: &serde_json::Value, jwks: &[u8]) {
        let Some(path) = &self.state_file else { return };
        let Ok(jwks) = serde_json::from_slice::<serde_json::Value>(jwks) else {
            return;
        };
        let doc = serde_json::json!({"discovery": discovery, "jwks": jwks});
        let tmp = path.with_extension("tmp");
        let r = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&tmp, doc.to_string()))
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = r {
            tracing::warn!(file = %path.display(), error = %e, "could not save the last-known-good OIDC discovery and JWKS");
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    fn cached(&self, max_age: Duration) -> Option<(Arc<Discovery>, Arc<Jwks>)> {
        let s = self.state.read().ok()?;
        let f = s.as_ref()?;
        (f.at.elapsed() < max_age).then(|| (f.discovery.clone(), f.jwks.clone()))
    }

    fn last_good(&self) -> Option<(Arc<Discovery>, Arc<Jwks>)> {
        self.cached(Duration::MAX)
    }

    /// The discovery document (fetched if not cached or stale; the last good
    /// one if a refresh fails).
    pub async fn discovery(&self) -> Result<Arc<Discovery>, OidcTrustError> {
        Ok(self.current().await?.0)
    }

    /// The keys tokens are verified with: the pinned JWKS, or the fetched one.
    pub async fn jwks(&self) -> Result<Arc<Jwks>, OidcTrustError> {
        if let Some(j) = &self.pinned_jwks {
            return Ok(j.clone());
        }
        Ok(self.current().await?.1)
    }

    async fn current(&self) -> Result<(Arc<Discovery>, Arc<Jwks>), OidcTrustError> {
        if let Some(c) = self.cached(REFRESH_EVERY) {
            return Ok(c);
        }
        let _flight = self.fetching.lock().await;
        // Someone else may have fetched while we waited.
        if let Some(c) = self.cached(REFRESH_EVERY) {
            return Ok(c);
        }
        match self.fetch().await {
            Ok(f) => Ok(f),
            Err(e) => match self.last_good() {
                Some(c) => {
                    tracing::warn!(issuer = %self.issuer, code = e.code(), error = %e, "OIDC trust refresh failed; keeping the last good discovery and JWKS");
                    Ok(c)
                }
                None => Err(e),
            },
        }
    }

    /// A token named a key id the JWKS lacks: refetch once (single flight,
    /// at most every [`KID_REFETCH_EVERY`]). Returns whether the JWKS changed.
    pub async fn refresh_for_unknown_kid(&self) -> bool {
        if self.pinned_jwks.is_some() {
            return false;
        }
        let before = self.last_good().map(|(_, j)| j);
        let mut last = self.fetching.lock().await;
        if let Some(t) = *last {
            if t.elapsed() < KID_REFETCH_EVERY {
                // A refetch happened recently (maybe while we waited): use it.
                let now = self.last_good().map(|(_, j)| j);
                return match (before, now) {
                    (Some(a), Some(b)) => !Arc::ptr_eq(&a, &b),
                    _ => false,
                };
            }
        }
        *last = Some(Instant::now());
        match self.fetch().await {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(issuer = %self.issuer, code = e.code(), error = %e, "JWKS refetch for an unknown key id failed");
                false
            }
        }
    }

    async fn get(&self, url: &str) -> Result<Vec<u8>, OidcTrustError> {
        let fail = |reason: String| OidcTrustError::Fetch {
            url: url.to_string(),
            reason,
        };
        let resp = self
            .http
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| fail(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(fail(format!(
                "HTTP {} (redirects are not followed)",
                resp.status()
            )));
        }
        let body = resp.bytes().await.map_err(|e| fail(e.to_string()))?;
        if body.len() > MAX_DOCUMENT {
            return Err(fail(format!("{} bytes, over the limit", body.len())));
        }
        Ok(body.to_vec())
    }

    async fn fetch(&self) -> Result<(Arc<Discovery>, Arc<Jwks>), OidcTrustError> {
        let url = &self.discovery_url;
        let bad = |reason: String| OidcTrustError::Discovery {
            url: url.clone(),
            reason,
        };
        let body = self.get(url).await?;
        let raw: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| bad(e.to_string()))?;
        let fields: DiscoveryFields =
            serde_json::from_value(raw.clone()).map_err(|e| bad(e.to_string()))?;
        // OpenID Connect Discovery §4.3: the issuer must be exactly the one configured.
        if fields.issuer != self.issuer {
            return Err(bad(format!(
                "issuer is {:?}, expected {:?}",
                fields.issuer, self.issuer
            )));
        }
        let jwks_body = self.get(&fields.jwks_uri).await?;
        let jwks = Jwks::from_json(&jwks_body).map_err(|e| OidcTrustError::Jwks {
            url: fields.jwks_uri.clone(),
            reason: format!("[{}] {e}", e.code()),
        })?;
        let discovery = Arc::new(Discovery {
            issuer: fields.issuer,
            authorization_endpoint: fields.authorization_endpoint,
            token_endpoint: fields.token_endpoint,
            jwks_uri: fields.jwks_uri,
            raw,
        });
        self.save(&discovery.raw, &jwks_body);
        let jwks = Arc::new(jwks);
        if let Ok(mut s) = self.state.write() {
            *s = Some(Fetched {
                discovery: discovery.clone(),
                jwks: jwks.clone(),
                at: Instant::now(),
            });
        }
        Ok((discovery, jwks))
    }
}

/// Verify a token against the provider's keys, refetching the JWKS once if
/// the token names a key it does not hold. With a CPU pool (the server),
/// the signature check runs there, admitted or refused at once
/// ([`crate::cpu`]); without one (command-line tools) it runs inline.
pub async fn verify_token(
    trust: &ProviderTrust,
    token: &str,
    policy: &crate::inbound::bearer::BearerPolicy,
    now: time::OffsetDateTime,
    cpu: Option<&crate::cpu::CpuPool>,
) -> Result<crate::identity::Identity, TokenTrustError> {
    use crate::inbound::bearer::BearerError;
    let check = |jwks: Arc<Jwks>| check_token(cpu, token, jwks, policy, now);
    let jwks = trust.jwks().await.map_err(TokenTrustError::Trust)?;
    match check(jwks).await? {
        Err(BearerError::KidUnknown { .. }) if trust.refresh_for_unknown_kid().await => {
            let jwks = trust.jwks().await.map_err(TokenTrustError::Trust)?;
            check(jwks).await?.map_err(TokenTrustError::Token)
        }
        other => other.map_err(TokenTrustError::Token),
    }
}

async fn check_token(
    cpu: Option<&crate::cpu::CpuPool>,
    token: &str,
    jwks: Arc<Jwks>,
    policy: &crate::inbound::bearer::BearerPolicy,
    now: time::OffsetDateTime,
) -> Result<Result<crate::identity::Identity, crate::inbound::bearer::BearerError>, TokenTrustError>
{
    use crate::inbound::bearer;
    let Some(cpu) = cpu else {
        return Ok(bearer::verify(token, &jwks, policy, now));
    };
    let (token, policy) = (token.to_string(), policy.clone());
    cpu.admit(move || bearer::verify(&token, &jwks, &policy, now))
        .await
        .map_err(TokenTrustError::Busy)
}

/// Why a token could not be verified: the token, or the trust behind it.
#[derive(Debug, thiserror::Error)]
pub enum TokenTrustError {
    #[error(transparent)]
    Token(crate::inbound::bearer::BearerError),
    #[error(transparent)]
    Trust(OidcTrustError),
    /// The CPU pool is full (503 `server.busy`) or its worker failed.
    #[error(transparent)]
    Busy(crate::cpu::PoolError),
}

impl ErrorCode for TokenTrustError {
    fn code(&self) -> &'static str {
        match self {
            TokenTrustError::Token(e) => e.code(),
            TokenTrustError::Trust(e) => e.code(),
            TokenTrustError::Busy(e) => e.code(),
        }
    }
}
