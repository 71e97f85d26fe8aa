//! Runs `saml::verify` on the 7 KB fixture N times: a driver for profilers
//! (`valgrind --tool=callgrind target/release/examples/verify_loop 300`).
//!
//! `verify_loop N --entra` loops on the Entra-shaped response instead.
//! `verify_loop N --paired` alternates blocks of both SAML responses with
//! blocks of bare RSA-2048 verifies (the floor of any verification) and
//! prints the times and their ratios. On a shared machine whose speed drifts from
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
    let mode = args.next();
    let main = common::fixture()?;
    let entra = common::entra_fixture()?;
    let once = |f: &common::Fixture| saml::verify(black_box(&f.posted), &f.idp, &f.settings, f.now);
    once(&main)?;
    once(&entra)?;

    if mode.as_deref() != Some("--paired") {
        let f = if mode.as_deref() == Some("--entra") {
            &entra
        } else {
            &main
        };
        let start = Instant::now();
        for _ in 0..n {
            once(f)?;
        }
        let per = start.elapsed().as_secs_f64() / n as f64;
        println!(
            "{n} verifications, {:.1} µs each, {:.0}/s",
            per * 1e6,
            1.0 / per
        );
        return Ok(());
    }

    // Blocks of the xmlsec1 fixture, the Entra-shaped response and the bare
    // RSA verify, one after the other, so that all three see the same
    // machine; each SAML block is divided by the floor block next to it.
    let floor = common::RsaFloor::new()?;
    const BLOCK: usize = 200;
    let block = |f: &dyn Fn()| {
        let t = Instant::now();
        for _ in 0..BLOCK {
            f();
        }
        t.elapsed().as_secs_f64() * 1e6 / BLOCK as f64
    };
    let (mut main_us, mut entra_us, mut floor_us) = (Vec::new(), Vec::new(), Vec::new());
    let (mut main_r, mut entra_r) = (Vec::new(), Vec::new());
    for _ in 0..n.div_ceil(BLOCK) {
        let m = block(&|| {
            let _ = black_box(once(&main));
        });
        let e = block(&|| {
            let _ = black_box(once(&entra));
        });
        let f = block(&|| {
            black_box(floor.verify());
        });
        main_us.push(m);
        entra_us.push(e);
        floor_us.push(f);
        main_r.push(m / f);
        entra_r.push(e / f);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let f = median(&mut floor_us);
    println!(
        "{} rounds of {BLOCK}, medians; RSA-2048 floor {f:.1} µs ({:.0}/s)",
        floor_us.len(),
        1e6 / f
    );
    for (name, us, r) in [
        (
            "xmlsec1 fixture, 7.0 KB, wrapped base64",
            &mut main_us,
            &mut main_r,
        ),
        (
            "Entra-shaped, 6.5 KB, one-line base64",
            &mut entra_us,
            &mut entra_r,
        ),
    ] {
        let (s, r) = (median(us), median(r));
        println!(
            "  {name}: {s:.1} µs ({:.0}/s), ratio {r:.2}; at the issue's floor (41,000/s): {:.0}/s",
            1e6 / s,
            41_000.0 / r
        );
    }
    Ok(())
}
