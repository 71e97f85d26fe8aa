//! A configured tenant made ready to verify logins: its IdP metadata (file
//! or URL), OpenID provider trust, token policy, app registration and Graph
//! client, loaded at start-up.

use std::sync::Arc;

use time::Duration;

use super::StartError;
use crate::identity::ErrorCode;
use crate::inbound::saml::{self, SamlSettings};
use crate::trust::metadata::IdpMetadata;

/// A tenant ready to verify logins.
pub struct TenantRuntime {
    pub config: crate::config::Tenant,
    /// The SAML IdP, when the tenant has federation metadata (a file, or a
    /// URL refreshed on an interval).
    pub idp: Option<Arc<crate::trust::refresh::IdpTrust>>,
    pub settings: SamlSettings,
    /// The tenant as an OpenID provider (discovery, JWKS), with an `[tenants.oidc]` block.
    pub provider: Option<Arc<crate::trust::oidc::ProviderTrust>>,
    /// How access tokens are checked (token exchange), when audiences are configured.
    pub token_policy: Option<crate::inbound::bearer::BearerPolicy>,
    /// fedgate's app registration for OIDC logins, when `client_id` is configured.
    pub login: Option<crate::inbound::oidc::OidcClient>,
    /// Graph access, to resolve groups overage, when configured.
    pub graph: Option<crate::trust::graph::GraphClient>,
    /// The certificates of fedgate's decryption keys, for the SP metadata.
    pub encryption_certs: Vec<crate::trust::certs::TrustedCert>,
}

impl TenantRuntime {
    pub fn load(
        t: &crate::config::Tenant,
        public: &str,
        state_dir: Option<&std::path::Path>,
    ) -> Result<Self, StartError> {
        let fail = |file: &std::path::Path, reason: String| StartError::Metadata {
            tenant: t.id.clone(),
            file: file.display().to_string(),
            reason,
        };
        let read =
            |file: &std::path::Path| std::fs::read(file).map_err(|e| fail(file, e.to_string()));
        let mut settings = SamlSettings::new(t.sp_entity_id(public), t.acs_url(public));
        settings.skew = Duration::seconds(i64::from(t.clock_skew_secs));
        settings.profile.allow_sha1 = t.allow_sha1;
        if let Some(map) = &t.claims {
            settings.claims = Arc::new(map.resolve());
        }
        let mut encryption_certs = Vec::new();
        if !t.encryption_keys.is_empty() {
            let mut keys = Vec::new();
            for e in &t.encryption_keys {
                let text = |f: &std::path::Path| {
                    read(f).and_then(|b| {
                        String::from_utf8(b).map_err(|_| fail(f, "not PEM text".into()))
                    })
                };
                let key =
                    crate::inbound::saml::decrypt::DecryptionKey::from_pem(&text(&e.key_file)?)
                        .map_err(|err| fail(&e.key_file, err.to_string()))?;
                let cert = crate::trust::certs::TrustedCert::from_pem_bundle(&text(&e.cert_file)?)
                    .ok()
                    .and_then(|c| c.into_iter().next())
                    .ok_or_else(|| fail(&e.cert_file, "no certificate".into()))?;
                keys.push(key);
                encryption_certs.push(cert);
            }
            settings.decryption = Some(Arc::new(crate::inbound::saml::Decryption {
                keys,
                policy: crate::inbound::saml::decrypt::Policy {
                    allow_cbc: t.encryption_allow_cbc,
                },
            }));
        }
        let idp = match (&t.metadata_file, &t.metadata_url) {
            (Some(file), _) => {
                let idp = IdpMetadata::parse(&read(file)?)
                    .map_err(|e| fail(file, format!("[{}] {e}", e.code())))?;
                // The metadata must be the configured tenant's: Entra's entity id names it.
                if let Some(tid) = saml::entra_tenant_of_issuer(&idp.entity_id) {
                    if !tid.eq_ignore_ascii_case(&t.entra_tenant_id) {
                        return Err(fail(
                            file,
                            format!(
                                "this is tenant {tid}'s metadata, but entra_tenant_id is {}",
                                t.entra_tenant_id
                            ),
                        ));
                    }
                }
                Some(Arc::new(crate::trust::refresh::IdpTrust::fixed(&t.id, idp)))
            }
            (None, Some(url)) => {
                let state_file = state_dir.map(|d| d.join(format!("{}-metadata.xml", t.id)));
                let trust = crate::trust::refresh::IdpTrust::remote(
                    &t.id,
                    &t.entra_tenant_id,
                    url.clone(),
                    state_file,
                    std::time::Duration::from_secs(t.metadata_refresh_secs),
                )
                .map_err(|e| StartError::Signing(format!("tenant {}: {e}", t.id)))?;
                Some(Arc::new(trust))
            }
            (None, None) => None,
        };
        let (mut provider, mut token_policy, mut login) = (None, None, None);
        if let (Some(oidc), Some(issuer)) = (&t.oidc, t.token_issuer()) {
            let pinned = match &oidc.jwks_file {
                Some(file) => Some(
                    crate::trust::jwks::Jwks::from_json(&read(file)?)
                        .map_err(|e| fail(file, format!("[{}] {e}", e.code())))?,
                ),
                None => None,
            };
            let trust = crate::trust::oidc::ProviderTrust::new(
                issuer.clone(),
                oidc.discovery_url.clone(),
                pinned,
            )
            .map_err(|e| StartError::Signing(format!("tenant {}: {e}", t.id)))?;
            let trust = match state_dir {
                Some(d) => trust.with_state_file(d.join(format!("{}-oidc.json", t.id))),
                None => trust,
            };
            provider = Some(Arc::new(trust));
            if !oidc.audiences.is_empty() {
                let mut policy = crate::inbound::bearer::BearerPolicy::new(
                    issuer.clone(),
                    oidc.audiences.clone(),
                );
                policy.skew = settings.skew;
                token_policy = Some(policy);
            }
            if let Some(client_id) = &oidc.client_id {
                let credential = load_credential(
                    oidc.client_secret_file.as_deref(),
                    oidc.client_cert_file
                        .as_deref()
                        .zip(oidc.client_key_file.as_deref()),
                    oidc.client_pfx_file
                        .as_deref()
                        .zip(oidc.client_pfx_password_env.as_deref()),
                )
                .map_err(|(file, reason)| fail(&file, reason))?;
                let mut policy =
                    crate::inbound::bearer::BearerPolicy::new(issuer, client_id.clone());
                policy.skew = settings.skew;
                login = Some(crate::inbound::oidc::OidcClient {
                    client_id: client_id.clone(),
                    credential,
                    scopes: oidc.scopes.clone(),
                    redirect_uri: format!("{public}/oidc/{}/callback", t.id),
                    id_token_policy: policy,
                    mfa_auth_context: oidc.mfa_auth_context.clone(),
                });
            }
        }
        let graph = match &t.graph {
            Some(g) => {
                let credential = load_credential(
                    g.client_secret_file.as_deref(),
                    g.client_cert_file
                        .as_deref()
                        .zip(g.client_key_file.as_deref()),
                    None,
                )
                .map_err(|(file, reason)| fail(&file, reason))?;
                let client = crate::trust::graph::GraphClient::new(
                    g.token_url.clone().unwrap_or_else(|| {
                        format!(
                            "https://login.microsoftonline.com/{}/oauth2/v2.0/token",
                            t.entra_tenant_id
                        )
                    }),
                    g.base_url
                        .clone()
                        .unwrap_or_else(|| "https://graph.microsoft.com/v1.0".into()),
                    g.client_id.clone(),
                    credential,
                )
                .map_err(|e| StartError::Signing(format!("graph client: {e}")))?;
                Some(client)
            }
            None => None,
        };
        Ok(TenantRuntime {
            config: t.clone(),
            idp,
            settings,
            provider,
            token_policy,
            login,
            graph,
            encryption_certs,
        })
    }
}

/// A client credential from the files the configuration names (validated
/// there: exactly one kind is set).
fn load_credential(
    secret_file: Option<&std::path::Path>,
    cert_and_key: Option<(&std::path::Path, &std::path::Path)>,
    pfx: Option<(&std::path::Path, &str)>,
) -> Result<crate::trust::credential::ClientCredential, (std::path::PathBuf, String)> {
    use crate::trust::credential::ClientCredential;
    let read = |p: &std::path::Path| std::fs::read(p).map_err(|e| (p.to_path_buf(), e.to_string()));
    let text = |p: &std::path::Path| {
        read(p).and_then(|b| {
            String::from_utf8(b).map_err(|_| (p.to_path_buf(), "not UTF-8 text".to_string()))
        })
    };
    if let Some(p) = secret_file {
        return Ok(ClientCredential::Secret(text(p)?.trim().to_string()));
    }
    if let Some((cert, key)) = cert_and_key {
        return ClientCredential::certificate(&text(key)?, &text(cert)?)
            .map_err(|e| (key.to_path_buf(), format!("[{}] {e}", e.code())));
    }
    if let Some((file, env)) = pfx {
        let password = std::env::var(env).map_err(|_| {
            (
                file.to_path_buf(),
                format!("the PFX password variable {env} is not set"),
            )
        })?;
        return ClientCredential::from_pfx(&read(file)?, &password)
            .map_err(|e| (file.to_path_buf(), format!("[{}] {e}", e.code())));
    }
    Err((
        std::path::PathBuf::new(),
        "no client credential configured".into(),
    ))
}
