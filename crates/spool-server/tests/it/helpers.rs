//! Spawning spool for a test, and reading its answers.

use crate::upstream::Upstream;
use futures::StreamExt;
use serde_json::Value;
use spool_server::{Agents, App, ServeConfig};
use std::path::PathBuf;
use std::time::Duration;

/// A running spool on a loopback port with its own database and upstream.
pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub upstream: Upstream,
    pub db_path: PathBuf,
    /// The server's run manager, for tests that drive it directly.
    pub runtime: std::sync::Arc<spool_server::runtime::Runtime>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// A fresh, empty database path.
pub fn temp_db() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spool-test-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("spool.db")
}

fn uuid_like() -> String {
    spool_core::ids::IdSource::new_id(&spool_server::runtime::ids::Uuid7Ids, "t")
}

pub fn config(db: &std::path::Path, upstream: Option<&str>) -> ServeConfig {
    ServeConfig {
        config: None,
        addr: "127.0.0.1:0".into(),
        database_url: format!("sqlite://{}", db.display()),
        upstream_url: upstream.map(str::to_owned),
        upstream_api_key: Some("sk-test".into()),
        upstream_timeout_secs: Some(2),
        upstream_connect_timeout_secs: 2,
        max_body_bytes: 64 * 1024,
        mcp_allowed_urls: vec![],
        sse_done: true,
        sse_keepalive_secs: 0,
        cluster: Default::default(),
        compaction_key_file: None,
        websocket_max_age_secs: 3600,
        durability: Default::default(),
        limits: Default::default(),
    }
}

pub async fn spawn_app() -> TestApp {
    let upstream = Upstream::start().await;
    spawn_with(config(&temp_db(), Some(&upstream.base_url)), upstream).await
}

pub async fn spawn_with(config: ServeConfig, upstream: Upstream) -> TestApp {
    spawn_with_agents(config, upstream, Agents::default()).await
}

pub async fn spawn_with_agents(config: ServeConfig, upstream: Upstream, agents: Agents) -> TestApp {
    let app = App::build_with_agents(&config, agents)
        .await
        .expect("spool builds");
    serve(app, &config, upstream)
}

/// Spawns spool over a store the test opened.
pub async fn spawn_with_store(
    config: ServeConfig,
    upstream: Upstream,
    store: std::sync::Arc<dyn spool_store::Store>,
) -> TestApp {
    let app = App::build_with_store(&config, store, Agents::default())
        .await
        .expect("spool builds");
    serve(app, &config, upstream)
}

fn serve(app: App, config: &ServeConfig, upstream: Upstream) -> TestApp {
    let db_path = PathBuf::from(config.database_url.trim_start_matches("sqlite://"));
    let addr = app.local_addr().unwrap();
    let runtime = app.runtime().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.run_until_stopped(async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    TestApp {
        base: format!("http://{addr}"),
        http: crate::helpers::http_client(),
        upstream,
        db_path,
        runtime,
        stop: Some(stop),
        server: Some(server),
    }
}

/// One SSE frame as received.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The `id:` line: the frame's position in its dialect's projection.
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

impl Frame {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap()
    }
}

pub fn parse_sse(text: &str) -> Vec<Frame> {
    text.split("\n\n")
        .filter(|f| !f.trim().is_empty() && !f.starts_with(':'))
        .map(|f| {
            let mut event = None;
            let mut id = None;
            let mut data = Vec::new();
            for line in f.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    id = Some(v.to_owned());
                } else if let Some(v) = line.strip_prefix("event: ") {
                    event = Some(v.to_owned());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push(v);
                }
            }
            assert_eq!(data.len(), 1, "one data line per frame: {f:?}");
            Frame {
                id,
                event,
                data: data[0].to_owned(),
            }
        })
        .collect()
}

/// The frames of an SSE stream, `[DONE]` removed; asserts it was last.
pub fn events_of(frames: Vec<Frame>) -> Vec<Frame> {
    let done = frames.iter().position(|f| f.data == "[DONE]");
    if let Some(i) = done {
        assert_eq!(i, frames.len() - 1, "[DONE] must be the last frame");
    }
    frames.into_iter().filter(|f| f.data != "[DONE]").collect()
}

/// Reads a streamed body to its end; a stream that does not end in 20 s
/// fails the test.
pub async fn read_to_end(r: reqwest::Response) -> String {
    tokio::time::timeout(Duration::from_secs(20), r.text())
        .await
        .expect("the stream ends")
        .unwrap()
}

/// An SSE stream read frame by frame, so a test can wait for an event
/// instead of sleeping.
pub struct SseReader {
    bytes: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    text: String,
    frames: std::collections::VecDeque<Frame>,
}

impl SseReader {
    pub fn new(r: reqwest::Response) -> Self {
        Self {
            bytes: Box::pin(r.bytes_stream()),
            text: String::new(),
            frames: Default::default(),
        }
    }

    /// The next frame, `None` at the end of the stream; a frame that does
    /// not come in 20 s fails the test.
    pub async fn next(&mut self) -> Option<Frame> {
        loop {
            if let Some(frame) = self.frames.pop_front() {
                return Some(frame);
            }
            if let Some(end) = self.text.rfind("\n\n") {
                let complete: String = self.text.drain(..end + 2).collect();
                self.frames.extend(parse_sse(&complete));
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(20), self.bytes.next())
                .await
                .expect("a frame or the end of the stream within 20 s")?
                .unwrap();
            self.text.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// Reads frames up to and including the first of `event` type.
    pub async fn until(&mut self, event: &str) -> Vec<Frame> {
        let mut read = Vec::new();
        while let Some(frame) = self.next().await {
            let found = frame.event.as_deref() == Some(event);
            read.push(frame);
            if found {
                return read;
            }
        }
        panic!("the stream ended before a {event} event: {read:?}");
    }

    /// The frames left, to the end of the stream.
    pub async fn rest(&mut self) -> Vec<Frame> {
        let mut read = Vec::new();
        while let Some(frame) = self.next().await {
            read.push(frame);
        }
        read
    }
}

/// Polls `condition` until it holds; one that does not hold in 10 s fails
/// the test with `what`.
pub async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    poll_for(what, || {
        let holds = condition();
        async move { holds.await.then_some(()) }
    })
    .await
}

/// Polls `probe` until it finds something; nothing found in 10 s fails the
/// test with `what`.
pub async fn poll_for<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A response's status and JSON body (`null` when it is not JSON).
async fn answer(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let bytes = r.bytes().await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        answer(r).await
    }

    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let r = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        answer(r).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        answer(r).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        let r = self.http.delete(self.url(path)).send().await.unwrap();
        answer(r).await
    }

    /// POSTs `body` to `/v1/responses` and returns the answer unread.
    pub async fn open(&self, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url("/v1/responses"))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    /// POSTs a streaming request and reads the whole stream.
    pub async fn stream(&self, body: &Value) -> Vec<Frame> {
        let r = self.open(body).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "text/event-stream");
        parse_sse(&read_to_end(r).await)
    }

    /// GETs a stored response's stream and reads it whole.
    pub async fn replay(&self, id: &str, starting_after: Option<i64>) -> Vec<Frame> {
        let mut url = self.url(&format!("/v1/responses/{id}?stream=true"));
        if let Some(n) = starting_after {
            url.push_str(&format!("&starting_after={n}"));
        }
        let r = self.http.get(url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        parse_sse(&read_to_end(r).await)
    }

    /// Opens a stream and returns its first `n` frames, dropping the
    /// connection after them.
    pub async fn stream_first(&self, body: &Value, n: usize) -> Vec<Frame> {
        let r = self.open(body).await;
        let mut bytes = r.bytes_stream();
        let mut text = String::new();
        loop {
            let frames = parse_sse(&text);
            let complete = if text.ends_with("\n\n") {
                frames.len()
            } else {
                frames.len().saturating_sub(1)
            };
            if complete >= n {
                return frames.into_iter().take(n).collect();
            }
            let chunk = tokio::time::timeout(Duration::from_secs(20), bytes.next())
                .await
                .expect("more frames")
                .expect("stream open")
                .unwrap();
            text.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// Polls until the response reaches a terminal status.
    pub async fn wait_terminal(&self, id: &str) -> Value {
        poll_for(&format!("response {id} ends"), || async {
            let (status, body) = self.get(&format!("/v1/responses/{id}")).await;
            assert_eq!(status, 200, "{body}");
            let running = ["queued", "in_progress"].contains(&body["status"].as_str().unwrap());
            (!running).then_some(body)
        })
        .await
    }

    /// Follows a stored response's stream from its start.
    pub async fn watch(&self, id: &str) -> SseReader {
        let r = self
            .http
            .get(self.url(&format!("/v1/responses/{id}?stream=true")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        SseReader::new(r)
    }

    /// Waits until a stored response has streamed an `event` (so it is
    /// running and has stored that far).
    pub async fn wait_for_event(&self, id: &str, event: &str) {
        self.watch(id).await.until(event).await;
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(self) {
        let Self {
            runtime,
            stop,
            server,
            ..
        } = self;
        // The server's log writer ends only once every handle to the
        // runtime is gone.
        drop(runtime);
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
        if let Some(server) = server {
            tokio::time::timeout(Duration::from_secs(15), server)
                .await
                .expect("server stops")
                .unwrap();
        }
    }
}

/// Asserts the error shape and returns the inner error.
pub fn assert_error(status: u16, body: &Value, expected_status: u16) -> Value {
    assert_eq!(status, expected_status, "{body}");
    let e = &body["error"];
    for key in ["message", "type", "param", "code"] {
        assert!(e.get(key).is_some(), "error.{key} missing: {body}");
    }
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
    e.clone()
}

/// An HTTP client for tests (reqwest is built without a default TLS crypto
/// provider, so one is installed first).
pub fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}
