//! The in-memory store: one instance, the default, and the demo's.

use std::collections::HashMap;
use std::sync::Mutex;

use time::OffsetDateTime;

use super::{storage_key, Session, Store, StoreError, StoreFuture};

/// Entries are purged lazily: whenever the map has grown past twice its
/// size after the last purge.
#[derive(Default)]
pub struct MemoryStore {
    claims: Mutex<Claims>,
    sessions: Mutex<HashMap<String, (Session, OffsetDateTime)>>,
    states: Mutex<HashMap<String, (Vec<u8>, OffsetDateTime)>>,
}

#[derive(Default)]
struct Claims {
    map: HashMap<String, OffsetDateTime>,
    purge_at: usize,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
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
            let k = storage_key(ns, key);
            let mut c = self.claims.lock().map_err(poisoned)?;
            if c.map.len() >= c.purge_at.max(1024) {
                c.map.retain(|_, exp| *exp > now);
                c.purge_at = c.map.len() * 2;
            }
            match c.map.get(&k) {
                Some(exp) if *exp > now => Ok(false),
                _ => {
                    c.map.insert(k, expires);
                    Ok(true)
                }
            }
        })
    }

    fn put_session<'a>(
        &'a self,
        id: &'a str,
        session: &'a Session,
        expires: OffsetDateTime,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut s = self.sessions.lock().map_err(poisoned)?;
            if s.len() > 10_000 {
                let now = OffsetDateTime::now_utc();
                s.retain(|_, (_, exp)| *exp > now);
            }
            s.insert(storage_key("session", id), (session.clone(), expires));
            Ok(())
        })
    }

    fn get_session<'a>(
        &'a self,
        id: &'a str,
        now: OffsetDateTime,
    ) -> StoreFuture<'a, Option<Session>> {
        Box::pin(async move {
            let s = self.sessions.lock().map_err(poisoned)?;
            Ok(s.get(&storage_key("session", id))
                .filter(|(_, exp)| *exp > now)
                .map(|(id, _)| id.clone()))
        })
    }

    fn delete_session<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut s = self.sessions.lock().map_err(poisoned)?;
            s.remove(&storage_key("session", id));
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
            let mut s = self.states.lock().map_err(poisoned)?;
            if s.len() > 10_000 {
                let now = OffsetDateTime::now_utc();
                s.retain(|_, (_, exp)| *exp > now);
            }
            s.insert(storage_key(ns, key), (value.to_vec(), expires));
            Ok(())
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
            Ok(s.get(&storage_key(ns, key))
                .filter(|(_, exp)| *exp > now)
                .map(|(v, _)| v.clone()))
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
            Ok(s.remove(&storage_key(ns, key))
                .filter(|(_, exp)| *exp > now)
                .map(|(v, _)| v))
        })
    }

    fn ready(&self) -> StoreFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

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
}
