use lore_core::Language::{Chinese, English};
use lore_eval::{
    QaItem, QaScores, QaSummary, RefusalCounts, answer_in_context, exact_match, rouge_l, token_f1, tokens,
};

fn near(actual: f64, expected: f64) {
    assert!((actual - expected).abs() < 1e-12, "got {actual}, expected {expected}");
}

#[test]
fn english_follows_squad_normalisation() {
    assert_eq!(tokens("The  Eiffel-Tower, in Paris!", English), ["eiffeltower", "in", "paris"]);
    // Typographic punctuation goes too.
    assert_eq!(tokens("“An apple”—fine", English), ["applefine"]);
    assert_eq!(exact_match("The Eiffel Tower!", &["eiffel tower"], English), 1.0);
    assert_eq!(exact_match("Eiffel", &["eiffel tower"], English), 0.0);
    // pred {cat sat on mat} vs gold {cat on mat}: overlap 3, P = 3/4, R = 1, F1 = 1.5/1.75.
    near(token_f1("the cat sat on the mat", &["a cat on a mat"], English), 1.5 / 1.75);
    // The best gold counts: vs "paris france" P = 1, R = 1/2, F1 = 2/3.
    near(token_f1("Paris", &["London", "paris france"], English), 2.0 / 3.0);
    // Bag of words: order does not matter in English F1.
    near(token_f1("mat cat", &["cat mat"], English), 1.0);
    assert_eq!(token_f1("", &["cat"], English), 0.0);
    assert_eq!(token_f1("the", &["a"], English), 1.0); // both empty after normalisation
}

#[test]
fn chinese_follows_the_cmrc2018_script() {
    assert_eq!(tokens("光荣和ω-Force 公司", Chinese), ["光", "荣", "和", "ωforce", "公", "司"]);
    assert_eq!(exact_match("《战国无双3》。", &["战国无双3"], Chinese), 1.0);
    // pred 光 荣 和 ωforce 共 同 开 发 (8) vs gold 光 荣 和 ωforce (4): common run 4,
    // P = 1/2, R = 1, F1 = 2/3.
    near(token_f1("光荣和ω-force共同开发", &["光荣和ω-force"], Chinese), 2.0 / 3.0);
    // The overlap is the longest common contiguous run, not the bag: "和光荣" vs "光荣和" share
    // all three characters but the longest run is 光荣, so P = R = 2/3.
    near(token_f1("和光荣", &["光荣和"], Chinese), 2.0 / 3.0);
    near(token_f1("村雨城", &["任天堂游戏谜之村雨城", "村雨城"], Chinese), 1.0);
}

#[test]
fn rouge_l_is_the_lcs_f_measure() {
    // pred cat was found under bed (5), gold cat was under bed (4): LCS 4, P = 4/5, R = 1.
    near(rouge_l("The cat was found under the bed", &["the cat was under the bed"], English), 1.6 / 1.8);
    // 北京是中国的首都 vs 中国的首都是北京: LCS 中国的首都 = 5 of 8 each way.
    near(rouge_l("北京是中国的首都", &["中国的首都是北京"], Chinese), 0.625);
    assert_eq!(rouge_l("anything", &[] as &[&str], English), 0.0);
}

#[test]
fn answer_in_context_matches_whole_tokens() {
    let contexts = ["The Denver Broncos defeated the Carolina Panthers.", "Super Bowl 50 was played in 2016."];
    assert!(answer_in_context(&["denver broncos"], &contexts, English));
    assert!(!answer_in_context(&["Broncos won"], &contexts, English));
    assert!(!answer_in_context(&["Denver"], &["Denverites cheered."], English));
    assert!(answer_in_context(&["任天堂", "村雨城"], &["男女主角由任天堂游戏谜之村雨城改编"], Chinese));
    assert!(!answer_in_context(&["the"], &contexts, English)); // an answer empty once normalised
}

fn item(id: &str, question: &str, answers: &[&str], answerable: bool) -> QaItem {
    QaItem {
        id: id.into(),
        question: question.into(),
        answers: answers.iter().map(|a| a.to_string()).collect(),
        answerable,
    }
}

#[test]
fn scores_and_summary_separate_answers_from_refusals() {
    let answerable = item("q1", "Who won Super Bowl 50?", &["Denver Broncos"], true);
    let unanswerable = item("q2", "Qwen3 做了哪些伦理审查？", &["根据提供的文档，我无法回答该问题。"], false);
    let contexts = ["The Denver Broncos won Super Bowl 50."];
    let scores = [
        QaScores::of(&answerable, "The Denver Broncos [1]", &contexts),
        QaScores::of(&answerable, "I cannot answer this question based on the provided documents.", &contexts),
        QaScores::of(&unanswerable, "根据提供的文档，我无法回答该问题。", &[]),
        QaScores::of(&unanswerable, "Qwen3 做了红队测试。", &[]),
    ];
    assert_eq!(scores[0].exact_match, Some(0.0)); // "denver broncos 1" ≠ "denver broncos"
    near(scores[0].f1.unwrap_or_default(), 0.8); // P = 2/3, R = 1
    assert_eq!(scores[0].answer_in_context, Some(true));
    assert!(scores[1].refused);
    assert_eq!(scores[1].f1, Some(0.0));
    assert!(scores[2].refused);
    assert_eq!(scores[2].f1, None);

    let summary = QaSummary::of(&scores);
    assert_eq!(summary.questions, 4);
    assert_eq!(
        summary.refusal,
        RefusalCounts {
            refused_unanswerable: 1,
            answered_unanswerable: 1,
            refused_answerable: 1,
            answered_answerable: 1
        }
    );
    assert_eq!(summary.refusal_accuracy, Some(0.5));
    assert_eq!((summary.f1.scored, summary.f1.failed), (2, 0));
    near(summary.f1.value.unwrap_or_default(), 0.4);
    assert_eq!(summary.answer_in_context.value, Some(1.0));
    assert_eq!(QaSummary::of(&[]).exact_match.value, None);
}
