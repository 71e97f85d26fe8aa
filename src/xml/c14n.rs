//! Exclusive XML Canonicalization 1.0, without comments
//! (<http://www.w3.org/2001/10/xml-exc-c14n#>), of one element's subtree.
//!
//! This is the only canonicalization fedgate's XML-DSig profile accepts, for
//! both `SignedInfo` and the referenced element, and the same code
//! canonicalizes what fedgate signs itself. It works on the parsed tree the
//! verifier reads identity from, so what is digested is exactly what is read.
//!
//! The node set is "the apex element and its descendants", optionally minus
//! one excluded element (the enveloped `ds:Signature`) and its descendants.
//! The rules applied, from the Exc-C14N spec §3 and C14N 1.0 §2:
//! - comments are dropped, processing instructions inside are kept;
//! - an element renders a namespace declaration only for prefixes it
//!   *visibly utilizes* (its own prefix, or an attribute's), plus those in the
//!   `InclusiveNamespaces PrefixList`, and only when the nearest rendering
//!   output ancestor did not already render the same binding;
//! - `xmlns=""` is rendered when the element is in no namespace and an output
//!   ancestor rendered a non-empty default namespace;
//! - namespace declarations sort by prefix (default first); attributes by
//!   (namespace URI, local name), unqualified ones first;
//! - `xml:*` attributes of ancestors are not inherited (unlike C14N 1.0);
//! - text escapes `& < >` and CR; attribute values escape `& < "` TAB LF CR.

use std::collections::BTreeMap;

use super::tree::Attribute;
use super::{Node, NodeId, NodeType};

const XML_PREFIX: &str = "xml";

/// Canonicalize `apex` and its descendants, minus `exclude` (and its subtree).
///
/// `inclusive_prefixes` is the `InclusiveNamespaces PrefixList`
/// (`#default` names the default namespace); repeats are ignored.
///
/// Linear in the subtree (issue 15): the PrefixList is sorted once; only the
/// apex looks each of its prefixes up, since below the apex an inclusive
/// prefix can need rendering only where an element declares it (otherwise
/// its binding is the parent's, which the parent rendered or had inherited
/// rendered); and an element's own and its attributes' namespaces come
/// from the parsed tree, not from a walk up the chain of bindings.
pub fn canonicalize<'d>(
    apex: Node<'d, 'd>,
    exclude: Option<NodeId>,
    inclusive_prefixes: &'d [&'d str],
) -> Vec<u8> {
    let mut inclusive: Vec<Option<&'d str>> = inclusive_prefixes
        .iter()
        .map(|p| if *p == "#default" { None } else { Some(*p) })
        .filter(|p| *p != Some(XML_PREFIX))
        .collect();
    super::work::add(inclusive.len());
    inclusive.sort_unstable();
    inclusive.dedup();
    let mut c = Canonicalizer {
        exclude,
        inclusive,
        apex: apex.id(),
        rendered: BTreeMap::new(),
        undo: Vec::with_capacity(8),
        out: Vec::with_capacity(apex.range().len()),
        scratch_wanted: Vec::with_capacity(4),
        scratch_decls: Vec::with_capacity(4),
        scratch_attrs: Vec::with_capacity(8),
    };
    c.element(apex);
    c.out
}

struct Canonicalizer<'i> {
    exclude: Option<NodeId>,
    /// The PrefixList, sorted, without repeats and without `xml`
    /// (`None` is `#default`).
    inclusive: Vec<Option<&'i str>>,
    apex: NodeId,
    /// The binding each prefix was last rendered with by an output
    /// ancestor (`None` prefix: the default namespace): one lookup per
    /// prefix an element needs, logarithmic whatever the input.
    rendered: BTreeMap<Option<&'i str>, &'i str>,
    /// What each rendering replaced, innermost last, to restore on the way
    /// out of an element.
    undo: Vec<(Option<&'i str>, Option<&'i str>)>,
    out: Vec<u8>,
    /// The (prefix, namespace URI) pairs this element may render.
    scratch_wanted: Vec<(Option<&'i str>, &'i str)>,
    scratch_decls: Vec<(Option<&'i str>, &'i str)>,
    scratch_attrs: Vec<Attribute<'i, 'i>>,
}

impl<'i> Canonicalizer<'i> {
    fn element(&mut self, node: Node<'i, 'i>) {
        let qname = node.qname();

        // Which prefixes does this element need declared, bound to what?
        // (Scratch buffers are reused: each is consumed before the children
        // are visited.) An unprefixed name with no default in scope is in no
        // namespace: "".
        let mut wanted = std::mem::take(&mut self.scratch_wanted);
        wanted.clear();
        wanted.push((node.prefix(), node.tag_name().namespace().unwrap_or("")));
        for attr in node.attributes() {
            if let (Some(p), Some(uri)) = (attr.prefix(), attr.namespace()) {
                if p != XML_PREFIX {
                    wanted.push((Some(p), uri));
                }
            }
        }
        if !self.inclusive.is_empty() {
            if node.id() == self.apex {
                // Inclusive prefixes are rendered only when in scope here.
                for &p in &self.inclusive {
                    match node.lookup_namespace_uri(p) {
                        Some(uri) => wanted.push((p, uri)),
                        None if p.is_none() => wanted.push((None, "")),
                        None => {}
                    }
                }
            } else {
                for ns in node.namespace_declarations() {
                    super::work::add(1);
                    if self.inclusive.binary_search(&ns.name()).is_ok() {
                        wanted.push((ns.name(), ns.uri()));
                    }
                }
            }
        }
        // One entry per prefix (a prefix has one binding at one element).
        super::work::add(wanted.len());
        if wanted.len() > 1 {
            wanted.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            wanted.dedup_by(|a, b| a.0 == b.0);
        }

        let mark = self.undo.len();
        let mut decls = std::mem::take(&mut self.scratch_decls);
        decls.clear();
        let depth = (usize::BITS - self.rendered.len().leading_zeros()) as usize;
        for &(prefix, uri) in &wanted {
            super::work::add(depth);
            let current = self.rendered.get(&prefix).copied();
            let already = match (prefix, current) {
                (None, None) => uri.is_empty(),
                // Inherited bindings are the very same string: skip the compare.
                (_, Some(c)) => std::ptr::eq(c, uri) || c == uri,
                (Some(_), None) => false,
            };
            if !already {
                decls.push((prefix, uri));
            }
        }
        self.scratch_wanted = wanted;
        // `wanted` was sorted by prefix (None, the default, first), and so
        // is what was taken from it.

        self.out.push(b'<');
        self.out.extend_from_slice(qname.as_bytes());
        for (prefix, uri) in &decls {
            match prefix {
                None => self.out.extend_from_slice(b" xmlns=\""),
                Some(p) => {
                    self.out.extend_from_slice(b" xmlns:");
                    self.out.extend_from_slice(p.as_bytes());
                    self.out.extend_from_slice(b"=\"");
                }
            }
            escape_attr(uri, &mut self.out);
            self.out.push(b'"');
        }
        for &(prefix, uri) in &decls {
            let before = self.rendered.insert(prefix, uri);
            self.undo.push((prefix, before));
        }
        self.scratch_decls = decls;

        let mut attrs = std::mem::take(&mut self.scratch_attrs);
        attrs.clear();
        attrs.extend(node.attributes());
        super::work::add(attrs.len());
        if !attrs.is_sorted_by(|a, b| attr_key(a) <= attr_key(b)) {
            attrs.sort_unstable_by(|a, b| attr_key(a).cmp(&attr_key(b)));
        }
        for attr in &attrs {
            self.out.push(b' ');
            self.out.extend_from_slice(attr.qname().as_bytes());
            self.out.extend_from_slice(b"=\"");
            escape_attr(attr.value(), &mut self.out);
            self.out.push(b'"');
        }
        self.scratch_attrs = attrs;
        self.out.push(b'>');

        for child in node.children() {
            match child.node_type() {
                NodeType::Element => {
                    if Some(child.id()) != self.exclude {
                        self.element(child);
                    }
                }
                NodeType::Text => escape_text(child.text().unwrap_or_default(), &mut self.out),
                NodeType::PI => {
                    if let Some(pi) = child.pi() {
                        self.out.extend_from_slice(b"<?");
                        self.out.extend_from_slice(pi.target.as_bytes());
                        if let Some(v) = pi.value.filter(|v| !v.is_empty()) {
                            self.out.push(b' ');
                            self.out.extend_from_slice(v.as_bytes());
                        }
                        self.out.extend_from_slice(b"?>");
                    }
                }
                NodeType::Comment | NodeType::Root => {}
            }
        }

        self.out.extend_from_slice(b"</");
        self.out.extend_from_slice(qname.as_bytes());
        self.out.push(b'>');
        while self.undo.len() > mark {
            match self.undo.pop() {
                Some((prefix, Some(before))) => {
                    self.rendered.insert(prefix, before);
                }
                Some((prefix, None)) => {
                    self.rendered.remove(&prefix);
                }
                None => break,
            }
        }
    }
}

/// C14N attribute order: (namespace URI, local name), unqualified first.
fn attr_key<'a>(a: &Attribute<'a, 'a>) -> (&'a str, &'a str) {
    (a.namespace().unwrap_or(""), a.name())
}

fn escape_text(s: &str, out: &mut Vec<u8>) {
    // Most text needs no escaping: find the special bytes with SIMD scans.
    let bytes = s.as_bytes();
    let mut last = 0;
    while last < bytes.len() {
        let rest = &bytes[last..];
        let next = match (
            memchr::memchr3(b'&', b'<', b'>', rest),
            memchr::memchr(b'\r', rest),
        ) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => break,
        };
        out.extend_from_slice(&rest[..next]);
        out.extend_from_slice(match rest[next] {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'>' => b"&gt;",
            _ => b"&#xD;",
        });
        last += next + 1;
    }
    out.extend_from_slice(&bytes[last.min(bytes.len())..]);
}

/// Bytes an attribute value must escape in canonical form: `& < "` TAB LF CR.
const ATTR_SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    t[b'&' as usize] = true;
    t[b'<' as usize] = true;
    t[b'"' as usize] = true;
    t[b'\t' as usize] = true;
    t[b'\n' as usize] = true;
    t[b'\r' as usize] = true;
    t
};

fn escape_attr(s: &str, out: &mut Vec<u8>) {
    let bytes = s.as_bytes();
    // Most values need no escaping: a branch-free test (SIMD) first.
    if !super::tree::has_special_byte(bytes, b'"') {
        out.extend_from_slice(bytes);
        return;
    }
    let mut last = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !ATTR_SPECIAL[b as usize] {
            continue;
        }
        out.extend_from_slice(&bytes[last..i]);
        out.extend_from_slice(match b {
            b'&' => b"&amp;",
            b'<' => b"&lt;",
            b'"' => b"&quot;",
            b'\t' => b"&#x9;",
            b'\n' => b"&#xA;",
            _ => b"&#xD;",
        });
        last = i + 1;
    }
    out.extend_from_slice(&bytes[last..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::parse;

    fn c14n(src: &str, nth: usize, prefixes: &[&str]) -> String {
        let doc = parse(src).unwrap();
        let el = doc
            .descendants()
            .filter(|n| n.is_element())
            .nth(nth)
            .unwrap();
        String::from_utf8(canonicalize(el, None, prefixes)).unwrap()
    }

    #[test]
    fn subset_renders_inherited_namespaces_it_uses_and_drops_the_rest() {
        let src = r#"<a:r xmlns:a="urn:a" xmlns:b="urn:b" xmlns:unused="urn:u"><b:c a:at="1" z="2"><d/></b:c></a:r>"#;
        assert_eq!(
            c14n(src, 1, &[]),
            r#"<b:c xmlns:a="urn:a" xmlns:b="urn:b" z="2" a:at="1"><d></d></b:c>"#
        );
    }

    #[test]
    fn attributes_sort_by_namespace_uri_then_local_name() {
        let src = r#"<e xmlns:y="urn:a" xmlns:x="urn:b" x:b="1" y:c="2" a="3" b="4"/>"#;
        assert_eq!(
            c14n(src, 0, &[]),
            r#"<e xmlns:x="urn:b" xmlns:y="urn:a" a="3" b="4" y:c="2" x:b="1"></e>"#
        );
    }

    #[test]
    fn default_namespace_undeclared_only_when_an_output_ancestor_declared_one() {
        let src = r#"<r xmlns="urn:d"><c xmlns=""><g/></c></r>"#;
        assert_eq!(
            c14n(src, 0, &[]),
            r#"<r xmlns="urn:d"><c xmlns=""><g></g></c></r>"#
        );
        // As an apex, the no-namespace element renders no xmlns="".
        assert_eq!(c14n(src, 1, &[]), r#"<c><g></g></c>"#);
    }

    #[test]
    fn escaping_and_comments() {
        let src = "<r a=\"&quot;&#9;&#10;&#13;&lt;&amp;\">x &amp; y &lt; z &gt; &#13;<!-- gone --><![CDATA[<c>]]></r>";
        assert_eq!(
            c14n(src, 0, &[]),
            "<r a=\"&quot;&#x9;&#xA;&#xD;&lt;&amp;\">x &amp; y &lt; z &gt; &#xD;&lt;c&gt;</r>"
        );
    }

    #[test]
    fn inclusive_prefix_list_renders_prefixes_in_scope() {
        let src = r#"<r xmlns:xs="urn:xs" xmlns:q="urn:q"><v ID="1">text</v></r>"#;
        assert_eq!(
            c14n(src, 1, &["xs"]),
            r#"<v xmlns:xs="urn:xs" ID="1">text</v>"#
        );
        assert_eq!(c14n(src, 1, &["nope"]), r#"<v ID="1">text</v>"#);
    }

    #[test]
    fn enveloped_signature_is_excluded() {
        let src = r#"<r ID="x"><a/><ds:Signature xmlns:ds="urn:ds"><ds:X/></ds:Signature><b/></r>"#;
        let doc = parse(src).unwrap();
        let sig = doc
            .descendants()
            .find(|n| n.tag_name().name() == "Signature")
            .unwrap();
        let out = canonicalize(doc.root_element(), Some(sig.id()), &[]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"<r ID="x"><a></a><b></b></r>"#
        );
    }
}
