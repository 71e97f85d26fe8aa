//! Login state bound to where it started: the tenant that sent the request
//! and the browser that asked for it.
//!
//! When fedgate starts a login (an SP-initiated AuthnRequest, an OIDC
//! authorization request), it keeps the state under a random key and sets a
//! random value in a cookie, the **browser binding** ([`BINDING_COOKIE`]).
//! The state records the tenant and the SHA-256 of the binding. The answer
//! (the SAML POST at the ACS, the OIDC callback) is checked against the
//! state *without consuming it*: wrong tenant (`saml.request_other_tenant`,
//! `oidc.state_other_tenant`), no or another browser's binding
//! (`saml.request_unbound`, `oidc.state_unbound`) are refused and the state
//! stays for the real answer. Only a response that verified (signature,
//! InResponseTo, nonce…) takes it, atomically, once.

use crate::util::random_id;

/// The browser-binding cookie. `HttpOnly`; `SameSite=None; Secure` when
/// fedgate is served over HTTPS, because Entra's SAML answer is a
/// cross-site POST (from login.microsoftonline.com) and `Lax` cookies are
/// not sent on cross-site POSTs; over plain HTTP (loopback only) `Lax`,
/// because browsers refuse `SameSite=None` without `Secure` (and on
/// loopback the IdP and fedgate are the same site).
pub const BINDING_COOKIE: &str = "fedgate_login";

/// The binding cookie's lifetime: that of the login state.
pub const BINDING_MAX_AGE_SECONDS: i64 = 600;

/// The browser's binding when it already has a well-formed one (so two
/// logins started in two tabs both stay answerable), else a new one.
pub fn binding_or_new(existing: Option<&str>) -> Option<String> {
    match existing {
        Some(b) if b.len() == 32 && b.bytes().all(|c| c.is_ascii_hexdigit()) => {
            Some(b.to_ascii_lowercase())
        }
        _ => random_id(),
    }
}

/// What the state keeps of a binding: its SHA-256 (hex).
pub fn binding_digest(binding: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, binding.as_bytes());
    crate::util::hex(d.as_ref())
}

/// Whether the browser's cookie is the binding recorded in the state
/// (constant time on the digests).
pub fn binding_matches(recorded_digest: &str, cookie: Option<&str>) -> bool {
    let Some(cookie) = cookie.filter(|c| !c.is_empty()) else {
        return false;
    };
    let got = binding_digest(&cookie.to_ascii_lowercase());
    !recorded_digest.is_empty()
        && aws_lc_rs::constant_time::verify_slices_are_equal(
            got.as_bytes(),
            recorded_digest.as_bytes(),
        )
        .is_ok()
}

/// How a login is started.
#[derive(Debug, Default, Clone, Copy)]
pub struct LoginStart<'a> {
    pub login_hint: Option<&'a str>,
    /// The browser's binding cookie, if it sent one.
    pub binding: Option<&'a str>,
    /// Ask the tenant for a fresh sign-in even if the user has a session
    /// there (SAML `ForceAuthn="true"`, OIDC `prompt=login`).
    pub force_authn: bool,
    /// Ask the tenant for a multi-factor sign-in (SAML:
    /// `RequestedAuthnContext` with Entra's `multipleauthn` class; an OIDC
    /// sign-in is forced fresh, and the tenant's Conditional Access decides).
    pub require_mfa: bool,
}

/// How long login state lives (the AuthnRequest, the OIDC state, a pending
/// authorization request): the window [`PendingBudget`] counts in.
pub const PENDING_WINDOW: time::Duration = time::Duration::minutes(10);

/// Login starts per configured tenant (or OpenID provider client) within
/// [`PENDING_WINDOW`]: the cap on login state that no one has authenticated
/// for yet, whatever the number of client addresses it comes from. Counted
/// per fedgate instance over a sliding window (the previous window's count
/// weighted by how much of it still overlaps), so the pending state of one
/// id stays below about twice the limit. Only configured ids have a counter:
/// the map never grows after start-up.
pub struct PendingBudget {
    limit: u32,
    counters: std::collections::HashMap<String, std::sync::Mutex<Window>>,
}

#[derive(Clone, Copy)]
struct Window {
    start: time::OffsetDateTime,
    current: u32,
    previous: u32,
    /// Starts refused in this window.
    refused: u32,
}

/// A login start [`PendingBudget::take`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverBudget {
    /// Seconds until the window moves on (`Retry-After`).
    pub retry_after: u64,
    /// Whether it is the first refusal for this id in this window (the
    /// one worth a warning in the log; the rest are counted only).
    pub first: bool,
}

impl PendingBudget {
    pub fn new<'a>(limit: u32, ids: impl IntoIterator<Item = &'a str>) -> PendingBudget {
        let start = time::OffsetDateTime::UNIX_EPOCH;
        PendingBudget {
            limit: limit.max(1),
            counters: ids
                .into_iter()
                .map(|id| {
                    let w = Window {
                        start,
                        current: 0,
                        previous: 0,
                        refused: 0,
                    };
                    (id.to_string(), std::sync::Mutex::new(w))
                })
                .collect(),
        }
    }

    /// Count one start for `id` at `now`, or refuse with the seconds until
    /// the window moves on. An id with no counter (not configured: the
    /// request is refused elsewhere) is not limited here.
    pub fn take(&self, id: &str, now: time::OffsetDateTime) -> Result<(), OverBudget> {
        let Some(counter) = self.counters.get(id) else {
            return Ok(());
        };
        let Ok(mut w) = counter.lock() else {
            // A poisoned counter: fail closed.
            return Err(OverBudget {
                retry_after: 60,
                first: false,
            });
        };
        let elapsed = now - w.start;
        if elapsed >= PENDING_WINDOW * 2 || elapsed < time::Duration::ZERO {
            *w = Window {
                start: now,
                current: 0,
                previous: 0,
                refused: 0,
            };
        } else if elapsed >= PENDING_WINDOW {
            *w = Window {
                start: w.start + PENDING_WINDOW,
                current: 0,
                previous: w.current,
                refused: 0,
            };
        }
        let into = (now - w.start).as_seconds_f64() / PENDING_WINDOW.as_seconds_f64();
        let estimate = f64::from(w.previous) * (1.0 - into) + f64::from(w.current);
        if estimate >= f64::from(self.limit) {
            let left = (w.start + PENDING_WINDOW - now).whole_seconds();
            w.refused = w.refused.saturating_add(1);
            return Err(OverBudget {
                retry_after: u64::try_from(left).unwrap_or(0).clamp(1, 600),
                first: w.refused == 1,
            });
        }
        w.current += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_login_state_is_capped_per_id_over_a_sliding_window() {
        let t0 = time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let b = PendingBudget::new(100, ["contoso", "fabrikam"]);
        for _ in 0..100 {
            assert!(b.take("contoso", t0).is_ok());
        }
        let wait = b.take("contoso", t0).unwrap_err();
        assert_eq!(wait.retry_after, 600, "the whole window is ahead");
        assert!(wait.first, "the first refusal is the one logged");
        assert!(!b.take("contoso", t0).unwrap_err().first);
        // Another tenant has its own budget; an unconfigured id is not counted here.
        assert!(b.take("fabrikam", t0).is_ok());
        assert!(b.take("unknown", t0).is_ok());
        // Half-way into the next window the previous one counts half: 50 more.
        let t1 = t0 + PENDING_WINDOW + PENDING_WINDOW / 2;
        for _ in 0..50 {
            assert!(b.take("contoso", t1).is_ok());
        }
        assert!(b.take("contoso", t1).is_err());
        // Two quiet windows later it starts over.
        let t2 = t0 + PENDING_WINDOW * 4;
        assert!(b.take("contoso", t2).is_ok());
        // Over any ten minutes, no more than twice the limit got through.
        let b = PendingBudget::new(100, ["contoso"]);
        let mut taken = Vec::new();
        for s in 0..3600 {
            let t = t0 + time::Duration::seconds(s);
            for _ in 0..5 {
                if b.take("contoso", t).is_ok() {
                    taken.push(s);
                }
            }
        }
        for start in 0..3000 {
            let n = taken
                .iter()
                .filter(|&&s| s >= start && s < start + 600)
                .count();
            assert!(n <= 200, "{n} starts in the 10 minutes from {start}s");
        }
    }

    #[test]
    fn a_binding_matches_only_its_own_cookie() {
        let b = binding_or_new(None).unwrap();
        assert_eq!(binding_or_new(Some(&b)).as_deref(), Some(b.as_str()));
        assert_ne!(binding_or_new(Some("short")).as_deref(), Some("short"));
        let d = binding_digest(&b);
        assert!(binding_matches(&d, Some(&b)));
        assert!(!binding_matches(&d, None));
        assert!(!binding_matches(&d, Some("")));
        assert!(!binding_matches(&d, Some(&binding_or_new(None).unwrap())));
        assert!(!binding_matches("", Some(&b)));
    }
}
