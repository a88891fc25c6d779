//! Filters evaluated against the store, to the set of chunks that both searches may return.

use std::collections::HashMap;
use std::path::Path;

use lore_core::{Filter, GROUPS_FIELD, Metadata, Result};
use rusqlite::Connection;
use serde_json::Value;

use crate::store::{AtCollection, json_column};

/// A set of chunk ids, one bit per id up to the largest (ids are dense: AUTOINCREMENT).
#[derive(Default)]
pub(crate) struct ChunkSet {
    bits: Vec<u64>,
}

impl ChunkSet {
    fn insert(&mut self, id: i64) {
        let id = id as usize;
        if self.bits.len() <= id / 64 {
            self.bits.resize(id / 64 + 1, 0);
        }
        self.bits[id / 64] |= 1 << (id % 64);
    }

    pub fn contains(&self, id: i64) -> bool {
        let id = id as usize;
        self.bits.get(id / 64).is_some_and(|word| word & (1 << (id % 64)) != 0)
    }
}

/// The chunks of the store (as `conn` sees it) whose hit metadata passes `filter`.
///
/// Fields other than `source`, `title`, `ordinal` and the document's groups are read from each chunk's metadata JSON
/// (a full pass over the chunk rows); a filter on those three alone reads only the documents
/// table and an index of the chunks, which is much faster.
pub(crate) fn matching_chunks(conn: &Connection, dir: &Path, filter: &Filter) -> Result<ChunkSet> {
    let fields = filter.fields();
    let reads_chunk_metadata = fields.iter().any(|f| !matches!(*f, "source" | "title" | "ordinal" | GROUPS_FIELD));
    // Per document: its part of the hit metadata, and whether it has a title.
    let mut documents: HashMap<i64, (Metadata, bool)> = HashMap::new();
    {
        let mut query = conn.prepare("SELECT id, source, title, metadata FROM documents").at(dir)?;
        let mut rows = query.query([]).at(dir)?;
        while let Some(row) = rows.next().at(dir)? {
            let mut metadata: Metadata = json_column(row, 3).at(dir)?;
            metadata.retain(|key, _| fields.contains(&key.as_str()));
            metadata.insert("source".into(), Value::String(row.get(1).at(dir)?));
            let title: Option<String> = row.get(2).at(dir)?;
            let has_title = title.is_some();
            if let Some(title) = title {
                metadata.insert("title".into(), Value::String(title));
            }
            documents.insert(row.get(0).at(dir)?, (metadata, has_title));
        }
    }
    let sql = if reads_chunk_metadata {
        "SELECT id, document_id, ordinal, metadata FROM chunks"
    } else {
        "SELECT id, document_id, ordinal FROM chunks"
    };
    let mut query = conn.prepare(sql).at(dir)?;
    let mut rows = query.query([]).at(dir)?;
    let mut allowed = ChunkSet::default();
    let mut metadata = Metadata::new();
    while let Some(row) = rows.next().at(dir)? {
        let Some((document, has_title)) = documents.get(&row.get::<_, i64>(1).at(dir)?) else { continue };
        metadata.clone_from(document);
        if reads_chunk_metadata {
            let chunk: Metadata = json_column(row, 3).at(dir)?;
            for (key, value) in chunk {
                // As in a hit, the document's source, groups and title win over the chunk's keys.
                let overridden = key == "source" || key == GROUPS_FIELD || (key == "title" && *has_title);
                if fields.contains(&key.as_str()) && !overridden {
                    metadata.insert(key, value);
                }
            }
        }
        if fields.contains(&"ordinal") {
            metadata.insert("ordinal".into(), row.get::<_, i64>(2).at(dir)?.into());
        }
        if filter.matches(&metadata) {
            allowed.insert(row.get(0).at(dir)?);
        }
    }
    Ok(allowed)
}
