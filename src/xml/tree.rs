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

use memchr::{memchr, memchr3, memmem};

use super::XmlError;

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
        let mut p = Parser {
            s: text,
            b: text.as_bytes(),
            pos: 0,
            doc: Document {
                text,
                nodes: Vec::with_capacity((text.len() / 32 + 4).min(max_nodes)),
                attrs: Vec::with_capacity(text.len() / 128 + 4),
                bindings: Vec::with_capacity(8),
            },
            open: Vec::with_capacity(16),
            text_node: NONE,
            max_nodes,
            max_depth,
        };
        p.document()?;
        Ok(p.doc)
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

// ---------------------------------------------------------------------------
// The parser.

struct Open<'i> {
    id: u32,
    qname: &'i str,
    last_child: u32,
    scope: u32,
}

struct Parser<'i> {
    s: &'i str,
    b: &'i [u8],
    pos: usize,
    doc: Document<'i>,
    open: Vec<Open<'i>>,
    /// The text node the next CDATA section or text joins (NONE: none).
    text_node: u32,
    max_nodes: usize,
    max_depth: usize,
}

type Res<T> = Result<T, XmlError>;

impl<'i> Parser<'i> {
    fn err<T>(&self, what: impl std::fmt::Display) -> Res<T> {
        self.err_at(self.pos, what)
    }

    fn err_at<T>(&self, pos: usize, what: impl std::fmt::Display) -> Res<T> {
        let before = self.b.get(..pos).unwrap_or(self.b);
        let line = before.iter().filter(|&&c| c == b'\n').count() + 1;
        let col = before.len()
            - before
                .iter()
                .rposition(|&c| c == b'\n')
                .map_or(0, |i| i + 1)
            + 1;
        Err(XmlError::Malformed(format!("{what} at {line}:{col}")))
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn rest(&self) -> &'i [u8] {
        self.b.get(self.pos..).unwrap_or_default()
    }

    fn starts_with(&self, prefix: &[u8]) -> bool {
        self.rest().starts_with(prefix)
    }

    /// Skip white space; how many bytes were skipped.
    fn skip_ws(&mut self) -> usize {
        let n = self.rest().iter().take_while(|&&c| is_ws(c)).count();
        self.pos += n;
        n
    }

    fn str_at(&self, range: Range<usize>) -> &'i str {
        // Ranges are built on ASCII delimiters found in the input: always on
        // character boundaries.
        self.s.get(range).unwrap_or_default()
    }

    fn document(&mut self) -> Res<()> {
        if let Some(i) = invalid_char(self.b) {
            return self.err_at(i, "a character XML does not allow");
        }
        self.doc.nodes.push(NodeData {
            kind: Kind::Root,
            parent: NONE,
            next_sibling: NONE,
            end: 1,
            range: 0..self.b.len(),
        });
        // The `xml` prefix is bound everywhere.
        self.doc.bindings.push(Binding {
            prefix: Some("xml"),
            uri: Cow::Borrowed(NS_XML_URI),
            outer: NONE,
            depth: 1,
        });
        self.open.push(Open {
            id: 0,
            qname: "",
            last_child: NONE,
            scope: 0,
        });
        if self.starts_with("\u{FEFF}".as_bytes()) {
            self.pos += 3;
        }
        if self.starts_with(b"<?xml") && self.b.get(self.pos + 5).is_some_and(|&c| is_ws(c)) {
            self.xml_declaration()?;
        }
        let mut seen_root = false;
        loop {
            if self.open.len() == 1 {
                self.skip_ws();
                let Some(c) = self.peek() else { break };
                if c != b'<' {
                    return self.err("text outside the root element");
                }
                if self.starts_with(b"<?") {
                    self.pi()?;
                } else if self.starts_with(b"<!--") {
                    self.comment()?;
                } else if self.starts_with(b"<!DOCTYPE") {
                    return Err(XmlError::Doctype);
                } else if self.starts_with(b"<!") || self.starts_with(b"</") {
                    return self.err("markup outside the root element");
                } else if seen_root {
                    return self.err("a second root element");
                } else {
                    self.start_tag()?;
                    seen_root = true;
                }
            } else {
                match self.peek() {
                    None => {
                        let q = self.open.last().map_or("", |o| o.qname);
                        return self.err(format_args!("<{q}> is not closed"));
                    }
                    Some(b'<') => match self.b.get(self.pos + 1) {
                        Some(b'/') => self.end_tag()?,
                        Some(b'?') => self.pi()?,
                        Some(b'!') if self.starts_with(b"<!--") => self.comment()?,
                        Some(b'!') if self.starts_with(b"<![CDATA[") => self.cdata()?,
                        Some(b'!') => return self.err("unexpected '<!'"),
                        _ => self.start_tag()?,
                    },
                    Some(_) => self.text()?,
                }
            }
        }
        if !seen_root {
            return self.err("no root element");
        }
        let count = self.doc.nodes.len() as u32;
        if let Some(root) = self.doc.nodes.first_mut() {
            root.end = count;
        }
        Ok(())
    }

    /// `<?xml version="1.x" encoding="…" standalone="…"?>` (XML 1.0 §2.8).
    fn xml_declaration(&mut self) -> Res<()> {
        self.pos += 5;
        let mut seen = 0;
        loop {
            let ws = self.skip_ws();
            if self.starts_with(b"?>") {
                self.pos += 2;
                break;
            }
            if ws == 0 {
                return self.err("expected white space in the XML declaration");
            }
            let name_start = self.pos;
            let name_len = self
                .rest()
                .iter()
                .take_while(|c| c.is_ascii_alphabetic())
                .count();
            self.pos += name_len;
            let name = self.str_at(name_start..self.pos);
            self.skip_ws();
            if self.peek() != Some(b'=') {
                return self.err("expected '=' in the XML declaration");
            }
            self.pos += 1;
            self.skip_ws();
            let value = self.quoted()?;
            let order = match name {
                "version" => 1,
                "encoding" => 2,
                "standalone" => 3,
                _ => 0,
            };
            if order <= seen {
                return self.err_at(
                    name_start,
                    "a misplaced or unknown pseudo-attribute in the XML declaration",
                );
            }
            if seen == 0 && order != 1 {
                return self.err_at(name_start, "the XML declaration must start with version");
            }
            seen = order;
            let ok = match order {
                1 => value
                    .strip_prefix("1.")
                    .is_some_and(|d| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit())),
                2 => self.encoding_ok(value),
                _ => value == "yes" || value == "no",
            };
            if !ok {
                return self.err_at(
                    name_start,
                    format_args!("unsupported {name} {value:?} in the XML declaration"),
                );
            }
        }
        if seen == 0 {
            return self.err("the XML declaration has no version");
        }
        Ok(())
    }

    /// The input is UTF-8 text: UTF-8 is accepted, and an ASCII-compatible
    /// label only when every byte is ASCII (so it reads the same either way).
    fn encoding_ok(&self, label: &str) -> bool {
        let name_ok = label
            .as_bytes()
            .first()
            .is_some_and(u8::is_ascii_alphabetic)
            && label
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
        let utf8 = label.eq_ignore_ascii_case("utf-8");
        let ascii_label = ["us-ascii", "ascii", "iso-8859-1", "latin1", "windows-1252"]
            .iter()
            .any(|l| label.eq_ignore_ascii_case(l));
        name_ok && (utf8 || (ascii_label && self.b.is_ascii()))
    }

    /// A quoted pseudo-attribute value (no references).
    fn quoted(&mut self) -> Res<&'i str> {
        let Some(q) = self.peek().filter(|&c| c == b'"' || c == b'\'') else {
            return self.err("expected a quoted value in the XML declaration");
        };
        let start = self.pos + 1;
        let Some(len) = memchr(q, self.b.get(start..).unwrap_or_default()) else {
            return self.err("an unterminated value in the XML declaration");
        };
        self.pos = start + len + 1;
        Ok(self.str_at(start..start + len))
    }

    fn push_node(&mut self, kind: Kind<'i>, range: Range<usize>) -> Res<u32> {
        let id = self.doc.nodes.len();
        if id >= self.max_nodes {
            return Err(XmlError::TooManyNodes(self.max_nodes));
        }
        let id = id as u32;
        super::work::add(1);
        let Some(parent) = self.open.last_mut() else {
            return self.err("no open element");
        };
        if let Some(prev) = self.doc.nodes.get_mut(parent.last_child as usize) {
            prev.next_sibling = id;
        }
        parent.last_child = id;
        let parent = parent.id;
        self.doc.nodes.push(NodeData {
            kind,
            parent,
            next_sibling: NONE,
            end: id + 1,
            range,
        });
        self.text_node = NONE;
        Ok(id)
    }

    fn text(&mut self) -> Res<()> {
        let start = self.pos;
        let end = memchr(b'<', self.rest()).map_or(self.b.len(), |i| start + i);
        self.pos = end;
        let raw = self.str_at(start..end);
        let value = if memchr3(b'&', b'\r', b']', raw.as_bytes()).is_none() {
            Cow::Borrowed(raw)
        } else {
            if let Some(i) = memmem::find(raw.as_bytes(), b"]]>") {
                return self.err_at(start + i, "']]>' in text");
            }
            self.decode(raw, start, false)?
        };
        self.add_text(value, start..end)
    }

    fn cdata(&mut self) -> Res<()> {
        let start = self.pos;
        self.pos += 9; // <![CDATA[
        let Some(len) = memmem::find(self.rest(), b"]]>") else {
            return self.err("unterminated CDATA section");
        };
        let raw = self.str_at(self.pos..self.pos + len);
        self.pos += len + 3;
        let value = normalize_newlines(raw);
        self.add_text(value, start..self.pos)
    }

    fn add_text(&mut self, value: Cow<'i, str>, range: Range<usize>) -> Res<()> {
        if value.is_empty() {
            return Ok(());
        }
        if let Some(node) = self.doc.nodes.get_mut(self.text_node as usize) {
            if let Kind::Text(t) = &mut node.kind {
                t.to_mut().push_str(&value);
                node.range.end = range.end;
                return Ok(());
            }
        }
        let id = self.push_node(Kind::Text(value), range)?;
        self.text_node = id;
        Ok(())
    }

    fn comment(&mut self) -> Res<()> {
        let start = self.pos;
        self.pos += 4; // <!--
        let Some(len) = memmem::find(self.rest(), b"--") else {
            return self.err("unterminated comment");
        };
        let raw = self.str_at(self.pos..self.pos + len);
        self.pos += len;
        if !self.starts_with(b"-->") {
            return self.err("'--' inside a comment");
        }
        self.pos += 3;
        self.push_node(Kind::Comment(normalize_newlines(raw)), start..self.pos)?;
        Ok(())
    }

    fn pi(&mut self) -> Res<()> {
        let start = self.pos;
        self.pos += 2; // <?
        let (target, prefix_len) = self.qname()?;
        if prefix_len != 0 {
            return self.err_at(start, "a ':' in a processing instruction target");
        }
        if target.eq_ignore_ascii_case("xml") {
            return self.err_at(
                start,
                "the XML declaration is only allowed at the very start",
            );
        }
        let value = if self.starts_with(b"?>") {
            None
        } else {
            if self.skip_ws() == 0 {
                return self.err("expected white space after the PI target");
            }
            let Some(len) = memmem::find(self.rest(), b"?>") else {
                return self.err("unterminated processing instruction");
            };
            let raw = self.str_at(self.pos..self.pos + len);
            self.pos += len;
            Some(normalize_newlines(raw)).filter(|v| !v.is_empty())
        };
        self.pos += 2;
        self.push_node(Kind::Pi { target, value }, start..self.pos)?;
        Ok(())
    }

    /// A qualified name (Namespaces §4): `NCName (':' NCName)?`.
    fn qname(&mut self) -> Res<(&'i str, usize)> {
        // Fast path: an ASCII name, checked after the scan (first byte, at
        // most one ':', a name start after it).
        let start = self.pos;
        let rest = self.rest();
        let (mut n, mut colon, mut colons) = (0, 0, 0);
        while let Some(&c) = rest.get(n) {
            if !NAME_BYTE[c as usize] {
                break;
            }
            if c == b':' {
                colon = n;
                colons += 1;
            }
            n += 1;
        }
        if rest.get(n).is_some_and(|&c| c >= 0x80) {
            return self.qname_slow();
        }
        let starts_name = |i: usize| {
            rest.get(i)
                .is_some_and(|&c| NAME.get(c as usize) == Some(&START))
        };
        if !starts_name(0) || n == 0 {
            return self.err("expected a name");
        }
        if colons > 1 {
            return self.err_at(start + colon, "a qualified name has at most one ':'");
        }
        if colons == 1 && (colon + 1 == n || !starts_name(colon + 1)) {
            return self.err_at(start + colon, "a name cannot end with ':'");
        }
        self.pos = start + n;
        Ok((self.str_at(start..start + n), colon))
    }

    /// [`Parser::qname`] for names with non-ASCII characters.
    fn qname_slow(&mut self) -> Res<(&'i str, usize)> {
        let start = self.pos;
        let mut i = start;
        let mut colon = 0usize;
        // Where the current part (prefix or local name) starts.
        let mut part = start;
        while let Some(&c) = self.b.get(i) {
            if c < 0x80 {
                match NAME[c as usize] {
                    START => i += 1,
                    CHAR if i > part => i += 1,
                    COLON if colon == 0 && i > part => {
                        colon = i - start;
                        i += 1;
                        part = i;
                    }
                    _ => break,
                }
            } else {
                let Some(ch) = self.s.get(i..).and_then(|r| r.chars().next()) else {
                    break;
                };
                let ok = if i == part {
                    is_name_start(ch)
                } else {
                    is_name_char(ch)
                };
                if !ok {
                    break;
                }
                i += ch.len_utf8();
            }
        }
        if i == start {
            return self.err("expected a name");
        }
        if colon != 0 && i == start + colon + 1 {
            return self.err_at(i, "a name cannot end with ':'");
        }
        if self.b.get(i) == Some(&b':') {
            return self.err_at(i, "a qualified name has at most one ':'");
        }
        self.pos = i;
        Ok((self.str_at(start..i), colon))
    }

    fn start_tag(&mut self) -> Res<()> {
        let start = self.pos;
        self.pos += 1; // <
        let (qname, prefix_len) = self.qname()?;
        let first = self.doc.attrs.len();
        let mut decls = 0usize;
        let empty = loop {
            let ws = self.skip_ws();
            match self.peek() {
                Some(b'>') => {
                    self.pos += 1;
                    break false;
                }
                Some(b'/') if self.b.get(self.pos + 1) == Some(&b'>') => {
                    self.pos += 2;
                    break true;
                }
                None => return self.err(format_args!("<{qname}> is not closed")),
                Some(_) if ws == 0 => {
                    return self.err("expected white space before an attribute");
                }
                Some(_) => decls += usize::from(self.attribute()?),
            }
        };

        // Unique qualified names (namespace declarations included).
        let attrs = self.doc.attrs.get(first..).unwrap_or_default();
        if repeats(attrs, |a| Some(a.qname)) {
            let what = if repeats(attrs, |a| (a.ns == DECL).then_some(a.qname)) {
                "namespace declaration"
            } else {
                "attribute"
            };
            return self.err_at(start, format_args!("a repeated {what} in <{qname}>"));
        }

        // Namespace declarations of this element apply to it and its
        // attributes; they are bindings, not attributes, in the tree.
        let mut scope = self.open.last().map_or(0, |o| o.scope);
        if decls > 0 {
            scope = self.declare(start, first, scope)?;
        }

        let ns = match prefix_part(qname, prefix_len) {
            // `xml:` is bound, but no element belongs in the XML namespace:
            // refused, as roxmltree did.
            Some(p @ ("xmlns" | "xml")) => {
                return self.err_at(
                    start,
                    format_args!("an element cannot use the '{p}' prefix"),
                )
            }
            Some(p) => match self.resolve(scope, Some(p)) {
                Some(i) => i,
                None => {
                    return self.err_at(start, format_args!("the prefix '{p}' is not declared"))
                }
            },
            None => self
                .resolve(scope, None)
                .filter(|&i| self.doc.binding_uri(i).is_some_and(|u| !u.is_empty()))
                .unwrap_or(NONE),
        };

        let mut namespaced = 0usize;
        for i in first..self.doc.attrs.len() {
            let Some(a) = self.doc.attrs.get(i) else {
                break;
            };
            let Some(p) = prefix_part(a.qname, a.prefix_len) else {
                continue;
            };
            // `p:xmlns` is an ordinary attribute to the spec and a namespace
            // declaration to some parsers: refused, so no reading differs.
            if local_part(a.qname, a.prefix_len) == "xmlns" {
                return self.err_at(a.range.start, "an attribute named 'xmlns' with a prefix");
            }
            let Some(b) = self.resolve(scope, Some(p)) else {
                return self.err_at(
                    a.range.start,
                    format_args!("the prefix '{p}' is not declared"),
                );
            };
            if let Some(a) = self.doc.attrs.get_mut(i) {
                a.ns = b;
            }
            namespaced += 1;
        }
        // Unique expanded names among namespaced attributes.
        if namespaced > 1 {
            let doc = &self.doc;
            let attrs = doc.attrs.get(first..).unwrap_or_default();
            if repeats(attrs, |a| {
                doc.binding_uri(a.ns)
                    .map(|uri| (uri, local_part(a.qname, a.prefix_len)))
            }) {
                return self.err_at(
                    start,
                    format_args!("two attributes of <{qname}> with the same namespace and name"),
                );
            }
        }

        // The nesting limit, for empty elements too.
        if self.open.len() > self.max_depth {
            return Err(XmlError::TooDeep);
        }
        let kind = Kind::Element {
            qname,
            prefix_len,
            ns,
            attrs: first as u32..self.doc.attrs.len() as u32,
            scope,
        };
        let id = self.push_node(kind, start..self.pos)?;
        if !empty {
            self.open.push(Open {
                id,
                qname,
                last_child: NONE,
                scope,
            });
        }
        Ok(())
    }

    /// Turn the namespace declarations among the attributes from `first` on
    /// into bindings (checked as Namespaces 1.0 §3 requires), take them out
    /// of the attributes, and return the new innermost binding.
    fn declare(&mut self, start: usize, first: usize, mut scope: u32) -> Res<u32> {
        for i in first..self.doc.attrs.len() {
            let Some(a) = self.doc.attrs.get_mut(i).filter(|a| a.ns == DECL) else {
                continue;
            };
            let prefix = (a.prefix_len != 0).then(|| local_part(a.qname, a.prefix_len));
            let uri = std::mem::take(&mut a.value);
            match prefix {
                Some("xmlns") => {
                    return self.err_at(start, "the 'xmlns' prefix cannot be declared")
                }
                Some("xml") if uri == NS_XML_URI => continue,
                Some("xml") => return self.err_at(start, "the 'xml' prefix cannot be rebound"),
                Some(_) if uri.is_empty() => {
                    return self.err_at(start, "a prefix cannot be undeclared (xmlns:p=\"\")");
                }
                _ if uri == NS_XML_URI || uri == NS_XMLNS_URI => {
                    return self.err_at(start, format_args!("{uri} cannot be bound"));
                }
                _ => {}
            }
            let depth = self.doc.bindings.get(scope as usize).map_or(0, |b| b.depth) + 1;
            if depth as usize > MAX_BINDINGS_IN_SCOPE {
                return self.err_at(start, "too many namespace declarations in scope");
            }
            self.doc.bindings.push(Binding {
                prefix,
                uri,
                outer: scope,
                depth,
            });
            scope = (self.doc.bindings.len() - 1) as u32;
        }
        // Keep the attributes, in order.
        let mut kept = first;
        for i in first..self.doc.attrs.len() {
            if self.doc.attrs.get(i).is_some_and(|a| a.ns != DECL) {
                self.doc.attrs.swap(kept, i);
                kept += 1;
            }
        }
        self.doc.attrs.truncate(kept);
        Ok(scope)
    }

    fn resolve(&self, mut at: u32, prefix: Option<&str>) -> Option<u32> {
        let mut steps = 0;
        while let Some(b) = self.doc.bindings.get(at as usize) {
            steps += 1;
            if b.prefix == prefix {
                super::work::add(steps);
                return Some(at);
            }
            at = b.outer;
        }
        super::work::add(steps);
        None
    }

    /// One attribute of a start tag, into the document's attributes (a
    /// namespace declaration marked as such): true for a declaration.
    fn attribute(&mut self) -> Res<bool> {
        let start = self.pos;
        let (qname, prefix_len) = self.qname()?;
        self.skip_ws();
        if self.peek() != Some(b'=') {
            return self.err("expected '='");
        }
        self.pos += 1;
        self.skip_ws();
        let Some(q) = self.peek().filter(|&c| c == b'"' || c == b'\'') else {
            return self.err("expected a quoted attribute value");
        };
        let vstart = self.pos + 1;
        let Some(len) = memchr(q, self.b.get(vstart..).unwrap_or_default()) else {
            return self.err("unterminated attribute value");
        };
        let raw = self.str_at(vstart..vstart + len);
        self.pos = vstart + len + 1;
        let value = if has_special_byte(raw.as_bytes(), b'<') {
            if let Some(i) = memchr(b'<', raw.as_bytes()) {
                return self.err_at(vstart + i, "'<' in an attribute value");
            }
            self.decode(raw, vstart, true)?
        } else {
            Cow::Borrowed(raw)
        };
        let decl = qname.starts_with("xmlns") && (qname.len() == 5 || prefix_len == 5);
        super::work::add(1);
        self.doc.attrs.push(AttrData {
            qname,
            prefix_len,
            ns: if decl { DECL } else { NONE },
            value,
            range: start..self.pos,
        });
        Ok(decl)
    }

    fn end_tag(&mut self) -> Res<()> {
        let start = self.pos;
        self.pos += 2; // </
        let qname = self.open.last().map_or("", |o| o.qname);
        let after = self.pos + qname.len();
        let matches = self.starts_with(qname.as_bytes())
            && !self
                .b
                .get(after)
                .is_some_and(|&c| c >= 0x80 || matches!(NAME[c as usize], START | CHAR | COLON));
        if !matches {
            return self.err_at(start, format_args!("expected </{qname}>"));
        }
        self.pos = after;
        self.skip_ws();
        if self.peek() != Some(b'>') {
            return self.err("expected '>'");
        }
        self.pos += 1;
        let Some(open) = self.open.pop() else {
            return self.err_at(start, "an end tag without a start tag");
        };
        let end = self.doc.nodes.len() as u32;
        if let Some(node) = self.doc.nodes.get_mut(open.id as usize) {
            node.end = end;
            node.range.end = self.pos;
        }
        self.text_node = NONE;
        Ok(())
    }

    /// Replace references (and, in attribute values, normalise white space;
    /// in text, line ends). `at` is where `raw` starts in the input.
    fn decode(&self, raw: &'i str, at: usize, attr: bool) -> Res<Cow<'i, str>> {
        let bytes = raw.as_bytes();
        let mut out = String::with_capacity(raw.len());
        let mut last = 0;
        let mut i = 0;
        while let Some(&c) = bytes.get(i) {
            match c {
                b'&' => {
                    out.push_str(raw.get(last..i).unwrap_or_default());
                    let Some((ch, len)) = reference(raw.get(i..).unwrap_or_default()) else {
                        return self.err_at(at + i, "an unknown or invalid reference");
                    };
                    out.push(ch);
                    i += len;
                    last = i;
                }
                b'\r' => {
                    out.push_str(raw.get(last..i).unwrap_or_default());
                    out.push(if attr { ' ' } else { '\n' });
                    i += if bytes.get(i + 1) == Some(&b'\n') {
                        2
                    } else {
                        1
                    };
                    last = i;
                }
                b'\t' | b'\n' if attr => {
                    out.push_str(raw.get(last..i).unwrap_or_default());
                    out.push(' ');
                    i += 1;
                    last = i;
                }
                _ => i += 1,
            }
        }
        out.push_str(raw.get(last..).unwrap_or_default());
        Ok(Cow::Owned(out))
    }
}

/// `&name;`, `&#N;` or `&#xH;` at the start of `s`: the character and the
/// length of the reference.
fn reference(s: &str) -> Option<(char, usize)> {
    let semi = memchr(b';', s.as_bytes().get(..32.min(s.len()))?)?;
    let name = s.get(1..semi)?;
    let ch = match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "apos" => '\'',
        "quot" => '"',
        _ => {
            let (digits, radix) = match name.strip_prefix("#x") {
                Some(h) => (h, 16),
                None => (name.strip_prefix('#')?, 10),
            };
            if digits.is_empty() || !digits.bytes().all(|c| (c as char).is_digit(radix)) {
                return None;
            }
            let ch = char::from_u32(u32::from_str_radix(digits, radix).ok()?)?;
            if !is_xml_char(ch) {
                return None;
            }
            ch
        }
    };
    Some((ch, semi + 1))
}

/// CR LF and lone CR become LF (XML 1.0 §2.11).
fn normalize_newlines(raw: &str) -> Cow<'_, str> {
    if memchr(b'\r', raw.as_bytes()).is_none() {
        return Cow::Borrowed(raw);
    }
    Cow::Owned(raw.replace("\r\n", "\n").replace('\r', "\n"))
}

/// True when two attributes have the same key (attributes without one are
/// not compared): pairwise for the few attributes elements have, sorted
/// when there are many, so that no input makes this quadratic.
fn repeats<'a, K: Ord>(attrs: &'a [AttrData], key: impl Fn(&'a AttrData) -> Option<K>) -> bool {
    if attrs.len() < 2 {
        return false;
    }
    let n = attrs.len();
    if n <= 16 {
        super::work::add(n * (n - 1) / 2);
        return attrs.iter().enumerate().any(|(i, a)| {
            key(a).is_some_and(|k| {
                attrs
                    .get(i + 1..)
                    .unwrap_or_default()
                    .iter()
                    .any(|b| key(b).as_ref() == Some(&k))
            })
        });
    }
    super::work::add(n * (usize::BITS - n.leading_zeros()) as usize);
    let mut keys: Vec<K> = attrs.iter().filter_map(key).collect();
    keys.sort_unstable();
    keys.windows(2).any(|w| w.first() == w.get(1))
}

/// The position of the first character XML does not allow: a C0 control
/// other than TAB, LF and CR, or U+FFFE / U+FFFF (UTF-8 `EF BF BE`/`EF BF BF`).
/// (A `&str` holds no surrogates and nothing above U+10FFFF.)
fn invalid_char(b: &[u8]) -> Option<usize> {
    // Branch-free per chunk so the compiler vectorizes it; the exact place
    // is found only in the chunk that has one.
    let bad = |c: &u8| *c < 0x20 && !matches!(*c, b'\t' | b'\n' | b'\r');
    for (n, chunk) in b.chunks(64).enumerate() {
        if chunk.iter().fold(false, |acc, c| acc | bad(c)) {
            return chunk.iter().position(bad).map(|i| n * 64 + i);
        }
    }
    let mut from = 0;
    while let Some(i) = memchr(0xEF, b.get(from..).unwrap_or_default()) {
        let at = from + i;
        if b.get(at + 1) == Some(&0xBF) && matches!(b.get(at + 2), Some(0xBE | 0xBF)) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r')
}

/// True when `b` holds `&`, `<`, `also`, or a byte below 0x20 (after the
/// document-wide character check, only TAB, LF and CR): the bytes that
/// attribute-value normalisation ([`Parser::decode`], `also` = `<`) and
/// C14N's attribute escaping (`also` = `"`) act on. Without an early exit,
/// so that it compiles to SIMD.
pub(crate) fn has_special_byte(b: &[u8], also: u8) -> bool {
    b.iter().fold(false, |acc, &c| {
        acc | (c < 0x20) | (c == b'&') | (c == b'<') | (c == also)
    })
}

const OTHER: u8 = 0;
const START: u8 = 1;
const CHAR: u8 = 2;
const COLON: u8 = 3;

/// ASCII in names: `NameStartChar` (less ':'), `NameChar`, and ':'.
const NAME: [u8; 128] = {
    let mut t = [OTHER; 128];
    let mut c = 0;
    while c < 128 {
        let b = c as u8;
        t[c] = if b.is_ascii_alphabetic() || b == b'_' {
            START
        } else if b.is_ascii_digit() || b == b'-' || b == b'.' {
            CHAR
        } else if b == b':' {
            COLON
        } else {
            OTHER
        };
        c += 1;
    }
    t
};

/// ASCII bytes that may appear in a qualified name (non-ASCII: false).
const NAME_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 128 {
        t[c] = NAME[c] != OTHER;
        c += 1;
    }
    t
};

/// `NameStartChar` of XML 1.0 (fifth edition), without ':'.
fn is_name_start(c: char) -> bool {
    matches!(c,
        'A'..='Z' | '_' | 'a'..='z'
        | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}'
        | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}'
        | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}'
        | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}')
}

/// `NameChar` of XML 1.0 (fifth edition), without ':'.
fn is_name_char(c: char) -> bool {
    is_name_start(c)
        || matches!(c,
            '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// The `Char` production of XML 1.0.
fn is_xml_char(c: char) -> bool {
    matches!(c,
        '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
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
