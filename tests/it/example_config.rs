//! `fedgate.example.toml` documents every key the configuration types
//! accept, and names no key they do not: the types' fields are walked with
//! serde-reflection (what serde itself would accept), the example's keys —
//! set or commented out (`# key = …`, `# [admin]`) — are read from its text,
//! and the two lists must be equal. A key added to `src/config.rs` without
//! a line in the example fails here, as does a stale line in the example.

use std::collections::BTreeSet;

use serde_reflection::{ContainerFormat, Format, Registry, Tracer, TracerConfig};

/// Every key path of the configuration, as `section.sub.key` (arrays of
/// tables by their name: `tenants.oidc.issuer`, `rules.groups`).
fn config_keys() -> BTreeSet<String> {
    let mut tracer = Tracer::new(TracerConfig::default());
    tracer
        .trace_simple_type::<fedgate::config::Config>()
        .expect("the configuration types trace");
    // Enum variants are not keys: a registry of the structs is all we read.
    let registry = tracer.registry_unchecked();
    let mut keys = BTreeSet::new();
    walk(&registry, "Config", "", &mut keys);
    keys
}

/// The struct a field leads to, through `Option` and `Vec`.
fn struct_name(f: &Format) -> Option<&str> {
    match f {
        Format::TypeName(n) => Some(n),
        Format::Option(inner) | Format::Seq(inner) => struct_name(inner),
        _ => None,
    }
}

fn walk(registry: &Registry, name: &str, prefix: &str, keys: &mut BTreeSet<String>) {
    let Some(ContainerFormat::Struct(fields)) = registry.get(name) else {
        return;
    };
    for field in fields {
        let path = if prefix.is_empty() {
            field.name.clone()
        } else {
            format!("{prefix}.{}", field.name)
        };
        match struct_name(&field.value) {
            Some(inner) if matches!(registry.get(inner), Some(ContainerFormat::Struct(_))) => {
                walk(registry, inner, &path, keys)
            }
            _ => {
                keys.insert(path);
            }
        }
    }
}

/// Every key the example sets or shows commented out, with its section.
fn example_keys(text: &str) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut section = String::new();
    for line in text.lines() {
        let active = line.trim_start();
        // A commented-out line is `#` then the line as it would be written.
        let body = active
            .strip_prefix('#')
            .map(str::trim_start)
            .unwrap_or(active);
        if let Some(header) = body.strip_prefix('[') {
            let name = header.trim_start_matches('[');
            if let Some(end) = name.find(']') {
                let name = &name[..end];
                if !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'.')
                {
                    section = name.to_string();
                    continue;
                }
            }
        }
        let Some((key, _)) = body.split_once('=') else {
            continue;
        };
        let key = key.trim();
        let is_key = !key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        // Prose in a comment may hold `=`, but never before it a bare key.
        if !is_key {
            continue;
        }
        keys.insert(if section.is_empty() {
            key.to_string()
        } else {
            format!("{section}.{key}")
        });
    }
    keys
}

#[test]
fn the_example_configuration_documents_every_key_and_no_other() {
    let path = super::repo_path("", "fedgate.example.toml");
    let text = std::fs::read_to_string(&path).expect("fedgate.example.toml");
    let wanted = config_keys();
    assert!(
        wanted.len() > 60 && wanted.contains("consoles.oidc.client_id"),
        "the walk found too little: {wanted:?}"
    );
    let shown = example_keys(&text);
    let missing: Vec<_> = wanted.difference(&shown).collect();
    let unknown: Vec<_> = shown.difference(&wanted).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "{}: keys of the configuration not documented there: {missing:#?}; \
         keys there that the configuration does not have: {unknown:#?}",
        path.display()
    );
}

#[test]
fn the_key_reader_sees_set_commented_and_sectioned_keys_only() {
    let keys = example_keys(
        "version = 1\n# Precedence: flag, then env, e.g. FEDGATE_X=1\n[server]\nlisten = \"a\"   # x = y\n# state_dir = \"s\"\n#                     # a = b continues a comment\n# [admin]\n# tenant = \"t\"\n[[tenants]]\nid = \"c\"\n[tenants.oidc]\n# issuer = \"i\"\n",
    );
    let want: BTreeSet<String> = [
        "version",
        "server.listen",
        "server.state_dir",
        "admin.tenant",
        "tenants.id",
        "tenants.oidc.issuer",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(keys, want);
}
