//! Runs `saml::verify` on the 7 KB fixture N times: a driver for profilers
//! (`valgrind --tool=callgrind target/release/examples/verify_loop 300`).
//!
//! `verify_loop N --paired` alternates blocks of SAML verifications with
//! blocks of bare RSA-2048 verifies (the floor of any verification) and
//! prints both and their ratio. On a shared machine whose speed drifts from
//! minute to minute, the ratio measured this way is steadier than either
//! time (though a busy hour still moves it), and it is what the code
//! controls (docs/performance.md).

mod common;

use std::hint::black_box;
use std::time::Instant;

use fedgate::inbound::saml;

/// The allocator the `fedgate` binary uses, so the loop measures what runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), common::Error> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let paired = args.next().as_deref() == Some("--paired");
    let f = common::fixture()?;
    let saml_once = || saml::verify(black_box(&f.posted), &f.idp, &f.settings, f.now);
    saml_once()?;

    if !paired {
        let start = Instant::now();
        for _ in 0..n {
            saml_once()?;
        }
        let per = start.elapsed().as_secs_f64() / n as f64;
        println!(
            "{n} verifications, {:.1} µs each, {:.0}/s",
            per * 1e6,
            1.0 / per
        );
        return Ok(());
    }

    let floor = common::RsaFloor::new()?;
    const BLOCK: usize = 200;
    let mut saml_us = Vec::new();
    let mut floor_us = Vec::new();
    let mut ratios = Vec::new();
    for _ in 0..n.div_ceil(BLOCK) {
        let t = Instant::now();
        for _ in 0..BLOCK {
            saml_once()?;
        }
        let s = t.elapsed().as_secs_f64() * 1e6 / BLOCK as f64;
        let t = Instant::now();
        for _ in 0..BLOCK {
            black_box(floor.verify());
        }
        let f = t.elapsed().as_secs_f64() * 1e6 / BLOCK as f64;
        saml_us.push(s);
        floor_us.push(f);
        ratios.push(s / f);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (s, f, r) = (
        median(&mut saml_us),
        median(&mut floor_us),
        median(&mut ratios),
    );
    println!(
        "{} blocks of {BLOCK}, medians: saml::verify {s:.1} µs ({:.0}/s), RSA-2048 floor {f:.1} µs ({:.0}/s), ratio {r:.2}",
        saml_us.len(),
        1e6 / s,
        1e6 / f
    );
    println!(
        "at the issue's reference floor (41,000/s, 24.4 µs): {:.0} verifications/s",
        41_000.0 / r
    );
    Ok(())
}
