//! The OpenID provider's token endpoint (`authorization_code`: client
//! authentication, PKCE, the one-use code, the ID and access tokens) and
//! userinfo.

use super::*;

/// The token endpoint's error (RFC 6749 §5.2), fedgate's code first in the description.
#[derive(Debug, Serialize)]
pub struct TokenError {
    #[serde(skip)]
    pub status: u16,
    pub error: &'static str,
    pub error_description: String,
}

fn token_error(
    status: u16,
    error: &'static str,
    code: &str,
    message: impl std::fmt::Display,
) -> TokenError {
    TokenError {
        status,
        error,
        error_description: format!("{code}: {message}"),
    }
}

/// The client's secret, read now (a rotated file or variable needs no restart).
fn client_secret(reg: &ConsoleOidc) -> Option<String> {
    if let Some(f) = &reg.client_secret_file {
        return std::fs::read_to_string(f)
            .ok()
            .map(|s| s.trim().to_string());
    }
    reg.client_secret_env
        .as_ref()
        .and_then(|v| std::env::var(v).ok())
}

/// Client authentication: HTTP Basic (id and secret form-urlencoded, RFC 6749
/// §2.3.1) or `client_id` + `client_secret` in the body.
fn authenticate<'a>(
    app: &'a App,
    form: &HashMap<String, String>,
    basic: Option<(String, String)>,
) -> Result<(&'a Console, &'a ConsoleOidc), TokenError> {
    let (id, secret) = match basic {
        Some(b) => b,
        None => (
            form.get("client_id").cloned().unwrap_or_default(),
            form.get("client_secret").cloned().unwrap_or_default(),
        ),
    };
    let unauthorized = || {
        token_error(
            401,
            "invalid_client",
            "oauth.client_auth_failed",
            "unknown client or wrong secret",
        )
    };
    let (console, reg) = client_of(app, &id).ok_or_else(unauthorized)?;
    let expected = client_secret(reg).ok_or_else(|| {
        token_error(
            500,
            "server_error",
            "oauth.client_secret_unreadable",
            format!("the secret of console {:?} cannot be read", console.id),
        )
    })?;
    let a = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, expected.as_bytes());
    let b = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes());
    // Compare digests, so the comparison time says nothing about the secret.
    #[allow(deprecated)]
    let equal = aws_lc_rs::constant_time::verify_slices_are_equal(a.as_ref(), b.as_ref()).is_ok();
    if secret.is_empty() || !equal {
        return Err(unauthorized());
    }
    Ok((console, reg))
}

/// Decode an HTTP Basic `Authorization` header value.
pub fn basic_credentials(header: &str) -> Option<(String, String)> {
    let b64 = header.strip_prefix("Basic ")?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    let dec = crate::util::form_decode;
    Some((dec(id)?, dec(secret)?))
}

/// `POST /oauth2/token` with `grant_type=authorization_code`.
pub async fn token(
    app: &App,
    form: &HashMap<String, String>,
    basic: Option<(String, String)>,
    client_ip: Option<String>,
) -> Result<serde_json::Value, TokenError> {
    let now = app.now();
    let (console, reg) = authenticate(app, form, basic)?;
    let code = form.get("code").map(String::as_str).unwrap_or_default();
    let invalid = |code: &str, m: &str| token_error(400, "invalid_grant", code, m);
    let saved = app
        .store
        .take_state(CODE_NS, code, now)
        .await
        .map_err(|e| {
            let r = crate::gateway::store_down(app, "take_state", e);
            token_error(503, "temporarily_unavailable", r.code, r.message)
        })?
        .ok_or_else(|| {
            invalid(
                "oauth.code_invalid",
                "the code is unknown, used already, or expired",
            )
        })?;
    let grant: CodeGrant = serde_json::from_slice(&saved)
        .map_err(|_| invalid("oauth.code_invalid", "unreadable code"))?;
    if grant.client_id != reg.client_id {
        return Err(invalid(
            "oauth.code_invalid",
            "the code was issued to another client",
        ));
    }
    if form.get("redirect_uri") != Some(&grant.redirect_uri) {
        return Err(invalid(
            "oauth.redirect_uri_mismatch",
            "redirect_uri differs from the authorization request's",
        ));
    }
    let verifier = form
        .get("code_verifier")
        .map(String::as_str)
        .unwrap_or_default();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    if base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
        != grant.code_challenge
    {
        return Err(invalid(
            "oauth.pkce_mismatch",
            "code_verifier does not match the code_challenge",
        ));
    }

    let profile = crate::consoles::profile(console.kind);
    let lifetime = Duration::seconds(console.token_lifetime_secs as i64);
    let expires = now + lifetime;
    let rng = || {
        token_error(
            500,
            "server_error",
            "internal.rng_failed",
            "the system random number generator failed",
        )
    };
    let role_claim = console
        .role_attribute
        .as_deref()
        .unwrap_or(profile.role_attribute);
    // Checked when the code was issued; checked again (fail closed: no
    // e-mail) against the tenant's domains now.
    let address = app
        .tenants
        .get(&grant.tenant)
        .and_then(|rt| {
            crate::domains::console_address(&grant.identity, &grant.tenant, &rt.config.domains).ok()
        })
        .flatten();
    let base = |jti: &str| {
        crate::outbound::token::console_claims(
            &grant.identity,
            &grant.tenant,
            address.as_deref(),
            &grant.grants,
            &app.config.server.public_url,
            &reg.client_id,
            &console.id,
            role_claim,
            profile.scope_attribute,
            now,
            expires,
            jti,
        )
    };
    let mut id_claims = base(&random_id().ok_or_else(rng)?);
    if let Some(m) = id_claims.as_object_mut() {
        if let Some(n) = &grant.nonce {
            m.insert("nonce".into(), json!(n));
        }
        m.insert("azp".into(), json!(reg.client_id));
        // The fedgate session, which a back-channel logout token names.
        if let Some(sid) = &grant.sid {
            m.insert("sid".into(), json!(sid));
        }
        // The tenant's auth_time/AuthnInstant; omitted when it sent none.
        if let Some(t) = grant.identity.auth_time {
            m.insert("auth_time".into(), json!(t.unix_timestamp()));
        }
        if let Some(n) = &grant.identity.display_name {
            m.insert("name".into(), json!(n));
        }
        // The UPN (else the mail), in a domain the tenant owns: verified in
        // the sense of OpenID Connect Core §5.1, the tenant owns the domain.
        if let Some(e) = &address {
            m.insert("email".into(), json!(e));
            m.insert("email_verified".into(), json!(true));
            m.insert("preferred_username".into(), json!(e));
        }
        let assignments: Vec<serde_json::Value> = grant
            .grants
            .iter()
            .map(|g| json!({"role": g.role, profile.scope_attribute: g.scope}))
            .collect();
        m.insert("role_assignments".into(), json!(assignments));
    }
    let access_claims = base(&random_id().ok_or_else(rng)?);
    let signed = app
        .sign_jwts(&console.token_alg, vec![id_claims, access_claims])
        .await;
    let (id_token, access_token) = match signed {
        Ok(t) if t.len() == 2 => (t[0].clone(), t[1].clone()),
        Ok(_) => {
            return Err(token_error(
                500,
                "server_error",
                "keys.sign_failed",
                "no token",
            ))
        }
        Err(e) => {
            let e = crate::gateway::jwt_sign_error(e, &console.token_alg);
            return Err(TokenError {
                status: e.status,
                error: e.error,
                error_description: e.error_description,
            });
        }
    };
    let mut event = AuditEvent::new(now, &grant.tenant, "oidc-provider", client_ip)
        .with_identity(&grant.identity);
    event.console = Some(console.id.clone());
    event.outcome = "allowed";
    event.code = "ok".into();
    event.roles_granted = grant.grants.clone();
    event.reason = "authorization code redeemed: ID token issued".into();
    app.record_audit(&event);
    Ok(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": lifetime.whole_seconds(),
        "id_token": id_token,
        "scope": grant.scope,
    }))
}

/// `GET /oauth2/userinfo` with a fedgate-issued access token.
pub async fn userinfo(app: &App, bearer: Option<&str>) -> Result<serde_json::Value, TokenError> {
    let unauthorized = |code: &str, m: &str| token_error(401, "invalid_token", code, m);
    let token = bearer.ok_or_else(|| {
        unauthorized(
            "oauth.token_missing",
            "send the access token as Authorization: Bearer",
        )
    })?;
    let jwks_json = serde_json::to_vec(&app.jwks()).unwrap_or_default();
    let jwks = crate::trust::jwks::Jwks::from_json(&jwks_json)
        .map_err(|e| token_error(500, "server_error", "keys.jwks_invalid", e))?;
    let audiences: Vec<String> = app
        .config
        .consoles
        .iter()
        .filter_map(|c| c.oidc.as_ref().map(|o| o.client_id.clone()))
        .collect();
    let mut policy =
        crate::inbound::bearer::BearerPolicy::new(app.config.server.public_url.clone(), audiences);
    policy.algorithms = vec![
        jsonwebtoken::Algorithm::ES256,
        jsonwebtoken::Algorithm::RS256,
    ];
    // On the CPU pool, admitted or refused at once (503 server.busy).
    let (token, now) = (token.to_string(), app.now());
    let verified = app
        .cpu
        .admit(move || crate::inbound::bearer::verify(&token, &jwks, &policy, now))
        .await
        .map_err(|e| {
            use crate::identity::ErrorCode;
            let status = if e.code() == "server.busy" { 503 } else { 500 };
            token_error(status, "temporarily_unavailable", e.code(), e)
        })?;
    let id = verified.map_err(|e| {
        use crate::identity::ErrorCode;
        token_error(401, "invalid_token", e.code(), e)
    })?;
    // fedgate's access token carries `upn` only when it was checked against
    // the tenant's domains at issue (`console_claims`).
    let email = id.upn.clone();
    Ok(json!({
        "sub": id.subject,
        "name": id.display_name,
        "email_verified": email.is_some(),
        "email": email,
        "tid": id.tenant_id,
        "oid": id.object_id,
        "roles": id.roles,
    }))
}
