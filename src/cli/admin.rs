//! `keys`, `lint metadata`, `check`, `drill rotate`: the admin's tools.

use std::path::Path;

use serde_json::json;
use time::OffsetDateTime;

use super::{
    parse_now, print_json, read_file, read_input, runtime, DrillArgs, Failure, KeysCmd, LintArgs,
};
use crate::identity::ErrorCode;

pub(super) fn keys(cmd: KeysCmd) -> Result<(), Failure> {
    use crate::trust::keys;
    let now = OffsetDateTime::now_utc();
    let fail = |e: String| Failure::Usage {
        code: Some("keys.failed"),
        message: e,
    };
    match cmd {
        KeysCmd::Init { dir, days } => {
            let made = keys::init(&dir, days, now).map_err(fail)?;
            let toml_str =
                |p: &Path| serde_json::to_string(&p.to_string_lossy()).unwrap_or_default();
            println!(
                "signing key  {}/current/key.pem (RSA-2048, 0600) and cert.pem (self-signed, valid until {})",
                made.key_dir.display(),
                crate::timefmt::format(made.cert.not_after)
            );
            println!(
                "             sha256 thumbprint {}",
                made.cert.thumbprint_sha256
            );
            println!(
                "token key    {} (EC P-256 for ES256 console tokens, 0600), kid {}",
                made.token_key_file.display(),
                made.token_kid
            );
            println!("\nPut these lines in fedgate.toml (instead of key_file/cert_file):\n");
            println!("[signing]");
            println!("key_dir = {}", toml_str(&made.key_dir));
            println!("token_key_file = {}", toml_str(&made.token_key_file));
            println!(
                "\nfedgate's service user must be able to read them: run this as that user, or give it the directory afterwards (chown -R fedgate: {}).",
                dir.display()
            );
        }
        KeysCmd::GenerateNext { dir, days } => {
            let cert = keys::generate_next(&dir, days, now).map_err(fail)?;
            println!(
                "next key {} (valid until {}): published at once; run `fedgate keys promote` once every console trusts it",
                cert.thumbprint_sha256,
                crate::timefmt::format(cert.not_after)
            );
        }
        KeysCmd::Promote { dir, grace_hours } => {
            keys::promote(&dir, time::Duration::hours(grace_hours), now).map_err(fail)?;
            println!(
                "promoted: the next key signs now; the old one stays published for {grace_hours} h"
            );
        }
        KeysCmd::Retire { dir } => {
            let retired = keys::retire(&dir).map_err(fail)?;
            println!(
                "{}",
                if retired {
                    "previous key retired"
                } else {
                    "no previous key"
                }
            );
        }
        KeysCmd::Status { dir, json } => {
            let st = keys::status(&dir, now).map_err(fail)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&st).unwrap_or_default());
            } else {
                println!(
                    "{:<9} {:<64} {:>9} {:<6} published",
                    "role", "sha256", "days left", "signs"
                );
                for k in st {
                    println!(
                        "{:<9} {:<64} {:>9} {:<6} {}",
                        k.role,
                        k.thumbprint_sha256,
                        k.days_left,
                        if k.signs { "yes" } else { "no" },
                        match (k.published, k.retire_after) {
                            (true, Some(t)) => format!("until {}", crate::timefmt::format(t)),
                            (true, None) => "yes".into(),
                            (false, _) => "no (retired)".into(),
                        }
                    );
                }
            }
        }
    }
    Ok(())
}

/// A document from an https (or loopback http) URL, else a file (or `-`).
fn fetch_or_read(source: &str) -> Result<Vec<u8>, Failure> {
    if !(source.starts_with("https://")
        || source.starts_with("http://127.0.0.1")
        || source.starts_with("http://localhost"))
    {
        return read_input(source);
    }
    let http = crate::trust::oidc::http_client().map_err(Failure::usage)?;
    runtime()?
        .block_on(async {
            let r = http.get(source).send().await.map_err(|e| e.to_string())?;
            if !r.status().is_success() {
                return Err(format!("HTTP {} (redirects are not followed)", r.status()));
            }
            r.bytes()
                .await
                .map(|b| b.to_vec())
                .map_err(|e| e.to_string())
        })
        .map_err(|e| Failure::Usage {
            code: Some("lint.fetch_failed"),
            message: format!("{source}: {e}"),
        })
}

pub(super) fn lint_metadata(a: &LintArgs) -> Result<(), Failure> {
    use crate::consoles::ConsoleKind;
    let now = parse_now(a.now.as_deref())?;
    let bytes = match a.source.as_deref() {
        None => Vec::new(),
        Some(source) => fetch_or_read(source)?,
    };
    if bytes.is_empty() && a.reply_url.is_none() && a.identifier.is_none() {
        return Err(Failure::usage(
            "give a metadata document, --reply-url or --identifier".into(),
        ));
    }
    let trust = match &a.trust {
        Some(p) => crate::trust::certs::TrustedCert::from_pem_bundle(&String::from_utf8_lossy(
            &read_file(p)?,
        ))
        .map_err(|e| Failure::setup("--trust", e))?,
        None => vec![],
    };
    let opts = crate::lint::Options {
        role: a.role.as_deref().map(|r| {
            if r == "sp" {
                crate::lint::Role::Sp
            } else {
                crate::lint::Role::Idp
            }
        }),
        reply_url: a.reply_url.as_deref(),
        identifier: a.identifier.as_deref(),
        profile: a.profile.as_deref().map(|p| match p {
            "autotask" => ConsoleKind::Autotask,
            "autotask_psa" => ConsoleKind::AutotaskPsa,
            "acronis" => ConsoleKind::Acronis,
            "commvault" => ConsoleKind::Commvault,
            _ => ConsoleKind::Generic,
        }),
        trust,
        now,
    };
    let findings = crate::lint::lint(&bytes, &opts);
    let errors = findings.iter().filter(|x| x.severity == "error").count();
    if a.format == "json" {
        print_json(&json!({"errors": errors, "findings": findings}))?;
    } else {
        print!("{}", crate::lint::render(&findings));
    }
    if errors > 0 {
        Err(Failure::Quiet)
    } else {
        Ok(())
    }
}

pub(super) fn check(
    path: &Path,
    offline: bool,
    now: Option<&str>,
    as_json: bool,
) -> Result<(), Failure> {
    let now = parse_now(now)?;
    let print = |report: &crate::check::CheckReport| -> Result<(), Failure> {
        if as_json {
            print_json(&serde_json::to_value(report).unwrap_or_default())?;
        } else {
            print!("{}", crate::check::render(report));
        }
        if report.errors > 0 {
            Err(Failure::Quiet)
        } else {
            Ok(())
        }
    };
    let finding = |code: &'static str, subject: &str, message: String| crate::check::Finding {
        code,
        severity: "error",
        subject: subject.into(),
        message,
        fix: "correct what the message names; fedgate serve would refuse to start".into(),
    };
    let mut config = match super::load_config(path) {
        Ok(c) => c,
        Err(e) => {
            let f = finding(e.code(), "configuration", e.to_string());
            return print(&crate::check::report_without_runtime(vec![f]));
        }
    };
    let pre = crate::check::preflight(&config, now);
    // check writes nothing: the audit file was checked above, not opened.
    config.audit.file = None;
    let config_copy = config.clone();
    let app = match crate::gateway::App::new(
        config,
        std::sync::Arc::new(crate::store::memory::MemoryStore::new()),
        Box::new(move || now),
    ) {
        Ok(a) => a,
        Err(e) => {
            // What could be checked without the runtime, then why it could
            // not be built (unless a finding above already names the cause).
            let mut f = pre;
            f.extend(crate::check::config_findings(&config_copy, now));
            let message = format!("[{}] {e}", e.code());
            let named = f.iter().any(|x| {
                x.code == "check.file_missing"
                    && message.contains(x.message.split(": ").next().unwrap_or("-"))
            });
            if !named {
                f.push(finding("check.start_failed", "fedgate", message));
            }
            f.push(crate::check::Finding {
                code: "check.incomplete",
                severity: "info",
                subject: "fedgate".into(),
                message: "certificate expiries, metadata and discovery were not checked: fedgate cannot start with this configuration".into(),
                fix: "fix the errors above, then run check again".into(),
            });
            return print(&crate::check::report_without_runtime(f));
        }
    };
    let report = runtime()?.block_on(crate::check::check(&app, now, offline, pre));
    print(&report)
}

pub(super) fn drill_rotate(args: &DrillArgs) -> Result<(), Failure> {
    let rt = runtime()?;
    let ok = if args.demo {
        rt.block_on(crate::drill::rotate_demo(
            args.logins,
            args.report.as_deref(),
        ))
    } else if let Some(config) = &args.config {
        rt.block_on(crate::drill::rotate_config(config, args.report.as_deref()))
    } else {
        return Err(Failure::usage("give --demo or --config FILE".into()));
    }
    .map_err(|e| Failure::usage(format!("drill: {e}")))?;
    if ok {
        Ok(())
    } else {
        Err(Failure::Quiet)
    }
}

/// `fedgate audit verify`.
pub(super) fn audit_verify(
    files: &[std::path::PathBuf],
    certs: &[std::path::PathBuf],
    metadata: Option<&str>,
    json: bool,
) -> Result<(), Failure> {
    use crate::audit::chain;
    let mut trusted = Vec::new();
    if let Some(m) = metadata {
        let bytes = fetch_or_read(m)?;
        let md = crate::trust::metadata::IdpMetadata::parse(&bytes)
            .map_err(|e| Failure::usage(format!("--metadata {m}: {e}")))?;
        trusted.extend(md.signing_certs);
    }
    for c in certs {
        let pem = String::from_utf8(read_file(c)?)
            .map_err(|_| Failure::usage(format!("{}: not PEM text", c.display())))?;
        let found = crate::trust::certs::TrustedCert::from_pem_bundle(&pem)
            .map_err(|e| Failure::usage(format!("{}: {e}", c.display())))?;
        trusted.extend(found);
    }
    let mut texts = Vec::new();
    for f in files {
        let bytes = read_file(f)?;
        texts.push((
            f.display().to_string(),
            String::from_utf8_lossy(&bytes).into_owned(),
        ));
    }
    let report = chain::verify(&texts, &trusted);
    if json {
        print_json(&serde_json::to_value(&report).unwrap_or_default())?;
    } else {
        println!(
            "{} lines: {} events, {} checkpoints",
            report.lines, report.events, report.checkpoints
        );
        match report.anchored_through {
            Some(seq) => println!("anchored by a valid checkpoint through seq {seq}"),
            None => println!("no valid checkpoint: nothing is anchored"),
        }
        if report.unanchored > 0 {
            println!(
                "unanchored: {} event(s) after the last checkpoint (chained, not signed yet)",
                report.unanchored
            );
        }
        for p in &report.problems {
            println!("{}:{}: {}: {}", p.file, p.line, p.kind, p.message);
        }
        if report.ok() {
            println!("ok: the chain holds");
        }
    }
    if report.ok() {
        Ok(())
    } else {
        Err(Failure::Quiet)
    }
}

/// `fedgate audit query`.
pub(super) fn audit_query(a: &super::AuditQueryArgs) -> Result<(), Failure> {
    use crate::audit::query::{self, Filter, Format};
    let time = |t: &Option<String>, flag: &str| -> Result<Option<OffsetDateTime>, Failure> {
        t.as_deref()
            .map(|s| {
                crate::audit::query::parse_time(s).ok_or_else(|| {
                    Failure::usage(format!(
                        "{flag} {s:?} is neither a day (YYYY-MM-DD) nor an RFC 3339 timestamp"
                    ))
                })
            })
            .transpose()
    };
    let filter = Filter {
        console: a.console.clone(),
        tenant: a.tenant.clone(),
        user: a.user.clone(),
        outcome: a.outcome.clone(),
        code: a.code.clone(),
        since: time(&a.since, "--since")?,
        until: time(&a.until, "--until")?,
    };
    let mut inputs: Vec<Box<dyn std::io::BufRead>> = Vec::new();
    for f in &a.files {
        let file =
            std::fs::File::open(f).map_err(|e| Failure::usage(format!("{}: {e}", f.display())))?;
        inputs.push(Box::new(std::io::BufReader::with_capacity(1 << 16, file)));
    }
    let format = match (a.json, a.csv) {
        (true, _) => Format::Json,
        (_, true) => Format::Csv,
        _ => Format::Text,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let counts = query::run(&mut inputs, &filter, format, &mut out)
        .map_err(|e| Failure::usage(format!("reading the audit files: {e}")))?;
    use std::io::Write;
    out.flush().map_err(|e| Failure::usage(e.to_string()))?;
    eprintln!(
        "{} of {} lines matched{}",
        counts.matched,
        counts.lines,
        if counts.unreadable > 0 {
            format!(
                "; {} lines are not JSON (skipped: run fedgate audit verify)",
                counts.unreadable
            )
        } else {
            String::new()
        }
    );
    Ok(())
}
