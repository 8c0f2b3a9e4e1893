//! A scripted OpenAI-compatible chat-completions server for tests.
//!
//! Tests push [`Script`]s; each `POST /v1/chat/completions` takes the next
//! one (or a default "Hello from upstream" answer) and plays it: chunks,
//! pauses, raw bytes, an abrupt drop, or an HTTP error. Every request body
//! is recorded so tests can check what spool sent.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One step of a scripted answer.
#[derive(Debug, Clone)]
pub enum Step {
    /// `data: <json>\n\n`.
    Chunk(Value),
    /// Raw bytes, as they are.
    Raw(&'static str),
    Sleep(Duration),
    /// Ends the body with an error: the connection is cut mid-stream.
    Drop,
    /// Sends these bytes, then again after each pause, until the client
    /// goes away.
    Forever(String, Duration),
}

#[derive(Debug, Clone)]
pub enum Script {
    Stream(Vec<Step>),
    Error(u16, &'static str),
    /// An error status whose body is this many bytes, streamed in pieces
    /// as long as the client reads them.
    HugeError(u16, usize),
}

#[derive(Default)]
struct Shared {
    scripts: Mutex<VecDeque<Script>>,
    requests: Mutex<Vec<Value>>,
    moderations: Mutex<Vec<Value>>,
    open_streams: std::sync::atomic::AtomicUsize,
    /// Bytes of bodies handed to the HTTP stack so far.
    body_bytes_sent: std::sync::atomic::AtomicUsize,
}

#[derive(Clone)]
pub struct Upstream {
    shared: Arc<Shared>,
    pub base_url: String,
}

pub fn text_chunk(text: &str) -> Step {
    Step::Chunk(
        json!({"id":"c","object":"chat.completion.chunk","created":0,"model":"m",
        "choices":[{"index":0,"delta":{"content":text},"finish_reason":null}]}),
    )
}

pub fn finish_chunk(reason: &str) -> Step {
    Step::Chunk(
        json!({"id":"c","object":"chat.completion.chunk","created":0,"model":"m",
        "choices":[{"index":0,"delta":{},"finish_reason":reason}]}),
    )
}

pub fn usage_chunk(prompt: u64, completion: u64) -> Step {
    Step::Chunk(
        json!({"id":"c","object":"chat.completion.chunk","created":0,"model":"m","choices":[],
        "usage":{"prompt_tokens":prompt,"completion_tokens":completion,"total_tokens":prompt+completion}}),
    )
}

pub fn tool_chunk(index: u32, id: Option<&str>, name: Option<&str>, args: &str) -> Step {
    let mut call = json!({"index": index, "function": {"arguments": args}});
    if let Some(id) = id {
        call["id"] = json!(id);
        call["type"] = json!("function");
    }
    if let Some(name) = name {
        call["function"]["name"] = json!(name);
    }
    Step::Chunk(
        json!({"id":"c","object":"chat.completion.chunk","created":0,"model":"m",
        "choices":[{"index":0,"delta":{"tool_calls":[call]},"finish_reason":null}]}),
    )
}

pub fn refusal_chunk(text: &str) -> Step {
    Step::Chunk(
        json!({"id":"c","object":"chat.completion.chunk","created":0,"model":"m",
        "choices":[{"index":0,"delta":{"refusal":text},"finish_reason":null}]}),
    )
}

pub const DONE: Step = Step::Raw("data: [DONE]\n\n");

/// A complete text answer in `pieces`, with usage and `[DONE]`.
pub fn text_script(pieces: &[&str]) -> Script {
    let mut steps: Vec<Step> = pieces.iter().map(|p| text_chunk(p)).collect();
    steps.extend([
        finish_chunk("stop"),
        usage_chunk(7, pieces.len() as u64),
        DONE,
    ]);
    Script::Stream(steps)
}

/// A text answer with a pause before each piece.
pub fn slow_script(pieces: usize, pause: Duration) -> Script {
    let mut steps = Vec::new();
    for i in 0..pieces {
        steps.push(Step::Sleep(pause));
        steps.push(text_chunk(&format!("w{i} ")));
    }
    steps.extend([finish_chunk("stop"), DONE]);
    Script::Stream(steps)
}

/// Decrements the open-stream count when a streamed body is dropped.
struct OpenGuard(Arc<Shared>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0
            .open_streams
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

async fn chat(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    shared.requests.lock().unwrap().push(request);
    let script = shared
        .scripts
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| text_script(&["Hello", " from", " upstream"]));
    match script {
        Script::Error(status, body) => {
            (StatusCode::from_u16(status).unwrap(), body.to_owned()).into_response()
        }
        Script::HugeError(status, len) => {
            const PIECE: usize = 64 * 1024;
            let sent = shared.clone();
            let pieces = futures::stream::unfold(0usize, move |done| {
                let sent = sent.clone();
                async move {
                    if done >= len {
                        return None;
                    }
                    let n = PIECE.min(len - done);
                    sent.body_bytes_sent
                        .fetch_add(n, std::sync::atomic::Ordering::SeqCst);
                    Some((
                        Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; n])),
                        done + n,
                    ))
                }
            });
            Response::builder()
                .status(status)
                .header("content-type", "text/plain")
                .body(Body::from_stream(pieces))
                .unwrap()
        }
        Script::Stream(steps) => {
            shared
                .open_streams
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let guard = OpenGuard(shared.clone());
            let stream = futures::stream::unfold(
                (VecDeque::from(steps), guard),
                |(mut steps, guard)| async move {
                    loop {
                        match steps.pop_front()? {
                            Step::Sleep(d) => tokio::time::sleep(d).await,
                            Step::Chunk(v) => {
                                let bytes = Bytes::from(format!("data: {v}\n\n"));
                                return Some((Ok(bytes), (steps, guard)));
                            }
                            Step::Raw(s) => {
                                return Some((
                                    Ok(Bytes::from_static(s.as_bytes())),
                                    (steps, guard),
                                ));
                            }
                            Step::Drop => {
                                let err = std::io::Error::other("scripted drop");
                                return Some((Err(err), (VecDeque::new(), guard)));
                            }
                            Step::Forever(bytes, pause) => {
                                // Next: the pause, then the same again.
                                steps.push_front(Step::Forever(bytes.clone(), pause));
                                steps.push_front(Step::Sleep(pause));
                                return Some((Ok(Bytes::from(bytes)), (steps, guard)));
                            }
                        }
                    }
                },
            );
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(stream))
                .unwrap()
        }
    }
}

/// The word the scripted moderation model flags (as `violence`).
pub const FLAGGED_WORD: &str = "FORBIDDEN";

/// `POST /v1/moderations`: flags an input holding [`FLAGGED_WORD`].
async fn moderations(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let flagged = request["input"]
        .as_str()
        .is_some_and(|i| i.contains(FLAGGED_WORD));
    shared.moderations.lock().unwrap().push(request);
    axum::Json(json!({
        "id": "modr-1",
        "model": "moderation",
        "results": [{"flagged": flagged, "categories": {"violence": flagged, "hate": false}}],
    }))
    .into_response()
}

impl Upstream {
    pub async fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/v1/moderations", post(moderations))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            shared,
            base_url: format!("http://{addr}/v1"),
        }
    }

    pub fn push(&self, script: Script) {
        self.shared.scripts.lock().unwrap().push_back(script);
    }

    /// Every request body received so far.
    pub fn requests(&self) -> Vec<Value> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Every moderation request body received so far.
    pub fn moderations(&self) -> Vec<Value> {
        self.shared.moderations.lock().unwrap().clone()
    }

    /// Bytes of bodies the upstream has handed to its HTTP stack.
    pub fn body_bytes_sent(&self) -> usize {
        self.shared
            .body_bytes_sent
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Streams currently being sent.
    pub fn open_streams(&self) -> usize {
        self.shared
            .open_streams
            .load(std::sync::atomic::Ordering::SeqCst)
    }
}
