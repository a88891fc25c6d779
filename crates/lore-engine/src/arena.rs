//! Arena runs: several pipeline configurations on one dataset, each answering every question
//! (and, where the dataset has qrels, ranking its queries), into entries that
//! `lore_eval::leaderboard_markdown` and `lore_eval::html_report` present.

use lore_core::{PipelineConfig, Result};
use lore_eval::{
    ArenaEntry, CUTOFFS, QaReport, Qrels, Query, as_run, evaluate, headline_metrics, load_arena, rank_documents,
};

use crate::eval::{DatasetRequest, Scoring, qrels_of};
use crate::{Engine, Progress};

/// What an arena run compares, on what.
#[derive(Clone, Debug)]
pub struct ArenaRequest {
    /// The dataset and its sample.
    pub dataset: DatasetRequest,
    /// A built-in arena (`lore_eval::ARENAS`) or an arena TOML file.
    pub arena: String,
    /// The generator of the contenders whose settings name none.
    pub llm: Option<String>,
    /// How answers are scored.
    pub scoring: Scoring,
}

/// The entries of an arena run, with names for its report.
pub struct ArenaOutcome {
    /// The arena's name.
    pub arena: String,
    /// The dataset folder's name.
    pub dataset: String,
    /// "Arena 'NAME' on DATASET: N questions, judge J".
    pub title: String,
    /// One entry per contender, in the arena's order.
    pub entries: Vec<ArenaEntry>,
}

impl Engine {
    /// Runs every contender of `request.arena` on the dataset.
    pub fn arena(&self, request: &ArenaRequest, progress: &dyn Progress) -> Result<ArenaOutcome> {
        let dataset = request.dataset.load()?;
        let items = request.dataset.questions(&dataset)?;
        let (arena, contenders) = load_arena(&request.arena)?;
        // Retrieval is scored on the questions the qrels judge, when the dataset has qrels.
        let judged: Option<(Vec<Query>, Qrels)> = dataset.judged().map(|(_, qrels)| {
            let queries: Vec<Query> = items
                .iter()
                .filter(|i| qrels.contains_key(&i.id))
                .map(|i| Query { id: i.id.clone(), text: i.question.clone() })
                .collect();
            let qrels = qrels_of(qrels, &queries);
            (queries, qrels)
        });
        let mut entries = Vec::with_capacity(contenders.len());
        for contender in contenders {
            let mut config = contender.config;
            // Deterministic generation, so that contenders differ by their settings alone.
            config.generation.temperature = 0.0;
            // A contender that names its generator is comparing generators: `llm` does not
            // override it.
            let llm = self.settings().llm_or(&[config.llm.as_deref(), request.llm.as_deref()]);
            let index = self.eval_index(&request.dataset.dir, &dataset, &config, progress)?;
            let retrieval = match &judged {
                Some((queries, qrels)) => {
                    let deep = PipelineConfig { top_k: index.chunk_depth()?, ..config.clone() };
                    let session = index.session(self, &contender.name, deep, &llm, true)?;
                    progress.start(&format!("{}: retrieving", contender.name), queries.len());
                    let mut done = 0;
                    let ranked = rank_documents(&session.pipeline()?, queries, &mut || {
                        done += 1;
                        progress.update(done, "");
                    });
                    progress.finish();
                    Some(headline_metrics(&evaluate(&as_run(&ranked?), qrels, &CUTOFFS).mean))
                }
                None => None,
            };
            let session = index.session(self, &contender.name, config.clone(), &llm, true)?;
            let what = format!("{}: answering", contender.name);
            let answered = self.answer_all(&session, &items, &request.scoring, &what, progress)?;
            progress.note(&format!(
                "{}: done ({} questions, collection {})",
                contender.name,
                answered.len(),
                index.name
            ));
            entries.push(ArenaEntry {
                name: contender.name,
                config,
                llm,
                report: QaReport::of(&answered),
                retrieval,
                answered,
            });
        }
        let judge = request.scoring.judge.as_deref().map_or("no judge".to_string(), |j| format!("judge {j}"));
        let dataset_name = request.dataset.name();
        let title = format!("Arena '{arena}' on {dataset_name}: {} questions, {judge}", items.len());
        Ok(ArenaOutcome { arena, dataset: dataset_name, title, entries })
    }
}
