//! `lore serve` end to end: the real binary, real models, keys made with `lore keys`, and
//! real clients: reqwest here, the official `openai` Python package and a headless Chromium
//! driven by Selenium (both from `scripts/test-deps`, found through `LORE_TEST_PYTHON`).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Home, Server, arena_docs, client, key, run_python, sources_found};
use reqwest::StatusCode;
use reqwest::blocking::multipart;
use serde_json::{Value, json};

fn write_docs(dir: &Path, files: &[(&str, &str)]) -> String {
    fs::create_dir_all(dir).unwrap();
    for (name, text) in files {
        fs::write(dir.join(name), text).unwrap();
    }
    dir.to_str().unwrap().to_string()
}

fn listed(server: &Server, key: &str, collection: &str) -> Vec<String> {
    let body: Value = client()
        .get(server.url(&format!("/api/collections/{collection}/documents")))
        .bearer_auth(key)
        .send()
        .unwrap()
        .json()
        .unwrap();
    body["documents"].as_array().unwrap().iter().map(|d| d["source"].as_str().unwrap().to_string()).collect()
}

#[test]
fn keys_keep_collections_and_document_groups_apart() {
    let home = Home::with_models();
    let docs = home.path().join("docs");
    let public = write_docs(
        &docs.join("alpha"),
        &[("handbook.txt", "The office opens at nine. Holidays are announced by the facilities team.")],
    );
    let hr = write_docs(
        &docs.join("alpha-hr"),
        &[("salaries.txt", "Salary bands for 2026: engineers earn between 70,000 and 95,000 euros.")],
    );
    let other = write_docs(&docs.join("beta"), &[("secret.txt", "Project Nightingale launches in March.")]);
    home.json(&["ingest", &public, "-c", "alpha", "--json"]);
    home.json(&["ingest", &hr, "-c", "alpha", "--groups", "hr", "--json"]);
    home.json(&["ingest", &other, "-c", "beta", "--json"]);
    let reader = key(&home, "reader", &["alpha=read"], None);
    let hr_reader = key(&home, "hr-reader", &["alpha=read"], Some("hr"));
    let writer = key(&home, "writer", &["alpha=write"], None);
    fs::write(home.path().join("lore.toml"), "llm = \"smollm2\"\n").unwrap();
    let server = Server::start(&home, &["--max-file-mb", "1"], &[]);
    let http = client();

    // Without a key, or with a wrong one: 401.
    assert_eq!(http.get(server.url("/api/collections")).send().unwrap().status(), StatusCode::UNAUTHORIZED);
    let wrong = http.get(server.url("/v1/models")).bearer_auth("lore-not-a-key").send().unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let error: Value = wrong.json().unwrap();
    assert_eq!(error["error"]["code"], "invalid_api_key", "{error}");

    // A key granted alpha sees alpha only; beta answers as if it did not exist.
    let models: Value = http.get(server.url("/v1/models")).bearer_auth(&reader).send().unwrap().json().unwrap();
    let ids: Vec<&str> = models["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["alpha"]);
    for (method, path, body) in [
        ("GET", "/api/collections/beta", Value::Null),
        ("GET", "/api/collections/beta/documents", Value::Null),
        ("POST", "/api/collections/beta/query", json!({"query": "Nightingale"})),
        ("POST", "/api/collections/missing/query", json!({"query": "Nightingale"})),
        ("POST", "/v1/chat/completions", json!({"model": "beta", "messages": [{"role": "user", "content": "When?"}]})),
    ] {
        let request = match method {
            "GET" => http.get(server.url(path)),
            _ => http.post(server.url(path)).json(&body),
        };
        let response = request.bearer_auth(&reader).send().unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method} {path}");
        let error: Value = response.json().unwrap();
        assert!(!error.to_string().contains("Nightingale"), "{error}");
    }

    // Documents of group hr: never retrieved or listed for a key without hr, and are with it.
    let reader_found = sources_found(&server, Some(&reader), "alpha", "How much do engineers earn? Salary bands");
    assert!(!reader_found.iter().any(|s| s.contains("salaries")), "{reader_found:?}");
    assert!(reader_found.iter().any(|s| s.contains("handbook")), "{reader_found:?}");
    let hr_found = sources_found(&server, Some(&hr_reader), "alpha", "How much do engineers earn? Salary bands");
    assert!(hr_found.iter().any(|s| s.contains("salaries")), "{hr_found:?}");
    assert!(!listed(&server, &reader, "alpha").iter().any(|s| s.contains("salaries")));
    assert!(listed(&server, &hr_reader, "alpha").iter().any(|s| s.contains("salaries")));
    let documents = |key: &str| -> Value {
        let info: Value =
            http.get(server.url("/api/collections/alpha")).bearer_auth(key).send().unwrap().json().unwrap();
        info["stats"]["documents"].clone()
    };
    assert_eq!((documents(&reader), documents(&hr_reader)), (json!(1), json!(2)), "hidden documents are not counted");
    let salaries = listed(&server, &hr_reader, "alpha").into_iter().find(|s| s.contains("salaries")).unwrap();
    let document = format!("/api/collections/alpha/documents/{}", salaries.trim_start_matches('/'));
    let hidden = http.get(server.url(&document)).bearer_auth(&reader).send().unwrap();
    assert_eq!(hidden.status(), StatusCode::NOT_FOUND, "{document}");

    // Nor cited: an answer for the reader cites only what it may read.
    let ask = |key: &str| -> Value {
        let response = http
            .post(server.url("/api/collections/alpha/ask"))
            .bearer_auth(key)
            .json(&json!({"question": "What are the salary bands?", "k": 5, "stream": false, "max_tokens": 8}))
            .send()
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().unwrap()
    };
    let answer = ask(&reader);
    let cited: Vec<&str> =
        answer["citations"].as_array().unwrap().iter().map(|c| c["document"].as_str().unwrap()).collect();
    assert!(!cited.is_empty() && !cited.iter().any(|s| s.contains("salaries")), "{answer}");
    let hr_answer = ask(&hr_reader);
    assert!(
        hr_answer["citations"].as_array().unwrap().iter().any(|c| c["document"].as_str().unwrap().contains("salaries"))
    );

    // Streamed, the answer comes as server-sent events: tokens, then the citations, then the end.
    let events = http
        .post(server.url("/api/collections/alpha/ask"))
        .bearer_auth(&reader)
        .json(&json!({"question": "When does the office open?", "max_tokens": 8}))
        .send()
        .unwrap();
    assert!(events.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let events = events.text().unwrap();
    let names: Vec<&str> = events.lines().filter_map(|l| l.strip_prefix("event: ")).collect();
    assert!(names.len() >= 3 && names[..names.len() - 2].iter().all(|n| *n == "token"), "{events}");
    assert_eq!(names[names.len() - 2..], ["citations", "done"], "{events}");

    // Feedback: on one's own answer, yes; on an answer built from hr passages, not without hr.
    let feedback = |key: &str, answer: &Value| {
        http.post(server.url("/api/feedback"))
            .bearer_auth(key)
            .json(&json!({"answer_id": answer["id"], "rating": "down", "correction": "Ask HR."}))
            .send()
            .unwrap()
            .status()
    };
    assert_eq!(feedback(&reader, &answer), StatusCode::CREATED);
    assert_eq!(feedback(&reader, &hr_answer), StatusCode::NOT_FOUND);
    assert_eq!(feedback(&hr_reader, &hr_answer), StatusCode::CREATED);
    let export = home.lore(&["feedback", "export", "-c", "alpha", "--format", "dpo", "--groups", ""]);
    let exported = String::from_utf8(export.stdout).unwrap();
    assert_eq!(exported.lines().count(), 1, "{exported}");
    assert!(!exported.contains("Salary bands"), "{exported}");

    // A reader may not upload; a writer may, and a hostile file name writes nothing anywhere.
    let upload = |key: &str, name: &str, bytes: Vec<u8>, groups: &str| {
        let form = multipart::Form::new()
            .part("file", multipart::Part::bytes(bytes).file_name(name.to_string()))
            .text("groups", groups.to_string());
        http.post(server.url("/api/collections/alpha/documents")).bearer_auth(key).multipart(form).send().unwrap()
    };
    let note = b"Parking permits are renewed every January at the front desk.".to_vec();
    assert_eq!(upload(&reader, "parking.txt", note.clone(), "").status(), StatusCode::FORBIDDEN);
    let before = snapshot(home.path());
    let stored = upload(&writer, "../../../parking.txt", note, "hr");
    assert_eq!(stored.status(), StatusCode::OK);
    let stored: Value = stored.json().unwrap();
    assert_eq!(stored["added"], 1, "{stored}");
    let after = snapshot(home.path());
    let new_files: Vec<&PathBuf> = after.iter().filter(|p| !before.contains(p)).collect();
    assert!(
        new_files.iter().all(|p| p.starts_with(home.path().join("collections/alpha"))),
        "files outside the collection: {new_files:?}"
    );
    assert!(!home.path().join("../parking.txt").exists() && !Path::new("/parking.txt").exists());
    assert!(listed(&server, &hr_reader, "alpha").contains(&"parking.txt".to_string()));
    assert!(!listed(&server, &reader, "alpha").contains(&"parking.txt".to_string()));
    let too_large = upload(&writer, "big.txt", vec![b'a'; 1_500_000], "");
    assert_eq!(too_large.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // A revoked key is refused at once.
    assert!(home.lore(&["keys", "revoke", "reader"]).status.success());
    let revoked = http.get(server.url("/api/collections")).bearer_auth(&reader).send().unwrap();
    assert_eq!(revoked.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(http.get(server.url("/healthz")).send().unwrap().status(), StatusCode::OK);
    let metrics = http.get(server.url("/metrics")).bearer_auth(&hr_reader).send().unwrap().text().unwrap();
    assert!(
        metrics.contains("lore_requests_total{route=\"/api/collections/{name}/query\",status=\"200\"}"),
        "{metrics}"
    );
}

/// Every file under `dir` (not following links: `models` links to the shared models).
fn snapshot(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            files.extend(snapshot(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn without_keys_it_serves_only_this_machine() {
    let home = Home::empty();
    let refused = home.lore(&["serve", "--addr", "0.0.0.0:0"]);
    assert_eq!(refused.status.code(), Some(4));
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("lore keys create"), "{message}");
    let server = Server::start(&home, &[], &[]);
    let collections = client().get(server.url("/api/collections")).send().unwrap();
    assert_eq!(collections.status(), StatusCode::OK);
    let page = client().get(server.url("/")).send().unwrap().text().unwrap();
    assert!(page.contains("<title>Lore</title>") && !page.contains("http://") && !page.contains("https://"));
    let openapi: Value = client().get(server.url("/api/openapi.json")).send().unwrap().json().unwrap();
    assert!(openapi["paths"]["/v1/chat/completions"].is_object());
}

#[test]
fn a_shutdown_lets_an_upload_in_flight_finish() {
    let home = Home::with_models();
    let mut server = Server::start(&home, &[], &[]);
    let mut form = multipart::Form::new();
    for i in 0..24 {
        let text = format!("Report {i}: the survey of valley {i} counted {} herons and {} egrets.", i * 7, i * 3);
        form = form.part("file", multipart::Part::text(text).file_name(format!("report{i:02}.txt")));
    }
    let url = server.url("/api/collections/survey/documents");
    let upload = std::thread::spawn(move || client().post(url).multipart(form).send().map(|r| r.status()));
    // Once the upload is being ingested, stop the server.
    let metrics = server.url("/metrics");
    for _ in 0..600 {
        let text = client().get(&metrics).send().unwrap().text().unwrap();
        if text.contains("lore_uploads_in_progress 1") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status();
    assert_eq!(upload.join().unwrap().unwrap(), StatusCode::OK);
    assert!(server.child.wait().unwrap().success());
    let listed = home.json(&["docs", "list", "-c", "survey", "--json"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(24), "{listed}");
}

/// The Python with `openai` and `selenium` that `scripts/test-deps` installs.

#[test]
fn the_official_openai_client_gets_cited_answers_and_refusals() {
    let home = Home::with_models();
    home.json(&["ingest", &arena_docs(), "-c", "arena", "--json"]);
    let secret = key(&home, "app", &["arena=read"], None);
    // The other tests of this file finish in seconds: the generator may have both cores.
    let server = Server::start(&home, &[], &[("LORE_TOP_K", "3"), ("LORE_LLM", "qwen-0.5b"), ("LORE_THREADS", "2")]);
    let questions = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/datasets/rag_arena_zh/qa.json");
    run_python("openai_client.py", &[&server.url("/v1"), &secret, questions]);
}

#[test]
fn the_page_uploads_answers_and_takes_feedback_in_a_real_browser() {
    let home = Home::with_models();
    fs::write(home.path().join("lore.toml"), "llm = \"qwen-0.5b\"\ntop_k = 3\n").unwrap();
    let server = Server::start(&home, &[], &[]);
    let document = home.path().join("lighthouse.md");
    fs::write(
        &document,
        "# The Harbour Lighthouse\n\nThe harbour lighthouse was built in 1874 by the engineer Agnes Thornbury. \
         Its lamp can be seen 22 nautical miles out at sea.\n",
    )
    .unwrap();
    run_python("page.py", &[&server.base, document.to_str().unwrap()]);
    let export = home.lore(&["feedback", "export", "-c", "uploads", "--format", "dpo"]);
    let exported = String::from_utf8(export.stdout).unwrap();
    assert!(exported.contains("Agnes Thornbury built it in 1874."), "the correction is not exported: {exported}");
}
