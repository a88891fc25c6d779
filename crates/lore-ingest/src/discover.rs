use std::fs;
use std::path::{Path, PathBuf};

use crate::Format;

/// The files found under the paths given to an ingest.
#[derive(Debug, Default)]
pub struct Discovered {
    /// Files in a format Lore reads, sorted.
    pub files: Vec<PathBuf>,
    /// Files found in folders whose format Lore does not read.
    pub skipped: Vec<PathBuf>,
    /// Paths that could not be read, with the reason.
    pub errors: Vec<(PathBuf, String)>,
}

/// Walks `paths` (files or folders, recursively; hidden entries and Office lock files `~$…`
/// skipped). A file named
/// explicitly is always returned in `files`, so that an unsupported one is reported by `parse`.
pub fn discover(paths: &[PathBuf]) -> Discovered {
    let mut found = Discovered::default();
    for path in paths {
        match fs::metadata(path) {
            Ok(meta) if meta.is_dir() => walk(path, &mut found),
            Ok(_) => found.files.push(path.clone()),
            Err(e) => found.errors.push((path.clone(), e.to_string())),
        }
    }
    found.files.sort();
    found.files.dedup();
    found
}

fn walk(dir: &Path, found: &mut Discovered) {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => return found.errors.push((dir.to_path_buf(), e.to_string())),
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                found.errors.push((dir.to_path_buf(), e.to_string()));
                continue;
            }
        };
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name.starts_with("~$") {
            continue;
        }
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk(&path, found),
            Ok(_) if Format::of(&path).is_some() => found.files.push(path),
            Ok(_) => found.skipped.push(path),
            Err(e) => found.errors.push((path, e.to_string())),
        }
    }
}
