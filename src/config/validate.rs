//! The configuration's checks after parsing: the tenants' domains
//! normalized and owned once, and every cross-key rule (ids, consoles,
//! rules, files, the claim map), each refusal naming the key.

use std::collections::HashSet;

use super::*;

impl Config {
    /// `tenants[].domains` lower-cased, without a trailing dot, deduplicated;
    /// refused: empty, wildcards, addresses, non-ASCII, and one domain
    /// claimed by tenants of two Entra directories.
    pub(super) fn normalize_domains(&mut self, file: &str) -> Result<(), ConfigError> {
        let invalid = |key: String, reason: String| ConfigError::Invalid {
            file: file.to_string(),
            key,
            reason,
        };
        for (i, t) in self.tenants.iter_mut().enumerate() {
            let mut out: Vec<String> = Vec::new();
            for (j, d) in t.domains.iter().enumerate() {
                let d = crate::domains::normalize_domain(d)
                    .map_err(|r| invalid(format!("tenants[{i}].domains[{j}]"), r))?;
                if !out.contains(&d) {
                    out.push(d);
                }
            }
            t.domains = out;
        }
        let claims = self.tenants.iter().map(|t| {
            // A tenant that is not an Entra directory is its own owner.
            let directory = if t.entra_tenant_id.is_empty() {
                t.id.as_str()
            } else {
                t.entra_tenant_id.as_str()
            };
            (t.id.as_str(), directory, &t.domains[..])
        });
        if let Some((domain, first, second)) = crate::domains::first_conflict(claims) {
            let i = self
                .tenants
                .iter()
                .position(|t| t.id == second)
                .unwrap_or_default();
            return Err(invalid(
                format!("tenants[{i}].domains"),
                format!(
                    "tenants {first:?} and {second:?} both claim the domain {domain:?}: a domain belongs to one Entra tenant (its verified domain), else either tenant's users could be delivered as the other's"
                ),
            ));
        }
        Ok(())
    }

    pub(super) fn validate(&self, file: &str) -> Result<(), ConfigError> {
        let invalid = |key: String, reason: String| ConfigError::Invalid {
            file: file.to_string(),
            key,
            reason,
        };
        if self.version != 1 {
            return Err(invalid(
                "version".into(),
                format!(
                    "unsupported version {}; this fedgate reads version 1",
                    self.version
                ),
            ));
        }
        for (i, c) in self.server.trusted_proxies.iter().enumerate() {
            if let Err(reason) = crate::net::Cidr::parse(c) {
                return Err(invalid(format!("server.trusted_proxies[{i}]"), reason));
            }
        }
        if self.server.cpu_queue == 0 {
            return Err(invalid(
                "server.cpu_queue".into(),
                "must be at least 1 (it is how many verifications may wait for a CPU worker)"
                    .into(),
            ));
        }
        if self.server.cpu_threads > 1024 {
            return Err(invalid(
                "server.cpu_threads".into(),
                "at most 1024 (0: one per core)".into(),
            ));
        }
        if self.server.login_starts_per_minute == 0 {
            return Err(invalid(
                "server.login_starts_per_minute".into(),
                "must be at least 1 (it is how many logins one client may start a minute)".into(),
            ));
        }
        if self.server.login_states_per_tenant == 0 {
            return Err(invalid(
                "server.login_states_per_tenant".into(),
                "must be at least 1 (it is how many logins one tenant may start in 10 minutes)"
                    .into(),
            ));
        }
        let s = &self.server;
        for (key, value) in [
            ("server.header_timeout_secs", s.header_timeout_secs),
            ("server.body_timeout_secs", s.body_timeout_secs),
            (
                "server.tls_handshake_timeout_secs",
                s.tls_handshake_timeout_secs,
            ),
            ("server.max_connections", s.max_connections),
            (
                "server.max_connections_per_client",
                s.max_connections_per_client,
            ),
            (
                "server.max_body_bytes_in_flight",
                s.max_body_bytes_in_flight,
            ),
            ("server.shutdown_grace_secs", s.shutdown_grace_secs),
        ] {
            if value == 0 {
                return Err(invalid(
                    key.into(),
                    "must be at least 1 (0 would disable the bound or refuse every connection)"
                        .into(),
                ));
            }
        }
        let url = self.server.public_url.as_str();
        if !(url.starts_with("https://") || url.starts_with("http://")) || url.ends_with('/') {
            return Err(invalid(
                "server.public_url".into(),
                "must be an absolute http(s) URL without a trailing slash".into(),
            ));
        }
        if self.server.tls_cert_file.is_some() != self.server.tls_key_file.is_some() {
            return Err(invalid(
                "server.tls_key_file".into(),
                "tls_cert_file and tls_key_file go together".into(),
            ));
        }
        if self.server.tls_cert_file.is_none() && !self.server.listen.ip().is_loopback() {
            return Err(invalid(
                "server.listen".into(),
                format!(
                    "{} is not a loopback address: plain HTTP is only allowed on loopback; set tls_cert_file and tls_key_file",
                    self.server.listen
                ),
            ));
        }
        match self.store.kind.as_str() {
            "memory" => {}
            "redis" => {
                let url = self.store.url.as_deref().unwrap_or_default();
                if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                    return Err(invalid(
                        "store.url".into(),
                        if url.is_empty() {
                            "kind = \"redis\" needs a redis:// or rediss:// URL (store.url or FEDGATE_STORE_URL)".into()
                        } else {
                            format!(
                                "{} is not a redis:// or rediss:// (TLS) URL",
                                crate::store::redis::redact_url(url)
                            )
                        },
                    ));
                }
            }
            other => {
                return Err(invalid(
                    "store.kind".into(),
                    format!("unknown store kind {other:?}: use \"memory\" (one instance) or \"redis\" (several)"),
                ))
            }
        }
        if !(10..=60_000).contains(&self.store.timeout_ms) {
            return Err(invalid(
                "store.timeout_ms".into(),
                format!("{} is out of range (10 to 60000)", self.store.timeout_ms),
            ));
        }
        if self.store.memory_max_entries == 0 {
            return Err(invalid(
                "store.memory_max_entries".into(),
                "0 would refuse every login: use a positive number".into(),
            ));
        }
        self.validate_sinks(file)?;
        for (key, date) in self.secret_expiry_dates() {
            if parse_date(&date).is_none() {
                return Err(invalid(key, format!("{date:?} is not a date (YYYY-MM-DD)")));
            }
        }
        let mut seen = HashSet::new();
        for (i, t) in self.tenants.iter().enumerate() {
            if !valid_id(&t.id) {
                return Err(invalid(
                    format!("tenants[{i}].id"),
                    "use letters, digits, '-' and '_' only".into(),
                ));
            }
            if !seen.insert(t.id.as_str()) {
                return Err(invalid(
                    format!("tenants[{i}].id"),
                    format!("duplicate tenant id {:?}", t.id),
                ));
            }
            if t.metadata_file.is_none() && t.metadata_url.is_none() && t.oidc.is_none() {
                return Err(invalid(
                    format!("tenants[{i}]"),
                    "a tenant needs metadata_file or metadata_url (SAML), or an [tenants.oidc] block".into(),
                ));
            }
            if t.entra_tenant_id.trim().is_empty() && t.claims.is_none() {
                return Err(invalid(
                    format!("tenants[{i}].entra_tenant_id"),
                    "the Entra tenant id is required (a SAML IdP that is not Entra needs a [tenants.claims] map instead)".into(),
                ));
            }
            if t.entra_tenant_id.trim().is_empty() && (t.oidc.is_some() || t.graph.is_some()) {
                return Err(invalid(
                    format!("tenants[{i}].entra_tenant_id"),
                    "[tenants.oidc] and [tenants.graph] are Entra's: they need the Entra tenant id"
                        .into(),
                ));
            }
            if let Some((key, reason)) = t.claims.as_ref().and_then(|c| c.problem()) {
                return Err(invalid(format!("tenants[{i}].claims.{key}"), reason));
            }
            if t.metadata_file.is_some() && t.metadata_url.is_some() {
                return Err(invalid(
                    format!("tenants[{i}].metadata_url"),
                    "metadata_file and metadata_url exclude each other".into(),
                ));
            }
            if let Some(u) = &t.metadata_url {
                if !(u.starts_with("https://")
                    || u.starts_with("http://127.0.0.1")
                    || u.starts_with("http://localhost"))
                {
                    return Err(invalid(
                        format!("tenants[{i}].metadata_url"),
                        "must be https:// (plain http only on loopback)".into(),
                    ));
                }
            }
            if t.metadata_refresh_secs < 1 && t.metadata_url.is_some() {
                return Err(invalid(
                    format!("tenants[{i}].metadata_refresh_secs"),
                    "at least 1 second".into(),
                ));
            }
            if let Some(o) = &t.oidc {
                let creds = [
                    o.client_secret_file.is_some(),
                    o.client_cert_file.is_some() || o.client_key_file.is_some(),
                    o.client_pfx_file.is_some(),
                ];
                let n = creds.iter().filter(|c| **c).count();
                if o.client_id.is_some() && n != 1 {
                    return Err(invalid(
                        format!("tenants[{i}].oidc"),
                        "client_id needs exactly one credential: client_secret_file, client_cert_file + client_key_file, or client_pfx_file".into(),
                    ));
                }
                if o.client_cert_file.is_some() != o.client_key_file.is_some() {
                    return Err(invalid(
                        format!("tenants[{i}].oidc"),
                        "client_cert_file and client_key_file go together".into(),
                    ));
                }
                if o.client_pfx_file.is_some() && o.client_pfx_password_env.is_none() {
                    return Err(invalid(
                        format!("tenants[{i}].oidc.client_pfx_password_env"),
                        "name the environment variable that holds the PFX password".into(),
                    ));
                }
                if o.client_id.is_none() && o.audiences.is_empty() {
                    return Err(invalid(
                        format!("tenants[{i}].oidc"),
                        "set client_id (OIDC logins) or audiences (token exchange), or both".into(),
                    ));
                }
            }
            if let Some(g) = &t.graph {
                let secret = g.client_secret_file.is_some();
                let cert = g.client_cert_file.is_some() && g.client_key_file.is_some();
                let half = g.client_cert_file.is_some() != g.client_key_file.is_some();
                if secret == cert || half {
                    return Err(invalid(
                        format!("tenants[{i}].graph"),
                        "exactly one credential: client_secret_file, or client_cert_file + client_key_file".into(),
                    ));
                }
            }
        }
        let mut seen = HashSet::new();
        for (i, c) in self.consoles.iter().enumerate() {
            if !valid_id(&c.id) {
                return Err(invalid(
                    format!("consoles[{i}].id"),
                    "use letters, digits, '-' and '_' only".into(),
                ));
            }
            if !seen.insert(c.id.as_str()) {
                return Err(invalid(
                    format!("consoles[{i}].id"),
                    format!("duplicate console id {:?}", c.id),
                ));
            }
            if c.authn_requests_signed && c.certificate_file.is_none() {
                return Err(invalid(
                    format!("consoles[{i}].authn_requests_signed"),
                    "needs certificate_file: the console's signing certificate (PEM) to verify its AuthnRequests with".into(),
                ));
            }
            if (c.authn_requests_signed || c.certificate_file.is_some()) && c.identifier.is_empty()
            {
                return Err(invalid(
                    format!("consoles[{i}].certificate_file"),
                    "a console that sends AuthnRequests needs its identifier (its SAML entity id)"
                        .into(),
                ));
            }
            let https_or_loopback = |u: &str| {
                u.starts_with("https://")
                    || u.starts_with("http://127.0.0.1")
                    || u.starts_with("http://localhost")
                    || u.starts_with("http://[::1]")
            };
            if let Some(u) = &c.logout_url {
                if !https_or_loopback(u) {
                    return Err(invalid(
                        format!("consoles[{i}].logout_url"),
                        "must be https:// (plain http only on loopback): fedgate sends it signed LogoutRequests from the server".into(),
                    ));
                }
                if c.identifier.is_empty() {
                    return Err(invalid(
                        format!("consoles[{i}].logout_url"),
                        "a SAML console's logout needs its identifier (its SAML entity id): its LogoutResponses are issued by it".into(),
                    ));
                }
            }
            if let Some(u) = c
                .oidc
                .as_ref()
                .and_then(|o| o.backchannel_logout_uri.as_ref())
            {
                if !https_or_loopback(u) {
                    return Err(invalid(
                        format!("consoles[{i}].oidc.backchannel_logout_uri"),
                        "must be https:// (plain http only on loopback): fedgate posts logout tokens to it".into(),
                    ));
                }
            }
            match &c.oidc {
                None if c.identifier.is_empty() || c.reply_url.is_empty() => {
                    return Err(invalid(
                        format!("consoles[{i}]"),
                        "identifier and reply_url are required (or an [consoles.oidc] client registration)".into(),
                    ));
                }
                None => {}
                Some(o) => {
                    if o.client_secret_file.is_some() == o.client_secret_env.is_some() {
                        return Err(invalid(
                            format!("consoles[{i}].oidc"),
                            "exactly one of client_secret_file and client_secret_env".into(),
                        ));
                    }
                    if o.redirect_uris.is_empty() {
                        return Err(invalid(
                            format!("consoles[{i}].oidc.redirect_uris"),
                            "at least one exact redirect URI".into(),
                        ));
                    }
                    if let Some(t) = o
                        .tenants
                        .iter()
                        .find(|t| !self.tenants.iter().any(|x| &x.id == *t))
                    {
                        return Err(invalid(
                            format!("consoles[{i}].oidc.tenants"),
                            format!("no tenant {t:?} is configured"),
                        ));
                    }
                    if o.tenants.is_empty() {
                        return Err(invalid(
                            format!("consoles[{i}].oidc.tenants"),
                            "name the tenants whose users sign in here".into(),
                        ));
                    }
                }
            }
        }
        let consoles: Vec<crate::policy::ConsoleRef> = self
            .consoles
            .iter()
            .map(|c| crate::policy::ConsoleRef {
                id: &c.id,
                kind: c.kind,
                extra_roles: &c.extra_roles,
            })
            .collect();
        let tenants: Vec<&str> = self.tenants.iter().map(|t| t.id.as_str()).collect();
        if let Some(p) = crate::policy::validate(&self.rules, &consoles, &tenants)
            .into_iter()
            .next()
        {
            let i = self.rules.iter().position(|r| r.id == p.rule).unwrap_or(0);
            return Err(invalid(
                format!("rules[{i}] ({})", p.rule),
                format!("{}: {}", p.code, p.message),
            ));
        }
        Ok(())
    }
}

impl Config {
    /// `[[audit.sinks]]`: each refusal starts with its stable code
    /// (`audit.sink_*`).
    fn validate_sinks(&self, file: &str) -> Result<(), ConfigError> {
        use crate::audit::sink;
        let invalid = |i: usize, key: &str, code: &str, reason: String| ConfigError::Invalid {
            file: file.to_string(),
            key: format!("audit.sinks[{i}].{key}"),
            reason: format!("{code}: {reason}"),
        };
        let mut labels = HashSet::new();
        for (i, s) in self.audit.sinks.iter().enumerate() {
            let label = s.name.clone().unwrap_or_else(|| i.to_string());
            if s.name.as_deref().is_some_and(|n| !valid_id(n)) {
                return Err(invalid(
                    i,
                    "name",
                    "audit.sink_name",
                    "use letters, digits, '-' and '_' only (it is a metric label)".into(),
                ));
            }
            if !labels.insert(label.clone()) {
                return Err(invalid(
                    i,
                    "name",
                    "audit.sink_name",
                    format!("two sinks are named {label:?} (a sink without a name is named by its index)"),
                ));
            }
            let target =
                sink::target(s.kind, &s.url).map_err(|r| invalid(i, "url", "audit.sink_url", r))?;
            if !(1..=1_000_000).contains(&s.buffer_events) {
                return Err(invalid(
                    i,
                    "buffer_events",
                    "audit.sink_buffer",
                    format!("{} is out of range (1 to 1000000)", s.buffer_events),
                ));
            }
            let syslog = s.kind == AuditSinkKind::Syslog;
            if syslog && sink::facility(&s.facility).is_none() {
                return Err(invalid(
                    i,
                    "facility",
                    "audit.sink_facility",
                    format!("{:?} is not a syslog facility: use authpriv, auth, daemon, user or local0 to local7", s.facility),
                ));
            }
            if syslog && s.token_file.is_some() {
                return Err(invalid(
                    i,
                    "token_file",
                    "audit.sink_token_file",
                    "a bearer token is for a webhook: syslog has none".into(),
                ));
            }
            let plain = matches!(target, sink::Target::Tcp { .. }) || s.url.starts_with("http://");
            if plain && s.ca_file.is_some() {
                return Err(invalid(
                    i,
                    "ca_file",
                    "audit.sink_ca_file",
                    "the url is not TLS (tls://, https://): the CA would never be used".into(),
                ));
            }
            for (key, value, range) in [
                ("timeout_ms", s.timeout_ms, 10..=600_000),
                ("batch_events", s.batch_events as u64, 1..=10_000),
                ("batch_ms", s.batch_ms, 0..=60_000),
                ("retry_max_ms", s.retry_max_ms, 100..=3_600_000),
            ] {
                if !range.contains(&value) {
                    return Err(invalid(
                        i,
                        key,
                        "audit.sink_range",
                        format!(
                            "{value} is out of range ({} to {})",
                            range.start(),
                            range.end()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
