//! Character-level pieces of the parser: references, line ends, the
//! `Char` and `Name` productions as byte tables.

use std::borrow::Cow;

use memchr::memchr;

use super::AttrData;

/// `&name;`, `&#N;` or `&#xH;` at the start of `s`: the character and the
/// length of the reference.
pub(super) fn reference(s: &str) -> Option<(char, usize)> {
    let semi = memchr(b';', s.as_bytes().get(..32.min(s.len()))?)?;
    let name = s.get(1..semi)?;
    let ch = match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "apos" => '\'',
        "quot" => '"',
        _ => {
            let (digits, radix) = match name.strip_prefix("#x") {
                Some(h) => (h, 16),
                None => (name.strip_prefix('#')?, 10),
            };
            if digits.is_empty() || !digits.bytes().all(|c| (c as char).is_digit(radix)) {
                return None;
            }
            let ch = char::from_u32(u32::from_str_radix(digits, radix).ok()?)?;
            if !is_xml_char(ch) {
                return None;
            }
            ch
        }
    };
    Some((ch, semi + 1))
}

/// CR LF and lone CR become LF (XML 1.0 §2.11).
pub(super) fn normalize_newlines(raw: &str) -> Cow<'_, str> {
    if memchr(b'\r', raw.as_bytes()).is_none() {
        return Cow::Borrowed(raw);
    }
    Cow::Owned(raw.replace("\r\n", "\n").replace('\r', "\n"))
}

/// True when two attributes have the same key (attributes without one are
/// not compared): pairwise for the few attributes elements have, sorted
/// when there are many, so that no input makes this quadratic.
pub(super) fn repeats<'a, K: Ord>(
    attrs: &'a [AttrData],
    key: impl Fn(&'a AttrData) -> Option<K>,
) -> bool {
    if attrs.len() < 2 {
        return false;
    }
    let n = attrs.len();
    if n <= 16 {
        crate::xml::work::add(n * (n - 1) / 2);
        return attrs.iter().enumerate().any(|(i, a)| {
            key(a).is_some_and(|k| {
                attrs
                    .get(i + 1..)
                    .unwrap_or_default()
                    .iter()
                    .any(|b| key(b).as_ref() == Some(&k))
            })
        });
    }
    crate::xml::work::add(n * (usize::BITS - n.leading_zeros()) as usize);
    let mut keys: Vec<K> = attrs.iter().filter_map(key).collect();
    keys.sort_unstable();
    keys.windows(2).any(|w| w.first() == w.get(1))
}

/// The position of the first character XML does not allow: a C0 control
/// other than TAB, LF and CR, or U+FFFE / U+FFFF (UTF-8 `EF BF BE`/`EF BF BF`).
/// (A `&str` holds no surrogates and nothing above U+10FFFF.)
pub(super) fn invalid_char(b: &[u8]) -> Option<usize> {
    // Branch-free per chunk so the compiler vectorizes it; the exact place
    // is found only in the chunk that has one.
    let bad = |c: &u8| *c < 0x20 && !matches!(*c, b'\t' | b'\n' | b'\r');
    for (n, chunk) in b.chunks(64).enumerate() {
        if chunk.iter().fold(false, |acc, c| acc | bad(c)) {
            return chunk.iter().position(bad).map(|i| n * 64 + i);
        }
    }
    let mut from = 0;
    while let Some(i) = memchr(0xEF, b.get(from..).unwrap_or_default()) {
        let at = from + i;
        if b.get(at + 1) == Some(&0xBF) && matches!(b.get(at + 2), Some(0xBE | 0xBF)) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

pub(super) fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r')
}

/// True when `b` holds `&`, `<`, `also`, or a byte below 0x20 (after the
/// document-wide character check, only TAB, LF and CR): the bytes that
/// attribute-value normalisation ([`Parser::decode`], `also` = `<`) and
/// C14N's attribute escaping (`also` = `"`) act on. Without an early exit,
/// so that it compiles to SIMD.
pub(crate) fn has_special_byte(b: &[u8], also: u8) -> bool {
    b.iter().fold(false, |acc, &c| {
        acc | (c < 0x20) | (c == b'&') | (c == b'<') | (c == also)
    })
}

pub(super) const OTHER: u8 = 0;
pub(super) const START: u8 = 1;
pub(super) const CHAR: u8 = 2;
pub(super) const COLON: u8 = 3;

/// ASCII in names: `NameStartChar` (less ':'), `NameChar`, and ':'.
pub(super) const NAME: [u8; 128] = {
    let mut t = [OTHER; 128];
    let mut c = 0;
    while c < 128 {
        let b = c as u8;
        t[c] = if b.is_ascii_alphabetic() || b == b'_' {
            START
        } else if b.is_ascii_digit() || b == b'-' || b == b'.' {
            CHAR
        } else if b == b':' {
            COLON
        } else {
            OTHER
        };
        c += 1;
    }
    t
};

/// ASCII bytes that may appear in a qualified name (non-ASCII: false).
pub(super) const NAME_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 128 {
        t[c] = NAME[c] != OTHER;
        c += 1;
    }
    t
};

/// `NameStartChar` of XML 1.0 (fifth edition), without ':'.
pub(super) fn is_name_start(c: char) -> bool {
    matches!(c,
        'A'..='Z' | '_' | 'a'..='z'
        | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}'
        | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}'
        | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}'
        | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}')
}

/// `NameChar` of XML 1.0 (fifth edition), without ':'.
pub(super) fn is_name_char(c: char) -> bool {
    is_name_start(c)
        || matches!(c,
            '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// The `Char` production of XML 1.0.
pub(super) fn is_xml_char(c: char) -> bool {
    matches!(c,
        '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}
