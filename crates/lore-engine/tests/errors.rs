//! The error kinds a caller acts on, checked by kind and never by message.

use std::net::TcpListener;

use lore_core::{ChunkConfig, Document, ErrorKind, Section};
use lore_engine::{Engine, SearchRequest, Settings};
use lore_rag::{Source, ingest};
use lore_testkit::WordHash;

fn engine() -> (tempfile::TempDir, Engine) {
    let home = tempfile::tempdir().unwrap();
    let engine = Engine::new(Settings::at(home.path())).unwrap();
    (home, engine)
}

#[test]
fn a_missing_collection_is_not_found() {
    let (_home, engine) = engine();
    let request = SearchRequest { collection: Some("nowhere".into()), ..SearchRequest::default() };
    assert_eq!(engine.session(&request, false).err().unwrap().kind(), ErrorKind::NotFound);
    assert_eq!(engine.catalog().open("nowhere").err().unwrap().kind(), ErrorKind::NotFound);
    assert_eq!(engine.catalog().delete("nowhere").err().unwrap().kind(), ErrorKind::NotFound);
}

#[test]
fn creating_twice_is_already_exists_and_a_hostile_name_is_invalid() {
    let (_home, engine) = engine();
    engine.catalog().create("notes", "word-hash", 64, ChunkConfig::Whole).unwrap();
    let again = engine.catalog().create("notes", "word-hash", 64, ChunkConfig::Whole);
    assert_eq!(again.err().unwrap().kind(), ErrorKind::AlreadyExists);
    for name in ["../escape", "a/b", "", ".hidden", ".."] {
        let err = engine.catalog().create(name, "word-hash", 64, ChunkConfig::Whole).err().unwrap();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{name:?}");
    }
}

#[test]
fn the_wrong_embedder_is_invalid_input() {
    let (_home, engine) = engine();
    // Vectors of the right length, but from another embedder than the collection was built with.
    let store = engine.catalog().create("notes", "another-embedder", 64, ChunkConfig::Whole).unwrap();
    let doc = Document::new("a.txt", vec![Section::new(vec![], "some text")]);
    let err = ingest(
        store.as_ref(),
        &WordHash,
        None,
        &ChunkConfig::Whole,
        &Default::default(),
        vec![Source::Document(doc)],
        &mut |_| {},
    );
    assert_eq!(err.err().unwrap().kind(), ErrorKind::InvalidInput);
    let err = lore_rag::Pipeline::new(store.as_ref(), &WordHash, Default::default()).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[test]
fn a_damaged_store_is_corrupt() {
    let (home, engine) = engine();
    let store = engine.catalog().create("notes", "word-hash", 64, ChunkConfig::Whole).unwrap();
    drop(store);
    let file = home.path().join("collections/notes/store.sqlite");
    std::fs::write(&file, b"this is not a database, whatever its name says ".repeat(200)).unwrap();
    let err = engine.catalog().open("notes").err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    // The listing reports it instead of failing.
    let listed = engine.catalog().list().unwrap();
    assert!(listed[0].error.is_some());
}

#[test]
fn an_unreachable_endpoint_is_model_unavailable() {
    let (_home, engine) = engine();
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("openai:some-model@http://127.0.0.1:{port}/v1");
    let embedder = engine.models().embedder(&url);
    assert_eq!(embedder.err().unwrap().kind(), ErrorKind::ModelUnavailable);
    let chat = engine.models().chat(&url).unwrap();
    let reply = chat.chat(&[lore_core::Message::user("hello")], &Default::default(), &mut |_| {});
    assert_eq!(reply.err().unwrap().kind(), ErrorKind::ModelUnavailable);
}

#[test]
fn a_model_that_is_not_installed_is_not_found() {
    let (_home, engine) = engine();
    assert_eq!(engine.models().embedder("e5-small").err().unwrap().kind(), ErrorKind::NotFound);
    assert_eq!(engine.models().chat("no-such-model").err().unwrap().kind(), ErrorKind::NotFound);
}
