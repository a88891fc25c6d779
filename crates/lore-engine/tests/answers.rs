//! The answer log: answers kept with their passages' groups, feedback only where the reader
//! sees every passage, and the three export formats.

use lore_core::{Answer, Citation, Filter, Hit, Metadata, Timings};
use lore_engine::answers::{AnswerLog, ExportFormat, Feedback, Rating};
use serde_json::json;

fn hit(chunk_id: i64, text: &str, groups: Option<&[&str]>) -> Hit {
    let mut metadata = Metadata::new();
    if let Some(groups) = groups {
        metadata.insert("groups".into(), json!(groups));
    }
    Hit { chunk_id, source: format!("doc{chunk_id}.txt"), text: text.into(), score: 0.5, metadata }
}

fn answer(text: &str, hits: &[Hit], cited: &[i64]) -> Answer {
    Answer {
        question: "q".into(),
        text: text.into(),
        refused: false,
        citations: hits
            .iter()
            .enumerate()
            .map(|(i, h)| Citation {
                n: i + 1,
                chunk_id: h.chunk_id,
                source: h.source.clone(),
                score: h.score,
                cited: cited.contains(&h.chunk_id),
            })
            .collect(),
        prompt_tokens: 10,
        completion_tokens: 5,
        timings: Timings::default(),
        checks: Default::default(),
    }
}

#[test]
fn feedback_becomes_training_data_for_those_who_may_see_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = AnswerLog::in_home(dir.path()).unwrap();
    let public = [hit(1, "The office opens at nine.", None), hit(2, "Parking is free.", None)];
    let private = [hit(3, "Salaries rise 3%.", Some(&["hr"])), hit(1, "The office opens at nine.", None)];
    let open =
        log.record("handbook", "When does the office open?", &answer("At nine [1].", &public, &[1]), &public).unwrap();
    let hr = log.record("handbook", "Do salaries rise?", &answer("Yes [1].", &private, &[3]), &private).unwrap();
    assert_eq!(open.passages[0].text, "The office opens at nine.");
    assert_eq!(hr.passages[0].groups, ["hr"]);

    let everyone = Filter::readable_by(Vec::<String>::new());
    let hr_reader = Filter::readable_by(["hr"]);
    assert!(log.get(&hr.id, Some(&everyone)).unwrap().is_none());
    assert!(log.get(&hr.id, Some(&hr_reader)).unwrap().is_some());
    let rate = |id: &str, rating, correction: Option<&str>| Feedback {
        answer_id: id.into(),
        rating,
        correction: correction.map(Into::into),
        comment: None,
    };
    let denied = log.add_feedback(&rate(&hr.id, Rating::Up, None), Some(&everyone)).unwrap_err();
    assert_eq!(denied.kind(), lore_core::ErrorKind::NotFound);
    log.add_feedback(&rate(&open.id, Rating::Up, None), Some(&everyone)).unwrap();
    log.add_feedback(&rate(&hr.id, Rating::Down, Some("Salaries rise 3% in April [1].")), Some(&hr_reader)).unwrap();

    let sft = log.export("handbook", ExportFormat::Sft, None).unwrap();
    assert_eq!(sft.len(), 2);
    assert_eq!(sft[0]["messages"][2]["content"], "At nine [1].");
    assert_eq!(sft[1]["messages"][2]["content"], "Salaries rise 3% in April [1].");
    let dpo = log.export("handbook", ExportFormat::Dpo, None).unwrap();
    assert_eq!(dpo.len(), 1);
    assert_eq!(
        (dpo[0]["chosen"].as_str(), dpo[0]["rejected"].as_str()),
        (Some("Salaries rise 3% in April [1]."), Some("Yes [1]."))
    );
    let triples = log.export("handbook", ExportFormat::Triples, None).unwrap();
    assert_eq!(
        triples,
        [json!({"id": open.id, "query": "When does the office open?", "positive": "The office opens at nine.",
        "positive_chunk_id": 1, "negative": "Parking is free.", "negative_chunk_id": 2})]
    );
    // What a reader outside hr may export: nothing built from hr's passages.
    assert_eq!(log.export("handbook", ExportFormat::Sft, Some(&everyone)).unwrap().len(), 1);
    assert!(log.export("other", ExportFormat::Sft, None).unwrap().is_empty());
    assert!("jsonl".parse::<ExportFormat>().is_err());
}

#[test]
fn deleting_a_collection_forgets_its_answers() {
    let home = tempfile::tempdir().unwrap();
    let engine = lore_engine::Engine::new(lore_engine::Settings::at(home.path())).unwrap();
    engine.catalog().create("gone", "toy", 2, lore_core::ChunkConfig::Whole).unwrap();
    let log = AnswerLog::in_home(home.path()).unwrap();
    let hits = [hit(1, "The office opens at nine.", None)];
    let logged = log.record("gone", "When?", &answer("At nine [1].", &hits, &[1]), &hits).unwrap();
    let kept = log.record("kept", "When?", &answer("At nine [1].", &hits, &[1]), &hits).unwrap();
    engine.delete_collection("gone").unwrap();
    assert!(!engine.catalog().exists("gone"));
    assert!(log.get(&logged.id, None).unwrap().is_none());
    assert!(log.get(&kept.id, None).unwrap().is_some());
}
