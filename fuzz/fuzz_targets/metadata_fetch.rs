//! A metadata fetch (BEP 9) driven by hostile peers; see `shoal_fuzz::metadata_fetch`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shoal_fuzz::metadata_fetch(data);
});
