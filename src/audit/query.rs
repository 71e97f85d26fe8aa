//! `fedgate audit query`: who reached a console between two times, every
//! denial with its reason, one user's trail. It streams: one line read,
//! checked against the filter and written out at a time, whatever the size
//! of the files (constant memory). Checkpoint lines are not events and are
//! never shown.

use std::borrow::Cow;
use std::io::{BufRead, Write};

use serde::Deserialize;
use time::OffsetDateTime;

/// What to keep; every `Some` must match.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub console: Option<String>,
    pub tenant: Option<String>,
    /// The user: their subject (NameID, `sub`), UPN (case-insensitively)
    /// or object id.
    pub user: Option<String>,
    /// `allowed` or `denied` (or any outcome fedgate writes).
    pub outcome: Option<String>,
    pub code: Option<String>,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
}

/// How to print what matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One line per event: time, outcome, code, tenant, console, user, reason.
    Text,
    /// The matching lines as written (JSON lines).
    Json,
    /// CSV with a header.
    Csv,
}

/// The fields a query reads (borrowed from the line where it can).
#[derive(Deserialize)]
struct Row<'a> {
    #[serde(borrow, default)]
    time: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    outcome: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    code: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reason: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tenant: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    console: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    subject: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    upn: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    object_id: Option<Cow<'a, str>>,
    #[serde(default)]
    roles_granted: Vec<Role<'a>>,
    #[serde(default)]
    checkpoint: Option<u8>,
}

#[derive(Deserialize)]
struct Role<'a> {
    #[serde(borrow)]
    role: Cow<'a, str>,
    #[serde(borrow, default)]
    scope: Cow<'a, str>,
}

fn same(a: &Option<Cow<str>>, b: &str) -> bool {
    a.as_deref() == Some(b)
}

impl Filter {
    fn keeps(&self, r: &Row) -> bool {
        if r.checkpoint.is_some() {
            return false;
        }
        if self
            .console
            .as_deref()
            .is_some_and(|c| !same(&r.console, c))
            || self.tenant.as_deref().is_some_and(|t| !same(&r.tenant, t))
            || self
                .outcome
                .as_deref()
                .is_some_and(|o| !same(&r.outcome, o))
            || self.code.as_deref().is_some_and(|c| !same(&r.code, c))
        {
            return false;
        }
        if let Some(u) = &self.user {
            let upn = r.upn.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(u));
            if !(upn || same(&r.subject, u) || same(&r.object_id, u)) {
                return false;
            }
        }
        if self.since.is_some() || self.until.is_some() {
            let Some(t) = r.time.as_deref().and_then(crate::timefmt::parse) else {
                return false;
            };
            if self.since.is_some_and(|s| t < s) || self.until.is_some_and(|u| t >= u) {
                return false;
            }
        }
        true
    }
}

/// What a query saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub lines: u64,
    pub matched: u64,
    /// Lines that are not JSON (reported, skipped).
    pub unreadable: u64,
}

fn csv(field: &str) -> Cow<'_, str> {
    if field.contains([',', '"', '\n', '\r']) {
        Cow::Owned(format!("\"{}\"", field.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(field)
    }
}

/// Run `filter` over `input` (the files one after the other), writing what
/// matches to `out` in `format`.
pub fn run(
    inputs: &mut [Box<dyn BufRead>],
    filter: &Filter,
    format: Format,
    out: &mut dyn Write,
) -> std::io::Result<Counts> {
    let mut counts = Counts::default();
    if format == Format::Csv {
        writeln!(out, "time,outcome,code,tenant,console,user,roles,reason")?;
    }
    let mut line = String::new();
    for input in inputs.iter_mut() {
        loop {
            line.clear();
            if input.read_line(&mut line)? == 0 {
                break;
            }
            let text = line.trim_end_matches(['\n', '\r']);
            if text.is_empty() {
                continue;
            }
            counts.lines += 1;
            let Ok(row) = serde_json::from_str::<Row>(text) else {
                counts.unreadable += 1;
                continue;
            };
            if !filter.keeps(&row) {
                continue;
            }
            counts.matched += 1;
            let f = |v: &Option<Cow<str>>| v.as_deref().unwrap_or("").to_string();
            let user = row
                .upn
                .as_deref()
                .or(row.subject.as_deref())
                .unwrap_or("")
                .to_string();
            match format {
                Format::Json => writeln!(out, "{text}")?,
                Format::Text => writeln!(
                    out,
                    "{}  {:<7} {:<28} {:<12} {:<20} {:<32} {}",
                    f(&row.time),
                    f(&row.outcome),
                    f(&row.code),
                    f(&row.tenant),
                    f(&row.console),
                    user,
                    f(&row.reason)
                )?,
                Format::Csv => {
                    let roles: Vec<String> = row
                        .roles_granted
                        .iter()
                        .map(|r| {
                            if r.scope.is_empty() {
                                r.role.to_string()
                            } else {
                                format!("{}@{}", r.role, r.scope)
                            }
                        })
                        .collect();
                    writeln!(
                        out,
                        "{},{},{},{},{},{},{},{}",
                        csv(&f(&row.time)),
                        csv(&f(&row.outcome)),
                        csv(&f(&row.code)),
                        csv(&f(&row.tenant)),
                        csv(&f(&row.console)),
                        csv(&user),
                        csv(&roles.join(" ")),
                        csv(&f(&row.reason))
                    )?
                }
            }
        }
    }
    Ok(counts)
}
