//! The JSON shapes of a token's header and claims: typed, bounded, read
//! in one pass (sizes and array lengths counted while deserializing, a
//! claim of the wrong JSON type named).

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, Visitor};
use serde::Deserialize;

use super::*;

#[derive(Debug)]
pub(super) enum ObjectError {
    NotObject,
    Json(serde_json::Error),
}

impl fmt::Display for ObjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectError::NotObject => f.write_str("not a JSON object"),
            ObjectError::Json(e) => e.fmt(f),
        }
    }
}

/// Deserialize a JSON object (serde would also map an array onto a struct).
pub(super) fn parse_object<'a, T: Deserialize<'a>>(json: &'a [u8]) -> Result<T, ObjectError> {
    match json.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => serde_json::from_slice(json).map_err(ObjectError::Json),
        _ => Err(ObjectError::NotObject),
    }
}

/// The JOSE header: only what fedgate reads or refuses. Unknown members are
/// ignored (`typ`, `x5t#S256`, ...); a duplicate member is an error.
#[derive(Deserialize)]
pub(super) struct Header {
    pub(super) alg: Option<String>,
    pub(super) kid: Option<String>,
    pub(super) x5t: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub(super) jku: bool,
    #[serde(default, deserialize_with = "present")]
    pub(super) x5u: bool,
    #[serde(default, deserialize_with = "present")]
    pub(super) jwk: bool,
    #[serde(default, deserialize_with = "present")]
    pub(super) x5c: bool,
    #[serde(default, deserialize_with = "present")]
    pub(super) crit: bool,
}

/// The claims fedgate reads, with their JSON types. A known claim of the
/// wrong type fails deserialization (`jwt.claim_invalid`); `null` counts as absent.
#[derive(Deserialize)]
pub(super) struct Claims {
    pub(super) iss: Option<String>,
    pub(super) sub: Option<String>,
    pub(super) aud: Option<Audience>,
    pub(super) exp: Option<NumericDate>,
    pub(super) nbf: Option<NumericDate>,
    pub(super) iat: Option<NumericDate>,
    pub(super) auth_time: Option<NumericDate>,
    pub(super) tid: Option<String>,
    pub(super) oid: Option<String>,
    pub(super) upn: Option<String>,
    pub(super) preferred_username: Option<String>,
    pub(super) unique_name: Option<String>,
    pub(super) email: Option<String>,
    /// "Email domain owner verified" (Entra optional claim): a boolean, or
    /// `"true"`/`"false"`/`1`/`0` as some tokens carry it.
    pub(super) xms_edov: Option<serde_json::Value>,
    pub(super) name: Option<String>,
    pub(super) groups: Option<Vec<String>>,
    pub(super) roles: Option<Vec<String>>,
    pub(super) amr: Option<Vec<String>>,
    /// Entra: the Conditional Access authentication contexts satisfied.
    pub(super) acrs: Option<Vec<String>>,
    pub(super) appid: Option<String>,
    pub(super) azp: Option<String>,
    pub(super) uti: Option<String>,
    pub(super) jti: Option<String>,
    /// The IdP's session id (OpenID Connect Front/Back-Channel Logout).
    pub(super) sid: Option<String>,
    pub(super) ver: Option<String>,
    pub(super) idtyp: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub(super) scp: bool,
    pub(super) hasgroups: Option<bool>,
    #[serde(rename = "_claim_names")]
    pub(super) claim_names: Option<BTreeMap<String, String>>,
    #[serde(rename = "_claim_sources")]
    pub(super) claim_sources: Option<BTreeMap<String, ClaimSource>>,
}

/// A distributed-claims source (OpenID Connect Core §5.6.2).
#[derive(Deserialize)]
pub(super) struct ClaimSource {
    pub(super) endpoint: Option<String>,
}

/// Name the claim of the wrong type, for the error message (slow path: only
/// after typed deserialization failed). `None` when no single claim is to
/// blame (e.g. a duplicate claim, which serde names itself).
pub(super) fn wrong_claim(payload: &[u8]) -> Option<String> {
    use serde_json::Value;
    let v: serde_json::Map<String, Value> = serde_json::from_slice(payload).ok()?;
    let string = |v: &Value| v.is_string() || v.is_null();
    let strings =
        |v: &Value| v.is_null() || v.as_array().is_some_and(|a| a.iter().all(Value::is_string));
    let number = |v: &Value| v.is_number() || v.is_null();
    type Check<'a> = (&'a str, &'a str, &'a dyn Fn(&Value) -> bool);
    let checks: [Check; 27] = [
        ("iss", "a string", &string),
        ("sub", "a string", &string),
        ("tid", "a string", &string),
        ("oid", "a string", &string),
        ("upn", "a string", &string),
        ("preferred_username", "a string", &string),
        ("unique_name", "a string", &string),
        ("email", "a string", &string),
        ("name", "a string", &string),
        ("appid", "a string", &string),
        ("azp", "a string", &string),
        ("uti", "a string", &string),
        ("jti", "a string", &string),
        ("ver", "a string", &string),
        ("idtyp", "a string", &string),
        ("groups", "an array of strings", &strings),
        ("roles", "an array of strings", &strings),
        ("amr", "an array of strings", &strings),
        ("acrs", "an array of strings", &strings),
        ("aud", "a string or an array of strings", &|v| {
            string(v) || strings(v)
        }),
        ("exp", "a number", &number),
        ("nbf", "a number", &number),
        ("iat", "a number", &number),
        ("auth_time", "a number", &number),
        ("hasgroups", "a boolean", &|v| v.is_boolean() || v.is_null()),
        ("_claim_names", "an object of strings", &|v| {
            v.is_null()
                || v.as_object()
                    .is_some_and(|o| o.values().all(Value::is_string))
        }),
        ("_claim_sources", "an object of objects", &|v| {
            v.is_null()
                || v.as_object().is_some_and(|o| {
                    o.values().all(|s| {
                        s.as_object()
                            .is_some_and(|s| s.get("endpoint").is_none_or(string))
                    })
                })
        }),
    ];
    checks.iter().find_map(|(name, expected, ok)| {
        let value = v.get(*name)?;
        (!ok(value)).then(|| {
            let mut shown = value.to_string();
            if shown.len() > 60 {
                shown = shown.chars().take(60).collect::<String>() + "...";
            }
            format!("claim `{name}` must be {expected}, not {shown}")
        })
    })
}

/// How many top-level claims a payload has, and its longest top-level
/// array (and `aud`'s length), read without keeping any of it.
#[derive(Default)]
pub(super) struct PayloadShape {
    pub(super) claims: usize,
    pub(super) longest_array: usize,
    pub(super) audiences: usize,
}

impl PayloadShape {
    pub(super) fn check(&self) -> Result<(), BearerError> {
        let exceeded = |what, name, limit| Err(BearerError::LimitExceeded { what, name, limit });
        if self.claims > MAX_CLAIMS {
            return exceeded("claims in the payload", "MAX_CLAIMS", MAX_CLAIMS);
        }
        if self.audiences > MAX_AUDIENCES {
            return exceeded("audiences in aud", "MAX_AUDIENCES", MAX_AUDIENCES);
        }
        if self.longest_array > MAX_ARRAY_LEN {
            return exceeded("elements in an array claim", "MAX_ARRAY_LEN", MAX_ARRAY_LEN);
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for PayloadShape {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = PayloadShape;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<PayloadShape, A::Error> {
                let mut shape = PayloadShape::default();
                while let Some(IsAud(aud)) = map.next_key::<IsAud>()? {
                    shape.claims += 1;
                    let len = map.next_value::<ArrayLen>()?.0;
                    shape.longest_array = shape.longest_array.max(len);
                    if aud {
                        shape.audiences = len;
                    }
                    // Stop reading as soon as the answer is known.
                    if shape.check().is_err() {
                        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                        break;
                    }
                }
                Ok(shape)
            }
        }
        d.deserialize_map(Members)
    }
}

/// Whether a member name is `aud` (escaped or not), without keeping it.
pub(super) struct IsAud(bool);

impl<'de> Deserialize<'de> for IsAud {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = IsAud;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IsAud, E> {
                Ok(IsAud(v == "aud"))
            }
        }
        d.deserialize_str(V)
    }
}

/// The length of a JSON array (0 for any other value), its elements ignored.
pub(super) struct ArrayLen(usize);

impl<'de> Deserialize<'de> for ArrayLen {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ArrayLen;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<ArrayLen, A::Error> {
                let mut n = 0;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(ArrayLen(n))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<ArrayLen, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(ArrayLen(0))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<ArrayLen, E> {
                Ok(ArrayLen(0))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<ArrayLen, E> {
                Ok(ArrayLen(0))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<ArrayLen, E> {
                Ok(ArrayLen(0))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<ArrayLen, E> {
                Ok(ArrayLen(0))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<ArrayLen, E> {
                Ok(ArrayLen(0))
            }
            fn visit_unit<E: de::Error>(self) -> Result<ArrayLen, E> {
                Ok(ArrayLen(0))
            }
        }
        d.deserialize_any(V)
    }
}

/// `true` whenever the member is present, whatever its value.
pub(super) fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(d).map(|_| true)
}

/// `aud`: a string or an array of strings (RFC 7519 §4.1.3).
pub(super) struct Audience(pub(super) Vec<String>);

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Audience;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("aud as a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Audience, E> {
                Ok(Audience(vec![v.to_string()]))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Audience, A::Error> {
                let mut out = Vec::new();
                while let Some(a) = seq.next_element::<String>()? {
                    out.push(a);
                }
                Ok(Audience(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A NumericDate (RFC 7519 §2): seconds since the epoch, integer or not.
#[derive(Clone, Copy)]
pub(super) struct NumericDate {
    pub(super) floor: i64,
    pub(super) fraction: bool,
}

impl NumericDate {
    pub(super) fn ceil(self) -> i64 {
        self.floor.saturating_add(i64::from(self.fraction))
    }
}

impl<'de> Deserialize<'de> for NumericDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NumericDate;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a NumericDate (seconds since 1970 as a JSON number)")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<NumericDate, E> {
                Ok(NumericDate {
                    floor: v,
                    fraction: false,
                })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NumericDate, E> {
                i64::try_from(v)
                    .map(|floor| NumericDate {
                        floor,
                        fraction: false,
                    })
                    .map_err(|_| E::custom("NumericDate out of range"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<NumericDate, E> {
                // ±2^53 s is far beyond any date `time` can represent anyway.
                if !v.is_finite() || v.abs() > 9.0e15 {
                    return Err(E::custom("NumericDate out of range"));
                }
                let floor = v.floor();
                #[allow(clippy::cast_possible_truncation)]
                Ok(NumericDate {
                    floor: floor as i64,
                    fraction: v != floor,
                })
            }
        }
        d.deserialize_any(V)
    }
}
