//! The PostgreSQL collection against the embedded one: the same documents give the same BM25
//! ranking and scores, the same dense hits, and filters (document groups included) apply
//! inside both searches. Needs a server: `LORE_TEST_PG=$(scripts/pg start)`.

use lore_core::{Chunk, ChunkConfig, Document, Filter, Metadata, Retriever, Section, Store};
use lore_graph::entity_key;
use lore_index::Collection;
use lore_pg::PgCollection;
use serde_json::json;

fn url() -> String {
    std::env::var("LORE_TEST_PG").expect("LORE_TEST_PG is the URL of a PostgreSQL with pgvector: scripts/pg start")
}

fn fresh(name: &str, dimension: usize) -> PgCollection {
    let _ = PgCollection::delete(&url(), name);
    PgCollection::create(&url(), name, "test-embedder", dimension, ChunkConfig::Whole).unwrap()
}

const TEXTS: [&str; 8] = [
    "Rust is a systems programming language focused on safety.",
    "SQLite is a small, fast, self-contained SQL database engine.",
    "PostgreSQL is an advanced open source relational database.",
    "The borrow checker enforces Rust's ownership rules at compile time.",
    "pgvector adds vector similarity search to PostgreSQL.",
    "Databases store data; search engines rank documents by relevance.",
    "BM25 ranks documents by term frequency and inverse document frequency.",
    "向量数据库支持相似度搜索，全文检索使用倒排索引。",
];

fn fill(store: &dyn Store) {
    for (i, text) in TEXTS.iter().enumerate() {
        let mut doc = Document::new(format!("doc{i}"), vec![Section::new(vec![], *text)]);
        doc.metadata.insert("year".into(), json!(2018 + i));
        if i % 3 == 1 {
            doc.metadata.insert("groups".into(), json!(["hr"]));
        }
        let angle = i as f32 * 0.3;
        let chunk = Chunk { text: text.to_string(), ordinal: 0, metadata: Metadata::new() };
        store.upsert(&doc, &[chunk], &[vec![angle.cos(), angle.sin(), 0.1]]).unwrap();
    }
}

fn ranked(hits: Vec<lore_core::Hit>) -> Vec<(String, f32)> {
    hits.into_iter().map(|h| (h.source, h.score)).collect()
}

#[test]
fn postgres_ranks_as_the_embedded_collection() {
    let pg = fresh("ranks-alike", 3);
    let dir = tempfile::tempdir().unwrap();
    let embedded = Collection::create(dir.path(), "test-embedder", 3, ChunkConfig::Whole).unwrap();
    fill(&pg);
    fill(&embedded);
    let filters = [
        None,
        Some(Filter::range("year", Some(2020.0), None)),
        Some(Filter::readable_by(Vec::<String>::new())),
        Some(Filter::readable_by(["hr"]).and(Filter::source_prefix("doc"))),
        Some(Filter::one_of("year", [json!(2019), json!(2022.0)])),
        Some(!Filter::range("year", Some(2020.0), None)),
    ];
    for filter in &filters {
        for query in ["database search", "Rust ownership", "PostgreSQL vector similarity", "向量数据库的相似度搜索"]
        {
            let a = ranked(pg.search_keyword(query, 5, filter.as_ref()).unwrap());
            let b = ranked(embedded.search_keyword(query, 5, filter.as_ref()).unwrap());
            assert_eq!(a.len(), b.len(), "{query} {filter:?}");
            for ((sa, xa), (sb, xb)) in a.iter().zip(&b) {
                assert_eq!(sa, sb, "{query} {filter:?}: {a:?} vs {b:?}");
                assert!((xa - xb).abs() < 1e-4 * xb.abs().max(1.0), "{query}: {xa} vs {xb}");
            }
        }
        let a = ranked(pg.search(&[1.0, 0.2, 0.0], 4, filter.as_ref()).unwrap());
        let b = ranked(embedded.search(&[1.0, 0.2, 0.0], 4, filter.as_ref()).unwrap());
        assert_eq!(
            a.iter().map(|x| &x.0).collect::<Vec<_>>(),
            b.iter().map(|x| &x.0).collect::<Vec<_>>(),
            "{filter:?}"
        );
    }
    let hit = pg.search(&[1.0, 0.0, 0.0], 1, None).unwrap().remove(0);
    assert_eq!(hit.metadata["source"], "doc0");
    assert_eq!(pg.chunk(hit.chunk_id).unwrap().unwrap().text, TEXTS[0]);
    assert_eq!(pg.stats().unwrap().documents, TEXTS.len());
}

#[test]
fn documents_are_replaced_and_deleted_whole() {
    let pg = fresh("whole-documents", 2);
    let doc = Document::new("a.txt", vec![Section::new(vec![], "one")]);
    let chunks: Vec<Chunk> = ["alpha words", "beta words"]
        .iter()
        .enumerate()
        .map(|(ordinal, t)| Chunk { text: t.to_string(), ordinal, metadata: Metadata::new() })
        .collect();
    assert_eq!(pg.upsert(&doc, &chunks, &[vec![1.0, 0.0], vec![0.0, 1.0]]).unwrap(), lore_core::UpsertOutcome::Added);
    assert_eq!(pg.upsert(&doc, &chunks[..1], &[vec![1.0, 0.0]]).unwrap(), lore_core::UpsertOutcome::Replaced);
    assert_eq!(pg.documents().unwrap()[0].chunks, 1);
    assert!(pg.search_keyword("beta", 5, None).unwrap().is_empty());
    assert_eq!(pg.document_hash("a.txt").unwrap(), Some(doc.content_hash.clone()));
    let reopened = PgCollection::open(&url(), None, "whole-documents").unwrap();
    assert_eq!(reopened.search_keyword("alpha", 5, None).unwrap().len(), 1);
    assert!(pg.delete_document("a.txt").unwrap());
    assert!(!pg.delete_document("a.txt").unwrap());
    assert!(reopened.search(&[1.0, 0.0], 5, None).unwrap().is_empty());
    PgCollection::delete(&url(), "whole-documents").unwrap();
    assert_eq!(
        PgCollection::open(&url(), None, "whole-documents").err().unwrap().kind(),
        lore_core::ErrorKind::NotFound
    );
}

/// Titled passages for the graph: a film naming an actress who has a passage of her own.
const TITLED: [(&str, &str, &str); 3] = [
    (
        "film",
        "Kiss and Tell (1945 film)",
        "Kiss and Tell is a 1945 comedy film starring Shirley Temple as Corliss Archer.",
    ),
    ("actress", "Shirley Temple", "Shirley Temple Black served as Chief of Protocol of the United States."),
    ("radio", "Meet Corliss Archer", "Meet Corliss Archer is a radio sitcom about Corliss Archer."),
];

/// pgvector's index lives in the database: the embedded store's memory setting is refused, and
/// the refusal changes nothing.
#[test]
fn int8_vector_memory_is_refused() {
    let pg = fresh("int8-memory", 2);
    let before = pg.manifest().search;
    let mut settings = before.clone();
    settings.ann.vectors = lore_core::VectorMemory::Int8;
    let refused = pg.configure(settings).unwrap_err().to_string();
    assert!(refused.contains("ann.vectors = int8 is for the embedded store"), "{refused}");
    assert_eq!(pg.manifest().search, before);
}

#[test]
fn postgres_keeps_the_same_entity_graph() {
    let pg = fresh("entity-graph", 2);
    let dir = tempfile::tempdir().unwrap();
    let embedded = Collection::create(dir.path(), "test-embedder", 2, ChunkConfig::Whole).unwrap();
    let question = "Which office did the star of Kiss and Tell hold?";
    let graph_hits = |store: &dyn Store| {
        let retriever = lore_graph::GraphRetriever::new(store);
        let hits = retriever.retrieve(lore_core::RetrieverQuery { text: question, vector: None }, 5, None).unwrap();
        hits.into_iter().map(|h| (h.source, h.score, h.metadata[lore_graph::PATH_FIELD].clone())).collect::<Vec<_>>()
    };
    for (i, store) in [&pg as &dyn Store, &embedded].into_iter().enumerate() {
        // One store has the graph on before its documents come, the other after.
        let turn_on = || {
            let mut settings = store.manifest().search;
            settings.graph.extractor = lore_core::GraphExtractor::Llm;
            store.configure(settings).unwrap();
        };
        if i == 0 {
            turn_on();
        }
        for (source, title, text) in TITLED {
            let mut doc = Document::new(source, vec![Section::new(vec![], text)]);
            doc.title = Some(title.into());
            // Entities a model listed (the `llm` extractor) add to the names found in the text.
            let mut metadata = Metadata::new();
            if source == "actress" {
                metadata.insert(lore_graph::ENTITIES_FIELD.into(), serde_json::json!(["United Nations"]));
            }
            let chunk = Chunk { text: text.into(), ordinal: 0, metadata };
            store.upsert(&doc, &[chunk], &[vec![1.0, 0.0]]).unwrap();
        }
        if i == 1 {
            turn_on();
        }
    }
    let hits = graph_hits(&pg);
    assert_eq!(hits.iter().take(2).map(|h| h.0.as_str()).collect::<Vec<_>>(), ["film", "actress"]);
    assert_eq!(
        hits.iter().map(|(source, score, _)| (source, score)).collect::<Vec<_>>(),
        graph_hits(&embedded).iter().map(|(source, score, _)| (source, score)).collect::<Vec<_>>()
    );
    let (pg_stats, embedded_stats) = (pg.stats().unwrap(), embedded.stats().unwrap());
    assert_eq!((pg_stats.entities, pg_stats.links), (embedded_stats.entities, embedded_stats.links));
    for store in [&pg as &dyn Store, &embedded] {
        let listed = store.entities(&[entity_key("United Nations"), entity_key("Shirley Temple Black")]).unwrap();
        let mut names: Vec<&str> = listed.iter().map(|e| e.name.as_str()).collect();
        names.sort();
        assert_eq!(names, ["shirley temple black", "united nations"]);
    }

    // Deleting the film takes its entities and links, and leaves the shared ones.
    assert!(pg.delete_document("film").unwrap());
    let keys = |names: &[&str]| names.iter().map(|n| entity_key(n)).collect::<Vec<_>>();
    let left: Vec<(String, usize)> = pg
        .entities(&keys(&["Kiss and Tell", "Corliss Archer", "Shirley Temple"]))
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.chunks))
        .collect();
    assert_eq!(left, [("corliss archer".to_string(), 1), ("shirley temple".to_string(), 1)]);
    assert!(graph_hits(&pg).iter().all(|h| h.0 != "film"));
    PgCollection::delete(&url(), "entity-graph").unwrap();
}
