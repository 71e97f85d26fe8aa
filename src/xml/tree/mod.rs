//! fedgate's XML parser: XML 1.0 and Namespaces in XML 1.0, well-formedness
//! checked in full, no DTD (a DOCTYPE is refused before anything else is
//! read), into a read-only tree.
//!
//! It replaces roxmltree (2026-12-01, measurements in
//! `docs/performance.md`): the parse was a whole RSA verify's worth of every
//! SAML verification. What makes it cheaper is the shape of the tree, not
//! shortcuts in the checks:
//! - nodes sit in one vector in document order, so a node's descendants are
//!   the index range up to its `end`, and its first child is the next node;
//! - names, text and attribute values borrow the input, and are copied only
//!   when a reference (`&amp;`) or a CR has to be replaced;
//! - text is found with `memchr` (SIMD), names with a byte table;
//! - in-scope namespace bindings are a chain shared by descendants, not a
//!   copy per element;
//! - the nesting limit is checked while parsing.
//!
//! Well-formedness is that of XML 1.0 (fifth edition) and Namespaces 1.0: the
//! `Char`, `Name` and `QName` productions, the five predefined entities and
//! character references (any other entity reference is an error, as there is
//! no DTD to declare it), unique attributes by qualified and by expanded
//! name, matching end tags, no `--` in comments, no `]]>` in text, no
//! reserved PI target, every prefix declared, the `xml` and `xmlns` prefixes
//! and URIs as the namespace spec reserves them, no `xmlns:p=""`. Line ends
//! are normalised (§2.11) and attribute values normalised as CDATA
//! (§3.3.3). It is tested differentially against roxmltree (same tree or
//! both refuse, `tests/it/xml_parser.rs` and the `xml_parse` fuzz target) and,
//! through exclusive C14N, against libxml2.

use std::borrow::Cow;
use std::ops::Range;

use super::XmlError;

mod chars;
mod parser;

pub(crate) use chars::has_special_byte;

/// The namespace the `xml` prefix is bound to.
pub const NS_XML_URI: &str = "http://www.w3.org/XML/1998/namespace";
/// The namespace of `xmlns` declarations, which nothing may bind.
pub const NS_XMLNS_URI: &str = "http://www.w3.org/2000/xmlns/";

/// How many namespace bindings may be in scope at one element. Real SAML
/// and metadata documents have fewer than 20; the bound keeps every prefix
/// lookup short whatever the input.
pub const MAX_BINDINGS_IN_SCOPE: usize = 256;

const NONE: u32 = u32::MAX;
/// The `ns` of an attribute that is a namespace declaration, while parsing.
const DECL: u32 = u32::MAX - 1;

/// A node's index in its document (document order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(u32);

/// What a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeType {
    /// The document itself (parent of the root element).
    Root,
    /// An element.
    Element,
    /// Character data (adjacent text and CDATA sections form one node).
    Text,
    /// A comment.
    Comment,
    /// A processing instruction.
    PI,
}

/// A parsed document: the tree, borrowing the input text.
pub struct Document<'input> {
    text: &'input str,
    nodes: Vec<NodeData<'input>>,
    attrs: Vec<AttrData<'input>>,
    bindings: Vec<Binding<'input>>,
}

struct NodeData<'i> {
    kind: Kind<'i>,
    parent: u32,
    next_sibling: u32,
    /// One past the last node of this node's subtree.
    end: u32,
    range: Range<usize>,
}

enum Kind<'i> {
    Root,
    Element {
        qname: &'i str,
        /// Length of the prefix (0: none).
        prefix_len: usize,
        /// Index of the binding that gives the namespace (NONE: no namespace).
        ns: u32,
        attrs: Range<u32>,
        /// Innermost namespace binding in scope.
        scope: u32,
    },
    Text(Cow<'i, str>),
    Comment(Cow<'i, str>),
    Pi {
        target: &'i str,
        value: Option<Cow<'i, str>>,
    },
}

struct AttrData<'i> {
    qname: &'i str,
    prefix_len: usize,
    /// Index of the binding that gives the namespace (NONE: no namespace).
    ns: u32,
    value: Cow<'i, str>,
    range: Range<usize>,
}

/// One namespace declaration, linked to the binding in scope before it.
struct Binding<'i> {
    prefix: Option<&'i str>,
    uri: Cow<'i, str>,
    outer: u32,
    /// How many bindings the chain holds from here outwards.
    depth: u32,
}

impl<'input> Document<'input> {
    /// Parse `text`. Refused: a DOCTYPE ([`XmlError::Doctype`]), nesting
    /// deeper than `max_depth` elements ([`XmlError::TooDeep`]), more than
    /// `max_nodes` nodes ([`XmlError::TooManyNodes`], as soon as the count
    /// is passed) or anything not well-formed ([`XmlError::Malformed`]).
    pub fn parse(
        text: &'input str,
        max_nodes: usize,
        max_depth: usize,
    ) -> Result<Document<'input>, XmlError> {
        parser::parse(text, max_nodes, max_depth)
    }

    /// The document node.
    pub fn root(&self) -> Node<'_, 'input> {
        self.node(0)
    }

    /// The root element.
    pub fn root_element(&self) -> Node<'_, 'input> {
        // A parsed document always has one (the parser refuses one without).
        self.root()
            .children()
            .find(Node::is_element)
            .unwrap_or_else(|| self.root())
    }

    /// Every node in document order, the document node first.
    pub fn descendants(&self) -> Descendants<'_, 'input> {
        self.root().descendants()
    }

    /// The node with this id.
    pub fn get_node(&self, id: NodeId) -> Option<Node<'_, 'input>> {
        ((id.0 as usize) < self.nodes.len()).then(|| self.node(id.0))
    }

    /// The text this document was parsed from.
    pub fn input_text(&self) -> &'input str {
        self.text
    }

    fn node(&self, id: u32) -> Node<'_, 'input> {
        Node { doc: self, id }
    }

    fn data(&self, id: u32) -> &NodeData<'input> {
        // Ids come from this document's own links: always in range.
        &self.nodes[id as usize]
    }

    fn binding_uri(&self, ns: u32) -> Option<&str> {
        self.bindings.get(ns as usize).map(|b| b.uri.as_ref())
    }
}

impl std::fmt::Debug for Document<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Document({} nodes)", self.nodes.len())
    }
}

/// A node of a [`Document`].
#[derive(Clone, Copy)]
pub struct Node<'a, 'input: 'a> {
    doc: &'a Document<'input>,
    id: u32,
}

impl PartialEq for Node<'_, '_> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && std::ptr::eq(self.doc, other.doc)
    }
}

impl Eq for Node<'_, '_> {}

impl std::fmt::Debug for Node<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.data().kind {
            Kind::Element { qname, .. } => write!(f, "Element({qname})"),
            Kind::Text(t) => write!(f, "Text({t:?})"),
            other => write!(f, "{:?}", node_type(other)),
        }
    }
}

/// The namespace and local name of an element or attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpandedName<'a> {
    namespace: Option<&'a str>,
    name: &'a str,
}

impl<'a> ExpandedName<'a> {
    /// The namespace URI (`None`: no namespace).
    pub fn namespace(&self) -> Option<&'a str> {
        self.namespace
    }
    /// The local name.
    pub fn name(&self) -> &'a str {
        self.name
    }
}

/// A processing instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PI<'a> {
    /// The target (`xml-stylesheet` of `<?xml-stylesheet href="a"?>`).
    pub target: &'a str,
    /// What follows the target and its white space, if anything.
    pub value: Option<&'a str>,
}

/// An attribute (namespace declarations are not attributes).
#[derive(Clone, Copy)]
pub struct Attribute<'a, 'input: 'a> {
    doc: &'a Document<'input>,
    data: &'a AttrData<'input>,
}

impl<'a, 'input: 'a> Attribute<'a, 'input> {
    /// The local name.
    pub fn name(&self) -> &'input str {
        local_part(self.data.qname, self.data.prefix_len)
    }
    /// The qualified name as written (`xml:lang`).
    pub fn qname(&self) -> &'input str {
        self.data.qname
    }
    /// The prefix as written, if any.
    pub fn prefix(&self) -> Option<&'input str> {
        prefix_part(self.data.qname, self.data.prefix_len)
    }
    /// The namespace URI (an unprefixed attribute is in no namespace).
    pub fn namespace(&self) -> Option<&'a str> {
        self.doc.binding_uri(self.data.ns)
    }
    /// The value, references replaced and white space normalised.
    pub fn value(&self) -> &'a str {
        &self.data.value
    }
    /// Where the attribute is in the input.
    pub fn range(&self) -> Range<usize> {
        self.data.range.clone()
    }
}

impl std::fmt::Debug for Attribute<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={:?}", self.data.qname, self.data.value)
    }
}

/// A namespace binding in scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Namespace<'a> {
    name: Option<&'a str>,
    uri: &'a str,
}

impl<'a> Namespace<'a> {
    /// The prefix (`None`: the default namespace).
    pub fn name(&self) -> Option<&'a str> {
        self.name
    }
    /// The URI (empty for `xmlns=""`).
    pub fn uri(&self) -> &'a str {
        self.uri
    }
}

/// How an attribute is named in [`Node::attribute`]: a local name (no
/// namespace) or a (namespace, local name) pair.
pub trait AttrName {
    /// True when `a` has this name.
    fn matches(&self, a: &Attribute) -> bool;
}

impl AttrName for &str {
    fn matches(&self, a: &Attribute) -> bool {
        a.data.prefix_len == 0 && a.data.qname == *self
    }
}

impl AttrName for (&str, &str) {
    fn matches(&self, a: &Attribute) -> bool {
        a.name() == self.1 && a.namespace() == Some(self.0)
    }
}

impl<'a, 'input: 'a> Node<'a, 'input> {
    fn data(&self) -> &'a NodeData<'input> {
        self.doc.data(self.id)
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        NodeId(self.id)
    }

    /// The document this node belongs to.
    pub fn document(&self) -> &'a Document<'input> {
        self.doc
    }

    /// What the node is.
    pub fn node_type(&self) -> NodeType {
        node_type(&self.data().kind)
    }

    /// True for an element.
    pub fn is_element(&self) -> bool {
        matches!(self.data().kind, Kind::Element { .. })
    }

    /// True for a text node.
    pub fn is_text(&self) -> bool {
        matches!(self.data().kind, Kind::Text(_))
    }

    /// True for the document node.
    pub fn is_root(&self) -> bool {
        self.id == 0
    }

    /// The element's namespace and local name (empty for other nodes).
    pub fn tag_name(&self) -> ExpandedName<'a> {
        match &self.data().kind {
            Kind::Element {
                qname,
                prefix_len,
                ns,
                ..
            } => ExpandedName {
                namespace: self.doc.binding_uri(*ns),
                name: local_part(qname, *prefix_len),
            },
            _ => ExpandedName {
                namespace: None,
                name: "",
            },
        }
    }

    /// The element's qualified name as written (`samlp:Response`; empty for
    /// other nodes).
    pub fn qname(&self) -> &'input str {
        match self.data().kind {
            Kind::Element { qname, .. } => qname,
            _ => "",
        }
    }

    /// The element's prefix as written (`None`: unprefixed, or not an element).
    pub fn prefix(&self) -> Option<&'input str> {
        match self.data().kind {
            Kind::Element {
                qname, prefix_len, ..
            } => prefix_part(qname, prefix_len),
            _ => None,
        }
    }

    /// The value of the attribute with this name: `"ID"` for an attribute in
    /// no namespace, `(ns, "lang")` for a namespaced one.
    pub fn attribute(&self, name: impl AttrName) -> Option<&'a str> {
        self.attributes()
            .find(|a| name.matches(a))
            .map(|a| a.value())
    }

    /// True when the element has this attribute.
    pub fn has_attribute(&self, name: impl AttrName) -> bool {
        self.attributes().any(|a| name.matches(&a))
    }

    /// The element's attributes in document order (not its namespace
    /// declarations).
    pub fn attributes(&self) -> Attributes<'a, 'input> {
        let range = match &self.data().kind {
            Kind::Element { attrs, .. } => attrs.start as usize..attrs.end as usize,
            _ => 0..0,
        };
        Attributes {
            doc: self.doc,
            iter: self.doc.attrs.get(range).unwrap_or_default().iter(),
        }
    }

    /// The URI bound to `prefix` (`None`: the default namespace) here. An
    /// undeclared default namespace (`xmlns=""`) reads as `Some("")`.
    pub fn lookup_namespace_uri(&self, prefix: Option<&str>) -> Option<&'a str> {
        let mut at = self.scope();
        let mut steps = 0;
        while let Some(b) = self.doc.bindings.get(at as usize) {
            steps += 1;
            if b.prefix == prefix {
                super::work::add(steps);
                return Some(&b.uri);
            }
            at = b.outer;
        }
        super::work::add(steps);
        None
    }

    /// The namespace bindings in scope here, innermost first, each prefix
    /// once (the `xml` prefix included). Quadratic in the bindings in scope
    /// (at most [`MAX_BINDINGS_IN_SCOPE`]): for tests and tools; the
    /// verifier uses [`Node::lookup_namespace_uri`].
    pub fn namespaces(&self) -> impl Iterator<Item = Namespace<'a>> + 'a {
        let doc = self.doc;
        let mut at = self.scope();
        let mut seen: Vec<Option<&'a str>> = Vec::new();
        std::iter::from_fn(move || {
            while let Some(b) = doc.bindings.get(at as usize) {
                at = b.outer;
                if !seen.contains(&b.prefix) {
                    seen.push(b.prefix);
                    return Some(Namespace {
                        name: b.prefix,
                        uri: &b.uri,
                    });
                }
            }
            None
        })
    }

    /// The namespace declarations written on this element, in the order
    /// written (none for other nodes). Costs only what the element declares.
    pub fn namespace_declarations(&self) -> impl Iterator<Item = Namespace<'a>> + 'a {
        let doc = self.doc;
        let (mut at, stop) = match self.data().kind {
            Kind::Element { scope, .. } => (scope, self.parent().map_or(0, |p| p.scope())),
            _ => (NONE, NONE),
        };
        let mut found = Vec::new();
        while at != stop {
            let Some(b) = doc.bindings.get(at as usize) else {
                break;
            };
            found.push(Namespace {
                name: b.prefix,
                uri: &b.uri,
            });
            at = b.outer;
        }
        found.into_iter().rev()
    }

    fn scope(&self) -> u32 {
        let mut node = *self;
        loop {
            match node.data().kind {
                Kind::Element { scope, .. } => return scope,
                _ => match node.parent() {
                    Some(p) => node = p,
                    None => return 0,
                },
            }
        }
    }

    /// The text of a text node (`None` for other nodes).
    pub fn text(&self) -> Option<&'a str> {
        match &self.data().kind {
            Kind::Text(t) => Some(t),
            _ => None,
        }
    }

    /// The processing instruction, for a PI node.
    pub fn pi(&self) -> Option<PI<'a>> {
        match &self.data().kind {
            Kind::Pi { target, value } => Some(PI {
                target,
                value: value.as_deref(),
            }),
            _ => None,
        }
    }

    /// The comment's text, for a comment node.
    pub fn comment(&self) -> Option<&'a str> {
        match &self.data().kind {
            Kind::Comment(c) => Some(c),
            _ => None,
        }
    }

    /// Where the node is in the input (an element from `<` to the end of its
    /// end tag).
    pub fn range(&self) -> Range<usize> {
        self.data().range.clone()
    }

    /// The parent node (`None` for the document node).
    pub fn parent(&self) -> Option<Self> {
        let p = self.data().parent;
        (p != NONE).then(|| self.doc.node(p))
    }

    /// The parent, when it is an element.
    pub fn parent_element(&self) -> Option<Self> {
        self.parent().filter(Node::is_element)
    }

    /// This node, its parent, and so on up to the document node.
    pub fn ancestors(&self) -> impl Iterator<Item = Self> + 'a {
        std::iter::successors(Some(*self), Node::parent)
    }

    /// The first child.
    pub fn first_child(&self) -> Option<Self> {
        let next = self.id + 1;
        (next < self.data().end).then(|| self.doc.node(next))
    }

    /// The first child that is an element.
    pub fn first_element_child(&self) -> Option<Self> {
        self.children().find(Node::is_element)
    }

    /// The next sibling.
    pub fn next_sibling(&self) -> Option<Self> {
        let n = self.data().next_sibling;
        (n != NONE).then(|| self.doc.node(n))
    }

    /// The next sibling that is an element.
    pub fn next_sibling_element(&self) -> Option<Self> {
        std::iter::successors(self.next_sibling(), Node::next_sibling).find(Node::is_element)
    }

    /// True when the node has children.
    pub fn has_children(&self) -> bool {
        self.first_child().is_some()
    }

    /// The children, in order.
    pub fn children(&self) -> impl Iterator<Item = Self> + 'a {
        std::iter::successors(self.first_child(), Node::next_sibling)
    }

    /// This node and every node below it, in document order.
    pub fn descendants(&self) -> Descendants<'a, 'input> {
        Descendants {
            doc: self.doc,
            next: self.id,
            end: self.data().end,
        }
    }
}

/// See [`Node::descendants`].
pub struct Descendants<'a, 'input: 'a> {
    doc: &'a Document<'input>,
    next: u32,
    end: u32,
}

impl<'a, 'input: 'a> Iterator for Descendants<'a, 'input> {
    type Item = Node<'a, 'input>;
    fn next(&mut self) -> Option<Self::Item> {
        (self.next < self.end).then(|| {
            self.next += 1;
            self.doc.node(self.next - 1)
        })
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = (self.end - self.next) as usize;
        (n, Some(n))
    }
}

/// See [`Node::attributes`].
pub struct Attributes<'a, 'input: 'a> {
    doc: &'a Document<'input>,
    iter: std::slice::Iter<'a, AttrData<'input>>,
}

impl<'a, 'input: 'a> Iterator for Attributes<'a, 'input> {
    type Item = Attribute<'a, 'input>;
    fn next(&mut self) -> Option<Self::Item> {
        self.iter.next().map(|data| Attribute {
            doc: self.doc,
            data,
        })
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.iter.size_hint()
    }
}

impl ExactSizeIterator for Attributes<'_, '_> {}

fn node_type(kind: &Kind) -> NodeType {
    match kind {
        Kind::Root => NodeType::Root,
        Kind::Element { .. } => NodeType::Element,
        Kind::Text(_) => NodeType::Text,
        Kind::Comment(_) => NodeType::Comment,
        Kind::Pi { .. } => NodeType::PI,
    }
}

fn local_part(qname: &str, prefix_len: usize) -> &str {
    if prefix_len == 0 {
        qname
    } else {
        qname.get(prefix_len + 1..).unwrap_or_default()
    }
}

fn prefix_part(qname: &str, prefix_len: usize) -> Option<&str> {
    if prefix_len == 0 {
        None
    } else {
        qname.get(..prefix_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Document<'_> {
        Document::parse(text, 1000, 64).unwrap()
    }

    #[test]
    fn navigation_follows_document_order() {
        let text = r#"<r xmlns:p="urn:p"><a p:x="1" y="2">t<!--c--><b/>u</a><?pi v?><c/></r>"#;
        let doc = parse(text);
        let r = doc.root_element();
        let names = |it: &mut dyn Iterator<Item = Node>| -> Vec<String> {
            it.map(|n| match n.node_type() {
                NodeType::Element => n.qname().to_string(),
                NodeType::Text => format!("'{}'", n.text().unwrap()),
                other => format!("{other:?}"),
            })
            .collect()
        };
        assert_eq!(names(&mut r.children()), ["a", "PI", "c"]);
        assert_eq!(
            names(&mut r.descendants()),
            ["r", "a", "'t'", "Comment", "b", "'u'", "PI", "c"]
        );
        let a = r.first_element_child().unwrap();
        assert_eq!(a.next_sibling_element().map(|n| n.qname()), Some("c"));
        let b = a.children().find(Node::is_element).unwrap();
        assert_eq!(names(&mut b.ancestors()), ["b", "a", "r", "Root"]);
        assert_eq!(b.parent_element(), Some(a));
        assert!(!b.has_children() && a.has_children());
        assert_eq!(&text[a.range()], r#"<a p:x="1" y="2">t<!--c--><b/>u</a>"#);
        assert_eq!(a.attribute(("urn:p", "x")), Some("1"));
        assert_eq!(
            a.attribute("x"),
            None,
            "a namespaced attribute is not found by its local name alone"
        );
        assert_eq!(a.attribute("y"), Some("2"));
        assert_eq!(a.lookup_namespace_uri(Some("p")), Some("urn:p"));
        assert_eq!(a.lookup_namespace_uri(Some("xml")), Some(NS_XML_URI));
        assert_eq!(a.lookup_namespace_uri(None), None);
        let pi = r.children().find_map(|n| n.pi()).unwrap();
        assert_eq!((pi.target, pi.value), ("pi", Some("v")));
        assert_eq!(doc.get_node(b.id()), Some(b));
    }

    #[test]
    fn namespaces_in_scope_are_shared_and_shadowed() {
        let doc = parse(
            r#"<r xmlns="urn:d" xmlns:p="urn:p"><p:a xmlns:p="urn:q"><b xmlns=""/></p:a></r>"#,
        );
        let a = doc.root_element().first_element_child().unwrap();
        let b = a.first_element_child().unwrap();
        assert_eq!(a.tag_name().namespace(), Some("urn:q"));
        assert_eq!(b.tag_name().namespace(), None);
        let mut in_scope: Vec<_> = b.namespaces().map(|n| (n.name(), n.uri())).collect();
        in_scope.sort();
        assert_eq!(
            in_scope,
            [(None, ""), (Some("p"), "urn:q"), (Some("xml"), NS_XML_URI)]
        );
        fn declared<'a>(n: Node<'a, '_>) -> Vec<(Option<&'a str>, &'a str)> {
            n.namespace_declarations()
                .map(|ns| (ns.name(), ns.uri()))
                .collect()
        }
        assert_eq!(
            declared(doc.root_element()),
            [(None, "urn:d"), (Some("p"), "urn:p")]
        );
        assert_eq!(declared(a), [(Some("p"), "urn:q")]);
        assert_eq!(declared(b), [(None, "")]);
    }

    #[test]
    fn limits_are_enforced_while_parsing() {
        let many = format!("<r>{}</r>", "<a/>".repeat(20));
        // 22 nodes: the document node, r and 20 a.
        assert!(Document::parse(&many, 22, 64).is_ok());
        assert_eq!(
            Document::parse(&many, 21, 64).err(),
            Some(XmlError::TooManyNodes(21))
        );
        let decls: String = (0..=MAX_BINDINGS_IN_SCOPE)
            .map(|i| format!(" xmlns:p{i}=\"urn:{i}\""))
            .collect();
        let e = Document::parse(&format!("<r{decls}/>"), 1000, 64).unwrap_err();
        assert!(
            e.to_string().contains("too many namespace declarations"),
            "{e}"
        );
        // Many attributes: the duplicate check sorts instead of comparing pairs.
        let attrs: String = (0..5000).map(|i| format!(" a{i}=\"\"")).collect();
        assert!(Document::parse(&format!("<r{attrs}/>"), 10, 64).is_ok());
        let e = Document::parse(&format!("<r{attrs} a17=\"\"/>"), 10, 64).unwrap_err();
        assert!(e.to_string().contains("repeated attribute"), "{e}");
    }
}
