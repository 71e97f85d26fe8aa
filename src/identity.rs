//! The one seam between the protocols in and the consoles out.
//!
//! An [`Identity`] is what fedgate believes about a principal after an inbound
//! verifier (SAML, OIDC, bearer token) accepted its evidence. It is plain
//! data: no protocol type leaks past it, and policy only ever sees this.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// How the identity reached fedgate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A SAML 2.0 Response (HTTP-POST binding), IdP- or SP-initiated.
    Saml,
    /// An Entra v1.0 access token (`iss` = `https://sts.windows.net/{tid}/`).
    JwtV1,
    /// An Entra v2.0 token (`iss` = `https://login.microsoftonline.com/{tid}/v2.0`).
    JwtV2,
    /// A JWT from an issuer that is not Entra's.
    Jwt,
}

/// Who the principal is: a person, or an application acting for itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    User,
    /// An app-only token (client-credentials grant): `roles`, no user.
    ServiceAccount,
}

/// Where an Identity's `groups` came from: a fact fedgate establishes, kept
/// in a typed field, never read from what the IdP sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupsSource {
    /// The signed assertion or token itself.
    #[default]
    Idp,
    /// Microsoft Graph, after an overage, with the tenant's app credentials.
    Graph,
}

impl GroupsSource {
    pub fn is_idp(&self) -> bool {
        *self == GroupsSource::Idp
    }
}

/// A verified principal.
///
/// The stable key of a user is `(tenant_id, object_id)`; `upn` and `email`
/// are display data that a tenant administrator can set to anything and are
/// never used to decide who somebody is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Identity {
    /// The SAML NameID, or the JWT `sub`.
    pub subject: String,
    /// The NameID Format, when the IdP sent one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_format: Option<String>,
    /// The issuer that signed the evidence (exactly as it appears in it).
    pub issuer: String,
    /// Entra tenant id (`tid`, or the `tenantid` SAML attribute).
    pub tenant_id: Option<String>,
    /// Entra object id of the user or service principal (`oid`).
    pub object_id: Option<String>,
    pub kind: PrincipalKind,
    pub source: Source,
    /// User principal name (`upn`, `preferred_username`, or the SAML `name` claim).
    pub upn: Option<String>,
    pub email: Option<String>,
    pub display_name: Option<String>,
    /// Group object ids (or names, when the tenant is configured to emit them).
    pub groups: Vec<String>,
    /// True when the IdP sent a link or marker instead of the groups (overage):
    /// the groups must be resolved through Microsoft Graph, never assumed empty.
    pub groups_overage: bool,
    /// The Graph link Entra sent for an overage, when it sent one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups_link: Option<String>,
    /// Where `groups` came from (set by fedgate when it resolves an overage).
    #[serde(default, skip_serializing_if = "GroupsSource::is_idp")]
    pub groups_source: GroupsSource,
    /// App roles (`roles` claim, or the SAML `role` claim).
    pub roles: Vec<String>,
    /// Authentication method references (`amr`, `authnmethodsreferences`).
    pub auth_methods: Vec<String>,
    /// Whether the authentication used several factors.
    pub mfa: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub auth_time: Option<OffsetDateTime>,
    /// When the evidence stops being valid.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// The application (client) id: `appid`/`azp` for tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// The assertion ID or token id (`uti`/`jti`), the replay-cache key.
    pub token_id: Option<String>,
    /// The IdP's session: the SAML `SessionIndex`, or the ID token's `sid`
    /// (what the IdP's single logout names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp_session: Option<String>,
    /// How the evidence was verified.
    pub verification: Verification,
    /// Every SAML attribute of the signed Assertion, by Name (empty for
    /// tokens): only what the IdP sent, which its tenant admin controls,
    /// names included. fedgate never keeps its own facts here, and never
    /// decides anything from an attribute name (see [`crate::store::Session`]).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub attributes: std::collections::BTreeMap<String, Vec<String>>,
}

/// What was checked, for the audit trail and `explain`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Verification {
    /// Which elements carried a valid signature: `response`, `assertion`, `jwt`.
    pub signed: Vec<String>,
    /// The signature algorithm URI or JOSE name.
    pub algorithm: String,
    /// SHA-256 thumbprint (hex) of the certificate, or the JWK `kid`, that verified it.
    pub key: String,
    /// `InResponseTo` on the Response or the bearer confirmation, when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_response_to: Option<String>,
    /// The Assertion arrived encrypted and was decrypted with fedgate's key.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub decrypted: bool,
}

impl Identity {
    /// The stable key of this principal: `tid:oid` when both are known.
    pub fn user_key(&self) -> Option<String> {
        match (&self.tenant_id, &self.object_id) {
            (Some(t), Some(o)) => Some(format!("{t}:{o}")),
            _ => None,
        }
    }
}

/// A rejection that can be named by a stable code (`saml.audience_mismatch`).
///
/// The code appears in CLI output, HTTP error pages, audit events and metric
/// labels; once published it never changes meaning.
pub trait ErrorCode {
    fn code(&self) -> &'static str;
}

/// One console role granted with its scope (which customer, unit or tenant
/// of the console it applies to). A role without a scope means nothing to
/// an Acronis-style console, so a grant always carries both.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Grant {
    pub role: String,
    /// The console-side scope (customer/unit/tenant name or id); may be empty
    /// for consoles that have a single scope.
    pub scope: String,
}

/// How one rule fared against an Identity: the raw material of `explain`.
#[derive(Debug, Clone, Serialize)]
pub struct RuleOutcome {
    pub rule: String,
    pub matched: bool,
    /// Why it matched ("group 1234… is a member") or why not
    /// ("requires MFA; the login used password only").
    pub reason: String,
}

/// What policy decided for one Identity and one console.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub console: String,
    /// Roles granted, sorted and without duplicates; empty when denied.
    pub grants: Vec<Grant>,
    /// Every rule for this tenant and console, in configuration order.
    pub rules: Vec<RuleOutcome>,
    /// `None` when allowed; otherwise the stable denial code
    /// (`policy.no_rule_matched`, `policy.mfa_required`, …) and a message.
    pub denial: Option<Denial>,
}

impl Decision {
    /// The ids of the rules that matched.
    pub fn matched_rules(&self) -> Vec<String> {
        self.rules
            .iter()
            .filter(|r| r.matched)
            .map(|r| r.rule.clone())
            .collect()
    }

    /// The denial's code and message (`policy.no_rule_matched` when policy
    /// denied without naming one).
    pub fn denial_reason(&self) -> (&'static str, String) {
        self.denial
            .as_ref()
            .map(|d| (d.code, d.message.clone()))
            .unwrap_or(("policy.no_rule_matched", "no rule grants a role".into()))
    }
}

/// Why access was denied.
#[derive(Debug, Clone, Serialize)]
pub struct Denial {
    pub code: &'static str,
    pub message: String,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        self.denial.is_none() && !self.grants.is_empty()
    }
}
