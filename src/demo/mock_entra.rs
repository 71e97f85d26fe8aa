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
        sp_certs: Vec::new(),
        logouts: Default::default(),
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
pub struct MockEntraHttp {
    /// Where its sign-in endpoints are (its metadata says so).
    pub(super) base: String,
    pub(super) key: SigningKey,
    pub(super) sp_entity_id: String,
    pub(super) acs_url: String,
    /// fedgate's signing certificates, which its LogoutRequests are checked
    /// with (none: `fedgate mock entra`, which does not know them, takes
    /// them unchecked).
    pub(super) sp_certs: Vec<crate::trust::certs::TrustedCert>,
    /// The NameIDs of the LogoutRequests fedgate sent, in order.
    pub logouts: std::sync::Mutex<Vec<String>>,
}

impl MockEntraHttp {
    /// fedgate's SingleLogoutService for the tenant (its metadata says so).
    fn sp_slo_url(&self) -> String {
        self.acs_url.trim_end_matches("/acs").to_string() + "/slo"
    }

    fn endpoint(&self) -> String {
        format!("{}/{TENANT_ID}/saml2", self.base)
    }

    /// Entra's side of single logout at its one SAML endpoint: fedgate's
    /// LogoutRequest (HTTP-Redirect, signed in the query) answered with a
    /// LogoutResponse back to fedgate's SingleLogoutService; or fedgate's
    /// LogoutResponse to one the tenant sent (a page saying so).
    fn logout(&self, query: &str) -> axum::response::Response {
        use axum::response::IntoResponse;
        let bad = |m: String| (axum::http::StatusCode::BAD_REQUEST, m).into_response();
        let party = crate::slo::Party {
            id: "fedgate".into(),
            entity_id: self.sp_entity_id.clone(),
            certs: self.sp_certs.clone(),
        };
        let incoming = crate::binding::Incoming::Redirect { query };
        let now = OffsetDateTime::now_utc();
        let received = if self.sp_certs.is_empty() {
            // Unchecked: decode only.
            crate::binding::decode(incoming)
                .map_err(|e| e.to_string())
                .and_then(|m| {
                    let doc = crate::xml::parse(&m.xml).map_err(|e| e.to_string())?;
                    let root = doc.root_element();
                    let text = |local: &str| {
                        root.children()
                            .find(|c| c.tag_name().name() == local)
                            .map(|c| crate::xml::trimmed_text(c).into_owned())
                    };
                    Ok(crate::slo::Received::Request(crate::slo::LogoutRequest {
                        from: "fedgate".into(),
                        id: root.attribute("ID").unwrap_or_default().to_string(),
                        name_id: text("NameID").unwrap_or_default(),
                        name_id_format: None,
                        session_indexes: text("SessionIndex").into_iter().collect(),
                        relay_state: m.relay_state,
                        binding: "redirect",
                    }))
                })
        } else {
            crate::slo::read(
                incoming,
                &[party],
                &self.endpoint(),
                now,
                time::Duration::minutes(3),
            )
            .map_err(|e| format!("AADSTS750054: {e}"))
        };
        match received {
            Err(e) => bad(e),
            Ok(crate::slo::Received::Response(r)) => (
                axum::http::StatusCode::OK,
                format!("You signed out of your account ({}).\n", r.status),
            )
                .into_response(),
            Ok(crate::slo::Received::Request(r)) => {
                if let Ok(mut l) = self.logouts.lock() {
                    l.push(r.name_id.clone());
                }
                let id = format!("_l{}", crate::util::random_id().unwrap_or_default());
                let xml = crate::slo::logout_response(
                    &id,
                    &format!("https://sts.windows.net/{TENANT_ID}/"),
                    &self.sp_slo_url(),
                    &r.id,
                    crate::slo::STATUS_SUCCESS,
                    None,
                    now,
                );
                match crate::binding::redirect_url(
                    &self.sp_slo_url(),
                    crate::binding::Kind::Response,
                    &xml,
                    r.relay_state.as_deref(),
                    Some(&self.key),
                ) {
                    Ok(url) => (
                        axum::http::StatusCode::FOUND,
                        [(axum::http::header::LOCATION, url)],
                    )
                        .into_response(),
                    Err(e) => bad(e.to_string()),
                }
            }
        }
    }

    /// The tenant signs `user` out (as Entra does when the user signs out
    /// of My Apps): a signed LogoutRequest with the NameID only, like
    /// Entra's, redirected to fedgate's SingleLogoutService.
    fn sign_out(&self, user: &str) -> axum::response::Response {
        use axum::response::IntoResponse;
        let id = format!("_l{}", crate::util::random_id().unwrap_or_default());
        let xml = crate::slo::logout_request(
            &crate::slo::OutRequest {
                id: &id,
                issuer: &format!("https://sts.windows.net/{TENANT_ID}/"),
                destination: &self.sp_slo_url(),
                name_id: user,
                name_id_format: None,
                session_index: None,
            },
            OffsetDateTime::now_utc(),
        );
        match crate::binding::redirect_url(
            &self.sp_slo_url(),
            crate::binding::Kind::Request,
            &xml,
            None,
            Some(&self.key),
        ) {
            Ok(url) => (
                axum::http::StatusCode::FOUND,
                [(axum::http::header::LOCATION, url)],
            )
                .into_response(),
            Err(e) => {
                (axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
            }
        }
    }
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
struct SignOutQuery {
    /// The user's NameID (the UPN, as this tenant sends it).
    user: String,
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
            axum::extract::RawQuery(raw): axum::extract::RawQuery,
        ) -> axum::response::Response {
            let raw = raw.unwrap_or_default();
            // Entra's one SAML endpoint also takes single logout.
            let is_logout = raw.contains("SAMLResponse=")
                || crate::binding::decode(crate::binding::Incoming::Redirect { query: &raw })
                    .is_ok_and(|m| {
                        m.xml.contains(":LogoutRequest") || m.xml.starts_with("<LogoutRequest")
                    });
            if is_logout {
                return m.logout(&raw);
            }
            let Ok(Query(q)) =
                Query::<SsoQuery>::try_from_uri(&format!("/?{raw}").parse().unwrap_or_default())
            else {
                return (axum::http::StatusCode::BAD_REQUEST, "AADSTS750054\n").into_response();
            };
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
        async fn sign_out(
            State(m): State<Arc<MockEntraHttp>>,
            Query(q): Query<SignOutQuery>,
        ) -> axum::response::Response {
            m.sign_out(&q.user)
        }
        axum::Router::new()
            .route(
                &format!("/{TENANT_ID}/federationmetadata/2007-06/federationmetadata.xml"),
                get(metadata),
            )
            .route(&format!("/{TENANT_ID}/saml2/idp-initiated"), get(login))
            .route(&format!("/{TENANT_ID}/saml2"), get(sso))
            .route(&format!("/{TENANT_ID}/saml2/logout"), get(sign_out))
            .with_state(self)
    }
}
