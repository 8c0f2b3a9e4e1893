//! Bad input: a clear OpenAI-shaped error with the right status, and
//! nothing written.

use crate::helpers::{assert_error, spawn_app};
use serde_json::json;

async fn stored_responses(app: &crate::helpers::TestApp) -> i64 {
    let conn = rusqlite::Connection::open(&app.db_path).unwrap();
    let count = |table: &str| -> i64 {
        conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    };
    count("responses") + count("events")
}

#[tokio::test]
async fn invalid_bodies_are_400s_that_name_the_parameter_and_write_nothing() {
    let app = spawn_app().await;
    let cases = [
        (json!({"input": "x"}), Some("model")),
        (json!({"model": 5, "input": "x"}), Some("model")),
        (
            json!({"model": "up", "input": "x", "temperature": "hot"}),
            Some("temperature"),
        ),
        (
            json!({"model": "up", "input": "x", "background": true, "store": false}),
            Some("background"),
        ),
        (
            json!({"model": "up", "input": [{"role": "robot", "content": "x"}]}),
            Some("input[0].role"),
        ),
        (
            json!({"model": "up", "input": "x", "tools": [{"type": "function"}]}),
            Some("tools[0].name"),
        ),
        (
            json!({"model": "up", "input": "x", "metadata": {"k": 1}}),
            Some("metadata.k"),
        ),
        (
            json!({"model": "up", "input": "x", "stream_options": {}}),
            Some("stream"),
        ),
        (json!({"model": "up"}), Some("input")),
    ];
    for (body, param) in cases {
        let (status, answer) = app.post("/v1/responses", &body).await;
        let e = assert_error(status, &answer, 400);
        assert_eq!(e["type"], "invalid_request_error");
        assert_eq!(e["param"].as_str(), param, "{body} → {answer}");
    }
    let (status, answer) = app.post_raw("/v1/responses", "{not json").await;
    assert_error(status, &answer, 400);
    let (status, answer) = app.post_raw("/v1/responses", "").await;
    assert_error(status, &answer, 400);
    let (status, answer) = app.post_raw("/v1/responses", "[1, 2]").await;
    let e = assert_error(status, &answer, 400);
    assert_eq!(e["message"], "The request body must be a JSON object.");
    assert_eq!(stored_responses(&app).await, 0);
    assert!(app.upstream.requests().is_empty());
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413() {
    let app = spawn_app().await;
    let big = json!({"model": "up", "input": "x".repeat(100 * 1024)});
    let (status, answer) = app.post("/v1/responses", &big).await;
    assert_error(status, &answer, 413);
    assert_eq!(stored_responses(&app).await, 0);
}

#[tokio::test]
async fn bad_query_parameters_are_400s() {
    let app = spawn_app().await;
    let (_, r) = app
        .post("/v1/responses", &json!({"model": "up", "input": "x"}))
        .await;
    let id = r["id"].as_str().unwrap();
    for (query, param) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("order=sideways", "order"),
        ("after=msg_unknown", "after"),
        ("before=msg_unknown", "before"),
    ] {
        let (status, body) = app
            .get(&format!("/v1/responses/{id}/input_items?{query}"))
            .await;
        let e = assert_error(status, &body, 400);
        assert_eq!(e["param"], param, "{query}");
    }
    let (status, body) = app
        .get(&format!(
            "/v1/responses/{id}?stream=true&starting_after=abc"
        ))
        .await;
    assert_eq!(assert_error(status, &body, 400)["param"], "starting_after");
    let (status, body) = app.get(&format!("/v1/responses/{id}?stream=maybe")).await;
    assert_eq!(assert_error(status, &body, 400)["param"], "stream");
}

#[tokio::test]
async fn unknown_ids_and_routes_are_404s_in_the_error_shape() {
    let app = spawn_app().await;
    for path in [
        "/v1/responses/resp_0000",
        "/v1/responses/not-an-id",
        "/v1/nothing",
    ] {
        let (status, body) = app.get(path).await;
        assert_error(status, &body, 404);
    }
    let (status, body) = app.delete("/v1/responses").await;
    assert_error(status, &body, 405);
}

#[tokio::test]
async fn trailing_bytes_and_missing_fields_are_400s_that_say_so() {
    let app = spawn_app().await;
    let (status, answer) = app
        .post_raw(
            "/v1/responses",
            r#"{"model": "up", "input": "x"} {"again": 1}"#,
        )
        .await;
    let e = assert_error(status, &answer, 400);
    assert_eq!(e["code"], "invalid_json");
    assert_eq!(stored_responses(&app).await, 0);
    let (_, conv) = app.post("/v1/conversations", &json!({})).await;
    let items = format!("/v1/conversations/{}/items", conv["id"].as_str().unwrap());
    let (status, answer) = app.post(&items, &json!({})).await;
    let e = assert_error(status, &answer, 400);
    assert_eq!(e["param"], "items");
    assert_eq!(e["code"], "missing_required_parameter");
}

#[tokio::test]
async fn malformed_paths_and_oversized_requests_answer_in_the_error_shape() {
    let app = spawn_app().await;
    let (status, body) = app.get("/v1/responses/%FF").await;
    assert_eq!(assert_error(status, &body, 400)["code"], "invalid_path");
    let long = format!("/v1/responses/resp_{}", "a".repeat(9 * 1024));
    let (status, body) = app.get(&long).await;
    assert_error(status, &body, 414);
    let r = app
        .http
        .get(app.url("/v1/responses/resp_1"))
        .header("x-padding", "p".repeat(40 * 1024))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_error(status, &body, 431);
}
