//! `fedgate audit query`: who reached a console between two times, every
//! denial with its reason, one user's trail. It streams: one line read,
//! checked against the filter and written out at a time, whatever the size
//! of the files (constant memory). Checkpoint lines are not events and are
//! never shown.

use std::borrow::Cow;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

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

/// A bad filter value (the admin page's Evidence tab shows the code).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// `since`/`until` is neither `YYYY-MM-DD` nor an RFC 3339 timestamp.
    #[error("{field} {value:?} is not a date (YYYY-MM-DD) or an RFC 3339 timestamp")]
    BadTime { field: &'static str, value: String },
}

impl crate::identity::ErrorCode for FilterError {
    fn code(&self) -> &'static str {
        match self {
            FilterError::BadTime { .. } => "query.bad_time",
        }
    }
}

/// A time of a filter: an RFC 3339 timestamp, or a day `YYYY-MM-DD`
/// (its midnight, UTC).
pub fn parse_time(s: &str) -> Option<OffsetDateTime> {
    crate::timefmt::parse(s).or_else(|| {
        time::Date::parse(
            s.trim(),
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .ok()
        .map(|d| d.midnight().assume_utc())
    })
}

impl Filter {
    /// A filter from text values (a form's, the command line's): empty
    /// means "any"; times as [`parse_time`] reads them.
    #[allow(clippy::too_many_arguments)]
    pub fn from_text(
        console: &str,
        tenant: &str,
        user: &str,
        outcome: &str,
        code: &str,
        since: &str,
        until: &str,
    ) -> Result<Filter, FilterError> {
        let text = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let time = |s: &str, field: &'static str| match text(s) {
            None => Ok(None),
            Some(v) => parse_time(&v)
                .map(Some)
                .ok_or(FilterError::BadTime { field, value: v }),
        };
        Ok(Filter {
            console: text(console),
            tenant: text(tenant),
            user: text(user),
            outcome: text(outcome),
            code: text(code),
            since: time(since, "since")?,
            until: time(until, "until")?,
        })
    }
}

/// One matched event, as the outputs read it.
pub struct Event<'a> {
    row: Row<'a>,
    line: &'a str,
}

impl Event<'_> {
    /// The line as written (JSON, chain fields included).
    pub fn line(&self) -> &str {
        self.line
    }
    pub fn time(&self) -> &str {
        self.row.time.as_deref().unwrap_or("")
    }
    pub fn outcome(&self) -> &str {
        self.row.outcome.as_deref().unwrap_or("")
    }
    pub fn code(&self) -> &str {
        self.row.code.as_deref().unwrap_or("")
    }
    pub fn tenant(&self) -> &str {
        self.row.tenant.as_deref().unwrap_or("")
    }
    pub fn console(&self) -> Option<&str> {
        self.row.console.as_deref()
    }
    /// The UPN, else the subject.
    pub fn user(&self) -> &str {
        self.row
            .upn
            .as_deref()
            .or(self.row.subject.as_deref())
            .unwrap_or("")
    }
    pub fn reason(&self) -> &str {
        self.row.reason.as_deref().unwrap_or("")
    }
    /// The roles granted, `role@scope` separated by spaces.
    pub fn roles(&self) -> String {
        let roles: Vec<String> = self
            .row
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
        roles.join(" ")
    }
    /// The UTC day of the event, when its time reads.
    pub fn day(&self) -> Option<time::Date> {
        self.row
            .time
            .as_deref()
            .and_then(crate::timefmt::parse)
            .map(|t| t.to_offset(time::UtcOffset::UTC).date())
    }
}

/// One CSV cell: quoted when it holds a comma, a quote or a line break;
/// and, as a cell beginning with `=`, `+`, `-`, `@`, a tab or a CR is a
/// formula to a spreadsheet (a tenant controls UPNs, group names and
/// reasons), such a cell is prefixed with `'` so that it stays text.
pub fn csv_cell(field: &str) -> Cow<'_, str> {
    let field: Cow<str> = if field.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{field}"))
    } else {
        Cow::Borrowed(field)
    };
    if field.contains([',', '"', '\n', '\r']) {
        Cow::Owned(format!("\"{}\"", field.replace('"', "\"\"")))
    } else {
        field
    }
}

/// The CSV header line (with its newline).
pub const CSV_HEADER: &str = "time,outcome,code,tenant,console,user,roles,reason\n";

/// Write `e` to `out` in `format` (CSV: one record, without the header).
pub fn write_event(e: &Event, format: Format, out: &mut dyn Write) -> std::io::Result<()> {
    match format {
        Format::Json => writeln!(out, "{}", e.line),
        Format::Text => writeln!(
            out,
            "{}  {:<7} {:<28} {:<12} {:<20} {:<32} {}",
            e.time(),
            e.outcome(),
            e.code(),
            e.tenant(),
            e.console().unwrap_or(""),
            e.user(),
            e.reason()
        ),
        Format::Csv => writeln!(
            out,
            "{},{},{},{},{},{},{},{}",
            csv_cell(e.time()),
            csv_cell(e.outcome()),
            csv_cell(e.code()),
            csv_cell(e.tenant()),
            csv_cell(e.console().unwrap_or("")),
            csv_cell(e.user()),
            csv_cell(&e.roles()),
            csv_cell(e.reason())
        ),
    }
}

/// Stream `inputs` (the files one after the other, oldest first) a line
/// at a time, calling `each` with every event `filter` keeps; an error
/// from `each` stops the scan and is returned.
pub fn scan<R: BufRead>(
    inputs: &mut [R],
    filter: &Filter,
    each: &mut dyn FnMut(&Event) -> std::io::Result<()>,
) -> std::io::Result<Counts> {
    let mut counts = Counts::default();
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
            each(&Event { row, line: text })?;
        }
    }
    Ok(counts)
}

/// Run `filter` over `input` (the files one after the other), writing what
/// matches to `out` in `format`.
pub fn run<R: BufRead>(
    inputs: &mut [R],
    filter: &Filter,
    format: Format,
    out: &mut dyn Write,
) -> std::io::Result<Counts> {
    if format == Format::Csv {
        out.write_all(CSV_HEADER.as_bytes())?;
    }
    scan(inputs, filter, &mut |e| write_event(e, format, out))
}

/// The files of the chain that ends in `file`: its rotated siblings
/// `{file}.{YYYYMMDDTHHMMSSZ}` (and `….N`, two rotations in one second),
/// oldest first, then `file` itself when it exists.
pub fn chain_files(file: &Path) -> std::io::Result<Vec<PathBuf>> {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Some(base) = file.file_name().and_then(|n| n.to_str()) else {
        return Ok(vec![file.to_path_buf()]);
    };
    let mut rotated: Vec<((String, u32), PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(stamp) = name
            .to_str()
            .and_then(|n| n.strip_prefix(base))
            .and_then(|n| n.strip_prefix('.'))
        else {
            continue;
        };
        if let Some(key) = rotation_stamp(stamp) {
            rotated.push((key, entry.path()));
        }
    }
    rotated.sort();
    let mut files: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    if file.exists() {
        files.push(file.to_path_buf());
    }
    Ok(files)
}

/// [`chain_files`] opened for [`scan`], oldest first, each with its path.
/// A rotated file gone between the listing and the opening (moved to an
/// archive) is left out; any other failure to open is an error.
pub fn open_chain(
    file: &Path,
) -> std::io::Result<Vec<(PathBuf, std::io::BufReader<std::fs::File>)>> {
    let mut open = Vec::new();
    for path in chain_files(file)? {
        match std::fs::File::open(&path) {
            Ok(f) => open.push((path, std::io::BufReader::with_capacity(1 << 16, f))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("{}: {e}", path.display()),
                ))
            }
        }
    }
    Ok(open)
}

/// `YYYYMMDDTHHMMSSZ` or `YYYYMMDDTHHMMSSZ.N`: the sort key.
fn rotation_stamp(s: &str) -> Option<(String, u32)> {
    let (stamp, n) = match s.split_once('.') {
        Some((stamp, n)) => (stamp, n.parse::<u32>().ok()?),
        None => (s, 0),
    };
    let b = stamp.as_bytes();
    let shape = b.len() == 16
        && b.iter().enumerate().all(|(i, c)| match i {
            8 => *c == b'T',
            15 => *c == b'Z',
            _ => c.is_ascii_digit(),
        });
    shape.then(|| (stamp.to_string(), n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_formulas_neutralised() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("line\nbreak"), "\"line\nbreak\"");
        for hostile in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            let cell = csv_cell(hostile);
            assert!(
                cell.starts_with('\'') || cell.starts_with("\"'"),
                "{hostile:?} -> {cell:?}"
            );
        }
        assert_eq!(
            csv_cell("=HYPERLINK(\"http://evil.example\",\"x\")"),
            "\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\""
        );
        assert_eq!(csv_cell("2026-12-01T10:00:00Z"), "2026-12-01T10:00:00Z");
        assert_eq!(csv_cell(""), "");
    }

    #[test]
    fn filter_times_read_days_and_timestamps() {
        let day = parse_time("2026-12-01");
        assert_eq!(day, crate::timefmt::parse("2026-12-01T00:00:00Z"));
        assert!(day.is_some());
        assert_eq!(
            parse_time("2026-12-01T10:30:00+01:00"),
            crate::timefmt::parse("2026-12-01T09:30:00Z")
        );
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(parse_time("2026-13-01"), None);
        let f = Filter::from_text(" vault ", "", "", "denied", "", "2026-12-01", "").unwrap();
        assert_eq!(f.console.as_deref(), Some("vault"));
        assert_eq!(f.tenant, None);
        assert!(f.since.is_some() && f.until.is_none());
        let e = Filter::from_text("", "", "", "", "", "", "soon").unwrap_err();
        assert_eq!(crate::identity::ErrorCode::code(&e), "query.bad_time");
        assert!(e.to_string().contains("until \"soon\""));
    }

    #[test]
    fn scan_skips_checkpoints_and_counts_unreadable_lines() {
        let text = concat!(
            "{\"time\":\"2026-12-01T10:00:00Z\",\"outcome\":\"allowed\",\"code\":\"ok\",\"tenant\":\"t\",\"console\":\"c\",\"upn\":\"a@t\",\"seq\":1}\n",
            "not json\n",
            "\n",
            "{\"checkpoint\":1,\"time\":\"2026-12-01T10:01:00Z\",\"seq\":2}\n",
            "{\"time\":\"2026-12-02T10:00:00Z\",\"outcome\":\"denied\",\"code\":\"x\",\"tenant\":\"t\",\"subject\":\"s\",\"seq\":3}\n",
        );
        let mut inputs = [std::io::Cursor::new(text.as_bytes())];
        let mut seen = Vec::new();
        let counts = scan(&mut inputs, &Filter::default(), &mut |e| {
            seen.push((e.user().to_string(), e.day(), e.console().is_some()));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            counts,
            Counts {
                lines: 4,
                matched: 2,
                unreadable: 1
            }
        );
        assert_eq!(seen[0].0, "a@t");
        assert_eq!(seen[1].0, "s");
        assert_eq!(
            seen[1].1,
            Some(time::macros::date!(2026 - 12 - 02)),
            "the UTC day"
        );
        assert!(seen[0].2 && !seen[1].2);
    }

    #[test]
    fn chain_files_are_the_rotated_siblings_oldest_first_then_the_file() {
        let dir = std::env::temp_dir().join(format!(
            "fedgate-chain-files-{}-{}",
            std::process::id(),
            crate::util::random_id().unwrap()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("audit.jsonl");
        for name in [
            "audit.jsonl",
            "audit.jsonl.20261202T000000Z",
            "audit.jsonl.20261201T000000Z.1",
            "audit.jsonl.20261201T000000Z",
            "audit.jsonl.old",
            "audit.jsonl.20261201T000000Z.x",
            "other.jsonl.20261130T000000Z",
            "audit.jsonl.2026120T000000Z",
        ] {
            std::fs::write(dir.join(name), "").unwrap();
        }
        let names: Vec<String> = chain_files(&file)
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "audit.jsonl.20261201T000000Z",
                "audit.jsonl.20261201T000000Z.1",
                "audit.jsonl.20261202T000000Z",
                "audit.jsonl"
            ]
        );
        std::fs::remove_file(&file).unwrap();
        assert_eq!(chain_files(&file).unwrap().len(), 3, "no live file yet");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
