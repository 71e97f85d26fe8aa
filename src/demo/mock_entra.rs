//! The mock Entra tenant's HTTP face (federation metadata, IdP-initiated
//! and SP-initiated logins for a browser), and `fedgate mock entra|console`.

use std::sync::Arc;

use time::OffsetDateTime;

use super::{alice, bob, carol, dave, erin, err, ENTRA_CERT, ENTRA_KEY, TENANT_ID};
use crate::mock::console::MockConsole;
use crate::mock::entra::{self, MockLogin};
use crate::trust::metadata::IdpMetadata;
use crate::trust::signing::SigningKey;

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
pub(super) struct MockEntraHttp {
    /// Where its sign-in endpoints are (its metadata says so).
    pub(super) base: String,
    pub(super) key: SigningKey,
    pub(super) sp_entity_id: String,
    pub(super) acs_url: String,
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
    pub(super) fn router(self: Arc<Self>) -> axum::Router {
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
        /// with a signed Response carrying its ID as InResponseTo. Like
        /// Entra, a `RequestedAuthnContext` naming
        /// `http://schemas.microsoft.com/claims/multipleauthn` makes the
        /// user do a second factor (the response says MFA); any other
        /// class the user's sign-in does not match is AADSTS75011.
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
            let mut user = match q.login_hint.as_deref().unwrap_or("alice@contoso.example") {
                "alice@contoso.example" => alice(),
                "bob@contoso.example" => bob(),
                "carol@contoso.example" => carol(),
                "dave@contoso.example" => dave(),
                "erin@contoso.example" => erin(),
                _ => return bad("AADSTS50034: The user account does not exist in this directory."),
            };
            let classes: Vec<String> = req
                .children()
                .filter(|c| c.tag_name().name() == "RequestedAuthnContext")
                .flat_map(|c| c.children())
                .filter(|c| c.tag_name().name() == "AuthnContextClassRef")
                .map(|c| crate::xml::trimmed_text(c).into_owned())
                .collect();
            if classes
                .iter()
                .any(|c| c == crate::outbound::sso::AC_ENTRA_MFA)
            {
                user.mfa = true;
            } else if !classes.is_empty()
                && !classes
                    .iter()
                    .any(|c| c == crate::outbound::sso::AC_PASSWORD_PROTECTED)
            {
                return bad("AADSTS75011: Authentication method by which the user authenticated with the service doesn't match requested authentication method. Contact the application owner.");
            }
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
