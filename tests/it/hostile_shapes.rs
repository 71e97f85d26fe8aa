//! The hostile SAML shapes of issue 15, built from strings: shared by the
//! `it::hostile` suite and the `hostile/*` group of `benches/verify.rs`
//! (which includes this file by path). Only std, so that the same builders
//! ran on the code before the limits existed (the "before" figures in
//! docs/performance.md).
#![allow(dead_code)] // each user takes what it needs

use std::fmt::Write;

const SUCCESS: &str = "<samlp:Status><samlp:StatusCode \
Value=\"urn:oasis:names:tc:SAML:2.0:status:Success\"/></samlp:Status>";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";

/// An unsigned Response carrying `n` elements with an `ID` attribute each,
/// all distinct (so a de-duplicating scan must compare each with all), and
/// no Assertion. With `n` = 40,408 it is the 512 KiB response.
pub fn ids_response(n: usize) -> String {
    let mut s = String::with_capacity(n * 13 + 512);
    s.push_str(
        "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" \
         ID=\"resp.0\" Version=\"2.0\" IssueInstant=\"2026-03-02T10:00:00Z\">",
    );
    s.push_str(SUCCESS);
    for i in 0..n {
        s.push_str("<i ID=\"");
        s.push_str(&short_name(i, ID_CHARS));
        s.push_str("\"/>");
    }
    s.push_str("</samlp:Response>");
    s
}

const ID_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
const PREFIX_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz";

/// `i` written in the digits `chars` (most significant first): distinct
/// for distinct `i`, and as short as it can be.
fn short_name(mut i: usize, chars: &[u8]) -> String {
    let mut name = Vec::new();
    loop {
        name.push(chars[i % chars.len()]);
        i /= chars.len();
        if i == 0 {
            break;
        }
    }
    name.reverse();
    String::from_utf8(name).unwrap_or_default()
}

/// The short prefix names `a`, `b`, … `z`, `ba`, `bb`, …: `n` distinct ones.
pub fn prefix_names(n: usize) -> Vec<String> {
    (0..n).map(|i| short_name(i, PREFIX_CHARS)).collect()
}

/// `signed` (a Response whose signature uses exclusive C14N, as fedgate and
/// Entra write it) with `bindings` namespace prefixes declared on the
/// Response and an `InclusiveNamespaces PrefixList` of `entries` names
/// (cycling through the declared ones) on the SignedInfo's
/// CanonicalizationMethod: the 90,000-entry PrefixList. The
/// signature no longer holds; what it costs to find that out is the point.
pub fn prefixlist_response(signed: &str, bindings: usize, entries: usize) -> String {
    let names = prefix_names(bindings.max(1));
    let mut decls = String::new();
    for p in names.iter().take(bindings) {
        let _ = write!(decls, " xmlns:{p}=\"urn:{p}\"");
    }
    let mut list = String::with_capacity(entries * 3);
    for i in 0..entries {
        if i > 0 {
            list.push(' ');
        }
        list.push_str(names.get(i % names.len()).map_or("a", String::as_str));
    }
    let method = format!("<ds:CanonicalizationMethod Algorithm=\"{EXC_C14N}\"/>");
    let with_list = format!(
        "<ds:CanonicalizationMethod Algorithm=\"{EXC_C14N}\"><ec:InclusiveNamespaces \
         xmlns:ec=\"{EXC_C14N}\" PrefixList=\"{list}\"/></ds:CanonicalizationMethod>"
    );
    assert!(
        signed.contains(&method),
        "the signed response uses exc-c14n"
    );
    signed
        .replacen("<samlp:Response ", &format!("<samlp:Response{decls} "), 1)
        .replacen(&method, &with_list, 1)
}

/// A document for canonicalization alone: `bindings` prefixes declared on
/// the root, then `elements` children, each using one of the prefixes on an
/// attribute. Canonicalized with an inclusive PrefixList naming every
/// prefix, it is the widest subtree fedgate could be asked to digest.
pub fn wide_namespaced_document(bindings: usize, elements: usize) -> String {
    let names = prefix_names(bindings.max(1));
    let mut s = String::with_capacity(elements * 16 + bindings * 16 + 64);
    s.push_str("<r ID=\"root\"");
    for p in names.iter().take(bindings) {
        let _ = write!(s, " xmlns:{p}=\"urn:{p}\"");
    }
    s.push('>');
    for i in 0..elements {
        let p = names.get(i % names.len()).map_or("a", String::as_str);
        let _ = write!(s, "<e {p}:v=\"{i}\">t</e>");
    }
    s.push_str("</r>");
    s
}

/// Deep-but-allowed nesting: `blocks` subtrees, each `depth` elements deep,
/// every level declaring `per_level` new prefixes and the innermost
/// element carrying an attribute in the outermost prefix of its block (the
/// longest walk up the chain of bindings a lookup can be made to take).
pub fn deep_namespaced_document(blocks: usize, depth: usize, per_level: usize) -> String {
    let names = prefix_names(depth * per_level + 1);
    let mut s = String::from("<r>");
    for b in 0..blocks {
        for level in 0..depth {
            s.push_str("<d");
            for k in 0..per_level {
                let p = names.get(level * per_level + k).map_or("a", String::as_str);
                let _ = write!(s, " xmlns:{p}=\"urn:{b}:{p}\"");
            }
            s.push('>');
        }
        let first = names.first().map_or("a", String::as_str);
        let _ = write!(s, "<leaf {first}:v=\"{b}\"/>");
        for _ in 0..depth {
            s.push_str("</d>");
        }
    }
    s.push_str("</r>");
    s
}

/// `xml` (an unsigned Response from the mock Entra, before signing) with
/// `extra` more Attributes of `values` values each in its
/// AttributeStatement.
pub fn with_extra_attributes(xml: &str, extra: usize, values: usize) -> String {
    let mut attrs = String::new();
    for i in 0..extra {
        let _ = write!(attrs, "<Attribute Name=\"urn:fedgate:test:attr:{i}\">");
        for v in 0..values {
            let _ = write!(attrs, "<AttributeValue>v{v}</AttributeValue>");
        }
        attrs.push_str("</Attribute>");
    }
    xml.replacen(
        "</AttributeStatement>",
        &format!("{attrs}</AttributeStatement>"),
        1,
    )
}
