//! The tables of a collection, versioned: each schema records the migrations applied to it,
//! and opening a collection written by an older Lore applies the ones it lacks.

use lore_core::Manifest;

/// Each migration's SQL for the schema `s` (quoted) of a collection with `manifest`; a
/// collection is at version N when the first N have run. Append, never edit.
const MIGRATIONS: &[fn(&str, &Manifest) -> String] = &[first_tables, graph_tables];

/// The version a collection is at once every migration has run.
pub(crate) const LATEST: i32 = MIGRATIONS.len() as i32;

/// The SQL that brings a collection from `version` to [`LATEST`] (empty when there).
pub(crate) fn migrations_after(version: i32, s: &str, manifest: &Manifest) -> String {
    MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(version).unwrap_or(0))
        .map(|(done, migration)| {
            format!("{} INSERT INTO {s}.migrations (version) VALUES ({});", migration(s, manifest), done + 1)
        })
        .collect()
}

/// The migrations table itself, made with the schema.
pub(crate) fn migrations_table(s: &str) -> String {
    format!("CREATE TABLE {s}.migrations (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());")
}

/// Documents, chunks with their vector and BM25 length, the BM25 postings (term, chunk, tf),
/// running totals for BM25 (so a query does not count every chunk), and the HNSW graph.
fn first_tables(s: &str, manifest: &Manifest) -> String {
    let (dimension, ann) = (manifest.dimension, &manifest.search.ann);
    format!(
        "CREATE TABLE {s}.manifest (id int PRIMARY KEY DEFAULT 1 CHECK (id = 1), manifest jsonb NOT NULL,
             generation bigint NOT NULL DEFAULT 0, chunks bigint NOT NULL DEFAULT 0,
             total_length bigint NOT NULL DEFAULT 0);
         CREATE TABLE {s}.documents (id bigserial PRIMARY KEY, source text NOT NULL UNIQUE, title text,
             content_hash text NOT NULL, metadata jsonb NOT NULL, ingested_at text NOT NULL);
         CREATE TABLE {s}.chunks (id bigserial PRIMARY KEY,
             document_id bigint NOT NULL REFERENCES {s}.documents(id) ON DELETE CASCADE,
             ordinal int NOT NULL, text text NOT NULL, metadata jsonb NOT NULL, length int NOT NULL,
             embedding vector({dimension}) NOT NULL);
         CREATE INDEX ON {s}.chunks (document_id, ordinal);
         CREATE TABLE {s}.terms (term text NOT NULL,
             chunk_id bigint NOT NULL REFERENCES {s}.chunks(id) ON DELETE CASCADE, tf int NOT NULL,
             PRIMARY KEY (term, chunk_id));
         CREATE INDEX ON {s}.terms (chunk_id);
         CREATE INDEX chunks_hnsw ON {s}.chunks USING hnsw (embedding vector_cosine_ops)
             WITH (m = {}, ef_construction = {});",
        ann.m, ann.ef_construction
    )
}

/// The entity graph: entities by key, and their links to chunks, gone with the chunk.
fn graph_tables(s: &str, _: &Manifest) -> String {
    format!(
        "CREATE TABLE {s}.entities (id bigserial PRIMARY KEY, name text NOT NULL UNIQUE);
         CREATE TABLE {s}.links (entity_id bigint NOT NULL REFERENCES {s}.entities(id),
             chunk_id bigint NOT NULL REFERENCES {s}.chunks(id) ON DELETE CASCADE, about boolean NOT NULL,
             PRIMARY KEY (entity_id, chunk_id));
         CREATE INDEX ON {s}.links (chunk_id);"
    )
}
