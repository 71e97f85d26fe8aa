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
}

#[cfg(test)]
mod tests {
    use super::*;

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
