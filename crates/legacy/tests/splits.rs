//! Random split points: whatever the read boundaries, the same packets and
//! the same events come out.

mod common;

use common::*;
use netcore_legacy::{Config, LegacyConnection};
use proptest::prelude::*;

/// Every captured client and server stream, by name.
fn corpus() -> Vec<(&'static str, Vec<u8>)> {
    VECTORS.iter().map(|n| (*n, vector(n))).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn decoder_is_split_invariant(cuts in prop::collection::vec(any::<usize>(), 0..40)) {
        for (name, bytes) in corpus() {
            let whole: Vec<_> = decode_all(&bytes).into_iter().map(Ok).collect();
            let split = decode_split(&bytes, &cuts);
            prop_assert_eq!(&split, &whole, "{}", name);
        }
    }

    #[test]
    fn connection_events_are_split_invariant(cuts in prop::collection::vec(any::<usize>(), 0..40)) {
        for (name, bytes) in corpus() {
            let mut a = LegacyConnection::new(Config::default());
            let mut b = LegacyConnection::new(Config::default());
            let whole = events_of(&mut a, &[&bytes]);
            let split = events_of(&mut b, &pieces(&bytes, &cuts));
            prop_assert_eq!(&split, &whole, "{}", name);
        }
    }

    #[test]
    fn byte_at_a_time_equals_whole(idx in 0usize..13) {
        let name = VECTORS[idx % VECTORS.len()];
        let bytes = vector(name);
        let cuts: Vec<usize> = (0..bytes.len()).collect();
        let whole: Vec<_> = decode_all(&bytes).into_iter().map(Ok).collect();
        prop_assert_eq!(decode_split(&bytes, &cuts), whole);
    }
}
