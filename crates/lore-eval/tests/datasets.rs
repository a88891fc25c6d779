use std::fs;
use std::path::{Path, PathBuf};

use lore_eval::{ArenaDataset, BeirDataset};

fn dataset(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets").join(name)
}

#[test]
fn scifact_loads_as_published() {
    let test = BeirDataset::load(&dataset("scifact"), "test").expect("scifact test split");
    assert_eq!(test.documents.len(), 5183);
    assert_eq!(test.queries.len(), 300);
    assert_eq!(test.qrels.len(), 300);
    assert_eq!(test.qrels.values().map(|docs| docs.len()).sum::<usize>(), 339);
    assert_eq!(test.qrels["1"]["31715818"], 1);
    assert_eq!(test.queries[0].id, "1");
    assert!(test.qa.is_empty());
    let doc = test.documents.iter().find(|d| d.source == "4983").expect("document 4983");
    assert!(doc.title.as_deref().is_some_and(|t| t.starts_with("Microstructural development")));

    let train = BeirDataset::load(&dataset("scifact"), "train").expect("scifact train split");
    assert_eq!(train.queries.len(), 809);
}

#[test]
fn qa_sets_carry_their_answers() {
    let cmrc = BeirDataset::load(&dataset("cmrc2018"), "test").expect("cmrc2018");
    assert_eq!(cmrc.qa.len(), 3219);
    assert_eq!(cmrc.qa[1].id, "DEV_0_QUERY_1");
    assert_eq!(cmrc.qa[1].answers, ["任天堂游戏谜之村雨城", "村雨城"]);
    assert!(cmrc.qa.iter().all(|item| item.answerable));
    assert_eq!(cmrc.qa[1].reference_answer(), "任天堂游戏谜之村雨城");

    let hotpot = BeirDataset::load(&dataset("hotpotqa100"), "test").expect("hotpotqa100");
    assert_eq!(hotpot.qa.len(), 100);
    assert_eq!(hotpot.documents.len(), 994);
    assert!(hotpot.qrels.values().all(|docs| docs.len() == 2));
}

#[test]
fn the_arena_set_marks_refusals_unanswerable() {
    let arena = ArenaDataset::load(&dataset("rag_arena_zh")).expect("rag_arena_zh");
    assert_eq!(arena.documents.len(), 3);
    assert!(arena.documents[0].source.ends_with("DeepSeek-R1技术报告.txt"));
    assert_eq!(arena.qa.len(), 10);
    assert_eq!(arena.qa.iter().filter(|item| !item.answerable).count(), 4);
    let unanswerable = &arena.qa[2];
    assert_eq!(unanswerable.id, "q3");
    assert!(!unanswerable.answerable);
    assert_eq!(unanswerable.reference_answer(), lore_rag::REFUSAL_ZH);
}

/// A small BEIR folder with one file replaced by `broken`.
fn beir_with(file: &str, broken: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let files = [
        ("corpus.jsonl", "{\"_id\": \"d1\", \"title\": \"\", \"text\": \"Rust is a language.\"}\n"),
        ("queries.jsonl", "{\"_id\": \"q1\", \"text\": \"What is Rust?\"}\n"),
        ("qrels/test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\n"),
        ("answers.jsonl", "{\"_id\": \"q1\", \"answers\": [\"a language\"], \"answerable\": true}\n"),
    ];
    fs::create_dir(dir.path().join("qrels")).expect("qrels dir");
    for (name, content) in files {
        fs::write(dir.path().join(name), if name == file { broken } else { content }).expect("write");
    }
    dir
}

fn load_error(file: &str, broken: &str) -> String {
    let dir = beir_with(file, broken);
    BeirDataset::load(dir.path(), "test").expect_err("a malformed dataset must not load").to_string()
}

#[test]
fn malformed_files_are_reported_with_their_line() {
    let good = beir_with("", "");
    assert_eq!(BeirDataset::load(good.path(), "test").expect("the good folder").qa[0].answers, ["a language"]);

    let error = load_error("qrels/test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1 d2 1\n");
    assert!(error.contains("test.tsv") && error.contains("line 3") && error.contains("3 tab-separated"), "{error}");
    let error = load_error("qrels/test.tsv", "q1\td1\t1\nq1\td2\thigh\n");
    assert!(error.contains("line 2") && error.contains("'high' is not an integer"), "{error}");
    let error = load_error("queries.jsonl", "{\"_id\": \"q0\", \"text\": \"x\"}\n{\"_id\": \"q1\", \"text\": \n");
    assert!(error.contains("queries.jsonl") && error.contains("line 2"), "{error}");
    let error = load_error("queries.jsonl", "{\"_id\": \"q2\", \"text\": \"Other\"}\n");
    assert!(error.contains("'q1' is judged but not in"), "{error}");
    let error = load_error("answers.jsonl", "\n{\"_id\": \"q1\", \"answers\": [], \"answerable\": true}\n");
    assert!(error.contains("answers.jsonl") && error.contains("line 2") && error.contains("no answer"), "{error}");
    let error = load_error("corpus.jsonl", "{\"_id\": \"d1\"}\nnot json\n");
    assert!(error.contains("corpus.jsonl") && error.contains("line 2"), "{error}");

    let error = BeirDataset::load(good.path(), "dev").expect_err("no dev split").to_string();
    assert!(error.contains("dev.tsv") && error.contains("'dev' split"), "{error}");
}

#[test]
fn a_malformed_arena_set_is_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let error = ArenaDataset::load(dir.path()).expect_err("no docs folder").to_string();
    assert!(error.contains("docs"), "{error}");
    fs::create_dir(dir.path().join("docs")).expect("docs dir");
    fs::write(dir.path().join("docs/a.txt"), "Lore is written in Rust.").expect("write doc");
    fs::write(dir.path().join("qa.json"), "{\"data\": [\n  {\"question\": \"What is Lore written in?\"}\n]}")
        .expect("write qa");
    let error = ArenaDataset::load(dir.path()).expect_err("an entry without answer").to_string();
    assert!(error.contains("qa.json") && error.contains("line 2") && error.contains("answer"), "{error}");
}
