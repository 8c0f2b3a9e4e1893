//! The OpenAI-compatible chat-completions provider.
//!
//! Streams `POST {base}/chat/completions` and decodes the SSE body into
//! deltas. Every way the upstream can misbehave ends the stream with a
//! [`ProviderError`], never a hang: the connection is bounded by a timeout,
//! and so is the wait for *progress* (the answer's head, then each delta
//! that carries output), so an upstream that keeps the connection alive
//! with SSE comments or empty chunks times out all the same. A malformed
//! chunk is a protocol error, a body that ends before `[DONE]` or a finish
//! reason is a disconnect, and an error answer's body is read only up to
//! [`MAX_ERROR_BODY`] bytes, however much the upstream sends.

mod chunk;
mod request;

pub use chunk::decode_chunk;
pub use request::chat_body;

use crate::sse::SseDecoder;
use crate::{DeltaStream, ModelDelta, ModelProvider, ModelRequest, ProviderError};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use std::collections::VecDeque;
use std::time::Duration;

/// How to reach an upstream.
#[derive(Debug, Clone)]
pub struct OpenAiChatConfig {
    /// Base URL ending in `/v1`, e.g. `http://localhost:11434/v1`.
    pub base_url: String,
    pub api_key: Option<String>,
    pub connect_timeout: Duration,
    /// Longest wait for the response head, and then for the next delta that
    /// carries output: keep-alive comments and empty chunks do not count.
    pub idle_timeout: Duration,
}

/// A chat-completions client.
#[derive(Debug, Clone)]
pub struct OpenAiChat {
    client: reqwest::Client,
    url: String,
    /// `/v1/moderations` beside the chat completions, for shields.
    moderations_url: String,
    api_key: Option<String>,
    idle_timeout: Duration,
}

impl OpenAiChat {
    pub fn new(config: OpenAiChatConfig) -> Result<Self, ProviderError> {
        // reqwest is built without a default TLS crypto provider; ring is
        // installed once for the process. A second install is a no-op.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .build()
            .map_err(|e| ProviderError::Unreachable(format!("cannot build HTTP client: {e}")))?;
        Ok(Self {
            client,
            url: format!("{}/chat/completions", config.base_url.trim_end_matches('/')),
            moderations_url: format!("{}/moderations", config.base_url.trim_end_matches('/')),
            api_key: config.api_key,
            idle_timeout: config.idle_timeout,
        })
    }
}

/// Most bytes of an error answer's body read for its message; the rest is
/// never read, so a huge error body costs no memory.
pub const MAX_ERROR_BODY: usize = 4 * 1024;

/// The most of a moderation answer that is read.
const MAX_MODERATION_BODY: usize = 1024 * 1024;

/// Most bytes of a body kept to show when it turns out not to be an event
/// stream.
const SHOWN_PREFIX: usize = 200;

#[async_trait]
impl ModelProvider for OpenAiChat {
    async fn moderate(&self, model: &str, input: &str) -> Result<Vec<String>, ProviderError> {
        let body = serde_json::json!({"model": model, "input": input});
        let mut req = self.client.post(&self.moderations_url).json(&body);
        if let Some(key) = &self.api_key {
            req = req.bearer_auth(key);
        }
        let idle = self.idle_timeout;
        let response = tokio::time::timeout(idle, req.send())
            .await
            .map_err(|_| ProviderError::Timeout(idle.as_secs()))?
            .map_err(|e| ProviderError::Unreachable(format!("{}: {e}", self.moderations_url)))?;
        let status = response.status();
        if !status.is_success() {
            let text = read_error_body(response, idle).await;
            return Err(ProviderError::Http {
                status: status.as_u16(),
                message: error_message(&text),
            });
        }
        // An answer is a few hundred bytes; a bigger one is not read whole.
        let (body, complete) = read_bounded(response, idle, MAX_MODERATION_BODY).await;
        if !complete {
            return Err(ProviderError::Protocol(format!(
                "a moderation answer was cut off or exceeds {MAX_MODERATION_BODY} bytes"
            )));
        }
        let answer: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
            ProviderError::Protocol(format!("a moderation answer is not JSON: {e}"))
        })?;
        let Some(result) = answer["results"].get(0) else {
            return Err(ProviderError::Protocol(
                "a moderation answer has no results".into(),
            ));
        };
        if result["flagged"].as_bool() != Some(true) {
            return Ok(Vec::new());
        }
        let mut flagged: Vec<String> = result["categories"]
            .as_object()
            .map(|c| {
                c.iter()
                    .filter(|(_, on)| on.as_bool() == Some(true))
                    .map(|(name, _)| name.clone())
                    .collect()
            })
            .unwrap_or_default();
        if flagged.is_empty() {
            flagged.push("flagged".into());
        }
        Ok(flagged)
    }

    async fn stream(&self, request: ModelRequest) -> Result<DeltaStream, ProviderError> {
        let body = serde_json::to_vec(&chat_body(&request))
            .map_err(|e| ProviderError::Protocol(format!("cannot encode request: {e}")))?;
        let mut req = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .body(body);
        if let Some(key) = &self.api_key {
            req = req.bearer_auth(key);
        }
        let idle = self.idle_timeout;
        let response = tokio::time::timeout(idle, req.send())
            .await
            .map_err(|_| ProviderError::Timeout(idle.as_secs()))?
            .map_err(|e| request_error(&self.url, &e))?;
        let status = response.status();
        if !status.is_success() {
            let text = read_error_body(response, idle).await;
            return Err(ProviderError::Http {
                status: status.as_u16(),
                message: error_message(&text),
            });
        }
        let state = ChunkStream::new(response.bytes_stream().boxed(), SseDecoder::new(), idle);
        Ok(
            futures::stream::unfold(state, |mut s| async move { s.next().await.map(|d| (d, s)) })
                .boxed(),
        )
    }
}

/// The first [`MAX_ERROR_BODY`] bytes of an error answer's body (less if it
/// ends sooner or stalls past `idle`); the connection is dropped after them.
async fn read_error_body(response: reqwest::Response, idle: Duration) -> String {
    let (kept, _) = read_bounded(response, idle, MAX_ERROR_BODY).await;
    String::from_utf8_lossy(&kept).into_owned()
}

/// The first `limit` bytes of a body, read for at most `idle`, and whether
/// that was all of it (it ended within the limit and the time, unbroken).
async fn read_bounded(
    response: reqwest::Response,
    idle: Duration,
    limit: usize,
) -> (Vec<u8>, bool) {
    let mut body = response.bytes_stream();
    let mut kept = Vec::new();
    let read = async {
        while kept.len() <= limit {
            match body.next().await {
                Some(Ok(bytes)) => {
                    let room = limit + 1 - kept.len();
                    kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
                }
                Some(Err(_)) => return false,
                None => return true,
            }
        }
        false
    };
    let ended = tokio::time::timeout(idle, read).await.unwrap_or(false);
    let complete = ended && kept.len() <= limit;
    kept.truncate(limit);
    (kept, complete)
}

/// Why sending the request (or reading the answer's head) failed: no
/// connection is `upstream_unreachable`; a connection that closed or reset
/// before the head is `upstream_disconnected`; a head that is not HTTP is
/// `upstream_protocol_error`.
fn request_error(url: &str, e: &reqwest::Error) -> ProviderError {
    let cause = error_chain(e);
    if e.is_connect() {
        return ProviderError::Unreachable(format!("{url}: {cause}"));
    }
    match transport_failure(e) {
        TransportFailure::Garbage => ProviderError::Protocol(format!("{url}: {cause}")),
        TransportFailure::Cut => ProviderError::Disconnected(format!("{url}: {cause}")),
    }
}

/// Why reading the body failed: bytes that are not HTTP framing (a bad
/// chunk size, say) are `upstream_protocol_error`; anything else (a reset,
/// a close mid-body) is `upstream_disconnected`.
fn body_error(e: &reqwest::Error) -> ProviderError {
    let cause = error_chain(e);
    match transport_failure(e) {
        TransportFailure::Garbage => ProviderError::Protocol(cause),
        TransportFailure::Cut => ProviderError::Disconnected(cause),
    }
}

/// How a connection that was open failed.
enum TransportFailure {
    /// The upstream sent bytes that are not HTTP.
    Garbage,
    /// The connection was reset or closed early.
    Cut,
}

fn transport_failure(e: &reqwest::Error) -> TransportFailure {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(error) = source {
        if let Some(hyper) = error.downcast_ref::<hyper::Error>()
            && hyper.is_parse()
        {
            return TransportFailure::Garbage;
        }
        // hyper reports bad chunked framing as invalid data or input.
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::InvalidInput
            )
        {
            return TransportFailure::Garbage;
        }
        source = error.source();
    }
    TransportFailure::Cut
}

/// An error and its causes, `: `-separated: reqwest's own message ("error
/// decoding response body") says nothing of the cause.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The message of an OpenAI-style error body, or the body itself, shortened.
fn error_message(body: &str) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(|e| e.get("message").and_then(|m| m.as_str()).or(e.as_str()))
        .map(str::to_owned)
        .unwrap_or_else(|| body.trim().to_owned());
    let mut message: String = message.chars().take(MAX_ERROR_BODY).collect();
    if message.is_empty() {
        message.push_str("(empty body)");
    }
    message
}

/// The state of one streamed body being decoded.
struct ChunkStream {
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    decoder: SseDecoder,
    /// Deltas decoded but not yet handed out.
    pending: VecDeque<ModelDelta>,
    /// Longest wait for the next delta that carries output.
    idle: Duration,
    /// When the stream last made progress (or began).
    last_progress: tokio::time::Instant,
    /// No more bytes will be read: the body ended, failed or sent `[DONE]`.
    body_done: bool,
    saw_done: bool,
    saw_finish: bool,
    /// Some event carried data: the body is an event stream.
    saw_event: bool,
    /// The body's first bytes, to show if it is not an event stream.
    prefix: Vec<u8>,
}

impl ChunkStream {
    fn new(
        body: BoxStream<'static, reqwest::Result<Bytes>>,
        decoder: SseDecoder,
        idle: Duration,
    ) -> Self {
        Self {
            body,
            decoder,
            pending: VecDeque::new(),
            idle,
            last_progress: tokio::time::Instant::now(),
            body_done: false,
            saw_done: false,
            saw_finish: false,
            saw_event: false,
            prefix: Vec::new(),
        }
    }

    async fn next(&mut self) -> Option<Result<ModelDelta, ProviderError>> {
        loop {
            if let Some(delta) = self.pending.pop_front() {
                if matches!(delta, ModelDelta::Finish(_)) {
                    self.saw_finish = true;
                }
                return Some(Ok(delta));
            }
            if self.body_done {
                return None;
            }
            // Measured from the last delta with output, not the last bytes:
            // keep-alive comments and empty chunks do not hold a run open.
            let deadline = self.last_progress + self.idle;
            let next = tokio::time::timeout_at(deadline, self.body.next()).await;
            let result = match next {
                Err(_) => Err(ProviderError::Timeout(self.idle.as_secs())),
                Ok(Some(Err(e))) => Err(body_error(&e)),
                Ok(Some(Ok(bytes))) => self.feed(&bytes),
                Ok(None) => self.end_of_body(),
            };
            if let Err(e) = result {
                self.body_done = true;
                self.pending.clear();
                return Some(Err(e));
            }
            if self.pending.iter().any(ModelDelta::is_progress) {
                self.last_progress = tokio::time::Instant::now();
            }
        }
    }

    fn feed(&mut self, bytes: &[u8]) -> Result<(), ProviderError> {
        if self.prefix.len() < SHOWN_PREFIX {
            let room = SHOWN_PREFIX - self.prefix.len();
            self.prefix
                .extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
        let mut error = None;
        let (pending, saw_done, saw_event) =
            (&mut self.pending, &mut self.saw_done, &mut self.saw_event);
        self.decoder
            .feed(bytes, |data| {
                *saw_event = true;
                if error.is_some() || *saw_done {
                    return;
                }
                if data == b"[DONE]" {
                    *saw_done = true;
                } else if let Err(e) = decode_chunk(data, pending) {
                    error = Some(e);
                }
            })
            .map_err(|e| ProviderError::Protocol(e.to_string()))?;
        if self.saw_done {
            self.body_done = true;
        }
        error.map_or(Ok(()), Err)
    }

    fn end_of_body(&mut self) -> Result<(), ProviderError> {
        self.body_done = true;
        let last = self
            .decoder
            .finish()
            .map_err(|e| ProviderError::Protocol(e.to_string()))?;
        if let Some(data) = last {
            self.saw_event = true;
            if data != b"[DONE]" {
                decode_chunk(&data, &mut self.pending)?;
            }
        }
        if !self.saw_event && !self.prefix.iter().all(u8::is_ascii_whitespace) {
            self.pending.clear();
            return Err(ProviderError::Protocol(format!(
                "the answer is not an event stream: {}",
                String::from_utf8_lossy(&self.prefix)
            )));
        }
        let finished = self.saw_finish
            || self
                .pending
                .iter()
                .any(|d| matches!(d, ModelDelta::Finish(_)));
        if !finished {
            self.pending.clear();
            return Err(ProviderError::Disconnected(
                "the body ended without [DONE] or a finish_reason".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The deltas and the error (if any) of a body arriving in `pieces`,
    /// decoded with events of at most `max_event_bytes`.
    async fn decode_body(
        pieces: &[&str],
        max_event_bytes: usize,
    ) -> (Vec<ModelDelta>, Option<ProviderError>) {
        let pieces: Vec<reqwest::Result<Bytes>> = pieces
            .iter()
            .map(|p| Ok(Bytes::copy_from_slice(p.as_bytes())))
            .collect();
        let mut stream = ChunkStream::new(
            futures::stream::iter(pieces).boxed(),
            SseDecoder::with_limit(max_event_bytes),
            Duration::from_secs(5),
        );
        let mut deltas = Vec::new();
        while let Some(next) = stream.next().await {
            match next {
                Ok(delta) => deltas.push(delta),
                Err(e) => return (deltas, Some(e)),
            }
        }
        (deltas, None)
    }

    const STOP: &str =
        r#"{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}"#;

    #[tokio::test]
    async fn an_event_over_the_limit_is_a_protocol_error() {
        let too_large = |e: Option<ProviderError>| matches!(e, Some(ProviderError::Protocol(m)) if m.contains("larger than"));
        let long = format!("data: {}", "x".repeat(100));
        let (deltas, error) = decode_body(&[&long[..50], &long[50..], "\n\n"], 64).await;
        assert!(deltas.is_empty());
        assert!(too_large(error));
        // Also when the stream ends inside the long event, after a good one.
        let (deltas, error) = decode_body(&[&format!("data: {STOP}\n\n"), &long], 100).await;
        assert_eq!(deltas.len(), 2);
        assert!(too_large(error));
    }

    #[tokio::test]
    async fn a_last_event_without_a_blank_line_is_decoded() {
        let body = format!("data: {STOP}\r\n");
        let (deltas, error) = decode_body(&[&body[..9], &body[9..]], 1024).await;
        assert!(error.is_none(), "{error:?}");
        assert_eq!(deltas.len(), 2, "{deltas:?}");
    }

    /// A chunk of a generated answer: text, reasoning, a tool-call
    /// fragment, or an empty delta, as servers send them.
    fn chunk() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        // No quote, backslash or control: the text sits in a JSON string.
        let text = r#"[^\\"\p{Cc}]{0,8}"#;
        prop_oneof![
            text.prop_map(|t| format!(r#"{{"choices":[{{"index":0,"delta":{{"content":"{t}"}}}}]}}"#)),
            text.prop_map(|t| format!(r#"{{"choices":[{{"index":0,"delta":{{"reasoning_content":"{t}"}}}}]}}"#)),
            text.prop_map(|t| format!(r#"{{"choices":[{{"index":0,"delta":{{"tool_calls":[{{"index":0,"function":{{"arguments":"{t}"}}}}]}}}}]}}"#)),
            Just(r#"{"choices":[{"index":0,"delta":{}}]}"#.to_owned()),
            Just(r#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}"#.to_owned()),
        ]
    }

    proptest::proptest! {
        /// However the body is cut into pieces, and whatever comments the
        /// upstream interleaves, the same deltas come out.
        #[test]
        fn any_chunking_of_a_stream_yields_the_same_deltas(
            chunks in proptest::collection::vec(chunk(), 0..12),
            comments in proptest::collection::vec(proptest::bool::ANY, 12),
            cuts in proptest::collection::vec(proptest::prelude::any::<proptest::sample::Index>(), 0..8),
        ) {
            let mut body = String::new();
            for (i, c) in chunks.iter().enumerate() {
                if comments[i] {
                    body.push_str(": keep-alive\n\n");
                }
                body.push_str(&format!("data: {c}\n\n"));
            }
            body.push_str(&format!("data: {STOP}\n\ndata: [DONE]\n\n"));
            let mut cuts: Vec<usize> = cuts
                .iter()
                .map(|c| c.index(body.len() + 1))
                .filter(|&i| body.is_char_boundary(i))
                .collect();
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut start = 0;
            for cut in cuts {
                pieces.push(&body[start..cut]);
                start = cut;
            }
            pieces.push(&body[start..]);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .unwrap();
            let (whole, whole_error) = runtime.block_on(decode_body(&[&body], 1 << 20));
            let (cut, cut_error) = runtime.block_on(decode_body(&pieces, 1 << 20));
            proptest::prop_assert!(whole_error.is_none(), "{whole_error:?}");
            proptest::prop_assert!(cut_error.is_none(), "{cut_error:?}");
            proptest::prop_assert_eq!(whole, cut);
        }

        /// Any bytes as a chunk: decoded or refused, never a panic.
        #[test]
        fn any_bytes_as_a_chunk_are_decoded_or_refused(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
        ) {
            let mut out = Vec::new();
            let _ = decode_chunk(&bytes, &mut out);
        }
    }

    #[test]
    fn error_bodies_yield_their_message() {
        assert_eq!(
            error_message(r#"{"error":{"message":"bad key"}}"#),
            "bad key"
        );
        assert_eq!(error_message("plain failure\n"), "plain failure");
        assert_eq!(error_message(""), "(empty body)");
    }
}
