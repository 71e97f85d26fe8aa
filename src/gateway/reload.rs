//! The App in force, and configuration reloads (SIGHUP).
//!
//! [`Live`] holds the [`App`] every new request is served by. A reload
//! reads the configuration file again and, only when the whole of it
//! validates and loads (every tenant's metadata, every console's
//! certificate), swaps in a new App; otherwise the one in force keeps
//! serving and the refusal is logged and audited with its reason. A request
//! runs under one App from start to end; one reload runs at a time.
//!
//! What a reload may change: tenants, consoles, rules and `[admin]`.
//! `[server]`, `[store]`, `[audit]` and `[signing]` belong to the process
//! (the listening socket, the store connection, the audit file, the key
//! set, which reloads alone from `signing.key_dir`): a file that changes
//! them is refused with `config.restart_required`, so the version in
//! force is always exactly a file's text.
//!
//! Every configuration applied, at start or by a reload, is stored in the
//! history ([`crate::config::history`]) and is one `config.applied` audit
//! event with its diff; every decision names the version it was made under.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::audit::{AuditEvent, ConfigChange, DIFF_MAX};
use crate::config::history::{self, History};
use crate::config::Config;
use crate::identity::ErrorCode;

use super::App;

/// Sections only a restart applies.
pub const RESTART_ONLY: [&str; 5] = ["version", "server", "store", "audit", "signing"];

/// The App in force.
pub struct Live {
    source: Option<Source>,
    current: std::sync::RwLock<Arc<App>>,
    /// The text of the configuration in force (the restart-only sections
    /// of the next one are compared with it).
    text: std::sync::Mutex<String>,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
    /// The background tasks of the App in force, ended when it is swapped.
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// Where the configuration comes from.
struct Source {
    path: PathBuf,
    env: Vec<(String, String)>,
}

/// A reload that went through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reloaded {
    /// A new version is in force.
    Applied {
        version: String,
        previous: Option<String>,
    },
    /// The same text: the App was made again (the files it names re-read),
    /// no new version.
    Unchanged { version: String },
}

/// A reload that was refused: the App in force keeps serving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub code: &'static str,
    pub message: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl Live {
    /// An App that no file configures (tests, the demo): a reload is refused.
    pub fn fixed(app: Arc<App>) -> Live {
        Live::make(app, None, String::new())
    }

    /// The App made from `text`, the content of `path` (with `env`'s
    /// `FEDGATE_*` overrides), reloadable from that file.
    pub fn from_file(app: Arc<App>, path: &Path, env: Vec<(String, String)>, text: String) -> Live {
        Live::make(
            app,
            Some(Source {
                path: path.to_path_buf(),
                env,
            }),
            text,
        )
    }

    fn make(app: Arc<App>, source: Option<Source>, text: String) -> Live {
        Live {
            source,
            current: std::sync::RwLock::new(app),
            text: std::sync::Mutex::new(text),
            reloading: tokio::sync::Mutex::new(()),
            tasks: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The App in force.
    pub fn app(&self) -> Arc<App> {
        match self.current.read() {
            Ok(a) => a.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Start the background tasks of the App in force (metadata refresh,
    /// key reload timer, expiry warnings, audit checkpoints and fsyncs),
    /// and reload on SIGHUP. The signal handler is installed before this
    /// returns, so a SIGHUP sent while the server is still starting is a
    /// reload, not the default action (which ends the process). Call it
    /// from within the runtime.
    pub fn spawn_upkeep(self: &Arc<Self>) {
        self.start_tasks(&self.app());
        #[cfg(unix)]
        {
            let mut hup = match tokio::signal::unix::signal(
                tokio::signal::unix::SignalKind::hangup(),
            ) {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!(error = %e, "no SIGHUP handler: no configuration reloads (keys still reload every 30 s)");
                    return;
                }
            };
            let live = Arc::downgrade(self);
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    let Some(live) = live.upgrade() else { return };
                    tracing::info!("SIGHUP: reloading the configuration and the signing keys");
                    // The outcome is logged and audited by reload().
                    let _ = live.reload().await;
                }
            });
        }
    }

    fn start_tasks(&self, app: &Arc<App>) {
        let mut tasks = app.spawn_refresh();
        tasks.push(app.spawn_key_reload());
        tasks.push(app.spawn_expiry_warnings());
        tasks.extend(app.spawn_audit_checkpoints());
        tasks.extend(app.spawn_audit_sync());
        if let Ok(mut t) = self.tasks.lock() {
            for old in t.drain(..) {
                old.abort();
            }
            *t = tasks;
        }
    }

    /// Read the configuration file again and apply it if it validates and
    /// loads; else keep the App in force. Both outcomes are logged and
    /// audited. The signing keys are reloaded first, whatever the outcome.
    pub async fn reload(&self) -> Result<Reloaded, Refused> {
        let _one = self.reloading.lock().await;
        let old = self.app();
        if let Err(e) = old.reload_keys() {
            tracing::warn!(error = %e, "the key directory does not load: keeping the keys in force");
        }
        let result = self.try_reload(&old).await;
        match &result {
            Ok(Reloaded::Applied { version, previous }) => {
                old.metrics.config_reload("applied", "ok");
                tracing::info!(
                    version = history::short(version),
                    previous = previous.as_deref().map(history::short).unwrap_or("-"),
                    "configuration reloaded: the new version is in force"
                )
            }
            Ok(Reloaded::Unchanged { version }) => {
                old.metrics.config_reload("unchanged", "ok");
                tracing::info!(
                    version = history::short(version),
                    "configuration unchanged; the files it names were read again"
                )
            }
            Err(r) => {
                old.metrics.config_reload("refused", r.code);
                tracing::warn!(
                    code = r.code,
                    "configuration reload refused, the version in force keeps serving: {}",
                    r.message
                );
                let mut event = AuditEvent::new(old.now(), "-", "config", None);
                event.outcome = "refused";
                event.code = "config.reload_refused".into();
                event.reason = crate::util::clip(&r.to_string(), 2048);
                old.record_audit(&event);
            }
        }
        result
    }

    async fn try_reload(&self, old: &Arc<App>) -> Result<Reloaded, Refused> {
        let Some(source) = &self.source else {
            return Err(Refused {
                code: "config.no_file",
                message: "this fedgate was not started from a configuration file".into(),
            });
        };
        let file = source.path.display().to_string();
        let (config, text) = Config::read(&source.path, &source.env).map_err(|e| Refused {
            code: e.code(),
            message: e.to_string(),
        })?;
        let running = self.text.lock().map(|t| t.clone()).unwrap_or_default();
        let changed = restart_only_changes(&running, &text);
        if !changed.is_empty() {
            return Err(Refused {
                code: "config.restart_required",
                message: format!(
                    "{file} changes [{}], which only a restart applies; nothing was applied (restart fedgate, or undo that change and reload)",
                    changed.join("], [")
                ),
            });
        }
        let version = history::version_of(&text);
        let new = old
            .reconfigured(config, version.clone())
            .map_err(|e| Refused {
                code: e.code(),
                message: e.to_string(),
            })?;
        // A new tenant's metadata URL is fetched before it is in force; one
        // with neither a fetch nor a saved copy could sign no one in.
        new.refresh_trust().await;
        if let Some(t) = new.tenants_without_metadata().first() {
            return Err(Refused {
                code: "config.metadata_unavailable",
                message: format!("tenant {t}: its metadata URL cannot be fetched and there is no last-known-good copy in the state directory"),
            });
        }
        let same = old.config_version.as_deref() == Some(version.as_str());
        let previous = old.config_version.clone();
        if !same {
            record(&new, &source.path, &text, env_names(&source.env), "reload").map_err(|e| {
                Refused {
                    code: "config.history_unwritable",
                    message: e,
                }
            })?;
        }
        let new = Arc::new(new);
        if let Ok(mut cur) = self.current.write() {
            *cur = new.clone();
        }
        if let Ok(mut t) = self.text.lock() {
            *t = text;
        }
        self.start_tasks(&new);
        Ok(if same {
            Reloaded::Unchanged { version }
        } else {
            Reloaded::Applied { version, previous }
        })
    }
}

/// The restart-only sections `new` changes against `running`.
pub fn restart_only_changes(running: &str, new: &str) -> Vec<&'static str> {
    let (Ok(a), Ok(b)) = (
        toml::from_str::<toml::Table>(running),
        toml::from_str::<toml::Table>(new),
    ) else {
        return Vec::new();
    };
    RESTART_ONLY
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .collect()
}

/// The names of the `FEDGATE_*` variables that override keys.
pub fn env_names(env: &[(String, String)]) -> Vec<String> {
    let mut names: Vec<String> = env
        .iter()
        .map(|(k, _)| k.clone())
        .filter(|k| {
            k.starts_with("FEDGATE_")
                && !matches!(
                    k.as_str(),
                    "FEDGATE_CONFIG" | "FEDGATE_LOG" | "FEDGATE_ADMIN_TOKEN"
                )
        })
        .collect();
    names.sort();
    names
}

/// Store the configuration `app` was made from (`text`, read from `path`)
/// in the history and audit it as applied (`source`: `start` or `reload`),
/// with its diff against the version before. Fails when the history cannot
/// be written (then the configuration must not be applied: it could never
/// be restored or reviewed).
pub fn record(
    app: &App,
    path: &Path,
    text: &str,
    env: Vec<String>,
    source: &str,
) -> Result<history::Entry, String> {
    let state = app
        .config
        .server
        .state_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("state"));
    let hist = History::new(&state);
    let version = hist
        .save(text)
        .map_err(|e| format!("{} (server.state_dir): {e}", hist.dir().display()))?;
    let previous = hist.last().map(|e| e.version);
    let old_text = previous
        .as_deref()
        .and_then(|p| hist.text(p).ok())
        .unwrap_or_default();
    let diff = crate::config::diff::unified(
        &old_text,
        text,
        previous.as_deref().map(history::short).unwrap_or("(none)"),
        history::short(&version),
    );
    let (modified, owner_uid) = history::file_facts(path);
    let entry = history::Entry {
        version: version.clone(),
        applied: app.now(),
        source: source.to_string(),
        file: path.display().to_string(),
        modified,
        owner_uid,
        previous: previous.clone(),
        env: env.clone(),
    };
    hist.append(&entry)
        .map_err(|e| format!("{}/history.jsonl: {e}", hist.dir().display()))?;
    app.metrics.config_version(history::short(&version));
    let mut event = AuditEvent::new(app.now(), "-", "config", None);
    event.outcome = "changed";
    event.code = "config.applied".into();
    event.reason = format!(
        "configuration {} applied at {source} from {} ({}: +{} -{} lines)",
        history::short(&version),
        entry.file,
        match &previous {
            Some(p) if *p == version => "same as the version before".to_string(),
            Some(p) => format!("against {}", history::short(p)),
            None => "the first version".to_string(),
        },
        diff.added,
        diff.removed
    );
    let truncated = diff.text.len() > DIFF_MAX;
    let mut shown = diff.text;
    if truncated {
        let mut cut = DIFF_MAX;
        while !shown.is_char_boundary(cut) {
            cut -= 1;
        }
        shown.truncate(cut);
    }
    event.change = Some(Box::new(ConfigChange {
        version: version.clone(),
        previous,
        source: source.to_string(),
        file: entry.file.clone(),
        modified,
        owner_uid,
        env,
        added: diff.added,
        removed: diff.removed,
        diff: shown,
        diff_truncated: truncated,
    }));
    event.config = Some(history::short(&version).to_string());
    app.record_audit(&event);
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_process_sections_need_a_restart() {
        let a = "[server]\nlisten = \"127.0.0.1:1\"\n[[rules]]\nid = \"a\"\n";
        let b = "[server]\nlisten = \"127.0.0.1:1\"\n[[rules]]\nid = \"b\"\n";
        let c = "[server]\nlisten = \"127.0.0.1:2\"\n[audit]\nfile = \"x\"\n";
        assert!(restart_only_changes(a, b).is_empty());
        assert_eq!(restart_only_changes(a, c), vec!["server", "audit"]);
    }
}
