#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| lore_ingest_fuzz::parse("fuzz.csv", bytes));
