//! Why a SAML response was refused: [`SamlError`], one variant per rule,
//! each with a stable code.

use super::*;

/// Why a SAML response was refused. Each variant has a stable code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SamlError {
    /// The input is larger than the configured limit (checked before parsing).
    #[error("the SAML response is {0} bytes; the limit is {1}")]
    TooLarge(usize, usize),
    /// Not base64 and not XML.
    #[error("the SAMLResponse is not valid base64: {0}")]
    Base64(String),
    /// Not well-formed, or a DOCTYPE.
    #[error(transparent)]
    Xml(#[from] XmlError),
    /// The document element is not a SAML 2.0 protocol Response.
    #[error("the document is not a SAML 2.0 Response (root element: {0})")]
    NotAResponse(String),
    /// `Version` is not 2.0.
    #[error("SAML version {0:?} is not supported; 2.0 is required")]
    VersionUnsupported(String),
    /// The IdP answered with an error status.
    #[error("the IdP returned status {code}{message}")]
    Status { code: String, message: String },
    /// Two elements share an ID: a reference could resolve to either.
    #[error("the ID {0:?} appears more than once in the document")]
    DuplicateId(String),
    /// No Assertion.
    #[error("the Response holds no Assertion")]
    NoAssertion,
    /// More than one Assertion anywhere in the document.
    #[error("the document holds {0} Assertions; exactly one is accepted")]
    MultipleAssertions(usize),
    /// The only Assertion is not a direct child of the Response.
    #[error("the Assertion is not a direct child of the Response (found inside {0})")]
    AssertionMisplaced(String),
    /// An EncryptedAssertion, and the tenant has no decryption key.
    #[error("the Response holds an EncryptedAssertion, and this tenant has no decryption key: configure [[tenants.encryption_keys]] (docs/encryption.md), or turn token encryption off for the application in Entra")]
    EncryptedAssertion,
    /// The EncryptedAssertion could not be decrypted (or is not allowed).
    #[error(transparent)]
    Decrypt(#[from] decrypt::DecryptError),
    /// Neither the Response nor the Assertion is signed.
    #[error("neither the Response nor the Assertion is signed")]
    Unsigned,
    /// A signature did not pass the profile or the cryptography.
    #[error("{element} signature: {source}")]
    Signature {
        element: &'static str,
        source: DsigError,
    },
    /// The Issuer is missing.
    #[error("the {0} has no Issuer")]
    IssuerMissing(&'static str),
    /// The Issuer is not the entity id of the trusted IdP.
    #[error("the {element} Issuer is {found:?}; the trusted IdP is {expected:?}")]
    IssuerMismatch {
        element: &'static str,
        found: String,
        expected: String,
    },
    /// `Destination` is present and is not fedgate's ACS URL.
    #[error("the Response Destination is {found:?}; fedgate's ACS URL is {expected:?}")]
    DestinationMismatch { found: String, expected: String },
    /// No (or an empty) NameID.
    #[error("the Assertion has no usable Subject NameID: {0}")]
    SubjectMissing(String),
    /// No bearer SubjectConfirmation.
    #[error("the Assertion has no bearer SubjectConfirmation with SubjectConfirmationData")]
    SubjectConfirmationMissing,
    /// The bearer confirmation is for another ACS URL.
    #[error(
        "the SubjectConfirmationData Recipient is {found:?}; fedgate's ACS URL is {expected:?}"
    )]
    RecipientMismatch { found: String, expected: String },
    /// Past a NotOnOrAfter (plus skew).
    #[error("the assertion expired: {0}")]
    Expired(String),
    /// Before a NotBefore (minus skew).
    #[error("the assertion is not valid yet: {0}")]
    NotYetValid(String),
    /// No Conditions element.
    #[error("the Assertion has no Conditions (an AudienceRestriction is required)")]
    ConditionsMissing,
    /// fedgate's entity id is not in (every) AudienceRestriction.
    #[error("the assertion is not addressed to fedgate: {0}")]
    AudienceMismatch(String),
    /// InResponseTo does not match the request fedgate sent.
    #[error("InResponseTo is {found:?}; the login started here had request id {expected:?}")]
    InResponseToMismatch { found: String, expected: String },
    /// No AuthnStatement.
    #[error("the Assertion has no AuthnStatement")]
    AuthnStatementMissing,
    /// An attribute Name appears twice.
    #[error("the attribute {0:?} appears more than once")]
    DuplicateAttribute(String),
    /// A single-valued attribute has several values, or an empty one.
    #[error("the attribute {0:?} must have exactly one non-empty value")]
    AttributeInvalid(String),
    /// The tenant in the token is not the tenant of the issuer.
    #[error("tenant mismatch: {0}")]
    TenantMismatch(String),
    /// Entra did not send the object id that keys the user.
    #[error("the Entra object id claim ({}) is missing; fedgate keys users by tenant and object id, never by name or email", claims::OBJECT_ID)]
    ObjectIdMissing,
    /// A count beyond one of the per-document [`limits`] (what was counted,
    /// the constant's name, its value), found before any signature is read.
    #[error("more than {limit} {what} in the document ({name})")]
    LimitExceeded {
        what: &'static str,
        name: &'static str,
        limit: usize,
    },
    /// Anything else that breaks the schema (bad timestamps, missing IDs…).
    #[error("malformed SAML: {0}")]
    Malformed(String),
}

impl ErrorCode for SamlError {
    fn code(&self) -> &'static str {
        match self {
            SamlError::TooLarge(..) => "saml.too_large",
            SamlError::Base64(_) => "saml.base64_invalid",
            SamlError::Xml(XmlError::Doctype) => "saml.doctype_forbidden",
            SamlError::Xml(XmlError::TooManyNodes(_)) => "saml.limit_exceeded",
            SamlError::Xml(_) => "saml.xml_malformed",
            SamlError::NotAResponse(_) => "saml.not_a_response",
            SamlError::VersionUnsupported(_) => "saml.version_unsupported",
            SamlError::Status { .. } => "saml.status_error",
            SamlError::DuplicateId(_) => "saml.duplicate_id",
            SamlError::NoAssertion => "saml.no_assertion",
            SamlError::MultipleAssertions(_) => "saml.multiple_assertions",
            SamlError::AssertionMisplaced(_) => "saml.assertion_misplaced",
            SamlError::EncryptedAssertion => "saml.encrypted_assertion_unsupported",
            SamlError::Decrypt(e) => crate::identity::ErrorCode::code(e),
            SamlError::Unsigned => "saml.unsigned",
            SamlError::Signature { source, .. } => match source.code_suffix() {
                "signature_malformed" => "saml.signature_malformed",
                "signature_multiple" => "saml.signature_multiple",
                "reference_invalid" => "saml.reference_invalid",
                "transform_unsupported" => "saml.transform_unsupported",
                "algorithm_unsupported" => "saml.algorithm_unsupported",
                "sha1_forbidden" => "saml.sha1_forbidden",
                "cert_untrusted" => "saml.cert_untrusted",
                "key_too_weak" => "saml.key_too_weak",
                "digest_mismatch" => "saml.digest_mismatch",
                "limit_exceeded" => "saml.limit_exceeded",
                _ => "saml.signature_invalid",
            },
            SamlError::IssuerMissing(_) => "saml.issuer_missing",
            SamlError::IssuerMismatch { .. } => "saml.issuer_mismatch",
            SamlError::DestinationMismatch { .. } => "saml.destination_mismatch",
            SamlError::SubjectMissing(_) => "saml.subject_missing",
            SamlError::SubjectConfirmationMissing => "saml.subject_confirmation_missing",
            SamlError::RecipientMismatch { .. } => "saml.recipient_mismatch",
            SamlError::Expired(_) => "saml.expired",
            SamlError::NotYetValid(_) => "saml.not_yet_valid",
            SamlError::ConditionsMissing => "saml.conditions_missing",
            SamlError::AudienceMismatch(_) => "saml.audience_mismatch",
            SamlError::InResponseToMismatch { .. } => "saml.in_response_to_mismatch",
            SamlError::AuthnStatementMissing => "saml.authn_statement_missing",
            SamlError::DuplicateAttribute(_) => "saml.duplicate_attribute",
            SamlError::AttributeInvalid(_) => "saml.attribute_invalid",
            SamlError::TenantMismatch(_) => "saml.tid_mismatch",
            SamlError::ObjectIdMissing => "saml.object_id_missing",
            SamlError::LimitExceeded { .. } => "saml.limit_exceeded",
            SamlError::Malformed(_) => "saml.malformed",
        }
    }
}
