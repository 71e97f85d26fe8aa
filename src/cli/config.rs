//! `fedgate config history|diff|restore`: the configurations fedgate has
//! run with ([`crate::config::history`]).

use std::path::PathBuf;

use crate::config::history::{self, History};

use super::{ConfigCmd, Failure, HistoryArgs};

pub(super) fn run(cmd: ConfigCmd) -> Result<(), Failure> {
    match cmd {
        ConfigCmd::History { at, json } => list(&at, json),
        ConfigCmd::Diff { a, b, at } => diff(&at, &a, &b),
        ConfigCmd::Restore { version, at } => restore(&at, &version),
    }
}

/// The state directory: `--state-dir`, else the configuration file's
/// `server.state_dir` (`FEDGATE_SERVER__STATE_DIR` wins, as for `serve`),
/// relative to the file's directory, else `state` beside the file. Read
/// without validating the rest of the file: a broken configuration is
/// exactly when an admin needs its history.
pub(super) fn state_dir(at: &HistoryArgs) -> PathBuf {
    if let Some(d) = &at.state_dir {
        return d.clone();
    }
    let base = crate::config::base_dir(&at.config);
    let from_env = std::env::var("FEDGATE_SERVER__STATE_DIR").ok();
    let from_file = std::fs::read_to_string(&at.config)
        .ok()
        .and_then(|t| toml::from_str::<toml::Table>(&t).ok())
        .and_then(|t| {
            t.get("server")?
                .get("state_dir")?
                .as_str()
                .map(str::to_string)
        });
    let dir = PathBuf::from(from_env.or(from_file).unwrap_or_else(|| "state".into()));
    if dir.is_absolute() {
        dir
    } else {
        base.join(dir)
    }
}

fn open(at: &HistoryArgs) -> History {
    History::new(&state_dir(at))
}

fn list(at: &HistoryArgs, json: bool) -> Result<(), Failure> {
    let hist = open(at);
    let (entries, bad) = hist
        .entries()
        .map_err(|e| Failure::setup("config history", e))?;
    if json {
        for e in &entries {
            super::print_json(e)?;
        }
        return Ok(());
    }
    if entries.is_empty() {
        println!(
            "no configuration history in {} (fedgate serve writes it at start and at every applied reload)",
            hist.dir().display()
        );
        return Ok(());
    }
    println!(
        "{:<12}  {:<20}  {:<6}  {:<20}  {:>5}  {:<12}  FILE",
        "VERSION", "APPLIED", "SOURCE", "FILE MODIFIED", "UID", "PREVIOUS"
    );
    let fmt = |t: Option<time::OffsetDateTime>| t.map(crate::timefmt::format).unwrap_or("-".into());
    for e in &entries {
        println!(
            "{:<12}  {:<20}  {:<6}  {:<20}  {:>5}  {:<12}  {}{}",
            history::short(&e.version),
            crate::timefmt::format(e.applied),
            e.source,
            fmt(e.modified),
            e.owner_uid.map(|u| u.to_string()).unwrap_or("-".into()),
            e.previous.as_deref().map(history::short).unwrap_or("-"),
            e.file,
            if e.env.is_empty() {
                String::new()
            } else {
                format!(" (overridden by {})", e.env.join(", "))
            }
        );
    }
    if bad > 0 {
        println!("({bad} unreadable lines in history.jsonl were skipped)");
    }
    // Whether the file on disk is the version last applied.
    if let (Ok(text), Some(last)) = (std::fs::read_to_string(&at.config), entries.last()) {
        let now = history::version_of(&text);
        if now == last.version {
            println!(
                "{} is version {}, the last applied",
                at.config.display(),
                history::short(&now)
            );
        } else {
            println!(
                "{} is now {}, not applied yet (a reload applies it if it validates; `fedgate config diff {} file`)",
                at.config.display(),
                history::short(&now),
                history::short(&last.version)
            );
        }
    }
    Ok(())
}

/// A version's text: `file` is the configuration file as it is now.
fn text_of(hist: &History, at: &HistoryArgs, which: &str) -> Result<(String, String), Failure> {
    if which == "file" {
        let text = std::fs::read_to_string(&at.config)
            .map_err(|e| Failure::usage(format!("{}: {e}", at.config.display())))?;
        return Ok((at.config.display().to_string(), text));
    }
    let v = hist.resolve(which).map_err(Failure::rejected)?;
    let text = hist.text(&v).map_err(Failure::rejected)?;
    Ok((history::short(&v).to_string(), text))
}

fn diff(at: &HistoryArgs, a: &str, b: &str) -> Result<(), Failure> {
    let hist = open(at);
    let (an, at_text) = text_of(&hist, at, a)?;
    let (bn, bt_text) = text_of(&hist, at, b)?;
    let d = crate::config::diff::unified(&at_text, &bt_text, &an, &bn);
    print!("{}", d.text);
    if d.text.is_empty() {
        println!("{an} and {bn} have the same lines");
    }
    Ok(())
}

fn restore(at: &HistoryArgs, which: &str) -> Result<(), Failure> {
    let hist = open(at);
    let v = hist.resolve(which).map_err(Failure::rejected)?;
    let text = hist.text(&v).map_err(Failure::rejected)?;
    // Checked as a reload would check it: a version that no longer
    // validates (a file it names is gone) is not written back.
    let base = crate::config::base_dir(&at.config);
    crate::config::Config::from_str(
        &text,
        &format!("version {}", history::short(&v)),
        &super::fedgate_env(),
        base,
    )
    .map_err(Failure::rejected)?;
    // Next to the file, then renamed over it: never half a configuration;
    // the file keeps its permissions.
    let tmp = base.join(format!(
        ".{}.restore-{}",
        at.config
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| "fedgate.toml".into()),
        std::process::id()
    ));
    let write = || -> std::io::Result<()> {
        history::write_private(&tmp, text.as_bytes())?;
        if let Ok(md) = std::fs::metadata(&at.config) {
            std::fs::set_permissions(&tmp, md.permissions())?;
        }
        std::fs::rename(&tmp, &at.config)
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&tmp);
        return Err(Failure::usage(format!("{}: {e}", at.config.display())));
    }
    println!(
        "wrote version {} to {}: the next reload applies it (systemctl reload fedgate, or kill -HUP the fedgate process)",
        history::short(&v),
        at.config.display()
    );
    Ok(())
}
