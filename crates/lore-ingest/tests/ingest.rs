use std::fs;
use std::path::PathBuf;

use lore_core::ChunkConfig;
use lore_ingest::{Format, chunk, discover, parse, parse_text, read_beir_corpus};

fn merge(size: usize, drop_remainder: bool) -> ChunkConfig {
    ChunkConfig::ParagraphMerge { chunk_size: size, drop_remainder }
}

#[test]
fn paragraph_merge_concatenates_lines_until_the_size_is_reached() {
    let doc = parse_text("a.txt", "aaaa\n\nbbbb\ncccc\n  \ndddd\nee\n", Format::Text);
    let chunks = chunk(&doc, &merge(9, false), None).unwrap();
    let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
    // "aaaa\nbbbb" is 9 characters: it closes the first chunk.
    assert_eq!(texts, ["aaaa\nbbbb", "cccc\ndddd", "ee"]);
    assert_eq!(chunks.iter().map(|c| c.ordinal).collect::<Vec<_>>(), [0, 1, 2]);
}

#[test]
fn paragraph_merge_can_drop_the_short_remainder_like_the_tutorial() {
    let doc = parse_text("a.txt", "aaaa\nbbbb\nccc", Format::Text);
    let kept = chunk(&doc, &merge(8, false), None).unwrap();
    let dropped = chunk(&doc, &merge(8, true), None).unwrap();
    assert_eq!(kept.len(), 2);
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].text, "aaaa\nbbbb");
}

#[test]
fn paragraph_merge_counts_characters_not_bytes() {
    let doc = parse_text("zh.txt", "千问模型\n上下文长度", Format::Text);
    // 4 + 1 (newline) + 5 = 10 characters, 28 bytes.
    assert_eq!(chunk(&doc, &merge(10, true), None).unwrap().len(), 1);
    assert_eq!(chunk(&doc, &merge(11, true), None).unwrap().len(), 0);
}

#[test]
fn markdown_sections_carry_heading_paths() {
    let md = "# Lore\nintro\n## Install\nrun it\n```\n# not a heading\n```\n### Linux\napt\n## Use\nask\n";
    let doc = parse_text("guide.md", md, Format::Markdown);
    assert_eq!(doc.title.as_deref(), Some("Lore"));
    let paths: Vec<Vec<String>> = doc.sections.iter().map(|s| s.heading_path.clone()).collect();
    assert_eq!(paths, [vec!["Lore"], vec!["Lore", "Install"], vec!["Lore", "Install", "Linux"], vec!["Lore", "Use"]]);
    assert!(doc.sections[1].text.contains("# not a heading"));
    let chunks = chunk(&doc, &merge(1, false), None).unwrap();
    let linux = chunks.iter().find(|c| c.text == "apt").unwrap();
    assert_eq!(linux.metadata["heading_path"], serde_json::json!(["Lore", "Install", "Linux"]));
}

#[test]
fn content_hash_changes_with_the_text_only() {
    let a = parse_text("a.txt", "same text", Format::Text);
    let b = parse_text("b.txt", "same text", Format::Text);
    let c = parse_text("a.txt", "other text", Format::Text);
    assert_eq!(a.content_hash, b.content_hash);
    assert_ne!(a.content_hash, c.content_hash);
}

#[test]
fn parse_reports_binary_invalid_and_unsupported_files() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        fs::write(&path, bytes).unwrap();
        path
    };
    let binary = write("junk.txt", b"\x7fELF\x00\x01\x02");
    let latin1 = write("old.txt", b"caf\xe9");
    let pdf = write("paper.pdf", b"%PDF-1.4");
    let image = write("photo.png", b"\x89PNG\r\n");
    let bom = write("bom.md", "\u{feff}# Title\nbody".as_bytes());
    for (path, expected) in [(&binary, "binary"), (&latin1, "UTF-8"), (&pdf, "truncated PDF"), (&image, "unsupported")]
    {
        let err = parse(path).unwrap_err().to_string();
        assert!(err.contains(expected) && err.contains(&path.display().to_string()), "{err}");
    }
    let doc = parse(&bom).unwrap();
    assert_eq!(doc.title.as_deref(), Some("Title"));
    assert!(doc.metadata.contains_key("modified_unix"));
}

#[test]
fn discover_walks_folders_skipping_hidden_and_unsupported_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join("sub/.git")).unwrap();
    for name in ["b.md", "a.txt", "sub/c.markdown", "sub/.git/x.txt", ".hidden.txt", "image.png"] {
        fs::write(root.join(name), "x").unwrap();
    }
    let found = discover(&[root.to_path_buf(), PathBuf::from("/no/such/path")]);
    let names: Vec<String> = found.files.iter().map(|p| p.strip_prefix(root).unwrap().display().to_string()).collect();
    assert_eq!(names, ["a.txt", "b.md", "sub/c.markdown"]);
    assert_eq!(found.skipped, [root.join("image.png")]);
    assert_eq!(found.errors.len(), 1);
    assert_eq!(found.errors[0].0, PathBuf::from("/no/such/path"));
}

#[test]
fn beir_corpus_records_become_documents() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corpus.jsonl");
    fs::write(&path, "{\"_id\":\"4983\",\"title\":\"Microstructural development\",\"text\":\"Alterations of the architecture.\"}\n\n{\"_id\":\"5836\",\"title\":\"\",\"text\":\"Only text.\"}\n").unwrap();
    let docs = read_beir_corpus(&path).unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0].source, "4983");
    assert_eq!(docs[0].text(), "Microstructural development\nAlterations of the architecture.");
    assert_eq!(docs[1].title, None);
    fs::write(&path, "{\"_id\": 1,").unwrap();
    let err = read_beir_corpus(&path).unwrap_err();
    assert!(err.to_string().contains("line 1"), "{err}");
    assert_eq!(err.kind(), lore_core::ErrorKind::InvalidInput, "{err}");
    let err = read_beir_corpus(&dir.path().join("missing.jsonl")).unwrap_err();
    assert_eq!(err.kind(), lore_core::ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("missing.jsonl"), "{err}");
}
