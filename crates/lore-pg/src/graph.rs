//! The collection's entity graph in PostgreSQL: entities, and their links to chunks (which go
//! with their chunk by `ON DELETE CASCADE`), written by the same transactions as the chunks.

use lore_core::{Entity, GraphExtractor, Link, LinkQuery, Metadata};
use postgres::{GenericClient, Row, Transaction};

type PgResult<T> = std::result::Result<T, postgres::Error>;

/// The graph setting as stored, not as this handle read it: another process may have turned
/// the graph on since.
pub(crate) fn extractor(tx: &mut Transaction<'_>, s: &str) -> PgResult<GraphExtractor> {
    let stored: Option<String> =
        tx.query_one(&format!("SELECT manifest #>> '{{search,graph,extractor}}' FROM {s}.manifest"), &[])?.get(0);
    Ok(match stored.as_deref() {
        Some("names") => GraphExtractor::Names,
        Some("llm") => GraphExtractor::Llm,
        _ => GraphExtractor::Off,
    })
}

/// Links the chunks `(id, text, metadata)` of one document titled `title` to the entities they
/// name ([`lore_graph::document_entities`]).
pub(crate) fn link_document(
    tx: &mut Transaction<'_>,
    s: &str,
    extractor: GraphExtractor,
    title: Option<&str>,
    chunks: &[(i64, &str, &Metadata)],
) -> PgResult<()> {
    let (mut names, mut chunk_ids, mut about) = (Vec::new(), Vec::new(), Vec::new());
    let named =
        lore_graph::document_entities(extractor, title, chunks.iter().map(|&(_, text, metadata)| (text, metadata)));
    for ((id, _, _), found) in chunks.iter().zip(named) {
        for named in found {
            names.push(named.key);
            chunk_ids.push(*id);
            about.push(named.about);
        }
    }
    tx.execute(
        &format!("INSERT INTO {s}.entities (name) SELECT DISTINCT unnest($1::text[]) ON CONFLICT (name) DO NOTHING"),
        &[&names],
    )?;
    tx.execute(
        &format!(
            "INSERT INTO {s}.links (entity_id, chunk_id, about)
             SELECT e.id, x.c, x.a FROM unnest($1::text[], $2::bigint[], $3::bool[]) AS x(n, c, a)
             JOIN {s}.entities e ON e.name = x.n ON CONFLICT DO NOTHING"
        ),
        &[&names, &chunk_ids, &about],
    )?;
    Ok(())
}

/// The entities linked to a document's chunks, before it is deleted.
pub(crate) fn entities_of_document(tx: &mut Transaction<'_>, s: &str, document_id: i64) -> PgResult<Vec<i64>> {
    let rows = tx.query(
        &format!(
            "SELECT DISTINCT l.entity_id FROM {s}.chunks c JOIN {s}.links l ON l.chunk_id = c.id
             WHERE c.document_id = $1"
        ),
        &[&document_id],
    )?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// Deletes those of `entities` that no chunk links to any more.
pub(crate) fn drop_orphans(tx: &mut Transaction<'_>, s: &str, entities: &[i64]) -> PgResult<()> {
    if !entities.is_empty() {
        tx.execute(
            &format!(
                "DELETE FROM {s}.entities e WHERE e.id = ANY($1)
                 AND NOT EXISTS (SELECT 1 FROM {s}.links l WHERE l.entity_id = e.id)"
            ),
            &[&entities],
        )?;
    }
    Ok(())
}

/// Brings the graph in line with `now` after the settings were `before`.
pub(crate) fn reconfigure(
    tx: &mut Transaction<'_>,
    s: &str,
    before: GraphExtractor,
    now: GraphExtractor,
) -> PgResult<()> {
    if before == now {
        return Ok(());
    }
    tx.batch_execute(&format!("DELETE FROM {s}.links; DELETE FROM {s}.entities;"))?;
    if now == GraphExtractor::Off {
        return Ok(());
    }
    let rows = tx.query(
        &format!(
            "SELECT c.document_id, c.id, d.title, c.text, c.metadata FROM {s}.chunks c
             JOIN {s}.documents d ON d.id = c.document_id ORDER BY c.document_id, c.ordinal"
        ),
        &[],
    )?;
    let chunks: Vec<(i64, i64, Option<String>, String, Metadata)> =
        rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), crate::metadata(r.get(4)))).collect();
    for document in chunks.chunk_by(|a, b| a.0 == b.0) {
        let linked: Vec<(i64, &str, &Metadata)> =
            document.iter().map(|(_, id, _, text, metadata)| (*id, text.as_str(), metadata)).collect();
        link_document(tx, s, now, document[0].2.as_deref(), &linked)?;
    }
    Ok(())
}

pub(crate) fn entities(client: &mut impl GenericClient, s: &str, keys: &[String]) -> PgResult<Vec<Entity>> {
    let rows = client.query(
        &format!(
            "SELECT e.id, e.name, (SELECT count(*) FROM {s}.links l WHERE l.entity_id = e.id)
             FROM {s}.entities e WHERE e.name = ANY($1) ORDER BY e.name"
        ),
        &[&keys],
    )?;
    Ok(rows.iter().map(|row| entity(row, 0)).collect())
}

pub(crate) fn links(client: &mut impl GenericClient, s: &str, query: LinkQuery) -> PgResult<Vec<Link>> {
    let (ids, by) = match query {
        LinkQuery::Entities(ids) => (ids, "l.entity_id"),
        LinkQuery::Chunks(ids) => (ids, "l.chunk_id"),
    };
    let rows = client.query(
        &format!(
            "SELECT e.id, e.name, (SELECT count(*) FROM {s}.links n WHERE n.entity_id = e.id), l.chunk_id, l.about
             FROM {s}.links l JOIN {s}.entities e ON e.id = l.entity_id WHERE {by} = ANY($1)
             ORDER BY l.entity_id, l.chunk_id"
        ),
        &[&ids],
    )?;
    Ok(rows.iter().map(|row| Link { entity: entity(row, 0), chunk_id: row.get(3), about: row.get(4) }).collect())
}

/// An entity from the columns (id, name, number of links) starting at `at`.
fn entity(row: &Row, at: usize) -> Entity {
    Entity { id: row.get(at), name: row.get(at + 1), chunks: row.get::<_, i64>(at + 2) as usize }
}
