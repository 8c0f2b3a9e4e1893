//! `POST /v1/chat/completions` in the chat and wxo dialects, threads, and
//! `GET /v1/runs/{id}/events`: resume at every position in every dialect.

use crate::helpers::{
    Frame, TestApp, assert_error, config, parse_sse, read_to_end, spawn_app, spawn_with, temp_db,
};
use crate::upstream::{DONE, Script, Upstream, finish_chunk, slow_script, text_script, tool_chunk};
use serde_json::{Value, json};
use std::time::Duration;

/// POSTs a chat request with `headers`; returns the response unread.
async fn open_chat(app: &TestApp, body: &Value, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut r = app
        .http
        .post(app.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(body.to_string());
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.send().await.unwrap()
}

/// Streams a chat request: (run id, thread id, frames).
async fn chat_stream(
    app: &TestApp,
    body: &Value,
    headers: &[(&str, &str)],
) -> (String, String, Vec<Frame>) {
    let r = open_chat(app, body, headers).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let run = r.headers()["x-spool-run-id"].to_str().unwrap().to_owned();
    let thread = r.headers()["x-ibm-thread-id"].to_str().unwrap().to_owned();
    (run, thread, parse_sse(&read_to_end(r).await))
}

/// The text the assistant chunks of a chat stream carry.
fn text_of(frames: &[Frame]) -> String {
    frames
        .iter()
        .filter(|f| f.data != "[DONE]")
        .filter_map(|f| {
            f.json()["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

async fn events(
    app: &TestApp,
    run: &str,
    query: &str,
    last_event_id: Option<u64>,
) -> (u16, String) {
    let mut r = app
        .http
        .get(app.url(&format!("/v1/runs/{run}/events{query}")));
    if let Some(id) = last_event_id {
        r = r.header("last-event-id", id.to_string());
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, read_to_end(r).await)
}

#[tokio::test]
async fn a_chat_stream_has_text_one_stop_chunk_the_thread_on_every_chunk_usage_and_done() {
    let app = spawn_app().await;
    app.upstream.push(text_script(&["Hel", "lo"]));
    let body = json!({"model": "up", "messages": [{"role": "user", "content": "hi"}],
        "stream": true, "stream_options": {"include_usage": true}});
    let (run, thread, frames) = chat_stream(&app, &body, &[]).await;
    assert!(run.starts_with("resp_"));
    assert!(thread.starts_with("conv_"));
    assert_eq!(frames.last().unwrap().data, "[DONE]");
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(
            f.id.as_deref(),
            Some(i.to_string().as_str()),
            "ids are positions"
        );
        assert!(f.event.is_none(), "chat frames are data only");
    }
    let chunks: Vec<Value> = frames[..frames.len() - 1].iter().map(Frame::json).collect();
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["thread_id"], thread.as_str());
    }
    assert_eq!(text_of(&frames), "Hello");
    let stops: Vec<_> = chunks
        .iter()
        .filter(|c| !c["choices"][0]["finish_reason"].is_null())
        .collect();
    assert_eq!(stops.len(), 1);
    assert_eq!(stops[0]["choices"][0]["finish_reason"], "stop");
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["prompt_tokens"], 7);

    // The run is in the Conversations API.
    let (status, items) = app.get(&format!("/v1/conversations/{thread}/items")).await;
    assert_eq!(status, 200);
    assert_eq!(items["data"].as_array().unwrap().len(), 2, "{items}");
}

#[tokio::test]
async fn a_chat_completion_without_stream_is_one_object() {
    let app = spawn_app().await;
    app.upstream.push(text_script(&["Hel", "lo"]));
    let r = open_chat(
        &app,
        &json!({"model": "up", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 50,
            "stop": ["END"]}),
        &[],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-spool-run-id"));
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["content"], "Hello");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["completion_tokens"], 2);
    let sent = &app.upstream.requests()[0];
    assert_eq!(sent["max_completion_tokens"], 50);
    assert_eq!(sent["stop"], json!(["END"]));
}

fn weather_call() -> Script {
    Script::Stream(vec![
        tool_chunk(0, Some("call_1"), Some("get_weather"), ""),
        tool_chunk(0, None, None, "{\"city\":"),
        tool_chunk(0, None, None, "\"Paris\"}"),
        finish_chunk("tool_calls"),
        DONE,
    ])
}

#[tokio::test]
async fn client_tools_stream_as_tool_calls_and_a_thread_continues_with_only_the_new_message() {
    let app = spawn_app().await;
    app.upstream.push(weather_call());
    let tools = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    let body = json!({"model": "up", "stream": true, "tools": tools,
        "messages": [{"role": "user", "content": "Weather in Paris?"}]});
    let (_, thread, frames) = chat_stream(&app, &body, &[]).await;
    let chunks: Vec<Value> = frames[..frames.len() - 1].iter().map(Frame::json).collect();
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"].get("tool_calls"))
        .collect();
    assert_eq!(calls[0][0]["id"], "call_1");
    assert_eq!(calls[0][0]["function"]["name"], "get_weather");
    let args: String = calls
        .iter()
        .filter_map(|c| c[0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(args, "{\"city\":\"Paris\"}");
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );
    assert_eq!(text_of(&frames), "", "no call leaks into content");

    // Only the new message, the thread in the header.
    app.upstream.push(text_script(&["Sunny."]));
    let body = json!({"model": "up", "tools": tools,
        "messages": [{"role": "tool", "tool_call_id": "call_1", "content": "sunny"}]});
    let r = open_chat(&app, &body, &[("x-ibm-thread-id", &thread)]).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "Sunny.");
    assert_eq!(v["thread_id"], thread.as_str());
    let sent = &app.upstream.requests()[1]["messages"];
    let roles: Vec<&str> = sent
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "tool"], "{sent}");
}

#[tokio::test]
async fn a_whole_history_client_and_an_only_new_client_continue_one_thread() {
    let app = spawn_app().await;
    app.upstream.push(text_script(&["Hello"]));
    let first = json!({"model": "up", "messages": [{"role": "user", "content": "hi"}]});
    let (status, v) = app.post("/v1/chat/completions", &first).await;
    assert_eq!(status, 200, "{v}");
    let thread = v["thread_id"].as_str().unwrap().to_owned();

    // Whole history, thread in the body.
    app.upstream.push(text_script(&["Again"]));
    let whole = json!({"model": "up", "thread_id": thread, "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "more"}]});
    let (status, v) = app.post("/v1/chat/completions", &whole).await;
    assert_eq!(status, 200, "{v}");
    // Only new, thread in extra_body.
    app.upstream.push(text_script(&["Done"]));
    let only_new = json!({"model": "up", "extra_body": {"thread_id": thread},
        "messages": [{"role": "user", "content": "last"}]});
    let (status, v) = app.post("/v1/chat/completions", &only_new).await;
    assert_eq!(status, 200, "{v}");

    let contents = |i: usize| -> Vec<String> {
        app.upstream.requests()[i]["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["content"].to_string())
            .collect()
    };
    assert_eq!(contents(1).len(), 3, "hi, Hello, more: {:?}", contents(1));
    assert_eq!(contents(2).len(), 5, "{:?}", contents(2));
    let (_, items) = app.get(&format!("/v1/conversations/{thread}/items")).await;
    assert_eq!(items["data"].as_array().unwrap().len(), 6, "{items}");
}

#[tokio::test]
async fn the_wxo_dialect_streams_orchestrate_events_with_the_thread_and_done() {
    let app = spawn_app().await;
    app.upstream.push(text_script(&["Hel", "lo"]));
    let body = json!({"model": "up", "stream": true,
        "messages": [{"role": "user", "content": "hi"}]});
    let (_, thread, frames) = chat_stream(
        &app,
        &body,
        &[
            ("x-spool-dialect", "wxo"),
            ("x-ibm-thread-id", "orchestrate-thread-1"),
            ("authorization", "Bearer anything"),
            ("x-api-key", "anything"),
        ],
    )
    .await;
    assert_eq!(thread, "conv_orchestrate-thread-1");
    assert_eq!(frames.last().unwrap().data, "[DONE]");
    for f in &frames[..frames.len() - 1] {
        let v = f.json();
        assert_eq!(v["object"], "thread.message.delta");
        assert_eq!(v["thread_id"], thread.as_str());
    }
    assert_eq!(text_of(&frames), "Hello");
}

#[tokio::test]
async fn resuming_at_every_position_gives_the_same_tail_in_every_dialect() {
    let app = spawn_app().await;
    app.upstream.push(text_script(&["a", "b", "c"]));
    let body = json!({"model": "up", "stream": true,
        "messages": [{"role": "user", "content": "hi"}]});
    let (run, _, live) = chat_stream(&app, &body, &[]).await;
    for dialect in ["responses", "chat", "wxo"] {
        let (status, text) = events(&app, &run, &format!("?dialect={dialect}"), None).await;
        assert_eq!(status, 200);
        let full = parse_sse(&text);
        if dialect == "chat" {
            assert_eq!(full, live, "a replay is the live stream");
        }
        let positions = full.iter().filter(|f| f.id.is_some()).count();
        for k in 0..positions as u64 {
            let (_, text) = events(&app, &run, &format!("?dialect={dialect}"), Some(k)).await;
            let tail = parse_sse(&text);
            let expected: Vec<Frame> = full
                .iter()
                .filter(|f| {
                    f.id.as_ref()
                        .is_none_or(|id| id.parse::<u64>().unwrap() > k)
                })
                .cloned()
                .collect();
            assert_eq!(tail, expected, "{dialect} after {k}");
            let (_, text) =
                events(&app, &run, &format!("?dialect={dialect}&after={k}"), None).await;
            assert_eq!(parse_sse(&text), expected, "{dialect} after={k}");
        }
    }
}

#[tokio::test]
async fn a_run_started_in_one_dialect_is_watched_live_in_another() {
    let app = spawn_app().await;
    app.upstream.push(slow_script(6, Duration::from_millis(30)));
    let r = open_chat(
        &app,
        &json!({"model": "up", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
        &[],
    )
    .await;
    let run = r.headers()["x-spool-run-id"].to_str().unwrap().to_owned();
    let (watched, chat) = tokio::join!(
        events(&app, &run, "?dialect=responses", None),
        read_to_end(r)
    );
    let responses = parse_sse(&watched.1);
    assert_eq!(
        responses
            .iter()
            .rev()
            .find(|f| f.event.is_some())
            .unwrap()
            .event
            .as_deref(),
        Some("response.completed")
    );
    assert_eq!(
        text_of(&parse_sse(&chat)),
        (0..6).map(|i| format!("w{i} ")).collect::<String>()
    );

    // A Responses run has the header too, and is watched as chat.
    app.upstream.push(text_script(&["z"]));
    let r = app
        .open(&json!({"model": "up", "input": "x", "stream": true}))
        .await;
    let run = r.headers()["x-spool-run-id"].to_str().unwrap().to_owned();
    read_to_end(r).await;
    let (_, text) = events(&app, &run, "?dialect=chat", None).await;
    assert_eq!(text_of(&parse_sse(&text)), "z");
}

#[tokio::test]
async fn bad_input_is_an_openai_error_and_writes_nothing() {
    let upstream = Upstream::start().await;
    let app = spawn_with(config(&temp_db(), Some(&upstream.base_url)), upstream).await;
    let cases = [
        (
            json!({"model": "up", "messages": [{"content": "x"}]}),
            400,
            "messages[0].role",
        ),
        (json!({"model": "up", "messages": "hi"}), 400, "messages"),
        (
            json!({"model": "up", "messages": [{"role": "user", "content": [{"type": "text"}]}]}),
            400,
            "messages[0].content[0].text",
        ),
        (
            json!({"model": "up", "messages": [
                {"role": "user", "content": "hi"},
                {"role": "tool", "tool_call_id": "call_x", "content": "1"}]}),
            400,
            "messages[1].tool_call_id",
        ),
        (
            json!({"model": "agent:nobody", "messages": [{"role": "user", "content": "hi"}]}),
            404,
            "model",
        ),
        (
            json!({"model": "up", "thread_id": "conv_missing", "messages": [{"role": "user", "content": "hi"}]}),
            404,
            "thread_id",
        ),
    ];
    for (body, expected, param) in cases {
        let (status, v) = app.post("/v1/chat/completions", &body).await;
        let e = assert_error(status, &v, expected);
        assert_eq!(e["param"], param, "{v}");
    }
    let r = open_chat(
        &app,
        &json!({"model": "up", "messages": [{"role": "user", "content": "hi"}]}),
        &[("x-spool-dialect", "klingon")],
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(app.upstream.requests().is_empty(), "no run started");

    app.upstream.push(text_script(&["a"]));
    let (status, v) = app
        .post(
            "/v1/chat/completions",
            &json!({"model": "up", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let run = v["id"]
        .as_str()
        .unwrap()
        .trim_start_matches("chatcmpl-")
        .to_owned();
    for (query, last) in [
        ("?dialect=klingon", None),
        ("?after=x", None),
        ("", Some("-1")),
    ] {
        let mut r = app
            .http
            .get(app.url(&format!("/v1/runs/{run}/events{query}")));
        if let Some(last) = last {
            r = r.header("last-event-id", last);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap();
        assert_error(status, &v, 400);
    }
    let (status, _) = app.get("/v1/runs/resp_nope/events").await;
    assert_eq!(status, 404);
}

/// Adds `a` and `b`: a server-side tool.
struct Add;

#[async_trait::async_trait]
impl spool_core::tool::Tool for Add {
    fn definition(&self) -> spool_core::request::FunctionTool {
        spool_core::request::FunctionTool {
            name: "add".into(),
            description: None,
            parameters: Some(json!({"type": "object"})),
            strict: None,
        }
    }
    async fn call(&self, args: Value) -> Result<String, String> {
        Ok((args["a"].as_i64().unwrap_or(0) + args["b"].as_i64().unwrap_or(0)).to_string())
    }
}

async fn spawn_adder() -> TestApp {
    use spool_provider::openai_chat::{OpenAiChat, OpenAiChatConfig};
    let upstream = Upstream::start().await;
    let provider = OpenAiChat::new(OpenAiChatConfig {
        base_url: upstream.base_url.clone(),
        api_key: None,
        connect_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(5),
    })
    .unwrap();
    let agent = spool_provider::ModelAgent::new(std::sync::Arc::new(provider))
        .with_model("up-model")
        .with_tools(spool_core::tool::ToolSet::default().with(std::sync::Arc::new(Add)));
    let agents = spool_server::Agents::default().with("adder", std::sync::Arc::new(agent));
    crate::helpers::spawn_with_agents(config(&temp_db(), None), upstream, agents).await
}

fn add_then_answer(app: &TestApp) {
    app.upstream.push(Script::Stream(vec![
        tool_chunk(0, Some("call_a"), Some("add"), "{\"a\":1,\"b\":2}"),
        finish_chunk("tool_calls"),
        DONE,
    ]));
    app.upstream.push(text_script(&["It is 3."]));
}

#[tokio::test]
async fn server_side_tools_show_as_status_chunks_never_as_content() {
    let app = spawn_adder().await;
    add_then_answer(&app);
    let body = json!({"model": "adder", "stream": true,
        "messages": [{"role": "user", "content": "1+2?"}]});
    let (run, _, frames) = chat_stream(&app, &body, &[]).await;
    let statuses: Vec<Value> = frames
        .iter()
        .filter(|f| f.data.contains("\"role\":\"system\""))
        .map(|f| f.json())
        .collect();
    let names: Vec<&str> = statuses
        .iter()
        .map(|c| {
            c["choices"][0]["delta"]["metadata"]["status"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(
        names,
        [
            "starting_generation",
            "tool_call_detected",
            "tools_executed",
            "continuing_generation"
        ]
    );
    for c in &statuses {
        assert!(c["id"].as_str().unwrap().starts_with("status_"));
    }
    let tools = &statuses[1]["choices"][0]["delta"]["metadata"]["tools"];
    let call: Value = serde_json::from_str(tools[0].as_str().unwrap()).unwrap();
    assert_eq!(
        call,
        json!({"name": "add", "arguments": "{\"a\":1,\"b\":2}"})
    );
    assert_eq!(text_of(&frames), "It is 3.", "no call leaks into content");

    // The same run in the Orchestrate dialect: the call and its result.
    let (_, text) = events(&app, &run, "?dialect=wxo", None).await;
    let wxo: Vec<Value> = parse_sse(&text)
        .iter()
        .filter(|f| f.data != "[DONE]")
        .map(Frame::json)
        .collect();
    let steps: Vec<&Value> = wxo
        .iter()
        .filter(|v| v["object"] == "thread.run.step.delta")
        .map(|v| &v["choices"][0]["delta"]["step_details"])
        .collect();
    assert_eq!(steps[0]["type"], "tool_calls");
    assert_eq!(steps[0]["tool_calls"][0]["args"], json!({"a": 1, "b": 2}));
    assert_eq!(steps[1]["type"], "tool_response");
    assert_eq!(steps[1]["content"], "3");
    assert_eq!(steps[1]["tool_call_id"], steps[0]["tool_calls"][0]["id"]);

    // Status chunks off per request.
    add_then_answer(&app);
    let body = json!({"model": "adder", "stream": true, "stream_options": {"status_chunks": false},
        "messages": [{"role": "user", "content": "1+2?"}]});
    let (_, _, frames) = chat_stream(&app, &body, &[]).await;
    assert!(
        frames.iter().all(|f| !f.data.contains("\"system\"")),
        "{frames:?}"
    );
    assert_eq!(text_of(&frames), "It is 3.");
}

#[tokio::test]
async fn an_agent_chooses_the_wxo_dialect_and_plain_chunks_in_its_config() {
    let upstream = Upstream::start().await;
    let mut cfg = config(&temp_db(), Some(&upstream.base_url));
    let path = temp_db().with_file_name("spool.toml");
    std::fs::write(
        &path,
        r#"
[[agents]]
name = "orchestrated"
model = "up-model"
chat_dialect = "wxo"

[[agents]]
name = "bad"
model = "up-model"
chat_dialect = "klingon"
"#,
    )
    .unwrap();
    cfg.config = Some(path.clone());
    // A dialect spool does not speak is refused when the config is read.
    assert!(spool_server::App::build(&cfg).await.is_err());
    std::fs::write(
        &path,
        r#"
[[agents]]
name = "orchestrated"
model = "up-model"
chat_dialect = "wxo"
status_chunks = false
"#,
    )
    .unwrap();
    let app = spawn_with(cfg, upstream).await;
    app.upstream.push(text_script(&["Hi"]));
    let body = json!({"model": "agent:orchestrated", "stream": true,
        "messages": [{"role": "user", "content": "hi"}]});
    let (run, _, frames) = chat_stream(&app, &body, &[]).await;
    assert_eq!(frames[0].json()["object"], "thread.message.delta");
    // The header overrides the agent.
    app.upstream.push(text_script(&["Hi"]));
    let (_, _, frames) = chat_stream(&app, &body, &[("x-spool-dialect", "chat")]).await;
    assert_eq!(frames[0].json()["object"], "chat.completion.chunk");
    assert_eq!(text_of(&frames), "Hi");
    let (_, text) = events(&app, &run, "?dialect=chat", None).await;
    assert!(!text.contains("\"system\""));
}

#[tokio::test]
async fn a_chat_client_that_goes_away_cancels_its_run() {
    let app = spawn_app().await;
    app.upstream
        .push(slow_script(50, Duration::from_millis(50)));
    let r = open_chat(
        &app,
        &json!({"model": "up", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
        &[],
    )
    .await;
    let run = r.headers()["x-spool-run-id"].to_str().unwrap().to_owned();
    let mut reader = crate::helpers::SseReader::new(r);
    reader.next().await.unwrap();
    drop(reader);
    let (_, text) = events(&app, &run, "", None).await;
    let last = parse_sse(&text)
        .into_iter()
        .rev()
        .find(|f| f.event.is_some())
        .unwrap();
    assert_eq!(last.json()["response"]["status"], "cancelled");
}

#[tokio::test]
async fn an_unstored_chat_run_streams_without_a_thread() {
    let app = spawn_app().await;
    app.upstream.push(text_script(&["a", "b"]));
    let r = open_chat(
        &app,
        &json!({"model": "up", "stream": true, "store": false,
            "messages": [{"role": "user", "content": "hi"}]}),
        &[],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(!r.headers().contains_key("x-ibm-thread-id"));
    let frames = parse_sse(&read_to_end(r).await);
    assert_eq!(text_of(&frames), "ab");
    assert!(frames.iter().all(|f| !f.data.contains("thread_id")));
    let (status, v) = app
        .post(
            "/v1/chat/completions",
            &json!({"model": "up", "store": false, "thread_id": "t",
                "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(assert_error(status, &v, 400)["param"], "store");
}

/// An upstream's reasoning reaches a chat client as `reasoning_content`,
/// never as content: streamed as deltas, whole on the message otherwise.
#[tokio::test]
async fn reasoning_is_reasoning_content_never_content() {
    let app = spawn_app().await;
    let reasoning = |text: &str| {
        crate::upstream::Step::Chunk(
            json!({"id":"c","object":"chat.completion.chunk","created":0,"model":"m",
            "choices":[{"index":0,"delta":{"reasoning_content":text},"finish_reason":null}]}),
        )
    };
    let script = || {
        Script::Stream(vec![
            reasoning("Six sevens"),
            reasoning(" are 42."),
            crate::upstream::text_chunk("42"),
            finish_chunk("stop"),
            DONE,
        ])
    };
    app.upstream.push(script());
    let body = json!({"model": "up", "messages": [{"role": "user", "content": "6*7?"}],
        "stream": true});
    let (_, _, frames) = chat_stream(&app, &body, &[]).await;
    assert_eq!(text_of(&frames), "42");
    let thought: String = frames
        .iter()
        .filter(|f| f.data != "[DONE]")
        .filter_map(|f| {
            f.json()["choices"][0]["delta"]["reasoning_content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(thought, "Six sevens are 42.");

    app.upstream.push(script());
    let r = open_chat(
        &app,
        &json!({"model": "up", "messages": [{"role": "user", "content": "6*7?"}]}),
        &[],
    )
    .await;
    let v: Value = r.json().await.unwrap();
    let message = &v["choices"][0]["message"];
    assert_eq!(message["content"], "42");
    assert_eq!(message["reasoning_content"], "Six sevens are 42.");
}
