//! Unsigned LEB128 variable-length integers, the length and id encoding of every frame.
//!
//! Seven value bits per byte, least significant group first, high bit set on every byte
//! but the last. A `u64` takes 1 to 10 bytes. Decoding rejects encodings longer than 10
//! bytes and values that overflow 64 bits, so a hostile peer cannot make the decoder loop
//! or wrap. Non-minimal encodings (e.g. `0x80 0x00` for zero) are accepted, as LEB128
//! decoders conventionally do; encoders always produce the minimal form.

use alloc::vec::Vec;

/// Largest number of bytes a `u64` varint occupies.
pub const MAX_LEN: usize = 10;

/// Why a varint could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarintError {
    /// The input ended inside the varint; more bytes are needed.
    Incomplete,
    /// The encoding is longer than 10 bytes or its value does not fit in 64 bits.
    Overflow,
}

/// Number of bytes the minimal encoding of `value` takes.
///
/// ```
/// assert_eq!(netcore_core::varint::encoded_len(127), 1);
/// assert_eq!(netcore_core::varint::encoded_len(128), 2);
/// assert_eq!(netcore_core::varint::encoded_len(u64::MAX), 10);
/// ```
#[inline]
pub const fn encoded_len(value: u64) -> usize {
    let bits = 64 - (value | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Appends the minimal encoding of `value` to `out`.
///
/// ```
/// let mut out = Vec::new();
/// netcore_core::varint::encode(300, &mut out);
/// assert_eq!(out, [0xac, 0x02]);
/// ```
#[inline]
pub fn encode(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads one varint from the front of `input`, returning the value and the bytes used.
///
/// ```
/// assert_eq!(netcore_core::varint::decode(&[0xac, 0x02, 0xff]), Ok((300, 2)));
/// assert!(netcore_core::varint::decode(&[0x80]).is_err());
/// ```
#[inline]
pub fn decode(input: &[u8]) -> Result<(u64, usize), VarintError> {
    let mut value: u64 = 0;
    for (i, &byte) in input.iter().enumerate() {
        if i == MAX_LEN - 1 && byte > 0x01 {
            // The tenth byte may only contribute the single top bit of a u64.
            return Err(VarintError::Overflow);
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    if input.len() >= MAX_LEN {
        Err(VarintError::Overflow)
    } else {
        Err(VarintError::Incomplete)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_boundaries() {
        for v in [
            0,
            1,
            127,
            128,
            16383,
            16384,
            (1 << 21) - 1,
            1 << 21,
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            encode(v, &mut out);
            assert_eq!(out.len(), encoded_len(v), "{v}");
            assert_eq!(decode(&out), Ok((v, out.len())));
        }
    }

    #[test]
    fn rejects_overlong() {
        assert_eq!(decode(&[0xff; 11]), Err(VarintError::Overflow));
        let mut ten = [0xff; 10];
        ten[9] = 0x02;
        assert_eq!(decode(&ten), Err(VarintError::Overflow));
        assert_eq!(decode(&[0xff, 0xff]), Err(VarintError::Incomplete));
    }
}
