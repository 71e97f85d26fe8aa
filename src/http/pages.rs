//! Server-rendered pages: no JavaScript needed, no external assets.

use crate::gateway::Refusal;
use crate::xml::escape as esc;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:46em;margin:3em auto;padding:0 1em;color:#222}\
code{background:#f3f3f3;padding:.1em .3em}h1{font-size:1.4em}.hint{border-left:4px solid #c60;padding:.2em 1em;background:#fff8f0}";

/// What a code means, and what the admin should check.
pub fn hint(code: &str) -> (&'static str, &'static str) {
    match code {
        "saml.audience_mismatch" => (
            "The assertion is addressed to another application.",
            "In Entra, the application's Identifier (Entity ID) must equal fedgate's SP entity id for this tenant (see /saml/{tenant}/metadata).",
        ),
        "saml.destination_mismatch" | "saml.recipient_mismatch" => (
            "The response was meant for another address.",
            "In Entra, the Reply URL must equal fedgate's ACS URL exactly (https, host, path, no trailing slash). Behind a proxy, check server.public_url.",
        ),
        "saml.expired" | "saml.not_yet_valid" => (
            "The assertion is outside its validity window.",
            "Check the clocks (NTP) on fedgate's host; the allowed skew is the tenant's clock_skew_secs.",
        ),
        "saml.signature_invalid" | "saml.cert_untrusted" | "saml.digest_mismatch" => (
            "The signature does not verify with the certificates fedgate trusts for this tenant.",
            "Compare the signing certificate in Entra (SAML Signing Certificate) with the tenant's metadata file; after a rotation, refresh the metadata.",
        ),
        "saml.unsigned" => (
            "Nothing in the response is signed.",
            "In Entra, set the Signing Option to sign the assertion (or response and assertion).",
        ),
        "saml.sha1_forbidden" => (
            "The response is signed with SHA-1.",
            "Set the IdP's signing algorithm to SHA-256 (Entra: the application's SAML Signing Certificate → Signing Algorithm; pysaml2 and other toolkits often default to SHA-1).",
        ),
        "saml.status_error" => (
            "Entra returned an error instead of a login.",
            "The AADSTS code in the message says why (e.g. AADSTS50105: the user is not assigned to the application; AADSTS75011: the sign-in method does not match the authentication context fedgate asked for, e.g. a console asked for MFA and the user signed in another way: sign in again with MFA, or check the tenant's Conditional Access).",
        ),
        "saml.replayed" => (
            "This login response was already used.",
            "A browser back-button or a replay attempt. Start the login again from Entra (My Apps).",
        ),
        "saml.issuer_mismatch" | "saml.tid_mismatch" => (
            "The response comes from another tenant or IdP.",
            "Check which Entra tenant's metadata is configured for this fedgate tenant.",
        ),
        "policy.no_rule_matched" | "policy.no_console" | "policy.no_rules" => (
            "fedgate verified who you are, but no rule grants you a role on this console.",
            "Check the rules for this tenant and console, and the user's group memberships in Entra (rules prefer group object ids).",
        ),
        "policy.mfa_required" => (
            "This console requires multi-factor authentication.",
            "fedgate already signed the user in again asking for MFA (a step-up), and the tenant still did not do it: register an MFA method for the user, or require MFA for fedgate's application in Conditional Access (by OIDC, set [tenants.oidc] mfa_auth_context to an authentication context that requires it).",
        ),
        "policy.groups_overage_unresolved" => (
            "Entra sent a link instead of the user's groups (the user is in too many groups).",
            "Emit only groups assigned to the application in Entra's group claim, or configure Graph access for this tenant.",
        ),
        "graph.token_failed" | "graph.request_failed" | "graph.response_invalid" => (
            "The user is in too many groups for Entra to send them, and fedgate could not ask Microsoft Graph for them.",
            "Check the tenant's [tenants.graph] app registration: client secret not expired, application permission GroupMember.Read.All with admin consent.",
        ),
        "outbound.nameid_missing" => (
            "The sign-in carried no value for what this console uses as the user's name (its NameID: the e-mail or UPN, or the object id).",
            "Check that the tenant sends that claim (for Entra: the UPN or mail claim of the user; for another SAML IdP, which attribute carries it), or set the console's nameid in fedgate.toml to a value the tenant sends (email, upn, object_id).",
        ),
        "identity.domain_not_owned" => (
            "Your e-mail address or user name is not in a domain your organisation has registered with fedgate, so fedgate will not sign you in to the console under it.",
            "The message names the tenant and the domain. If that domain is a verified domain of the tenant in Entra (Settings → Domain names), add it to the tenant's domains in fedgate.toml; if it belongs to another organisation, the user's mail or UPN claim was set to someone else's address.",
        ),
        "idp.acs_mismatch" => (
            "The console asked fedgate to send the sign-in to an address that is not the reply URL registered for it, so fedgate sent nothing.",
            "Set the console's reply_url in fedgate.toml to the console's Assertion Consumer Service URL exactly as the console sends it (scheme, host, path, trailing slash), or fix the console's SSO settings.",
        ),
        "idp.issuer_unknown" => (
            "A service provider fedgate does not know asked it to sign someone in.",
            "The message names the entity id it sent: set that console's identifier in fedgate.toml to it exactly, or check the console's SSO settings.",
        ),
        "idp.request_unsigned" | "idp.signature_invalid" | "idp.signature_unverifiable" | "idp.sha1_forbidden" => (
            "The console's sign-in request is not signed as fedgate expects for this console.",
            "Give fedgate the console's current signing certificate (certificate_file in its [[consoles]] entry, PEM); set authn_requests_signed only if the console signs every request; the console must sign with SHA-256.",
        ),
        "idp.request_expired" | "idp.request_replayed" | "idp.request_unbound" => (
            "The console's sign-in request is old, was already answered, or was started in another browser.",
            "Start the sign-in again at the console. If it keeps happening, check the clocks (NTP) of the console and fedgate.",
        ),
        "idp.mfa_not_performed" | "idp.no_authn_context" => (
            "This console asks for a multi-factor sign-in, and the tenant signed the user in without one.",
            "Register an MFA method for the user, or require MFA for fedgate's application in the tenant's Conditional Access; then sign in again.",
        ),
        "store.unavailable" => (
            "fedgate's session store is unavailable, so it cannot guarantee one-time use.",
            "Check the store (Redis) and fedgate's /readyz; logins resume by themselves.",
        ),
        "tenant.unknown" | "console.unknown" => (
            "The URL or RelayState names something fedgate does not know.",
            "Check the Reply URL configured in Entra and the RelayState (it must be a console id).",
        ),
        _ => (
            "fedgate refused this login.",
            "The code above is listed in docs/verification.md with what to check.",
        ),
    }
}

/// The error page for a refusal.
pub fn error(r: &Refusal) -> String {
    let (meaning, check) = hint(r.code);
    let console = r
        .console
        .as_deref()
        .map(|c| format!("<p>Console: {}</p>", esc(c)))
        .unwrap_or_default();
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Sign-in refused: {code}</title><style>{STYLE}</style></head><body>\
<h1>Sign-in refused</h1><p>Error code: <code>{code}</code></p>{console}<p>{meaning}</p><p>{message}</p>\
<div class=\"hint\"><p><b>For the administrator:</b> {check}</p></div></body></html>",
        code = esc(r.code),
        meaning = esc(meaning),
        message = esc(&r.message),
        check = esc(check),
    )
}

/// A step-up: why the user signs in again, going on by itself (a refresh,
/// and a link for browsers that do not follow it).
pub fn step_up(message: &str, location: &str) -> String {
    // Only a web URL is linked (the gateway follows nothing else).
    let location = if location.starts_with("https://") || location.starts_with("http://") {
        location
    } else {
        "about:blank"
    };
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"2;url={href}\">\
<title>Signing you in again</title><style>{STYLE}</style></head><body><h1>Signing you in again</h1>\
<p>{message}</p><p><a id=\"continue\" href=\"{href}\">Continue</a></p></body></html>",
        href = esc(location),
        message = esc(message),
    )
}

/// After signing out of fedgate.
pub fn signed_out(told: &[crate::gateway::logout::Told]) -> String {
    let (reached, missed): (Vec<_>, Vec<_>) = told.iter().partition(|t| t.reached());
    let item = |t: &&crate::gateway::logout::Told| {
        let detail = if t.detail.is_empty() {
            String::new()
        } else {
            format!(": {}", esc(&t.detail))
        };
        format!(
            "<li data-console=\"{}\" data-via=\"{}\" data-result=\"{}\">{}{detail}</li>",
            esc(&t.console),
            esc(&t.via),
            esc(&t.result),
            esc(&t.name)
        )
    };
    let mut body = String::new();
    if !reached.is_empty() {
        body.push_str("<p>Signed out of these consoles too:</p><ul class=\"told\">");
        body.extend(reached.iter().map(item));
        body.push_str("</ul>");
    }
    if !missed.is_empty() {
        body.push_str("<p><strong>These consoles could not be told</strong>: they keep their own session until it ends, so sign out of each of them yourself (on a shared machine, close the browser too).</p><ul class=\"missed\">");
        body.extend(missed.iter().map(item));
        body.push_str("</ul>");
    }
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Signed out</title><style>{STYLE}</style></head><body>\
<h1>Signed out of fedgate</h1><p>Your fedgate session has ended: the next console you open signs you in again.</p>{body}</body></html>"
    )
}

/// The launcher: the consoles this user may reach.
pub fn launcher(consoles: &[(String, String)]) -> String {
    let mut items = String::new();
    for (id, name) in consoles {
        items.push_str(&format!(
            "<li><a href=\"/launch/{}\">{}</a></li>",
            esc(id),
            esc(name)
        ));
    }
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Choose a console</title><style>{STYLE}</style></head><body>\
<h1>Choose a console</h1><ul>{items}</ul></body></html>"
    )
}

/// Home-realm discovery: which organisation's sign-in to use.
pub fn tenant_chooser(links: &[(String, String)]) -> String {
    let mut items = String::new();
    for (href, name) in links {
        items.push_str(&format!(
            "<li><a href=\"{}\">{}</a></li>",
            esc(href),
            esc(name)
        ));
    }
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Choose your organisation</title><style>{STYLE}</style></head><body>\
<h1>Sign in with your organisation</h1><ul>{items}</ul></body></html>"
    )
}
