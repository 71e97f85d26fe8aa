//! The command line: offline tools for admins and scripts.
//!
//! Exit codes: 0 accepted (the Identity as one JSON object on stdout);
//! 1 rejected (`{"error": "<code>", "message": "…"}` on stdout);
//! 2 usage or setup errors (bad flags, unreadable files, unusable trust
//! material), with the same JSON shape where there is a code.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::identity::ErrorCode;
use crate::inbound::{bearer, saml};
use crate::trust::jwks::Jwks;
use crate::trust::metadata::IdpMetadata;

#[derive(Parser, Debug)]
#[command(
    name = "fedgate",
    version,
    about = "Identity bridge: verifies Entra ID SAML and OIDC logins and forwards them to backup consoles"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the gateway.
    Serve {
        /// The configuration file (keys can be overridden by FEDGATE_* variables).
        #[arg(long, env = "FEDGATE_CONFIG")]
        config: PathBuf,
    },
    /// Everything on loopback: a mock Entra tenant, fedgate and a mock console, with scripted logins.
    Demo {
        /// Leave everything running afterwards, to click through in a browser.
        #[arg(long, conflicts_with = "store")]
        keep: bool,
        /// `redis` or `redis=URL`: two fedgate instances sharing one Redis
        /// (a local redis-server on a free port when no URL is given), and a
        /// response replayed from one to the other. Default: `memory`.
        #[arg(long, value_name = "memory|redis[=URL]")]
        store: Option<String>,
    },
    /// The demo's mock peers as long-running services (docker-compose): test-only keys.
    #[command(subcommand)]
    Mock(MockCmd),
    /// What a user would be granted on a console, and why.
    Explain(ExplainArgs),
    /// Verify or inspect SAML responses offline.
    #[command(subcommand)]
    Saml(SamlCmd),
    /// Verify Entra access and ID tokens offline.
    #[command(subcommand)]
    Jwt(JwtCmd),
    /// Inspect IdP federation metadata.
    #[command(subcommand)]
    Metadata(MetadataCmd),
    /// fedgate's own signing keys (a `signing.key_dir`): rollover without a restart.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Rehearse a certificate rotation.
    #[command(subcommand)]
    Drill(DrillCmd),
    /// Lint a metadata document, reply URL or identifier.
    #[command(subcommand)]
    Lint(LintCmd),
    /// Check a configuration: expiring credentials, unreachable metadata, consoles nobody reaches.
    Check {
        #[arg(long, env = "FEDGATE_CONFIG")]
        config: PathBuf,
        /// Do not fetch metadata URLs or discovery documents.
        #[arg(long)]
        offline: bool,
        /// Evaluate expiries at this instant (RFC 3339); default: now.
        #[arg(long)]
        now: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum MockCmd {
    /// Write the demo's fedgate.toml, test-only keys, TLS certificate and the
    /// mock tenant's metadata into a directory, for `fedgate serve`.
    Init {
        #[arg(long)]
        dir: PathBuf,
        /// Where fedgate listens (TLS with the test certificate for CN localhost).
        #[arg(long, default_value = "0.0.0.0:8443")]
        listen: String,
        /// The URL users and the mock tenant reach fedgate at.
        #[arg(long)]
        public_url: String,
        /// The URL browsers reach the mock console at.
        #[arg(long)]
        console_url: String,
    },
    /// Serve the mock Entra tenant: federation metadata and IdP-initiated logins.
    Entra {
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: std::net::SocketAddr,
        /// fedgate's public URL (the SAML audience and Reply URL).
        #[arg(long)]
        public_url: String,
    },
    /// Serve the mock Autotask-style console (a SAML SP trusting fedgate).
    Console {
        #[arg(long, default_value = "127.0.0.1:9100")]
        listen: std::net::SocketAddr,
        /// The URL browsers reach this console at.
        #[arg(long)]
        base_url: String,
        /// fedgate's public URL (its IdP entity id is `{URL}/idp/metadata`).
        #[arg(long)]
        fedgate_url: String,
        /// fedgate's signing certificate (PEM), as `mock init` wrote it.
        #[arg(long)]
        cert_file: PathBuf,
    },
}

#[derive(Args, Debug)]
pub struct ExplainArgs {
    #[arg(long, env = "FEDGATE_CONFIG")]
    pub config: PathBuf,
    /// fedgate's tenant id.
    #[arg(long)]
    pub tenant: String,
    /// The console id.
    #[arg(long)]
    pub console: String,
    /// Group object ids (or names) the user is in (repeat, or comma-separate).
    #[arg(long, value_delimiter = ',')]
    pub groups: Vec<String>,
    /// App roles the user has.
    #[arg(long, value_delimiter = ',')]
    pub roles: Vec<String>,
    /// The login used multi-factor authentication.
    #[arg(long)]
    pub mfa: bool,
    /// Instead of --groups/--roles/--mfa: a real SAMLResponse (base64 or XML), verified with the tenant's metadata.
    #[arg(long, conflicts_with_all = ["groups", "roles", "mfa"])]
    pub saml_response: Option<PathBuf>,
    /// Instead: an Entra access token (a file, or `-`), verified with the tenant's
    /// `[tenants.oidc]` (pinned JWKS file, or the JWKS its discovery names).
    #[arg(long, conflicts_with_all = ["groups", "roles", "mfa", "saml_response"])]
    pub token: Option<String>,
    /// The instant to evaluate at (RFC 3339); default: now.
    #[arg(long)]
    pub now: Option<String>,
    /// Print the Identity and the Decision as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum SamlCmd {
    /// Verify a SAMLResponse (base64 as posted, or XML) and print the Identity.
    Verify(SamlVerifyArgs),
    /// Show what a SAML message says: signed elements, certificate, times. No verdict.
    Decode {
        /// The response (base64 or XML); `-` reads standard input.
        input: String,
        /// The time to show relative times against (RFC 3339); default: now.
        #[arg(long)]
        now: Option<String>,
    },
}

#[derive(Args, Debug)]
pub struct SamlVerifyArgs {
    /// The IdP's federation metadata XML, or a PEM certificate bundle (then --idp-entity-id is required).
    #[arg(long)]
    pub metadata: PathBuf,
    /// The IdP entity id: selects an entity in a multi-entity document, or names the issuer for PEM trust.
    #[arg(long)]
    pub idp_entity_id: Option<String>,
    /// fedgate's SP entity id (Entra: Identifier), expected in the AudienceRestriction.
    #[arg(long)]
    pub sp_entity_id: String,
    /// fedgate's ACS URL (Entra: Reply URL), expected as Destination and Recipient.
    #[arg(long)]
    pub acs_url: String,
    /// Verify as of this instant (RFC 3339), instead of the clock.
    #[arg(long)]
    pub now: Option<String>,
    /// Allowed clock skew in seconds.
    #[arg(long, default_value_t = 180)]
    pub skew: u32,
    /// Accept RSA-SHA1 signatures and SHA-1 digests (legacy IdPs only).
    #[arg(long)]
    pub allow_sha1: bool,
    /// Smallest RSA key accepted, in bits (1024 to 4096).
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u32).range(1024..=4096))]
    pub min_rsa_bits: u32,
    /// The AuthnRequest ID of an SP-initiated login: InResponseTo must equal it.
    #[arg(long)]
    pub in_response_to: Option<String>,
    /// Largest decoded response accepted, in bytes.
    #[arg(long, default_value_t = saml::DEFAULT_MAX_BYTES)]
    pub max_bytes: usize,
    /// The response (base64 or XML); `-` reads standard input.
    pub input: String,
}

#[derive(Subcommand, Debug)]
pub enum JwtCmd {
    /// Verify a JWT against a JWKS and print the Identity.
    Verify(JwtVerifyArgs),
}

#[derive(Args, Debug)]
pub struct JwtVerifyArgs {
    /// The issuer's JWKS (JSON file, as served at jwks_uri).
    #[arg(long)]
    pub jwks: PathBuf,
    /// The exact expected `iss`.
    #[arg(long)]
    pub issuer: String,
    /// An accepted `aud` (repeat for several).
    #[arg(long, required = true)]
    pub audience: Vec<String>,
    /// Verify as of this instant (RFC 3339), instead of the clock.
    #[arg(long)]
    pub now: Option<String>,
    /// Allowed clock skew in seconds.
    #[arg(long, default_value_t = 180)]
    pub skew: u32,
    /// An accepted algorithm (repeat for several; default RS256). HMAC and `none` are never accepted.
    #[arg(long = "alg")]
    pub algorithms: Vec<String>,
    /// The token; `-` reads standard input.
    pub input: String,
}

#[derive(Subcommand, Debug)]
pub enum KeysCmd {
    /// Make `next/` (and `current/` on first use): published at once, signs nothing yet.
    GenerateNext {
        #[arg(long)]
        dir: PathBuf,
        /// Certificate validity.
        #[arg(long, default_value_t = 730)]
        days: i64,
    },
    /// next → current; the old current stays published as previous for the grace period.
    Promote {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 24)]
        grace_hours: i64,
    },
    /// Stop publishing the previous key now.
    Retire {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Each key: role, thumbprint, expiry, whether it signs and is published.
    Status {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum LintCmd {
    /// A federation metadata document (file or https URL), and/or a reply URL and identifier.
    Metadata(LintArgs),
}

#[derive(clap::Args, Debug)]
pub struct LintArgs {
    /// The metadata: a file, an https:// URL, or `-`. Optional with --reply-url/--identifier.
    pub source: Option<String>,
    /// `idp` (Entra's metadata) or `sp` (a console's); default: what the document holds.
    #[arg(long = "as", value_parser = ["idp", "sp"])]
    pub role: Option<String>,
    #[arg(long)]
    pub reply_url: Option<String>,
    #[arg(long)]
    pub identifier: Option<String>,
    /// The console profile the URLs must match.
    #[arg(long, value_parser = ["autotask", "acronis", "commvault", "generic"])]
    pub profile: Option<String>,
    /// A PEM certificate the document's own signature must verify with.
    #[arg(long)]
    pub trust: Option<PathBuf>,
    #[arg(long)]
    pub now: Option<String>,
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    pub format: String,
}

#[derive(Subcommand, Debug)]
pub enum DrillCmd {
    /// The rotation drill: `--demo` on loopback, or a read-only rehearsal of `--config`.
    Rotate(DrillArgs),
}

#[derive(clap::Args, Debug)]
pub struct DrillArgs {
    /// Run every phase against the mock tenant and mock console on loopback.
    #[arg(long, conflicts_with = "config")]
    pub demo: bool,
    /// A real configuration: fetch each tenant's metadata now (read-only).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Logins per phase.
    #[arg(long, default_value_t = 50)]
    pub logins: usize,
    /// Write the report as JSON here.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum MetadataCmd {
    /// Entity id, endpoints, and each signing certificate with thumbprint and days to expiry.
    Show {
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Count days to expiry from this instant (RFC 3339); default: now.
        #[arg(long)]
        now: Option<String>,
    },
}

/// Run the CLI; returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    crate::trust::install_crypto_provider();
    let result = match cli.command {
        Command::Serve { config } => serve(&config),
        Command::Demo { keep, store } => demo(keep, store.as_deref()),
        Command::Mock(cmd) => mock(cmd),
        Command::Explain(args) => explain(&args),
        Command::Saml(SamlCmd::Verify(args)) => saml_verify(&args),
        Command::Saml(SamlCmd::Decode { input, now }) => saml_decode(&input, now.as_deref()),
        Command::Jwt(JwtCmd::Verify(args)) => jwt_verify(&args),
        Command::Metadata(MetadataCmd::Show { file, json, now }) => {
            metadata_show(&file, json, now.as_deref())
        }
        Command::Keys(cmd) => keys(cmd),
        Command::Lint(LintCmd::Metadata(args)) => lint_metadata(&args),
        Command::Check {
            config,
            offline,
            now,
            json,
        } => check(&config, offline, now.as_deref(), json),
        Command::Drill(DrillCmd::Rotate(args)) => drill_rotate(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Quiet) => ExitCode::from(1),
        Err(Failure::Rejected { code, message }) => {
            println!("{}", json!({"error": code, "message": message}));
            ExitCode::from(1)
        }
        Err(Failure::Usage { code, message }) => {
            match code {
                Some(code) => println!("{}", json!({"error": code, "message": message})),
                None => eprintln!("fedgate: {message}"),
            }
            ExitCode::from(2)
        }
    }
}

enum Failure {
    /// A refusal already explained on stdout: exit 1 without more output.
    Quiet,
    /// The evidence was examined and refused.
    Rejected { code: &'static str, message: String },
    /// The invocation or the trust material is wrong.
    Usage {
        code: Option<&'static str>,
        message: String,
    },
}

impl Failure {
    fn rejected<E: ErrorCode + std::fmt::Display>(e: E) -> Self {
        Failure::Rejected {
            code: e.code(),
            message: e.to_string(),
        }
    }
    fn setup<E: ErrorCode + std::fmt::Display>(what: &str, e: E) -> Self {
        Failure::Usage {
            code: Some(e.code()),
            message: format!("{what}: {e}"),
        }
    }
    fn usage(message: String) -> Self {
        Failure::Usage {
            code: None,
            message,
        }
    }
}

fn read_input(arg: &str) -> Result<Vec<u8>, Failure> {
    if arg == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| Failure::usage(format!("reading standard input: {e}")))?;
        return Ok(buf);
    }
    read_file(Path::new(arg))
}

fn read_file(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::usage(format!("{}: {e}", path.display())))
}

fn parse_now(now: Option<&str>) -> Result<OffsetDateTime, Failure> {
    match now {
        None => Ok(OffsetDateTime::now_utc()),
        Some(s) => crate::timefmt::parse(s)
            .ok_or_else(|| Failure::usage(format!("--now {s:?} is not an RFC 3339 timestamp"))),
    }
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<(), Failure> {
    let s = serde_json::to_string(value).map_err(|e| Failure::usage(format!("output: {e}")))?;
    println!("{s}");
    Ok(())
}

/// Load IdP trust from metadata XML or a PEM bundle.
pub fn load_idp(path: &Path, entity_id: Option<&str>) -> Result<IdpMetadata, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    if text.contains("-----BEGIN CERTIFICATE-----") {
        let Some(id) = entity_id else {
            return Err(format!(
                "{}: a PEM certificate names no issuer; add --idp-entity-id",
                path.display()
            ));
        };
        return IdpMetadata::from_pem(&text, id).map_err(|e| format!("{}: {e}", path.display()));
    }
    IdpMetadata::parse_entity(&bytes, entity_id)
        .map_err(|e| format!("{} [{}]: {e}", path.display(), e.code()))
}

fn saml_verify(args: &SamlVerifyArgs) -> Result<(), Failure> {
    let now = parse_now(args.now.as_deref())?;
    let idp = load_idp(&args.metadata, args.idp_entity_id.as_deref()).map_err(|message| {
        Failure::Usage {
            code: Some("metadata.invalid"),
            message,
        }
    })?;
    let input = read_input(&args.input)?;
    let mut settings = saml::SamlSettings::new(&args.sp_entity_id, &args.acs_url);
    settings.skew = Duration::seconds(i64::from(args.skew));
    settings.profile.allow_sha1 = args.allow_sha1;
    settings.profile.min_rsa_bits = args.min_rsa_bits as usize;
    settings.expected_in_response_to = args.in_response_to.clone();
    settings.max_bytes = args.max_bytes;
    let identity = saml::verify(&input, &idp, &settings, now).map_err(Failure::rejected)?;
    print_json(&identity)
}

fn saml_decode(input: &str, now: Option<&str>) -> Result<(), Failure> {
    let now = parse_now(now)?;
    let bytes = read_input(input)?;
    let report = saml::decode::report(&bytes, now).map_err(Failure::rejected)?;
    print!("{report}");
    Ok(())
}

fn jwt_verify(args: &JwtVerifyArgs) -> Result<(), Failure> {
    let now = parse_now(args.now.as_deref())?;
    let jwks_bytes = read_file(&args.jwks)?;
    let jwks = Jwks::from_json(&jwks_bytes).map_err(|e| Failure::setup("--jwks", e))?;
    let mut policy = bearer::BearerPolicy::new(args.issuer.clone(), args.audience.clone());
    policy.skew = Duration::seconds(i64::from(args.skew));
    if !args.algorithms.is_empty() {
        policy.algorithms = args
            .algorithms
            .iter()
            .map(|a| {
                a.parse::<jsonwebtoken::Algorithm>()
                    .map_err(|_| Failure::usage(format!("--alg {a:?} is not a JOSE algorithm")))
                    .and_then(|alg| match a.as_str() {
                        "HS256" | "HS384" | "HS512" => Err(Failure::usage(format!(
                            "--alg {a}: HMAC algorithms are never accepted for tokens from an IdP"
                        ))),
                        _ => Ok(alg),
                    })
            })
            .collect::<Result<_, _>>()?;
    }
    let token = read_input(&args.input)?;
    let token = String::from_utf8_lossy(&token);
    let identity = bearer::verify(token.trim(), &jwks, &policy, now).map_err(Failure::rejected)?;
    print_json(&identity)
}

fn metadata_show(file: &Path, as_json: bool, now: Option<&str>) -> Result<(), Failure> {
    let now = parse_now(now)?;
    let bytes = read_file(file)?;
    let md = IdpMetadata::parse(&bytes).map_err(Failure::rejected)?;
    if as_json {
        let certs: Vec<_> = md
            .signing_certs
            .iter()
            .map(|c| {
                json!({
                    "thumbprint_sha256": c.thumbprint_sha256,
                    "thumbprint_sha1": c.thumbprint_sha1,
                    "subject": c.subject,
                    "not_before": crate::timefmt::format(c.not_before),
                    "not_after": crate::timefmt::format(c.not_after),
                    "days_left": c.days_left(now),
                    "expired": c.is_expired(now),
                    "key": c.key,
                    "signature_algorithm": c.signature_algorithm,
                })
            })
            .collect();
        return print_json(&json!({
            "entity_id": md.entity_id,
            "sso_endpoints": md.sso_endpoints,
            "slo_endpoints": md.slo_endpoints,
            "nameid_formats": md.nameid_formats,
            "document_signed": md.document_signed,
            "signing_certs": certs,
        }));
    }
    println!("entity id: {}", md.entity_id);
    for e in &md.sso_endpoints {
        println!("SSO: {} ({})", e.location, short_binding(&e.binding));
    }
    for e in &md.slo_endpoints {
        println!("SLO: {} ({})", e.location, short_binding(&e.binding));
    }
    for f in &md.nameid_formats {
        println!("NameID format: {f}");
    }
    println!(
        "document signature: {}",
        if md.document_signed {
            "present (not verified by show)"
        } else {
            "none"
        }
    );
    println!("signing certificates: {}", md.signing_certs.len());
    for c in &md.signing_certs {
        let days = c.days_left(now);
        let state = if c.is_expired(now) {
            format!(
                "EXPIRED {} days ago (still trusted as pinned; plan the rotation)",
                -days
            )
        } else if days < 30 {
            format!("expires in {days} days: WARNING")
        } else {
            format!("{days} days left")
        };
        let key = match c.key {
            crate::trust::certs::KeyKind::Rsa { bits } => format!("RSA {bits}"),
            crate::trust::certs::KeyKind::Ec { curve } => format!("EC {curve:?}"),
            crate::trust::certs::KeyKind::Other => "other".into(),
        };
        println!("- sha256 {}", c.thumbprint_sha256);
        println!(
            "  sha1 {} (as Entra shows it)",
            c.thumbprint_sha1.to_uppercase()
        );
        println!("  subject: {}", c.subject);
        println!("  key: {key}, signed with {}", c.signature_algorithm);
        println!(
            "  valid {} .. {}: {state}",
            crate::timefmt::format(c.not_before),
            crate::timefmt::format(c.not_after)
        );
    }
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::usage(format!("cannot start the async runtime: {e}")))
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FEDGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn keys(cmd: KeysCmd) -> Result<(), Failure> {
    use crate::trust::keys;
    let now = OffsetDateTime::now_utc();
    let fail = |e: String| Failure::Usage {
        code: Some("keys.failed"),
        message: e,
    };
    match cmd {
        KeysCmd::GenerateNext { dir, days } => {
            let cert = keys::generate_next(&dir, days, now).map_err(fail)?;
            println!(
                "next key {} (valid until {}): published at once; run `fedgate keys promote` once every console trusts it",
                cert.thumbprint_sha256,
                crate::timefmt::format(cert.not_after)
            );
        }
        KeysCmd::Promote { dir, grace_hours } => {
            keys::promote(&dir, time::Duration::hours(grace_hours), now).map_err(fail)?;
            println!(
                "promoted: the next key signs now; the old one stays published for {grace_hours} h"
            );
        }
        KeysCmd::Retire { dir } => {
            let retired = keys::retire(&dir).map_err(fail)?;
            println!(
                "{}",
                if retired {
                    "previous key retired"
                } else {
                    "no previous key"
                }
            );
        }
        KeysCmd::Status { dir, json } => {
            let st = keys::status(&dir, now).map_err(fail)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&st).unwrap_or_default());
            } else {
                println!(
                    "{:<9} {:<64} {:>9} {:<6} published",
                    "role", "sha256", "days left", "signs"
                );
                for k in st {
                    println!(
                        "{:<9} {:<64} {:>9} {:<6} {}",
                        k.role,
                        k.thumbprint_sha256,
                        k.days_left,
                        if k.signs { "yes" } else { "no" },
                        match (k.published, k.retire_after) {
                            (true, Some(t)) => format!("until {}", crate::timefmt::format(t)),
                            (true, None) => "yes".into(),
                            (false, _) => "no (retired)".into(),
                        }
                    );
                }
            }
        }
    }
    Ok(())
}

fn lint_metadata(a: &LintArgs) -> Result<(), Failure> {
    use crate::consoles::ConsoleKind;
    let now = parse_now(a.now.as_deref())?;
    let bytes = match a.source.as_deref() {
        None => Vec::new(),
        Some(url)
            if url.starts_with("https://")
                || url.starts_with("http://127.0.0.1")
                || url.starts_with("http://localhost") =>
        {
            let http = crate::trust::oidc::http_client().map_err(Failure::usage)?;
            runtime()?
                .block_on(async {
                    let r = http.get(url).send().await.map_err(|e| e.to_string())?;
                    if !r.status().is_success() {
                        return Err(format!("HTTP {} (redirects are not followed)", r.status()));
                    }
                    r.bytes()
                        .await
                        .map(|b| b.to_vec())
                        .map_err(|e| e.to_string())
                })
                .map_err(|e| Failure::Usage {
                    code: Some("lint.fetch_failed"),
                    message: format!("{url}: {e}"),
                })?
        }
        Some(other) => read_input(other)?,
    };
    if bytes.is_empty() && a.reply_url.is_none() && a.identifier.is_none() {
        return Err(Failure::usage(
            "give a metadata document, --reply-url or --identifier".into(),
        ));
    }
    let trust = match &a.trust {
        Some(p) => crate::trust::certs::TrustedCert::from_pem_bundle(&String::from_utf8_lossy(
            &read_file(p)?,
        ))
        .map_err(|e| Failure::setup("--trust", e))?,
        None => vec![],
    };
    let opts = crate::lint::Options {
        role: a.role.as_deref().map(|r| {
            if r == "sp" {
                crate::lint::Role::Sp
            } else {
                crate::lint::Role::Idp
            }
        }),
        reply_url: a.reply_url.as_deref(),
        identifier: a.identifier.as_deref(),
        profile: a.profile.as_deref().map(|p| match p {
            "autotask" => ConsoleKind::Autotask,
            "acronis" => ConsoleKind::Acronis,
            "commvault" => ConsoleKind::Commvault,
            _ => ConsoleKind::Generic,
        }),
        trust,
        now,
    };
    let findings = crate::lint::lint(&bytes, &opts);
    let errors = findings.iter().filter(|x| x.severity == "error").count();
    if a.format == "json" {
        print_json(&json!({"errors": errors, "findings": findings}))?;
    } else {
        print!("{}", crate::lint::render(&findings));
    }
    if errors > 0 {
        Err(Failure::Quiet)
    } else {
        Ok(())
    }
}

fn check(path: &Path, offline: bool, now: Option<&str>, as_json: bool) -> Result<(), Failure> {
    let now = parse_now(now)?;
    let env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("FEDGATE_"))
        .collect();
    let config = match crate::config::Config::load(path, &env) {
        Ok(c) => c,
        Err(e) => {
            let msg = json!({"errors": 1, "findings": [{"code": e.code(), "severity": "error", "subject": "configuration", "message": e.to_string()}]});
            if as_json {
                println!("{msg}");
            } else {
                println!("ERROR   {}: {e}", e.code());
            }
            return Err(Failure::Quiet);
        }
    };
    let app = match crate::gateway::App::new(
        config,
        std::sync::Arc::new(crate::store::memory::MemoryStore::new()),
        Box::new(move || now),
    ) {
        Ok(a) => a,
        Err(e) => {
            if as_json {
                println!(
                    "{}",
                    json!({"errors": 1, "findings": [{"code": "check.start_failed", "severity": "error", "subject": "fedgate", "message": e.to_string()}]})
                );
            } else {
                println!("ERROR   check.start_failed: {e}");
            }
            return Err(Failure::Quiet);
        }
    };
    let report = runtime()?.block_on(crate::check::check(&app, now, offline));
    if as_json {
        print_json(&serde_json::to_value(&report).unwrap_or_default())?;
    } else {
        print!("{}", crate::check::render(&report));
    }
    if report.errors > 0 {
        Err(Failure::Quiet)
    } else {
        Ok(())
    }
}

fn drill_rotate(args: &DrillArgs) -> Result<(), Failure> {
    let rt = runtime()?;
    let ok = if args.demo {
        rt.block_on(crate::drill::rotate_demo(
            args.logins,
            args.report.as_deref(),
        ))
    } else if let Some(config) = &args.config {
        rt.block_on(crate::drill::rotate_config(config, args.report.as_deref()))
    } else {
        return Err(Failure::usage("give --demo or --config FILE".into()));
    }
    .map_err(|e| Failure::usage(format!("drill: {e}")))?;
    if ok {
        Ok(())
    } else {
        Err(Failure::Quiet)
    }
}

fn serve(path: &Path) -> Result<(), Failure> {
    init_logging();
    let env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("FEDGATE_"))
        .collect();
    let config =
        crate::config::Config::load(path, &env).map_err(|e| Failure::setup("configuration", e))?;
    let listen = config.server.listen;
    let tls = match (&config.server.tls_cert_file, &config.server.tls_key_file) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone())),
        _ => None,
    };
    let store = crate::store::from_config(&config.store).map_err(|e| Failure::setup("store", e))?;
    let store_kind = config.store.kind.clone();
    let app = crate::gateway::App::new(config, store, Box::new(OffsetDateTime::now_utc))
        .map_err(|e| Failure::usage(e.to_string()))?;
    let app = std::sync::Arc::new(app);
    runtime()?.block_on(async move {
        // Say at once whether the store answers; never refuse to start for it:
        // /readyz stays not-ready until it does, and fedgate reconnects alone.
        match app.store.ready().await {
            Ok(()) => tracing::info!(store = %store_kind, "store ready"),
            Err(e) => tracing::warn!(store = %store_kind, error = %e, "store not ready yet: logins fail closed (503) until it answers"),
        }
        // Metadata URLs: fetched now; a tenant with neither a fetch nor a
        // last-known-good copy stops the start (it could never sign anyone in).
        app.refresh_trust().await;
        if let Some(t) = app.tenants_without_metadata().first() {
            return Err(Failure::usage(format!(
                "tenant {t}: its metadata URL cannot be fetched and there is no last-known-good copy in the state directory"
            )));
        }
        app.spawn_refresh();
        app.spawn_key_reload();
        app.spawn_expiry_warnings();
        let result = match tls {
            Some((cert, key)) => {
                let listener = std::net::TcpListener::bind(listen)
                    .map_err(|e| Failure::usage(format!("cannot listen on {listen}: {e}")))?;
                tracing::info!("fedgate listening on https://{listen}");
                crate::http::serve_tls(app, listener, &cert, &key, shutdown_signal()).await
            }
            None => {
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .map_err(|e| Failure::usage(format!("cannot listen on {listen}: {e}")))?;
                tracing::info!("fedgate listening on http://{listen} (loopback, plain HTTP)");
                crate::http::serve(app, listener, shutdown_signal()).await
            }
        };
        result.map_err(|e| Failure::usage(format!("server error: {e}")))
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

fn explain(args: &ExplainArgs) -> Result<(), Failure> {
    use crate::identity::{Identity, PrincipalKind, Source, Verification};
    let now = parse_now(args.now.as_deref())?;
    let env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("FEDGATE_"))
        .collect();
    let config = crate::config::Config::load(&args.config, &env)
        .map_err(|e| Failure::setup("configuration", e))?;
    let tenant = config
        .tenants
        .iter()
        .find(|t| t.id == args.tenant)
        .ok_or_else(|| {
            Failure::usage(format!("no tenant {:?} in the configuration", args.tenant))
        })?;
    let console = config
        .consoles
        .iter()
        .find(|c| c.id == args.console)
        .ok_or_else(|| {
            Failure::usage(format!(
                "no console {:?} in the configuration",
                args.console
            ))
        })?;
    let identity = match (&args.saml_response, &args.token) {
        (None, Some(token_arg)) => {
            let token = String::from_utf8(read_input(token_arg)?)
                .map_err(|_| Failure::usage("the token is not text".into()))?;
            let oidc = tenant
                .oidc
                .as_ref()
                .filter(|o| !o.audiences.is_empty())
                .ok_or_else(|| {
                    Failure::usage(format!(
                        "tenant {:?} has no [tenants.oidc] audiences: its tokens are not accepted",
                        tenant.id
                    ))
                })?;
            let issuer = tenant.token_issuer().unwrap_or_default();
            let pinned = match &oidc.jwks_file {
                Some(f) => Some(
                    crate::trust::jwks::Jwks::from_json(&read_file(f)?)
                        .map_err(|e| Failure::setup("jwks_file", e))?,
                ),
                None => None,
            };
            let trust = crate::trust::oidc::ProviderTrust::new(
                issuer.clone(),
                oidc.discovery_url.clone(),
                pinned,
            )
            .map_err(|e| Failure::setup("oidc", e))?;
            let mut policy =
                crate::inbound::bearer::BearerPolicy::new(issuer, oidc.audiences.clone());
            policy.skew = Duration::seconds(i64::from(tenant.clock_skew_secs));
            runtime()?
                .block_on(crate::trust::oidc::verify_token(
                    &trust,
                    token.trim(),
                    &policy,
                    now,
                ))
                .map_err(Failure::rejected)?
        }
        (Some(file), _) => {
            let md = tenant.metadata_file.as_deref().ok_or_else(|| {
                Failure::usage(format!(
                    "tenant {:?} has no metadata_file: it does not sign in by SAML",
                    tenant.id
                ))
            })?;
            let idp = load_idp(md, None).map_err(|message| Failure::Usage {
                code: Some("metadata.invalid"),
                message,
            })?;
            let public = &config.server.public_url;
            let mut settings =
                saml::SamlSettings::new(tenant.sp_entity_id(public), tenant.acs_url(public));
            settings.skew = Duration::seconds(i64::from(tenant.clock_skew_secs));
            settings.profile.allow_sha1 = tenant.allow_sha1;
            saml::verify(&read_file(file)?, &idp, &settings, now).map_err(Failure::rejected)?
        }
        (None, None) => Identity {
            subject: "(as described on the command line)".into(),
            subject_format: None,
            issuer: format!("https://sts.windows.net/{}/", tenant.entra_tenant_id),
            tenant_id: Some(tenant.entra_tenant_id.clone()),
            object_id: None,
            kind: PrincipalKind::User,
            source: Source::Saml,
            upn: None,
            email: None,
            display_name: None,
            groups: args.groups.clone(),
            groups_overage: false,
            groups_link: None,
            roles: args.roles.clone(),
            auth_methods: vec![],
            mfa: args.mfa,
            auth_time: Some(now),
            expires_at: now + Duration::hours(1),
            app_id: None,
            token_id: None,
            verification: Verification::default(),
            attributes: Default::default(),
        },
    };
    let cref = crate::policy::ConsoleRef {
        id: &console.id,
        kind: console.kind,
        extra_roles: &console.extra_roles,
    };
    let decision = crate::policy::decide(&identity, &tenant.id, &cref, &config.rules, now);
    if args.json {
        print_json(&json!({"identity": identity, "decision": decision}))?;
    } else {
        println!(
            "identity: subject {}, groups {:?}, roles {:?}, mfa {}{}",
            identity.subject,
            identity.groups,
            identity.roles,
            identity.mfa,
            if identity.groups_overage {
                " (groups overage: not resolved)"
            } else {
                ""
            }
        );
        print!("{}", crate::policy::explain(&decision));
    }
    if decision.allowed() {
        Ok(())
    } else {
        Err(Failure::Quiet)
    }
}

fn demo(keep: bool, store: Option<&str>) -> Result<(), Failure> {
    let run = match store {
        None | Some("memory") => None,
        Some("redis") => Some(None),
        Some(s) => match s.strip_prefix("redis=") {
            Some(url) if !url.is_empty() => Some(Some(url.to_string())),
            _ => {
                return Err(Failure::usage(format!(
                    "--store {s:?}: use memory, redis or redis=URL"
                )))
            }
        },
    };
    let outcome = match run {
        None => runtime()?.block_on(crate::demo::run(keep)),
        Some(url) => runtime()?.block_on(crate::demo::run_redis(url)),
    };
    match outcome {
        Ok(true) => Ok(()),
        Ok(false) => Err(Failure::Rejected {
            code: "demo.unexpected_outcome",
            message: "at least one scripted login did not end as expected (see the table)".into(),
        }),
        Err(e) => Err(Failure::usage(format!("demo: {e}"))),
    }
}

fn mock(cmd: MockCmd) -> Result<(), Failure> {
    init_logging();
    let bind = |addr: std::net::SocketAddr| async move {
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Failure::usage(format!("cannot listen on {addr}: {e}")))
    };
    let served = match cmd {
        MockCmd::Init {
            dir,
            listen,
            public_url,
            console_url,
        } => {
            let path = crate::demo::mock_init(&dir, &listen, &public_url, &console_url)
                .map_err(|e| Failure::usage(format!("mock init: {e}")))?;
            println!("{}", path.display());
            return Ok(());
        }
        MockCmd::Entra { listen, public_url } => runtime()?.block_on(async move {
            let listener = bind(listen).await?;
            tracing::info!("mock Entra tenant on http://{listen} for {public_url}");
            Ok::<_, Failure>(
                crate::demo::serve_mock_entra(listener, &public_url, shutdown_signal()).await,
            )
        })?,
        MockCmd::Console {
            listen,
            base_url,
            fedgate_url,
            cert_file,
        } => {
            let pem = String::from_utf8_lossy(&read_file(&cert_file)?).to_string();
            runtime()?.block_on(async move {
                let listener = bind(listen).await?;
                tracing::info!("mock console on http://{listen} ({base_url})");
                Ok::<_, Failure>(
                    crate::demo::serve_mock_console(
                        listener,
                        &base_url,
                        &fedgate_url,
                        &pem,
                        shutdown_signal(),
                    )
                    .await,
                )
            })?
        }
    };
    served.map_err(|e| Failure::usage(format!("mock: {e}")))
}

fn short_binding(b: &str) -> &str {
    b.rsplit(':').next().unwrap_or(b)
}
