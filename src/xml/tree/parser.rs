//! The parser: one pass over the input, building the [`Document`]'s
//! vectors in document order (see the module above for what it checks).

use std::borrow::Cow;

use memchr::{memchr, memchr3, memmem};

use super::chars::{
    has_special_byte, invalid_char, is_name_char, is_name_start, is_ws, normalize_newlines,
    reference, repeats, CHAR, COLON, NAME, NAME_BYTE, START,
};
use super::*;

/// Parse `text` into a [`Document`] (the checks of [`Document::parse`]).
pub(super) fn parse(
    text: &str,
    max_nodes: usize,
    max_depth: usize,
) -> Result<Document<'_>, XmlError> {
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
        crate::xml::work::add(1);
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
                crate::xml::work::add(steps);
                return Some(at);
            }
            at = b.outer;
        }
        crate::xml::work::add(steps);
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
        crate::xml::work::add(1);
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
