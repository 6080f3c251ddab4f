//! A `ut_pex` message (BEP 11) from a peer; see `shoal_fuzz::pex_message`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shoal_fuzz::pex_message(data));
