//! The checks of a SAML Assertion's parts, after its signature held: the
//! Subject's bearer confirmation, the Conditions (time window, audience),
//! the AuthnStatement, the attributes, and the time helpers they share.

use super::*;

pub(super) fn issuer(node: Node) -> Result<Option<String>, SamlError> {
    let issuer = only_child(node, NS_SAML, "Issuer")
        .map_err(|()| SamlError::Malformed("more than one Issuer".into()))?;
    Ok(issuer.map(|i| xml::trimmed_text(i).into_owned()))
}

pub(super) fn timestamp(node: Node, attr: &str) -> Result<Option<OffsetDateTime>, SamlError> {
    match node.attribute(attr) {
        None => Ok(None),
        Some(s) => crate::timefmt::parse(s).map(Some).ok_or_else(|| {
            SamlError::Malformed(format!(
                "{}@{attr} is not an xs:dateTime: {s:?}",
                node.tag_name().name()
            ))
        }),
    }
}

/// `now` is before `not_before` even allowing for skew.
pub(super) fn too_early(not_before: OffsetDateTime, now: OffsetDateTime, skew: Duration) -> bool {
    now + skew < not_before
}

/// `now` is at or after `not_on_or_after` even allowing for skew.
pub(super) fn too_late(
    not_on_or_after: OffsetDateTime,
    now: OffsetDateTime,
    skew: Duration,
) -> bool {
    now - skew >= not_on_or_after
}

/// The time-window rule of SAML Core §2.5.1.2 and §2.4.1.2, with the skew:
/// `NotBefore <= now + skew` and `now - skew < NotOnOrAfter`.
pub(super) fn check_window(
    what: &str,
    not_before: Option<OffsetDateTime>,
    not_on_or_after: Option<OffsetDateTime>,
    now: OffsetDateTime,
    skew: Duration,
) -> Result<(), SamlError> {
    let detail = |attr: &str, t: OffsetDateTime| {
        format!(
            "{what} {attr} {} (now {}, skew {} s); check the clocks",
            crate::timefmt::format(t),
            crate::timefmt::format(now),
            skew.whole_seconds()
        )
    };
    if let Some(nb) = not_before.filter(|nb| too_early(*nb, now, skew)) {
        return Err(SamlError::NotYetValid(detail("NotBefore", nb)));
    }
    if let Some(na) = not_on_or_after.filter(|na| too_late(*na, now, skew)) {
        return Err(SamlError::Expired(detail("NotOnOrAfter", na)));
    }
    Ok(())
}

pub(super) struct Confirmation {
    pub(super) not_on_or_after: OffsetDateTime,
    pub(super) in_response_to: Option<String>,
}

/// Profiles §4.1.4.2: at least one bearer SubjectConfirmation whose
/// SubjectConfirmationData has a Recipient equal to the ACS URL, a
/// NotOnOrAfter in the future and, when the login was started here, the
/// InResponseTo of that request. The first that satisfies all wins; when
/// none does, the reason given is that of the first bearer confirmation.
pub(super) fn check_bearer_confirmation(
    subject: Node,
    settings: &SamlSettings,
    now: OffsetDateTime,
) -> Result<Confirmation, SamlError> {
    let mut first_error = None;
    for sc in children(subject, NS_SAML, "SubjectConfirmation") {
        if sc.attribute("Method") != Some(CM_BEARER) {
            continue;
        }
        let Ok(Some(scd)) = only_child(sc, NS_SAML, "SubjectConfirmationData") else {
            continue;
        };
        match check_confirmation_data(scd, settings, now) {
            Ok(c) => return Ok(c),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or(SamlError::SubjectConfirmationMissing))
}

pub(super) fn check_confirmation_data(
    scd: Node,
    settings: &SamlSettings,
    now: OffsetDateTime,
) -> Result<Confirmation, SamlError> {
    let recipient = scd.attribute("Recipient").unwrap_or_default();
    if recipient != settings.acs_url {
        return Err(SamlError::RecipientMismatch {
            found: recipient.into(),
            expected: settings.acs_url.clone(),
        });
    }
    let not_on_or_after = timestamp(scd, "NotOnOrAfter")?.ok_or_else(|| {
        SamlError::Malformed("the bearer SubjectConfirmationData has no NotOnOrAfter".into())
    })?;
    check_window(
        "SubjectConfirmationData",
        timestamp(scd, "NotBefore")?,
        Some(not_on_or_after),
        now,
        settings.skew,
    )?;
    let in_response_to = scd.attribute("InResponseTo").map(str::to_string);
    if let Some(expected) = &settings.expected_in_response_to {
        if in_response_to.as_deref() != Some(expected.as_str()) {
            return Err(SamlError::InResponseToMismatch {
                found: in_response_to.unwrap_or_default(),
                expected: expected.clone(),
            });
        }
    }
    Ok(Confirmation {
        not_on_or_after,
        in_response_to,
    })
}

/// Core §2.5.1: the time window and every AudienceRestriction. Returns the
/// Conditions' NotOnOrAfter.
pub(super) fn check_conditions(
    assertion: Node,
    settings: &SamlSettings,
    now: OffsetDateTime,
) -> Result<Option<OffsetDateTime>, SamlError> {
    let conditions = only_child(assertion, NS_SAML, "Conditions")
        .map_err(|()| SamlError::Malformed("more than one Conditions".into()))?
        .ok_or(SamlError::ConditionsMissing)?;
    let not_before = timestamp(conditions, "NotBefore")?;
    let not_on_or_after = timestamp(conditions, "NotOnOrAfter")?;
    check_window(
        "Conditions",
        not_before,
        not_on_or_after,
        now,
        settings.skew,
    )?;
    // §2.5.1.4: each AudienceRestriction must be satisfied on its own.
    let mut restrictions = 0;
    for c in conditions.children().filter(Node::is_element) {
        if is(&c, NS_SAML, "AudienceRestriction") {
            restrictions += 1;
            let mut audiences = children(c, NS_SAML, "Audience").map(xml::trimmed_text);
            if !audiences.any(|a| a == settings.sp_entity_id.as_str()) {
                let audiences: Vec<_> = children(c, NS_SAML, "Audience")
                    .map(xml::trimmed_text)
                    .collect();
                return Err(SamlError::AudienceMismatch(format!(
                    "Audience {audiences:?} does not contain fedgate's entity id {:?} (Entra: the application's Identifier)",
                    settings.sp_entity_id
                )));
            }
        } else if is(&c, NS_SAML, "OneTimeUse") || is(&c, NS_SAML, "ProxyRestriction") {
            // OneTimeUse is honoured by the replay cache for every assertion.
        } else {
            // §2.5.1.1: an unknown condition makes the assertion Indeterminate.
            return Err(SamlError::Malformed(format!(
                "unknown condition {}",
                c.tag_name().name()
            )));
        }
    }
    if restrictions == 0 {
        return Err(SamlError::AudienceMismatch(
            "the Conditions hold no AudienceRestriction".into(),
        ));
    }
    Ok(not_on_or_after)
}

/// Profiles §4.1.4.2: at least one AuthnStatement. Returns its
/// AuthnInstant and AuthnContextClassRef.
pub(super) fn check_authn_statement(
    assertion: Node,
    settings: &SamlSettings,
    now: OffsetDateTime,
) -> Result<(Option<OffsetDateTime>, Option<String>), SamlError> {
    let statement = children(assertion, NS_SAML, "AuthnStatement")
        .next()
        .ok_or(SamlError::AuthnStatementMissing)?;
    if let Some(end) = timestamp(statement, "SessionNotOnOrAfter")? {
        if too_late(end, now, settings.skew) {
            return Err(SamlError::Expired(format!(
                "the IdP session ended at {} (SessionNotOnOrAfter)",
                crate::timefmt::format(end)
            )));
        }
    }
    let class = only_child(statement, NS_SAML, "AuthnContext")
        .ok()
        .flatten()
        .and_then(|c| {
            only_child(c, NS_SAML, "AuthnContextClassRef")
                .ok()
                .flatten()
        })
        .map(|r| xml::trimmed_text(r).into_owned())
        .filter(|r| !r.is_empty());
    Ok((timestamp(statement, "AuthnInstant")?, class))
}

/// Every Attribute by Name, with its values' whole text (trimmed), borrowed
/// from the document until the Identity is built. A Name twice is an error.
#[allow(clippy::type_complexity)]
pub(super) fn read_attributes<'a>(
    assertion: Node<'a, '_>,
) -> Result<Vec<(&'a str, Vec<Cow<'a, str>>)>, SamlError> {
    let mut out: Vec<(&'a str, Vec<Cow<'a, str>>)> = Vec::with_capacity(16);
    let mut names: HashSet<&'a str> = HashSet::with_capacity(16);
    for statement in children(assertion, NS_SAML, "AttributeStatement") {
        if children(statement, NS_SAML, "EncryptedAttribute")
            .next()
            .is_some()
        {
            return Err(SamlError::Malformed(
                "EncryptedAttribute is not supported".into(),
            ));
        }
        for attr in children(statement, NS_SAML, "Attribute") {
            let name = attr
                .attribute("Name")
                .ok_or_else(|| SamlError::Malformed("an Attribute has no Name".into()))?;
            xml::work::add(1);
            if !names.insert(name) {
                return Err(SamlError::DuplicateAttribute(name.into()));
            }
            let values = children(attr, NS_SAML, "AttributeValue")
                .map(xml::trimmed_text)
                .collect();
            out.push((name, values));
        }
    }
    Ok(out)
}
