//! The cross-encoder against a hand computation. No cross-encoder is installed, so one is made:
//! the installed MiniLM encoder (with its pooler) plus a freshly initialised classification
//! head, saved in Hugging Face's BertForSequenceClassification layout. The test then computes
//! the score itself — BERT's [CLS] vector, the pooler's tanh(W·h + b), the classifier's W·p + b —
//! and compares.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use lore_core::{Calibration, Reranker};
use lore_models::CrossEncoder;
use tokenizers::Tokenizer;

fn minilm() -> PathBuf {
    let home = std::env::var_os("LORE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".lore"));
    let dir = home.join("models/minilm");
    assert!(
        dir.join("model.safetensors").exists(),
        "minilm is not installed in {}: run `lore models pull minilm`",
        dir.display()
    );
    dir
}

/// Normal(0, 0.02) numbers, as transformers initialises a new head, from a fixed seed.
fn initialised(count: usize, seed: u64) -> Vec<f32> {
    let mut state = seed;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    (0..count)
        .map(|_| {
            let (u, v) = (uniform(), uniform());
            (0.02 * (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
        })
        .collect()
}

/// Writes a BertForSequenceClassification folder with `labels` outputs into `dir`; returns the
/// classifier's weight rows and biases.
fn save_classifier(encoder: &Path, dir: &Path, labels: usize) -> (Vec<Vec<f32>>, Vec<f32>) {
    let device = Device::Cpu;
    let mut tensors: HashMap<String, Tensor> =
        candle_core::safetensors::load(encoder.join("model.safetensors"), &device)
            .unwrap()
            .into_iter()
            .map(|(name, tensor)| (format!("bert.{name}"), tensor))
            .collect();
    let hidden = 384;
    let weight = initialised(labels * hidden, 7 + labels as u64);
    let bias: Vec<f32> = (0..labels).map(|i| 0.1 * (i as f32 + 1.0)).collect();
    tensors.insert("classifier.weight".into(), Tensor::from_vec(weight.clone(), (labels, hidden), &device).unwrap());
    tensors.insert("classifier.bias".into(), Tensor::from_vec(bias.clone(), labels, &device).unwrap());
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).unwrap();

    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(encoder.join("config.json")).unwrap()).unwrap();
    config["architectures"] = serde_json::json!(["BertForSequenceClassification"]);
    config["id2label"] = (0..labels).map(|i| (i.to_string(), serde_json::json!(format!("LABEL_{i}")))).collect();
    std::fs::write(dir.join("config.json"), serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    std::fs::copy(encoder.join("tokenizer.json"), dir.join("tokenizer.json")).unwrap();
    (weight.chunks(hidden).map(<[f32]>::to_vec).collect(), bias)
}

/// The logits of one (query, passage) pair, computed step by step from the encoder's weights.
fn hand_logits(encoder: &Path, query: &str, passage: &str, weight: &[Vec<f32>], bias: &[f32]) -> Vec<f32> {
    let mut tokenizer = Tokenizer::from_file(encoder.join("tokenizer.json")).unwrap();
    tokenizer.with_padding(None);
    tokenizer.with_truncation(None).unwrap();
    let encoding = tokenizer.encode((query, passage), true).unwrap();
    let types = encoding.get_type_ids();
    assert!(types.contains(&0) && types.contains(&1), "a pair has two segments: {types:?}");

    let device = Device::Cpu;
    let config: Config = serde_json::from_slice(&std::fs::read(encoder.join("config.json")).unwrap()).unwrap();
    let tensors = candle_core::safetensors::load(encoder.join("model.safetensors"), &device).unwrap();
    let bert = BertModel::load(VarBuilder::from_tensors(tensors.clone(), DType::F32, &device), &config).unwrap();
    let row = |values: &[u32]| Tensor::from_vec(values.to_vec(), (1, values.len()), &device).unwrap();
    let hidden = bert.forward(&row(encoding.get_ids()), &row(types), None).unwrap();
    let cls: Vec<f32> = hidden.i((0, 0)).unwrap().to_vec1().unwrap();

    let pooler_weight: Vec<Vec<f32>> = tensors["pooler.dense.weight"].to_vec2().unwrap();
    let pooler_bias: Vec<f32> = tensors["pooler.dense.bias"].to_vec1().unwrap();
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    let pooled: Vec<f32> = pooler_weight.iter().zip(&pooler_bias).map(|(w, b)| (dot(w, &cls) + b).tanh()).collect();
    weight.iter().zip(bias).map(|(w, b)| dot(w, &pooled) + b).collect()
}

/// Lore multiplies in integers (weights rounded to ±127, see `embed.rs`); its logits differ from the
/// float computation by at most 8e-4 here.
const TOLERANCE: f32 = 1e-3;

const QUERY: &str = "How fast is the Rust compiler?";
const PASSAGES: [&str; 3] = [
    "Rust compiles slowly but runs fast.",
    "Green tea is brewed at low temperature for two to three minutes, then served without milk or sugar.",
    "Rust",
];

#[test]
fn one_label_scores_are_the_classifier_logit_of_the_pooled_cls_vector() {
    let encoder = minilm();
    let dir = tempfile::tempdir().unwrap();
    let (weight, bias) = save_classifier(&encoder, dir.path(), 1);
    let model = CrossEncoder::load(dir.path(), "fresh-head").unwrap();
    assert_eq!(model.id(), "fresh-head");
    // One batch of pairs of different lengths: padding must not change any score.
    let scores = model.score(QUERY, &PASSAGES).unwrap();
    for (passage, score) in PASSAGES.iter().zip(&scores) {
        let expected = hand_logits(&encoder, QUERY, passage, &weight, &bias)[0];
        assert!((score - expected).abs() < TOLERANCE, "{passage:?}: model {score}, by hand {expected}");
    }
    assert!(scores[0] != scores[1], "different pairs score differently: {scores:?}");
}

#[test]
fn two_label_scores_are_the_log_odds_of_label_one() {
    let encoder = minilm();
    let dir = tempfile::tempdir().unwrap();
    let (weight, bias) = save_classifier(&encoder, dir.path(), 2);
    let scores = CrossEncoder::load(dir.path(), "fresh-head").unwrap().score(QUERY, &PASSAGES[..1]).unwrap();
    let logits = hand_logits(&encoder, QUERY, PASSAGES[0], &weight, &bias);
    assert!((scores[0] - (logits[1] - logits[0])).abs() < TOLERANCE, "{scores:?} vs {logits:?}");
}

#[test]
fn a_calibration_beside_the_weights_is_read_and_a_broken_one_named() {
    let encoder = minilm();
    let dir = tempfile::tempdir().unwrap();
    save_classifier(&encoder, dir.path(), 1);
    assert_eq!(CrossEncoder::load(dir.path(), "plain").unwrap().calibration(), None);
    let calibration = Calibration { score_weight: 2.0, rank_weight: 0.5, bias: -1.0 };
    std::fs::write(dir.path().join("calibration.json"), serde_json::to_string(&calibration).unwrap()).unwrap();
    assert_eq!(CrossEncoder::load(dir.path(), "calibrated").unwrap().calibration(), Some(calibration));
    std::fs::write(dir.path().join("calibration.json"), "{\"score_weight\": ").unwrap();
    let err = CrossEncoder::load(dir.path(), "broken").err().unwrap().to_string();
    assert!(err.contains("calibration.json"), "{err}");
}

#[test]
fn a_plain_encoder_folder_is_refused_with_the_reason() {
    let err = CrossEncoder::load(&minilm(), "minilm").err().unwrap().to_string();
    assert!(err.contains("BertForSequenceClassification") && err.contains("BertModel"), "{err}");
}
