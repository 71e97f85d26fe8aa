//! `fedgate drill rotate`: rehearse certificate rotation and write a report.
//!
//! `--demo` runs on loopback: a mock Entra tenant whose federation metadata
//! fedgate fetches by URL (refreshed every second through the real refresh
//! path), fedgate itself with a key directory, and a mock Autotask-style
//! console that refreshes fedgate's `/idp/metadata` the same way. Six phases,
//! each with N logins end to end over HTTP (the tenant signs, fedgate verifies
//! and signs, the console verifies):
//!
//! 1. the tenant publishes a next certificate beside the current one: logins
//!    signed with either are accepted;
//! 2. the tenant signs with the next one only;
//! 3. the tenant removes the old certificate: logins signed with the old key
//!    are refused (and must be);
//! 4. fedgate generates its next key: the console sees both, logins pass;
//! 5. fedgate promotes it: it signs, the console accepts;
//! 6. fedgate retires the old key: the console drops it, and an assertion
//!    signed with the retired key is refused by the console.
//!
//! `--config` is read-only: each tenant's metadata now, its certificates with
//! days left, which one signs (Entra lists the active one first) and whether
//! fedgate already trusts the others.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

use crate::demo::{alice, parse_form, CONSOLE_ID, ENGINEERING_GROUP, TENANT_ID};
use crate::gateway::App;
use crate::mock::console::MockConsole;
use crate::mock::entra::{self, MockLogin};
use crate::trust::refresh::IdpTrust;
use crate::trust::signing::SigningKey;

const IDP_CURRENT: (&str, &str) = (
    include_str!("../fixtures/saml/keys/idp_current_key.pem"),
    include_str!("../fixtures/saml/keys/idp_current_cert.pem"),
);
const IDP_NEXT: (&str, &str) = (
    include_str!("../fixtures/saml/keys/idp_next_key.pem"),
    include_str!("../fixtures/saml/keys/idp_next_cert.pem"),
);
const FEDGATE: (&str, &str) = (
    include_str!("../tests/data/fedgate_rsa_key.pem"),
    include_str!("../tests/data/fedgate_rsa_cert.pem"),
);

/// One phase of the report.
#[derive(Debug, Serialize)]
pub struct Phase {
    pub name: String,
    pub attempted: usize,
    pub accepted: usize,
    pub refused: usize,
    pub refusal_codes: BTreeMap<String, usize>,
    /// Valid logins that failed plus retired-key logins that passed.
    pub unexpected: usize,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub mode: &'static str,
    pub phases: Vec<Phase>,
    pub ok: bool,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

struct Rig {
    app: Arc<App>,
    fedgate_url: String,
    console_url: String,
    console_trust: Arc<IdpTrust>,
    metadata: Arc<RwLock<String>>,
    key_dir: std::path::PathBuf,
    dir: std::path::PathBuf,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    http: reqwest::Client,
}

async fn listener() -> Result<(tokio::net::TcpListener, String), String> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(err)?;
    let url = format!("http://{}", l.local_addr().map_err(err)?);
    Ok((l, url))
}

impl Rig {
    async fn start(current: &SigningKey) -> Result<Rig, String> {
        crate::trust::install_crypto_provider();
        let dir = std::env::temp_dir().join(format!(
            "fedgate-drill-{}-{}",
            std::process::id(),
            crate::util::random_id().unwrap_or_default()
        ));
        let key_dir = dir.join("keys");
        std::fs::create_dir_all(key_dir.join("current")).map_err(err)?;
        std::fs::write(key_dir.join("current/key.pem"), FEDGATE.0).map_err(err)?;
        std::fs::write(key_dir.join("current/cert.pem"), FEDGATE.1).map_err(err)?;
        let mut tasks = Vec::new();

        // The tenant's metadata endpoint (what Entra's App Federation Metadata Url serves).
        let metadata = Arc::new(RwLock::new(entra::federation_metadata(
            TENANT_ID,
            &[&current.cert],
        )));
        let (l, entra_url) = listener().await?;
        let served = metadata.clone();
        let router = axum::Router::new().route(
            "/federationmetadata.xml",
            axum::routing::get(move || {
                let served = served.clone();
                async move { served.read().map(|m| m.clone()).unwrap_or_default() }
            }),
        );
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(l, router).await;
        }));

        let (fl, fedgate_url) = listener().await?;
        let (cl, console_url) = listener().await?;
        let toml = format!(
            r#"
[server]
listen = "{addr}"
public_url = "{fedgate_url}"
[signing]
key_dir = "keys"
[audit]
file = "audit.jsonl"
[[tenants]]
id = "contoso"
entra_tenant_id = "{TENANT_ID}"
domains = ["contoso.example"]
metadata_url = "{entra_url}/federationmetadata.xml"
metadata_refresh_secs = 1
[[consoles]]
id = "{CONSOLE_ID}"
kind = "autotask"
display_name = "Autotask-style console (mock)"
identifier = "{console_url}/singlesignon/saml/metadata"
reply_url = "{console_url}/singlesignon/saml/SSO"
extra_roles = ["Backup Operator"]
[[rules]]
id = "engineering"
tenant = "contoso"
console = "{CONSOLE_ID}"
groups = ["{ENGINEERING_GROUP}"]
roles = ["Backup Operator"]
scope = "contoso"
"#,
            addr = fedgate_url.trim_start_matches("http://"),
        );
        let path = dir.join("fedgate.toml");
        std::fs::write(&path, toml).map_err(err)?;
        let config = crate::config::Config::load(&path, &[]).map_err(err)?;
        let app = Arc::new(
            App::new(
                config,
                Arc::new(crate::store::memory::MemoryStore::new()),
                Box::new(OffsetDateTime::now_utc),
            )
            .map_err(err)?,
        );
        app.refresh_trust().await;
        tasks.extend(app.spawn_refresh());
        let served = app.clone();
        tasks.push(tokio::spawn(async move {
            let _ = crate::http::serve(served, fl, std::future::pending()).await;
        }));

        // The console trusts fedgate through fedgate's metadata URL, refreshed every second.
        let console_trust = Arc::new(
            IdpTrust::remote(
                "console",
                "",
                format!("{fedgate_url}/idp/metadata"),
                None,
                Duration::from_secs(1),
            )
            .map_err(err)?,
        );
        console_trust
            .refresh(OffsetDateTime::now_utc())
            .await
            .map_err(err)?;
        tasks.push(console_trust.spawn_loop());
        let profile = crate::consoles::profile(crate::consoles::ConsoleKind::Autotask);
        let console = Arc::new(MockConsole {
            idp: console_trust.clone(),
            settings: crate::inbound::saml::SamlSettings::new(
                format!("{console_url}/singlesignon/saml/metadata"),
                format!("{console_url}/singlesignon/saml/SSO"),
            ),
            users: vec!["alice@contoso.example".into()],
            role_attribute: profile.role_attribute.to_string(),
            scope_attribute: profile.scope_attribute.to_string(),
        });
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(cl, crate::mock::console::router(console)).await;
        }));
        Ok(Rig {
            app,
            fedgate_url,
            console_url,
            console_trust,
            metadata,
            key_dir,
            dir,
            tasks,
            http: reqwest::Client::new(),
        })
    }

    fn publish(&self, keys: &[&SigningKey]) {
        let certs: Vec<_> = keys.iter().map(|k| &k.cert).collect();
        if let Ok(mut m) = self.metadata.write() {
            *m = entra::federation_metadata(TENANT_ID, &certs);
        }
    }

    /// Wait (at most 15 s) until `cond` holds: the refresh loops at work.
    async fn until(&self, what: &str, cond: impl Fn(&Rig) -> bool) -> Result<(), String> {
        for _ in 0..150 {
            if cond(self) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("timed out waiting for {what}"))
    }

    fn fedgate_trusts(&self) -> usize {
        self.app
            .tenants
            .get("contoso")
            .and_then(|t| t.idp.as_ref())
            .and_then(|t| t.current())
            .map_or(0, |m| m.signing_certs.len())
    }

    fn console_trusts(&self) -> usize {
        self.console_trust
            .current()
            .map_or(0, |m| m.signing_certs.len())
    }

    /// One login end to end: `Ok(())` when the console signed the user in,
    /// else the refusal code (fedgate's or the console's).
    async fn login(&self, key: &SigningKey) -> Result<String, String> {
        let login = MockLogin {
            tenant_id: TENANT_ID.into(),
            sp_entity_id: format!("{}/saml/contoso/metadata", self.fedgate_url),
            acs_url: format!("{}/saml/contoso/acs", self.fedgate_url),
            issue_instant: OffsetDateTime::now_utc(),
            in_response_to: None,
            id_seed: crate::util::random_id().unwrap_or_default(),
        };
        let xml = entra::signed_response(&alice(), &login, key).map_err(err)?;
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(xml);
        let resp = self
            .http
            .post(&login.acs_url)
            .form(&[("SAMLResponse", b64.as_str()), ("RelayState", CONSOLE_ID)])
            .send()
            .await
            .map_err(err)?;
        let status = resp.status();
        let body = resp.text().await.map_err(err)?;
        if !status.is_success() {
            return Err(body
                .split("<code>")
                .nth(1)
                .and_then(|s| s.split("</code>").next())
                .unwrap_or("fedgate.error")
                .to_string());
        }
        let (action, fields) = parse_form(&body).ok_or("fedgate's page holds no form")?;
        self.post_console(&action, &fields).await
    }

    /// The console's answer: the thumbprint of fedgate's key that signed, or the refusal code.
    async fn post_console(
        &self,
        action: &str,
        fields: &[(String, String)],
    ) -> Result<String, String> {
        let resp = self
            .http
            .post(action)
            .form(fields)
            .send()
            .await
            .map_err(err)?;
        let ok = resp.status().is_success();
        let v: serde_json::Value = resp.json().await.map_err(err)?;
        if ok {
            Ok(v["signed_by"].as_str().unwrap_or_default().to_string())
        } else {
            Err(format!("console:{}", v["error"].as_str().unwrap_or("?")))
        }
    }

    /// A console assertion signed with a key fedgate no longer publishes.
    async fn retired_key_login(&self, old: &SigningKey) -> Result<String, String> {
        let console = self.app.console(CONSOLE_ID).ok_or("console")?;
        let identity = crate::identity::Identity {
            subject: "alice@contoso.example".into(),
            upn: Some("alice@contoso.example".into()),
            email: Some("alice@contoso.example".into()),
            ..drill_identity()
        };
        let grants = vec![crate::identity::Grant {
            role: "Backup Operator".into(),
            scope: "contoso".into(),
        }];
        let entity_id = format!("{}/idp/metadata", self.fedgate_url);
        let tenant = &self.app.tenants.get("contoso").ok_or("tenant")?.config;
        let delivery = crate::outbound::saml_post::delivery(
            console,
            &entity_id,
            time::Duration::minutes(5),
            tenant,
        );
        let xml = crate::outbound::saml_post::response(
            &identity,
            &grants,
            &delivery,
            old,
            OffsetDateTime::now_utc(),
            &crate::util::random_id().unwrap_or_default(),
        )
        .map_err(err)?;
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(xml);
        self.post_console(
            &format!("{}/singlesignon/saml/SSO", self.console_url),
            &[("SAMLResponse".into(), b64)],
        )
        .await
    }

    async fn stop(self) {
        for t in &self.tasks {
            t.abort();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn drill_identity() -> crate::identity::Identity {
    crate::identity::Identity {
        subject: String::new(),
        subject_format: None,
        issuer: format!("https://sts.windows.net/{TENANT_ID}/"),
        tenant_id: Some(TENANT_ID.into()),
        object_id: Some(alice().object_id),
        kind: crate::identity::PrincipalKind::User,
        source: crate::identity::Source::Saml,
        upn: None,
        email: None,
        display_name: None,
        groups: alice().groups,
        groups_overage: false,
        groups_link: None,
        groups_source: Default::default(),
        auth_methods: vec![],
        roles: vec![],
        mfa: true,
        auth_time: None,
        expires_at: OffsetDateTime::now_utc() + time::Duration::minutes(5),
        token_id: None,
        idp_session: None,
        app_id: None,
        verification: Default::default(),
        attributes: Default::default(),
    }
}

/// Run `n` logins, each expected to pass (`expect_ok`) or to be refused.
async fn phase(
    rig: &Rig,
    name: &str,
    runs: &[(&SigningKey, bool)],
    n: usize,
) -> Result<Phase, String> {
    let mut p = Phase {
        name: name.to_string(),
        attempted: 0,
        accepted: 0,
        refused: 0,
        refusal_codes: BTreeMap::new(),
        unexpected: 0,
    };
    use std::io::Write;
    print!("  {name:<62} ");
    let _ = std::io::stdout().flush();
    for i in 0..n {
        let (key, expect_ok) = runs[i % runs.len()];
        p.attempted += 1;
        match rig.login(key).await {
            Ok(signed_by) => {
                p.accepted += 1;
                if !expect_ok {
                    p.unexpected += 1;
                }
                // fedgate must sign with its current key, whatever the phase.
                let current = rig.app.keys().current.cert().thumbprint_sha256.clone();
                if signed_by != current {
                    p.unexpected += 1;
                    *p.refusal_codes
                        .entry("drill.signed_by_other_key".into())
                        .or_default() += 1;
                }
            }
            Err(code) => {
                p.refused += 1;
                *p.refusal_codes.entry(code).or_default() += 1;
                if expect_ok {
                    p.unexpected += 1;
                }
            }
        }
        if (i + 1) % 10 == 0 {
            print!(".");
            let _ = std::io::stdout().flush();
        }
    }
    println!(" {}/{} accepted", p.accepted, p.attempted);
    Ok(p)
}

/// `fedgate drill rotate --demo`.
pub async fn rotate_demo(n: usize, report: Option<&std::path::Path>) -> Result<bool, String> {
    let n = n.max(2);
    let current = SigningKey::from_pem(IDP_CURRENT.0, IDP_CURRENT.1).map_err(err)?;
    let next = SigningKey::from_pem(IDP_NEXT.0, IDP_NEXT.1).map_err(err)?;
    let rig = Rig::start(&current).await?;
    println!("rotation drill on loopback: mock tenant metadata refreshed every 1 s, fedgate {} , console {}", rig.fedgate_url, rig.console_url);
    let mut phases = Vec::new();
    phases.push(
        phase(
            &rig,
            "0. before: the tenant signs with its current certificate",
            &[(&current, true)],
            n,
        )
        .await?,
    );

    rig.publish(&[&current, &next]);
    rig.until("fedgate to trust both tenant certificates", |r| {
        r.fedgate_trusts() == 2
    })
    .await?;
    phases.push(
        phase(
            &rig,
            "1. tenant publishes next beside current: both accepted",
            &[(&current, true), (&next, true)],
            n,
        )
        .await?,
    );

    phases.push(phase(&rig, "2. tenant signs with next only", &[(&next, true)], n).await?);

    rig.publish(&[&next]);
    rig.until("fedgate to drop the old tenant certificate", |r| {
        r.fedgate_trusts() == 1
    })
    .await?;
    phases.push(
        phase(
            &rig,
            "3. old certificate removed: old-key logins refused",
            &[(&next, true), (&current, false)],
            n,
        )
        .await?,
    );

    let old_fedgate = SigningKey::from_pem(FEDGATE.0, FEDGATE.1).map_err(err)?;
    crate::trust::keys::generate_next(&rig.key_dir, 730, OffsetDateTime::now_utc())?;
    rig.app.reload_keys()?;
    rig.until("the console to trust fedgate's next key", |r| {
        r.console_trusts() == 2
    })
    .await?;
    phases.push(
        phase(
            &rig,
            "4. fedgate generate-next: console trusts both",
            &[(&next, true)],
            n,
        )
        .await?,
    );

    let before = rig.app.keys().current.cert().thumbprint_sha256.clone();
    crate::trust::keys::promote(
        &rig.key_dir,
        time::Duration::hours(1),
        OffsetDateTime::now_utc(),
    )?;
    rig.app.reload_keys()?;
    if rig.app.keys().current.cert().thumbprint_sha256 == before {
        return Err("promote did not change the signing key".into());
    }
    phases.push(
        phase(
            &rig,
            "5. fedgate promote: the new key signs",
            &[(&next, true)],
            n,
        )
        .await?,
    );

    crate::trust::keys::retire(&rig.key_dir)?;
    rig.app.reload_keys()?;
    rig.until("the console to drop fedgate's retired key", |r| {
        r.console_trusts() == 1
    })
    .await?;
    let mut retire = phase(
        &rig,
        "6. fedgate retire: old key gone from the metadata",
        &[(&next, true)],
        n,
    )
    .await?;
    // The retired key must no longer open the console.
    retire.attempted += 1;
    match rig.retired_key_login(&old_fedgate).await {
        Ok(_) => {
            retire.accepted += 1;
            retire.unexpected += 1;
        }
        Err(code) => {
            retire.refused += 1;
            *retire.refusal_codes.entry(code).or_default() += 1;
        }
    }
    phases.push(retire);
    rig.stop().await;

    let ok = phases.iter().all(|p| p.unexpected == 0);
    print_report(&phases);
    println!(
        "{}",
        if ok {
            "drill passed: no valid login failed, no retired-key login passed"
        } else {
            "DRILL FAILED: see the unexpected column"
        }
    );
    let report_doc = Report {
        mode: "demo",
        phases,
        ok,
    };
    if let Some(path) = report {
        std::fs::write(
            path,
            serde_json::to_string_pretty(&report_doc).map_err(err)?,
        )
        .map_err(err)?;
        println!("report written to {}", path.display());
    }
    Ok(ok)
}

fn print_report(phases: &[Phase]) {
    println!();
    println!(
        "{:<62} {:>9} {:>8} {:>7} {:>10}  refusal codes",
        "phase", "attempted", "accepted", "refused", "unexpected"
    );
    for p in phases {
        let codes: Vec<String> = p
            .refusal_codes
            .iter()
            .map(|(c, n)| format!("{c}×{n}"))
            .collect();
        println!(
            "{:<62} {:>9} {:>8} {:>7} {:>10}  {}",
            p.name,
            p.attempted,
            p.accepted,
            p.refused,
            p.unexpected,
            codes.join(", ")
        );
    }
}

/// One tenant in the read-only rehearsal.
#[derive(Debug, Serialize)]
pub struct TenantRehearsal {
    pub tenant: String,
    pub source: String,
    pub error: Option<String>,
    pub certificates: Vec<CertLine>,
    /// Whether fedgate follows new certificates by itself (a metadata URL).
    pub follows_rotation: bool,
}

#[derive(Debug, Serialize)]
pub struct CertLine {
    pub thumbprint_sha256: String,
    pub days_left: i64,
    /// Entra lists the certificate that signs today first.
    pub signs_today: bool,
    pub trusted_by_fedgate: bool,
}

/// `fedgate drill rotate --config FILE`: read-only.
pub async fn rotate_config(
    path: &std::path::Path,
    report: Option<&std::path::Path>,
) -> Result<bool, String> {
    let env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("FEDGATE_"))
        .collect();
    let config = crate::config::Config::load(path, &env).map_err(err)?;
    let now = OffsetDateTime::now_utc();
    let http = crate::trust::oidc::http_client()?;
    let mut out = Vec::new();
    for t in &config.tenants {
        let (source, fetched): (String, Result<Vec<u8>, String>) =
            match (&t.metadata_url, &t.metadata_file) {
                (Some(url), _) => {
                    let r = async {
                        let resp = http.get(url).send().await.map_err(err)?;
                        if !resp.status().is_success() {
                            return Err(format!("HTTP {}", resp.status()));
                        }
                        resp.bytes().await.map(|b| b.to_vec()).map_err(err)
                    }
                    .await;
                    (url.clone(), r)
                }
                (None, Some(file)) => {
                    (file.display().to_string(), std::fs::read(file).map_err(err))
                }
                (None, None) => continue,
            };
        let mut line = TenantRehearsal {
            tenant: t.id.clone(),
            source,
            error: None,
            certificates: vec![],
            follows_rotation: t.metadata_url.is_some(),
        };
        match fetched.and_then(|b| crate::trust::metadata::IdpMetadata::parse(&b).map_err(err)) {
            Ok(md) => {
                for (i, c) in md.signing_certs.iter().enumerate() {
                    line.certificates.push(CertLine {
                        thumbprint_sha256: c.thumbprint_sha256.clone(),
                        days_left: c.days_left(now),
                        signs_today: i == 0,
                        // A metadata URL is followed: every listed certificate is trusted.
                        // A pinned file is what fedgate trusts, by definition of this read.
                        trusted_by_fedgate: true,
                    });
                }
            }
            Err(e) => line.error = Some(e),
        }
        out.push(line);
    }
    println!(
        "{:<14} {:<66} {:>9} {:<6} {:<8} source",
        "tenant", "certificate (sha256)", "days left", "signs", "trusted"
    );
    let mut ok = true;
    for t in &out {
        if let Some(e) = &t.error {
            ok = false;
            println!("{:<14} ERROR: {e}", t.tenant);
            continue;
        }
        for c in &t.certificates {
            println!(
                "{:<14} {:<66} {:>9} {:<6} {:<8} {}",
                t.tenant,
                c.thumbprint_sha256,
                c.days_left,
                if c.signs_today { "yes" } else { "no" },
                if c.trusted_by_fedgate { "yes" } else { "NO" },
                t.source
            );
            if c.days_left < 0 {
                ok = false;
            }
        }
        if !t.follows_rotation {
            println!("{:<14} note: metadata is a pinned file; when Entra adds a next certificate, download the metadata again (or use metadata_url)", t.tenant);
        }
    }
    if let Some(path) = report {
        let doc = serde_json::json!({"mode": "config", "tenants": out, "ok": ok});
        std::fs::write(path, serde_json::to_string_pretty(&doc).map_err(err)?).map_err(err)?;
    }
    Ok(ok)
}
