//! The in-memory store: one instance, the default, and the demo's.
//!
//! Each kind (replay claims, sessions, login state) is an [`Expiring`] map:
//! a B-tree map for lookups beside a time-ordered index of `(expiry, key)`.
//! Every write first pops the expired front of the index, so expiry costs
//! amortised O(log n) per write, never a scan of the map under the lock.
//! Keys are 128 bits of the SHA-256 of namespace and key (never the key a
//! client sent), expiries Unix nanoseconds, and sessions are kept in their
//! stored form (a JSON array, `wire`). Sessions', login states' and sets'
//! bytes live in a [`Slab`], not in one heap allocation each, so they never
//! pin pages of the general heap that requests come and go in: about 1.1 KB
//! of RSS per login for its session, its replay claim and its single-logout
//! set together, against 1.5 KB with an allocation per session
//! (docs/performance.md). Each map has a hard cap
//! (`store.memory_max_entries`): at the cap a new entry is refused with
//! `store.full` (fail closed: a replay claim is never evicted to make room,
//! that would let an assertion be used twice), and `/readyz` says not
//! ready.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use time::OffsetDateTime;

use super::slab::{Slab, Slot};
use super::{Session, Store, StoreError, StoreFuture};

/// The default cap on each kind of entry (`store.memory_max_entries`).
pub const DEFAULT_MAX_ENTRIES: usize = 250_000;

/// A key of the memory store: the first 128 bits of the SHA-256 of the
/// namespace and the key (the digest [`super::storage_key`] writes in hex
/// for Redis). Two keys collide by chance with odds of about n²/2¹²⁹ (for a
/// million entries, 10⁻²⁷), and on purpose only with 2¹²⁸ work.
type Key = [u8; 16];

fn digest_key(ns: &str, key: &str) -> Key {
    let mut h = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    h.update(ns.as_bytes());
    h.update(&[0]);
    h.update(key.as_bytes());
    let mut k = [0u8; 16];
    k.copy_from_slice(&h.finish().as_ref()[..16]);
    k
}

/// An expiry as Unix nanoseconds: 8 bytes where an `OffsetDateTime` takes
/// 16, in two places per entry.
type Expiry = i64;

fn expiry(t: OffsetDateTime) -> Expiry {
    let n = t.unix_timestamp_nanos();
    Expiry::try_from(n).unwrap_or(if n < 0 { Expiry::MIN } else { Expiry::MAX })
}

/// A map whose entries expire, with a time-ordered index and a hard cap.
///
/// Both are B-trees: every operation is O(log n) and none is ever long. A
/// hash map would have to rehash every entry under the lock when it grows
/// (measured: 600 ms during which every I/O thread, `/healthz` included,
/// waited, as the millionth session went in).
struct Expiring<V> {
    map: BTreeMap<Key, (V, Expiry)>,
    /// Every entry of `map`, by expiry (then key).
    order: BTreeSet<(Expiry, Key)>,
    cap: usize,
}

impl<V> Expiring<V> {
    fn new(cap: usize) -> Self {
        Expiring {
            map: BTreeMap::new(),
            order: BTreeSet::new(),
            cap: cap.max(1),
        }
    }

    /// Drop every entry expired at `now`, handing each value to `gone`:
    /// only the front of the index is looked at.
    fn purge(&mut self, now: OffsetDateTime, mut gone: impl FnMut(V)) {
        let now = expiry(now);
        while let Some((exp, _)) = self.order.first() {
            if *exp > now {
                break;
            }
            if let Some((_, k)) = self.order.pop_first() {
                if let Some((v, _)) = self.map.remove(&k) {
                    gone(v);
                }
            }
        }
    }

    /// `store.full` unless `k` may be written: the map is below its cap,
    /// or `k` is already there (a key present may always be replaced).
    /// Call after [`Self::purge`].
    fn room_for(&self, k: &Key) -> Result<(), StoreError> {
        if self.map.len() < self.cap || self.map.contains_key(k) {
            return Ok(());
        }
        Err(StoreError::Full(format!(
            "the memory store holds its maximum of {} entries of this kind (store.memory_max_entries)",
            self.cap
        )))
    }

    /// Keep `v` under `k` until `exp`, returning the value it replaced.
    /// Call after [`Self::room_for`].
    fn put(&mut self, k: Key, v: V, exp: OffsetDateTime) -> Option<V> {
        let exp = expiry(exp);
        let old = self.map.insert(k, (v, exp)).map(|(old, old_exp)| {
            self.order.remove(&(old_exp, k));
            old
        });
        self.order.insert((exp, k));
        old
    }

    /// The live value under `k`.
    fn get(&self, k: &Key, now: OffsetDateTime) -> Option<&V> {
        let now = expiry(now);
        self.map
            .get(k)
            .filter(|(_, exp)| *exp > now)
            .map(|(v, _)| v)
    }

    /// Remove `k`: its value, and whether it was still alive at `now`.
    fn take(&mut self, k: &Key, now: OffsetDateTime) -> Option<(V, bool)> {
        let (v, exp) = self.map.remove(k)?;
        self.order.remove(&(exp, *k));
        Some((v, exp > expiry(now)))
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether one more entry would fit at `now` (values that need no
    /// freeing: the replay claims).
    fn has_room(&mut self, now: OffsetDateTime) -> bool {
        self.purge(now, drop);
        self.map.len() < self.cap
    }

    /// Keep `v` under `k` until `exp`; `store.full` when at the cap
    /// (values that need no freeing).
    fn insert(
        &mut self,
        k: Key,
        v: V,
        exp: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.purge(now, drop);
        self.room_for(&k)?;
        self.put(k, v, exp);
        Ok(())
    }
}

/// An [`Expiring`] map whose values are bytes in a [`Slab`] (sessions,
/// login state and sets): every slot is freed when its entry is replaced,
/// taken or expired.
struct Bytes {
    entries: Expiring<Slot>,
    slab: Slab,
}

impl Bytes {
    fn new(cap: usize) -> Self {
        Bytes {
            entries: Expiring::new(cap),
            slab: Slab::default(),
        }
    }

    fn purge(&mut self, now: OffsetDateTime) {
        let slab = &mut self.slab;
        self.entries.purge(now, |slot| slab.free(slot));
    }

    fn has_room(&mut self, now: OffsetDateTime) -> bool {
        self.purge(now);
        self.entries.len() < self.entries.cap
    }

    /// Keep a copy of `bytes` under `k` until `exp`; `store.full` (and
    /// nothing written) when at the cap.
    fn insert(
        &mut self,
        k: Key,
        bytes: &[u8],
        exp: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.purge(now);
        self.entries.room_for(&k)?;
        let slot = self.slab.put(bytes);
        if let Some(old) = self.entries.put(k, slot, exp) {
            self.slab.free(old);
        }
        Ok(())
    }

    fn get(&self, k: &Key, now: OffsetDateTime) -> Option<&[u8]> {
        self.entries.get(k, now).map(|slot| self.slab.get(*slot))
    }

    /// Remove `k`, returning its bytes if it was alive.
    fn remove(&mut self, k: &Key, now: OffsetDateTime) -> Option<Vec<u8>> {
        let (slot, alive) = self.entries.take(k, now)?;
        let bytes = alive.then(|| self.slab.get(slot).to_vec());
        self.slab.free(slot);
        bytes
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// A set's members ([`Store::add_member`]) in their stored form, in the
/// slab like sessions: each member as its expiry (8 bytes), its length
/// (4 bytes, both little-endian) and its bytes.
fn encode_members(members: &[(&str, Expiry)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(members.iter().map(|(m, _)| 12 + m.len()).sum());
    for (m, e) in members {
        out.extend_from_slice(&e.to_le_bytes());
        out.extend_from_slice(&(m.len() as u32).to_le_bytes());
        out.extend_from_slice(m.as_bytes());
    }
    out
}

/// The members [`encode_members`] wrote (it is the only writer: anything
/// else ends the list).
fn decode_members(mut b: &[u8]) -> Vec<(&str, Expiry)> {
    let mut out = Vec::new();
    while b.len() >= 12 {
        let (head, rest) = b.split_at(12);
        let e = Expiry::from_le_bytes(head[..8].try_into().unwrap_or_default());
        let n = u32::from_le_bytes(head[8..].try_into().unwrap_or_default()) as usize;
        let Some(m) = rest.get(..n).and_then(|m| std::str::from_utf8(m).ok()) else {
            break;
        };
        out.push((m, e));
        b = &rest[n..];
    }
    out
}

/// The in-memory store.
pub struct MemoryStore {
    claims: Mutex<Expiring<()>>,
    /// Sessions in their stored form ([`Session::encode`]).
    sessions: Mutex<Bytes>,
    states: Mutex<Bytes>,
    /// Sets ([`Store::add_member`]): each member with its own expiry
    /// ([`encode_members`]).
    sets: Mutex<Bytes>,
    /// The clock for writes the trait gives no `now` to (sessions, state).
    clock: fn() -> OffsetDateTime,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_MAX_ENTRIES)
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding at most `cap` entries of each kind.
    pub fn with_capacity(cap: usize) -> Self {
        MemoryStore {
            claims: Mutex::new(Expiring::new(cap)),
            sessions: Mutex::new(Bytes::new(cap)),
            states: Mutex::new(Bytes::new(cap)),
            sets: Mutex::new(Bytes::new(cap)),
            clock: OffsetDateTime::now_utc,
        }
    }

    /// The same, reading the time from `clock` (tests).
    pub fn with_clock(cap: usize, clock: fn() -> OffsetDateTime) -> Self {
        MemoryStore {
            clock,
            ..Self::with_capacity(cap)
        }
    }

    /// How many entries (claims, sessions, login states) are held, expired
    /// ones not yet purged included.
    pub fn counts(&self) -> (usize, usize, usize) {
        (
            self.claims.lock().map(|m| m.len()).unwrap_or(0),
            self.sessions.lock().map(|m| m.len()).unwrap_or(0),
            self.states.lock().map(|m| m.len()).unwrap_or(0),
        )
    }
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Unavailable("memory store lock poisoned".into())
}

impl Store for MemoryStore {
    fn claim_once<'a>(
        &'a self,
        ns: &'a str,
        key: &'a str,
        expires: OffsetDateTime,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let k = digest_key(ns, key);
            let mut c = self.claims.lock().map_err(poisoned)?;
            c.purge(now, drop);
            if c.get(&k, now).is_some() {
                return Ok(false);
            }
            c.insert(k, (), expires, now)?;
            Ok(true)
        })
    }

    fn put_session<'a>(
        &'a self,
        id: &'a str,
        session: &'a Session,
        expires: OffsetDateTime,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let now = (self.clock)();
            let stored = session.encode()?;
            let mut s = self.sessions.lock().map_err(poisoned)?;
            s.insert(digest_key("session", id), &stored, expires, now)
        })
    }

    fn get_session<'a>(
        &'a self,
        id: &'a str,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Option<Session>> {
        Box::pin(async move {
            let stored = {
                let s = self.sessions.lock().map_err(poisoned)?;
                s.get(&digest_key("session", id), now).map(<[u8]>::to_vec)
            };
            // Decoded outside the lock; a stored form this build cannot read
            // is no session.
            Ok(stored.and_then(|b| Session::decode(&b)))
        })
    }

    fn delete_session<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let now = (self.clock)();
            let mut s = self.sessions.lock().map_err(poisoned)?;
            s.remove(&digest_key("session", id), now);
            Ok(())
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
            let now = (self.clock)();
            let mut s = self.states.lock().map_err(poisoned)?;
            s.insert(digest_key(ns, key), value, expires, now)
        })
    }

    fn peek_state<'a>(
        &'a self,
        ns: &'a str,
        key: &'a str,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let s = self.states.lock().map_err(poisoned)?;
            Ok(s.get(&digest_key(ns, key), now).map(|v| v.to_vec()))
        })
    }

    fn take_state<'a>(
        &'a self,
        ns: &'a str,
        key: &'a str,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let mut s = self.states.lock().map_err(poisoned)?;
            Ok(s.remove(&digest_key(ns, key), now))
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
            let now = (self.clock)();
            let k = digest_key(ns, key);
            let mut sets = self.sets.lock().map_err(poisoned)?;
            let stored = sets.remove(&k, now).unwrap_or_default();
            let (live, exp) = (expiry(now), expiry(expires));
            let superseded = member.split_once('>').map(|(x, _)| x);
            let mut members: Vec<(&str, Expiry)> = decode_members(&stored)
                .into_iter()
                .filter(|(m, e)| *e > live && *m != member && Some(*m) != superseded)
                .collect();
            members.push((member, exp));
            if members.len() > super::MAX_MEMBERS {
                members.sort_by_key(|(_, e)| std::cmp::Reverse(*e));
                members.truncate(super::MAX_MEMBERS);
            }
            let last = members.iter().map(|(_, e)| *e).max().unwrap_or(exp);
            let until =
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(last)).unwrap_or(expires);
            sets.insert(k, &encode_members(&members), until, now)
        })
    }

    fn members<'a>(
        &'a self,
        ns: &'a str,
        key: &'a str,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Vec<String>> {
        Box::pin(async move {
            let sets = self.sets.lock().map_err(poisoned)?;
            let live = expiry(now);
            Ok(sets
                .get(&digest_key(ns, key), now)
                .map(|b| {
                    decode_members(b)
                        .into_iter()
                        .filter(|(_, e)| *e > live)
                        .map(|(m, _)| m.to_string())
                        .collect()
                })
                .unwrap_or_default())
        })
    }

    fn render_metrics(&self) -> String {
        use std::fmt::Write;
        let mut out = String::from(
            "# HELP fedgate_store_entries Entries the memory store holds, by kind (expired ones not yet purged included): at fedgate_store_max_entries new ones are refused (store.full).\n\
             # TYPE fedgate_store_entries gauge\n",
        );
        let mut cap = 0;
        let mut slab = 0;
        if let Ok(c) = self.claims.lock() {
            let _ = writeln!(
                out,
                "fedgate_store_entries{{kind=\"replay_claims\"}} {}",
                c.len()
            );
            cap = c.cap;
        }
        for (kind, m) in [
            ("sessions", &self.sessions),
            ("login_states", &self.states),
            ("logout_sets", &self.sets),
        ] {
            if let Ok(m) = m.lock() {
                let _ = writeln!(out, "fedgate_store_entries{{kind=\"{kind}\"}} {}", m.len());
                slab += m.slab.reserved();
            }
        }
        let _ = write!(
            out,
            "# HELP fedgate_store_max_entries The memory store's cap on each kind (store.memory_max_entries).\n\
             # TYPE fedgate_store_max_entries gauge\n\
             fedgate_store_max_entries {cap}\n\
             # HELP fedgate_store_slab_bytes Bytes the memory store holds in its slabs for sessions, login states and sets (what is reserved, used or not).\n\
             # TYPE fedgate_store_slab_bytes gauge\n\
             fedgate_store_slab_bytes {slab}\n"
        );
        out
    }

    /// Ready while every kind has room for one more entry.
    fn ready(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let now = (self.clock)();
            let full = |kind: &str| {
                StoreError::Full(format!(
                    "the memory store's {kind} are at their cap (store.memory_max_entries): new logins are refused"
                ))
            };
            if !self.claims.lock().map_err(poisoned)?.has_room(now) {
                return Err(full("replay claims"));
            }
            if !self.sessions.lock().map_err(poisoned)?.has_room(now) {
                return Err(full("sessions"));
            }
            if !self.states.lock().map_err(poisoned)?.has_room(now) {
                return Err(full("login states"));
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::ErrorCode;
    use time::Duration;

    #[tokio::test]
    async fn a_set_keeps_its_live_members_up_to_the_cap() {
        let store = MemoryStore::with_clock(10, fixed);
        let t0 = fixed();
        store
            .add_member("n", "k", "a", t0 + Duration::minutes(1))
            .await
            .unwrap();
        store
            .add_member("n", "k", "b", t0 + Duration::minutes(5))
            .await
            .unwrap();
        // Added twice: once, with the later expiry.
        store
            .add_member("n", "k", "a", t0 + Duration::minutes(2))
            .await
            .unwrap();
        let mut m = store.members("n", "k", t0).await.unwrap();
        m.sort();
        assert_eq!(m, ["a", "b"]);
        assert_eq!(
            store
                .members("n", "k", t0 + Duration::minutes(3))
                .await
                .unwrap(),
            ["b"]
        );
        assert!(store.members("n", "other", t0).await.unwrap().is_empty());
        // `a>…` replaces `a`.
        store
            .add_member("n", "k", "a>saml>c", t0 + Duration::minutes(2))
            .await
            .unwrap();
        let mut m = store.members("n", "k", t0).await.unwrap();
        m.sort();
        assert_eq!(m, ["a>saml>c", "b"]);
        for i in 0..crate::store::MAX_MEMBERS + 5 {
            let until = t0 + Duration::minutes(10 + i as i64);
            store
                .add_member("n", "big", &format!("m{i}"), until)
                .await
                .unwrap();
        }
        let m = store.members("n", "big", t0).await.unwrap();
        assert_eq!(m.len(), crate::store::MAX_MEMBERS);
        assert!(!m.contains(&"m0".to_string()), "the first to expire goes");
        assert!(m.contains(&format!("m{}", crate::store::MAX_MEMBERS + 4)));
    }

    #[tokio::test]
    async fn a_claim_holds_until_it_expires() {
        let s = MemoryStore::new();
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let until = now + Duration::minutes(5);
        assert!(s.claim_once("saml", "id-1", until, now).await.unwrap());
        assert!(!s.claim_once("saml", "id-1", until, now).await.unwrap());
        assert!(s.claim_once("saml", "id-2", until, now).await.unwrap());
        // Another namespace is another key.
        assert!(s.claim_once("jwt", "id-1", until, now).await.unwrap());
        // After expiry the id may be claimed again (the assertion itself is expired by then).
        assert!(s.claim_once("saml", "id-1", until, until).await.unwrap());
    }

    #[tokio::test]
    async fn login_state_is_taken_once_and_not_after_expiry() {
        let s = MemoryStore::new();
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let until = now + Duration::minutes(10);
        s.put_state("oidc", "st-1", b"verifier", until)
            .await
            .unwrap();
        assert_eq!(
            s.take_state("oidc", "st-1", now).await.unwrap().as_deref(),
            Some(&b"verifier"[..])
        );
        assert_eq!(s.take_state("oidc", "st-1", now).await.unwrap(), None);
        s.put_state("oidc", "st-2", b"v2", until).await.unwrap();
        // A peek leaves it in place; after the take, the peek finds nothing.
        assert_eq!(
            s.peek_state("oidc", "st-2", now).await.unwrap().as_deref(),
            Some(&b"v2"[..])
        );
        assert_eq!(
            s.peek_state("oidc", "st-2", now).await.unwrap().as_deref(),
            Some(&b"v2"[..])
        );
        assert_eq!(s.peek_state("oidc", "st-2", until).await.unwrap(), None);
        assert_eq!(s.take_state("oidc", "st-2", until).await.unwrap(), None);
        s.put_state("oidc", "st-3", b"v3", until).await.unwrap();
        assert!(s.take_state("oidc", "st-3", now).await.unwrap().is_some());
        assert_eq!(s.peek_state("oidc", "st-3", now).await.unwrap(), None);
    }

    #[test]
    fn entries_expire_in_time_order_from_the_front_of_the_index() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let k = |name: &str| digest_key("t", name);
        let mut m = Expiring::new(100);
        // Inserted out of order; they go in order of expiry.
        for (name, secs) in [("c", 30), ("a", 10), ("b", 20)] {
            m.insert(k(name), (), now + Duration::seconds(secs), now)
                .unwrap();
        }
        m.purge(now + Duration::seconds(10), drop);
        assert!(m.get(&k("a"), now).is_none());
        assert_eq!(m.len(), 2);
        m.purge(now + Duration::seconds(25), drop);
        assert_eq!(m.len(), 1);
        assert!(m.get(&k("c"), now).is_some());
        // Replacing a key moves it in the index (the old expiry is gone).
        m.insert(k("c"), (), now + Duration::seconds(100), now)
            .unwrap();
        m.purge(now + Duration::seconds(50), drop);
        assert_eq!(m.len(), 1);
        assert_eq!(m.order.len(), 1);
        // A removed key leaves nothing behind in the index.
        assert!(m.take(&k("c"), now).is_some());
        assert_eq!((m.len(), m.order.len()), (0, 0));
    }

    /// The clock of [`sessions_give_their_memory_back_as_they_expire`].
    static MOVABLE: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1_800_000_000);

    fn movable() -> OffsetDateTime {
        let t = MOVABLE.load(std::sync::atomic::Ordering::Relaxed);
        OffsetDateTime::from_unix_timestamp(t).unwrap()
    }

    #[tokio::test]
    async fn sessions_give_their_memory_back_as_they_expire() {
        let store = MemoryStore::with_clock(10_000, movable);
        let t0 = movable();
        let identity: crate::identity::Identity = serde_json::from_value(serde_json::json!({
            "subject": "alice@contoso.example", "issuer": "https://sts.windows.net/c/",
            "tenant_id": "c", "object_id": "o", "kind": "user", "source": "saml",
            "upn": null, "email": null, "display_name": null,
            "groups": ["0a1b2c3d-0000-4000-8000-000000000001", "0a1b2c3d-0000-4000-8000-000000000002"],
            "groups_overage": false, "roles": [], "auth_methods": [], "mfa": true,
            "auth_time": null, "expires_at": "2030-01-01T00:00:00Z", "token_id": null,
            "verification": {"signed": [], "algorithm": "", "key": ""}, "attributes": {},
        }))
        .unwrap();
        let session = Session::new(Some("contoso"), crate::store::AdminRight::No, identity);
        for i in 0..2_000 {
            let until = t0 + Duration::minutes(if i % 2 == 0 { 10 } else { 20 });
            store
                .put_session(&format!("s{i}"), &session, until)
                .await
                .unwrap();
        }
        let reserved = || store.sessions.lock().unwrap().slab.reserved();
        let full = reserved();
        let len = session.encode().unwrap().len();
        assert!(
            full >= 2_000 * len,
            "{full} bytes for 2,000 sessions of {len}"
        );
        assert!(full < 2_000 * (len + 64) + 64 * 1024, "{full} bytes: dense");
        let back = store.get_session("s7", t0).await.unwrap().unwrap();
        assert_eq!(back.identity.groups, session.identity.groups);
        // Half expired: their slots are free and taken again first; the
        // chunks stay while the other half lives among them.
        MOVABLE.store(
            t0.unix_timestamp() + 15 * 60,
            std::sync::atomic::Ordering::Relaxed,
        );
        for i in 0..1_000 {
            let until = movable() + Duration::minutes(30);
            store
                .put_session(&format!("n{i}"), &session, until)
                .await
                .unwrap();
        }
        assert_eq!(
            reserved(),
            full,
            "1,000 new sessions in the 1,000 freed slots"
        );
        assert!(store.get_session("s0", movable()).await.unwrap().is_none());
        assert!(store.get_session("s1", movable()).await.unwrap().is_some());
        // All expired: the next write purges them and the chunks go back.
        MOVABLE.store(
            t0.unix_timestamp() + 60 * 60,
            std::sync::atomic::Ordering::Relaxed,
        );
        store
            .put_session("last", &session, movable() + Duration::minutes(1))
            .await
            .unwrap();
        assert_eq!(store.counts().1, 1);
        assert!(
            reserved() <= 64 * 1024,
            "{} bytes kept for one session",
            reserved()
        );
        assert!(store
            .get_session("last", movable())
            .await
            .unwrap()
            .is_some());
    }

    fn fixed() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
    }

    #[tokio::test]
    async fn metrics_count_each_kind_against_the_cap_and_the_slab_bytes() {
        let s = MemoryStore::with_clock(1000, fixed);
        let until = fixed() + Duration::minutes(10);
        for i in 0..3 {
            s.put_state("oidc", &format!("st-{i}"), &[7; 100], until)
                .await
                .unwrap();
        }
        assert!(s.claim_once("saml", "a", until, fixed()).await.unwrap());
        s.add_member("n", "k", "m", until).await.unwrap();
        let m = s.render_metrics();
        for line in [
            "fedgate_store_entries{kind=\"replay_claims\"} 1\n",
            "fedgate_store_entries{kind=\"sessions\"} 0\n",
            "fedgate_store_entries{kind=\"login_states\"} 3\n",
            "fedgate_store_entries{kind=\"logout_sets\"} 1\n",
            "fedgate_store_max_entries 1000\n",
            // One 64 KiB chunk for the states' class (128-byte slots), one
            // for the set's (64-byte slots).
            &format!("fedgate_store_slab_bytes {}\n", 2 * 64 * 1024),
        ] {
            assert!(m.contains(line), "{line} in\n{m}");
        }
    }

    #[tokio::test]
    async fn a_flood_of_login_state_stays_at_the_cap_and_is_refused_with_store_full() {
        let s = MemoryStore::with_clock(1000, fixed);
        let now = fixed();
        let until = now + Duration::minutes(10);
        for i in 0..999 {
            s.put_state("oidc", &format!("st-{i}"), b"v", until)
                .await
                .unwrap();
        }
        assert!(s.ready().await.is_ok());
        s.put_state("oidc", "st-999", b"v", until).await.unwrap();
        for i in 1000..5000 {
            let e = s
                .put_state("oidc", &format!("st-{i}"), b"v", until)
                .await
                .unwrap_err();
            assert_eq!(e.code(), "store.full");
        }
        assert_eq!(s.counts().2, 1000);
        let e = s.ready().await.unwrap_err();
        assert_eq!(e.code(), "store.full");
        // Claims at the cap: refused, never evicted (no replay through eviction).
        for i in 0..1000 {
            assert!(s
                .claim_once("saml", &format!("id-{i}"), until, now)
                .await
                .unwrap());
        }
        assert_eq!(
            s.claim_once("saml", "one-more", until, now)
                .await
                .unwrap_err()
                .code(),
            "store.full"
        );
        assert!(!s.claim_once("saml", "id-0", until, now).await.unwrap());
        // Once they expired, room again, and the maps shrink as they are written.
        assert!(s
            .claim_once("saml", "later", until + Duration::seconds(60), until)
            .await
            .unwrap());
        assert_eq!(s.counts().0, 1);
    }
}
