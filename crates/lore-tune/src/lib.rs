//! Lore learns its corpus: synthetic questions written by a chat model, hard negatives mined
//! from search results, and a BERT sentence embedder or cross-encoder reranker fine-tuned on
//! them — on a CPU, with candle's autograd.
//!
//! Training data are [`Example`]s: a question, a passage that answers it, and hard negatives.
//! They come from labels (a BEIR split, user feedback as triples) or from
//! [`generate_queries`]; the engine mines the negatives with [`hard_negatives`] over a
//! collection's own searches. [`train_reranker`] and [`train_embedder`] start from an HF-layout
//! BERT folder and write one that Lore's inference models load; [`fit_calibration`] then turns a
//! reranker's scores on held-out questions into a probability of relevance.
//!
//! ```
//! use std::collections::HashSet;
//! use lore_tune::{Candidate, Example, NegativeOptions, QueryForm, hard_negatives, read_examples, write_examples};
//!
//! // A chat model's reply becomes questions; a copied sentence is not a question.
//! let passage = "The Rhine rises in the Swiss Alps and flows 1,230 km to the North Sea at Rotterdam.";
//! let reply = "1. Where does the Rhine rise?\n2. The Rhine rises in the Swiss Alps and flows 1,230 km to the North Sea?";
//! assert_eq!(QueryForm::Question.parse(reply, passage, 3), ["Where does the Rhine rise?"]);
//!
//! // Negatives come from a search's ranking, without the relevant document.
//! let ranked = [
//!     Candidate { document: "rhine".into(), text: passage.into() },
//!     Candidate { document: "danube".into(), text: "The Danube rises in the Black Forest.".into() },
//! ];
//! let relevant = HashSet::from(["rhine"]);
//! let options = NegativeOptions::default();
//! let negatives = hard_negatives("Where does the Rhine rise?", passage, &relevant, &ranked, None, &options).unwrap();
//! assert_eq!(negatives, ["The Danube rises in the Black Forest."]);
//!
//! // Examples are JSON lines.
//! let example = Example { query: "Where does the Rhine rise?".into(), positive: passage.into(), negatives };
//! let dir = tempfile::tempdir().unwrap();
//! write_examples(&dir.path().join("train.jsonl"), &[example.clone()]).unwrap();
//! assert_eq!(read_examples(&dir.path().join("train.jsonl")).unwrap(), [example]);
//! ```
//!
//! Training then takes the examples and a base folder (here the installed MiniLM):
//!
//! ```no_run
//! # use lore_tune::{Example, TrainOptions, train_reranker};
//! # let examples: Vec<Example> = Vec::new();
//! let base = std::path::Path::new("/home/me/.lore/models/minilm");
//! let report = train_reranker(base, &examples, TrainOptions::default(), "my-reranker".as_ref(), &mut |_| std::ops::ControlFlow::Continue(()))?;
//! println!("validation MRR {:.3} → {:.3}", report.base_validation, report.best_validation);
//! # Ok::<(), lore_core::Error>(())
//! ```

#![warn(missing_docs)]

mod base;
mod bert;
mod calibrate;
mod embedder;
mod examples;
mod kernels;
mod negatives;
mod optim;
mod queries;
mod reranker;
mod rng;
mod train;

pub use calibrate::{Judged, fit_calibration, write_calibration};
pub use embedder::train_embedder;
pub use examples::{Example, read_examples, split_by_query, write_examples};
pub use negatives::{Candidate, NegativeOptions, hard_negatives};
pub use queries::{Passage, QueryForm, QuestionCache, generate_queries};
pub use reranker::train_reranker;
pub use train::{TrainEvent, TrainOptions, TrainReport};
