use lore_core::{Answer, ChunkConfig, PipelineConfig, PromptStyle, RetrievalMode, Timings};
use lore_eval::{
    ARENAS, AnsweredQuestion, ArenaEntry, Judgement, Passage, QaItem, QaReport, QaScores, RubricScores, html_report,
    leaderboard_markdown, load_arena, parse_arena,
};

#[test]
fn contenders_keep_the_file_order_and_presets_are_overridden_key_by_key() {
    let contenders = parse_arena(
        r#"
        [zeta]
        preset = "tutorial"
        top_k = 5

        [alpha]
        top_k = 2
        [alpha.retrieval]
        mode = "keyword"

        [mid]
        preset = "hybrid"
        [mid.retrieval]
        rrf_k = 10.0
        "#,
        "test",
    )
    .expect("parses");
    let names: Vec<&str> = contenders.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["zeta", "alpha", "mid"]);
    let (_, tutorial) = lore_rag::load_pipeline("tutorial").expect("preset");
    assert_eq!(contenders[0].config, PipelineConfig { top_k: 5, ..tutorial });
    assert_eq!(contenders[1].config.retrieval.mode, RetrievalMode::Keyword);
    assert_eq!(contenders[1].config.chunking, None);
    // The override of one key in [retrieval] keeps the preset's other keys there.
    assert_eq!(contenders[2].config.retrieval.mode, RetrievalMode::Hybrid);
    assert_eq!(contenders[2].config.retrieval.rrf_k, 10.0);
}

#[test]
fn arena_mistakes_are_explained() {
    let error = |text: &str| parse_arena(text, "a.toml").expect_err("invalid").to_string();
    assert!(error("[x]\npreset = \"nope\"").contains("no pipeline preset 'nope'"));
    assert!(error("top_k = 3").contains("'top_k' is not a table"));
    assert!(error("[x]\ntop_kk = 3").contains("[x]"));
    assert!(error("").contains("no contender"));
    assert!(load_arena("no-such-arena").expect_err("missing").to_string().contains("tutorial"));
}

#[test]
fn built_in_arenas_parse_and_the_tutorial_baseline_comes_first() {
    for (name, _) in ARENAS {
        let (loaded, contenders) = load_arena(name).expect("built-in arena parses");
        assert_eq!(loaded, *name);
        assert!(contenders.len() >= 3, "{name} compares at least three configurations");
    }
    let (_, tutorial) = load_arena("tutorial").expect("tutorial");
    assert_eq!(tutorial[0].name, "tutorial");
    let (_, preset) = lore_rag::load_pipeline("tutorial").expect("preset");
    assert_eq!(tutorial[0].config, preset);
    assert_eq!(preset.top_k, 3);
    assert_eq!(preset.prompt, PromptStyle::Tutorial);
    assert_eq!(preset.chunking, Some(ChunkConfig::ParagraphMerge { chunk_size: 512, drop_remainder: true }));
    let (_, retrieval) = load_arena("retrieval").expect("retrieval");
    let names: Vec<&str> = retrieval.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "dense",
            "bm25",
            "hybrid",
            "hybrid-zscore",
            "graph",
            "hybrid-graph",
            "hybrid-rerank",
            "hyde",
            "multi-query",
            "multi-hop"
        ]
    );
    let (_, grounded) = load_arena("grounded").expect("grounded");
    let steps: Vec<(&str, bool, bool, bool, bool)> = grounded
        .iter()
        .map(|c| {
            let (gate, refusal) = (c.config.answerability.min_evidence > 0.0, &c.config.refusal);
            (c.name.as_str(), gate, refusal.recheck, c.config.verification.enabled, refusal.quote)
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("generator-alone", false, false, false, false),
            ("verified", false, false, true, false),
            ("grounded", true, true, true, true)
        ]
    );
    let (_, dense) = lore_rag::load_pipeline("dense").expect("preset");
    assert_eq!(grounded[2].config, dense, "the grounded contender is Lore's default pipeline");
}

fn answered(item: &QaItem, text: &str, judge: Option<u8>) -> AnsweredQuestion {
    let passages = vec![Passage {
        n: 1,
        source: "docs/qwen3.txt".into(),
        text: "Qwen3 <b>has</b> 235B parameters & more".into(),
        score: 0.8,
        cited: true,
    }];
    let contexts: Vec<&str> = passages.iter().map(|p| p.text.as_str()).collect();
    AnsweredQuestion {
        item: item.clone(),
        answer: Answer {
            question: item.question.clone(),
            text: text.into(),
            refused: false,
            citations: Vec::new(),
            prompt_tokens: 100,
            completion_tokens: 10,
            timings: Timings { total_ms: 2000.0, ..Timings::default() },
            checks: Default::default(),
        },
        scores: QaScores::of(item, text, &contexts),
        passages,
        judgement: judge.map(|s| {
            Ok(Judgement {
                scores: RubricScores { correctness: s, completeness: s, clarity: s },
                reasoning: format!("reasoning for {s}"),
                attempts: 1,
            })
        }),
        grounding: None,
    }
}

fn entry(name: &str, answers: &[AnsweredQuestion]) -> ArenaEntry {
    ArenaEntry {
        name: name.into(),
        config: PipelineConfig::default(),
        llm: "qwen-0.5b".into(),
        report: QaReport::of(answers),
        retrieval: None,
        answered: answers.to_vec(),
    }
}

#[test]
fn leaderboard_ranks_by_the_judge_and_keeps_the_arena_order() {
    let item = QaItem {
        id: "q1".into(),
        question: "Qwen3 有多少参数？".into(),
        answers: vec!["235B".into()],
        answerable: true,
    };
    let entries = [
        entry("baseline", &[answered(&item, "235B", Some(3))]),
        entry("better", &[answered(&item, "235B 参数", Some(5))]),
    ];
    let table = leaderboard_markdown(&entries);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("| rank | config | judge (1–5) | F1 |"), "{}", lines[0]);
    assert!(lines[2].starts_with("| 2 | baseline | 3.00 | 1.000 |"), "{}", lines[2]);
    assert!(lines[3].starts_with("| 1 | better | 5.00 |"), "{}", lines[3]);
    assert!(lines[2].ends_with("| 2.0 | 100/10 |"), "{}", lines[2]);
    assert!(!table.contains("nDCG"), "no qrels, no retrieval columns");
}

#[test]
fn the_report_is_one_offline_file_with_every_answer() {
    let item = QaItem {
        id: "q7".into(),
        question: "What is <script>alert(1)</script>?".into(),
        answers: vec!["a test".into()],
        answerable: true,
    };
    let entries = [
        entry("tutorial", &[answered(&item, "It is <script>alert(2)</script> [1]", Some(2))]),
        entry("other", &[answered(&item, "a test", None)]),
    ];
    let html = html_report("Arena <test>", &entries);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<svg"), "bar chart");
    assert!(!html.contains("<script"), "everything model-written is escaped");
    assert!(html.contains("&lt;script&gt;alert(2)&lt;/script&gt;"));
    assert!(html.contains("Qwen3 &lt;b&gt;has&lt;/b&gt; 235B parameters &amp; more"), "passages shown, escaped");
    assert!(html.contains("reasoning for 2"));
    assert!(html.contains("judge 2.00") && html.contains("unscored"), "the unjudged contender has no bar value");
    for external in ["src=", "href=", "@import", "url("] {
        assert!(!html.contains(external), "no external resource ({external})");
    }
    assert!(html.matches("http://").all(|_| html.contains("xmlns=\"http://www.w3.org/2000/svg\"")));
}
