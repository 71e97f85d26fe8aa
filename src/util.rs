//! Small helpers used at every layer: random ids, hex, query-value
//! percent-encoding. This module depends on nothing of fedgate (only std and
//! the OS RNG through aws-lc-rs), so any module may call it without reaching
//! up the flow.

/// 128 random bits from the OS, hex. `None` only if the OS RNG fails, and
/// then nothing that needs an unguessable id may proceed.
pub fn random_id() -> Option<String> {
    use aws_lc_rs::rand::SecureRandom;
    let mut b = [0u8; 16];
    aws_lc_rs::rand::SystemRandom::new().fill(&mut b).ok()?;
    Some(hex(&b))
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Percent-encode a query value (RFC 3986 unreserved characters kept).
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decode an `application/x-www-form-urlencoded` value (a query or form
/// field): `+` is a space, `%XX` a byte; `None` for a bad escape or bytes
/// that are not UTF-8. The runs between escapes are copied whole (a posted
/// SAMLResponse is kilobytes of base64 with an escape every 30 bytes or so).
pub fn form_decode(s: &str) -> Option<String> {
    fn hex(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let mut rest = s.as_bytes();
    let mut out = Vec::with_capacity(rest.len());
    while let Some(i) = memchr::memchr2(b'%', b'+', rest) {
        out.extend_from_slice(&rest[..i]);
        if rest[i] == b'+' {
            out.push(b' ');
            rest = &rest[i + 1..];
        } else {
            let (hi, lo) = (*rest.get(i + 1)?, *rest.get(i + 2)?);
            out.push(hex(hi)? << 4 | hex(lo)?);
            rest = &rest[i + 3..];
        }
    }
    out.extend_from_slice(rest);
    String::from_utf8(out).ok()
}

/// The fields `names` of an `application/x-www-form-urlencoded` body, each
/// decoded ([`form_decode`]), in the order of `names`; other fields are
/// ignored. `None` if the body is not such a form: not UTF-8, a bad escape,
/// or one of `names` twice (fail closed: which of two values would be
/// meant?).
pub fn form_fields<const N: usize>(body: &[u8], names: [&str; N]) -> Option<[Option<String>; N]> {
    let body = std::str::from_utf8(body).ok()?;
    let mut found: [Option<String>; N] = std::array::from_fn(|_| None);
    for pair in body.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = if key.contains(['%', '+']) {
            std::borrow::Cow::Owned(form_decode(key)?)
        } else {
            std::borrow::Cow::Borrowed(key)
        };
        let Some(i) = names.iter().position(|n| *n == key) else {
            continue;
        };
        if found[i].replace(form_decode(value)?).is_some() {
            return None;
        }
    }
    Some(found)
}

/// At most `max` characters of `s` (an ellipsis marks a cut): for values a
/// client sends that end up in messages, the audit trail or logs (an unknown
/// tenant in a URL, a token exchange's `audience`).
pub fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod clip_tests {
    #[test]
    fn form_fields_are_found_decoded_once_each() {
        let f = |body: &str| super::form_fields(body.as_bytes(), ["SAMLResponse", "RelayState"]);
        assert_eq!(
            f("RelayState=c%201&x=y&SAMLResponse=PD94+bWw%2B%3D&&"),
            Some([Some("PD94 bWw+=".into()), Some("c 1".into())])
        );
        assert_eq!(f("SAMLResponse"), Some([Some(String::new()), None]));
        assert_eq!(
            f("SAML%52esponse=a"),
            Some([Some("a".into()), None]),
            "an escaped name"
        );
        assert_eq!(f("other=1"), Some([None, None]));
        assert_eq!(f("SAMLResponse=a&SAMLResponse=b"), None, "twice");
        assert_eq!(
            f("SAMLResponse=a&SAML%52esponse=b"),
            None,
            "twice, once escaped"
        );
        assert_eq!(f("SAMLResponse=%zz"), None);
        assert_eq!(
            f("x=%zz&SAMLResponse=a"),
            Some([Some("a".into()), None]),
            "other fields are not read"
        );
        assert_eq!(
            super::form_fields(b"SAMLResponse=\xff", ["SAMLResponse"]),
            None
        );
    }

    #[test]
    fn clips_on_a_character_boundary() {
        assert_eq!(super::clip("contoso", 64), "contoso");
        assert_eq!(super::clip(&"é".repeat(100), 3), "ééé…");
    }

    #[test]
    fn form_values_decode_plus_and_escapes_and_refuse_bad_ones() {
        assert_eq!(super::form_decode("a+b%2Bc%3D").as_deref(), Some("a b+c="));
        assert_eq!(super::form_decode("%C3%A9").as_deref(), Some("é"));
        assert_eq!(super::form_decode("%zz"), None);
        assert_eq!(super::form_decode("%4"), None);
        assert_eq!(super::form_decode("%FF"), None);
        assert_eq!(super::form_decode("%+1"), None, "a sign is not a hex digit");
        assert_eq!(super::form_decode("ab%").as_deref(), None);
        assert_eq!(super::form_decode("ab%2f%2Fc").as_deref(), Some("ab//c"));
        assert_eq!(super::form_decode("").as_deref(), Some(""));
        assert_eq!(
            super::form_decode(&super::urlencode("x y+z/é")).as_deref(),
            Some("x y+z/é")
        );
    }
}
