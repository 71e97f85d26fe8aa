//! `fedgate check --config FILE`: what would break, before a user finds out.
//!
//! Loads the configuration as `serve` would (every configuration error is
//! a finding), builds the runtime, fetches every metadata URL and OIDC
//! discovery document now (unless `--offline`), and reports:
//!
//! - credentials: every certificate fedgate trusts or uses and every client
//!   secret — expired (error), expiring within 30 days (warning), a client
//!   secret with no `secret_expires` date (error: nobody would see it coming);
//! - trust: metadata URLs and discovery documents that cannot be fetched
//!   (error without a last-known-good copy or with one the IdP has not
//!   confirmed for over a week, warning with a fresher one, its age given),
//!   tenants that allow SHA-1 (warning);
//! - reach: consoles no rule grants anything (warning);
//! - identity: tenants that declare no `domains` (error when a console
//!   identifies their users by e-mail or UPN, whose logins are then all
//!   refused; otherwise a warning);
//! - start-up ([`preflight`], before the runtime is built, so these are
//!   reported even when it cannot be): the TLS certificate and key readable,
//!   parseable and belonging together (what `serve` would refuse to start
//!   on), the certificate's expiry and names against `public_url`; an
//!   `http://` `public_url` on a non-loopback host or with TLS configured
//!   (Entra refuses http Reply URLs); the audit file's directory writable
//!   (error), the state directory writable (warning: last-known-good copies
//!   could not be saved). Loopback http URLs are reported as "loopback, test
//!   only" (info), never as errors.
//!
//! A summary table, then the findings; `--json` for scripts. Exit 1 when any
//! finding is an error.

use std::path::Path;

use serde::Serialize;
use time::OffsetDateTime;

use crate::config::Config;
use crate::gateway::App;
use crate::identity::ErrorCode;

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub code: &'static str,
    pub severity: &'static str,
    pub subject: String,
    pub message: String,
    pub fix: String,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub kind: &'static str,
    pub id: String,
    pub status: &'static str,
    pub nearest_expiry_days: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub summary: Vec<Summary>,
    pub findings: Vec<Finding>,
    pub errors: usize,
    pub warnings: usize,
}

fn finding(
    code: &'static str,
    severity: &'static str,
    subject: String,
    message: String,
    fix: &str,
) -> Finding {
    Finding {
        code,
        severity,
        subject,
        message,
        fix: fix.to_string(),
    }
}

/// How long a last-known-good metadata copy may go unconfirmed by the IdP
/// before `check` calls it an error.
pub const STALE_COPY: time::Duration = time::Duration::days(7);

/// What is wrong with `server.public_url` (also logged by `serve` at start).
pub fn public_url_findings(config: &Config) -> Vec<Finding> {
    let url = config.server.public_url.as_str();
    let mut f = Vec::new();
    if !url.starts_with("http://") {
        return f;
    }
    let subject = "server public_url".to_string();
    if config.server.tls_cert_file.is_some() {
        f.push(finding(
            "check.public_url_http",
            "error",
            subject,
            format!("{url} is http://, but fedgate serves TLS itself (server.tls_cert_file): Entra, browsers and consoles would be sent to the wrong scheme"),
            "use the https:// URL users reach fedgate at",
        ));
    } else if !crate::consoles::is_loopback_url(url) {
        f.push(finding(
            "check.public_url_http",
            "error",
            subject,
            format!("{url} is http:// on a host that is not loopback: Entra refuses http Reply URLs (AADSTS50011) and assertions would cross the network in clear"),
            "put fedgate behind TLS (its own tls_cert_file, or a TLS-terminating proxy) and set public_url to the https:// URL",
        ));
    } else {
        f.push(finding(
            "check.public_url_loopback",
            "info",
            subject,
            format!("{url}: loopback, test only"),
            "for a deployment, the https:// URL users reach fedgate at",
        ));
    }
    f
}

/// Whether fedgate could write a file in `dir` (or create `dir`): the
/// nearest existing ancestor must take a new file.
fn probe_writable(dir: &Path) -> Result<(), String> {
    let mut at = dir;
    while !at.exists() {
        match at.parent() {
            Some(p) if !p.as_os_str().is_empty() => at = p,
            _ => return Err(format!("{}: no existing parent directory", dir.display())),
        }
    }
    if !at.is_dir() {
        return Err(format!("{} is not a directory", at.display()));
    }
    let probe = at.join(format!(".fedgate-check-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .map_err(|e| format!("{}: cannot create a file there: {e}", at.display()))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// The checks that need no runtime: what `serve` would refuse to start on
/// (TLS), and what it would start with but fail later (public URL, audit
/// file, state directory). Writes nothing (a probe file is removed at once).
pub fn preflight(config: &Config, now: OffsetDateTime) -> Vec<Finding> {
    let mut f = Vec::new();
    // Every file the configuration names, at once (serve would stop at the
    // first): the example configuration, checked as it is, lists them all.
    for (key, path) in config.input_files() {
        if let Err(e) = std::fs::File::open(path).and_then(|file| file.metadata()) {
            f.push(finding(
                if e.kind() == std::io::ErrorKind::NotFound {
                    "check.file_missing"
                } else {
                    "check.file_unreadable"
                },
                "error",
                format!("file {key}"),
                format!("{}: {e}", path.display()),
                "create it (docs/install.md), or correct the path; relative paths are relative to the configuration file",
            ));
        }
    }
    let missing = |p: &Path| {
        f.iter()
            .any(|x: &Finding| x.message.starts_with(&format!("{}: ", p.display())))
    };
    let tls_files = match (&config.server.tls_cert_file, &config.server.tls_key_file) {
        (Some(c), Some(k)) if !missing(c) && !missing(k) => Some((c, k)),
        _ => None,
    };
    if let Some((cert, key)) = tls_files {
        match crate::trust::tls::load(cert, key) {
            Err(e) => f.push(finding(
                e.code(),
                "error",
                "server TLS".into(),
                format!("{e}: fedgate serve would refuse to start"),
                "point tls_cert_file at the certificate chain (leaf first) and tls_key_file at its own private key, both PEM, readable by fedgate",
            )),
            Ok(tls) => {
                let days = tls.leaf.days_left(now);
                let subject = format!("server TLS {}", tls.leaf.thumbprint_sha256);
                if tls.leaf.is_expired(now) {
                    f.push(finding(
                        "check.credential_expired",
                        "error",
                        subject.clone(),
                        format!("the TLS certificate {} expired {} days ago: browsers and Entra refuse the connection", cert.display(), -days),
                        "renew it now",
                    ));
                } else if days < 30 {
                    f.push(finding(
                        "check.credential_expiring",
                        "warning",
                        subject.clone(),
                        format!("the TLS certificate {} expires in {days} days", cert.display()),
                        "renew it before then",
                    ));
                }
                let host = crate::consoles::url_host(&config.server.public_url);
                if config.server.public_url.starts_with("https://")
                    && !crate::trust::tls::covers(&tls.names, host)
                {
                    f.push(finding(
                        "check.tls_name_mismatch",
                        "warning",
                        subject,
                        format!(
                            "the TLS certificate is for {:?}, not for public_url's host {host:?}: browsers would refuse it unless a proxy in front presents another",
                            tls.names
                        ),
                        "issue the certificate for the public_url host (subjectAltName)",
                    ));
                }
            }
        }
    }
    f.extend(public_url_findings(config));
    if let Some(file) = &config.audit.file {
        let result = if file.exists() {
            std::fs::OpenOptions::new()
                .append(true)
                .open(file)
                .map(drop)
                .map_err(|e| format!("{}: {e}", file.display()))
        } else {
            // serve creates the file, not its directory.
            match file.parent().filter(|d| !d.as_os_str().is_empty()) {
                Some(dir) if !dir.is_dir() => Err(format!(
                    "{}: the directory {} does not exist",
                    file.display(),
                    dir.display()
                )),
                dir => probe_writable(dir.unwrap_or(Path::new(".")))
                    .map_err(|e| format!("{}: {e}", file.display())),
            }
        };
        if let Err(e) = result {
            f.push(finding(
                "check.audit_unwritable",
                "error",
                "audit file".into(),
                format!("{e}: fedgate serve would refuse to start (checked as the user running check)"),
                "create the directory and give the user fedgate runs as write access (systemd: LogsDirectory=fedgate)",
            ));
        }
    }
    // Every start stores its configuration there (the history), so an
    // unwritable state directory stops fedgate serve.
    if let Some(dir) = &config.server.state_dir {
        if let Err(e) = probe_writable(dir) {
            f.push(finding(
                "check.state_dir_unwritable",
                "error",
                "state directory".into(),
                format!("{e}: fedgate serve would refuse to start (start.config_history: every configuration applied is stored there), and last-known-good metadata and JWKS could not be saved"),
                "give the user fedgate runs as write access to server.state_dir (systemd: StateDirectory=fedgate)",
            ));
        }
    }
    f
}

/// A report of findings that stopped before the runtime could be built.
pub fn report_without_runtime(findings: Vec<Finding>) -> CheckReport {
    finish(Vec::new(), findings)
}

fn finish(summary: Vec<Summary>, findings: Vec<Finding>) -> CheckReport {
    let errors = findings.iter().filter(|x| x.severity == "error").count();
    let warnings = findings.iter().filter(|x| x.severity == "warning").count();
    CheckReport {
        summary,
        findings,
        errors,
        warnings,
    }
}

/// What the configuration alone says (no file read, nothing fetched):
/// SHA-1 allowed, secrets without an expiry date, console URLs against
/// their profile, consoles no rule reaches.
pub fn config_findings(config: &Config, now: OffsetDateTime) -> Vec<Finding> {
    let mut f = Vec::new();
    for t in &config.tenants {
        if t.allow_sha1 {
            f.push(finding(
                "check.sha1_allowed",
                "warning",
                format!("tenant {}", t.id),
                "allow_sha1 = true: SHA-1 signatures are accepted from this tenant".into(),
                "set the Entra signing algorithm to SHA-256, then remove allow_sha1",
            ));
        }
        let secrets = [
            t.oidc
                .as_ref()
                .filter(|o| o.client_secret_file.is_some())
                .map(|o| ("oidc", o.secret_expires.is_some())),
            t.graph
                .as_ref()
                .filter(|g| g.client_secret_file.is_some())
                .map(|g| ("graph", g.secret_expires.is_some())),
        ];
        for (block, dated) in secrets.into_iter().flatten() {
            if !dated {
                f.push(finding(
                    "check.secret_without_expiry",
                    "error",
                    format!("tenant {} [{block}]", t.id),
                    "a client secret with no secret_expires date: its expiry would be learned from a failed login".into(),
                    "add secret_expires = \"YYYY-MM-DD\" (Entra: App registration → Certificates & secrets), or use a certificate credential",
                ));
            }
        }
    }
    // Tenants that declare no domains: none of their users' e-mails or UPNs
    // is ever delivered (fail closed). An error when a console would need one.
    for t in config.tenants.iter().filter(|t| t.domains.is_empty()) {
        let needs: Vec<&str> = config
            .consoles
            .iter()
            .filter(|c| {
                let reached = c.oidc.as_ref().is_some_and(|o| o.tenants.contains(&t.id))
                    || config.rules.iter().any(|r| {
                        r.tenant == t.id
                            && r.console == c.id
                            && r.principals.admits(crate::identity::PrincipalKind::User)
                    });
                let nameid = c
                    .nameid
                    .unwrap_or(crate::consoles::profile(c.kind).default_nameid);
                let by_email = c.oidc.is_some()
                    || (!c.reply_url.is_empty()
                        && nameid != crate::consoles::NameIdSource::ObjectId);
                reached && by_email
            })
            .map(|c| c.id.as_str())
            .collect();
        if needs.is_empty() {
            f.push(finding(
                "check.tenant_without_domains",
                "warning",
                format!("tenant {}", t.id),
                "no domains declared: no e-mail or UPN of this tenant's users is delivered to any console".into(),
                "add domains = [\"…\"] with the tenant's verified domains (Entra admin center → Settings → Domain names)",
            ));
        } else {
            f.push(finding(
                "check.tenant_without_domains",
                "error",
                format!("tenant {}", t.id),
                format!(
                    "no domains declared, but console(s) {} identify its users by e-mail or UPN: every such login is refused (identity.domain_not_owned)",
                    needs.join(", ")
                ),
                "add domains = [\"…\"] with the tenant's verified domains (Entra admin center → Settings → Domain names), or set nameid = \"object_id\" on SAML consoles",
            ));
        }
    }
    for c in &config.consoles {
        if let Some(o) = &c.oidc {
            if o.secret_expires.is_none() {
                f.push(finding(
                    "check.secret_without_expiry",
                    "error",
                    format!("console {} [oidc]", c.id),
                    "the console's client secret has no secret_expires date".into(),
                    "add secret_expires = \"YYYY-MM-DD\" and rotate it before then",
                ));
            }
        }
        f.extend(profile_findings(c));
        // The console's Identifier and Reply URL against its profile (the linter's checks).
        if !c.reply_url.is_empty() {
            let opts = crate::lint::Options {
                role: None,
                reply_url: Some(&c.reply_url),
                identifier: Some(&c.identifier),
                profile: Some(c.kind),
                trust: vec![],
                now,
            };
            for x in crate::lint::lint(&[], &opts) {
                f.push(Finding {
                    code: x.code,
                    severity: x.severity,
                    subject: format!("console {}", c.id),
                    message: x.message,
                    fix: x.fix,
                });
            }
        }
        if !config.rules.iter().any(|r| r.console == c.id) {
            f.push(finding(
                "check.console_unreachable",
                "warning",
                format!("console {}", c.id),
                "no rule grants a role on this console: nobody can reach it".into(),
                "add a [[rules]] block for it, or remove the console",
            ));
        }
    }

    f
}

/// A console's configuration against what its profile says the console
/// does (docs/consoles.md): the protocols it speaks, its OIDC redirect URI
/// and ID-token algorithm, its signed AuthnRequests.
fn profile_findings(c: &crate::config::Console) -> Vec<Finding> {
    let p = crate::consoles::profile(c.kind);
    let subject = || format!("console {}", c.id);
    let mut f = Vec::new();
    if !c.reply_url.is_empty() && !p.saml {
        f.push(finding(
            "check.console_no_saml",
            "error",
            subject(),
            format!(
                "{} signs in by OIDC only, and this console has a SAML reply_url",
                p.label
            ),
            "remove identifier and reply_url, and register the console in [consoles.oidc]",
        ));
    }
    if c.oidc.is_some() && !p.oidc {
        f.push(finding(
            "check.console_no_oidc",
            "error",
            subject(),
            format!(
                "{} signs in by SAML only, and this console has an [consoles.oidc] registration",
                p.label
            ),
            "remove [consoles.oidc], and set identifier and reply_url",
        ));
    }
    if let Some(o) = &c.oidc {
        if !p.id_token_algs.is_empty() && !p.id_token_algs.contains(&c.token_alg.as_str()) {
            f.push(finding(
                "check.id_token_alg",
                "error",
                subject(),
                format!(
                    "{} accepts ID tokens signed {} only, and token_alg is {}",
                    p.label,
                    p.id_token_algs.join(" or "),
                    c.token_alg
                ),
                &format!("set token_alg = \"{}\"", p.id_token_algs[0]),
            ));
        }
        if let Some(pattern) = p.oidc_redirect_pattern {
            for uri in o
                .redirect_uris
                .iter()
                .filter(|u| !crate::consoles::is_loopback_url(u))
            {
                if let Err(e) = crate::consoles::check_url(pattern, uri) {
                    f.push(finding(
                        "check.redirect_uri_pattern",
                        "warning",
                        subject(),
                        format!("redirect URI: {} ({})", e.message, e.code),
                        &format!("{} calls back to {pattern}", p.label),
                    ));
                }
            }
        }
    }
    if p.signs_authn_requests && !c.reply_url.is_empty() && c.certificate_file.is_none() {
        f.push(finding(
            "check.authn_requests_unchecked",
            "warning",
            subject(),
            format!("{} signs its AuthnRequests, and fedgate has no certificate to check them with: a signed request will be refused (idp.signature_unverifiable)", p.label),
            "set certificate_file to the console's SAML signing certificate (PEM) and authn_requests_signed = true",
        ));
    }
    match (p.logout_url_pattern, &c.logout_url) {
        (Some(pattern), None) if !c.reply_url.is_empty() => f.push(finding(
            "check.logout_url_missing",
            "warning",
            subject(),
            format!("{} has a single logout URL ({pattern}), and this console has no logout_url: signing out of fedgate or Entra leaves its session open", p.label),
            &format!("set logout_url (its SSO settings show it; it looks like {pattern})"),
        )),
        (Some(pattern), Some(url)) if !crate::consoles::is_loopback_url(url) => {
            if let Err(e) = crate::consoles::check_url(pattern, url) {
                f.push(finding(
                    "check.logout_url_pattern",
                    "warning",
                    subject(),
                    format!("logout_url: {} ({})", e.message, e.code),
                    &format!("{} signs out at {pattern}", p.label),
                ));
            }
        }
        _ => {}
    }
    if c.logout_url.is_some() && c.certificate_file.is_none() {
        f.push(finding(
            "check.logout_unverifiable",
            "info",
            subject(),
            "fedgate cannot check this console's signature: its signed LogoutResponses are reported as not confirmed, and its own LogoutRequests are refused (slo.signature_unverifiable)".into(),
            "set certificate_file to the console's SAML signing certificate (PEM)",
        ));
    }
    if c.authn_requests_signed && !p.sp_initiated {
        f.push(finding(
            "check.authn_requests_never_sent",
            "info",
            subject(),
            format!("{} does not start logins (IdP-initiated only): authn_requests_signed has nothing to check", p.label),
            "remove authn_requests_signed",
        ));
    }
    f
}

/// Check a running configuration (`app`), at `now`; `pre` are the
/// [`preflight`] findings, reported first.
pub async fn check(
    app: &App,
    now: OffsetDateTime,
    offline: bool,
    pre: Vec<Finding>,
) -> CheckReport {
    let mut f = pre;
    let config = &app.config;

    // Trust: fetch now.
    if !offline {
        for (tenant, result) in app.refresh_trust().await {
            if let Err(e) = result {
                let trust = app.tenants.get(&tenant).and_then(|t| t.idp.as_ref());
                let has_copy = trust.is_some_and(|t| t.current().is_some());
                let confirmed = trust.and_then(|t| t.confirmed_at());
                let age = confirmed.map(|at| now - at);
                // A copy the IdP has not confirmed for a week may predate a
                // certificate rollover (Entra publishes the next certificate
                // weeks ahead, but not for ever): an error, not a warning.
                let stale = age.is_none_or(|a| a > STALE_COPY);
                let copy = match (has_copy, age) {
                    (false, _) => String::new(),
                    (true, Some(a)) => format!(
                        " (the last-known-good copy is used; the IdP last confirmed it {})",
                        crate::inbound::saml::decode::relative(-a)
                    ),
                    (true, None) => {
                        " (the last-known-good copy is used; its age is unknown)".into()
                    }
                };
                f.push(finding(
                    "check.metadata_unreachable",
                    if has_copy && !stale {
                        "warning"
                    } else {
                        "error"
                    },
                    format!("tenant {tenant}"),
                    format!("[{}] {e}{copy}", e.code()),
                    "check metadata_url and outbound HTTPS to the IdP",
                ));
            }
        }
        for (id, rt) in &app.tenants {
            if let (Some(p), true) = (
                rt.provider.as_ref(),
                rt.login.is_some() || rt.token_policy.is_some(),
            ) {
                if let Err(e) = p.jwks().await {
                    f.push(finding(
                        "check.discovery_unreachable",
                        "error",
                        format!("tenant {id}"),
                        format!("[{}] {e}", e.code()),
                        "check [tenants.oidc] issuer / discovery_url and outbound HTTPS",
                    ));
                }
            }
        }
    }
    f.extend(config_findings(config, now));

    // Credentials.
    for e in app.expiries() {
        let days = (e.not_after - now).whole_days();
        let subject = format!("{} {} {} {}", e.owner_kind, e.owner, e.kind, e.thumbprint);
        if e.not_after <= now {
            f.push(finding(
                "check.credential_expired",
                "error",
                subject,
                format!("expired {} days ago", -days),
                "renew it now",
            ));
        } else if days < 30 {
            f.push(finding(
                "check.credential_expiring",
                "warning",
                subject,
                format!("expires in {days} days"),
                "renew it before then (docs/rotation.md)",
            ));
        }
    }

    // Summary per tenant and console.
    let mut summary = Vec::new();
    let nearest = |kind: &str, id: &str| {
        app.expiries()
            .iter()
            .filter(|e| e.owner_kind == kind && (e.owner == id || e.owner == "*"))
            .map(|e| (e.not_after - now).whole_days())
            .min()
    };
    let worst = |needle: &str| -> &'static str {
        let mine: Vec<&Finding> = f.iter().filter(|x| x.subject.starts_with(needle)).collect();
        if mine.iter().any(|x| x.severity == "error") {
            "error"
        } else if mine.iter().any(|x| x.severity == "warning") {
            "warning"
        } else {
            "ok"
        }
    };
    let mut tenants: Vec<&String> = app.tenants.keys().collect();
    tenants.sort();
    for t in tenants {
        summary.push(Summary {
            kind: "tenant",
            id: t.clone(),
            status: worst(&format!("tenant {t}")),
            nearest_expiry_days: nearest("tenant", t),
        });
    }
    for c in &config.consoles {
        summary.push(Summary {
            kind: "console",
            id: c.id.clone(),
            status: worst(&format!("console {}", c.id)),
            nearest_expiry_days: nearest("console", &c.id),
        });
    }
    finish(summary, f)
}

/// The report as text.
pub fn render(r: &CheckReport) -> String {
    let mut out = format!(
        "{:<8} {:<28} {:<8} nearest expiry\n",
        "kind", "id", "status"
    );
    for s in &r.summary {
        out.push_str(&format!(
            "{:<8} {:<28} {:<8} {}\n",
            s.kind,
            s.id,
            s.status,
            s.nearest_expiry_days
                .map_or("-".into(), |d| format!("{d} days"))
        ));
    }
    out.push('\n');
    for x in &r.findings {
        out.push_str(&format!(
            "{:<7} {:<30} {}: {}\n        fix: {}\n",
            x.severity.to_uppercase(),
            x.code,
            x.subject,
            x.message,
            x.fix
        ));
    }
    out.push_str(&format!(
        "\n{} error(s), {} warning(s)\n",
        r.errors, r.warnings
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(domains: &str, nameid: &str) -> Config {
        let text = format!(
            r#"
[server]
public_url = "http://127.0.0.1:8443"
[[tenants]]
id = "contoso"
entra_tenant_id = "t"
metadata_file = "m.xml"
{domains}
[[consoles]]
id = "c"
kind = "generic"
display_name = "C"
identifier = "https://c.example/sp"
reply_url = "https://c.example/acs"
{nameid}
[[rules]]
id = "r"
tenant = "contoso"
console = "c"
groups = ["g"]
roles = ["viewer"]
"#
        );
        Config::from_str(&text, "t.toml", &[], Path::new(".")).unwrap()
    }

    fn severity(c: &Config) -> Option<&'static str> {
        config_findings(c, OffsetDateTime::UNIX_EPOCH)
            .into_iter()
            .find(|f| f.code == "check.tenant_without_domains")
            .map(|f| f.severity)
    }

    #[test]
    fn a_tenant_without_domains_is_an_error_where_a_console_takes_e_mails() {
        // The console's NameID is the e-mail (the profile's default): error.
        assert_eq!(severity(&config("", "")), Some("error"));
        // Object-id NameID: nothing would be refused, a warning remains.
        assert_eq!(
            severity(&config("", "nameid = \"object_id\"")),
            Some("warning")
        );
        // Domains declared: no finding.
        assert_eq!(severity(&config("domains = [\"contoso.com\"]", "")), None);
    }

    fn codes_for(console: &str) -> Vec<&'static str> {
        let text = format!(
            r#"
[server]
public_url = "http://127.0.0.1:8443"
[[tenants]]
id = "contoso"
entra_tenant_id = "t"
metadata_file = "m.xml"
domains = ["contoso.com"]
[[consoles]]
id = "c"
display_name = "C"
extra_roles = ["BackupOperator"]
{console}
[[rules]]
id = "r"
tenant = "contoso"
console = "c"
groups = ["g"]
roles = ["BackupOperator"]
scope = "contoso"
"#
        );
        let c = Config::from_str(&text, "t.toml", &[], Path::new(".")).unwrap();
        let mut codes: Vec<&str> = config_findings(&c, OffsetDateTime::UNIX_EPOCH)
            .into_iter()
            .map(|f| f.code)
            .filter(|c| !c.starts_with("check.secret"))
            .collect();
        codes.sort_unstable();
        codes
    }

    #[test]
    fn a_console_is_checked_against_what_its_profile_says_it_speaks() {
        let oidc = "[consoles.oidc]\nclient_id = \"x\"\nclient_secret_env = \"X\"\ntenants = [\"contoso\"]";
        // Commvault: SAML at https://<HOST>/webconsole, signed requests.
        let ok = "kind = \"commvault\"\nidentifier = \"https://cv.contoso.com/webconsole\"\nreply_url = \"https://cv.contoso.com/webconsole\"\ncertificate_file = \"cv.pem\"\nauthn_requests_signed = true";
        assert_eq!(codes_for(ok), Vec::<&str>::new());
        let unchecked = "kind = \"commvault\"\nidentifier = \"https://cv.contoso.com/webconsole\"\nreply_url = \"https://cv.contoso.com/webconsole/acs\"";
        assert_eq!(
            codes_for(unchecked),
            ["check.authn_requests_unchecked", "lint.reply_url_mismatch"]
        );
        // Commvault by OIDC: RS256 only, its callback path.
        let es256 = format!(
            "kind = \"commvault\"\n{oidc}\nredirect_uris = [\"https://cv.contoso.com/callback\"]"
        );
        assert_eq!(
            codes_for(&es256),
            ["check.id_token_alg", "check.redirect_uri_pattern"]
        );
        let rs256 = format!("kind = \"commvault\"\ntoken_alg = \"RS256\"\n{oidc}\nredirect_uris = [\"https://cv.contoso.com/webconsole/openIdConnectCallback.do\"]");
        assert_eq!(codes_for(&rs256), Vec::<&str>::new());
        // Autotask PSA speaks OIDC only; Autotask Endpoint Backup SAML only.
        let psa_saml = "kind = \"autotask_psa\"\nidentifier = \"https://x.example/sp\"\nreply_url = \"https://x.example/acs\"\ntoken_alg = \"RS256\"";
        assert_eq!(codes_for(psa_saml), ["check.console_no_saml"]);
        let aeb_oidc =
            format!("kind = \"autotask\"\n{oidc}\nredirect_uris = [\"https://x.example/cb\"]");
        assert!(codes_for(&aeb_oidc).contains(&"check.console_no_oidc"));
        // Acronis' identifier is a URN.
        // …and it has a single logout URL, which fedgate should be told.
        let acronis = "kind = \"acronis\"\nidentifier = \"urn:cyber:protect:saml:8f3e1c\"\nreply_url = \"https://eu2-cloud.acronis.com/api/2/saml/callback\"";
        assert_eq!(codes_for(acronis), ["check.logout_url_missing"]);
        let with_logout = format!("{acronis}\nlogout_url = \"https://eu2-cloud.acronis.com/api/2/saml/logout\"\ncertificate_file = \"a.pem\"");
        assert_eq!(codes_for(&with_logout), Vec::<&str>::new());
        let elsewhere = format!("{acronis}\nlogout_url = \"https://eu2-cloud.acronis.com/logout\"\ncertificate_file = \"a.pem\"");
        assert_eq!(codes_for(&elsewhere), ["check.logout_url_pattern"]);
        let unchecked =
            format!("{acronis}\nlogout_url = \"https://eu2-cloud.acronis.com/api/2/saml/logout\"");
        assert_eq!(codes_for(&unchecked), ["check.logout_unverifiable"]);
    }
}
