#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| {
    lore_ingest_fuzz::parse_package("fuzz.docx", &[], &["word/document.xml", "word/styles.xml", "word/footnotes.xml"], bytes)
});
