//! Conversations: CRUD, history the model sees, items appended by turns,
//! and one turn at a time.

use crate::helpers::{assert_error, spawn_app};
use crate::upstream::{slow_script, text_script};
use serde_json::{Value, json};
use std::time::Duration;

fn texts(items: &Value) -> Vec<String> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            i["content"][0]["text"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn conversations_and_their_items_can_be_created_read_updated_and_deleted() {
    let app = spawn_app().await;
    let (status, conv) = app
        .post(
            "/v1/conversations",
            &json!({"metadata": {"topic": "demo"}, "items": [
                {"role": "user", "content": "one"},
                {"type": "message", "role": "assistant", "content": "two"}
            ]}),
        )
        .await;
    assert_eq!(status, 200, "{conv}");
    assert_eq!(conv["object"], "conversation");
    assert_eq!(conv["metadata"], json!({"topic": "demo"}));
    let id = conv["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("conv_"));
    assert_eq!(app.get(&format!("/v1/conversations/{id}")).await.1, conv);

    let (_, updated) = app
        .post(
            &format!("/v1/conversations/{id}"),
            &json!({"metadata": {"topic": "other"}}),
        )
        .await;
    assert_eq!(updated["metadata"], json!({"topic": "other"}));

    let (status, added) = app
        .post(
            &format!("/v1/conversations/{id}/items"),
            &json!({"items": [{"role": "user", "content": "three"}]}),
        )
        .await;
    assert_eq!(status, 200, "{added}");
    assert_eq!(texts(&added["data"]), ["three"]);
    let (_, page) = app.get(&format!("/v1/conversations/{id}/items")).await;
    assert_eq!(
        texts(&page["data"]),
        ["three", "two", "one"],
        "newest first by default"
    );
    let (_, page) = app
        .get(&format!("/v1/conversations/{id}/items?order=asc&limit=2"))
        .await;
    assert_eq!(texts(&page["data"]), ["one", "two"]);
    assert_eq!(page["has_more"], true);
    let after = page["last_id"].as_str().unwrap();
    let (_, page) = app
        .get(&format!(
            "/v1/conversations/{id}/items?order=asc&after={after}"
        ))
        .await;
    assert_eq!(texts(&page["data"]), ["three"]);

    let item_id = added["data"][0]["id"].as_str().unwrap();
    let (status, item) = app
        .get(&format!("/v1/conversations/{id}/items/{item_id}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(item["content"][0]["text"], "three");
    let (status, after_delete) = app
        .delete(&format!("/v1/conversations/{id}/items/{item_id}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(after_delete["id"], id.as_str());
    let (status, body) = app
        .get(&format!("/v1/conversations/{id}/items/{item_id}"))
        .await;
    assert_error(status, &body, 404);

    let (status, deleted) = app.delete(&format!("/v1/conversations/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        deleted,
        json!({"id": id, "object": "conversation.deleted", "deleted": true})
    );
    for (status, body) in [
        app.get(&format!("/v1/conversations/{id}")).await,
        app.get(&format!("/v1/conversations/{id}/items")).await,
        app.delete(&format!("/v1/conversations/{id}")).await,
    ] {
        assert_error(status, &body, 404);
    }
}

#[tokio::test]
async fn bad_conversation_requests_are_clear_errors() {
    let app = spawn_app().await;
    let too_many: Vec<Value> = (0..21)
        .map(|i| json!({"role": "user", "content": i.to_string()}))
        .collect();
    let (status, body) = app
        .post("/v1/conversations", &json!({"items": too_many}))
        .await;
    assert_eq!(assert_error(status, &body, 400)["param"], "items");
    let (status, body) = app
        .post(
            "/v1/conversations",
            &json!({"items": [{"role": "robot", "content": "x"}]}),
        )
        .await;
    assert_eq!(assert_error(status, &body, 400)["param"], "items[0].role");
    let (status, body) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": "x", "conversation": "conv_missing"}),
        )
        .await;
    assert_eq!(assert_error(status, &body, 404)["param"], "conversation");
    let (_, conv) = app.post("/v1/conversations", &json!({})).await;
    let (status, body) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": "x", "conversation": conv["id"],
            "previous_response_id": "resp_x"}),
        )
        .await;
    assert_eq!(assert_error(status, &body, 400)["param"], "conversation");
    let (status, body) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": "x", "conversation": conv["id"], "store": false}),
        )
        .await;
    assert_eq!(assert_error(status, &body, 400)["param"], "store");
    // Item ids are unique within a conversation.
    let id = conv["id"].as_str().unwrap();
    let item = json!({"id": "msg_same", "role": "user", "content": "x"});
    let (status, _) = app
        .post(
            &format!("/v1/conversations/{id}/items"),
            &json!({"items": [item]}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = app
        .post(
            &format!("/v1/conversations/{id}/items"),
            &json!({"items": [item]}),
        )
        .await;
    assert_eq!(assert_error(status, &body, 400)["code"], "duplicate_item");
    let (status, body) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": [item], "conversation": id}),
        )
        .await;
    assert_eq!(assert_error(status, &body, 400)["code"], "duplicate_item");
    assert!(app.upstream.requests().is_empty());
    // Refused turns left the conversation free.
    let (status, _) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": "y", "conversation": id}),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_turn_sees_the_conversation_and_appends_its_input_and_output() {
    let app = spawn_app().await;
    let (_, conv) = app
        .post(
            "/v1/conversations",
            &json!({"items": [{"role": "user", "content": "my name is Ada"}]}),
        )
        .await;
    let id = conv["id"].as_str().unwrap();
    app.upstream.push(text_script(&["Hello", " Ada"]));
    let (status, first) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": "hi", "conversation": id}),
        )
        .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["conversation"], json!({"id": id}));
    assert_eq!(
        app.upstream.requests()[0]["messages"],
        json!([{"role": "user", "content": "my name is Ada"}, {"role": "user", "content": "hi"}])
    );
    let (_, items) = app
        .get(&format!("/v1/conversations/{id}/items?order=asc"))
        .await;
    assert_eq!(texts(&items["data"]), ["my name is Ada", "hi", "Hello Ada"]);
    assert_eq!(items["data"][2]["id"], first["output"][0]["id"]);

    let (_, second) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": "what is my name?", "conversation": {"id": id}}),
        )
        .await;
    assert_eq!(second["status"], "completed");
    let sent = &app.upstream.requests()[1]["messages"];
    let contents: Vec<&str> = sent
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        contents,
        ["my name is Ada", "hi", "Hello Ada", "what is my name?"]
    );
}

#[tokio::test]
async fn one_turn_runs_on_a_conversation_at_a_time() {
    let app = spawn_app().await;
    let (_, conv) = app.post("/v1/conversations", &json!({})).await;
    let id = conv["id"].as_str().unwrap().to_owned();
    app.upstream
        .push(slow_script(6, Duration::from_millis(100)));
    let (_, running) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": "first", "conversation": id, "background": true}),
        )
        .await;
    let running_id = running["id"].as_str().unwrap().to_owned();

    let (status, body) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": "second", "conversation": id}),
        )
        .await;
    let e = assert_error(status, &body, 409);
    assert_eq!(e["code"], "conversation_locked");
    assert!(e["message"].as_str().unwrap().contains(&running_id));
    let (status, body) = app
        .post(
            &format!("/v1/conversations/{id}/items"),
            &json!({"items": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(
        assert_error(status, &body, 409)["code"],
        "conversation_locked"
    );

    app.wait_terminal(&running_id).await;
    let (status, second) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": "second", "conversation": id}),
        )
        .await;
    assert_eq!(status, 200, "{second}");
    let (_, items) = app
        .get(&format!("/v1/conversations/{id}/items?order=asc"))
        .await;
    let order: Vec<String> = texts(&items["data"]);
    assert_eq!(order[0], "first");
    assert!(
        order[1].starts_with("w0 "),
        "the first turn's output follows its input: {order:?}"
    );
    assert_eq!(order[2], "second");
}

#[tokio::test]
async fn a_cancelled_turn_releases_the_conversation() {
    let app = spawn_app().await;
    let (_, conv) = app.post("/v1/conversations", &json!({})).await;
    let id = conv["id"].as_str().unwrap().to_owned();
    app.upstream
        .push(slow_script(50, Duration::from_millis(100)));
    let (_, running) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": "first", "conversation": id, "background": true}),
        )
        .await;
    let running_id = running["id"].as_str().unwrap();
    app.wait_for_event(running_id, "response.output_text.delta")
        .await;
    let (status, _) = app
        .post(&format!("/v1/responses/{running_id}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 200);
    let (status, next) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": "again", "conversation": id}),
        )
        .await;
    assert_eq!(status, 200, "{next}");
    let (_, items) = app
        .get(&format!("/v1/conversations/{id}/items?order=asc"))
        .await;
    assert_eq!(
        texts(&items["data"]),
        ["first", "again", "Hello from upstream"]
    );
}
