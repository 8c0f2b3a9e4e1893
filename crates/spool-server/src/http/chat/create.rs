//! `POST /v1/chat/completions`: a chat completion, streamed in the `chat`
//! dialect (seed 001's chunks with agent status) or the `wxo` dialect (the
//! Orchestrate external-agent stream), or whole as `chat.completion`.
//!
//! Everything is checked before anything is written: the messages, the
//! named agent (`model: "agent:NAME"`), the thread, and the Responses body
//! they make. A thread is a conversation: its id comes from the
//! `X-IBM-THREAD-ID` header or `thread_id` (top level or in `extra_body`),
//! or spool opens one; either way it is returned in the `X-IBM-THREAD-ID`
//! response header and on every chunk. A conversation id (`conv_…`) must
//! exist; any other thread id names the conversation `conv_<thread id>`,
//! opened on first use. Messages the thread already holds are not input
//! again.

use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::extract::JsonBody;
use crate::http::responses::create::collect;
use crate::http::responses::json_response;
use crate::http::runs::with_run_id;
use crate::http::sse::{CancelOnDrop, dialect_stream};
use crate::runtime::sink::now_ms;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use serde_json::Value;
use spool_core::agent_config::selected_agent;
use spool_core::ids::ConversationId;
use spool_core::projection::{Dialect, chat};
use spool_core::request::RunRequest;
use spool_core::request::chat::{
    ChatCompletionBody, chat_history, check_tool_results, new_messages,
};
use spool_store::NewConversation;

/// The request header naming the stream's dialect (`chat` or `wxo`).
pub const DIALECT_HEADER: &str = "x-spool-dialect";
/// The thread header of Flexo and watsonx Orchestrate.
pub const THREAD_HEADER: &str = "x-ibm-thread-id";

pub async fn create_chat_completion(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ChatCompletionBody>,
) -> Result<Response, ApiError> {
    let requested_dialect = match header(&headers, DIALECT_HEADER)? {
        None => None,
        Some(name) => Some(chat_dialect(name, "X-Spool-Dialect")?),
    };
    let header_thread = header(&headers, THREAD_HEADER)?.map(str::to_owned);
    let mut chat = body.parse()?;
    let store = state.runtime.store();
    let agent = match selected_agent(&chat.body)? {
        Some(name) => Some(store.agent(&name).await?.ok_or_else(|| ApiError {
            param: Some("model".into()),
            ..ApiError::not_found(format!("Agent '{name}' not found."))
        })?),
        None => None,
    };
    if let Some(agent) = &agent {
        agent.apply(&mut chat.body);
    }
    let agent_dialect = match agent.as_ref().and_then(|a| a.chat_dialect.as_deref()) {
        Some(name) => Some(chat_dialect(name, "chat_dialect")?),
        None => None,
    };
    let dialect = requested_dialect.or(agent_dialect).unwrap_or(Dialect::Chat);
    let stored = chat.body.store.unwrap_or(true);
    let thread = header_thread.or(chat.thread_id.take());
    if thread.is_some() && !stored {
        return Err(ApiError::bad_request(
            "A thread is stored: thread_id requires store=true.",
            Some("store"),
            Some("invalid_value"),
        ));
    }
    // The thread's conversation: an existing one, a named one to open once
    // the request is known to be good, or a new one the run itself creates
    // (the common case: no thread named).
    let (conversation, thread_state) = match (&thread, stored) {
        (_, false) => (None, ThreadState::Existing),
        (None, true) => (
            Some(ConversationId::generate(state.runtime.ids())),
            ThreadState::CreatedByRun,
        ),
        (Some(thread), true) => {
            let named = thread.starts_with("conv_");
            let raw = if named {
                thread.clone()
            } else {
                format!("conv_{thread}")
            };
            let id = ConversationId::parse(&raw).map_err(|e| {
                ApiError::bad_request(
                    format!("Invalid thread id '{thread}': {e}."),
                    Some("thread_id"),
                    Some("invalid_value"),
                )
            })?;
            let exists = store.conversation(&id).await?.is_some();
            if named && !exists {
                return Err(ApiError {
                    param: Some("thread_id".into()),
                    ..ApiError::not_found(format!("Thread '{thread}' not found."))
                });
            }
            let state = if exists {
                ThreadState::Existing
            } else {
                ThreadState::OpenedHere
            };
            (Some(id), state)
        }
    };
    let history = match &conversation {
        Some(id) if thread_state == ThreadState::Existing => {
            chat_history(&store.conversation_history(id).await?)
        }
        _ => Vec::new(),
    };
    let new = new_messages(&chat.messages, &history);
    check_tool_results(new, &history, chat.messages.len() - new.len())?;
    let input: Vec<Value> = new.iter().flat_map(|m| m.input_items()).collect();
    let mut body = std::mem::take(&mut chat.body);
    body.input = Some(Value::Array(input));
    body.conversation = conversation.as_ref().map(|c| Value::from(c.as_str()));
    let mut request = RunRequest::parse(body, state.runtime.ids())?;
    request.stop = std::mem::take(&mut chat.stop);
    request.chat = chat.stream_options(agent.as_ref().and_then(|a| a.status_chunks));
    request.opens_conversation = thread_state == ThreadState::CreatedByRun;
    let opened_here = match (&conversation, thread_state) {
        (Some(id), ThreadState::OpenedHere) => Some(id),
        _ => None,
    };
    if let Some(id) = opened_here {
        let new_conversation = NewConversation {
            id: id.clone(),
            created_at: now_ms().div_euclid(1000),
            metadata: Default::default(),
            items: Vec::new(),
        };
        // Another request may have opened the same named thread meanwhile.
        if let Err(e) = store.create_conversation(&new_conversation).await
            && store.conversation(id).await?.is_none()
        {
            return Err(e.into());
        }
    }
    let mut started = match state.runtime.start(request).await {
        Ok(started) => started,
        Err(e) => {
            if let Some(id) = opened_here {
                // Nothing is kept of a request that could not start.
                let _ = store.delete_conversation(id).await;
            }
            return Err(e.into());
        }
    };
    let guard =
        (!started.background).then(|| CancelOnDrop::new(state.runtime.clone(), started.id.clone()));
    let response = if chat.stream {
        // Begun once the run exists in the log: a store that cannot write
        // is an error answer, not an empty 200.
        started.events.wait_first().await?;
        dialect_stream(dialect, started.events, None, state.sse, guard)
    } else {
        let fold = collect(started.events, false).await?;
        if let Some(mut guard) = guard {
            guard.disarm();
        }
        let object = chat::completion(&fold)
            .ok_or_else(|| ApiError::internal("the run ended before it was created"))?;
        json_response(object.to_string())
    };
    let mut response = with_run_id(response, &started.id);
    if let Some(id) = &conversation
        && let Ok(value) = HeaderValue::from_str(id.as_str())
    {
        response.headers_mut().insert(THREAD_HEADER, value);
    }
    Ok(response)
}

/// Where a chat request's thread stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ThreadState {
    /// Stored already (or none is kept: `store: false`).
    Existing,
    /// Named by the client and new: opened here before the run starts.
    OpenedHere,
    /// Made up by spool for this request: the run creates it with its
    /// first write, so a thread costs no extra round trip.
    CreatedByRun,
}

/// A request header's value, if it was sent.
fn header<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, ApiError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str().map_err(|_| {
                ApiError::bad_request(
                    format!("The {name} header is not valid text."),
                    Some(name),
                    Some("invalid_value"),
                )
            })
        })
        .transpose()
}

/// A dialect `POST /v1/chat/completions` can stream in.
fn chat_dialect(name: &str, param: &str) -> Result<Dialect, ApiError> {
    match Dialect::parse(name) {
        Some(d @ (Dialect::Chat | Dialect::Wxo)) => Ok(d),
        _ => Err(ApiError::bad_request(
            format!("Unknown chat dialect '{name}': expected 'chat' or 'wxo'."),
            Some(param),
            Some("invalid_value"),
        )),
    }
}
