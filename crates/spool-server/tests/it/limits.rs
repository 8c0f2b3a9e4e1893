//! The server's limits: a request over one is a 400 naming the parameter,
//! more concurrent runs than allowed a 429 with `Retry-After`, in the
//! OpenAI error shape, with nothing written.

use crate::helpers::{assert_error, config, spawn_with, temp_db};
use crate::upstream::{Upstream, slow_script};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn requests_over_a_limit_are_400s_naming_the_parameter() {
    let upstream = Upstream::start().await;
    let mut config = config(&temp_db(), Some(&upstream.base_url));
    config.limits.max_input_items = Some(3);
    config.limits.max_tools = Some(2);
    config.limits.max_model_name_bytes = Some(16);
    let app = spawn_with(config, upstream).await;
    let item = json!({"role": "user", "content": "x"});
    let tool = |n: usize| json!({"type": "function", "name": format!("f{n}"), "parameters": {"type": "object", "properties": {}}});
    let cases = [
        (
            json!({"model": "up", "input": [item, item, item, item]}),
            "input",
            "array_above_max_length",
        ),
        (
            json!({"model": "up", "input": "x", "tools": [tool(1), tool(2), tool(3)]}),
            "tools",
            "array_above_max_length",
        ),
        (
            json!({"model": "m".repeat(17), "input": "x"}),
            "model",
            "string_above_max_length",
        ),
    ];
    for (body, param, code) in cases {
        let (status, answer) = app.post("/v1/responses", &body).await;
        let e = assert_error(status, &answer, 400);
        assert_eq!(e["param"], param, "{answer}");
        assert_eq!(e["code"], code, "{answer}");
    }
    // The chat dialect goes through the same limits.
    let (status, answer) = app
        .post(
            "/v1/chat/completions",
            &json!({"model": "m".repeat(17), "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_error(status, &answer, 400);
    assert!(app.upstream.requests().is_empty());
    // At the limits, a request is served.
    let (status, answer) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": [item, item, item], "tools": [tool(1), tool(2)]}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test]
async fn more_concurrent_runs_than_allowed_are_429s_with_retry_after() {
    let upstream = Upstream::start().await;
    let mut config = config(&temp_db(), Some(&upstream.base_url));
    config.limits.max_concurrent_runs = Some(1);
    let app = spawn_with(config, upstream).await;
    app.upstream
        .push(slow_script(3, Duration::from_millis(300)));
    let (status, first) = app
        .post(
            "/v1/responses",
            &json!({"model": "up", "input": "x", "background": true}),
        )
        .await;
    assert_eq!(status, 200, "{first}");
    let r = app
        .http
        .post(app.url("/v1/responses"))
        .header("content-type", "application/json")
        .body(json!({"model": "up", "input": "y"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    let body: serde_json::Value = r.json().await.unwrap();
    let e = assert_error(429, &body, 429);
    assert_eq!(e["code"], "rate_limit_exceeded");
    // Once the first run ends, its slot is free again.
    app.wait_terminal(first["id"].as_str().unwrap()).await;
    crate::helpers::eventually("the slot is released", || async {
        app.post("/v1/responses", &json!({"model": "echo", "input": "y"}))
            .await
            .0
            == 200
    })
    .await;
}

/// A spool process whose file descriptors are limited to `fds`, killed
/// when dropped.
struct LimitedSpool(std::process::Child);

impl Drop for LimitedSpool {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn running_out_of_file_descriptors_refuses_connections_not_runs() {
    let upstream = Upstream::start().await;
    upstream.push(slow_script(20, Duration::from_millis(100)));
    let db = temp_db();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = format!("http://127.0.0.1:{port}");
    // `ulimit` in a shell, so the test needs no unsafe setrlimit.
    let _spool = LimitedSpool(
        std::process::Command::new("sh")
            .arg("-c")
            .arg("ulimit -n 96 && exec \"$0\" serve")
            .arg(env!("CARGO_BIN_EXE_spool"))
            .env("SPOOL_ADDR", format!("127.0.0.1:{port}"))
            .env("SPOOL_DATABASE_URL", format!("sqlite://{}", db.display()))
            .env("SPOOL_UPSTREAM_URL", &upstream.base_url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = crate::helpers::http_client();
    crate::helpers::eventually("spool answers", || async {
        client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    let created: serde_json::Value = client
        .post(format!("{base}/v1/responses"))
        .header("content-type", "application/json")
        .body(json!({"model": "up", "input": "x", "background": true}).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    // Hold far more connections than the process has descriptors for.
    let mut held = Vec::new();
    for _ in 0..200 {
        if let Ok(Ok(socket)) = tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(("127.0.0.1", port)),
        )
        .await
        {
            held.push(socket);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(held);
    // The accept loop survived, and the run went on to its end.
    let fresh = crate::helpers::http_client();
    let ended = crate::helpers::poll_for("the run ends", || async {
        let r = fresh
            .get(format!("{base}/v1/responses/{id}"))
            .send()
            .await
            .ok()?;
        let body: serde_json::Value = r.json().await.ok()?;
        (body["status"] != "queued" && body["status"] != "in_progress").then_some(body)
    })
    .await;
    assert_eq!(ended["status"], "completed", "{ended}");
}
