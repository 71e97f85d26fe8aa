//! `fedgate lint metadata`: the mistakes that make SSO fail, found before a
//! user does. Each finding has a stable code, a severity, the fix, and —
//! where Entra would fail the same way — the AADSTS error the admin would
//! otherwise see.

use serde::Serialize;
use time::OffsetDateTime;

use crate::consoles::{self, ConsoleKind};
use crate::trust::certs::TrustedCert;
use crate::xml::{self, NS_DS, NS_MD};

/// One finding.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub code: &'static str,
    /// `error`, `warning` or `info`.
    pub severity: &'static str,
    pub message: String,
    pub fix: String,
    /// The Entra error an admin would see for the same mistake.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aadsts: Option<&'static str>,
}

fn f(
    code: &'static str,
    severity: &'static str,
    message: String,
    fix: &str,
    aadsts: Option<&'static str>,
) -> Finding {
    Finding {
        code,
        severity,
        message,
        fix: fix.to_string(),
        aadsts,
    }
}

/// What the document is expected to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Idp,
    Sp,
}

pub struct Options<'a> {
    /// IdP or SP metadata; `None`: whichever descriptor the document has.
    pub role: Option<Role>,
    pub reply_url: Option<&'a str>,
    pub identifier: Option<&'a str>,
    pub profile: Option<ConsoleKind>,
    /// Certificates the document's own signature must verify with.
    pub trust: Vec<TrustedCert>,
    pub now: OffsetDateTime,
}

/// Lint a metadata document (and the given reply URL / identifier).
pub fn lint(bytes: &[u8], o: &Options) -> Vec<Finding> {
    let mut out = Vec::new();
    // URLs given on the command line are checked even without a document.
    url_checks(&mut out, o.reply_url, o.identifier, o.profile);
    if bytes.is_empty() {
        return out;
    }
    let text = match xml::utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            out.push(f(
                "lint.xml_malformed",
                "error",
                e.to_string(),
                "save the metadata as UTF-8 XML, exactly as downloaded",
                None,
            ));
            return out;
        }
    };
    let doc = match xml::parse(text) {
        Ok(d) => d,
        Err(e) => {
            out.push(f("lint.xml_malformed", "error", e.to_string(), "download the metadata again: it is not well-formed XML (or has a DOCTYPE, which fedgate refuses)", None));
            return out;
        }
    };
    let root = doc.root_element();
    let entity = if xml::is(&root, NS_MD, "EntityDescriptor") {
        Some(root)
    } else {
        root.children()
            .find(|c| xml::is(c, NS_MD, "EntityDescriptor"))
    };
    let Some(entity) = entity else {
        out.push(f(
            "lint.not_metadata",
            "error",
            "no md:EntityDescriptor: this is not SAML 2.0 metadata".into(),
            "use the federation metadata document (Entra: Federation Metadata XML)",
            None,
        ));
        return out;
    };
    let entity_id = entity.attribute("entityID").unwrap_or_default();
    if entity_id.trim().is_empty() {
        out.push(f(
            "lint.entity_id_missing",
            "error",
            "the EntityDescriptor has no entityID".into(),
            "the metadata must name its entity id",
            None,
        ));
    }

    // Its own signature.
    let sig = xml::children(entity, NS_DS, "Signature").next();
    match (sig, o.trust.is_empty()) {
        (None, true) => out.push(f("lint.unsigned", "info", "the document carries no signature of its own".into(), "fetch it over HTTPS from the IdP (a metadata URL), or compare its certificate thumbprints with the IdP's portal", None)),
        (None, false) => out.push(f("lint.unsigned", "error", "a trust anchor was given, but the document is not signed".into(), "use the signed metadata the IdP publishes", None)),
        (Some(_), true) => out.push(f("lint.signed_not_checked", "info", "the document is signed; pass --trust CERT to verify it".into(), "--trust the IdP's metadata signing certificate", None)),
        (Some(s), false) => {
            match xml::dsig::verify_enveloped(entity, s, &o.trust, &xml::dsig::Profile { allow_sha1: true, ..Default::default() }) {
                Ok(_) => out.push(f("lint.signature_valid", "info", "the document's signature verifies with the trust anchor".into(), "-", None)),
                Err(e) => out.push(f("lint.signature_invalid", "error", format!("the document's signature does not verify: {e}"), "the document was altered, or the trust anchor is not the IdP's signing certificate", None)),
            }
        }
    }

    let idp = xml::children(entity, NS_MD, "IDPSSODescriptor").next();
    let sp = xml::children(entity, NS_MD, "SPSSODescriptor").next();
    let role = o
        .role
        .unwrap_or(if idp.is_some() { Role::Idp } else { Role::Sp });
    match role {
        Role::Idp => {
            let Some(_) = idp else {
                out.push(f(
                    "lint.no_idp_descriptor",
                    "error",
                    "no IDPSSODescriptor: this is not an IdP's metadata".into(),
                    "for a console's metadata use --as sp",
                    None,
                ));
                return out;
            };
            match crate::trust::metadata::IdpMetadata::parse(bytes) {
                Err(e) => {
                    let code = if crate::identity::ErrorCode::code(&e) == "metadata.no_signing_cert"
                    {
                        "lint.no_signing_cert"
                    } else {
                        "lint.metadata_invalid"
                    };
                    out.push(f(code, "error", e.to_string(), "the IdP must publish its signing certificate (KeyDescriptor use=\"signing\"); fedgate never accepts unsigned logins", None));
                }
                Ok(md) => {
                    for c in &md.signing_certs {
                        cert_checks(&mut out, c, o.now);
                    }
                    let bindings: Vec<String> = md
                        .sso_endpoints
                        .iter()
                        .map(|e| {
                            format!(
                                "{} {}",
                                e.binding.rsplit(':').next().unwrap_or_default(),
                                e.location
                            )
                        })
                        .collect();
                    if !bindings.is_empty() {
                        out.push(f(
                            "lint.endpoints",
                            "info",
                            format!("SingleSignOnService: {}", bindings.join("; ")),
                            "-",
                            None,
                        ));
                    }
                    if !md.nameid_formats.is_empty() {
                        out.push(f(
                            "lint.nameid_formats",
                            "info",
                            format!("NameID formats: {}", md.nameid_formats.join(", ")),
                            "-",
                            None,
                        ));
                    }
                    if md.sso_endpoints.is_empty() {
                        out.push(f(
                            "lint.no_sso_endpoint",
                            "warning",
                            "no SingleSignOnService: only IdP-initiated logins are possible".into(),
                            "use the IdP's complete metadata",
                            None,
                        ));
                    }
                }
            }
        }
        Role::Sp => {
            let Some(sp) = sp else {
                out.push(f(
                    "lint.no_sp_descriptor",
                    "error",
                    "no SPSSODescriptor: this is not a service provider's metadata".into(),
                    "for an IdP's metadata use --as idp",
                    None,
                ));
                return out;
            };
            // The console's Identifier and Reply URLs, as Entra would take them.
            url_checks(&mut out, None, Some(entity_id), o.profile);
            let acs: Vec<&str> = xml::children(sp, NS_MD, "AssertionConsumerService")
                .filter_map(|a| a.attribute("Location"))
                .collect();
            if acs.is_empty() {
                out.push(f(
                    "lint.no_acs",
                    "error",
                    "no AssertionConsumerService: there is no Reply URL".into(),
                    "the console's metadata must name its ACS",
                    Some("AADSTS50011"),
                ));
            }
            for url in acs {
                url_checks(&mut out, Some(url), None, o.profile);
            }
            logout_checks(&mut out, sp, o.profile);
            for kd in xml::children(sp, NS_MD, "KeyDescriptor") {
                for cert in kd
                    .descendants()
                    .filter(|n| xml::is(n, NS_DS, "X509Certificate"))
                {
                    if let Ok(c) = TrustedCert::from_base64(&xml::text_content(cert)) {
                        cert_checks(&mut out, &c, o.now);
                    }
                }
            }
        }
    }
    out
}

/// A console's SingleLogoutService: what to set as its `logout_url`, or
/// that it has none although its profile says it does.
fn logout_checks(out: &mut Vec<Finding>, sp: xml::Node, profile: Option<ConsoleKind>) {
    let slo = xml::children(sp, NS_MD, "SingleLogoutService")
        .filter(|s| {
            matches!(
                s.attribute("Binding"),
                Some(crate::binding::BINDING_REDIRECT | crate::binding::BINDING_POST)
            )
        })
        .find_map(|s| Some((s.attribute("Location")?, s.attribute("Binding")?)));
    let pattern = profile.and_then(|k| consoles::profile(k).logout_url_pattern);
    match (slo, pattern) {
        (Some((url, binding)), _) => {
            let binding = if binding == crate::binding::BINDING_POST {
                "post"
            } else {
                "redirect"
            };
            out.push(f(
                "lint.logout_url",
                "info",
                format!("SingleLogoutService: {url} ({binding})"),
                &format!("set logout_url = \"{url}\" and logout_binding = \"{binding}\" for this console, so that signing out of fedgate signs the user out of it"),
                None,
            ));
            if let Some(p) = pattern {
                if let Err(e) = consoles::check_url(p, url) {
                    out.push(f(
                        "lint.logout_url_pattern",
                        "warning",
                        format!("logout URL: {} ({})", e.message, e.code),
                        &format!("the console's single logout URL looks like {p}"),
                        None,
                    ));
                }
            }
        }
        (None, Some(p)) => out.push(f(
            "lint.logout_url_missing",
            "warning",
            format!("the console has a single logout URL ({p}), and this metadata declares no SingleLogoutService"),
            "set the console's logout_url by hand (its SSO settings show it): without it, signing out of fedgate or Entra leaves the console's session open",
            None,
        )),
        (None, None) => {}
    }
}

fn cert_checks(out: &mut Vec<Finding>, c: &TrustedCert, now: OffsetDateTime) {
    let id = &c.thumbprint_sha256[..16];
    let days = c.days_left(now);
    if c.is_expired(now) {
        out.push(f("lint.cert_expired", "error", format!("certificate {id}… expired {} days ago", -days), "rotate it in the IdP (Entra: SAML Certificates → new certificate → make active), then refresh the metadata", None));
    } else if days < 30 {
        out.push(f(
            "lint.cert_expiring",
            "warning",
            format!("certificate {id}… expires in {days} days"),
            "add the next certificate now (docs/rotation.md)",
            None,
        ));
    }
    if matches!(c.key, crate::trust::certs::KeyKind::Rsa { bits } if bits < 2048) {
        out.push(f(
            "lint.key_too_small",
            "error",
            format!("certificate {id}… has a {}-bit RSA key", c.rsa_bits()),
            "use a 2048-bit (or larger) RSA key",
            None,
        ));
    }
    if c.signature_algorithm.to_ascii_lowercase().contains("sha1") {
        out.push(f(
            "lint.sha1_signature",
            "warning",
            format!("certificate {id}… is signed with {}", c.signature_algorithm),
            "reissue the certificate with SHA-256",
            None,
        ));
    }
}

fn url_checks(
    out: &mut Vec<Finding>,
    reply_url: Option<&str>,
    identifier: Option<&str>,
    profile: Option<ConsoleKind>,
) {
    let p = profile.map(consoles::profile);
    for (url, pattern, what, aadsts) in [
        (
            reply_url,
            p.and_then(|p| p.reply_url_pattern),
            "reply URL",
            "AADSTS50011",
        ),
        (
            identifier,
            p.and_then(|p| p.identifier_pattern),
            "identifier",
            "AADSTS700016",
        ),
    ] {
        let Some(url) = url else { continue };
        // The demo's and the tests' consoles: fine on this machine, never in
        // front of a real tenant.
        if url.starts_with("http://") && consoles::is_loopback_url(url) {
            out.push(f(
                "lint.loopback_http",
                "info",
                format!("{what}: {url}: loopback, test only"),
                "a real console's URL is https://",
                None,
            ));
            continue;
        }
        let result = match pattern {
            Some(pattern) => consoles::check_url(pattern, url),
            None if url.contains('<') || url.contains('>') => Err(consoles::ProfileFinding {
                code: "console.url_placeholder_left",
                message: format!("{url} still holds a placeholder"),
            }),
            None if what == "reply URL" && !url.starts_with("https://") => {
                Err(consoles::ProfileFinding {
                    code: "console.url_not_https",
                    message: format!("{url} must use https://"),
                })
            }
            None => Ok(()),
        };
        if let Err(e) = result {
            let (code, fix) = match e.code {
                "console.url_placeholder_left" => (
                    "lint.placeholder_left",
                    "replace <SUBDOMAIN> (or the like) with the console's real value",
                ),
                "console.url_not_https" => ("lint.not_https", "use the https:// URL"),
                "console.url_trailing_slash" => (
                    "lint.trailing_slash",
                    "remove the trailing slash: Entra compares the URL exactly",
                ),
                "console.url_case_mismatch" => {
                    ("lint.case_mismatch", "use the console's exact letter case")
                }
                _ => (
                    "lint.url_mismatch",
                    "copy the value from the console's SSO settings page",
                ),
            };
            let code = match (code, what) {
                ("lint.url_mismatch", "identifier") => "lint.identifier_mismatch",
                ("lint.url_mismatch", _) => "lint.reply_url_mismatch",
                (c, _) => c,
            };
            out.push(f(
                code,
                "error",
                format!("{what}: {}", e.message),
                fix,
                Some(aadsts),
            ));
        }
    }
}

/// The findings as text.
pub fn render(findings: &[Finding]) -> String {
    if findings.is_empty() {
        return "no findings\n".into();
    }
    let mut s = String::new();
    for x in findings {
        s.push_str(&format!(
            "{:<7} {:<26} {}\n        fix: {}{}\n",
            x.severity.to_uppercase(),
            x.code,
            x.message,
            x.fix,
            x.aadsts
                .map(|a| format!(" (Entra: {a})"))
                .unwrap_or_default()
        ));
    }
    s
}
