//! Training examples: a question, a passage that answers it and passages that do not, as JSON
//! lines, from a BEIR split, synthetic questions or user feedback.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use lore_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// One question with a passage that answers it and hard negatives: passages that look relevant
/// (a search ranked them high) but do not answer it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Example {
    /// The question or search query.
    pub query: String,
    /// A passage that answers it.
    pub positive: String,
    /// Passages that do not, hardest first.
    #[serde(default)]
    pub negatives: Vec<String>,
}

/// Reads examples written one JSON object per line, in either of two shapes: an [`Example`]
/// (`{"query", "positive", "negatives"}`), or a retrieval triple as `lore feedback export
/// --format triples` writes it (`{"query", "positive", "negative"}`); triples of one query and
/// positive become one example with all their negatives.
pub fn read_examples(path: &Path) -> Result<Vec<Example>> {
    #[derive(Deserialize)]
    struct Line {
        query: String,
        positive: String,
        #[serde(default)]
        negatives: Vec<String>,
        negative: Option<String>,
    }
    let file = std::fs::File::open(path).map_err(Error::io(path))?;
    let mut examples: Vec<Example> = Vec::new();
    let mut index: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (number, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(Error::io(path))?;
        if line.trim().is_empty() {
            continue;
        }
        let record: Line = serde_json::from_str(&line).map_err(|e| {
            Error::InvalidInput(format!(
                "{} line {}: {e}; expected {{\"query\", \"positive\", \"negatives\"}} or {{\"query\", \"positive\", \"negative\"}}",
                path.display(),
                number + 1
            ))
        })?;
        let negatives: Vec<String> =
            record.negatives.into_iter().chain(record.negative).filter(|n| n != &record.positive).collect();
        let key = (record.query.clone(), record.positive.clone());
        match index.get(&key) {
            Some(&at) => {
                let example = &mut examples[at];
                for negative in negatives {
                    if !example.negatives.contains(&negative) {
                        example.negatives.push(negative);
                    }
                }
            }
            None => {
                index.insert(key, examples.len());
                examples.push(Example { query: record.query, positive: record.positive, negatives });
            }
        }
    }
    Ok(examples)
}

/// Writes `examples` as JSON lines, through a temporary file.
pub fn write_examples(path: &Path, examples: &[Example]) -> Result<()> {
    let partial = path.with_extension("partial");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&partial).map_err(Error::io(&partial))?);
    for example in examples {
        let line = serde_json::to_string(example).map_err(|e| Error::InvalidInput(e.to_string()))?;
        writeln!(out, "{line}").map_err(Error::io(&partial))?;
    }
    out.into_inner().map_err(|e| Error::io(&partial)(e.into_error()))?.sync_all().map_err(Error::io(&partial))?;
    std::fs::rename(&partial, path).map_err(Error::io(path))
}

/// Splits examples into training and validation sets by question, so that no question is in
/// both: about `fraction` of the questions (at least one when there are two or more) validate.
/// Training splits with [`TrainOptions`](crate::TrainOptions)' `validation` and `seed`; the same
/// call gives a trained model's held-out questions back.
pub fn split_by_query(examples: &[Example], fraction: f64, seed: u64) -> (Vec<&Example>, Vec<&Example>) {
    let mut queries: Vec<&str> = examples.iter().map(|e| e.query.as_str()).collect();
    queries.sort_unstable();
    queries.dedup();
    let mut held = (queries.len() as f64 * fraction).round() as usize;
    if fraction > 0.0 && queries.len() >= 2 {
        held = held.max(1);
    }
    let mut rng = crate::rng::Rng::new(seed ^ 0x5EED);
    rng.shuffle(&mut queries);
    let validation: std::collections::HashSet<&str> = queries[..held].iter().copied().collect();
    examples.iter().partition(|e| !validation.contains(e.query.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feedback_triples_group_into_examples_and_a_bad_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("triples.jsonl");
        let lines = [
            r#"{"id": "ans_1", "query": "q", "positive": "p", "positive_chunk_id": 1, "negative": "n1", "negative_chunk_id": 2}"#,
            r#"{"id": "ans_1", "query": "q", "positive": "p", "negative": "n2"}"#,
            "",
            r#"{"query": "q", "positive": "p2", "negatives": ["n1", "p2"]}"#,
        ];
        std::fs::write(&path, lines.join("\n")).unwrap();
        let examples = read_examples(&path).unwrap();
        assert_eq!(
            examples,
            [
                Example { query: "q".into(), positive: "p".into(), negatives: vec!["n1".into(), "n2".into()] },
                Example { query: "q".into(), positive: "p2".into(), negatives: vec!["n1".into()] },
            ]
        );

        std::fs::write(&path, "{\"query\": \"q\", \"positive\": \"p\"}\n{\"query\": 3}\n").unwrap();
        let error = read_examples(&path).unwrap_err().to_string();
        assert!(error.contains("line 2"), "{error}");
    }

    #[test]
    fn no_question_is_both_trained_and_validated_on() {
        let examples: Vec<Example> = (0..40)
            .map(|i| Example { query: format!("q{}", i / 2), positive: format!("p{i}"), negatives: Vec::new() })
            .collect();
        let (train, validation) = split_by_query(&examples, 0.1, 7);
        assert_eq!(train.len() + validation.len(), 40);
        assert_eq!(validation.len(), 4, "2 of 20 questions, with both their examples");
        assert!(validation.iter().all(|v| train.iter().all(|t| t.query != v.query)));
    }
}
