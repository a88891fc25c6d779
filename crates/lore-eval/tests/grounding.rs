mod common;

use std::collections::HashMap;

use common::Scripted;
use lore_core::{EmbedKind, Embedder, Error, Result, Tokenize};
use lore_eval::{Grounding, GroundingMetric, GroundingScores, GroundingSummary, Unscored};

/// An embedder that knows a few texts by heart, so cosines are chosen by the test. Its vectors
/// are not unit length, so that cosines such as 3/5 come out exact in f32.
struct Table(HashMap<&'static str, Vec<f32>>);

impl Embedder for Table {
    fn id(&self) -> &str {
        "table"
    }
    fn dimension(&self) -> usize {
        2
    }
    fn max_tokens(&self) -> usize {
        512
    }
    fn tokenizer(&self) -> Option<&dyn Tokenize> {
        None
    }
    fn embed(&self, texts: &[&str], kind: EmbedKind) -> Result<Vec<Vec<f32>>> {
        assert_eq!(kind, EmbedKind::Query);
        texts
            .iter()
            .map(|t| self.0.get(t).cloned().ok_or_else(|| Error::Model(format!("unknown text {t:?}"))))
            .collect()
    }
}

fn no_embedder() -> Table {
    Table(HashMap::new())
}

const CONTEXTS: [&str; 2] = ["Paris is the capital of France.", "France is in western Europe."];

fn near(score: &Result<Result<f64, Unscored>>, expected: f64) {
    match score {
        Ok(Ok(value)) => assert!((value - expected).abs() < 1e-9, "got {value}, expected {expected}"),
        other => panic!("expected {expected}, got {other:?}"),
    }
}

#[test]
fn faithfulness_is_the_share_of_supported_claims() {
    let chat = Scripted::new([
        "Here are the claims:\n1. Paris is the capital of France.\n2. Paris has 12 million people.\n- Paris is in Europe.",
        "Yes",
        "No, the context does not mention the population.",
        "**Yes** - the second passage says so.",
    ]);
    let embedder = no_embedder();
    let grounding = Grounding::new(&chat, &embedder, None).expect("grounding");
    let answer = "Paris, a city of 12 million in Europe, is the capital of France.";
    near(&grounding.faithfulness("What is the capital of France?", answer, &CONTEXTS), 2.0 / 3.0);
    let conversations = chat.conversations();
    assert_eq!(conversations.len(), 4);
    assert!(conversations[0][0].content.contains(answer));
    let check = &conversations[2][0].content;
    assert!(
        check.contains("Statement: Paris has 12 million people.") && check.contains("[2] France is in western Europe."),
        "{check}"
    );
}

#[test]
fn an_unreadable_verdict_is_asked_again_then_recorded() {
    let chat = Scripted::new(["Paris is the capital of France.", "I think maybe.", "no"]);
    let embedder = no_embedder();
    let grounding = Grounding::new(&chat, &embedder, None).expect("grounding");
    near(&grounding.faithfulness("What is the capital of France?", "Paris.", &CONTEXTS), 0.0);
    let retry = &chat.conversations()[2];
    assert_eq!(retry.len(), 3, "the retry carries the unreadable reply and a reminder");
    assert_eq!(retry[1].content, "I think maybe.");
    assert!(retry[2].content.contains("yes or no"));

    let chat = Scripted::new(["Paris is the capital of France.", "Hmm.", "Perhaps.", "It depends."]);
    let embedder = no_embedder();
    let grounding = Grounding::new(&chat, &embedder, None).expect("grounding");
    let failure = grounding
        .faithfulness("What is the capital of France?", "Paris.", &CONTEXTS)
        .expect("model ran")
        .expect_err("unscored");
    assert_eq!(failure.attempts, 3);
    assert_eq!(failure.last_output, "It depends.");
    assert!(
        failure.reason.contains("statement 1") && failure.reason.contains("no yes/no verdict"),
        "{}",
        failure.reason
    );
}

#[test]
fn nothing_to_check_is_unscored_without_asking() {
    let chat = Scripted::new(Vec::<String>::new());
    let embedder = no_embedder();
    let grounding = Grounding::new(&chat, &embedder, None).expect("grounding");
    let refusal = "I cannot answer this question based on the provided documents.";
    let failure = grounding.faithfulness("Who?", refusal, &CONTEXTS).expect("no model needed").expect_err("unscored");
    assert_eq!(failure.attempts, 0);
    assert!(failure.reason.contains("refusal"));
    assert!(grounding.faithfulness("Who?", "Bob.", &[]).expect("no model needed").is_err());
    assert!(grounding.context_precision("Who?", "Bob.", &[]).expect("no model needed").is_err());
    near(&grounding.context_recall("Who?", "Bob.", &[]), 0.0);
    near(&grounding.answer_relevancy("Who?", refusal), 0.0);
    assert_eq!(chat.calls(), 0);

    // A claim list that never comes.
    let chat = Scripted::new(["", "```\n```", "Claims:"]);
    let embedder = no_embedder();
    let grounding = Grounding::new(&chat, &embedder, None).expect("grounding");
    let failure = grounding.faithfulness("Who?", "Bob.", &CONTEXTS).expect("model ran").expect_err("unscored");
    assert_eq!((failure.attempts, failure.reason.as_str()), (3, "no item found, one per line"));
}

#[test]
fn answer_relevancy_is_the_mean_cosine_of_generated_questions() {
    let table = Table(HashMap::from([
        ("What is the capital of France?", vec![1.0, 0.0]),
        ("Which city is the capital of France?", vec![1.0, 0.0]),
        ("Where is the Eiffel Tower?", vec![0.0, 1.0]),
        ("What is France's capital city?", vec![3.0, 4.0]),
    ]));
    // The header and the line that is not a question are dropped.
    let chat = Scripted::new([
        "Questions:\n1) Which city is the capital of France?\n2) Where is the Eiffel Tower?\nParis is nice.\n3) What is France's capital city?",
    ]);
    let grounding = Grounding::new(&chat, &table, None).expect("grounding");
    // cosines 1, 0 and 0.6.
    near(&grounding.answer_relevancy("What is the capital of France?", "Paris is the capital of France."), 1.6 / 3.0);
}

#[test]
fn context_precision_is_rank_weighted() {
    let ask = |verdicts: [&str; 3]| {
        let chat = Scripted::new(verdicts);
        let embedder = no_embedder();
        let grounding = Grounding::new(&chat, &embedder, None).expect("grounding");
        grounding.context_precision("What is the capital of France?", "Paris", &["a", "b", "c"])
    };
    // useful, not, useful: (1/1 + 2/3) / 2.
    near(&ask(["yes", "no", "Yes."]), (1.0 + 2.0 / 3.0) / 2.0);
    // not, useful, not: (1/2) / 1.
    near(&ask(["No.", "yes", "no"]), 0.5);
    near(&ask(["no", "no", "no"]), 0.0);
}

#[test]
fn context_recall_checks_each_gold_sentence() {
    // "2.1" does not end a sentence; "!" does.
    let chat = Scripted::new(["yes", "no"]);
    let embedder = no_embedder();
    let grounding = Grounding::new(&chat, &embedder, None).expect("grounding");
    let gold = "Paris is the capital of France. It has 2.1 million people!";
    near(&grounding.context_recall("What is the capital of France?", gold, &CONTEXTS), 0.5);
    assert!(chat.conversations()[1][0].content.contains("Statement: It has 2.1 million people!"));

    // Chinese: Chinese prompts, Chinese verdicts.
    let chat = Scripted::new(["是", "否，参考内容没有提到人口。"]);
    let embedder = no_embedder();
    let grounding = Grounding::new(&chat, &embedder, None).expect("grounding");
    near(
        &grounding.context_recall("法国的首都是哪里？", "巴黎是法国的首都。人口约210万。", &["巴黎是法国的首都。"]),
        0.5,
    );
    let prompt = &chat.conversations()[0][0].content;
    assert!(prompt.contains("陈述：巴黎是法国的首都。") && prompt.contains("是 或 否"), "{prompt}");
}

#[test]
fn citation_precision_judges_each_cited_passage_alone() {
    let chat = Scripted::new(["yes", "No.", "是"]);
    let embedder = no_embedder();
    let grounding = Grounding::new(&chat, &embedder, None).expect("grounding");
    let cited = [("Paris is the capital of France.", vec![CONTEXTS[0], CONTEXTS[1]])];
    near(&grounding.citation_precision("What is the capital of France?", &cited), 0.5);
    let prompts = chat.conversations();
    assert!(prompts[1][0].content.contains("Context:\nFrance is in western Europe."), "{:?}", prompts[1]);
    near(
        &grounding.citation_precision("法国的首都是哪里？", &[("巴黎是法国的首都。", vec!["巴黎是法国的首都。"])]),
        1.0,
    );
    // Nothing cited (a refusal): nothing to judge, and no model call.
    assert!(grounding.citation_precision("Who?", &[]).expect("no model").is_err());
    assert!(grounding.citation_precision("Who?", &[("Bob.", vec![])]).expect("no model").is_err());
    assert_eq!(chat.calls(), 3);
}

#[test]
fn summaries_count_failures_instead_of_averaging_them() {
    let unscored = || Err(Unscored { reason: "no verdict".into(), attempts: 3, last_output: "hm".into() });
    let item = |faithfulness| GroundingScores {
        faithfulness: Some(faithfulness),
        answer_relevancy: Some(Ok(0.5)),
        context_precision: Some(Ok(1.0)),
        context_recall: Some(unscored()),
        citation_precision: None,
    };
    let summary = GroundingSummary::of(&[item(Ok(1.0)), item(unscored()), item(Ok(0.0))]);
    let faithfulness = summary.faithfulness.expect("asked for");
    assert_eq!((faithfulness.value, faithfulness.scored, faithfulness.failed), (Some(0.5), 2, 1));
    let recall = summary.context_recall.expect("asked for");
    assert_eq!((recall.value, recall.failed), (None, 3));
    assert_eq!(summary.answer_relevancy.expect("asked for").value, Some(0.5));
    assert_eq!(summary.citation_precision, None, "a metric nobody asked for has no mean, not a mean of failures");
}

#[test]
fn score_runs_all_five_and_the_cache_answers_a_second_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = dir.path().join("replies.jsonl");
    let table = Table(HashMap::from([
        ("Capital of France?", vec![1.0, 0.0]),
        ("What is the capital of France?", vec![4.0, 3.0]),
    ]));
    let script = [
        "Paris is the capital of France.", // the answer's claims
        "yes",                             // claim 1 is supported
        "What is the capital of France?",  // questions the answer answers
        "yes",                             // chunk 1 is useful
        "no",                              // chunk 2 is not
        "yes",                             // the gold sentence is supported
        "yes",                             // the cited passage supports the answer
    ];
    let chat = Scripted::new(script);
    let grounding = Grounding::new(&chat, &table, Some(&cache)).expect("grounding");
    let cited = [("Paris.", vec![CONTEXTS[0]])];
    let first = grounding.score("Capital of France?", "Paris.", Some("Paris."), &CONTEXTS, &cited).expect("model ran");
    assert_eq!(
        first,
        GroundingScores {
            faithfulness: Some(Ok(1.0)),
            answer_relevancy: Some(Ok(0.8)),
            context_precision: Some(Ok(1.0)),
            context_recall: Some(Ok(1.0)),
            citation_precision: Some(Ok(1.0)),
        }
    );
    assert_eq!(chat.calls(), 7);
    let without_gold = grounding.score("Capital of France?", "Paris.", None, &CONTEXTS, &cited).expect("cached");
    assert!(matches!((&without_gold.context_precision, &without_gold.context_recall), (Some(Err(_)), Some(Err(_)))));

    // Another run with the same model id and prompts is answered from the file.
    let replay = Scripted::new(Vec::<String>::new());
    let second = Grounding::new(&replay, &table, Some(&cache)).expect("grounding").score(
        "Capital of France?",
        "Paris.",
        Some("Paris."),
        &CONTEXTS,
        &cited,
    );
    assert_eq!(second.expect("answered from the cache"), first);
    assert_eq!(replay.calls(), 0);

    // A line cut short by an interrupted run is skipped; a damaged line elsewhere is an error.
    let lines = std::fs::read_to_string(&cache).expect("cache file");
    assert_eq!(lines.lines().count(), 7);
    std::fs::write(&cache, format!("{lines}{{\"key\": \"ab")).expect("write");
    assert!(Grounding::new(&replay, &table, Some(&cache)).is_ok());
    std::fs::write(&cache, format!("not json\n{lines}")).expect("write");
    let error = Grounding::new(&replay, &table, Some(&cache)).err().expect("a damaged cache").to_string();
    assert!(
        error.contains("replies.jsonl") && error.contains("line 1") && error.contains("delete the file"),
        "{error}"
    );
}

#[test]
fn only_the_chosen_metrics_are_computed() {
    let (chat, embedder) = (Scripted::new(["yes"]), no_embedder());
    let grounding = Grounding::new(&chat, &embedder, None)
        .expect("grounding")
        .with_metrics(&GroundingMetric::parse_list("citation-precision").expect("a metric's name"));
    let cited = [("Paris.", vec![CONTEXTS[0]])];
    let scores = grounding.score("Capital of France?", "Paris.", Some("Paris."), &CONTEXTS, &cited).expect("model ran");
    assert_eq!(
        scores,
        GroundingScores {
            faithfulness: None,
            answer_relevancy: None,
            context_precision: None,
            context_recall: None,
            citation_precision: Some(Ok(1.0)),
        }
    );
    assert_eq!(chat.calls(), 1, "one verdict: the cited pair");
    assert_eq!(GroundingMetric::parse_list("all"), Ok(GroundingMetric::ALL.to_vec()));
    assert_eq!(
        GroundingMetric::parse_list("faithfulness, context-recall"),
        Ok(vec![GroundingMetric::Faithfulness, GroundingMetric::ContextRecall])
    );
    let error = GroundingMetric::parse_list("citation-precision,faithfullness").expect_err("a misspelt name");
    assert!(error.contains("faithfulness, answer-relevancy"), "{error}");
}

/// Replies the local models gave to these prompts (captured through lore-eval's reply cache; the
/// judge's are in `fixtures/judge_outputs/`).
#[test]
fn real_model_replies() {
    // SmolLM2-135M, asked for the claims of "No, only Christopher Nolan is a film director.",
    // invented a claim; its verdict opens with "yes" and then argues the opposite: the opening
    // word is the verdict, as the prompt asked.
    let claims = "The answer to the question \"What is the name of the person who is the author of the book 'The Hunger Games'?\" is \"Sathish Kalathil\"";
    let verdict = "yes\n\nThe statement is not explicitly inferred from the context as it is a statement that is not explicitly stated. The context only provides a brief description of Christopher Nolan's career and the fact that he is a director and producer.";
    let chat = Scripted::new([claims, verdict]);
    let embedder = no_embedder();
    let grounding = Grounding::new(&chat, &embedder, None).expect("grounding");
    near(
        &grounding.faithfulness(
            "Are Christopher Nolan and Sathish Kalathil both film directors?",
            "No, only Christopher Nolan is a film director.",
            &CONTEXTS,
        ),
        1.0,
    );
    assert!(chat.conversations()[1][0].content.contains(&format!("Statement: {claims}")));

    // Qwen2.5-Coder-0.5B's questions for a Chinese answer (the first and third are the same) and
    // its one-character verdicts.
    let questions = "1. 为什么模型在更广泛的通用任务上进行了训练，这可能损害了其处理复杂问题的专业能力？\n2. 为什么开发团队为了增强模型的整体多功能性，选择接受了这种性能上的权衡？\n3. 为什么模型在更广泛的通用任务上进行了训练，这可能损害了其处理复杂问题的专业能力？";
    let question = "为什么Qwen3在通用RL阶段后性能下降？";
    let table = Table(HashMap::from([
        (question, vec![1.0, 0.0]),
        ("为什么模型在更广泛的通用任务上进行了训练，这可能损害了其处理复杂问题的专业能力？", vec![4.0, 3.0]),
        ("为什么开发团队为了增强模型的整体多功能性，选择接受了这种性能上的权衡？", vec![0.0, 1.0]),
    ]));
    let chat = Scripted::new([questions, "否", "Yes."]);
    let grounding = Grounding::new(&chat, &table, None).expect("grounding");
    // cosines 0.8, 0 and 0.8.
    near(&grounding.answer_relevancy(question, "模型在更广泛的通用任务上进行了训练。"), 1.6 / 3.0);
    near(&grounding.context_precision(question, "参考答案", &["段落一", "段落二"]), 0.5);
}
