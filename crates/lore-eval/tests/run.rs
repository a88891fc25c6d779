mod common;

use std::path::Path;

use common::Scripted;
use lore_core::{ChunkConfig, Document, EmbedKind, Embedder, PipelineConfig, Result, Section, Tokenize};
use lore_eval::{
    CUTOFFS, QaItem, QaReport, Query, RETRIEVAL_DEPTH, answer_question, as_run, chunk_depth, collection_name, evaluate,
    headline_metrics, rank_documents, sample,
};
use lore_index::Collection;
use lore_rag::{Pipeline, Source, ingest};

/// Counts of a few marker words, so that a query naming a word finds the documents with most
/// of it: retrieval results that can be worked out by hand.
struct Words;

const WORDS: [&str; 4] = ["paris", "rust", "lava", "cat"];

impl Embedder for Words {
    fn id(&self) -> &str {
        "words"
    }
    fn dimension(&self) -> usize {
        WORDS.len()
    }
    fn max_tokens(&self) -> usize {
        512
    }
    fn tokenizer(&self) -> Option<&dyn Tokenize> {
        None
    }
    fn embed(&self, texts: &[&str], _: EmbedKind) -> Result<Vec<Vec<f32>>> {
        Ok(texts
            .iter()
            .map(|t| {
                let lower = t.to_lowercase();
                WORDS.iter().map(|w| lower.matches(w).count() as f32 + 0.01).collect()
            })
            .collect())
    }
}

fn collection(dir: &Path, docs: &[(&str, &str)]) -> Collection {
    let collection = Collection::create(dir, "words", WORDS.len(), ChunkConfig::Whole).expect("create");
    let sources =
        docs.iter().map(|(id, text)| Source::Document(Document::new(*id, vec![Section::new(vec![], *text)]))).collect();
    let report = ingest(&collection, &Words, None, &ChunkConfig::Whole, &Default::default(), sources, &mut |_| {})
        .expect("ingest");
    assert_eq!(report.added, docs.len());
    collection
}

const DOCS: [(&str, &str); 3] = [
    ("d-paris", "Paris is the capital of France. Paris lies on the Seine."),
    ("d-rust", "Rust is a language; rust is also iron oxide."),
    ("d-lava", "A volcano erupts lava. Lava cools into rock, near Paris? No."),
];

#[test]
fn documents_ranked_per_query_score_as_the_qrels_say() {
    let dir = tempfile::tempdir().expect("tempdir");
    let collection = collection(dir.path(), &DOCS);
    let config = PipelineConfig { top_k: chunk_depth(3, 3), ..PipelineConfig::default() };
    let pipeline = Pipeline::new(&collection, &Words, config).expect("pipeline");
    let queries =
        [Query { id: "q-paris".into(), text: "paris".into() }, Query { id: "q-lava".into(), text: "lava".into() }];
    let mut done = 0;
    let ranked = rank_documents(&pipeline, &queries, &mut || done += 1).expect("rank");
    assert_eq!(done, 2);
    let order = |i: usize| ranked[i].documents.iter().map(|(d, _)| d.as_str()).collect::<Vec<_>>();
    // "paris" twice in d-paris, once in d-lava; "lava" twice in d-lava only.
    assert_eq!(order(0), ["d-paris", "d-lava", "d-rust"]);
    assert_eq!(order(1)[0], "d-lava");

    // q-paris: the relevant d-lava is second (MRR 1/2); q-lava: first.
    let qrels = [
        ("q-paris".to_string(), [("d-lava".to_string(), 1)].into()),
        ("q-lava".to_string(), [("d-lava".to_string(), 1)].into()),
    ]
    .into();
    let report = evaluate(&as_run(&ranked), &qrels, &CUTOFFS);
    let metrics = headline_metrics(&report.mean);
    let names: Vec<&str> = metrics.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "ndcg@10",
            "recall@1",
            "recall@5",
            "recall@10",
            "recall@20",
            "recall@100",
            "mrr@10",
            "map@100",
            "p@1",
            "p@5",
            "p@10"
        ]
    );
    let value = |name: &str| metrics.iter().find(|(n, _)| n == name).map(|(_, v)| *v).expect(name);
    assert_eq!(value("mrr@10"), 0.75);
    assert_eq!(value("recall@1"), 0.5);
    assert_eq!(value("p@5"), 0.2);
    assert!((value("ndcg@10") - (1.0 + 1.0 / 3f64.log2()) / 2.0).abs() < 1e-12);
}

#[test]
fn chunk_depth_covers_the_documents_when_they_are_chunked() {
    assert_eq!(chunk_depth(5183, 5183), RETRIEVAL_DEPTH);
    assert_eq!(chunk_depth(3, 250), RETRIEVAL_DEPTH * 84);
    assert_eq!(chunk_depth(0, 0), RETRIEVAL_DEPTH);
}

#[test]
fn collection_names_change_with_what_changes_the_vectors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dataset = dir.path().join("scifact");
    std::fs::create_dir(&dataset).expect("mkdir");
    assert_eq!(collection_name(&dataset, "e5-small", &ChunkConfig::Whole), "eval-scifact-e5-small-whole");
    let paragraphs = ChunkConfig::ParagraphMerge { chunk_size: 512, drop_remainder: true };
    let dropped = collection_name(&dataset, "e5-small", &paragraphs);
    assert!(dropped.starts_with("eval-scifact-e5-small-paragraph-merge-"), "{dropped}");
    let kept = ChunkConfig::ParagraphMerge { chunk_size: 512, drop_remainder: false };
    assert_ne!(dropped, collection_name(&dataset, "e5-small", &kept));
    assert_eq!(dropped, collection_name(&dataset.join("."), "e5-small", &paragraphs), "the same folder");
    let remote =
        collection_name(&dataset, "openai:text-embedding-3-small@http://localhost:8080/v1", &ChunkConfig::Whole);
    assert!(!remote.contains(['/', ':', '@']), "one directory: {remote}");
}

#[test]
fn a_sample_is_fixed_and_keeps_the_order() {
    let items: Vec<String> = (0..100).map(|i| format!("q{i}")).collect();
    let first = sample(&items, 10, |s| s.as_str());
    assert_eq!(first.len(), 10);
    assert_eq!(first, sample(&items, 10, |s| s.as_str()));
    let positions: Vec<usize> = first.iter().map(|s| items.iter().position(|i| i == s).expect("from items")).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "original order: {positions:?}");
    assert_ne!(first, items[..10], "a spread, not the first ten");
    // A larger sample contains the smaller one: the same questions stay in.
    let larger = sample(&items, 20, |s| s.as_str());
    assert!(first.iter().all(|q| larger.contains(q)));
    assert_eq!(sample(&items, 500, |s| s.as_str()), items);
}

#[test]
fn answered_questions_carry_passages_scores_and_the_judgement() {
    let dir = tempfile::tempdir().expect("tempdir");
    let collection = collection(dir.path(), &DOCS);
    // The scripted answers reach the scores as written: no gate, no verification.
    let mut config = PipelineConfig { top_k: 2, ..PipelineConfig::default() };
    config.answerability.min_evidence = 0.0;
    config.verification.enabled = false;
    let pipeline = Pipeline::new(&collection, &Words, config).expect("pipeline");
    let generator = Scripted::new([
        "The capital of France is Paris [1].",
        "A committee of volunteers designed it [2].",
        "Leonardo painted it [1].",
    ]);
    let judge_model = Scripted::new([
        r#"{"reasoning": "Right.", "correctness": 5, "completeness": 5, "clarity": 4}"#,
        "no scores here",
        "still none",
        "nothing",
    ]);
    let judge = lore_eval::Judge::new(&judge_model, None).expect("judge");
    let paris = QaItem {
        id: "q1".into(),
        question: "What is the capital of France, Paris or Rome?".into(),
        answers: vec!["Paris".into()],
        answerable: true,
    };
    let rust = QaItem {
        id: "q2".into(),
        question: "Who designed rust?".into(),
        answers: vec!["Graydon Hoare".into()],
        answerable: true,
    };
    let mona_lisa =
        QaItem { id: "q3".into(), question: "Who painted the Mona Lisa?".into(), answers: vec![], answerable: false };

    let first = answer_question(&pipeline, &collection, &generator, &paris, Some(&judge), None).expect("answer");
    assert_eq!(first.passages.len(), 2);
    assert_eq!(first.passages[0].source, "d-paris");
    assert_eq!(first.passages[0].text, DOCS[0].1);
    assert!(first.passages[0].cited && !first.passages[1].cited);
    assert_eq!(first.scores.answer_in_context, Some(true));
    let judged = first.judgement.clone().expect("judged").expect("parsed");
    assert_eq!((judged.scores.correctness, judged.scores.clarity), (5, 4));
    // The judge compared with the gold answer as the reference.
    assert!(judge_model.conversations()[0].iter().any(|m| m.content.contains("Reference answer: Paris")));

    let second = answer_question(&pipeline, &collection, &generator, &rust, Some(&judge), None).expect("answer");
    let failure = second.judgement.clone().expect("judged").expect_err("never parsed");
    assert_eq!(failure.attempts, 3);
    assert_eq!(judge_model.calls(), 4, "one call for the first answer, three for the second");

    // An answer where the reference is the refusal is graded without asking the judge.
    let third = answer_question(&pipeline, &collection, &generator, &mona_lisa, Some(&judge), None).expect("answer");
    assert_eq!(third.judgement.clone().expect("judged").expect("graded").scores.correctness, 1);
    assert_eq!(judge_model.calls(), 4);

    let report = QaReport::of(&[first, second, third]);
    assert_eq!(report.qa.questions, 3);
    assert_eq!(report.qa.refusal.answered_unanswerable, 1);
    assert_eq!(report.qa.answer_in_context.value, Some(0.5), "rust's gold answer is in no document");
    let judge = report.judge.expect("judge summary");
    assert_eq!((judge.score.scored, judge.score.failed), (2, 1));
    assert!((judge.score.value.expect("two scored") - (14.0 / 3.0 + 1.0) / 2.0).abs() < 1e-12);
    assert!(report.grounding.is_none());
}
