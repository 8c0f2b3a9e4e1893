//! MCP failure modes that need no real server: one that never answers, and
//! one outside the allowlist. (Working servers are driven by the openai SDK
//! suite, against a server built with the official Python SDK.)

use crate::helpers::{assert_error, config, spawn_with, temp_db};
use crate::upstream::{Upstream, text_script};
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_server_that_never_answers_fails_its_listing_and_the_run_goes_on() {
    // Accepts connections and never says a word.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let upstream = Upstream::start().await;
    upstream.push(text_script(&["answered without tools"]));
    let mut cfg = config(&temp_db(), Some(&upstream.base_url));
    cfg.mcp_allowed_urls = vec![format!("http://127.0.0.1:{port}/")];
    let app = spawn_with(cfg, upstream).await;
    let begin = Instant::now();
    let (status, r) = app
        .post("/v1/responses", &json!({"model": "up", "input": "x", "tools": [
            {"type": "mcp", "server_label": "mute", "server_url": format!("http://127.0.0.1:{port}/mcp"),
             "require_approval": "never"}]}))
        .await;
    assert_eq!(status, 200, "{r}");
    assert!(
        begin.elapsed() < Duration::from_secs(10),
        "bounded by the connect timeout (2 s here)"
    );
    assert_eq!(r["status"], "completed");
    assert_eq!(r["output"][0]["type"], "mcp_list_tools");
    assert!(
        r["output"][0]["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{r}"
    );
    assert_eq!(
        r["output"][1]["content"][0]["text"],
        "answered without tools"
    );
}

#[tokio::test]
async fn a_server_outside_the_allowlist_is_never_contacted() {
    let watched = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = watched.local_addr().unwrap().port();
    let contacted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = contacted.clone();
    tokio::spawn(async move {
        if watched.accept().await.is_ok() {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let upstream = Upstream::start().await;
    let mut cfg = config(&temp_db(), Some(&upstream.base_url));
    cfg.mcp_allowed_urls = vec!["http://127.0.0.1:1/".into()];
    let app = spawn_with(cfg, upstream).await;
    for url in [
        format!("http://127.0.0.1:{port}/mcp"),
        format!("http://127.0.0.1:1@127.0.0.1:{port}/mcp"),
    ] {
        let (status, body) = app
            .post(
                "/v1/responses",
                &json!({"model": "up", "input": "x",
                "tools": [{"type": "mcp", "server_label": "x", "server_url": url}]}),
            )
            .await;
        assert_eq!(
            assert_error(status, &body, 400)["code"],
            "mcp_server_not_allowed"
        );
    }
    // Waits for something that must not happen: no event marks its
    // absence, so a contact started in the background gets a grace period.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!contacted.load(std::sync::atomic::Ordering::SeqCst));
    assert!(app.upstream.requests().is_empty());
}
