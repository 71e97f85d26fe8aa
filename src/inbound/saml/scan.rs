//! The first pass over a parsed Response, before any signature: the
//! document's shape (one Assertion, or one EncryptedAssertion) and its
//! limits (IDs, attributes, references), in one walk.

use super::*;

pub(super) struct Scan<'a, 'i> {
    pub(super) encrypted: bool,
    pub(super) assertions: Vec<Node<'a, 'i>>,
}

/// One count against a per-document limit.
pub(super) struct Limit {
    what: &'static str,
    name: &'static str,
    limit: usize,
    count: usize,
}

impl Limit {
    const fn new(what: &'static str, name: &'static str, limit: usize) -> Self {
        Limit {
            what,
            name,
            limit,
            count: 0,
        }
    }

    fn add(&mut self, n: usize) -> Result<(), SamlError> {
        self.count += n;
        if self.count > self.limit {
            return Err(self.exceeded());
        }
        Ok(())
    }

    fn exceeded(&self) -> SamlError {
        SamlError::LimitExceeded {
            what: self.what,
            name: self.name,
            limit: self.limit,
        }
    }
}

/// The one pass over the document before any signature is read: linear in
/// the document (a hash set for the IDs), and refusing at the first count
/// past a limit.
pub(super) fn scan_document<'a, 'i>(doc: &'a Document<'i>) -> Result<Scan<'a, 'i>, SamlError> {
    use limits::*;
    let mut seen: HashSet<&str> = HashSet::with_capacity(8);
    let mut ids = Limit::new("ID attributes", "MAX_IDS", MAX_IDS);
    let mut signatures = Limit::new("ds:Signature elements", "MAX_SIGNATURES", MAX_SIGNATURES);
    let mut references = Limit::new("ds:Reference elements", "MAX_REFERENCES", MAX_REFERENCES);
    let mut transforms = Limit::new("ds:Transform elements", "MAX_TRANSFORMS", MAX_TRANSFORMS);
    let mut certificates = Limit::new(
        "ds:X509Certificate elements",
        "MAX_X509_CERTIFICATES",
        MAX_X509_CERTIFICATES,
    );
    let mut attributes = Limit::new("saml:Attribute elements", "MAX_ATTRIBUTES", MAX_ATTRIBUTES);
    let mut values = Limit::new(
        "saml:AttributeValue elements",
        "MAX_ATTRIBUTE_VALUES",
        MAX_ATTRIBUTE_VALUES,
    );
    let value_bytes = Limit::new(
        "bytes in one saml:AttributeValue",
        "MAX_ATTRIBUTE_VALUE_BYTES",
        MAX_ATTRIBUTE_VALUE_BYTES,
    );
    let mut scan = Scan {
        encrypted: false,
        assertions: Vec::with_capacity(1),
    };
    for node in doc.descendants().filter(Node::is_element) {
        xml::work::add(1);
        for attr in node.attributes() {
            if attr.namespace().is_none() && matches!(attr.name(), "ID" | "Id" | "AssertionID") {
                ids.add(1)?;
                xml::work::add(1);
                if !seen.insert(attr.value()) {
                    return Err(SamlError::DuplicateId(attr.value().to_string()));
                }
            }
        }
        // The local name first: it is short, and rarely matches.
        let name = node.tag_name();
        match name.name() {
            "Assertion" if name.namespace() == Some(NS_SAML) => scan.assertions.push(node),
            "EncryptedAssertion" if name.namespace() == Some(NS_SAML) => scan.encrypted = true,
            "Attribute" if name.namespace() == Some(NS_SAML) => attributes.add(1)?,
            "AttributeValue" if name.namespace() == Some(NS_SAML) => {
                values.add(1)?;
                if node.range().len() > value_bytes.limit {
                    return Err(value_bytes.exceeded());
                }
            }
            "Signature" if name.namespace() == Some(NS_DS) => signatures.add(1)?,
            "Reference" if name.namespace() == Some(NS_DS) => references.add(1)?,
            "Transform" if name.namespace() == Some(NS_DS) => transforms.add(1)?,
            "X509Certificate" if name.namespace() == Some(NS_DS) => certificates.add(1)?,
            "InclusiveNamespaces" if name.namespace() == Some(dsig::ALG_EXC_C14N) => {
                let list = node.attribute("PrefixList").unwrap_or_default();
                let entries = list
                    .split_ascii_whitespace()
                    .take(MAX_PREFIX_LIST_ENTRIES + 1)
                    .count();
                xml::work::add(entries);
                if entries > MAX_PREFIX_LIST_ENTRIES {
                    return Err(SamlError::LimitExceeded {
                        what: "names in an InclusiveNamespaces PrefixList",
                        name: "MAX_PREFIX_LIST_ENTRIES",
                        limit: MAX_PREFIX_LIST_ENTRIES,
                    });
                }
            }
            _ => {}
        }
    }
    Ok(scan)
}
