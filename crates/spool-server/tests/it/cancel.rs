//! Cancellation: background cancel, its idempotence and refusals, and the
//! cancellation of a foreground run whose client goes away.

use crate::helpers::{assert_error, events_of, eventually, spawn_app};
use crate::upstream::slow_script;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn cancelling_a_background_run_ends_it_cancelled_and_is_idempotent() {
    let app = spawn_app().await;
    app.upstream
        .push(slow_script(50, Duration::from_millis(100)));
    let (_, created) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": "x", "background": true}),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    app.wait_for_event(&id, "response.output_text.delta").await;
    let (status, cancelled) = app
        .post(&format!("/v1/responses/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["output"], json!([]));
    let (status, again) = app
        .post(&format!("/v1/responses/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(again, cancelled);
    let (_, got) = app.get(&format!("/v1/responses/{id}")).await;
    assert_eq!(got, cancelled);
    // The log ends with response.failed carrying status cancelled.
    let events = events_of(app.replay(&id, None).await);
    let last = events.last().unwrap();
    assert_eq!(last.event.as_deref(), Some("response.failed"));
    assert_eq!(last.json()["response"]["status"], "cancelled");
    // The upstream call was abandoned.
    eventually("the upstream stream is closed", || async {
        app.upstream.open_streams() == 0
    })
    .await;
}

#[tokio::test]
async fn cancel_refuses_foreground_and_finished_runs() {
    let app = spawn_app().await;
    let (_, done) = app
        .post("/v1/responses", &json!({"model": "up", "input": "x"}))
        .await;
    let id = done["id"].as_str().unwrap();
    let (status, body) = app
        .post(&format!("/v1/responses/{id}/cancel"), &json!({}))
        .await;
    assert_error(status, &body, 400);
    let (_, bg) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": "x", "background": true}),
        )
        .await;
    let bg_id = bg["id"].as_str().unwrap();
    app.wait_terminal(bg_id).await;
    let (status, body) = app
        .post(&format!("/v1/responses/{bg_id}/cancel"), &json!({}))
        .await;
    let e = assert_error(status, &body, 400);
    assert!(e["message"].as_str().unwrap().contains("completed"));
    let (status, body) = app
        .post("/v1/responses/resp_unknown/cancel", &json!({}))
        .await;
    assert_error(status, &body, 404);
}

#[tokio::test]
async fn a_foreground_stream_whose_client_disconnects_is_cancelled() {
    let app = spawn_app().await;
    app.upstream
        .push(slow_script(40, Duration::from_millis(100)));
    let first = app
        .stream_first(&json!({"model": "up", "input": "x", "stream": true}), 5)
        .await;
    let id = first[0].json()["response"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ended = app.wait_terminal(&id).await;
    assert_eq!(ended["status"], "cancelled");
}

#[tokio::test]
async fn deleting_a_response_removes_it_everywhere() {
    let app = spawn_app().await;
    let (_, r) = app
        .post("/v1/responses", &json!({"model": "up", "input": "x"}))
        .await;
    let id = r["id"].as_str().unwrap();
    let (status, body) = app.delete(&format!("/v1/responses/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"id": id, "object": "response", "deleted": true})
    );
    for (status, body) in [
        app.get(&format!("/v1/responses/{id}")).await,
        app.get(&format!("/v1/responses/{id}?stream=true")).await,
        app.get(&format!("/v1/responses/{id}/input_items")).await,
        app.delete(&format!("/v1/responses/{id}")).await,
        app.post(&format!("/v1/responses/{id}/cancel"), &json!({}))
            .await,
    ] {
        assert_error(status, &body, 404);
    }
}

#[tokio::test]
async fn an_in_flight_response_cannot_be_deleted() {
    let app = spawn_app().await;
    app.upstream
        .push(slow_script(20, Duration::from_millis(50)));
    let (_, r) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": "x", "background": true}),
        )
        .await;
    let id = r["id"].as_str().unwrap();
    let (status, body) = app.delete(&format!("/v1/responses/{id}")).await;
    assert_error(status, &body, 400);
    app.wait_terminal(id).await;
    let (status, _) = app.delete(&format!("/v1/responses/{id}")).await;
    assert_eq!(status, 200);
}
