//! Token exchange for API automation (RFC 8693): an Entra access token in
//! (a user's, or an app-only service-account token), a short-lived
//! console-scoped JWT out, carrying the roles policy granted. The flow
//! lives in `gateway::token_exchange`; this module holds the protocol
//! values and builds the console token's claims.

use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

use crate::identity::{Grant, Identity, PrincipalKind};

pub const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
pub const TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";

/// The token endpoint's form (RFC 8693 §2.1).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ExchangeForm {
    pub grant_type: String,
    #[serde(default)]
    pub subject_token: String,
    #[serde(default)]
    pub subject_token_type: String,
    /// The console id.
    pub audience: Option<String>,
}

/// The successful response (RFC 8693 §2.2.1).
#[derive(Debug, Clone, Serialize)]
pub struct Issued {
    pub access_token: String,
    pub issued_token_type: &'static str,
    pub token_type: &'static str,
    pub expires_in: i64,
}

/// An error response (RFC 6749 §5.2 / RFC 8693 §2.2.2), with fedgate's code
/// at the start of `error_description`.
#[derive(Debug, Clone, Serialize)]
pub struct ExchangeError {
    #[serde(skip)]
    pub status: u16,
    pub error: &'static str,
    pub error_description: String,
    #[serde(skip)]
    pub code: &'static str,
}

impl ExchangeError {
    pub fn new(
        status: u16,
        error: &'static str,
        code: &'static str,
        message: impl std::fmt::Display,
    ) -> Self {
        ExchangeError {
            status,
            error,
            error_description: format!("{code}: {message}"),
            code,
        }
    }
}

/// The console token's claims. Role and scope claim names come from the
/// console profile (e.g. `UserGroups`/`Company` for Commvault-style consoles).
///
/// `sub` is tenant-bound: `{tid}:{oid}`, or, without both, `{tenant}:{subject}`
/// with fedgate's id of the tenant. `upn` is `address`: the e-mail-like
/// value already checked against the tenant's domains
/// ([`crate::domains::console_address`]), never the raw claim.
#[allow(clippy::too_many_arguments)]
pub fn console_claims(
    identity: &Identity,
    tenant: &str,
    address: Option<&str>,
    grants: &[Grant],
    issuer: &str,
    audience: &str,
    console_id: &str,
    role_claim: &str,
    scope_claim: &str,
    now: OffsetDateTime,
    expires: OffsetDateTime,
    jti: &str,
) -> serde_json::Value {
    let mut roles: Vec<&str> = grants.iter().map(|g| g.role.as_str()).collect();
    roles.dedup();
    let mut scopes: Vec<&str> = grants
        .iter()
        .map(|g| g.scope.as_str())
        .filter(|s| !s.is_empty())
        .collect();
    scopes.sort_unstable();
    scopes.dedup();
    let sub = match (&identity.tenant_id, &identity.object_id) {
        (Some(t), Some(o)) => format!("{t}:{o}"),
        _ => format!("{tenant}:{}", identity.subject),
    };
    let mut claims = json!({
        "iss": issuer,
        "sub": sub,
        "aud": audience,
        "iat": now.unix_timestamp(),
        "nbf": now.unix_timestamp(),
        "exp": expires.unix_timestamp(),
        "jti": jti,
        "tid": identity.tenant_id,
        "oid": identity.object_id,
        "principal": match identity.kind { PrincipalKind::User => "user", PrincipalKind::ServiceAccount => "service_account" },
        "console": console_id,
    });
    if let Some(m) = claims.as_object_mut() {
        m.insert(role_claim.to_string(), json!(roles));
        m.insert(scope_claim.to_string(), json!(scopes));
        if let Some(u) = address {
            m.insert("upn".into(), json!(u));
        }
        if let Some(a) = &identity.app_id {
            m.insert("azp".into(), json!(a));
        }
    }
    claims
}
