//! fedgate's own signing keys towards the consoles, and their rollover.
//!
//! With `signing.key_dir`, the directory holds up to three keys, each a
//! `key.pem` (PKCS#8) and a `cert.pem`:
//!
//! - `current/`: signs every assertion and RS256 token;
//! - `next/`: published beside `current` (IdP metadata, JWKS) as soon as it
//!   exists, so consoles that refresh fedgate's metadata trust it before it
//!   signs anything;
//! - `previous/`: the key `promote` replaced, still published until the time
//!   in `previous/retire_after` (RFC 3339), so a console that has not
//!   refreshed yet keeps working; then `retire` (or any reload after that
//!   time) drops it.
//!
//! `fedgate keys init` makes the directory (and the token key beside it);
//! `fedgate keys generate-next | promote | retire | status` change the
//! directory; a running fedgate reloads it on SIGHUP and every 30 seconds.

use std::path::{Path, PathBuf};

use time::{Duration, OffsetDateTime};

use crate::trust::certs::TrustedCert;
use crate::trust::signing::{JwtSigner, SigningKey};

/// One key with what is derived from it.
pub struct Key {
    pub saml: SigningKey,
    /// The same key as an RS256 JOSE signer (RSA keys only).
    pub jwt: Option<JwtSigner>,
}

impl Key {
    fn load(dir: &Path) -> Result<Key, String> {
        let read = |f: &str| {
            std::fs::read_to_string(dir.join(f))
                .map_err(|e| format!("{}: {e}", dir.join(f).display()))
        };
        let (key, cert) = (read("key.pem")?, read("cert.pem")?);
        Self::from_pem(&key, &cert).map_err(|e| format!("{}: {e}", dir.display()))
    }

    pub fn from_pem(key: &str, cert: &str) -> Result<Key, String> {
        let saml = SigningKey::from_pem(key, cert).map_err(|e| e.to_string())?;
        let jwt = JwtSigner::from_pem(key).ok().filter(|k| k.alg() == "RS256");
        Ok(Key { saml, jwt })
    }

    pub fn cert(&self) -> &TrustedCert {
        &self.saml.cert
    }
}

/// The keys in force.
pub struct KeySet {
    pub current: Key,
    pub next: Option<Key>,
    pub previous: Option<(Key, OffsetDateTime)>,
}

impl KeySet {
    /// A single key from `key_file` and `cert_file` (no rollover).
    pub fn single(key: Key) -> KeySet {
        KeySet {
            current: key,
            next: None,
            previous: None,
        }
    }

    /// The key directory as it is at `now` (a previous key past its
    /// retire time is not loaded).
    pub fn from_dir(dir: &Path, now: OffsetDateTime) -> Result<KeySet, String> {
        let current = Key::load(&dir.join("current"))?;
        let next = if dir.join("next").exists() {
            Some(Key::load(&dir.join("next"))?)
        } else {
            None
        };
        let previous = match retire_after(dir) {
            Some(t) if t > now => Some((Key::load(&dir.join("previous"))?, t)),
            _ => None,
        };
        Ok(KeySet {
            current,
            next,
            previous,
        })
    }

    /// Every certificate to publish: current, next, previous (in that order).
    pub fn published(&self) -> Vec<&Key> {
        let mut v = vec![&self.current];
        v.extend(self.next.as_ref());
        v.extend(self.previous.as_ref().map(|(k, _)| k));
        v
    }
}

fn retire_after(dir: &Path) -> Option<OffsetDateTime> {
    let text = std::fs::read_to_string(dir.join("previous/retire_after")).ok()?;
    crate::timefmt::parse(text.trim())
}

/// A new RSA-2048 key and a self-signed certificate valid `days` days (what
/// consoles expect from an IdP: they pin the certificate, not a CA).
pub fn generate(
    common_name: &str,
    days: i64,
    now: OffsetDateTime,
) -> Result<(String, String), String> {
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
        .map_err(|e| format!("key generation failed: {e}"))?;
    let pkcs8 = aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair)
        .map_err(|e| format!("key encoding failed: {e}"))?;
    let der = pkcs8.as_ref().to_vec();
    let key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
        &rustls_pki_types_der(&der),
        &rcgen::PKCS_RSA_SHA256,
    )
    .map_err(|e| format!("key: {e}"))?;
    let mut params =
        rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    params.not_before = now - Duration::minutes(5);
    params.not_after = now + Duration::days(days);
    let cert = params
        .self_signed(&key)
        .map_err(|e| format!("certificate: {e}"))?;
    Ok((key.serialize_pem(), cert.pem()))
}

fn rustls_pki_types_der(der: &[u8]) -> rustls::pki_types::PrivatePkcs8KeyDer<'_> {
    rustls::pki_types::PrivatePkcs8KeyDer::from(der)
}

/// Create `dir` with mode 0700 (on Unix) unless it exists; missing parents
/// get the usual mode (a 0700 `/etc/fedgate` would lock out the config).
fn create_private_dir(dir: &Path) -> Result<(), String> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    let mut b = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir).map_err(|e| format!("{}: {e}", dir.display()))
}

/// Write a new file; private ones are created 0600 (never readable by
/// others, not even for a moment). Refused if the file exists.
fn write_new(path: &Path, body: &str, private: bool) -> Result<(), String> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    o.open(path)
        .and_then(|mut f| f.write_all(body.as_bytes()).and_then(|_| f.sync_all()))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// `dir/key.pem` (0600) and `dir/cert.pem`, in a new or empty `dir` (0700).
fn write_key(dir: &Path, key: &str, cert: &str) -> Result<(), String> {
    create_private_dir(dir)?;
    write_new(&dir.join("key.pem"), key, true)?;
    write_new(&dir.join("cert.pem"), cert, false)
}

/// `keys generate-next`: make `next/` (refused if one exists). Creates
/// `current/` too when the directory is empty (first setup).
pub fn generate_next(dir: &Path, days: i64, now: OffsetDateTime) -> Result<TrustedCert, String> {
    if !dir.join("current").exists() {
        let (k, c) = generate("fedgate signing key", days, now)?;
        write_key(&dir.join("current"), &k, &c)?;
    }
    if dir.join("next").exists() {
        return Err("a next key exists already: promote it (or delete next/) first".into());
    }
    let (k, c) = generate("fedgate signing key (next)", days, now)?;
    let staging = dir.join(".next.tmp");
    let _ = std::fs::remove_dir_all(&staging);
    write_key(&staging, &k, &c)?;
    Key::load(&staging)?;
    std::fs::rename(&staging, dir.join("next")).map_err(|e| e.to_string())?;
    Ok(Key::load(&dir.join("next"))?.saml.cert)
}

/// What `keys init` made.
pub struct Initialized {
    /// `DIR/signing`: the `signing.key_dir`, holding `current/`.
    pub key_dir: PathBuf,
    /// `DIR/token-key.pem`: the `signing.token_key_file`.
    pub token_key_file: PathBuf,
    /// The signing certificate (`current/cert.pem`).
    pub cert: TrustedCert,
    /// The token key's `kid` in `/oauth2/jwks`.
    pub token_kid: String,
}

/// A new EC P-256 key (PKCS#8 PEM) for the ES256 console tokens.
pub fn generate_token_key() -> Result<String, String> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| format!("key generation failed: {e}"))?;
    Ok(key.serialize_pem())
}

/// `keys init`: a new `DIR/signing/` with `current/` (the key and
/// certificate `generate-next` + `promote` would leave there) and
/// `DIR/token-key.pem`. Refused, with nothing written, if either exists.
/// Everything is made in a staging directory inside `DIR` and moved into
/// place; private keys are 0600, directories 0700.
pub fn init(dir: &Path, days: i64, now: OffsetDateTime) -> Result<Initialized, String> {
    let key_dir = dir.join("signing");
    let token_key_file = dir.join("token-key.pem");
    for p in [&key_dir, &token_key_file] {
        if p.symlink_metadata().is_ok() {
            return Err(format!(
                "{} exists already: refusing to overwrite it (to rotate the signing key, use `fedgate keys generate-next --dir {}`)",
                p.display(),
                key_dir.display()
            ));
        }
    }
    if dir.exists() && !dir.is_dir() {
        return Err(format!("{}: not a directory", dir.display()));
    }
    // Make and check every key before anything is written.
    let (k, c) = generate("fedgate signing key", days, now)?;
    let cert = Key::from_pem(&k, &c)?.saml.cert;
    let token = generate_token_key()?;
    let signer = JwtSigner::from_pem(&token).map_err(|e| e.to_string())?;
    if signer.alg() != "ES256" {
        return Err(format!("the token key is {}, not ES256", signer.alg()));
    }
    create_private_dir(dir)?;
    let staging = dir.join(format!(".keys-init.{}.tmp", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let placed = (|| {
        create_private_dir(&staging)?;
        create_private_dir(&staging.join("signing"))?;
        write_key(&staging.join("signing/current"), &k, &c)?;
        write_new(&staging.join("token-key.pem"), &token, true)?;
        Key::load(&staging.join("signing/current"))?;
        // A hard link never replaces an existing file (a rename would).
        std::fs::hard_link(staging.join("token-key.pem"), &token_key_file)
            .map_err(|e| format!("{}: {e}", token_key_file.display()))?;
        // A directory renames only onto nothing (or an empty directory).
        if let Err(e) = std::fs::rename(staging.join("signing"), &key_dir) {
            let _ = std::fs::remove_file(&token_key_file);
            return Err(format!("{}: {e}", key_dir.display()));
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&staging);
    placed?;
    let abs = |p: PathBuf| std::fs::canonicalize(&p).unwrap_or(p);
    Ok(Initialized {
        key_dir: abs(key_dir),
        token_key_file: abs(token_key_file),
        cert,
        token_kid: signer.kid,
    })
}

/// `keys promote`: next → current; current → previous, published until
/// `now + grace`. Refused without a next key.
pub fn promote(dir: &Path, grace: Duration, now: OffsetDateTime) -> Result<(), String> {
    if !dir.join("next").exists() {
        return Err("no next key: run `fedgate keys generate-next` first".into());
    }
    Key::load(&dir.join("next"))?;
    let previous = dir.join("previous");
    let _ = std::fs::remove_dir_all(&previous);
    let mv = |a: &str, b: &Path| std::fs::rename(dir.join(a), b).map_err(|e| format!("{a}: {e}"));
    mv("current", &previous)?;
    std::fs::write(
        previous.join("retire_after"),
        crate::timefmt::format(now + grace),
    )
    .map_err(|e| e.to_string())?;
    mv("next", &dir.join("current"))?;
    Ok(())
}

/// `keys retire`: stop publishing the previous key now. `Ok(false)` if there was none.
pub fn retire(dir: &Path) -> Result<bool, String> {
    let p = dir.join("previous");
    if !p.exists() {
        return Ok(false);
    }
    std::fs::remove_dir_all(&p).map_err(|e| e.to_string())?;
    Ok(true)
}

/// One line of `keys status`.
#[derive(Debug, serde::Serialize)]
pub struct KeyStatus {
    pub role: &'static str,
    pub thumbprint_sha256: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    pub days_left: i64,
    pub signs: bool,
    pub published: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub retire_after: Option<OffsetDateTime>,
}

pub fn status(dir: &Path, now: OffsetDateTime) -> Result<Vec<KeyStatus>, String> {
    if !dir.is_dir() {
        return Err(format!(
            "{}: no such key directory (make one with `fedgate keys init`)",
            dir.display()
        ));
    }
    if !dir.join("current").exists() {
        let hint = if dir.join("signing/current").exists() {
            format!(" (`keys init` made {})", dir.join("signing").display())
        } else {
            String::new()
        };
        return Err(format!(
            "{}: no current/ key, so not a signing.key_dir{hint}",
            dir.display()
        ));
    }
    let mut out = Vec::new();
    for (role, sub) in [
        ("current", "current"),
        ("next", "next"),
        ("previous", "previous"),
    ] {
        let p: PathBuf = dir.join(sub);
        if !p.exists() {
            continue;
        }
        let k = Key::load(&p)?;
        let retire = (role == "previous").then(|| retire_after(dir)).flatten();
        out.push(KeyStatus {
            role,
            thumbprint_sha256: k.cert().thumbprint_sha256.clone(),
            not_after: k.cert().not_after,
            days_left: k.cert().days_left(now),
            signs: role == "current",
            published: role != "previous" || retire.is_some_and(|t| t > now),
            retire_after: retire,
        });
    }
    Ok(out)
}
