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
use time::OffsetDateTime;

use crate::identity::ErrorCode;
use crate::inbound::saml;
use crate::trust::metadata::IdpMetadata;

mod admin;
mod config;
mod explain;
mod inspect;
mod review;
mod serve;

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
    /// The audit trail: check its hash chain and signed checkpoints.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// The configurations fedgate has run with: history, diff, restore.
    #[command(subcommand)]
    Config(ConfigCmd),
    /// Access reviews: who could reach a console on a date, and what changed between two.
    #[command(subcommand)]
    Access(AccessCmd),
    /// Check a configuration: expiring credentials, unreachable metadata, consoles nobody reaches.
    Check {
        /// The configuration file to check (FEDGATE_* variables apply, as for serve).
        #[arg(long, env = "FEDGATE_CONFIG")]
        config: PathBuf,
        /// Do not fetch metadata URLs or discovery documents.
        #[arg(long)]
        offline: bool,
        /// Evaluate expiries at this instant (RFC 3339); default: now.
        #[arg(long)]
        now: Option<String>,
        /// Print the summary and findings as one JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum MockCmd {
    /// Write the demo's fedgate.toml, test-only keys, TLS certificate and the
    /// mock tenant's metadata into a directory, for `fedgate serve`.
    ///
    /// The fedgate.toml it writes has `[store] kind = "redis"` (for
    /// docker-compose: two instances on one Redis), so `serve` needs
    /// FEDGATE_STORE_URL=redis://…; for one instance without Redis, set
    /// `kind = "memory"` (or FEDGATE_STORE__KIND=memory). Not for production:
    /// the keys are public test keys (docs/install.md makes real ones).
    Init {
        /// The directory to write into (created if missing; files in it are overwritten).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Where fedgate listens (TLS with the test certificate for CN localhost).
        #[arg(long, default_value = "0.0.0.0:8443", value_name = "ADDR:PORT")]
        listen: String,
        /// The URL users and the mock tenant reach fedgate at, e.g. https://localhost:8443.
        #[arg(long, value_name = "URL")]
        public_url: String,
        /// The URL browsers reach the mock console at, e.g. http://localhost:9100.
        #[arg(long, value_name = "URL")]
        console_url: String,
    },
    /// Serve the mock Entra tenant: federation metadata and IdP-initiated logins.
    Entra {
        /// Where the mock tenant listens (plain HTTP).
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: std::net::SocketAddr,
        /// fedgate's public URL (the SAML audience and Reply URL).
        #[arg(long)]
        public_url: String,
    },
    /// Serve the mock Autotask-style console (a SAML SP trusting fedgate).
    Console {
        /// Where the mock console listens (plain HTTP).
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
    /// The configuration file (FEDGATE_* variables apply, as for serve).
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
        /// fedgate's decryption key (PEM) to decrypt an EncryptedAssertion; repeatable.
        #[arg(long = "key")]
        keys: Vec<PathBuf>,
        /// Decrypt AES-CBC content too (refused by default, as the gateway does).
        #[arg(long)]
        allow_cbc: bool,
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
    /// First setup: a new key directory DIR/signing and token key DIR/token-key.pem.
    ///
    /// DIR/signing/current/ holds the IdP signing key (RSA-2048, key.pem 0600) and
    /// its self-signed certificate (cert.pem), as `generate-next` + `promote` make
    /// them; DIR/token-key.pem is an EC P-256 key (PKCS#8, 0600) for the ES256
    /// console tokens. Prints the thumbprint and the [signing] lines for
    /// fedgate.toml. Refuses (exit 2, nothing written) if either exists.
    Init {
        /// Where to make them (created 0700 if missing), e.g. /etc/fedgate/keys.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Validity of the signing certificate, in days.
        #[arg(long, default_value_t = 730, value_parser = clap::value_parser!(i64).range(1..=36500))]
        days: i64,
    },
    /// Make `next/` (and `current/` on first use): published at once, signs nothing yet.
    GenerateNext {
        /// The key directory (`signing.key_dir`), e.g. /etc/fedgate/keys/signing.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Validity of the new certificate, in days.
        #[arg(long, default_value_t = 730, value_parser = clap::value_parser!(i64).range(1..=36500))]
        days: i64,
    },
    /// next → current; the old current stays published as previous for the grace period.
    Promote {
        /// The key directory (`signing.key_dir`).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// How long the old key stays published (for consoles that have not
        /// refreshed fedgate's metadata yet), in hours.
        #[arg(long, default_value_t = 24, value_name = "HOURS")]
        grace_hours: i64,
    },
    /// Stop publishing the previous key now.
    Retire {
        /// The key directory (`signing.key_dir`).
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
    /// Each key: role, thumbprint, expiry, whether it signs and is published.
    Status {
        /// The key directory (`signing.key_dir`); an error if it does not exist.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// Print JSON (one object per key) instead of a table.
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
    /// A console's Reply URL (ACS) to check against --profile's pattern (Entra: AADSTS50011).
    #[arg(long)]
    pub reply_url: Option<String>,
    /// A console's Identifier (entity id) to check against --profile's pattern (Entra: AADSTS700016).
    #[arg(long)]
    pub identifier: Option<String>,
    /// The console profile the URLs must match.
    #[arg(long, value_parser = ["autotask", "autotask_psa", "acronis", "commvault", "generic"])]
    pub profile: Option<String>,
    /// A PEM certificate the document's own signature must verify with.
    #[arg(long)]
    pub trust: Option<PathBuf>,
    /// Judge certificate expiry at this instant (RFC 3339); default: now.
    #[arg(long)]
    pub now: Option<String>,
    /// `text` for a person, `json` for scripts.
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
        /// The federation metadata XML file.
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Count days to expiry from this instant (RFC 3339); default: now.
        #[arg(long)]
        now: Option<String>,
    },
}

/// Where the configuration history is: the configuration file's
/// `server.state_dir` (or `--state-dir`).
#[derive(Args, Debug, Clone)]
pub struct HistoryArgs {
    /// The configuration file (its `server.state_dir` holds the history; `restore` writes it).
    #[arg(long, env = "FEDGATE_CONFIG")]
    pub config: PathBuf,
    /// The state directory, when not the configuration's `server.state_dir`.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCmd {
    /// Every configuration applied (at start or by a reload), oldest first.
    History {
        #[command(flatten)]
        at: HistoryArgs,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// A unified diff between two versions (a version prefix, or `file`
    /// for the configuration file as it is now).
    Diff {
        /// The older version (at least 6 hex digits), or `file`.
        a: String,
        /// The newer version, or `file`.
        b: String,
        #[command(flatten)]
        at: HistoryArgs,
    },
    /// Write a stored version back as the configuration file (checked
    /// first); the next reload (SIGHUP) applies it.
    Restore {
        /// The version to restore (at least 6 hex digits).
        version: String,
        #[command(flatten)]
        at: HistoryArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum AccessCmd {
    /// Who could reach a console at a date: the rules then in force, the
    /// users seen with their groups (audit trail), and optionally the
    /// groups' current members (Microsoft Graph). Or, with --diff, what
    /// changed between two dates.
    Review(ReviewArgs),
}

#[derive(Args, Debug)]
pub struct ReviewArgs {
    /// The console to review (its id); every console when omitted.
    #[arg(long)]
    pub console: Option<String>,
    /// The date reviewed (YYYY-MM-DD, the end of that day UTC, or RFC 3339).
    #[arg(long, conflicts_with = "diff", required_unless_present = "diff")]
    pub at: Option<String>,
    /// Two dates: the rules added and removed, and the users who gained or lost access.
    #[arg(long, num_args = 2, value_names = ["D1", "D2"])]
    pub diff: Vec<String>,
    #[command(flatten)]
    pub history: HistoryArgs,
    /// The audit files to read (oldest first); default: `audit.file` and its rotated files.
    #[arg(long = "audit", value_name = "FILE")]
    pub audit: Vec<PathBuf>,
    /// Also list each rule's groups' current members through Microsoft
    /// Graph (tenants with `[tenants.graph]`), marked as current, not as of the date.
    #[arg(long)]
    pub graph: bool,
    /// Output CSV (one row per rule and user).
    #[arg(long, conflicts_with = "html")]
    pub csv: bool,
    /// Output a printable HTML page.
    #[arg(long)]
    pub html: bool,
    /// One JSON object.
    #[arg(long, conflicts_with_all = ["csv", "html"])]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Check audit files (in order: a rotated file first) for altered,
    /// missing or reordered lines, forged checkpoints and a truncated tail;
    /// exit 1 on any. Lines after the last checkpoint are reported as
    /// unanchored (chained, not signed yet).
    Verify {
        /// The audit files of one chain, oldest first.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// fedgate's signing certificate(s) (PEM; current and former: each
        /// checkpoint names its key by thumbprint). Repeatable.
        #[arg(long = "cert", required_unless_present = "metadata")]
        certs: Vec<PathBuf>,
        /// fedgate's published keys: its IdP metadata, a file or its URL
        /// (`{public_url}/idp/metadata`: the current and next keys; give
        /// retired ones with --cert).
        #[arg(long)]
        metadata: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The events that match (all given filters), streamed over the files:
    /// who reached a console when, every denial, one user's trail.
    Query(AuditQueryArgs),
}

#[derive(Args, Debug)]
pub struct AuditQueryArgs {
    /// Audit files, read one after the other (a rotated file first).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Only this console (its id).
    #[arg(long)]
    pub console: Option<String>,
    /// Only this tenant (its id).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only this user: UPN (any case), subject or object id.
    #[arg(long)]
    pub user: Option<String>,
    /// Only `allowed` or `denied` (or another outcome: `step_up`, …).
    #[arg(long)]
    pub outcome: Option<String>,
    /// Only this code (`policy.no_rule_matched`, `logout`, …).
    #[arg(long)]
    pub code: Option<String>,
    /// From this time on (RFC 3339, inclusive).
    #[arg(long)]
    pub since: Option<String>,
    /// Before this time (RFC 3339, exclusive).
    #[arg(long)]
    pub until: Option<String>,
    /// The matching lines as JSON lines.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// CSV with a header (time, outcome, code, tenant, console, user, roles, reason).
    #[arg(long)]
    pub csv: bool,
}

/// Run the CLI; returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    crate::trust::install_crypto_provider();
    let result = match cli.command {
        Command::Serve { config } => serve::serve(&config),
        Command::Demo { keep, store } => serve::demo(keep, store.as_deref()),
        Command::Mock(cmd) => serve::mock(cmd),
        Command::Explain(args) => explain::explain(&args),
        Command::Saml(SamlCmd::Verify(args)) => inspect::saml_verify(&args),
        Command::Saml(SamlCmd::Decode {
            input,
            now,
            keys,
            allow_cbc,
        }) => inspect::saml_decode(&input, now.as_deref(), &keys, allow_cbc),
        Command::Jwt(JwtCmd::Verify(args)) => inspect::jwt_verify(&args),
        Command::Metadata(MetadataCmd::Show { file, json, now }) => {
            inspect::metadata_show(&file, json, now.as_deref())
        }
        Command::Keys(cmd) => admin::keys(cmd),
        Command::Lint(LintCmd::Metadata(args)) => admin::lint_metadata(&args),
        Command::Audit(AuditCmd::Verify {
            files,
            certs,
            metadata,
            json,
        }) => admin::audit_verify(&files, &certs, metadata.as_deref(), json),
        Command::Audit(AuditCmd::Query(args)) => admin::audit_query(&args),
        Command::Config(cmd) => config::run(cmd),
        Command::Access(AccessCmd::Review(args)) => review::run(&args),
        Command::Check {
            config,
            offline,
            now,
            json,
        } => admin::check(&config, offline, now.as_deref(), json),
        Command::Drill(DrillCmd::Rotate(args)) => admin::drill_rotate(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Quiet) => ExitCode::from(1),
        Err(Failure::Rejected { code, message }) => {
            println!("{}", json!({"error": code, "message": message}));
            ExitCode::from(1)
        }
        Err(Failure::Start { code, message }) => {
            eprintln!("fedgate: cannot start: {message}\n  (error code {code})");
            ExitCode::from(2)
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

pub(super) enum Failure {
    /// A refusal already explained on stdout: exit 1 without more output.
    Quiet,
    /// The evidence was examined and refused.
    Rejected { code: &'static str, message: String },
    /// A long-running command (`serve`, `mock`) cannot start: text on
    /// stderr, whatever the cause, with its stable code.
    Start { code: &'static str, message: String },
    /// The invocation or the trust material is wrong.
    Usage {
        code: Option<&'static str>,
        message: String,
    },
}

impl Failure {
    pub(super) fn rejected<E: ErrorCode + std::fmt::Display>(e: E) -> Self {
        Failure::Rejected {
            code: e.code(),
            message: e.to_string(),
        }
    }
    pub(super) fn setup<E: ErrorCode + std::fmt::Display>(what: &str, e: E) -> Self {
        Failure::Usage {
            code: Some(e.code()),
            message: format!("{what}: {e}"),
        }
    }
    pub(super) fn start<E: ErrorCode + std::fmt::Display>(e: E) -> Self {
        Failure::Start {
            code: e.code(),
            message: e.to_string(),
        }
    }
    pub(super) fn usage(message: String) -> Self {
        Failure::Usage {
            code: None,
            message,
        }
    }
}

pub(super) fn read_input(arg: &str) -> Result<Vec<u8>, Failure> {
    if arg == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| Failure::usage(format!("reading standard input: {e}")))?;
        return Ok(buf);
    }
    read_file(Path::new(arg))
}

pub(super) fn read_file(path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::usage(format!("{}: {e}", path.display())))
}

pub(super) fn parse_now(now: Option<&str>) -> Result<OffsetDateTime, Failure> {
    match now {
        None => Ok(OffsetDateTime::now_utc()),
        Some(s) => crate::timefmt::parse(s)
            .ok_or_else(|| Failure::usage(format!("--now {s:?} is not an RFC 3339 timestamp"))),
    }
}

/// The configuration as every command loads it: the file, then the
/// `FEDGATE_*` variables of the environment.
pub(super) fn load_config(
    path: &Path,
) -> Result<crate::config::Config, crate::config::ConfigError> {
    crate::config::Config::load(path, &fedgate_env())
}

/// The `FEDGATE_*` variables of the environment.
pub(super) fn fedgate_env() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with("FEDGATE_"))
        .collect()
}

pub(super) fn print_json<T: serde::Serialize>(value: &T) -> Result<(), Failure> {
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

pub(super) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::usage(format!("cannot start the async runtime: {e}")))
}

pub(super) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FEDGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal (not for journald, a file or
    // a pipe), and never when NO_COLOR is set (https://no-color.org).
    use std::io::IsTerminal;
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}

pub(super) async fn shutdown_signal() {
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
