//! `lore tune` end to end with the real small models: synthetic questions from a collection,
//! a reranker trained on them with mined negatives, and pipelines reranking with it.

use std::fs;

use serde_json::Value;

mod common;

use common::Home;

const FACTS: [(&str, &str); 6] = [
    ("rhine.txt", "The Rhine flows 1,230 kilometres from the Swiss Alps to the North Sea at Rotterdam."),
    ("pandas.txt", "Giant pandas live in the mountains of central China and feed almost entirely on bamboo."),
    ("telescope.txt", "The first refracting telescopes were made by spectacle makers in the Netherlands in 1608."),
    ("water.txt", "At sea level, pure water boils at 100 degrees Celsius and freezes at 0 degrees."),
    ("hamlet.txt", "Hamlet, Prince of Denmark, is a tragedy that William Shakespeare wrote around 1600."),
    ("mars.txt", "Mars has two small, irregularly shaped moons named Phobos and Deimos."),
];

fn facts_collection(home: &Home) {
    let docs = home.path().join("facts");
    fs::create_dir_all(&docs).unwrap();
    for (name, text) in FACTS {
        fs::write(docs.join(name), text).unwrap();
    }
    home.json(&["ingest", docs.to_str().unwrap(), "-c", "facts", "--embedder", "minilm", "--json"]);
}

#[test]
fn questions_from_a_collection_train_a_reranker_that_pipelines_use() {
    let home = Home::with_models();
    facts_collection(&home);
    let dataset = home.path().join("questions");
    let dataset_arg = dataset.to_str().unwrap();
    let args =
        ["tune", "queries", "-c", "facts", "--llm", "smollm2", "--per-chunk", "2", "--out", dataset_arg, "--json"];
    let report = home.json(&args);
    assert_eq!(report["chunks"], 6, "{report}");
    assert_eq!(report["cached"], 0);
    let kept = report["kept"].as_u64().unwrap();
    assert!(kept >= 3 && kept <= report["written"].as_u64().unwrap(), "{report}");
    let queries = fs::read_to_string(dataset.join("queries.jsonl")).unwrap();
    assert_eq!(queries.lines().count() as u64, kept);
    let qrels = fs::read_to_string(dataset.join("qrels/train.tsv")).unwrap();
    assert_eq!(qrels.lines().count() as u64, kept + 1, "a header and one judgement per question");

    // A second run pays for nothing: every reply comes from the cache.
    let again = home.json(&args);
    assert_eq!(again["cached"], 6, "{again}");
    assert_eq!(again["kept"], report["kept"]);
    // Claims are asked for on their own, beside the questions already paid for; then cached too.
    let both = [&args[..args.len() - 1], &["--form", "question,claim", "--json"][..]].concat();
    let claims = home.json(&both);
    assert_eq!(claims["cached"], 6, "only the questions were in the cache: {claims}");
    assert!(claims["written"].as_u64().unwrap() >= report["written"].as_u64().unwrap(), "{claims}");
    let cache = fs::read_to_string(dataset.join("questions-cache.jsonl")).unwrap();
    let keys: Vec<String> = cache
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap()["key"].as_str().unwrap().into())
        .collect();
    assert_eq!(keys.len(), 12, "one reply per chunk and form");
    assert_eq!(keys.iter().filter(|key| key.ends_with(":2:claim")).count(), 6, "{keys:?}");
    assert_eq!(home.json(&both)["cached"], 12);
    // The training below reads the dataset of questions alone, written again from the cache.
    let questions_only = home.json(&args);
    assert_eq!(questions_only["cached"], 6);
    assert_eq!(questions_only["kept"], report["kept"]);

    // A reranker trained on them, negatives mined from the dataset's own hybrid search.
    let model = home.path().join("reranker");
    let trained = home.json(&[
        "tune",
        "reranker",
        "--dataset",
        dataset_arg,
        "--base",
        "minilm",
        "--out",
        model.to_str().unwrap(),
        "--epochs",
        "2",
        "--batch-size",
        "2",
        "--micro-batch",
        "2",
        "--max-length",
        "64",
        "--validation",
        "0.3",
        "--json",
    ]);
    assert_eq!(trained["kind"], "reranker", "{trained}");
    let held_out = trained["validation_examples"].as_u64().unwrap();
    assert!(held_out >= 1, "{trained}");
    assert_eq!(trained["training_examples"].as_u64(), Some(kept - held_out));
    // Calibrated on the held-out questions' hybrid-rerank candidates, saved beside the model.
    let fit = &trained["calibration"];
    assert_eq!(fit["questions"].as_u64(), Some(held_out), "{trained}");
    assert!(fit["search_mrr"].as_f64().unwrap() > 0.0, "{fit}");
    assert!(model.join("calibration.json").is_file());
    // Fitting it again from the folder gives the same model.
    let again = home.json(&["tune", "calibrate", model.to_str().unwrap(), "--dataset", dataset_arg, "--json"]);
    assert_eq!(again["calibration"], fit["calibration"], "{again}");
    assert!(trained["steps"].as_u64().unwrap() >= 2);
    assert!(trained["finished"].as_bool().unwrap());
    let examples = fs::read_to_string(model.join("examples.jsonl")).unwrap();
    let first: Value = serde_json::from_str(examples.lines().next().unwrap()).unwrap();
    assert!(!first["negatives"].as_array().unwrap().is_empty(), "negatives were mined: {first}");
    assert!(!first["negatives"].as_array().unwrap().contains(&first["positive"]));

    // `--reranker` turns hybrid-rerank's chat-model judge into the trained cross-encoder.
    let model_arg = model.to_str().unwrap();
    let found = home.json(&[
        "query",
        "How long is the Rhine?",
        "-c",
        "facts",
        "--pipeline",
        "hybrid-rerank",
        "--reranker",
        model_arg,
        "--explain",
        "--json",
    ]);
    let rerank = &found["explanation"]["rerank"];
    assert_eq!(rerank["kind"], "cross-encoder", "{found}");
    assert_eq!(rerank["model"], model_arg);
    let scores = rerank["scores"].as_array().unwrap();
    assert_eq!(scores.len(), 6, "all six fused candidates are reranked");
    for scored in scores {
        let p = scored["score"].as_f64().unwrap();
        assert!(p > 0.0 && p < 1.0, "calibrated scores are probabilities: {scored}");
    }
    // A pipeline that does not rerank is left as it is.
    let plain =
        home.json(&["query", "How long is the Rhine?", "-c", "facts", "--reranker", model_arg, "--explain", "--json"]);
    assert!(plain["explanation"]["rerank"].is_null(), "{plain}");

    // A sample asks about two chunks (their replies are cached), yet the corpus keeps all six, so
    // negatives can be mined from everything.
    let mut sampled = args.to_vec();
    sampled.extend(["--limit", "2"]);
    let report = home.json(&sampled);
    assert_eq!(report["chunks"], 2, "{report}");
    assert_eq!(report["cached"], 2, "{report}");
    let corpus = fs::read_to_string(dataset.join("corpus.jsonl")).unwrap();
    assert_eq!(corpus.lines().count(), 6);
}

#[test]
fn training_input_errors_say_what_to_do() {
    let home = Home::with_models();
    let out = home.path().join("m");
    let missing = home.lore(&["tune", "reranker", "--examples", "/nonexistent.jsonl", "--out", out.to_str().unwrap()]);
    assert_eq!(missing.status.code(), Some(8), "{}", String::from_utf8_lossy(&missing.stderr));

    let bad = home.path().join("bad.jsonl");
    fs::write(&bad, "{\"query\": \"q\"}\n").unwrap();
    let out_arg = out.to_str().unwrap();
    let refused = home.lore(&["tune", "reranker", "--examples", bad.to_str().unwrap(), "--out", out_arg]);
    assert_eq!(refused.status.code(), Some(4));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("line 1"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // The 4-bit e5-small container cannot be trained; the error names what can.
    let examples = home.path().join("ok.jsonl");
    fs::write(&examples, "{\"query\": \"q\", \"positive\": \"p\", \"negatives\": [\"n\"]}\n").unwrap();
    let e5 = home.lore(&[
        "tune",
        "embedder",
        "--examples",
        examples.to_str().unwrap(),
        "--base",
        "e5-small",
        "--out",
        out_arg,
    ]);
    assert_eq!(e5.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&e5.stderr).contains("minilm"), "{}", String::from_utf8_lossy(&e5.stderr));

    // Only a folder `lore tune` trained can be calibrated.
    let untrained = home.lore(&["tune", "calibrate", home.path().to_str().unwrap()]);
    assert_eq!(untrained.status.code(), Some(4));
    assert!(
        String::from_utf8_lossy(&untrained.stderr).contains("lore-tune.json"),
        "{}",
        String::from_utf8_lossy(&untrained.stderr)
    );
}
