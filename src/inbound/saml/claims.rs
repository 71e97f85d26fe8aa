//! Entra's claim names in SAML attribute form.

pub const TENANT_ID: &str = "http://schemas.microsoft.com/identity/claims/tenantid";
pub const OBJECT_ID: &str = "http://schemas.microsoft.com/identity/claims/objectidentifier";
pub const DISPLAY_NAME: &str = "http://schemas.microsoft.com/identity/claims/displayname";
pub const EMAIL: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress";
pub const NAME: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name";
pub const GROUPS: &str = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups";
pub const GROUPS_LINK: &str = "http://schemas.microsoft.com/claims/groups.link";
pub const ROLE: &str = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role";
pub const ROLES: &str = "http://schemas.microsoft.com/ws/2008/06/identity/claims/roles";
pub const AUTHN_METHODS: &str = "http://schemas.microsoft.com/claims/authnmethodsreferences";
pub const MFA_METHOD: &str = "http://schemas.microsoft.com/claims/multipleauthn";

/// In a [`ClaimMap`]: the Subject's NameID value, not an attribute.
pub const FROM_NAMEID: &str = "nameid";
/// In a [`ClaimMap`]'s `mfa`: the AuthnStatement's `AuthnContextClassRef`.
pub const FROM_AUTHN_CONTEXT: &str = "authn_context";

/// A tenant's claim map (`[tenants.claims]`): which SAML attribute (or the
/// NameID) carries each value fedgate reads, for an IdP that is not Entra,
/// or an Entra application with custom claims. Every key is optional and
/// replaces Entra's name for that value with a list of names (single
/// values: the first name present; groups, roles and mfa: all of them).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimMap {
    pub email: Option<Vec<String>>,
    pub upn: Option<Vec<String>>,
    pub object_id: Option<Vec<String>>,
    pub display_name: Option<Vec<String>>,
    pub groups: Option<Vec<String>>,
    pub roles: Option<Vec<String>>,
    /// Where how the user authenticated is said: attributes, or
    /// `authn_context` (the AuthnContextClassRef).
    pub mfa: Option<Vec<String>>,
    /// The values of `mfa` that mean a multi-factor sign-in (compared
    /// exactly; REFEDS: `https://refeds.org/profile/mfa`).
    pub mfa_values: Option<Vec<String>>,
}

/// The names fedgate reads, resolved: the map's, else Entra's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimNames {
    pub email: Vec<String>,
    pub upn: Vec<String>,
    pub object_id: Vec<String>,
    pub display_name: Vec<String>,
    pub groups: Vec<String>,
    pub roles: Vec<String>,
    pub mfa: Vec<String>,
    pub mfa_values: Vec<String>,
}

impl Default for ClaimNames {
    /// Entra's.
    fn default() -> Self {
        ClaimMap::default().resolve()
    }
}

impl ClaimNames {
    /// Whether `value` of one of the `mfa` sources means a multi-factor
    /// sign-in (Entra also says `mfa` in `amr` form, any case).
    pub fn is_mfa(&self, value: &str) -> bool {
        self.mfa_values.iter().any(|v| v == value)
            || (self.mfa_values.iter().any(|v| v == MFA_METHOD)
                && value.eq_ignore_ascii_case("mfa"))
    }
}

impl ClaimMap {
    /// The names to read: this map's, Entra's where it says nothing.
    pub fn resolve(&self) -> ClaimNames {
        let or = |v: &Option<Vec<String>>, default: &[&str]| {
            v.clone()
                .unwrap_or_else(|| default.iter().map(|s| s.to_string()).collect())
        };
        ClaimNames {
            email: or(&self.email, &[EMAIL]),
            upn: or(&self.upn, &[NAME]),
            object_id: or(&self.object_id, &[OBJECT_ID]),
            display_name: or(&self.display_name, &[DISPLAY_NAME]),
            groups: or(&self.groups, &[GROUPS]),
            roles: or(&self.roles, &[ROLE, ROLES]),
            mfa: or(&self.mfa, &[AUTHN_METHODS]),
            mfa_values: or(&self.mfa_values, &[MFA_METHOD]),
        }
    }

    /// What is wrong with the map, if anything: an empty name or list,
    /// `nameid` where it cannot be (groups, roles, mfa), `authn_context`
    /// anywhere but `mfa`. `(key, reason)`.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        let keys: [(&'static str, &Option<Vec<String>>, bool, bool); 8] = [
            ("email", &self.email, true, false),
            ("upn", &self.upn, true, false),
            ("object_id", &self.object_id, true, false),
            ("display_name", &self.display_name, true, false),
            ("groups", &self.groups, false, false),
            ("roles", &self.roles, false, false),
            ("mfa", &self.mfa, false, true),
            ("mfa_values", &self.mfa_values, false, true),
        ];
        for (key, names, nameid_ok, context_ok) in keys {
            let Some(names) = names else { continue };
            if names.is_empty() || names.iter().any(|n| n.trim().is_empty()) {
                return Some((key, "name at least one attribute, none empty".into()));
            }
            if key == "mfa_values" {
                continue;
            }
            if !nameid_ok && names.iter().any(|n| n == FROM_NAMEID) {
                return Some((
                    key,
                    "\"nameid\" can only be the e-mail, UPN, object id or display name".into(),
                ));
            }
            if !context_ok && names.iter().any(|n| n == FROM_AUTHN_CONTEXT) {
                return Some((key, "\"authn_context\" can only be a source of mfa".into()));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_takes_one_name_or_several_and_keeps_entras_for_the_rest() {
        let m: ClaimMap = toml::from_str(
            "email = [\"nameid\"]\ngroups = [\"memberOf\", \"urn:oid:1.3.6.1.4.1.5923.1.5.1.1\"]\nmfa = [\"authn_context\"]\nmfa_values = [\"https://refeds.org/profile/mfa\"]",
        )
        .unwrap();
        assert_eq!(m.problem(), None);
        let n = m.resolve();
        assert_eq!(n.email, ["nameid"]);
        assert_eq!(n.groups, ["memberOf", "urn:oid:1.3.6.1.4.1.5923.1.5.1.1"]);
        assert_eq!(n.upn, [NAME], "Entra's where the map says nothing");
        assert!(n.is_mfa("https://refeds.org/profile/mfa"));
        assert!(!n.is_mfa("mfa"), "the amr shorthand is Entra's only");
        assert!(ClaimNames::default().is_mfa("MFA"));
        assert!(
            toml::from_str::<ClaimMap>("mail = [\"x\"]").is_err(),
            "unknown keys refused"
        );
        assert!(
            toml::from_str::<ClaimMap>("email = \"nameid\"").is_err(),
            "a list, always"
        );
        for (bad, key) in [
            ("groups = [\"nameid\"]", "groups"),
            ("email = []", "email"),
            ("upn = [\"authn_context\"]", "upn"),
            ("roles = [\"\"]", "roles"),
        ] {
            let m: ClaimMap = toml::from_str(bad).unwrap();
            assert_eq!(m.problem().map(|p| p.0), Some(key), "{bad}");
        }
    }
}
