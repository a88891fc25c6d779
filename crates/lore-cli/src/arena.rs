use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::Args;
use lore_eval::{
    ArenaEntry, CUTOFFS, Grounding, Judge, QaReport, Qrels, Query, answer_question, as_run, chunk_depth, evaluate,
    headline_metrics, html_report, leaderboard_markdown, load_arena, rank_documents,
};
use lore_rag::Pipeline;

use crate::Context;
use crate::ask::PipelineModels;
use crate::eval::{
    ChatModels, DatasetArgs, ScoringArgs, dataset_name, generator, load_dataset, open_index, progress_bar, qrels_of,
    questions, reply_cache,
};

#[derive(Args)]
pub struct ArenaArgs {
    #[command(flatten)]
    dataset: DatasetArgs,
    /// A built-in arena (tutorial: the RAG tutorial's baseline and variants; retrieval: dense,
    /// bm25, hybrid, hybrid-zscore, hybrid-rerank, hyde, multi-query) or an arena TOML file: one
    /// [NAME] table of pipeline settings per contender, `preset = "NAME"` to start from a
    /// pipeline preset.
    #[arg(long, default_value = "tutorial")]
    config: String,
    /// Generator for the contenders whose settings name none [default: qwen-0.5b].
    #[arg(long, env = "LORE_LLM")]
    llm: Option<String>,
    #[command(flatten)]
    scoring: ScoringArgs,
    /// Where to write the HTML report [default: arena-DATASET-ARENA.html].
    #[arg(long)]
    report: Option<PathBuf>,
    /// Also write every result (answers, passages, scores, judgements) as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

pub fn run(ctx: &Context, args: ArenaArgs) -> Result<()> {
    let dataset = load_dataset(&args.dataset)?;
    let dataset_label = dataset_name(&args.dataset.dataset);
    let items = questions(&dataset, &args.dataset)?;
    let (arena_name, contenders) = load_arena(&args.config)?;
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

    // A contender that names its generator is comparing generators: --llm does not override it.
    let generators: Vec<String> =
        contenders.iter().map(|c| generator(ctx, [c.config.llm.as_ref(), args.llm.as_ref()])).collect();
    let mut models = ChatModels::default();
    for name in generators.iter().chain(&args.scoring.judge) {
        models.load(ctx, name)?;
    }
    let cache = reply_cache(ctx)?;
    let judge_model = args.scoring.judge.as_deref().map(|name| models.get(name)).transpose()?;
    let judge = judge_model.map(|model| Judge::new(model, Some(&cache))).transpose()?;
    let mut entries = Vec::with_capacity(contenders.len());
    for (contender, llm) in contenders.into_iter().zip(generators) {
        let mut config = contender.config;
        // Deterministic generation, so that contenders differ by their settings alone.
        config.generation.temperature = 0.0;
        let chat = models.get(&llm)?;
        let index = open_index(ctx, &args.dataset.dataset, &dataset, &config)
            .with_context(|| format!("preparing the collection of contender {}", contender.name))?;
        let grounding = args
            .scoring
            .grounding
            .then(|| Grounding::new(judge_model.unwrap_or(chat), index.embedder.as_ref(), Some(&cache)))
            .transpose()?;

        // The generator also rewrites and judges passages where the contender's pipeline asks.
        let models_for_retrieval =
            PipelineModels { chat: None, reranker: PipelineModels::cross_encoder(ctx, &config)? };
        let models_for_retrieval = &models_for_retrieval;
        let retrieval = match &judged {
            Some((queries, qrels)) => {
                let stats = index.collection.stats()?;
                let deep =
                    lore_core::PipelineConfig { top_k: chunk_depth(stats.documents, stats.chunks), ..config.clone() };
                let pipeline = models_for_retrieval
                    .attach(Pipeline::new(&index.collection, index.embedder.as_ref(), deep)?)
                    .with_chat(chat);
                let bar = progress_bar(queries.len(), &format!("{}: retrieving", contender.name));
                let ranked = rank_documents(&pipeline, queries, &mut || bar.inc(1))?;
                bar.finish_and_clear();
                Some(headline_metrics(&evaluate(&as_run(&ranked), qrels, &CUTOFFS).mean))
            }
            None => None,
        };

        let pipeline = models_for_retrieval
            .attach(Pipeline::new(&index.collection, index.embedder.as_ref(), config.clone())?)
            .with_chat(chat);
        let bar = progress_bar(items.len(), &format!("{}: answering", contender.name));
        let mut answered = Vec::with_capacity(items.len());
        for item in &items {
            answered.push(answer_question(
                &pipeline,
                &index.collection,
                chat,
                item,
                judge.as_ref(),
                grounding.as_ref(),
            )?);
            bar.inc(1);
        }
        bar.finish_and_clear();
        eprintln!("{}: done ({} questions, collection {})", contender.name, answered.len(), index.name);
        entries.push(ArenaEntry {
            name: contender.name,
            config,
            llm,
            report: QaReport::of(&answered),
            retrieval,
            answered,
        });
    }

    let judge_note = args.scoring.judge.as_deref().map_or("no judge".to_string(), |j| format!("judge {j}"));
    let title = format!("Arena '{arena_name}' on {dataset_label}: {} questions, {judge_note}", items.len());
    println!("## {title}\n\n{}", leaderboard_markdown(&entries));
    let report_path =
        args.report.clone().unwrap_or_else(|| PathBuf::from(format!("arena-{dataset_label}-{arena_name}.html")));
    std::fs::write(&report_path, html_report(&title, &entries))
        .with_context(|| format!("writing {}", report_path.display()))?;
    eprintln!("report: {}", report_path.display());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&entries)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
