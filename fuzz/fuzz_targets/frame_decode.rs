#![no_main]
//! Frame::load / Header::parse on arbitrary bytes: no panic, and a decoded frame
//! re-encodes to a payload that decodes to the same frame.
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use netcore_core::frame::{Frame, Header};
use netcore_core::FrameKind;

fuzz_target!(|data: &[u8]| {
    let max = 4096;
    if let Ok(Some(h)) = Header::parse(data, max) {
        assert!(h.payload_len <= max);
        let end = h.header_len.saturating_add(h.payload_len);
        if let Some(payload) = data.get(h.header_len..end) {
            if let Ok(frame) = Frame::load(h.kind, Bytes::copy_from_slice(payload)) {
                if matches!(frame, Frame::Unknown { .. }) {
                    return;
                }
                let mut out = Vec::new();
                frame.encode(&mut out);
                assert_eq!(out.len(), frame.encoded_len());
                let h2 = Header::parse(&out, usize::MAX).unwrap().unwrap();
                let again = Frame::load(h2.kind, Bytes::copy_from_slice(&out[h2.header_len..]))
                    .expect("re-encoded frame must decode");
                assert_eq!(again, frame);
            }
        }
    }
    // Any kind byte with the whole input as payload.
    if let Some((&k, rest)) = data.split_first() {
        let _ = Frame::load(FrameKind(k), Bytes::copy_from_slice(rest));
    }
});
