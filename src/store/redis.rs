//! The Redis store: several fedgate instances behind a load balancer share
//! one Redis, so a replay caught on one instance is caught on all, and a
//! session or a login started on one is honoured on another.
//!
//! - claim: `SET key 1 NX PX ttl` (one round trip, atomic);
//! - sessions and login state: `SET key sealed PX ttl`, read with `GET`
//!   (sessions, and login state looked at before a response verified) or
//!   `GETDEL` (login state: taken once, atomically);
//! - sign-out: `DEL`; readiness: `SET` of a probe key with a 5 s TTL (a
//!   real write: a Redis that refuses writes is not ready).
//!
//! Every key fedgate writes carries a TTL (`PX`): nothing lives for ever.
//! A write Redis refuses for memory (`OOM` at `maxmemory` with
//! `noeviction`) is [`StoreError::Full`] (`store.full`).
//!
//! Keys are [`storage_key`]s (versioned, namespaced, SHA-256 of the id), and
//! values are sealed with AES-256-GCM under a key derived from the id the
//! caller holds (the session cookie, the `state` parameter): a dump of Redis
//! holds no session id, no login state and no identity in clear, and no
//! value can be moved to another key.
//!
//! Every operation is bounded by `timeout` (default 250 ms). Any other failure is
//! [`StoreError::Unavailable`]: callers fail closed. The connection is made
//! lazily, on the first operation, so fedgate starts (and `/readyz` says
//! "not ready") while Redis is down, and resumes by itself when it returns:
//! the connection manager reconnects on I/O errors, and a manager that has
//! failed for [`RECREATE_AFTER`] is replaced by a fresh one.

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use time::OffsetDateTime;

use super::{storage_key, Session, Store, StoreError, StoreFuture};

/// The key the readiness probe writes (with a short TTL).
pub const READY_PROBE_KEY: &str = "fedgate:v1:ready-probe";

/// The default bound on one store operation.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);

/// A connection manager that has failed for this long is replaced.
pub const RECREATE_AFTER: Duration = Duration::from_secs(2);

/// How to reach Redis. `Debug` never shows the password.
#[derive(Clone)]
pub struct RedisSettings {
    /// `redis://host:port[/db]` or `rediss://…` (TLS); may carry
    /// `user:password@`.
    pub url: String,
    /// A password that overrides the URL's (from `store.password_file`).
    pub password: Option<String>,
    pub timeout: Duration,
    /// PEM certificates to trust for `rediss://` instead of the system's
    /// (`store.ca_file`): a Redis behind a private CA.
    pub ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSettings")
            .field("url", &redact_url(&self.url))
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("timeout", &self.timeout)
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "(set)"))
            .finish()
    }
}

/// The URL without its `user:password@` part, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

pub struct RedisStore {
    client: ::redis::Client,
    timeout: Duration,
    /// Secrets to strip from error messages (the password).
    secrets: Vec<String>,
    conn: Mutex<Conn>,
}

#[derive(Default)]
struct Conn {
    manager: Option<ConnectionManager>,
    created: Option<Instant>,
    failing_since: Option<Instant>,
}

impl RedisStore {
    /// Check the URL and keep the settings; no connection is made here.
    pub fn new(settings: &RedisSettings) -> Result<RedisStore, StoreError> {
        use ::redis::IntoConnectionInfo;
        let scheme_ok =
            settings.url.starts_with("redis://") || settings.url.starts_with("rediss://");
        let info = if scheme_ok {
            settings.url.as_str().into_connection_info().ok()
        } else {
            None
        };
        let Some(mut info) = info else {
            return Err(StoreError::Unavailable(format!(
                "store.url {} is not a redis:// or rediss:// URL",
                redact_url(&settings.url)
            )));
        };
        let mut secrets = Vec::new();
        if let Some(p) = info.redis_settings().password() {
            secrets.push(p.to_string());
        }
        if let Some(p) = settings.password.as_deref().filter(|p| !p.is_empty()) {
            secrets.push(p.to_string());
            let redis = info.redis_settings().clone().set_password(p);
            info = info.set_redis_settings(redis);
        }
        let client = match &settings.ca_pem {
            None => ::redis::Client::open(info),
            Some(_) if !settings.url.starts_with("rediss://") => {
                return Err(StoreError::Unavailable(
                    "store.ca_file is set but store.url is not rediss://: the CA would never be used"
                        .into(),
                ))
            }
            Some(pem) => ::redis::Client::build_with_tls(
                info,
                ::redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            ),
        }
        .map_err(|e| {
            StoreError::Unavailable(format!("store.url: {}", scrub(&e.to_string(), &secrets)))
        })?;
        Ok(RedisStore {
            client,
            timeout: settings.timeout,
            secrets,
            conn: Mutex::new(Conn::default()),
        })
    }

    /// The connection manager, made on first use (inside the runtime).
    fn manager(&self) -> Result<ConnectionManager, StoreError> {
        let mut c = self
            .conn
            .lock()
            .map_err(|_| StoreError::Unavailable("redis store lock poisoned".into()))?;
        if let Some(m) = &c.manager {
            return Ok(m.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(3)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let m = ConnectionManager::new_lazy_with_config(self.client.clone(), config)
            .map_err(|e| self.unavailable("connect", &e.to_string()))?;
        c.manager = Some(m.clone());
        c.created = Some(Instant::now());
        Ok(m)
    }

    fn succeeded(&self) {
        if let Ok(mut c) = self.conn.lock() {
            c.failing_since = None;
        }
    }

    fn failed(&self) {
        let Ok(mut c) = self.conn.lock() else { return };
        let now = Instant::now();
        let since = *c.failing_since.get_or_insert(now);
        let old = c
            .created
            .is_some_and(|t| now.duration_since(t) >= RECREATE_AFTER);
        if now.duration_since(since) >= RECREATE_AFTER && old {
            // Whatever state the manager is in, start again from the URL.
            c.manager = None;
            c.created = None;
        }
    }

    fn unavailable(&self, op: &str, reason: &str) -> StoreError {
        StoreError::Unavailable(format!("redis {op}: {}", scrub(reason, &self.secrets)))
    }

    /// Run one operation, bounded by the timeout.
    async fn run<T, F, Fut>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = ::redis::RedisResult<T>>,
    {
        let manager = self.manager()?;
        match tokio::time::timeout(self.timeout, f(manager)).await {
            Ok(Ok(v)) => {
                self.succeeded();
                Ok(v)
            }
            // Redis at `maxmemory` (policy `noeviction`) answers writes
            // with OOM: it is up, and refuses to keep anything new.
            Ok(Err(e)) if e.code() == Some("OOM") => {
                self.succeeded();
                Err(StoreError::Full(format!(
                    "redis {op}: Redis refuses writes (OOM: used memory is over maxmemory): {}",
                    scrub(&e.to_string(), &self.secrets)
                )))
            }
            Ok(Err(e)) => {
                self.failed();
                Err(self.unavailable(op, &e.to_string()))
            }
            Err(_) => {
                self.failed();
                Err(self.unavailable(
                    op,
                    &format!("no answer within {} ms", self.timeout.as_millis()),
                ))
            }
        }
    }

    async fn set_px(
        &self,
        op: &'static str,
        k: String,
        value: Vec<u8>,
        ttl_ms: u64,
    ) -> Result<(), StoreError> {
        self.run(op, |mut m| async move {
            ::redis::cmd("SET")
                .arg(&k)
                .arg(value)
                .arg("PX")
                .arg(ttl_ms)
                .query_async::<()>(&mut m)
                .await
        })
        .await
    }
}

/// [`Store::add_member`] in Redis: a sorted set scored by each member's
/// expiry (Unix milliseconds).
const ADD_MEMBER: &str = r"
local cut = string.find(ARGV[2], '>', 1, true)
if cut then redis.call('ZREM', KEYS[1], string.sub(ARGV[2], 1, cut - 1)) end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
local n = redis.call('ZCARD', KEYS[1])
local cap = tonumber(ARGV[4])
if n > cap then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - cap - 1) end
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[5]) then redis.call('PEXPIRE', KEYS[1], ARGV[5]) end
return 0
";

fn scrub(message: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(message.to_string(), |m, s| m.replace(s.as_str(), "***"))
}

/// Milliseconds from `now` to `expires`, at least 1 (Redis refuses 0).
fn ttl_ms(expires: OffsetDateTime, now: OffsetDateTime) -> u64 {
    let ms = (expires - now).whole_milliseconds();
    u64::try_from(ms).unwrap_or(0).max(1)
}

const SEAL_VERSION: u8 = 1;

/// The AES-256-GCM key for the value under `(ns, key)`: derived from the id
/// only its holder knows, in a domain of its own (the storage key is the
/// SHA-256 of `ns\0key`; this is the SHA-256 of a distinct prefix and it).
fn sealing_key(ns: &str, key: &str) -> aws_lc_rs::digest::Digest {
    aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("fedgate:v1:seal\u{0}{ns}\u{0}{key}").as_bytes(),
    )
}

/// `version ‖ nonce ‖ AES-256-GCM(expires (i64 BE seconds) ‖ payload)`,
/// bound to the storage key as associated data.
fn seal(
    ns: &str,
    key: &str,
    expires: OffsetDateTime,
    payload: &[u8],
) -> Result<Vec<u8>, StoreError> {
    use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
    use aws_lc_rs::rand::SecureRandom;
    let fail = |what: &str| StoreError::Unavailable(format!("sealing a stored value: {what}"));
    let k = sealing_key(ns, key);
    let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, k.as_ref()).map_err(|_| fail("key"))?);
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| fail("random"))?;
    let mut data = expires.unix_timestamp().to_be_bytes().to_vec();
    data.extend_from_slice(payload);
    let aad = storage_key(ns, key);
    k.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad.as_bytes()),
        &mut data,
    )
    .map_err(|_| fail("encrypt"))?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + data.len());
    out.push(SEAL_VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&data);
    Ok(out)
}

/// The payload, if the value opens under `(ns, key)` and is alive at `now`.
/// A value that does not open (tampered, moved, another version) counts as
/// absent: fail closed.
fn open(ns: &str, key: &str, sealed: &[u8], now: OffsetDateTime) -> Option<Vec<u8>> {
    use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
    let (&version, rest) = sealed.split_first()?;
    if version != SEAL_VERSION || rest.len() < NONCE_LEN {
        return None;
    }
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    let k = sealing_key(ns, key);
    let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, k.as_ref()).ok()?);
    let mut data = ciphertext.to_vec();
    let aad = storage_key(ns, key);
    let plain = k
        .open_in_place(
            Nonce::try_assume_unique_for_key(nonce).ok()?,
            Aad::from(aad.as_bytes()),
            &mut data,
        )
        .ok()?;
    let (exp, payload) = plain.split_at_checked(8)?;
    let exp = i64::from_be_bytes(exp.try_into().ok()?);
    (exp > now.unix_timestamp()).then(|| payload.to_vec())
}

impl Store for RedisStore {
    fn claim_once<'a>(
        &'a self,
        ns: &'a str,
        key: &'a str,
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let k = storage_key(ns, key);
            let ttl = ttl_ms(expires, now);
            let set: Option<String> = self
                .run("claim_once", |mut m| async move {
                    ::redis::cmd("SET")
                        .arg(&k)
                        .arg(1)
                        .arg("NX")
                        .arg("PX")
                        .arg(ttl)
                        .query_async(&mut m)
                        .await
                })
                .await?;
            // "OK" when set; nil when the key exists (an earlier claim is alive).
            Ok(set.is_some())
        })
    }

    fn put_session<'a>(
        &'a self,
        id: &'a str,
        session: &'a Session,
        expires: OffsetDateTime,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let json = session.encode()?;
            let value = seal("session", id, expires, &json)?;
            let now = OffsetDateTime::now_utc();
            self.set_px(
                "put_session",
                storage_key("session", id),
                value,
                ttl_ms(expires, now),
            )
            .await
        })
    }

    fn get_session<'a>(
        &'a self,
        id: &'a str,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Option<Session>> {
        Box::pin(async move {
            let k = storage_key("session", id);
            let raw: Option<Vec<u8>> = self
                .run("get_session", |mut m| async move {
                    ::redis::cmd("GET").arg(&k).query_async(&mut m).await
                })
                .await?;
            Ok(raw
                .and_then(|v| open("session", id, &v, now))
                .and_then(|json| Session::decode(&json)))
        })
    }

    fn delete_session<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let k = storage_key("session", id);
            self.run("delete_session", |mut m| async move {
                ::redis::cmd("DEL").arg(&k).query_async::<()>(&mut m).await
            })
            .await
        })
    }

    fn put_state<'a>(
        &'a self,
        ns: &'a str,
        key: &'a str,
        value: &'a [u8],
        expires: OffsetDateTime,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let sealed = seal(ns, key, expires, value)?;
            let now = OffsetDateTime::now_utc();
            self.set_px(
                "put_state",
                storage_key(ns, key),
                sealed,
                ttl_ms(expires, now),
            )
            .await
        })
    }

    fn peek_state<'a>(
        &'a self,
        ns: &'a str,
        key: &'a str,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let k = storage_key(ns, key);
            let raw: Option<Vec<u8>> = self
                .run("peek_state", |mut m| async move {
                    ::redis::cmd("GET").arg(&k).query_async(&mut m).await
                })
                .await?;
            Ok(raw.and_then(|v| open(ns, key, &v, now)))
        })
    }

    fn take_state<'a>(
        &'a self,
        ns: &'a str,
        key: &'a str,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let k = storage_key(ns, key);
            // GETDEL (Redis 6.2): read and delete in one atomic step, so two
            // instances racing for the same state cannot both get it.
            let raw: Option<Vec<u8>> = self
                .run("take_state", |mut m| async move {
                    ::redis::cmd("GETDEL").arg(&k).query_async(&mut m).await
                })
                .await?;
            Ok(raw.and_then(|v| open(ns, key, &v, now)))
        })
    }

    fn add_member<'a>(
        &'a self,
        ns: &'a str,
        key: &'a str,
        member: &'a str,
        expires: OffsetDateTime,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let k = storage_key(ns, key);
            let now = OffsetDateTime::now_utc();
            let until_ms = expires.unix_timestamp_nanos() / 1_000_000;
            let now_ms = now.unix_timestamp_nanos() / 1_000_000;
            let ttl = ttl_ms(expires, now);
            self.run("add_member", |mut m| async move {
                // One atomic step: add, drop the expired, keep the latest
                // MAX_MEMBERS, and let the key live as long as its longest member.
                ::redis::cmd("EVAL")
                    .arg(ADD_MEMBER)
                    .arg(1)
                    .arg(&k)
                    .arg(until_ms.to_string())
                    .arg(member)
                    .arg(now_ms.to_string())
                    .arg(super::MAX_MEMBERS)
                    .arg(ttl)
                    .query_async::<()>(&mut m)
                    .await
            })
            .await
        })
    }

    fn members<'a>(
        &'a self,
        ns: &'a str,
        key: &'a str,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Vec<String>> {
        Box::pin(async move {
            let k = storage_key(ns, key);
            let now_ms = now.unix_timestamp_nanos() / 1_000_000;
            self.run("members", |mut m| async move {
                ::redis::cmd("ZRANGEBYSCORE")
                    .arg(&k)
                    .arg(format!("({now_ms}"))
                    .arg("+inf")
                    .query_async::<Vec<String>>(&mut m)
                    .await
            })
            .await
        })
    }

    /// A real write: `SET` of a probe key with a 5-second TTL, so a Redis
    /// that answers `PING` but refuses writes (OOM at `maxmemory`, a
    /// read-only replica) is not ready.
    fn ready(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            self.set_px("ready", READY_PROBE_KEY.to_string(), b"1".to_vec(), 5000)
                .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_under_their_own_key_and_until_they_expire() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let until = now + time::Duration::minutes(5);
        let v = seal("oidc", "state-1", until, b"pkce-verifier").unwrap();
        assert!(!v.windows(13).any(|w| w == b"pkce-verifier"));
        assert_eq!(
            open("oidc", "state-1", &v, now).as_deref(),
            Some(&b"pkce-verifier"[..])
        );
        assert_eq!(open("oidc", "state-2", &v, now), None);
        assert_eq!(open("saml", "state-1", &v, now), None);
        assert_eq!(open("oidc", "state-1", &v, until), None);
        let mut tampered = v.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(open("oidc", "state-1", &tampered, now), None);
        assert_eq!(open("oidc", "state-1", &[], now), None);
    }

    #[test]
    fn urls_are_checked_and_passwords_never_shown() {
        let s = |url: &str| RedisSettings {
            url: url.into(),
            password: None,
            timeout: DEFAULT_TIMEOUT,
            ca_pem: None,
        };
        assert!(RedisStore::new(&s("redis://127.0.0.1:6379/0")).is_ok());
        assert!(RedisStore::new(&s("rediss://cache.example.test:6380")).is_ok());
        let e = RedisStore::new(&s("http://:hunter2@127.0.0.1:6379"))
            .err()
            .unwrap()
            .to_string();
        assert!(!e.contains("hunter2") && e.contains("***@127.0.0.1"), "{e}");
        let with = RedisSettings {
            password: Some("s3cret".into()),
            ..s("redis://:hunter2@127.0.0.1:6379")
        };
        let shown = format!("{with:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("s3cret"),
            "{shown}"
        );
    }

    #[test]
    fn ttls_are_relative_to_fedgates_clock_and_never_zero() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        assert_eq!(ttl_ms(now + time::Duration::seconds(2), now), 2000);
        assert_eq!(ttl_ms(now, now), 1);
        assert_eq!(ttl_ms(now - time::Duration::seconds(2), now), 1);
    }
}
