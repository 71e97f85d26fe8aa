//! The stored form of a [`Session`] (format 4): one JSON array of the
//! session's fields and its identity's, in a fixed order, without their
//! names. Both stores keep this form (the memory store as one allocation per
//! session, Redis as the value), so it decides most of what a live session
//! costs: a session of the load benchmark is about 430 bytes here against
//! 703 as a JSON object with its field names (the live heap per login fell
//! by 270 bytes; docs/performance.md).
//!
//! The order is the format: a field added, removed or moved is a new
//! [`SESSION_FORMAT`](super::SESSION_FORMAT), and a stored value of any
//! other shape, length or format is no session (the user signs in again).
//! Nothing is dropped here: what a session keeps is decided before it is
//! stored (`gateway::deliver::session_identity`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{AdminRight, Session, SESSION_FORMAT};
use crate::identity::{GroupsSource, Identity, PrincipalKind, Source, Verification};

#[derive(Serialize, Deserialize)]
struct Wire(
    /* format */ u32,
    /* tenant */ Option<String>,
    AdminRight,
    /* validator */ String,
    WireIdentity,
);

#[derive(Serialize, Deserialize)]
struct WireIdentity(
    /* subject */ String,
    /* subject_format */ Option<String>,
    /* issuer */ String,
    /* tenant_id */ Option<String>,
    /* object_id */ Option<String>,
    PrincipalKind,
    Source,
    /* upn */ Option<String>,
    /* email */ Option<String>,
    /* display_name */ Option<String>,
    /* groups */ Vec<String>,
    /* groups_overage */ bool,
    /* groups_link */ Option<String>,
    GroupsSource,
    /* roles */ Vec<String>,
    /* auth_methods */ Vec<String>,
    /* mfa */ bool,
    #[serde(with = "time::serde::rfc3339::option")] Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")] OffsetDateTime,
    /* app_id */ Option<String>,
    /* token_id */ Option<String>,
    /* idp_session */ Option<String>,
    /* verification, `null` when nothing is recorded */ Option<Verification>,
    /* attributes */ BTreeMap<String, Vec<String>>,
);

fn is_empty(v: &Verification) -> bool {
    v.signed.is_empty()
        && v.algorithm.is_empty()
        && v.key.is_empty()
        && v.in_response_to.is_none()
        && !v.decrypted
}

impl From<Identity> for WireIdentity {
    fn from(identity: Identity) -> Self {
        // Every field by name: a field added to Identity does not compile
        // here until the format says where it goes.
        let Identity {
            subject,
            subject_format,
            issuer,
            tenant_id,
            object_id,
            kind,
            source,
            upn,
            email,
            display_name,
            groups,
            groups_overage,
            groups_link,
            groups_source,
            roles,
            auth_methods,
            mfa,
            auth_time,
            expires_at,
            app_id,
            token_id,
            idp_session,
            verification,
            attributes,
        } = identity;
        WireIdentity(
            subject,
            subject_format,
            issuer,
            tenant_id,
            object_id,
            kind,
            source,
            upn,
            email,
            display_name,
            groups,
            groups_overage,
            groups_link,
            groups_source,
            roles,
            auth_methods,
            mfa,
            auth_time,
            expires_at,
            app_id,
            token_id,
            idp_session,
            (!is_empty(&verification)).then_some(verification),
            attributes,
        )
    }
}

impl From<WireIdentity> for Identity {
    fn from(w: WireIdentity) -> Self {
        let WireIdentity(
            subject,
            subject_format,
            issuer,
            tenant_id,
            object_id,
            kind,
            source,
            upn,
            email,
            display_name,
            groups,
            groups_overage,
            groups_link,
            groups_source,
            roles,
            auth_methods,
            mfa,
            auth_time,
            expires_at,
            app_id,
            token_id,
            idp_session,
            verification,
            attributes,
        ) = w;
        Identity {
            subject,
            subject_format,
            issuer,
            tenant_id,
            object_id,
            kind,
            source,
            upn,
            email,
            display_name,
            groups,
            groups_overage,
            groups_link,
            groups_source,
            roles,
            auth_methods,
            mfa,
            auth_time,
            expires_at,
            app_id,
            token_id,
            idp_session,
            verification: verification.unwrap_or_default(),
            attributes,
        }
    }
}

/// The stored form of `session`.
pub(super) fn encode(session: &Session) -> serde_json::Result<Vec<u8>> {
    let s = session.clone();
    serde_json::to_vec(&Wire(
        SESSION_FORMAT,
        s.tenant,
        s.admin,
        s.validator,
        s.identity.into(),
    ))
}

/// A stored session of this format, or `None` for anything else.
pub(super) fn decode(bytes: &[u8]) -> Option<Session> {
    let Wire(format, tenant, admin, validator, identity) = serde_json::from_slice(bytes).ok()?;
    (format == SESSION_FORMAT).then(|| Session {
        format,
        tenant,
        admin,
        identity: identity.into(),
        validator,
    })
}
