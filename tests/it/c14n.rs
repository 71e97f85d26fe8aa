//! Exclusive C14N, differentially against libxml2 (through lxml, with the
//! oracle scripts/c14n_oracle.py, itself cross-checked against xmlsec1):
//! every XML file of tests/corpus and of fixtures/, for the document
//! element, every element with an ID, and every ds:SignedInfo, as a
//! document subset with its inherited namespace context.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::Value;

use super::{corpus_path, files_under, fixture};

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

/// Canonicalize element number `index` (document order) of the XML in `text`.
fn ours(text: &str, index: usize, prefixes: &[&str]) -> Option<Vec<u8>> {
    let doc = fedgate::xml::parse(text).ok()?;
    let el = doc.descendants().filter(|n| n.is_element()).nth(index)?;
    Some(fedgate::xml::c14n::canonicalize(el, None, prefixes))
}

/// The XML text of a fixture or corpus file (base64 files decoded).
fn xml_text(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    fedgate::inbound::saml::decode_input(&bytes, 4 << 20).ok()
}

/// Compare an oracle answer ({file: [{index, c14n_b64}] | {skipped}}) with ours.
fn compare(answer: &Value, prefixes: &[&str], failures: &mut Vec<String>) -> (usize, usize) {
    let (mut files, mut elements) = (0, 0);
    for (file, entries) in answer.as_object().unwrap() {
        let Some(entries) = entries.as_array() else {
            continue;
        }; // skipped by libxml2
        let Some(text) = xml_text(Path::new(file)) else {
            failures.push(format!(
                "{file}: libxml2 parsed it, fedgate could not read it"
            ));
            continue;
        };
        if fedgate::xml::parse(&text).is_err() {
            // fedgate's parser is stricter than libxml2 on a few corpus oddities; such a
            // document is refused as a whole, so its canonical form never matters.
            continue;
        }
        files += 1;
        for e in entries {
            let index = e["index"].as_u64().unwrap() as usize;
            let want = b64(e["c14n_b64"].as_str().unwrap());
            match ours(&text, index, prefixes) {
                Some(got) if got == want => elements += 1,
                Some(got) => failures.push(format!(
                    "{file} element #{index} (prefixes {prefixes:?}):\n  libxml2: {}\n  fedgate: {}",
                    String::from_utf8_lossy(&want),
                    String::from_utf8_lossy(&got)
                )),
                None => failures.push(format!("{file} element #{index}: not found")),
            }
        }
    }
    (files, elements)
}

#[test]
fn golden_outputs_for_the_c14n_torture_fixtures() {
    let mut failures = Vec::new();
    let mut total = 0;
    for (json, prefixes) in [
        ("c14n/expected.json", vec![]),
        ("c14n/expected_prefixes_xs_xsi.json", vec!["xs", "xsi"]),
        ("c14n/expected_prefixes_default.json", vec!["#default"]),
    ] {
        let answer: Value = serde_json::from_slice(&std::fs::read(fixture(json)).unwrap()).unwrap();
        // Keys are paths relative to the repository root.
        let rebased: serde_json::Map<String, Value> = answer
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                (
                    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                        .join(k)
                        .display()
                        .to_string(),
                    v.clone(),
                )
            })
            .collect();
        let (_, n) = compare(&Value::Object(rebased), &prefixes, &mut failures);
        total += n;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(total >= 100, "only {total} elements compared");
}

/// The folders `every_document` walks, for messages.
fn walked() -> String {
    format!(
        "{}, {} and {}",
        corpus_path("").display(),
        fixture("saml").display(),
        fixture("c14n").display()
    )
}

fn every_document() -> Vec<PathBuf> {
    let skip = [
        ".pem", ".json", ".md", ".txt", ".html", ".url", ".py", ".jwt", "LICENSE",
    ];
    // At least most of what each folder holds today (411, 84 and 20 files).
    let mut out: Vec<PathBuf> = [
        files_under(&corpus_path(""), 400),
        files_under(&fixture("saml"), 80),
        files_under(&fixture("c14n"), 18),
    ]
    .concat()
    .into_iter()
    .filter(|p| {
        let name = p.file_name().unwrap().to_string_lossy();
        !skip.iter().any(|s| name.ends_with(s))
    })
    .collect();
    out.sort();
    out
}

#[test]
fn every_corpus_and_fixture_document_matches_libxml2() {
    let files = every_document();
    let mut failures = Vec::new();
    let mut counts = BTreeMap::new();
    for prefixes in [vec![], vec!["xs", "xsi", "saml"]] {
        let mut cmd = super::python();
        cmd.arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/c14n_oracle.py"));
        if !prefixes.is_empty() {
            cmd.arg("--prefixes").arg(prefixes.join(" "));
        }
        let out = cmd
            .args(&files)
            .output()
            .expect("the tests' Python, with lxml (scripts/install-test-deps)");
        assert!(
            out.status.success(),
            "oracle failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
        let (f, e) = compare(&answer, &prefixes, &mut failures);
        counts.insert(prefixes.join(" "), (f, e));
    }
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let (files, elements) = counts[""];
    eprintln!("c14n differential: {counts:?}");
    assert!(
        files >= 150 && elements >= 400,
        "too little compared: {files} files, {elements} elements, from {}",
        walked()
    );
}
