#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    netcore_fuzz::run(netcore_core::LinkProfile::Serial, data);
});
