//! Fuzzing `lore_ingest::parse_bytes`, one target per parser family.
//!
//! `parse_bytes` contains panics (`catch_unwind`), so a panic is not a crash for Lore's users.
//! Panics raised in lore-ingest's own code are still bugs: they abort the run like any crash.
//! Panics raised in a dependency (pdf-extract, calamine, …) are contained and cannot be fixed
//! here; each distinct place is printed once so that the run can report them.

use std::collections::HashSet;
use std::io::{Cursor, Write};
use std::panic;
use std::sync::{Mutex, Once};

use zip::write::SimpleFileOptions;

static HOOK: Once = Once::new();
static CONTAINED: Mutex<Option<HashSet<String>>> = Mutex::new(None);

pub fn parse(name_hint: &str, bytes: &[u8]) {
    HOOK.call_once(|| {
        let default_hook = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let location = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
            if location.contains("lore-ingest/src") {
                default_hook(info);
                std::process::abort();
            }
            let mut seen = CONTAINED.lock().unwrap_or_else(|e| e.into_inner());
            if seen.get_or_insert_with(HashSet::new).insert(location.clone()) {
                eprintln!("contained dependency panic at {location}: {}", payload(info));
            }
        }));
    });
    // Errors are the expected answer to most fuzz inputs.
    let _ = lore_ingest::parse_bytes(name_hint, bytes);
}

/// Mutating a whole zip archive mostly breaks its checksums, so that few inputs would reach the
/// XML readers: an input that is not a zip archive is stored as each of `fuzzed_parts` of a
/// package that also holds the `fixed_parts`.
pub fn parse_package(name_hint: &str, fixed_parts: &[(&str, &str)], fuzzed_parts: &[&str], bytes: &[u8]) {
    if bytes.starts_with(b"PK") {
        return parse(name_hint, bytes);
    }
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let parts = fixed_parts.iter().map(|(name, text)| (*name, text.as_bytes())).chain(fuzzed_parts.iter().map(|name| (*name, bytes)));
    for (name, content) in parts {
        writer.start_file(name, stored).expect("zip entries in memory");
        writer.write_all(content).expect("zip entries in memory");
    }
    parse(name_hint, &writer.finish().expect("zip archive in memory").into_inner());
}

fn payload(info: &panic::PanicHookInfo<'_>) -> String {
    let payload = info.payload();
    payload.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| payload.downcast_ref::<String>().cloned()).unwrap_or_default()
}
