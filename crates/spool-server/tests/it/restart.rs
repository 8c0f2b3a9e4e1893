//! A process killed mid-run: on restart the run is ended, so no replay hangs.

use crate::helpers::{SseReader, events_of, eventually, parse_sse, temp_db};
use crate::upstream::{Upstream, slow_script};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A spool process, killed (SIGKILL) and reaped when dropped.
struct Process(Child);

impl Process {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn start_spool(db: &std::path::Path, upstream: &str, port: u16) -> Process {
    let child = Command::new(env!("CARGO_BIN_EXE_spool"))
        .arg("serve")
        .env("SPOOL_ADDR", format!("127.0.0.1:{port}"))
        .env("SPOOL_DATABASE_URL", format!("sqlite://{}", db.display()))
        .env("SPOOL_UPSTREAM_URL", upstream)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(Process)
        .unwrap();
    let client = crate::helpers::http_client();
    eventually("spool answers", || async {
        client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    child
}

#[tokio::test]
async fn a_run_in_progress_when_the_process_dies_is_failed_at_restart() {
    let upstream = Upstream::start().await;
    upstream.push(slow_script(100, Duration::from_millis(100)));
    let db = temp_db();
    let port = free_port();
    let mut spool = start_spool(&db, &upstream.base_url, port).await;
    let client = crate::helpers::http_client();
    let base = format!("http://127.0.0.1:{port}/v1");
    let created: Value = serde_json::from_slice(
        &client
            .post(format!("{base}/responses"))
            .header("content-type", "application/json")
            .body(json!({"model": "up", "input": "x", "background": true}).to_string())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    // Killed once part of its output is stored.
    let watch = client
        .get(format!("{base}/responses/{id}?stream=true"))
        .send()
        .await
        .unwrap();
    SseReader::new(watch)
        .until("response.output_text.delta")
        .await;
    spool.kill(); // SIGKILL: no graceful shutdown

    let port = free_port();
    let spool = start_spool(&db, &upstream.base_url, port).await;
    let base = format!("http://127.0.0.1:{port}/v1");
    let got: Value = serde_json::from_slice(
        &client
            .get(format!("{base}/responses/{id}"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(got["status"], "failed", "{got}");
    assert_eq!(got["error"]["code"], "server_error");
    let text = tokio::time::timeout(
        Duration::from_secs(10),
        client
            .get(format!("{base}/responses/{id}?stream=true"))
            .send()
            .await
            .unwrap()
            .text(),
    )
    .await
    .expect("the replay ends")
    .unwrap();
    let events = events_of(parse_sse(&text));
    assert_eq!(events[0].event.as_deref(), Some("response.created"));
    assert!(
        events
            .iter()
            .any(|f| f.event.as_deref() == Some("response.output_text.delta")),
        "the deltas stored before the kill are kept"
    );
    let last = events.last().unwrap();
    assert_eq!(last.event.as_deref(), Some("response.failed"));
    assert_eq!(last.json()["response"], got);
    drop(spool);
}

#[tokio::test]
async fn a_graceful_stop_ends_live_runs_with_a_stored_terminal_event() {
    let upstream = Upstream::start().await;
    upstream.push(slow_script(100, Duration::from_millis(100)));
    let db = temp_db();
    let app = crate::helpers::spawn_with(
        crate::helpers::config(&db, Some(&upstream.base_url)),
        upstream.clone(),
    )
    .await;
    let (_, created) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": "x", "background": true}),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_owned();
    app.wait_for_event(&id, "response.output_text.delta").await;
    app.stop().await;

    let app = crate::helpers::spawn_with(
        crate::helpers::config(&db, Some(&upstream.base_url)),
        upstream,
    )
    .await;
    let (_, got) = app.get(&format!("/v1/responses/{id}")).await;
    assert_eq!(got["status"], "failed");
    assert_eq!(got["error"]["code"], "server_shutdown");
}
