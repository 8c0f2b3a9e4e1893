//! A fast OpenAI-compatible upstream for benchmarks.
//!
//! The model name says what to stream: `t200d0` is 200 tokens with no delay,
//! `t30d100` is 30 tokens 100 ms apart. Chunks are serialized once, up
//! front, so the upstream costs as little as possible per request. The
//! model `tools` plays a tool-calling conversation: it calls the function
//! `lookup` unless the last message is that call's result, which it answers
//! with a few tokens.

use axum::Router;
use axum::body::Body;
use axum::response::Response;
use axum::routing::post;
use bytes::Bytes;
use futures::StreamExt;
use std::net::SocketAddr;
use std::time::Duration;

/// Parses `t{tokens}d{delay_ms}`.
fn plan(model: &str) -> (usize, u64) {
    let rest = model.strip_prefix('t').unwrap_or("20d0");
    let (tokens, delay) = rest.split_once('d').unwrap_or((rest, "0"));
    (tokens.parse().unwrap_or(20), delay.parse().unwrap_or(0))
}

fn chunk(content: &str) -> Bytes {
    Bytes::from(format!(
        "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{content}\"}},\"finish_reason\":null}}]}}\n\n"
    ))
}

const TAIL: &str = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":5,\"total_tokens\":10}}\n\ndata: [DONE]\n\n";

/// The answer of the `tools` model to `messages`.
fn tool_turn(messages: &[serde_json::Value]) -> Bytes {
    let answered = messages
        .last()
        .is_some_and(|m| m["role"].as_str() == Some("tool"));
    if answered {
        let mut out = String::new();
        for _ in 0..5 {
            out.push_str(std::str::from_utf8(&chunk(" tok")).unwrap_or_default());
        }
        out.push_str(TAIL);
        return Bytes::from(out);
    }
    // A call id unique in the conversation: its length so far.
    let id = messages.len();
    let call = serde_json::json!({"id": "c", "object": "chat.completion.chunk", "created": 0,
        "model": "m", "choices": [{"index": 0, "finish_reason": null, "delta": {"tool_calls": [
            {"index": 0, "id": format!("call_{id}"), "type": "function",
             "function": {"name": "lookup", "arguments": format!("{{\"q\":{id}}}")}}]}}]});
    let finish = serde_json::json!({"id": "c", "object": "chat.completion.chunk", "created": 0,
        "model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]});
    Bytes::from(format!(
        "data: {call}\n\ndata: {finish}\n\ndata: [DONE]\n\n"
    ))
}

async fn chat(body: Bytes) -> Response {
    let request = serde_json::from_slice::<serde_json::Value>(&body).unwrap_or_default();
    let model = request["model"].as_str().unwrap_or_default().to_owned();
    if model == "tools" {
        let messages = request["messages"].as_array().cloned().unwrap_or_default();
        return Response::builder()
            .header("content-type", "text/event-stream")
            .body(Body::from(tool_turn(&messages)))
            .unwrap_or_default();
    }
    let (tokens, delay_ms) = plan(&model);
    let token = chunk(" tok");
    let stream = futures::stream::iter(0..tokens)
        .then(move |_| {
            let token = token.clone();
            async move {
                if delay_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                }
                Ok::<_, std::convert::Infallible>(token)
            }
        })
        .chain(futures::stream::once(async {
            Ok(Bytes::from_static(TAIL.as_bytes()))
        }));
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap_or_default()
}

/// Starts the upstream on a loopback port.
pub async fn start() -> anyhow::Result<SocketAddr> {
    let app = Router::new().route("/v1/chat/completions", post(chat));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}
