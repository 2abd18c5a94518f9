//! Dynamic field values for schemas defined at run time.
//!
//! This module owns [`Value`] (owned, serde-friendly: what tools and the CLI build from
//! JSON) and [`ValueRef`] (borrowed from a received payload, no copy), and the encoding of
//! one value as a field of a given [`FieldKind`].

use crate::error::{Result, SchemaError};
use crate::layout::{put_bytes, put_text, FieldKind};

/// An owned dynamic field value.
///
/// ```
/// use netcore_schema::Value;
/// let v: Value = 3u16.into();
/// assert_eq!(v, Value::UInt(3));
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// Boolean (`?`).
    Bool(bool),
    /// Unsigned integer (`B H I L Q`).
    UInt(u64),
    /// Signed integer (`b h i l q`).
    Int(i64),
    /// Float (`e f d`).
    Float(f64),
    /// Text (fixed or variable).
    Text(String),
    /// Bytes (fixed or variable).
    Bytes(Vec<u8>),
}

macro_rules! value_from {
    ($($t:ty => $v:ident as $c:ty),*) => {$(
        impl From<$t> for Value {
            fn from(x: $t) -> Value { Value::$v(x as $c) }
        }
    )*};
}
value_from!(i8 => Int as i64, i16 => Int as i64, i32 => Int as i64, i64 => Int as i64,
    u8 => UInt as u64, u16 => UInt as u64, u32 => UInt as u64, u64 => UInt as u64,
    f32 => Float as f64, f64 => Float as f64);

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}
impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Text(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Text(s)
    }
}
impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Value {
        Value::Bytes(b)
    }
}

impl Value {
    fn as_num(&self) -> Option<crate::format::Num> {
        use crate::format::Num;
        Some(match *self {
            Value::Bool(b) => Num::B(b),
            Value::UInt(u) => Num::U(u),
            Value::Int(i) => Num::I(i),
            Value::Float(f) => Num::F(f),
            _ => return None,
        })
    }

    /// Appends this value as a field of `kind`.
    ///
    /// ```
    /// use netcore_schema::{FieldKind, NumFormat, Value};
    /// let mut v = Vec::new();
    /// Value::Float(1.0).encode_field(FieldKind::Num(NumFormat::parse_const(">f")), "x", &mut v).unwrap();
    /// assert_eq!(v, [0x3f, 0x80, 0, 0]);
    /// ```
    pub fn encode_field(&self, kind: FieldKind, field: &str, out: &mut Vec<u8>) -> Result<()> {
        match (kind, self) {
            (FieldKind::Num(f), v) => {
                let n = v.as_num().ok_or_else(|| {
                    SchemaError::invalid_value(field, format!("expected a number for format {f}"))
                })?;
                let start = out.len();
                out.resize(start + f.width(), 0);
                let r = f.write(n, &mut out[start..], field);
                if r.is_err() {
                    out.truncate(start);
                }
                r
            }
            (
                FieldKind::FixedText(_) | FieldKind::Text | FieldKind::BoundedText(_),
                Value::Text(s),
            ) => put_text(s, kind, field, out),
            (
                FieldKind::FixedBytes(_) | FieldKind::Bytes | FieldKind::BoundedBytes(_),
                Value::Bytes(b),
            ) => put_bytes(b, kind, field, out),
            // Text accepted for bytes fields (its UTF-8 bytes), as Python users often do.
            (
                FieldKind::FixedBytes(_) | FieldKind::Bytes | FieldKind::BoundedBytes(_),
                Value::Text(s),
            ) => put_bytes(s.as_bytes(), kind, field, out),
            (k, _) => Err(SchemaError::invalid_value(
                field,
                format!("value {self:?} does not match field kind {k:?}"),
            )),
        }
    }

    /// Borrowed view of this value.
    ///
    /// ```
    /// use netcore_schema::{Value, ValueRef};
    /// assert_eq!(Value::Text("a".into()).as_ref(), ValueRef::Text("a"));
    /// ```
    pub fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Bool(b) => ValueRef::Bool(*b),
            Value::UInt(u) => ValueRef::UInt(*u),
            Value::Int(i) => ValueRef::Int(*i),
            Value::Float(f) => ValueRef::Float(*f),
            Value::Text(s) => ValueRef::Text(s),
            Value::Bytes(b) => ValueRef::Bytes(b),
        }
    }
}

/// A decoded field value borrowing text and bytes from the payload.
///
/// ```
/// use netcore_schema::{Value, ValueRef};
/// assert_eq!(ValueRef::Bytes(b"a").to_owned(), Value::Bytes(vec![b'a']));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    /// Boolean.
    Bool(bool),
    /// Unsigned integer.
    UInt(u64),
    /// Signed integer.
    Int(i64),
    /// Float.
    Float(f64),
    /// Text borrowed from the payload.
    Text(&'a str),
    /// Bytes borrowed from the payload.
    Bytes(&'a [u8]),
}

impl<'a> ValueRef<'a> {
    pub(crate) fn from_num(n: crate::format::Num) -> Self {
        use crate::format::Num;
        match n {
            Num::I(i) => ValueRef::Int(i),
            Num::U(u) => ValueRef::UInt(u),
            Num::F(f) => ValueRef::Float(f),
            Num::B(b) => ValueRef::Bool(b),
        }
    }

    /// Copies into an owned [`Value`].
    ///
    /// ```
    /// assert_eq!(netcore_schema::ValueRef::Int(1).to_owned(), netcore_schema::Value::Int(1));
    /// ```
    pub fn to_owned(self) -> Value {
        match self {
            ValueRef::Bool(b) => Value::Bool(b),
            ValueRef::UInt(u) => Value::UInt(u),
            ValueRef::Int(i) => Value::Int(i),
            ValueRef::Float(f) => Value::Float(f),
            ValueRef::Text(s) => Value::Text(s.to_owned()),
            ValueRef::Bytes(b) => Value::Bytes(b.to_vec()),
        }
    }
}
