//! A `ut_metadata` message (BEP 9) from a peer; see `shoal_fuzz::metadata_message`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| shoal_fuzz::metadata_message(data));
