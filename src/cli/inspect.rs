//! `saml verify|decode`, `jwt verify`, `metadata show`: one piece of evidence, offline.

use std::path::Path;

use serde_json::json;
use time::Duration;

use super::{
    load_idp, parse_now, print_json, read_file, read_input, Failure, JwtVerifyArgs, SamlVerifyArgs,
};
use crate::inbound::{bearer, saml};
use crate::trust::jwks::Jwks;
use crate::trust::metadata::IdpMetadata;

pub(super) fn saml_verify(args: &SamlVerifyArgs) -> Result<(), Failure> {
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

pub(super) fn saml_decode(
    input: &str,
    now: Option<&str>,
    key_files: &[std::path::PathBuf],
    allow_cbc: bool,
) -> Result<(), Failure> {
    let now = parse_now(now)?;
    let bytes = read_input(input)?;
    let mut keys = Vec::new();
    for f in key_files {
        let pem = String::from_utf8(read_file(f)?)
            .map_err(|_| Failure::usage(format!("--key {}: not PEM text", f.display())))?;
        keys.push(
            saml::decrypt::DecryptionKey::from_pem(&pem)
                .map_err(|e| Failure::usage(format!("--key {}: {e}", f.display())))?,
        );
    }
    let policy = saml::decrypt::Policy { allow_cbc };
    let report =
        saml::decode::report_with(&bytes, now, &keys, &policy).map_err(Failure::rejected)?;
    print!("{report}");
    Ok(())
}

pub(super) fn jwt_verify(args: &JwtVerifyArgs) -> Result<(), Failure> {
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

pub(super) fn metadata_show(file: &Path, as_json: bool, now: Option<&str>) -> Result<(), Failure> {
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

fn short_binding(b: &str) -> &str {
    b.rsplit(':').next().unwrap_or(b)
}
