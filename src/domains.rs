//! Identity bound to its tenant: the domains a tenant owns, and the one
//! e-mail-like value (UPN, else mail) fedgate may hand to a console.
//!
//! Every claim a tenant sends is chosen by that tenant's administrator, and
//! Entra does not verify `mail`: a fabrikam admin can give a fabrikam user
//! `mail = alice@contoso.example`. A console shared by contoso and fabrikam
//! that matches users by e-mail would then sign that user in as Alice
//! ("nOAuth"). So an e-mail or UPN is used as a console identity (SAML
//! NameID of format email or UPN, the `email` attribute, the OpenID
//! provider's `email` / `preferred_username`, the console token's `upn`)
//! only when its domain is one the user's tenant declares in
//! `[[tenants]] domains` — Entra's verified domains of that tenant. Matching
//! is exact (ASCII case-insensitive, one trailing dot ignored): a subdomain
//! is owned only when it is listed itself.
//!
//! The UPN is preferred over `mail`: Entra only accepts a UPN whose suffix
//! is a verified domain of the tenant, while `mail` is free text.
//!
//! Pure functions, no I/O: the gateway and the OpenID provider call them.

use crate::identity::{ErrorCode, Identity};

/// Why an e-mail-like value cannot be used as a console identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// The value's domain is not one of the tenant's `domains`.
    #[error("the {claim} {address:?} is in domain {domain:?}, which tenant {tenant:?} does not own (its domains: {owned}); a tenant's users are only delivered under the domains it declares: if {domain} is a verified domain of this tenant in Entra, add it to [[tenants]] domains")]
    NotOwned {
        tenant: String,
        claim: &'static str,
        address: String,
        domain: String,
        owned: String,
    },
    /// The tenant declares no domains at all: fail closed.
    #[error("tenant {tenant:?} declares no domains, so no e-mail or UPN of its users is delivered to a console (here the {claim} {address:?}): declare domains = [...] in its [[tenants]] block (Entra admin center → Settings → Domain names), or deliver the object id (nameid = \"object_id\")")]
    NoDomains {
        tenant: String,
        claim: &'static str,
        address: String,
    },
    /// The value is not `local@domain` (no `@`, several, or an empty part).
    #[error("the {claim} {address:?} of a user of tenant {tenant:?} is not an address of the form user@domain, so its domain cannot be checked")]
    Malformed {
        tenant: String,
        claim: &'static str,
        address: String,
    },
}

impl ErrorCode for DomainError {
    fn code(&self) -> &'static str {
        // One code for all: the message says which case it is.
        "identity.domain_not_owned"
    }
}

/// Normalise a configured domain: trimmed, ASCII lower case, one trailing
/// dot dropped. Refused: empty, wildcards, `@`, non-ASCII (write the
/// punycode `xn--` form), empty labels, characters outside letters, digits,
/// `-` and `.`.
pub fn normalize_domain(raw: &str) -> Result<String, String> {
    let d = raw.trim();
    let d = d.strip_suffix('.').unwrap_or(d).to_ascii_lowercase();
    if d.is_empty() {
        return Err("an empty domain".into());
    }
    if d.contains('*') {
        return Err(format!(
            "{raw:?}: wildcards are not supported; list each domain (and each subdomain) the tenant owns"
        ));
    }
    if d.contains('@') {
        return Err(format!(
            "{raw:?} is an address; give the domain only (contoso.com)"
        ));
    }
    if !d.is_ascii() {
        return Err(format!(
            "{raw:?}: write an internationalised domain in its punycode (xn--) form"
        ));
    }
    if d.split('.').any(str::is_empty) {
        return Err(format!("{raw:?} has an empty label"));
    }
    if !d
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err(format!(
            "{raw:?}: a domain has letters, digits, '-' and '.' only"
        ));
    }
    Ok(d)
}

/// The domain of `local@domain`, normalised (ASCII lower case, one trailing
/// dot dropped); `None` unless there is exactly one `@` with text on both
/// sides.
pub fn domain_of(address: &str) -> Option<String> {
    let (local, domain) = address.split_once('@')?;
    if local.is_empty() || domain.contains('@') {
        return None;
    }
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    if domain.is_empty() || domain.split('.').any(str::is_empty) {
        return None;
    }
    Some(domain.to_ascii_lowercase())
}

/// Whether `owned` (normalised, as the configuration keeps them) holds
/// `address`'s domain, exactly.
pub fn owns(owned: &[String], address: &str) -> bool {
    domain_of(address).is_some_and(|d| owned.contains(&d))
}

/// Check one e-mail-like value (`source` names it in the message: "UPN",
/// "mail") against the tenant's domains.
pub fn check(
    tenant: &str,
    owned: &[String],
    source: &'static str,
    address: &str,
) -> Result<(), DomainError> {
    if owned.is_empty() {
        return Err(DomainError::NoDomains {
            tenant: tenant.into(),
            claim: source,
            address: address.into(),
        });
    }
    let Some(domain) = domain_of(address) else {
        return Err(DomainError::Malformed {
            tenant: tenant.into(),
            claim: source,
            address: address.into(),
        });
    };
    if owned.contains(&domain) {
        return Ok(());
    }
    Err(DomainError::NotOwned {
        tenant: tenant.into(),
        claim: source,
        address: address.into(),
        domain,
        owned: owned.join(", "),
    })
}

/// The e-mail-like console identity of `identity`: its UPN when it has one,
/// else its mail; `Ok(None)` when it has neither. Refused when that value's
/// domain is not owned by the tenant (no fallback to the other value: the
/// UPN is the one Entra checks, and a UPN outside the tenant's domains means
/// the claims were remapped or the configuration is incomplete).
pub fn console_address(
    identity: &Identity,
    tenant: &str,
    owned: &[String],
) -> Result<Option<String>, DomainError> {
    let (source, value) = match (&identity.upn, &identity.email) {
        (Some(u), _) => ("UPN", u),
        (None, Some(m)) => ("mail", m),
        (None, None) => return Ok(None),
    };
    check(tenant, owned, source, value)?;
    Ok(Some(value.clone()))
}

/// The UPN alone (NameID format UPN), checked likewise; `Ok(None)` without one.
pub fn console_upn(
    identity: &Identity,
    tenant: &str,
    owned: &[String],
) -> Result<Option<String>, DomainError> {
    match &identity.upn {
        Some(u) => check(tenant, owned, "UPN", u).map(|()| Some(u.clone())),
        None => Ok(None),
    }
}

/// Two tenants of different Entra directories that claim the same domain:
/// `(domain, first tenant, second tenant)` for the first such pair.
/// Entries of the same Entra tenant (same `entra_tenant_id`) may share
/// domains: it is one directory that owns them.
pub fn first_conflict<'a>(
    tenants: impl IntoIterator<Item = (&'a str, &'a str, &'a [String])>,
) -> Option<(String, String, String)> {
    let mut seen: std::collections::HashMap<&str, (&str, &str)> = Default::default();
    for (id, entra, domains) in tenants {
        for d in domains {
            match seen.get(d.as_str()) {
                Some((other, other_entra)) if !other_entra.eq_ignore_ascii_case(entra) => {
                    return Some((d.clone(), other.to_string(), id.to_string()));
                }
                Some(_) => {}
                None => {
                    seen.insert(d, (id, entra));
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned() -> Vec<String> {
        vec!["contoso.example".into(), "contoso.onmicrosoft.com".into()]
    }

    #[test]
    fn the_domain_of_an_address_is_exact_case_insensitive_and_ignores_one_trailing_dot() {
        assert_eq!(
            domain_of("Alice@Contoso.EXAMPLE").as_deref(),
            Some("contoso.example")
        );
        assert_eq!(
            domain_of("alice@contoso.example.").as_deref(),
            Some("contoso.example")
        );
        assert!(owns(&owned(), "ALICE@CONTOSO.EXAMPLE"));
        assert!(owns(&owned(), "alice@contoso.example."));
        assert!(owns(&owned(), "x_y#EXT#@contoso.onmicrosoft.com"));
        // Subdomains, parents and look-alikes are other domains.
        assert!(!owns(&owned(), "alice@eu.contoso.example"));
        assert!(!owns(&owned(), "alice@example"));
        assert!(!owns(&owned(), "alice@contoso.example.evil"));
        assert!(!owns(&owned(), "alice@evilcontoso.example"));
        assert!(!owns(&owned(), "alice@contoso.example.."));
    }

    #[test]
    fn odd_addresses_have_no_domain_and_never_panic() {
        for odd in [
            "",
            "@",
            "alice",
            "alice@",
            "@contoso.example",
            "alice@contoso.example@fabrikam.example",
            "a@b@c",
            "alice@.",
            "alice@..",
            "alice@.contoso.example",
            "alice@contoso..example",
            "älice@ßtraße.de\u{0}",
            "alice@contoso.example\u{301}",
            "\u{feff}@\u{feff}",
        ] {
            let _ = domain_of(odd);
            assert!(!owns(&owned(), odd), "{odd:?}");
        }
        // Every short combination of awkward pieces: no panic, and a match
        // only for exactly one '@' followed by an owned domain.
        let parts = [
            "",
            "@",
            ".",
            "a",
            "é",
            "\u{0}",
            " ",
            "contoso.example",
            "CONTOSO.EXAMPLE.",
        ];
        for a in parts {
            for b in parts {
                for c in parts {
                    let s = format!("{a}{b}{c}");
                    let hit = owns(&owned(), &s);
                    let expect = s.matches('@').count() == 1
                        && s.split_once('@').is_some_and(|(l, d)| {
                            !l.is_empty()
                                && ["contoso.example", "contoso.example."]
                                    .contains(&d.to_ascii_lowercase().as_str())
                        });
                    assert_eq!(hit, expect, "{s:?}");
                    let _ = normalize_domain(&s);
                }
            }
        }
        assert_eq!(domain_of("a@b@c"), None);
        assert_eq!(domain_of("alice"), None);
        assert_eq!(domain_of("alice@"), None);
        assert_eq!(domain_of("@contoso.example"), None);
        // Non-ASCII domains never match an (ASCII-only) configured one.
        assert_eq!(
            domain_of("a@ÇONTOSO.example").as_deref(),
            Some("Çontoso.example")
        );
    }

    #[test]
    fn configured_domains_are_normalised_or_refused() {
        assert_eq!(normalize_domain(" Contoso.COM. ").unwrap(), "contoso.com");
        assert_eq!(
            normalize_domain("xn--bcher-kva.example").unwrap(),
            "xn--bcher-kva.example"
        );
        for bad in [
            "",
            " ",
            ".",
            "*.contoso.com",
            "*",
            "alice@contoso.com",
            "bücher.example",
            "contoso..com",
            ".contoso.com",
            "contoso com",
            "contoso.com/x",
        ] {
            assert!(normalize_domain(bad).is_err(), "{bad:?}");
        }
    }

    fn id(upn: Option<&str>, mail: Option<&str>) -> Identity {
        serde_json::from_value(serde_json::json!({
            "subject": "s", "issuer": "i", "tenant_id": "t", "object_id": "o",
            "kind": "user", "source": "saml", "upn": upn, "email": mail,
            "display_name": null, "groups": [], "groups_overage": false,
            "roles": [], "auth_methods": [], "mfa": false, "auth_time": null,
            "expires_at": "2030-01-01T00:00:00Z", "token_id": null,
            "verification": {"signed": [], "algorithm": "", "key": ""}
        }))
        .unwrap()
    }

    #[test]
    fn the_upn_is_preferred_and_must_be_owned() {
        let o = owned();
        // UPN owned, mail foreign: the UPN is the console identity, the mail never is.
        let i = id(Some("bob@contoso.example"), Some("alice@fabrikam.example"));
        assert_eq!(
            console_address(&i, "contoso", &o).unwrap().as_deref(),
            Some("bob@contoso.example")
        );
        // Only a mail, foreign: refused, naming the tenant and the domain.
        let i = id(None, Some("alice@fabrikam.example"));
        let e = console_address(&i, "contoso", &o).unwrap_err();
        assert_eq!(e.code(), "identity.domain_not_owned");
        let m = e.to_string();
        assert!(
            m.contains("\"contoso\"") && m.contains("\"fabrikam.example\""),
            "{m}"
        );
        // A foreign UPN is refused even when the mail would be owned.
        let i = id(
            Some("alice@fabrikam.example"),
            Some("alice@contoso.example"),
        );
        assert!(console_address(&i, "contoso", &o).is_err());
        assert!(console_upn(&i, "contoso", &o).is_err());
        // No domains declared: fail closed, with the hint.
        let i = id(Some("bob@contoso.example"), None);
        let e = console_address(&i, "contoso", &[]).unwrap_err();
        assert_eq!(e.code(), "identity.domain_not_owned");
        assert!(e.to_string().contains("declare domains"), "{e}");
        // Malformed: refused.
        let i = id(Some("bob"), None);
        assert!(matches!(
            console_address(&i, "contoso", &o),
            Err(DomainError::Malformed { .. })
        ));
        // Neither: nothing to deliver, nothing refused.
        assert_eq!(console_address(&id(None, None), "contoso", &o), Ok(None));
    }

    #[test]
    fn two_directories_claiming_one_domain_conflict() {
        let a = ["contoso.example".to_string()];
        let b = [
            "fabrikam.example".to_string(),
            "contoso.example".to_string(),
        ];
        let c = first_conflict([("contoso", "tid-a", &a[..]), ("fabrikam", "tid-b", &b[..])]);
        assert_eq!(
            c,
            Some((
                "contoso.example".into(),
                "contoso".into(),
                "fabrikam".into()
            ))
        );
        // The same Entra tenant under two fedgate ids: one owner.
        assert_eq!(
            first_conflict([
                ("contoso", "TID-A", &a[..]),
                ("contoso-oidc", "tid-a", &a[..])
            ]),
            None
        );
    }
}
