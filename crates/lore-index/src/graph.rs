//! The collection's entity graph in SQLite: entities, and their links to chunks, kept in step
//! with the chunks by the same transactions that write them.

use lore_core::{Entity, GraphExtractor, Link, LinkQuery, Metadata};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::store::json_column;

/// Links the chunks `(id, text, metadata)` of one document titled `title` to the entities they
/// name ([`lore_graph::document_entities`]).
pub(crate) fn link_document(
    tx: &Transaction,
    extractor: GraphExtractor,
    title: Option<&str>,
    chunks: &[(i64, &str, &Metadata)],
) -> rusqlite::Result<()> {
    let mut entity = tx.prepare_cached(
        "INSERT INTO entities (name) VALUES (?1) ON CONFLICT (name) DO UPDATE SET name = name RETURNING id",
    )?;
    let mut link = tx.prepare_cached("INSERT OR IGNORE INTO links (entity_id, chunk_id, about) VALUES (?1, ?2, ?3)")?;
    let named =
        lore_graph::document_entities(extractor, title, chunks.iter().map(|&(_, text, metadata)| (text, metadata)));
    for ((chunk_id, _, _), names) in chunks.iter().zip(named) {
        for named in names {
            let entity_id: i64 = entity.query_row([&named.key], |row| row.get(0))?;
            link.execute(params![entity_id, chunk_id, named.about])?;
        }
    }
    Ok(())
}

/// Links every stored chunk, for a graph just turned on.
pub(crate) fn link_all(tx: &Transaction, extractor: GraphExtractor) -> rusqlite::Result<()> {
    let rows: Vec<(i64, i64, Option<String>, String, Metadata)> = tx
        .prepare(
            "SELECT c.document_id, c.id, d.title, c.text, c.metadata FROM chunks c
             JOIN documents d ON d.id = c.document_id ORDER BY c.document_id, c.ordinal",
        )?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, json_column(row, 4)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for document in rows.chunk_by(|a, b| a.0 == b.0) {
        let chunks: Vec<(i64, &str, &Metadata)> =
            document.iter().map(|(_, id, _, text, meta)| (*id, text.as_str(), meta)).collect();
        link_document(tx, extractor, document[0].2.as_deref(), &chunks)?;
    }
    Ok(())
}

/// Removes the links of a document's chunks, and the entities no other chunk links to.
pub(crate) fn unlink_document(tx: &Transaction, document_id: i64) -> rusqlite::Result<()> {
    let entities: Vec<i64> = tx
        .prepare_cached(
            "SELECT DISTINCT l.entity_id FROM chunks c JOIN links l ON l.chunk_id = c.id WHERE c.document_id = ?1",
        )?
        .query_map([document_id], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if entities.is_empty() {
        return Ok(());
    }
    tx.execute("DELETE FROM links WHERE chunk_id IN (SELECT id FROM chunks WHERE document_id = ?1)", [document_id])?;
    let mut orphan = tx.prepare_cached(
        "DELETE FROM entities WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM links WHERE entity_id = ?1)",
    )?;
    for id in entities {
        orphan.execute([id])?;
    }
    Ok(())
}

/// Brings the graph in line with `now` after the settings were `before`.
pub(crate) fn reconfigure(tx: &Transaction, before: GraphExtractor, now: GraphExtractor) -> rusqlite::Result<()> {
    if before == now {
        return Ok(());
    }
    tx.execute_batch("DELETE FROM links; DELETE FROM entities;")?;
    match now {
        GraphExtractor::Off => Ok(()),
        GraphExtractor::Names | GraphExtractor::Llm => link_all(tx, now),
    }
}

pub(crate) fn entities(conn: &Connection, keys: &[String]) -> rusqlite::Result<Vec<Entity>> {
    let mut query = conn.prepare_cached(
        "SELECT id, name, (SELECT count(*) FROM links WHERE entity_id = entities.id) FROM entities WHERE name = ?1",
    )?;
    let mut found = Vec::new();
    for key in keys {
        if let Some(entity) = query
            .query_row([key], |row| Ok(Entity { id: row.get(0)?, name: row.get(1)?, chunks: row.get(2)? }))
            .optional()?
        {
            found.push(entity);
        }
    }
    Ok(found)
}

pub(crate) fn links(conn: &Connection, query: LinkQuery) -> rusqlite::Result<Vec<Link>> {
    let (ids, by) = match query {
        LinkQuery::Entities(ids) => (ids, "l.entity_id"),
        LinkQuery::Chunks(ids) => (ids, "l.chunk_id"),
    };
    let mut select = conn.prepare_cached(&format!(
        "SELECT l.chunk_id, l.about, e.id, e.name, (SELECT count(*) FROM links WHERE entity_id = e.id)
         FROM links l JOIN entities e ON e.id = l.entity_id WHERE {by} = ?1 ORDER BY l.entity_id, l.chunk_id"
    ))?;
    let mut found = Vec::new();
    for id in ids {
        let rows = select.query_map([id], |row| {
            Ok(Link {
                chunk_id: row.get(0)?,
                about: row.get(1)?,
                entity: Entity { id: row.get(2)?, name: row.get(3)?, chunks: row.get(4)? },
            })
        })?;
        for link in rows {
            found.push(link?);
        }
    }
    Ok(found)
}
