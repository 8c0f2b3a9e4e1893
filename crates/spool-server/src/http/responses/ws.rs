//! WebSocket mode: `GET /v1/responses` upgraded to a WebSocket.
//!
//! The client sends one JSON text frame per turn, `{"type":
//! "response.create", …the create body…}` without `stream_options` or
//! `background` (`"stream": true`, which Codex CLI sends though the spec
//! disallows it, is accepted as the no-op it is; `stream: false` is
//! refused); spool answers with the events of
//! the SSE stream, one JSON text frame each, the same payloads and
//! `sequence_number`s. One response runs at a time on a socket, and they
//! run one after another. A request that cannot run is an error frame
//! `{"type": "error", "status", "error": {"code", "message", "type",
//! "param"?}}` and the socket stays open.
//!
//! Continuation sends `previous_response_id` and only the new input. The
//! connection keeps the conversations of its latest responses in memory
//! ([`ConnectionCache`]), so a `store: false` chain continues though
//! nothing of it was persisted; after a reconnect it is gone
//! (`previous_response_not_found`), and a continuation that fails evicts
//! its entry. `generate: false` records the input as a response to chain
//! from without calling the model. A stored response is a run like any
//! other: it can be resumed or replayed over HTTP.
//!
//! Spool has no API keys yet: a key given in the header or in the
//! `openai-insecure-api-key.<key>` subprotocol is accepted and ignored, but
//! the subprotocol is negotiated, as browsers require. A connection lasts
//! at most `--websocket-max-age-secs` (60 minutes, as OpenAI's): then a
//! response still running is cancelled, the client gets a
//! `websocket_connection_limit_reached` error frame and the socket closes.
//! A client that goes away mid-response cancels it (WebSocket responses are
//! never `background`).

use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::sse::CancelOnDrop;
use crate::runtime::sink::now_ms;
use crate::runtime::subscribe::SubscribeError;
use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::response::Response;
use futures::SinkExt;
use serde_json::{Value, json};
use spool_core::agent_config::selected_agent;
use spool_core::emit::{MemorySink, RunEmitter};
use spool_core::event::{Envelope, Event};
use spool_core::ids::ResponseId;
use spool_core::item::Item;
use spool_core::projection::ResponsesProjection;
use spool_core::request::{CreateResponseBody, RunRequest};
use spool_core::run::RunError;
use spool_core::status::RunStatus;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// The subprotocol prefix carrying an API key, for clients (browsers) that
/// cannot set headers.
const KEY_SUBPROTOCOL: &str = "openai-insecure-api-key.";

/// How many responses' conversations a connection keeps for continuation.
/// Clients continue from their latest response; a few more allow a retry
/// from an earlier one without letting a long session grow without bound.
const CACHED_RESPONSES: usize = 8;

/// `GET /v1/responses` with `Upgrade: websocket`.
pub async fn responses_socket(
    State(state): State<AppState>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    // A plain GET (or a broken handshake) is answered in the error shape,
    // like every other error, not by axum's plain-text rejection.
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            return ApiError {
                status: rejection.status(),
                ..ApiError::bad_request(
                    format!(
                        "GET /v1/responses is the WebSocket mode of the Responses API: {}.",
                        rejection.body_text()
                    ),
                    None,
                    Some("websocket_upgrade_required"),
                )
            }
            .into_response();
        }
    };
    let offered = headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find(|p| p.starts_with(KEY_SUBPROTOCOL))
        .map(str::to_owned);
    let upgrade = match offered {
        Some(protocol) => upgrade.protocols([protocol]),
        None => upgrade,
    };
    upgrade.on_upgrade(move |socket| serve_connection(state, socket))
}

/// The conversations of a connection's latest responses, by response id:
/// the history a continuation of each starts from.
#[derive(Default)]
struct ConnectionCache {
    entries: VecDeque<(ResponseId, Vec<Item>)>,
}

impl ConnectionCache {
    fn get(&self, id: &ResponseId) -> Option<&Vec<Item>> {
        self.entries.iter().find(|(k, _)| k == id).map(|(_, v)| v)
    }

    fn insert(&mut self, id: ResponseId, items: Vec<Item>) {
        self.evict(&id);
        if self.entries.len() == CACHED_RESPONSES {
            self.entries.pop_front();
        }
        self.entries.push_back((id, items));
    }

    fn evict(&mut self, id: &ResponseId) {
        self.entries.retain(|(k, _)| k != id);
    }
}

/// Whether the socket is still there after a turn.
enum Connection {
    Open,
    Closed,
}

async fn serve_connection(state: AppState, mut socket: WebSocket) {
    let deadline = Instant::now() + state.websocket_max_age;
    let mut cache = ConnectionCache::default();
    loop {
        let message = tokio::select! {
            message = socket.recv() => message,
            () = tokio::time::sleep_until(deadline) => {
                close_at_limit(&mut socket, state.websocket_max_age).await;
                return;
            }
        };
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Binary(_))) => {
                let e = ApiError::bad_request(
                    "Frames must be JSON text frames.",
                    None,
                    Some("invalid_frame"),
                );
                if socket.send(error_frame(&e)).await.is_err() {
                    return;
                }
                continue;
            }
            // Pings are answered by the socket itself.
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(_))) => {
                answer_close(&mut socket).await;
                return;
            }
            Some(Err(_)) | None => return,
        };
        match turn(&state, &mut socket, &mut cache, text.as_str(), deadline).await {
            Ok(Connection::Open) => {}
            Ok(Connection::Closed) => return,
            Err(e) => {
                if socket.send(error_frame(&e)).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Tells the client the connection reached its age limit, and closes it.
async fn close_at_limit(socket: &mut WebSocket, max_age: Duration) {
    let minutes = max_age.as_secs() / 60;
    let age = if minutes > 0 {
        format!("{minutes}-minute")
    } else {
        format!("{}-second", max_age.as_secs())
    };
    let limit = ApiError {
        code: Some("websocket_connection_limit_reached".into()),
        ..ApiError::bad_request(
            format!("This connection reached its {age} limit; open a new one to continue."),
            None,
            None,
        )
    };
    let _ = socket.send(error_frame(&limit)).await;
    let _ = socket.send(Message::Close(None)).await;
}

/// Completes the closing handshake a client began: the socket queued its
/// reply to the client's Close frame as it read it, and sends it when
/// flushed. Without it the client sees the connection drop (1006) rather
/// than close cleanly.
async fn answer_close(socket: &mut WebSocket) {
    let _ = socket.flush().await;
}

/// `{"type": "error", "status", "error": {…}}`.
fn error_frame(e: &ApiError) -> Message {
    let mut error = json!({"message": e.message, "type": e.kind});
    error["code"] = json!(e.code.as_deref().unwrap_or(e.kind));
    if let Some(param) = &e.param {
        error["param"] = json!(param);
    }
    let frame = json!({"type": "error", "status": e.status.as_u16(), "error": error});
    Message::Text(frame.to_string().into())
}

/// One `response.create` frame: runs the response and sends its events.
async fn turn(
    state: &AppState,
    socket: &mut WebSocket,
    cache: &mut ConnectionCache,
    text: &str,
    deadline: Instant,
) -> Result<Connection, ApiError> {
    let Ok(Value::Object(mut fields)) = serde_json::from_str::<Value>(text) else {
        return Err(ApiError::bad_request(
            "A frame must be a JSON object.",
            None,
            Some("invalid_json"),
        ));
    };
    match fields.remove("type") {
        Some(Value::String(t)) if t == "response.create" => {}
        other => {
            let shown = other
                .map(|t| t.to_string())
                .unwrap_or_else(|| "none".into());
            return Err(ApiError::bad_request(
                format!("Unknown message type {shown}: expected 'response.create'."),
                Some("type"),
                Some("unknown_message_type"),
            ));
        }
    }
    // Every response streams over the socket. The spec disallows `stream`,
    // but Codex CLI sends `"stream": true` in every frame: that one is
    // taken as the no-op it is; anything else is refused.
    if fields.get("stream") == Some(&Value::Bool(true)) {
        fields.remove("stream");
    }
    for refused in ["stream", "stream_options", "background"] {
        if fields.contains_key(refused) {
            return Err(ApiError::bad_request(
                format!(
                    "'{refused}' is not allowed in WebSocket mode: every response streams over the socket."
                ),
                Some(refused),
                Some("unsupported_parameter"),
            ));
        }
    }
    let generate = match fields.remove("generate") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => b,
        Some(_) => {
            return Err(ApiError::bad_request(
                "generate must be a boolean.",
                Some("generate"),
                Some("invalid_value"),
            ));
        }
    };
    let mut body: CreateResponseBody = serde_json::from_value(Value::Object(fields))
        .map_err(|e| ApiError::bad_request(format!("Invalid request body: {e}"), None, None))?;
    body.stream = Some(true);
    if let Some(name) = selected_agent(&body)? {
        let agent = state
            .runtime
            .store()
            .agent(&name)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("Agent '{name}' not found.")))?;
        agent.apply(&mut body);
    }
    if body.tools.as_ref().is_some_and(|tools| !tools.is_empty()) {
        body.hosted_tool_servers = (*state.hosted_tool_servers).clone();
    }
    let request = RunRequest::parse(body, state.runtime.ids())?;
    let previous = request.previous_response_id.clone();
    let cached = previous.as_ref().and_then(|id| cache.get(id)).cloned();
    // A response that is not stored must be continued from memory: its
    // history is gathered here (from the cache, or the stored chain).
    let history = match (&previous, cached) {
        (_, Some(items)) => Some(items),
        (Some(prev), None) if !request.modes.store || !generate => {
            match state.runtime.history(prev).await {
                Ok(items) => Some(items),
                Err(e) => return Err(e.into()),
            }
        }
        _ => None,
    };
    if !generate {
        return warm_up(state, socket, cache, request, history).await;
    }
    let input = request.input.clone();
    let started = match state
        .runtime
        .start_with_history(request, history.clone())
        .await
    {
        Ok(started) => started,
        Err(e) => {
            if let Some(prev) = &previous {
                cache.evict(prev);
            }
            return Err(e.into());
        }
    };
    let mut guard = CancelOnDrop::new(state.runtime.clone(), started.id.clone());
    let mut events = started.events;
    let mut projection = ResponsesProjection::new();
    let mut gone = false;
    let mut expired = false;
    loop {
        let next = tokio::select! {
            next = events.next() => next,
            message = socket.recv() => {
                match message {
                    Some(Ok(Message::Text(_) | Message::Binary(_))) => {
                        let busy = ApiError {
                            code: Some("response_already_in_flight".into()),
                            ..ApiError::conflict(
                                "A response is already running on this connection; send the next one after it ends.",
                                "response_already_in_flight",
                            )
                        };
                        if socket.send(error_frame(&busy)).await.is_err() {
                            gone = true;
                            break;
                        }
                        continue;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_))) => {
                        answer_close(socket).await;
                        gone = true;
                        break;
                    }
                    Some(Err(_)) | None => {
                        gone = true;
                        break;
                    }
                }
            }
            () = tokio::time::sleep_until(deadline) => {
                expired = true;
                break;
            }
        };
        let envelope = match next {
            Some(Ok(envelope)) => envelope,
            Some(Err(SubscribeError::RunAborted(error))) => {
                std::sync::Arc::new(synthesized_failure(&projection, error))
            }
            Some(Err(SubscribeError::Store(e))) => {
                tracing::error!(error = %e, "reading a log failed mid-stream");
                std::sync::Arc::new(synthesized_failure(
                    &projection,
                    RunError::new("storage_error", "The response's log could not be read."),
                ))
            }
            None => break,
        };
        let mut frames = Vec::new();
        let projected = projection.apply(&envelope, |wire| frames.push(wire.json));
        if let Err(e) = projected {
            tracing::error!(error = %e, "a log could not be projected");
            break;
        }
        for frame in frames {
            if socket.send(Message::Text(frame.into())).await.is_err() {
                gone = true;
                break;
            }
        }
        if gone || envelope.event.is_terminal() {
            break;
        }
    }
    if gone || expired {
        // The guard, still armed, cancels the run.
        drop(guard);
        if expired {
            close_at_limit(socket, state.websocket_max_age).await;
        }
        return Ok(Connection::Closed);
    }
    guard.disarm();
    let fold = projection.fold();
    match fold.status() {
        Some(RunStatus::Completed | RunStatus::Incomplete) => {
            let mut items = history.unwrap_or_default();
            if previous.is_some() && items.is_empty() {
                // A stored chain the runtime read itself: continuations of
                // this response read it again from the store.
                return Ok(Connection::Open);
            }
            items.extend(input);
            items.extend(fold.output().iter().cloned());
            cache.insert(started.id, items);
        }
        _ => {
            if let Some(prev) = &previous {
                cache.evict(prev);
            }
        }
    }
    Ok(Connection::Open)
}

/// The terminal event of a run whose log failed under it.
fn synthesized_failure(projection: &ResponsesProjection, error: RunError) -> Envelope {
    Envelope {
        seq: projection.fold().next_seq(),
        ts_ms: now_ms(),
        event: Event::RunFailed { error },
    }
}

/// `generate: false`: records the input as a completed response without
/// calling the model, kept in the connection's cache to chain from.
async fn warm_up(
    state: &AppState,
    socket: &mut WebSocket,
    cache: &mut ConnectionCache,
    request: RunRequest,
    history: Option<Vec<Item>>,
) -> Result<Connection, ApiError> {
    let id = ResponseId::generate(state.runtime.ids());
    let header = request.header(id.clone(), now_ms().div_euclid(1000));
    let sink = MemorySink::default();
    let events = sink.events.clone();
    let mut emitter = RunEmitter::new(Box::new(sink), state.runtime.ids_arc());
    let emitted = async {
        emitter.created(header, request.input.clone()).await?;
        emitter.started().await?;
        emitter.complete().await
    }
    .await;
    emitted.map_err(ApiError::internal)?;
    let log: Vec<Envelope> = std::mem::take(
        &mut *events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    let mut projection = ResponsesProjection::new();
    let mut frames = Vec::new();
    for envelope in &log {
        projection
            .apply(envelope, |wire| frames.push(wire.json))
            .map_err(ApiError::internal)?;
    }
    for frame in frames {
        if socket.send(Message::Text(frame.into())).await.is_err() {
            return Ok(Connection::Closed);
        }
    }
    let mut items = history.unwrap_or_default();
    items.extend(request.input);
    cache.insert(id, items);
    Ok(Connection::Open)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: usize) -> ResponseId {
        ResponseId::parse(&format!("resp_{n}")).unwrap()
    }

    #[test]
    fn the_cache_keeps_only_the_latest_responses() {
        let mut cache = ConnectionCache::default();
        for n in 0..CACHED_RESPONSES * 10 {
            cache.insert(id(n), Vec::new());
        }
        assert_eq!(cache.entries.len(), CACHED_RESPONSES);
        assert!(cache.get(&id(0)).is_none());
        assert!(cache.get(&id(CACHED_RESPONSES * 10 - 1)).is_some());
        cache.evict(&id(CACHED_RESPONSES * 10 - 1));
        assert!(cache.get(&id(CACHED_RESPONSES * 10 - 1)).is_none());
    }
}
