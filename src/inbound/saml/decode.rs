//! `fedgate saml decode`: show an admin what a SAML message says, without a
//! verdict — which element is signed, with what and by which certificate,
//! every time in UTC and relative to now, the attributes, and the XML
//! pretty-printed. Nothing here decides anything; `saml verify` does.

use crate::xml::escape as esc;
use std::fmt::Write;

use time::OffsetDateTime;

use super::{decode_input, signature_of, SamlError, DEFAULT_MAX_BYTES};
use crate::trust::certs::TrustedCert;
use crate::xml::{self, children, is, Node, NS_DS, NS_SAML, NS_SAMLP};

/// A human-readable report of a SAML Response (or bare Assertion).
pub fn report(input: &[u8], now: OffsetDateTime) -> Result<String, SamlError> {
    report_with(input, now, &[], &Default::default())
}

/// [`report`], decrypting EncryptedAssertions with `keys` (when given) and
/// describing what they hold.
pub fn report_with(
    input: &[u8],
    now: OffsetDateTime,
    keys: &[super::decrypt::DecryptionKey],
    policy: &super::decrypt::Policy,
) -> Result<String, SamlError> {
    let text = decode_input(input, DEFAULT_MAX_BYTES)?;
    let doc = xml::parse(&text)?;
    let root = doc.root_element();
    let mut out = String::new();
    let _ = writeln!(out, "now: {}", crate::timefmt::format(now));

    let assertions: Vec<Node> = doc
        .descendants()
        .filter(|n| is(n, NS_SAML, "Assertion"))
        .collect();
    let mut elements = vec![root];
    elements.extend(assertions.iter().copied().filter(|a| a.id() != root.id()));
    for el in elements {
        describe_element(&mut out, el, now);
    }
    if assertions.len() > 1 {
        let _ = writeln!(
            out,
            "\nnote: {} Assertions in one document (a verifier refuses this)",
            assertions.len()
        );
    }
    for enc in doc
        .descendants()
        .filter(|n| is(n, NS_SAML, "EncryptedAssertion"))
    {
        let _ = writeln!(out, "\nEncryptedAssertion");
        for n in enc
            .descendants()
            .filter(|n| n.tag_name().name() == "EncryptionMethod")
        {
            let what = match n.parent_element().map(|p| p.tag_name().name()) {
                Some("EncryptedKey") => "key transport",
                _ => "content",
            };
            let _ = writeln!(out, "  {what}: {}", n.attribute("Algorithm").unwrap_or("?"));
        }
        if keys.is_empty() {
            let _ = writeln!(out, "  (give --key to decrypt it)");
            continue;
        }
        match super::decrypt::decrypt(enc, keys, policy) {
            Err(e) => {
                let _ = writeln!(
                    out,
                    "  not decrypted: [{}] {e}",
                    crate::identity::ErrorCode::code(&e)
                );
            }
            Ok(plain) => {
                let plain = String::from_utf8_lossy(&plain).into_owned();
                match xml::parse(&plain) {
                    Ok(inner) => {
                        let _ = writeln!(out, "  decrypted:");
                        describe_element(&mut out, inner.root_element(), now);
                        let _ = writeln!(out, "\n--- decrypted XML ---");
                        pretty(inner.root_element(), 0, &mut out);
                    }
                    Err(e) => {
                        let _ = writeln!(out, "  decrypted, but not XML: {e}");
                    }
                }
            }
        }
    }

    let _ = writeln!(out, "\n--- XML ---");
    pretty(root, 0, &mut out);
    Ok(out)
}

fn describe_element(out: &mut String, el: Node, now: OffsetDateTime) {
    let name = el.tag_name().name();
    let _ = writeln!(out, "\n{name}");
    for attr in ["ID", "Version", "Destination", "InResponseTo"] {
        if let Some(v) = el.attribute(attr) {
            let _ = writeln!(out, "  {attr}: {v}");
        }
    }
    time_line(out, "IssueInstant", el.attribute("IssueInstant"), now);
    if let Some(i) = children(el, NS_SAML, "Issuer").next() {
        let _ = writeln!(out, "  Issuer: {}", xml::text_content(i).trim());
    }
    if is(&el, NS_SAMLP, "Response") {
        if let Some(code) = children(el, NS_SAMLP, "Status")
            .flat_map(|s| children(s, NS_SAMLP, "StatusCode"))
            .next()
        {
            let _ = writeln!(out, "  Status: {}", code.attribute("Value").unwrap_or("?"));
        }
    }
    match signature_of(el) {
        None => {
            let _ = writeln!(out, "  signed: no");
        }
        Some(sig) => describe_signature(out, sig, now),
    }
    if !is(&el, NS_SAML, "Assertion") {
        return;
    }
    if let Some(subject) = children(el, NS_SAML, "Subject").next() {
        for n in children(subject, NS_SAML, "NameID") {
            let _ = writeln!(
                out,
                "  Subject NameID: {} (Format {})",
                xml::text_content(n).trim(),
                n.attribute("Format").unwrap_or("unspecified")
            );
        }
        for sc in children(subject, NS_SAML, "SubjectConfirmation") {
            let _ = writeln!(
                out,
                "  SubjectConfirmation: {}",
                sc.attribute("Method").unwrap_or("?")
            );
            for scd in children(sc, NS_SAML, "SubjectConfirmationData") {
                for attr in ["Recipient", "InResponseTo"] {
                    if let Some(v) = scd.attribute(attr) {
                        let _ = writeln!(out, "    {attr}: {v}");
                    }
                }
                time_line(out, "  NotBefore", scd.attribute("NotBefore"), now);
                time_line(out, "  NotOnOrAfter", scd.attribute("NotOnOrAfter"), now);
            }
        }
    }
    if let Some(c) = children(el, NS_SAML, "Conditions").next() {
        let _ = writeln!(out, "  Conditions:");
        time_line(out, "  NotBefore", c.attribute("NotBefore"), now);
        time_line(out, "  NotOnOrAfter", c.attribute("NotOnOrAfter"), now);
        for a in children(c, NS_SAML, "AudienceRestriction")
            .flat_map(|r| children(r, NS_SAML, "Audience"))
        {
            let _ = writeln!(out, "    Audience: {}", xml::text_content(a).trim());
        }
    }
    for s in children(el, NS_SAML, "AuthnStatement") {
        time_line(out, "AuthnInstant", s.attribute("AuthnInstant"), now);
        time_line(
            out,
            "SessionNotOnOrAfter",
            s.attribute("SessionNotOnOrAfter"),
            now,
        );
    }
    let attrs: Vec<Node> = children(el, NS_SAML, "AttributeStatement")
        .flat_map(|s| children(s, NS_SAML, "Attribute"))
        .collect();
    if !attrs.is_empty() {
        let _ = writeln!(out, "  Attributes:");
    }
    for a in attrs {
        let values: Vec<String> = children(a, NS_SAML, "AttributeValue")
            .map(|v| xml::text_content(v).trim().to_string())
            .collect();
        let _ = writeln!(
            out,
            "    {}: {}",
            a.attribute("Name").unwrap_or("?"),
            values.join(", ")
        );
    }
}

/// A short name for an XML-DSig algorithm URI: the fragment or last path
/// segment (`rsa-sha256`, `sha256`), and the canonicalization methods by
/// their names (their URIs end in `#` or carry `#WithComments`).
fn algorithm_name(uri: &str) -> &str {
    match uri {
        "http://www.w3.org/2001/10/xml-exc-c14n#" => "exc-c14n",
        "http://www.w3.org/2001/10/xml-exc-c14n#WithComments" => "exc-c14n with comments",
        "http://www.w3.org/TR/2001/REC-xml-c14n-20010315" => "c14n 1.0",
        "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments" => "c14n 1.0 with comments",
        "http://www.w3.org/2006/12/xml-c14n11" => "c14n 1.1",
        "http://www.w3.org/2006/12/xml-c14n11#WithComments" => "c14n 1.1 with comments",
        other => match other.trim_end_matches(['#', '/']).rsplit(['#', '/']).next() {
            Some(name) if !name.is_empty() => name,
            _ => other,
        },
    }
}

fn describe_signature(out: &mut String, sig: Node, now: OffsetDateTime) {
    let alg = |local: &str| {
        let uri = sig
            .descendants()
            .find(|n| is(n, NS_DS, local))
            .and_then(|n| n.attribute("Algorithm"))
            .unwrap_or("?");
        algorithm_name(uri).to_string()
    };
    let reference = sig
        .descendants()
        .find(|n| is(n, NS_DS, "Reference"))
        .and_then(|n| n.attribute("URI"))
        .unwrap_or("?");
    let _ = writeln!(
        out,
        "  signed: yes — {} over {}, digest {}, reference {reference}",
        alg("SignatureMethod"),
        alg("CanonicalizationMethod"),
        alg("DigestMethod")
    );
    let certs = sig
        .descendants()
        .filter(|n| is(n, NS_DS, "X509Certificate"));
    let mut any = false;
    for c in certs {
        any = true;
        match TrustedCert::from_base64(&xml::text_content(c)) {
            Ok(cert) => {
                let _ = writeln!(
                    out,
                    "  certificate in KeyInfo: {} sha256 {} not after {} ({} days)",
                    cert.subject,
                    cert.thumbprint_sha256,
                    crate::timefmt::format(cert.not_after),
                    cert.days_left(now)
                );
            }
            Err(e) => {
                let _ = writeln!(out, "  certificate in KeyInfo: unreadable ({e})");
            }
        }
    }
    if !any {
        let _ = writeln!(
            out,
            "  certificate in KeyInfo: none (the key must come from the IdP metadata)"
        );
    }
}

fn time_line(out: &mut String, label: &str, value: Option<&str>, now: OffsetDateTime) {
    let Some(v) = value else { return };
    match crate::timefmt::parse(v) {
        Some(t) => {
            let _ = writeln!(
                out,
                "  {label}: {} ({})",
                crate::timefmt::format(t),
                relative(t - now)
            );
        }
        None => {
            let _ = writeln!(out, "  {label}: {v} (not a valid timestamp)");
        }
    }
}

/// "in 5m 3s" / "2h 1m ago".
pub fn relative(d: time::Duration) -> String {
    let secs = d.whole_seconds();
    let a = secs.unsigned_abs();
    let body = if a >= 86_400 {
        format!("{}d {}h", a / 86_400, (a % 86_400) / 3600)
    } else if a >= 3600 {
        format!("{}h {}m", a / 3600, (a % 3600) / 60)
    } else if a >= 60 {
        format!("{}m {}s", a / 60, a % 60)
    } else {
        format!("{a}s")
    };
    if secs >= 0 {
        format!("in {body}")
    } else {
        format!("{body} ago")
    }
}

/// Indented XML for reading (not for verifying: white space is added).
fn pretty(node: Node, depth: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    let qname = node.qname();
    let _ = write!(out, "{pad}<{qname}");
    for ns in node.namespace_declarations() {
        match ns.name() {
            Some(p) => {
                let _ = write!(out, " xmlns:{p}=\"{}\"", esc(ns.uri()));
            }
            None => {
                let _ = write!(out, " xmlns=\"{}\"", esc(ns.uri()));
            }
        }
    }
    for a in node.attributes() {
        let qn = a.qname();
        let _ = write!(out, " {qn}=\"{}\"", esc(a.value()));
    }
    let kids: Vec<Node> = node
        .children()
        .filter(|c| {
            c.is_element() || (c.is_text() && !c.text().unwrap_or_default().trim().is_empty())
        })
        .collect();
    if kids.is_empty() {
        let _ = writeln!(out, "/>");
        return;
    }
    if let [only] = kids.as_slice() {
        if only.is_text() {
            let t = xml::text_content(node);
            let _ = writeln!(out, ">{}</{qname}>", esc(t.trim()));
            return;
        }
    }
    let _ = writeln!(out, ">");
    for k in kids {
        if k.is_element() {
            pretty(k, depth + 1, out);
        } else {
            let _ = writeln!(out, "{pad}  {}", esc(k.text().unwrap_or_default().trim()));
        }
    }
    let _ = writeln!(out, "{pad}</{qname}>");
}

#[cfg(test)]
mod tests {
    use super::algorithm_name;

    #[test]
    fn algorithm_names_are_never_blank() {
        assert_eq!(
            algorithm_name("http://www.w3.org/2001/10/xml-exc-c14n#"),
            "exc-c14n"
        );
        assert_eq!(
            algorithm_name("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"),
            "rsa-sha256"
        );
        assert_eq!(
            algorithm_name("http://www.w3.org/2001/04/xmlenc#sha256"),
            "sha256"
        );
        assert_eq!(algorithm_name("urn:example:odd/"), "urn:example:odd");
    }
}
