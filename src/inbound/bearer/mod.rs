//! The strict verifier for Entra ID bearer and ID tokens (JWS compact, RFC 7515/7519).
//!
//! [`verify`] takes the token, the issuer's [`Jwks`], a [`BearerPolicy`] and the
//! current time, and returns an [`Identity`] or a [`BearerError`] whose
//! [`ErrorCode`] names the one rule that failed. The steps, in order (RFC 8725,
//! "JSON Web Token Best Current Practices", is the checklist behind them):
//!
//! 1. Structure: at most `max_token_len` bytes, exactly three base64url parts
//!    (no padding, canonical), a JSON object as header → `jwt.malformed`.
//! 2. `alg` (RFC 8725 §3.1): `none` and every HMAC are always refused, and so is
//!    anything not in `policy.algorithms` → `jwt.alg_forbidden`.
//! 3. `jku`, `x5u`, `jwk`, `x5c` (RFC 8725 §3.10, key material chosen by the
//!    sender) → `jwt.header_forbidden`; they are never fetched nor used.
//! 4. `crit` (RFC 7515 §4.1.11): fedgate understands no extension →
//!    `jwt.crit_unsupported`.
//! 5. The key: by `kid` (`jwt.kid_missing`, `jwt.kid_unknown`). A token without
//!    `kid` but with `x5t` (Entra v1 tokens before 2016) is looked up by `x5t`.
//!    The key's type, curve and declared `alg` must fit the header's `alg`
//!    (RFC 8725 §3.1, no key confusion) → `jwt.alg_forbidden`.
//! 6. The signature over `header.payload` → `jwt.signature_invalid`. Nothing
//!    of the payload is parsed before this.
//! 7. Claims, typed (`jwt.claim_invalid` when a known claim has the wrong JSON
//!    type): `iss` exactly the policy's (`jwt.issuer_mismatch`); for Entra
//!    issuers `tid` equal to the tenant in `iss` (`jwt.tid_mismatch`); Entra's
//!    per-key `issuer` in the JWKS (`jwt.issuer_mismatch`); `aud`
//!    (`jwt.audience_mismatch`); `exp` required and `now - skew < exp`
//!    (`jwt.exp_missing`, `jwt.expired`); `nbf` and `iat` not after `now + skew`
//!    (`jwt.not_yet_valid`); `sub` required (`jwt.claim_invalid`).
//!
//! No I/O and no wall clock: `now` is a parameter.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::Algorithm;
use time::{Duration, OffsetDateTime};

use crate::identity::{ErrorCode, Identity, PrincipalKind, Source, Verification};
use crate::timefmt;
use crate::trust::jwks::{Jwk, Jwks, KeyUseError};

mod json;

use json::*;

/// Default clock skew tolerated on `exp`, `nbf` and `iat`.
pub const DEFAULT_SKEW: Duration = Duration::seconds(180);
/// Default maximum token length in bytes. Entra tokens are 1-4 KiB; a token
/// with 200 groups stays under 10 KiB.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 16 * 1024;

/// Longest decoded JOSE header accepted, in bytes, checked before it is
/// parsed. Entra's headers are under 300 bytes (`typ`, `alg`, `kid`, `x5t`,
/// `nonce`).
pub const MAX_HEADER_BYTES: usize = 2048;
/// Most top-level claims in a payload. Entra's access and ID tokens carry
/// 20–45, every optional claim included.
pub const MAX_CLAIMS: usize = 256;
/// Longest top-level array claim (`groups`, `roles`, `amr`, `wids`, …).
/// Entra puts at most 200 groups in a JWT before it switches to the
/// overage claim; app roles are a few dozen.
pub const MAX_ARRAY_LEN: usize = 512;
/// Most audiences in an `aud` array (each compared with the policy's).
/// Entra sends one, as a string.
pub const MAX_AUDIENCES: usize = 16;

/// What a bearer token must satisfy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerPolicy {
    /// The exact `iss` expected, e.g. `https://login.microsoftonline.com/{tid}/v2.0`.
    pub issuer: String,
    /// Accepted `aud` values; the token must name at least one.
    pub audiences: Vec<String>,
    /// Accepted signature algorithms (default `[RS256]`). HMAC algorithms are
    /// refused even when listed: the keys of a JWKS are public.
    pub algorithms: Vec<Algorithm>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat` (default 180 s).
    pub skew: Duration,
    /// Longest token accepted, in bytes (default 16 KiB).
    pub max_token_len: usize,
}

impl BearerPolicy {
    /// A policy for one issuer and an audience (a string, or a list of them),
    /// with the defaults: RS256 only, 180 s skew, 16 KiB.
    pub fn new(issuer: impl Into<String>, audience: impl Audiences) -> Self {
        BearerPolicy {
            issuer: issuer.into(),
            audiences: audience.into_audiences(),
            algorithms: vec![Algorithm::RS256],
            skew: DEFAULT_SKEW,
            max_token_len: DEFAULT_MAX_TOKEN_LEN,
        }
    }
}

/// One accepted audience or several, for [`BearerPolicy::new`].
pub trait Audiences {
    fn into_audiences(self) -> Vec<String>;
}

impl Audiences for String {
    fn into_audiences(self) -> Vec<String> {
        vec![self]
    }
}

impl Audiences for &str {
    fn into_audiences(self) -> Vec<String> {
        vec![self.to_string()]
    }
}

impl Audiences for &String {
    fn into_audiences(self) -> Vec<String> {
        vec![self.clone()]
    }
}

impl Audiences for Vec<String> {
    fn into_audiences(self) -> Vec<String> {
        self
    }
}

impl Audiences for &[&str] {
    fn into_audiences(self) -> Vec<String> {
        self.iter().map(|a| a.to_string()).collect()
    }
}

/// Why a bearer token was rejected. [`ErrorCode::code`] gives the stable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BearerError {
    /// Not a JWS compact token: too long, not three base64url parts, or a
    /// header or payload that is not a JSON object. (`jwt.malformed`)
    #[error("malformed token: {reason}")]
    Malformed { reason: String },
    /// The header's `alg` is `none`, an HMAC, unknown, or not allowed by the
    /// policy. (`jwt.alg_forbidden`)
    #[error("algorithm {alg:?} is not accepted: {reason}")]
    AlgForbidden { alg: String, reason: &'static str },
    /// The key named by `kid` cannot verify the header's `alg` (wrong key type
    /// or curve, or the key declares another `alg`): key confusion refused.
    /// (`jwt.alg_forbidden`)
    #[error("key {kid:?} ({kty}) cannot verify {alg}")]
    KeyAlgMismatch {
        kid: String,
        kty: &'static str,
        alg: String,
    },
    /// The header names no key (`kid`, or `x5t` for old Entra v1 tokens).
    /// (`jwt.kid_missing`)
    #[error("token header has no kid")]
    KidMissing,
    /// The `kid` is not in the JWKS; the keys may have rotated, so the JWKS
    /// should be refetched (once) before giving up. (`jwt.kid_unknown`)
    #[error("kid {kid:?} is not in the issuer's JWKS")]
    KidUnknown { kid: String },
    /// The header carries a key or a key location (`jku`, `x5u`, `jwk`, `x5c`):
    /// fedgate only trusts its configured JWKS. (`jwt.header_forbidden`)
    #[error("token header carries `{header}`, which is never followed nor used")]
    HeaderForbidden { header: &'static str },
    /// The header has `crit`: fedgate implements no JWS extension.
    /// (`jwt.crit_unsupported`)
    #[error("token header has `crit`; no JWS extension is supported")]
    CritUnsupported,
    /// The signature does not verify with the key named by `kid` (forged,
    /// tampered, stripped, or signed with another key). (`jwt.signature_invalid`)
    #[error("signature does not verify with key {kid:?}")]
    SignatureInvalid { kid: String },
    /// The token has no `exp`. (`jwt.exp_missing`)
    #[error("token has no exp claim")]
    ExpMissing,
    /// `exp` is past (beyond the allowed skew). (`jwt.expired`)
    #[error("token expired at {} (now {}, skew {skew_secs} s)", timefmt::format(*.exp), timefmt::format(*.now))]
    Expired {
        exp: OffsetDateTime,
        now: OffsetDateTime,
        skew_secs: i64,
    },
    /// `nbf` (or `iat`) is in the future beyond the allowed skew.
    /// (`jwt.not_yet_valid`)
    #[error("token {claim} is {} (now {}, skew {skew_secs} s): not yet valid", timefmt::format(*.at), timefmt::format(*.now))]
    NotYetValid {
        claim: &'static str,
        at: OffsetDateTime,
        now: OffsetDateTime,
        skew_secs: i64,
    },
    /// `iss` is missing or not exactly the expected issuer. (`jwt.issuer_mismatch`)
    #[error("issuer {} is not the expected {expected:?}", found.as_deref().map_or_else(|| "missing".to_string(), |f| format!("{f:?}")))]
    IssuerMismatch {
        expected: String,
        found: Option<String>,
    },
    /// The JWKS scopes the signing key to an issuer (Entra's per-key `issuer`,
    /// `{tenantid}` filled in from `tid`) that is not the token's `iss`: a key
    /// of one tenant (or of the consumer MSA tenant) vouching for another.
    /// (`jwt.issuer_mismatch`)
    #[error("key {kid:?} may only sign for issuer {key_issuer:?}, not {found:?}")]
    KeyIssuerMismatch {
        kid: String,
        key_issuer: String,
        found: String,
    },
    /// `aud` is missing or names none of the accepted audiences.
    /// (`jwt.audience_mismatch`)
    #[error("audience {found:?} names none of {expected:?}")]
    AudienceMismatch {
        expected: Vec<String>,
        found: Vec<String>,
    },
    /// An Entra issuer, but no `tid` claim. (`jwt.tid_mismatch`)
    #[error("tid claim missing (issuer names tenant {expected:?})")]
    TidMissing { expected: String },
    /// `tid` is not the tenant named in `iss`. (`jwt.tid_mismatch`)
    #[error("tid {found:?} is not the tenant {expected:?} named in the issuer")]
    TidMismatch { expected: String, found: String },
    /// A count beyond one of the limits of this module (`MAX_HEADER_BYTES`
    /// before any crypto; `MAX_CLAIMS`, `MAX_ARRAY_LEN`, `MAX_AUDIENCES`
    /// before any claim is read). (`jwt.limit_exceeded`)
    #[error("more than {limit} {what} ({name})")]
    LimitExceeded {
        what: &'static str,
        name: &'static str,
        limit: usize,
    },
    /// A claim fedgate reads has the wrong JSON type (e.g. `groups` not an array
    /// of strings, `exp` not a number), or `sub` is missing. (`jwt.claim_invalid`)
    #[error("invalid claims: {reason}")]
    ClaimInvalid { reason: String },
}

impl ErrorCode for BearerError {
    fn code(&self) -> &'static str {
        match self {
            BearerError::Malformed { .. } => "jwt.malformed",
            BearerError::AlgForbidden { .. } | BearerError::KeyAlgMismatch { .. } => {
                "jwt.alg_forbidden"
            }
            BearerError::KidMissing => "jwt.kid_missing",
            BearerError::KidUnknown { .. } => "jwt.kid_unknown",
            BearerError::HeaderForbidden { .. } => "jwt.header_forbidden",
            BearerError::CritUnsupported => "jwt.crit_unsupported",
            BearerError::SignatureInvalid { .. } => "jwt.signature_invalid",
            BearerError::ExpMissing => "jwt.exp_missing",
            BearerError::Expired { .. } => "jwt.expired",
            BearerError::NotYetValid { .. } => "jwt.not_yet_valid",
            BearerError::IssuerMismatch { .. } | BearerError::KeyIssuerMismatch { .. } => {
                "jwt.issuer_mismatch"
            }
            BearerError::AudienceMismatch { .. } => "jwt.audience_mismatch",
            BearerError::TidMissing { .. } | BearerError::TidMismatch { .. } => "jwt.tid_mismatch",
            BearerError::ClaimInvalid { .. } => "jwt.claim_invalid",
            BearerError::LimitExceeded { .. } => "jwt.limit_exceeded",
        }
    }
}

fn malformed(reason: impl Into<String>) -> BearerError {
    BearerError::Malformed {
        reason: reason.into(),
    }
}

/// Verify `token` against `jwks` and `policy` at `now`. See the module
/// documentation for the steps and their error codes.
pub fn verify(
    token: &str,
    jwks: &Jwks,
    policy: &BearerPolicy,
    now: OffsetDateTime,
) -> Result<Identity, BearerError> {
    // 1. Structure.
    if token.len() > policy.max_token_len {
        return Err(malformed(format!(
            "{} bytes, more than the {} allowed",
            token.len(),
            policy.max_token_len
        )));
    }
    let (signing_input, sig_b64) = token
        .rsplit_once('.')
        .ok_or_else(|| malformed("not three dot-separated parts"))?;
    let (header_b64, payload_b64) = signing_input
        .split_once('.')
        .ok_or_else(|| malformed("not three dot-separated parts"))?;
    if payload_b64.contains('.') {
        return Err(malformed(
            "more than three dot-separated parts (a JWE, or junk)",
        ));
    }
    if header_b64.is_empty() || payload_b64.is_empty() {
        return Err(malformed("empty header or payload"));
    }
    let header_json = b64url(header_b64, "header")?;
    if header_json.len() > MAX_HEADER_BYTES {
        return Err(BearerError::LimitExceeded {
            what: "bytes of JOSE header",
            name: "MAX_HEADER_BYTES",
            limit: MAX_HEADER_BYTES,
        });
    }
    let header: Header = parse_object(&header_json)
        .map_err(|e| malformed(format!("header is not a valid JSON object: {e}")))?;

    // 2. Algorithm.
    let alg_name = header
        .alg
        .as_deref()
        .ok_or_else(|| malformed("header has no alg"))?;
    let alg = check_alg(alg_name, policy)?;

    // 3. Keys and key locations chosen by the sender.
    for (present, name) in [
        (header.jku, "jku"),
        (header.x5u, "x5u"),
        (header.jwk, "jwk"),
        (header.x5c, "x5c"),
    ] {
        if present {
            return Err(BearerError::HeaderForbidden { header: name });
        }
    }
    // 4. Critical extensions.
    if header.crit {
        return Err(BearerError::CritUnsupported);
    }

    // 5. The key.
    let key = find_key(&header, jwks)?;
    if !key.supports(alg) {
        return Err(BearerError::KeyAlgMismatch {
            kid: key.kid().to_string(),
            kty: key.kty().as_str(),
            alg: alg_name.to_string(),
        });
    }

    // The remaining parts must decode before any crypto is spent on them.
    let signature = b64url(sig_b64, "signature")?;
    let payload_json = b64url(payload_b64, "payload")?;

    // 6. Signature.
    match key.verify(alg, signing_input.as_bytes(), &signature) {
        Ok(()) => {}
        Err(KeyUseError::SignatureInvalid) => {
            return Err(BearerError::SignatureInvalid {
                kid: key.kid().to_string(),
            })
        }
        Err(_) => {
            return Err(BearerError::KeyAlgMismatch {
                kid: key.kid().to_string(),
                kty: key.kty().as_str(),
                alg: alg_name.to_string(),
            })
        }
    }

    // 7. Claims: counted first (one linear pass), then typed.
    if let Ok(shape) = serde_json::from_slice::<PayloadShape>(&payload_json) {
        shape.check()?;
    }
    let claims: Claims = parse_object(&payload_json).map_err(|e| match e {
        ObjectError::Json(e) if e.classify() == serde_json::error::Category::Data => {
            BearerError::ClaimInvalid {
                reason: wrong_claim(&payload_json).unwrap_or_else(|| e.to_string()),
            }
        }
        e => malformed(format!("payload is not a valid JSON object: {e}")),
    })?;
    let times = check_claims(&claims, key, policy, now)?;
    Ok(to_identity(claims, times, key, alg_name))
}

/// Decode one part of the token: base64url, no padding, canonical.
fn b64url(part: &str, what: &str) -> Result<Vec<u8>, BearerError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|e| malformed(format!("{what} is not base64url: {e}")))
}

fn check_alg(name: &str, policy: &BearerPolicy) -> Result<Algorithm, BearerError> {
    let forbidden = |reason| BearerError::AlgForbidden {
        alg: name.to_string(),
        reason,
    };
    if name.eq_ignore_ascii_case("none") {
        return Err(forbidden("unsigned tokens are never accepted"));
    }
    let alg: Algorithm = name
        .parse()
        .map_err(|_| forbidden("not a supported JWS algorithm"))?;
    if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
        return Err(forbidden(
            "HMAC is never accepted: the keys of a JWKS are public",
        ));
    }
    if !policy.algorithms.contains(&alg) {
        return Err(forbidden("not in the policy's algorithms"));
    }
    Ok(alg)
}

fn find_key<'j>(header: &Header, jwks: &'j Jwks) -> Result<&'j Jwk, BearerError> {
    match (&header.kid, &header.x5t) {
        (Some(kid), _) => jwks
            .get(kid)
            .ok_or_else(|| BearerError::KidUnknown { kid: kid.clone() }),
        (None, Some(x5t)) => jwks
            .find_by_x5t(x5t)
            .ok_or_else(|| BearerError::KidUnknown { kid: x5t.clone() }),
        (None, None) => Err(BearerError::KidMissing),
    }
}

/// The dates of a token that passed [`check_claims`].
struct Times {
    expires_at: OffsetDateTime,
    auth_time: Option<OffsetDateTime>,
}

fn check_claims(
    c: &Claims,
    key: &Jwk,
    policy: &BearerPolicy,
    now: OffsetDateTime,
) -> Result<Times, BearerError> {
    // iss: exactly the configured issuer (RFC 7519 §4.1.1, compared as a
    // case-sensitive string).
    let iss = match &c.iss {
        Some(iss) if *iss == policy.issuer => iss.as_str(),
        found => {
            return Err(BearerError::IssuerMismatch {
                expected: policy.issuer.clone(),
                found: found.clone(),
            })
        }
    };

    // tid: for Entra issuers, the tenant named in the issuer.
    if let Some((tenant, _)) = entra_issuer(iss) {
        match &c.tid {
            None => {
                return Err(BearerError::TidMissing {
                    expected: tenant.to_string(),
                })
            }
            Some(tid) if tid != tenant => {
                return Err(BearerError::TidMismatch {
                    expected: tenant.to_string(),
                    found: tid.clone(),
                })
            }
            Some(_) => {}
        }
    }

    // Entra's per-key issuer: the JWKS says which issuer a key may sign for.
    if let Some(template) = key.issuer() {
        let effective = match &c.tid {
            Some(tid) => template.replace("{tenantid}", tid),
            None => template.to_string(),
        };
        if !issuer_matches_key(iss, &effective) {
            return Err(BearerError::KeyIssuerMismatch {
                kid: key.kid().to_string(),
                key_issuer: effective,
                found: iss.to_string(),
            });
        }
    }

    // aud: one of the accepted audiences (RFC 7519 §4.1.3).
    let auds = c.aud.as_ref().map(|a| a.0.as_slice()).unwrap_or_default();
    if !auds.iter().any(|a| policy.audiences.contains(a)) {
        return Err(BearerError::AudienceMismatch {
            expected: policy.audiences.clone(),
            found: auds.to_vec(),
        });
    }

    // Times (RFC 7519 §4.1.4-6), in whole seconds: a NumericDate with a
    // fraction is rounded towards "less valid". Every date must be one that
    // `time` can represent.
    let exp = c.exp.ok_or(BearerError::ExpMissing)?;
    let times = Times {
        expires_at: date(exp.floor)?,
        auth_time: c.auth_time.map(|t| date(t.floor)).transpose()?,
    };
    let skew = policy.skew.whole_seconds();
    let now_s = now.unix_timestamp();
    if i128::from(now_s) - i128::from(skew) >= i128::from(exp.floor) {
        return Err(BearerError::Expired {
            exp: times.expires_at,
            now,
            skew_secs: skew,
        });
    }
    for (claim, value) in [("nbf", c.nbf), ("iat", c.iat)] {
        if let Some(t) = value {
            let at = date(t.floor)?;
            if i128::from(t.ceil()) > i128::from(now_s) + i128::from(skew) {
                return Err(BearerError::NotYetValid {
                    claim,
                    at,
                    now,
                    skew_secs: skew,
                });
            }
        }
    }

    if c.sub.is_none() {
        return Err(BearerError::ClaimInvalid {
            reason: "no sub claim".into(),
        });
    }
    Ok(times)
}

/// `(tenant, Source)` when `iss` has the shape of an Entra issuer:
/// `https://sts.windows.net/{tid}/` (v1) or
/// `https://login.microsoftonline.com/{tid}/v2.0` (v2).
fn entra_issuer(iss: &str) -> Option<(&str, Source)> {
    let segment = |s: &str| !s.is_empty() && !s.contains('/');
    if let Some(t) = iss
        .strip_prefix("https://sts.windows.net/")
        .and_then(|r| r.strip_suffix('/'))
    {
        return segment(t).then_some((t, Source::JwtV1));
    }
    if let Some(t) = iss
        .strip_prefix("https://login.microsoftonline.com/")
        .and_then(|r| r.strip_suffix("/v2.0"))
    {
        return segment(t).then_some((t, Source::JwtV2));
    }
    None
}

/// Whether a token issued by `iss` may be verified with a key whose effective
/// per-key issuer is `key_issuer`. Entra publishes per-key issuers only in
/// v2.0 form, and signs v1.0 tokens (`https://sts.windows.net/{tid}/`) with the
/// same keys, so a v1 issuer matches the v2 issuer of the same tenant (as
/// Microsoft.IdentityModel's AadIssuerValidator does).
fn issuer_matches_key(iss: &str, key_issuer: &str) -> bool {
    if iss == key_issuer {
        return true;
    }
    match (entra_issuer(iss), entra_issuer(key_issuer)) {
        (Some((t1, Source::JwtV1)), Some((t2, Source::JwtV2))) => t1 == t2,
        _ => false,
    }
}

fn date(secs: i64) -> Result<OffsetDateTime, BearerError> {
    OffsetDateTime::from_unix_timestamp(secs).map_err(|_| BearerError::ClaimInvalid {
        reason: format!("time {secs} is out of range"),
    })
}

/// Whether `xms_edov` says "not verified" (false, "false", 0, "0"); absent
/// or anything else is not a "no" (the domain check applies regardless).
fn edov_false(v: Option<&serde_json::Value>) -> bool {
    use serde_json::Value;
    match v {
        Some(Value::Bool(b)) => !b,
        Some(Value::Number(n)) => n.as_u64() == Some(0),
        Some(Value::String(s)) => matches!(s.trim().to_ascii_lowercase().as_str(), "false" | "0"),
        _ => false,
    }
}

fn to_identity(c: Claims, times: Times, key: &Jwk, alg_name: &str) -> Identity {
    let iss = c.iss.unwrap_or_default();
    let source = match entra_issuer(&iss) {
        Some((_, source)) => source,
        None => match c.ver.as_deref() {
            Some("1.0") => Source::JwtV1,
            Some("2.0") => Source::JwtV2,
            _ => Source::Jwt,
        },
    };
    let roles = c.roles.unwrap_or_default();
    // App-only (client credentials): Entra says so with `idtyp` when the
    // optional claim is configured; otherwise a token without delegated scopes
    // that carries app roles and whose subject is the service principal itself.
    let kind = match c.idtyp.as_deref() {
        Some("app") => PrincipalKind::ServiceAccount,
        Some("user") => PrincipalKind::User,
        _ if !c.scp && !roles.is_empty() && c.oid.is_some() && c.oid == c.sub => {
            PrincipalKind::ServiceAccount
        }
        _ => PrincipalKind::User,
    };
    let mut auth_methods = c.amr.unwrap_or_default();
    let mfa = auth_methods.iter().any(|m| m == "mfa");
    // Entra's satisfied authentication contexts, kept apart from `amr`:
    // only a tenant's `mfa_auth_context` gives one a meaning.
    auth_methods.extend(
        c.acrs
            .unwrap_or_default()
            .into_iter()
            .map(|a| format!("acrs:{a}")),
    );
    let groups_source = c.claim_names.as_ref().and_then(|n| n.get("groups"));
    let groups_overage = c.hasgroups == Some(true) || groups_source.is_some();
    let groups_link = groups_source.and_then(|src| {
        c.claim_sources
            .as_ref()
            .and_then(|s| s.get(src))
            .and_then(|s| s.endpoint.clone())
    });
    Identity {
        subject: c.sub.unwrap_or_default(),
        subject_format: None,
        issuer: iss,
        tenant_id: c.tid,
        object_id: c.oid,
        kind,
        source,
        upn: c.upn.or(c.preferred_username).or(c.unique_name),
        // `xms_edov` false: Entra says the e-mail's domain owner is not
        // verified, so the `email` claim is not used at all.
        email: c.email.filter(|_| !edov_false(c.xms_edov.as_ref())),
        display_name: c.name,
        groups: c.groups.unwrap_or_default(),
        groups_overage,
        groups_link,
        groups_source: Default::default(),
        roles,
        auth_methods,
        mfa,
        auth_time: times.auth_time,
        expires_at: times.expires_at,
        app_id: c.appid.or(c.azp),
        token_id: c.uti.or(c.jti),
        idp_session: c.sid.filter(|s| !s.is_empty() && s.len() <= 256),
        verification: Verification {
            signed: vec!["jwt".to_string()],
            algorithm: alg_name.to_string(),
            key: key.kid().to_string(),
            in_response_to: None,
            decrypted: false,
        },
        attributes: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entra_issuer_shapes() {
        assert_eq!(
            entra_issuer("https://sts.windows.net/abc/"),
            Some(("abc", Source::JwtV1))
        );
        assert_eq!(
            entra_issuer("https://login.microsoftonline.com/abc/v2.0"),
            Some(("abc", Source::JwtV2))
        );
        assert_eq!(entra_issuer("https://sts.windows.net//"), None);
        assert_eq!(entra_issuer("https://sts.windows.net/a/b/"), None);
        assert_eq!(
            entra_issuer("https://login.microsoftonline.com/abc/v2.0/"),
            None
        );
        assert_eq!(entra_issuer("https://idp.example.test/"), None);
    }

    #[test]
    fn v1_issuer_matches_v2_key_issuer_of_same_tenant() {
        let v2 = "https://login.microsoftonline.com/t1/v2.0";
        assert!(issuer_matches_key("https://sts.windows.net/t1/", v2));
        assert!(!issuer_matches_key("https://sts.windows.net/t2/", v2));
        assert!(issuer_matches_key(v2, v2));
        assert!(!issuer_matches_key(v2, "https://sts.windows.net/t1/"));
    }

    #[test]
    fn alg_names() {
        let p = BearerPolicy::new("i", "a");
        for (name, ok) in [
            ("RS256", true),
            ("none", false),
            ("None", false),
            ("HS256", false),
            ("RS384", false),
            ("rs256", false),
            ("", false),
        ] {
            assert_eq!(check_alg(name, &p).is_ok(), ok, "{name}");
        }
        let mut p = p;
        p.algorithms.push(Algorithm::HS256);
        assert_eq!(
            check_alg("HS256", &p).unwrap_err().code(),
            "jwt.alg_forbidden"
        );
    }

    #[test]
    fn xms_edov_false_drops_the_email_claim() {
        let c = |edov: &str| -> Claims {
            serde_json::from_str(&format!(
                r#"{{"email": "alice@contoso.example", "upn": "bob@fabrikam.example" {edov}}}"#
            ))
            .unwrap()
        };
        for (edov, kept) in [
            ("", true),
            (r#", "xms_edov": true"#, true),
            (r#", "xms_edov": "1""#, true),
            (r#", "xms_edov": null"#, true),
            (r#", "xms_edov": false"#, false),
            (r#", "xms_edov": "false""#, false),
            (r#", "xms_edov": 0"#, false),
            (r#", "xms_edov": "0""#, false),
        ] {
            let c = c(edov);
            assert_eq!(!edov_false(c.xms_edov.as_ref()), kept, "{edov}");
        }
    }

    #[test]
    fn numeric_dates() {
        let c: Claims = serde_json::from_str(r#"{"exp": 10.5, "nbf": 3, "iat": null}"#).unwrap();
        let exp = c.exp.unwrap();
        assert_eq!((exp.floor, exp.ceil()), (10, 11));
        assert_eq!(c.nbf.unwrap().ceil(), 3);
        assert!(c.iat.is_none());
        assert!(serde_json::from_str::<Claims>(r#"{"exp": "10"}"#).is_err());
        assert!(serde_json::from_str::<Claims>(r#"{"exp": 1e300}"#).is_err());
    }
}
