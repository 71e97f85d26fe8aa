//! Entra ID as OpenID provider, fedgate as relying party: the authorization
//! code flow with PKCE, a nonce and a state, built with the `openidconnect`
//! crate.
//!
//! - **Start** ([`start`]): the tenant's discovery document (through
//!   `trust::oidc`, cached) gives the endpoints; `openidconnect` makes the
//!   authorization URL with a random state, nonce and S256 PKCE challenge.
//!   The verifier, the nonce and where the login should end are kept in the
//!   `Store` under the state, for ten minutes, to be taken once.
//! - **Finish** ([`finish`]): the state is looked at, not consumed: it must
//!   be this tenant's (`oidc.state_other_tenant`) and this browser's
//!   (`oidc.state_unbound`, the binding cookie). The code is redeemed at
//!   the token endpoint with the PKCE verifier and fedgate's client
//!   credential (secret, or a client assertion signed with the app
//!   registration's certificate), and the ID token is verified by the same
//!   verifier as every Entra token (`inbound::bearer`, keys from the
//!   tenant's JWKS with one refetch on an unknown `kid`): signature, `iss`,
//!   `aud` = fedgate's client id, `exp`/`nbf`, `tid`. Then the nonce must be
//!   the one sent. Only then is the state taken, atomically (a second use
//!   of the same callback finds nothing: `oidc.state_unknown`). The
//!   Identity is built from the verified claims only.
//!
//! `openidconnect`'s own ID-token verifier is not used: fedgate verifies
//! every Entra token on one path, with one crypto backend (aws-lc-rs).

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthType, AuthorizationCode, ClientId, ClientSecret, CsrfToken, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope,
};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::identity::{ErrorCode, Identity};
use crate::inbound::bearer::BearerPolicy;
use crate::store::Store;
use crate::trust::credential::{ClientCredential, ASSERTION_TYPE};
use crate::trust::oidc::ProviderTrust;

/// How long a started login may take.
pub const LOGIN_STATE_TTL: Duration = Duration::minutes(10);
/// The store namespace of login state.
pub const STATE_NS: &str = "oidc-login";

/// fedgate's app registration in one tenant.
#[derive(Debug)]
pub struct OidcClient {
    pub client_id: String,
    pub credential: ClientCredential,
    pub scopes: Vec<String>,
    /// `{public_url}/oidc/{tenant}/callback`: register it in Entra.
    pub redirect_uri: String,
    /// ID tokens: this tenant's issuer, `aud` = the client id.
    pub id_token_policy: BearerPolicy,
    /// `[tenants.oidc] mfa_auth_context`.
    pub mfa_auth_context: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OidcError {
    #[error(transparent)]
    Trust(#[from] crate::trust::oidc::OidcTrustError),
    #[error("the provider's discovery document cannot drive a login: {0}")]
    Provider(String),
    #[error("the login state is unknown, used already, or expired (logins must finish within 10 minutes, once)")]
    StateUnknown,
    #[error("this callback answers a login fedgate started at another tenant ({0:?}): it is accepted only at that tenant's callback")]
    StateOtherTenant(String),
    #[error("this callback answers a login started in another browser (or the browser did not send fedgate's login cookie back: are cookies blocked?): start the sign-in again here")]
    StateUnbound,
    #[error("the identity provider answered with an error: {error}: {description}")]
    ProviderError { error: String, description: String },
    #[error("redeeming the authorization code failed: {0}")]
    TokenRequest(String),
    #[error("the token response has no ID token")]
    NoIdToken,
    #[error("the ID token's nonce is not the one this login sent")]
    NonceMismatch,
    #[error("ID token: {0}")]
    IdToken(crate::trust::oidc::TokenTrustError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("signing the client assertion failed: {0}")]
    Credential(String),
}

impl ErrorCode for OidcError {
    fn code(&self) -> &'static str {
        match self {
            OidcError::Trust(e) => e.code(),
            OidcError::Provider(_) => "oidc.discovery_invalid",
            OidcError::StateUnknown => "oidc.state_unknown",
            OidcError::StateOtherTenant(_) => "oidc.state_other_tenant",
            OidcError::StateUnbound => "oidc.state_unbound",
            OidcError::ProviderError { .. } => "oidc.provider_error",
            OidcError::TokenRequest(_) => "oidc.token_request_failed",
            OidcError::NoIdToken => "oidc.id_token_missing",
            OidcError::NonceMismatch => "oidc.nonce_mismatch",
            OidcError::IdToken(e) => e.code(),
            OidcError::Store(e) => e.code(),
            OidcError::Credential(_) => "oidc.credential_failed",
        }
    }
}

impl OidcError {
    /// The HTTP status the browser gets.
    pub fn status(&self) -> u16 {
        match self {
            OidcError::Trust(_) | OidcError::Provider(_) | OidcError::TokenRequest(_) => 502,
            OidcError::Store(_) => 503,
            OidcError::IdToken(crate::trust::oidc::TokenTrustError::Busy(e)) => {
                if e.code() == "server.busy" {
                    503
                } else {
                    500
                }
            }
            OidcError::Credential(_) => 500,
            OidcError::StateUnknown => 400,
            _ => 403,
        }
    }
}

/// What is kept between start and finish.
#[derive(Serialize, Deserialize)]
struct LoginState {
    verifier: String,
    nonce: String,
    /// Where the login ends (see `gateway::LoginTarget`).
    target: String,
    tenant: String,
    /// SHA-256 of the browser binding (`gateway::login_state`).
    binding: String,
}

fn client(
    rp: &OidcClient,
    discovery: &crate::trust::oidc::Discovery,
) -> Result<
    CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    >,
    OidcError,
> {
    let meta: CoreProviderMetadata = serde_json::from_value(discovery.raw.clone())
        .map_err(|e| OidcError::Provider(e.to_string()))?;
    let secret = match &rp.credential {
        ClientCredential::Secret(s) => Some(ClientSecret::new(s.clone())),
        ClientCredential::Certificate { .. } => None,
    };
    let redirect = RedirectUrl::new(rp.redirect_uri.clone())
        .map_err(|e| OidcError::Provider(e.to_string()))?;
    Ok(
        CoreClient::from_provider_metadata(meta, ClientId::new(rp.client_id.clone()), secret)
            .set_redirect_uri(redirect)
            // Entra takes the secret in the body (client_secret_post) as well as Basic.
            .set_auth_type(AuthType::RequestBody),
    )
}

/// How a login is started.
#[derive(Debug, Default)]
pub struct Start<'a> {
    pub login_hint: Option<&'a str>,
    /// `prompt=login` to Entra.
    pub force_authn: bool,
    /// An authentication context to ask for (`claims` with `acrs`, essential).
    pub auth_context: Option<&'a str>,
    /// What the state records of the browser binding (its SHA-256).
    pub binding_digest: &'a str,
}

/// Start a login: the URL to send the browser to.
pub async fn start(
    rp: &OidcClient,
    trust: &ProviderTrust,
    store: &dyn Store,
    tenant: &str,
    target: &str,
    start: &Start<'_>,
    now: OffsetDateTime,
) -> Result<String, OidcError> {
    let discovery = trust.discovery().await?;
    let client = client(rp, &discovery)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut req = client.authorize_url(
        CoreAuthenticationFlow::AuthorizationCode,
        CsrfToken::new_random,
        Nonce::new_random,
    );
    for s in rp.scopes.iter().filter(|s| *s != "openid") {
        req = req.add_scope(Scope::new(s.clone()));
    }
    if let Some(h) = start.login_hint {
        req = req.add_extra_param("login_hint", h.to_string());
    }
    if start.force_authn {
        // A fresh sign-in at Entra, even with an Entra session.
        req = req.add_extra_param("prompt", "login");
    }
    if let Some(ctx) = start.auth_context {
        // Entra's step-up: the Conditional Access policy of this context.
        let claims = serde_json::json!({"id_token": {"acrs": {"essential": true, "value": ctx}}});
        req = req.add_extra_param("claims", claims.to_string());
    }
    let (url, state, nonce) = req.set_pkce_challenge(challenge).url();
    let value = LoginState {
        verifier: verifier.secret().clone(),
        nonce: nonce.secret().clone(),
        target: target.to_string(),
        tenant: tenant.to_string(),
        binding: start.binding_digest.to_string(),
    };
    let bytes = serde_json::to_vec(&value).map_err(|e| OidcError::Provider(e.to_string()))?;
    store
        .put_state(STATE_NS, state.secret(), &bytes, now + LOGIN_STATE_TTL)
        .await?;
    Ok(url.to_string())
}

/// What the callback brought.
#[derive(Debug, Default, Deserialize)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// A finished login: the verified Identity and where the login ends.
#[derive(Debug)]
pub struct Finished {
    pub identity: Identity,
    pub target: String,
}

/// Finish a login at the callback (`cpu`: where the ID token's signature
/// is checked; `None` checks it inline).
#[allow(clippy::too_many_arguments)]
pub async fn finish(
    rp: &OidcClient,
    trust: &ProviderTrust,
    store: &dyn Store,
    tenant: &str,
    cb: &Callback,
    binding_ok: &(dyn Fn(&str) -> bool + Sync),
    now: OffsetDateTime,
    cpu: Option<&crate::cpu::CpuPool>,
) -> Result<Finished, OidcError> {
    // The state first: without a live one nothing else is looked at. It is
    // only looked at here (tenant, browser binding); it is taken once the
    // ID token verified, so a forged callback never uses up a pending login.
    let state = cb.state.as_deref().ok_or(OidcError::StateUnknown)?;
    let saved = store
        .peek_state(STATE_NS, state, now)
        .await?
        .ok_or(OidcError::StateUnknown)?;
    let saved: LoginState = serde_json::from_slice(&saved).map_err(|_| OidcError::StateUnknown)?;
    if saved.tenant != tenant {
        return Err(OidcError::StateOtherTenant(saved.tenant));
    }
    if !binding_ok(&saved.binding) {
        return Err(OidcError::StateUnbound);
    }
    if let Some(error) = &cb.error {
        return Err(OidcError::ProviderError {
            error: error.clone(),
            description: cb.error_description.clone().unwrap_or_default(),
        });
    }
    let code = cb.code.as_deref().ok_or_else(|| OidcError::ProviderError {
        error: "invalid_request".into(),
        description: "the callback has neither a code nor an error".into(),
    })?;

    let discovery = trust.discovery().await?;
    let client = client(rp, &discovery)?;
    let mut req = client
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .map_err(|e| OidcError::Provider(e.to_string()))?
        .set_pkce_verifier(PkceCodeVerifier::new(saved.verifier));
    if let ClientCredential::Certificate { .. } = &rp.credential {
        let assertion = rp
            .credential
            .client_assertion(&rp.client_id, &discovery.token_endpoint, now)
            .map_err(|e| OidcError::Credential(e.to_string()))?;
        req = req
            .add_extra_param("client_assertion_type", ASSERTION_TYPE)
            .add_extra_param("client_assertion", assertion);
    }
    let http = crate::trust::oidc::http_client().map_err(OidcError::TokenRequest)?;
    let resp = req
        .request_async(&http)
        .await
        .map_err(|e| OidcError::TokenRequest(token_error(&e)))?;
    use openidconnect::TokenResponse;
    let id_token = resp.id_token().ok_or(OidcError::NoIdToken)?.to_string();

    let identity =
        crate::trust::oidc::verify_token(trust, &id_token, &rp.id_token_policy, now, cpu)
            .await
            .map_err(OidcError::IdToken)?;
    // The signature is verified: reading the nonce from the payload is safe.
    let nonce = payload_claim(&id_token, "nonce");
    if nonce.as_deref() != Some(saved.nonce.as_str()) {
        return Err(OidcError::NonceMismatch);
    }
    // Verified: now the state is consumed, once (a second verified callback
    // racing for it finds nothing).
    if store.take_state(STATE_NS, state, now).await?.is_none() {
        return Err(OidcError::StateUnknown);
    }
    Ok(Finished {
        identity,
        target: saved.target,
    })
}

/// A string claim of a token whose signature was verified.
fn payload_claim(token: &str, name: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get(name)?.as_str().map(String::from)
}

/// A token-endpoint failure in words an admin can act on (Entra's AADSTS
/// code is in the provider's error description).
fn token_error<RE, T>(e: &openidconnect::RequestTokenError<RE, T>) -> String
where
    RE: std::error::Error + 'static,
    T: openidconnect::ErrorResponse + 'static,
{
    match e {
        openidconnect::RequestTokenError::ServerResponse(r) => r.to_string(),
        openidconnect::RequestTokenError::Request(e) => format!("request failed: {e}"),
        openidconnect::RequestTokenError::Parse(e, _) => format!("unreadable response: {e}"),
        openidconnect::RequestTokenError::Other(s) => s.clone(),
    }
}
