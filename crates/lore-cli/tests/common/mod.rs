//! What the binary's tests share: a Lore home per test, with the installed models linked in.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use reqwest::blocking::Client;

use serde_json::Value;

/// The models `scripts/test` installs, in `$LORE_HOME/models` (else `~/.lore/models`).
pub fn installed_models() -> PathBuf {
    let home = std::env::var_os("LORE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".lore"));
    let models = home.join("models");
    for name in ["e5-small", "smollm2", "qwen-0.5b"] {
        assert!(
            models.join(name).join("lore-model.json").exists(),
            "model {name} is not installed in {}: run `lore models pull {name}` (scripts/test does)",
            models.display()
        );
    }
    models
}

/// A temporary `LORE_HOME`.
pub struct Home(tempfile::TempDir);

impl Home {
    pub fn with_models() -> Home {
        let home = Home(tempfile::tempdir().unwrap());
        std::os::unix::fs::symlink(installed_models(), home.path().join("models")).unwrap();
        home
    }

    pub fn empty() -> Home {
        Home(tempfile::tempdir().unwrap())
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// `lore` with this home and no settings from the environment.
    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_lore"));
        command
            .env("LORE_HOME", self.path())
            .env_remove("LORE_COLLECTION")
            .env_remove("LORE_LLM")
            .env_remove("LORE_EMBEDDER")
            .env_remove("LORE_TOP_K")
            .env_remove("LORE_PIPELINE")
            .env_remove("LORE_STORE")
            .env_remove("LORE_READ_STORE")
            .env_remove("LORE_RERANKER");
        command
    }

    pub fn lore(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// Runs `lore ARGS` expecting success and JSON on stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.lore(args);
        assert!(out.status.success(), "lore {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("lore {args:?} printed no JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
    }
}

/// A running `lore serve`, stopped (SIGTERM, then kill) when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Server {
    pub fn start(home: &Home, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut command = home.command();
        command.arg("serve").args(["--addr", "127.0.0.1:0"]).args(args).stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let base = loop {
            let line = lines.next().expect("lore serve printed its address").unwrap();
            if let Some(rest) = line.split("http://").nth(1) {
                break format!("http://{}", rest.split('/').next().unwrap());
            }
        };
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Server { child, base }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        for _ in 0..100 {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> Client {
    // The workspace's reqwest leaves the TLS provider to the program (none is used on loopback).
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder().timeout(Duration::from_secs(600)).build().unwrap()
}

pub fn python() -> PathBuf {
    let python = std::env::var_os("LORE_TEST_PYTHON").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/lore/venv/bin/python")
    });
    assert!(python.exists(), "{} is missing: run scripts/test-deps (scripts/test does)", python.display());
    python
}

pub fn run_python(script: &str, args: &[&str]) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/").to_string() + script;
    let status = Command::new(python()).arg(&path).args(args).status().unwrap();
    assert!(status.success(), "{script} failed");
}

pub fn key(home: &Home, name: &str, grants: &[&str], groups: Option<&str>) -> String {
    let mut args = vec!["keys", "create", name];
    for grant in grants {
        args.extend(["--grant", grant]);
    }
    if let Some(groups) = groups {
        args.extend(["--groups", groups]);
    }
    args.push("--json");
    let created = home.json(&args);
    assert_eq!(created["name"], name);
    created["key"].as_str().unwrap().to_string()
}

pub fn arena_docs() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/datasets/rag_arena_zh/docs").to_string()
}

/// The sources of a query's hits, as `key` (or a caller without one) sees them.
pub fn sources_found(server: &Server, key: Option<&str>, collection: &str, query: &str) -> Vec<String> {
    let mut request = client().post(server.url(&format!("/api/collections/{collection}/query")));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.json(&serde_json::json!({"query": query, "k": 10})).send().unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let body: Value = response.json().unwrap();
    body["hits"].as_array().unwrap().iter().map(|h| h["source"].as_str().unwrap().to_string()).collect()
}
