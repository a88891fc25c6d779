//! Training through the public API on a handful of examples with the installed MiniLM
//! (`lore models pull minilm`; `$LORE_HOME/models`, default `~/.lore/models`): the loss falls,
//! the saved folders load in Lore's inference models, and a stopped run resumes to the same
//! model as one that never stopped.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use lore_core::{EmbedKind, Embedder, Reranker};
use lore_models::{BertEmbedder, CrossEncoder};
use lore_tune::{Example, TrainEvent, TrainOptions, TrainReport, train_embedder, train_reranker};

fn minilm() -> PathBuf {
    let home = std::env::var_os("LORE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".lore"));
    let dir = home.join("models/minilm");
    assert!(dir.join("model.safetensors").exists(), "minilm is not installed: run `lore models pull minilm`");
    dir
}

const FACTS: [(&str, &str); 8] = [
    ("How long is the Rhine?", "The Rhine flows 1,230 kilometres from the Swiss Alps to the North Sea."),
    ("What do pandas eat?", "Giant pandas feed almost entirely on bamboo shoots and leaves."),
    ("When was the telescope invented?", "The first refracting telescopes appeared in the Netherlands in 1608."),
    ("What is the boiling point of water?", "At sea level, pure water boils at 100 degrees Celsius."),
    ("Who wrote Hamlet?", "Hamlet is a tragedy written by William Shakespeare around 1600."),
    ("How many moons does Mars have?", "Mars has two small moons, Phobos and Deimos."),
    ("What causes the tides?", "Tides are caused by the gravitational pull of the Moon and the Sun on the oceans."),
    ("Which metal is liquid at room temperature?", "Mercury is the only metal that is liquid at room temperature."),
];

/// Each fact's question, its passage, and two other facts' passages as negatives.
fn examples() -> Vec<Example> {
    (0..FACTS.len())
        .map(|i| Example {
            query: FACTS[i].0.into(),
            positive: FACTS[i].1.into(),
            negatives: vec![FACTS[(i + 3) % 8].1.into(), FACTS[(i + 5) % 8].1.into()],
        })
        .collect()
}

fn options() -> TrainOptions {
    TrainOptions {
        epochs: 3,
        batch_size: 2,
        micro_batch: 2,
        learning_rate: 1e-4,
        negatives: 2,
        validation: 0.0,
        max_length: 64,
        ..TrainOptions::default()
    }
}

fn keep_going(_: &TrainEvent) -> ControlFlow<()> {
    ControlFlow::Continue(())
}

fn losses(report: &TrainReport) -> Vec<f64> {
    report.history.iter().map(|(_, loss, _)| *loss).collect()
}

fn scores(dir: &Path) -> Vec<Vec<f32>> {
    let reranker = CrossEncoder::load(dir, "trained").unwrap();
    let passages: Vec<&str> = FACTS.iter().map(|(_, p)| *p).collect();
    FACTS.iter().map(|(q, _)| reranker.score(q, &passages).unwrap()).collect()
}

#[test]
fn a_reranker_learns_and_a_stopped_run_resumes_to_the_same_model() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    let report = train_reranker(&minilm(), &examples(), options(), &whole, &mut keep_going).unwrap();
    assert!(report.finished);
    assert_eq!(report.steps, 12);
    let losses = losses(&report);
    assert!(losses.last() < losses.first(), "the loss did not fall: {losses:?}");
    assert!(!whole.join("checkpoint").exists(), "a finished run leaves no checkpoint");

    // The trained cross-encoder, loaded for inference, ranks each fact's passage above the
    // negatives it was trained against.
    let scores = scores(&whole);
    for (i, row) in scores.iter().enumerate() {
        assert!(row[i] > row[(i + 3) % 8] && row[i] > row[(i + 5) % 8], "question {i} scored {row:?}");
    }

    // Stopped after two steps, then called again: the same model as the run that never stopped.
    let stopped = dir.path().join("stopped");
    let mut stop_at_two = |event: &TrainEvent| match event {
        TrainEvent::Step { step: 2, .. } => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    };
    let first = train_reranker(&minilm(), &examples(), options(), &stopped, &mut stop_at_two).unwrap();
    assert!(!first.finished);
    assert!(stopped.join("checkpoint/state.json").is_file());
    let resumed = train_reranker(&minilm(), &examples(), options(), &stopped, &mut keep_going).unwrap();
    assert_eq!(resumed.resumed_at, Some(2));
    assert!(resumed.finished);
    let again = self::scores(&stopped);
    for (a, b) in scores.iter().flatten().zip(again.iter().flatten()) {
        assert!((a - b).abs() < 1e-4, "resumed {b} vs uninterrupted {a}");
    }

    // Other settings in the same folder are refused rather than mixed into the checkpoint.
    let mut changed = options();
    changed.learning_rate = 5e-5;
    let _ = train_reranker(&minilm(), &examples(), options(), &stopped, &mut stop_at_two).unwrap();
    let error = train_reranker(&minilm(), &examples(), changed, &stopped, &mut keep_going).unwrap_err();
    assert!(error.to_string().contains("different training"), "{error}");
}

#[test]
fn a_fine_tuned_embedder_loads_as_a_sentence_embedder() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("embedder");
    let report = train_embedder(&minilm(), &examples(), options(), &out, &mut keep_going).unwrap();
    let losses = losses(&report);
    assert!(losses.last() < losses.first(), "the loss did not fall: {losses:?}");
    assert!(report.sequences_per_second > 0.0);

    let trained = BertEmbedder::load(&out, "trained").unwrap();
    let base = BertEmbedder::load(&minilm(), "minilm").unwrap();
    assert_eq!(trained.dimension(), 384);
    // Trained to pull each question to its passage: the margin over the negatives grows.
    let margin = |model: &BertEmbedder| -> f32 {
        let questions: Vec<&str> = FACTS.iter().map(|(q, _)| *q).collect();
        let passages: Vec<&str> = FACTS.iter().map(|(_, p)| *p).collect();
        let q = model.embed(&questions, EmbedKind::Query).unwrap();
        let p = model.embed(&passages, EmbedKind::Passage).unwrap();
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
        (0..8).map(|i| dot(&q[i], &p[i]) - dot(&q[i], &p[(i + 3) % 8]).max(dot(&q[i], &p[(i + 5) % 8]))).sum()
    };
    assert!(margin(&trained) > margin(&base), "trained {} vs base {}", margin(&trained), margin(&base));
}
