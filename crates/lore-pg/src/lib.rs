//! Lore collections on PostgreSQL with pgvector: the [`Store`] trait over a database that many
//! Lore processes share. Each collection is a schema (`lore/NAME`) with its documents, chunks
//! (with a `vector(dim)` column and an HNSW index) and BM25 postings; BM25 is scored in SQL from
//! the terms Lore's own analyzers cut (jieba for Chinese, stemming for English), with the same
//! formula and lengths as the embedded index, so both backends rank alike. Writes go to the
//! primary; searches go to a read replica when one is given.
//!
//! ```no_run
//! use lore_core::{Chunk, ChunkConfig, Document, Metadata, Section, Store};
//! use lore_pg::PgCollection;
//!
//! let url = "postgres://lore@127.0.0.1:5432/lore"; // the password, if any: PGPASSWORD or ~/.pgpass
//! let notes = PgCollection::create(url, "notes", "toy", 2, ChunkConfig::Whole)?;
//! let doc = Document::new("tea.txt", vec![Section::new(vec![], "Green tea is steamed.")]);
//! let chunk = Chunk { text: "Green tea is steamed.".into(), ordinal: 0, metadata: Metadata::new() };
//! notes.upsert(&doc, &[chunk], &[vec![1.0, 0.0]])?;
//!
//! // Another process (a second `lore serve`) opens the same collection and sees the write.
//! let shared = PgCollection::open(url, None, "notes")?;
//! assert_eq!(shared.search_keyword("steamed tea", 1, None)?[0].source, "tea.txt");
//! assert_eq!(shared.search(&[0.9, 0.1], 1, None)?[0].source, "tea.txt");
//! PgCollection::delete(url, "notes")?;
//! # Ok::<(), lore_core::Error>(())
//! ```

#![warn(missing_docs)]

mod connection;
mod filter;
mod graph;
mod schema;

use std::collections::BTreeMap;
use std::sync::{PoisonError, RwLock};

use lore_core::{
    AnnMode, Chunk, ChunkConfig, Document, DocumentInfo, Entity, Error, Filter, GROUPS_FIELD, GraphExtractor, Hit,
    Link, LinkQuery, Manifest, Metadata, Result, SearchSettings, Stats, Store, StoredDocument, UpsertOutcome,
    VectorMemory,
};
use lore_index::{TermAnalyzer, bm25_length};
use pgvector::Vector;
use postgres::types::ToSql;
use postgres::{Client, GenericClient, Row, Transaction};
use serde_json::Value;

pub use crate::connection::redacted;
use crate::connection::{Pool, connect, failed};
use crate::filter::{Sql, compile};

/// A collection in PostgreSQL.
pub struct PgCollection {
    name: String,
    /// The schema as an SQL identifier.
    schema: String,
    /// The primary: every write, and reads that decide writes.
    primary: Pool,
    /// A read replica for searches, if one was given.
    replica: Option<Pool>,
    manifest: RwLock<Manifest>,
}

impl PgCollection {
    /// Creates collection `name` in the database at `url`, for vectors of `dimension` from
    /// `embedder`; AlreadyExists if it is there.
    pub fn create(url: &str, name: &str, embedder: &str, dimension: usize, chunking: ChunkConfig) -> Result<Self> {
        let schema = schema_of(name)?;
        let mut client = connect(url)?;
        let now = now(&mut client, url)?;
        let manifest = Manifest {
            format_version: schema::LATEST as u32,
            embedder: embedder.into(),
            dimension,
            chunking,
            created_at: now.clone(),
            updated_at: now,
            search: SearchSettings::default(),
        };
        let mut tx = client.transaction().map_err(|e| failed(url, e))?;
        // Collections are made one at a time, so two processes creating one race cleanly.
        tx.execute("SELECT pg_advisory_xact_lock(hashtext('lore collections'))", &[]).map_err(|e| failed(url, e))?;
        if schema_exists(&mut tx, name).map_err(|e| failed(url, e))? {
            return Err(Error::AlreadyExists(format!("collection '{name}' exists in {}", redacted(url))));
        }
        tx.batch_execute(&format!(
            "CREATE EXTENSION IF NOT EXISTS vector; CREATE SCHEMA {schema}; {} {}",
            schema::migrations_table(&schema),
            schema::migrations_after(0, &schema, &manifest)
        ))
        .map_err(|e| failed(url, e))?;
        tx.execute(&format!("INSERT INTO {schema}.manifest (manifest) VALUES ($1)"), &[&to_json(&manifest)])
            .map_err(|e| failed(url, e))?;
        tx.commit().map_err(|e| failed(url, e))?;
        Ok(PgCollection::new(name, schema, Pool::with(url, client), None, manifest))
    }

    /// Opens collection `name` in the database at `url`, searching it on `replica` when given;
    /// NotFound if it is not there. A collection written by an older Lore is migrated.
    pub fn open(url: &str, replica: Option<&str>, name: &str) -> Result<Self> {
        let schema = schema_of(name)?;
        let mut client = connect(url)?;
        let mut tx = client.transaction().map_err(|e| failed(url, e))?;
        if !schema_exists(&mut tx, name).map_err(|e| failed(url, e))? {
            return Err(Error::NotFound(format!("no collection '{name}' in {}", redacted(url))));
        }
        tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&schema]).map_err(|e| failed(url, e))?;
        let version: i32 = tx
            .query_one(&format!("SELECT coalesce(max(version), 0) FROM {schema}.migrations"), &[])
            .map_err(|e| failed(url, e))?
            .get(0);
        let mut manifest = read_manifest(&mut tx, url, name, &schema)?;
        if version > schema::LATEST {
            return Err(Error::Unsupported(format!(
                "collection '{name}' was written by a newer Lore (schema version {version}, this one knows {}): upgrade Lore",
                schema::LATEST
            )));
        }
        tx.batch_execute(&schema::migrations_after(version, &schema, &manifest)).map_err(|e| failed(url, e))?;
        tx.commit().map_err(|e| failed(url, e))?;
        manifest.format_version = schema::LATEST as u32;
        Ok(PgCollection::new(name, schema, Pool::with(url, client), replica.map(Pool::new), manifest))
    }

    /// The same collection, searched on `replica` when given.
    pub fn with_replica(mut self, replica: Option<&str>) -> Self {
        self.replica = replica.map(Pool::new);
        self
    }

    /// Deletes collection `name` with everything in it; NotFound if it is not there.
    pub fn delete(url: &str, name: &str) -> Result<()> {
        let schema = schema_of(name)?;
        let mut client = connect(url)?;
        if !schema_exists(&mut client, name).map_err(|e| failed(url, e))? {
            return Err(Error::NotFound(format!("no collection '{name}' in {}", redacted(url))));
        }
        client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).map_err(|e| failed(url, e))
    }

    /// The names of the collections in the database at `url`, sorted.
    pub fn names(url: &str) -> Result<Vec<String>> {
        let rows = connect(url)?
            .query("SELECT substr(nspname, 6) FROM pg_namespace WHERE starts_with(nspname, 'lore/') ORDER BY 1", &[])
            .map_err(|e| failed(url, e))?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    fn new(name: &str, schema: String, primary: Pool, replica: Option<Pool>, manifest: Manifest) -> Self {
        PgCollection { name: name.into(), schema, primary, replica, manifest: RwLock::new(manifest) }
    }

    /// The pool searches read from.
    fn readers(&self) -> &Pool {
        self.replica.as_ref().unwrap_or(&self.primary)
    }

    fn failed(&self, pool: &Pool, e: postgres::Error) -> Error {
        failed(pool.url(), e).in_collection(&self.name)
    }

    /// Runs `work` in a transaction on `pool`, read-only when `read_only`.
    fn in_transaction<T>(
        &self,
        pool: &Pool,
        read_only: bool,
        work: impl FnOnce(&mut Transaction<'_>) -> std::result::Result<T, postgres::Error>,
    ) -> Result<T> {
        let mut client = pool.get().map_err(|e| e.in_collection(&self.name))?;
        let run = |client: &mut Client| {
            let mut tx = client.build_transaction().read_only(read_only).start()?;
            let value = work(&mut tx)?;
            tx.commit()?;
            Ok(value)
        };
        run(&mut client).map_err(|e| self.failed(pool, e))
    }

    /// Runs `write` on the primary in a transaction that holds the collection's write lock
    /// (one writer per collection across every process), then moves the generation on.
    fn write<T>(
        &self,
        write: impl FnOnce(&mut Transaction<'_>, &str) -> std::result::Result<T, postgres::Error>,
    ) -> Result<T> {
        let s = self.schema.clone();
        self.in_transaction(&self.primary, false, |tx| {
            tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&s])?;
            let value = write(tx, &s)?;
            tx.execute(&format!("UPDATE {s}.manifest SET generation = generation + 1"), &[])?;
            Ok(value)
        })
    }
}

impl Store for PgCollection {
    fn manifest(&self) -> Manifest {
        self.manifest.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn document_hash(&self, source: &str) -> Result<Option<String>> {
        let s = &self.schema;
        self.in_transaction(&self.primary, true, |tx| {
            let row = tx.query_opt(&format!("SELECT content_hash FROM {s}.documents WHERE source = $1"), &[&source])?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn documents(&self) -> Result<Vec<DocumentInfo>> {
        let s = &self.schema;
        let rows = self.in_transaction(&self.primary, true, |tx| {
            tx.query(
                &format!(
                    "SELECT d.source, d.title, d.content_hash, count(c.id), d.ingested_at, d.metadata
                     FROM {s}.documents d LEFT JOIN {s}.chunks c ON c.document_id = d.id
                     GROUP BY d.id ORDER BY d.source"
                ),
                &[],
            )
        })?;
        Ok(rows
            .iter()
            .map(|row| DocumentInfo {
                source: row.get(0),
                title: row.get(1),
                content_hash: row.get(2),
                chunks: row.get::<_, i64>(3) as usize,
                ingested_at: row.get(4),
                metadata: metadata(row.get(5)),
            })
            .collect())
    }

    fn stats(&self) -> Result<Stats> {
        let s = &self.schema;
        let schema = schema_name(&self.name);
        let row = self.in_transaction(&self.primary, true, |tx| {
            tx.query_one(
                &format!(
                    "SELECT (SELECT count(*) FROM {s}.documents), m.chunks,
                        (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
                         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'),
                        (SELECT count(*) FROM {s}.entities), (SELECT count(*) FROM {s}.links)
                     FROM {s}.manifest m"
                ),
                &[&schema],
            )
        })?;
        Ok(Stats {
            documents: row.get::<_, i64>(0) as usize,
            chunks: row.get::<_, i64>(1) as usize,
            dimension: self.manifest().dimension,
            bytes_on_disk: row.get::<_, i64>(2) as u64,
            entities: row.get::<_, i64>(3) as usize,
            links: row.get::<_, i64>(4) as usize,
        })
    }

    fn chunk(&self, chunk_id: i64) -> Result<Option<Hit>> {
        let s = &self.schema;
        Ok(self.in_transaction(self.readers(), true, |tx| hits_in(tx, s, &[(chunk_id, 0.0)]))?.pop())
    }

    fn vectors(&self, chunk_ids: &[i64]) -> Result<Vec<Option<Vec<f32>>>> {
        let s = &self.schema;
        let rows = self.in_transaction(self.readers(), true, |tx| {
            tx.query(&format!("SELECT id, embedding FROM {s}.chunks WHERE id = ANY($1)"), &[&chunk_ids])
        })?;
        let mut by_id: BTreeMap<i64, Vec<f32>> =
            rows.iter().map(|row| (row.get(0), row.get::<_, Vector>(1).to_vec())).collect();
        Ok(chunk_ids.iter().map(|id| by_id.remove(id)).collect())
    }

    /// By the HNSW index unless `ann.mode` is off; with a filter, pgvector's iterative index
    /// scan walks on until `k` chunks pass it, and when it gives up first (its
    /// `hnsw.max_scan_tuples`) the search is made exact, so `k` hits come back whenever `k` match.
    fn search(&self, query: &[f32], k: usize, filter: Option<&Filter>) -> Result<Vec<Hit>> {
        let manifest = self.manifest();
        self.check_embedder(&manifest.embedder, query.len())?;
        if k == 0 {
            return Ok(Vec::new());
        }
        let ann = manifest.search.ann;
        let s = &self.schema;
        let mut sql = Sql::new(2);
        let condition = filter.map_or_else(|| "TRUE".to_string(), |f| compile(f, &mut sql));
        let query = Vector::from(unit(query));
        let limit = i64::try_from(k).unwrap_or(i64::MAX);
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&query, &limit];
        params.extend(sql.params());
        let statement = format!(
            "SELECT c.id, 1 - (c.embedding <=> $1) FROM {s}.chunks c JOIN {s}.documents d ON d.id = c.document_id
             WHERE {condition} ORDER BY c.embedding <=> $1 LIMIT $2"
        );
        let exact = ann.mode == AnnMode::Off;
        self.in_transaction(self.readers(), true, |tx| {
            tx.batch_execute(&format!(
                "SET LOCAL hnsw.ef_search = {}; SET LOCAL hnsw.iterative_scan = strict_order; \
                 SET LOCAL enable_indexscan = {};",
                ann.ef_search.clamp(k.min(1000), 1000),
                if exact { "off" } else { "on" }
            ))?;
            let mut rows = tx.query(&statement, &params)?;
            if rows.len() < k && filter.is_some() && !exact {
                tx.batch_execute("SET LOCAL enable_indexscan = off")?;
                rows = tx.query(&statement, &params)?;
            }
            let mut scored: Vec<(i64, f32)> = rows.iter().map(|r| (r.get(0), r.get::<_, f64>(1) as f32)).collect();
            scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            hits_in(tx, s, &scored)
        })
    }

    /// Scored in SQL: the collection's k1 and b, N and the average length from running totals,
    /// document frequencies from the postings, exactly as the embedded index scores.
    fn search_keyword(&self, query: &str, k: usize, filter: Option<&Filter>) -> Result<Vec<Hit>> {
        let settings = self.manifest().search.keyword;
        let mut weights: BTreeMap<String, f64> = BTreeMap::new();
        for term in TermAnalyzer::new(&settings)?.terms(query) {
            *weights.entry(term).or_default() += 1.0;
        }
        if k == 0 || weights.is_empty() {
            return Ok(Vec::new());
        }
        let (terms, repeats): (Vec<String>, Vec<f64>) = weights.into_iter().unzip();
        let (k1, b) = (f64::from(settings.k1), f64::from(settings.b));
        let limit = i64::try_from(k).unwrap_or(i64::MAX);
        let s = &self.schema;
        let mut sql = Sql::new(5);
        let condition = filter.map_or_else(|| "TRUE".to_string(), |f| compile(f, &mut sql));
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&terms, &repeats, &k1, &b, &limit];
        params.extend(sql.params());
        let statement = format!(
            "WITH q(term, repeats) AS (SELECT * FROM unnest($1::text[], $2::float8[])),
             totals AS (SELECT chunks::float8 AS n,
                 CASE WHEN chunks > 0 THEN total_length::float8 / chunks ELSE 1 END AS avgdl FROM {s}.manifest),
             df AS (SELECT t.term, count(*)::float8 AS n FROM {s}.terms t JOIN q USING (term) GROUP BY t.term),
             k AS (SELECT $3::float8 AS k1, $4::float8 AS b)
             SELECT t.chunk_id, sum(q.repeats * ln(1 + (totals.n - df.n + 0.5) / (df.n + 0.5)) * (k.k1 + 1)
                 * t.tf / (t.tf + k.k1 * (1 - k.b + k.b * c.length / greatest(totals.avgdl, 1e-30))))::float8 AS score
             FROM {s}.terms t JOIN q USING (term) JOIN df USING (term)
             JOIN {s}.chunks c ON c.id = t.chunk_id JOIN {s}.documents d ON d.id = c.document_id, totals, k
             WHERE {condition}
             GROUP BY t.chunk_id ORDER BY score DESC, t.chunk_id LIMIT $5::bigint"
        );
        self.in_transaction(self.readers(), true, |tx| {
            let rows = tx.query(&statement, &params)?;
            let scored: Vec<(i64, f32)> = rows.iter().map(|r| (r.get(0), r.get::<_, f64>(1) as f32)).collect();
            hits_in(tx, s, &scored)
        })
    }

    fn stored_document(&self, source: &str) -> Result<Option<StoredDocument>> {
        let s = &self.schema;
        self.in_transaction(&self.primary, true, |tx| {
            let Some(row) = tx.query_opt(
                &format!("SELECT id, title, content_hash, metadata FROM {s}.documents WHERE source = $1"),
                &[&source],
            )?
            else {
                return Ok(None);
            };
            let mut document = Document::new(source, Vec::new());
            document.title = row.get(1);
            document.content_hash = row.get(2);
            document.metadata = metadata(row.get(3));
            let rows = tx.query(
                &format!(
                    "SELECT ordinal, text, metadata, embedding FROM {s}.chunks WHERE document_id = $1 ORDER BY ordinal"
                ),
                &[&row.get::<_, i64>(0)],
            )?;
            let (chunks, vectors) = rows
                .iter()
                .map(|row| {
                    let chunk = Chunk {
                        ordinal: row.get::<_, i32>(0) as usize,
                        text: row.get(1),
                        metadata: metadata(row.get(2)),
                    };
                    (chunk, row.get::<_, Vector>(3).to_vec())
                })
                .unzip();
            Ok(Some(StoredDocument { document, chunks, vectors }))
        })
    }

    fn upsert(&self, doc: &Document, chunks: &[Chunk], vectors: &[Vec<f32>]) -> Result<UpsertOutcome> {
        let manifest = self.manifest();
        if chunks.len() != vectors.len() {
            return Err(Error::InvalidInput(format!("{} chunks but {} vectors", chunks.len(), vectors.len())));
        }
        if let Some(v) = vectors.iter().find(|v| v.len() != manifest.dimension) {
            return Err(Error::InvalidInput(format!(
                "a vector of {} dimensions for a collection of {}",
                v.len(),
                manifest.dimension
            )));
        }
        // Cut before the transaction, so the write lock is held only for the writing.
        let mut analyzer = TermAnalyzer::new(&manifest.search.keyword)?;
        let postings: Vec<Postings> = chunks.iter().map(|chunk| Postings::of(&mut analyzer, &chunk.text)).collect();
        let ordinals: Vec<i32> = chunks.iter().map(|c| c.ordinal as i32).collect();
        let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
        let chunk_metadata: Vec<Value> = chunks.iter().map(|c| object(&c.metadata)).collect();
        let lengths: Vec<i32> = postings.iter().map(|p| p.length).collect();
        let embeddings: Vec<Vector> = vectors.iter().map(|v| Vector::from(unit(v))).collect();
        let added_length: i64 = lengths.iter().map(|&l| i64::from(l)).sum();
        let replaced = self.write(|tx, s| {
            let replaced = remove_document(tx, s, &doc.source)?;
            let document_id: i64 = tx
                .query_one(
                    &format!(
                        "INSERT INTO {s}.documents (source, title, content_hash, metadata, ingested_at)
                         VALUES ($1, $2, $3, $4, to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))
                         RETURNING id"
                    ),
                    &[&doc.source, &doc.title, &doc.content_hash, &object(&doc.metadata)],
                )?
                .get(0);
            let ids: Vec<i64> = tx
                .query(
                    &format!(
                        "INSERT INTO {s}.chunks (document_id, ordinal, text, metadata, length, embedding)
                         SELECT $1, * FROM unnest($2::int[], $3::text[], $4::jsonb[], $5::int[], $6::vector[])
                         RETURNING id"
                    ),
                    &[&document_id, &ordinals, &texts, &chunk_metadata, &lengths, &embeddings],
                )?
                .iter()
                .map(|row| row.get(0))
                .collect();
            let (mut terms, mut term_chunks, mut frequencies) = (Vec::new(), Vec::new(), Vec::new());
            for (id, chunk_postings) in ids.iter().zip(&postings) {
                for (term, tf) in &chunk_postings.frequencies {
                    terms.push(term.as_str());
                    term_chunks.push(*id);
                    frequencies.push(*tf);
                }
            }
            tx.execute(
                &format!("INSERT INTO {s}.terms (term, chunk_id, tf) SELECT * FROM unnest($1::text[], $2::bigint[], $3::int[])"),
                &[&terms, &term_chunks, &frequencies],
            )?;
            tx.execute(
                &format!("UPDATE {s}.manifest SET chunks = chunks + $1, total_length = total_length + $2"),
                &[&(ids.len() as i64), &added_length],
            )?;
            let extractor = graph::extractor(tx, s)?;
            if extractor != GraphExtractor::Off {
                let linked: Vec<(i64, &str, &Metadata)> =
                    ids.iter().zip(chunks).map(|(id, chunk)| (*id, chunk.text.as_str(), &chunk.metadata)).collect();
                graph::link_document(tx, s, extractor, doc.title.as_deref(), &linked)?;
            }
            Ok(replaced)
        })?;
        Ok(if replaced { UpsertOutcome::Replaced } else { UpsertOutcome::Added })
    }

    fn delete_document(&self, source: &str) -> Result<bool> {
        self.write(|tx, s| remove_document(tx, s, source))
    }

    /// New HNSW parameters rebuild the index, a new analyzer cuts every chunk again, a new graph
    /// extractor extracts the entity graph again, all in one transaction; other open handles
    /// keep their search settings until they are opened again (their writes follow the stored
    /// graph setting at once).
    fn configure(&self, settings: SearchSettings) -> Result<()> {
        settings.check()?;
        if settings.ann.vectors != VectorMemory::F32 {
            return Err(Error::InvalidInput(
                "ann.vectors = int8 is for the embedded store: PostgreSQL keeps the vectors and pgvector's index in \
                 the database, not in Lore's memory"
                    .into(),
            ));
        }
        let mut manifest = self.manifest();
        let old = std::mem::replace(&mut manifest.search, settings);
        let new = manifest.search.clone();
        let mut analyzer = TermAnalyzer::new(&new.keyword)?;
        let json = to_json(&manifest);
        self.write(|tx, s| {
            if (old.ann.m, old.ann.ef_construction) != (new.ann.m, new.ann.ef_construction) {
                tx.batch_execute(&format!(
                    "DROP INDEX {s}.chunks_hnsw;
                     CREATE INDEX chunks_hnsw ON {s}.chunks USING hnsw (embedding vector_cosine_ops)
                         WITH (m = {}, ef_construction = {});",
                    new.ann.m, new.ann.ef_construction
                ))?;
            }
            if old.keyword.analyzer != new.keyword.analyzer || old.keyword.user_dictionary != new.keyword.user_dictionary
            {
                tx.execute(&format!("DELETE FROM {s}.terms"), &[])?;
                for row in tx.query(&format!("SELECT id, text FROM {s}.chunks"), &[])? {
                    let (id, text): (i64, String) = (row.get(0), row.get(1));
                    let postings = Postings::of(&mut analyzer, &text);
                    let (terms, frequencies): (Vec<&str>, Vec<i32>) =
                        postings.frequencies.iter().map(|(t, f)| (t.as_str(), *f)).unzip();
                    tx.execute(&format!("UPDATE {s}.chunks SET length = $2 WHERE id = $1"), &[&id, &postings.length])?;
                    tx.execute(
                        &format!("INSERT INTO {s}.terms (term, chunk_id, tf) SELECT t, $2, f FROM unnest($1::text[], $3::int[]) AS x(t, f)"),
                        &[&terms, &id, &frequencies],
                    )?;
                }
                tx.execute(
                    &format!("UPDATE {s}.manifest SET total_length = (SELECT coalesce(sum(length), 0) FROM {s}.chunks)"),
                    &[],
                )?;
            }
            let graph_before = graph::extractor(tx, s)?;
            tx.execute(&format!("UPDATE {s}.manifest SET manifest = $1"), &[&json])?;
            graph::reconfigure(tx, s, graph_before, new.graph.extractor)
        })?;
        *self.manifest.write().unwrap_or_else(PoisonError::into_inner) = manifest;
        Ok(())
    }

    fn entities(&self, keys: &[String]) -> Result<Vec<Entity>> {
        self.check_graph()?;
        let s = &self.schema;
        self.in_transaction(self.readers(), true, |tx| graph::entities(tx, s, keys))
    }

    fn links(&self, query: LinkQuery<'_>) -> Result<Vec<Link>> {
        self.check_graph()?;
        let s = &self.schema;
        self.in_transaction(self.readers(), true, |tx| graph::links(tx, s, query))
    }
}

/// A chunk's BM25 postings: how often each term occurs, and its length as BM25 counts it.
struct Postings {
    frequencies: BTreeMap<String, i32>,
    length: i32,
}

impl Postings {
    fn of(analyzer: &mut TermAnalyzer, text: &str) -> Postings {
        let terms = analyzer.terms(text);
        let length = bm25_length(terms.len()) as i32;
        let mut frequencies: BTreeMap<String, i32> = BTreeMap::new();
        for term in terms {
            *frequencies.entry(term).or_default() += 1;
        }
        Postings { frequencies, length }
    }
}

/// Removes document `source` (its chunks, postings and graph links go with it, and the
/// entities only it named) and takes its chunks out of
/// the running totals; false if there was none. Inside a write.
fn remove_document(tx: &mut Transaction<'_>, s: &str, source: &str) -> std::result::Result<bool, postgres::Error> {
    let Some(row) = tx.query_opt(
        &format!(
            "SELECT d.id, count(c.id), coalesce(sum(c.length), 0)::bigint FROM {s}.documents d
             LEFT JOIN {s}.chunks c ON c.document_id = d.id WHERE d.source = $1 GROUP BY d.id"
        ),
        &[&source],
    )?
    else {
        return Ok(false);
    };
    let document_id: i64 = row.get(0);
    let entities = graph::entities_of_document(tx, s, document_id)?;
    tx.execute(&format!("DELETE FROM {s}.documents WHERE id = $1"), &[&document_id])?;
    graph::drop_orphans(tx, s, &entities)?;
    tx.execute(
        &format!("UPDATE {s}.manifest SET chunks = chunks - $1, total_length = total_length - $2"),
        &[&row.get::<_, i64>(1), &row.get::<_, i64>(2)],
    )?;
    Ok(true)
}

/// Hits for `scored` (chunk id, score), in that order, read in one query.
fn hits_in(
    client: &mut impl GenericClient,
    s: &str,
    scored: &[(i64, f32)],
) -> std::result::Result<Vec<Hit>, postgres::Error> {
    let ids: Vec<i64> = scored.iter().map(|(id, _)| *id).collect();
    let rows = client.query(
        &format!(
            "SELECT c.id, c.text, c.ordinal, c.metadata, d.source, d.title, d.metadata
             FROM {s}.chunks c JOIN {s}.documents d ON d.id = c.document_id WHERE c.id = ANY($1)"
        ),
        &[&ids],
    )?;
    let mut by_id: BTreeMap<i64, Row> = rows.into_iter().map(|row| (row.get(0), row)).collect();
    Ok(scored.iter().filter_map(|(id, score)| by_id.remove(id).map(|row| hit(&row, *score))).collect())
}

/// A hit from a row of (id, text, ordinal, chunk metadata, source, title, document metadata),
/// with the metadata a search hit has: the document's, overlaid by the chunk's (but for its
/// groups), plus source, ordinal and title.
fn hit(row: &Row, score: f32) -> Hit {
    let source: String = row.get(4);
    let title: Option<String> = row.get(5);
    let mut meta = metadata(row.get(6));
    let mut chunk = metadata(row.get(3));
    chunk.remove(GROUPS_FIELD);
    meta.extend(chunk);
    meta.insert("source".into(), source.clone().into());
    meta.insert("ordinal".into(), i64::from(row.get::<_, i32>(2)).into());
    if let Some(title) = title {
        meta.insert("title".into(), title.into());
    }
    Hit { chunk_id: row.get(0), source, text: row.get(1), score, metadata: meta }
}

pub(crate) fn metadata(value: Value) -> Metadata {
    match value {
        Value::Object(map) => map.into_iter().collect(),
        _ => Metadata::new(),
    }
}

fn object(metadata: &Metadata) -> Value {
    Value::Object(metadata.clone().into_iter().collect())
}

fn to_json(manifest: &Manifest) -> Value {
    serde_json::to_value(manifest).expect("manifests serialize")
}

fn unit(vector: &[f32]) -> Vec<f32> {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm == 0.0 { vector.to_vec() } else { vector.iter().map(|x| x / norm).collect() }
}

/// The schema of collection `name`, unquoted: `lore/NAME`.
fn schema_name(name: &str) -> String {
    format!("lore/{name}")
}

/// The schema of collection `name` as an SQL identifier.
fn schema_of(name: &str) -> Result<String> {
    let schema = schema_name(name);
    if name.is_empty() || schema.len() > 63 || name.chars().any(|c| c.is_control()) {
        return Err(Error::InvalidInput(format!(
            "{name:?} cannot name a PostgreSQL collection: at most 58 bytes, no control characters"
        )));
    }
    Ok(format!("\"{}\"", schema.replace('"', "\"\"")))
}

fn schema_exists(client: &mut impl GenericClient, name: &str) -> std::result::Result<bool, postgres::Error> {
    Ok(client.query_one("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", &[&schema_name(name)])?.get(0))
}

fn read_manifest(client: &mut impl GenericClient, url: &str, name: &str, schema: &str) -> Result<Manifest> {
    let value: Value =
        client.query_one(&format!("SELECT manifest FROM {schema}.manifest"), &[]).map_err(|e| failed(url, e))?.get(0);
    serde_json::from_value(value)
        .map_err(|e| Error::corrupt(redacted(url), format!("the manifest of collection '{name}' cannot be read: {e}")))
}

fn now(client: &mut impl GenericClient, url: &str) -> Result<String> {
    Ok(client
        .query_one("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')", &[])
        .map_err(|e| failed(url, e))?
        .get(0))
}
