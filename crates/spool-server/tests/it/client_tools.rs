//! Every tool type a client sends is accepted: what Codex CLI sends on its
//! first turn (function, namespace, custom, local_shell and web_search
//! tools), calls of the caller's tools shown in their tools' forms, their
//! items continuing the conversation, and hosted tools served by the MCP
//! server the operator maps to them.

use crate::helpers::{config, events_of, spawn_app, spawn_with, temp_db};
use crate::upstream::{DONE, Script, Upstream, finish_chunk, text_script, tool_chunk};
use serde_json::{Value, json};

/// The tools Codex CLI offers, in kind if not in number.
fn codex_tools() -> Value {
    json!([
        {"type": "function", "name": "exec_command", "description": "run",
         "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}}},
        {"type": "namespace", "name": "multi_agent_v1", "description": "sub-agents",
         "tools": [{"type": "function", "name": "spawn_agent",
                    "parameters": {"type": "object", "properties": {"message": {"type": "string"}}}}]},
        {"type": "web_search", "external_web_access": false},
        {"type": "custom", "name": "apply_patch", "description": "patch files",
         "format": {"type": "grammar", "syntax": "lark", "definition": "start: \"*** Begin Patch\""}},
        {"type": "local_shell"}
    ])
}

/// An answer that calls the tools `calls` names, as (call id, function, arguments).
fn calls(calls: &[(&str, &str, &str)]) -> Script {
    let mut steps: Vec<_> = calls
        .iter()
        .enumerate()
        .map(|(i, (id, name, args))| tool_chunk(i as u32, Some(id), Some(name), args))
        .collect();
    steps.extend([finish_chunk("tool_calls"), DONE]);
    Script::Stream(steps)
}

fn offered_names(request: &Value) -> Vec<String> {
    request["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                .map(|t| {
                    t["function"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned()
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn codexs_first_turn_and_its_shell_call_continue_statelessly() {
    let app = spawn_app().await;
    app.upstream.push(calls(&[(
        "call_sh",
        "local_shell",
        r#"{"command":["ls","-a"]}"#,
    )]));
    let first = json!({
        "model": "up", "store": false, "stream": true,
        "include": ["reasoning.encrypted_content"], "reasoning": {"summary": "auto"},
        "prompt_cache_key": "session-1", "parallel_tool_calls": false,
        "input": [{"type": "message", "role": "user",
                   "content": [{"type": "input_text", "text": "list files"}]}],
        "tools": codex_tools(),
    });
    let frames = events_of(app.stream(&first).await);
    let done = frames
        .iter()
        .map(|f| f.json())
        .find(|e| e["type"] == "response.completed")
        .expect("the run completes");
    let response = &done["response"];
    assert_eq!(response["tools_not_offered"], json!(["web_search"]));
    assert_eq!(
        response["tools"].as_array().unwrap()[1..],
        codex_tools().as_array().unwrap()[1..],
        "the tools are echoed as sent"
    );
    let shell = &response["output"][0];
    assert_eq!(shell["type"], "local_shell_call", "{response}");
    assert_eq!(shell["call_id"], "call_sh");
    assert_eq!(
        shell["action"],
        json!({"type": "exec", "command": ["ls", "-a"]})
    );
    let sent = &app.upstream.requests()[0];
    assert_eq!(
        offered_names(sent),
        [
            "exec_command",
            "multi_agent_v1__spawn_agent",
            "apply_patch",
            "local_shell"
        ]
    );
    assert_eq!(
        sent["tools"][2]["function"]["parameters"]["required"],
        json!(["input"])
    );

    // The next turn sends the whole history back, as Codex does.
    app.upstream.push(text_script(&["a.txt b.txt"]));
    let mut second = first.clone();
    second["input"] = json!([
        first["input"][0],
        {"type": "reasoning", "summary": [], "encrypted_content": "gAAAA-opaque"},
        {"type": "web_search_call", "status": "completed",
         "action": {"type": "search", "query": "ls"}},
        shell,
        {"type": "function_call_output", "call_id": "call_sh", "output": "a.txt b.txt"}
    ]);
    let frames = events_of(app.stream(&second).await);
    let last = frames.iter().rev().find_map(|f| {
        let e = f.json();
        (e["type"] == "response.completed").then_some(e)
    });
    let last = last.expect("the second turn completes");
    assert_eq!(
        last["response"]["output"][0]["content"][0]["text"],
        "a.txt b.txt"
    );
    let messages = app.upstream.requests()[1]["messages"].clone();
    assert_eq!(
        messages.as_array().unwrap()[..],
        json!([
            {"role": "user", "content": "list files"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_sh", "type": "function",
                 "function": {"name": "local_shell", "arguments": "{\"command\":[\"ls\",\"-a\"]}"}}]},
            {"role": "tool", "tool_call_id": "call_sh", "content": "a.txt b.txt"}
        ])
        .as_array()
        .unwrap()[..]
    );
}

#[tokio::test]
async fn namespaced_and_custom_calls_come_back_in_their_forms_and_continue() {
    let app = spawn_app().await;
    app.upstream.push(calls(&[
        (
            "call_ns",
            "multi_agent_v1__spawn_agent",
            r#"{"message":"help"}"#,
        ),
        ("call_cu", "apply_patch", r#"{"input":"*** Begin Patch"}"#),
    ]));
    let (status, r) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": "patch it", "tools": codex_tools()}),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    let output = &r["output"];
    assert_eq!(output[0]["type"], "function_call", "{r}");
    assert_eq!(output[0]["name"], "spawn_agent");
    assert_eq!(output[0]["namespace"], "multi_agent_v1");
    assert_eq!(output[0]["arguments"], r#"{"message":"help"}"#);
    assert_eq!(output[1]["type"], "custom_tool_call");
    assert_eq!(output[1]["name"], "apply_patch");
    assert_eq!(output[1]["input"], "*** Begin Patch");
    assert_eq!(output[1]["call_id"], "call_cu");
    assert!(output[1].get("namespace").is_none(), "{r}");
    // The stored response reads back the same.
    let id = r["id"].as_str().unwrap();
    let (_, stored) = app.get(&format!("/v1/responses/{id}")).await;
    assert_eq!(stored["output"], *output);

    app.upstream.push(text_script(&["patched"]));
    let (status, next) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "previous_response_id": id, "tools": codex_tools(),
            "input": [
                {"type": "function_call_output", "call_id": "call_ns", "output": "spawned"},
                {"type": "custom_tool_call_output", "call_id": "call_cu", "output": "ok"},
                {"type": "message", "id": "msg_note", "role": "user", "content": "again"},
                {"type": "item_reference", "id": "msg_note"}
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{next}");
    assert_eq!(next["output"][0]["content"][0]["text"], "patched");
    let messages = &app.upstream.requests()[1]["messages"];
    let calls = &messages[1]["tool_calls"];
    assert_eq!(
        calls[0]["function"],
        json!({"name": "multi_agent_v1__spawn_agent", "arguments": "{\"message\":\"help\"}"})
    );
    assert_eq!(
        calls[1]["function"],
        json!({"name": "apply_patch", "arguments": "{\"input\":\"*** Begin Patch\"}"})
    );
    assert_eq!(
        messages[2],
        json!({"role": "tool", "tool_call_id": "call_ns", "content": "spawned"})
    );
    assert_eq!(
        messages[3],
        json!({"role": "tool", "tool_call_id": "call_cu", "content": "ok"})
    );
    // The reference stands for the message it names.
    assert_eq!(messages[4], json!({"role": "user", "content": "again"}));
    assert_eq!(messages[5], messages[4]);

    // A reference to nothing in the conversation is refused, naming it.
    let (status, e) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "previous_response_id": id,
                    "input": [{"type": "item_reference", "id": "msg_nowhere"}]}),
        )
        .await;
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["error"]["param"], "input[0].id");
    assert_eq!(app.upstream.requests().len(), 2, "no model call");
}

#[tokio::test]
async fn a_hosted_tool_mapped_in_the_config_is_served_by_its_mcp_server() {
    // A port nothing listens on: the server's listing fails at once, which
    // the response records under the operator's label.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let dir = temp_db();
    let file = dir.with_file_name("spool.toml");
    std::fs::write(
        &file,
        format!(
            "[mcp.hosted_tools.web_search]\ntype = \"mcp\"\nserver_label = \"search\"\n\
             server_url = \"http://127.0.0.1:{port}/mcp\"\nrequire_approval = \"never\"\n"
        ),
    )
    .unwrap();
    let upstream = Upstream::start().await;
    upstream.push(text_script(&["no search today"]));
    let mut cfg = config(&dir, Some(&upstream.base_url));
    cfg.config = Some(file);
    let app = spawn_with(cfg, upstream).await;
    let (status, r) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": "search", "tools": [
                {"type": "web_search"}, {"type": "file_search", "vector_store_ids": ["vs_1"]}]}),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["tools_not_offered"], json!(["file_search"]));
    assert_eq!(r["output"][0]["type"], "mcp_list_tools", "{r}");
    assert_eq!(r["output"][0]["server_label"], "search");
    assert_eq!(r["tools"][0], json!({"type": "web_search"}));
}

#[tokio::test]
async fn a_config_mapping_an_unknown_hosted_tool_is_refused_at_start() {
    let dir = temp_db();
    let file = dir.with_file_name("spool.toml");
    std::fs::write(
        &file,
        "[mcp.hosted_tools.teleport]\ntype = \"mcp\"\nserver_label = \"t\"\n\
         server_url = \"http://127.0.0.1:1/mcp\"\n",
    )
    .unwrap();
    let mut cfg = config(&dir, None);
    cfg.config = Some(file);
    let error = spool_server::app::App::build_with_agents(&cfg, Default::default())
        .await
        .err()
        .expect("the config is refused");
    assert!(error.to_string().contains("teleport"), "{error}");
}
