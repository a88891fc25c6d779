//! Keyword search (BM25, analyzers), metadata filters and the HNSW graph, through the public API.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use lore_core::{Chunk, ChunkConfig, Document, Filter, Hit, Metadata, Section};
use lore_index::{
    Analyzer, AnnMode, AnnSettings, Collection, KeywordSettings, SearchSettings, Store, VectorIndex, VectorMemory,
};
use serde_json::json;

fn create(dir: &Path, dimension: usize, settings: SearchSettings) -> Collection {
    let collection = Collection::create(dir, "test-embedder", dimension, ChunkConfig::Whole).unwrap();
    collection.configure(settings).unwrap();
    collection
}

fn with_analyzer(analyzer: Analyzer) -> SearchSettings {
    SearchSettings { keyword: KeywordSettings { analyzer, ..KeywordSettings::default() }, ..SearchSettings::default() }
}

/// Adds a one-chunk document; its vector is `[1, 0, ...]` unless given.
fn add_text(collection: &mut Collection, source: &str, text: &str) {
    let dimension = collection.manifest().dimension;
    let mut vector = vec![0.0; dimension];
    vector[0] = 1.0;
    add(collection, source, text, Metadata::new(), vector);
}

fn add(collection: &mut Collection, source: &str, text: &str, metadata: Metadata, vector: Vec<f32>) {
    let mut doc = Document::new(source, vec![Section::new(vec![], text)]);
    doc.metadata = metadata;
    let chunks = [Chunk { text: text.into(), ordinal: 0, metadata: Metadata::new() }];
    collection.upsert(&doc, &chunks, &[vector]).unwrap();
}

fn sources(hits: &[Hit]) -> Vec<&str> {
    hits.iter().map(|hit| hit.source.as_str()).collect()
}

fn keyword_sources(collection: &Collection, query: &str) -> Vec<String> {
    collection.search_keyword(query, 10, None).unwrap().into_iter().map(|hit| hit.source).collect()
}

fn toy_corpus(dir: &Path) -> Collection {
    let mut collection = create(dir, 2, with_analyzer(Analyzer::English));
    add_text(&mut collection, "d1", "The cat sat on the mat");
    add_text(&mut collection, "d2", "Cat, cat, dog!");
    add_text(&mut collection, "d3", "A dog barked at the mailman");
    add_text(&mut collection, "d4", "Birds sing");
    collection
}

#[test]
fn bm25_scores_match_the_formula_worked_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let collection = toy_corpus(dir.path());
    // Terms after the English analyzer (stop words the/on/a/at dropped, stems):
    //   d1 [cat sat mat], d2 [cat cat dog], d3 [dog bark mailman], d4 [bird sing]
    // N = 4, avgdl = (3 + 3 + 3 + 2) / 4 = 2.75, k1 = 1.2, b = 0.75.
    // "cat" is in 2 chunks: idf = ln(1 + (4 − 2 + 0.5) / (2 + 0.5)) = ln 2 = 0.693147.
    // Length part for |d| = 3: k1 · (1 − b + b · 3 / 2.75) = 1.2 · 1.068182 = 1.281818.
    //   d2 (tf 2): 0.693147 · 2 · 2.2 / (2 + 1.281818) = 0.693147 · 1.340720 = 0.929316
    //   d1 (tf 1): 0.693147 · 1 · 2.2 / (1 + 1.281818) = 0.693147 · 0.964143 = 0.668293
    let hits = collection.search_keyword("cat", 10, None).unwrap();
    assert_eq!(sources(&hits), ["d2", "d1"]);
    assert!((hits[0].score - 0.929316).abs() < 1e-4, "{}", hits[0].score);
    assert!((hits[1].score - 0.668293).abs() < 1e-4, "{}", hits[1].score);
    // "dog" has the same idf and counts: d2 gets both terms, d1 and d3 tie at 0.668293 and are
    // ordered by chunk id.
    let hits = collection.search_keyword("dog cat", 10, None).unwrap();
    assert_eq!(sources(&hits), ["d2", "d1", "d3"]);
    assert!((hits[0].score - (0.929316 + 0.668293)).abs() < 1e-4, "{}", hits[0].score);
    assert_eq!(hits[1].score, hits[2].score);
    // A repeated query term counts twice, as in Lucene.
    let twice = collection.search_keyword("cat cat", 1, None).unwrap();
    assert!((twice[0].score - 2.0 * 0.929316).abs() < 1e-4);
}

#[test]
fn bm25_k1_and_b_are_settings() {
    let dir = tempfile::tempdir().unwrap();
    let collection = toy_corpus(dir.path());
    let mut settings = collection.manifest().search.clone();
    settings.keyword.k1 = 0.0;
    collection.configure(settings.clone()).unwrap();
    // k1 = 0: term frequency and length no longer count, every match scores its idf.
    let hits = collection.search_keyword("cat", 10, None).unwrap();
    assert!(hits.iter().all(|hit| (hit.score - 2f32.ln()).abs() < 1e-5), "{hits:?}");
    settings.keyword.b = 1.5;
    let refused = collection.configure(settings).unwrap_err().to_string();
    assert!(refused.contains("b = 1.5"), "{refused}");
    // Kept in the store: a reopened handle scores the same way.
    let reopened = Collection::open(dir.path()).unwrap();
    assert_eq!(reopened.manifest().search.keyword.k1, 0.0);
}

#[test]
fn english_analysis_stems_and_drops_stop_words() {
    let dir = tempfile::tempdir().unwrap();
    let mut collection = create(dir.path(), 2, with_analyzer(Analyzer::English));
    add_text(&mut collection, "runs", "She runs every morning.");
    add_text(&mut collection, "walk", "He walked to the store and then to the river.");
    assert_eq!(keyword_sources(&collection, "running"), ["runs"]);
    assert_eq!(keyword_sources(&collection, "Walking"), ["walk"]);
    // Only stop words: no term, no hit (rather than every chunk).
    assert!(keyword_sources(&collection, "the and to").is_empty());
    let with_stop_words = collection.search_keyword("the river", 10, None).unwrap();
    let without = collection.search_keyword("river", 10, None).unwrap();
    assert_eq!(with_stop_words, without);
}

#[test]
fn any_user_text_is_a_query() {
    let dir = tempfile::tempdir().unwrap();
    let collection = toy_corpus(dir.path());
    for query in ["\"cat", "cat AND (dog", "title:cat", "cat^2 -dog ~ *", "", "   ", "((", "NOT", "a:b:c\\"] {
        let hits = collection.search_keyword(query, 10, None).unwrap();
        assert!(hits.iter().all(|hit| ["d1", "d2", "d3"].contains(&hit.source.as_str())), "{query}");
    }
    assert_eq!(keyword_sources(&collection, "title:cat"), ["d2", "d1"]);
}

/// Character-level matching would find `上下文长度` in any text holding those five characters;
/// word segmentation finds the text that holds the words.
#[test]
fn chinese_word_segmentation_matches_words_not_characters() {
    let words = "上下文的长度"; // 上下文 / 的 / 长度
    let characters = "上文说下载的文件很长，速度也快"; // 上文 下载 文件 长 速度: no query word
    let dir = tempfile::tempdir().unwrap();
    let mut segmented = create(&dir.path().join("words"), 2, SearchSettings::default());
    add_text(&mut segmented, "words", words);
    add_text(&mut segmented, "characters", characters);
    add_text(&mut segmented, "english", "The context length is 32k tokens.");
    assert_eq!(keyword_sources(&segmented, "上下文长度"), ["words"]);
    // Mixed text: the Chinese run is segmented, the English words stemmed.
    assert_eq!(keyword_sources(&segmented, "Qwen3 上下文长度 lengths"), ["words", "english"]);

    // The same texts, one character per term (spaces between characters), as a character-level
    // analyzer would see them: both documents hold all five characters of the query.
    let spaced = |text: &str| text.chars().map(String::from).collect::<Vec<_>>().join(" ");
    let mut by_character = create(&dir.path().join("chars"), 2, with_analyzer(Analyzer::English));
    add_text(&mut by_character, "words", &spaced(words));
    add_text(&mut by_character, "characters", &spaced(characters));
    let hits = by_character.search_keyword(&spaced("上下文长度"), 10, None).unwrap();
    assert_eq!(hits.len(), 2, "{hits:?}");
    let score = |source: &str| hits.iter().find(|hit| hit.source == source).unwrap().score;
    assert!(score("characters") > 0.5 * score("words"), "{hits:?}");
}

#[test]
fn a_user_dictionary_keeps_domain_words_whole() {
    let dir = tempfile::tempdir().unwrap();
    let dictionary = dir.path().join("user.dict");
    fs::write(&dictionary, "洛尔引擎 1000 n\n").unwrap();
    let scores = |settings: SearchSettings, name: &str| {
        let mut collection = create(&dir.path().join(name), 2, settings);
        add_text(&mut collection, "whole", "洛尔引擎");
        add_text(&mut collection, "apart", "洛尔的引擎");
        let hits = collection.search_keyword("洛尔引擎", 10, None).unwrap();
        let score = |source: &str| hits.iter().find(|hit| hit.source == source).map_or(0.0, |hit| hit.score);
        (score("whole"), score("apart"))
    };
    let (whole, apart) = scores(SearchSettings::default(), "plain");
    assert!(apart > 0.7 * whole, "without the dictionary both hold the same words: {whole} {apart}");
    let mut settings = SearchSettings::default();
    settings.keyword.user_dictionary = Some(dictionary);
    let (whole, apart) = scores(settings.clone(), "dictionary");
    assert!(apart < 0.6 * whole, "the dictionary word matches only the whole: {whole} {apart}");

    settings.keyword.user_dictionary = Some(dir.path().join("missing.dict"));
    let collection = Collection::open(&dir.path().join("plain")).unwrap();
    let refused = collection.configure(settings).unwrap_err().to_string();
    assert!(refused.contains("missing.dict"), "{refused}");
}

#[test]
fn the_keyword_index_follows_writes_and_is_rebuilt_when_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut collection = toy_corpus(dir.path());
    assert_eq!(keyword_sources(&collection, "cat"), ["d2", "d1"]);
    add_text(&mut collection, "d1", "A parrot on the perch");
    assert_eq!(keyword_sources(&collection, "cat"), ["d2"]);
    assert_eq!(keyword_sources(&collection, "parrot"), ["d1"]);
    collection.delete_document("d2").unwrap();
    assert!(keyword_sources(&collection, "cat").is_empty());

    // Another handle (another process, say) writes; this one sees it at its next search.
    let mut other = Collection::open(dir.path()).unwrap();
    add_text(&mut other, "d5", "Cats chase parrots");
    // Same term frequency, and d1 is the shorter chunk.
    assert_eq!(keyword_sources(&collection, "parrot"), ["d1", "d5"]);
    let before: Vec<Vec<Hit>> =
        ["parrot", "dog", "bird cat"].iter().map(|q| collection.search_keyword(q, 10, None).unwrap()).collect();
    drop((collection, other));

    // The folder is derived data: deleted (or damaged), it is rebuilt from the store.
    fs::remove_dir_all(dir.path().join("keyword")).unwrap();
    let reopened = Collection::open(dir.path()).unwrap();
    let after: Vec<Vec<Hit>> =
        ["parrot", "dog", "bird cat"].iter().map(|q| reopened.search_keyword(q, 10, None).unwrap()).collect();
    assert_eq!(after, before);
    drop(reopened);
    fs::write(dir.path().join("keyword/meta.json"), "{ not json").unwrap();
    let reopened = Collection::open(dir.path()).unwrap();
    assert_eq!(reopened.search_keyword("parrot", 10, None).unwrap(), before[0]);
}

/// 200 documents with metadata; vector i points at angle i, so similarities are all distinct.
fn filtered_corpus(dir: &Path, settings: SearchSettings) -> Collection {
    let mut collection = create(dir, 2, settings);
    for i in 0..200 {
        let metadata: Metadata = serde_json::from_value(json!({
            "group": i % 20,
            "year": 2000 + i % 25,
            "tags": if i % 7 == 0 { json!(["rare", "x"]) } else { json!(["common"]) },
        }))
        .unwrap();
        let angle = i as f32 * 0.007;
        let folder = if i % 2 == 0 { "even" } else { "odd" };
        let text = format!("shared words {}", "filler ".repeat(i % 5));
        add(&mut collection, &format!("{folder}/doc{i:03}"), &text, metadata, vec![angle.cos(), angle.sin()]);
    }
    collection
}

/// The first k hits of an unfiltered search that pass `filter`: what a filtered search must return.
fn expected(all: &[Hit], filter: &Filter, k: usize) -> Vec<i64> {
    all.iter().filter(|hit| filter.matches(&hit.metadata)).take(k).map(|hit| hit.chunk_id).collect()
}

fn ids(hits: &[Hit]) -> Vec<i64> {
    hits.iter().map(|hit| hit.chunk_id).collect()
}

#[test]
fn filters_apply_inside_both_searches() {
    let dir = tempfile::tempdir().unwrap();
    let collection = filtered_corpus(dir.path(), SearchSettings::default());
    let query = [1.0, 0.0];
    let all_dense = collection.search(&query, usize::MAX, None).unwrap();
    let all_keyword = collection.search_keyword("shared filler", usize::MAX, None).unwrap();
    assert_eq!((all_dense.len(), all_keyword.len()), (200, 200));
    let filters = [
        Filter::equals("group", 3),                                        // 10 of 200
        Filter::equals("group", 3.0),                                      // numbers by value
        Filter::source_prefix("odd/").and(Filter::equals("tags", "rare")), // arrays: any element
        Filter::range("year", Some(2010.0), Some(2012.0)),
        Filter::one_of("group", [json!(1), json!(2)]),
        Filter::source("even/doc004"),
        Filter::equals("ordinal", 0).and(Filter::range("year", None, Some(2001.0))),
        Filter::equals("missing", 1),
        (!Filter::source_prefix("odd/")).and(!Filter::equals("missing", 1)),
    ];
    for filter in &filters {
        let matching = all_dense.iter().filter(|hit| filter.matches(&hit.metadata)).count();
        for k in [1, 5, 1000] {
            let dense = collection.search(&query, k, Some(filter)).unwrap();
            assert_eq!(ids(&dense), expected(&all_dense, filter, k), "{filter:?} k={k}");
            assert_eq!(dense.len(), k.min(matching), "{filter:?} k={k}");
            let keyword = collection.search_keyword("shared filler", k, Some(filter)).unwrap();
            assert_eq!(ids(&keyword), expected(&all_keyword, filter, k), "{filter:?} k={k}");
        }
    }
    assert_eq!(collection.search(&query, 5, Some(&Filter::equals("group", 3))).unwrap().len(), 5);
    assert!(collection.search(&query, 5, Some(&Filter::equals("missing", 1))).unwrap().is_empty());
}

#[test]
fn filters_see_writes_and_chunk_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let mut collection = create(dir.path(), 2, SearchSettings::default());
    let mut doc = Document::new("manual.pdf", vec![Section::new(vec![], "one two")]);
    doc.metadata.insert("page".into(), json!(1));
    let mut chunks: Vec<Chunk> = ["intro text", "later text"]
        .iter()
        .enumerate()
        .map(|(ordinal, text)| Chunk { text: text.to_string(), ordinal, metadata: Metadata::new() })
        .collect();
    chunks[1].metadata.insert("page".into(), json!(9));
    collection.upsert(&doc, &chunks, &[vec![1.0, 0.0], vec![0.0, 1.0]]).unwrap();
    let page_9 = Filter::equals("page", 9);
    let texts = |hits: Vec<Hit>| hits.into_iter().map(|hit| hit.text).collect::<Vec<_>>();
    // The chunk's page overrides the document's, as in the hit's metadata.
    assert_eq!(texts(collection.search(&[1.0, 0.0], 5, Some(&page_9)).unwrap()), ["later text"]);
    assert_eq!(texts(collection.search_keyword("text", 5, Some(&page_9)).unwrap()), ["later text"]);
    // The same filter after a write sees the new chunks (its cached result is dropped).
    add(&mut collection, "other.pdf", "more text", [("page".to_string(), json!(9))].into(), vec![0.6, 0.8]);
    assert_eq!(texts(collection.search_keyword("text", 5, Some(&page_9)).unwrap()), ["later text", "more text"]);
    assert_eq!(collection.search(&[1.0, 0.0], 5, Some(&page_9)).unwrap().len(), 2);
}

#[test]
fn document_groups_are_a_filter_inside_every_search() {
    for mode in [AnnMode::Off, AnnMode::On] {
        let dir = tempfile::tempdir().unwrap();
        let settings =
            SearchSettings { ann: AnnSettings { mode, ..AnnSettings::default() }, ..SearchSettings::default() };
        let mut collection = create(dir.path(), 2, settings);
        for i in 0..60 {
            let groups = match i % 3 {
                0 => json!(null),
                1 => json!(["hr"]),
                _ => json!(["legal", "board"]),
            };
            let metadata: Metadata =
                [("groups".to_string(), groups)].into_iter().filter(|(_, g)| !g.is_null()).collect();
            let angle = i as f32 * 0.01;
            add(
                &mut collection,
                &format!("doc{i:02}"),
                "salary review notes",
                metadata,
                vec![angle.cos(), angle.sin()],
            );
        }
        // A chunk's own `groups` never overrides its document's.
        let doc = Document::new("sneaky", vec![Section::new(vec![], "salary review notes")]);
        let mut metadata = Metadata::new();
        metadata.insert("groups".into(), json!([]));
        let chunk = Chunk { text: "salary review notes".into(), ordinal: 0, metadata };
        let mut doc = doc;
        doc.metadata.insert("groups".into(), json!(["hr"]));
        collection.upsert(&doc, &[chunk], &[vec![1.0, 0.0]]).unwrap();

        let everyone = Filter::readable_by(Vec::<String>::new());
        let hr = Filter::readable_by(["hr"]);
        let board = Filter::readable_by(["board", "nobody"]);
        for (filter, allowed) in [(&everyone, vec![0]), (&hr, vec![0, 1]), (&board, vec![0, 2])] {
            let dense = collection.search(&[1.0, 0.0], 10, Some(filter)).unwrap();
            let keyword = collection.search_keyword("salary", 10, Some(filter)).unwrap();
            for hits in [&dense, &keyword] {
                assert_eq!(hits.len(), 10, "{mode:?} {filter:?}: top k stays k");
                for hit in hits.iter() {
                    let visible = match hit.source.as_str() {
                        "sneaky" => allowed.contains(&1),
                        source => allowed.contains(&(source[3..].parse::<usize>().unwrap() % 3)),
                    };
                    assert!(visible, "{mode:?} {filter:?} returned {}", hit.source);
                }
            }
        }
        let sneaky =
            collection.search(&[1.0, 0.0], 60, None).unwrap().into_iter().find(|h| h.source == "sneaky").unwrap();
        assert_eq!(sneaky.metadata["groups"], json!(["hr"]));
    }
}

/// Vectors in clusters, as embeddings of a corpus are: 40 random centres, each vector a centre
/// plus noise, all unit length.
fn clustered_vectors(count: usize, dimension: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut state = seed;
    let mut gaussian = move || {
        let mut uniform = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        let (u, v) = (uniform(), uniform());
        ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
    };
    let centres: Vec<Vec<f32>> = (0..40).map(|_| (0..dimension).map(|_| gaussian()).collect()).collect();
    (0..count)
        .map(|i| {
            let raw: Vec<f32> = centres[i % centres.len()].iter().map(|c| c + 0.8 * gaussian()).collect();
            let norm = raw.iter().map(|x| x * x).sum::<f32>().sqrt();
            raw.iter().map(|x| x / norm).collect()
        })
        .collect()
}

fn vector_collection(dir: &Path, vectors: &[Vec<f32>], mode: AnnMode) -> Collection {
    let mut settings = SearchSettings::default();
    settings.ann.mode = mode;
    let collection = create(dir, vectors[0].len(), settings);
    for (d, part) in vectors.chunks(50).enumerate() {
        let chunks: Vec<Chunk> = (0..part.len())
            .map(|ordinal| Chunk { text: format!("{d}/{ordinal}"), ordinal, metadata: Metadata::new() })
            .collect();
        let doc = Document::new(format!("doc{d:03}"), vec![Section::new(vec![], format!("{d}"))]);
        collection.upsert(&doc, &chunks, part).unwrap();
    }
    collection
}

fn recall(graph: &Collection, exact: &Collection, queries: &[Vec<f32>], k: usize) -> f64 {
    let mut found = 0;
    for query in queries {
        let truth: BTreeSet<i64> = ids(&exact.search(query, k, None).unwrap()).into_iter().collect();
        let approximate = graph.search(query, k, None).unwrap();
        assert_eq!(approximate.len(), k);
        found += approximate.iter().filter(|hit| truth.contains(&hit.chunk_id)).count();
    }
    found as f64 / (k * queries.len()) as f64
}

#[test]
fn hnsw_recall_against_exact_search() {
    let vectors = clustered_vectors(4000, 48, 11);
    let queries = clustered_vectors(100, 48, 12);
    let dir = tempfile::tempdir().unwrap();
    let graph = vector_collection(&dir.path().join("graph"), &vectors, AnnMode::On);
    let exact = vector_collection(&dir.path().join("exact"), &vectors, AnnMode::Off);
    let at_default_ef = recall(&graph, &exact, &queries, 10);
    assert!(at_default_ef >= 0.95, "recall@10 {at_default_ef}");
    // The graph is what answers: with ef 1 the walk stops early and misses neighbours.
    let narrow = Collection::open(&dir.path().join("graph")).unwrap();
    let mut settings = narrow.manifest().search.clone();
    settings.ann.ef_search = 1;
    settings.ann.m = 2;
    narrow.configure(settings).unwrap();
    let at_ef_1 = recall(&narrow, &exact, &queries, 10);
    assert!(at_ef_1 < at_default_ef - 0.05, "ef 1: {at_ef_1}, default: {at_default_ef}");
    // Below `min_vectors`, `auto` searches exactly.
    let auto = vector_collection(&dir.path().join("auto"), &vectors[..500], AnnMode::Auto);
    let small_exact = vector_collection(&dir.path().join("small"), &vectors[..500], AnnMode::Off);
    assert_eq!(recall(&auto, &small_exact, &queries, 10), 1.0);
    assert!(!dir.path().join("auto/dense.hnsw").exists());
}

/// Codes only in memory: searches still return the exact top k with exact scores (the codes'
/// best candidates are rescored from the store), the graph file holds a fifth of the bytes per
/// row, it is read back after reopening, and switching back to f32 rows reads them again.
#[test]
fn int8_vectors_rescore_from_the_store() {
    let vectors = clustered_vectors(2000, 96, 41);
    let queries = clustered_vectors(60, 96, 42);
    let dir = tempfile::tempdir().unwrap();
    let exact = vector_collection(&dir.path().join("exact"), &vectors, AnnMode::Off);
    vector_collection(&dir.path().join("f32"), &vectors, AnnMode::On).search(&queries[0], 1, None).unwrap();
    let int8_dir = dir.path().join("int8");
    let int8 = vector_collection(&int8_dir, &vectors, AnnMode::On);
    let mut settings = int8.manifest().search.clone();
    settings.ann.vectors = VectorMemory::Int8;
    int8.configure(settings.clone()).unwrap();
    let scan_dir = dir.path().join("scan");
    let scan = vector_collection(&scan_dir, &vectors, AnnMode::Off);
    scan.configure(SearchSettings { ann: AnnSettings { mode: AnnMode::Off, ..settings.ann.clone() }, ..settings })
        .unwrap();

    assert!(recall(&int8, &exact, &queries, 10) >= 0.95);
    for query in &queries {
        let truth = exact.search(query, 10, None).unwrap();
        // Without a graph the codes rank every row and the store scores their best 40.
        let scanned = scan.search(query, 10, None).unwrap();
        assert_eq!(ids(&scanned), ids(&truth));
        for hit in int8.search(query, 10, None).unwrap().iter().chain(&scanned) {
            let stored = exact.vectors(&[hit.chunk_id]).unwrap().remove(0).unwrap();
            let similarity: f32 = stored.iter().zip(query).map(|(a, b)| a * b).sum();
            assert!((hit.score - similarity).abs() < 1e-5, "scores are exact: {} vs {similarity}", hit.score);
        }
    }
    let size = |dir: &Path| std::fs::metadata(dir.join("dense.hnsw")).unwrap().len() as f64;
    let (f32_size, int8_size) = (size(&dir.path().join("f32")), size(&int8_dir));
    // Per row: links (about 130 bytes) plus 4 × 96 bytes of f32, against 96 + 4 of code.
    assert!(int8_size < f32_size * 0.55, "dense.hnsw: int8 {int8_size} bytes, f32 {f32_size}");

    drop(int8);
    let reopened = Collection::open(&int8_dir).unwrap();
    let modified = std::fs::metadata(int8_dir.join("dense.hnsw")).unwrap().modified().unwrap();
    assert!(recall(&reopened, &exact, &queries, 10) >= 0.95);
    assert_eq!(
        std::fs::metadata(int8_dir.join("dense.hnsw")).unwrap().modified().unwrap(),
        modified,
        "read, not rebuilt"
    );
    let mut settings = reopened.manifest().search.clone();
    settings.ann.vectors = VectorMemory::F32;
    reopened.configure(settings).unwrap();
    assert!(recall(&reopened, &exact, &queries, 10) >= 0.95);
    drop(reopened);
    assert!(size(&int8_dir) > f32_size * 0.9, "rows in f32 again");
}

/// The graph is built in parallel batches whose sizes depend on the graph alone: one core or
/// several, the same links, so the same answers; and the walk over 8-bit codes, once its finds
/// are rescored, agrees with exact search.
#[test]
fn a_vector_index_is_the_same_on_one_core_or_many_and_close_to_exact() {
    let vectors = clustered_vectors(3000, 40, 31);
    let queries = clustered_vectors(60, 40, 32);
    let rows = || vectors.iter().cloned().enumerate().map(|(row, v)| (row as i64 * 3, v));
    let graph = AnnSettings { mode: AnnMode::On, ..AnnSettings::default() };
    let build_on = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        pool.install(|| VectorIndex::build(40, &graph, rows()).unwrap())
    };
    let (one, many) = (build_on(1), build_on(4));
    let exact = VectorIndex::build(40, &AnnSettings { mode: AnnMode::Off, ..graph.clone() }, rows()).unwrap();
    assert_eq!(one.len(), 3000);
    let mut found = 0;
    for query in &queries {
        let truth = exact.search(query, 10).unwrap();
        let approximate = one.search(query, 10).unwrap();
        assert_eq!(many.search(query, 10).unwrap(), approximate);
        for (id, similarity) in &approximate {
            // Scores are exact similarities, not the codes' approximations.
            let expected = truth.iter().find(|(t, _)| t == id).map_or_else(
                || {
                    let v = &vectors[*id as usize / 3];
                    let norm = query.iter().map(|x| x * x).sum::<f32>().sqrt();
                    v.iter().zip(query).map(|(a, b)| a * b).sum::<f32>() / norm
                },
                |(_, s)| *s,
            );
            assert!((similarity - expected).abs() < 1e-5, "{similarity} vs {expected}");
            found += usize::from(truth.iter().any(|(t, _)| t == id));
        }
    }
    let recall = found as f64 / (10 * queries.len()) as f64;
    assert!(recall >= 0.95, "recall@10 {recall}");
    // Ids must ascend, as chunk ids do.
    let backwards = VectorIndex::build(2, &graph, [(5, vec![1.0, 0.0]), (2, vec![0.0, 1.0])]);
    assert!(backwards.is_err_and(|e| e.to_string().contains("ascending id order")));
}

#[test]
fn hnsw_survives_reopening_deletes_filters_and_a_damaged_file() {
    let vectors = clustered_vectors(3000, 32, 21);
    let queries = clustered_vectors(50, 32, 22);
    let dir = tempfile::tempdir().unwrap();
    let graph_dir = dir.path().join("graph");
    let mut graph = vector_collection(&graph_dir, &vectors, AnnMode::On);
    let mut exact = vector_collection(&dir.path().join("exact"), &vectors, AnnMode::Off);
    let before: Vec<Vec<Hit>> = queries.iter().map(|q| graph.search(q, 10, None).unwrap()).collect();
    assert!(graph_dir.join("dense.hnsw").exists(), "the built graph is saved");
    let reopened = Collection::open(&graph_dir).unwrap();
    let after: Vec<Vec<Hit>> = queries.iter().map(|q| reopened.search(q, 10, None).unwrap()).collect();
    assert_eq!(after, before);
    drop(reopened);

    // Deletes: a tenth of the documents (dead nodes stay as waypoints), then a third (the
    // graph is rebuilt without them). Deleted chunks never come back; recall holds.
    for (round, every) in [(0, 10), (1, 3)] {
        for d in (round..60).step_by(every) {
            for collection in [&mut graph, &mut exact] {
                collection.delete_document(&format!("doc{d:03}")).unwrap();
            }
        }
        let live: BTreeSet<String> = graph.documents().unwrap().into_iter().map(|info| info.source).collect();
        for query in &queries {
            assert!(graph.search(query, 10, None).unwrap().iter().all(|hit| live.contains(&hit.source)));
        }
        let r = recall(&graph, &exact, &queries, 10);
        assert!(r >= 0.95, "round {round}: recall@10 {r}");
    }

    // A selective filter (under 2 % of the chunks) still gives k hits: searched exactly.
    let filter = Filter::source("doc059");
    for query in &queries[..5] {
        let filtered = graph.search(query, 10, Some(&filter)).unwrap();
        assert_eq!(ids(&filtered), ids(&exact.search(query, 10, Some(&filter)).unwrap()));
    }

    // A filter passing about a sixth of the chunks is applied inside the graph walk.
    let filter = Filter::source_prefix("doc02");
    let mut found = 0;
    for query in &queries {
        let truth: BTreeSet<i64> = ids(&exact.search(query, 10, Some(&filter)).unwrap()).into_iter().collect();
        let filtered = graph.search(query, 10, Some(&filter)).unwrap();
        assert_eq!(filtered.len(), 10);
        assert!(filtered.iter().all(|hit| hit.source.starts_with("doc02")));
        found += filtered.iter().filter(|hit| truth.contains(&hit.chunk_id)).count();
    }
    let filtered_recall = found as f64 / (10 * queries.len()) as f64;
    assert!(filtered_recall >= 0.95, "filtered recall@10 {filtered_recall}");

    // A damaged graph file is rebuilt, not trusted (and never crashes the process).
    let results: Vec<Vec<Hit>> = queries.iter().map(|q| graph.search(q, 10, None).unwrap()).collect();
    drop(graph);
    let file = graph_dir.join("dense.hnsw");
    let mut bytes = fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xFF;
    fs::write(&file, &bytes).unwrap();
    let repaired = Collection::open(&graph_dir).unwrap();
    let again: Vec<Vec<Hit>> = queries.iter().map(|q| repaired.search(q, 10, None).unwrap()).collect();
    assert_eq!(again, results);
    fs::write(&file, b"LOREHNSW").unwrap();
    assert_eq!(Collection::open(&graph_dir).unwrap().search(&queries[0], 10, None).unwrap(), results[0]);
}
