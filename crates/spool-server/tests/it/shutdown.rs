//! A graceful stop has no gap: a run being admitted when draining begins
//! is refused or ended by the shutdown, never left for the next start.

use crate::faulty_store::FaultyStore;
use crate::helpers::{assert_error, config, spawn_with_store, temp_db};
use crate::upstream::Upstream;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn a_run_admitted_while_draining_begins_is_refused_and_waited_for() {
    let db = temp_db();
    let store = FaultyStore::open(&db).await;
    let upstream = Upstream::start().await;
    let app = spawn_with_store(config(&db, None), upstream, store.clone()).await;
    let (_, first) = app
        .post("/v1/responses", &json!({"model": "echo", "input": "one"}))
        .await;
    assert_eq!(first["status"], "completed", "{first}");

    // A run is being admitted: it reads its previous response, and that
    // read is held.
    store.hold_next_response_read();
    let http = app.http.clone();
    let url = app.url("/v1/responses");
    let body = json!({"model": "echo", "input": "two", "background": true,
        "previous_response_id": first["id"]});
    let second = tokio::spawn(async move {
        let r = http
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json::<serde_json::Value>().await.unwrap())
    });
    store.response_read_held().await;

    // Draining begins meanwhile. It may not end while the run is admitted
    // but not yet tracked: that run would outlive the shutdown.
    let runtime = app.runtime.clone();
    let mut shutdown = tokio::spawn(async move { runtime.shutdown().await });
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut shutdown)
            .await
            .is_err(),
        "the shutdown ended while a run was being admitted"
    );
    store.release();

    let (status, body) = second.await.unwrap();
    let error = assert_error(status, &body, 503);
    assert_eq!(error["message"], "The server is shutting down.");
    tokio::time::timeout(Duration::from_secs(10), shutdown)
        .await
        .expect("the shutdown ends once the run is refused")
        .unwrap();
    app.stop().await;
}
