//! Collections on PostgreSQL through the real binary: RAG-Arena answered through the official
//! openai client, two `lore serve` processes sharing one database and a read replica, ingests
//! killed with SIGKILL, and collections copied between stores. Needs the server `scripts/test` starts: `LORE_TEST_PG` (its URL) and
//! `LORE_TEST_PG_DATA` (its folder, for making a standby).

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Home, Server, arena_docs, client, key, run_python, sources_found};
use reqwest::StatusCode;
use reqwest::blocking::multipart;
use serde_json::json;

fn database() -> String {
    std::env::var("LORE_TEST_PG")
        .expect("LORE_TEST_PG is the URL of a PostgreSQL with pgvector: run scripts/test, or scripts/pg start")
}

/// `scripts/pg` of this checkout.
fn pg_script() -> String {
    format!("{}/../../scripts/pg", env!("CARGO_MANIFEST_DIR"))
}

/// Removes collection `name` from the test database, if a run before left it there.
fn drop_collection(name: &str) {
    let home = Home::empty();
    let _ = home.command().args(["collections", "delete", name, "--store", &database()]).output();
}

/// Documents on made-up topics, so that each query has one right answer.
const ANIMALS: [(&str, &str); 6] = [
    ("otter.txt", "Sea otters hold hands while sleeping so that they do not drift apart on the water."),
    ("heron.txt", "The grey heron stands still in shallow water for hours before striking at a fish."),
    ("mole.txt", "Star-nosed moles find food with twenty-two pink tentacles around their snout."),
    ("swift.txt", "Common swifts can stay airborne for ten months without landing once."),
    ("axolotl.txt", "Axolotls regrow lost limbs, parts of their heart and even parts of their brain."),
    ("gecko.txt", "Geckos climb glass using millions of microscopic hairs on their toe pads."),
];

fn write_docs(dir: &Path, count: usize) -> String {
    fs::create_dir_all(dir).unwrap();
    for i in 0..count {
        let (name, text) = ANIMALS[i % ANIMALS.len()];
        let text = format!("{text}\n\nNote {i}: observed in survey {} of region {}.", i * 7 % 13, i % 5);
        fs::write(dir.join(format!("{i:03}-{name}")), text).unwrap();
    }
    dir.to_str().unwrap().to_string()
}

/// Sources and rounded scores of `lore query QUERY -c COLLECTION --json`.
fn ranked(home: &Home, collection: &str, query: &str, pipeline: &str) -> Vec<(String, i64)> {
    ranked_k(home, collection, query, pipeline, 5)
}

fn ranked_k(home: &Home, collection: &str, query: &str, pipeline: &str, k: usize) -> Vec<(String, i64)> {
    let k = k.to_string();
    let found = home.json(&["query", query, "-c", collection, "--pipeline", pipeline, "-k", &k, "--json"]);
    found["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["source"].as_str().unwrap().to_string(), (h["score"].as_f64().unwrap() * 1e4).round() as i64))
        .collect()
}

/// (source, content hash, chunks) of every document, as `lore docs list --json` shows them.
fn documents(home: &Home, collection: &str) -> Vec<(String, String, u64)> {
    let docs = home.json(&["docs", "list", "-c", collection, "--json"]);
    docs.as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["source"].as_str().unwrap().to_string(),
                d["content_hash"].as_str().unwrap().to_string(),
                d["chunks"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_collection_moves_between_stores_without_embedding_again() {
    let home = Home::with_models();
    let docs = write_docs(&home.path().join("docs"), 6);
    drop_collection("moved");
    let ingested = home.lore(&["ingest", &docs, "-c", "animals", "--embedder", "minilm"]);
    assert!(ingested.status.success(), "{}", String::from_utf8_lossy(&ingested.stderr));
    let url = database();
    home.json(&["collections", "copy", "animals", "moved", "--store", &url, "--json"]);
    let back = home.json(&["collections", "copy", "moved", "back", "--json"]);
    assert_eq!(back["store"], "embedded");
    assert_eq!(back["stats"]["documents"], 6);

    let listed = home.json(&["collections", "list", "--json"]);
    let moved = listed.as_array().unwrap().iter().find(|c| c["name"] == "moved").unwrap();
    assert_eq!(moved["store"], url.as_str());
    assert_eq!(documents(&home, "animals"), documents(&home, "moved"));
    assert_eq!(documents(&home, "animals"), documents(&home, "back"));
    for pipeline in ["dense", "bm25", "hybrid"] {
        for query in ["which animal regrows its limbs", "sleeping on the water"] {
            let embedded = ranked(&home, "animals", query, pipeline);
            assert_eq!(embedded, ranked(&home, "moved", query, pipeline), "{pipeline}: {query}");
            assert_eq!(embedded, ranked(&home, "back", query, pipeline), "{pipeline}: {query}");
        }
    }
    // The database's collection is found without the flag only through this home's record of it.
    let elsewhere = Home::with_models();
    assert_eq!(elsewhere.lore(&["docs", "list", "-c", "moved"]).status.code(), Some(3));
    assert!(
        elsewhere.command().args(["docs", "list", "-c", "moved", "--store", &url]).output().unwrap().status.success()
    );

    let deleted = home.lore(&["collections", "delete", "moved"]);
    assert!(deleted.status.success(), "{}", String::from_utf8_lossy(&deleted.stderr));
    assert_eq!(
        elsewhere.command().args(["docs", "list", "-c", "moved", "--store", &url]).output().unwrap().status.code(),
        Some(3)
    );
}

#[test]
fn a_bad_or_dead_store_is_a_clear_error() {
    let home = Home::with_models();
    let bad = home.lore(&["collections", "create", "x", "--store", "mysql://root:hunter2@db/lore"]);
    assert_eq!(bad.status.code(), Some(4));
    let message = String::from_utf8_lossy(&bad.stderr);
    assert!(message.contains("postgres://") && !message.contains("hunter2"), "{message}");

    // Nothing listens on port 1: the error says so, is "busy" (exit 7), and hides the password.
    let dead = home.lore(&["collections", "create", "x", "--store", "postgres://lore:hunter2@127.0.0.1:1/lore"]);
    assert_eq!(dead.status.code(), Some(7));
    let message = String::from_utf8_lossy(&dead.stderr);
    assert!(message.contains("127.0.0.1:1") && !message.contains("hunter2"), "{message}");
    assert!(!home.path().join("collections/x").exists());
}

/// A home with a folder of `count` documents, and `collections` gone from the test database.
fn fresh_folder(count: usize, collections: &[&str]) -> (Home, String) {
    let home = Home::with_models();
    let docs = write_docs(&home.path().join("docs"), count);
    for name in collections {
        drop_collection(name);
    }
    (home, docs)
}

/// `lore ingest DOCS -c COLLECTION` with MiniLM into the test database, printing nothing.
fn ingest_command(home: &Home, docs: &str, collection: &str) -> Command {
    let mut command = home.command();
    command
        .args(["ingest", docs, "-c", collection, "--embedder", "minilm", "--store", &database()])
        .stdout(Stdio::null());
    command
}

#[test]
fn an_ingest_killed_twenty_times_ends_as_a_clean_ingest() {
    let (home, docs) = fresh_folder(48, &["killed", "clean"]);
    let ingest = |collection: &str| {
        let mut command = ingest_command(&home, &docs, collection);
        command.stderr(Stdio::null());
        command
    };
    // Each round rewrites 8 files, so every run has documents to replace; the kills come during
    // model loading, embedding and writing. The delays are fixed so a failure can be replayed.
    let mut state = 0x2545_f491_u64;
    let mut survived = 0;
    for round in 0..20 {
        for i in (round * 8..round * 8 + 8).map(|i| i % 48) {
            let (name, text) = ANIMALS[i % ANIMALS.len()];
            fs::write(Path::new(&docs).join(format!("{i:03}-{name}")), format!("{text}\n\nRevision {round}.")).unwrap();
        }
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let mut child = ingest("killed").spawn().unwrap();
        std::thread::sleep(Duration::from_millis(200 + state % 2500));
        let _ = Command::new("kill").args(["-KILL", &child.id().to_string()]).status();
        if child.wait().unwrap().success() {
            survived += 1;
        }
    }
    assert!(survived < 20, "every ingest finished before its kill: nothing was interrupted");
    assert!(ingest("killed").status().unwrap().success());
    assert!(ingest("clean").status().unwrap().success());

    assert_eq!(documents(&home, "killed").len(), 48);
    assert_eq!(documents(&home, "killed"), documents(&home, "clean"));
    let stats = |name: &str| home.json(&["collections", "info", name])["stats"]["chunks"].as_u64().unwrap();
    assert_eq!(stats("killed"), stats("clean"));
    // Every chunk with its BM25 score: the same postings and lengths, no leftovers of a killed
    // write. (Rankings may differ in ties: chunk ids, which break them, differ after kills.)
    for query in ["herons waiting for fish", "survey 5 of region 3 revision"] {
        let scored = |name| {
            let mut all = ranked_k(&home, name, query, "bm25", 100);
            all.sort();
            all
        };
        assert_eq!(scored("killed"), scored("clean"), "{query}");
    }
}

#[test]
fn two_processes_ingesting_one_folder_at_once_store_each_document_once() {
    let (home, docs) = fresh_folder(24, &["twice", "once"]);
    let ingest = |collection: &str| ingest_command(&home, &docs, collection).stderr(Stdio::piped()).spawn().unwrap();
    // Both find no collection, both try to make it, both write every document.
    let (first, second) = (ingest("twice"), ingest("twice"));
    for child in [first, second] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert!(ingest("once").wait().unwrap().success());
    assert_eq!(documents(&home, "twice").len(), 24);
    assert_eq!(documents(&home, "twice"), documents(&home, "once"));
    let chunks = |name: &str| home.json(&["collections", "info", name])["stats"]["chunks"].as_u64().unwrap();
    assert_eq!(chunks("twice"), chunks("once"));
}

fn upload(server: &Server, collection: &str, name: &str, text: &str) {
    let form = multipart::Form::new().part("file", multipart::Part::text(text.to_string()).file_name(name.to_string()));
    let response =
        client().post(server.url(&format!("/api/collections/{collection}/documents"))).multipart(form).send().unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{}", response.text().unwrap());
}

/// How long until `server` finds `source` for `query`, polling; panics after `limit`.
fn time_until_found(server: &Server, collection: &str, query: &str, source: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    while !sources_found(server, None, collection, query).iter().any(|s| s == source) {
        assert!(start.elapsed() < limit, "{source} not found for {query:?} within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

#[test]
fn servers_sharing_a_database_see_each_others_writes_and_a_replica_follows() {
    let url = database();
    let collection = "shared-serve";
    drop_collection(collection);
    let (home_a, home_b, home_c) = (Home::with_models(), Home::with_models(), Home::with_models());
    let a = Server::start(&home_a, &[], &[("LORE_STORE", url.as_str())]);
    let b = Server::start(&home_b, &[], &[("LORE_STORE", url.as_str())]);
    let created = client()
        .post(a.url("/api/collections"))
        .json(&json!({"name": collection, "embedder": "minilm"}))
        .send()
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    upload(&a, collection, "otter.txt", ANIMALS[0].1);
    // B has never seen the collection: it finds it in the database (and loads its embedder).
    time_until_found(&b, collection, "otters holding hands", "otter.txt", Duration::from_secs(60));

    upload(&a, collection, "heron.txt", ANIMALS[1].1);
    let seen = time_until_found(&b, collection, "heron standing in water", "heron.txt", Duration::from_secs(1));
    eprintln!("server B found server A's upload {seen:?} after it was acknowledged");

    // A hot standby of the database: C searches on it and writes to the primary.
    let data = std::env::var("LORE_TEST_PG_DATA").expect("LORE_TEST_PG_DATA is the test database's folder");
    let standby =
        Command::new("bash").args([&pg_script(), "replica", &data, &format!("{data}.replica")]).output().unwrap();
    assert!(standby.status.success(), "{}", String::from_utf8_lossy(&standby.stderr));
    let replica = String::from_utf8(standby.stdout).unwrap().trim().to_string();
    let c = Server::start(&home_c, &[], &[("LORE_STORE", url.as_str()), ("LORE_READ_STORE", replica.as_str())]);
    time_until_found(&c, collection, "heron standing in water", "heron.txt", Duration::from_secs(60));
    upload(&c, collection, "mole.txt", ANIMALS[2].1);
    time_until_found(&b, collection, "tentacles on the snout", "mole.txt", Duration::from_secs(1));
    let replicated = time_until_found(&c, collection, "tentacles on the snout", "mole.txt", Duration::from_secs(10));
    eprintln!("the replica served C's own upload {replicated:?} after it was acknowledged");
    upload(&a, collection, "swift.txt", ANIMALS[3].1);
    time_until_found(&c, collection, "birds that never land", "swift.txt", Duration::from_secs(10));
}

#[test]
fn rag_arena_on_postgres_is_answered_with_citations_and_refused_where_it_should_be() {
    let home = Home::with_models();
    let url = database();
    drop_collection("arena-pg");
    home.json(&["ingest", &arena_docs(), "-c", "arena-pg", "--store", &url, "--json"]);
    assert_eq!(home.json(&["collections", "info", "arena-pg"])["store"], url.as_str());
    let secret = key(&home, "app", &["arena-pg=read"], None);
    let server = Server::start(&home, &[], &[("LORE_TOP_K", "3"), ("LORE_LLM", "qwen-0.5b"), ("LORE_THREADS", "2")]);
    let questions = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/datasets/rag_arena_zh/qa.json");
    run_python("openai_client.py", &[&server.url("/v1"), &secret, questions, "arena-pg"]);
}

#[test]
fn lore_postgres_runs_the_projects_own_script() {
    let data = std::env::var("LORE_TEST_PG_DATA").expect("LORE_TEST_PG_DATA is the test database's folder");
    let out = Home::empty().lore(&["postgres", "url", &data]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), database());
    let missing = Home::empty().lore(&["postgres", "url", "/nonexistent/pg-data"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no PostgreSQL running"));
}
