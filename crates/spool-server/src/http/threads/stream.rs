//! Serving a turn's log as Codex thread events: SSE or NDJSON.
//!
//! SSE frames are `id: N\nevent: <type>\ndata: <one-line JSON>\n\n`, where
//! `N` is the frame's dense position in the codex projection, so a client
//! that lost the stream reconnects with `Last-Event-ID: N` and gets what
//! follows. NDJSON (`Accept: application/x-ndjson`) is one event per line,
//! as `codex exec --json` prints them. Either way the stream ends after the
//! turn's end (`turn.completed` or `turn.failed`); if the log fails
//! mid-stream, a `turn.failed` is synthesized so no client hangs.

use crate::http::sse::{CancelOnDrop, SseOptions};
use crate::runtime::sink::now_ms;
use crate::runtime::subscribe::{SubscribeError, Subscription};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use spool_core::event::{Envelope, Event};
use spool_core::projection::{CodexProjection, Frame, Projection};
use spool_core::run::RunError;
use std::convert::Infallible;
use std::sync::Arc;

const NDJSON: &str = "application/x-ndjson";
const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// How a stream of thread events is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Sse,
    Ndjson,
}

impl Framing {
    /// NDJSON when the client accepts it and not SSE; SSE otherwise.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if accept.contains(NDJSON) && !accept.contains("text/event-stream") {
            Framing::Ndjson
        } else {
            Framing::Sse
        }
    }

    fn write(self, buf: &mut BytesMut, frame: &Frame) {
        match self {
            Framing::Sse => {
                buf.extend_from_slice(format!("id: {}\n", frame.index).as_bytes());
                if let Some(event) = frame.event {
                    buf.extend_from_slice(b"event: ");
                    buf.extend_from_slice(event.as_bytes());
                    buf.extend_from_slice(b"\n");
                }
                buf.extend_from_slice(b"data: ");
                buf.extend_from_slice(frame.data.as_bytes());
                buf.extend_from_slice(b"\n\n");
            }
            Framing::Ndjson => {
                buf.extend_from_slice(frame.data.as_bytes());
                buf.extend_from_slice(b"\n");
            }
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Framing::Sse => "text/event-stream",
            Framing::Ndjson => NDJSON,
        }
    }
}

struct StreamState {
    events: Subscription,
    projection: CodexProjection,
    framing: Framing,
    pending: BytesMut,
    /// Frames at or below this index are not sent.
    after: Option<u64>,
    options: SseOptions,
    finished: bool,
    guard: Option<CancelOnDrop>,
}

impl StreamState {
    fn project(&mut self, envelope: &Envelope) {
        let (pending, after, framing) = (&mut self.pending, self.after, self.framing);
        let projected = self.projection.apply(envelope, &mut |frame| {
            if after.is_none_or(|n| frame.index > n) {
                framing.write(pending, &frame);
            }
        });
        if let Err(e) = projected {
            tracing::error!(error = %e, "a stored log could not be projected");
            self.end();
        } else if envelope.event.is_terminal() {
            self.end();
        }
    }

    fn end(&mut self) {
        self.finished = true;
        if let Some(guard) = &mut self.guard {
            guard.disarm();
        }
    }

    /// Ends the stream with the `turn.failed` the log could not store.
    fn abort(&mut self, error: RunError) {
        let fold = self.projection.fold();
        let envelope = Envelope {
            seq: fold.next_seq(),
            ts_ms: now_ms(),
            event: Event::RunFailed { error },
        };
        if fold.check(&envelope.event).is_ok() {
            self.project(&envelope);
        } else {
            self.end();
        }
    }

    fn take(&mut self, next: Option<Result<Arc<Envelope>, SubscribeError>>) {
        match next {
            Some(Ok(envelope)) => self.project(&envelope),
            Some(Err(SubscribeError::RunAborted(error))) => self.abort(error),
            Some(Err(SubscribeError::Store(e))) => {
                tracing::error!(error = %e, "reading a log failed mid-stream");
                self.abort(RunError::new(
                    "storage_error",
                    "The turn's log could not be read.",
                ));
            }
            None => self.end(),
        }
    }

    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            if !self.pending.is_empty() {
                return Some(self.pending.split().freeze());
            }
            if self.finished {
                return None;
            }
            let next = match (self.options.keep_alive, self.framing) {
                (Some(every), Framing::Sse) => {
                    match tokio::time::timeout(every, self.events.next()).await {
                        Ok(next) => next,
                        Err(_) => return Some(Bytes::from_static(KEEP_ALIVE)),
                    }
                }
                _ => self.events.next().await,
            };
            self.take(next);
            while !self.finished {
                match self.events.next_ready() {
                    Some(next) => self.take(Some(next)),
                    None => break,
                }
            }
        }
    }
}

/// A response streaming `events` as Codex thread events, skipping the
/// frames at or below `after`.
pub fn codex_stream(
    events: Subscription,
    framing: Framing,
    after: Option<u64>,
    options: SseOptions,
    guard: Option<CancelOnDrop>,
) -> Response {
    let state = StreamState {
        events,
        projection: CodexProjection::new(),
        framing,
        pending: BytesMut::new(),
        after,
        options,
        finished: false,
        guard,
    };
    let body = futures::stream::unfold(state, |mut state| async move {
        state
            .next_chunk()
            .await
            .map(|chunk| (Ok::<_, Infallible>(chunk), state))
    })
    .boxed();
    let mut response = Body::from_stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(framing.content_type()),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> Frame {
        Frame {
            index: 2,
            event: Some("turn.started"),
            data: r#"{"type":"turn.started"}"#.into(),
        }
    }

    #[test]
    fn an_sse_frame_carries_its_index_as_its_id() {
        let mut buf = BytesMut::new();
        Framing::Sse.write(&mut buf, &frame());
        assert_eq!(
            &buf[..],
            b"id: 2\nevent: turn.started\ndata: {\"type\":\"turn.started\"}\n\n"
        );
    }

    #[test]
    fn an_ndjson_frame_is_one_line() {
        let mut buf = BytesMut::new();
        Framing::Ndjson.write(&mut buf, &frame());
        assert_eq!(&buf[..], b"{\"type\":\"turn.started\"}\n");
    }

    #[test]
    fn ndjson_is_chosen_only_when_asked_for() {
        let mut headers = HeaderMap::new();
        assert_eq!(Framing::from_headers(&headers), Framing::Sse);
        headers.insert(header::ACCEPT, HeaderValue::from_static(NDJSON));
        assert_eq!(Framing::from_headers(&headers), Framing::Ndjson);
    }
}
