//! `fedgate demo`: a mock Entra tenant, fedgate, and a mock Autotask-style
//! console, all on loopback (free ports), and scripted logins through real
//! HTTP with real signatures. Prints what happened; succeeds only if every
//! outcome is the expected one.
//!
//! The keys are embedded demo keys (the test keys of this repository):
//! never use them anywhere else.

use std::net::SocketAddr;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::config::Config;
use crate::gateway::App;
use crate::mock::console::MockConsole;
use crate::mock::entra::{self, MockLogin, MockUser};
use crate::mock::entra_oidc::{MockClient, MockEntraOidc};
use crate::mock::oidc_console::{MockApiConsole, MockOidcConsole};
use crate::trust::metadata::IdpMetadata;
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
        Self::start_full(extra_toml, public_url, shared_entra, true).await
    }

    /// The demo with a tenant fedgate signs users in to by SAML only (no
    /// `[tenants.oidc]`): the OpenID provider then signs users in at the
    /// tenant with an SP-initiated SAML AuthnRequest.
    pub async fn start_saml_only() -> Result<Environment, String> {
        Self::start_full("", None, None, false).await
    }

    async fn start_full(
        extra_toml: &str,
        public_url: Option<&str>,
        shared_entra: Option<&str>,
        tenant_oidc: bool,
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
        let config = Config::load(&config_path, &[]).map_err(err)?;
        let store = crate::store::from_config(&config.store).map_err(err)?;
        let app =
            Arc::new(App::new(config, store, Box::new(OffsetDateTime::now_utc)).map_err(err)?);

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
                    redirect_uris: vec![format!("{public_url}/oidc/contoso/callback")],
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
            vec![alice(), bob(), carol(), dave()],
        ));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        shutdown.push(tx);
        tasks.push(tokio::spawn(async move {
            let router = entra
                .router()
                .merge(crate::mock::entra_oidc::router(entra_oidc));
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
            let _ = axum::serve(api_listener, crate::mock::oidc_console::api_router(api))
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

/// Write the demo's files into `dir`: the mock tenant's federation
/// metadata, fedgate's (test-only) signing key and certificate, and
/// `fedgate.toml` (listening on `listen`, answering to `public_url`, with the
/// mock console at `console_url`), followed by `extra_toml`. Returns the
/// configuration's path.
/// Where the demo's pieces listen. `oidc` (the mock Entra tenant's base URL,
/// the Acronis-style console's and the Commvault-style API's) adds the OIDC
/// half: fedgate's app registration, the two consoles and their rules.
pub struct DemoUrls {
    pub listen: String,
    pub public_url: String,
    pub console_url: String,
    pub oidc: Option<(String, String, String)>,
    /// With `oidc`: whether the tenant has its `[tenants.oidc]` block.
    pub tenant_oidc: bool,
}

/// Write the demo's keys, metadata, secrets and `fedgate.toml` into `dir`.
pub fn write_files(
    dir: &std::path::Path,
    urls: &DemoUrls,
    extra_toml: &str,
) -> Result<std::path::PathBuf, String> {
    let entra_key = SigningKey::from_pem(ENTRA_KEY, ENTRA_CERT).map_err(err)?;
    let write = |name: &str, body: &str| -> Result<std::path::PathBuf, String> {
        let p = dir.join(name);
        std::fs::write(&p, body).map_err(|e| format!("{}: {e}", p.display()))?;
        Ok(p)
    };
    write(
        "contoso-federationmetadata.xml",
        &match &urls.oidc {
            Some((entra_url, _, _)) => {
                entra::federation_metadata_at(entra_url, TENANT_ID, &[&entra_key.cert])
            }
            None => entra::federation_metadata(TENANT_ID, &[&entra_key.cert]),
        },
    )?;
    write("fedgate-key.pem", FEDGATE_KEY)?;
    write("fedgate-cert.pem", FEDGATE_CERT)?;
    write("fedgate-token-ec.pem", FEDGATE_EC_KEY)?;
    let DemoUrls {
        listen,
        public_url,
        console_url,
        oidc,
        ..
    } = urls;
    let (tenant_oidc, oidc_consoles) = match oidc {
        None => (String::new(), String::new()),
        Some((entra_url, acronis_url, api_url)) => {
            write("contoso-oidc-secret.txt", FEDGATE_CLIENT_SECRET)?;
            write("acronis-client-secret.txt", ACRONIS_SECRET)?;
            (
                if !urls.tenant_oidc {
                    String::new()
                } else {
                    format!(
                        r#"
[tenants.oidc]
issuer = "{entra_url}/{TENANT_ID}/v2.0"
client_id = "{FEDGATE_CLIENT_ID}"
client_secret_file = "contoso-oidc-secret.txt"
audiences = ["{FEDGATE_API}"]
"#
                    )
                },
                format!(
                    r#"
[[consoles]]
id = "{ACRONIS_ID}"
kind = "acronis"
display_name = "Contoso Cyber Protect (Acronis-style, mock)"
[consoles.oidc]
client_id = "{ACRONIS_ID}"
client_secret_file = "acronis-client-secret.txt"
redirect_uris = ["{acronis_url}/callback"]
tenants = ["contoso"]
initiate_login_uri = "{acronis_url}/login"

[[consoles]]
id = "{COMMVAULT_ID}"
kind = "commvault"
display_name = "Contoso Commvault API (mock)"
identifier = "{COMMVAULT_AUDIENCE}"
reply_url = "{api_url}/webconsole/samlAcsIdpInitCallback.do"

[[rules]]
id = "unit-admins-engineering"
tenant = "contoso"
console = "{ACRONIS_ID}"
groups = ["{UNIT_ADMINS_GROUP}"]
roles = ["unit_admin"]
scope = "contoso/engineering"

[[rules]]
id = "automation-service-account"
tenant = "contoso"
console = "{COMMVAULT_ID}"
app_ids = ["{AUTOMATION_CLIENT_ID}"]
app_roles = ["Backup.Automation"]
roles = ["Tenant Users"]
scope = "contoso"
max_token_lifetime_secs = 300
"#
                ),
            )
        }
    };
    let toml = format!(
        r#"
[server]
listen = "{listen}"
public_url = "{public_url}"

[signing]
key_file = "fedgate-key.pem"
cert_file = "fedgate-cert.pem"
token_key_file = "fedgate-token-ec.pem"

[audit]
file = "audit.jsonl"

[[tenants]]
id = "contoso"
entra_tenant_id = "{TENANT_ID}"
metadata_file = "contoso-federationmetadata.xml"
{tenant_oidc}
[[consoles]]
id = "{CONSOLE_ID}"
kind = "autotask"
display_name = "Contoso Backup (Autotask-style, mock)"
identifier = "{console_url}/singlesignon/saml/metadata"
reply_url = "{console_url}/singlesignon/saml/SSO"
extra_roles = ["Backup Operator"]

[[rules]]
id = "engineering-backup-operators"
tenant = "contoso"
console = "{CONSOLE_ID}"
groups = ["{ENGINEERING_GROUP}"]
roles = ["Backup Operator"]
scope = "contoso"
{oidc_consoles}"#
    ) + extra_toml;
    write("fedgate.toml", &toml)
}

/// `fedgate mock init`: the demo's files for a fedgate that listens on
/// `listen` with the repository's test-only TLS certificate (CN localhost),
/// for docker-compose. Demo keys: never use them anywhere else.
pub fn mock_init(
    dir: &std::path::Path,
    listen: &str,
    public_url: &str,
    console_url: &str,
) -> Result<std::path::PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (name, body) in [("tls-cert.pem", TLS_CERT), ("tls-key.pem", TLS_KEY)] {
        let p = dir.join(name);
        std::fs::write(&p, body).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    let extra = "\n# The store: FEDGATE_STORE_URL (redis://…) names the Redis.\n[store]\nkind = \"redis\"\n";
    let urls = DemoUrls {
        listen: listen.into(),
        public_url: public_url.into(),
        console_url: console_url.into(),
        oidc: None,
        tenant_oidc: false,
    };
    let path = write_files(dir, &urls, extra)?;
    // TLS belongs in [server]: insert it there.
    let text = std::fs::read_to_string(&path).map_err(err)?;
    let text = text.replacen(
        "[signing]",
        "tls_cert_file = \"tls-cert.pem\"\ntls_key_file = \"tls-key.pem\"\n\n[signing]",
        1,
    );
    std::fs::write(&path, text).map_err(err)?;
    Ok(path)
}

/// `fedgate mock entra`: the mock tenant (federation metadata, IdP-initiated
/// logins for a browser) for a fedgate at `public_url`, until Ctrl-C/SIGTERM.
pub async fn serve_mock_entra(
    listener: tokio::net::TcpListener,
    public_url: &str,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let entra = Arc::new(MockEntraHttp {
        base: "https://login.microsoftonline.com".into(),
        key: SigningKey::from_pem(ENTRA_KEY, ENTRA_CERT).map_err(err)?,
        sp_entity_id: format!("{public_url}/saml/contoso/metadata"),
        acs_url: format!("{public_url}/saml/contoso/acs"),
    });
    axum::serve(listener, entra.router())
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(err)
}

/// `fedgate mock console`: the mock Autotask-style console at `base_url`,
/// trusting the fedgate at `fedgate_public_url` through its signing
/// certificate (`cert_pem`, as `fedgate mock init` wrote it).
pub async fn serve_mock_console(
    listener: tokio::net::TcpListener,
    base_url: &str,
    fedgate_public_url: &str,
    cert_pem: &str,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let idp = Arc::new(crate::trust::refresh::IdpTrust::fixed(
        "console",
        IdpMetadata::from_pem(cert_pem, &format!("{fedgate_public_url}/idp/metadata"))
            .map_err(err)?,
    ));
    let profile = crate::consoles::profile(crate::consoles::ConsoleKind::Autotask);
    let console = Arc::new(MockConsole {
        idp,
        settings: crate::inbound::saml::SamlSettings::new(
            format!("{base_url}/singlesignon/saml/metadata"),
            format!("{base_url}/singlesignon/saml/SSO"),
        ),
        users: vec!["alice@contoso.example".into()],
        role_attribute: profile.role_attribute.to_string(),
        scope_attribute: profile.scope_attribute.to_string(),
    });
    axum::serve(listener, crate::mock::console::router(console))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(err)
}

/// The mock tenant's HTTP face.
struct MockEntraHttp {
    /// Where its sign-in endpoints are (its metadata says so).
    base: String,
    key: SigningKey,
    sp_entity_id: String,
    acs_url: String,
}

#[derive(serde::Deserialize)]
struct SsoQuery {
    #[serde(rename = "SAMLRequest")]
    saml_request: String,
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
    login_hint: Option<String>,
}

#[derive(serde::Deserialize)]
struct LoginQuery {
    user: String,
    console: Option<String>,
}

impl MockEntraHttp {
    fn router(self: Arc<Self>) -> axum::Router {
        use axum::extract::{Query, State};
        use axum::response::{Html, IntoResponse};
        use axum::routing::get;
        async fn metadata(State(m): State<Arc<MockEntraHttp>>) -> axum::response::Response {
            (
                [(
                    axum::http::header::CONTENT_TYPE,
                    "application/samlmetadata+xml",
                )],
                entra::federation_metadata_at(&m.base, TENANT_ID, &[&m.key.cert]),
            )
                .into_response()
        }
        async fn login(
            State(m): State<Arc<MockEntraHttp>>,
            Query(q): Query<LoginQuery>,
        ) -> axum::response::Response {
            let user = match q.user.as_str() {
                "alice" => alice(),
                "bob" => bob(),
                _ => {
                    return (axum::http::StatusCode::NOT_FOUND, "users: alice, bob\n")
                        .into_response()
                }
            };
            let login = MockLogin {
                tenant_id: TENANT_ID.into(),
                sp_entity_id: m.sp_entity_id.clone(),
                acs_url: m.acs_url.clone(),
                issue_instant: OffsetDateTime::now_utc(),
                in_response_to: None,
                id_seed: crate::util::random_id().unwrap_or_default(),
            };
            match entra::signed_response(&user, &login, &m.key) {
                Ok(xml) => Html(crate::outbound::saml_post::post_form(
                    &m.acs_url,
                    &xml,
                    q.console.as_deref(),
                    "fedgate",
                ))
                .into_response(),
                Err(e) => {
                    (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
                }
            }
        }
        /// SP-initiated: an AuthnRequest (HTTP-Redirect binding) answered
        /// with a signed Response carrying its ID as InResponseTo.
        async fn sso(
            State(m): State<Arc<MockEntraHttp>>,
            Query(q): Query<SsoQuery>,
        ) -> axum::response::Response {
            let bad = |aadsts: &str| {
                (axum::http::StatusCode::BAD_REQUEST, format!("{aadsts}\n")).into_response()
            };
            let Some(xml) = crate::inbound::saml::authn_request::decode_redirect(&q.saml_request)
            else {
                return bad("AADSTS750054: SAMLRequest or SAMLResponse must be present as query string parameters in HTTP request for SAML Redirect binding.");
            };
            let Ok(doc) = crate::xml::parse(&xml) else {
                return bad("AADSTS7500529: The value is not a valid SAML request.");
            };
            let req = doc.root_element();
            let issuer = req
                .children()
                .find(|c| c.tag_name().name() == "Issuer")
                .map(crate::xml::text_content)
                .unwrap_or_default();
            if *issuer != m.sp_entity_id {
                return bad(&format!("AADSTS700016: Application with identifier '{issuer}' was not found in the directory."));
            }
            if req
                .attribute("AssertionConsumerServiceURL")
                .is_some_and(|a| a != m.acs_url)
            {
                return bad("AADSTS50011: The redirect URI specified in the request does not match the redirect URIs configured for the application.");
            }
            let Some(id) = req.attribute("ID") else {
                return bad("AADSTS7500529: The request has no ID.");
            };
            let user = match q.login_hint.as_deref().unwrap_or("alice@contoso.example") {
                "alice@contoso.example" => alice(),
                "bob@contoso.example" => bob(),
                "carol@contoso.example" => carol(),
                "dave@contoso.example" => dave(),
                _ => return bad("AADSTS50034: The user account does not exist in this directory."),
            };
            let login = MockLogin {
                tenant_id: TENANT_ID.into(),
                sp_entity_id: m.sp_entity_id.clone(),
                acs_url: m.acs_url.clone(),
                issue_instant: OffsetDateTime::now_utc(),
                in_response_to: Some(id.to_string()),
                id_seed: crate::util::random_id().unwrap_or_default(),
            };
            match entra::signed_response(&user, &login, &m.key) {
                Ok(xml) => Html(crate::outbound::saml_post::post_form(
                    &m.acs_url,
                    &xml,
                    q.relay_state.as_deref(),
                    "fedgate",
                ))
                .into_response(),
                Err(e) => {
                    (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
                }
            }
        }
        axum::Router::new()
            .route(
                &format!("/{TENANT_ID}/federationmetadata/2007-06/federationmetadata.xml"),
                get(metadata),
            )
            .route(&format!("/{TENANT_ID}/saml2/idp-initiated"), get(login))
            .route(&format!("/{TENANT_ID}/saml2"), get(sso))
            .with_state(self)
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

/// The OIDC half of the demo: an OpenID Connect login to the Acronis-style
/// console, the user in 250 groups, the service account on the
/// Commvault-style API, and a user token for the wrong audience.
async fn oidc_rows(
    env: &Environment,
    graph: &crate::mock::graph::MockGraph,
    rows: &mut Vec<Row>,
) -> Result<(), String> {
    // 5. Carol signs in to the Acronis-style console through fedgate (OIDC both ways).
    let page = Browser::new()
        .get(&format!(
            "{}/login?login_hint=carol@contoso.example",
            env.acronis_url
        ))
        .await?;
    let v: serde_json::Value = serde_json::from_str(&page.body).unwrap_or_default();
    let got = match (page.status, v["role_assignments"].as_array()) {
        (200, Some(a)) => format!(
            "console: {} signed in; {}",
            v["user"].as_str().unwrap_or("?"),
            a.iter()
                .map(|r| format!(
                    "{} on {}",
                    r["role"].as_str().unwrap_or("?"),
                    r["tenant"].as_str().unwrap_or("?")
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (status, _) => format!("console {status}: {}", page.body),
    };
    rows.push(Row {
        scenario: "OIDC login → Acronis-style console (via Entra OIDC)",
        expected: "console: carol@contoso.example signed in; unit_admin on contoso/engineering"
            .into(),
        got,
    });

    // 6. Dave is in 250 groups: Entra sends the overage link; fedgate asks Graph.
    let (status, body) = env.login(&dave(), Some(CONSOLE_ID)).await?;
    let got = if status == 200 {
        let (cs, cj) = env.follow_form(&body).await?;
        format!(
            "console {cs}: {} as {} (Graph: {} pages)",
            cj["user"].as_str().unwrap_or("?"),
            cj["roles"],
            graph.requests.load(std::sync::atomic::Ordering::SeqCst)
        )
    } else {
        format!("fedgate {status} {}", code_in(&body))
    };
    rows.push(Row {
        scenario: "user in 250 groups (overage, resolved by Graph)",
        expected: "console 200: dave@contoso.example as [\"Backup Operator\"] (Graph: 3 pages)"
            .into(),
        got,
    });

    // 7. A service account: app-only token from Entra, exchanged at fedgate,
    //    used on the Commvault-style API (jobs filtered by the granted scope).
    let http = reqwest::Client::new();
    let entra_token: serde_json::Value = http
        .post(format!("{}/{TENANT_ID}/oauth2/v2.0/token", env.entra_url))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", AUTOMATION_CLIENT_ID),
            ("client_secret", AUTOMATION_CLIENT_SECRET),
            ("scope", &format!("{FEDGATE_API}/.default")),
        ])
        .send()
        .await
        .map_err(err)?
        .json()
        .await
        .map_err(err)?;
    let exchange = |subject: String| {
        http.post(format!("{}/oauth2/token", env.fedgate_url))
            .form(&[
                (
                    "grant_type",
                    crate::outbound::token::GRANT_TOKEN_EXCHANGE.to_string(),
                ),
                ("subject_token", subject),
                (
                    "subject_token_type",
                    crate::outbound::token::TYPE_ACCESS_TOKEN.to_string(),
                ),
                ("audience", COMMVAULT_ID.to_string()),
            ])
            .send()
    };
    let issued: serde_json::Value = exchange(
        entra_token["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
    .await
    .map_err(err)?
    .json()
    .await
    .map_err(err)?;
    let got = match issued["access_token"].as_str() {
        Some(t) => {
            let jobs: serde_json::Value = http
                .get(format!("{}/commandcenter/api/v2/jobs", env.api_url))
                .bearer_auth(t)
                .send()
                .await
                .map_err(err)?
                .json()
                .await
                .map_err(err)?;
            let Some(list) = jobs["jobs"].as_array().cloned() else {
                return Err(format!("the API refused fedgate's token: {jobs}"));
            };
            format!(
                "API: {} jobs, all of {:?}; token {} s",
                list.len(),
                list.iter()
                    .filter_map(|j| j["company"].as_str())
                    .collect::<std::collections::BTreeSet<_>>(),
                issued["expires_in"]
            )
        }
        None => format!("fedgate: {}", issued["error_description"]),
    };
    rows.push(Row {
        scenario: "service account → token exchange → Commvault API",
        expected: "API: 2 jobs, all of {\"contoso\"}; token 300 s".into(),
        got,
    });

    // 8. A user's token minted for another API (Microsoft Graph) is refused.
    let graph_token = crate::mock::entra_oidc::MockEntraOidc::new(
        env.entra_url.clone(),
        TENANT_ID.into(),
        JwtSigner::from_pem(ENTRA_KEY).map_err(err)?,
        vec![],
        vec![],
    )
    .user_token(
        &alice(),
        "00000003-0000-0000-c000-000000000000",
        None,
        OffsetDateTime::now_utc().unix_timestamp(),
    )?;
    let refused: serde_json::Value = exchange(graph_token)
        .await
        .map_err(err)?
        .json()
        .await
        .map_err(err)?;
    let code = refused["error_description"]
        .as_str()
        .and_then(|d| d.split(':').next())
        .unwrap_or("?");
    rows.push(Row {
        scenario: "user token for another audience → exchange",
        expected: "fedgate invalid_grant jwt.audience_mismatch".into(),
        got: format!(
            "fedgate {} {code}",
            refused["error"].as_str().unwrap_or("?")
        ),
    });
    Ok(())
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

struct Row {
    scenario: &'static str,
    expected: String,
    got: String,
}

fn code_in(body: &str) -> String {
    body.split("<code>")
        .nth(1)
        .and_then(|s| s.split("</code>").next())
        .unwrap_or("?")
        .to_string()
}

/// Print the table; `true` when every outcome is the expected one.
fn print_rows(rows: &[Row]) -> bool {
    let mut all_ok = true;
    println!("{:<52} {:<6} outcome", "scenario", "ok");
    for r in rows {
        let ok = r.got == r.expected;
        all_ok &= ok;
        println!(
            "{:<52} {:<6} {}",
            r.scenario,
            if ok { "yes" } else { "NO" },
            r.got
        );
        if !ok {
            println!("{:<52} {:<6} expected: {}", "", "", r.expected);
        }
    }
    println!();
    all_ok
}

/// Post `response` to `env`'s fedgate and follow the form to its console:
/// what happened, in one line.
async fn login_line(env: &Environment, response: &str) -> Result<String, String> {
    let (status, body) = env.post_to_fedgate(response, Some(CONSOLE_ID)).await?;
    if status != 200 {
        return Ok(format!("fedgate {status} {}", code_in(&body)));
    }
    let (cs, cj) = env.follow_form(&body).await?;
    Ok(if cs == 200 {
        format!(
            "console: {} signed in as {}",
            cj["user"].as_str().unwrap_or("?"),
            cj["roles"]
        )
    } else {
        format!("console refused ({cs}): {cj}")
    })
}

/// `fedgate demo --store redis[=URL]`: two fedgate instances (A and B, as
/// behind a load balancer: one public URL) sharing one Redis — `url`, or a
/// local `redis-server` started on a free loopback port. A login on A; the
/// same SAMLResponse replayed to B must be refused by B. `Ok(true)` when
/// every outcome is the expected one.
pub async fn run_redis(url: Option<String>) -> Result<bool, String> {
    let mut local = None;
    let url = match url {
        Some(u) => u,
        None => {
            if !LocalRedis::installed() {
                return Err("--store redis without a URL starts a local redis-server, and none is installed: \
                     install it (Debian: apt-get install redis-server) or name one: --store redis=redis://HOST:6379"
                    .into());
            }
            let r = LocalRedis::spawn(false)?;
            let u = r.url();
            println!(
                "redis              {u} (a local redis-server of the demo's own, no persistence)"
            );
            local = Some(r);
            u
        }
    };
    let store = format!("\n[store]\nkind = \"redis\"\nurl = \"{url}\"\n");
    let a = Environment::start_instance(&store, None).await?;
    let b = match Environment::start_instance(&store, Some(&a.fedgate_url)).await {
        Ok(b) => b,
        Err(e) => {
            a.stop().await;
            return Err(e);
        }
    };
    if local.is_none() {
        println!(
            "redis              {}",
            crate::store::redis::redact_url(&url)
        );
    }
    println!(
        "fedgate A          {} (public URL {})",
        a.fedgate_url, a.fedgate_url
    );
    println!(
        "fedgate B          {} (same public URL, same Redis)",
        b.fedgate_url
    );
    println!("mock Entra tenant  {}", a.entra_url);
    println!();
    let result = redis_rows(&a, &b).await;
    a.stop().await;
    b.stop().await;
    drop(local);
    Ok(print_rows(&result?))
}

async fn redis_rows(a: &Environment, b: &Environment) -> Result<Vec<Row>, String> {
    let signed_in = "console: alice@contoso.example signed in as [\"Backup Operator\"]";
    let mut rows = Vec::new();
    let response = a.entra_response(&alice(), None)?;
    rows.push(Row {
        scenario: "engineer's login posted to instance A",
        expected: signed_in.into(),
        got: login_line(a, &response).await?,
    });
    rows.push(Row {
        scenario: "the same response replayed to instance B",
        expected: "fedgate 403 saml.replayed".into(),
        got: login_line(b, &response).await?,
    });
    rows.push(Row {
        scenario: "and to instance A",
        expected: "fedgate 403 saml.replayed".into(),
        got: login_line(a, &response).await?,
    });
    rows.push(Row {
        scenario: "a fresh login posted to instance B",
        expected: signed_in.into(),
        got: login_line(b, &b.entra_response(&alice(), None)?).await?,
    });
    Ok(rows)
}

/// Run the scripted logins; `Ok(true)` when every outcome is the expected one.
pub async fn run(keep: bool) -> Result<bool, String> {
    // Microsoft Graph for the user in 250 groups (100 per page).
    let mut memberships = std::collections::HashMap::new();
    memberships.insert(dave().object_id, dave().groups);
    let (graph_url, graph, graph_stop) =
        crate::mock::graph::serve_loopback(memberships, 100, false)
            .await
            .map_err(err)?;
    let graph_secret = std::env::temp_dir().join(format!(
        "fedgate-demo-graph-{}-{}",
        std::process::id(),
        crate::util::random_id().unwrap_or_default()
    ));
    let graph_toml = crate::mock::graph::tenant_toml(&graph_url, &graph_secret).map_err(err)?;
    let env = Environment::start_with(&graph_toml).await?;
    let _ = std::fs::remove_file(&graph_secret);
    println!(
        "mock Entra tenant  {} (issuer https://sts.windows.net/{TENANT_ID}/)",
        env.entra_url
    );
    println!("fedgate            {}", env.fedgate_url);
    println!(
        "mock console       {} (Autotask-style SAML SP)",
        env.console_url
    );
    println!(
        "mock console       {} (Acronis-style, OpenID Connect client of fedgate)",
        env.acronis_url
    );
    println!(
        "mock API           {} (Commvault-style, accepts fedgate's console tokens)",
        env.api_url
    );
    println!("mock Graph         {graph_url}");
    println!();
    let mut rows = Vec::new();

    // 1. An engineer reaches the console as a backup operator.
    let alice_response = env.entra_response(&alice(), None)?;
    let (status, body) = env
        .post_to_fedgate(&alice_response, Some(CONSOLE_ID))
        .await?;
    let got = if status == 200 {
        let (cs, cj) = env.follow_form(&body).await?;
        if cs == 200 {
            format!(
                "console: {} signed in as {}",
                cj["user"].as_str().unwrap_or("?"),
                cj["roles"]
            )
        } else {
            format!("console refused ({cs}): {cj}")
        }
    } else {
        format!("fedgate {status} {}", code_in(&body))
    };
    rows.push(Row {
        scenario: "engineer (Backup Engineering group) → console",
        expected: "console: alice@contoso.example signed in as [\"Backup Operator\"]".into(),
        got,
    });

    // 2. A user in no mapped group is denied, with the reason.
    let (status, body) = env
        .post_to_fedgate(&env.entra_response(&bob(), None)?, Some(CONSOLE_ID))
        .await?;
    rows.push(Row {
        scenario: "user in no mapped group",
        expected: "fedgate 403 policy.no_rule_matched".into(),
        got: format!("fedgate {status} {}", code_in(&body)),
    });

    // 3. The same response posted twice is refused the second time.
    let (status, body) = env
        .post_to_fedgate(&alice_response, Some(CONSOLE_ID))
        .await?;
    rows.push(Row {
        scenario: "the engineer's response posted again (replay)",
        expected: "fedgate 403 saml.replayed".into(),
        got: format!("fedgate {status} {}", code_in(&body)),
    });

    // 4. A response for another application is refused with its code.
    let wrong = env.entra_response(&alice(), Some("https://other-app.example/saml/metadata"))?;
    let (status, body) = env.post_to_fedgate(&wrong, Some(CONSOLE_ID)).await?;
    rows.push(Row {
        scenario: "response for another application (audience)",
        expected: "fedgate 403 saml.audience_mismatch".into(),
        got: format!("fedgate {status} {}", code_in(&body)),
    });

    oidc_rows(&env, &graph, &mut rows).await?;
    let _ = graph_stop.send(());

    let all_ok = print_rows(&rows);
    let audit = std::fs::read_to_string(env.dir.join("audit.jsonl")).unwrap_or_default();
    println!(
        "audit: {} decisions recorded as JSON lines; the first:",
        audit.lines().count()
    );
    println!("  {}", audit.lines().next().unwrap_or("(none)"));
    if keep {
        println!("\n--keep: everything stays up. Click through in a browser:");
        println!("  {}/{TENANT_ID}/saml2/idp-initiated?user=alice&console={CONSOLE_ID}   (an engineer: reaches the console)", env.entra_url);
        println!("  {}/{TENANT_ID}/saml2/idp-initiated?user=bob&console={CONSOLE_ID}     (no mapped group: refused, with the reason)", env.entra_url);
        println!("  {}/{TENANT_ID}/federationmetadata/2007-06/federationmetadata.xml   (the mock tenant's metadata)", env.entra_url);
        println!(
            "  {}/saml/contoso/metadata   (fedgate's SP metadata, to upload into Entra)",
            env.fedgate_url
        );
        println!(
            "  {}/idp/metadata            (fedgate's IdP metadata, for the console)",
            env.fedgate_url
        );
        println!(
            "  {}/login?login_hint=carol@contoso.example   (OIDC: the Acronis-style console signs in through fedgate and Entra)",
            env.acronis_url
        );
        println!(
            "  {}/oidc/contoso/login?console={CONSOLE_ID}   (an Entra OIDC login delivered to the SAML console)",
            env.fedgate_url
        );
        println!(
            "  {}/.well-known/openid-configuration   (fedgate as OpenID provider)",
            env.fedgate_url
        );
        println!("  {}/metrics", env.fedgate_url);
        println!("Press Ctrl-C to stop.");
        let _ = tokio::signal::ctrl_c().await;
    }
    env.stop().await;
    Ok(all_ok)
}

/// A minimal browser for scripted logins: follows redirects itself (so each
/// hop is visible), keeps cookies per host, and auto-submits fedgate's
/// self-posting forms when asked.
pub struct Browser {
    http: reqwest::Client,
    cookies: std::sync::Mutex<Vec<(String, String, String)>>,
}

/// Where a browser navigation ended.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub url: String,
    pub body: String,
    /// Every URL visited, in order.
    pub hops: Vec<String>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Self {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            cookies: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn host_of(url: &str) -> String {
        url.split("://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .unwrap_or_default()
            .to_string()
    }

    fn cookie_header(&self, url: &str) -> Option<String> {
        let host = Self::host_of(url);
        let jar = self.cookies.lock().ok()?;
        let v: Vec<String> = jar
            .iter()
            .filter(|(h, _, _)| *h == host)
            .map(|(_, k, v)| format!("{k}={v}"))
            .collect();
        (!v.is_empty()).then(|| v.join("; "))
    }

    fn keep_cookies(&self, url: &str, resp: &reqwest::Response) {
        let host = Self::host_of(url);
        let Ok(mut jar) = self.cookies.lock() else {
            return;
        };
        for v in resp.headers().get_all(reqwest::header::SET_COOKIE) {
            let Some((k, val)) = v
                .to_str()
                .ok()
                .and_then(|s| s.split(';').next())
                .and_then(|kv| kv.split_once('='))
            else {
                continue;
            };
            jar.retain(|(h, n, _)| !(*h == host && n == k));
            jar.push((host.clone(), k.trim().to_string(), val.trim().to_string()));
        }
    }

    /// GET `url` and follow redirects (at most 15).
    pub async fn get(&self, url: &str) -> Result<Page, String> {
        self.navigate(url.to_string(), None).await
    }

    /// POST a form and follow redirects.
    pub async fn post_form(&self, url: &str, form: &[(String, String)]) -> Result<Page, String> {
        self.navigate(url.to_string(), Some(form.to_vec())).await
    }

    async fn navigate(
        &self,
        mut url: String,
        mut form: Option<Vec<(String, String)>>,
    ) -> Result<Page, String> {
        let mut hops = Vec::new();
        for _ in 0..15 {
            hops.push(url.clone());
            let mut req = match &form {
                Some(f) => self.http.post(&url).form(f),
                None => self.http.get(&url),
            };
            if let Some(c) = self.cookie_header(&url) {
                req = req.header(reqwest::header::COOKIE, c);
            }
            let resp = req.send().await.map_err(err)?;
            self.keep_cookies(&url, &resp);
            let status = resp.status().as_u16();
            if resp.status().is_redirection() {
                let loc = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or("a redirect without Location")?
                    .to_string();
                url = if loc.starts_with("http") {
                    loc
                } else {
                    let origin: String = url.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
                    format!("{origin}{loc}")
                };
                form = None;
                continue;
            }
            let body = resp.text().await.map_err(err)?;
            return Ok(Page {
                status,
                url,
                body,
                hops,
            });
        }
        Err("more than 15 redirects".into())
    }

    /// Submit the auto-posting form on `page` (what a browser's script does).
    pub async fn submit(&self, page: &Page) -> Result<Page, String> {
        let (action, fields) = parse_form(&page.body).ok_or("the page holds no form")?;
        self.post_form(&action, &fields).await
    }
}

/// A `redis-server` of its own on a free loopback port, for the demo and
/// the tests: no snapshots, no append-only file unless `persistent` (then
/// AOF with `appendfsync always` in a directory of its own, so a restart
/// finds every claim). Killed when dropped.
pub struct LocalRedis {
    pub port: u16,
    dir: std::path::PathBuf,
    persistent: bool,
    child: Option<std::process::Child>,
}

impl LocalRedis {
    /// Whether `redis-server` can be run.
    pub fn installed() -> bool {
        std::process::Command::new("redis-server")
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Choose a free port and a directory; nothing runs until [`LocalRedis::start`].
    pub fn reserve(persistent: bool) -> Result<LocalRedis, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(err)?
            .port();
        let dir = std::env::temp_dir().join(format!(
            "fedgate-redis-{}-{}",
            std::process::id(),
            crate::util::random_id().unwrap_or_default()
        ));
        std::fs::create_dir_all(&dir).map_err(err)?;
        Ok(LocalRedis {
            port,
            dir,
            persistent,
            child: None,
        })
    }

    /// Reserve and start.
    pub fn spawn(persistent: bool) -> Result<LocalRedis, String> {
        let mut r = Self::reserve(persistent)?;
        r.start()?;
        Ok(r)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Start (or restart, on the same port and directory) and wait until it
    /// answers PING, for at most 10 s.
    pub fn start(&mut self) -> Result<(), String> {
        self.kill();
        let port = self.port.to_string();
        let dir = self.dir.display().to_string();
        let log = self.dir.join("redis.log").display().to_string();
        let mut args = vec![
            "--port",
            &port,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            &dir,
            "--logfile",
            &log,
        ];
        if self.persistent {
            args.extend(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            args.extend(["--appendonly", "no"]);
        }
        let child = std::process::Command::new("redis-server")
            .args(&args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("redis-server: {e}"))?;
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    self.child = None;
                    let tail = std::fs::read_to_string(&log).unwrap_or_default();
                    return Err(format!(
                        "redis-server on port {port} exited ({status}): {}",
                        tail.lines().last().unwrap_or("")
                    ));
                }
            }
            if ping(self.port) {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        self.kill();
        Err(format!(
            "redis-server on port {port} did not answer within 10 s"
        ))
    }

    /// Kill it (SIGKILL: no shutdown save), and wait for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A bare RESP `PING`, without a client library.
fn ping(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(std::time::Duration::from_millis(500)));
    let mut buf = [0u8; 7];
    s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

impl Drop for LocalRedis {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
