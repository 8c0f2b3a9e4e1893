//! previous_response_id chaining and the client function-tool round trip.

use crate::helpers::spawn_app;
use crate::upstream::{DONE, Script, finish_chunk, text_script, tool_chunk};
use serde_json::json;

#[tokio::test]
async fn a_function_call_round_trip_continues_from_the_previous_response() {
    let app = spawn_app().await;
    app.upstream.push(Script::Stream(vec![
        tool_chunk(
            0,
            Some("call_1"),
            Some("get_weather"),
            "{\"city\":\"Paris\"}",
        ),
        finish_chunk("tool_calls"),
        DONE,
    ]));
    app.upstream.push(text_script(&["It is sunny."]));
    let tools = json!([{"type": "function", "name": "get_weather"}]);
    let (_, first) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": "weather in Paris?", "tools": tools}),
        )
        .await;
    assert_eq!(first["status"], "completed");
    let call = &first["output"][0];
    assert_eq!(call["type"], "function_call");
    let (status, second) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "previous_response_id": first["id"], "tools": tools,
                    "input": [{"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}]}),
        )
        .await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["previous_response_id"], first["id"]);
    assert_eq!(second["output"][0]["content"][0]["text"], "It is sunny.");
    let sent = &app.upstream.requests()[1]["messages"];
    assert_eq!(
        sent,
        &json!([
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
        ])
    );
}

#[tokio::test]
async fn a_chain_of_three_turns_carries_all_history_but_not_old_instructions() {
    let app = spawn_app().await;
    let (_, r1) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": "one", "instructions": "old"}),
        )
        .await;
    let (_, r2) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": "two", "previous_response_id": r1["id"]}),
        )
        .await;
    let (_, r3) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": "three", "previous_response_id": r2["id"]}),
        )
        .await;
    assert_eq!(r3["status"], "completed");
    let sent = &app.upstream.requests()[2]["messages"];
    let roles_and_text: Vec<(String, String)> = sent
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap().into(),
                m["content"].as_str().unwrap().into(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("user", "one"),
        ("assistant", "Hello from upstream"),
        ("user", "two"),
        ("assistant", "Hello from upstream"),
        ("user", "three"),
    ]
    .iter()
    .map(|(a, b)| ((*a).into(), (*b).into()))
    .collect();
    assert_eq!(roles_and_text, expected);
}

#[tokio::test]
async fn an_unknown_previous_response_is_a_400_previous_response_not_found_and_writes_nothing() {
    let app = spawn_app().await;
    let (status, body) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": "x", "previous_response_id": "resp_nope"}),
        )
        .await;
    let e = crate::helpers::assert_error(status, &body, 400);
    assert_eq!(e["type"], "invalid_request_error");
    assert_eq!(e["code"], "previous_response_not_found");
    assert_eq!(e["param"], "previous_response_id");
    assert!(app.upstream.requests().is_empty());
}

#[tokio::test]
async fn a_tool_result_whose_call_was_never_made_is_a_400_and_nothing_runs() {
    let app = spawn_app().await;
    app.upstream.push(text_script(&["ok"]));
    let (_, first) = app
        .post("/v1/responses", &json!({"model": "up", "input": "hi"}))
        .await;
    assert_eq!(first["status"], "completed");
    let cases = [
        // Continuing a response that made no call.
        json!({"model": "up", "previous_response_id": first["id"],
               "input": [{"type": "function_call_output", "call_id": "call_missing", "output": "x"}]}),
        // A whole history whose result comes before its call.
        json!({"model": "up", "input": [
            {"type": "custom_tool_call_output", "call_id": "c1", "output": "done"},
            {"type": "custom_tool_call", "call_id": "c1", "name": "apply_patch", "input": "p"},
        ]}),
    ];
    for body in cases {
        let (status, answer) = app.post("/v1/responses", &body).await;
        let e = crate::helpers::assert_error(status, &answer, 400);
        assert_eq!(e["type"], "invalid_request_error", "{answer}");
        assert_eq!(e["param"], "input[0].call_id", "{answer}");
    }
    assert_eq!(app.upstream.requests().len(), 1, "no model call for either");
}

#[tokio::test]
async fn an_assistant_messages_phase_reads_back_in_the_input_items() {
    let app = spawn_app().await;
    app.upstream.push(text_script(&["4"]));
    let (status, r) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": [
                {"type": "message", "role": "assistant", "phase": "commentary",
                 "content": "I should answer with the saved number."},
                {"type": "message", "role": "assistant", "phase": "final_answer",
                 "content": "The number is four."},
                {"type": "message", "role": "user", "content": "Repeat only the number."},
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    // spool's own output carries no phase.
    assert!(r["output"][0].get("phase").is_none(), "{r}");
    let id = r["id"].as_str().unwrap();
    let (status, items) = app
        .get(&format!("/v1/responses/{id}/input_items?order=asc"))
        .await;
    assert_eq!(status, 200, "{items}");
    let phases: Vec<&serde_json::Value> = items["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["phase"])
        .collect();
    assert_eq!(
        phases,
        [
            &json!("commentary"),
            &json!("final_answer"),
            &serde_json::Value::Null
        ]
    );
}
