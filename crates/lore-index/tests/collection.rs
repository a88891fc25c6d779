use std::collections::BTreeMap;
use std::env;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use lore_core::{Chunk, ChunkConfig, Document, Error, Hit, Metadata, Section};
use lore_index::{Collection, Store, UpsertOutcome};
use serde_json::json;

/// Deterministic pseudo-random numbers (xorshift64), so failures reproduce.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn unit_vector(&mut self, dimension: usize) -> Vec<f32> {
        let raw: Vec<f32> = (0..dimension).map(|_| (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0).collect();
        let norm = raw.iter().map(|x| x * x).sum::<f32>().sqrt();
        raw.iter().map(|x| x / norm).collect()
    }
}

fn document(source: &str, text: &str) -> Document {
    Document::new(source, vec![Section::new(vec![], text)])
}

fn chunks(texts: &[String]) -> Vec<Chunk> {
    texts
        .iter()
        .enumerate()
        .map(|(ordinal, text)| Chunk { text: text.clone(), ordinal, metadata: Metadata::new() })
        .collect()
}

fn create(dir: &Path, dimension: usize) -> Collection {
    Collection::create(dir, "test-embedder", dimension, ChunkConfig::default()).unwrap()
}

/// Adds a document whose chunk texts are `"{source} #{i}"`, one per vector.
fn add(collection: &mut Collection, source: &str, vectors: &[Vec<f32>]) -> UpsertOutcome {
    let texts: Vec<String> = (0..vectors.len()).map(|i| format!("{source} #{i}")).collect();
    collection.upsert(&document(source, &texts.join("\n")), &chunks(&texts), vectors).unwrap()
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum()
}

fn texts(hits: &[Hit]) -> Vec<&str> {
    hits.iter().map(|hit| hit.text.as_str()).collect()
}

fn error_text<T>(result: lore_core::Result<T>) -> String {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn create_then_open_round_trips_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let chunking = ChunkConfig::TokenWindow { size: 128, overlap: 16 };
    let created = Collection::create(dir.path(), "minilm", 384, chunking.clone()).unwrap();
    let manifest = created.manifest();
    assert_eq!((manifest.format_version, manifest.embedder.as_str(), manifest.dimension), (1, "minilm", 384));
    assert_eq!(manifest.chunking, chunking);
    let stamp = manifest.created_at.as_bytes();
    assert!(stamp.len() == 20 && stamp[10] == b'T' && stamp[19] == b'Z', "not RFC 3339 UTC: {}", manifest.created_at);
    assert_eq!(manifest.updated_at, manifest.created_at);
    drop(created);

    let opened = Collection::open(dir.path()).unwrap();
    assert_eq!(opened.manifest(), manifest);
    let stats = opened.stats().unwrap();
    assert_eq!((stats.documents, stats.chunks, stats.dimension), (0, 0, 384));
    assert!(stats.bytes_on_disk > 0);

    let again = Collection::create(dir.path(), "minilm", 384, ChunkConfig::default());
    assert!(error_text(again).contains("already exists"));
}

#[test]
fn opening_a_missing_collection_says_how_to_create_one() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere");
    let message = error_text(Collection::open(&missing));
    assert!(message.contains("lore ingest PATH -c NAME"), "{message}");
    assert!(message.contains("nowhere"), "{message}");
    // An existing but empty directory holds no collection either.
    assert!(error_text(Collection::open(dir.path())).contains("lore ingest"));
}

#[test]
fn a_newer_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(create(dir.path(), 4));
    let store = rusqlite::Connection::open(dir.path().join("store.sqlite")).unwrap();
    store.execute("UPDATE manifest SET format_version = 99", []).unwrap();
    drop(store);
    let message = error_text(Collection::open(dir.path()));
    assert!(message.contains("format version 99") && message.contains("upgrade lore"), "{message}");
}

#[test]
fn another_embedder_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let collection = Collection::create(dir.path(), "minilm", 384, ChunkConfig::default()).unwrap();
    collection.check_embedder("minilm", 384).unwrap();
    let message = error_text(collection.check_embedder("e5-small", 384));
    assert!(message.contains("'minilm'") && message.contains("'e5-small'"), "{message}");
    assert!(collection.check_embedder("minilm", 768).is_err());
}

#[test]
fn search_is_exact_top_k() {
    // 50 is not a multiple of the dot product's block size, so the tail is exercised too.
    let dimension = 50;
    let dir = tempfile::tempdir().unwrap();
    let mut collection = create(dir.path(), dimension);
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut corpus: Vec<(String, Vec<f32>)> = Vec::new();
    for d in 0..30 {
        let source = format!("doc{d}");
        let vectors: Vec<Vec<f32>> = (0..10).map(|_| rng.unit_vector(dimension)).collect();
        assert_eq!(add(&mut collection, &source, &vectors), UpsertOutcome::Added);
        corpus.extend(vectors.into_iter().enumerate().map(|(i, v)| (format!("{source} #{i}"), v)));
    }
    let exact: BTreeMap<&str, &Vec<f32>> = corpus.iter().map(|(t, v)| (t.as_str(), v)).collect();

    for _ in 0..20 {
        let query = rng.unit_vector(dimension);
        let mut oracle: Vec<f64> = corpus.iter().map(|(_, v)| dot(v, &query)).collect();
        oracle.sort_by(|a, b| b.total_cmp(a));
        for k in [1, 5, 17, 300, 500] {
            let hits = collection.search(&query, k, None).unwrap();
            assert_eq!(hits.len(), k.min(corpus.len()));
            // Each hit is labelled with its own vector's score, the scores are the oracle's
            // top k in order, and no chunk comes twice: the result is the exact top k.
            for (hit, expected) in hits.iter().zip(&oracle) {
                assert!((f64::from(hit.score) - expected).abs() < 1e-5, "k={k}: {hit:?}");
                let own = dot(exact[hit.text.as_str()], &query);
                assert!((f64::from(hit.score) - own).abs() < 1e-5, "{hit:?} scores {own}");
                assert_eq!(hit.metadata["source"], json!(hit.source));
                assert!(hit.text.starts_with(&format!("{} #", hit.source)));
            }
            let distinct: std::collections::BTreeSet<i64> = hits.iter().map(|hit| hit.chunk_id).collect();
            assert_eq!(distinct.len(), hits.len());
        }
    }
}

#[test]
fn equal_scores_are_ordered_by_chunk_id() {
    let dir = tempfile::tempdir().unwrap();
    let mut collection = create(dir.path(), 3);
    let same = vec![0.0, 1.0, 0.0];
    add(&mut collection, "b", &[same.clone(), vec![1.0, 0.0, 0.0], same.clone()]);
    add(&mut collection, "a", &[same.clone(), same.clone(), vec![0.0, 0.8, 0.6]]);
    for k in [1, 2, 3, 4] {
        let hits = collection.search(&same, k, None).unwrap();
        let ids: Vec<i64> = hits.iter().map(|hit| hit.chunk_id).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted, "k={k}");
        assert!(hits.iter().all(|hit| hit.score == 1.0));
        // Insertion order gives ascending ids, whatever the sources.
        assert_eq!(texts(&hits), ["b #0", "b #2", "a #0", "a #1"][..k]);
    }
}

#[test]
fn nothing_is_found_for_k_zero_or_in_an_empty_collection() {
    let dir = tempfile::tempdir().unwrap();
    let mut collection = create(dir.path(), 3);
    assert!(collection.search(&[1.0, 0.0, 0.0], 5, None).unwrap().is_empty());
    add(&mut collection, "a", &[vec![1.0, 0.0, 0.0]]);
    assert!(collection.search(&[1.0, 0.0, 0.0], 0, None).unwrap().is_empty());
    assert_eq!(collection.search(&[1.0, 0.0, 0.0], 5, None).unwrap().len(), 1);
}

#[test]
fn replacing_a_document_drops_its_old_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let mut collection = create(dir.path(), 3);
    add(&mut collection, "other", &[vec![0.0, 0.0, 1.0]]);
    let old = [vec![1.0, 0.0, 0.0], vec![0.7, 0.7, 0.0], vec![0.7, 0.0, 0.7]];
    add(&mut collection, "doc", &old);
    let old_ids: Vec<i64> = collection.search(&old[0], 10, None).unwrap().iter().map(|hit| hit.chunk_id).collect();
    assert_eq!(old_ids.len(), 4);

    let new_doc = document("doc", "brand new text");
    let new_chunks = chunks(&["new #0".into(), "new #1".into()]);
    let new_vectors = [vec![0.0, 1.0, 0.0], vec![0.0, 0.7, 0.7]];
    let outcome = collection.upsert(&new_doc, &new_chunks, &new_vectors).unwrap();
    assert_eq!(outcome, UpsertOutcome::Replaced);

    // The in-memory matrix was loaded before the replacement, and a fresh handle loads it
    // from the store: both must show only the new chunks.
    let reopened = Collection::open(dir.path()).unwrap();
    for view in [&collection, &reopened] {
        let hits = view.search(&[1.0, 0.0, 0.0], 10, None).unwrap();
        let mut found = texts(&hits);
        found.sort();
        assert_eq!(found, ["new #0", "new #1", "other #0"]);
        assert_eq!(view.search(&[0.0, 1.0, 0.0], 1, None).unwrap()[0].text, "new #0");
        assert_eq!(view.document_hash("doc").unwrap(), Some(new_doc.content_hash.clone()));
        let stats = view.stats().unwrap();
        assert_eq!((stats.documents, stats.chunks), (2, 3));
        for id in &old_ids {
            if let Some(hit) = view.chunk(*id).unwrap() {
                assert_eq!(hit.source, "other");
            }
        }
    }
    let docs = collection.documents().unwrap();
    assert_eq!(docs.iter().map(|d| (d.source.as_str(), d.chunks)).collect::<Vec<_>>(), [("doc", 2), ("other", 1)]);
}

#[test]
fn deleting_a_document_removes_it_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let mut collection = create(dir.path(), 3);
    add(&mut collection, "keep", &[vec![1.0, 0.0, 0.0]]);
    add(&mut collection, "drop", &[vec![0.9, 0.1, 0.0], vec![0.0, 1.0, 0.0]]);
    assert_eq!(collection.search(&[1.0, 0.0, 0.0], 10, None).unwrap().len(), 3);

    assert!(collection.delete_document("drop").unwrap());
    assert!(!collection.delete_document("drop").unwrap());
    assert!(!collection.delete_document("never-there").unwrap());

    let hits = collection.search(&[1.0, 0.0, 0.0], 10, None).unwrap();
    assert_eq!(texts(&hits), ["keep #0"]);
    assert_eq!(collection.document_hash("drop").unwrap(), None);
    let sources: Vec<String> = collection.documents().unwrap().into_iter().map(|d| d.source).collect();
    assert_eq!(sources, ["keep"]);
    let reopened = Collection::open(dir.path()).unwrap();
    assert_eq!(texts(&reopened.search(&[0.0, 1.0, 0.0], 10, None).unwrap()), ["keep #0"]);
}

#[test]
fn invalid_vectors_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut collection = create(dir.path(), 3);
    let doc = document("a", "one\ntwo");
    let two = chunks(&["one".into(), "two".into()]);
    let attempts: [(&[Vec<f32>], &str); 5] = [
        (&[vec![1.0, 0.0, 0.0], vec![1.0, 0.0]], "2 dimensions"),
        (&[vec![1.0, 0.0, 0.0], vec![f32::NAN, 0.0, 0.0]], "NaN"),
        (&[vec![1.0, 0.0, 0.0], vec![f32::INFINITY, 0.0, 0.0]], "infinity"),
        (&[vec![1.0, 0.0, 0.0], vec![0.0, 0.0, 0.0]], "all zeros"),
        (&[vec![1.0, 0.0, 0.0]], "2 chunks but 1 vectors"),
    ];
    for (vectors, expected) in attempts {
        let result = collection.upsert(&doc, &two, vectors);
        assert!(matches!(result, Err(Error::InvalidInput(_))), "{expected}: {result:?}");
        let message = error_text(result);
        assert!(message.contains(expected), "{message}");
    }
    assert_eq!(collection.stats().unwrap().documents, 0);

    add(&mut collection, "a", &[vec![1.0, 0.0, 0.0]]);
    assert!(error_text(collection.search(&[1.0, 0.0], 1, None)).contains("2 dimensions"));
    assert!(error_text(collection.search(&[f32::NAN, 0.0, 0.0], 1, None)).contains("NaN"));
    // The dimension is checked even when nothing would be returned.
    assert!(collection.search(&[1.0; 4], 0, None).is_err());
}

#[test]
fn vectors_are_scaled_to_unit_length() {
    let dir = tempfile::tempdir().unwrap();
    let mut collection = create(dir.path(), 2);
    add(&mut collection, "a", &[vec![3.0, 4.0]]);
    let hit = &collection.search(&[30.0, 40.0], 1, None).unwrap()[0];
    assert!((hit.score - 1.0).abs() < 1e-6, "{}", hit.score);
    let hit = &collection.search(&[1.0, 0.0], 1, None).unwrap()[0];
    assert!((hit.score - 0.6).abs() < 1e-6, "{}", hit.score);
}

#[test]
fn stored_vectors_are_read_back_by_chunk_id() {
    let dir = tempfile::tempdir().unwrap();
    let mut collection = create(dir.path(), 2);
    add(&mut collection, "a", &[vec![3.0, 4.0], vec![0.0, 2.0]]);
    let ids: Vec<i64> = collection.search(&[0.0, 1.0], 2, None).unwrap().iter().map(|h| h.chunk_id).collect();
    let vectors = collection.vectors(&[ids[1], ids[0], 9999]).unwrap();
    assert_eq!(vectors, [Some(vec![0.6, 0.8]), Some(vec![0.0, 1.0]), None]);
}

#[test]
fn hits_carry_document_and_chunk_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let collection = create(dir.path(), 2);
    let mut doc = document("guide.md", "Intro\nDetails");
    doc.title = Some("The Guide".into());
    doc.metadata.insert("format".into(), json!("markdown"));
    doc.metadata.insert("page".into(), json!(0));
    let mut parts = chunks(&["Intro".into(), "Details".into()]);
    parts[1].metadata.insert("page".into(), json!(7));
    parts[1].metadata.insert("heading_path".into(), json!(["Guide", "Details"]));
    collection.upsert(&doc, &parts, &[vec![1.0, 0.0], vec![0.0, 1.0]]).unwrap();

    let hit = collection.search(&[0.0, 1.0], 1, None).unwrap().remove(0);
    assert_eq!((hit.source.as_str(), hit.text.as_str()), ("guide.md", "Details"));
    let expected: Metadata = [
        ("format", json!("markdown")),
        ("page", json!(7)),
        ("heading_path", json!(["Guide", "Details"])),
        ("source", json!("guide.md")),
        ("ordinal", json!(1)),
        ("title", json!("The Guide")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(hit.metadata, expected);

    let looked_up = collection.chunk(hit.chunk_id).unwrap().unwrap();
    assert_eq!(looked_up, Hit { score: 0.0, ..hit });
    assert_eq!(collection.chunk(-1).unwrap(), None);

    let info = collection.documents().unwrap().remove(0);
    assert_eq!(info.title.as_deref(), Some("The Guide"));
    assert_eq!((info.chunks, &info.metadata), (2, &doc.metadata));
    assert_eq!(info.content_hash, doc.content_hash);
    assert!(info.ingested_at.ends_with('Z'));
}

#[test]
fn reopening_finds_the_same_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = XorShift(42);
    let queries: Vec<Vec<f32>> = (0..5).map(|_| rng.unit_vector(16)).collect();
    let before: Vec<Vec<Hit>> = {
        let mut collection = create(dir.path(), 16);
        for d in 0..8 {
            let vectors: Vec<Vec<f32>> = (0..6).map(|_| rng.unit_vector(16)).collect();
            add(&mut collection, &format!("doc{d}"), &vectors);
        }
        queries.iter().map(|q| collection.search(q, 10, None).unwrap()).collect()
    };
    let reopened = Collection::open(dir.path()).unwrap();
    let after: Vec<Vec<Hit>> = queries.iter().map(|q| reopened.search(q, 10, None).unwrap()).collect();
    assert_eq!(after, before);
    assert_eq!(reopened.stats().unwrap().chunks, 48);
}

#[test]
fn writes_through_another_handle_are_seen_by_a_loaded_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = create(dir.path(), 2);
    add(&mut writer, "first", &[vec![1.0, 0.0]]);
    // A second handle has its own connection and matrix, as another process would.
    let reader = Collection::open(dir.path()).unwrap();
    assert_eq!(texts(&reader.search(&[0.0, 1.0], 5, None).unwrap()), ["first #0"]);

    add(&mut writer, "second", &[vec![0.0, 1.0]]);
    assert_eq!(texts(&reader.search(&[0.0, 1.0], 5, None).unwrap()), ["second #0", "first #0"]);
    writer.delete_document("first").unwrap();
    assert_eq!(texts(&reader.search(&[0.0, 1.0], 5, None).unwrap()), ["second #0"]);
    // And the writer's own matrix, loaded now, stays in step with its later writes.
    assert_eq!(texts(&writer.search(&[0.0, 1.0], 5, None).unwrap()), ["second #0"]);
    add(&mut writer, "third", &[vec![0.6, 0.8]]);
    assert_eq!(texts(&writer.search(&[0.0, 1.0], 5, None).unwrap()), ["second #0", "third #0"]);
}

#[test]
fn concurrent_writers_queue_instead_of_failing() {
    let dir = tempfile::tempdir().unwrap();
    drop(create(dir.path(), 8));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let dir = dir.path().to_path_buf();
            thread::spawn(move || {
                let mut collection = Collection::open(&dir).unwrap();
                let mut rng = XorShift(100 + w);
                for d in 0..20 {
                    let vectors: Vec<Vec<f32>> = (0..5).map(|_| rng.unit_vector(8)).collect();
                    add(&mut collection, &format!("writer{w}/doc{d}"), &vectors);
                    collection.search(&vectors[0], 3, None).unwrap();
                    // Each handle brings the shared keyword index up to date in turn.
                    let source = format!("writer{w}/doc{d}");
                    let hits = collection.search_keyword(&format!("{source} #4"), 5, None).unwrap();
                    assert!(hits.iter().any(|hit| hit.source == source), "{source}: {hits:?}");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let collection = Collection::open(dir.path()).unwrap();
    let stats = collection.stats().unwrap();
    assert_eq!((stats.documents, stats.chunks), (60, 300));
    // Every chunk text ends in one of these numbers: the index holds all 300 chunks.
    assert_eq!(collection.search_keyword("0 1 2 3 4", 1000, None).unwrap().len(), 300);
}

// Crash safety: a child process (this test binary, re-run on one test with the environment
// variable below set) writes and is killed with SIGKILL, so nothing is rolled back or flushed
// on its way out; the collection must then open showing complete documents only.

const CHILD_DIR: &str = "LORE_INDEX_TEST_CHILD_DIR";
const CHILD_READY: &str = "child ready";

/// Runs the test `name` of this binary as a child writing to `dir`, waits until it says it is
/// ready, lets it write for `grace`, then kills it.
fn kill_child_when_ready(name: &str, dir: &Path, grace: Duration) {
    let mut child = Command::new(env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (ready_tx, ready_rx) = mpsc::channel();
    // libtest prints the test's name on the same line before the child's own output.
    thread::spawn(move || {
        let ready = stdout.lines().map_while(Result::ok).any(|line| line.ends_with(CHILD_READY));
        // The parent may have stopped waiting; then nobody needs the answer.
        let _ = ready_tx.send(ready);
    });
    let ready = ready_rx.recv_timeout(Duration::from_secs(120));
    if ready != Ok(true) {
        child.kill().unwrap();
        panic!("the child never got ready ({ready:?}): {:?}", child.wait());
    }
    thread::sleep(grace);
    child.kill().unwrap();
    child.wait().unwrap();
}

fn announce_ready_and_wait() -> ! {
    println!("{CHILD_READY}");
    loop {
        thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn a_killed_transaction_leaves_the_previous_state() {
    if let Some(dir) = env::var_os(CHILD_DIR) {
        // Wipe every chunk and write more junk than SQLite's (shrunk) page cache holds, so that
        // uncommitted pages reach the WAL file before the kill.
        let mut store = rusqlite::Connection::open(Path::new(&dir).join("store.sqlite")).unwrap();
        store.execute_batch("PRAGMA cache_size = 64").unwrap();
        let tx = store.transaction().unwrap();
        tx.execute("DELETE FROM chunks", []).unwrap();
        tx.execute("UPDATE documents SET content_hash = 'garbage'", []).unwrap();
        for ordinal in 0..4_000 {
            tx.execute(
                "INSERT INTO chunks (document_id, ordinal, text, metadata, vector)
                 VALUES (1, ?1, 'junk', '{}', zeroblob(1024))",
                [ordinal],
            )
            .unwrap();
        }
        announce_ready_and_wait();
    }
    let dir = tempfile::tempdir().unwrap();
    let mut rng = XorShift(7);
    let queries: Vec<Vec<f32>> = (0..3).map(|_| rng.unit_vector(16)).collect();
    let (documents, results) = {
        let mut collection = create(dir.path(), 16);
        for d in 0..5 {
            let vectors: Vec<Vec<f32>> = (0..4).map(|_| rng.unit_vector(16)).collect();
            add(&mut collection, &format!("doc{d}"), &vectors);
        }
        let results: Vec<Vec<Hit>> = queries.iter().map(|q| collection.search(q, 30, None).unwrap()).collect();
        (collection.documents().unwrap(), results)
    };
    kill_child_when_ready("a_killed_transaction_leaves_the_previous_state", dir.path(), Duration::ZERO);
    let wal = std::fs::metadata(dir.path().join("store.sqlite-wal")).unwrap().len();
    assert!(wal > 1 << 20, "the child's uncommitted pages never reached the WAL ({wal} bytes)");

    let mut collection = Collection::open(dir.path()).unwrap();
    assert_eq!(collection.documents().unwrap(), documents);
    let after: Vec<Vec<Hit>> = queries.iter().map(|q| collection.search(q, 30, None).unwrap()).collect();
    assert_eq!(after, results);
    // The dead process's lock is gone: the collection takes writes again.
    add(&mut collection, "doc5", &[rng.unit_vector(16)]);
    assert_eq!(collection.stats().unwrap().chunks, 21);
}

/// Version `version` of document `d` in the killed-ingest test: its chunk count and texts
/// depend on the version, so a half-written document would show.
fn versioned(d: usize, version: usize) -> (Document, Vec<Chunk>, Vec<Vec<f32>>) {
    let count = 3 + (d + version) % 5 * 20;
    let texts: Vec<String> = (0..count).map(|c| format!("doc{d} v{version} #{c}")).collect();
    let mut doc = document(&format!("doc{d}"), &texts.join("\n"));
    doc.metadata.insert("version".into(), json!(version));
    let mut rng = XorShift(1 + (d * 1000 + version) as u64);
    let vectors = (0..count).map(|_| rng.unit_vector(64)).collect();
    (doc, chunks(&texts), vectors)
}

#[test]
fn a_killed_ingest_leaves_every_document_whole() {
    const DOCUMENTS: usize = 6;
    if let Some(dir) = env::var_os(CHILD_DIR) {
        let collection = Collection::open(Path::new(&dir)).unwrap();
        println!("{CHILD_READY}");
        for version in 1.. {
            for d in 0..DOCUMENTS {
                let (doc, chunks, vectors) = versioned(d, version);
                collection.upsert(&doc, &chunks, &vectors).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    {
        let collection = create(dir.path(), 64);
        for d in 0..DOCUMENTS {
            let (doc, chunks, vectors) = versioned(d, 0);
            collection.upsert(&doc, &chunks, &vectors).unwrap();
        }
    }
    // Kills land at random points; several raise the odds that one lands inside a document.
    for grace_ms in [150, 300, 450] {
        kill_child_when_ready(
            "a_killed_ingest_leaves_every_document_whole",
            dir.path(),
            Duration::from_millis(grace_ms),
        );
        assert_every_document_whole(dir.path(), DOCUMENTS);
    }
}

fn assert_every_document_whole(dir: &Path, documents: usize) {
    let collection = Collection::open(dir).unwrap();
    let infos = collection.documents().unwrap();
    assert_eq!(infos.len(), documents);
    let mut expected_texts = Vec::new();
    let mut newest = 0;
    for (d, info) in infos.iter().enumerate() {
        let version = info.metadata["version"].as_u64().unwrap() as usize;
        newest = newest.max(version);
        let (doc, chunks, _) = versioned(d, version);
        assert_eq!((info.content_hash.as_str(), info.chunks), (doc.content_hash.as_str(), chunks.len()));
        expected_texts.extend(chunks.into_iter().map(|chunk| chunk.text));
    }
    assert!(newest > 0, "the child was killed before it wrote anything");
    let everything = collection.search(&XorShift(3).unit_vector(64), usize::MAX, None).unwrap();
    let mut found: Vec<String> = everything.into_iter().map(|hit| hit.text).collect();
    found.sort();
    expected_texts.sort();
    assert_eq!(found, expected_texts);
}
