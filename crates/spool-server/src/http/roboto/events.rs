//! `GET /v1/ai/threads/{id}/events`: a thread's agent-session events
//! (`start_text`, `text_delta`, `text_end`, `tool_use`, `tool_result`,
//! `error`) as one SSE stream over all its runs, oldest first, numbered
//! across them; `Last-Event-ID: N` (or `after=N`) resumes after frame `N`.
//! A running turn is followed live; the stream ends when the thread's
//! latest run has ended. `GET /v1/runs/{id}/events?dialect=agent_session`
//! gives one run's events.

use super::{RobotoError, load_thread};
use crate::http::AppState;
use crate::http::extract::QueryPairs;
use crate::http::runs::events::last_event_id;
use crate::http::sse::{SseOptions, write_frame};
use crate::runtime::sink::now_ms;
use crate::runtime::subscribe::{SubscribeError, Subscription};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use spool_core::event::{Envelope, Event};
use spool_core::ids::{ConversationId, ResponseId};
use spool_core::projection::{AgentSessionProjection, Projection};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

pub async fn thread_events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    query: QueryPairs,
) -> Result<Response, RobotoError> {
    let after = last_event_id(&headers, &query)?;
    let thread = load_thread(&state, &id).await?;
    let stream = ThreadStream {
        options: state.sse,
        state,
        thread: thread.id,
        queued: VecDeque::new(),
        last_run: None,
        current: None,
        projection: AgentSessionProjection::new(),
        after,
        pending: BytesMut::new(),
        finished: false,
    };
    let body = futures::stream::unfold(stream, |mut stream| async move {
        stream
            .next_chunk()
            .await
            .map(|chunk| (Ok::<_, Infallible>(chunk), stream))
    })
    .boxed();
    let mut response = Body::from_stream(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// The runs of a thread played one after another through one projection.
struct ThreadStream {
    state: AppState,
    options: SseOptions,
    thread: ConversationId,
    /// Runs listed and not yet played.
    queued: VecDeque<ResponseId>,
    /// The last run listed.
    last_run: Option<ResponseId>,
    current: Option<Subscription>,
    projection: AgentSessionProjection,
    after: Option<u64>,
    pending: BytesMut,
    finished: bool,
}

impl ThreadStream {
    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            if !self.pending.is_empty() {
                return Some(self.pending.split().freeze());
            }
            if self.finished {
                return None;
            }
            let Some(events) = &mut self.current else {
                self.next_run().await;
                continue;
            };
            let next = match self.options.keep_alive {
                Some(every) => match tokio::time::timeout(every, events.next()).await {
                    Ok(next) => next,
                    Err(_) => return Some(Bytes::from_static(KEEP_ALIVE)),
                },
                None => events.next().await,
            };
            // A run whose log could not be written ends, for its
            // watchers, with the failure the store's end will say.
            let next = match next {
                Some(Err(SubscribeError::RunAborted(error))) => Some(Ok(Arc::new(Envelope {
                    seq: self.projection.fold().next_seq(),
                    ts_ms: now_ms(),
                    event: Event::RunFailed { error },
                }))),
                other => other,
            };
            match next {
                Some(Ok(envelope)) => {
                    let (pending, after) = (&mut self.pending, self.after);
                    let projected = self.projection.apply(&envelope, &mut |frame| {
                        if after.is_none_or(|n| frame.index > n) {
                            write_frame(pending, &frame);
                        }
                    });
                    if let Err(e) = projected {
                        tracing::error!(error = %e, "a thread's log could not be projected");
                        self.finished = true;
                    } else if envelope.event.is_terminal() {
                        self.current = None;
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "a thread's event stream ended early");
                    self.finished = true;
                }
                None => self.current = None,
            }
        }
    }

    /// Moves on to the thread's next run; ends the stream when there is
    /// none (the thread is at rest).
    async fn next_run(&mut self) {
        if self.queued.is_empty() {
            let listed = self
                .state
                .runtime
                .store()
                .conversation_responses(&self.thread, self.last_run.as_ref(), 100)
                .await;
            match listed {
                Ok(page) => {
                    self.last_run = page.data.last().cloned().or(self.last_run.take());
                    self.queued.extend(page.data);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "a thread's runs could not be listed");
                    self.finished = true;
                    return;
                }
            }
        }
        match self.queued.pop_front() {
            Some(run) => self.current = Some(self.state.runtime.subscribe(&run)),
            None => self.finished = true,
        }
    }
}
