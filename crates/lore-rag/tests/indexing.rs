//! Ingesting folders: parallel preparation, skipping unchanged files, removing vanished ones.
//! lore-rag builds without candle, so the embedder is a stand-in that counts what it embeds.

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use lore_core::{ChunkConfig, Document, EmbedKind, Embedder, Metadata, Result, Section, Store, Tokenize};
use lore_index::Collection;
use lore_rag::{Source, ingest, remove_vanished};

/// Texts embedded as a vector of their length and vowel count; counts the texts it embeds.
#[derive(Default)]
struct Counting {
    texts: AtomicUsize,
}

impl Embedder for Counting {
    fn id(&self) -> &str {
        "counting"
    }
    fn dimension(&self) -> usize {
        2
    }
    fn max_tokens(&self) -> usize {
        512
    }
    fn tokenizer(&self) -> Option<&dyn Tokenize> {
        None
    }
    fn embed(&self, texts: &[&str], _: EmbedKind) -> Result<Vec<Vec<f32>>> {
        self.texts.fetch_add(texts.len(), Ordering::SeqCst);
        Ok(texts
            .iter()
            .map(|t| vec![t.len() as f32 + 1.0, t.matches(['a', 'e', 'i', 'o', 'u']).count() as f32])
            .collect())
    }
}

fn files_in(folder: &std::path::Path) -> Vec<Source> {
    lore_ingest::discover(&[folder.to_path_buf()]).files.into_iter().map(Source::File).collect()
}

fn sources(collection: &Collection) -> Vec<String> {
    collection.documents().unwrap().into_iter().map(|d| d.source).collect()
}

#[test]
fn a_folder_is_ingested_in_parallel_and_an_unchanged_one_embeds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("notes");
    fs::create_dir_all(folder.join("deeper")).unwrap();
    for i in 0..40 {
        let sub = if i % 3 == 0 { folder.join("deeper") } else { folder.clone() };
        // Two paragraphs of 30+ characters: two chunks each at a chunk size of 20.
        fs::write(
            sub.join(format!("note{i}.md")),
            format!("# Note {i}\nfirst paragraph of note number {i}\n\nsecond paragraph of note number {i}"),
        )
        .unwrap();
    }
    let chunking = ChunkConfig::ParagraphMerge { chunk_size: 20, drop_remainder: false };
    let collection = Collection::create(&dir.path().join("c"), "counting", 2, chunking.clone()).unwrap();
    let embedder = Counting::default();

    let mut last = None;
    let first =
        ingest(&collection, &embedder, None, &chunking, &Metadata::new(), files_in(&folder), &mut |p| last = Some(p))
            .unwrap();
    assert_eq!((first.added, first.unchanged, first.failed.len()), (40, 0, 0), "{first:?}");
    let per_document: Vec<usize> = collection.documents().unwrap().iter().map(|d| d.chunks).collect();
    assert_eq!(per_document, vec![2; 40], "every document stored whole");
    assert_eq!(first.chunks, 80);
    assert_eq!(embedder.texts.load(Ordering::SeqCst), 80);
    let last = last.unwrap();
    assert_eq!((last.sources_done, last.sources_total, last.chunks_embedded), (40, 40, 80));

    let again =
        ingest(&collection, &embedder, None, &chunking, &Metadata::new(), files_in(&folder), &mut |_| {}).unwrap();
    assert_eq!((again.added, again.replaced, again.unchanged, again.chunks), (0, 0, 40, 0));
    assert_eq!(embedder.texts.load(Ordering::SeqCst), 80, "an unchanged folder embeds nothing");

    fs::write(folder.join("note1.md"), "# Note 1\nrewritten").unwrap();
    let changed =
        ingest(&collection, &embedder, None, &chunking, &Metadata::new(), files_in(&folder), &mut |_| {}).unwrap();
    assert_eq!((changed.added, changed.replaced, changed.unchanged, changed.chunks), (0, 1, 39, 1));
    assert_eq!(embedder.texts.load(Ordering::SeqCst), 81, "only the changed file is embedded");
}

#[test]
fn vanished_files_are_removed_only_under_the_given_roots() {
    let dir = tempfile::tempdir().unwrap();
    let (synced, other) = (dir.path().join("synced"), dir.path().join("other"));
    fs::create_dir_all(synced.join("sub")).unwrap();
    fs::create_dir_all(&other).unwrap();
    // A sibling whose name starts like the root: not under it.
    let sibling = dir.path().join("synced-old");
    fs::create_dir_all(&sibling).unwrap();
    for (folder, name) in [(&synced, "keep.txt"), (&synced, "gone.txt"), (&synced.join("sub"), "gone too.txt")] {
        fs::write(folder.join(name), format!("text of {name}")).unwrap();
    }
    fs::write(other.join("elsewhere.txt"), "text elsewhere").unwrap();
    fs::write(sibling.join("old.txt"), "old text").unwrap();
    let chunking = ChunkConfig::Whole;
    let collection = Collection::create(&dir.path().join("c"), "counting", 2, chunking.clone()).unwrap();
    let embedder = Counting::default();
    let mut everything: Vec<Source> = [&synced, &other, &sibling].into_iter().flat_map(|f| files_in(f)).collect();
    everything.push(Source::Document(Document::new("in-memory", vec![Section::new(vec![], "not a file")])));
    ingest(&collection, &embedder, None, &chunking, &Metadata::new(), everything, &mut |_| {}).unwrap();
    assert_eq!(collection.documents().unwrap().len(), 6);

    fs::remove_file(synced.join("gone.txt")).unwrap();
    fs::remove_dir_all(synced.join("sub")).unwrap();
    fs::remove_file(other.join("elsewhere.txt")).unwrap();
    let roots = vec![synced.clone()];
    let found = lore_ingest::discover(&roots);
    let removed = remove_vanished(&collection, &roots, &found).unwrap();
    let name = |p: PathBuf| p.display().to_string();
    assert_eq!(removed, [name(synced.join("gone.txt")), name(synced.join("sub/gone too.txt"))]);
    let mut left = sources(&collection);
    left.sort();
    let mut expected = vec![
        name(other.join("elsewhere.txt")),
        "in-memory".to_string(),
        name(sibling.join("old.txt")),
        name(synced.join("keep.txt")),
    ];
    expected.sort();
    assert_eq!(left, expected, "documents outside the root stay, even when their file is gone");

    // A root that cannot be read (unmounted, mistyped) removes nothing.
    fs::remove_dir_all(&synced).unwrap();
    let found = lore_ingest::discover(&roots);
    assert_eq!(found.errors.len(), 1);
    assert!(remove_vanished(&collection, &roots, &found).unwrap().is_empty());
    assert!(sources(&collection).contains(&name(synced.join("keep.txt"))));
}
