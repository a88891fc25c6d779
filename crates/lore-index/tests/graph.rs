//! The entity graph of an embedded collection: extracted when turned on and on every write,
//! updated document by document, and walked by the graph retriever.

use lore_core::{
    Chunk, ChunkConfig, Document, EmbedKind, Embedder, Filter, GROUPS_FIELD, GraphExtractor, LinkQuery, Metadata,
    Retriever, RetrieverQuery, SearchSettings, Section, Store,
};
use lore_graph::{GraphRetriever, PATH_FIELD, entity_key};
use lore_index::Collection;
use lore_testkit::WordHash;

/// Two hops: the question names the film, the film's passage names the actress, and the
/// actress's own passage holds the answer without a word of the question.
const PASSAGES: [(&str, &str, &str); 5] = [
    (
        "kiss-and-tell",
        "Kiss and Tell (1945 film)",
        "Kiss and Tell is a 1945 American comedy film starring then 17-year-old Shirley Temple as Corliss Archer.",
    ),
    (
        "shirley-temple",
        "Shirley Temple",
        "Shirley Temple Black was an actress, singer and dancer who later served as Chief of Protocol of the United States.",
    ),
    (
        "meet-corliss",
        "Meet Corliss Archer",
        "Meet Corliss Archer is a radio sitcom; Corliss Archer, a teenage girl, was voiced by Janet Waldo.",
    ),
    ("janet-waldo", "Janet Waldo", "Janet Waldo was a voice actress, later the voice of Judy Jetson."),
    ("tea", "Green tea", "Green tea is made from leaves that have not been withered and oxidised."),
];

fn document(source: &str, title: &str, text: &str) -> (Document, Vec<Chunk>, Vec<Vec<f32>>) {
    let mut doc = Document::new(source, vec![Section::new(vec![], text)]);
    doc.title = Some(title.to_string());
    if source == "kiss-and-tell" {
        doc.metadata.insert(GROUPS_FIELD.into(), serde_json::json!(["film-club"]));
    }
    let chunk = Chunk { text: text.to_string(), ordinal: 0, metadata: Metadata::new() };
    let vectors = WordHash.embed(&[text], EmbedKind::Passage).unwrap();
    (doc, vec![chunk], vectors)
}

fn collection(dir: &std::path::Path) -> Collection {
    let collection = Collection::create(dir, WordHash.id(), WordHash.dimension(), ChunkConfig::Whole).unwrap();
    for (source, title, text) in PASSAGES {
        let (doc, chunks, vectors) = document(source, title, text);
        collection.upsert(&doc, &chunks, &vectors).unwrap();
    }
    collection
}

fn with_graph(collection: &Collection, extractor: GraphExtractor) {
    let mut settings: SearchSettings = collection.manifest().search;
    settings.graph.extractor = extractor;
    collection.configure(settings).unwrap();
}

fn graph_search(store: &dyn Store, question: &str, filter: Option<&Filter>) -> Vec<lore_core::Hit> {
    GraphRetriever::new(store).retrieve(RetrieverQuery { text: question, vector: None }, 10, filter).unwrap()
}

const QUESTION: &str = "What government position was held by the woman who portrayed Corliss Archer in Kiss and Tell?";

#[test]
fn the_graph_reaches_the_bridge_passage_two_hops_out() {
    let dir = tempfile::tempdir().unwrap();
    let collection = collection(dir.path());
    // Off by default: graph retrieval says how to turn it on.
    let error = GraphRetriever::new(&collection)
        .retrieve(RetrieverQuery { text: QUESTION, vector: None }, 10, None)
        .unwrap_err();
    assert!(error.to_string().contains("graph.extractor=names"), "{error}");

    // Turning it on extracts the entities of the chunks already stored.
    with_graph(&collection, GraphExtractor::Names);
    let stats = collection.stats().unwrap();
    assert!(stats.entities >= 6 && stats.links >= stats.entities, "{stats:?}");

    let hits = graph_search(&collection, QUESTION, None);
    let sources: Vec<&str> = hits.iter().map(|h| h.source.as_str()).collect();
    assert_eq!(sources[0], "kiss-and-tell", "{sources:?}");
    let bridge = hits.iter().find(|h| h.source == "shirley-temple").expect("the bridge passage");
    let path = bridge.metadata[PATH_FIELD].as_str().unwrap();
    assert_eq!(
        path,
        format!("\"kiss and tell\" → about it → chunk {} names \"shirley temple\" → about it", hits[0].chunk_id)
    );
    // Passages that only name the question's entities are BM25's to find, not the graph's.
    assert!(!sources.contains(&"meet-corliss") && !sources.contains(&"tea"), "{sources:?}");

    // Only chunks passing the filter are returned or followed: a reader outside the film club
    // reaches the radio show's voice actress through the show (one of BM25's hits), but neither
    // the film nor the actress it names.
    let outsider = Filter::readable_by(["staff"]);
    let hits = graph_search(&collection, QUESTION, Some(&outsider));
    let sources: Vec<&str> = hits.iter().map(|h| h.source.as_str()).collect();
    assert_eq!(sources, ["janet-waldo"]);
    assert!(hits[0].metadata[PATH_FIELD].as_str().unwrap().starts_with("BM25 #1 → chunk"), "{hits:?}");
}

#[test]
fn deleting_a_document_removes_what_only_it_contributed() {
    let dir = tempfile::tempdir().unwrap();
    let collection = collection(dir.path());
    with_graph(&collection, GraphExtractor::Names);
    let key = |name: &str| vec![entity_key(name)];
    let film_chunk = graph_search(&collection, QUESTION, None)[0].chunk_id;
    let corliss = collection.entities(&key("Corliss Archer")).unwrap();
    assert_eq!(corliss[0].chunks, 2, "named by the film and the radio show: {corliss:?}");

    assert!(collection.delete_document("kiss-and-tell").unwrap());
    // Its own entity is gone; one another document names stays, with one chunk fewer.
    assert!(collection.entities(&key("Kiss and Tell")).unwrap().is_empty());
    assert_eq!(collection.entities(&key("Corliss Archer")).unwrap()[0].chunks, 1);
    assert!(collection.links(LinkQuery::Chunks(&[film_chunk])).unwrap().is_empty());
    for question in [QUESTION, "Kiss and Tell", "Shirley Temple Corliss Archer"] {
        assert!(graph_search(&collection, question, None).iter().all(|h| h.chunk_id != film_chunk));
    }

    // A replaced document's entities are its new text's; the reopened collection agrees.
    let (doc, chunks, vectors) = document("tea", "Green tea", "Matcha is ground green tea from Uji in Japan.");
    collection.upsert(&doc, &chunks, &vectors).unwrap();
    drop(collection);
    let reopened = Collection::open(dir.path()).unwrap();
    assert_eq!(reopened.entities(&key("Uji")).unwrap().len(), 1);
    assert_eq!(reopened.entities(&key("Japan")).unwrap()[0].chunks, 1);

    // Turned off, the graph is emptied and graph retrieval refuses again.
    with_graph(&reopened, GraphExtractor::Off);
    let stats = reopened.stats().unwrap();
    assert_eq!((stats.entities, stats.links), (0, 0));
    assert!(reopened.entities(&key("Uji")).is_err());
}
