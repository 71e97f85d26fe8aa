//! The differential oracle for fedgate's XML parser: one description of a
//! parsed tree, built from fedgate's tree and from roxmltree's (the parser
//! fedgate used before its own; kept as a test dependency only). Two parsers
//! that agree give the same description, or both refuse the input.
//!
//! Shared by `tests/it/xml_parser.rs` and the `xml_parse` fuzz target
//! (which includes this file by path).

use std::fmt::Write;

/// What fedgate's parser makes of `text`: its tree, described, or why not.
pub fn ours(text: &str) -> Result<String, String> {
    let doc = fedgate::xml::parse(text).map_err(|e| e.to_string())?;
    let mut out = String::new();
    for n in doc.descendants().skip(1) {
        let depth = n.ancestors().count() - 1;
        let _ = write!(out, "{depth} ");
        match n.node_type() {
            fedgate::xml::NodeType::Element => {
                let t = n.tag_name();
                element(
                    &mut out,
                    (t.namespace(), t.name(), n.qname()),
                    n.attributes()
                        .map(|a| (a.namespace(), a.name(), a.qname(), a.value()))
                        .collect(),
                    n.namespaces().map(|ns| (ns.name(), ns.uri())).collect(),
                );
            }
            fedgate::xml::NodeType::Text => {
                let _ = writeln!(out, "T {:?}", n.text().unwrap_or_default());
            }
            fedgate::xml::NodeType::Comment => {
                let _ = writeln!(out, "C {:?}", n.comment().unwrap_or_default());
            }
            fedgate::xml::NodeType::PI => {
                let pi = n.pi().unwrap();
                let _ = writeln!(out, "P {} {:?}", pi.target, pi.value);
            }
            fedgate::xml::NodeType::Root => {}
        }
    }
    Ok(out)
}

/// What roxmltree makes of `text` (DTDs refused, as fedgate does).
pub fn roxml(text: &str) -> Result<String, String> {
    // XML 1.0 §2.11: line ends are normalised before parsing. roxmltree
    // leaves literal CRs in comments, PIs, and text that also holds a
    // reference (`\r&amp;`), where libxml2 and fedgate do not
    // (fixtures/c14n/16_cr_with_references.xml); so it gets them normalised.
    let normalised = text.replace("\r\n", "\n").replace('\r', "\n");
    let text = normalised.as_str();
    let opts = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: fedgate::xml::MAX_NODES,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, opts).map_err(|e| e.to_string())?;
    let mut out = String::new();
    for n in doc.descendants().skip(1) {
        // roxmltree recognises the XML declaration only after `<?xml ` with
        // a space, and reads `<?xml\tversion…?>` as a PI.
        if n.pi().is_some_and(|pi| pi.target == "xml") && n.prev_sibling().is_none() {
            continue;
        }
        let depth = n.ancestors().count() - 1;
        let _ = write!(out, "{depth} ");
        match n.node_type() {
            roxmltree::NodeType::Element => {
                let rest = text.get(n.range().start + 1..).unwrap_or_default();
                let end = rest
                    .find(|c: char| c.is_ascii_whitespace() || c == '/' || c == '>')
                    .unwrap_or(rest.len());
                let t = n.tag_name();
                // roxmltree reads an element under `xmlns=""` as in the
                // namespace "": that is no namespace (Namespaces 1.0 §6.2).
                element(
                    &mut out,
                    (
                        t.namespace().filter(|u| !u.is_empty()),
                        t.name(),
                        &rest[..end],
                    ),
                    n.attributes()
                        .map(|a| {
                            let qname = text.get(a.range_qname()).unwrap_or_default();
                            (a.namespace(), a.name(), qname, a.value())
                        })
                        .collect(),
                    n.namespaces().map(|ns| (ns.name(), ns.uri())).collect(),
                );
            }
            roxmltree::NodeType::Text => {
                let _ = writeln!(out, "T {:?}", n.text().unwrap_or_default());
            }
            roxmltree::NodeType::Comment => {
                let _ = writeln!(out, "C {:?}", n.text().unwrap_or_default());
            }
            roxmltree::NodeType::PI => {
                let pi = n.pi().unwrap();
                let _ = writeln!(
                    out,
                    "P {} {:?}",
                    pi.target,
                    pi.value.filter(|v| !v.is_empty())
                );
            }
            roxmltree::NodeType::Root => {}
        }
    }
    Ok(out)
}

type Attr<'a> = (Option<&'a str>, &'a str, &'a str, &'a str);

/// One element's line: (namespace, local name, qualified name), its
/// attributes and the namespaces in scope (`xml` left out), both sorted.
fn element(
    out: &mut String,
    (ns, name, qname): (Option<&str>, &str, &str),
    mut attrs: Vec<Attr>,
    mut scope: Vec<(Option<&str>, &str)>,
) {
    attrs.sort();
    scope.retain(|(prefix, _)| *prefix != Some("xml"));
    scope.sort();
    let _ = writeln!(out, "E {ns:?} {name} {qname} {attrs:?} {scope:?}");
}
