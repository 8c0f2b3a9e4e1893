//! Serving a run's log as a server-sent event stream in any dialect (or,
//! for the Codex dialect's clients that ask for it, as NDJSON).
//!
//! Each [`Frame`] a dialect's projection yields is `id: <index>\n`, then
//! `event: <name>\n` for dialects that name events, then
//! `data: <one-line JSON>\n\n`. The `id:` is the frame's position in the
//! dialect's projection, so a client that reconnects with `Last-Event-ID`
//! gets exactly the frames after it. Frames that are ready together go out
//! in one write, and a frame is never split. After the terminal event of a
//! Responses stream a `data: [DONE]` frame follows when enabled (the chat
//! dialects project their own `[DONE]`). Idle streams get `: keep-alive`
//! comments so proxies keep them open. If the run's log fails mid-stream,
//! the stream still ends with the dialect's terminal frames for a failed
//! run, synthesized from the fold, so no client hangs.

use crate::runtime::Runtime;
use crate::runtime::sink::now_ms;
use crate::runtime::subscribe::{SubscribeError, Subscription};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use spool_core::event::{Envelope, Event};
use spool_core::ids::ResponseId;
use spool_core::projection::{Dialect, Frame, Projection};
use spool_core::run::RunError;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

/// How streams are framed.
#[derive(Debug, Clone, Copy)]
pub struct SseOptions {
    /// Send `data: [DONE]` after the terminal event.
    pub done_marker: bool,
    /// Send a comment when no event came for this long.
    pub keep_alive: Option<Duration>,
}

const DONE: &[u8] = b"data: [DONE]\n\n";
const NDJSON: &str = "application/x-ndjson";
const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";
/// Most bytes of ready frames joined into one write.
const COALESCE_BYTES: usize = 64 * 1024;

/// One SSE frame for a projected frame.
pub fn frame(frame: &Frame) -> Bytes {
    let mut buf = BytesMut::with_capacity(frame.data.len() + 48);
    write_frame(&mut buf, frame);
    buf.freeze()
}

/// Appends the SSE frame of a projected frame to `buf`.
pub fn write_frame(buf: &mut BytesMut, frame: &Frame) {
    // Writing to a BytesMut cannot fail.
    let _ = writeln!(buf, "id: {}", frame.index);
    if let Some(event) = frame.event {
        buf.extend_from_slice(b"event: ");
        buf.extend_from_slice(event.as_bytes());
        buf.extend_from_slice(b"\n");
    }
    buf.extend_from_slice(b"data: ");
    buf.extend_from_slice(frame.data.as_bytes());
    buf.extend_from_slice(b"\n\n");
}

/// How a stream's frames are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Server-sent events: `id:`, `event:` when named, `data:`.
    Sse,
    /// One frame's data per line, as `codex exec --json` prints events.
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
            Framing::Sse => write_frame(buf, frame),
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

/// Cancels a foreground run if its client goes away before it ends.
pub struct CancelOnDrop {
    runtime: Arc<Runtime>,
    id: ResponseId,
    armed: bool,
}

impl CancelOnDrop {
    pub fn new(runtime: Arc<Runtime>, id: ResponseId) -> Self {
        Self {
            runtime,
            id,
            armed: true,
        }
    }

    /// The run ended: nothing to cancel any more.
    pub fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.armed {
            tracing::info!(response_id = %self.id, "client went away; cancelling its foreground run");
            self.runtime.cancel_foreground(&self.id);
        }
    }
}

struct StreamState {
    events: Subscription,
    projection: Box<dyn Projection>,
    framing: Framing,
    /// Frames ready to send, back to back: sent as one write.
    pending: BytesMut,
    /// Frames at or below this position are not sent: the client has them.
    starting_after: Option<u64>,
    options: SseOptions,
    finished: bool,
    guard: Option<CancelOnDrop>,
}

impl StreamState {
    fn project(&mut self, envelope: &Envelope) {
        let (pending, starting_after, framing) =
            (&mut self.pending, self.starting_after, self.framing);
        let projected = self.projection.apply(envelope, &mut |f| {
            if starting_after.is_none_or(|n| f.index > n) {
                framing.write(pending, &f);
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
        if self.options.done_marker {
            self.pending.extend_from_slice(DONE);
        }
    }

    /// Ends the stream with a `response.failed` the log could not store.
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

    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            if !self.pending.is_empty() {
                return Some(self.pending.split().freeze());
            }
            if self.finished {
                return None;
            }
            // Comments keep an SSE stream open; NDJSON has none.
            let keep_alive = self
                .options
                .keep_alive
                .filter(|_| self.framing == Framing::Sse);
            let next = match keep_alive {
                Some(every) => match tokio::time::timeout(every, self.events.next()).await {
                    Ok(next) => next,
                    Err(_) => return Some(Bytes::from_static(KEEP_ALIVE)),
                },
                None => self.events.next().await,
            };
            self.take(next);
            // Events that arrived together go out in one write: a frame per
            // write costs a syscall per token under load.
            while !self.finished && self.pending.len() < COALESCE_BYTES {
                match self.events.next_ready() {
                    Some(next) => self.take(Some(next)),
                    None => break,
                }
            }
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
                    "The run's log could not be read.",
                ));
            }
            None => self.end(),
        }
    }
}

/// An SSE response streaming `events` through the Responses projection.
pub fn responses_stream(
    events: Subscription,
    starting_after: Option<u64>,
    options: SseOptions,
    guard: Option<CancelOnDrop>,
) -> Response {
    dialect_stream(Dialect::Responses, events, starting_after, options, guard)
}

/// An SSE response streaming `events` through `dialect`'s projection,
/// skipping the frames at or below `starting_after`.
pub fn dialect_stream(
    dialect: Dialect,
    events: Subscription,
    starting_after: Option<u64>,
    options: SseOptions,
    guard: Option<CancelOnDrop>,
) -> Response {
    framed_stream(
        dialect,
        Framing::Sse,
        events,
        starting_after,
        options,
        guard,
    )
}

/// A response streaming `events` through `dialect`'s projection in
/// `framing`, skipping the frames at or below `starting_after`.
pub fn framed_stream(
    dialect: Dialect,
    framing: Framing,
    events: Subscription,
    starting_after: Option<u64>,
    mut options: SseOptions,
    guard: Option<CancelOnDrop>,
) -> Response {
    options.done_marker &= dialect.takes_done_marker();
    projected_stream(
        dialect.projection(),
        framing,
        events,
        starting_after,
        options,
        guard,
    )
}

/// A response streaming `events` through `projection` (a dialect whose
/// stream needs more than the run's own log, such as a llama-stack turn
/// resumed by a second run), skipping the frames at or below
/// `starting_after`.
pub fn projected_stream(
    projection: Box<dyn Projection>,
    framing: Framing,
    events: Subscription,
    starting_after: Option<u64>,
    options: SseOptions,
    guard: Option<CancelOnDrop>,
) -> Response {
    let state = StreamState {
        events,
        projection,
        framing,
        pending: BytesMut::new(),
        starting_after,
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
    use super::{Framing, NDJSON};
    use axum::http::{HeaderMap, HeaderValue, header};
    use bytes::BytesMut;
    use spool_core::projection::Frame;

    fn codex_frame() -> Frame {
        Frame {
            index: 2,
            event: Some("turn.started"),
            data: r#"{"type":"turn.started"}"#.into(),
        }
    }

    #[test]
    fn an_sse_frame_carries_its_index_as_its_id() {
        let mut buf = BytesMut::new();
        Framing::Sse.write(&mut buf, &codex_frame());
        assert_eq!(
            &buf[..],
            b"id: 2\nevent: turn.started\ndata: {\"type\":\"turn.started\"}\n\n"
        );
    }

    #[test]
    fn an_ndjson_frame_is_one_line() {
        let mut buf = BytesMut::new();
        Framing::Ndjson.write(&mut buf, &codex_frame());
        assert_eq!(&buf[..], b"{\"type\":\"turn.started\"}\n");
    }

    #[test]
    fn ndjson_is_chosen_only_when_asked_for() {
        let mut headers = HeaderMap::new();
        assert_eq!(Framing::from_headers(&headers), Framing::Sse);
        headers.insert(header::ACCEPT, HeaderValue::from_static(NDJSON));
        assert_eq!(Framing::from_headers(&headers), Framing::Ndjson);
    }

    use super::*;

    #[test]
    fn a_frame_is_an_id_line_an_event_line_and_a_data_line() {
        let w = Frame {
            index: 3,
            event: Some("response.output_text.delta"),
            data: r#"{"type":"response.output_text.delta","sequence_number":3}"#.into(),
        };
        assert_eq!(
            frame(&w),
            Bytes::from_static(
                b"id: 3\nevent: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":3}\n\n"
            )
        );
    }

    #[test]
    fn a_data_only_frame_has_no_event_line() {
        let w = Frame {
            index: 0,
            event: None,
            data: "[DONE]".into(),
        };
        assert_eq!(frame(&w), Bytes::from_static(b"id: 0\ndata: [DONE]\n\n"));
    }
}
