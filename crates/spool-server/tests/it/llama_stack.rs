//! The llama-stack Agents API over HTTP: a turn streams seed 004's frames
//! (data only, no `[DONE]`), replays byte for byte through the runs route
//! and resumes from `Last-Event-ID`; a turn waiting for a client tool
//! resumes as the same turn, under `/v1` and `/v1alpha`; an upstream
//! failure is one error frame; deletes cascade; bad input is refused with
//! nothing written.

use crate::helpers::{TestApp, assert_error, config, read_to_end, spawn_app, spawn_with, temp_db};
use crate::upstream::{
    DONE, FLAGGED_WORD, Script, Upstream, finish_chunk, text_script, tool_chunk, usage_chunk,
};
use serde_json::{Value, json};

/// A model answer calling `name` with `args` as call `call_id`.
fn tool_call_script(call_id: &'static str, name: &'static str, args: &'static str) -> Script {
    Script::Stream(vec![
        tool_chunk(0, Some(call_id), Some(name), ""),
        tool_chunk(0, None, None, args),
        finish_chunk("tool_calls"),
        usage_chunk(10, 5),
        DONE,
    ])
}

async fn new_agent(app: &TestApp, prefix: &str, config: Value) -> String {
    let (status, body) = app
        .post(
            &format!("{prefix}/agents"),
            &json!({"agent_config": config}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["agent_id"].as_str().unwrap().to_owned()
}

async fn new_session(app: &TestApp, prefix: &str, agent: &str) -> String {
    let (status, body) = app
        .post(
            &format!("{prefix}/agents/{agent}/session"),
            &json!({"session_name": "s"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["session_id"].as_str().unwrap().to_owned()
}

/// POSTs `body` to `path` and reads the whole SSE answer.
async fn stream(app: &TestApp, path: &str, body: &Value) -> String {
    stream_of_run(app, path, body).await.1
}

/// POSTs `body` to `path`: the run it started (`x-spool-run-id`) and the
/// whole SSE answer.
async fn stream_of_run(app: &TestApp, path: &str, body: &Value) -> (String, String) {
    let r = app
        .http
        .post(app.url(path))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let run = r.headers()["x-spool-run-id"].to_str().unwrap().to_owned();
    (run, read_to_end(r).await)
}

/// The payloads (or error objects) of a llama-stack stream, checking that
/// every frame is an `id:` line and a `data:` line, nothing else.
fn payloads(text: &str) -> Vec<Value> {
    text.split("\n\n")
        .filter(|block| !block.is_empty())
        .map(|block| {
            let lines: Vec<&str> = block.lines().collect();
            assert_eq!(lines.len(), 2, "a frame is id and data only: {block}");
            assert!(lines[0].starts_with("id: "), "{block}");
            let data = lines[1].strip_prefix("data: ").expect("a data line");
            assert_ne!(data, "[DONE]", "llama-stack streams have no [DONE]");
            let value: Value = serde_json::from_str(data).unwrap();
            if value.get("error").is_some() {
                value
            } else {
                value["event"]["payload"].clone()
            }
        })
        .collect()
}

fn kinds(payloads: &[Value]) -> Vec<&str> {
    payloads
        .iter()
        .map(|p| p["event_type"].as_str().unwrap_or("error"))
        .collect()
}

async fn run_events(app: &TestApp, run: &str, last_event_id: Option<&str>) -> String {
    let mut request = app
        .http
        .get(app.url(&format!("/v1/runs/{run}/events?dialect=llama_stack")));
    if let Some(last) = last_event_id {
        request = request.header("last-event-id", last);
    }
    let r = request.send().await.unwrap();
    assert_eq!(r.status(), 200);
    read_to_end(r).await
}

#[tokio::test]
async fn a_turn_streams_seed_004_frames_and_replays_them_exactly() {
    let app = spawn_app().await;
    let agent = new_agent(&app, "/v1", json!({"model": "m", "instructions": "hi"})).await;
    let session = new_session(&app, "/v1", &agent).await;
    app.upstream.push(text_script(&["Hello", " there"]));
    let live = stream(
        &app,
        &format!("/v1/agents/{agent}/session/{session}/turn"),
        &json!({"messages": [{"role": "user", "content": "hi"}], "stream": true}),
    )
    .await;
    let p = payloads(&live);
    assert_eq!(
        kinds(&p),
        [
            "turn_start",
            "step_start",
            "step_progress",
            "step_progress",
            "step_complete",
            "turn_complete"
        ]
    );
    assert_eq!(p[2]["delta"], json!({"type": "text", "text": "Hello"}));
    let turn = &p[5]["turn"];
    assert_eq!(turn["output_message"]["content"], "Hello there");
    assert_eq!(turn["session_id"], session.as_str());
    assert_eq!(
        turn["input_messages"],
        json!([{"role": "user", "content": "hi"}])
    );

    let turn_id = turn["turn_id"].as_str().unwrap();
    assert_eq!(run_events(&app, turn_id, None).await, live);
    let after_two = run_events(&app, turn_id, Some("2")).await;
    assert!(after_two.starts_with("id: 3\n"), "{after_two}");
    assert!(live.ends_with(&after_two));
}

#[tokio::test]
async fn a_client_tool_pauses_the_turn_and_a_resume_continues_it() {
    let app = spawn_app().await;
    let prefix = "/v1alpha";
    let agent = new_agent(
        &app,
        prefix,
        json!({"model": "m", "instructions": "weather",
               "client_tools": [{"name": "get_weather", "input_schema": {"type": "object",
                   "properties": {"city": {"type": "string"}}}}]}),
    )
    .await;
    let session = new_session(&app, prefix, &agent).await;
    let base = format!("{prefix}/agents/{agent}/session/{session}");
    app.upstream.push(tool_call_script(
        "call_1",
        "get_weather",
        r#"{"city":"Paris"}"#,
    ));
    let paused = payloads(
        &stream(
            &app,
            &format!("{base}/turn"),
            &json!({"messages": [{"role": "user", "content": "Weather?"}], "stream": true}),
        )
        .await,
    );
    let waiting = paused.last().unwrap();
    assert_eq!(waiting["event_type"], "turn_awaiting_input");
    assert_eq!(
        waiting["turn"]["output_message"]["stop_reason"],
        "end_of_message"
    );
    let call = &waiting["turn"]["output_message"]["tool_calls"][0];
    assert_eq!(call["arguments"], json!({"city": "Paris"}));
    let turn_id = waiting["turn"]["turn_id"].as_str().unwrap().to_owned();
    let statuses: Vec<&str> = paused
        .iter()
        .filter(|p| p["delta"]["type"] == "tool_call")
        .map(|p| p["delta"]["parse_status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["started", "in_progress", "succeeded"]);

    app.upstream.push(text_script(&["Sunny."]));
    let resume_path = format!("{base}/turn/{turn_id}/resume");
    let (resume_run, live) = stream_of_run(
        &app,
        &resume_path,
        &json!({"tool_responses": [{"call_id": "call_1", "tool_name": "get_weather",
                                    "content": "sunny"}], "stream": true}),
    )
    .await;
    let resumed = payloads(&live);
    assert_eq!(resumed[0]["event_type"], "step_complete");
    assert_eq!(resumed[0]["step_type"], "tool_execution");
    assert_eq!(
        resumed[0]["step_details"]["tool_responses"][0]["content"],
        "sunny"
    );
    let done = resumed.last().unwrap();
    assert_eq!(done["event_type"], "turn_complete");
    assert_eq!(done["turn"]["turn_id"], turn_id.as_str());
    let steps: Vec<&str> = done["turn"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step_type"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["inference", "tool_execution", "inference"]);

    // The resuming run replays through the runs route as it streamed live:
    // the route folds the turn's earlier run first. A session is a
    // conversation: the threads route lists the same two runs.
    assert_ne!(resume_run, turn_id);
    assert_eq!(run_events(&app, &resume_run, None).await, live);
    let (_, runs) = app.get(&format!("/v1/threads/{session}/turns")).await;
    assert_eq!(runs["data"][1]["id"], resume_run.as_str());
    let (_, session_body) = app.get(&base).await;
    assert_eq!(session_body["turns"].as_array().unwrap().len(), 1);
    let step_id = done["turn"]["steps"][2]["step_id"].as_str().unwrap();
    let (status, step) = app
        .get(&format!("{base}/turn/{turn_id}/step/{step_id}"))
        .await;
    assert_eq!(status, 200, "{step}");
    assert_eq!(step["step"]["model_response"]["content"], "Sunny.");
}

#[tokio::test]
async fn an_upstream_failure_is_one_error_frame() {
    let app = spawn_app().await;
    let agent = new_agent(&app, "/v1", json!({"model": "m", "instructions": "hi"})).await;
    let session = new_session(&app, "/v1", &agent).await;
    app.upstream
        .push(Script::Error(400, "the upstream refused"));
    let p = payloads(
        &stream(
            &app,
            &format!("/v1/agents/{agent}/session/{session}/turn"),
            &json!({"messages": [{"role": "user", "content": "hi"}], "stream": true}),
        )
        .await,
    );
    let last = p.last().unwrap();
    assert!(last["error"]["message"].as_str().is_some(), "{last}");
    assert_eq!(kinds(&p).iter().filter(|k| **k == "error").count(), 1);
    // A failed turn is not one of the session's turns.
    let (_, body) = app
        .get(&format!("/v1/agents/{agent}/session/{session}"))
        .await;
    assert_eq!(body["turns"], json!([]));
}

#[tokio::test]
async fn deleting_an_agent_deletes_its_sessions_and_turns() {
    let app = spawn_app().await;
    let agent = new_agent(&app, "/v1", json!({"model": "m", "instructions": "hi"})).await;
    let session = new_session(&app, "/v1", &agent).await;
    app.upstream.push(text_script(&["ok"]));
    let (status, turn) = app
        .post(
            &format!("/v1/agents/{agent}/session/{session}/turn"),
            &json!({"messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(status, 200, "{turn}");
    let turn_id = turn["turn_id"].as_str().unwrap();
    assert_eq!(app.get(&format!("/v1/responses/{turn_id}")).await.0, 200);
    assert_eq!(app.delete(&format!("/v1/agents/{agent}")).await.0, 200);
    assert_eq!(app.get(&format!("/v1/responses/{turn_id}")).await.0, 404);
    assert_eq!(
        app.get(&format!("/v1/conversations/{session}")).await.0,
        404
    );
    let (status, body) = app.get(&format!("/v1/agents/{agent}")).await;
    assert_error(status, &body, 404);
}

#[tokio::test]
async fn bad_input_is_refused_and_nothing_is_written() {
    let app = spawn_app().await;
    for config in [
        json!({"model": "m"}),
        json!({"model": "", "instructions": "x"}),
        json!({"model": "m", "instructions": "x", "toolgroups": ["builtin::rag"]}),
        json!({"model": "m", "instructions": "x", "sampling_params": {"strategy": {"type": "top_k", "top_k": 2}}}),
        json!({"model": "m", "instructions": "x", "client_tools": [{"description": "no name"}]}),
    ] {
        let (status, body) = app
            .post("/v1/agents", &json!({"agent_config": config}))
            .await;
        assert_error(status, &body, 400);
    }
    let (_, listed) = app.get("/v1/agents").await;
    assert_eq!(listed, json!({"data": [], "has_more": false}));

    let agent = new_agent(
        &app,
        "/v1",
        json!({"model": "m", "instructions": "x",
        "client_tools": [{"name": "f"}]}),
    )
    .await;
    let session = new_session(&app, "/v1", &agent).await;
    let base = format!("/v1/agents/{agent}/session/{session}");
    for path in [
        "/v1/agents/agent_nope".to_owned(),
        format!("/v1/agents/{agent}/session/conv_nope"),
        format!("{base}/turn/resp_nope"),
        format!("{base}/turn/not-an-id"),
    ] {
        let (status, body) = app.get(&path).await;
        assert_error(status, &body, 404);
    }
    let (status, body) = app
        .post(
            &format!("/v1/agents/agent_nope/session/{session}/turn"),
            &json!({"messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_error(status, &body, 404);
    let (status, body) = app
        .post(
            &format!("{base}/turn"),
            &json!({"messages": [{"role": "system", "content": "x"}]}),
        )
        .await;
    assert_error(status, &body, 400);

    // A turn that waits for `f`; a resume naming another call is refused
    // and leaves it waiting.
    app.upstream.push(tool_call_script("call_f", "f", "{}"));
    let (status, waiting) = app
        .post(
            &format!("{base}/turn"),
            &json!({"messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(status, 200, "{waiting}");
    let turn_id = waiting["turn_id"].as_str().unwrap();
    let step_id = waiting["steps"][0]["step_id"].as_str().unwrap();
    let (status, body) = app
        .get(&format!("{base}/turn/{turn_id}/step/step_nope"))
        .await;
    assert_error(status, &body, 404);
    assert_eq!(
        app.get(&format!("{base}/turn/{turn_id}/step/{step_id}"))
            .await
            .0,
        200
    );
    let resume = format!("{base}/turn/{turn_id}/resume");
    let (status, body) = app
        .post(
            &resume,
            &json!({"tool_responses": [{"call_id": "call_x", "tool_name": "f", "content": "r"}]}),
        )
        .await;
    let error = assert_error(status, &body, 400);
    assert_eq!(error["param"], "tool_responses[0].call_id");
    // A new turn that leaves the call open is refused too.
    let (status, body) = app
        .post(
            &format!("{base}/turn"),
            &json!({"messages": [{"role": "user", "content": "next"}]}),
        )
        .await;
    let error = assert_error(status, &body, 400);
    assert_eq!(error["code"], "turn_awaiting_input");
    let requests = app.upstream.requests().len();
    app.upstream.push(text_script(&["done"]));
    let (status, turn) = app
        .post(
            &resume,
            &json!({"tool_responses": [{"call_id": "call_f", "tool_name": "f", "content": "r"}]}),
        )
        .await;
    assert_eq!(status, 200, "{turn}");
    assert_eq!(app.upstream.requests().len(), requests + 1);
    // Now it does not wait: resuming it again is refused.
    let (status, body) = app
        .post(
            &resume,
            &json!({"tool_responses": [{"call_id": "call_f", "tool_name": "f", "content": "r"}]}),
        )
        .await;
    assert_error(status, &body, 400);
}

#[tokio::test]
async fn a_new_turn_may_answer_the_waiting_calls_in_its_messages() {
    let app = spawn_app().await;
    let agent = new_agent(
        &app,
        "/v1",
        json!({"model": "m", "instructions": "x", "client_tools": [{"name": "f"}]}),
    )
    .await;
    let session = new_session(&app, "/v1", &agent).await;
    let base = format!("/v1/agents/{agent}/session/{session}");
    app.upstream.push(tool_call_script("call_f", "f", "{}"));
    let (_, waiting) = app
        .post(
            &format!("{base}/turn"),
            &json!({"messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(waiting["output_message"]["stop_reason"], "end_of_message");
    app.upstream.push(text_script(&["answered"]));
    let (status, turn) = app
        .post(
            &format!("{base}/turn"),
            &json!({"messages": [{"role": "tool", "call_id": "call_f", "content": "r"}]}),
        )
        .await;
    assert_eq!(status, 200, "{turn}");
    assert_eq!(turn["output_message"]["content"], "answered");
    assert_eq!(
        turn["input_messages"],
        json!([{"role": "tool", "call_id": "call_f", "content": "r"}])
    );
    let (_, session_body) = app.get(&base).await;
    assert_eq!(session_body["turns"].as_array().unwrap().len(), 2);
}

/// spool with a config file defining the shield `safety` (the scripted
/// upstream's moderation model flags [`FLAGGED_WORD`]).
async fn spawn_with_shield() -> TestApp {
    let upstream = Upstream::start().await;
    let db = temp_db();
    let file = db.with_file_name("spool.toml");
    std::fs::write(
        &file,
        "[[shields]]\nid = \"safety\"\nmoderation_model = \"text-moderation\"\n",
    )
    .unwrap();
    let mut cfg = config(&db, Some(&upstream.base_url));
    cfg.config = Some(file);
    spawn_with(cfg, upstream).await
}

fn step_types(turn: &Value) -> Vec<&str> {
    turn["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step_type"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_violating_input_ends_the_turn_with_the_shields_message() {
    let app = spawn_with_shield().await;
    let (_, shields) = app.get("/v1/shields").await;
    assert_eq!(shields["data"][0]["identifier"], "safety");
    let (status, body) = app
        .post(
            "/v1/agents",
            &json!({"agent_config": {"model": "m", "instructions": "x", "input_shields": ["nope"]}}),
        )
        .await;
    let error = assert_error(status, &body, 400);
    assert!(
        error["message"].as_str().unwrap().contains("safety"),
        "{error}"
    );
    let agent = new_agent(
        &app,
        "/v1",
        json!({"model": "m", "instructions": "x", "input_shields": ["safety"]}),
    )
    .await;
    let session = new_session(&app, "/v1", &agent).await;
    let p = payloads(
        &stream(
            &app,
            &format!("/v1/agents/{agent}/session/{session}/turn"),
            &json!({"messages": [{"role": "user", "content": format!("say {FLAGGED_WORD}")}],
                    "stream": true}),
        )
        .await,
    );
    assert_eq!(
        kinds(&p),
        ["turn_start", "step_start", "step_complete", "turn_complete"]
    );
    assert_eq!(p[1]["step_type"], "shield_call");
    assert_eq!(p[1]["metadata"], json!({"touchpoint": "user-input"}));
    let violation = &p[2]["step_details"]["violation"];
    assert_eq!(violation["violation_level"], "error");
    assert_eq!(violation["metadata"]["violation_type"], "violence");
    let turn = &p[3]["turn"];
    assert_eq!(turn["output_message"]["content"], violation["user_message"]);
    assert_eq!(turn["output_message"]["stop_reason"], "end_of_turn");
    assert_eq!(step_types(turn), ["shield_call"]);
    assert!(
        app.upstream.requests().is_empty(),
        "the model is not called"
    );

    // Input that passes goes on to the model.
    app.upstream.push(text_script(&["fine"]));
    let (status, turn) = app
        .post(
            &format!("/v1/agents/{agent}/session/{session}/turn"),
            &json!({"messages": [{"role": "user", "content": "hello"}]}),
        )
        .await;
    assert_eq!(status, 200, "{turn}");
    assert_eq!(step_types(&turn), ["shield_call", "inference"]);
    assert_eq!(turn["steps"][0]["violation"], Value::Null);
    assert_eq!(turn["output_message"]["content"], "fine");
}

#[tokio::test]
async fn a_violating_answer_ends_the_turn_with_the_shields_message() {
    let app = spawn_with_shield().await;
    let agent = new_agent(
        &app,
        "/v1",
        json!({"model": "m", "instructions": "x", "output_shields": ["safety"]}),
    )
    .await;
    let session = new_session(&app, "/v1", &agent).await;
    app.upstream.push(text_script(&["this is ", FLAGGED_WORD]));
    let p = payloads(
        &stream(
            &app,
            &format!("/v1/agents/{agent}/session/{session}/turn"),
            &json!({"messages": [{"role": "user", "content": "hi"}], "stream": true}),
        )
        .await,
    );
    let shield = p
        .iter()
        .find(|f| f["event_type"] == "step_start" && f["step_type"] == "shield_call")
        .unwrap();
    assert_eq!(shield["metadata"], json!({"touchpoint": "agent-output"}));
    let done = p.last().unwrap();
    assert_eq!(done["event_type"], "turn_complete");
    let turn = &done["turn"];
    assert_eq!(step_types(turn), ["inference", "shield_call"]);
    assert_eq!(
        turn["output_message"]["content"],
        turn["steps"][1]["violation"]["user_message"]
    );
    assert_eq!(
        app.upstream.moderations()[0]["input"],
        format!("this is {FLAGGED_WORD}")
    );
}
