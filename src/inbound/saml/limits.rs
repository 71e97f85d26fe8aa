//! Per-document limits on a SAML Response (issue 15), checked in the one
//! scan of the document that runs before any signature is looked at, so
//! that no hostile shape costs more than a constant times its size before
//! it is refused. Each is refused as `saml.limit_exceeded`, the message
//! naming the constant. The table, with the reasons for each value:
//! docs/verification.md, "Limits".
//!
//! What Entra sends, for scale: one Response ID and one Assertion ID, one
//! Signature (two when the Response is signed too) with one Reference, two
//! Transforms and one certificate; 10–20 Attributes; up to 150 group ids in
//! one Attribute before it switches to the overage link, plus the user's
//! app roles.

/// `ID`, `Id` and `AssertionID` attributes in the whole document (each
/// must also be unique). Entra: 2. Metadata-ish extras (a Signature `Id`, a
/// KeyInfo `Id`) still leave a wide margin.
pub const MAX_IDS: usize = 32;
/// `ds:Signature` elements in the whole document. Only the Response's and
/// the Assertion's are ever verified; 4 leaves room for the odd extra one a
/// wrapping-attack test plants (refused later, by its own rule).
pub const MAX_SIGNATURES: usize = 4;
/// `ds:Reference` elements in the whole document (the profile takes
/// exactly one per SignedInfo).
pub const MAX_REFERENCES: usize = 4;
/// `ds:Transform` elements in the whole document (the profile takes
/// exactly two per Reference).
pub const MAX_TRANSFORMS: usize = 8;
/// `ds:X509Certificate` elements in the whole document (at most
/// [`crate::xml::dsig::MAX_KEYINFO_CERTIFICATES`] in one KeyInfo).
pub const MAX_X509_CERTIFICATES: usize = 8;
/// Names in one `InclusiveNamespaces PrefixList`, anywhere in the document.
pub const MAX_PREFIX_LIST_ENTRIES: usize = crate::xml::dsig::MAX_PREFIX_LIST_ENTRIES;
/// `saml:Attribute` elements in the document (one Assertion is accepted).
/// Entra sends 10–20; a claims-mapping policy with every optional claim
/// stays under 100.
pub const MAX_ATTRIBUTES: usize = 256;
/// `saml:AttributeValue` elements in the document: 150 groups before the
/// overage link, hundreds of app roles at most, and the single-valued
/// claims; 2,048 is over four times that.
pub const MAX_ATTRIBUTE_VALUES: usize = 2048;
/// Bytes of one `saml:AttributeValue` element as written (tags included):
/// group and object ids are 36 characters, names and UPNs under 256, a
/// JSON-valued custom claim a few KiB.
pub const MAX_ATTRIBUTE_VALUE_BYTES: usize = 16 * 1024;
