mod common;

use common::Scripted;
use lore_eval::{Judge, JudgeSummary, Judgement, RubricScores, Unscored};

fn scores(correctness: u8, completeness: u8, clarity: u8) -> RubricScores {
    RubricScores { correctness, completeness, clarity }
}

/// Judges one English item with the judge replying `replies` in turn.
fn judge_with(replies: &[&str]) -> (Result<Judgement, Unscored>, Scripted) {
    let chat = Scripted::new(replies.iter().copied());
    let outcome = Judge::new(&chat, None)
        .expect("judge")
        .judge("Who directed Inception?", "Christopher Nolan", "Nolan directed it.")
        .expect("the scripted model answers");
    (outcome, chat)
}

fn scored(replies: &[&str]) -> RubricScores {
    match judge_with(replies).0 {
        Ok(judgement) => judgement.scores,
        Err(failure) => panic!("unscored: {failure:?}"),
    }
}

#[test]
fn the_gold_answer_is_the_reference_in_both_languages() {
    let (_, chat) = judge_with(&[r#"{"correctness": 5, "completeness": 5, "clarity": 5}"#]);
    let prompt = &chat.conversations()[0][1].content;
    assert!(
        prompt.contains("Reference answer: Christopher Nolan")
            && prompt.contains("Answer to grade: Nolan directed it."),
        "{prompt}"
    );

    let chat = Scripted::new([r#"{"correctness": 5, "completeness": 4, "clarity": 5}"#]);
    let judgement = Judge::new(&chat, None)
        .expect("judge")
        .judge("《盗梦空间》的导演是谁？", "克里斯托弗·诺兰", "诺兰。")
        .expect("ran");
    assert_eq!(judgement.expect("scored").scores, scores(5, 4, 5));
    let prompt = &chat.conversations()[0][1].content;
    assert!(prompt.contains("参考答案：克里斯托弗·诺兰") && prompt.contains("待评分的回答：诺兰。"), "{prompt}");
}

#[test]
fn refusals_are_graded_without_the_model() {
    let chat = Scripted::new(Vec::<&str>::new());
    let judge = Judge::new(&chat, None).expect("judge");
    let refusal = "根据提供的文档，我无法回答该问题。";
    let grade =
        |gold: &str, answer: &str| judge.judge("伦理审查流程是什么？", gold, answer).expect("ran").expect("graded");
    assert_eq!(grade(refusal, refusal).scores, scores(5, 5, 5));
    assert_eq!(grade(refusal, "团队设立了伦理委员会。").scores, scores(1, 1, 1), "an invented answer");
    assert_eq!(grade("设立了伦理委员会。", refusal).scores, scores(1, 1, 1), "a wrong refusal");
    assert_eq!(chat.calls(), 0);
}

// The replies in these tests are constructed, each in a shape that small models are known to
// write; `real_model_replies` below feeds the replies the local models actually gave.
#[test]
fn forgiving_json() {
    let fenced = "Here is my evaluation:\n```json\n{\n  \"reasoning\": \"Correct but terse.\",\n  \"correctness\": 5,\n  \"completeness\": 4,\n  \"clarity\": 5,\n}\n```";
    assert_eq!(scored(&[fenced]), scores(5, 4, 5));
    assert_eq!(judge_with(&[fenced]).0.expect("scored").reasoning, "Correct but terse.");
    assert_eq!(scored(&["{'correctness': 4, 'completeness': '3/5', 'clarity': \"5分\"}"]), scores(4, 3, 5));
    assert_eq!(scored(&["｛“正确性”：4，“完整性”：3，“清晰简洁”：5｝"]), scores(4, 3, 5));
    assert_eq!(scored(&["{correctness: 2, completeness: 1, Clarity & Conciseness: 4}"]), scores(2, 1, 4));
    assert_eq!(
        scored(&[r#"{"scores": {"Correctness": {"score": 3}, "Completeness": 2, "Clarity": 4}}"#]),
        scores(3, 2, 4)
    );
    // A quote inside the reasoning does not end the string.
    let quoted = r#"{"reasoning": "It says "Nolan" only", "correctness": 4, "completeness": 3, "clarity": 5}"#;
    assert_eq!(judge_with(&[quoted]).0.expect("scored").reasoning, "It says \"Nolan\" only");
}

#[test]
fn scores_in_prose() {
    let prose =
        "**Correctness (1-5):** 4/5 - right director.\n**Completeness:** 3\n**Clarity & Conciseness:** 5 out of 5";
    let judgement = judge_with(&[prose]).0.expect("scored");
    assert_eq!(judgement.scores, scores(4, 3, 5));
    assert_eq!(judgement.reasoning, prose);
    assert_eq!(scored(&["正确性：4分\n完整性：3分\n清晰简洁：5分"]), scores(4, 3, 5));
}

#[test]
fn out_of_range_scores_are_asked_again() {
    let (outcome, chat) = judge_with(&[
        "correctness: 8/10, completeness: 7/10, clarity: 9/10",
        r#"{"correctness": 4, "completeness": 4, "clarity": 5}"#,
    ]);
    let judgement = outcome.expect("scored on the second attempt");
    assert_eq!((judgement.scores, judgement.attempts), (scores(4, 4, 5), 2));
    let retry = &chat.conversations()[1];
    assert_eq!(retry.len(), 4);
    assert!(retry[3].content.contains("the correctness score 8 is not an integer from 1 to 5"), "{}", retry[3].content);
    let fractional = r#"{"correctness": 4.5, "completeness": 4, "clarity": 5}"#;
    let failure = judge_with(&[fractional; 3]).0.expect_err("never an integer");
    assert_eq!(failure.reason, "the correctness score 4.5 is not an integer from 1 to 5");
}

#[test]
fn a_reply_that_never_parses_is_recorded_not_defaulted() {
    let template = r#"{"reasoning": "...", "correctness": <1-5>, "completeness": <1-5>, "clarity": <1-5>}"#;
    let (outcome, chat) = judge_with(&[template, "The answer is good.", template]);
    let failure = outcome.expect_err("unscored");
    assert_eq!(failure.attempts, 3);
    assert_eq!(failure.reason, "no correctness score found");
    assert_eq!(failure.last_output, template);
    assert_eq!(chat.calls(), 3);

    let chat = Scripted::new(["nothing"]);
    let single = Judge::new(&chat, None).expect("judge").with_max_attempts(1);
    assert_eq!(single.judge("Q?", "A", "B").expect("ran").expect_err("unscored").attempts, 1);
}

#[test]
fn the_summary_averages_item_means_and_counts_failures() {
    let outcomes = [
        Ok(Judgement { scores: scores(5, 4, 3), reasoning: String::new(), attempts: 1 }),
        Err(Unscored { reason: "no correctness score found".into(), attempts: 3, last_output: String::new() }),
        Ok(Judgement { scores: scores(1, 1, 1), reasoning: String::new(), attempts: 2 }),
    ];
    let summary = JudgeSummary::of(&outcomes);
    // Item scores 4 and 1.
    assert_eq!((summary.score.value, summary.score.scored, summary.score.failed), (Some(2.5), 2, 1));
    assert_eq!(summary.correctness.value, Some(3.0));
}

#[test]
fn judgements_are_cached_by_model_and_prompt() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = dir.path().join("judge.jsonl");
    let chat = Scripted::new(["Correctness: 9", r#"{"correctness": 3, "completeness": 2, "clarity": 4}"#]);
    let first = Judge::new(&chat, Some(&cache)).expect("judge").judge("Q?", "gold", "answer").expect("ran");
    let replay = Scripted::new(Vec::<String>::new());
    let judge = Judge::new(&replay, Some(&cache)).expect("judge");
    assert_eq!(judge.judge("Q?", "gold", "answer").expect("from the cache"), first);
    assert_eq!(replay.calls(), 0);
    // Another answer is another prompt.
    assert!(judge.judge("Q?", "gold", "another answer").is_err());
}

/// The replies the local models gave to the judge's real prompts (which model, item and attempt:
/// `fixtures/judge_outputs/README.md`), and what must come of each.
#[test]
fn real_model_replies() {
    let fixture = |name: &str| {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/judge_outputs").join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let judge_once = |reply: &str| {
        let chat = Scripted::new([reply]);
        Judge::new(&chat, None).expect("judge").with_max_attempts(1).judge("Q?", "gold", "answer").expect("ran")
    };

    // Qwen2.5-Coder-0.5B writes bare JSON, Chinese reasoning with typographic quotes inside.
    let judgement = judge_once(&fixture("qwen-zh-json-with-typographic-quotes.txt")).expect("scored");
    assert_eq!(judgement.scores, scores(4, 4, 4));
    assert!(
        judgement.reasoning.starts_with("Qwen3模型在经过“思考模式融合”和“通用RL”阶段后"),
        "{}",
        judgement.reasoning
    );
    assert_eq!(
        judge_once(&fixture("qwen-zh-json-scores-a-made-up-answer.txt")).expect("scored").scores,
        scores(3, 3, 3)
    );
    assert_eq!(judge_once(&fixture("qwen-zh-json-scores-a-wrong-answer.txt")).expect("scored").scores, scores(1, 1, 1));
    assert_eq!(judge_once(&fixture("qwen-en-json.txt")).expect("scored").scores, scores(5, 5, 5));

    // SmolLM2-135M does not follow the format: it answers the question, rambles until the token
    // limit, or echoes the reminder with its "<1-5>" placeholders and "1 到 5" scale. None of it
    // may turn into a score.
    for name in [
        "smollm2-en-answers-the-question-instead.txt",
        "smollm2-zh-rambles-to-the-token-limit.txt",
        "smollm2-zh-retry-echoes-the-reminder.txt",
    ] {
        let failure = judge_once(&fixture(name)).expect_err(name);
        assert_eq!(failure.reason, "no correctness score found", "{name}");
        assert_eq!(failure.last_output, fixture(name));
    }
    // The real retry sequence: the reminder did not help, and the item is recorded as unscored
    // after both attempts.
    let (first, second) =
        (fixture("smollm2-zh-rambles-to-the-token-limit.txt"), fixture("smollm2-zh-retry-echoes-the-reminder.txt"));
    let chat = Scripted::new([first.as_str(), second.as_str()]);
    let failure = Judge::new(&chat, None)
        .expect("judge")
        .with_max_attempts(2)
        .judge("问题？", "参考", "回答")
        .expect("ran")
        .expect_err("unscored");
    assert_eq!((failure.attempts, failure.last_output.as_str()), (2, second.as_str()));
    let reminder = &chat.conversations()[1][3].content;
    assert!(reminder.starts_with("你的回复无法使用：no correctness score found。"), "{reminder}");
}
