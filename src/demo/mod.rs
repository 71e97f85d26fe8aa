//! `fedgate demo`: a mock Entra tenant, fedgate, and a mock Autotask-style
//! console, all on loopback (free ports), and scripted logins through real
//! HTTP with real signatures. Prints what happened; succeeds only if every
//! outcome is the expected one.
//!
//! The keys are embedded demo keys (the test keys of this repository):
//! never use them anywhere else.
//!
//! This file holds the demo's constants, users and [`Environment`];
//! `scenarios.rs` the scripted logins of `fedgate demo`, `files.rs` the files
//! it writes (and `fedgate mock init`), `mock_entra.rs` the mock tenant's HTTP
//! face, `browser.rs` and `local_redis.rs` helpers the demo and the tests share.

mod browser;
mod files;
mod local_redis;
mod mock_entra;
mod scenarios;

pub use browser::{Browser, Page};
pub use files::{mock_init, write_files, DemoUrls};
pub use local_redis::LocalRedis;
pub use mock_entra::{serve_mock_console, serve_mock_entra, MockEntraHttp};
pub use scenarios::{run, run_redis};

use std::net::SocketAddr;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::config::Config;
use crate::gateway::App;
use crate::mock::console::MockConsole;
use crate::mock::entra::{self, MockLogin, MockUser};
use crate::mock::entra_oidc::{MockClient, MockEntraOidc};
use crate::mock::oidc_console::{MockApiConsole, MockOidcConsole};
use crate::trust::signing::{JwtSigner, SigningKey};

const ENTRA_KEY: &str = include_str!("../../fixtures/saml/keys/idp_current_key.pem");
const ENTRA_CERT: &str = include_str!("../../fixtures/saml/keys/idp_current_cert.pem");
const FEDGATE_KEY: &str = include_str!("../../tests/data/fedgate_rsa_key.pem");
const FEDGATE_CERT: &str = include_str!("../../tests/data/fedgate_rsa_cert.pem");
const TLS_CERT: &str = include_str!("../../tests/data/tls_cert.pem");
const TLS_KEY: &str = include_str!("../../tests/data/tls_key.pem");

/// The demo tenant's Entra id, and its "Backup Engineering" group.
pub const TENANT_ID: &str = "7d3a0c5e-1b2f-4c8d-9e6a-5f4b3c2d1e0f";
pub const ENGINEERING_GROUP: &str = "5b8f2a1c-3d4e-4f60-8a9b-0c1d2e3f4a5b";
pub const CONSOLE_ID: &str = "autotask-demo";
/// fedgate's app registration in the demo tenant (OIDC logins).
pub const FEDGATE_CLIENT_ID: &str = "3f0c9a52-6d1e-4b7a-9c2d-8e5f4a3b2c1d";
const FEDGATE_CLIENT_SECRET: &str = "demo-only-client-secret";
/// The Application ID URI of fedgate's API (token exchange audience).
pub const FEDGATE_API: &str = "api://fedgate-demo";
/// A service account (an app registration with an app role) for API automation.
pub const AUTOMATION_CLIENT_ID: &str = "9b1d4e7f-2a3c-4d5e-8f60-7a8b9c0d1e2f";
pub const AUTOMATION_CLIENT_SECRET: &str = "demo-only-automation-secret";
/// The Acronis-style console (an OIDC client of fedgate) and the
/// Commvault-style API (fedgate's console tokens).
pub const ACRONIS_ID: &str = "acronis-demo";
const ACRONIS_SECRET: &str = "demo-only-acronis-secret";
pub const COMMVAULT_ID: &str = "commvault-demo";
pub const COMMVAULT_AUDIENCE: &str = "https://commvault.contoso.example/api";
/// The Commvault-style console that starts its own logins (SAML,
/// SP-initiated, signed AuthnRequests), its signing key, and its operators'
/// group (whose rule requires MFA: erin signs in without, and is stepped up).
pub const COMMCELL_ID: &str = "commcell-demo";
pub const COMMVAULT_OPS_GROUP: &str = "6c1e3b5d-2f4a-4b8c-9d0e-1a2b3c4d5e6f";
const COMMCELL_KEY: &str = include_str!("../../fixtures/saml/keys/idp_next_key.pem");
const COMMCELL_CERT: &str = include_str!("../../fixtures/saml/keys/idp_next_cert.pem");
/// The "Cyber Protect Unit Admins" group (Acronis-style console).
pub const UNIT_ADMINS_GROUP: &str = "8d2c4b6a-7e1f-4a3b-9c5d-6e7f8a9b0c1d";
const FEDGATE_EC_KEY: &str = include_str!("../../tests/data/fedgate_ec_key.pem");

/// A running demo environment: three servers on loopback.
pub struct Environment {
    pub fedgate_url: String,
    /// The Acronis-style console (OIDC relying party): `/login`, `/callback`.
    pub acronis_url: String,
    /// The Commvault-style API: `/commandcenter/api/v2/jobs`.
    pub api_url: String,
    pub console_url: String,
    /// The mock Entra tenant's base URL (metadata, and IdP-initiated logins for a browser).
    pub entra_url: String,
    pub app: Arc<App>,
    pub entra_key: SigningKey,
    /// The mock tenant's OpenID Connect side (its sign-in sessions, the
    /// prompts it was sent).
    pub entra_oidc: Arc<MockEntraOidc>,
    /// The mock tenant's SAML side (the LogoutRequests fedgate sent it).
    pub entra_saml: Arc<MockEntraHttp>,
    pub dir: std::path::PathBuf,
    shutdown: Vec<tokio::sync::oneshot::Sender<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl Environment {
    /// Start the mock tenant's metadata, fedgate and the mock console.
    pub async fn start() -> Result<Environment, String> {
        Self::start_with("").await
    }

    /// The same, with more configuration appended to the demo's
    /// (`{console_url}` in it is replaced by the mock console's base URL).
    pub async fn start_with(extra_toml: &str) -> Result<Environment, String> {
        Self::start_instance(extra_toml, None).await
    }

    /// The same, as one of several fedgate instances behind a load balancer:
    /// all answer to the same `public_url` (Entra's Identifier and Reply URL
    /// name it), each on its own loopback port. The store is the one
    /// `extra_toml`'s `[store]` names (memory by default).
    pub async fn start_instance(
        extra_toml: &str,
        public_url: Option<&str>,
    ) -> Result<Environment, String> {
        Self::start_sharing(extra_toml, public_url, None).await
    }

    /// The same, trusting another environment's mock Entra tenant for OIDC
    /// (`shared_entra`: its base URL), as instances behind one load balancer
    /// all trust the one real tenant.
    pub async fn start_sharing(
        extra_toml: &str,
        public_url: Option<&str>,
        shared_entra: Option<&str>,
    ) -> Result<Environment, String> {
        Self::start_full(extra_toml, public_url, shared_entra, true, &[]).await
    }

    /// The same, with `FEDGATE_*` overrides applied as `serve` applies the
    /// environment's (e.g. `FEDGATE_SERVER__TRUSTED_PROXIES`): keys of
    /// `[server]`, which appended TOML cannot reopen.
    pub async fn start_with_overrides(
        extra_toml: &str,
        overrides: &[(String, String)],
    ) -> Result<Environment, String> {
        Self::start_full(extra_toml, None, None, true, overrides).await
    }

    /// The demo with a tenant fedgate signs users in to by SAML only (no
    /// `[tenants.oidc]`): the OpenID provider then signs users in at the
    /// tenant with an SP-initiated SAML AuthnRequest.
    pub async fn start_saml_only() -> Result<Environment, String> {
        Self::start_saml_only_with("").await
    }

    /// [`Environment::start_saml_only_with`], with `FEDGATE_*` overrides.
    pub async fn start_saml_only_with_overrides(
        extra_toml: &str,
        overrides: &[(String, String)],
    ) -> Result<Environment, String> {
        Self::start_full(extra_toml, None, None, false, overrides).await
    }

    /// [`Environment::start_saml_only`] with more configuration appended.
    pub async fn start_saml_only_with(extra_toml: &str) -> Result<Environment, String> {
        Self::start_full(extra_toml, None, None, false, &[]).await
    }

    async fn start_full(
        extra_toml: &str,
        public_url: Option<&str>,
        shared_entra: Option<&str>,
        tenant_oidc: bool,
        overrides: &[(String, String)],
    ) -> Result<Environment, String> {
        crate::trust::install_crypto_provider();
        let entra_key = SigningKey::from_pem(ENTRA_KEY, ENTRA_CERT).map_err(err)?;
        let dir = std::env::temp_dir().join(format!(
            "fedgate-demo-{}-{}",
            std::process::id(),
            crate::util::random_id().unwrap_or_default()
        ));
        std::fs::create_dir_all(&dir).map_err(err)?;
        let fedgate_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(err)?;
        let console_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(err)?;
        let entra_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(err)?;
        let entra_url = format!("http://{}", entra_listener.local_addr().map_err(err)?);
        let acronis_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(err)?;
        let acronis_url = format!("http://{}", acronis_listener.local_addr().map_err(err)?);
        let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(err)?;
        let api_url = format!("http://{}", api_listener.local_addr().map_err(err)?);
        let fedgate_addr: SocketAddr = fedgate_listener.local_addr().map_err(err)?;
        let console_addr: SocketAddr = console_listener.local_addr().map_err(err)?;
        let fedgate_url = format!("http://{fedgate_addr}");
        let console_url = format!("http://{console_addr}");
        let public_url = public_url.unwrap_or(&fedgate_url).to_string();

        let config_path = write_files(
            &dir,
            &DemoUrls {
                listen: fedgate_addr.to_string(),
                public_url: public_url.clone(),
                console_url: console_url.clone(),
                oidc: Some((
                    shared_entra.unwrap_or(&entra_url).to_string(),
                    acronis_url.clone(),
                    api_url.clone(),
                )),
                tenant_oidc,
            },
            &extra_toml.replace("{console_url}", &console_url),
        )?;
        let config = Config::load(&config_path, overrides).map_err(err)?;
        let store = crate::store::from_config(&config.store).map_err(err)?;
        // Versioned and recorded as `fedgate serve` does: the demo's
        // decisions name their configuration, and its access review reads
        // the rules from the history.
        let text = std::fs::read_to_string(&config_path).map_err(err)?;
        let app = App::new(config, store, Box::new(OffsetDateTime::now_utc))
            .map_err(err)?
            .with_version(Some(crate::config::history::version_of(&text)));
        crate::gateway::reload::record(
            &app,
            &config_path,
            &text,
            crate::gateway::reload::env_names(overrides),
            "start",
        )?;
        let app = Arc::new(app);
        app.spawn_audit_sinks();

        let mut shutdown = Vec::new();
        let mut tasks = Vec::new();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        shutdown.push(tx);
        let served = app.clone();
        tasks.push(tokio::spawn(async move {
            let _ = crate::http::serve(served, fedgate_listener, async {
                let _ = rx.await;
            })
            .await;
        }));

        // The console learns fedgate's signing certificate the way a real one
        // does: from fedgate's IdP metadata, over HTTP.
        let idp = Arc::new(
            crate::trust::refresh::IdpTrust::remote(
                "console",
                "",
                format!("{fedgate_url}/idp/metadata"),
                None,
                std::time::Duration::from_secs(1),
            )
            .map_err(err)?,
        );
        idp.refresh(OffsetDateTime::now_utc()).await.map_err(err)?;
        let commcell = Arc::new(crate::mock::saml_console::MockSpConsole {
            idp: idp.clone(),
            settings: crate::inbound::saml::SamlSettings::new(
                format!("{api_url}/webconsole"),
                format!("{api_url}/webconsole"),
            ),
            sso_url: format!("{public_url}/idp/sso"),
            key: SigningKey::from_pem(COMMCELL_KEY, COMMCELL_CERT).map_err(err)?,
            role_attribute: crate::consoles::profile(crate::consoles::ConsoleKind::Commvault)
                .role_attribute
                .to_string(),
            outstanding: Default::default(),
            sessions: Default::default(),
            logouts: Default::default(),
            last_posted: Default::default(),
        });
        let console = Arc::new(MockConsole {
            idp,
            settings: crate::inbound::saml::SamlSettings::new(
                format!("{console_url}/singlesignon/saml/metadata"),
                format!("{console_url}/singlesignon/saml/SSO"),
            ),
            users: vec![
                "alice@contoso.example".into(),
                "dave@contoso.example".into(),
            ],
            role_attribute: crate::consoles::profile(crate::consoles::ConsoleKind::Autotask)
                .role_attribute
                .to_string(),
            scope_attribute: crate::consoles::profile(crate::consoles::ConsoleKind::Autotask)
                .scope_attribute
                .to_string(),
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        shutdown.push(tx);
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(console_listener, crate::mock::console::router(console))
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        }));
        // The mock Entra tenant, over HTTP: its federation metadata, and
        // IdP-initiated logins a browser can click (My Apps, in short).
        let tenant_rt = app.tenants.get("contoso").ok_or("no tenant")?;
        let entra = Arc::new(MockEntraHttp {
            base: entra_url.clone(),
            key: SigningKey::from_pem(ENTRA_KEY, ENTRA_CERT).map_err(err)?,
            sp_entity_id: tenant_rt.settings.sp_entity_id.clone(),
            acs_url: tenant_rt.settings.acs_url.clone(),
            sp_certs: app
                .keys()
                .published()
                .iter()
                .map(|k| k.cert().clone())
                .collect(),
            logouts: Default::default(),
        });
        // …and its OpenID Connect side: fedgate's app registration and a
        // service account's, the same users.
        let entra_oidc = Arc::new(MockEntraOidc::new(
            entra_url.clone(),
            TENANT_ID.into(),
            JwtSigner::from_pem(ENTRA_KEY).map_err(err)?,
            vec![
                MockClient {
                    client_id: FEDGATE_CLIENT_ID.into(),
                    secret: Some(FEDGATE_CLIENT_SECRET.into()),
                    redirect_uris: vec![
                        format!("{public_url}/oidc/contoso/callback"),
                        format!("{public_url}/oidc/contoso/signed-out"),
                    ],
                    ..MockClient::default()
                },
                MockClient {
                    client_id: AUTOMATION_CLIENT_ID.into(),
                    secret: Some(AUTOMATION_CLIENT_SECRET.into()),
                    app_roles: vec!["Backup.Automation".into()],
                    service_principal_id: "c4e2a9d1-5b6f-4a70-8d3e-2f1a0b9c8d7e".into(),
                    ..MockClient::default()
                },
            ],
            vec![alice(), bob(), carol(), dave(), erin()],
        ));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        shutdown.push(tx);
        let served_oidc = entra_oidc.clone();
        let entra_saml = entra.clone();
        tasks.push(tokio::spawn(async move {
            let router = entra
                .router()
                .merge(crate::mock::entra_oidc::router(served_oidc));
            let _ = axum::serve(entra_listener, router)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        }));
        // The Acronis-style console: an OIDC relying party of fedgate.
        let acronis = Arc::new(MockOidcConsole::new(
            acronis_url.clone(),
            fedgate_url.clone(),
            ACRONIS_ID.into(),
            ACRONIS_SECRET.into(),
        ));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        shutdown.push(tx);
        tasks.push(tokio::spawn(async move {
            let _ = axum::serve(
                acronis_listener,
                crate::mock::oidc_console::oidc_router(acronis),
            )
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
        }));
        // The Commvault-style API trusts fedgate's JWKS, fetched over HTTP.
        let jwks: jsonwebtoken::jwk::JwkSet = reqwest::get(format!("{fedgate_url}/oauth2/jwks"))
            .await
            .map_err(err)?
            .json()
            .await
            .map_err(err)?;
        let api = Arc::new(MockApiConsole {
            issuer: fedgate_url.clone(),
            audience: COMMVAULT_AUDIENCE.into(),
            jwks,
            jobs: vec![
                (1001, "contoso".into(), "FS-01".into()),
                (1002, "contoso".into(), "SQL-02".into()),
                (2001, "fabrikam".into(), "EXCH-01".into()),
            ],
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        shutdown.push(tx);
        tasks.push(tokio::spawn(async move {
            let router = crate::mock::oidc_console::api_router(api)
                .merge(crate::mock::saml_console::router(commcell));
            let _ = axum::serve(api_listener, router)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        }));
        Ok(Environment {
            acronis_url,
            api_url,
            fedgate_url,
            console_url,
            entra_url,
            app,
            entra_key,
            entra_oidc,
            entra_saml,
            dir,
            shutdown,
            tasks,
        })
    }

    /// An IdP-initiated response from the mock tenant, as Entra signs it.
    pub fn entra_response(
        &self,
        user: &MockUser,
        audience: Option<&str>,
    ) -> Result<String, String> {
        let tenant = self.app.tenants.get("contoso").ok_or("no tenant")?;
        let login = MockLogin {
            tenant_id: TENANT_ID.into(),
            sp_entity_id: audience
                .unwrap_or(&tenant.settings.sp_entity_id)
                .to_string(),
            acs_url: tenant.settings.acs_url.clone(),
            issue_instant: OffsetDateTime::now_utc(),
            in_response_to: None,
            id_seed: crate::util::random_id().ok_or("rng")?,
        };
        let xml = entra::signed_response(user, &login, &self.entra_key).map_err(err)?;
        use base64::Engine;
        Ok(base64::engine::general_purpose::STANDARD.encode(xml))
    }

    /// Post a SAMLResponse to fedgate's ACS; returns (status, body).
    pub async fn post_to_fedgate(
        &self,
        b64: &str,
        relay: Option<&str>,
    ) -> Result<(u16, String), String> {
        let mut form = vec![("SAMLResponse", b64.to_string())];
        if let Some(r) = relay {
            form.push(("RelayState", r.to_string()));
        }
        let resp = reqwest::Client::new()
            .post(format!("{}/saml/contoso/acs", self.fedgate_url))
            .form(&form)
            .send()
            .await
            .map_err(err)?;
        Ok((resp.status().as_u16(), resp.text().await.map_err(err)?))
    }

    /// A fresh IdP-initiated login of `user` posted to fedgate: (status, body).
    pub async fn login(
        &self,
        user: &MockUser,
        console: Option<&str>,
    ) -> Result<(u16, String), String> {
        self.post_to_fedgate(&self.entra_response(user, None)?, console)
            .await
    }

    /// Follow fedgate's auto-post form to the console, as a browser would.
    pub async fn follow_form(&self, html: &str) -> Result<(u16, serde_json::Value), String> {
        let (action, fields) = parse_form(html).ok_or("fedgate's page holds no form")?;
        let resp = reqwest::Client::new()
            .post(action)
            .form(&fields)
            .send()
            .await
            .map_err(err)?;
        let status = resp.status().as_u16();
        let body = resp.text().await.map_err(err)?;
        Ok((
            status,
            serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
        ))
    }

    pub async fn stop(mut self) {
        for tx in self.shutdown.drain(..) {
            let _ = tx.send(());
        }
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The action and hidden fields of the first form of an HTML page.
pub fn parse_form(html: &str) -> Option<(String, Vec<(String, String)>)> {
    let unescape = |s: &str| {
        s.replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    };
    let attr = |tag: &str, name: &str| -> Option<String> {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let end = tag[start..].find('"')? + start;
        Some(unescape(&tag[start..end]))
    };
    let form_start = html.find("<form")?;
    let form_tag_end = html[form_start..].find('>')? + form_start;
    let action = attr(&html[form_start..form_tag_end], "action")?;
    let mut fields = Vec::new();
    let mut rest = &html[form_tag_end..];
    while let Some(i) = rest.find("<input") {
        let end = rest[i..].find('>')? + i;
        let tag = &rest[i..end];
        if let (Some(n), Some(v)) = (attr(tag, "name"), attr(tag, "value")) {
            fields.push((n, v));
        }
        rest = &rest[end..];
    }
    Some((action, fields))
}

/// The demo users.
pub fn alice() -> MockUser {
    MockUser {
        object_id: "3f2504e0-4f89-11d3-9a0c-0305e82c3301".into(),
        upn: "alice@contoso.example".into(),
        display_name: "Alice (Backup Engineering)".into(),
        groups: vec![
            ENGINEERING_GROUP.into(),
            "0aa0a0a0-1111-4222-8333-444455556666".into(),
        ],
        roles: vec![],
        mfa: true,
        groups_overage: false,
    }
}

pub fn bob() -> MockUser {
    MockUser {
        object_id: "9c8b7a69-5d4e-4f3a-8b2c-1d0e9f8a7b6c".into(),
        upn: "bob@contoso.example".into(),
        display_name: "Bob (Finance)".into(),
        groups: vec!["0aa0a0a0-1111-4222-8333-444455556666".into()],
        roles: vec![],
        mfa: false,
        groups_overage: false,
    }
}

/// An Acronis-style unit administrator.
pub fn carol() -> MockUser {
    MockUser {
        object_id: "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9".into(),
        upn: "carol@contoso.example".into(),
        display_name: "Carol (Cyber Protect unit admin)".into(),
        groups: vec![UNIT_ADMINS_GROUP.into()],
        roles: vec![],
        mfa: true,
        groups_overage: false,
    }
}

/// A Commvault operator who signs in without MFA (the console's rule asks
/// for it: a step-up).
pub fn erin() -> MockUser {
    MockUser {
        object_id: "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d".into(),
        upn: "erin@contoso.example".into(),
        display_name: "Erin (Commvault Operators)".into(),
        groups: vec![COMMVAULT_OPS_GROUP.into()],
        roles: vec![],
        mfa: false,
        groups_overage: false,
    }
}

/// A user in 250 groups: Entra sends the overage marker instead of them.
pub fn dave() -> MockUser {
    let mut groups: Vec<String> = (0..249)
        .map(|i| format!("00000000-0000-4000-8000-{i:012}"))
        .collect();
    groups.push(ENGINEERING_GROUP.into());
    MockUser {
        object_id: "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d".into(),
        upn: "dave@contoso.example".into(),
        display_name: "Dave (250 groups)".into(),
        groups,
        roles: vec![],
        mfa: true,
        groups_overage: true,
    }
}
