//! roboto's agent threads over HTTP: bad input gets roboto's error shape
//! and status and writes nothing, continuation tokens are checked, and a
//! delta from any token a poller was given brings it exactly to the end.

use crate::helpers::{TestApp, spawn_app};
use crate::upstream::{DONE, Script, finish_chunk, slow_script, text_script, tool_chunk};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

fn user(text: &str) -> Value {
    json!({"role": "user", "content": [{"text": text}]})
}

fn remember_tool() -> Value {
    json!([{"name": "client_remember", "description": "Store a fact.",
            "input_schema": {"type": "object", "properties": {"fact": {"type": "string"}}}}])
}

fn client_call(id: &str) -> Script {
    Script::Stream(vec![
        tool_chunk(0, Some(id), Some("client_remember"), r#"{"fact":"blue"}"#),
        finish_chunk("tool_calls"),
        DONE,
    ])
}

/// Starts a thread and returns its record.
async fn start(app: &TestApp, body: Value) -> Value {
    let (status, record) = app.post("/v1/ai/threads", &body).await;
    assert_eq!(status, 200, "{record}");
    record["data"].clone()
}

async fn delta(app: &TestApp, thread: &str, token: &str) -> (u16, Value) {
    app.get(&format!("/v1/ai/threads/{thread}/delta?next_token={token}"))
        .await
}

/// Polls until the thread leaves `roboto_turn`; the last delta.
async fn settle(app: &TestApp, thread: &str, token: &str) -> Value {
    let mut token = token.to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, d) = delta(app, thread, &token).await;
        assert_eq!(status, 200, "{d}");
        let d = d["data"].clone();
        if d["status"] != "roboto_turn" {
            return d;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the thread stays in roboto_turn"
        );
        token = d["continuation_token"].as_str().unwrap().to_owned();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// roboto's error shape, with its exception class.
fn assert_roboto_error(status: u16, body: &Value, expected: u16, class: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["error"]["error_code"], class, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}

#[tokio::test]
async fn an_unknown_thread_is_a_404_on_every_route() {
    let app = spawn_app().await;
    for path in [
        "/v1/ai/threads/conv_nope",
        "/v1/ai/threads/conv_nope/delta",
        "/v1/ai/threads/not-an-id",
        "/v1/ai/threads/conv_nope/events",
    ] {
        let (status, body) = app.get(path).await;
        assert_roboto_error(status, &body, 404, "RobotoNotFoundException");
    }
    let (status, body) = app
        .post(
            "/v1/ai/threads/conv_nope/messages",
            &json!({"message": user("hi")}),
        )
        .await;
    assert_roboto_error(status, &body, 404, "RobotoNotFoundException");
    let (status, body) = app
        .post(
            "/v1/ai/threads/conv_nope/tool-results",
            &json!({"tool_results": []}),
        )
        .await;
    assert_roboto_error(status, &body, 404, "RobotoNotFoundException");
    assert!(app.upstream.requests().is_empty());
}

#[tokio::test]
async fn tool_results_are_checked_against_the_calls_the_thread_awaits() {
    let app = spawn_app().await;
    app.upstream.push(text_script(&["Hi."]));
    let record = start(
        &app,
        json!({"messages": [user("hello")], "model_profile": "up", "client_tools": remember_tool()}),
    )
    .await;
    let thread = record["thread_id"].as_str().unwrap();
    let end = settle(&app, thread, record["continuation_token"].as_str().unwrap()).await;
    assert_eq!(end["status"], "user_turn");
    let result = |id: &str| {
        json!({"tool_results": [{"tool_use_id": id, "tool_name": "client_remember",
                                  "runtime_ms": 3, "status": "success", "output": {}}]})
    };
    // Nothing awaited: a conflict.
    let path = format!("/v1/ai/threads/{thread}/tool-results");
    let (status, body) = app.post(&path, &result("call_1")).await;
    assert_roboto_error(status, &body, 409, "RobotoConflictException");

    app.upstream.push(client_call("call_1"));
    let (status, body) = app
        .post(
            &format!("/v1/ai/threads/{thread}/messages"),
            &json!({"message": user("remember blue")}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let waiting = settle(&app, thread, end["continuation_token"].as_str().unwrap()).await;
    assert_eq!(waiting["status"], "client_tool_turn");
    let calls_so_far = app.upstream.requests().len();

    // A call the thread did not make, a missing one, a bad status: 400s.
    let (status, body) = app.post(&path, &result("call_nope")).await;
    assert_roboto_error(status, &body, 400, "RobotoInvalidRequestException");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("call_nope")
    );
    let (status, body) = app.post(&path, &json!({"tool_results": []})).await;
    assert_roboto_error(status, &body, 400, "RobotoInvalidRequestException");
    let mut bad_status = result("call_1");
    bad_status["tool_results"][0]["status"] = json!("maybe");
    let (status, body) = app.post(&path, &bad_status).await;
    assert_roboto_error(status, &body, 400, "RobotoInvalidRequestException");
    // A message while the thread waits for its results: a conflict.
    let (status, body) = app
        .post(
            &format!("/v1/ai/threads/{thread}/messages"),
            &json!({"message": user("and?")}),
        )
        .await;
    assert_roboto_error(status, &body, 409, "RobotoConflictException");
    assert_eq!(app.upstream.requests().len(), calls_so_far, "nothing ran");

    app.upstream.push(text_script(&["Stored."]));
    let (status, body) = app.post(&path, &result("call_1")).await;
    assert_eq!(status, 200, "{body}");
    let done = settle(
        &app,
        thread,
        waiting["continuation_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(done["status"], "user_turn");
}

#[tokio::test]
async fn stale_and_forged_tokens_are_400s() {
    let app = spawn_app().await;
    app.upstream.push(text_script(&["One."]));
    let record = start(
        &app,
        json!({"messages": [user("a")], "model_profile": "up"}),
    )
    .await;
    let thread = record["thread_id"].as_str().unwrap().to_owned();
    // The token a thread starts with points into its first run.
    let first = record["continuation_token"].as_str().unwrap().to_owned();
    let end = settle(&app, &thread, &first).await;
    let token = end["continuation_token"].as_str().unwrap().to_owned();

    app.upstream.push(text_script(&["Two."]));
    let other = start(
        &app,
        json!({"messages": [user("b")], "model_profile": "up"}),
    )
    .await;
    let other_thread = other["thread_id"].as_str().unwrap();

    // Tokens are sealed: an altered one, or one made up, is refused.
    let mut altered = token.clone().into_bytes();
    let at = altered.len() - 3;
    altered[at] = if altered[at] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    for bad in ["garbage", "spool1.AAAA", altered.as_str()] {
        let (status, body) = delta(&app, &thread, bad).await;
        assert_roboto_error(status, &body, 400, "RobotoInvalidRequestException");
    }
    // Another thread's token.
    let (status, body) = delta(&app, other_thread, &token).await;
    assert_roboto_error(status, &body, 400, "RobotoInvalidRequestException");

    // Stale: the run the token points into was deleted.
    let (status, turns) = app.get(&format!("/v1/threads/{thread}/turns")).await;
    assert_eq!(status, 200, "{turns}");
    let run = turns["data"][0]["id"].as_str().unwrap();
    let (status, body) = app.delete(&format!("/v1/responses/{run}")).await;
    assert_eq!(status, 200, "{body}");
    for stale in [&first, &token] {
        let (status, body) = delta(&app, &thread, stale).await;
        assert_roboto_error(status, &body, 400, "RobotoInvalidRequestException");
        assert!(
            body["error"]["message"].as_str().unwrap().contains("Stale"),
            "{body}"
        );
    }
}

/// The messages a poller holds, as roboto's SDK keeps them: new indices
/// appended, known ones extended and given their new status.
fn apply(held: &mut Vec<Value>, delta: &Value) {
    let by_idx: BTreeMap<usize, Value> = delta["messages_by_idx"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.parse().unwrap(), v.clone()))
        .collect();
    for (idx, message) in by_idx {
        if idx < held.len() {
            held[idx]["status"] = message["status"].clone();
            let content = held[idx]["content"].as_array_mut().unwrap();
            content.extend(message["content"].as_array().unwrap().iter().cloned());
        } else {
            assert_eq!(idx, held.len(), "messages arrive in order: {delta}");
            held.push(message);
        }
    }
}

/// Adjacent text blocks joined, as a record shows them.
fn coalesced(messages: &[Value]) -> Vec<Value> {
    messages
        .iter()
        .map(|m| {
            let mut blocks: Vec<Value> = Vec::new();
            for block in m["content"].as_array().unwrap() {
                match (blocks.last_mut(), block["content_type"].as_str()) {
                    (Some(last), Some("text")) if last["content_type"] == "text" => {
                        let joined = format!(
                            "{}{}",
                            last["text"].as_str().unwrap(),
                            block["text"].as_str().unwrap()
                        );
                        last["text"] = json!(joined);
                    }
                    _ => blocks.push(block.clone()),
                }
            }
            json!({"role": m["role"], "status": m["status"], "content": blocks})
        })
        .collect()
}

#[tokio::test]
async fn a_delta_from_every_token_a_poller_saw_gives_exactly_the_rest() {
    let app = spawn_app().await;
    app.upstream.push(client_call("call_1"));
    let record = start(
        &app,
        json!({"messages": [user("remember")], "model_profile": "up", "client_tools": remember_tool()}),
    )
    .await;
    let thread = record["thread_id"].as_str().unwrap().to_owned();
    // Every token a poller was given, with the messages it held then.
    let mut seen: Vec<(String, Vec<Value>)> = Vec::new();
    let mut held: Vec<Value> = record["messages"].as_array().unwrap().clone();
    let mut token = record["continuation_token"].as_str().unwrap().to_owned();
    let mut poll = |held: &mut Vec<Value>, token: &mut String, d: &Value| {
        seen.push((token.clone(), held.clone()));
        apply(held, d);
        *token = d["continuation_token"].as_str().unwrap().to_owned();
    };
    let mut step = 0;
    loop {
        let (status, d) = delta(&app, &thread, &token).await;
        assert_eq!(status, 200, "{d}");
        let d = d["data"].clone();
        poll(&mut held, &mut token, &d);
        match (d["status"].as_str().unwrap(), step) {
            ("client_tool_turn", 0) => {
                step = 1;
                app.upstream.push(slow_script(6, Duration::from_millis(15)));
                let (status, body) = app
                    .post(
                        &format!("/v1/ai/threads/{thread}/tool-results"),
                        &json!({"tool_results": [{"tool_use_id": "call_1",
                            "tool_name": "client_remember", "runtime_ms": 7,
                            "status": "success", "output": {"ok": true}}]}),
                    )
                    .await;
                assert_eq!(status, 200, "{body}");
            }
            ("user_turn", 1) => {
                step = 2;
                app.upstream.push(text_script(&["Bye", "."]));
                let (status, body) = app
                    .post(
                        &format!("/v1/ai/threads/{thread}/messages"),
                        &json!({"message": user("bye")}),
                    )
                    .await;
                assert_eq!(status, 200, "{body}");
            }
            ("user_turn", 2) => break,
            _ => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
    seen.push((token.clone(), held.clone()));
    let (status, whole) = app.get(&format!("/v1/ai/threads/{thread}")).await;
    assert_eq!(status, 200, "{whole}");
    let end = coalesced(whole["data"]["messages"].as_array().unwrap());
    assert_eq!(coalesced(&held), end, "polling gives the thread");
    assert!(seen.len() > 6, "the poller saw the thread at many points");
    for (token, before) in &seen {
        let (status, d) = delta(&app, &thread, token).await;
        assert_eq!(status, 200, "{d}");
        let mut rest = before.clone();
        apply(&mut rest, &d["data"]);
        assert_eq!(coalesced(&rest), end, "from {token}");
        assert_eq!(d["data"]["status"], "user_turn");
    }
    // At the end there is nothing new; a long poll waits and says so.
    let started = std::time::Instant::now();
    let (status, d) = app
        .get(&format!(
            "/v1/ai/threads/{thread}/delta?next_token={token}&wait_ms=300"
        ))
        .await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["data"]["messages_by_idx"], json!({}));
    assert_eq!(d["data"]["continuation_token"], token.as_str());
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn a_long_poll_wakes_when_the_model_writes() {
    let app = spawn_app().await;
    app.upstream.push(text_script(&["Hi."]));
    let record = start(
        &app,
        json!({"messages": [user("a")], "model_profile": "up"}),
    )
    .await;
    let thread = record["thread_id"].as_str().unwrap().to_owned();
    let end = settle(
        &app,
        &thread,
        record["continuation_token"].as_str().unwrap(),
    )
    .await;
    let token = end["continuation_token"].as_str().unwrap().to_owned();
    let waiter = {
        let (app_url, thread, token) = (app.url(""), thread.clone(), token.clone());
        let http = app.http.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let r = http
                .get(format!(
                    "{app_url}/v1/ai/threads/{thread}/delta?next_token={token}&wait_ms=10000"
                ))
                .send()
                .await
                .unwrap();
            (r.json::<Value>().await.unwrap(), started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    app.upstream.push(text_script(&["Again."]));
    let (status, body) = app
        .post(
            &format!("/v1/ai/threads/{thread}/messages"),
            &json!({"message": user("b")}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (d, waited) = waiter.await.unwrap();
    assert!(waited < Duration::from_secs(5), "woken, not timed out");
    assert!(
        !d["data"]["messages_by_idx"].as_object().unwrap().is_empty(),
        "{d}"
    );
}

#[tokio::test]
async fn a_run_reads_as_agent_session_events_resumable_by_last_event_id() {
    let app = spawn_app().await;
    app.upstream.push(text_script(&["Hel", "lo."]));
    let record = start(
        &app,
        json!({"messages": [user("hi")], "model_profile": "up"}),
    )
    .await;
    let thread = record["thread_id"].as_str().unwrap().to_owned();
    settle(
        &app,
        &thread,
        record["continuation_token"].as_str().unwrap(),
    )
    .await;
    let (_, turns) = app.get(&format!("/v1/threads/{thread}/turns")).await;
    let run = turns["data"][0]["id"].as_str().unwrap().to_owned();
    let read = |last: Option<&'static str>| {
        let mut request = app
            .http
            .get(app.url(&format!("/v1/runs/{run}/events?dialect=agent_session")));
        if let Some(last) = last {
            request = request.header("last-event-id", last);
        }
        async move {
            let r = request.send().await.unwrap();
            assert_eq!(r.status(), 200);
            crate::helpers::parse_sse(&crate::helpers::read_to_end(r).await)
        }
    };
    let frames = read(None).await;
    let types: Vec<String> = frames
        .iter()
        .map(|f| f.json()["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        types,
        ["start_text", "text_delta", "text_delta", "text_end"],
        "{frames:?}"
    );
    let ids: Vec<_> = frames.iter().map(|f| f.id.clone()).collect();
    assert_eq!(ids, ["0", "1", "2", "3"].map(|i| Some(i.to_owned())));
    assert!(
        frames
            .iter()
            .all(|f| f.event.as_deref() == Some(f.json()["type"].as_str().unwrap()))
    );
    let rest = read(Some("1")).await;
    assert_eq!(rest, frames[2..].to_vec());
}

#[tokio::test]
async fn threads_are_listed_newest_first_in_pages_without_their_messages() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for text in ["first", "second"] {
        app.upstream.push(text_script(&["ok"]));
        let record = start(
            &app,
            json!({"messages": [user(text)], "model_profile": "up"}),
        )
        .await;
        let thread = record["thread_id"].as_str().unwrap().to_owned();
        settle(
            &app,
            &thread,
            record["continuation_token"].as_str().unwrap(),
        )
        .await;
        ids.push(thread);
    }
    let (status, page) = app.get("/v1/ai/threads?limit=1").await;
    assert_eq!(status, 200, "{page}");
    let items = page["data"]["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["thread_id"], ids[1].as_str());
    assert_eq!(items[0]["status"], "user_turn");
    assert_eq!(items[0]["model_profile"], "up");
    assert_eq!(items[0]["messages"], json!([]));
    let next = page["data"]["next_token"].as_str().unwrap();
    let (status, page) = app
        .get(&format!("/v1/ai/threads?limit=1&next_token={next}"))
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["data"]["items"][0]["thread_id"], ids[0].as_str());
    assert_eq!(page["data"]["next_token"], Value::Null);
    for bad in ["limit=0", "limit=x", "next_token=nope"] {
        let (status, body) = app.get(&format!("/v1/ai/threads?{bad}")).await;
        assert_roboto_error(status, &body, 400, "RobotoInvalidRequestException");
    }
}

#[tokio::test]
async fn a_start_that_cannot_run_writes_nothing() {
    let app = spawn_app().await;
    for (body, param) in [
        (json!({"messages": [user("x")]}), "model_profile"),
        (
            json!({"messages": [user("x")], "model_profile": "agent:nobody"}),
            "agent",
        ),
        (json!({"messages": [], "model_profile": "up"}), "messages"),
        (
            json!({"messages": [user("x")], "model_profile": "up",
                "goals": [{"goal_type": "dataset_summary"}]}),
            "goals",
        ),
        (
            json!({"messages": [user("x")], "model_profile": "up",
                "client_tools": [{"name": "remember", "description": "", "input_schema": {}}]}),
            "client_tools",
        ),
    ] {
        let (status, error) = app.post("/v1/ai/threads", &body).await;
        assert!(status == 400 || status == 404, "{param}: {status} {error}");
        assert!(
            error["error"]["error_code"]
                .as_str()
                .unwrap()
                .starts_with("Roboto"),
            "{error}"
        );
    }
    let (_, page) = app.get("/v1/ai/threads").await;
    assert_eq!(page["data"]["items"], json!([]), "no thread was kept");
    assert!(app.upstream.requests().is_empty());
}
