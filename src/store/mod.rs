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
mod slab;
mod wire;

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::identity::{ErrorCode, Identity};

/// Whether a session may use the admin page, as fedgate decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminRight {
    /// Not an admin.
    No,
    /// The `[admin]` rule matched at sign-in (checked again on every use, so
    /// a changed rule takes effect at once).
    Rule,
    /// Signed in with the local admin token (`FEDGATE_ADMIN_TOKEN`).
    LocalToken,
}

/// The version of the stored session format; a stored value of any other
/// shape or version is no session (the user signs in again).
pub const SESSION_FORMAT: u32 = 4;

/// What a session cookie stands for: the verified Identity (with only what
/// the IdP sent in its attribute map), and fedgate's own facts about it in
/// typed fields, which no IdP value can set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Session {
    /// [`SESSION_FORMAT`].
    pub format: u32,
    /// fedgate's tenant id whose ACS (or OIDC callback) verified the login;
    /// `None` for the local admin token.
    pub tenant: Option<String>,
    pub admin: AdminRight,
    pub identity: Identity,
    /// The secret half of the cookie, hashed ([`new_cookie`]): the session is
    /// stored under its id (the cookie's first half, which single logout
    /// can find and consoles see as the SessionIndex or `sid`), and only
    /// the cookie's holder has the secret.
    pub validator: String,
}

impl Session {
    /// A session of `tenant` for `identity`; its validator is set when it
    /// is stored ([`new_cookie`]).
    pub fn new(tenant: Option<&str>, admin: AdminRight, identity: Identity) -> Session {
        Session {
            format: SESSION_FORMAT,
            tenant: tenant.map(str::to_string),
            admin,
            identity,
            validator: String::new(),
        }
    }

    /// Whether `secret` is this session's (constant time).
    pub fn opens_with(&self, secret: &str) -> bool {
        let digest = validator_of(secret);
        !self.validator.is_empty()
            && aws_lc_rs::constant_time::verify_slices_are_equal(
                digest.as_bytes(),
                self.validator.as_bytes(),
            )
            .is_ok()
    }

    /// The stored form: a JSON array in the format's field order
    /// ([`wire`]), about half the size of the same fields with their names.
    pub fn encode(&self) -> Result<Vec<u8>, StoreError> {
        wire::encode(self).map_err(|e| StoreError::Unavailable(format!("session encoding: {e}")))
    }

    /// A stored session, or `None` for anything else: an older format (a
    /// JSON object with field names, or a bare Identity, whose attribute
    /// map once held fedgate's markers), a newer one, or garbage. Fail
    /// closed: the user signs in again.
    pub fn decode(bytes: &[u8]) -> Option<Session> {
        wire::decode(bytes)
    }
}

/// The first 128 bits of the secret's SHA-256, in hex: finding a secret
/// that matches takes 2¹²⁸ work, and the secret itself is 128 random bits.
fn validator_of(secret: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes());
    crate::util::hex(&d.as_ref()[..16])
}

/// A new session cookie `{id}.{secret}`: its id (the store key) and the
/// validator the stored session keeps. `None` if the system RNG fails.
pub fn new_cookie() -> Option<(String, String, String)> {
    let id = crate::util::random_id()?;
    let secret = crate::util::random_id()?;
    let validator = validator_of(&secret);
    Some((format!("{id}.{secret}"), id, validator))
}

/// A cookie's id and secret; `None` for anything not of that shape.
pub fn split_cookie(cookie: &str) -> Option<(&str, &str)> {
    cookie
        .split_once('.')
        .filter(|(id, secret)| !id.is_empty() && !secret.is_empty() && id.len() <= 64)
}

/// A boxed future, so the trait can be used as `dyn Store`.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// The store could not answer. Callers fail closed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("the session and replay store is unavailable: {0}")]
    Unavailable(String),
    /// The store is up but refuses new entries (the memory store at its
    /// cap, Redis at `maxmemory` with `noeviction`): nothing was written.
    #[error("the session and replay store is full: {0}")]
    Full(String),
}

impl ErrorCode for StoreError {
    fn code(&self) -> &'static str {
        match self {
            StoreError::Unavailable(_) => "store.unavailable",
            StoreError::Full(_) => "store.full",
        }
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
        session: &'a Session,
        expires: OffsetDateTime,
    ) -> StoreFuture<'a, ()>;

    /// A live session, if any.
    fn get_session<'a>(
        &'a self,
        id: &'a str,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Option<Session>>;

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

    /// Add `member` to the set under `(ns, key)`, to be kept until
    /// `expires` (each member has its own expiry). A set holds at most
    /// [`MAX_MEMBERS`]: past that, the members that expire first are
    /// dropped. A member `{x}>{…}` replaces a member `{x}` (a session
    /// listed with a console it reached needs no plain entry too). Single
    /// logout finds a user's sessions this way.
    fn add_member<'a>(
        &'a self,
        ns: &'a str,
        key: &'a str,
        member: &'a str,
        expires: OffsetDateTime,
    ) -> StoreFuture<'a, ()>;

    /// The live members of the set under `(ns, key)`.
    fn members<'a>(
        &'a self,
        ns: &'a str,
        key: &'a str,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Vec<String>>;

    /// Whether the store can answer now (`/readyz`).
    fn ready(&self) -> StoreFuture<'_, ()>;

    /// Prometheus lines for what the store holds (the memory store: entries
    /// by kind against its cap, and its slab's bytes). Redis reports its
    /// own (`INFO memory`, `dbsize`): nothing here.
    fn render_metrics(&self) -> String {
        String::new()
    }
}

/// The most members a set keeps ([`Store::add_member`]): a user's sessions
/// and the consoles each reached; past this, the members that expire first
/// are left out of single logout (the sessions still expire).
pub const MAX_MEMBERS: usize = 64;

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
        _ => Ok(std::sync::Arc::new(memory::MemoryStore::with_capacity(
            config.memory_max_entries,
        ))),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        serde_json::from_value(serde_json::json!({
            "subject": "mallory@fabrikam.example", "issuer": "https://sts.windows.net/f/",
            "tenant_id": "f", "object_id": "o", "kind": "user", "source": "saml",
            "upn": null, "email": null, "display_name": null, "groups": [],
            "groups_overage": false, "roles": [], "auth_methods": [], "mfa": true,
            "auth_time": null, "expires_at": "2030-01-01T00:00:00Z", "token_id": null,
            "verification": {"signed": [], "algorithm": "", "key": ""},
            "attributes": {"fedgate:admin": ["local"], "fedgate:tenant": ["contoso"]},
        }))
        .unwrap()
    }

    #[test]
    fn a_cookie_opens_only_its_own_session() {
        let (cookie, id, validator) = new_cookie().unwrap();
        let (cid, secret) = split_cookie(&cookie).unwrap();
        assert_eq!(cid, id);
        let mut s = Session::new(None, AdminRight::No, identity());
        assert!(!s.opens_with(secret), "no validator, no session");
        s.validator = validator;
        assert!(s.opens_with(secret));
        assert!(!s.opens_with(&format!("{secret}0")));
        assert!(!s.opens_with(&id));
        for bad in ["", "nodot", ".x", "x."] {
            assert!(split_cookie(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn a_session_round_trips_with_its_typed_facts() {
        let s = Session::new(Some("contoso"), AdminRight::Rule, identity());
        let back = Session::decode(&s.encode().unwrap()).unwrap();
        assert_eq!(back.tenant.as_deref(), Some("contoso"));
        assert_eq!(back.admin, AdminRight::Rule);
    }

    /// A session stored by an older fedgate (a bare Identity, whose
    /// attribute map held the markers; format 3, a JSON object with field
    /// names) is no session: sign in again.
    #[test]
    fn an_old_format_session_fails_closed() {
        let old = serde_json::to_vec(&identity()).unwrap();
        assert!(Session::decode(&old).is_none());
        let mut v =
            serde_json::to_value(Session::new(None, AdminRight::LocalToken, identity())).unwrap();
        v["format"] = 3.into();
        assert!(Session::decode(&serde_json::to_vec(&v).unwrap()).is_none());
        v["format"] = SESSION_FORMAT.into();
        assert!(
            Session::decode(&serde_json::to_vec(&v).unwrap()).is_none(),
            "named fields"
        );
        // The array form of another version, one field more or less: none.
        let good = Session::new(None, AdminRight::LocalToken, identity())
            .encode()
            .unwrap();
        let arr: serde_json::Value = serde_json::from_slice(&good).unwrap();
        assert!(Session::decode(&serde_json::to_vec(&arr).unwrap()).is_some());
        let mut other = arr.clone();
        other[0] = 3.into();
        assert!(Session::decode(&serde_json::to_vec(&other).unwrap()).is_none());
        for (outer, inner) in [(true, false), (false, true)] {
            let mut longer = arr.clone();
            if outer {
                longer.as_array_mut().unwrap().push(true.into());
            }
            if inner {
                longer[4].as_array_mut().unwrap().push(true.into());
            }
            assert!(Session::decode(&serde_json::to_vec(&longer).unwrap()).is_none());
            let mut shorter = arr.clone();
            if outer {
                shorter.as_array_mut().unwrap().pop();
            }
            if inner {
                shorter[4].as_array_mut().unwrap().pop();
            }
            assert!(Session::decode(&serde_json::to_vec(&shorter).unwrap()).is_none());
        }
        assert!(Session::decode(b"garbage").is_none());
    }

    /// Every field of the identity survives the stored form, each in its
    /// place (two fields of one type swapped would show here).
    #[test]
    fn the_stored_form_keeps_every_field() {
        let mut full = serde_json::to_value(identity()).unwrap();
        let set = |v: &mut serde_json::Value, k: &str, x: serde_json::Value| v[k] = x;
        for (k, x) in [
            ("subject_format", "email".into()),
            ("upn", "upn@f".into()),
            ("email", "mail@f".into()),
            ("display_name", "Mallory".into()),
            ("groups", serde_json::json!(["g1", "g2"])),
            ("groups_overage", true.into()),
            ("groups_link", "https://graph/link".into()),
            ("groups_source", "graph".into()),
            ("roles", serde_json::json!(["r1"])),
            ("auth_methods", serde_json::json!(["pwd", "mfa"])),
            ("auth_time", "2029-12-31T23:00:00Z".into()),
            ("app_id", "app".into()),
            ("token_id", "_a1".into()),
            ("idp_session", "_s1".into()),
            ("kind", "service_account".into()),
            ("source", "jwt_v2".into()),
        ] {
            set(&mut full, k, x);
        }
        full["verification"] = serde_json::json!({"signed": ["assertion"], "algorithm": "rs256",
            "key": "k", "in_response_to": "_r", "decrypted": true});
        let populated: Identity = serde_json::from_value(full.clone()).unwrap();
        let mut s = Session::new(Some("fabrikam"), AdminRight::Rule, populated);
        s.validator = "v".repeat(32);
        let back = Session::decode(&s.encode().unwrap()).unwrap();
        assert_eq!(serde_json::to_value(&back.identity).unwrap(), full);
        assert_eq!(back.validator, s.validator);
        assert_eq!(back.tenant.as_deref(), Some("fabrikam"));
        assert_eq!(back.admin, AdminRight::Rule);
        // Nothing recorded about the verification: stored as null, read
        // back as the same empty record.
        let plain = Session::new(None, AdminRight::No, identity());
        let back = Session::decode(&plain.encode().unwrap()).unwrap();
        assert_eq!(
            serde_json::to_value(&back.identity).unwrap(),
            serde_json::to_value(identity()).unwrap()
        );
    }
}
