//! `fedgate access review`: who could reach a console at a date
//! ([`crate::review`]).

use std::collections::HashMap;
use std::path::PathBuf;

use time::OffsetDateTime;

use super::{Failure, ReviewArgs};

/// `YYYY-MM-DD` is the end of that day (UTC); otherwise RFC 3339.
pub(super) fn date(s: &str, flag: &str) -> Result<OffsetDateTime, Failure> {
    if let Ok(d) = time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")) {
        if let Ok(t) = time::Time::from_hms(23, 59, 59) {
            return Ok(d.with_time(t).assume_utc());
        }
    }
    crate::timefmt::parse(s).ok_or_else(|| {
        Failure::usage(format!(
            "{flag} {s:?} is neither a date (YYYY-MM-DD) nor an RFC 3339 timestamp"
        ))
    })
}

pub(super) fn run(a: &ReviewArgs) -> Result<(), Failure> {
    let hist = crate::config::history::History::new(&super::config::state_dir(&a.history));
    // The configuration as it is now: where the audit file is, and the
    // tenants' Graph credentials. Only read when needed, so that a review
    // with --audit works while the file does not validate.
    let current = if a.audit.is_empty() || a.graph {
        Some(super::load_config(&a.history.config).map_err(|e| {
            Failure::setup(
                "the configuration (for audit.file and Graph credentials; or give --audit FILE…)",
                e,
            )
        })?)
    } else {
        None
    };
    let files: Vec<PathBuf> =
        if a.audit.is_empty() {
            match current.as_ref().and_then(|c| c.audit.file.as_deref()) {
                Some(f) => crate::audit::query::chain_files(f)
                    .map_err(|e| Failure::usage(format!("{}: {e}", f.display())))?,
                None => return Err(Failure::usage(
                    "the configuration has no audit.file: give the audit files with --audit FILE…"
                        .into(),
                )),
            }
        } else {
            a.audit.clone()
        };
    let now = OffsetDateTime::now_utc();
    let console = a.console.as_deref();
    if let [d1, d2] = a.diff.as_slice() {
        let (d1, d2) = (date(d1, "--diff")?, date(d2, "--diff")?);
        let d =
            crate::review::diff(&hist, &files, console, d1, d2, now).map_err(Failure::rejected)?;
        if a.json {
            return super::print_json(&d);
        }
        if a.csv {
            print!("{}", d.to_csv());
        } else if a.html {
            print!("{}", d.to_html());
        } else {
            print_diff_text(&d);
        }
        return Ok(());
    }
    let at = date(a.at.as_deref().unwrap_or_default(), "--at")?;
    let mut r =
        crate::review::review(&hist, &files, console, at, now).map_err(Failure::rejected)?;
    if a.graph {
        let Some(config) = current.as_ref() else {
            return Err(Failure::usage("--graph needs the configuration".into()));
        };
        let mut runtimes = Vec::new();
        for t in &config.tenants {
            if t.graph.is_some() {
                let rt = crate::gateway::TenantRuntime::load(
                    t,
                    &config.server.public_url,
                    config.server.state_dir.as_deref(),
                )
                .map_err(|e| Failure::setup(&format!("tenant {}", t.id), e))?;
                runtimes.push((t.id.clone(), rt));
            }
        }
        let clients: HashMap<String, &crate::trust::graph::GraphClient> = runtimes
            .iter()
            .filter_map(|(id, rt)| rt.graph.as_ref().map(|g| (id.clone(), g)))
            .collect();
        super::runtime()?.block_on(r.add_graph(&clients));
    }
    if a.json {
        return super::print_json(&r);
    }
    if a.csv {
        print!("{}", r.to_csv());
    } else if a.html {
        print!("{}", r.to_html());
    } else {
        print_text(&r);
    }
    Ok(())
}

fn print_text(r: &crate::review::Review) {
    use crate::config::history::short;
    let fmt = crate::timefmt::format;
    println!(
        "Access review of {} at {}",
        r.console.as_deref().unwrap_or("every console"),
        fmt(r.at)
    );
    println!(
        "rules in force: configuration {} (applied {} from {}; next change {})",
        short(&r.version.version),
        fmt(r.version.applied),
        r.version.file,
        r.until.map(fmt).unwrap_or_else(|| "none since".into())
    );
    println!(
        "users: last sign-in at or before the date, from {} ({} sign-ins read)",
        r.audit.files.join(", "),
        r.audit.sign_ins
    );
    if r.rules.is_empty() {
        println!("no rule grants this console: nobody could reach it through fedgate");
    }
    for rule in &r.rules {
        println!();
        println!(
            "rule {} (tenant {}, console {}): {} -> roles [{}]{}{}",
            rule.id,
            rule.tenant,
            rule.console,
            crate::review::grants_via(rule),
            rule.roles.join(", "),
            if rule.scope.is_empty() {
                String::new()
            } else {
                format!(" in scope {}", rule.scope)
            },
            if rule.require_mfa {
                ", MFA required"
            } else {
                ""
            }
        );
        let mut any = false;
        for a in r.access.iter().filter(|a| a.rule == rule.id) {
            any = true;
            println!(
                "  {}  ({}; last sign-in {})",
                a.upn.as_deref().unwrap_or(&a.subject),
                a.matched,
                fmt(a.last_sign_in)
            );
        }
        if !any {
            println!("  nobody seen with these groups at their last sign-in");
        }
        for m in r.current_members.iter().filter(|m| m.rule == rule.id) {
            println!(
                "  {}  (Graph: member of {} now, not as of the date; {})",
                m.upn.as_deref().unwrap_or(&m.id),
                m.group,
                m.kind
            );
        }
    }
    for n in &r.graph_notes {
        println!("note: {n}");
    }
}

fn print_diff_text(d: &crate::review::ReviewDiff) {
    use crate::config::history::short;
    println!(
        "Access changes from {} (configuration {}) to {} (configuration {})",
        crate::timefmt::format(d.from.at),
        short(&d.from.version.version),
        crate::timefmt::format(d.to.at),
        short(&d.to.version.version)
    );
    for (what, list) in [
        ("rule added", &d.rules_added),
        ("rule removed", &d.rules_removed),
        ("rule changed", &d.rules_changed),
    ] {
        for id in list {
            println!("{what}: {id}");
        }
    }
    for (what, list) in [("gained access", &d.gained), ("lost access", &d.lost)] {
        for (c, t, u) in list {
            println!("{what}: {u} (tenant {t}) to console {c}");
        }
    }
    if d.rules_added.is_empty()
        && d.rules_removed.is_empty()
        && d.rules_changed.is_empty()
        && d.gained.is_empty()
        && d.lost.is_empty()
    {
        println!("no change");
    }
}
