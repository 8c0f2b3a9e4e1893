//! A log that cannot be written: the run still ends, its clients get a
//! terminal event, and once the store works again the stored run is failed
//! with `storage_error` after its last stored event, with no gap. A read
//! of the log that fails for a moment is retried, not shown as a failure.

use crate::faulty_store::FaultyStore;
use crate::helpers::{SseReader, config, events_of, spawn_with_store, temp_db};
use crate::upstream::{Upstream, slow_script};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::time::Duration;

#[tokio::test]
async fn a_run_whose_log_fails_ends_for_its_clients_and_in_the_store() {
    let db = temp_db();
    let store = FaultyStore::open(&db).await;
    let upstream = Upstream::start().await;
    upstream.push(slow_script(40, Duration::from_millis(50)));
    let app = spawn_with_store(
        config(&db, Some(&upstream.base_url)),
        upstream,
        store.clone(),
    )
    .await;

    let mut live = SseReader::new(
        app.open(&json!({"model": "up", "input": "x", "stream": true, "background": true}))
            .await,
    );
    // The run is writing its output when the store starts failing.
    live.until("response.output_text.delta").await;
    store.failing.store(true, Ordering::SeqCst);

    // The live client is told, and its stream ends.
    let live = events_of(live.rest().await);
    let last = live.last().unwrap().json();
    assert_eq!(last["type"], "response.failed");
    assert_eq!(last["response"]["error"]["code"], "storage_error");
    let id = last["response"]["id"].as_str().unwrap().to_owned();
    store.failing.store(false, Ordering::SeqCst);

    // The stored run is ended after its last stored event, with no gap.
    let stored = app.wait_terminal(&id).await;
    assert_eq!(stored["status"], "failed");
    assert_eq!(stored["error"]["code"], "storage_error");
    let replay = events_of(app.replay(&id, None).await);
    for (i, f) in replay.iter().enumerate() {
        assert_eq!(f.json()["sequence_number"], i as u64);
    }
    assert_eq!(replay.last().unwrap().json()["response"], stored);

    // The server goes on serving.
    let (status, body) = app
        .post("/v1/responses", &json!({"model": "up", "input": "x"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "completed");
}

#[tokio::test]
async fn a_read_of_the_log_that_fails_for_a_moment_is_retried() {
    let db = temp_db();
    let store = FaultyStore::open(&db).await;
    let upstream = Upstream::start().await;
    upstream.push(slow_script(10, Duration::from_millis(20)));
    let app = spawn_with_store(
        config(&db, Some(&upstream.base_url)),
        upstream,
        store.clone(),
    )
    .await;
    let (_, created) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": "x", "background": true}),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_owned();

    // A client joins while the run goes on; its first reads of the log fail.
    store.failing_log_reads.store(2, Ordering::SeqCst);
    let events = events_of(app.replay(&id, None).await);
    assert_eq!(store.failing_log_reads.load(Ordering::SeqCst), 0);
    for (i, f) in events.iter().enumerate() {
        assert_eq!(f.json()["sequence_number"], i as u64);
    }
    let last = events.last().unwrap().json();
    assert_eq!(last["type"], "response.completed", "{last}");
    assert_eq!(last["response"], app.wait_terminal(&id).await);
}

#[tokio::test]
async fn a_streaming_create_while_the_store_cannot_write_is_an_error_answer() {
    let db = temp_db();
    let store = FaultyStore::open(&db).await;
    let upstream = Upstream::start().await;
    let app = spawn_with_store(
        config(&db, Some(&upstream.base_url)),
        upstream,
        store.clone(),
    )
    .await;
    store.failing.store(true, Ordering::SeqCst);
    for (path, body) in [
        (
            "/v1/responses",
            json!({"model": "up", "input": "x", "stream": true}),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "up", "messages": [{"role": "user", "content": "x"}], "stream": true}),
        ),
    ] {
        let (status, answer) = app.post(path, &body).await;
        let e = crate::helpers::assert_error(status, &answer, 500);
        assert_eq!(e["code"], "storage_error", "{path}: {answer}");
    }
    // Alive, but not ready for new work.
    assert_eq!(app.get("/healthz").await.0, 200);
    let (status, answer) = app.get("/readyz").await;
    let e = crate::helpers::assert_error(status, &answer, 503);
    assert_eq!(e["code"], "store_unwritable");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("injected write failure")
    );

    store.failing.store(false, Ordering::SeqCst);
    let (status, body) = app
        .post("/v1/responses", &json!({"model": "up", "input": "x"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "completed");
    assert_eq!(app.get("/readyz").await.0, 200);
}

#[tokio::test]
async fn a_run_whose_end_cannot_be_written_is_ended_once_the_store_recovers_without_restart() {
    let db = temp_db();
    let store = FaultyStore::open(&db).await;
    let upstream = Upstream::start().await;
    upstream.push(slow_script(40, Duration::from_millis(50)));
    let app = spawn_with_store(
        config(&db, Some(&upstream.base_url)),
        upstream,
        store.clone(),
    )
    .await;
    let (_, conversation) = app.post("/v1/conversations", &json!({})).await;
    let conversation = conversation["id"].as_str().unwrap().to_owned();
    let mut live = SseReader::new(
        app.open(&json!({"model": "up", "input": "x", "stream": true,
            "background": true, "conversation": conversation}))
            .await,
    );
    live.until("response.output_text.delta").await;
    store.failing.store(true, Ordering::SeqCst);
    let last = events_of(live.rest().await).last().unwrap().json();
    assert_eq!(last["response"]["error"]["code"], "storage_error");
    let id = last["response"]["id"].as_str().unwrap().to_owned();

    // Longer than any fixed number of tries would cover.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (status, _) = app.get("/readyz").await;
    assert_eq!(status, 503);
    let (_, stored) = app.get(&format!("/v1/responses/{id}")).await;
    assert_eq!(
        stored["status"], "in_progress",
        "not ended while writes fail"
    );

    store.failing.store(false, Ordering::SeqCst);
    let stored = app.wait_terminal(&id).await;
    assert_eq!(stored["status"], "failed");
    assert_eq!(stored["error"]["code"], "storage_error");
    crate::helpers::eventually("ready again", || async {
        app.get("/readyz").await.0 == 200
    })
    .await;
    // The conversation is released: it takes the next turn.
    let (status, next) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": "again", "conversation": conversation}),
        )
        .await;
    assert_eq!(status, 200, "{next}");
    assert_eq!(next["status"], "completed");
    // And the ended run can be deleted.
    assert_eq!(app.delete(&format!("/v1/responses/{id}")).await.0, 200);
}
