//! Token exchange (`POST /oauth2/token`): an Entra access token in, a
//! console-scoped JWT out, and fedgate's JWKS for those tokens.

use time::Duration;

use super::deliver::{decide, resolve_overage};
use super::App;
use crate::audit::AuditEvent;
use crate::consoles;
use crate::identity::ErrorCode;
use crate::util::random_id;

/// `POST /oauth2/token` with `grant_type=token-exchange`: an Entra access
/// token for a console-scoped JWT.
pub async fn token_exchange(
    app: &App,
    form: &crate::outbound::token::ExchangeForm,
    client: Option<String>,
) -> Result<crate::outbound::token::Issued, crate::outbound::token::ExchangeError> {
    use crate::outbound::token::{self as tok, ExchangeError};
    let now = app.now();
    let mut event = AuditEvent::new(now, "-", "token_exchange", client);
    let fail = |app: &App, mut event: AuditEvent, e: ExchangeError| {
        event.outcome = "denied";
        event.code = e.code.to_string();
        event.reason = e.error_description.clone();
        app.record_audit(&event);
        app.metrics.login(
            &event.tenant,
            event.console.as_deref().unwrap_or("-"),
            "denied",
            e.code,
        );
        Err(e)
    };
    if form.grant_type != tok::GRANT_TOKEN_EXCHANGE {
        let e = ExchangeError::new(
            400,
            "unsupported_grant_type",
            "token.grant_unsupported",
            "only token exchange (RFC 8693) is served here",
        );
        return fail(app, event, e);
    }
    if form.subject_token.is_empty()
        || !matches!(
            form.subject_token_type.as_str(),
            tok::TYPE_ACCESS_TOKEN | tok::TYPE_JWT
        )
    {
        let e = ExchangeError::new(
            400,
            "invalid_request",
            "token.request_invalid",
            "subject_token and subject_token_type (access_token or jwt) are required",
        );
        return fail(app, event, e);
    }
    let Some(console_id) = form.audience.as_deref().filter(|a| !a.is_empty()) else {
        let e = ExchangeError::new(
            400,
            "invalid_request",
            "token.request_invalid",
            "audience (the console id) is required",
        );
        return fail(app, event, e);
    };
    event.console = Some(crate::util::clip(console_id, crate::audit::CLIP));
    let Some(console) = app.console(console_id) else {
        let e = ExchangeError::new(
            400,
            "invalid_target",
            "console.unknown",
            format!(
                "no console {:?}",
                crate::util::clip(console_id, crate::audit::CLIP)
            ),
        );
        return fail(app, event, e);
    };
    // Which tenant: the unverified `tid` only selects whose trust to verify
    // with; a lie there fails that tenant's issuer and key checks.
    let tid = unverified_tid(&form.subject_token).unwrap_or_default();
    let Some(rt) = app
        .tenants
        .values()
        .find(|t| t.config.entra_tenant_id.eq_ignore_ascii_case(&tid) && t.token_policy.is_some())
    else {
        let e = ExchangeError::new(
            400,
            "invalid_grant",
            "tenant.unknown",
            "the subject token's tenant is not configured for token exchange",
        );
        return fail(app, event, e);
    };
    event.tenant = rt.config.id.clone();
    let (Some(trust), Some(policy)) = (rt.provider.as_ref(), rt.token_policy.as_ref()) else {
        let e = ExchangeError::new(
            400,
            "invalid_grant",
            "tenant.unknown",
            "no token trust for this tenant",
        );
        return fail(app, event, e);
    };
    let started = std::time::Instant::now();
    let verified =
        crate::trust::oidc::verify_token(trust, &form.subject_token, policy, now, Some(&app.cpu))
            .await;
    app.metrics
        .verification_seconds(started.elapsed().as_secs_f64());
    let identity = match verified {
        Ok(id) => id,
        Err(crate::trust::oidc::TokenTrustError::Busy(e)) => {
            let status = if e.code() == "server.busy" { 503 } else { 500 };
            return fail(
                app,
                event,
                ExchangeError::new(status, "temporarily_unavailable", e.code(), &e),
            );
        }
        Err(crate::trust::oidc::TokenTrustError::Trust(e)) => {
            return fail(
                app,
                event,
                ExchangeError::new(502, "temporarily_unavailable", e.code(), &e),
            )
        }
        Err(e) => {
            return fail(
                app,
                event,
                ExchangeError::new(400, "invalid_grant", e.code(), &e),
            )
        }
    };
    let identity = match resolve_overage(rt, identity).await {
        Ok(id) => id,
        Err((id, e)) => {
            let event = event.with_identity(&id);
            return fail(
                app,
                event,
                ExchangeError::new(502, "temporarily_unavailable", e.code(), &e),
            );
        }
    };
    event = event.with_identity(&identity);
    event.console = Some(console_id.to_string());
    event.via = format!("{:?}", identity.source).to_ascii_lowercase();
    let decision = decide(app, rt, &identity, console, now);
    event.rules_matched = decision.matched_rules();
    if !decision.allowed() {
        let (code, message) = decision.denial_reason();
        return fail(
            app,
            event,
            ExchangeError::new(403, "access_denied", code, message),
        );
    }
    // An e-mail or UPN goes into the console token only in a domain the
    // tenant owns (a service account has neither).
    let address =
        match crate::domains::console_address(&identity, &rt.config.id, &rt.config.domains) {
            Ok(a) => a,
            Err(e) => {
                return fail(
                    app,
                    event,
                    ExchangeError::new(403, "access_denied", e.code(), &e),
                )
            }
        };
    // Lifetime: the console's, capped by every matching rule's cap, and never
    // past the subject token's own expiry.
    let mut lifetime = Duration::seconds(console.token_lifetime_secs as i64);
    for cap in app
        .config
        .rules
        .iter()
        .filter(|r| event.rules_matched.contains(&r.id))
        .filter_map(|r| r.max_token_lifetime_secs)
    {
        lifetime = lifetime.min(Duration::seconds(cap as i64));
    }
    let expires = (now + lifetime).min(identity.expires_at);
    if expires <= now {
        let e = ExchangeError::new(
            400,
            "invalid_grant",
            "jwt.expired",
            "the subject token has no lifetime left",
        );
        return fail(app, event, e);
    }
    let profile = consoles::profile(console.kind);
    let Some(jti) = random_id() else {
        return fail(
            app,
            event,
            ExchangeError::new(
                500,
                "server_error",
                "internal.rng_failed",
                "the system random number generator failed",
            ),
        );
    };
    let claims = tok::console_claims(
        &identity,
        &rt.config.id,
        address.as_deref(),
        &decision.grants,
        &app.config.server.public_url,
        &console.identifier,
        &console.id,
        console
            .role_attribute
            .as_deref()
            .unwrap_or(profile.role_attribute),
        profile.scope_attribute,
        now,
        expires,
        &jti,
    );
    let token = match app.sign_jwts(&console.token_alg, vec![claims]).await {
        Ok(mut t) if t.len() == 1 => t.remove(0),
        Ok(_) => {
            let e = ExchangeError::new(500, "server_error", "keys.sign_failed", "no token");
            return fail(app, event, e);
        }
        Err(e) => return fail(app, event, jwt_sign_error(e, &console.token_alg)),
    };
    event.outcome = "allowed";
    event.code = "ok".into();
    event.roles_granted = decision.grants.clone();
    event.reason = format!(
        "console token for {} s, granted by {}",
        (expires - now).whole_seconds(),
        event.rules_matched.join(", ")
    );
    app.record_audit(&event);
    app.metrics
        .login(&rt.config.id, console_id, "allowed", "ok");
    Ok(tok::Issued {
        access_token: token,
        issued_token_type: tok::TYPE_JWT,
        token_type: "Bearer",
        expires_in: (expires - now).whole_seconds(),
    })
}

/// The `tid` claim of a JWT, read without verifying (to select the tenant).
fn unverified_tid(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("tid")?.as_str().map(str::to_string)
}

/// The token endpoint's answer when console JWTs were not signed.
pub(crate) fn jwt_sign_error(e: JwtSignError, alg: &str) -> crate::outbound::token::ExchangeError {
    use crate::outbound::token::ExchangeError;
    match e {
        JwtSignError::KeyMissing => ExchangeError::new(
            500,
            "server_error",
            "token.key_missing",
            format!("no {alg} key is configured for console tokens"),
        ),
        JwtSignError::Sign(e) => ExchangeError::new(500, "server_error", "keys.sign_failed", &e),
        JwtSignError::Pool(e) => {
            let status = if e.code() == "server.busy" { 503 } else { 500 };
            ExchangeError::new(status, "temporarily_unavailable", e.code(), &e)
        }
    }
}

/// Why console JWTs were not signed.
#[derive(Debug)]
pub(crate) enum JwtSignError {
    /// No key for the console's `token_alg`.
    KeyMissing,
    Sign(crate::trust::signing::SigningError),
    Pool(crate::cpu::PoolError),
}

impl App {
    /// Sign console JWTs with the key for `alg` (`RS256`: the current
    /// signing key; else the ES256 token key), on the CPU pool ahead of new
    /// work: the request that needs them has been verified already.
    pub(crate) async fn sign_jwts(
        &self,
        alg: &str,
        claims: Vec<serde_json::Value>,
    ) -> Result<Vec<String>, JwtSignError> {
        self.sign_jwts_typed(alg, "JWT", claims).await
    }

    /// One JWT of type `typ` (a back-channel `logout+jwt`), signed as
    /// [`App::sign_jwts`] signs.
    pub(crate) async fn sign_typed_jwt(
        &self,
        alg: &str,
        typ: &'static str,
        claims: serde_json::Value,
    ) -> Result<String, JwtSignError> {
        let mut signed = self.sign_jwts_typed(alg, typ, vec![claims]).await?;
        signed.pop().ok_or(JwtSignError::KeyMissing)
    }

    async fn sign_jwts_typed(
        &self,
        alg: &str,
        typ: &'static str,
        claims: Vec<serde_json::Value>,
    ) -> Result<Vec<String>, JwtSignError> {
        let (keys, es256) = (self.keys(), self.token_es256.clone());
        let rs256 = alg == "RS256";
        if (rs256 && keys.current.jwt.is_none()) || (!rs256 && es256.is_none()) {
            return Err(JwtSignError::KeyMissing);
        }
        self.cpu
            .continue_with(move || {
                let signer = if rs256 {
                    keys.current.jwt.as_ref()
                } else {
                    es256.as_deref()
                };
                let signer = signer.ok_or(JwtSignError::KeyMissing)?;
                let header = serde_json::json!({"kid": signer.kid, "typ": typ});
                claims
                    .iter()
                    .map(|c| signer.sign_jwt_with(&header, c).map_err(JwtSignError::Sign))
                    .collect()
            })
            .await
            .map_err(JwtSignError::Pool)?
    }

    /// fedgate's JWKS for console tokens (`GET /oauth2/jwks`).
    pub fn jwks(&self) -> serde_json::Value {
        let ks = self.keys();
        let keys: Vec<serde_json::Value> = self
            .token_es256
            .iter()
            .map(|k| k.as_ref())
            .chain(ks.published().iter().filter_map(|k| k.jwt.as_ref()))
            .map(|k| k.jwk())
            .collect();
        serde_json::json!({ "keys": keys })
    }
}
