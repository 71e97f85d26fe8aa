//! fedgate sessions as the gateway uses them: a cookie `{id}.{secret}`,
//! the session stored under its id with the secret's digest, and what
//! single logout needs to find it again: the user's sessions by tenant and
//! subject (NameID or `sub`), and which consoles each one reached, both in
//! one bounded set per user.
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

/// How a session reached a console: what single logout tells it by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// A SAML assertion (SessionIndex = the session id).
    Saml,
    /// An OIDC ID token (`sid` = the session id).
    Oidc,
}

impl Reach {
    fn tag(self) -> &'static str {
        match self {
            Reach::Saml => "saml",
            Reach::Oidc => "oidc",
        }
    }

    fn from_tag(tag: &str) -> Option<Reach> {
        match tag {
            "saml" => Some(Reach::Saml),
            "oidc" => Some(Reach::Oidc),
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

/// Why a session could not be made.
#[derive(Debug)]
pub enum NewSessionError {
    Rng,
    Store(StoreError),
}

impl App {
    /// Store `session` until `expires` and return its cookie. A tenant's
    /// session is listed under its tenant and subject, for single logout.
    pub async fn new_session(
        &self,
        mut session: Session,
        expires: OffsetDateTime,
    ) -> Result<String, NewSessionError> {
        let (cookie, id, validator) = store::new_cookie().ok_or(NewSessionError::Rng)?;
        session.validator = validator;
        self.store
            .put_session(&id, &session, expires)
            .await
            .map_err(NewSessionError::Store)?;
        if let Some(tenant) = &session.tenant {
            self.store
                .add_member(
                    BY_SUBJECT_NS,
                    &subject_key(tenant, &session.identity.subject),
                    &id,
                    expires,
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
        let mut found: Vec<Opened> = Vec::new();
        // Members are `{id}` or `{id}>{how}>{console}`: the session ids.
        let mut ids: Vec<&str> = ids
            .iter()
            .map(|m| m.split('>').next().unwrap_or(m))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        for id in ids {
            let id = id.to_string();
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

    /// Record that session `id` (of `subject` at `tenant`) reached
    /// `console`: a member `{id}>{how}>{console}` of the same set that lists
    /// the user's sessions (one atomic add, no rewrite of the session, and
    /// no entry of its own). Best effort: a failure is logged and the login
    /// goes on (the console is then not told at sign-out, and the
    /// signed-out page shows only the consoles that were).
    pub async fn record_reach(
        &self,
        user: (&str, &str),
        id: &str,
        until: OffsetDateTime,
        console: &str,
        how: Reach,
    ) {
        let member = format!("{id}>{}>{console}", how.tag());
        if let Err(e) = self
            .store
            .add_member(BY_SUBJECT_NS, &subject_key(user.0, user.1), &member, until)
            .await
        {
            tracing::warn!(console, error = %e, "could not record a console reached, for single logout");
        }
    }

    /// The consoles a session reached, in configuration order.
    pub async fn reached(
        &self,
        opened: &Opened,
        now: OffsetDateTime,
    ) -> Result<Vec<(String, Reach)>, StoreError> {
        let Some(tenant) = opened.session.tenant.as_deref() else {
            return Ok(Vec::new());
        };
        let members = self
            .store
            .members(
                BY_SUBJECT_NS,
                &subject_key(tenant, &opened.session.identity.subject),
                now,
            )
            .await?;
        let prefix = format!("{}>", opened.id);
        let mine: Vec<(Reach, &str)> = members
            .iter()
            .filter_map(|m| m.strip_prefix(&prefix))
            .filter_map(|rest| {
                let (how, console) = rest.split_once('>')?;
                Some((Reach::from_tag(how)?, console))
            })
            .collect();
        Ok(self
            .config
            .consoles
            .iter()
            .filter_map(|c| {
                mine.iter()
                    .find(|(_, id)| *id == c.id)
                    .map(|(how, _)| (c.id.clone(), *how))
            })
            .collect())
    }
}
