//! Python `struct` format strings: numeric field formats and header formats.
//!
//! This module owns the parsing of the one-code format strings that binary_protocol
//! passes to `struct.pack` (`">f"`, `"<H"`, `"q"`, ...), the resulting sizes and byte
//! orders (including Python's native `@` sizes, where `l`/`L` follow the C `long`), and
//! the conversion of numbers to and from their wire bytes. Parsing is a `const fn`, so
//! the [`message!`](crate::message) macro checks formats at compile time.

use crate::error::{Result, SchemaError};
use std::fmt;

/// The number kind a format code denotes, after resolving native sizes.
///
/// ```
/// use netcore_schema::{NumFormat, NumKind};
/// assert_eq!(NumFormat::parse(">l").unwrap().kind(), NumKind::I32);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NumKind {
    /// `b`
    I8,
    /// `B`
    U8,
    /// `h`
    I16,
    /// `H`
    U16,
    /// `i`, standard-size `l`
    I32,
    /// `I`, standard-size `L`
    U32,
    /// `q`, native `l` on LP64 platforms
    I64,
    /// `Q`, native `L` on LP64 platforms
    U64,
    /// `e` (IEEE 754 half precision)
    F16,
    /// `f`
    F32,
    /// `d`
    F64,
    /// `?`
    Bool,
}

impl NumKind {
    /// Width on the wire in bytes.
    ///
    /// ```
    /// assert_eq!(netcore_schema::NumKind::F16.width(), 2);
    /// ```
    pub const fn width(self) -> usize {
        match self {
            NumKind::I8 | NumKind::U8 | NumKind::Bool => 1,
            NumKind::I16 | NumKind::U16 | NumKind::F16 => 2,
            NumKind::I32 | NumKind::U32 | NumKind::F32 => 4,
            NumKind::I64 | NumKind::U64 | NumKind::F64 => 8,
        }
    }

    /// Whether the kind is an integer (signed or unsigned).
    ///
    /// ```
    /// assert!(netcore_schema::NumKind::U16.is_integer());
    /// ```
    pub const fn is_integer(self) -> bool {
        !matches!(
            self,
            NumKind::F16 | NumKind::F32 | NumKind::F64 | NumKind::Bool
        )
    }

    /// Bit used by [`crate::FieldValue::ACCEPTS`] masks.
    pub(crate) const fn bit(self) -> u64 {
        1 << (self as u32)
    }
}

/// A parsed one-code numeric format string such as `">f"` or `"<H"`.
///
/// Prefixes: `<` little endian, `>` and `!` big endian, `=` native order with standard
/// sizes, `@` or none: native order with native sizes (where `l`/`L` are the C `long`,
/// 8 bytes on 64-bit Linux/macOS, exactly as Python's `struct` does on the same host).
///
/// ```
/// use netcore_schema::NumFormat;
/// const F: NumFormat = NumFormat::parse_const(">f");
/// assert_eq!(F.width(), 4);
/// assert!(F.is_big_endian());
/// assert_eq!(F.to_string(), ">f");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NumFormat {
    kind: NumKind,
    big_endian: bool,
    prefix: u8,
    code: u8,
}

/// Why a format string was rejected (const-friendly).
#[derive(Debug, Clone, Copy)]
pub(crate) struct FormatReject(pub &'static str);

const NATIVE_BIG: bool = cfg!(target_endian = "big");
const C_LONG_IS_64: bool = std::mem::size_of::<std::ffi::c_long>() == 8;

impl NumFormat {
    const fn try_parse(s: &str) -> std::result::Result<NumFormat, FormatReject> {
        let b = s.as_bytes();
        let (prefix, code) = match b.len() {
            1 => (0u8, b[0]),
            2 => (b[0], b[1]),
            0 => return Err(FormatReject("empty format string")),
            _ => {
                return Err(FormatReject(
                    "exactly one format code is supported per field",
                ))
            }
        };
        let (big_endian, standard) = match prefix {
            0 | b'@' => (NATIVE_BIG, false),
            b'=' => (NATIVE_BIG, true),
            b'<' => (false, true),
            b'>' | b'!' => (true, true),
            _ => return Err(FormatReject("unknown byte-order prefix")),
        };
        let kind = match code {
            b'b' => NumKind::I8,
            b'B' => NumKind::U8,
            b'h' => NumKind::I16,
            b'H' => NumKind::U16,
            b'i' => NumKind::I32,
            b'I' => NumKind::U32,
            b'l' if standard || !C_LONG_IS_64 => NumKind::I32,
            b'l' => NumKind::I64,
            b'L' if standard || !C_LONG_IS_64 => NumKind::U32,
            b'L' => NumKind::U64,
            b'q' => NumKind::I64,
            b'Q' => NumKind::U64,
            b'e' => NumKind::F16,
            b'f' => NumKind::F32,
            b'd' => NumKind::F64,
            b'?' => NumKind::Bool,
            _ => return Err(FormatReject("unsupported format code")),
        };
        Ok(NumFormat {
            kind,
            big_endian,
            prefix,
            code,
        })
    }

    /// Parses a format string at run time.
    ///
    /// ```
    /// use netcore_schema::NumFormat;
    /// assert_eq!(NumFormat::parse("<q").unwrap().width(), 8);
    /// assert!(NumFormat::parse(">x").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<NumFormat> {
        Self::try_parse(s).map_err(|r| SchemaError::InvalidFormat {
            format: s.to_owned(),
            reason: r.0,
        })
    }

    /// Parses a format string in a const context; panics (a compile error in const
    /// context) when the string is invalid.
    ///
    /// ```
    /// const H: netcore_schema::NumFormat = netcore_schema::NumFormat::parse_const("!H");
    /// assert_eq!(H.width(), 2);
    /// ```
    pub const fn parse_const(s: &str) -> NumFormat {
        match Self::try_parse(s) {
            Ok(f) => f,
            Err(_) => panic!("invalid numeric format string"),
        }
    }

    /// The number kind.
    ///
    /// ```
    /// assert_eq!(netcore_schema::NumFormat::parse_const("?").kind(), netcore_schema::NumKind::Bool);
    /// ```
    pub const fn kind(self) -> NumKind {
        self.kind
    }

    /// Width on the wire in bytes.
    ///
    /// ```
    /// assert_eq!(netcore_schema::NumFormat::parse_const(">d").width(), 8);
    /// ```
    pub const fn width(self) -> usize {
        self.kind.width()
    }

    /// Whether the bytes are big endian (resolved for native prefixes).
    ///
    /// ```
    /// assert!(!netcore_schema::NumFormat::parse_const("<i").is_big_endian());
    /// ```
    pub const fn is_big_endian(self) -> bool {
        self.big_endian
    }

    /// Writes `n` into `dst` (exactly [`width`](Self::width) bytes).
    ///
    /// ```
    /// use netcore_schema::{Num, NumFormat};
    /// let mut b = [0u8; 2];
    /// NumFormat::parse_const(">H").write(Num::U(258), &mut b, "x").unwrap();
    /// assert_eq!(b, [1, 2]);
    /// ```
    #[inline]
    pub fn write(self, n: Num, dst: &mut [u8], field: &str) -> Result<()> {
        let w = self.width();
        if dst.len() < w {
            return Err(SchemaError::Truncated {
                needed: w,
                available: dst.len(),
            });
        }
        let dst = &mut dst[..w];
        let range = |lo: i128, hi: i128| -> Result<u64> {
            let v = match n {
                Num::I(v) => v as i128,
                Num::U(v) => v as i128,
                Num::B(b) => b as i128,
                Num::F(_) => {
                    return Err(SchemaError::invalid_value(
                        field,
                        "a float cannot be packed into an integer field; pass an integer",
                    ))
                }
            };
            if v < lo || v > hi {
                return Err(SchemaError::invalid_value(
                    field,
                    format!("{v} is out of range {lo}..={hi} for format {self}"),
                ));
            }
            Ok(v as u64)
        };
        let bits: u64 = match self.kind {
            NumKind::I8 => range(i8::MIN as i128, i8::MAX as i128)?,
            NumKind::U8 => range(0, u8::MAX as i128)?,
            NumKind::I16 => range(i16::MIN as i128, i16::MAX as i128)?,
            NumKind::U16 => range(0, u16::MAX as i128)?,
            NumKind::I32 => range(i32::MIN as i128, i32::MAX as i128)?,
            NumKind::U32 => range(0, u32::MAX as i128)?,
            NumKind::I64 => range(i64::MIN as i128, i64::MAX as i128)?,
            NumKind::U64 => range(0, u64::MAX as i128)?,
            NumKind::Bool => match n {
                Num::B(b) => b as u64,
                Num::I(v) => (v != 0) as u64,
                Num::U(v) => (v != 0) as u64,
                Num::F(v) => (v != 0.0) as u64,
            },
            NumKind::F16 | NumKind::F32 | NumKind::F64 => {
                let f = match n {
                    Num::F(v) => v,
                    Num::I(v) => v as f64,
                    Num::U(v) => v as f64,
                    Num::B(b) => b as u8 as f64,
                };
                match self.kind {
                    NumKind::F16 => {
                        let h = half::f16::from_f64(f);
                        if h.is_infinite() && f.is_finite() {
                            return Err(SchemaError::invalid_value(
                                field,
                                format!("{f} is too large for a half-precision ('e') field"),
                            ));
                        }
                        h.to_bits() as u64
                    }
                    NumKind::F32 => {
                        let s = f as f32;
                        if s.is_infinite() && f.is_finite() {
                            return Err(SchemaError::invalid_value(
                                field,
                                format!("{f} is too large for a single-precision ('f') field"),
                            ));
                        }
                        s.to_bits() as u64
                    }
                    _ => f.to_bits(),
                }
            }
        };
        if self.big_endian {
            dst.copy_from_slice(&bits.to_be_bytes()[8 - w..]);
        } else {
            dst.copy_from_slice(&bits.to_le_bytes()[..w]);
        }
        Ok(())
    }

    /// Reads a number from the first [`width`](Self::width) bytes of `src`.
    ///
    /// ```
    /// use netcore_schema::{Num, NumFormat};
    /// assert_eq!(NumFormat::parse_const("<h").read(&[0xff, 0xff]).unwrap(), Num::I(-1));
    /// ```
    #[inline]
    pub fn read(self, src: &[u8]) -> Result<Num> {
        let w = self.width();
        let Some(src) = src.get(..w) else {
            return Err(SchemaError::Truncated {
                needed: w,
                available: src.len(),
            });
        };
        let mut raw = [0u8; 8];
        let bits = if self.big_endian {
            raw[8 - w..].copy_from_slice(src);
            u64::from_be_bytes(raw)
        } else {
            raw[..w].copy_from_slice(src);
            u64::from_le_bytes(raw)
        };
        Ok(match self.kind {
            NumKind::I8 => Num::I(bits as u8 as i8 as i64),
            NumKind::I16 => Num::I(bits as u16 as i16 as i64),
            NumKind::I32 => Num::I(bits as u32 as i32 as i64),
            NumKind::I64 => Num::I(bits as i64),
            NumKind::U8 | NumKind::U16 | NumKind::U32 | NumKind::U64 => Num::U(bits),
            NumKind::Bool => Num::B(bits != 0),
            NumKind::F16 => Num::F(half::f16::from_bits(bits as u16).to_f64()),
            NumKind::F32 => Num::F(f32::from_bits(bits as u32) as f64),
            NumKind::F64 => Num::F(f64::from_bits(bits)),
        })
    }
}

impl fmt::Display for NumFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix != 0 {
            write!(f, "{}", self.prefix as char)?;
        }
        write!(f, "{}", self.code as char)
    }
}

/// A number in transit between a Rust value and its wire bytes.
///
/// ```
/// use netcore_schema::Num;
/// assert_ne!(Num::I(1), Num::U(1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    /// Signed integer.
    I(i64),
    /// Unsigned integer.
    U(u64),
    /// Floating point.
    F(f64),
    /// Boolean.
    B(bool),
}

/// The message-type header: an unsigned integer of 1, 2, 4 or 8 bytes in a given byte
/// order (Python `header_format`, default `">H"`).
///
/// The reserved NOT_FOUND type is the all-ones value of the header width (65535 for
/// `">H"`). Signed codes (`b h i l q`) are accepted: ids are the unsigned reading of the
/// header bytes, which equals the Python value for non-negative ids.
///
/// ```
/// use netcore_schema::HeaderFormat;
/// let h = HeaderFormat::parse(">H").unwrap();
/// assert_eq!(h.size(), 2);
/// assert_eq!(h.not_found(), 0xffff);
/// let mut out = Vec::new();
/// h.write(1, &mut out).unwrap();
/// assert_eq!(out, [0, 1]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HeaderFormat {
    format: NumFormat,
}

impl Default for HeaderFormat {
    fn default() -> Self {
        HeaderFormat {
            format: NumFormat::parse_const(">H"),
        }
    }
}

impl HeaderFormat {
    /// Parses a header format string (an integer code with optional prefix).
    ///
    /// ```
    /// assert!(netcore_schema::HeaderFormat::parse("<I").is_ok());
    /// assert!(netcore_schema::HeaderFormat::parse(">f").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<HeaderFormat> {
        let format = NumFormat::parse(s)?;
        if !format.kind.is_integer() {
            return Err(SchemaError::InvalidFormat {
                format: s.to_owned(),
                reason: "a header must be an integer code (b B h H i I l L q Q)",
            });
        }
        Ok(HeaderFormat { format })
    }

    /// Header width in bytes.
    ///
    /// ```
    /// assert_eq!(netcore_schema::HeaderFormat::parse("B").unwrap().size(), 1);
    /// ```
    pub const fn size(self) -> usize {
        self.format.width()
    }

    /// The reserved NOT_FOUND type id: all bits of the header set.
    ///
    /// ```
    /// assert_eq!(netcore_schema::HeaderFormat::parse(">B").unwrap().not_found(), 255);
    /// ```
    pub const fn not_found(self) -> u64 {
        if self.size() == 8 {
            u64::MAX
        } else {
            (1u64 << (8 * self.size())) - 1
        }
    }

    /// Largest id a header can carry.
    ///
    /// ```
    /// assert_eq!(netcore_schema::HeaderFormat::parse(">H").unwrap().max_id(), 0xffff);
    /// ```
    pub const fn max_id(self) -> u64 {
        self.not_found()
    }

    /// The format string.
    ///
    /// ```
    /// assert_eq!(netcore_schema::HeaderFormat::default().format().to_string(), ">H");
    /// ```
    pub const fn format(self) -> NumFormat {
        self.format
    }

    /// Appends the header for `type_id`.
    ///
    /// ```
    /// let mut v = Vec::new();
    /// netcore_schema::HeaderFormat::parse("<I").unwrap().write(5, &mut v).unwrap();
    /// assert_eq!(v, [5, 0, 0, 0]);
    /// ```
    #[inline]
    pub fn write(self, type_id: u64, out: &mut Vec<u8>) -> Result<()> {
        if type_id > self.max_id() {
            return Err(SchemaError::invalid_value(
                "header",
                format!(
                    "type id {type_id} does not fit header format {}",
                    self.format
                ),
            ));
        }
        let w = self.size();
        if self.format.big_endian {
            out.extend_from_slice(&type_id.to_be_bytes()[8 - w..]);
        } else {
            out.extend_from_slice(&type_id.to_le_bytes()[..w]);
        }
        Ok(())
    }

    /// Reads a type id from the first [`size`](Self::size) bytes, or `None` if too short.
    ///
    /// ```
    /// assert_eq!(netcore_schema::HeaderFormat::default().read(&[0, 3, 9]), Some(3));
    /// ```
    #[inline]
    pub fn read(self, src: &[u8]) -> Option<u64> {
        let w = self.size();
        let src = src.get(..w)?;
        let mut raw = [0u8; 8];
        Some(if self.format.big_endian {
            raw[8 - w..].copy_from_slice(src);
            u64::from_be_bytes(raw)
        } else {
            raw[..w].copy_from_slice(src);
            u64::from_le_bytes(raw)
        })
    }
}

impl fmt::Display for HeaderFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.format.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_long_follows_c_long() {
        let native = NumFormat::parse("l").unwrap().width();
        assert_eq!(native, std::mem::size_of::<std::ffi::c_long>());
        assert_eq!(NumFormat::parse("=l").unwrap().width(), 4);
        assert_eq!(NumFormat::parse("!L").unwrap().width(), 4);
    }

    #[test]
    fn rejects_bad_formats() {
        for f in ["", ">", ">2H", "x", ">s", "~H", ">HH"] {
            assert!(NumFormat::parse(f).is_err(), "{f}");
        }
    }

    #[test]
    fn range_checks() {
        let mut b = [0u8; 1];
        let f = NumFormat::parse_const("b");
        assert!(f.write(Num::I(128), &mut b, "x").is_err());
        assert!(f.write(Num::I(-128), &mut b, "x").is_ok());
        assert_eq!(b, [0x80]);
        let e = NumFormat::parse_const(">e");
        let mut h = [0u8; 2];
        assert!(e.write(Num::F(70000.0), &mut h, "x").is_err());
        e.write(Num::F(1.5), &mut h, "x").unwrap();
        assert_eq!(h, [0x3e, 0x00]);
    }

    #[test]
    fn header_not_found_and_bounds() {
        let h = HeaderFormat::parse("<Q").unwrap();
        assert_eq!(h.not_found(), u64::MAX);
        let b = HeaderFormat::parse("B").unwrap();
        let mut v = Vec::new();
        assert!(b.write(256, &mut v).is_err());
        assert!(HeaderFormat::parse("?").is_err());
    }
}
