//! The dense index: every vector of a collection in one contiguous table, searched exactly by
//! scanning it, or through an HNSW graph over its rows for large collections.
//!
//! Rows are kept in ascending chunk id. That holds by construction: chunk ids are never reused
//! and new chunks get ids above every earlier one, so the rows a sync appends always come after
//! the rows already there. A removed chunk's row stays, marked dead, as a waypoint
//! for the graph; the table is compacted (and the graph rebuilt) once dead rows are a fifth.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

use lore_core::{AnnMode, AnnSettings, Error, Fnv1a, Result, VectorMemory};
use rusqlite::Connection;

use crate::filter::ChunkSet;
use crate::hnsw::Hnsw;
use crate::store::{AtCollection, read_generation};
use crate::vectors::{StoredRows, Target, Vectors, best_k, dot, unit_vector};

/// The graph and its rows, saved for the next process (the vectors too: a dead row's vector
/// is gone from the store but still guides searches through the graph).
pub(crate) const GRAPH_FILE: &str = "dense.hnsw";
const GRAPH_MAGIC: &[u8; 8] = b"LOREHNSW";
/// Version 2 added what the rows keep (f32 or 8-bit codes only); version 1 files hold f32 rows.
const GRAPH_VERSION: u32 = 2;

/// With [`VectorMemory::Int8`], the candidates ranked by their codes whose exact vectors are read
/// from the store to score them, per result asked for. The codes' ranking is close (a query's
/// exact values times a code err by about 0.0004 in cosine on 384-dimension unit vectors), so
/// a few times k holds the exact top k.
const RESCORED_PER_RESULT: usize = 4;

pub(crate) struct DenseIndex {
    vectors: Vectors,
    graph: Option<Hnsw>,
    /// The collection generation the index reflects (see `Collection`).
    pub generation: i64,
    /// Whether the graph changed since it was read from or written to its file.
    unsaved: bool,
}

impl DenseIndex {
    fn empty(dimension: usize, memory: VectorMemory) -> DenseIndex {
        DenseIndex { vectors: Vectors::new(dimension, memory), graph: None, generation: -1, unsaved: false }
    }

    /// The index of the store as `conn` (inside a transaction) sees it: the saved graph brought
    /// up to date, or the vectors read from the store (and a graph built if `ann` wants one);
    /// `rebuild` ignores the saved graph (for one found to hold chunks the store does not).
    pub fn load(
        conn: &Connection,
        dir: &Path,
        dimension: usize,
        ann: &AnnSettings,
        rebuild: bool,
    ) -> Result<DenseIndex> {
        let saved = match ann.mode {
            AnnMode::Off => None,
            _ if rebuild => None,
            _ => read_graph(&dir.join(GRAPH_FILE), dimension, ann).ok(),
        };
        let mut index = saved.unwrap_or_else(|| DenseIndex::empty(dimension, ann.vectors));
        index.sync(conn, dir, ann)?;
        if index.unsaved {
            index.save(dir)?;
        }
        Ok(index)
    }

    /// Brings the rows (and graph) up to date with the store as `conn` sees it: drops the
    /// chunks logged as deleted since the index's generation, adds those above its last id.
    pub fn sync(&mut self, conn: &Connection, dir: &Path, ann: &AnnSettings) -> Result<()> {
        if self.vectors.memory() != ann.vectors {
            // Codes cannot be turned back into f32 rows: every row is read again.
            *self = DenseIndex::empty(self.vectors.dimension, ann.vectors);
        }
        let generation = read_generation(conn).at(dir)?;
        if self.generation >= 0 {
            let mut deleted = conn.prepare("SELECT chunk_id FROM deleted_chunks WHERE generation > ?1").at(dir)?;
            let mut rows = deleted.query([self.generation]).at(dir)?;
            while let Some(row) = rows.next().at(dir)? {
                self.kill(row.get(0).at(dir)?);
            }
        }
        let last = self.vectors.ids.last().copied().unwrap_or(0);
        // Reserved up front: grown by doubling, a million rows of 384 floats would take 2 GB.
        let new_rows: usize =
            conn.query_row("SELECT count(*) FROM chunks WHERE id > ?1", [last], |row| row.get(0)).at(dir)?;
        self.vectors.reserve(new_rows);
        let mut query = conn.prepare("SELECT id, vector FROM chunks WHERE id > ?1 ORDER BY id").at(dir)?;
        let mut added = query.query([last]).at(dir)?;
        let mut vector = Vec::with_capacity(self.vectors.dimension);
        while let Some(row) = added.next().at(dir)? {
            let id: i64 = row.get(0).at(dir)?;
            let bytes = row.get_ref(1).and_then(|value| Ok(value.as_blob()?)).at(dir)?;
            let (floats, rest) = bytes.as_chunks::<4>();
            if floats.len() != self.vectors.dimension || !rest.is_empty() {
                return Err(Error::corrupt(
                    dir.join(crate::store::STORE_FILE),
                    format!(
                        "collection {}: chunk {id} has a vector of {} bytes, not {} f32s: \
                         delete the directory and ingest again",
                        dir.display(),
                        bytes.len(),
                        self.vectors.dimension
                    ),
                ));
            }
            vector.clear();
            vector.extend(floats.iter().map(|b| f32::from_le_bytes(*b)));
            self.vectors.push(id, &vector);
        }
        self.generation = generation;
        self.fit(ann);
        Ok(())
    }

    fn kill(&mut self, id: i64) {
        let dead_before = self.vectors.dead;
        self.vectors.kill(id);
        self.unsaved |= self.graph.is_some() && self.vectors.dead != dead_before;
    }

    /// Links the rows appended since the graph last grew (all of them for a new graph).
    fn link_new_rows(&mut self) {
        if let Some(graph) = &mut self.graph
            && graph.len() < self.vectors.rows()
        {
            graph.extend(&self.vectors);
            self.unsaved = true;
        }
    }

    /// Builds, rebuilds, extends or drops the graph as `ann` and the row counts say.
    fn fit(&mut self, ann: &AnnSettings) {
        let live = self.vectors.live_rows();
        let wanted = match ann.mode {
            AnnMode::Off => false,
            AnnMode::On => true,
            AnnMode::Auto => live >= ann.min_vectors,
        };
        let stale = self.graph.as_ref().is_some_and(|g| g.m != ann.m || g.ef_construction != ann.ef_construction);
        if !wanted || stale {
            self.graph = None;
        }
        if self.vectors.dead * 5 > self.vectors.rows() {
            self.compact();
        }
        if wanted && self.graph.is_none() {
            self.graph = Some(Hnsw::new(ann.m, ann.ef_construction));
        }
        self.link_new_rows();
    }

    /// Drops the dead rows, and the graph with them (its nodes are row numbers).
    fn compact(&mut self) {
        self.vectors.retain_live();
        self.graph = None;
    }

    /// The `k` best chunks for `query` among those `allowed` (all when `None`): (chunk id,
    /// cosine similarity), best first, equal scores by ascending chunk id. Exact without a
    /// graph, and with one when the filter passes under a tenth of the chunks (the graph would
    /// have to be walked far to find enough of them) or the graph finds fewer than k.
    ///
    /// With codes only in memory ([`VectorMemory::Int8`]), the [`RESCORED_PER_RESULT`] × k
    /// candidates the codes rank best are scored with their exact vectors, which `stored` reads
    /// (`None` for a chunk the store lacks, which keeps its code's score).
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        allowed: Option<&ChunkSet>,
        ef_search: usize,
        stored: impl FnOnce(&[i64]) -> Result<Vec<Option<Vec<f32>>>>,
    ) -> Result<Vec<(i64, f32)>> {
        let vectors = &self.vectors;
        let wanted = match vectors.memory() {
            VectorMemory::F32 => k,
            VectorMemory::Int8 => k.saturating_mul(RESCORED_PER_RESULT),
        };
        let ranked = self.candidates(query, k, wanted, allowed, ef_search);
        if vectors.memory() == VectorMemory::F32 {
            return Ok(ranked);
        }
        let ids: Vec<i64> = ranked.iter().map(|&(id, _)| id).collect();
        let exact = stored(&ids)?;
        let rescored = ranked
            .into_iter()
            .zip(exact)
            .map(|((id, coded), vector)| (id, vector.map_or(coded, |vector| dot(query, &vector))));
        Ok(best_k(rescored.collect(), k))
    }

    /// The `wanted` (at least `k`) best chunks by [`Vectors::similarity`], from the graph or a scan.
    fn candidates(
        &self,
        query: &[f32],
        k: usize,
        wanted: usize,
        allowed: Option<&ChunkSet>,
        ef_search: usize,
    ) -> Vec<(i64, f32)> {
        let vectors = &self.vectors;
        let accept = |row: usize| vectors.live[row] && allowed.is_none_or(|a| a.contains(vectors.ids[row]));
        let accepted = match allowed {
            Some(_) => (0..vectors.rows()).filter(|&row| accept(row)).count(),
            None => vectors.live_rows(),
        };
        if let Some(graph) = &self.graph
            && k < accepted
            && accepted * 10 >= vectors.live_rows()
        {
            let found = graph.search(vectors, query, ef_search.max(wanted), |node| accept(node as usize));
            if found.len() >= k {
                return found
                    .into_iter()
                    .take(wanted)
                    .map(|(node, score)| (vectors.ids[node as usize], score))
                    .collect();
            }
        }
        let scored = (0..vectors.rows())
            .filter(|&row| accept(row))
            .map(|row| (vectors.ids[row], vectors.similarity(Target::Query(query), row)));
        best_k(scored.collect(), wanted)
    }

    /// Writes the graph file if the graph changed since it was read or written. Atomic: a new
    /// file is written, flushed to disk, then renamed over the old one.
    pub fn save(&mut self, dir: &Path) -> Result<()> {
        let Some(graph) = self.graph.as_ref().filter(|_| self.unsaved) else {
            return Ok(());
        };
        let path = dir.join(GRAPH_FILE);
        let temporary = dir.join(format!("{GRAPH_FILE}.{}.tmp", std::process::id()));
        let written =
            write_graph(&temporary, &self.vectors, graph, self.generation).and_then(|()| fs::rename(&temporary, &path));
        if let Err(e) = written {
            // Nothing is lost: the graph is rebuilt from the store when its file is missing.
            let _ = fs::remove_file(&temporary);
            return Err(Error::Io { path, source: e });
        }
        self.unsaved = false;
        Ok(())
    }
}

/// Vectors in memory, searched by cosine similarity exactly or through an HNSW graph: a
/// collection's dense index without its store, for callers that keep their own records (and for
/// measuring the graph against other libraries on the same vectors).
///
/// ```
/// use lore_index::{AnnMode, AnnSettings, VectorIndex};
///
/// let ann = AnnSettings { mode: AnnMode::On, ..AnnSettings::default() };
/// let rows = (1..=200).map(|id| (id, vec![(id as f32).cos(), (id as f32).sin(), 0.5]));
/// let index = VectorIndex::build(3, &ann, rows)?;
/// let best = index.search(&[7f32.cos(), 7f32.sin(), 0.5], 3)?;
/// assert_eq!(best[0].0, 7);
/// # Ok::<(), lore_core::Error>(())
/// ```
pub struct VectorIndex {
    dense: DenseIndex,
    ef_search: usize,
}

impl VectorIndex {
    /// An index of `rows` (id, vector), ids ascending; each vector is scaled to unit length. The
    /// graph is built (on every core) when `ann.mode` asks for one, as a collection's would be.
    /// The rows are kept in f32 whatever `ann.vectors` says: without a store there is nothing
    /// to rescore codes from.
    pub fn build(
        dimension: usize,
        ann: &AnnSettings,
        rows: impl IntoIterator<Item = (i64, Vec<f32>)>,
    ) -> Result<VectorIndex> {
        let mut dense = DenseIndex::empty(dimension, VectorMemory::F32);
        for (id, vector) in rows {
            if dense.vectors.ids.last().is_some_and(|&last| last >= id) {
                return Err(Error::InvalidInput(format!(
                    "vector {id} comes after a larger or equal id: give the rows in ascending id order"
                )));
            }
            dense.vectors.push(id, &unit_vector(&vector, dimension, &format!("vector {id}"))?);
        }
        dense.fit(ann);
        Ok(VectorIndex { dense, ef_search: ann.ef_search })
    }

    /// The number of vectors.
    pub fn len(&self) -> usize {
        self.dense.vectors.rows()
    }

    /// True when the index holds no vector.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sets the candidates a graph search examines (see [`AnnSettings::ef_search`]).
    pub fn set_ef_search(&mut self, ef_search: usize) {
        self.ef_search = ef_search;
    }

    /// The `k` rows most similar to `query`: (id, cosine similarity), best first.
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<(i64, f32)>> {
        let query = unit_vector(query, self.dense.vectors.dimension, "the query vector")?;
        self.dense.search(&query, k, None, self.ef_search, |ids| Ok(vec![None; ids.len()]))
    }
}

/// A writer that hashes what goes through it, so the reader can tell a damaged file.
/// FNV-1a: about 1 GB/s, a small part of the file's write or read time.
struct Hashing<T> {
    inner: T,
    hash: Fnv1a,
}

impl<T> Hashing<T> {
    fn new(inner: T) -> Self {
        Hashing { inner, hash: Fnv1a::new() }
    }

    fn feed(&mut self, bytes: &[u8]) {
        self.hash.write(bytes);
    }
}

impl<W: Write> Hashing<W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.feed(bytes);
        self.inner.write_all(bytes)
    }
}

impl<R: Read> Hashing<R> {
    fn take<const N: usize>(&mut self) -> io::Result<[u8; N]> {
        let mut bytes = [0u8; N];
        self.inner.read_exact(&mut bytes)?;
        self.feed(&bytes);
        Ok(bytes)
    }

    fn u32(&mut self) -> io::Result<u32> {
        Ok(u32::from_le_bytes(self.take()?))
    }

    fn u64(&mut self) -> io::Result<u64> {
        Ok(u64::from_le_bytes(self.take()?))
    }

    /// `count` values of `N` bytes each, refusing counts the file cannot hold.
    fn many<const N: usize, V>(&mut self, count: u64, limit: u64, decode: fn([u8; N]) -> V) -> io::Result<Vec<V>> {
        if count > limit {
            return Err(damaged("a count larger than the file"));
        }
        let mut values = Vec::with_capacity(count as usize);
        let mut buffer = vec![0u8; (64 * 1024 / N).max(1) * N];
        let mut left = count as usize * N;
        while left > 0 {
            let size = left.min(buffer.len());
            let part = &mut buffer[..size];
            self.inner.read_exact(part)?;
            self.feed(part);
            values.extend(part.as_chunks::<N>().0.iter().map(|b| decode(*b)));
            left -= part.len();
        }
        Ok(values)
    }
}

fn damaged(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("damaged graph file: {what}"))
}

fn write_graph(path: &Path, vectors: &Vectors, graph: &Hnsw, generation: i64) -> io::Result<()> {
    let file = File::create(path)?;
    let mut out = Hashing::new(BufWriter::with_capacity(1 << 20, file));
    out.put(GRAPH_MAGIC)?;
    let memory = match vectors.memory() {
        VectorMemory::F32 => 0u32,
        VectorMemory::Int8 => 1,
    };
    for n in [GRAPH_VERSION, vectors.dimension as u32, graph.m as u32, graph.ef_construction as u32, memory] {
        out.put(&n.to_le_bytes())?;
    }
    out.put(&generation.to_le_bytes())?;
    out.put(&(vectors.rows() as u64).to_le_bytes())?;
    out.put(&graph.entry.map_or(u64::MAX, u64::from).to_le_bytes())?;
    for id in &vectors.ids {
        out.put(&id.to_le_bytes())?;
    }
    out.put(&vectors.live.iter().map(|&live| u8::from(live)).collect::<Vec<u8>>())?;
    out.put(&graph.levels)?;
    out.put(&graph.bottom_len)?;
    for link in &graph.bottom {
        out.put(&link.to_le_bytes())?;
    }
    for links in graph.upper.iter().flatten() {
        out.put(&(links.len() as u32).to_le_bytes())?;
        for link in links {
            out.put(&link.to_le_bytes())?;
        }
    }
    for value in vectors.values() {
        out.put(&value.to_le_bytes())?;
    }
    if vectors.memory() == VectorMemory::Int8 {
        let (codes, scales) = vectors.codes();
        out.put(&codes.iter().map(|&c| c as u8).collect::<Vec<u8>>())?;
        for scale in scales {
            out.put(&scale.to_le_bytes())?;
        }
    }
    let hash = out.hash.finish();
    let mut file = out.inner.into_inner().map_err(|e| e.into_error())?;
    file.write_all(&hash.to_le_bytes())?;
    file.sync_all()
}

/// The index saved in `path`, if it was saved with these settings and is undamaged.
fn read_graph(path: &Path, dimension: usize, ann: &AnnSettings) -> io::Result<DenseIndex> {
    let file = File::open(path)?;
    let size = file.metadata()?.len();
    let mut input = Hashing::new(BufReader::with_capacity(1 << 20, file));
    if &input.take::<8>()? != GRAPH_MAGIC {
        return Err(damaged("not a Lore graph"));
    }
    let version = input.u32()?;
    if !(1..=GRAPH_VERSION).contains(&version) {
        return Err(damaged("not a Lore graph of a known version"));
    }
    let (file_dimension, m, ef_construction) = (input.u32()?, input.u32()?, input.u32()?);
    let memory = match if version == 1 { 0 } else { input.u32()? } {
        0 => VectorMemory::F32,
        1 => VectorMemory::Int8,
        _ => return Err(damaged("unknown row format")),
    };
    if (file_dimension as usize, m as usize, ef_construction as usize, memory)
        != (dimension, ann.m, ann.ef_construction, ann.vectors)
    {
        return Err(damaged("built with other settings"));
    }
    let generation = i64::from_le_bytes(input.take()?);
    let rows = input.u64()?;
    let entry = input.u64()?;
    let ids = input.many(rows, size / 8, i64::from_le_bytes)?;
    let live: Vec<bool> = input.many(rows, size, |[b]| b == 1)?;
    let levels = input.many(rows, size, |[b]| b)?;
    let bottom_len = input.many(rows, size, |[b]| b)?;
    let bottom = input.many(rows * 2 * u64::from(m), size / 4, u32::from_le_bytes)?;
    let mut upper = Vec::with_capacity(levels.len());
    for &level in &levels {
        let mut layers = Vec::with_capacity(usize::from(level));
        for _ in 0..level {
            let count = input.u32()?;
            layers.push(input.many(u64::from(count), 2 * u64::from(m), u32::from_le_bytes)?);
        }
        upper.push(layers);
    }
    let stored = match memory {
        VectorMemory::F32 => {
            StoredRows::F32(input.many(rows * u64::from(file_dimension), size / 4, f32::from_le_bytes)?)
        }
        VectorMemory::Int8 => StoredRows::Int8 {
            codes: input.many(rows * u64::from(file_dimension), size, |[b]| b as i8)?,
            scales: input.many(rows, size / 4, f32::from_le_bytes)?,
        },
    };
    let expected = input.hash.finish();
    if u64::from_le_bytes(input.take()?) != expected {
        return Err(damaged("checksum mismatch"));
    }
    let entry = (entry != u64::MAX).then_some(entry as u32);
    let graph = Hnsw::from_parts(m as usize, ef_construction as usize, levels, bottom, bottom_len, upper, entry)
        .ok_or_else(|| damaged("inconsistent links"))?;
    let ascending = ids.windows(2).all(|pair| pair[0] < pair[1]);
    let finite = match &stored {
        StoredRows::F32(values) => values.iter().all(|v| v.is_finite()),
        StoredRows::Int8 { scales, .. } => scales.iter().all(|v| v.is_finite()),
    };
    if !ascending || !finite {
        return Err(damaged("rows out of order or not finite"));
    }
    let vectors = Vectors::from_parts(dimension, ids, live, stored);
    Ok(DenseIndex { vectors, graph: Some(graph), generation, unsaved: false })
}
