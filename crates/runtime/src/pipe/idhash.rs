//! Hash maps keyed by message ids.
//!
//! Ids are small integers handed out in sequence, and a driver touches several of
//! these maps per message: std's SipHash costs more than the rest of the lookup. A
//! multiplication by an odd constant spreads them well (the low bits, which pick the
//! bucket, are a bijection of the id's low bits; the top bits, hashbrown's tag, mix
//! the whole id). Peer-chosen ids cannot blow these maps up: the tables holding
//! incoming ids stay bounded by `max_incoming` and the live bodies.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` from message id to `V` with [`IdHasher`].
pub(crate) type IdHashMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// Multiplicative hasher for `u64` keys.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

const K: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(K);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_ids_get_distinct_buckets() {
        let mut seen = std::collections::HashSet::new();
        for id in 0..1024u64 {
            let mut h = IdHasher::default();
            h.write_u64(id);
            assert!(seen.insert(h.finish() & 1023));
        }
        let mut m: IdHashMap<u64> = IdHashMap::default();
        m.insert(7, 1);
        assert_eq!(m.remove(&7), Some(1));
    }
}
