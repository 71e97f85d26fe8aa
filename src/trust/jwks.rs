//! JSON Web Key Sets (RFC 7517) as Entra ID publishes them, ready to verify with.
//!
//! [`Jwks::from_json`] turns the bytes of a JWKS document into keys addressed by
//! `kid`. Everything a verification needs is done once, here: the base64 of the
//! key material is decoded, X.509 certificates (`x5c`) are parsed, and the public
//! key is parsed into an aws-lc-rs [`ParsedPublicKey`] for every algorithm the key
//! may verify. A verification then costs one RSA or ECDSA operation and nothing
//! else (jsonwebtoken's own `verify` rebuilds the RSA key on every call, about
//! 15% of an RS256 verification; it is the same aws-lc backend underneath).
//!
//! Tolerated, because Entra has published them:
//! - non-standard `alg` values (the 2014 AAD JWKS says `"alg": "SHA256"`): kept
//!   as declared, but only a JOSE algorithm name constrains what the key verifies;
//! - `key_ops` of any shape (`["signing"]`), ignored;
//! - a per-key `issuer` (Entra's multi-tenant JWKS:
//!   `https://login.microsoftonline.com/{tenantid}/v2.0`), kept for the verifier;
//! - `n`/`e` in standard base64 with padding instead of base64url;
//! - keys that carry only a certificate chain (`x5c`): the public key of the
//!   first certificate is used. The certificate is not validated (Entra's are
//!   self-issued and stay published past their `notAfter`); it is only a
//!   container for the key. When both `n`/`e` and `x5c` are present they must agree.
//!
//! Skipped, and listed in [`Jwks::skipped`]: keys of another `kty` (`oct`, `OKP`,
//! ...), keys whose `use` is not `sig`, EC keys on other curves than P-256 and
//! P-384, RSA keys outside 2048..=8192 bits, keys without a `kid`, and a second
//! key with a `kid` already taken (the first one wins). A key of a supported type
//! whose material does not decode fails the whole set ([`JwksError::KeyInvalid`]):
//! the caller keeps its last known good set rather than silently losing a key.

use std::fmt;

use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaPublicKeyComponents};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use crate::identity::ErrorCode;

/// Why a JWKS document could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// The document is not a JSON object with a `keys` array of objects.
    #[error("JWKS is malformed: {reason}")]
    Malformed { reason: String },
    /// A key of a supported type has key material that cannot be decoded or used.
    #[error("JWKS key {kid:?} is invalid: {reason}")]
    KeyInvalid { kid: String, reason: String },
    /// No key in the set can verify signatures (all were skipped, or there were none).
    #[error("JWKS has no usable signing key ({skipped} key(s) skipped)")]
    NoKeys { skipped: usize },
}

impl ErrorCode for JwksError {
    fn code(&self) -> &'static str {
        match self {
            JwksError::Malformed { .. } => "jwks.malformed",
            JwksError::KeyInvalid { .. } => "jwks.key_invalid",
            JwksError::NoKeys { .. } => "jwks.no_keys",
        }
    }
}

/// The key type (`kty`) of a usable key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// `RSA`: verifies RS256/384/512 and PS256/384/512.
    Rsa,
    /// `EC`: verifies ES256 (P-256) or ES384 (P-384).
    Ec,
}

impl KeyType {
    /// The JWK `kty` value.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Rsa => "RSA",
            KeyType::Ec => "EC",
        }
    }
}

/// An elliptic curve fedgate verifies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
}

impl Curve {
    /// The JWK `crv` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
        }
    }
}

/// Why [`Jwk::verify`] refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyUseError {
    /// The key cannot verify this algorithm (type, curve or declared `alg` differ).
    #[error("key cannot verify this algorithm")]
    AlgorithmIncompatible,
    /// The signature does not verify with this key.
    #[error("signature does not verify")]
    SignatureInvalid,
}

/// One usable verification key.
#[derive(Clone)]
pub struct Jwk {
    kid: String,
    kty: KeyType,
    alg: Option<String>,
    issuer: Option<String>,
    x5t: Option<String>,
    material: Material,
}

#[derive(Clone)]
enum Material {
    Rsa {
        bits: usize,
        // Indexed by `rsa_index`: RS256, RS384, RS512, PS256, PS384, PS512.
        parsed: Box<[ParsedPublicKey; 6]>,
    },
    Ec {
        curve: Curve,
        parsed: ParsedPublicKey,
    },
}

const RSA_ALGS: [(Algorithm, &sig::RsaParameters); 6] = [
    (Algorithm::RS256, &sig::RSA_PKCS1_2048_8192_SHA256),
    (Algorithm::RS384, &sig::RSA_PKCS1_2048_8192_SHA384),
    (Algorithm::RS512, &sig::RSA_PKCS1_2048_8192_SHA512),
    (Algorithm::PS256, &sig::RSA_PSS_2048_8192_SHA256),
    (Algorithm::PS384, &sig::RSA_PSS_2048_8192_SHA384),
    (Algorithm::PS512, &sig::RSA_PSS_2048_8192_SHA512),
];

fn rsa_index(alg: Algorithm) -> Option<usize> {
    RSA_ALGS.iter().position(|(a, _)| *a == alg)
}

impl Jwk {
    /// The key id (`kid`).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The key type.
    pub fn kty(&self) -> KeyType {
        self.kty
    }

    /// The `alg` the key declares, exactly as published (may be non-standard).
    pub fn alg(&self) -> Option<&str> {
        self.alg.as_deref()
    }

    /// The declared `alg` when it is a JOSE signature algorithm name.
    pub fn declared_algorithm(&self) -> Option<Algorithm> {
        self.alg.as_deref().and_then(|a| a.parse().ok())
    }

    /// Entra's per-key `issuer` (may contain the `{tenantid}` template).
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// The certificate thumbprint (`x5t`), when published.
    pub fn x5t(&self) -> Option<&str> {
        self.x5t.as_deref()
    }

    /// RSA modulus size in bits, for RSA keys.
    pub fn rsa_bits(&self) -> Option<usize> {
        match &self.material {
            Material::Rsa { bits, .. } => Some(*bits),
            Material::Ec { .. } => None,
        }
    }

    /// The curve, for EC keys.
    pub fn curve(&self) -> Option<Curve> {
        match &self.material {
            Material::Ec { curve, .. } => Some(*curve),
            Material::Rsa { .. } => None,
        }
    }

    /// Whether this key may verify `alg`: its type (and curve) fit, and a
    /// declared JOSE `alg` is the same. HMAC and EdDSA never fit.
    pub fn supports(&self, alg: Algorithm) -> bool {
        if let Some(declared) = self.declared_algorithm() {
            if declared != alg {
                return false;
            }
        }
        match &self.material {
            Material::Rsa { .. } => rsa_index(alg).is_some(),
            Material::Ec { curve, .. } => matches!(
                (curve, alg),
                (Curve::P256, Algorithm::ES256) | (Curve::P384, Algorithm::ES384)
            ),
        }
    }

    /// Verify a JWS signature (the raw bytes, already base64url-decoded) over
    /// `message` (the ASCII `header.payload`).
    pub fn verify(
        &self,
        alg: Algorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), KeyUseError> {
        if !self.supports(alg) {
            return Err(KeyUseError::AlgorithmIncompatible);
        }
        let parsed = match &self.material {
            Material::Rsa { parsed, .. } => {
                let i = rsa_index(alg).ok_or(KeyUseError::AlgorithmIncompatible)?;
                parsed.get(i).ok_or(KeyUseError::AlgorithmIncompatible)?
            }
            Material::Ec { parsed, .. } => parsed,
        };
        parsed
            .verify_sig(message, signature)
            .map_err(|_| KeyUseError::SignatureInvalid)
    }
}

impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Jwk");
        d.field("kid", &self.kid).field("kty", &self.kty);
        match &self.material {
            Material::Rsa { bits, .. } => d.field("bits", bits),
            Material::Ec { curve, .. } => d.field("crv", curve),
        };
        d.field("alg", &self.alg)
            .field("issuer", &self.issuer)
            .field("x5t", &self.x5t)
            .finish()
    }
}

/// A key that [`Jwks::from_json`] left out, and why (for `fedgate check`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedKey {
    /// The key's `kid`, when it had one.
    pub kid: Option<String>,
    /// Its position in the `keys` array.
    pub index: usize,
    pub reason: String,
}

/// A parsed JWKS: the usable verification keys, by `kid`.
#[derive(Clone, Debug)]
pub struct Jwks {
    keys: Vec<Jwk>,
    skipped: Vec<SkippedKey>,
}

impl Jwks {
    /// Parse a JWKS document. See the module documentation for what is
    /// tolerated, skipped and refused.
    pub fn from_json(bytes: &[u8]) -> Result<Jwks, JwksError> {
        let doc: Value = serde_json::from_slice(bytes).map_err(|e| JwksError::Malformed {
            reason: format!("not JSON: {e}"),
        })?;
        let keys = doc
            .as_object()
            .ok_or_else(|| malformed("the document is not a JSON object"))?
            .get("keys")
            .ok_or_else(|| malformed("no `keys` member"))?
            .as_array()
            .ok_or_else(|| malformed("`keys` is not an array"))?;

        let mut out = Jwks {
            keys: Vec::with_capacity(keys.len()),
            skipped: Vec::new(),
        };
        for (index, key) in keys.iter().enumerate() {
            let obj = key
                .as_object()
                .ok_or_else(|| malformed(&format!("keys[{index}] is not an object")))?;
            match parse_key(obj)? {
                Parsed::Key(jwk) => {
                    if out.get(&jwk.kid).is_some() {
                        out.skipped.push(SkippedKey {
                            kid: Some(jwk.kid),
                            index,
                            reason: "duplicate kid (the first key with it is used)".into(),
                        });
                    } else {
                        out.keys.push(jwk);
                    }
                }
                Parsed::Skip { kid, reason } => out.skipped.push(SkippedKey { kid, index, reason }),
            }
        }
        if out.keys.is_empty() {
            return Err(JwksError::NoKeys {
                skipped: out.skipped.len(),
            });
        }
        Ok(out)
    }

    /// The key with this `kid`.
    pub fn get(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// The key with this certificate thumbprint (`x5t`): how Entra v1 tokens
    /// that carry no `kid` name their key.
    pub fn find_by_x5t(&self, x5t: &str) -> Option<&Jwk> {
        self.keys.iter().find(|k| k.x5t.as_deref() == Some(x5t))
    }

    /// The usable keys, in document order.
    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }

    /// The `kid`s of the usable keys, in document order.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.kid.as_str())
    }

    /// The number of usable keys (never zero).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Always false: a `Jwks` holds at least one key. Present for clippy's sake.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The keys that were left out, and why.
    pub fn skipped(&self) -> &[SkippedKey] {
        &self.skipped
    }
}

fn malformed(reason: &str) -> JwksError {
    JwksError::Malformed {
        reason: reason.to_string(),
    }
}

enum Parsed {
    Key(Jwk),
    Skip { kid: Option<String>, reason: String },
}

fn parse_key(obj: &Map<String, Value>) -> Result<Parsed, JwksError> {
    let kid = match obj.get("kid") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(malformed("a `kid` is not a string")),
    };
    let label = kid.clone().unwrap_or_else(|| "(no kid)".to_string());
    let invalid = |reason: String| JwksError::KeyInvalid {
        kid: label.clone(),
        reason,
    };
    let skip = |reason: String| {
        Ok(Parsed::Skip {
            kid: kid.clone(),
            reason,
        })
    };
    let opt_str = |name: &str| -> Result<Option<String>, JwksError> {
        match obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(invalid(format!("`{name}` is not a string"))),
        }
    };

    let kty = match obj.get("kty") {
        Some(Value::String(s)) => s.as_str(),
        _ => return skip("no `kty` string".into()),
    };
    let kty = match kty {
        "RSA" => KeyType::Rsa,
        "EC" => KeyType::Ec,
        other => return skip(format!("unsupported kty {other:?}")),
    };
    if let Some(u) = opt_str("use")? {
        if u != "sig" {
            return skip(format!("use {u:?} is not \"sig\""));
        }
    }
    let Some(kid) = kid.clone() else {
        return skip("no kid: a token cannot name this key".into());
    };
    let alg = opt_str("alg")?;
    let issuer = opt_str("issuer")?;
    let x5t = opt_str("x5t")?;

    // The first certificate of `x5c`, if any: its SubjectPublicKeyInfo.
    let cert_der = match obj.get("x5c") {
        None | Some(Value::Null) => None,
        Some(Value::Array(chain)) => match chain.first() {
            None => None,
            Some(Value::String(b64)) => {
                Some(b64_lenient(b64).ok_or_else(|| invalid("x5c[0] is not base64".into()))?)
            }
            Some(_) => return Err(invalid("x5c[0] is not a string".into())),
        },
        Some(_) => return Err(invalid("`x5c` is not an array".into())),
    };
    let cert_key = match &cert_der {
        Some(der) => Some(cert_public_key(der).map_err(invalid)?),
        None => None,
    };

    let material = match kty {
        KeyType::Rsa => {
            let from_jwk = match (opt_str("n")?, opt_str("e")?) {
                (Some(n), Some(e)) => Some((
                    strip_zeros(
                        &b64_lenient(&n).ok_or_else(|| invalid("`n` is not base64".into()))?,
                    ),
                    strip_zeros(
                        &b64_lenient(&e).ok_or_else(|| invalid("`e` is not base64".into()))?,
                    ),
                )),
                (None, None) => None,
                _ => return Err(invalid("only one of `n` and `e`".into())),
            };
            let from_cert = match cert_key {
                Some(CertKey::Rsa { n, e }) => Some((n, e)),
                Some(CertKey::Ec(_)) => {
                    return Err(invalid("kty RSA but x5c holds an EC key".into()))
                }
                None => None,
            };
            let (n, e) = match (from_jwk, from_cert) {
                (Some(jwk), Some(cert)) if jwk != cert => {
                    return Err(invalid("n/e differ from the x5c certificate's key".into()))
                }
                (Some(k), _) | (None, Some(k)) => k,
                (None, None) => return Err(invalid("RSA key without n/e or x5c".into())),
            };
            let bits = bit_len(&n);
            if !(2048..=8192).contains(&bits) {
                return skip(format!("RSA key of {bits} bits (2048..=8192 supported)"));
            }
            let mut parsed = Vec::with_capacity(RSA_ALGS.len());
            for (_, params) in RSA_ALGS {
                let components = RsaPublicKeyComponents {
                    n: n.as_slice(),
                    e: e.as_slice(),
                };
                parsed.push(
                    components
                        .to_parsed_public_key(params)
                        .map_err(|e| invalid(format!("RSA key rejected: {e}")))?,
                );
            }
            let parsed: Box<[ParsedPublicKey; 6]> = parsed
                .into_boxed_slice()
                .try_into()
                .map_err(|_| invalid("internal: RSA key table".into()))?;
            Material::Rsa { bits, parsed }
        }
        KeyType::Ec => {
            let from_jwk = match (opt_str("crv")?, opt_str("x")?, opt_str("y")?) {
                (Some(crv), Some(x), Some(y)) => {
                    let curve = match crv.as_str() {
                        "P-256" => Curve::P256,
                        "P-384" => Curve::P384,
                        other => return skip(format!("unsupported curve {other:?}")),
                    };
                    let size = coord_len(curve);
                    let x = b64_lenient(&x).ok_or_else(|| invalid("`x` is not base64".into()))?;
                    let y = b64_lenient(&y).ok_or_else(|| invalid("`y` is not base64".into()))?;
                    let mut point = Vec::with_capacity(1 + 2 * size);
                    point.push(4u8);
                    push_coord(&mut point, &x, size)
                        .map_err(|()| invalid("`x` too long for the curve".into()))?;
                    push_coord(&mut point, &y, size)
                        .map_err(|()| invalid("`y` too long for the curve".into()))?;
                    Some((curve, point))
                }
                (None, None, None) => None,
                _ => return Err(invalid("EC key without all of crv, x, y".into())),
            };
            let from_cert = match cert_key {
                Some(CertKey::Ec(point)) => {
                    let curve = match point.len() {
                        65 => Curve::P256,
                        97 => Curve::P384,
                        _ => return skip("x5c holds an EC key on an unsupported curve".into()),
                    };
                    Some((curve, point))
                }
                Some(CertKey::Rsa { .. }) => {
                    return Err(invalid("kty EC but x5c holds an RSA key".into()))
                }
                None => None,
            };
            let (curve, point) = match (from_jwk, from_cert) {
                (Some(jwk), Some(cert)) if jwk != cert => {
                    return Err(invalid("x/y differ from the x5c certificate's key".into()))
                }
                (Some(k), _) | (None, Some(k)) => k,
                (None, None) => return Err(invalid("EC key without crv/x/y or x5c".into())),
            };
            let params = match curve {
                Curve::P256 => &sig::ECDSA_P256_SHA256_FIXED,
                Curve::P384 => &sig::ECDSA_P384_SHA384_FIXED,
            };
            let parsed = ParsedPublicKey::new(params, &point)
                .map_err(|e| invalid(format!("EC key rejected: {e}")))?;
            Material::Ec { curve, parsed }
        }
    };

    Ok(Parsed::Key(Jwk {
        kid,
        kty,
        alg,
        issuer,
        x5t,
        material,
    }))
}

enum CertKey {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// The uncompressed point.
    Ec(Vec<u8>),
}

fn cert_public_key(der: &[u8]) -> Result<CertKey, String> {
    use x509_parser::public_key::PublicKey;
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("x5c[0] is not an X.509 certificate: {e}"))?;
    match cert.public_key().parsed() {
        Ok(PublicKey::RSA(rsa)) => Ok(CertKey::Rsa {
            n: strip_zeros(rsa.modulus),
            e: strip_zeros(rsa.exponent),
        }),
        Ok(PublicKey::EC(point)) => Ok(CertKey::Ec(point.data().to_vec())),
        Ok(_) => Err("x5c[0] holds neither an RSA nor an EC key".into()),
        Err(e) => Err(format!("x5c[0] public key: {e}")),
    }
}

/// base64url or standard base64, with or without padding (Entra's 2014 JWKS
/// used padded standard base64 for `n`). Only for JWKS material, never for tokens.
fn b64_lenient(s: &str) -> Option<Vec<u8>> {
    let trimmed = s.trim_end_matches('=');
    if trimmed.contains(['+', '/']) {
        if trimmed.contains(['-', '_']) {
            return None; // both alphabets at once
        }
        base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(trimmed)
            .ok()
    } else {
        URL_SAFE_NO_PAD.decode(trimmed).ok()
    }
}

fn strip_zeros(b: &[u8]) -> Vec<u8> {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b.get(start..).unwrap_or_default().to_vec()
}

fn bit_len(n: &[u8]) -> usize {
    match n.first() {
        None => 0,
        Some(&top) => (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
    }
}

fn coord_len(curve: Curve) -> usize {
    match curve {
        Curve::P256 => 32,
        Curve::P384 => 48,
    }
}

/// Append a coordinate left-padded to `size` bytes (some encoders drop leading zeros).
fn push_coord(point: &mut Vec<u8>, coord: &[u8], size: usize) -> Result<(), ()> {
    let coord = {
        let start = coord.iter().position(|&x| x != 0).unwrap_or(coord.len());
        coord.get(start..).unwrap_or_default()
    };
    if coord.len() > size {
        return Err(());
    }
    point.extend(std::iter::repeat_n(0u8, size - coord.len()));
    point.extend_from_slice(coord);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_base64_accepts_both_alphabets() {
        assert_eq!(b64_lenient("AQAB"), Some(vec![1, 0, 1]));
        assert_eq!(b64_lenient("-_8"), Some(vec![0xfb, 0xff]));
        assert_eq!(b64_lenient("+/8="), Some(vec![0xfb, 0xff]));
        assert_eq!(b64_lenient("+_8"), None);
    }

    #[test]
    fn bit_length() {
        assert_eq!(bit_len(&[]), 0);
        assert_eq!(bit_len(&[1]), 1);
        assert_eq!(bit_len(&[0x80, 0]), 16);
    }

    #[test]
    fn not_a_jwks() {
        for doc in [
            &b"nope"[..],
            b"[]",
            b"{}",
            b"{\"keys\":{}}",
            b"{\"keys\":[1]}",
        ] {
            let e = Jwks::from_json(doc).unwrap_err();
            assert_eq!(e.code(), "jwks.malformed", "{doc:?}");
        }
        let e = Jwks::from_json(br#"{"keys":[]}"#).unwrap_err();
        assert_eq!(e.code(), "jwks.no_keys");
    }

    #[test]
    fn skips_unusable_keys() {
        let doc = br#"{"keys":[
            {"kty":"oct","kid":"h","k":"c2VjcmV0"},
            {"kty":"OKP","kid":"ed","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty":"RSA","kid":"enc","use":"enc","n":"AQAB","e":"AQAB"},
            {"kty":"RSA","kid":"small","n":"AQAB","e":"AQAB"}
        ]}"#;
        let e = Jwks::from_json(doc).unwrap_err();
        assert_eq!(e, JwksError::NoKeys { skipped: 4 });
        assert_eq!(e.code(), "jwks.no_keys");
    }

    #[test]
    fn bad_material_fails_the_set() {
        let doc = br#"{"keys":[{"kty":"RSA","kid":"k","n":"***","e":"AQAB"}]}"#;
        assert_eq!(Jwks::from_json(doc).unwrap_err().code(), "jwks.key_invalid");
        let doc = br#"{"keys":[{"kty":"EC","kid":"k","crv":"P-256","x":"AQAB","y":"AQAB"}]}"#;
        assert_eq!(Jwks::from_json(doc).unwrap_err().code(), "jwks.key_invalid");
    }
}
