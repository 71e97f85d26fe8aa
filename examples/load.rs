//! The end-to-end load run of issue 15: starts the demo environment (mock
//! Entra tenant, fedgate, mock console) in-process on loopback, pre-signs N
//! distinct IdP-initiated responses on all cores, then posts each once to
//! fedgate's ACS with C concurrent keep-alive clients while `/healthz` is
//! polled every 10 ms.
//!
//! ```text
//! cargo run --release --example load -- --logins 10000 --concurrency 32
//! cargo run --release --example load -- --logins 10000 --rate 1500
//! cargo run --release --example load -- --logins 20000 --rate 1000 --attack
//! ```
//!
//! `--rate R` paces the logins at R a second (open loop: each login's
//! latency counts from when it was due, so a stalled server is not hidden
//! by the client waiting for it); without it the C clients post as fast as
//! they are answered. `--attack` runs the hostile shapes of issue 15
//! alongside, from other addresses (127.0.0.2, .3, .4) than the real users
//! (127.0.0.1): 10 quadratic-shape SAMLResponses a second (40,408 IDs,
//! 25,000 IDs, and a 90,000-entry PrefixList), `--slow-connections` (2,000) connections that
//! trickle one header byte every 5 s and reconnect when closed (a second
//! later if closed at once), and a login-state flood (`--flood-rate`, 1,000
//! login starts a second, half of them at unknown tenants).
//!
//! It also measures this machine's RSA-2048 signing rate (aws-lc-rs, all
//! cores, ~2 s) in the same run and prints logins/s divided by it: each
//! login costs fedgate one RSA verify (Entra's signature) and one RSA sign
//! (the Response it posts to the console), and the sign dominates. RSS is
//! this process's (fedgate, the mocks and the load clients), read from
//! `/proc/self/status` after the pre-signing, so it counts what the logins
//! add. The memory store's cap is raised to hold every login's session and
//! replay entry (`store.memory_max_entries`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use fedgate::demo::{self, Environment};
use fedgate::mock::entra::{self, MockLogin, MockUser};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "../tests/it/hostile_shapes.rs"]
mod shapes;

/// The allocator the `fedgate` binary uses, so the run measures what runs,
/// counting the bytes live on the heap: RSS also holds what the allocator
/// keeps after a free, the live bytes are what fedgate's state holds.
#[global_allocator]
static GLOBAL: cap::Cap<mimalloc::MiMalloc> = cap::Cap::new(mimalloc::MiMalloc, usize::MAX);

fn live_mb() -> f64 {
    GLOBAL.allocated() as f64 / 1048576.0
}

type Error = Box<dyn std::error::Error + Send + Sync>;

struct Args {
    logins: usize,
    concurrency: usize,
    /// Logins a second, or 0 for as fast as the clients are answered.
    rate: f64,
    attack: bool,
    slow_connections: usize,
    flood_rate: f64,
    /// Hostile SAMLResponses a second (0: none).
    hostile_rate: f64,
    /// Run this `fedgate` binary as its own process (`serve` with the
    /// demo's configuration) and load it instead of the in-process one, so
    /// its RSS and CPU are its own.
    binary: Option<String>,
}

fn main() -> Result<(), Error> {
    let args = parse_args()?;
    let (logins, concurrency) = (args.logins, args.concurrency);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // fedgate (and the mocks) on one runtime, the load clients on another,
    // so each thread's CPU time says whose work it was.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .thread_name("fedgate-io")
        .enable_all()
        .build()?;
    let clients = tokio::runtime::Builder::new_multi_thread()
        .thread_name("load-client")
        .enable_all()
        .build()?;
    // Room for every login's session and replay claim (each kind is capped
    // on its own), so the run measures speed, not the cap.
    let cap = (logins + 10_000).max(250_000);
    let overrides = [(
        "FEDGATE_STORE__MEMORY_MAX_ENTRIES".to_string(),
        cap.to_string(),
    )];
    let rss_idle = rss_kb();
    let env = rt.block_on(Environment::start_with_overrides("", &overrides))?;
    let rss_started = rss_kb();
    let child = match &args.binary {
        Some(path) => Some(rt.block_on(Child::spawn(path, &env, cap))?),
        None => None,
    };
    let base = child
        .as_ref()
        .map_or(env.fedgate_url.clone(), |c| c.url.clone());
    println!(
        "fedgate at {base}{}, {cores} cores, {logins} logins, concurrency {concurrency}, {}{}",
        child
            .as_ref()
            .map_or(" (in-process)".to_string(), |c| format!(
                " (process {} of {})",
                c.pid,
                args.binary.as_deref().unwrap_or_default()
            )),
        if args.rate > 0.0 {
            format!("paced at {:.0}/s", args.rate)
        } else {
            "as fast as answered".to_string()
        },
        if args.attack {
            format!(
                ", under attack ({} slow connections, {:.0} login starts/s, {:.0} hostile responses/s)",
                args.slow_connections, args.flood_rate, args.hostile_rate
            )
        } else {
            String::new()
        }
    );
    if let (Some(a), Some(b)) = (rss_idle, rss_started) {
        println!(
            "RSS at start {:.1} MB, with fedgate and the mocks started {:.1} MB",
            a as f64 / 1024.0,
            b as f64 / 1024.0
        );
    }
    if let Some(c) = &child {
        println!(
            "fedgate process idle: RSS {:.1} MB",
            c.status_kb("VmRSS:").unwrap_or(0) as f64 / 1024.0
        );
    }

    // Pre-sign N distinct responses on all cores (not part of the login timing).
    let t = Instant::now();
    let posted = presign(&env, logins, cores)?;
    let sign_s = t.elapsed().as_secs_f64();
    println!(
        "pre-signed {logins} responses in {sign_s:.2} s ({:.0}/s, mean form body {:.1} KB)",
        logins as f64 / sign_s,
        posted.iter().map(String::len).sum::<usize>() as f64 / logins.max(1) as f64 / 1024.0
    );

    let rsa_rate = rsa_sign_rate(cores, Duration::from_secs(2))?;
    println!("RSA-2048 PKCS#1 SHA-256 signing, {cores} threads: {rsa_rate:.0}/s");

    let hostile = if args.attack {
        Some(hostile_bodies(&posted[0])?)
    } else {
        None
    };
    let rss_before = rss_kb();
    let posted_mb = posted.iter().map(|p| p.capacity()).sum::<usize>() as f64 / 1048576.0;
    let live_before = live_mb() - posted_mb;
    let cpu_before = thread_cpu();
    let child_before = child
        .as_ref()
        .map(|c| (c.cpu_secs(), c.status_kb("VmRSS:").unwrap_or(0)));
    let proc_dir = child
        .as_ref()
        .map_or("/proc/self".to_string(), |c| format!("/proc/{}", c.pid));
    // `run` drops the pre-signed bodies when the last client is done.
    let report = clients.block_on(run(&base, &proc_dir, posted, &args, hostile))?;
    let cpu = thread_cpu().since(&cpu_before);
    let child_after = child.as_ref().map(|c| {
        (
            c.cpu_secs(),
            c.status_kb("VmRSS:").unwrap_or(0),
            c.status_kb("VmHWM:").unwrap_or(0),
        )
    });
    let rss_after = rss_kb();
    let live_after = live_mb();
    rt.block_on(env.stop());

    report.print(rsa_rate);
    match (child_before, child_after) {
        (Some((cpu0, rss0)), Some((cpu1, rss1, hwm))) => {
            let n = logins.max(1) as f64;
            let per_login = (cpu1 - cpu0) / n;
            println!(
                "fedgate process CPU during the logins {:.2} s: {:.0} us per login (one RSA-2048 sign: {:.0} us): \
                 {:.0} logins/s on {cores} cores without the load clients = {:.3} of the signing rate",
                cpu1 - cpu0,
                per_login * 1e6,
                cores as f64 / rsa_rate * 1e6,
                cores as f64 / per_login,
                cores as f64 / per_login / rsa_rate
            );
            println!(
                "fedgate process RSS before the logins {:.1} MB, after {:.1} MB (peak {:.1} MB): {:+.2} KB per login",
                rss0 as f64 / 1024.0,
                rss1 as f64 / 1024.0,
                hwm as f64 / 1024.0,
                (rss1 as f64 - rss0 as f64) / n
            );
        }
        _ => cpu.print(logins, report.elapsed, cores, rsa_rate),
    }
    match (rss_before, rss_after) {
        (Some(b), Some(a)) => println!(
            "RSS before the logins {:.1} MB, after {:.1} MB (peak {:.1} MB): {:+.1} MB, {:+.2} KB per login",
            b as f64 / 1024.0,
            a as f64 / 1024.0,
            report.peak_rss_kb.max(a) as f64 / 1024.0,
            (a as f64 - b as f64) / 1024.0,
            (a as f64 - b as f64) / logins.max(1) as f64
        ),
        _ => println!("RSS: /proc/self/status unreadable"),
    }
    println!(
        "heap live (without the pre-signed bodies) before the logins {live_before:.1} MB, after \
         {live_after:.1} MB: {:+.1} MB, {:+.0} bytes per login",
        live_after - live_before,
        (live_after - live_before) * 1048576.0 / logins.max(1) as f64
    );
    if report.ok != logins {
        return Err(format!("{} of {logins} logins failed", logins - report.ok).into());
    }
    Ok(())
}

fn parse_args() -> Result<Args, Error> {
    let mut a = Args {
        logins: 10_000,
        concurrency: 32,
        rate: 0.0,
        attack: false,
        slow_connections: 2_000,
        flood_rate: 1_000.0,
        hostile_rate: 10.0,
        binary: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> Result<usize, Error> {
            let v = args.next().ok_or(format!("{name} needs a value"))?;
            v.parse()
                .map_err(|_| format!("{name}: not a number: {v}").into())
        };
        match arg.as_str() {
            "--logins" => a.logins = value("--logins")?,
            "--concurrency" => a.concurrency = value("--concurrency")?,
            "--rate" => a.rate = value("--rate")? as f64,
            "--slow-connections" => a.slow_connections = value("--slow-connections")?,
            "--flood-rate" => a.flood_rate = value("--flood-rate")? as f64,
            "--hostile-rate" => a.hostile_rate = value("--hostile-rate")? as f64,
            "--attack" => a.attack = true,
            "--binary" => a.binary = Some(args.next().ok_or("--binary needs a path")?),
            other => {
                return Err(format!(
                    "unknown argument {other} (--logins N, --concurrency C, --rate R, --attack, \
                     --slow-connections S, --flood-rate F, --hostile-rate H)"
                )
                .into())
            }
        }
    }
    if a.logins == 0 || a.concurrency == 0 {
        return Err("--logins and --concurrency must be at least 1".into());
    }
    Ok(a)
}

/// The form a browser posts to the ACS, encoded once before the run (the
/// encoding is the browser's work, not fedgate's).
fn form_body(saml_response_b64: &str, relay_state: &str) -> String {
    format!(
        "SAMLResponse={}&RelayState={}",
        fedgate::util::urlencode(saml_response_b64),
        fedgate::util::urlencode(relay_state)
    )
}

/// N distinct users of contoso.example with alice's groups (so the demo
/// rule grants a role), each with its own assertion id, signed as the mock
/// tenant signs, base64 on one line as Entra posts it, as form bodies.
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
                        let mut form = form_body(
                            &base64::engine::general_purpose::STANDARD.encode(xml),
                            demo::CONSOLE_ID,
                        );
                        form.shrink_to_fit();
                        out.push(form);
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
    peak_rss_kb: u64,
    peak_fds: u64,
    attack: Option<AttackReport>,
}

/// What the attackers saw: answers by status, per kind.
#[derive(Default)]
struct AttackReport {
    hostile: BTreeMap<String, usize>,
    hostile_latency: Vec<Duration>,
    flood: BTreeMap<String, usize>,
    slow_opened: u64,
    slow_closed_by_server: u64,
    slow_connect_failed: u64,
}

/// The attack's request bodies: the issue's 512 KiB response with 40,408
/// distinct IDs, the same shape with 25,000 (under the SAML body limit), and
/// a real signed response carrying a 90,000-entry PrefixList; each base64'd
/// as a SAMLResponse.
fn hostile_bodies(signed_form: &str) -> Result<Vec<String>, Error> {
    let b64 = base64::engine::general_purpose::STANDARD;
    // Undo form_body: base64 only needs %2B, %2F and %3D.
    let field = signed_form
        .strip_prefix("SAMLResponse=")
        .and_then(|f| f.split('&').next())
        .ok_or("not a form body")?;
    let field = field
        .replace("%2B", "+")
        .replace("%2F", "/")
        .replace("%3D", "=");
    let signed = String::from_utf8(b64.decode(field)?)?;
    Ok(vec![
        // The issue's 512 KiB document: over the SAML body limit, 413.
        form_body(&b64.encode(shapes::ids_response(40_408)), "x"),
        // The most IDs that fit under it: parsed, refused by the ID limit.
        form_body(&b64.encode(shapes::ids_response(25_000)), "x"),
        form_body(
            &b64.encode(shapes::prefixlist_response(&signed, 26, 90_000)),
            "x",
        ),
    ])
}

async fn run(
    base: &str,
    proc_dir: &str,
    posted: Vec<String>,
    args: &Args,
    hostile: Option<Vec<String>>,
) -> Result<Report, Error> {
    let n = posted.len();
    let posted = Arc::new(posted);
    let next = Arc::new(AtomicUsize::new(0));
    let acs = format!("{base}/saml/contoso/acs");
    let stop = Arc::new(AtomicBool::new(false));

    // RSS and open file descriptors of fedgate's process every 100 ms:
    // their peaks.
    let sampler = {
        let (stop, dir) = (stop.clone(), proc_dir.to_string());
        tokio::spawn(async move {
            let (mut rss, mut fds) = (0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                rss = rss.max(proc_status_kb(&dir, "VmRSS:").unwrap_or(0));
                fds = fds.max(count_fds(&dir));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            (rss, fds)
        })
    };

    // /healthz every 10 ms from a thread of its own with blocking sockets
    // (a load balancer's probe: not delayed by the load clients' runtime),
    // on one keep-alive connection, reconnecting if it drops.
    let health = {
        let stop = stop.clone();
        let addr = base.trim_start_matches("http://").to_string();
        std::thread::Builder::new()
            .name("healthz-probe".into())
            .spawn(move || probe_healthz(&addr, &stop))?
    };

    let attackers = hostile.map(|bodies| attack::start(base, args, bodies, stop.clone()));
    if attackers.is_some() {
        // Let the slow connections open and the flood reach its limit.
        let before = live_mb();
        tokio::time::sleep(Duration::from_secs(3)).await;
        println!(
            "attack under way: heap live {:+.1} MB with the slow connections open ({} open fds)",
            live_mb() - before,
            count_fds(proc_dir)
        );
    }

    let start = Instant::now();
    let rate = args.rate;
    let mut workers = Vec::with_capacity(args.concurrency);
    for _ in 0..args.concurrency {
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
                let Some(form) = posted.get(i) else { break };
                // Paced: login i is due at i/rate, and its latency counts
                // from then, however late this client gets to it.
                let t = if rate > 0.0 {
                    let due = start + Duration::from_secs_f64(i as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                    due
                } else {
                    Instant::now()
                };
                let post = client
                    .post(&acs)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form.clone());
                let outcome = match post.send().await {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        match resp.text().await {
                            Ok(body)
                                if status == 200 && body.contains("document.forms[0].submit()") =>
                            {
                                None
                            }
                            Ok(_) if status == 200 => Some("200 without the auto-post form".into()),
                            Ok(body) => Some(format!(
                                "status {status} {}",
                                error_code(&body).unwrap_or_default()
                            )),
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
    let (healthz, healthz_failed) = health.join().map_err(|_| "the healthz probe panicked")?;
    let (peak_rss_kb, peak_fds) = sampler.await?;
    let attack = match attackers {
        Some(a) => Some(a.finish().await?),
        None => None,
    };

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
        peak_rss_kb,
        peak_fds,
        attack,
    })
}

/// GET /healthz every 10 ms until `stop`: the latencies of the answers
/// that were 200, and how many failed.
fn probe_healthz(addr: &str, stop: &AtomicBool) -> (Vec<Duration>, usize) {
    use std::io::{Read, Write};
    let (mut lat, mut failed) = (Vec::new(), 0usize);
    let mut conn: Option<std::net::TcpStream> = None;
    let mut buf = [0u8; 1024];
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        next += Duration::from_millis(10);
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let t = Instant::now();
        let c = match conn.take() {
            Some(c) => c,
            None => match std::net::TcpStream::connect(addr) {
                Ok(c) => {
                    let _ = c.set_nodelay(true);
                    let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
                    c
                }
                Err(_) => {
                    failed += 1;
                    continue;
                }
            },
        };
        let mut c = c;
        let ok = c
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: fedgate\r\n\r\n")
            .is_ok()
            && {
                // The answer is small: read until its body ("ok\n") arrived.
                let mut got = Vec::new();
                loop {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => break false,
                        Ok(n) => {
                            got.extend_from_slice(&buf[..n]);
                            if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                                let head =
                                    String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
                                let len = head
                                    .lines()
                                    .find_map(|l| l.strip_prefix("content-length:"))
                                    .and_then(|v| v.trim().parse::<usize>().ok())
                                    .unwrap_or(0);
                                if got.len() >= end + 4 + len {
                                    break head.starts_with("http/1.1 200");
                                }
                            }
                        }
                    }
                }
            };
        if ok {
            lat.push(t.elapsed());
            conn = Some(c);
        } else {
            failed += 1;
        }
    }
    (lat, failed)
}

/// The stable code on one of fedgate's error pages (`<code>saml.…</code>`).
fn error_code(body: &str) -> Option<String> {
    let rest = &body[body.find("<code>")? + "<code>".len()..];
    Some(rest[..rest.find('<')?].to_string())
}

mod attack {
    //! The shapes of issue 15 running beside the real logins.
    use super::*;

    pub struct Attackers {
        hostile: tokio::task::JoinHandle<(BTreeMap<String, usize>, Vec<Duration>)>,
        flood: tokio::task::JoinHandle<BTreeMap<String, usize>>,
        slow: Vec<tokio::task::JoinHandle<()>>,
        opened: Arc<AtomicU64>,
        closed: Arc<AtomicU64>,
        failed: Arc<AtomicU64>,
    }

    /// The attackers' addresses: other loopback addresses than the real
    /// users' (127.0.0.1), one a kind (the slow connections would otherwise
    /// take all of their host's `max_connections_per_client`).
    const SLOW: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));
    const HOSTILE: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 3));
    const FLOOD: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 4));

    pub fn start(base: &str, args: &Args, bodies: Vec<String>, stop: Arc<AtomicBool>) -> Attackers {
        let base = base.to_string();
        let addr = base.trim_start_matches("http://").to_string();

        // `hostile_rate` hostile responses a second (10 by default),
        // alternating the shapes, each on a new connection as a stranger
        // would send them.
        let hostile = {
            let (stop, url) = (stop.clone(), format!("{base}/saml/contoso/acs"));
            let rate = args.hostile_rate;
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .local_address(HOSTILE)
                    .build()
                    .unwrap_or_default();
                let period = Duration::from_secs_f64(1.0 / rate.max(0.01));
                let mut tick = tokio::time::interval(period);
                let mut sent = Vec::new();
                let mut i = 0usize;
                while rate > 0.0 && !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let body = bodies[i % bodies.len()].clone();
                    i += 1;
                    let (client, url) = (client.clone(), url.clone());
                    sent.push(tokio::spawn(async move {
                        let t = Instant::now();
                        let r = client
                            .post(&url)
                            .header("content-type", "application/x-www-form-urlencoded")
                            .body(body)
                            .send()
                            .await;
                        let what = match r {
                            Ok(r) => {
                                let status = r.status().as_u16();
                                let body = r.text().await.unwrap_or_default();
                                format!("{status} {}", error_code(&body).unwrap_or_default())
                            }
                            Err(_) => "transport error".to_string(),
                        };
                        (what, t.elapsed())
                    }));
                }
                let (mut by, mut lat) = (BTreeMap::new(), Vec::new());
                for s in sent {
                    if let Ok((what, l)) = s.await {
                        *by.entry(what).or_insert(0) += 1;
                        lat.push(l);
                    }
                }
                lat.sort();
                (by, lat)
            })
        };

        // The login-state flood: login starts from one client at
        // `flood_rate` a second, every other one at an unknown tenant with a
        // fresh name (a metric label and an audit line, if fedgate let it).
        let flood = {
            let (stop, base, rate) = (stop.clone(), base.clone(), args.flood_rate);
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .local_address(FLOOD)
                    .build()
                    .unwrap_or_default();
                let mut by = BTreeMap::new();
                if rate <= 0.0 {
                    return by;
                }
                let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                let mut inflight = tokio::task::JoinSet::new();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    i += 1;
                    let url = if i % 2 == 0 {
                        format!("{base}/saml/contoso/login")
                    } else {
                        format!("{base}/saml/flood-{i}-{}/login", "x".repeat(200))
                    };
                    let client = client.clone();
                    inflight.spawn(async move {
                        match client.get(&url).send().await {
                            Ok(r) => r.status().as_u16().to_string(),
                            Err(_) => "transport error".to_string(),
                        }
                    });
                    while let Some(Ok(s)) = inflight.try_join_next() {
                        *by.entry(s).or_insert(0) += 1;
                    }
                }
                while let Some(Ok(s)) = inflight.join_next().await {
                    *by.entry(s).or_insert(0) += 1;
                }
                by
            })
        };

        // Slow connections: a request line and one header byte every 5 s,
        // reconnecting when fedgate closes them.
        let (opened, closed, failed) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicU64::new(0)),
        );
        let slow = (0..args.slow_connections)
            .map(|k| {
                let (stop, addr) = (stop.clone(), addr.clone());
                let (opened, closed, failed) = (opened.clone(), closed.clone(), failed.clone());
                tokio::spawn(async move {
                    // Spread the first connects over a second.
                    tokio::time::sleep(Duration::from_millis((k % 1000) as u64)).await;
                    while !stop.load(Ordering::Relaxed) {
                        let Ok(mut conn) = connect_from(SLOW, &addr).await else {
                            failed.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        };
                        opened.fetch_add(1, Ordering::Relaxed);
                        let since = Instant::now();
                        let head = b"POST /saml/contoso/acs HTTP/1.1\r\nHost: fedgate\r\nX";
                        if conn.write_all(head).await.is_err() {
                            closed.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        let mut buf = [0u8; 512];
                        loop {
                            if stop.load(Ordering::Relaxed) {
                                return;
                            }
                            tokio::select! {
                                _ = conn.read(&mut buf) => {
                                    // An answer (408), EOF or a reset: fedgate hung up.
                                    closed.fetch_add(1, Ordering::Relaxed);
                                    // Closed at once (a connection cap): try
                                    // again a second later, not in a spin.
                                    if since.elapsed() < Duration::from_secs(1) {
                                        tokio::time::sleep(Duration::from_secs(1)).await;
                                    }
                                    break;
                                }
                                _ = tokio::time::sleep(Duration::from_secs(5)) => {
                                    if conn.write_all(b"x").await.is_err() {
                                        closed.fetch_add(1, Ordering::Relaxed);
                                        break;
                                    }
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        Attackers {
            hostile,
            flood,
            slow,
            opened,
            closed,
            failed,
        }
    }

    async fn connect_from(
        local: std::net::IpAddr,
        addr: &str,
    ) -> std::io::Result<tokio::net::TcpStream> {
        let remote: std::net::SocketAddr = addr
            .parse()
            .map_err(|_| std::io::Error::other("not an address"))?;
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(std::net::SocketAddr::new(local, 0))?;
        socket.connect(remote).await
    }

    impl Attackers {
        pub async fn finish(self) -> Result<AttackReport, Error> {
            let (hostile, hostile_latency) = self.hostile.await?;
            let flood = self.flood.await?;
            for s in self.slow {
                s.abort();
            }
            Ok(AttackReport {
                hostile,
                hostile_latency,
                flood,
                slow_opened: self.opened.load(Ordering::Relaxed),
                slow_closed_by_server: self.closed.load(Ordering::Relaxed),
                slow_connect_failed: self.failed.load(Ordering::Relaxed),
            })
        }
    }
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
        println!("peak open file descriptors {}", self.peak_fds);
        if let Some(a) = &self.attack {
            let hl = &a.hostile_latency;
            println!(
                "attack: hostile responses {:?}, answered in ms p50 {:.2}, p99 {:.2}, max {:.2}",
                a.hostile,
                ms(hl, 0.5),
                ms(hl, 0.99),
                ms(hl, 1.0)
            );
            println!("attack: login-state flood answers {:?}", a.flood);
            println!(
                "attack: slow connections opened {}, closed by fedgate {}, connects refused {}",
                a.slow_opened, a.slow_closed_by_server, a.slow_connect_failed
            );
        }
        if self.errors.is_empty() {
            println!("errors: none");
        } else {
            for (what, count) in &self.errors {
                println!("errors: {what}: {count}");
            }
        }
    }
}

/// CPU seconds of this process's threads, by whose they are: fedgate's
/// (its I/O runtime `fedgate-io` and its CPU pool `fedgate-cpu-*`) or the
/// load clients' (`load-client`).
struct ThreadCpu {
    fedgate_io: f64,
    fedgate_pool: f64,
    clients: f64,
    other: f64,
}

/// Every thread's user + system time from `/proc/self/task/*/stat`.
fn thread_cpu() -> ThreadCpu {
    let mut t = ThreadCpu {
        fedgate_io: 0.0,
        fedgate_pool: 0.0,
        clients: 0.0,
        other: 0.0,
    };
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return t;
    };
    for task in tasks.flatten() {
        let Some((comm, secs)) = proc_stat_cpu(&task.path().join("stat")) else {
            continue;
        };
        let comm = comm.as_str();
        let slot = if comm.starts_with("fedgate-io") {
            &mut t.fedgate_io
        } else if comm.starts_with("fedgate-cpu") {
            &mut t.fedgate_pool
        } else if comm.starts_with("load-client") {
            &mut t.clients
        } else {
            &mut t.other
        };
        *slot += secs;
    }
    t
}

/// The name and user + system CPU seconds in a `/proc/…/stat` file.
fn proc_stat_cpu(path: &std::path::Path) -> Option<(String, f64)> {
    let stat = std::fs::read_to_string(path).ok()?;
    // "pid (comm) state ...": comm may hold spaces, so split at the last ')'.
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    // Fields after ")": state is 0, utime 11, stime 12, in USER_HZ (100).
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<f64>().ok())
        .sum();
    Some((stat[open + 1..close].to_string(), ticks / 100.0))
}

impl ThreadCpu {
    fn since(&self, before: &ThreadCpu) -> ThreadCpu {
        ThreadCpu {
            fedgate_io: self.fedgate_io - before.fedgate_io,
            fedgate_pool: self.fedgate_pool - before.fedgate_pool,
            clients: self.clients - before.clients,
            other: self.other - before.other,
        }
    }

    fn print(&self, logins: usize, elapsed: Duration, cores: usize, rsa_rate: f64) {
        let n = logins.max(1) as f64;
        let fedgate = self.fedgate_io + self.fedgate_pool;
        let per_login_us = fedgate / n * 1e6;
        let capacity = cores as f64 / (fedgate / n);
        println!(
            "CPU during the logins ({:.2} s wall, {cores} cores): fedgate {fedgate:.2} s \
             (I/O threads {:.2}, CPU pool {:.2}), load clients {:.2} s, other {:.2} s",
            elapsed.as_secs_f64(),
            self.fedgate_io,
            self.fedgate_pool,
            self.clients,
            self.other
        );
        println!(
            "fedgate CPU per login {per_login_us:.0} us (one RSA-2048 sign: {:.0} us): \
             {capacity:.0} logins/s on {cores} cores without the load clients = {:.3} of the signing rate",
            cores as f64 / rsa_rate * 1e6,
            capacity / rsa_rate
        );
    }
}

/// Open file descriptors of the process at `dir` (`/proc/self`, `/proc/PID`).
fn count_fds(dir: &str) -> u64 {
    std::fs::read_dir(format!("{dir}/fd")).map_or(0, |d| d.count() as u64)
}

/// A `kB` field (`VmRSS:`, `VmHWM:`) of `{dir}/status`.
fn proc_status_kb(dir: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// VmRSS of this process, in KB.
fn rss_kb() -> Option<u64> {
    proc_status_kb("/proc/self", "VmRSS:")
}

/// A `fedgate serve` process with the demo's configuration, on a port of
/// its own (the configuration's public URL stays the in-process fedgate's,
/// so the pre-signed responses are addressed to it, as a load balancer's
/// backends share one public URL). Killed when dropped.
struct Child {
    process: std::process::Child,
    pid: u32,
    url: String,
}

impl Child {
    async fn spawn(binary: &str, env: &Environment, cap: usize) -> Result<Child, Error> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let process = std::process::Command::new(binary)
            .args(["serve", "--config"])
            .arg(env.dir.join("fedgate.toml"))
            .env("FEDGATE_SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env("FEDGATE_STORE__MEMORY_MAX_ENTRIES", cap.to_string())
            .env("FEDGATE_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("{binary}: {e}"))?;
        let child = Child {
            pid: process.id(),
            process,
            url: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        for _ in 0..100 {
            if let Ok(r) = client.get(format!("{}/healthz", child.url)).send().await {
                if r.status().is_success() {
                    return Ok(child);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!("{binary} serve did not answer /healthz within 10 s").into())
    }

    fn status_kb(&self, field: &str) -> Option<u64> {
        proc_status_kb(&format!("/proc/{}", self.pid), field)
    }

    /// User + system CPU seconds of the whole process.
    fn cpu_secs(&self) -> f64 {
        let path = std::path::PathBuf::from(format!("/proc/{}/stat", self.pid));
        proc_stat_cpu(&path).map_or(0.0, |(_, secs)| secs)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}
