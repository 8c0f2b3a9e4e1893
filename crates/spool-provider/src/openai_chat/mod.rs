//! The OpenAI-compatible chat-completions provider.
//!
//! Streams `POST {base}/chat/completions` and decodes the SSE body into
//! deltas. Every way the upstream can misbehave ends the stream with a
//! [`ProviderError`], never a hang: the connection and each wait for more
//! bytes are bounded by timeouts, a malformed chunk is a protocol error, and
//! a body that ends before `[DONE]` or a finish reason is a disconnect.

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
    /// Longest wait for the response head or for the next bytes of the body.
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

/// Longest error body kept for the failure message.
const MAX_ERROR_BODY: usize = 2000;

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
        let text = tokio::time::timeout(idle, response.text())
            .await
            .map_err(|_| ProviderError::Timeout(idle.as_secs()))?
            .map_err(|e| ProviderError::Disconnected(e.to_string()))?;
        if !status.is_success() {
            return Err(ProviderError::Http {
                status: status.as_u16(),
                message: error_message(&text),
            });
        }
        let answer: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
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
            .map_err(|e| ProviderError::Unreachable(format!("{}: {e}", self.url)))?;
        let status = response.status();
        if !status.is_success() {
            let text = tokio::time::timeout(idle, response.text())
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            return Err(ProviderError::Http {
                status: status.as_u16(),
                message: error_message(&text),
            });
        }
        let state = ChunkStream {
            body: response.bytes_stream().boxed(),
            decoder: SseDecoder::new(),
            pending: VecDeque::new(),
            idle,
            body_done: false,
            saw_done: false,
            saw_finish: false,
        };
        Ok(
            futures::stream::unfold(state, |mut s| async move { s.next().await.map(|d| (d, s)) })
                .boxed(),
        )
    }
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
    idle: Duration,
    /// No more bytes will be read: the body ended, failed or sent `[DONE]`.
    body_done: bool,
    saw_done: bool,
    saw_finish: bool,
}

impl ChunkStream {
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
            let next = tokio::time::timeout(self.idle, self.body.next()).await;
            let result = match next {
                Err(_) => Err(ProviderError::Timeout(self.idle.as_secs())),
                Ok(Some(Err(e))) => Err(ProviderError::Disconnected(e.to_string())),
                Ok(Some(Ok(bytes))) => self.feed(&bytes),
                Ok(None) => self.end_of_body(),
            };
            if let Err(e) = result {
                self.body_done = true;
                self.pending.clear();
                return Some(Err(e));
            }
        }
    }

    fn feed(&mut self, bytes: &[u8]) -> Result<(), ProviderError> {
        let mut error = None;
        let (pending, saw_done) = (&mut self.pending, &mut self.saw_done);
        self.decoder
            .feed(bytes, |data| {
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
        if let Some(data) = last
            && data != b"[DONE]"
        {
            decode_chunk(&data, &mut self.pending)?;
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
        let mut stream = ChunkStream {
            body: futures::stream::iter(pieces).boxed(),
            decoder: SseDecoder::with_limit(max_event_bytes),
            pending: VecDeque::new(),
            idle: Duration::from_secs(5),
            body_done: false,
            saw_done: false,
            saw_finish: false,
        };
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
