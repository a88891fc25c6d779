//! `lore ingest` in one process while this one queries the same collection in a loop: the
//! reader never fails and finds documents as they are committed, without reopening.

use std::collections::HashSet;
use std::fs;

use std::process::Command;
use std::time::{Duration, Instant};

use lore_engine::{Engine, SearchRequest, Settings};

const DOCUMENTS: usize = 200;

mod common;

#[test]
fn a_querying_process_sees_another_process_ingest() {
    let home = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(common::installed_models(), home.path().join("models")).unwrap();
    let lore = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lore"));
        command.args(args).env("LORE_HOME", home.path()).env_remove("LORE_COLLECTION").env_remove("LORE_EMBEDDER");
        command
    };
    let seed = home.path().join("seed");
    fs::create_dir(&seed).unwrap();
    fs::write(seed.join("intro.txt"), "Zebra field notes begin here: an introduction to the survey.").unwrap();
    assert!(lore(&["ingest", seed.to_str().unwrap(), "-c", "live"]).status().unwrap().success());

    let batch = home.path().join("batch");
    fs::create_dir(&batch).unwrap();
    for i in 0..DOCUMENTS {
        let text = format!("Zebra field report {i}: the striped herd of valley {i} crossed the river in season {i}.");
        fs::write(batch.join(format!("report{i:03}.txt")), text).unwrap();
    }

    let engine = Engine::new(Settings::at(home.path())).unwrap();
    let request = SearchRequest {
        collection: Some("live".into()),
        pipeline: Some("hybrid".into()),
        top_k: Some(1000),
        ..SearchRequest::default()
    };
    let session = engine.session(&request, false).unwrap();
    let reports = |session: &lore_engine::Session| -> usize {
        let found = session.retrieve("zebra field report striped herd").expect("a query during the ingest");
        let sources: HashSet<String> =
            found.hits.into_iter().map(|h| h.source).filter(|s| s.contains("report")).collect();
        sources.len()
    };
    assert_eq!(reports(&session), 0);

    let mut writer = lore(&["ingest", batch.to_str().unwrap(), "-c", "live", "--json"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut seen = vec![0];
    loop {
        let exited = writer.try_wait().unwrap();
        let count = reports(&session);
        assert!(count >= *seen.last().unwrap(), "a committed document vanished: {seen:?} then {count}");
        if seen.last() != Some(&count) {
            seen.push(count);
        }
        if let Some(status) = exited {
            assert!(status.success(), "lore ingest failed");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(600), "the ingest did not end");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The same handle, never reopened, sees every document once the writer is done.
    assert_eq!(reports(&session), DOCUMENTS, "counts seen while ingesting: {seen:?}");
    assert!(
        seen.iter().any(|&n| n > 0 && n < DOCUMENTS),
        "documents appear as they are committed, batch by batch: {seen:?}"
    );
    let keyword = session.store.search_keyword("report 137", 5, None).unwrap();
    assert!(keyword.iter().any(|h| h.source.ends_with("report137.txt")), "{keyword:?}");
}
