//! Bearer/ID-token verification (`inbound::bearer`) and JWKS parsing (`trust::jwks`).
//!
//! Three sources of tokens, none signed by fedgate's own code under test:
//! - `fixtures/jwt/` made by `scripts/make_jwt_fixtures.py` with PyJWT;
//! - the third-party corpus, tests/corpus: real 2014 AAD tokens and JWKS (identitymodel), Entra's
//!   2024 JWKS (panva-wellknown), and synthetic Entra-shaped tokens (generated/);
//! - edge cases signed here with aws-lc-rs and the fixture's private test keys,
//!   for shapes PyJWT will not produce (non-JSON payloads, exact skew edges).
//!
//! Every rejection asserts its exact error code.

// Test helpers outside #[test] functions are not covered by clippy.toml's
// allow-*-in-tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, RsaKeyPair};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use fedgate::identity::{ErrorCode, Identity, PrincipalKind, Source};
use fedgate::inbound::bearer::{self, BearerError, BearerPolicy};
use fedgate::trust::jwks::{Curve, Jwks, JwksError, KeyType};
use jsonwebtoken::Algorithm;
use serde_json::{json, Value};
use time::{Duration, OffsetDateTime};

use super::{corpus_path, fixture};

// ---------------------------------------------------------------------------
// helpers

fn read(path: std::path::PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn read_json(path: std::path::PathBuf) -> Value {
    serde_json::from_slice(&read(path)).unwrap()
}

fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap()
}

fn code<T: std::fmt::Debug>(r: Result<T, BearerError>) -> &'static str {
    match r {
        Ok(v) => panic!("expected a rejection, got {v:?}"),
        Err(e) => {
            // Every error prints a message, and the code is stable.
            assert!(!e.to_string().is_empty());
            e.code()
        }
    }
}

fn ok(r: Result<Identity, BearerError>) -> Identity {
    r.unwrap_or_else(|e| panic!("expected Ok, got {} ({e})", e.code()))
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).unwrap()
}

/// (header, payload, signature) of a compact token.
fn parts(token: &str) -> (&str, &str, &str) {
    let mut it = token.split('.');
    let p = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
    assert!(it.next().is_none());
    p
}

fn payload_of(token: &str) -> Value {
    serde_json::from_slice(&unb64(parts(token).1)).unwrap()
}

// --- PyJWT fixtures -----------------------------------------------------------

struct Fixtures {
    doc: Value,
    jwks: Jwks,
}

impl Fixtures {
    fn load() -> Self {
        Fixtures {
            doc: read_json(fixture("jwt/tokens.json")),
            jwks: Jwks::from_json(&read(fixture("jwt/jwks.json"))).unwrap(),
        }
    }
    fn now(&self) -> OffsetDateTime {
        at(self.doc["now"].as_i64().unwrap())
    }
    fn entry(&self, name: &str) -> &Value {
        let e = &self.doc["tokens"][name];
        assert!(e.is_object(), "no fixture token {name}");
        e
    }
    fn token(&self, name: &str) -> &str {
        self.entry(name)["jwt"].as_str().unwrap()
    }
    fn policy(&self, name: &str) -> BearerPolicy {
        policy_of(self.entry(name))
    }
    fn verify(&self, name: &str) -> Result<Identity, BearerError> {
        bearer::verify(self.token(name), &self.jwks, &self.policy(name), self.now())
    }
}

fn policy_of(entry: &Value) -> BearerPolicy {
    let mut p = BearerPolicy::new(
        entry["issuer"].as_str().unwrap(),
        entry["audience"].as_str().unwrap(),
    );
    if let Some(algs) = entry["algorithms"].as_array() {
        p.algorithms = algs
            .iter()
            .map(|a| a.as_str().unwrap().parse::<Algorithm>().unwrap())
            .collect();
    }
    p
}

const TENANT: &str = "c0ffee00-1234-4abc-8def-0123456789ab";
const V1_ISS: &str = "https://sts.windows.net/c0ffee00-1234-4abc-8def-0123456789ab/";
const V2_ISS: &str = "https://login.microsoftonline.com/c0ffee00-1234-4abc-8def-0123456789ab/v2.0";
const CLIENT_ID: &str = "6e2f1b9a-3c4d-4e5f-8a9b-0c1d2e3f4a5b";
const CALLER_APP: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const USER_OID: &str = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
const APP_SP_OID: &str = "5d6e7f80-91a2-4b3c-8d4e-5f6a7b8c9d0e";
const KID_RSA1: &str = "fedgate-test-rsa-1";

// --- signing edge cases here, with the fixture's private test keys -------------

fn pem_der(path: &str) -> Vec<u8> {
    let pem = String::from_utf8(read(fixture(path))).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).unwrap()
}

/// Sign `header.payload` (raw JSON bytes) with a fixture key.
fn sign_raw(header: &[u8], payload: &[u8], key: &str) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let rng = SystemRandom::new();
    let alg = serde_json::from_slice::<Value>(header)
        .ok()
        .and_then(|h| h["alg"].as_str().map(str::to_string));
    let signature = match key {
        "ec1.pem" => {
            let kp = EcdsaKeyPair::from_pkcs8(
                &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
                &pem_der("jwt/ec1.pem"),
            )
            .unwrap();
            kp.sign(&rng, input.as_bytes()).unwrap().as_ref().to_vec()
        }
        _ => {
            let kp = RsaKeyPair::from_pkcs8(&pem_der(&format!("jwt/{key}"))).unwrap();
            let padding: &dyn sig::RsaEncoding = match alg.as_deref() {
                Some("PS256") => &sig::RSA_PSS_SHA256,
                Some("RS384") => &sig::RSA_PKCS1_SHA384,
                _ => &sig::RSA_PKCS1_SHA256,
            };
            let mut out = vec![0; kp.public_modulus_len()];
            kp.sign(padding, &rng, input.as_bytes(), &mut out).unwrap();
            out
        }
    };
    format!("{input}.{}", b64(&signature))
}

fn sign(header: &Value, claims: &Value) -> String {
    sign_raw(
        header.to_string().as_bytes(),
        claims.to_string().as_bytes(),
        "rsa1.pem",
    )
}

fn rs256_header() -> Value {
    json!({"alg": "RS256", "kid": KID_RSA1, "typ": "JWT"})
}

/// The claims of the fixture's v2 user token, to start edge cases from.
fn v2_claims(fx: &Fixtures) -> Value {
    payload_of(fx.token("v2_user"))
}

fn v2_policy() -> BearerPolicy {
    BearerPolicy::new(V2_ISS, CLIENT_ID)
}

// ---------------------------------------------------------------------------
// JWKS

#[test]
fn jwks_fixture_keys() {
    let fx = Fixtures::load();
    let kids: Vec<&str> = fx.jwks.kids().collect();
    assert_eq!(
        kids,
        [
            "fedgate-test-rsa-1",
            "fedgate-test-rsa-2-msa",
            "fedgate-test-ec-1"
        ]
    );
    let rsa1 = fx.jwks.get(KID_RSA1).unwrap();
    assert_eq!(rsa1.kty(), KeyType::Rsa);
    assert_eq!(rsa1.rsa_bits(), Some(2048));
    assert_eq!(rsa1.alg(), None);
    assert_eq!(
        rsa1.issuer(),
        Some("https://login.microsoftonline.com/{tenantid}/v2.0")
    );
    assert!(rsa1.supports(Algorithm::RS256) && rsa1.supports(Algorithm::PS512));
    assert!(!rsa1.supports(Algorithm::ES256) && !rsa1.supports(Algorithm::HS256));
    let ec = fx.jwks.get("fedgate-test-ec-1").unwrap();
    assert_eq!(
        (ec.kty(), ec.curve(), ec.alg()),
        (KeyType::Ec, Some(Curve::P256), Some("ES256"))
    );
    assert!(ec.supports(Algorithm::ES256) && !ec.supports(Algorithm::ES384));
    assert!(!ec.supports(Algorithm::RS256));
    assert!(fx.jwks.skipped().is_empty());
}

#[test]
fn jwks_aad_2014_quirks() {
    // Non-standard "alg":"SHA256", key_ops ["signing"], x5u, padded standard base64 n.
    let jwks = Jwks::from_json(&read(corpus_path(
        "entra/identitymodel/JsonWebKeySet_AAD_2014.json",
    )))
    .unwrap();
    assert_eq!(jwks.len(), 2);
    let k = jwks.get("kriMPdmBvx68skT8-mPAB3BseeA").unwrap();
    assert_eq!(k.alg(), Some("SHA256"));
    assert_eq!(k.declared_algorithm(), None);
    assert_eq!(k.x5t(), Some("kriMPdmBvx68skT8-mPAB3BseeA"));
    assert_eq!(k.rsa_bits(), Some(2048));
    assert!(k.supports(Algorithm::RS256));
    assert!(jwks.find_by_x5t("kriMPdmBvx68skT8-mPAB3BseeA").is_some());
}

#[test]
fn jwks_entra_2024_per_key_issuer() {
    let jwks = Jwks::from_json(&read(corpus_path(
        "entra/panva-wellknown/entra-common-v2.0-jwks.json",
    )))
    .unwrap();
    assert_eq!(jwks.len(), 7);
    assert!(jwks.skipped().is_empty());
    let templated = jwks
        .keys()
        .iter()
        .filter(|k| k.issuer() == Some("https://login.microsoftonline.com/{tenantid}/v2.0"))
        .count();
    assert_eq!(templated, 5);
    // The other two are the MSA tenant's.
    assert!(jwks.keys().iter().all(|k| k.issuer().is_some()));
    let older = Jwks::from_json(&read(corpus_path(
        "entra/panva-wellknown/entra-common-v2.0-jwks.2024-06-05.json",
    )))
    .unwrap();
    assert_eq!(older.len(), 11);
    let aad2017 =
        Jwks::from_json(&read(corpus_path("entra/identitymodel/AADJWKS_2017.json"))).unwrap();
    assert_eq!(aad2017.len(), 2);
}

#[test]
fn jwks_x5c_only_key_is_usable() {
    let mut doc = read_json(corpus_path(
        "entra/identitymodel/JsonWebKeySet_AAD_2014.json",
    ));
    for k in doc["keys"].as_array_mut().unwrap() {
        let k = k.as_object_mut().unwrap();
        k.remove("n");
        k.remove("e");
    }
    let jwks = Jwks::from_json(doc.to_string().as_bytes()).unwrap();
    assert_eq!(
        jwks.get("kriMPdmBvx68skT8-mPAB3BseeA").unwrap().rsa_bits(),
        Some(2048)
    );
    // ... and verifies the real 2014 access token (see aad_2014_* below).
    let (token, policy, now) = aad_2014_access();
    let id = ok(bearer::verify(&token, &jwks, &policy, now));
    assert_eq!(id.verification.key, "kriMPdmBvx68skT8-mPAB3BseeA");
}

#[test]
fn jwks_x5c_disagreeing_with_n_is_invalid() {
    let mut doc = read_json(corpus_path(
        "entra/identitymodel/JsonWebKeySet_AAD_2014.json",
    ));
    let keys = doc["keys"].as_array_mut().unwrap();
    let other_cert = keys[1]["x5c"].clone();
    keys[0]["x5c"] = other_cert;
    let e = Jwks::from_json(doc.to_string().as_bytes()).unwrap_err();
    assert_eq!(e.code(), "jwks.key_invalid");
    assert!(
        matches!(e, JwksError::KeyInvalid { ref kid, .. } if kid == "NGTFvdK-fythEuLwjpwAJOM9n-A")
    );
}

#[test]
fn jwks_skips_unusable_keys_and_fails_when_none_remain() {
    let fx_doc = read_json(fixture("jwt/jwks.json"));
    let rsa1 = fx_doc["keys"][0].clone();
    let mut enc = rsa1.clone();
    enc["use"] = json!("enc");
    enc["kid"] = json!("enc-key");
    let doc = json!({"keys": [
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
        {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        {"kty": "EC", "kid": "p521", "crv": "P-521", "x": "AQAB", "y": "AQAB"},
        enc,
        rsa1,
        {"kty": "RSA", "n": rsa1_n(&fx_doc), "e": "AQAB"},
        fx_doc["keys"][0].clone(),
    ]});
    let jwks = Jwks::from_json(doc.to_string().as_bytes()).unwrap();
    assert_eq!(jwks.kids().collect::<Vec<_>>(), [KID_RSA1]);
    let reasons: Vec<(Option<&str>, &str)> = jwks
        .skipped()
        .iter()
        .map(|s| (s.kid.as_deref(), s.reason.as_str()))
        .collect();
    assert_eq!(reasons.len(), 6, "{reasons:?}");
    assert!(reasons
        .iter()
        .any(|(k, r)| *k == Some(KID_RSA1) && r.contains("duplicate")));
    assert!(reasons.iter().any(|(k, _)| k.is_none()));

    let none_left =
        json!({"keys": [{"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}, enc_only(&fx_doc)]});
    let e = Jwks::from_json(none_left.to_string().as_bytes()).unwrap_err();
    assert_eq!(e, JwksError::NoKeys { skipped: 2 });
    assert_eq!(e.code(), "jwks.no_keys");
}

fn rsa1_n(fx_doc: &Value) -> Value {
    fx_doc["keys"][0]["n"].clone()
}

fn enc_only(fx_doc: &Value) -> Value {
    let mut k = fx_doc["keys"][0].clone();
    k["use"] = json!("enc");
    k
}

#[test]
fn jwks_malformed() {
    for doc in [
        &b""[..],
        b"not json",
        b"[]",
        b"{\"keys\": 1}",
        b"{\"keys\": [\"x\"]}",
        b"{\"Keys\": []}",
    ] {
        let e = Jwks::from_json(doc).unwrap_err();
        assert_eq!(
            e.code(),
            "jwks.malformed",
            "{}",
            String::from_utf8_lossy(doc)
        );
    }
    let weak = br#"{"keys":[{"kty":"RSA","kid":"k","n":"not*base64","e":"AQAB"}]}"#;
    assert_eq!(
        Jwks::from_json(weak).unwrap_err().code(),
        "jwks.key_invalid"
    );
}

// ---------------------------------------------------------------------------
// PyJWT fixtures: every token against its expectation

#[test]
fn fixture_tokens_meet_their_expectations() {
    let fx = Fixtures::load();
    let tokens = fx.doc["tokens"].as_object().unwrap();
    assert!(tokens.len() >= 35, "fixture set shrank: {}", tokens.len());
    for (name, entry) in tokens {
        let expect = entry["expect"].as_str().unwrap();
        let result = bearer::verify(
            entry["jwt"].as_str().unwrap(),
            &fx.jwks,
            &policy_of(entry),
            fx.now(),
        );
        match (expect, result) {
            ("ok", Ok(_)) => {}
            ("ok", Err(e)) => panic!("{name}: expected ok, got {} ({e})", e.code()),
            (want, Ok(_)) => panic!("{name}: expected {want}, got Ok"),
            (want, Err(e)) => assert_eq!(e.code(), want, "{name}: {e}"),
        }
    }
}

#[test]
fn v1_user_access_token() {
    let fx = Fixtures::load();
    let id = ok(fx.verify("v1_user"));
    assert_eq!(id.source, Source::JwtV1);
    assert_eq!(id.kind, PrincipalKind::User);
    assert_eq!(id.issuer, V1_ISS);
    assert_eq!(id.tenant_id.as_deref(), Some(TENANT));
    assert_eq!(id.object_id.as_deref(), Some(USER_OID));
    assert_eq!(id.subject, "v1SubjectAdaLovelace0000000000000000000000");
    assert_eq!(id.upn.as_deref(), Some("ada@contoso.example"));
    assert_eq!(id.display_name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(id.app_id.as_deref(), Some(CALLER_APP));
    assert_eq!(id.auth_methods, ["pwd"]);
    assert!(!id.mfa);
    assert_eq!(id.groups, ["b1c2d3e4-0000-4111-8222-333344445555"]);
    assert!(!id.groups_overage);
    assert_eq!(id.token_id.as_deref(), Some("v1-user-uti-0001"));
    assert_eq!(id.expires_at, at(1767225600 + 3600));
    assert_eq!(id.auth_time, None);
    assert_eq!(id.verification.signed, ["jwt"]);
    assert_eq!(id.verification.algorithm, "RS256");
    assert_eq!(id.verification.key, KID_RSA1);
    assert_eq!(id.user_key().unwrap(), format!("{TENANT}:{USER_OID}"));
}

#[test]
fn v2_user_access_token() {
    let fx = Fixtures::load();
    let id = ok(fx.verify("v2_user"));
    assert_eq!(id.source, Source::JwtV2);
    assert_eq!(id.kind, PrincipalKind::User);
    assert_eq!(id.upn.as_deref(), Some("ada@contoso.example"));
    assert_eq!(id.email.as_deref(), Some("ada.lovelace@contoso.example"));
    assert_eq!(id.app_id.as_deref(), Some(CALLER_APP));
    assert_eq!(id.roles, ["Backup.Operator"]);
    assert_eq!(id.groups.len(), 2);
    assert!(id.auth_methods.is_empty() && !id.mfa);
    assert_eq!(id.token_id.as_deref(), Some("v2-user-uti-0001"));
}

#[test]
fn v2_app_only_is_a_service_account() {
    let fx = Fixtures::load();
    for name in ["v2_app_only", "v2_app_only_no_idtyp"] {
        let id = ok(fx.verify(name));
        assert_eq!(id.kind, PrincipalKind::ServiceAccount, "{name}");
        assert_eq!(id.subject, APP_SP_OID);
        assert_eq!(id.object_id.as_deref(), Some(APP_SP_OID));
        assert!(id.upn.is_none() && id.groups.is_empty());
        assert!(id.roles.contains(&"Backup.Automation".to_string()));
    }
}

#[test]
fn mfa_and_auth_time() {
    let fx = Fixtures::load();
    let id = ok(fx.verify("v2_mfa"));
    assert_eq!(id.auth_methods, ["pwd", "mfa"]);
    assert!(id.mfa);
    assert_eq!(id.auth_time, Some(at(1767225600 - 120)));
}

#[test]
fn id_token_groups_overage() {
    let fx = Fixtures::load();
    let id = ok(fx.verify("v2_id_token_overage"));
    assert!(id.groups_overage);
    assert!(id.groups.is_empty());
    assert_eq!(
        id.groups_link.as_deref(),
        Some("https://graph.microsoft.com/v1.0/users/3f2504e0-4f89-41d3-9a0c-0305e82c3301/getMemberObjects")
    );
    assert_eq!(id.token_id.as_deref(), Some("v2-idtoken-jti-0001"));
    assert_eq!(id.app_id, None);
    // roles without scp, but oid != sub: a user, not an app.
    assert_eq!(id.kind, PrincipalKind::User);

    let id = ok(fx.verify("v2_hasgroups"));
    assert!(id.groups_overage);
    assert_eq!(id.groups_link, None);
}

#[test]
fn es256_and_generic_issuer() {
    let fx = Fixtures::load();
    let id = ok(fx.verify("v2_es256"));
    assert_eq!(id.verification.algorithm, "ES256");
    assert_eq!(id.verification.key, "fedgate-test-ec-1");
    let id = ok(fx.verify("generic_issuer_es256"));
    assert_eq!(id.source, Source::Jwt);
    assert_eq!(id.tenant_id, None);
    assert_eq!(code(fx.verify("es256_not_allowed")), "jwt.alg_forbidden");
}

#[test]
fn attacks_from_fixtures() {
    let fx = Fixtures::load();
    for (name, want) in [
        ("alg_none", "jwt.alg_forbidden"),
        ("hs256_public_pem", "jwt.alg_forbidden"),
        ("hs256_modulus", "jwt.alg_forbidden"),
        ("rs256_with_ec_kid", "jwt.alg_forbidden"),
        ("kid_missing", "jwt.kid_missing"),
        ("kid_unknown", "jwt.kid_unknown"),
        ("foreign_key_right_kid", "jwt.signature_invalid"),
        ("jwk_header", "jwt.header_forbidden"),
        ("jku_header", "jwt.header_forbidden"),
        ("x5u_header", "jwt.header_forbidden"),
        ("x5c_header", "jwt.header_forbidden"),
        ("crit_header", "jwt.crit_unsupported"),
        ("expired", "jwt.expired"),
        ("not_yet_valid", "jwt.not_yet_valid"),
        ("iat_in_future", "jwt.not_yet_valid"),
        ("exp_missing", "jwt.exp_missing"),
        ("wrong_issuer", "jwt.issuer_mismatch"),
        ("wrong_audience", "jwt.audience_mismatch"),
        ("wrong_audience_array", "jwt.audience_mismatch"),
        ("wrong_tid", "jwt.tid_mismatch"),
        ("tid_missing", "jwt.tid_mismatch"),
        ("msa_key_for_tenant", "jwt.issuer_mismatch"),
        ("entra_key_for_generic_issuer", "jwt.issuer_mismatch"),
        ("groups_not_array", "jwt.claim_invalid"),
        ("roles_not_strings", "jwt.claim_invalid"),
        ("exp_string", "jwt.claim_invalid"),
        ("sub_missing", "jwt.claim_invalid"),
    ] {
        assert_eq!(code(fx.verify(name)), want, "{name}");
    }
    // The unknown kid is reported, for the JWKS refetch on rotation.
    match fx.verify("kid_unknown") {
        Err(BearerError::KidUnknown { kid }) => assert_eq!(kid, "attacker-kid"),
        other => panic!("{other:?}"),
    }
    match fx.verify("tid_missing") {
        Err(e @ BearerError::TidMissing { .. }) => assert!(e.to_string().contains("missing")),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        fx.verify("msa_key_for_tenant"),
        Err(BearerError::KeyIssuerMismatch { .. })
    ));
}

#[test]
fn hmac_is_refused_even_when_the_policy_lists_it() {
    let fx = Fixtures::load();
    let mut p = fx.policy("hs256_modulus");
    p.algorithms.push(Algorithm::HS256);
    let r = bearer::verify(fx.token("hs256_modulus"), &fx.jwks, &p, fx.now());
    assert_eq!(code(r), "jwt.alg_forbidden");
}

// ---------------------------------------------------------------------------
// Tampering, stripping, malformed input

#[test]
fn stripped_signature() {
    let fx = Fixtures::load();
    let (h, p, _) = parts(fx.token("v2_user"));
    let r = bearer::verify(&format!("{h}.{p}."), &fx.jwks, &v2_policy(), fx.now());
    assert_eq!(code(r), "jwt.signature_invalid");
}

#[test]
fn tampered_payload() {
    let fx = Fixtures::load();
    let (h, _, s) = parts(fx.token("v2_user"));
    let mut claims = v2_claims(&fx);
    claims["roles"] = json!(["Backup.Operator", "Backup.GlobalAdmin"]);
    let forged = format!("{h}.{}.{s}", b64(claims.to_string().as_bytes()));
    assert_eq!(
        code(bearer::verify(&forged, &fx.jwks, &v2_policy(), fx.now())),
        "jwt.signature_invalid"
    );
    // A flipped bit of the signature itself.
    let token = fx.token("v2_user");
    let mut sig = unb64(parts(token).2);
    sig[10] ^= 1;
    let forged = format!("{h}.{}.{}", parts(token).1, b64(&sig));
    assert_eq!(
        code(bearer::verify(&forged, &fx.jwks, &v2_policy(), fx.now())),
        "jwt.signature_invalid"
    );
}

#[test]
fn header_alg_swapped_to_other_rsa_alg() {
    // An RS256 signature relabelled PS256 or RS384: the signature cannot verify.
    let fx = Fixtures::load();
    let (_, p, s) = parts(fx.token("v2_user"));
    let mut policy = v2_policy();
    policy.algorithms = vec![Algorithm::RS256, Algorithm::PS256, Algorithm::RS384];
    for alg in ["PS256", "RS384"] {
        let h = b64(json!({"alg": alg, "kid": KID_RSA1, "typ": "JWT"})
            .to_string()
            .as_bytes());
        let r = bearer::verify(&format!("{h}.{p}.{s}"), &fx.jwks, &policy, fx.now());
        assert_eq!(code(r), "jwt.signature_invalid", "{alg}");
    }
}

#[test]
fn alg_none_spellings_and_unknown_algs() {
    let fx = Fixtures::load();
    let (_, p, _) = parts(fx.token("v2_user"));
    for alg in [
        json!("none"),
        json!("None"),
        json!("NONE"),
        json!("nOnE"),
        json!("RS1"),
        json!("ES512"),
        json!("EdDSA"),
        json!(""),
    ] {
        let h = b64(json!({"alg": alg, "kid": KID_RSA1}).to_string().as_bytes());
        for token in [format!("{h}.{p}."), format!("{h}.{p}.AAAA")] {
            let r = bearer::verify(&token, &fx.jwks, &v2_policy(), fx.now());
            assert_eq!(code(r), "jwt.alg_forbidden", "{alg}");
        }
    }
}

#[test]
fn key_confusion_between_rsa_and_ec() {
    let fx = Fixtures::load();
    let mut policy = v2_policy();
    policy.algorithms = vec![Algorithm::RS256, Algorithm::ES256, Algorithm::ES384];
    // An ES256 token naming the RSA key.
    let es = fx.token("v2_es256");
    let (_, p, s) = parts(es);
    let h = b64(json!({"alg": "ES256", "kid": KID_RSA1})
        .to_string()
        .as_bytes());
    let r = bearer::verify(&format!("{h}.{p}.{s}"), &fx.jwks, &policy, fx.now());
    assert!(matches!(r, Err(BearerError::KeyAlgMismatch { .. })));
    // ES384 naming the P-256 key (which also declares alg ES256).
    let h = b64(json!({"alg": "ES384", "kid": "fedgate-test-ec-1"})
        .to_string()
        .as_bytes());
    let r = bearer::verify(&format!("{h}.{p}.{s}"), &fx.jwks, &policy, fx.now());
    assert_eq!(code(r), "jwt.alg_forbidden");
}

#[test]
fn ps256_signed_here_verifies_when_allowed() {
    let fx = Fixtures::load();
    let token = sign(&json!({"alg": "PS256", "kid": KID_RSA1}), &v2_claims(&fx));
    assert_eq!(
        code(bearer::verify(&token, &fx.jwks, &v2_policy(), fx.now())),
        "jwt.alg_forbidden"
    );
    let mut policy = v2_policy();
    policy.algorithms = vec![Algorithm::PS256];
    let id = ok(bearer::verify(&token, &fx.jwks, &policy, fx.now()));
    assert_eq!(id.verification.algorithm, "PS256");
}

#[test]
fn oversized_token() {
    let fx = Fixtures::load();
    let mut claims = v2_claims(&fx);
    claims["groups"] = json!((0..500)
        .map(|i| format!("00000000-0000-4000-8000-{i:012}"))
        .collect::<Vec<_>>());
    let big = sign(&rs256_header(), &claims);
    assert!(big.len() > 16 * 1024);
    assert_eq!(
        code(bearer::verify(&big, &fx.jwks, &v2_policy(), fx.now())),
        "jwt.malformed"
    );
    let mut roomy = v2_policy();
    roomy.max_token_len = 64 * 1024;
    assert_eq!(
        ok(bearer::verify(&big, &fx.jwks, &roomy, fx.now()))
            .groups
            .len(),
        500
    );
    // Junk far beyond the limit is refused before anything is decoded.
    let junk = "a".repeat(1 << 20);
    assert_eq!(
        code(bearer::verify(&junk, &fx.jwks, &v2_policy(), fx.now())),
        "jwt.malformed"
    );
    // A tighter policy limit applies to a normal token.
    let mut tight = v2_policy();
    tight.max_token_len = 100;
    assert_eq!(
        code(bearer::verify(
            fx.token("v2_user"),
            &fx.jwks,
            &tight,
            fx.now()
        )),
        "jwt.malformed"
    );
}

#[test]
fn malformed_tokens() {
    let fx = Fixtures::load();
    let token = fx.token("v2_user");
    let (h, p, s) = parts(token);
    let cases = [
        String::new(),
        "abc".to_string(),
        format!("{h}.{p}"),
        format!("{h}.{p}.{s}.{s}"),
        format!("{h}.{p}.{s}.{s}.{s}"),
        format!(".{p}.{s}"),
        format!("{h}..{s}"),
        format!("{h}=.{p}.{s}"),
        format!("{h}.{p}.{s}="),
        format!("{h}.{p}.{s}!"),
        format!(" {token}"),
        format!("{token}\n"),
        format!("{}.{p}.{s}", b64(b"not json")),
        format!("{}.{p}.{s}", b64(b"[\"RS256\"]")),
        format!("{}.{p}.{s}", b64(br#"{"alg":"RS256","kid":"a"} trailing"#)),
        format!("{}.{p}.{s}", b64(br#"{"kid":"fedgate-test-rsa-1"}"#)),
        format!("{}.{p}.{s}", b64(br#"{"alg":"RS256","kid":42}"#)),
        format!(
            "{}.{p}.{s}",
            b64(br#"{"alg":"RS256","alg":"RS256","kid":"fedgate-test-rsa-1"}"#)
        ),
        format!("{}.{p}.{s}", h.replace('e', "+")),
        // Standard-alphabet base64 in the payload (not base64url).
        format!("{h}.{}.{s}", STANDARD.encode(claims_with_plus_slash(&fx))),
    ];
    for t in &cases {
        assert_eq!(
            code(bearer::verify(t, &fx.jwks, &v2_policy(), fx.now())),
            "jwt.malformed",
            "{t:.60}"
        );
    }
}

/// A JSON payload whose standard base64 contains '+' or '/'.
fn claims_with_plus_slash(fx: &Fixtures) -> Vec<u8> {
    let mut c = v2_claims(fx);
    c["name"] = json!("\u{fbff}\u{fbff}\u{fbff}>>>???");
    let bytes = c.to_string().into_bytes();
    let enc = STANDARD.encode(&bytes);
    assert!(enc.contains('+') || enc.contains('/'));
    bytes
}

#[test]
fn payload_shapes_signed_here() {
    let fx = Fixtures::load();
    let h = rs256_header().to_string();
    let now = fx.now();
    for (payload, want) in [
        (&b"not json"[..], "jwt.malformed"),
        (b"[1,2]", "jwt.malformed"),
        (b"\"a string\"", "jwt.malformed"),
        (b"{\"exp\": 1}garbage", "jwt.malformed"),
    ] {
        let t = sign_raw(h.as_bytes(), payload, "rsa1.pem");
        assert_eq!(
            code(bearer::verify(&t, &fx.jwks, &v2_policy(), now)),
            want,
            "{}",
            String::from_utf8_lossy(payload)
        );
    }
    // Claims of the wrong JSON type.
    let base = v2_claims(&fx);
    for (claim, value) in [
        ("groups", json!("admins")),
        ("groups", json!([["nested"]])),
        ("roles", json!({"a": 1})),
        ("amr", json!("mfa")),
        ("aud", json!(42)),
        ("aud", json!([CLIENT_ID, 7])),
        ("iss", json!([V2_ISS])),
        ("tid", json!(1)),
        ("nbf", json!("1767225600")),
        ("exp", json!(true)),
        ("hasgroups", json!("true")),
        ("_claim_names", json!(["groups"])),
        ("sub", json!({"id": 1})),
    ] {
        let mut c = base.clone();
        c[claim] = value.clone();
        let t = sign(&rs256_header(), &c);
        let e = bearer::verify(&t, &fx.jwks, &v2_policy(), now).unwrap_err();
        assert_eq!(e.code(), "jwt.claim_invalid", "{claim}: {value}");
        // The message names the claim.
        assert!(e.to_string().contains(&format!("`{claim}`")), "{e}");
    }
    // A duplicated claim is refused rather than resolved either way.
    let dup = format!(
        "{{\"iss\":\"{V2_ISS}\",\"iss\":\"https://evil.example/\",\"aud\":\"{CLIENT_ID}\",\"exp\":{},\"sub\":\"s\",\"tid\":\"{TENANT}\"}}",
        1767225600 + 3600
    );
    let t = sign_raw(h.as_bytes(), dup.as_bytes(), "rsa1.pem");
    assert_eq!(
        code(bearer::verify(&t, &fx.jwks, &v2_policy(), now)),
        "jwt.claim_invalid"
    );
    // null counts as absent.
    let mut c = base.clone();
    c["email"] = Value::Null;
    c["groups"] = Value::Null;
    let id = ok(bearer::verify(
        &sign(&rs256_header(), &c),
        &fx.jwks,
        &v2_policy(),
        now,
    ));
    assert!(id.email.is_none() && id.groups.is_empty());
}

#[test]
fn header_members_that_are_refused_whatever_their_value() {
    let fx = Fixtures::load();
    let claims = v2_claims(&fx);
    for (member, value, want) in [
        ("jku", json!(null), "jwt.header_forbidden"),
        ("x5u", json!(""), "jwt.header_forbidden"),
        ("jwk", json!({}), "jwt.header_forbidden"),
        ("x5c", json!([]), "jwt.header_forbidden"),
        ("crit", json!([]), "jwt.crit_unsupported"),
        ("crit", json!(["b64"]), "jwt.crit_unsupported"),
    ] {
        let mut h = rs256_header();
        h[member] = value;
        let t = sign(&h, &claims);
        assert_eq!(
            code(bearer::verify(&t, &fx.jwks, &v2_policy(), fx.now())),
            want,
            "{member}"
        );
    }
    // Harmless extra members are fine.
    let mut h = rs256_header();
    h["x5t"] = json!("abc");
    h["typ"] = json!("at+jwt");
    ok(bearer::verify(
        &sign(&h, &claims),
        &fx.jwks,
        &v2_policy(),
        fx.now(),
    ));
}

// ---------------------------------------------------------------------------
// Time window edges (default skew 180 s)

#[test]
fn time_window_edges() {
    let fx = Fixtures::load();
    let now = at(1767226200);
    let skew = 180;
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = v2_claims(&fx);
        f(&mut c);
        bearer::verify(&sign(&rs256_header(), &c), &fx.jwks, &v2_policy(), now)
    };
    let t = now.unix_timestamp();
    // Expired iff now - skew >= exp.
    assert_eq!(code(with(&|c| c["exp"] = json!(t - skew))), "jwt.expired");
    ok(with(&|c| c["exp"] = json!(t - skew + 1)));
    // nbf / iat: not after now + skew.
    ok(with(&|c| c["nbf"] = json!(t + skew)));
    assert_eq!(
        code(with(&|c| c["nbf"] = json!(t + skew + 1))),
        "jwt.not_yet_valid"
    );
    ok(with(&|c| c["iat"] = json!(t + skew)));
    assert_eq!(
        code(with(&|c| c["iat"] = json!(t + skew + 1))),
        "jwt.not_yet_valid"
    );
    // Fractional NumericDates round towards "less valid".
    assert_eq!(
        code(with(&|c| c["nbf"] = json!((t + skew) as f64 + 0.5))),
        "jwt.not_yet_valid"
    );
    assert_eq!(
        code(with(&|c| c["exp"] = json!((t - skew) as f64 + 0.5))),
        "jwt.expired"
    );
    ok(with(&|c| c["exp"] = json!((t + 60) as f64 + 0.25)));
    // Absurd dates.
    assert_eq!(
        code(with(&|c| c["exp"] = json!(i64::MAX))),
        "jwt.claim_invalid"
    );
    assert_eq!(
        code(with(&|c| c["exp"] = json!(u64::MAX))),
        "jwt.claim_invalid"
    );
    assert_eq!(
        code(with(&|c| c["exp"] = json!(1e300))),
        "jwt.claim_invalid"
    );
    assert_eq!(
        code(with(&|c| c["nbf"] = json!(-1e15))),
        "jwt.claim_invalid"
    );
    // Zero skew.
    let mut c = v2_claims(&fx);
    c["exp"] = json!(t);
    let mut p = v2_policy();
    p.skew = Duration::ZERO;
    assert_eq!(
        code(bearer::verify(
            &sign(&rs256_header(), &c),
            &fx.jwks,
            &p,
            now
        )),
        "jwt.expired"
    );
    c["exp"] = json!(t + 1);
    ok(bearer::verify(
        &sign(&rs256_header(), &c),
        &fx.jwks,
        &p,
        now,
    ));
}

#[test]
fn several_audiences_in_the_policy() {
    let fx = Fixtures::load();
    let mut p = v2_policy();
    p.audiences = vec!["api://other".into(), CLIENT_ID.into()];
    ok(bearer::verify(fx.token("v2_user"), &fx.jwks, &p, fx.now()));
    p.audiences.clear();
    assert_eq!(
        code(bearer::verify(fx.token("v2_user"), &fx.jwks, &p, fx.now())),
        "jwt.audience_mismatch"
    );
    // No aud at all.
    let mut c = v2_claims(&fx);
    c.as_object_mut().unwrap().remove("aud");
    assert_eq!(
        code(bearer::verify(
            &sign(&rs256_header(), &c),
            &fx.jwks,
            &v2_policy(),
            fx.now()
        )),
        "jwt.audience_mismatch"
    );
    // No iss at all.
    let mut c = v2_claims(&fx);
    c.as_object_mut().unwrap().remove("iss");
    assert_eq!(
        code(bearer::verify(
            &sign(&rs256_header(), &c),
            &fx.jwks,
            &v2_policy(),
            fx.now()
        )),
        "jwt.issuer_mismatch"
    );
}

#[test]
fn issuer_is_compared_exactly() {
    let fx = Fixtures::load();
    for iss in [
        format!("{V2_ISS}/"),
        V2_ISS.to_uppercase(),
        V2_ISS.replace("https", "http"),
        format!(
            "https://login.microsoftonline.com/{}/v2.0",
            TENANT.to_uppercase()
        ),
    ] {
        let mut c = v2_claims(&fx);
        c["iss"] = json!(iss);
        let r = bearer::verify(&sign(&rs256_header(), &c), &fx.jwks, &v2_policy(), fx.now());
        assert_eq!(code(r), "jwt.issuer_mismatch", "{iss}");
    }
}

// ---------------------------------------------------------------------------
// Synthetic Entra corpus (entra/generated): NOW = 2025-01-15T12:00:00Z

const GEN_NOW: i64 = 1736942400;
const GEN_TENANT: &str = "aaaabbbb-0000-cccc-1111-dddd2222eeee";
const GEN_API: &str = "api://11112222-bbbb-3333-cccc-4444dddd5555";
const GEN_CLIENT: &str = "22223333-cccc-4444-dddd-5555eeee6666";

fn generated() -> (Value, Jwks) {
    (
        read_json(corpus_path("entra/generated/jwts.json")),
        Jwks::from_json(&read(corpus_path("entra/generated/jwks.json"))).unwrap(),
    )
}

fn gen_v1() -> BearerPolicy {
    BearerPolicy::new(format!("https://sts.windows.net/{GEN_TENANT}/"), GEN_API)
}

fn gen_v2(aud: &str) -> BearerPolicy {
    BearerPolicy::new(
        format!("https://login.microsoftonline.com/{GEN_TENANT}/v2.0"),
        aud,
    )
}

#[test]
fn generated_valid_tokens() {
    let (t, jwks) = generated();
    let now = at(GEN_NOW);
    let tok = |n: &str| t[n].as_str().unwrap().to_string();

    let id = ok(bearer::verify(
        &tok("v1_access_token"),
        &jwks,
        &gen_v1(),
        now,
    ));
    assert_eq!(id.source, Source::JwtV1);
    assert_eq!(id.tenant_id.as_deref(), Some(GEN_TENANT));
    assert_eq!(id.app_id.as_deref(), Some(GEN_CLIENT));
    assert_eq!(id.upn.as_deref(), Some("testuser@contoso.example"));
    assert_eq!(id.kind, PrincipalKind::User);
    assert_eq!(id.roles, ["Gateway.Admin"]);

    let id = ok(bearer::verify(
        &tok("v2_access_token"),
        &jwks,
        &gen_v2(GEN_API),
        now,
    ));
    assert_eq!(id.source, Source::JwtV2);
    assert_eq!(id.app_id.as_deref(), Some(GEN_CLIENT));
    assert_eq!(id.display_name.as_deref(), Some("Test User"));
    assert_eq!(id.groups, ["b1c2d3e4-0000-1111-2222-333344445555"]);

    let id = ok(bearer::verify(
        &tok("v2_id_token_overage"),
        &jwks,
        &gen_v2(GEN_CLIENT),
        now,
    ));
    assert!(id.groups_overage);
    assert_eq!(
        id.groups_link.as_deref(),
        Some("https://graph.microsoft.com/v1.0/users/3f2504e0-4f89-11d3-9a0c-0305e82c3301/getMemberObjects")
    );
    assert_eq!(id.kind, PrincipalKind::User);

    let id = ok(bearer::verify(
        &tok("v2_id_token_hasgroups"),
        &jwks,
        &gen_v2(GEN_CLIENT),
        now,
    ));
    assert!(id.groups_overage && id.groups_link.is_none());
}

#[test]
fn generated_attacks() {
    let (t, jwks) = generated();
    let now = at(GEN_NOW);
    let tok = |n: &str| t[n].as_str().unwrap().to_string();
    let p = gen_v2(GEN_API);
    assert_eq!(
        code(bearer::verify(&tok("attack_alg_none"), &jwks, &p, now)),
        "jwt.alg_forbidden"
    );
    assert_eq!(
        code(bearer::verify(
            &tok("attack_hs256_with_jwk_as_secret"),
            &jwks,
            &p,
            now
        )),
        "jwt.alg_forbidden"
    );
    assert_eq!(
        code(bearer::verify(&tok("attack_unknown_kid"), &jwks, &p, now)),
        "jwt.kid_unknown"
    );
    assert_eq!(
        code(bearer::verify(
            &tok("attack_wrong_tid_issuer"),
            &jwks,
            &p,
            now
        )),
        "jwt.issuer_mismatch"
    );
    // Configured for the other tenant, the token's tid gives it away.
    let other = BearerPolicy::new(
        "https://login.microsoftonline.com/ffffffff-0000-0000-0000-000000000000/v2.0",
        GEN_API,
    );
    assert_eq!(
        code(bearer::verify(
            &tok("attack_wrong_tid_issuer"),
            &jwks,
            &other,
            now
        )),
        "jwt.tid_mismatch"
    );
    // "attack_expired" expired 60 s before NOW: inside the default 180 s skew,
    // refused with a skew under a minute.
    assert_eq!(
        payload_of(&tok("attack_expired"))["exp"],
        json!(GEN_NOW - 60)
    );
    ok(bearer::verify(&tok("attack_expired"), &jwks, &p, now));
    let mut strict = p.clone();
    strict.skew = Duration::seconds(30);
    assert_eq!(
        code(bearer::verify(&tok("attack_expired"), &jwks, &strict, now)),
        "jwt.expired"
    );
    assert_eq!(
        code(bearer::verify(
            &tok("v2_access_token"),
            &jwks,
            &p,
            at(GEN_NOW + 3600 + 180)
        )),
        "jwt.expired"
    );
}

#[test]
fn generated_per_key_issuer_mismatch() {
    // The synthetic JWKS scopes its key to tenant aaaabbbb; re-scoped to
    // another tenant, the same valid token must be refused.
    let (t, _) = generated();
    let mut doc = read_json(corpus_path("entra/generated/jwks.json"));
    doc["keys"][0]["issuer"] =
        json!("https://login.microsoftonline.com/ffffffff-0000-0000-0000-000000000000/v2.0");
    let jwks = Jwks::from_json(doc.to_string().as_bytes()).unwrap();
    let token = t["v2_access_token"].as_str().unwrap();
    let r = bearer::verify(token, &jwks, &gen_v2(GEN_API), at(GEN_NOW));
    assert_eq!(code(r), "jwt.issuer_mismatch");
    let r = bearer::verify(
        t["v1_access_token"].as_str().unwrap(),
        &jwks,
        &gen_v1(),
        at(GEN_NOW),
    );
    assert_eq!(code(r), "jwt.issuer_mismatch");
    // With the {tenantid} template, both verify.
    doc["keys"][0]["issuer"] = json!("https://login.microsoftonline.com/{tenantid}/v2.0");
    let jwks = Jwks::from_json(doc.to_string().as_bytes()).unwrap();
    ok(bearer::verify(token, &jwks, &gen_v2(GEN_API), at(GEN_NOW)));
    ok(bearer::verify(
        t["v1_access_token"].as_str().unwrap(),
        &jwks,
        &gen_v1(),
        at(GEN_NOW),
    ));
}

// ---------------------------------------------------------------------------
// Real AAD tokens of 2014 (identitymodel), with the 2014 JWKS

fn aad_2014_jwks() -> Jwks {
    Jwks::from_json(&read(corpus_path(
        "entra/identitymodel/JsonWebKeySet_AAD_2014.json",
    )))
    .unwrap()
}

/// The v1 access token (aud graph.windows.net, groups overage), its policy and
/// an instant a minute after its iat.
fn aad_2014_access() -> (String, BearerPolicy, OffsetDateTime) {
    let path = "entra/identitymodel/jwt/aad_v1_access_token_graph_with_groups_overage_2014.jwt";
    let token = String::from_utf8(read(corpus_path(path)))
        .unwrap()
        .trim()
        .to_string();
    let decoded = read_json(corpus_path(&format!("{path}.decoded.json")));
    let p = &decoded["payload"];
    let policy = BearerPolicy::new(p["iss"].as_str().unwrap(), p["aud"].as_str().unwrap());
    (token, policy, at(p["iat"].as_i64().unwrap() + 60))
}

#[test]
fn aad_2014_access_token_verifies() {
    let jwks = aad_2014_jwks();
    let (token, policy, now) = aad_2014_access();
    assert_eq!(now, at(1405968922 + 60));
    let id = ok(bearer::verify(&token, &jwks, &policy, now));
    assert_eq!(id.source, Source::JwtV1);
    assert_eq!(
        id.issuer,
        "https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/"
    );
    assert_eq!(
        id.tenant_id.as_deref(),
        Some("72f988bf-86f1-41af-91ab-2d7cd011db47")
    );
    assert_eq!(
        id.object_id.as_deref(),
        Some("35c76eed-f640-4ae7-aae2-3277171ea3e5")
    );
    assert_eq!(id.subject, "5GE0VHAJPniGMIin7wL4PE0Q9203Lm4lrARpkpAAbjk");
    assert_eq!(id.upn.as_deref(), Some("nbaliga@microsoft.com"));
    assert_eq!(
        id.app_id.as_deref(),
        Some("118e170f-cf26-400f-a0e9-96910b31187e")
    );
    assert_eq!(id.auth_methods, ["pwd"]);
    assert!(!id.mfa);
    assert_eq!(id.kind, PrincipalKind::User);
    assert!(id.groups_overage);
    assert_eq!(
        id.groups_link.as_deref(),
        Some("https://graph.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/users/35c76eed-f640-4ae7-aae2-3277171ea3e5/getMemberObjects")
    );
    assert_eq!(id.expires_at, at(1405972822));
    // The token names its key by x5t only (no kid), as AAD did in 2014.
    assert_eq!(id.verification.key, "kriMPdmBvx68skT8-mPAB3BseeA");
    assert_eq!(id.verification.algorithm, "RS256");
}

#[test]
fn aad_2014_access_token_rejections() {
    let jwks = aad_2014_jwks();
    let (token, policy, now) = aad_2014_access();
    assert_eq!(
        code(bearer::verify(&token, &jwks, &policy, at(1405972822 + 180))),
        "jwt.expired"
    );
    assert_eq!(
        code(bearer::verify(&token, &jwks, &policy, at(1405968922 - 181))),
        "jwt.not_yet_valid"
    );
    let mut p = policy.clone();
    p.audiences = vec!["https://graph.microsoft.com".into()];
    assert_eq!(
        code(bearer::verify(&token, &jwks, &p, now)),
        "jwt.audience_mismatch"
    );
    let mut p = policy.clone();
    p.issuer = "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0".into();
    assert_eq!(
        code(bearer::verify(&token, &jwks, &p, now)),
        "jwt.issuer_mismatch"
    );
    // Tampered: one claim changed, signature kept.
    let (h, _, s) = parts(&token);
    let mut claims = payload_of(&token);
    claims["upn"] = json!("admin@microsoft.com");
    let forged = format!("{h}.{}.{s}", b64(claims.to_string().as_bytes()));
    assert_eq!(
        code(bearer::verify(&forged, &jwks, &policy, now)),
        "jwt.signature_invalid"
    );
    // Right x5t, wrong key: point the x5t at the other 2014 key.
    let mut header: Value = serde_json::from_slice(&unb64(h)).unwrap();
    header["x5t"] = json!("NGTFvdK-fythEuLwjpwAJOM9n-A");
    let (_, p2, _) = parts(&token);
    let moved = format!("{}.{p2}.{s}", b64(header.to_string().as_bytes()));
    assert_eq!(
        code(bearer::verify(&moved, &jwks, &policy, now)),
        "jwt.signature_invalid"
    );
    // Neither kid nor x5t.
    header.as_object_mut().unwrap().remove("x5t");
    let bare = format!("{}.{p2}.{s}", b64(header.to_string().as_bytes()));
    assert_eq!(
        code(bearer::verify(&bare, &jwks, &policy, now)),
        "jwt.kid_missing"
    );
    // Against today's Entra JWKS, the 2014 key is gone: refetch territory.
    let today = Jwks::from_json(&read(corpus_path(
        "entra/panva-wellknown/entra-common-v2.0-jwks.json",
    )))
    .unwrap();
    assert_eq!(
        code(bearer::verify(&token, &today, &policy, now)),
        "jwt.kid_unknown"
    );
}

#[test]
fn aad_2014_id_token_verifies() {
    let jwks = aad_2014_jwks();
    let path = "entra/identitymodel/jwt/aad_v1_id_token_2014.jwt";
    let token = String::from_utf8(read(corpus_path(path)))
        .unwrap()
        .trim()
        .to_string();
    let decoded = read_json(corpus_path(&format!("{path}.decoded.json")));
    let p = &decoded["payload"];
    let policy = BearerPolicy::new(p["iss"].as_str().unwrap(), p["aud"].as_str().unwrap());
    let now = at(p["iat"].as_i64().unwrap() + 60);
    let id = ok(bearer::verify(&token, &jwks, &policy, now));
    assert_eq!(id.upn.as_deref(), Some("bob@cyrano.onmicrosoft.com"));
    assert_eq!(
        id.tenant_id.as_deref(),
        Some("add29489-7269-41f4-8841-b63c95564420")
    );
    assert!(!id.groups_overage);
    assert_eq!(id.token_id, None);
}

#[test]
fn right_kid_wrong_key_against_real_entra_jwks() {
    // A token naming a real 2024 Entra kid, signed with fedgate's test key.
    let today = Jwks::from_json(&read(corpus_path(
        "entra/panva-wellknown/entra-common-v2.0-jwks.json",
    )))
    .unwrap();
    let fx = Fixtures::load();
    let token = sign(
        &json!({"alg": "RS256", "kid": "Mc7l3Iz93g7uwgNeEmmw_WYGPko"}),
        &v2_claims(&fx),
    );
    assert_eq!(
        code(bearer::verify(&token, &today, &v2_policy(), fx.now())),
        "jwt.signature_invalid"
    );
}

// ---------------------------------------------------------------------------
// Throughput (run with `cargo test --release --test integration -- --ignored jwt::throughput --nocapture`)
