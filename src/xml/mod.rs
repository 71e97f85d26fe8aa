//! The one XML parser fedgate uses, and the helpers every reader shares.
//!
//! Everything XML goes through [`parse`]: fedgate's own parser ([`tree`])
//! with DTDs refused (no entities, no XXE, no billion laughs), a node limit
//! and a nesting limit, so that the canonicalizer and the readers, which
//! recurse, can never be driven into a stack overflow by hostile input.

pub mod c14n;
pub mod dsig;
pub mod tree;
pub mod work;

use std::borrow::Cow;

pub use tree::{Document, Node, NodeId, NodeType};

/// SAML 2.0 protocol namespace (`samlp:`).
pub const NS_SAMLP: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
/// SAML 2.0 assertion namespace (`saml:`).
pub const NS_SAML: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
/// SAML 2.0 metadata namespace (`md:`).
pub const NS_MD: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
/// XML-DSig namespace (`ds:`).
pub const NS_DS: &str = "http://www.w3.org/2000/09/xmldsig#";
/// XML Encryption namespace (`xenc:`).
pub const NS_XENC: &str = "http://www.w3.org/2001/04/xmlenc#";

/// How deep elements may nest. SAML responses and metadata stay under 20.
pub const MAX_DEPTH: usize = 64;
/// How many nodes a document may hold (metadata and other documents).
pub const MAX_NODES: u32 = 200_000;
/// How many nodes a SAML protocol message may hold ([`parse_message`]).
/// Entra's responses hold a few hundred (150 group ids are about 450
/// nodes); the most a response within the per-document limits can need
/// (256 Attributes, 2,048 AttributeValues, each with its text and the white
/// space around it) is under 7,000. A hostile message is cut off here,
/// before its tree costs more than that: a 512 KiB body can hold 50,000.
pub const MAX_MESSAGE_NODES: u32 = 16_384;

/// Why a document was refused before anything was read from it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum XmlError {
    /// The document has a DOCTYPE. fedgate never processes DTDs: entity
    /// declarations are the vehicle of XXE and entity-expansion attacks.
    #[error("the document has a DOCTYPE declaration; DTDs are refused")]
    Doctype,
    /// The document is not well-formed XML (or not UTF-8).
    #[error("the document is not well-formed XML: {0}")]
    Malformed(String),
    /// Elements nest deeper than [`MAX_DEPTH`].
    #[error("elements nest deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// The document holds more nodes than allowed ([`MAX_NODES`], or
    /// [`MAX_MESSAGE_NODES`] for a SAML message).
    #[error("the document holds more than {0} XML nodes (MAX_MESSAGE_NODES for a SAML message, MAX_NODES otherwise)")]
    TooManyNodes(usize),
}

/// Decode bytes as UTF-8 (a leading byte-order mark is dropped).
pub fn utf8(bytes: &[u8]) -> Result<&str, XmlError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| XmlError::Malformed(format!("not UTF-8: {e}")))
}

/// [`utf8`] for bytes the caller owns: no copy unless there is a byte-order mark.
pub fn utf8_owned(mut bytes: Vec<u8>) -> Result<String, XmlError> {
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        bytes.drain(..3);
    }
    String::from_utf8(bytes)
        .map_err(|e| XmlError::Malformed(format!("not UTF-8: {}", e.utf8_error())))
}

/// Parse a document with fedgate's rules: no DTD, bounded size and depth.
///
/// ```
/// use fedgate::xml::{parse, XmlError};
/// let xxe = r#"<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"#;
/// assert_eq!(parse(xxe).err(), Some(XmlError::Doctype));
/// ```
pub fn parse(input: &str) -> Result<Document<'_>, XmlError> {
    Document::parse(input, MAX_NODES as usize, MAX_DEPTH)
}

/// [`parse`] for a SAML protocol message (a Response, an AuthnRequest, a
/// logout message): at most [`MAX_MESSAGE_NODES`] nodes.
pub fn parse_message(input: &str) -> Result<Document<'_>, XmlError> {
    Document::parse(input, MAX_MESSAGE_NODES as usize, MAX_DEPTH)
}

/// The whole text content of an element: every descendant text node, in
/// order. Comments and processing instructions are not text, so
/// `a@<!-- c -->b` reads `a@b` (never just `a@`).
///
/// ```
/// # fn main() -> Result<(), fedgate::xml::XmlError> {
/// let doc = fedgate::xml::parse("<NameID>alice@<!-- c -->contoso.example</NameID>")?;
/// assert_eq!(fedgate::xml::text_content(doc.root_element()), "alice@contoso.example");
/// # Ok(())
/// # }
/// ```
pub fn text_content<'a>(node: Node<'a, '_>) -> Cow<'a, str> {
    // Almost every element read here holds one text node: borrow it, and
    // allocate only when there are several (text split by a comment).
    let mut out = Cow::Borrowed("");
    for d in node.descendants() {
        if let Some(t) = d.is_text().then(|| d.text()).flatten() {
            if out.is_empty() {
                out = Cow::Borrowed(t);
            } else if !t.is_empty() {
                out.to_mut().push_str(t);
            }
        }
    }
    out
}

/// [`text_content`] without leading and trailing white space.
pub fn trimmed_text<'a>(node: Node<'a, '_>) -> Cow<'a, str> {
    match text_content(node) {
        Cow::Borrowed(t) => Cow::Borrowed(t.trim()),
        Cow::Owned(t) => Cow::Owned(t.trim().to_string()),
    }
}

/// True when `node` is an element with this namespace and local name.
pub fn is(node: &Node, ns: &str, local: &str) -> bool {
    node.is_element() && node.tag_name().name() == local && node.tag_name().namespace() == Some(ns)
}

/// The element children of `node` with this namespace and local name.
pub fn children<'a, 'input: 'a>(
    node: Node<'a, 'input>,
    ns: &'a str,
    local: &'a str,
) -> impl Iterator<Item = Node<'a, 'input>> + 'a {
    node.children().filter(move |c| is(c, ns, local))
}

/// The single element child with this name: `Ok(None)` when absent,
/// `Err(())` when there is more than one.
#[allow(clippy::result_unit_err)]
pub fn only_child<'a, 'input: 'a>(
    node: Node<'a, 'input>,
    ns: &'a str,
    local: &'a str,
) -> Result<Option<Node<'a, 'input>>, ()> {
    let mut it = children(node, ns, local);
    let first = it.next();
    if it.next().is_some() {
        return Err(());
    }
    Ok(first)
}

/// Escape text for XML (and HTML) text and double-quoted attribute values:
/// `& < > "`. Used by every writer of XML or HTML in fedgate.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// Base64 as XML-DSig and SAML bindings write it: standard alphabet, any
/// white space (line breaks every 64 or 76 characters) ignored.
///
/// Decoded with SIMD (base64-simd): the posted SAMLResponse is decoded on
/// every login, and the scalar decoder was ~10% of a whole verification.
pub fn base64_decode(s: &str) -> Result<Vec<u8>, Base64Error> {
    // "Forgiving" base64 (WHATWG): ASCII white space is skipped, as
    // line-wrapped base64 (every 64 or 76 characters) needs. (Taking the line
    // breaks out a line at a time with memchr first was tried: more
    // instructions, not fewer.)
    base64_simd::forgiving_decode_to_vec(s.as_bytes()).map_err(|_| Base64Error)
}

/// Invalid base64 (bad character, bad length or bad padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid base64 (bad character, length or padding)")]
pub struct Base64Error;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doctype_is_refused_before_any_entity_is_expanded() {
        let xxe = r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"#;
        assert_eq!(parse(xxe).err(), Some(XmlError::Doctype));
        let laughs = r#"<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><r>&b;</r>"#;
        assert_eq!(parse(laughs).err(), Some(XmlError::Doctype));
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!(
            "{}{}",
            "<a>".repeat(MAX_DEPTH + 1),
            "</a>".repeat(MAX_DEPTH + 1)
        );
        assert_eq!(parse(&deep).err(), Some(XmlError::TooDeep));
        let ok = format!("{}{}", "<a>".repeat(MAX_DEPTH), "</a>".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
        // The walk climbs back and goes on: a too-deep branch after shallow
        // siblings (and text) is found too.
        let nest = |n: usize| format!("{}{}", "<a>".repeat(n), "</a>".repeat(n));
        let late = format!(
            "<r><x/>t<y><z/></y>{}{}</r>",
            nest(MAX_DEPTH - 3),
            nest(MAX_DEPTH)
        );
        assert_eq!(parse(&late).err(), Some(XmlError::TooDeep));
        let fits = format!("<r><x/>t<y><z/></y>{}{}</r>", nest(3), nest(MAX_DEPTH - 1));
        assert!(parse(&fits).is_ok());
    }

    #[test]
    fn base64_ignores_white_space_of_any_layout() {
        let der: Vec<u8> = (0..=255u8).cycle().take(700).collect();
        let b64 = base64_simd::STANDARD.encode_to_string(&der);
        let wrap = |width: usize, eol: &str| {
            b64.as_bytes()
                .chunks(width)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect::<Vec<_>>()
                .join(eol)
        };
        for text in [
            b64.clone(),
            wrap(64, "\n"),
            wrap(76, "\r\n"),
            format!("\r\n  {}\n\n", wrap(64, "\n\t ")),
            format!("{} {}", &b64[..10], &b64[10..]),
        ] {
            assert_eq!(base64_decode(&text).as_deref(), Ok(&der[..]), "{text:?}");
        }
        for bad in ["ab*d", "abc\n*", "a\nb\nc\nd\ne", "====\n"] {
            assert_eq!(base64_decode(bad), Err(Base64Error), "{bad:?}");
        }
    }

    #[test]
    fn text_content_skips_comments_and_keeps_all_text() {
        let doc = parse("<n>user@<!-- c -->example.com<?pi x?></n>").unwrap();
        assert_eq!(text_content(doc.root_element()), "user@example.com");
    }

    #[test]
    fn qualified_names_are_kept_as_written() {
        let names = |src: &str| -> Vec<String> {
            let doc = parse(src).unwrap();
            doc.descendants()
                .filter(Node::is_element)
                .map(|n| n.qname().to_string())
                .collect()
        };
        let src = r#"<a:r xmlns:a="u" xmlns:b="u"><b:c/><d xmlns="v"/></a:r>"#;
        assert_eq!(names(src), ["a:r", "b:c", "d"]);
        let src = "<ab:ab xmlns:ab=\"u\"><ab:a/><a xmlns:x=\"v\" x:y=\"1\"/><ab:abc\t/><abc>t</abc></ab:ab>";
        assert_eq!(names(src), ["ab:ab", "ab:a", "a", "ab:abc", "abc"]);
    }
}
