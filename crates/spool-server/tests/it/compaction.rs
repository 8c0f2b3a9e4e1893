//! `POST /v1/responses/compact`: a summary made by the model, sealed by
//! spool; the compaction item continues a later request with the summary;
//! altered items and missing models are refused.

use crate::helpers::{assert_error, spawn_app};
use crate::upstream::text_script;
use serde_json::{Value, json};

fn compaction_item(compacted: &Value) -> Value {
    compacted["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "compaction")
        .cloned()
        .expect("a compaction item")
}

#[tokio::test]
async fn a_compacted_chain_continues_with_the_models_summary() {
    let app = spawn_app().await;
    app.upstream.push(text_script(&["Nice to meet you, Ann."]));
    let (status, first) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": "My name is Ann and I like tea."}),
        )
        .await;
    assert_eq!(status, 200, "{first}");
    app.upstream
        .push(text_script(&["Ann introduced herself; she likes tea."]));
    let (status, compacted) = app
        .post(
            "/v1/responses/compact",
            &json!({"model": "up", "previous_response_id": first["id"],
                    "instructions": "be kind", "input": "Remember that."}),
        )
        .await;
    assert_eq!(status, 200, "{compacted}");
    assert_eq!(compacted["object"], "response.compaction");
    assert!(compacted["id"].as_str().unwrap().starts_with("resp_"));
    assert!(compacted["created_at"].is_i64());
    // The summary came from one model call over the whole conversation.
    let asked = &app.upstream.requests()[1]["messages"];
    let asked_text = asked.to_string();
    assert!(asked_text.contains("I like tea") && asked_text.contains("Nice to meet you"));
    assert!(asked_text.contains("be kind"), "{asked}");
    // The user's messages are kept; the rest is the sealed summary.
    let output = compacted["output"].as_array().unwrap();
    assert_eq!(output.len(), 3, "{compacted}");
    assert_eq!(output[0]["role"], "user");
    assert_eq!(output[1]["role"], "user");
    let item = compaction_item(&compacted);
    assert!(item["id"].as_str().unwrap().starts_with("cmp_"));
    let sealed = item["encrypted_content"].as_str().unwrap();
    assert!(!sealed.contains("tea"), "the summary is sealed");

    // A later request carrying the compacted history: the model sees the summary.
    app.upstream.push(text_script(&["You like tea."]));
    let mut input = output.clone();
    input.push(json!({"role": "user", "content": "What do I like?"}));
    let (status, next) = app
        .post("/v1/responses", &json!({"model": "up", "input": input}))
        .await;
    assert_eq!(status, 200, "{next}");
    let messages = &app.upstream.requests()[2]["messages"];
    let summary = messages
        .as_array()
        .unwrap()
        .iter()
        .find(|m| {
            m["content"]
                .as_str()
                .is_some_and(|c| c.contains("she likes tea"))
        })
        .expect("the summary reaches the model");
    assert_eq!(summary["role"], "user");
    // Stored as the client sent it: sealed.
    let id = next["id"].as_str().unwrap();
    let (_, items) = app
        .get(&format!("/v1/responses/{id}/input_items?order=asc"))
        .await;
    let stored = items["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "compaction")
        .cloned()
        .expect("stored");
    assert_eq!(stored["encrypted_content"], sealed);
    assert!(stored.get("summary").is_none());
}

#[tokio::test]
async fn an_altered_compaction_item_and_a_missing_model_are_refused() {
    let app = spawn_app().await;
    app.upstream.push(text_script(&["summary"]));
    let (status, compacted) = app
        .post(
            "/v1/responses/compact",
            &json!({"model": "up", "input": "hello"}),
        )
        .await;
    assert_eq!(status, 200, "{compacted}");
    let mut item = compaction_item(&compacted);
    let sealed = item["encrypted_content"].as_str().unwrap().to_owned();
    let mut altered = sealed.into_bytes();
    let last = altered.len() - 3;
    altered[last] = if altered[last] == b'x' { b'y' } else { b'x' };
    item["encrypted_content"] = json!(String::from_utf8(altered).unwrap());
    let (status, e) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": [item, {"role": "user", "content": "go on"}]}),
        )
        .await;
    let error = assert_error(status, &e, 400);
    assert_eq!(error["param"], "input[0].encrypted_content");
    let (status, e) = app
        .post(
            "/v1/responses/compact",
            &json!({"model": "up", "input": [{"type": "compaction", "encrypted_content": "gAAAA-forged"}]}),
        )
        .await;
    let error = assert_error(status, &e, 400);
    assert_eq!(error["param"], "input[0].encrypted_content");
    let (status, e) = app
        .post("/v1/responses/compact", &json!({"input": "hello"}))
        .await;
    let error = assert_error(status, &e, 400);
    assert_eq!(error["param"], "model");
    assert_eq!(
        app.upstream.requests().len(),
        1,
        "no model call for refusals"
    );
}

/// Codex CLI's compaction ("responses_compaction_v2"): an ordinary
/// streaming create whose input ends in `compaction_trigger`. The stream's
/// one output item is the sealed summary, which continues a later request
/// like the compact endpoint's; the trigger anywhere else is refused.
#[tokio::test]
async fn a_compaction_trigger_streams_one_sealed_compaction_item() {
    let app = spawn_app().await;
    app.upstream
        .push(text_script(&["Ann introduced herself; she likes tea."]));
    let events = crate::helpers::events_of(
        app.stream(
            &json!({"model": "up", "stream": true, "store": false, "input": [
                {"role": "user", "content": "My name is Ann and I like tea."},
                {"role": "assistant", "content": "Nice to meet you, Ann."},
                {"type": "compaction_trigger"},
            ]}),
        )
        .await,
    );
    let types: Vec<&str> = events
        .iter()
        .map(|f| f.event.as_deref().unwrap_or_default())
        .collect();
    assert!(types.contains(&"response.output_item.added"), "{types:?}");
    let done: Vec<Value> = events
        .iter()
        .filter(|f| f.event.as_deref() == Some("response.output_item.done"))
        .map(|f| f.json()["item"].clone())
        .collect();
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(done[0]["type"], "compaction");
    let sealed = done[0]["encrypted_content"].as_str().unwrap();
    assert!(!sealed.contains("tea"), "the summary is sealed");
    let completed = events.last().unwrap().json();
    assert_eq!(completed["type"], "response.completed");
    assert_eq!(completed["response"]["output"], json!([done[0].clone()]));
    // The summary was asked of the model over the conversation, and the
    // trigger itself never reached it.
    let asked = app.upstream.requests()[0]["messages"].to_string();
    assert!(asked.contains("I like tea") && !asked.contains("compaction_trigger"));

    app.upstream.push(text_script(&["You like tea."]));
    let (status, next) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": [done[0].clone(),
                {"role": "user", "content": "What do I like?"}]}),
        )
        .await;
    assert_eq!(status, 200, "{next}");
    let messages = app.upstream.requests()[1]["messages"].to_string();
    assert!(messages.contains("she likes tea"), "{messages}");

    let (status, error) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": [{"type": "compaction_trigger"},
                {"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(assert_error(status, &error, 400)["param"], "input[0]");
    assert_eq!(
        app.upstream.requests().len(),
        2,
        "a refused trigger asks nothing"
    );
}
