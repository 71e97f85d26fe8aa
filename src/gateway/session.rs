//! fedgate sessions as the gateway uses them: a cookie `{id}.{secret}`,
//! the session stored under its id with the secret's digest, and what
//! single logout needs to find it again: the user's sessions by tenant and
//! subject (NameID or `sub`), and which consoles each one reached.
//!
//! The id is not a credential: consoles see it (the SessionIndex of
//! fedgate's assertions, the `sid` of its ID tokens), and single logout
//! ends a session by it. Only the cookie's holder has the secret that
//! opens it.

use time::OffsetDateTime;

use super::App;
use crate::store::{self, Session, StoreError};

/// Where the sessions of `(tenant, subject)` are listed.
pub const BY_SUBJECT_NS: &str = "slo.subject";
/// Where a session's console deliveries are recorded: `{id}\0{console}`.
pub const REACHED_NS: &str = "slo.reached";

/// How a session reached a console: what single logout tells it by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// A SAML assertion (SessionIndex = the session id).
    Saml,
    /// An OIDC ID token (`sid` = the session id).
    Oidc,
}

impl Reach {
    fn tag(self) -> &'static [u8] {
        match self {
            Reach::Saml => b"saml",
            Reach::Oidc => b"oidc",
        }
    }

    fn from_tag(tag: &[u8]) -> Option<Reach> {
        match tag {
            b"saml" => Some(Reach::Saml),
            b"oidc" => Some(Reach::Oidc),
            _ => None,
        }
    }
}

/// An opened session: its id and what it holds.
#[derive(Debug, Clone)]
pub struct Opened {
    pub id: String,
    pub session: Session,
}

fn subject_key(tenant: &str, subject: &str) -> String {
    format!("{tenant}\u{0}{subject}")
}

fn reached_key(id: &str, console: &str) -> String {
    format!("{id}\u{0}{console}")
}

/// Why a session could not be made.
#[derive(Debug)]
pub enum NewSessionError {
    Rng,
    Store(StoreError),
}

impl App {
    /// Store `session` and return its cookie. A tenant's session is listed
    /// under its tenant and subject, for single logout.
    pub async fn new_session(&self, mut session: Session) -> Result<String, NewSessionError> {
        let (cookie, id, validator) = store::new_cookie().ok_or(NewSessionError::Rng)?;
        session.validator = validator;
        self.store
            .put_session(&id, &session, session.expires)
            .await
            .map_err(NewSessionError::Store)?;
        if let Some(tenant) = &session.tenant {
            self.store
                .add_member(
                    BY_SUBJECT_NS,
                    &subject_key(tenant, &session.identity.subject),
                    &id,
                    session.expires,
                )
                .await
                .map_err(NewSessionError::Store)?;
        }
        Ok(cookie)
    }

    /// The live session a cookie opens, if any.
    pub async fn open_session(
        &self,
        cookie: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Opened>, StoreError> {
        let Some((id, secret)) = store::split_cookie(cookie) else {
            return Ok(None);
        };
        Ok(self
            .store
            .get_session(id, now)
            .await?
            .filter(|s| s.opens_with(secret))
            .map(|session| Opened {
                id: id.to_string(),
                session,
            }))
    }

    /// The live sessions of `subject` at `tenant` (single logout).
    pub async fn sessions_of(
        &self,
        tenant: &str,
        subject: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<Opened>, StoreError> {
        let ids = self
            .store
            .members(BY_SUBJECT_NS, &subject_key(tenant, subject), now)
            .await?;
        let mut found = Vec::new();
        for id in ids {
            if let Some(session) = self.store.get_session(&id, now).await? {
                if session.tenant.as_deref() == Some(tenant) && session.identity.subject == subject
                {
                    found.push(Opened { id, session });
                }
            }
        }
        Ok(found)
    }

    /// The live session with this id (a console's SessionIndex or `sid`).
    pub async fn session_by_id(
        &self,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Opened>, StoreError> {
        if id.is_empty() || id.len() > 64 {
            return Ok(None);
        }
        Ok(self
            .store
            .get_session(id, now)
            .await?
            .map(|session| Opened {
                id: id.to_string(),
                session,
            }))
    }

    /// Record that session `id` reached `console` (kept as long as the
    /// session). Best effort: a failure is logged and the login goes on
    /// (the console is then not told at sign-out, and the page says which
    /// consoles were told).
    pub async fn record_reach(&self, id: &str, until: OffsetDateTime, console: &str, how: Reach) {
        let key = reached_key(id, console);
        if let Err(e) = self
            .store
            .put_state(REACHED_NS, &key, how.tag(), until)
            .await
        {
            tracing::warn!(console, error = %e, "could not record a console reached, for single logout");
        }
    }

    /// The consoles session `id` reached, in configuration order.
    pub async fn reached(
        &self,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<(String, Reach)>, StoreError> {
        let mut out = Vec::new();
        for c in &self.config.consoles {
            if let Some(tag) = self
                .store
                .peek_state(REACHED_NS, &reached_key(id, &c.id), now)
                .await?
            {
                if let Some(r) = Reach::from_tag(&tag) {
                    out.push((c.id.clone(), r));
                }
            }
        }
        Ok(out)
    }
}
