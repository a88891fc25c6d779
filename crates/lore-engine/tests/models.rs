//! The model cache: one load per model, shared, and a bound on the inferences running on it.
//! The model is an OpenAI-compatible embeddings server in this test, because only a server
//! shows from outside how many inferences reach it at once.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use lore_core::EmbedKind;
use lore_engine::{Engine, Settings};

/// Counts the requests in flight and the most there ever were.
#[derive(Default)]
struct Load {
    now: AtomicUsize,
    most: AtomicUsize,
    requests: AtomicUsize,
}

/// Answers every embeddings request with one 3-dimensional vector per input after `delay`,
/// each connection on its own thread, so that nothing here serialises the requests.
fn start_server(delay: Duration) -> (String, Arc<Load>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let load = Arc::new(Load::default());
    let counted = load.clone();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let (stream, load) = (stream.unwrap(), counted.clone());
            thread::spawn(move || answer(stream, &load, delay));
        }
    });
    (url, load)
}

fn answer(mut stream: TcpStream, load: &Load, delay: Duration) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            return;
        }
        let line = line.trim_end().to_lowercase();
        if line.is_empty() {
            break;
        }
        if let Some(value) = line.strip_prefix("content-length:") {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let request: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let inputs = request["input"].as_array().map_or(1, Vec::len);

    load.requests.fetch_add(1, Ordering::SeqCst);
    let now = load.now.fetch_add(1, Ordering::SeqCst) + 1;
    load.most.fetch_max(now, Ordering::SeqCst);
    thread::sleep(delay);
    load.now.fetch_sub(1, Ordering::SeqCst);

    let data: Vec<_> =
        (0..inputs).map(|index| serde_json::json!({"index": index, "embedding": [1.0, 0.5, 0.25]})).collect();
    let body = serde_json::json!({"object": "list", "data": data, "model": "m"}).to_string();
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

#[test]
fn a_model_is_loaded_once_and_runs_at_most_the_allowed_inferences_at_once() {
    let (url, load) = start_server(Duration::from_millis(150));
    let home = tempfile::tempdir().unwrap();
    let engine = Engine::with_inferences_per_model(Settings::at(home.path()), 2).unwrap();
    let name = format!("openai:m@{url}");

    let first = engine.models().embedder(&name).unwrap();
    let again = engine.models().embedder(&name).unwrap();
    assert!(Arc::ptr_eq(&first, &again), "the second request gets the loaded model");
    let probes = load.requests.load(Ordering::SeqCst);
    assert_eq!(probes, 1, "loading asks the server for the dimension once");
    assert_eq!(first.dimension(), 3);

    thread::scope(|scope| {
        for _ in 0..6 {
            let engine = engine.clone();
            let name = &name;
            scope.spawn(move || {
                // Every thread asks the cache itself, as a server's requests would.
                let embedder = engine.models().embedder(name).unwrap();
                embedder.embed(&["some text"], EmbedKind::Query).unwrap();
            });
        }
    });
    assert_eq!(load.requests.load(Ordering::SeqCst), probes + 6);
    assert_eq!(load.most.load(Ordering::SeqCst), 2, "two inferences at once, never more");
}
