//! Where the time of one `saml::verify` goes, part by part, on the 7 KB
//! fixture, without a profiler: `cargo run --release --example verify_parts`.
//! Each line times one step alone, in a loop, with the binary's allocator.
//! (docs/performance.md has figures and how to read them.)

mod common;

use std::hint::black_box;
use std::time::Instant;

use fedgate::inbound::saml;
use fedgate::xml::{self, c14n, NS_DS, NS_SAML};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn time<T>(name: &str, n: usize, mut f: impl FnMut() -> T) {
    for _ in 0..n / 10 {
        black_box(f());
    }
    let start = Instant::now();
    for _ in 0..n {
        black_box(f());
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!("{name:44} {us:7.2} µs");
}

fn main() -> Result<(), common::Error> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let common::Fixture {
        posted,
        idp,
        settings,
        now,
    } = common::fixture()?;
    let text = saml::decode_input(&posted, saml::DEFAULT_MAX_BYTES)?;
    let doc = xml::parse(&text)?;
    let assertion = doc
        .descendants()
        .find(|e| xml::is(e, NS_SAML, "Assertion"))
        .ok_or("no Assertion")?;
    let sig = xml::only_child(assertion, NS_DS, "Signature")
        .ok()
        .flatten()
        .ok_or("no Signature")?;
    let signed_info = xml::only_child(sig, NS_DS, "SignedInfo")
        .ok()
        .flatten()
        .ok_or("no SignedInfo")?;
    let canonical = c14n::canonicalize(assertion, Some(sig.id()), &[]);
    let identity = saml::verify(&posted, &idp, &settings, now)?;
    let floor = common::RsaFloor::new()?;

    time("saml::verify (all of it)", n, || {
        saml::verify(black_box(&posted), &idp, &settings, now)
    });
    time("  decode_input (base64, UTF-8)", n, || {
        saml::decode_input(black_box(&posted), saml::DEFAULT_MAX_BYTES)
    });
    time("  xml::parse (and dropping the tree)", n, || {
        xml::parse(black_box(&text)).map(|d| d.descendants().count())
    });
    time("  (roxmltree parse, the parser before, alone)", n, || {
        roxmltree::Document::parse(black_box(&text)).map(|d| d.descendants().count())
    });
    time("  verify_document (on the parsed tree)", n, || {
        saml::verify_document(&doc, &idp, &settings, now)
    });
    time("    exclusive C14N of the Assertion", n, || {
        c14n::canonicalize(assertion, Some(sig.id()), &[])
    });
    time("    exclusive C14N of SignedInfo", n, || {
        c14n::canonicalize(signed_info, None, &[])
    });
    time("    SHA-256 of the canonical Assertion", n, || {
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, black_box(&canonical))
    });
    time("    Identity: clone and drop", n, || identity.clone());
    time("RSA-2048 verify of 600 bytes (the floor)", n, || {
        floor.verify()
    });
    println!("(the canonical Assertion is {} bytes)", canonical.len());
    Ok(())
}
