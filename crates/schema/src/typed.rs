//! Message types defined in Rust: the [`TypedMessage`] trait and the
//! [`message!`](crate::message) macro.
//!
//! This module owns the static side of schemas. `message!` generates a plain struct plus
//! its [`TypedMessage`] impl; field formats are checked at compile time (a `String`
//! field cannot be declared `">f"`). Encoding appends straight into the caller's buffer
//! and decoding reads straight from the received slice: a fixed layout made of numbers
//! and `[u8; N]` fields encodes and decodes without any allocation.
//!
//! [`TypedMessage`] is also the extension point for an application layer: anything that
//! can `encode` into a `Vec<u8>` and `decode` from a `&[u8]` can travel as a body.

use crate::error::{Result, SchemaError};
use crate::format::{Num, NumKind};
use crate::layout::{put_bytes, put_fixed, put_text, Field, FieldKind, Layout, Reader};

/// A Rust type that is one message type of a schema.
///
/// Usually implemented by [`message!`](crate::message); implement it by hand for custom
/// encodings (the payload must then still match [`fields`](TypedMessage::fields)).
///
/// ```
/// netcore_schema::message! {
///     /// One reading.
///     #[derive(Debug, PartialEq)]
///     pub struct Reading = 4 {
///         /// Value.
///         pub value: u32 [">I"],
///     }
/// }
/// use netcore_schema::TypedMessage;
/// let mut out = Vec::new();
/// Reading { value: 9 }.encode(&mut out).unwrap();
/// assert_eq!(out, [0, 0, 0, 9]);
/// assert_eq!(Reading::decode(&out).unwrap(), Reading { value: 9 });
/// assert_eq!(Reading::FIXED_SIZE, Some(4));
/// ```
pub trait TypedMessage: Sized + Send + 'static {
    /// The message type id carried in the header.
    const TYPE_ID: u64;
    /// The type's name (the struct name for `message!`).
    const NAME: &'static str;
    /// Payload size if every field is fixed width, else `None`.
    const FIXED_SIZE: Option<usize>;
    /// The field definitions, used to register the type in a [`crate::Schema`].
    fn fields() -> Vec<Field>;
    /// Appends the payload (without header, length prefix or checksum) to `out`.
    fn encode(&self, out: &mut Vec<u8>) -> Result<()>;
    /// Decodes a payload (without header, length prefix or checksum).
    fn decode(payload: &[u8]) -> Result<Self>;

    /// The layout built from [`fields`](TypedMessage::fields).
    ///
    /// ```
    /// netcore_schema::message! { pub struct Ping = 9 {} }
    /// use netcore_schema::TypedMessage;
    /// assert_eq!(Ping::layout().unwrap().fixed_size(), Some(0));
    /// ```
    fn layout() -> Result<Layout> {
        Layout::new(Self::fields())
    }
}

/// A Rust type usable as a field of a [`message!`](crate::message) struct.
///
/// Numbers map one-to-one to format codes (`u16` ↔ `H`, `i64` ↔ `q` or native `l`,
/// `bool` ↔ `?`, ...); `f32` and `f64` accept `e`, `f` (and `f64` also `d`); `String` is
/// text, `Vec<u8>` is bytes, `[u8; N]` is fixed bytes of exactly `N`.
///
/// ```
/// use netcore_schema::{FieldKind, FieldValue, NumFormat};
/// let mut v = Vec::new();
/// 7u16.encode_field(FieldKind::Num(NumFormat::parse_const("<H")), "x", &mut v).unwrap();
/// assert_eq!(v, [7, 0]);
/// ```
pub trait FieldValue: Sized {
    /// Bit mask of accepted field kinds (checked at compile time by `message!`).
    const ACCEPTS: u64;
    /// Appends this value as a field of `kind`.
    fn encode_field(&self, kind: FieldKind, field: &'static str, out: &mut Vec<u8>) -> Result<()>;
    /// Reads a value of `kind` from `r`.
    fn decode_field(kind: FieldKind, field: &'static str, r: &mut Reader<'_>) -> Result<Self>;
}

/// Compile-time check used by `message!`.
#[doc(hidden)]
pub const fn accepts(mask: u64, kind: FieldKind) -> bool {
    if let FieldKind::FixedBytes(n) = kind {
        // `[u8; N]` encodes its exact size in the mask's high bits.
        if mask & (1 << 20) != 0 {
            return (mask >> 21) as usize == n;
        }
    }
    mask & kind.bit() != 0
}

#[inline]
fn put_num(n: Num, kind: FieldKind, field: &'static str, out: &mut Vec<u8>) -> Result<()> {
    let FieldKind::Num(f) = kind else {
        return Err(SchemaError::invalid_value(
            field,
            "number given for a text/bytes field",
        ));
    };
    let start = out.len();
    out.resize(start + f.width(), 0);
    f.write(n, &mut out[start..], field)
}

#[inline]
fn get_num(kind: FieldKind, field: &'static str, r: &mut Reader<'_>) -> Result<Num> {
    let FieldKind::Num(f) = kind else {
        return Err(SchemaError::invalid_value(
            field,
            "text/bytes field read as a number",
        ));
    };
    f.read(r.take(f.width())?)
}

/// Fast path shared by numeric impls: when the wire kind is exactly the Rust type, copy
/// its bytes in the right order (the kind is a constant in `message!` code, so this
/// compiles to a plain store).
macro_rules! exact_put {
    ($v:expr, $k:ident, $kind:expr, $out:expr) => {
        if let FieldKind::Num(f) = $kind {
            if matches!(f.kind(), NumKind::$k) {
                if f.is_big_endian() {
                    $out.extend_from_slice(&$v.to_be_bytes());
                } else {
                    $out.extend_from_slice(&$v.to_le_bytes());
                }
                return Ok(());
            }
        }
    };
}

/// Decoding counterpart of `exact_put!`.
macro_rules! exact_get {
    ($t:ty, $k:ident, $kind:expr, $r:expr) => {
        if let FieldKind::Num(f) = $kind {
            if matches!(f.kind(), NumKind::$k) {
                let b = $r.take(std::mem::size_of::<$t>())?;
                let mut a = [0u8; std::mem::size_of::<$t>()];
                a.copy_from_slice(b);
                return Ok(if f.is_big_endian() {
                    <$t>::from_be_bytes(a)
                } else {
                    <$t>::from_le_bytes(a)
                });
            }
        }
    };
}

macro_rules! int_field {
    ($($t:ty: $v:ident => $($k:ident)|+;)*) => {$(
        impl FieldValue for $t {
            const ACCEPTS: u64 = 0 $(| NumKind::$k.bit())+;
            #[inline]
            fn encode_field(&self, kind: FieldKind, field: &'static str, out: &mut Vec<u8>) -> Result<()> {
                exact_put!(*self, $($k)|+, kind, out);
                put_num(Num::$v(*self as _), kind, field, out)
            }
            #[inline]
            fn decode_field(kind: FieldKind, field: &'static str, r: &mut Reader<'_>) -> Result<Self> {
                exact_get!($t, $($k)|+, kind, r);
                match get_num(kind, field, r)? {
                    Num::I(i) => <$t>::try_from(i).map_err(|_| SchemaError::invalid_value(field, "out of range")),
                    Num::U(u) => <$t>::try_from(u).map_err(|_| SchemaError::invalid_value(field, "out of range")),
                    _ => Err(SchemaError::invalid_value(field, "not an integer field")),
                }
            }
        }
    )*};
}
int_field! {
    i8: I => I8; u8: U => U8; i16: I => I16; u16: U => U16;
    i32: I => I32; u32: U => U32; i64: I => I64; u64: U => U64;
}

macro_rules! float_field {
    ($($t:ty => $exact:ident, $($k:ident)|+;)*) => {$(
        impl FieldValue for $t {
            const ACCEPTS: u64 = 0 $(| NumKind::$k.bit())+;
            #[inline]
            fn encode_field(&self, kind: FieldKind, field: &'static str, out: &mut Vec<u8>) -> Result<()> {
                exact_put!(*self, $exact, kind, out);
                put_num(Num::F(*self as f64), kind, field, out)
            }
            #[inline]
            fn decode_field(kind: FieldKind, field: &'static str, r: &mut Reader<'_>) -> Result<Self> {
                exact_get!($t, $exact, kind, r);
                match get_num(kind, field, r)? {
                    Num::F(f) => Ok(f as $t),
                    _ => Err(SchemaError::invalid_value(field, "not a float field")),
                }
            }
        }
    )*};
}
float_field! { f32 => F32, F16 | F32; f64 => F64, F16 | F32 | F64; }

impl FieldValue for bool {
    const ACCEPTS: u64 = NumKind::Bool.bit();
    #[inline]
    fn encode_field(&self, kind: FieldKind, field: &'static str, out: &mut Vec<u8>) -> Result<()> {
        put_num(Num::B(*self), kind, field, out)
    }
    #[inline]
    fn decode_field(kind: FieldKind, field: &'static str, r: &mut Reader<'_>) -> Result<Self> {
        match get_num(kind, field, r)? {
            Num::B(b) => Ok(b),
            _ => Err(SchemaError::invalid_value(field, "not a bool field")),
        }
    }
}

impl FieldValue for String {
    const ACCEPTS: u64 = FieldKind::Text.bit() | FieldKind::FixedText(1).bit();
    fn encode_field(&self, kind: FieldKind, field: &'static str, out: &mut Vec<u8>) -> Result<()> {
        put_text(self, kind, field, out)
    }
    fn decode_field(kind: FieldKind, field: &'static str, r: &mut Reader<'_>) -> Result<Self> {
        match r.read_ref(kind, field)? {
            crate::ValueRef::Text(s) => Ok(s.to_owned()),
            _ => Err(SchemaError::invalid_value(field, "not a text field")),
        }
    }
}

impl FieldValue for Vec<u8> {
    const ACCEPTS: u64 = FieldKind::Bytes.bit() | FieldKind::FixedBytes(1).bit();
    fn encode_field(&self, kind: FieldKind, field: &'static str, out: &mut Vec<u8>) -> Result<()> {
        put_bytes(self, kind, field, out)
    }
    fn decode_field(kind: FieldKind, field: &'static str, r: &mut Reader<'_>) -> Result<Self> {
        match r.read_ref(kind, field)? {
            crate::ValueRef::Bytes(b) => Ok(b.to_vec()),
            _ => Err(SchemaError::invalid_value(field, "not a bytes field")),
        }
    }
}

impl<const N: usize> FieldValue for [u8; N] {
    const ACCEPTS: u64 = (1 << 20) | ((N as u64) << 21);
    #[inline]
    fn encode_field(&self, kind: FieldKind, field: &'static str, out: &mut Vec<u8>) -> Result<()> {
        match kind {
            FieldKind::FixedBytes(n) => put_fixed(self, n, field, out),
            FieldKind::BoundedBytes(_) => put_bytes(self, kind, field, out),
            _ => Err(SchemaError::invalid_value(
                field,
                "[u8; N] needs a fixed bytes field",
            )),
        }
    }
    #[inline]
    fn decode_field(kind: FieldKind, field: &'static str, r: &mut Reader<'_>) -> Result<Self> {
        match r.read_ref(kind, field)? {
            crate::ValueRef::Bytes(raw) => <[u8; N]>::try_from(raw).map_err(|_| {
                SchemaError::invalid_value(
                    field,
                    format!("expected exactly {N} bytes, got {}", raw.len()),
                )
            }),
            _ => Err(SchemaError::invalid_value(field, "not a bytes field")),
        }
    }
}

/// Turns a field spec of [`message!`](crate::message) into a [`FieldKind`].
#[doc(hidden)]
#[macro_export]
macro_rules! __field_kind {
    (text $n:literal) => {
        $crate::FieldKind::FixedText($n)
    };
    (text) => {
        $crate::FieldKind::Text
    };
    (bytes $n:literal) => {
        $crate::FieldKind::FixedBytes($n)
    };
    (bytes) => {
        $crate::FieldKind::Bytes
    };
    ($fmt:literal) => {
        $crate::FieldKind::Num($crate::NumFormat::parse_const($fmt))
    };
}

/// Defines a message struct and its [`TypedMessage`] impl.
///
/// Syntax: `struct Name = TYPE_ID { field: RustType [spec], ... }` where `spec` is a
/// Python struct format string (`">f"`, `"<H"`, `"?"`, ...), `text N` / `bytes N`
/// (fixed length, NUL-padded) or `text` / `bytes` (variable, `u32` BE length prefix).
/// Attributes (docs, derives) on the struct and fields are kept.
///
/// A Rust type that cannot hold the declared format is a compile error:
///
/// ```compile_fail
/// netcore_schema::message! { pub struct Bad = 1 { pub x: String [">f"] } }
/// ```
///
/// ```
/// netcore_schema::message! {
///     /// Four big-endian f32 readings: 16 bytes on the wire.
///     #[derive(Debug, Clone, PartialEq)]
///     pub struct SensorData = 1 {
///         /// First sensor.
///         pub sensor1: f32 [">f"],
///         /// Second sensor.
///         pub sensor2: f32 [">f"],
///         /// Third sensor.
///         pub sensor3: f32 [">f"],
///         /// Fourth sensor.
///         pub sensor4: f32 [">f"],
///     }
/// }
/// netcore_schema::message! {
///     /// A status line.
///     #[derive(Debug, Clone, PartialEq)]
///     pub struct Status = 2 {
///         /// Code.
///         pub status_code: u32 [">I"],
///         /// Message.
///         pub message: String [text],
///     }
/// }
/// use netcore_schema::TypedMessage;
/// assert_eq!(SensorData::FIXED_SIZE, Some(16));
/// assert_eq!(Status::FIXED_SIZE, None);
/// let s = Status { status_code: 200, message: "ok".into() };
/// let mut out = Vec::new();
/// s.encode(&mut out).unwrap();
/// assert_eq!(Status::decode(&out).unwrap(), s);
/// ```
#[macro_export]
macro_rules! message {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident = $id:literal {
            $( $(#[$fmeta:meta])* $fvis:vis $field:ident : $fty:ty [ $($spec:tt)+ ] ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $( $(#[$fmeta])* $fvis $field: $fty, )*
        }

        const _: () = {
            $(
                assert!(
                    $crate::typed::accepts(<$fty as $crate::FieldValue>::ACCEPTS, $crate::__field_kind!($($spec)+)),
                    concat!("field `", stringify!($field), "`: Rust type `", stringify!($fty),
                        "` cannot hold format ", stringify!($($spec)+))
                );
            )*
        };

        impl $crate::TypedMessage for $name {
            const TYPE_ID: u64 = $id;
            const NAME: &'static str = stringify!($name);
            const FIXED_SIZE: Option<usize> =
                $crate::FieldKind::layout_fixed_size(&[$($crate::__field_kind!($($spec)+)),*]);

            fn fields() -> ::std::vec::Vec<$crate::Field> {
                ::std::vec![$($crate::Field::new(stringify!($field), $crate::__field_kind!($($spec)+))),*]
            }

            #[inline]
            fn encode(&self, out: &mut ::std::vec::Vec<u8>) -> $crate::Result<()> {
                if let Some(n) = Self::FIXED_SIZE {
                    out.reserve(n);
                }
                $(
                    $crate::FieldValue::encode_field(&self.$field, const { $crate::__field_kind!($($spec)+).in_layout(<Self as $crate::TypedMessage>::FIXED_SIZE.is_none()) }, stringify!($field), out)?;
                )*
                Ok(())
            }

            #[inline]
            fn decode(payload: &[u8]) -> $crate::Result<Self> {
                if let Some(n) = Self::FIXED_SIZE {
                    if payload.len() != n {
                        return Err($crate::SchemaError::WrongLength {
                            type_id: $id,
                            expected: n,
                            actual: payload.len(),
                        });
                    }
                }
                #[allow(unused_mut)]
                let mut r = $crate::Reader::new(payload);
                $(
                    let $field = <$fty as $crate::FieldValue>::decode_field(const { $crate::__field_kind!($($spec)+).in_layout(<Self as $crate::TypedMessage>::FIXED_SIZE.is_none()) }, stringify!($field), &mut r)?;
                )*
                let consumed = payload.len() - r.remaining();
                r.finish().map_err(|_| $crate::SchemaError::WrongLength {
                    type_id: $id,
                    expected: consumed,
                    actual: payload.len(),
                })?;
                Ok($name { $($field),* })
            }
        }
    };
}
