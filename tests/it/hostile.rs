//! Hostile input shapes (issue 15): the largest shapes each per-document
//! limit allows are accepted (or refused by a later, ordinary rule) and the
//! smallest ones past a limit are refused with its code, before any crypto;
//! and the work done grows linearly with the input.
//!
//! Work is `fedgate::xml::work`'s step count (every walk up a chain of
//! namespace bindings, every prefix an element considers, every ID and
//! attribute name checked, every node visited), never wall time: for a
//! shape of size n and 2n the steps may grow at most 2.5 times, where a
//! quadratic step would make them grow four times. The shapes are built in
//! `hostile_shapes.rs`, shared with the `hostile/*` benchmark group.

use std::fmt::Write;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as sig, RsaKeyPair};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use fedgate::identity::ErrorCode;
use fedgate::inbound::bearer::{self, BearerError, BearerPolicy};
use fedgate::inbound::saml::{self, limits, SamlError, SamlSettings};
use fedgate::mock::entra::{self, MockLogin};
use fedgate::trust::jwks::Jwks;
use fedgate::trust::metadata::IdpMetadata;
use fedgate::trust::signing::SigningKey;
use fedgate::xml::{self, c14n, dsig, work};
use serde_json::Value;
use time::OffsetDateTime;

use super::{fixture, repo_path};

#[path = "hostile_shapes.rs"]
mod shapes;

const TID: &str = "7d3a0c5e-1b2f-4c8d-9e6a-5f4b3c2d1e0f";

/// The mock Entra's signing key, the IdP metadata that trusts it, fedgate's
/// settings and an instant the mock's responses are valid at.
struct Saml {
    key: SigningKey,
    idp: IdpMetadata,
    settings: SamlSettings,
    login: MockLogin,
    now: OffsetDateTime,
}

impl Saml {
    fn new() -> Self {
        let read = |f: &str| std::fs::read_to_string(repo_path("tests/data", f)).unwrap();
        let settings = SamlSettings::new(
            "https://fedgate.example.test/saml/contoso/metadata",
            "https://fedgate.example.test/saml/contoso/acs",
        );
        Saml {
            key: SigningKey::from_pem(&read("fedgate_rsa_key.pem"), &read("fedgate_rsa_cert.pem"))
                .unwrap(),
            idp: IdpMetadata::from_pem(
                &read("fedgate_rsa_cert.pem"),
                &format!("https://sts.windows.net/{TID}/"),
            )
            .unwrap(),
            login: MockLogin {
                tenant_id: TID.into(),
                sp_entity_id: settings.sp_entity_id.clone(),
                acs_url: settings.acs_url.clone(),
                issue_instant: fedgate::timefmt::parse("2026-03-02T10:00:00Z").unwrap(),
                in_response_to: None,
                id_seed: "hostile00000000000000".into(),
            },
            settings,
            now: fedgate::timefmt::parse("2026-03-02T10:01:00Z").unwrap(),
        }
    }

    /// The mock's unsigned Response for a user with `groups` groups.
    fn unsigned(&self, groups: usize) -> (String, String) {
        entra::response_xml(&entra::user_with_groups(groups), &self.login)
    }

    /// `xml` with its Assertion (`id`) signed.
    fn sign(&self, xml: &str, id: &str) -> String {
        dsig::sign_enveloped(xml, id, &self.key).unwrap()
    }

    fn verify(&self, xml: &str) -> Result<fedgate::identity::Identity, SamlError> {
        saml::verify(xml.as_bytes(), &self.idp, &self.settings, self.now)
    }

    /// Verify, returning the error code and the steps it took.
    fn code_and_steps(&self, xml: &str) -> (&'static str, u64) {
        let (r, steps) = work::measure(|| self.verify(xml));
        (r.err().map_or("ok", |e| e.code()), steps)
    }
}

fn code<T>(r: Result<T, impl ErrorCode>) -> &'static str {
    r.err().map_or("ok", |e| e.code())
}

/// Steps for size 2n over steps for size n may be at most this.
const LINEAR: f64 = 2.5;

#[track_caller]
fn assert_linear(what: &str, n: u64, two_n: u64) {
    let ratio = two_n as f64 / n.max(1) as f64;
    assert!(
        ratio <= LINEAR,
        "{what}: {n} steps for n, {two_n} for 2n (×{ratio:.2}; linear is ×2, quadratic ×4)"
    );
}

fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

// --- IDs ------------------------------------------------------------------

#[test]
fn ids_up_to_the_limit_pass_the_scan_and_one_more_is_refused() {
    let s = Saml::new();
    // The Response's own ID is one of them.
    let at_limit = shapes::ids_response(limits::MAX_IDS - 1);
    assert_eq!(count(&at_limit, " ID=\""), limits::MAX_IDS);
    assert_eq!(code(s.verify(&at_limit)), "saml.no_assertion");
    let over = shapes::ids_response(limits::MAX_IDS);
    let err = s.verify(&over).unwrap_err();
    assert_eq!(err.code(), "saml.limit_exceeded");
    assert!(err.to_string().contains("MAX_IDS"), "{err}");
}

#[test]
fn the_issues_40k_id_response_is_refused_in_linear_work() {
    let s = Saml::new();
    let big = shapes::ids_response(40_408);
    assert!(big.len() <= saml::DEFAULT_MAX_BYTES, "{} bytes", big.len());
    let (code, steps) = s.code_and_steps(&big);
    assert_eq!(code, "saml.limit_exceeded");
    let err = s.verify(&big).unwrap_err();
    assert!(err.to_string().contains("MAX_MESSAGE_NODES"), "{err}");
    // Cut off by the parser at the node cap: half the elements (still over
    // it) cost the same, and the work is a few steps per node allowed.
    let (_, half) = s.code_and_steps(&shapes::ids_response(20_204));
    assert_eq!(half, steps);
    let cap = u64::from(fedgate::xml::MAX_MESSAGE_NODES);
    assert!(steps <= 5 * cap, "{steps} steps for a cap of {cap} nodes");
    // Under the cap, the ID scan refuses it, in linear work.
    let (code, under) = s.code_and_steps(&shapes::ids_response(8_000));
    assert_eq!(code, "saml.limit_exceeded");
    let (_, quarter) = s.code_and_steps(&shapes::ids_response(4_000));
    assert_linear("IDs (refused)", quarter, under);
    assert!(s
        .verify(&shapes::ids_response(8_000))
        .unwrap_err()
        .to_string()
        .contains("MAX_IDS"));
}

// --- InclusiveNamespaces PrefixList --------------------------------------

#[test]
fn a_maximal_prefix_list_reaches_the_signature_and_one_more_name_is_refused() {
    let s = Saml::new();
    let (xml, id) = s.unsigned(20);
    let signed = s.sign(&xml, &id);
    assert_eq!(code(s.verify(&signed)), "ok");
    let max = shapes::prefixlist_response(&signed, 200, limits::MAX_PREFIX_LIST_ENTRIES);
    // The list changes the canonical SignedInfo: the signature no longer holds.
    assert_eq!(code(s.verify(&max)), "saml.signature_invalid");
    let over = shapes::prefixlist_response(&signed, 200, limits::MAX_PREFIX_LIST_ENTRIES + 1);
    let err = s.verify(&over).unwrap_err();
    assert_eq!(err.code(), "saml.limit_exceeded");
    assert!(err.to_string().contains("MAX_PREFIX_LIST_ENTRIES"), "{err}");
    // The issue's 90,000 names: refused in the scan, in linear work.
    let huge = shapes::prefixlist_response(&signed, 200, 90_000);
    assert!(
        huge.len() <= saml::DEFAULT_MAX_BYTES,
        "{} bytes",
        huge.len()
    );
    let (code90, steps90) = s.code_and_steps(&huge);
    assert_eq!(code90, "saml.limit_exceeded");
    let (_, steps45) = s.code_and_steps(&shapes::prefixlist_response(&signed, 200, 45_000));
    assert_linear("PrefixList (refused)", steps45, steps90);
}

#[test]
fn the_dsig_verifier_refuses_a_long_prefix_list_on_its_own() {
    // Metadata signatures go through the same verifier without the SAML scan.
    let s = Saml::new();
    let (xml, id) = s.unsigned(2);
    let signed = s.sign(&xml, &id);
    let over = shapes::prefixlist_response(&signed, 3, dsig::MAX_PREFIX_LIST_ENTRIES + 1);
    let doc = xml::parse(&over).unwrap();
    let assertion = doc
        .descendants()
        .find(|n| n.tag_name().name() == "Assertion")
        .unwrap();
    let sig = dsig::signature_child(assertion).unwrap().unwrap();
    let err = dsig::verify_enveloped(assertion, sig, &s.idp.signing_certs, &Default::default())
        .unwrap_err();
    assert_eq!(err.code_suffix(), "limit_exceeded", "{err}");
}

#[test]
fn canonicalization_does_not_multiply_the_prefix_list_by_the_elements() {
    // 20,000 elements under 200 bindings: the apex alone looks the inclusive
    // prefixes up; below it only elements that declare a prefix consider it.
    let wide = shapes::wide_namespaced_document(200, 20_000);
    let doc = xml::parse(&wide).unwrap();
    let names = shapes::prefix_names(limits::MAX_PREFIX_LIST_ENTRIES);
    let all: Vec<&str> = names.iter().map(String::as_str).collect();
    let (none_out, none) = work::measure(|| c14n::canonicalize(doc.root_element(), None, &[]));
    let (max_out, max) = work::measure(|| c14n::canonicalize(doc.root_element(), None, &all));
    // Without the list each child declares the prefix it uses; with it the
    // apex declares the 64 named ones, and their users below it do not.
    let apex = |out: &[u8]| {
        let end = out.iter().position(|&b| b == b'>').unwrap();
        String::from_utf8(out[..end].to_vec()).unwrap()
    };
    assert_eq!(apex(&none_out), "<r ID=\"root\"");
    assert_eq!(apex(&max_out).matches(" xmlns:").count(), all.len());
    let text = |out: &[u8]| String::from_utf8(out.to_vec()).unwrap();
    assert!(text(&none_out).contains("<e xmlns:a=\"urn:a\" a:v=\"0\">t</e>"));
    assert!(text(&max_out).contains("<e a:v=\"0\">t</e>"));
    // Twice the names cost one more step per lookup in the map of rendered
    // bindings (logarithmic), not twice the work per element.
    let (_, half) = work::measure(|| c14n::canonicalize(doc.root_element(), None, &all[..32]));
    assert!(
        (max as f64) < 1.25 * half as f64,
        "{none} steps without a PrefixList, {half} with 32 names, {max} with 64"
    );
    // And linear in the elements.
    let doc2_text = shapes::wide_namespaced_document(200, 40_000);
    let doc2 = xml::parse(&doc2_text).unwrap();
    let (_, max2) = work::measure(|| c14n::canonicalize(doc2.root_element(), None, &all));
    assert_linear("c14n, maximal PrefixList", max, max2);
}

#[test]
fn canonicalization_with_a_prefix_list_matches_the_reference_rules() {
    // Below the apex an inclusive prefix renders only where it is declared
    // (rebound, or after an undeclaration of the default namespace).
    let src = r#"<r xmlns="urn:d" xmlns:a="urn:a" xmlns:b="urn:b"><c><e xmlns:a="urn:a2"><f xmlns=""/></e></c></r>"#;
    let doc = xml::parse(src).unwrap();
    let c = doc
        .descendants()
        .find(|n| n.tag_name().name() == "c")
        .unwrap();
    let out =
        String::from_utf8(c14n::canonicalize(c, None, &["a", "#default", "a", "zz"])).unwrap();
    assert_eq!(
        out,
        r#"<c xmlns="urn:d" xmlns:a="urn:a"><e xmlns:a="urn:a2"><f xmlns=""></f></e></c>"#
    );
}

// --- Attributes -----------------------------------------------------------

#[test]
fn attributes_and_values_up_to_the_limits_verify_and_one_more_is_refused() {
    let s = Saml::new();
    // 150 groups, Entra's most before the overage link.
    let (base, id) = s.unsigned(150);
    let attrs = count(&base, "<Attribute ");
    let values = count(&base, "<AttributeValue>");
    // Fill the Attributes to the limit, and the values to the limit with them.
    let extra = limits::MAX_ATTRIBUTES - attrs;
    let per = (limits::MAX_ATTRIBUTE_VALUES - values) / extra;
    let fill = limits::MAX_ATTRIBUTE_VALUES - values - per * extra;
    let mut xml = shapes::with_extra_attributes(&base, extra, per);
    xml = xml.replacen(
        "</Attribute></AttributeStatement>",
        &format!(
            "{}</Attribute></AttributeStatement>",
            "<AttributeValue>f</AttributeValue>".repeat(fill)
        ),
        1,
    );
    assert_eq!(count(&xml, "<Attribute "), limits::MAX_ATTRIBUTES);
    assert_eq!(
        count(&xml, "<AttributeValue>"),
        limits::MAX_ATTRIBUTE_VALUES
    );
    // The largest response the limits allow stays well under the node cap.
    let nodes = fedgate::xml::parse(&xml).unwrap().descendants().count();
    assert!(
        nodes < fedgate::xml::MAX_MESSAGE_NODES as usize / 2,
        "{nodes} nodes"
    );
    let identity = s.verify(&s.sign(&xml, &id)).unwrap();
    assert_eq!(identity.groups.len(), 150);
    assert_eq!(identity.attributes.len(), limits::MAX_ATTRIBUTES);

    // One Attribute more (with the values one fewer, to test one limit).
    let more = xml.replacen("<AttributeValue>f</AttributeValue>", "", 1).replacen(
        "</AttributeStatement>",
        "<Attribute Name=\"urn:one-more\"><AttributeValue>x</AttributeValue></Attribute></AttributeStatement>",
        1,
    );
    let err = s.verify(&s.sign(&more, &id)).unwrap_err();
    assert_eq!(err.code(), "saml.limit_exceeded");
    assert!(err.to_string().contains("MAX_ATTRIBUTES"), "{err}");
    // One value more.
    let more = xml.replacen(
        "</Attribute></AttributeStatement>",
        "<AttributeValue>g</AttributeValue></Attribute></AttributeStatement>",
        1,
    );
    let err = s.verify(&s.sign(&more, &id)).unwrap_err();
    assert_eq!(err.code(), "saml.limit_exceeded");
    assert!(err.to_string().contains("MAX_ATTRIBUTE_VALUES"), "{err}");
}

#[test]
fn a_value_up_to_the_length_limit_verifies_and_one_byte_more_is_refused() {
    let s = Saml::new();
    let (base, id) = s.unsigned(3);
    let tags = "<AttributeValue></AttributeValue>".len();
    let with_value = |len: usize| {
        let v = "v".repeat(len - tags);
        base.replacen(
            "</AttributeStatement>",
            &format!("<Attribute Name=\"urn:long\"><AttributeValue>{v}</AttributeValue></Attribute></AttributeStatement>"),
            1,
        )
    };
    let ok = s
        .verify(&s.sign(&with_value(limits::MAX_ATTRIBUTE_VALUE_BYTES), &id))
        .unwrap();
    assert_eq!(
        ok.attributes["urn:long"][0].len(),
        limits::MAX_ATTRIBUTE_VALUE_BYTES - tags
    );
    let err = s
        .verify(&s.sign(&with_value(limits::MAX_ATTRIBUTE_VALUE_BYTES + 1), &id))
        .unwrap_err();
    assert_eq!(err.code(), "saml.limit_exceeded");
    assert!(
        err.to_string().contains("MAX_ATTRIBUTE_VALUE_BYTES"),
        "{err}"
    );
}

#[test]
fn verifying_many_attributes_takes_linear_work() {
    let s = Saml::new();
    let steps = |extra: usize| {
        let (base, id) = s.unsigned(0);
        let signed = s.sign(&shapes::with_extra_attributes(&base, extra, 4), &id);
        let (code, steps) = s.code_and_steps(&signed);
        assert_eq!(code, "ok");
        steps
    };
    assert_linear("attributes (verified)", steps(120), steps(240));
}

// --- Signatures, References, Transforms, certificates ----------------------

#[test]
fn dsig_element_counts_are_refused_past_their_limits() {
    let s = Saml::new();
    let (xml, id) = s.unsigned(2);
    let signed = s.sign(&xml, &id);
    let sig_start = signed.find("<ds:Signature").unwrap();
    let sig_end = signed.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    let signature = &signed[sig_start..sig_end];
    // Extra copies of the Signature inside an Extensions-like element the
    // profile never reads: at the limit they reach the profile's own checks,
    // past it they are refused in the scan. One Signature holds one
    // Reference, two Transforms and one X509Certificate.
    let with_copies = |n: usize| {
        let junk = format!(
            "<samlp:Extensions>{}</samlp:Extensions>",
            signature.repeat(n)
        );
        signed.replacen("<samlp:Status>", &format!("{junk}<samlp:Status>"), 1)
    };
    let at = with_copies(limits::MAX_SIGNATURES - 1);
    assert_ne!(code(s.verify(&at)), "saml.limit_exceeded");
    let err = s.verify(&with_copies(limits::MAX_SIGNATURES)).unwrap_err();
    assert_eq!(err.code(), "saml.limit_exceeded");
    assert!(err.to_string().contains("MAX_SIGNATURES"), "{err}");

    // Certificates: within one KeyInfo (the verifier's limit) ...
    let cert_start = signed.find("<ds:X509Certificate>").unwrap();
    let cert_end = signed.find("</ds:X509Certificate>").unwrap() + "</ds:X509Certificate>".len();
    let cert = &signed[cert_start..cert_end];
    let with_certs = |n: usize| signed.replacen(cert, &cert.repeat(n), 1);
    assert_eq!(
        code(s.verify(&with_certs(dsig::MAX_KEYINFO_CERTIFICATES))),
        "ok"
    );
    let err = s
        .verify(&with_certs(dsig::MAX_KEYINFO_CERTIFICATES + 1))
        .unwrap_err();
    assert_eq!(err.code(), "saml.limit_exceeded");
    assert!(
        err.to_string().contains("MAX_KEYINFO_CERTIFICATES"),
        "{err}"
    );
    // ... and in the document (the scan's).
    let err = s
        .verify(&with_certs(limits::MAX_X509_CERTIFICATES + 1))
        .unwrap_err();
    assert!(err.to_string().contains("MAX_X509_CERTIFICATES"), "{err}");
    // Transforms: three per Reference are refused by the profile (the
    // existing rule); past the document's limit, by the scan first.
    let transform = format!("<ds:Transform Algorithm=\"{}\"/>", dsig::ALG_EXC_C14N);
    let with_transforms = |n: usize| signed.replacen(&transform, &transform.repeat(n), 1);
    assert_eq!(
        code(s.verify(&with_transforms(2))),
        "saml.transform_unsupported"
    );
    let err = s
        .verify(&with_transforms(limits::MAX_TRANSFORMS))
        .unwrap_err();
    assert!(err.to_string().contains("MAX_TRANSFORMS"), "{err}");
    let reference_start = signed.find("<ds:Reference").unwrap();
    let reference_end = signed.find("</ds:Reference>").unwrap() + "</ds:Reference>".len();
    let reference = &signed[reference_start..reference_end];
    let err = s
        .verify(&signed.replacen(reference, &reference.repeat(limits::MAX_REFERENCES + 1), 1))
        .unwrap_err();
    assert!(err.to_string().contains("MAX_REFERENCES"), "{err}");
}

// --- Nesting and bindings ---------------------------------------------------

#[test]
fn deep_nesting_with_the_most_bindings_parses_in_linear_work() {
    // 60 levels (the parser allows 64) declaring 4 prefixes each: 240
    // bindings in scope (it allows 256), the innermost attribute resolved
    // through all of them.
    let steps = |blocks: usize| {
        let text = shapes::deep_namespaced_document(blocks, 60, 4);
        let (doc, steps) = work::measure(|| xml::parse(&text).map(|d| d.descendants().count()));
        assert!(doc.is_ok());
        steps
    };
    assert_linear("deep bindings (parse)", steps(40), steps(80));
    let text = shapes::deep_namespaced_document(1, xml::MAX_DEPTH + 1, 1);
    assert_eq!(xml::parse(&text).err(), Some(xml::XmlError::TooDeep));
}

// --- JWT --------------------------------------------------------------------

struct Jwt {
    doc: Value,
    jwks: Jwks,
}

impl Jwt {
    fn load() -> Self {
        Jwt {
            doc: serde_json::from_slice(&std::fs::read(fixture("jwt/tokens.json")).unwrap())
                .unwrap(),
            jwks: Jwks::from_json(&std::fs::read(fixture("jwt/jwks.json")).unwrap()).unwrap(),
        }
    }

    /// The fixture's v2 user token's header and claims.
    fn parts(&self) -> (Value, Value) {
        let token = self.doc["tokens"]["v2_user"]["jwt"].as_str().unwrap();
        let mut it = token.split('.');
        let mut part = || -> Value {
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap()).unwrap()
        };
        (part(), part())
    }

    fn policy(&self) -> BearerPolicy {
        let e = &self.doc["tokens"]["v2_user"];
        let mut p = BearerPolicy::new(
            e["issuer"].as_str().unwrap(),
            e["audience"].as_str().unwrap(),
        );
        // Room for the longest arrays allowed (the default 16 KiB fits ~300 ids).
        p.max_token_len = 256 * 1024;
        p
    }

    fn verify(
        &self,
        header: &Value,
        claims: &Value,
    ) -> Result<fedgate::identity::Identity, BearerError> {
        let now = OffsetDateTime::from_unix_timestamp(self.doc["now"].as_i64().unwrap()).unwrap();
        bearer::verify(&sign(header, claims), &self.jwks, &self.policy(), now)
    }
}

/// RS256 with the fixture's `rsa1.pem` (the JWKS's `fedgate-test-rsa-1`).
fn sign(header: &Value, claims: &Value) -> String {
    let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let pem = String::from_utf8(std::fs::read(fixture("jwt/rsa1.pem")).unwrap()).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let kp = RsaKeyPair::from_pkcs8(&STANDARD.decode(body).unwrap()).unwrap();
    let mut out = vec![0; kp.public_modulus_len()];
    kp.sign(
        &sig::RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        input.as_bytes(),
        &mut out,
    )
    .unwrap();
    format!("{input}.{}", b64(&out))
}

fn guids(n: usize) -> Value {
    Value::from(
        (0..n)
            .map(|i| format!("{i:08x}-7a1b-4c2d-9e3f-0a1b2c3d4e5f"))
            .collect::<Vec<_>>(),
    )
}

#[test]
fn jwt_arrays_up_to_the_limit_verify_and_one_more_is_refused() {
    let jwt = Jwt::load();
    let (header, claims) = jwt.parts();
    assert_eq!(code(jwt.verify(&header, &claims)), "ok");
    for claim in ["groups", "roles", "wids"] {
        let mut c = claims.clone();
        c[claim] = guids(bearer::MAX_ARRAY_LEN);
        let id = jwt.verify(&header, &c).unwrap();
        if claim == "groups" {
            assert_eq!(id.groups.len(), bearer::MAX_ARRAY_LEN);
        }
        c[claim] = guids(bearer::MAX_ARRAY_LEN + 1);
        let err = jwt.verify(&header, &c).unwrap_err();
        assert_eq!(err.code(), "jwt.limit_exceeded", "{claim}");
        assert!(err.to_string().contains("MAX_ARRAY_LEN"), "{err}");
    }
    // aud: the accepted audience last of the most allowed.
    let mut c = claims.clone();
    let aud = claims["aud"].as_str().unwrap().to_string();
    let mut auds: Vec<Value> = (1..bearer::MAX_AUDIENCES)
        .map(|i| format!("api://other-{i}").into())
        .collect();
    auds.push(aud.clone().into());
    c["aud"] = Value::from(auds.clone());
    assert_eq!(code(jwt.verify(&header, &c)), "ok");
    auds.insert(0, "api://one-more".into());
    c["aud"] = Value::from(auds);
    let err = jwt.verify(&header, &c).unwrap_err();
    assert_eq!(err.code(), "jwt.limit_exceeded");
    assert!(err.to_string().contains("MAX_AUDIENCES"), "{err}");
}

#[test]
fn jwt_claim_count_and_header_size_are_limited() {
    let jwt = Jwt::load();
    let (header, claims) = jwt.parts();
    let with_claims = |n: usize| {
        let mut c = claims.clone();
        let have = c.as_object().unwrap().len();
        for i in 0..n - have {
            c[format!("x{i}")] = Value::from(i);
        }
        c
    };
    assert_eq!(
        code(jwt.verify(&header, &with_claims(bearer::MAX_CLAIMS))),
        "ok"
    );
    let err = jwt
        .verify(&header, &with_claims(bearer::MAX_CLAIMS + 1))
        .unwrap_err();
    assert_eq!(err.code(), "jwt.limit_exceeded");
    assert!(err.to_string().contains("MAX_CLAIMS"), "{err}");

    // The header is refused by its size before anything else is read.
    let sized = |len: usize| {
        let mut h = header.clone();
        h["pad"] = Value::from("");
        let pad = len - h.to_string().len();
        h["pad"] = Value::from("p".repeat(pad));
        assert_eq!(h.to_string().len(), len);
        h
    };
    assert_eq!(
        code(jwt.verify(&sized(bearer::MAX_HEADER_BYTES), &claims)),
        "ok"
    );
    let err = jwt
        .verify(&sized(bearer::MAX_HEADER_BYTES + 1), &claims)
        .unwrap_err();
    assert_eq!(err.code(), "jwt.limit_exceeded");
    assert!(err.to_string().contains("MAX_HEADER_BYTES"), "{err}");
}

#[test]
fn the_shapes_are_what_they_say() {
    // The builders the benchmark shares: distinct IDs, distinct prefixes.
    let ids = shapes::ids_response(1000);
    let doc = xml::parse(&ids).unwrap();
    let mut seen = std::collections::HashSet::new();
    for n in doc.descendants().filter(|n| n.is_element()) {
        if let Some(id) = n.attribute("ID") {
            assert!(seen.insert(id.to_string()), "{id} twice");
        }
    }
    assert_eq!(seen.len(), 1001);
    let names = shapes::prefix_names(1000);
    let distinct: std::collections::HashSet<_> = names.iter().collect();
    assert_eq!(distinct.len(), 1000);
    let mut s = String::new();
    let _ = write!(s, "{}", names[27]);
    assert_eq!(s, "bb");
}
