//! Draining: once an instance begins to stop, its readiness route answers
//! 503 and new runs are refused, while the runs it has go on for the
//! drain's grace period and end as they would have.

use crate::helpers::{assert_error, config, spawn_with, temp_db};
use crate::upstream::{Upstream, slow_script};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn a_draining_instance_is_not_ready_takes_no_runs_and_lets_its_runs_finish() {
    let upstream = Upstream::start().await;
    upstream.push(slow_script(20, Duration::from_millis(50)));
    let mut settings = config(&temp_db(), Some(&upstream.base_url));
    settings.cluster.drain_grace_secs = 30;
    let app = spawn_with(settings, upstream).await;
    let (status, ready) = app.get("/readyz").await;
    assert_eq!((status, &ready["status"]), (200, &json!("ready")));

    let (_, created) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": "x", "background": true}),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    app.wait_for_event(&id, "response.output_text.delta").await;
    let runtime = app.runtime.clone();
    let shutdown = tokio::spawn(async move { runtime.shutdown().await });

    crate::helpers::eventually("the instance drains", || async {
        app.get("/readyz").await.0 == 503
    })
    .await;
    let (status, alive) = app.get("/healthz").await;
    assert_eq!((status, &alive["status"]), (200, &json!("ok")));
    let (status, body) = app
        .post("/v1/responses", &json!({"model": "echo", "input": "late"}))
        .await;
    assert_error(status, &body, 503);

    // The run that was going when the drain began ends on its own.
    tokio::time::timeout(Duration::from_secs(20), shutdown)
        .await
        .expect("the drain ends when the run does")
        .unwrap();
    let (_, got) = app.get(&format!("/v1/responses/{id}")).await;
    assert_eq!(got["status"], "completed", "{got}");
    app.stop().await;
}
