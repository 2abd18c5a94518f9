//! Consistent Overhead Byte Stuffing: removes every zero byte from a frame so that zero
//! can mark frame boundaries on a serial line. Overhead: one byte per started 254 bytes.

use alloc::vec::Vec;

/// Largest encoded size of `len` input bytes (without the trailing delimiter).
pub const fn max_encoded_len(len: usize) -> usize {
    len + len / 254 + 1
}

/// Appends the COBS encoding of `input` to `out` (no delimiter).
///
/// ```
/// let mut out = Vec::new();
/// netcore_core::link::cobs::encode(&[0x11, 0x00, 0x22], &mut out);
/// assert_eq!(out, [0x02, 0x11, 0x02, 0x22]);
/// ```
pub fn encode(input: &[u8], out: &mut Vec<u8>) {
    out.reserve(max_encoded_len(input.len()));
    let mut code_pos = out.len();
    out.push(0);
    let mut code: u8 = 1;
    for &byte in input {
        if byte == 0 {
            out[code_pos] = code;
            code_pos = out.len();
            out.push(0);
            code = 1;
        } else {
            out.push(byte);
            code += 1;
            if code == 0xff {
                out[code_pos] = code;
                code_pos = out.len();
                out.push(0);
                code = 1;
            }
        }
    }
    out[code_pos] = code;
}

/// Decodes one COBS block (without delimiter) into `out`. Returns `false` if the block
/// is not valid COBS (a zero byte inside, or a code running past the end).
///
/// ```
/// let mut out = Vec::new();
/// assert!(netcore_core::link::cobs::decode(&[0x02, 0x11, 0x02, 0x22], &mut out));
/// assert_eq!(out, [0x11, 0x00, 0x22]);
/// ```
pub fn decode(input: &[u8], out: &mut Vec<u8>) -> bool {
    let mut i = 0;
    while i < input.len() {
        let code = input[i] as usize;
        if code == 0 || i + code > input.len() {
            return false;
        }
        let block = &input[i + 1..i + code];
        if block.contains(&0) {
            return false;
        }
        out.extend_from_slice(block);
        i += code;
        if code != 0xff && i < input.len() {
            out.push(0);
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(input: &[u8]) {
        let mut enc = Vec::new();
        encode(input, &mut enc);
        assert!(!enc.contains(&0));
        assert!(enc.len() <= max_encoded_len(input.len()));
        let mut dec = Vec::new();
        assert!(decode(&enc, &mut dec));
        assert_eq!(dec, input);
    }

    #[test]
    fn known_and_edge_cases() {
        round_trip(&[]);
        round_trip(&[0]);
        round_trip(&[0, 0]);
        round_trip(&[1; 253]);
        round_trip(&[1; 254]);
        round_trip(&[1; 255]);
        round_trip(&[1; 600]);
        let mixed: Vec<u8> = (0..1000u32).map(|i| (i % 7) as u8).collect();
        round_trip(&mixed);
        let mut enc = Vec::new();
        encode(&[0x00], &mut enc);
        assert_eq!(enc, [0x01, 0x01]);
    }

    #[test]
    fn rejects_invalid() {
        let mut out = Vec::new();
        assert!(!decode(&[0x05, 0x01], &mut out));
        assert!(!decode(&[0x03, 0x00, 0x01], &mut out));
    }
}
