//! The demo's files: keys, metadata, secrets and `fedgate.toml`, for the
//! demo itself and for `fedgate mock init` (docker-compose).

use super::{
    err, ACRONIS_ID, ACRONIS_SECRET, AUTOMATION_CLIENT_ID, COMMCELL_CERT, COMMCELL_ID,
    COMMVAULT_AUDIENCE, COMMVAULT_ID, COMMVAULT_OPS_GROUP, CONSOLE_ID, ENGINEERING_GROUP,
    ENTRA_CERT, ENTRA_KEY, FEDGATE_API, FEDGATE_CERT, FEDGATE_CLIENT_ID, FEDGATE_CLIENT_SECRET,
    FEDGATE_EC_KEY, FEDGATE_KEY, TENANT_ID, TLS_CERT, TLS_KEY, UNIT_ADMINS_GROUP,
};
use crate::mock::entra;
use crate::trust::signing::SigningKey;

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

/// Write the demo's files into `dir`: the mock tenant's federation
/// metadata, fedgate's (test-only) signing key and certificate, secrets, and
/// `fedgate.toml` (listening and answering at `urls`, with the mock console),
/// followed by `extra_toml`. Returns the configuration's path.
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
            write("commcell-sp-cert.pem", COMMCELL_CERT)?;
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
# The Conditional Access authentication context that requires MFA (step-up).
mfa_auth_context = "c1"
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
post_logout_redirect_uris = ["{acronis_url}/signed-out"]
backchannel_logout_uri = "{acronis_url}/backchannel-logout"

[[consoles]]
id = "{COMMVAULT_ID}"
kind = "commvault"
display_name = "Contoso Commvault API (mock)"
identifier = "{COMMVAULT_AUDIENCE}"
reply_url = "{api_url}/webconsole/samlAcsIdpInitCallback.do"

# A Commvault-style console that starts its own logins (SP-initiated) and
# signs its AuthnRequests.
[[consoles]]
id = "{COMMCELL_ID}"
kind = "commvault"
display_name = "Contoso CommCell (mock)"
identifier = "{api_url}/webconsole"
reply_url = "{api_url}/webconsole"
certificate_file = "commcell-sp-cert.pem"
authn_requests_signed = true
nameid = "email"
logout_url = "{api_url}/webconsole/logout"

[[rules]]
id = "commvault-operators-with-mfa"
tenant = "contoso"
console = "{COMMCELL_ID}"
groups = ["{COMMVAULT_OPS_GROUP}"]
roles = ["BackupOperator"]
require_mfa = true

[[rules]]
id = "commvault-operators-see-cyber-protect"
tenant = "contoso"
console = "{ACRONIS_ID}"
groups = ["{COMMVAULT_OPS_GROUP}"]
roles = ["unit_admin"]
scope = "contoso/operations"
require_mfa = true

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
principals = "service_accounts"
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
# The tenant's verified domains: only e-mails and UPNs in them reach a console.
domains = ["contoso.example", "contoso.onmicrosoft.com"]
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
