//! The OpenAI-compatible client against a scripted HTTP server that misbehaves on demand.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use lore_core::{ChatModel, EmbedKind, Embedder, ErrorKind, FinishReason, GenerationOptions, Message};
use lore_models::{OpenAiChat, OpenAiConfig, OpenAiEmbedder, load_chat, load_embedder, load_reranker, spec};
use serde_json::{Value, json};

/// A request as the server saw it.
struct Received {
    path: String,
    /// Header lines, lower-cased.
    headers: Vec<String>,
    body: Value,
}

#[derive(Clone)]
enum Reply {
    /// A whole response with a `Content-Length`.
    Whole { status: u16, extra_headers: &'static str, content_type: &'static str, body: String },
    /// A chunked `text/event-stream` body, one TCP write per piece with a pause between them.
    Stream { pieces: Vec<Vec<u8>>, ending: Ending },
    /// Reads the request and never answers.
    Silent,
}

#[derive(Clone, Copy)]
enum Ending {
    /// The final empty chunk, as a server that finished its response sends.
    Complete,
    /// The connection closes without the final chunk, as when a server crashes.
    Dropped,
    /// The connection stays open and quiet.
    Stalled,
}

struct TestServer {
    base_url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl TestServer {
    /// Answers the n-th request (from 0) with `reply(n, request)`, one connection per request.
    fn start(reply: impl Fn(usize, &Received) -> Reply + Send + 'static) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a local port");
        let base_url = format!("http://{}/v1", listener.local_addr().expect("local address"));
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&received);
        thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let mut stream = stream.expect("accept a connection");
                let request = read_request(&mut stream);
                let reply = reply(n, &request);
                log.lock().expect("request log").push(request);
                // The client hanging up early is one of the scripted cases, not a server failure.
                let _ = send(&mut stream, reply);
            }
        });
        TestServer { base_url, received }
    }

    /// Answers the requests with `replies` in turn.
    fn scripted(replies: Vec<Reply>) -> TestServer {
        TestServer::start(move |n, _| replies[n].clone())
    }

    fn config(&self) -> OpenAiConfig {
        let mut config = OpenAiConfig::new("test-model", &self.base_url);
        config.api_key = Some("sk-test".to_owned());
        config.timeout = Duration::from_secs(1);
        config.max_retries = 2;
        config
    }

    fn requests(&self) -> std::sync::MutexGuard<'_, Vec<Received>> {
        self.received.lock().expect("request log")
    }
}

fn read_request(stream: &mut TcpStream) -> Received {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line).expect("request line");
    let path = request_line.split_whitespace().nth(1).unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("header line");
        let line = line.trim_end().to_lowercase();
        if line.is_empty() {
            break;
        }
        headers.push(line);
    }
    let length = headers
        .iter()
        .find_map(|header| header.strip_prefix("content-length:"))
        .map_or(0, |length| length.trim().parse().expect("numeric content-length"));
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("request body");
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Received { path, headers, body }
}

fn send(stream: &mut TcpStream, reply: Reply) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    match reply {
        Reply::Whole { status, extra_headers, content_type, body } => write!(
            stream,
            "HTTP/1.1 {status} Scripted\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
             Connection: close\r\n{extra_headers}\r\n{body}",
            body.len()
        ),
        Reply::Stream { pieces, ending } => {
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\
                 Connection: close\r\n\r\n"
            )?;
            for piece in pieces {
                write!(stream, "{:x}\r\n", piece.len())?;
                stream.write_all(&piece)?;
                stream.write_all(b"\r\n")?;
                stream.flush()?;
                thread::sleep(Duration::from_millis(5));
            }
            match ending {
                Ending::Complete => stream.write_all(b"0\r\n\r\n"),
                Ending::Dropped => Ok(()),
                Ending::Stalled => {
                    thread::sleep(Duration::from_secs(10));
                    Ok(())
                }
            }
        }
        Reply::Silent => {
            thread::sleep(Duration::from_secs(10));
            Ok(())
        }
    }
}

fn json_reply(status: u16, body: Value) -> Reply {
    Reply::Whole { status, extra_headers: "", content_type: "application/json", body: body.to_string() }
}

fn delta(content: &str) -> Value {
    json!({"choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]})
}

fn finish(reason: &str) -> Value {
    json!({"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]})
}

fn sse(events: &[Value]) -> String {
    events.iter().map(|event| format!("data: {event}\n\n")).collect()
}

/// `text` cut every `size` bytes, so events and multi-byte characters are split across writes.
fn cut(text: &str, size: usize) -> Vec<Vec<u8>> {
    text.as_bytes().chunks(size).map(<[u8]>::to_vec).collect()
}

fn stream_of(events: &[Value], done: bool) -> Reply {
    let mut text = sse(events);
    if done {
        text.push_str("data: [DONE]\n\n");
    }
    Reply::Stream { pieces: cut(&text, 7), ending: Ending::Complete }
}

fn ask(model: &OpenAiChat) -> (lore_core::Result<lore_core::Generation>, Vec<String>) {
    let mut pieces = Vec::new();
    let result = model.chat(&[Message::user("Hi")], &GenerationOptions::default(), &mut |piece| {
        pieces.push(piece.to_owned());
    });
    (result, pieces)
}

fn error_of<T>(result: lore_core::Result<T>) -> String {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(err) => err.to_string(),
    }
}

#[test]
fn spec_strings_parse_into_configs() {
    let config: OpenAiConfig = "openai:gpt-4o-mini@https://api.openai.com/v1".parse().expect("valid spec");
    assert_eq!((config.model.as_str(), config.base_url.as_str()), ("gpt-4o-mini", "https://api.openai.com/v1"));
    assert_eq!(config.api_key, None);

    let config: OpenAiConfig = "openai:qwen2.5:7b@http://127.0.0.1:8080/v1/".parse().expect("valid spec");
    assert_eq!((config.model.as_str(), config.base_url.as_str()), ("qwen2.5:7b", "http://127.0.0.1:8080/v1"));

    let config: OpenAiConfig = "openai:team@model@http://localhost:11434/v1".parse().expect("valid spec");
    assert_eq!((config.model.as_str(), config.base_url.as_str()), ("team@model", "http://localhost:11434/v1"));

    let config: OpenAiConfig = "openai:gpt-4o-mini".parse().expect("a spec without base URL");
    assert_eq!(config.base_url, "https://api.openai.com/v1");
}

#[test]
fn malformed_spec_strings_say_what_is_expected() {
    for (spec, complaint) in [
        ("gpt-4o-mini@https://api.openai.com/v1", "must start with `openai:`"),
        ("openai:@http://127.0.0.1:8080/v1", "model name is empty"),
        ("openai:qwen@127.0.0.1:8080/v1", "must start with http:// or https://"),
        ("openai:qwen@http://", "not a valid URL"),
    ] {
        let message = error_of(spec.parse::<OpenAiConfig>());
        assert!(message.contains(complaint), "{spec}: {message}");
        assert!(message.contains("expected openai:<model>@<base-url>"), "{spec}: {message}");
    }
}

#[test]
fn streamed_chat_passes_each_piece_as_it_arrives() {
    // Comments, CRLF line ends, a role-only delta and a usage chunk, all cut into 7-byte writes
    // that split events, lines and the bytes of "你".
    let text = format!(
        ": keep-alive\r\n\r\n{}{}data: [DONE]\r\n\r\n",
        sse(&[json!({"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": null}]})]),
        sse(&[
            delta("Hello"),
            delta(", 你好"),
            delta(" world"),
            finish("stop"),
            json!({"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 4}}),
        ])
        .replace("\n\n", "\r\n\r\n"),
    );
    let server = TestServer::scripted(vec![Reply::Stream { pieces: cut(&text, 7), ending: Ending::Complete }]);
    let model = OpenAiChat::new(server.config()).expect("client");
    let options =
        GenerationOptions { max_tokens: 64, temperature: 0.7, top_p: 0.9, seed: 7, ..GenerationOptions::default() };
    let mut pieces = Vec::new();
    let generation = model
        .chat(&[Message::system("Be brief."), Message::user("Hi")], &options, &mut |piece| {
            pieces.push(piece.to_owned())
        })
        .expect("a streamed answer");

    assert_eq!(pieces, ["Hello", ", 你好", " world"]);
    assert_eq!(generation.text, "Hello, 你好 world");
    assert_eq!(generation.finish, FinishReason::Stop);
    assert_eq!((generation.prompt_tokens, generation.completion_tokens), (11, 4));
    assert_eq!(model.id(), format!("openai:test-model@{}", server.base_url));

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.path, "/v1/chat/completions");
    assert!(request.headers.contains(&"authorization: bearer sk-test".to_owned()), "{:?}", request.headers);
    assert_eq!(
        request.body,
        json!({
            "model": "test-model",
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_tokens": 64,
            "temperature": 0.7,
            "top_p": 0.9,
            "seed": 7,
        })
    );
}

#[test]
fn a_json_reply_is_asked_for_with_openais_response_format() {
    let events = [delta("{\"a\": 1}"), finish("stop")];
    let server = TestServer::scripted(vec![stream_of(&events, true)]);
    let model = OpenAiChat::new(server.config()).expect("client");
    let options = GenerationOptions { format: lore_core::ReplyFormat::Json, ..GenerationOptions::default() };
    let generation = model.chat(&[Message::user("Hi")], &options, &mut |_| {}).expect("a reply");
    assert_eq!(generation.text, "{\"a\": 1}");
    assert_eq!(server.requests()[0].body["response_format"], json!({"type": "json_object"}));
}

#[test]
fn streamed_chat_without_usage_counts_pieces_and_reports_length() {
    // No `[DONE]` either: the finish reason alone says the answer is complete.
    let server = TestServer::scripted(vec![stream_of(&[delta("one"), delta(" two"), finish("length")], false)]);
    let model = OpenAiChat::new(server.config()).expect("client");
    let generation = ask(&model).0.expect("an answer cut by max_tokens");
    assert_eq!(generation.text, "one two");
    assert_eq!(generation.finish, FinishReason::Length);
    assert_eq!((generation.prompt_tokens, generation.completion_tokens), (0, 2));
}

#[test]
fn json_answer_to_a_streaming_request_is_accepted() {
    let server = TestServer::scripted(vec![json_reply(
        200,
        json!({
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Whole answer."}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3},
        }),
    )]);
    let model = OpenAiChat::new(server.config()).expect("client");
    let (result, pieces) = ask(&model);
    let generation = result.expect("a non-streamed answer");
    assert_eq!(pieces, ["Whole answer."]);
    assert_eq!(generation.text, "Whole answer.");
    assert_eq!((generation.prompt_tokens, generation.completion_tokens, generation.finish), (5, 3, FinishReason::Stop));
}

#[test]
fn rate_limited_request_is_retried_when_the_server_says() {
    let server = TestServer::scripted(vec![
        Reply::Whole {
            status: 429,
            extra_headers: "Retry-After: 0\r\n",
            content_type: "application/json",
            body: json!({"error": {"message": "Rate limit reached"}}).to_string(),
        },
        stream_of(&[delta("ok"), finish("stop")], true),
    ]);
    let model = OpenAiChat::new(server.config()).expect("client");
    let started = Instant::now();
    let generation = ask(&model).0.expect("the retried request succeeds");
    assert_eq!(generation.text, "ok");
    assert_eq!(server.requests().len(), 2);
    assert!(started.elapsed() < Duration::from_millis(400), "Retry-After: 0 was not honoured: {:?}", started.elapsed());
}

#[test]
fn server_errors_are_retried_with_backoff_then_reported() {
    let server = TestServer::start(|_, _| json_reply(500, json!({"error": {"message": "CUDA out of memory"}})));
    let model = OpenAiChat::new(server.config()).expect("client");
    let started = Instant::now();
    let message = error_of(ask(&model).0);
    let elapsed = started.elapsed();
    assert_eq!(server.requests().len(), 3, "one request and max_retries = 2 retries");
    // The backoff waits 0.5 s, then 1 s.
    assert!(elapsed >= Duration::from_millis(1500) && elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert!(message.contains("500 Internal Server Error"), "{message}");
    assert!(message.contains("3 attempts"), "{message}");
    assert!(message.contains("CUDA out of memory"), "{message}");
}

#[test]
fn client_error_is_not_retried_and_shows_the_servers_message() {
    let server =
        TestServer::start(|_, _| json_reply(400, json!({"error": {"message": "model 'test-model' not found"}})));
    let model = OpenAiChat::new(server.config()).expect("client");
    let message = error_of(ask(&model).0);
    assert_eq!(server.requests().len(), 1);
    assert!(message.contains("400 Bad Request"), "{message}");
    assert!(message.contains("model 'test-model' not found"), "{message}");
    assert!(message.contains(&format!("{}/chat/completions", server.base_url)), "{message}");
}

#[test]
fn garbage_bodies_say_what_was_expected() {
    let server = TestServer::scripted(vec![
        Reply::Whole {
            status: 200,
            extra_headers: "",
            content_type: "application/json",
            body: "<html>Welcome</html>".into(),
        },
        stream_of(&[json!({"object": "something else"})], true),
    ]);
    let model = OpenAiChat::new(server.config()).expect("client");

    let message = error_of(ask(&model).0);
    assert!(message.contains("did not answer with a chat completion"), "{message}");
    assert!(message.contains("<html>Welcome</html>"), "{message}");

    let message = error_of(ask(&model).0);
    assert!(message.contains("did not answer with a chat completion chunk"), "{message}");
    assert!(message.contains("something else"), "{message}");
}

#[test]
fn error_event_in_the_stream_is_reported() {
    let server = TestServer::scripted(vec![stream_of(
        &[delta("Par"), json!({"error": {"message": "the model crashed"}})],
        false,
    )]);
    let model = OpenAiChat::new(server.config()).expect("client");
    let message = error_of(ask(&model).0);
    assert!(message.contains("the model crashed"), "{message}");
}

#[test]
fn stream_that_stops_early_is_an_error_not_a_short_answer() {
    let (first, second) = (sse(&[delta("The answer ")]), sse(&[delta("is")]));
    let events = format!("{first}{second}");
    let server = TestServer::scripted(vec![
        // The connection drops in the middle of the second event.
        Reply::Stream { pieces: cut(&events[..first.len() + 20], 7), ending: Ending::Dropped },
        // The response ends properly, but the answer never did.
        Reply::Stream { pieces: cut(&events, 7), ending: Ending::Complete },
    ]);
    let model = OpenAiChat::new(server.config()).expect("client");

    let (result, pieces) = ask(&model);
    let message = error_of(result);
    assert_eq!(pieces, ["The answer "]);
    assert!(message.contains("broke off"), "{message}");
    assert!(message.contains("11 characters in 1 piece had arrived"), "{message}");
    assert!(message.contains("discarded"), "{message}");

    let (result, pieces) = ask(&model);
    let message = error_of(result);
    assert_eq!(pieces, ["The answer ", "is"]);
    assert!(message.contains("ended before the server said it was complete"), "{message}");
    assert!(message.contains("13 characters in 2 pieces had arrived"), "{message}");
}

#[test]
fn silent_server_times_out() {
    let server = TestServer::scripted(vec![Reply::Silent]);
    let model = OpenAiChat::new(server.config()).expect("client");
    let started = Instant::now();
    let message = error_of(ask(&model).0);
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert!(message.contains("sent nothing for 1s"), "{message}");
    assert_eq!(server.requests().len(), 1, "a timed-out request is not sent again");
}

#[test]
fn stream_that_stalls_times_out() {
    let server =
        TestServer::scripted(vec![Reply::Stream { pieces: cut(&sse(&[delta("Hel")]), 64), ending: Ending::Stalled }]);
    let model = OpenAiChat::new(server.config()).expect("client");
    let started = Instant::now();
    let message = error_of(ask(&model).0);
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert!(message.contains("sent nothing for 1s"), "{message}");
    assert!(message.contains("3 characters in 1 piece had arrived"), "{message}");
}

#[test]
fn refused_connection_names_the_url_and_suggests_checking_the_server() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a local port");
    let base_url = format!("http://{}/v1", listener.local_addr().expect("local address"));
    drop(listener);
    let mut config = OpenAiConfig::new("test-model", &base_url);
    config.max_retries = 1;
    let model = OpenAiChat::new(config).expect("client");
    let message = error_of(ask(&model).0);
    assert!(message.contains(&format!("cannot reach {base_url}/chat/completions (2 attempts)")), "{message}");
    assert!(message.contains("check that the server is running"), "{message}");
}

/// The base URL of a local port nothing listens on.
fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a local port");
    let base_url = format!("http://{}/v1", listener.local_addr().expect("local address"));
    drop(listener);
    base_url
}

fn kind_of<T>(result: lore_core::Result<T>) -> (ErrorKind, String) {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(err) => (err.kind(), err.to_string()),
    }
}

/// Whatever goes wrong between Lore and the server (no server, a timeout, an error status, a
/// body that is not the API's) is one kind, which a caller can retry or report as "the model
/// is unavailable"; the message keeps the underlying cause.
#[test]
fn transport_failures_and_unusable_replies_are_model_unavailable() {
    let mut config = OpenAiConfig::new("test-model", closed_port_url());
    config.max_retries = 0;
    let (kind, message) = kind_of(OpenAiEmbedder::new(config.clone()));
    assert_eq!(kind, ErrorKind::ModelUnavailable, "{message}");
    assert!(message.contains("refused"), "the cause is kept: {message}");
    let chat = OpenAiChat::new(config).expect("client");
    let (kind, message) = kind_of(ask(&chat).0);
    assert_eq!(kind, ErrorKind::ModelUnavailable, "{message}");

    // The server answers one connection at a time: the silent reply, which holds it, is last.
    let server = TestServer::scripted(vec![
        json_reply(503, json!({"error": {"message": "loading the model"}})),
        Reply::Whole { status: 200, extra_headers: "", content_type: "application/json", body: "<html>".into() },
        Reply::Stream { pieces: cut(&sse(&[delta("Hel")]), 64), ending: Ending::Dropped },
        json_reply(200, json!({"embeddings": [[1.0, 0.0]]})),
        Reply::Silent,
    ]);
    let mut config = server.config();
    config.max_retries = 0;
    let chat = OpenAiChat::new(config.clone()).expect("client");
    for expected in ["loading the model", "did not answer with a chat completion", "broke off"] {
        let (kind, message) = kind_of(ask(&chat).0);
        assert_eq!(kind, ErrorKind::ModelUnavailable, "{message}");
        assert!(message.contains(expected), "{expected}: {message}");
    }
    let (kind, message) = kind_of(OpenAiEmbedder::new(config));
    assert_eq!(kind, ErrorKind::ModelUnavailable, "{message}");
    assert!(message.contains("did not answer with embeddings"), "{message}");
    let (kind, message) = kind_of(ask(&chat).0);
    assert_eq!(kind, ErrorKind::ModelUnavailable, "{message}");
    assert!(message.contains("sent nothing for 1s"), "{message}");
}

/// A request that cannot even be made is the caller's to fix, not the server's, and is not
/// retried.
#[test]
fn an_api_key_that_cannot_be_sent_is_invalid_input() {
    let server = TestServer::scripted(vec![]);
    let mut config = server.config();
    config.api_key = Some("sk-line\nbreak".to_owned());
    let chat = OpenAiChat::new(config).expect("client");
    let started = Instant::now();
    let (kind, message) = kind_of(ask(&chat).0);
    assert_eq!(kind, ErrorKind::InvalidInput, "{message}");
    assert!(message.contains("check the API key"), "{message}");
    assert!(started.elapsed() < Duration::from_millis(400), "retried: {:?}", started.elapsed());
    assert_eq!(server.requests().len(), 0);
    assert_eq!(kind_of("openai:@http://127.0.0.1:1/v1".parse::<OpenAiConfig>()).0, ErrorKind::InvalidInput);
}

/// Names that lead nowhere are NotFound, so that a CLI can say "no such model" by kind.
#[test]
fn unknown_and_uninstalled_models_are_not_found() {
    let home = tempfile::tempdir().expect("a temporary home");
    let (kind, message) = kind_of(spec("no-such-model"));
    assert_eq!(kind, ErrorKind::NotFound, "{message}");
    assert!(message.contains("neither a known model"), "{message}");
    let (kind, message) = kind_of(load_embedder("no-such-model", home.path()));
    assert_eq!(kind, ErrorKind::NotFound, "{message}");
    let (kind, message) = kind_of(load_chat("no-such-model", home.path()));
    assert_eq!(kind, ErrorKind::NotFound, "{message}");
    let (kind, message) = kind_of(load_reranker("no-such-reranker", home.path()));
    assert_eq!(kind, ErrorKind::NotFound, "{message}");

    // In the registry, but not installed under this home.
    let (kind, message) = kind_of(load_embedder("e5-small", home.path()));
    assert_eq!(kind, ErrorKind::NotFound, "{message}");
    assert!(message.contains("lore models pull e5-small"), "{message}");
    let (kind, message) = kind_of(load_chat("qwen-0.5b", home.path()));
    assert_eq!(kind, ErrorKind::NotFound, "{message}");

    // A model of the other role does not fit, whether installed or not.
    let (kind, message) = kind_of(load_chat("e5-small", home.path()));
    assert_eq!(kind, ErrorKind::Unsupported, "{message}");
    assert!(message.contains("is a embedder model, not a generator"), "{message}");
}

/// A vector that identifies its input: [length, 1, first byte].
fn fake_embedding(input: &str) -> Vec<f32> {
    vec![input.len() as f32, 1.0, f32::from(input.as_bytes()[0])]
}

fn unit(vector: Vec<f32>) -> Vec<f32> {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    vector.into_iter().map(|x| x / norm).collect()
}

#[test]
fn embeddings_are_batched_ordered_and_normalised() {
    // The server answers each batch in reverse order, relying on `index`.
    let server = TestServer::start(|_, request| {
        let inputs = request.body["input"].as_array().expect("input array").clone();
        let data: Vec<Value> = inputs
            .iter()
            .enumerate()
            .rev()
            .map(|(index, input)| {
                json!({"object": "embedding", "index": index, "embedding": fake_embedding(input.as_str().expect("text"))})
            })
            .collect();
        json_reply(200, json!({"object": "list", "data": data, "model": "test-model"}))
    });
    let embedder = OpenAiEmbedder::new(server.config())
        .expect("embedder")
        .with_batch_size(2)
        .with_prefixes("query: ", "passage: ");
    assert_eq!(embedder.dimension(), 3, "learned from the probe");
    assert!(embedder.tokenizer().is_none());
    assert_eq!(embedder.id(), format!("openai:test-model@{}", server.base_url));

    let texts = ["a", "bb", "ccc", "dddd", "eeeee"];
    let vectors = embedder.embed(&texts, EmbedKind::Query).expect("embeddings");
    let expected: Vec<Vec<f32>> = texts.iter().map(|text| unit(fake_embedding(&format!("query: {text}")))).collect();
    assert_eq!(vectors.len(), expected.len());
    for (vector, expected) in vectors.iter().zip(&expected) {
        assert!(vector.iter().zip(expected).all(|(a, b)| (a - b).abs() < 1e-6), "{vector:?} != {expected:?}");
    }

    let passages = embedder.embed(&["x"], EmbedKind::Passage).expect("embeddings");
    assert!(passages[0].iter().zip(unit(fake_embedding("passage: x"))).all(|(a, b)| (a - b).abs() < 1e-6));
    assert!(embedder.embed(&[], EmbedKind::Query).expect("nothing to embed").is_empty());

    let requests = server.requests();
    let batches: Vec<Vec<&str>> = requests
        .iter()
        .map(|request| {
            assert_eq!(request.path, "/v1/embeddings");
            assert_eq!(request.body["model"], "test-model");
            request.body["input"].as_array().expect("inputs").iter().filter_map(Value::as_str).collect()
        })
        .collect();
    assert_eq!(
        batches,
        [
            vec!["dimension probe"],
            vec!["query: a", "query: bb"],
            vec!["query: ccc", "query: dddd"],
            vec!["query: eeeee"],
            vec!["passage: x"],
        ]
    );
}

#[test]
fn embeddings_of_the_wrong_shape_are_rejected() {
    let server = TestServer::scripted(vec![
        json_reply(200, json!({"embeddings": [[1.0, 0.0]]})),
        json_reply(200, json!({"data": [{"index": 0, "embedding": [1.0, 0.0]}]})),
        json_reply(200, json!({"data": [{"index": 0, "embedding": [1.0, 0.0]}]})),
        json_reply(200, json!({"data": [{"index": 0, "embedding": [1.0, 0.0, 0.0]}]})),
    ]);
    let message = error_of(OpenAiEmbedder::new(server.config()));
    assert!(message.contains("did not answer with embeddings"), "{message}");

    let embedder = OpenAiEmbedder::new(server.config()).expect("embedder");
    let message = error_of(embedder.embed(&["one", "two"], EmbedKind::Passage));
    assert!(message.contains("1 embeddings for 2 inputs"), "{message}");
    let message = error_of(embedder.embed(&["one"], EmbedKind::Passage));
    assert!(message.contains("dimension 3 where the model gave 2"), "{message}");
}

fn logprobs_reply(top: &[(&str, f64)]) -> Reply {
    let top: Vec<Value> = top.iter().map(|(token, logprob)| json!({"token": token, "logprob": logprob})).collect();
    json_reply(
        200,
        json!({"choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": "Yes"},
            "logprobs": {"content": [{"token": "Yes", "logprob": -0.2, "top_logprobs": top}]},
            "finish_reason": "length",
        }]}),
    )
}

#[test]
fn choice_probabilities_sum_the_spellings_among_the_top_logprobs() {
    let server = TestServer::scripted(vec![logprobs_reply(&[
        ("Yes", -0.2),
        ("No", -1.9),
        (" yes", -2.0),
        ("The", -3.0),
        ("NO", -4.0),
        ("yesterday", -5.0),
    ])]);
    let model = OpenAiChat::new(server.config()).expect("client");
    let messages = [Message::system("Answer yes or no."), Message::user("Is Paris in France?")];
    let scores = model.choice_probabilities(&messages, &["yes", "no"]).expect("scores");
    let (yes, no) = ((-0.2f64).exp() + (-2.0f64).exp(), (-1.9f64).exp() + (-4.0f64).exp());
    let expected = [yes / (yes + no), no / (yes + no)];
    assert!(scores.iter().zip(expected).all(|(s, e)| (f64::from(*s) - e).abs() < 1e-6), "{scores:?} != {expected:?}");

    let requests = server.requests();
    assert_eq!(requests[0].path, "/v1/chat/completions");
    assert_eq!(
        requests[0].body,
        json!({
            "model": "test-model",
            "messages": [
                {"role": "system", "content": "Answer yes or no."},
                {"role": "user", "content": "Is Paris in France?"},
            ],
            "max_tokens": 1,
            "logprobs": true,
            "top_logprobs": 20,
        })
    );
}

#[test]
fn choice_probabilities_without_logprobs_say_what_the_server_lacks() {
    let without_logprobs = json_reply(
        200,
        json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "Yes"}, "finish_reason": "length"}]}),
    );
    let server = TestServer::scripted(vec![without_logprobs, logprobs_reply(&[("Maybe", -0.1), ("The", -2.5)])]);
    let model = OpenAiChat::new(server.config()).expect("client");
    let messages = [Message::user("Is Paris in France?")];

    let message = error_of(model.choice_probabilities(&messages, &["yes", "no"]));
    assert!(message.contains("without the logprobs of the first token"), "{message}");
    assert!(message.contains("top_logprobs"), "{message}");

    let message = error_of(model.choice_probabilities(&messages, &["yes", "no"]));
    assert!(message.contains("none of the choices"), "{message}");
    assert!(message.contains("Maybe"), "{message}");

    let message = error_of(model.choice_probabilities(&messages, &["yes", " "]));
    assert!(message.contains("has no tokens"), "{message}");
    assert_eq!(server.requests().len(), 2, "an empty choice is refused before any request");
}
