//! Where fedgate keeps what must outlive one request: the replay cache
//! (assertion ids accepted once), and sessions (a verified Identity behind
//! a random cookie, for the console launcher).
//!
//! In memory by default (one instance); Redis when several instances run
//! behind a load balancer ([`redis::RedisStore`]), behind the same trait.
//! Keys are namespaced and hashed: nothing that could be replayed is stored
//! in clear.

pub mod memory;
pub mod redis;

use std::future::Future;
use std::pin::Pin;

use time::OffsetDateTime;

use crate::identity::{ErrorCode, Identity};

/// A boxed future, so the trait can be used as `dyn Store`.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// The store could not answer. Callers fail closed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("the session and replay store is unavailable: {0}")]
    Unavailable(String),
}

impl ErrorCode for StoreError {
    fn code(&self) -> &'static str {
        "store.unavailable"
    }
}

pub trait Store: Send + Sync {
    /// Claim `key` in namespace `ns` until `expires`: `true` the first time,
    /// `false` while an earlier claim is alive (a replay).
    fn claim_once<'a>(
        &'a self,
        ns: &'a str,
        key: &'a str,
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, bool>;

    /// Keep a session until `expires`.
    fn put_session<'a>(
        &'a self,
        id: &'a str,
        identity: &'a Identity,
        expires: OffsetDateTime,
    ) -> StoreFuture<'a, ()>;

    /// A live session, if any.
    fn get_session<'a>(
        &'a self,
        id: &'a str,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Option<Identity>>;

    /// Forget a session (sign-out).
    fn delete_session<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()>;

    /// Keep login state (RelayState, PKCE verifier, nonce, an authorization
    /// code's grant…) under `(ns, key)` until `expires`, to be taken once.
    fn put_state<'a>(
        &'a self,
        ns: &'a str,
        key: &'a str,
        value: &'a [u8],
        expires: OffsetDateTime,
    ) -> StoreFuture<'a, ()>;

    /// Look at login state without consuming it: the value while it is
    /// alive and not taken. A response is checked against it (tenant,
    /// browser binding, InResponseTo) before anything is consumed, so a
    /// forged or unsigned response never uses up someone's pending login;
    /// only a verified one [`Store::take_state`]s it.
    fn peek_state<'a>(
        &'a self,
        ns: &'a str,
        key: &'a str,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Option<Vec<u8>>>;

    /// Take login state: the value the first time while it is alive, then
    /// `None` for ever (it is deleted in the same operation).
    fn take_state<'a>(
        &'a self,
        ns: &'a str,
        key: &'a str,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Option<Vec<u8>>>;

    /// Whether the store can answer now (`/readyz`).
    fn ready(&self) -> StoreFuture<'_, ()>;
}

/// The store the configuration names (`[store]`). Reads `password_file`.
/// Makes no connection: a Redis that is down at startup makes fedgate
/// not-ready, not unable to start.
pub fn from_config(
    config: &crate::config::StoreConfig,
) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    match config.kind.as_str() {
        "redis" => {
            let password = match &config.password_file {
                Some(p) => Some(
                    std::fs::read_to_string(p)
                        .map_err(|e| {
                            StoreError::Unavailable(format!(
                                "store.password_file {}: {e}",
                                p.display()
                            ))
                        })?
                        .trim()
                        .to_string(),
                ),
                None => None,
            };
            let ca_pem = match &config.ca_file {
                Some(p) => Some(std::fs::read(p).map_err(|e| {
                    StoreError::Unavailable(format!("store.ca_file {}: {e}", p.display()))
                })?),
                None => None,
            };
            let settings = redis::RedisSettings {
                url: config.url.clone().unwrap_or_default(),
                password,
                timeout: std::time::Duration::from_millis(config.timeout_ms),
                ca_pem,
            };
            Ok(std::sync::Arc::new(redis::RedisStore::new(&settings)?))
        }
        _ => Ok(std::sync::Arc::new(memory::MemoryStore::new())),
    }
}

/// The key under which `(ns, key)` is stored: versioned, namespaced, hashed.
pub fn storage_key(ns: &str, key: &str) -> String {
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("{ns}\u{0}{key}").as_bytes(),
    );
    format!("fedgate:v1:{ns}:{}", crate::util::hex(digest.as_ref()))
}
