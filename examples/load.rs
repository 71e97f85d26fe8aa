//! A minimal end-to-end load run: starts the demo environment (mock Entra
//! tenant, fedgate, mock console) in-process on loopback, pre-signs N
//! distinct IdP-initiated responses on all cores, then posts each once to
//! fedgate's ACS with C concurrent keep-alive clients while `/healthz` is
//! polled every 10 ms.
//!
//! `cargo run --release --example load -- --logins 10000 --concurrency 32`
//!
//! It also measures this machine's RSA-2048 signing rate (aws-lc-rs, all
//! cores, ~2 s) in the same run and prints logins/s divided by it: each
//! login costs fedgate one RSA verify (Entra's signature) and one RSA sign
//! (the Response it posts to the console), and the sign dominates.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use fedgate::demo::{self, Environment};
use fedgate::mock::entra::{self, MockLogin, MockUser};

/// The allocator the `fedgate` binary uses, so the run measures what runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    let (logins, concurrency) = parse_args()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let env = rt.block_on(Environment::start_with_overrides("", &[]))?;
    println!(
        "fedgate at {}, {cores} cores, {logins} logins, concurrency {concurrency}",
        env.fedgate_url
    );

    // Pre-sign N distinct responses on all cores (not part of the login timing).
    let t = Instant::now();
    let posted = presign(&env, logins, cores)?;
    let sign_s = t.elapsed().as_secs_f64();
    println!(
        "pre-signed {logins} responses in {sign_s:.2} s ({:.0}/s, mean {:.1} KB base64)",
        logins as f64 / sign_s,
        posted.iter().map(String::len).sum::<usize>() as f64 / logins.max(1) as f64 / 1024.0
    );

    let rsa_rate = rsa_sign_rate(cores, Duration::from_secs(2))?;
    println!("RSA-2048 PKCS#1 SHA-256 signing, {cores} threads: {rsa_rate:.0}/s");

    let rss_before = rss_kb();
    let report = rt.block_on(run(&env, posted, concurrency))?;
    let rss_after = rss_kb();
    rt.block_on(env.stop());

    report.print(rsa_rate);
    match (rss_before, rss_after) {
        (Some(b), Some(a)) => println!(
            "RSS before {:.1} MB, after {:.1} MB, {:+.2} KB per login",
            b as f64 / 1024.0,
            a as f64 / 1024.0,
            (a as f64 - b as f64) / logins.max(1) as f64
        ),
        _ => println!("RSS: /proc/self/status unreadable"),
    }
    if report.ok != logins {
        return Err(format!("{} of {logins} logins failed", logins - report.ok).into());
    }
    Ok(())
}

fn parse_args() -> Result<(usize, usize), Error> {
    let (mut logins, mut concurrency) = (10_000usize, 32usize);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| -> Result<usize, Error> {
            let v = args.next().ok_or(format!("{name} needs a value"))?;
            let n: usize = v
                .parse()
                .map_err(|_| format!("{name}: not a number: {v}"))?;
            if n == 0 {
                return Err(format!("{name} must be at least 1").into());
            }
            Ok(n)
        };
        match a.as_str() {
            "--logins" => logins = value("--logins")?,
            "--concurrency" => concurrency = value("--concurrency")?,
            other => {
                return Err(
                    format!("unknown argument {other} (--logins N, --concurrency C)").into(),
                )
            }
        }
    }
    Ok((logins, concurrency))
}

/// N distinct users of contoso.example with alice's groups (so the demo
/// rule grants a role), each with its own assertion id, signed as the mock
/// tenant signs, base64 on one line as Entra posts it.
fn presign(env: &Environment, n: usize, threads: usize) -> Result<Vec<String>, Error> {
    let tenant = env.app.tenants.get("contoso").ok_or("no tenant contoso")?;
    let (sp, acs) = (
        tenant.settings.sp_entity_id.clone(),
        tenant.settings.acs_url.clone(),
    );
    let now = time::OffsetDateTime::now_utc();
    let run_id = fedgate::util::random_id().ok_or("rng")?;
    let base = demo::alice();
    let key = &env.entra_key;
    let per = n.div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (sp, acs, base, run_id) = (&sp, &acs, &base, &run_id);
                s.spawn(move || -> Result<Vec<String>, String> {
                    let mut out = Vec::new();
                    for i in (t * per)..((t + 1) * per).min(n) {
                        let user = MockUser {
                            object_id: format!("3f2504e0-4f89-41d3-9a0c-{i:012}"),
                            upn: format!("loaduser{i}@contoso.example"),
                            display_name: format!("Load user {i}"),
                            ..base.clone()
                        };
                        let login = MockLogin {
                            tenant_id: demo::TENANT_ID.into(),
                            sp_entity_id: sp.clone(),
                            acs_url: acs.clone(),
                            issue_instant: now,
                            in_response_to: None,
                            id_seed: format!("{run_id}{i:08}"),
                        };
                        let xml = entra::signed_response(&user, &login, key)
                            .map_err(|e| e.to_string())?;
                        out.push(base64::engine::general_purpose::STANDARD.encode(xml));
                    }
                    Ok(out)
                })
            })
            .collect();
        let mut all = Vec::with_capacity(n);
        for h in handles {
            all.extend(h.join().map_err(|_| "a signing thread panicked")??);
        }
        Ok(all)
    })
}

/// RSA-2048 PKCS#1 v1.5 SHA-256 signatures per second on `threads` threads
/// with a freshly generated key, over about `dur`.
fn rsa_sign_rate(threads: usize, dur: Duration) -> Result<f64, Error> {
    use aws_lc_rs::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
    let key = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
        .map_err(|_| "RSA key generation failed")?;
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let msg = b"x".repeat(600);
    let start = Instant::now();
    let total: Result<usize, Error> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (key, rng, msg) = (&key, &rng, &msg);
                s.spawn(move || -> Result<usize, String> {
                    let mut sig = vec![0u8; key.public_modulus_len()];
                    let mut count = 0usize;
                    while start.elapsed() < dur {
                        key.sign(&RSA_PKCS1_SHA256, rng, msg, &mut sig)
                            .map_err(|_| "RSA sign failed")?;
                        count += 1;
                    }
                    Ok(count)
                })
            })
            .collect();
        let mut total = 0;
        for h in handles {
            total += h.join().map_err(|_| "an RSA thread panicked")??;
        }
        Ok(total)
    });
    Ok(total? as f64 / start.elapsed().as_secs_f64())
}

struct Report {
    logins: usize,
    ok: usize,
    elapsed: Duration,
    first_half_rate: f64,
    second_half_rate: f64,
    latencies: Vec<Duration>,
    healthz: Vec<Duration>,
    healthz_failed: usize,
    errors: BTreeMap<String, usize>,
}

async fn run(env: &Environment, posted: Vec<String>, concurrency: usize) -> Result<Report, Error> {
    let n = posted.len();
    let posted = Arc::new(posted);
    let next = Arc::new(AtomicUsize::new(0));
    let acs = format!("{}/saml/contoso/acs", env.fedgate_url);

    // /healthz every 10 ms on its own client, for as long as the run lasts;
    // each poll is its own task, so a slow answer does not delay the next.
    let stop = Arc::new(AtomicBool::new(false));
    let health = {
        let (stop, url) = (stop.clone(), format!("{}/healthz", env.fedgate_url));
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut polls = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                let (client, url) = (client.clone(), url.clone());
                polls.push(tokio::spawn(async move {
                    let t = Instant::now();
                    match client.get(&url).send().await {
                        Ok(r) if r.status().is_success() => {
                            r.bytes().await.ok().map(|_| t.elapsed())
                        }
                        _ => None,
                    }
                }));
            }
            let (mut lat, mut failed) = (Vec::new(), 0usize);
            for p in polls {
                match p.await {
                    Ok(Some(l)) => lat.push(l),
                    _ => failed += 1,
                }
            }
            (lat, failed)
        })
    };

    let start = Instant::now();
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (posted, next, acs) = (posted.clone(), next.clone(), acs.clone());
        workers.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .map_err(|e| e.to_string())?;
            // (latency, completion offset from start, outcome)
            let mut done: Vec<(Duration, Duration, Option<String>)> = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(b64) = posted.get(i) else { break };
                let t = Instant::now();
                let form = [
                    ("SAMLResponse", b64.as_str()),
                    ("RelayState", demo::CONSOLE_ID),
                ];
                let outcome = match client.post(&acs).form(&form).send().await {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        match resp.text().await {
                            Ok(body)
                                if status == 200 && body.contains("document.forms[0].submit()") =>
                            {
                                None
                            }
                            Ok(_) if status == 200 => Some("200 without the auto-post form".into()),
                            Ok(_) => Some(format!("status {status}")),
                            Err(e) => Some(format!("body: {e}")),
                        }
                    }
                    Err(e) => Some(format!(
                        "transport: {}",
                        if e.is_connect() { "connect" } else { "other" }
                    )),
                };
                done.push((t.elapsed(), start.elapsed(), outcome));
            }
            Ok::<_, String>(done)
        }));
    }
    let mut all = Vec::with_capacity(n);
    for w in workers {
        all.extend(w.await??);
    }
    let elapsed = start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (healthz, healthz_failed) = health.await?;

    let mut errors = BTreeMap::new();
    let mut ok = 0;
    for (_, _, outcome) in &all {
        match outcome {
            None => ok += 1,
            Some(e) => *errors.entry(e.clone()).or_insert(0) += 1,
        }
    }
    let mut finished: Vec<Duration> = all.iter().map(|(_, f, _)| *f).collect();
    finished.sort();
    let half = n / 2;
    let (first_half_rate, second_half_rate) = match finished.get(half.saturating_sub(1)) {
        Some(mid) if half > 0 => (
            half as f64 / mid.as_secs_f64(),
            (n - half) as f64 / (elapsed - *mid).as_secs_f64(),
        ),
        _ => (0.0, 0.0),
    };
    let mut latencies: Vec<Duration> = all.iter().map(|(l, _, _)| *l).collect();
    latencies.sort();
    let mut healthz = healthz;
    healthz.sort();
    Ok(Report {
        logins: n,
        ok,
        elapsed,
        first_half_rate,
        second_half_rate,
        latencies,
        healthz,
        healthz_failed,
        errors,
    })
}

/// The q-quantile of a sorted list, in milliseconds.
fn ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e3
}

impl Report {
    fn print(&self, rsa_rate: f64) {
        let rate = self.logins as f64 / self.elapsed.as_secs_f64();
        println!(
            "logins {} ({} ok) in {:.2} s: {rate:.0} logins/s (first half {:.0}/s, second half {:.0}/s)",
            self.logins,
            self.ok,
            self.elapsed.as_secs_f64(),
            self.first_half_rate,
            self.second_half_rate
        );
        println!(
            "logins/s / RSA-2048 signs/s = {:.3} ({rate:.0} / {rsa_rate:.0})",
            rate / rsa_rate
        );
        let l = &self.latencies;
        println!(
            "login latency ms: p50 {:.2}, p90 {:.2}, p99 {:.2}, max {:.2}",
            ms(l, 0.5),
            ms(l, 0.9),
            ms(l, 0.99),
            ms(l, 1.0)
        );
        let h = &self.healthz;
        println!(
            "healthz ({} polls, {} failed) ms: p50 {:.2}, p99 {:.2}, max {:.2}",
            h.len(),
            self.healthz_failed,
            ms(h, 0.5),
            ms(h, 0.99),
            ms(h, 1.0)
        );
        if self.errors.is_empty() {
            println!("errors: none");
        } else {
            for (what, count) in &self.errors {
                println!("errors: {what}: {count}");
            }
        }
    }
}

/// VmRSS of this process, in KB.
fn rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
