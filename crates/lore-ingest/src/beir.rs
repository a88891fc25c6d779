use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use lore_core::{Document, Error, Result, Section};

use crate::parse::io_error;

/// Reads a BEIR `corpus.jsonl` (`{"_id", "title", "text"}` per line) as one document per record,
/// with the record id as `source` and the title as the first line of the text. A missing file is
/// [`Error::NotFound`], a line that is not a record [`Error::Parse`].
pub fn read_beir_corpus(path: &Path) -> Result<Vec<Document>> {
    let fail = |reason: String| Error::Parse { path: path.display().to_string(), reason };
    let reader = BufReader::new(File::open(path).map_err(|e| io_error(path, e))?);
    let mut docs = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        // `lines` reports text that is not UTF-8 as an I/O error of kind `InvalidData`.
        let line = line.map_err(|e| match e.kind() {
            io::ErrorKind::InvalidData => fail(format!("line {}: {e}", n + 1)),
            _ => Error::io(path)(e),
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let record: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| fail(format!("line {}: {e}", n + 1)))?;
        let field = |name: &str| record.get(name).and_then(|v| v.as_str()).unwrap_or_default().to_string();
        let id = field("_id");
        if id.is_empty() {
            return Err(fail(format!("line {}: record without \"_id\"", n + 1)));
        }
        let title = field("title");
        let text = [title.as_str(), field("text").as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .cloned()
            .collect::<Vec<_>>()
            .join("\n");
        let mut doc = Document::new(id.clone(), vec![Section::new(Vec::new(), text)]);
        doc.metadata.insert("source".into(), id.into());
        if !title.is_empty() {
            doc.title = Some(title);
        }
        docs.push(doc);
    }
    Ok(docs)
}
