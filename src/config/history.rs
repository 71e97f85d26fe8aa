//! Every configuration fedgate has run with, kept in the state directory
//! (`{server.state_dir}/config/`): each text once, named by the SHA-256 of
//! its bytes (`{version}.toml`, so a stored copy that was changed no longer
//! matches its name, and reading it says so), and `history.jsonl`, one line
//! per start or applied reload: which version, when, from which file (its
//! modification time and owner), and the version before it.
//!
//! The history is the admin's convenience; the evidence is the audit trail,
//! where each change is a chained, signed event with its diff
//! (`config.applied`). `fedgate config history|diff|restore` and
//! `fedgate access review` read this directory.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The shortest version prefix commands accept.
pub const MIN_PREFIX: usize = 6;

/// How versions are shown: the first 12 hex digits.
pub const SHORT: usize = 12;

/// A configuration's version: the lower-case hex SHA-256 of its bytes.
pub fn version_of(text: &str) -> String {
    crate::util::hex(
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes()).as_ref(),
    )
}

/// The first [`SHORT`] digits of a version.
pub fn short(version: &str) -> &str {
    version.get(..SHORT).unwrap_or(version)
}

/// One start or applied reload.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    /// The version applied (full hex SHA-256).
    pub version: String,
    /// When fedgate applied it.
    #[serde(with = "time::serde::rfc3339")]
    pub applied: OffsetDateTime,
    /// `start` or `reload`.
    pub source: String,
    /// The configuration file it was read from.
    pub file: String,
    /// The file's modification time then (who changed it, when: with
    /// `owner_uid`, what the file system says).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub modified: Option<OffsetDateTime>,
    #[serde(default)]
    pub owner_uid: Option<u32>,
    /// The version in force before (none for the first).
    #[serde(default)]
    pub previous: Option<String>,
    /// `FEDGATE_*` variables that overrode keys of the file (names only:
    /// values can hold secrets); the stored text does not include them.
    #[serde(default)]
    pub env: Vec<String>,
}

/// Why a version cannot be found or read.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("no stored configuration version starts with {0:?} (see fedgate config history)")]
    Unknown(String),
    #[error("{0:?} names more than one stored version: give more digits")]
    Ambiguous(String),
    #[error("a version is named by at least {MIN_PREFIX} hex digits, not {0:?}")]
    TooShort(String),
    #[error("the stored copy of {0} was changed after it was stored: its SHA-256 is now {1}")]
    Altered(String, String),
    #[error("{0}")]
    Io(String),
}

impl crate::identity::ErrorCode for HistoryError {
    fn code(&self) -> &'static str {
        match self {
            HistoryError::Unknown(_) => "config.version_unknown",
            HistoryError::Ambiguous(_) => "config.version_ambiguous",
            HistoryError::TooShort(_) => "config.version_invalid",
            HistoryError::Altered(..) => "config.version_altered",
            HistoryError::Io(_) => "config.history_unreadable",
        }
    }
}

/// The `config/` directory of a state directory.
#[derive(Debug, Clone)]
pub struct History {
    dir: PathBuf,
}

impl History {
    pub fn new(state_dir: &Path) -> History {
        History {
            dir: state_dir.join("config"),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Store `text` under its version (once: an existing copy is kept) and
    /// return the version. Written to a temporary file, fsynced, renamed:
    /// never half a file under a version's name. Readable by fedgate's
    /// user only, like the configuration it copies.
    pub fn save(&self, text: &str) -> std::io::Result<String> {
        let version = version_of(text);
        std::fs::create_dir_all(&self.dir)?;
        let path = self.dir.join(format!("{version}.toml"));
        if path.exists() {
            return Ok(version);
        }
        let tmp = self.dir.join(format!(".{version}.tmp"));
        write_private(&tmp, text.as_bytes())?;
        std::fs::rename(&tmp, &path)?;
        Ok(version)
    }

    /// Append one line to `history.jsonl`, fsynced.
    pub fn append(&self, entry: &Entry) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let line = serde_json::to_string(entry).map_err(std::io::Error::other)?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("history.jsonl"))?;
        f.write_all(format!("{line}\n").as_bytes())?;
        f.sync_data()
    }

    /// Every entry, oldest first (an empty history when there is none yet).
    /// A line that does not parse is skipped and counted.
    pub fn entries(&self) -> Result<(Vec<Entry>, usize), HistoryError> {
        let text = match std::fs::read_to_string(self.dir.join("history.jsonl")) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
            Err(e) => return Err(HistoryError::Io(format!("{}: {e}", self.dir.display()))),
        };
        let mut out = Vec::new();
        let mut bad = 0;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str::<Entry>(line) {
                Ok(e) => out.push(e),
                Err(_) => bad += 1,
            }
        }
        Ok((out, bad))
    }

    /// The last entry, if any.
    pub fn last(&self) -> Option<Entry> {
        self.entries().ok().and_then(|(e, _)| e.into_iter().last())
    }

    /// The entry in force at `at`: the last applied at or before it.
    pub fn in_force_at(&self, at: OffsetDateTime) -> Result<Option<Entry>, HistoryError> {
        let (entries, _) = self.entries()?;
        Ok(entries.into_iter().rfind(|e| e.applied <= at))
    }

    /// The stored version a (unique) prefix names.
    pub fn resolve(&self, prefix: &str) -> Result<String, HistoryError> {
        let p = prefix.to_ascii_lowercase();
        if p.len() < MIN_PREFIX || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(HistoryError::TooShort(prefix.to_string()));
        }
        let read =
            std::fs::read_dir(&self.dir).map_err(|_| HistoryError::Unknown(prefix.to_string()))?;
        let mut found: Vec<String> = read
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                let v = name.strip_suffix(".toml")?;
                (v.len() == 64 && v.starts_with(&p)).then(|| v.to_string())
            })
            .collect();
        match found.len() {
            0 => Err(HistoryError::Unknown(prefix.to_string())),
            1 => Ok(found.remove(0)),
            _ => Err(HistoryError::Ambiguous(prefix.to_string())),
        }
    }

    /// The text of a stored version, checked against its name.
    pub fn text(&self, version: &str) -> Result<String, HistoryError> {
        let path = self.dir.join(format!("{version}.toml"));
        let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => HistoryError::Unknown(version.to_string()),
            _ => HistoryError::Io(format!("{}: {e}", path.display())),
        })?;
        let actual = version_of(&text);
        if actual != version {
            return Err(HistoryError::Altered(short(version).into(), actual));
        }
        Ok(text)
    }
}

/// Write `bytes` to a new file readable by its owner only, fsynced.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// What the file system says of a configuration file: modification time
/// and owner.
pub fn file_facts(path: &Path) -> (Option<OffsetDateTime>, Option<u32>) {
    let Ok(md) = std::fs::metadata(path) else {
        return (None, None);
    };
    let modified = md.modified().ok().map(OffsetDateTime::from);
    #[cfg(unix)]
    let owner = {
        use std::os::unix::fs::MetadataExt;
        Some(md.uid())
    };
    #[cfg(not(unix))]
    let owner = None;
    (modified, owner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("fedgate-history-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn stored_once_by_hash_and_found_by_prefix() {
        let d = tmp("store");
        let h = History::new(&d);
        let v = h.save("a = 1\n").unwrap_or_default();
        assert_eq!(v, version_of("a = 1\n"));
        assert_eq!(h.save("a = 1\n").unwrap_or_default(), v);
        assert_eq!(h.resolve(&v[..8]).ok(), Some(v.clone()));
        assert_eq!(h.text(&v).ok().as_deref(), Some("a = 1\n"));
        assert!(matches!(h.resolve("abc"), Err(HistoryError::TooShort(_))));
        assert!(matches!(
            h.resolve("ffffffffff"),
            Err(HistoryError::Unknown(_)) | Ok(_)
        ));
        // A stored copy edited in place is refused, not served.
        std::fs::write(h.dir().join(format!("{v}.toml")), "a = 2\n").ok();
        assert!(matches!(h.text(&v), Err(HistoryError::Altered(..))));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn in_force_at_is_the_last_applied_before() {
        let d = tmp("at");
        let h = History::new(&d);
        let at = |s: &str| crate::timefmt::parse(s).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        for (v, t) in [
            ("v1", "2026-01-01T00:00:00Z"),
            ("v2", "2026-02-01T00:00:00Z"),
        ] {
            let e = Entry {
                version: v.into(),
                applied: at(t),
                source: "start".into(),
                file: "f".into(),
                modified: None,
                owner_uid: None,
                previous: None,
                env: vec![],
            };
            assert!(h.append(&e).is_ok());
        }
        let v = |t| h.in_force_at(at(t)).ok().flatten().map(|e| e.version);
        assert_eq!(v("2025-12-31T00:00:00Z"), None);
        assert_eq!(v("2026-01-15T00:00:00Z").as_deref(), Some("v1"));
        assert_eq!(v("2026-02-01T00:00:00Z").as_deref(), Some("v2"));
        let _ = std::fs::remove_dir_all(&d);
    }
}
