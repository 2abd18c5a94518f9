//! Field kinds, layouts and the field-level wire primitives.
//!
//! This module owns how one message payload is laid out: the [`FieldKind`] of each
//! [`Field`], whether a [`Layout`] is fixed (all fields fixed width, no length prefix on
//! the wire) or variable, and the byte-level reading and writing of numbers, fixed-length
//! NUL-padded text/bytes and `u32`-big-endian-prefixed variable text/bytes. Both the
//! dynamic [`Value`] codec and the [`message!`](crate::message) macro use these primitives,
//! so they produce the same bytes.

use crate::error::{Result, SchemaError};
use crate::format::NumFormat;
use crate::value::{Value, ValueRef};

/// The kind of one field.
///
/// ```
/// use netcore_schema::{FieldKind, NumFormat};
/// assert_eq!(FieldKind::Num(NumFormat::parse_const(">f")).fixed_width(), Some(4));
/// assert_eq!(FieldKind::FixedText(8).fixed_width(), Some(8));
/// assert_eq!(FieldKind::Text.fixed_width(), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldKind {
    /// A number or boolean in a struct format (`">f"`, `"<H"`, `"?"`, ...).
    Num(NumFormat),
    /// UTF-8 text, NUL-padded to exactly this many bytes.
    FixedText(usize),
    /// Raw bytes, NUL-padded to exactly this many bytes.
    FixedBytes(usize),
    /// UTF-8 text with a `u32` big-endian length prefix.
    Text,
    /// Raw bytes with a `u32` big-endian length prefix.
    Bytes,
    /// What a `FixedText(n)` field becomes inside a variable layout: binary_protocol
    /// ignores `fixed_length` there and sends the text with a `u32` BE length prefix,
    /// unpadded. We also require at most `n` bytes. Produced by [`FieldKind::in_layout`].
    BoundedText(usize),
    /// What a `FixedBytes(n)` field becomes inside a variable layout (see
    /// [`FieldKind::BoundedText`]).
    BoundedBytes(usize),
}

impl FieldKind {
    /// Width on the wire if the field has a fixed width.
    ///
    /// ```
    /// assert_eq!(netcore_schema::FieldKind::Bytes.fixed_width(), None);
    /// ```
    pub const fn fixed_width(self) -> Option<usize> {
        match self {
            FieldKind::Num(f) => Some(f.width()),
            FieldKind::FixedText(n) | FieldKind::FixedBytes(n) => Some(n),
            FieldKind::Text
            | FieldKind::Bytes
            | FieldKind::BoundedText(_)
            | FieldKind::BoundedBytes(_) => None,
        }
    }

    /// The kind actually used on the wire: inside a variable layout, fixed-length
    /// text/bytes are sent length-prefixed (binary_protocol's `_serialize_variable`).
    ///
    /// ```
    /// use netcore_schema::FieldKind;
    /// assert_eq!(FieldKind::FixedText(4).in_layout(true), FieldKind::BoundedText(4));
    /// assert_eq!(FieldKind::FixedText(4).in_layout(false), FieldKind::FixedText(4));
    /// ```
    pub const fn in_layout(self, variable_layout: bool) -> FieldKind {
        match self {
            FieldKind::FixedText(n) if variable_layout => FieldKind::BoundedText(n),
            FieldKind::FixedBytes(n) if variable_layout => FieldKind::BoundedBytes(n),
            k => k,
        }
    }

    /// Mask bit for [`crate::FieldValue::ACCEPTS`].
    pub(crate) const fn bit(self) -> u64 {
        match self {
            FieldKind::Num(f) => f.kind().bit(),
            FieldKind::FixedText(_) | FieldKind::BoundedText(_) => 1 << 16,
            FieldKind::Text => 1 << 17,
            FieldKind::FixedBytes(_) | FieldKind::BoundedBytes(_) => 1 << 18,
            FieldKind::Bytes => 1 << 19,
        }
    }

    /// Fixed size of a whole layout given its kinds, or `None` if any is variable.
    ///
    /// ```
    /// use netcore_schema::FieldKind;
    /// assert_eq!(FieldKind::layout_fixed_size(&[FieldKind::FixedBytes(3)]), Some(3));
    /// assert_eq!(FieldKind::layout_fixed_size(&[FieldKind::Text]), None);
    /// ```
    pub const fn layout_fixed_size(kinds: &[FieldKind]) -> Option<usize> {
        let mut i = 0;
        let mut total = 0;
        while i < kinds.len() {
            match kinds[i].fixed_width() {
                Some(w) => total += w,
                None => return None,
            }
            i += 1;
        }
        Some(total)
    }
}

/// A named field.
///
/// ```
/// use netcore_schema::{Field, FieldKind};
/// let f = Field::new("name", FieldKind::FixedText(16));
/// assert_eq!(f.name(), "name");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    name: String,
    kind: FieldKind,
}

impl Field {
    /// Creates a field.
    ///
    /// ```
    /// let f = netcore_schema::Field::new("blob", netcore_schema::FieldKind::Bytes);
    /// assert_eq!(f.kind(), netcore_schema::FieldKind::Bytes);
    /// ```
    pub fn new(name: impl Into<String>, kind: FieldKind) -> Field {
        Field {
            name: name.into(),
            kind,
        }
    }

    /// Field name.
    ///
    /// ```
    /// assert_eq!(netcore_schema::Field::new("a", netcore_schema::FieldKind::Text).name(), "a");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Field kind.
    ///
    /// ```
    /// assert_eq!(netcore_schema::Field::new("a", netcore_schema::FieldKind::Text).kind(), netcore_schema::FieldKind::Text);
    /// ```
    pub fn kind(&self) -> FieldKind {
        self.kind
    }
}

/// The ordered fields of one message type.
///
/// ```
/// use netcore_schema::{Field, FieldKind, Layout, NumFormat, Value};
/// let l = Layout::new(vec![
///     Field::new("code", FieldKind::Num(NumFormat::parse_const(">I"))),
///     Field::new("msg", FieldKind::Text),
/// ]).unwrap();
/// assert!(!l.is_fixed());
/// let mut out = Vec::new();
/// l.encode(&[Value::UInt(7), Value::Text("hi".into())], &mut out).unwrap();
/// assert_eq!(out, [0, 0, 0, 7, 0, 0, 0, 2, b'h', b'i']);
/// assert_eq!(l.decode(&out).unwrap()[1], Value::Text("hi".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    fields: Vec<Field>,
    fixed_size: Option<usize>,
}

impl Layout {
    /// Builds a layout; field names must be unique and fixed lengths non-zero.
    ///
    /// ```
    /// use netcore_schema::{Field, FieldKind, Layout};
    /// assert!(Layout::new(vec![Field::new("a", FieldKind::FixedText(0))]).is_err());
    /// ```
    pub fn new(fields: Vec<Field>) -> Result<Layout> {
        for (i, f) in fields.iter().enumerate() {
            if fields[..i].iter().any(|g| g.name == f.name) {
                return Err(SchemaError::InvalidSchema(format!(
                    "duplicate field name {:?}",
                    f.name
                )));
            }
            if matches!(f.kind, FieldKind::FixedText(0) | FieldKind::FixedBytes(0)) {
                return Err(SchemaError::InvalidSchema(format!(
                    "field {:?} has fixed length 0; omit the length for a variable-length field",
                    f.name
                )));
            }
        }
        let kinds: Vec<FieldKind> = fields.iter().map(|f| f.kind).collect();
        Ok(Layout {
            fixed_size: FieldKind::layout_fixed_size(&kinds),
            fields,
        })
    }

    /// The fields in wire order.
    ///
    /// ```
    /// assert!(netcore_schema::Layout::new(vec![]).unwrap().fields().is_empty());
    /// ```
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// Whether every field has a fixed width (no length prefix on the wire).
    ///
    /// ```
    /// assert!(netcore_schema::Layout::new(vec![]).unwrap().is_fixed());
    /// ```
    pub fn is_fixed(&self) -> bool {
        self.fixed_size.is_some()
    }

    /// Payload size of a fixed layout.
    ///
    /// ```
    /// assert_eq!(netcore_schema::Layout::new(vec![]).unwrap().fixed_size(), Some(0));
    /// ```
    pub fn fixed_size(&self) -> Option<usize> {
        self.fixed_size
    }

    /// Index of the field called `name`.
    ///
    /// ```
    /// use netcore_schema::{Field, FieldKind, Layout};
    /// let l = Layout::new(vec![Field::new("a", FieldKind::Text)]).unwrap();
    /// assert_eq!(l.index_of("a"), Some(0));
    /// ```
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    /// Appends the payload for `values` (one per field, in order).
    ///
    /// ```
    /// use netcore_schema::{Field, FieldKind, Layout, Value};
    /// let l = Layout::new(vec![Field::new("t", FieldKind::FixedText(4))]).unwrap();
    /// let mut v = Vec::new();
    /// l.encode(&[Value::Text("ab".into())], &mut v).unwrap();
    /// assert_eq!(v, b"ab\0\0");
    /// assert!(l.encode(&[Value::Text("abcde".into())], &mut Vec::new()).is_err());
    /// ```
    pub fn encode(&self, values: &[Value], out: &mut Vec<u8>) -> Result<()> {
        if values.len() != self.fields.len() {
            return Err(SchemaError::InvalidValue {
                field: String::new(),
                reason: format!(
                    "{} values given for a layout of {} fields; give one value per field",
                    values.len(),
                    self.fields.len()
                ),
            });
        }
        if let Some(n) = self.fixed_size {
            out.reserve(n);
        }
        let variable = self.fixed_size.is_none();
        for (f, v) in self.fields.iter().zip(values) {
            v.encode_field(f.kind.in_layout(variable), &f.name, out)?;
        }
        Ok(())
    }

    /// Decodes a payload into owned values.
    ///
    /// ```
    /// use netcore_schema::{Field, FieldKind, Layout, NumFormat, Value};
    /// let l = Layout::new(vec![Field::new("v", FieldKind::Num(NumFormat::parse_const("<h")))]).unwrap();
    /// assert_eq!(l.decode(&[0xfe, 0xff]).unwrap(), vec![Value::Int(-2)]);
    /// assert!(l.decode(&[0]).is_err());
    /// ```
    pub fn decode(&self, payload: &[u8]) -> Result<Vec<Value>> {
        Ok(self
            .decode_ref(payload)?
            .into_iter()
            .map(ValueRef::to_owned)
            .collect())
    }

    /// Decodes a payload into values borrowing text and bytes from `payload` (no copy).
    ///
    /// ```
    /// use netcore_schema::{Field, FieldKind, Layout, ValueRef};
    /// let l = Layout::new(vec![Field::new("t", FieldKind::FixedText(4))]).unwrap();
    /// assert_eq!(l.decode_ref(b"ok\0\0").unwrap(), vec![ValueRef::Text("ok")]);
    /// ```
    pub fn decode_ref<'a>(&self, payload: &'a [u8]) -> Result<Vec<ValueRef<'a>>> {
        if let Some(n) = self.fixed_size {
            if payload.len() != n {
                return Err(SchemaError::WrongLength {
                    type_id: u64::MAX,
                    expected: n,
                    actual: payload.len(),
                });
            }
        }
        let mut r = Reader::new(payload);
        let mut out = Vec::with_capacity(self.fields.len());
        let variable = self.fixed_size.is_none();
        for f in &self.fields {
            out.push(r.read_ref(f.kind.in_layout(variable), &f.name)?);
        }
        r.finish()?;
        Ok(out)
    }
}

/// A cursor over a payload used by decoders.
///
/// ```
/// use netcore_schema::{FieldKind, Reader, ValueRef};
/// let mut r = Reader::new(&[0, 0, 0, 1, b'x']);
/// assert_eq!(r.read_ref(FieldKind::Bytes, "b").unwrap(), ValueRef::Bytes(b"x"));
/// r.finish().unwrap();
/// ```
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading `buf`.
    ///
    /// ```
    /// assert_eq!(netcore_schema::Reader::new(b"ab").remaining(), 2);
    /// ```
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not yet read.
    ///
    /// ```
    /// assert_eq!(netcore_schema::Reader::new(b"").remaining(), 0);
    /// ```
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Takes the next `n` bytes.
    ///
    /// ```
    /// let mut r = netcore_schema::Reader::new(b"abc");
    /// assert_eq!(r.take(2).unwrap(), b"ab");
    /// assert!(r.take(2).is_err());
    /// ```
    #[inline]
    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let avail = self.remaining();
        if n > avail {
            return Err(SchemaError::Truncated {
                needed: n - avail,
                available: avail,
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Fails if bytes remain (binary_protocol ignores them; we reject them).
    ///
    /// ```
    /// let r = netcore_schema::Reader::new(b"x");
    /// assert!(r.finish().is_err());
    /// ```
    pub fn finish(self) -> Result<()> {
        if self.remaining() != 0 {
            return Err(SchemaError::WrongLength {
                type_id: u64::MAX,
                expected: self.pos,
                actual: self.buf.len(),
            });
        }
        Ok(())
    }

    /// Reads one field of the given kind, borrowing text/bytes.
    ///
    /// ```
    /// use netcore_schema::{FieldKind, NumFormat, Reader, ValueRef};
    /// let mut r = Reader::new(&[1]);
    /// assert_eq!(r.read_ref(FieldKind::Num(NumFormat::parse_const("?")), "f").unwrap(), ValueRef::Bool(true));
    /// ```
    #[inline]
    pub fn read_ref(&mut self, kind: FieldKind, field: &str) -> Result<ValueRef<'a>> {
        Ok(match kind {
            FieldKind::Num(f) => ValueRef::from_num(f.read(self.take(f.width())?)?),
            FieldKind::FixedText(n) => ValueRef::Text(fixed_text(self.take(n)?, field)?),
            FieldKind::FixedBytes(n) => ValueRef::Bytes(self.take(n)?),
            FieldKind::Text => ValueRef::Text(utf8(self.take_prefixed()?, field)?),
            FieldKind::Bytes => ValueRef::Bytes(self.take_prefixed()?),
            FieldKind::BoundedText(n) => {
                ValueRef::Text(utf8(bounded(self.take_prefixed()?, n, field)?, field)?)
            }
            FieldKind::BoundedBytes(n) => {
                ValueRef::Bytes(bounded(self.take_prefixed()?, n, field)?)
            }
        })
    }

    /// Takes a `u32` big-endian length prefix and that many bytes.
    ///
    /// ```
    /// let mut r = netcore_schema::Reader::new(&[0, 0, 0, 0]);
    /// assert_eq!(r.take_prefixed().unwrap(), b"");
    /// ```
    #[inline]
    pub fn take_prefixed(&mut self) -> Result<&'a [u8]> {
        let p = self.take(4)?;
        let n = u32::from_be_bytes([p[0], p[1], p[2], p[3]]) as usize;
        self.take(n)
    }
}

fn bounded<'a>(b: &'a [u8], n: usize, field: &str) -> Result<&'a [u8]> {
    if b.len() > n {
        return Err(SchemaError::TooLong {
            field: field.to_owned(),
            len: b.len(),
            max: n,
        });
    }
    Ok(b)
}

fn utf8<'a>(b: &'a [u8], field: &str) -> Result<&'a str> {
    std::str::from_utf8(b).map_err(|_| SchemaError::InvalidUtf8 {
        field: field.to_owned(),
    })
}

/// Decodes fixed text: up to the first NUL, as binary_protocol does.
#[inline]
pub(crate) fn fixed_text<'a>(raw: &'a [u8], field: &str) -> Result<&'a str> {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    utf8(&raw[..end], field)
}

/// Appends fixed text or bytes, NUL-padded; errors when too long.
#[inline]
pub(crate) fn put_fixed(bytes: &[u8], n: usize, field: &str, out: &mut Vec<u8>) -> Result<()> {
    if bytes.len() > n {
        return Err(SchemaError::TooLong {
            field: field.to_owned(),
            len: bytes.len(),
            max: n,
        });
    }
    out.extend_from_slice(bytes);
    out.resize(out.len() + (n - bytes.len()), 0);
    Ok(())
}

/// Appends a `u32` big-endian length prefix and the bytes.
#[inline]
pub(crate) fn put_prefixed(bytes: &[u8], field: &str, out: &mut Vec<u8>) -> Result<()> {
    let n = u32::try_from(bytes.len()).map_err(|_| {
        SchemaError::invalid_value(
            field,
            "longer than 4 GiB; the u32 length prefix cannot hold it",
        )
    })?;
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// Appends text for a text kind (fixed or variable).
#[inline]
pub(crate) fn put_text(s: &str, kind: FieldKind, field: &str, out: &mut Vec<u8>) -> Result<()> {
    match kind {
        FieldKind::FixedText(n) => {
            if s.as_bytes().contains(&0) {
                return Err(SchemaError::invalid_value(
                    field,
                    "fixed-length text cannot contain NUL (it would be cut there on decode); use a bytes field",
                ));
            }
            put_fixed(s.as_bytes(), n, field, out)
        }
        FieldKind::Text => put_prefixed(s.as_bytes(), field, out),
        FieldKind::BoundedText(n) => put_prefixed(bounded(s.as_bytes(), n, field)?, field, out),
        _ => Err(SchemaError::invalid_value(
            field,
            "text given for a non-text field",
        )),
    }
}

/// Appends bytes for a bytes kind (fixed or variable).
#[inline]
pub(crate) fn put_bytes(b: &[u8], kind: FieldKind, field: &str, out: &mut Vec<u8>) -> Result<()> {
    match kind {
        FieldKind::FixedBytes(n) => put_fixed(b, n, field, out),
        FieldKind::Bytes => put_prefixed(b, field, out),
        FieldKind::BoundedBytes(n) => put_prefixed(bounded(b, n, field)?, field, out),
        _ => Err(SchemaError::invalid_value(
            field,
            "bytes given for a non-bytes field",
        )),
    }
}
