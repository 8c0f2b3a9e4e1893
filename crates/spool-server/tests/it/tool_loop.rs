//! The server-side tool loop: model call → tools → model call …, against the
//! scripted upstream, with tools hosted in Rust.

use crate::helpers::{TestApp, config, events_of, eventually, spawn_with_agents, temp_db};
use crate::upstream::{DONE, Script, Upstream, finish_chunk, text_script, tool_chunk};
use async_trait::async_trait;
use serde_json::{Value, json};
use spool_core::request::FunctionTool;
use spool_core::tool::{Tool, ToolSet};
use spool_provider::openai_chat::{OpenAiChat, OpenAiChatConfig};
use spool_provider::{LoopLimits, ModelAgent};
use spool_server::Agents;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

fn definition(name: &str) -> FunctionTool {
    FunctionTool {
        name: name.into(),
        description: Some(format!("the {name} tool")),
        parameters: Some(json!({"type": "object"})),
        strict: None,
    }
}

/// Adds `a` and `b`.
struct Add;

#[async_trait]
impl Tool for Add {
    fn definition(&self) -> FunctionTool {
        definition("add")
    }
    async fn call(&self, args: Value) -> Result<String, String> {
        let n = |k: &str| args[k].as_i64().ok_or(format!("'{k}' must be an integer"));
        Ok((n("a")? + n("b")?).to_string())
    }
}

/// Sleeps `ms`, counting how many run at once.
#[derive(Default)]
struct Sleep {
    running: AtomicUsize,
    most: AtomicUsize,
}

#[async_trait]
impl Tool for Sleep {
    fn definition(&self) -> FunctionTool {
        definition("sleep")
    }
    async fn call(&self, args: Value) -> Result<String, String> {
        /// Counts the call out when it ends, also when it is dropped.
        struct Running<'a>(&'a AtomicUsize);
        impl Drop for Running<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        let _running = Running(&self.running);
        self.most.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(args["ms"].as_u64().unwrap_or(0))).await;
        Ok("slept".into())
    }
}

/// Panics.
struct Buggy;

#[async_trait]
impl Tool for Buggy {
    fn definition(&self) -> FunctionTool {
        definition("buggy")
    }
    async fn call(&self, _: Value) -> Result<String, String> {
        panic!("tool bug")
    }
}

/// Always fails.
struct Broken;

#[async_trait]
impl Tool for Broken {
    fn definition(&self) -> FunctionTool {
        definition("broken")
    }
    async fn call(&self, _: Value) -> Result<String, String> {
        Err("the service is down".into())
    }
}

struct Loop {
    app: TestApp,
    sleep: Arc<Sleep>,
}

async fn spawn_loop(max_infer_iters: u32) -> Loop {
    let upstream = Upstream::start().await;
    let sleep = Arc::new(Sleep::default());
    let provider = OpenAiChat::new(OpenAiChatConfig {
        base_url: upstream.base_url.clone(),
        api_key: None,
        connect_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(5),
    })
    .unwrap();
    let tools = ToolSet::default()
        .with(Arc::new(Add))
        .with(sleep.clone())
        .with(Arc::new(Broken))
        .with(Arc::new(Buggy));
    let agent = ModelAgent::new(Arc::new(provider))
        .with_model("up-model")
        .with_tools(tools)
        .with_limits(LoopLimits {
            max_infer_iters,
            tool_timeout: Duration::from_millis(300),
            max_parallel_tools: 4,
        });
    let agents = Agents::default().with("tooler", Arc::new(agent));
    let app = spawn_with_agents(config(&temp_db(), None), upstream, agents).await;
    Loop { app, sleep }
}

fn calls(calls: &[(&str, &str, Value)]) -> Script {
    let mut steps: Vec<_> = calls
        .iter()
        .enumerate()
        .map(|(i, (id, name, args))| tool_chunk(i as u32, Some(id), Some(name), &args.to_string()))
        .collect();
    steps.extend([finish_chunk("tool_calls"), DONE]);
    Script::Stream(steps)
}

/// The server-side tool calls a run logged, in call order: each call's
/// item (`id`, the model's `call_id`, `name`) with its result (`success`,
/// `output` or `error`, `runtime_ms`).
fn executions(app: &TestApp, id: &str) -> Vec<Value> {
    let conn = rusqlite::Connection::open(&app.db_path).unwrap();
    let mut q = conn
        .prepare(
            "SELECT payload FROM events WHERE response_id = ? \
             AND type IN ('item.started', 'tool.finished') ORDER BY seq",
        )
        .unwrap();
    let mut calls = std::collections::BTreeMap::new();
    for payload in q.query_map([id], |r| r.get::<_, String>(0)).unwrap() {
        let event: Value = serde_json::from_str(&payload.unwrap()).unwrap();
        let index = event["output_index"].as_u64().unwrap();
        match event["type"].as_str().unwrap() {
            "item.started" if event["item"]["type"] == "tool_call" => {
                calls.insert(index, event["item"].clone());
            }
            "tool.finished" => {
                let call = calls.get_mut(&index).expect("a started call");
                for (k, v) in event["result"].as_object().unwrap() {
                    call[k] = v.clone();
                }
            }
            _ => {}
        }
    }
    calls.into_values().collect()
}

fn statuses(app: &TestApp, id: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open(&app.db_path).unwrap();
    let mut q = conn
        .prepare(
            "SELECT payload FROM events WHERE response_id = ? AND type = 'status' ORDER BY seq",
        )
        .unwrap();
    q.query_map([id], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|p| {
            serde_json::from_str::<Value>(&p.unwrap()).unwrap()["status"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

fn output_types(response: &Value) -> Vec<String> {
    response["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn three_tool_rounds_run_inside_the_server() {
    let Loop { app, .. } = spawn_loop(10).await;
    app.upstream
        .push(calls(&[("c1", "add", json!({"a": 1, "b": 2}))]));
    app.upstream
        .push(calls(&[("c2", "add", json!({"a": 3, "b": 4}))]));
    app.upstream
        .push(calls(&[("c3", "add", json!({"a": 10, "b": 20}))]));
    app.upstream.push(text_script(&["The answer is 30."]));
    let events = events_of(
        app.stream(&json!({"model": "tooler", "input": "add things", "stream": true}))
            .await,
    );
    let response = events.last().unwrap().json()["response"].clone();
    assert_eq!(response["status"], "completed", "{response}");
    // Server-side calls are mcp_call items (label "spool" for tools hosted
    // in Rust), never function_call items a client would try to run.
    assert_eq!(
        output_types(&response),
        ["mcp_call", "mcp_call", "mcp_call", "message"]
    );
    let third = &response["output"][2];
    assert_eq!(third["server_label"], "spool");
    assert_eq!(third["name"], "add");
    assert_eq!(third["arguments"], json!({"a": 10, "b": 20}).to_string());
    assert_eq!(third["output"], "30");
    assert_eq!(
        response["output"][3]["content"][0]["text"],
        "The answer is 30."
    );
    let types: Vec<_> = events.iter().map(|f| f.event.clone().unwrap()).collect();
    for t in [
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.in_progress",
        "response.mcp_call.completed",
    ] {
        assert_eq!(types.iter().filter(|x| *x == t).count(), 3, "{t}");
    }
    let requests = app.upstream.requests();
    assert_eq!(requests.len(), 4);
    assert_eq!(requests[0]["model"], "up-model");
    assert_eq!(requests[0]["tools"][0]["function"]["name"], "add");
    let last = requests[3]["messages"].as_array().unwrap();
    assert_eq!(
        last.last().unwrap(),
        &json!({"role": "tool", "tool_call_id": "c3", "content": "30"})
    );
    let id = response["id"].as_str().unwrap();
    let runs = executions(&app, id);
    assert_eq!(runs.len(), 3);
    assert!(
        runs.iter()
            .all(|r| r["success"] == true && r["runtime_ms"].is_u64())
    );
    assert_eq!(
        statuses(&app, id),
        [
            "starting_generation",
            "tool_call_detected",
            "tools_executed",
            "continuing_generation",
            "tool_call_detected",
            "tools_executed",
            "continuing_generation",
            "tool_call_detected",
            "tools_executed",
            "continuing_generation"
        ]
    );
    // Every new event type replays byte for byte.
    assert_eq!(events_of(app.replay(id, None).await), events);
}

#[tokio::test]
async fn parallel_calls_run_concurrently_and_are_recorded_in_order() {
    let Loop { app, sleep } = spawn_loop(10).await;
    app.upstream.push(calls(&[
        ("s1", "sleep", json!({"ms": 150})),
        ("s2", "sleep", json!({"ms": 151})),
        ("s3", "sleep", json!({"ms": 152})),
    ]));
    app.upstream.push(text_script(&["done"]));
    let (_, response) = app
        .post("/v1/responses", &json!({"model": "tooler", "input": "nap"}))
        .await;
    assert_eq!(response["status"], "completed");
    assert_eq!(
        sleep.most.load(Ordering::SeqCst),
        3,
        "the three calls overlapped"
    );
    let recorded: Vec<_> = executions(&app, response["id"].as_str().unwrap())
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    let items: Vec<_> = response["output"].as_array().unwrap()[..3]
        .iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap().to_owned(),
                i["arguments"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        recorded,
        items.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>()
    );
    let ms: Vec<_> = items.iter().map(|(_, a)| a.clone()).collect();
    assert_eq!(
        ms,
        [r#"{"ms":150}"#, r#"{"ms":151}"#, r#"{"ms":152}"#],
        "in call order"
    );
}

#[tokio::test]
async fn failing_and_hanging_tools_are_failed_results_and_the_loop_goes_on() {
    let Loop { app, .. } = spawn_loop(10).await;
    app.upstream.push(calls(&[
        ("b1", "broken", json!({})),
        ("h1", "sleep", json!({"ms": 10_000})),
        ("x1", "add", json!("not an object")),
        ("p1", "buggy", json!({})),
    ]));
    app.upstream.push(text_script(&["recovered"]));
    let (_, response) = app
        .post("/v1/responses", &json!({"model": "tooler", "input": "try"}))
        .await;
    assert_eq!(response["status"], "completed", "{response}");
    let runs = executions(&app, response["id"].as_str().unwrap());
    assert_eq!(runs.len(), 4);
    assert!(runs.iter().all(|r| r["success"] == false));
    assert_eq!(runs[3]["error"], "the tool panicked");
    assert_eq!(runs[0]["error"], "the service is down");
    assert!(
        runs[1]["error"]
            .as_str()
            .unwrap()
            .contains("did not finish within 300 ms")
    );
    assert!(
        runs[1]["runtime_ms"].as_u64().unwrap() < 2000,
        "cut off by the timeout"
    );
    let sent = &app.upstream.requests()[1]["messages"];
    let tool_messages: Vec<&Value> = sent
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .collect();
    assert_eq!(tool_messages[0]["content"], "Error: the service is down");
    assert_eq!(
        response["output"].as_array().unwrap().last().unwrap()["content"][0]["text"],
        "recovered"
    );
}

#[tokio::test]
async fn reaching_max_infer_iters_ends_incomplete() {
    let Loop { app, .. } = spawn_loop(10).await;
    for i in 0..3 {
        app.upstream
            .push(calls(&[(&format!("c{i}"), "add", json!({"a": i, "b": 1}))]));
    }
    let (_, response) = app
        .post(
            "/v1/responses",
            &json!({"model": "tooler", "input": "loop", "max_infer_iters": 2}),
        )
        .await;
    assert_eq!(response["status"], "incomplete", "{response}");
    assert_eq!(response["incomplete_details"]["reason"], "max_infer_iters");
    assert_eq!(app.upstream.requests().len(), 2);
    let id = response["id"].as_str().unwrap();
    assert_eq!(statuses(&app, id).last().unwrap(), "max_depth_reached");
    let (status, body) = app
        .post(
            "/v1/responses",
            &json!({"model": "tooler", "input": "x", "max_infer_iters": 0}),
        )
        .await;
    assert_eq!(
        crate::helpers::assert_error(status, &body, 400)["param"],
        "max_infer_iters"
    );
}

#[tokio::test]
async fn cancelling_during_a_tool_stops_the_run() {
    let upstream = Upstream::start().await;
    let provider = OpenAiChat::new(OpenAiChatConfig {
        base_url: upstream.base_url.clone(),
        api_key: None,
        connect_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(5),
    })
    .unwrap();
    let sleep = Arc::new(Sleep::default());
    let agent = ModelAgent::new(Arc::new(provider))
        .with_tools(ToolSet::default().with(sleep.clone()))
        .with_limits(LoopLimits {
            tool_timeout: Duration::from_secs(30),
            ..LoopLimits::default()
        });
    let app = spawn_with_agents(
        config(&temp_db(), None),
        upstream,
        Agents::default().with("sleeper", Arc::new(agent)),
    )
    .await;
    app.upstream
        .push(calls(&[("z1", "sleep", json!({"ms": 20_000}))]));
    let (_, started) = app
        .post(
            "/v1/responses",
            &json!({"model": "sleeper", "input": "x", "background": true}),
        )
        .await;
    let id = started["id"].as_str().unwrap();
    eventually("the tool is running", || async {
        sleep.running.load(Ordering::SeqCst) == 1
    })
    .await;
    let begin = std::time::Instant::now();
    let (status, cancelled) = app
        .post(&format!("/v1/responses/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(cancelled["status"], "cancelled");
    assert!(begin.elapsed() < Duration::from_secs(5));
    eventually("the tool was stopped", || async {
        sleep.running.load(Ordering::SeqCst) == 0
    })
    .await;
}

#[tokio::test]
async fn server_and_client_tools_mix_in_one_run() {
    let Loop { app, .. } = spawn_loop(10).await;
    app.upstream.push(calls(&[
        ("srv", "add", json!({"a": 2, "b": 2})),
        ("cli", "ask_user", json!({"question": "ok?"})),
    ]));
    app.upstream.push(text_script(&["all done"]));
    let client_tool = json!([{"type": "function", "name": "ask_user"}]);
    let (_, first) = app
        .post(
            "/v1/responses",
            &json!({"model": "tooler", "input": "go", "tools": client_tool}),
        )
        .await;
    assert_eq!(first["status"], "completed");
    assert_eq!(output_types(&first), ["function_call", "mcp_call"]);
    assert_eq!(first["output"][0]["call_id"], "cli");
    assert_eq!(first["output"][1]["output"], "4");
    let server_call_id = first["output"][1]["id"].as_str().unwrap().to_owned();
    // The model was offered both the caller's and the server's tools.
    let requests = app.upstream.requests();
    let offered: Vec<&str> = requests[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert!(offered.contains(&"ask_user") && offered.contains(&"add"));
    // The caller answers its own call and the run goes on.
    let (_, second) = app
        .post(
            "/v1/responses",
            &json!({"model": "tooler", "previous_response_id": first["id"], "tools": client_tool,
            "input": [{"type": "function_call_output", "call_id": "cli", "output": "yes"}]}),
        )
        .await;
    assert_eq!(second["status"], "completed");
    let sent = app.upstream.requests()[1]["messages"].clone();
    let tool_ids: Vec<&str> = sent
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["tool_call_id"].as_str().unwrap())
        .collect();
    // Both calls of the step sit in one assistant message; their results
    // follow it in call order.
    assert_eq!(tool_ids, ["cli", server_call_id.as_str()]);
    let with_calls: Vec<_> = sent
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m.get("tool_calls").is_some())
        .collect();
    assert_eq!(with_calls.len(), 1);
    assert_eq!(with_calls[0]["tool_calls"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_forced_tool_choice_holds_for_the_first_step_only() {
    let Loop { app, .. } = spawn_loop(10).await;
    app.upstream
        .push(calls(&[("c1", "add", json!({"a": 1, "b": 1}))]));
    app.upstream.push(text_script(&["two"]));
    let (_, response) = app
        .post(
            "/v1/responses",
            &json!({"model": "tooler", "input": "x", "tool_choice": "required",
            "tools": [{"type": "function", "name": "other"}]}),
        )
        .await;
    assert_eq!(response["status"], "completed", "{response}");
    let requests = app.upstream.requests();
    assert_eq!(requests[0]["tool_choice"], "required");
    assert_eq!(requests[1]["tool_choice"], "auto");
}

#[tokio::test]
async fn max_tool_calls_is_enforced_not_only_echoed() {
    let Loop { app, .. } = spawn_loop(10).await;
    // Three calls in the first answer: one may run; after it the model is
    // offered no server-side tools, so it answers.
    app.upstream.push(calls(&[
        ("a1", "add", json!({"a": 1, "b": 1})),
        ("a2", "add", json!({"a": 2, "b": 2})),
        ("a3", "add", json!({"a": 3, "b": 3})),
    ]));
    app.upstream.push(text_script(&["only one ran"]));
    let (_, response) = app
        .post(
            "/v1/responses",
            &json!({"model": "tooler", "input": "add", "max_tool_calls": 1}),
        )
        .await;
    assert_eq!(response["status"], "completed", "{response}");
    assert_eq!(response["max_tool_calls"], 1);
    let runs = executions(&app, response["id"].as_str().unwrap());
    let ran: Vec<bool> = runs.iter().map(|r| r["success"] == true).collect();
    assert_eq!(ran, [true, false, false]);
    assert!(
        runs[1]["error"]
            .as_str()
            .unwrap()
            .contains("max_tool_calls")
    );
    let second = &app.upstream.requests()[1];
    assert!(
        second
            .get("tools")
            .is_none_or(|t| t.as_array().is_none_or(Vec::is_empty)),
        "no server-side tools are offered once the budget is spent: {second}"
    );
    // Every call the model made is answered, so the history stays valid.
    let answered = second["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .count();
    assert_eq!(answered, 3);
}
