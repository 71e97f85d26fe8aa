//! Typed configuration: `fedgate.toml`, with every key overridable by a
//! `FEDGATE_*` environment variable, validated with the file, the key path
//! and the reason in every error.
//!
//! Environment overrides name the key path in upper case with `__` between
//! levels, and array positions as numbers:
//! `FEDGATE_SERVER__LISTEN=0.0.0.0:8443`,
//! `FEDGATE_TENANTS__0__METADATA_FILE=/etc/fedgate/contoso.xml`.
//! Values are parsed as TOML when they can be (numbers, booleans, arrays),
//! otherwise taken as strings. Secrets (private keys) are never inline: the
//! configuration names files (`*_file`), which an orchestrator mounts.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::identity::ErrorCode;
use crate::policy::Rule;

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("{file}: {reason}")]
    Read { file: String, reason: String },
    #[error("{file}: {key}: {reason}")]
    Invalid {
        file: String,
        key: String,
        reason: String,
    },
}

impl ErrorCode for ConfigError {
    fn code(&self) -> &'static str {
        match self {
            ConfigError::Read { .. } => "config.unreadable",
            ConfigError::Invalid { .. } => "config.invalid",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The configuration format version (1).
    #[serde(default = "one")]
    pub version: u32,
    pub server: Server,
    #[serde(default)]
    pub signing: Signing,
    #[serde(default)]
    pub audit: Audit,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub tenants: Vec<Tenant>,
    #[serde(default)]
    pub consoles: Vec<Console>,
    #[serde(default)]
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub admin: Admin,
}
fn one() -> u32 {
    1
}

mod sections;
mod tenants;

pub use sections::*;
pub use tenants::*;

/// The directory a configuration file's relative paths resolve against:
/// its own (`fedgate.toml` alone has the parent "": ".").
pub fn base_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

impl Config {
    /// Read, apply `FEDGATE_*` overrides from `env`, deserialize and validate.
    pub fn load(path: &Path, env: &[(String, String)]) -> Result<Config, ConfigError> {
        Self::read(path, env).map(|(config, _)| config)
    }

    /// [`Config::load`], with the text it was made from (read once: what
    /// the history stores is exactly what was applied).
    pub fn read(path: &Path, env: &[(String, String)]) -> Result<(Config, String), ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            file: file.clone(),
            reason: e.to_string(),
        })?;
        let config = Self::from_str(&text, &file, env, base_dir(path))?;
        Ok((config, text))
    }

    /// Parse `text` (named `file` in errors); relative paths resolve against `base`.
    pub fn from_str(
        text: &str,
        file: &str,
        env: &[(String, String)],
        base: &Path,
    ) -> Result<Config, ConfigError> {
        let mut value: toml::Value = toml::from_str(text).map_err(|e| ConfigError::Read {
            file: file.to_string(),
            reason: e.to_string().trim().to_string(),
        })?;
        let mut store_url = None;
        // Which key paths came from which variable: an error in one of them
        // names the variable, not the file (which does not hold that key).
        let mut from_env: Vec<(String, String)> = Vec::new();
        for (k, v) in env {
            let Some(path) = k.strip_prefix("FEDGATE_") else {
                continue;
            };
            // FEDGATE_STORE_URL names store.url, and wins over FEDGATE_STORE__URL.
            if path == "STORE_URL" {
                store_url = Some(v);
                continue;
            }
            // FEDGATE_CONFIG and FEDGATE_LOG are not keys.
            if !path.contains("__") && matches!(path, "CONFIG" | "LOG" | "ADMIN_TOKEN") {
                continue;
            }
            apply_override(&mut value, path, v).map_err(|reason| ConfigError::Invalid {
                file: "environment".into(),
                key: k.clone(),
                reason,
            })?;
            from_env.push((env_key_path(path), k.clone()));
        }
        if let Some(url) = store_url {
            let store = value
                .as_table_mut()
                .map(|t| {
                    t.entry("store")
                        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                })
                .and_then(|s| s.as_table_mut());
            match store {
                Some(t) => {
                    t.insert("url".into(), toml::Value::String(url.clone()));
                }
                None => {
                    return Err(ConfigError::Invalid {
                        file: "environment".into(),
                        key: "FEDGATE_STORE_URL".into(),
                        reason: "[store] is not a table".into(),
                    })
                }
            }
        }
        if store_url.is_some() {
            from_env.push(("store.url".into(), "FEDGATE_STORE_URL".into()));
        }
        let mut config: Config = serde_path_to_error::deserialize(value).map_err(|e| {
            let key = e.path().to_string();
            let var = from_env.iter().rev().find(|(p, _)| {
                key == *p || key.starts_with(&format!("{p}.")) || key.starts_with(&format!("{p}["))
            });
            ConfigError::Invalid {
                file: match var {
                    Some((_, var)) => format!("environment variable {var}"),
                    None => file.to_string(),
                },
                key,
                reason: e.inner().to_string(),
            }
        })?;
        config.resolve_paths(base);
        config.normalize_domains(file)?;
        config.validate(file)?;
        Ok(config)
    }

    /// Every file fedgate reads at start, with the key naming it (the key
    /// directory and the files fedgate writes are not listed).
    pub fn input_files(&self) -> Vec<(String, &Path)> {
        let mut named: Vec<(String, &Option<PathBuf>)> = Vec::new();
        let mut add = |key: String, p| named.push((key, p));
        add("server.tls_cert_file".into(), &self.server.tls_cert_file);
        add("server.tls_key_file".into(), &self.server.tls_key_file);
        add("signing.key_file".into(), &self.signing.key_file);
        add("signing.cert_file".into(), &self.signing.cert_file);
        add(
            "signing.token_key_file".into(),
            &self.signing.token_key_file,
        );
        add("store.password_file".into(), &self.store.password_file);
        add("store.ca_file".into(), &self.store.ca_file);
        for (i, t) in self.tenants.iter().enumerate() {
            let k = |name: &str| format!("tenants[{i}].{name}");
            add(k("metadata_file"), &t.metadata_file);
            if let Some(o) = &t.oidc {
                add(k("oidc.jwks_file"), &o.jwks_file);
                add(k("oidc.client_secret_file"), &o.client_secret_file);
                add(k("oidc.client_cert_file"), &o.client_cert_file);
                add(k("oidc.client_key_file"), &o.client_key_file);
                add(k("oidc.client_pfx_file"), &o.client_pfx_file);
            }
            if let Some(g) = &t.graph {
                add(k("graph.client_secret_file"), &g.client_secret_file);
                add(k("graph.client_cert_file"), &g.client_cert_file);
                add(k("graph.client_key_file"), &g.client_key_file);
            }
        }
        for (i, c) in self.consoles.iter().enumerate() {
            add(
                format!("consoles[{i}].certificate_file"),
                &c.certificate_file,
            );
            add(
                format!("consoles[{i}].encryption_certificate_file"),
                &c.encryption_certificate_file,
            );
            if let Some(o) = &c.oidc {
                add(
                    format!("consoles[{i}].oidc.client_secret_file"),
                    &o.client_secret_file,
                );
            }
        }
        let encryption = self.tenants.iter().enumerate().flat_map(|(i, t)| {
            t.encryption_keys
                .iter()
                .enumerate()
                .flat_map(move |(j, e)| {
                    let k = |f: &str| format!("tenants[{i}].encryption_keys[{j}].{f}");
                    [
                        (k("key_file"), e.key_file.as_path()),
                        (k("cert_file"), e.cert_file.as_path()),
                    ]
                })
        });
        named
            .into_iter()
            .filter_map(|(k, p)| p.as_deref().map(|p| (k, p)))
            .chain(encryption)
            .collect()
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        for t in &mut self.tenants {
            let mut files: Vec<&mut PathBuf> = Vec::new();
            files.extend(t.metadata_file.as_mut());
            if let Some(o) = &mut t.oidc {
                files.extend(o.jwks_file.as_mut());
                files.extend(o.client_secret_file.as_mut());
                files.extend(o.client_cert_file.as_mut());
                files.extend(o.client_key_file.as_mut());
                files.extend(o.client_pfx_file.as_mut());
            }
            if let Some(g) = &mut t.graph {
                files.extend(g.client_secret_file.as_mut());
                files.extend(g.client_cert_file.as_mut());
                files.extend(g.client_key_file.as_mut());
            }
            for e in &mut t.encryption_keys {
                files.push(&mut e.key_file);
                files.push(&mut e.cert_file);
            }
            for f in files {
                fix(f);
            }
        }
        if self.server.state_dir.is_none() {
            self.server.state_dir = Some(PathBuf::from("state"));
        }
        for c in &mut self.consoles {
            if let Some(p) = c.oidc.as_mut().and_then(|o| o.client_secret_file.as_mut()) {
                fix(p);
            }
            if let Some(p) = c.certificate_file.as_mut() {
                fix(p);
            }
            if let Some(p) = c.encryption_certificate_file.as_mut() {
                fix(p);
            }
        }
        for s in &mut self.audit.sinks {
            for p in [&mut s.ca_file, &mut s.token_file].into_iter().flatten() {
                fix(p);
            }
        }
        for p in [
            &mut self.signing.key_file,
            &mut self.signing.key_dir,
            &mut self.signing.cert_file,
            &mut self.signing.token_key_file,
            &mut self.audit.file,
            &mut self.store.password_file,
            &mut self.store.ca_file,
            &mut self.server.tls_cert_file,
            &mut self.server.tls_key_file,
            &mut self.server.state_dir,
        ]
        .into_iter()
        .flatten()
        {
            fix(p);
        }
    }
}

pub mod diff;
pub mod history;
mod validate;

impl Config {
    /// Every `secret_expires` the configuration records, with its key path.
    pub fn secret_expiry_dates(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (i, t) in self.tenants.iter().enumerate() {
            if let Some(d) = t.oidc.as_ref().and_then(|o| o.secret_expires.clone()) {
                out.push((format!("tenants[{i}].oidc.secret_expires"), d));
            }
            if let Some(d) = t.graph.as_ref().and_then(|g| g.secret_expires.clone()) {
                out.push((format!("tenants[{i}].graph.secret_expires"), d));
            }
        }
        for (i, c) in self.consoles.iter().enumerate() {
            if let Some(d) = c.oidc.as_ref().and_then(|o| o.secret_expires.clone()) {
                out.push((format!("consoles[{i}].oidc.secret_expires"), d));
            }
        }
        out
    }
}

/// A `YYYY-MM-DD` date, as midnight UTC.
pub fn parse_date(s: &str) -> Option<time::OffsetDateTime> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s.trim(), &fmt)
        .ok()
        .map(|d| d.midnight().assume_utc())
}

/// Set the value at `PATH__TO__KEY` (upper case; array indexes as numbers).
/// `TENANTS__0__METADATA_FILE` as serde_path_to_error writes it:
/// `tenants[0].metadata_file`.
fn env_key_path(path: &str) -> String {
    let mut out = String::new();
    for part in path.split("__").map(str::to_ascii_lowercase) {
        if part.bytes().all(|b| b.is_ascii_digit()) && !part.is_empty() {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&part);
        }
    }
    out
}

fn apply_override(root: &mut toml::Value, path: &str, raw: &str) -> Result<(), String> {
    let parts: Vec<String> = path.split("__").map(|p| p.to_ascii_lowercase()).collect();
    let parsed: toml::Value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let mut cur = root;
    for (n, part) in parts.iter().enumerate() {
        let last = n + 1 == parts.len();
        cur = match cur {
            toml::Value::Table(t) => {
                if last {
                    t.insert(part.clone(), parsed);
                    return Ok(());
                }
                t.entry(part.clone())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            }
            toml::Value::Array(a) => {
                let i: usize = part
                    .parse()
                    .map_err(|_| format!("{part:?} is not an array index"))?;
                let len = a.len();
                let slot = a
                    .get_mut(i)
                    .ok_or_else(|| format!("index {i} is past the {len} entries in the file"))?;
                if last {
                    *slot = parsed;
                    return Ok(());
                }
                slot
            }
            _ => return Err(format!("{part:?} is below a value that is not a table")),
        };
    }
    Err("empty key path".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = r#"
[server]
public_url = "http://127.0.0.1:8443"
"#;

    #[test]
    fn minimal_config_takes_defaults() {
        let c = Config::from_str(MIN, "t.toml", &[], Path::new("/etc/fedgate")).unwrap();
        assert_eq!(c.server.listen.port(), 8443);
        assert_eq!(c.server.assertion_lifetime_secs, 300);
        assert_eq!(c.server.header_timeout_secs, 10);
        assert_eq!(c.server.body_timeout_secs, 10);
        assert_eq!(c.server.tls_handshake_timeout_secs, 10);
        assert_eq!(c.server.max_connections, 4096);
        assert_eq!(c.server.max_connections_per_client, 256);
        assert_eq!(c.server.max_body_bytes_in_flight, 64 * 1024 * 1024);
        assert_eq!(c.server.shutdown_grace_secs, 20);
    }

    #[test]
    fn connection_bounds_of_zero_are_refused_with_the_key() {
        for key in [
            "header_timeout_secs",
            "body_timeout_secs",
            "tls_handshake_timeout_secs",
            "max_connections",
            "max_connections_per_client",
            "max_body_bytes_in_flight",
            "shutdown_grace_secs",
        ] {
            let text = format!("{MIN}{key} = 0\n");
            let e = Config::from_str(&text, "t.toml", &[], Path::new(".")).unwrap_err();
            assert_eq!(e.code(), "config.invalid", "{key}");
            assert!(e.to_string().contains(&format!("server.{key}")), "{e}");
            let text = format!("{MIN}{key} = 3\n");
            assert!(Config::from_str(&text, "t.toml", &[], Path::new(".")).is_ok());
        }
    }

    #[test]
    fn unknown_keys_and_bad_types_name_the_key_path() {
        let bad = format!("{MIN}\n[[tenants]]\nid = \"a\"\nentra_tenant_id = \"x\"\nmetadata_file = \"m.xml\"\nclock_skew_secs = \"soon\"\n");
        let e = Config::from_str(&bad, "t.toml", &[], Path::new(".")).unwrap_err();
        assert!(e.to_string().contains("tenants[0].clock_skew_secs"), "{e}");
        let bad = format!("{MIN}\nlisten_on = 1\n");
        let e = Config::from_str(&bad, "t.toml", &[], Path::new(".")).unwrap_err();
        assert!(e.to_string().starts_with("t.toml"), "{e}");
    }

    #[test]
    fn a_bad_key_from_the_environment_names_the_variable_not_the_file() {
        for (var, value, key) in [
            ("FEDGATE_SERVER__LISTN", "127.0.0.1:1", "server"),
            (
                "FEDGATE_SERVER__ASSERTION_LIFETIME_SECS",
                "\"soon\"",
                "server.assertion_lifetime_secs",
            ),
            (
                "FEDGATE_TENANTS__0__CLOCK_SKEW_SECS",
                "\"x\"",
                "tenants[0].clock_skew_secs",
            ),
        ] {
            let text = format!("{MIN}\n[[tenants]]\nid = \"a\"\nentra_tenant_id = \"x\"\nmetadata_file = \"m.xml\"\n");
            let env = vec![(var.to_string(), value.to_string())];
            let e = Config::from_str(&text, "t.toml", &env, Path::new(".")).unwrap_err();
            let s = e.to_string();
            assert!(
                s.starts_with(&format!("environment variable {var}: {key}")),
                "{s}"
            );
            assert!(!s.contains("t.toml"), "{s}");
        }
        // The same mistake in the file names the file.
        let text = format!("{MIN}listn = 1\n");
        let e = Config::from_str(&text, "t.toml", &[], Path::new(".")).unwrap_err();
        assert!(e.to_string().starts_with("t.toml: server"), "{e}");
    }

    #[test]
    fn environment_overrides_any_key() {
        let env = vec![
            (
                "FEDGATE_SERVER__LISTEN".to_string(),
                "127.0.0.1:9000".to_string(),
            ),
            (
                "FEDGATE_SERVER__ASSERTION_LIFETIME_SECS".to_string(),
                "120".to_string(),
            ),
            ("FEDGATE_LOG".to_string(), "debug".to_string()),
        ];
        let c = Config::from_str(MIN, "t.toml", &env, Path::new(".")).unwrap();
        assert_eq!(c.server.listen.port(), 9000);
        assert_eq!(c.server.assertion_lifetime_secs, 120);
    }

    #[test]
    fn the_store_is_memory_by_default_and_redis_takes_its_url_from_the_environment() {
        let c = Config::from_str(MIN, "t.toml", &[], Path::new(".")).unwrap();
        assert_eq!((c.store.kind.as_str(), c.store.timeout_ms), ("memory", 250));
        let redis = format!("{MIN}\n[store]\nkind = \"redis\"\nurl = \"redis://file:6379\"\npassword_file = \"pw\"\n");
        let c = Config::from_str(&redis, "t.toml", &[], Path::new("/etc/fedgate")).unwrap();
        assert_eq!(c.store.url.as_deref(), Some("redis://file:6379"));
        assert_eq!(
            c.store.password_file.as_deref(),
            Some(Path::new("/etc/fedgate/pw"))
        );
        // FEDGATE_STORE_URL wins, over the file and over FEDGATE_STORE__URL, in any order.
        let env = vec![
            (
                "FEDGATE_STORE_URL".to_string(),
                "rediss://:pw@env:6380/1".to_string(),
            ),
            (
                "FEDGATE_STORE__URL".to_string(),
                "redis://nested:6379".to_string(),
            ),
        ];
        let c = Config::from_str(&redis, "t.toml", &env, Path::new(".")).unwrap();
        assert_eq!(c.store.url.as_deref(), Some("rediss://:pw@env:6380/1"));
        assert!(
            !format!("{c:?}").contains(":pw@"),
            "Debug shows no password"
        );
        // Redis without a URL, a URL of another scheme, an unknown kind: config.invalid with the key.
        for (toml, key) in [
            ("[store]\nkind = \"redis\"\n", "store.url"),
            (
                "[store]\nkind = \"redis\"\nurl = \"http://:pw@x:1\"\n",
                "store.url",
            ),
            ("[store]\nkind = \"memcached\"\n", "store.kind"),
            ("[store]\ntimeout_ms = 0\n", "store.timeout_ms"),
        ] {
            let e = Config::from_str(&format!("{MIN}\n{toml}"), "t.toml", &[], Path::new("."))
                .unwrap_err();
            assert_eq!(e.code(), "config.invalid");
            assert!(e.to_string().contains(key), "{e}");
            assert!(!e.to_string().contains(":pw@"), "{e}");
        }
    }

    #[test]
    fn tenant_domains_are_normalised_and_one_domain_has_one_owner() {
        let tenant = |id: &str, tid: &str, domains: &str| {
            format!("\n[[tenants]]\nid = \"{id}\"\nentra_tenant_id = \"{tid}\"\nmetadata_file = \"m.xml\"\ndomains = {domains}\n")
        };
        let text = format!(
            "{MIN}{}",
            tenant(
                "contoso",
                "a",
                r#"["Contoso.COM.", "contoso.com", "contoso.onmicrosoft.com"]"#
            )
        );
        let c = Config::from_str(&text, "t.toml", &[], Path::new(".")).unwrap();
        assert_eq!(
            c.tenants[0].domains,
            vec!["contoso.com".to_string(), "contoso.onmicrosoft.com".into()]
        );
        for bad in [r#"[""]"#, r#"["*.contoso.com"]"#, r#"["a@contoso.com"]"#] {
            let e = Config::from_str(
                &format!("{MIN}{}", tenant("contoso", "a", bad)),
                "t.toml",
                &[],
                Path::new("."),
            )
            .unwrap_err();
            assert_eq!(e.code(), "config.invalid");
            assert!(e.to_string().contains("tenants[0].domains[0]"), "{e}");
        }
        // Two directories, one domain (in any case): refused, naming both tenants.
        let text = format!(
            "{MIN}{}{}",
            tenant("contoso", "a", r#"["contoso.com"]"#),
            tenant("fabrikam", "b", r#"["fabrikam.com", "CONTOSO.com"]"#)
        );
        let e = Config::from_str(&text, "t.toml", &[], Path::new(".")).unwrap_err();
        assert_eq!(e.code(), "config.invalid");
        let s = e.to_string();
        assert!(
            s.contains("tenants[1].domains")
                && s.contains("\"contoso\"")
                && s.contains("\"fabrikam\"")
                && s.contains("\"contoso.com\""),
            "{s}"
        );
        // Two entries for one Entra tenant may share its domains.
        let text = format!(
            "{MIN}{}{}",
            tenant("contoso", "a", r#"["contoso.com"]"#),
            tenant("contoso-oidc", "A", r#"["contoso.com"]"#)
        );
        assert!(Config::from_str(&text, "t.toml", &[], Path::new(".")).is_ok());
    }

    #[test]
    fn plain_http_only_on_loopback() {
        let env = vec![(
            "FEDGATE_SERVER__LISTEN".to_string(),
            "0.0.0.0:8443".to_string(),
        )];
        let e = Config::from_str(MIN, "t.toml", &env, Path::new(".")).unwrap_err();
        assert!(e.to_string().contains("server.listen"), "{e}");
    }
}

#[cfg(test)]
mod example_tests {
    use super::*;
    use crate::consoles::ConsoleKind;

    /// The shipped example must stay loadable: it is the documentation.
    #[test]
    fn the_example_configuration_loads() {
        let text = include_str!("../../fedgate.example.toml");
        let c =
            Config::from_str(text, "fedgate.example.toml", &[], Path::new("/etc/fedgate")).unwrap();
        assert_eq!(c.tenants.len(), 1);
        assert_eq!(c.consoles[0].kind, ConsoleKind::Autotask);
        assert_eq!(
            c.tenants[0].metadata_file.as_deref(),
            Some(Path::new(
                "/etc/fedgate/tenants/contoso-federationmetadata.xml"
            ))
        );
        assert_eq!(
            c.tenants[0].acs_url(&c.server.public_url),
            "https://fedgate.example.com/saml/contoso/acs"
        );
    }

    #[test]
    fn a_rule_naming_an_unknown_role_is_refused_with_its_path() {
        let text = include_str!("../../fedgate.example.toml")
            .replace("roles = [\"Administrator\"]", "roles = [\"Wizard\"]")
            .replace("extra_roles = []", "extra_roles = [\"Backup Operator\"]");
        let e = Config::from_str(&text, "f.toml", &[], Path::new(".")).unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("rules[0]") && s.contains("policy.unknown_role"),
            "{s}"
        );
        // Every role the rule could have named: the profile's and the console's own.
        assert!(
            s.contains("\"Administrator\"") && s.contains("extra_roles: [\"Backup Operator\"]"),
            "{s}"
        );
    }
}
