//! Signing out: the OpenID provider's RP-initiated logout
//! (`end_session_endpoint`, OpenID Connect RP-Initiated Logout 1.0) and the
//! user's own `/logout`. Both end the fedgate session (the store entry and
//! the cookie) and write an audit event. A console's
//! `post_logout_redirect_uri` is followed only when the console named by
//! `client_id` registered it exactly; otherwise fedgate shows its own
//! signed-out page and redirects nowhere. The other consoles the session
//! reached, and the tenant, are told as `gateway::logout` tells them.

use super::*;

/// The query of `/oauth2/logout`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LogoutRequest {
    pub client_id: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
    /// Accepted and not relied on: `client_id` names the console.
    pub id_token_hint: Option<String>,
}

/// `GET /oauth2/logout` (a console's RP-initiated logout) and `GET /logout`
/// (`req` empty).
pub async fn end_session(
    app: &App,
    req: LogoutRequest,
    session: Option<&str>,
    client_ip: Option<String>,
) -> Outcome {
    let now = app.now();
    // Where to go afterwards: only a URI the named console registered.
    let location = match (&req.post_logout_redirect_uri, req.client_id.as_deref()) {
        (None, _) => None,
        (Some(uri), Some(client)) => {
            let registered = client_of(app, client)
                .is_some_and(|(_, reg)| reg.post_logout_redirect_uris.iter().any(|u| u == uri));
            if !registered {
                return page(
                    400,
                    "oauth.post_logout_redirect_uri_mismatch",
                    "post_logout_redirect_uri is not one the console registered (post_logout_redirect_uris, compared exactly): fedgate redirects nowhere else",
                );
            }
            let sep = if uri.contains('?') { '&' } else { '?' };
            Some(match &req.state {
                Some(s) => format!("{uri}{sep}state={}", urlencode(s)),
                None => uri.clone(),
            })
        }
        (Some(_), None) => {
            return page(
                400,
                "oauth.client_id_required",
                "a post_logout_redirect_uri needs the client_id of the console that registered it",
            );
        }
    };
    let opened = match session {
        Some(s) => match app.open_session(s, now).await {
            Ok(found) => found,
            Err(e) => return Outcome::Refused(crate::gateway::store_down(app, "logout", e)),
        },
        None => None,
    };
    let except = req
        .client_id
        .as_deref()
        .and_then(|c| client_of(app, c))
        .map(|(c, _)| c.id.clone());
    crate::gateway::logout::user_logout(app, opened, except.as_deref(), location, client_ip).await
}
