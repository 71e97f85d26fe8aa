//! Console profiles, as data: the role vocabulary, the URL patterns, how the
//! user is matched (NameID), which attributes carry roles and scope. One
//! file per console family; the configuration can extend a role list when a
//! real console has more (`extra_roles`).

mod acronis;
mod autotask;
mod autotask_psa;
mod commvault;
mod generic;

use serde::{Deserialize, Serialize};

/// The console families fedgate knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsoleKind {
    /// Autotask Endpoint Backup (Datto): IdP-initiated SAML.
    Autotask,
    /// Autotask PSA and the Datto partner portal: OIDC.
    #[serde(rename = "autotask_psa")]
    AutotaskPsa,
    Acronis,
    Commvault,
    Generic,
}

impl ConsoleKind {
    pub const ALL: [ConsoleKind; 5] = [
        ConsoleKind::Autotask,
        ConsoleKind::AutotaskPsa,
        ConsoleKind::Acronis,
        ConsoleKind::Commvault,
        ConsoleKind::Generic,
    ];
}

/// Which Identity value the console receives as NameID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NameIdSource {
    Email,
    Upn,
    ObjectId,
}

/// What fedgate signs in the SAML Response it posts to a console
/// (`[[consoles]] sign`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignWhat {
    /// The Assertion only (enveloped signature inside it): the default.
    #[default]
    Assertion,
    /// The Response only (the Assertion is covered by it): what pysaml2's
    /// `want_response_signed` and node-saml's `wantAuthnResponseSigned`
    /// ask for by default.
    Response,
    /// Both: the Assertion, then the Response around it (two signatures).
    Both,
}

/// The signature algorithm of the SAML signatures fedgate makes for a
/// console (`[[consoles]] signature_algorithm`; default: the signing key's
/// own, RSA-SHA256 or ECDSA-SHA256). The digest follows (SHA-256/384/512).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum SignatureAlgorithm {
    #[serde(
        rename = "rsa-sha256",
        alias = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    )]
    RsaSha256,
    #[serde(
        rename = "rsa-sha384",
        alias = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
    )]
    RsaSha384,
    #[serde(
        rename = "rsa-sha512",
        alias = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
    )]
    RsaSha512,
}

impl SignatureAlgorithm {
    pub fn sig_alg(self) -> crate::trust::certs::SigAlg {
        use crate::trust::certs::SigAlg;
        match self {
            SignatureAlgorithm::RsaSha256 => SigAlg::RsaSha256,
            SignatureAlgorithm::RsaSha384 => SigAlg::RsaSha384,
            SignatureAlgorithm::RsaSha512 => SigAlg::RsaSha512,
        }
    }
}

/// The NameID `Format` fedgate states for a console
/// (`[[consoles]] nameid_format`; default: the one that goes with `nameid`:
/// emailAddress for email, unspecified for upn, persistent for object_id).
/// The SAML URIs are accepted as they are written in consoles' docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum NameIdFormat {
    #[serde(
        rename = "email_address",
        alias = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
    )]
    EmailAddress,
    #[serde(
        rename = "unspecified",
        alias = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
    )]
    Unspecified,
    #[serde(
        rename = "persistent",
        alias = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
    )]
    Persistent,
}

impl NameIdFormat {
    pub fn uri(self) -> &'static str {
        match self {
            NameIdFormat::EmailAddress => "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
            NameIdFormat::Unspecified => "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
            NameIdFormat::Persistent => "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
        }
    }
}

/// What fedgate knows about a console family, from the console's public
/// documentation (`docs/consoles.md` says where, and where it guesses).
/// Patterns hold placeholders: `<HOST>` a host name (with a port, if any),
/// `<…ID>` one token (letters, digits, `.`, `_`, `-`), anything else
/// (`<SUBDOMAIN>`) one DNS label.
#[derive(Debug)]
pub struct Profile {
    pub kind: ConsoleKind,
    pub label: &'static str,
    /// The role vocabulary; empty means any role (generic).
    pub roles: &'static [&'static str],
    /// How the console signs in: SAML (fedgate its IdP), OIDC (fedgate its
    /// OpenID provider), bearer tokens on its API (the token exchange).
    pub saml: bool,
    pub oidc: bool,
    pub api_tokens: bool,
    /// SAML: the console takes unsolicited (IdP-initiated) Responses, and
    /// it starts logins itself with AuthnRequests (SP-initiated).
    pub idp_initiated: bool,
    pub sp_initiated: bool,
    /// Its AuthnRequests are signed (give fedgate `certificate_file`).
    pub signs_authn_requests: bool,
    /// The console's SAML entity id.
    pub identifier_pattern: Option<&'static str>,
    /// The console's ACS URL.
    pub reply_url_pattern: Option<&'static str>,
    /// The console's SAML single logout URL.
    pub logout_url_pattern: Option<&'static str>,
    /// OIDC: the redirect URI the console registers.
    pub oidc_redirect_pattern: Option<&'static str>,
    /// OIDC: the ID-token algorithms it accepts (empty: any fedgate makes).
    pub id_token_algs: &'static [&'static str],
    /// OIDC: the scopes it asks for.
    pub oidc_scopes: &'static str,
    pub default_nameid: NameIdSource,
    /// The SAML attribute that carries the granted roles.
    pub role_attribute: &'static str,
    /// The SAML attribute that carries the scopes of the grants.
    pub scope_attribute: &'static str,
    /// The console does not provision users: they must exist already.
    pub users_must_exist: bool,
    /// Every grant needs a scope (customer, unit, tenant).
    pub scoped_roles: bool,
    /// Whether the console accepts ECDSA-signed assertions. Public docs of
    /// the commercial consoles only promise RSA-SHA256, so only `generic`
    /// says yes; fedgate refuses to start with an EC key for the others.
    pub accepts_ecdsa: bool,
    pub notes: &'static str,
}

/// The profile of a console family.
pub fn profile(kind: ConsoleKind) -> &'static Profile {
    match kind {
        ConsoleKind::Autotask => &autotask::PROFILE,
        ConsoleKind::AutotaskPsa => &autotask_psa::PROFILE,
        ConsoleKind::Acronis => &acronis::PROFILE,
        ConsoleKind::Commvault => &commvault::PROFILE,
        ConsoleKind::Generic => &generic::PROFILE,
    }
}

/// Whether `role` exists on a console of this kind (or in its extra roles).
pub fn check_role(kind: ConsoleKind, extra_roles: &[String], role: &str) -> bool {
    let p = profile(kind);
    p.roles.is_empty() || p.roles.contains(&role) || extra_roles.iter().any(|r| r == role)
}

/// A problem with a configured URL, with the fix in the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileFinding {
    pub code: &'static str,
    pub message: String,
}

/// Check a configured URL (or URN) against a profile pattern (placeholders
/// as [`Profile`] says); everything else must be equal.
pub fn check_url(pattern: &str, url: &str) -> Result<(), ProfileFinding> {
    let finding = |code, message: String| Err(ProfileFinding { code, message });
    if url.contains('<') || url.contains('>') {
        return finding(
            "console.url_placeholder_left",
            format!("{url} still holds a placeholder: put the console's real value in its place"),
        );
    }
    if pattern.starts_with("https://") && !url.starts_with("https://") {
        return finding("console.url_not_https", format!("{url} must use https://"));
    }
    if matches_pattern(pattern, url) {
        return Ok(());
    }
    if let Some(trimmed) = url.strip_suffix('/') {
        if matches_pattern(pattern, trimmed) {
            return finding(
                "console.url_trailing_slash",
                format!("{url} has a trailing slash the console does not use (expected {pattern})"),
            );
        }
    }
    if matches_pattern(&pattern.to_ascii_lowercase(), &url.to_ascii_lowercase()) {
        return finding(
            "console.url_case_mismatch",
            format!("{url} differs from {pattern} only in letter case; the path is case-sensitive"),
        );
    }
    finding(
        "console.url_pattern_mismatch",
        format!("{url} does not have the form {pattern}"),
    )
}

fn matches_pattern(pattern: &str, url: &str) -> bool {
    let mut rest = url;
    let mut parts = pattern.split('<').peekable();
    let Some(first) = parts.next() else {
        return false;
    };
    let Some(r) = rest.strip_prefix(first) else {
        return false;
    };
    rest = r;
    for part in parts {
        let Some((name, literal)) = part.split_once('>') else {
            return false;
        };
        // `<HOST>`: a host name and port, up to the next '/'; `<…ID>`: a
        // token up to the next '/' or ':'; else one DNS label, up to the
        // next '.', '/' or end.
        let (stops, extra): (&[char], &[u8]) = if name == "HOST" {
            (&['/'], b"-.:")
        } else if name.ends_with("ID") {
            (&['/', ':'], b"-._")
        } else {
            (&['.', '/'], b"-")
        };
        let end = rest.find(stops).unwrap_or(rest.len());
        let label = &rest[..end];
        if label.is_empty()
            || label.starts_with(['.', '-', ':'])
            || !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
        {
            return false;
        }
        let Some(r) = rest[end..].strip_prefix(literal) else {
            return false;
        };
        rest = r;
    }
    rest.is_empty()
}

/// The host of an absolute URL (without port, brackets kept off IPv6).
pub fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("");
    }
    authority.split(':').next().unwrap_or("")
}

/// Whether a URL's host is this machine (`localhost`, 127.0.0.0/8, `::1`).
pub fn is_loopback_url(url: &str) -> bool {
    let host = url_host(url);
    host.eq_ignore_ascii_case("localhost")
        || host.to_ascii_lowercase().ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "https://<SUBDOMAIN>.backup.autotask.net/singlesignon/saml/metadata";

    fn code(url: &str) -> &'static str {
        check_url(ID, url).err().map(|f| f.code).unwrap_or("ok")
    }

    #[test]
    fn autotask_identifier_pattern() {
        assert_eq!(
            code("https://contoso.backup.autotask.net/singlesignon/saml/metadata"),
            "ok"
        );
        assert_eq!(
            code("http://contoso.backup.autotask.net/singlesignon/saml/metadata"),
            "console.url_not_https"
        );
        assert_eq!(
            code("https://contoso.backup.autotask.net/singlesignon/saml/metadata/"),
            "console.url_trailing_slash"
        );
        assert_eq!(
            code("https://contoso.backup.autotask.net/SingleSignOn/saml/metadata"),
            "console.url_case_mismatch"
        );
        assert_eq!(
            code("https://<SUBDOMAIN>.backup.autotask.net/singlesignon/saml/metadata"),
            "console.url_placeholder_left"
        );
        assert_eq!(
            code("https://contoso.backup.example.net/singlesignon/saml/metadata"),
            "console.url_pattern_mismatch"
        );
        assert_eq!(
            code("https://a.b.backup.autotask.net/singlesignon/saml/metadata"),
            "console.url_pattern_mismatch"
        );
    }

    #[test]
    fn algorithms_and_nameid_formats_are_named_short_or_by_their_saml_uris() {
        #[derive(serde::Deserialize)]
        struct C {
            a: SignatureAlgorithm,
            f: NameIdFormat,
        }
        let short: C = toml::from_str("a = \"rsa-sha512\"\nf = \"unspecified\"").unwrap();
        let uris: C = toml::from_str(
            "a = \"http://www.w3.org/2001/04/xmldsig-more#rsa-sha512\"\nf = \"urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified\"",
        )
        .unwrap();
        assert_eq!((short.a, short.f), (uris.a, uris.f));
        assert_eq!(short.a.sig_alg(), crate::trust::certs::SigAlg::RsaSha512);
        assert!(toml::from_str::<C>("a = \"rsa-sha1\"\nf = \"unspecified\"").is_err());
        assert!(toml::from_str::<C>(
            "a = \"rsa-sha256\"\nf = \"urn:oasis:names:tc:SAML:2.0:nameid-format:transient\""
        )
        .is_err());
    }

    #[test]
    fn an_ec_key_makes_no_rsa_signature() {
        let ec = crate::trust::signing::SigningKey::from_pem(
            include_str!("../../tests/data/fedgate_ec_key.pem"),
            include_str!("../../tests/data/fedgate_ec_cert.pem"),
        )
        .unwrap();
        assert!(matches!(
            ec.sign_as(crate::trust::certs::SigAlg::RsaSha512, b"m"),
            Err(crate::trust::signing::SigningError::AlgorithmUnsupported(_))
        ));
    }

    #[test]
    fn host_and_id_placeholders_take_what_their_names_say() {
        let cv = |url: &str| {
            check_url("https://<HOST>/webconsole", url)
                .err()
                .map(|f| f.code)
        };
        assert_eq!(cv("https://commcell.contoso.com/webconsole"), None);
        assert_eq!(cv("https://m042.metallic.io:443/webconsole"), None);
        assert_eq!(
            cv("https://commcell.contoso.com/webconsole/"),
            Some("console.url_trailing_slash")
        );
        assert_eq!(
            cv("https://commcell.contoso.com/other/webconsole"),
            Some("console.url_pattern_mismatch")
        );
        let acronis = |id: &str| {
            check_url("urn:cyber:protect:saml:<YOUR_ID>", id)
                .err()
                .map(|f| f.code)
        };
        assert_eq!(
            acronis("urn:cyber:protect:saml:4f2a-91_c.7"),
            None,
            "a URN, not https"
        );
        assert_eq!(
            acronis("urn:cyber:protect:saml:a/b"),
            Some("console.url_pattern_mismatch")
        );
        assert_eq!(
            acronis("urn:cyber:protect:saml:"),
            Some("console.url_pattern_mismatch")
        );
        assert_eq!(
            acronis("urn:cyber:protect:saml:<YOUR_ID>"),
            Some("console.url_placeholder_left")
        );
    }

    #[test]
    fn every_profile_says_how_the_console_signs_in() {
        for kind in ConsoleKind::ALL {
            let p = profile(kind);
            assert_eq!(p.kind, kind);
            assert!(p.saml || p.oidc || p.api_tokens, "{kind:?}");
            assert!(!p.saml || p.idp_initiated || p.sp_initiated, "{kind:?}");
            assert!(!p.signs_authn_requests || p.sp_initiated, "{kind:?}");
        }
    }

    #[test]
    fn roles_come_from_the_vocabulary_or_the_config() {
        assert!(check_role(ConsoleKind::Autotask, &[], "Administrator"));
        assert!(!check_role(ConsoleKind::Autotask, &[], "Backup Operator"));
        assert!(check_role(
            ConsoleKind::Autotask,
            &["Backup Operator".into()],
            "Backup Operator"
        ));
        assert!(check_role(ConsoleKind::Generic, &[], "anything"));
        assert!(check_role(ConsoleKind::Acronis, &[], "company_admin"));
    }
}
