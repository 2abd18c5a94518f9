//! JSON text exactly as Python's `json.dumps` writes it, and order-keeping parsing.
//!
//! Netcore 0.1.3 serialises every header with `json.dumps(obj)` default
//! settings: `", "` and `": "` separators, `ensure_ascii=True` (every non-ASCII
//! or control character as a lowercase `\uXXXX` escape, astral characters as
//! surrogate pairs) and dict insertion order. This module owns reproducing that
//! text byte for byte ([`dumps`]) and parsing a JSON object while keeping its key
//! order ([`OrderedObject`]), so decoded headers re-encode to the same bytes.
//!
//! Limitation: nested objects inside a [`serde_json::Value`] are ordered by key
//! (serde_json's default map), only top-level header objects keep their order.

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Number, Value};
use std::fmt;

/// Serialises `value` the way Python's `json.dumps(value)` does.
///
/// ```
/// use serde_json::json;
/// let text = netcore_legacy::json::dumps(&json!({"a": [1, 2.5, true, null], "é": "\n"}));
/// assert_eq!(text, r#"{"a": [1, 2.5, true, null], "\u00e9": "\n"}"#);
/// ```
pub fn dumps(value: &Value) -> String {
    let mut out = Vec::new();
    write_value(&mut out, value);
    // Only ASCII is ever written.
    String::from_utf8(out).unwrap_or_default()
}

/// Appends the Python `json.dumps` text of `value` to `out`.
pub(crate) fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(out, map.iter()),
    }
}

/// Appends `{"k": v, ...}` for the given entries, in the given order.
pub(crate) fn write_object<'a>(
    out: &mut Vec<u8>,
    entries: impl Iterator<Item = (&'a String, &'a Value)>,
) {
    out.push(b'{');
    for (i, (k, v)) in entries.enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        write_str(out, k);
        out.extend_from_slice(b": ");
        write_value(out, v);
    }
    out.push(b'}');
}

/// Appends a JSON string literal with Python's `ensure_ascii` escaping.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let escape_unit = |out: &mut Vec<u8>, unit: u16| {
        out.extend_from_slice(b"\\u");
        for shift in [12u16, 8, 4, 0] {
            out.push(HEX[usize::from((unit >> shift) & 0xf)]);
        }
    };
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            ' '..='~' => out.push(c as u8),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    escape_unit(out, *unit);
                }
            }
        }
    }
    out.push(b'"');
}

fn write_number(out: &mut Vec<u8>, n: &Number) {
    if let Some(i) = n.as_i64() {
        out.extend_from_slice(i.to_string().as_bytes());
    } else if let Some(u) = n.as_u64() {
        out.extend_from_slice(u.to_string().as_bytes());
    } else if let Some(f) = n.as_f64() {
        out.extend_from_slice(python_float_repr(f).as_bytes());
    }
}

/// Python's `repr(float)`: shortest round-trip digits, fixed notation when the
/// decimal exponent is in `-4 ..= 15`, else `d.ddde+XX` with at least two
/// exponent digits.
fn python_float_repr(f: f64) -> String {
    if !f.is_finite() {
        // json.dumps writes these although they are not JSON; serde_json never holds them.
        return if f.is_nan() {
            "NaN".into()
        } else if f > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    let sci = format!("{:e}", f.abs()); // e.g. "1.2345e-5", "0e0"
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if f.is_sign_negative() { "-" } else { "" };
    let decpt = exp + 1; // value = 0.DIGITS * 10^decpt
    let ndigits = i32::try_from(digits.len()).unwrap_or(i32::MAX);
    if (-3..=16).contains(&decpt) {
        if decpt <= 0 {
            let zeros = "0".repeat(usize::try_from(-decpt).unwrap_or(0));
            format!("{sign}0.{zeros}{digits}")
        } else if decpt >= ndigits {
            let zeros = "0".repeat(usize::try_from(decpt - ndigits).unwrap_or(0));
            format!("{sign}{digits}{zeros}.0")
        } else {
            let (int, frac) = digits.split_at(usize::try_from(decpt).unwrap_or(0));
            format!("{sign}{int}.{frac}")
        }
    } else {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        let dot = if rest.is_empty() { "" } else { "." };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{first}{dot}{rest}e{esign}{:02}", exp.unsigned_abs())
    }
}

/// A JSON object parsed with its key order kept.
///
/// Duplicate keys behave as in Python's `json.loads`: the last value wins and
/// keeps the position of the first occurrence.
///
/// ```
/// use netcore_legacy::json::OrderedObject;
/// let obj: OrderedObject = serde_json::from_str(r#"{"b": 1, "a": 2, "b": 3}"#).unwrap();
/// let keys: Vec<&str> = obj.0.iter().map(|(k, _)| k.as_str()).collect();
/// assert_eq!(keys, ["b", "a"]);
/// assert_eq!(obj.0[0].1, 3);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrderedObject(pub Vec<(String, Value)>);

impl OrderedObject {
    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Sets `key` to `value`, in place if present, else appended.
    pub fn insert(&mut self, key: impl Into<String>, value: Value) {
        let key = key.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }
}

impl<'de> Deserialize<'de> for OrderedObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjVisitor;
        impl<'de> Visitor<'de> for ObjVisitor {
            type Value = OrderedObject;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedObject, A::Error> {
                let mut obj = OrderedObject::default();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    obj.insert(k, v);
                }
                Ok(obj)
            }
        }
        deserializer.deserialize_map(ObjVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_match_python_repr() {
        // Expected strings are Python 3 `repr(float)` outputs.
        let cases = [
            (1.0, "1.0"),
            (2.5, "2.5"),
            (0.1, "0.1"),
            (-0.0, "-0.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.5e20, "1.5e+20"),
            (123456.789, "123456.789"),
            (-3.25e-7, "-3.25e-07"),
            (1e100, "1e+100"),
        ];
        for (f, expected) in cases {
            assert_eq!(python_float_repr(f), expected, "{f}");
        }
    }

    #[test]
    fn strings_escape_like_ensure_ascii() {
        let v = json!("a\"b\\c\u{1}\u{7f}é😀\t");
        assert_eq!(dumps(&v), r#""a\"b\\c\u0001\u007f\u00e9\ud83d\ude00\t""#);
    }

    #[test]
    fn empty_containers() {
        assert_eq!(dumps(&json!({})), "{}");
        assert_eq!(dumps(&json!([])), "[]");
        assert_eq!(
            dumps(&json!({"x": {}, "y": [[]]})),
            r#"{"x": {}, "y": [[]]}"#
        );
    }
}
