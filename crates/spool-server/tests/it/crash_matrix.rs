//! The crash matrix: the real `spool` binary is killed (SIGKILL) at each
//! phase of a run — just created, mid-text, mid-call (a function call's
//! arguments streaming), during a cancel, and as the run ends — then
//! restarted on the same database. Every run is terminal after the
//! restart, and its replay is a byte-extension of what its client saw
//! before the kill: the same frames, byte for byte, then (unless the
//! client had seen the end already) more, up to a terminal event.

use crate::helpers::{eventually, temp_db};
use crate::upstream::{Script, Step, Upstream, finish_chunk, text_chunk, tool_chunk};
use futures::StreamExt;
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A spool process, killed (SIGKILL) and reaped when dropped.
struct Spool {
    child: Child,
    base: String,
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start(db: &std::path::Path, upstream: &str) -> Spool {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_spool"))
        .arg("serve")
        .env("SPOOL_ADDR", format!("127.0.0.1:{port}"))
        .env("SPOOL_DATABASE_URL", format!("sqlite://{}", db.display()))
        .env("SPOOL_UPSTREAM_URL", upstream)
        .env("SPOOL_SSE_KEEPALIVE_SECS", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = crate::helpers::http_client();
    eventually("spool answers", || async {
        client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    Spool { child, base }
}

/// Reads a stream's raw bytes until `enough` says the complete frames
/// read so far are enough; returns those frames' bytes.
async fn read_until(response: reqwest::Response, enough: impl Fn(&str) -> bool) -> String {
    let mut bytes = response.bytes_stream();
    let mut text = String::new();
    loop {
        let complete = text.rfind("\n\n").map_or("", |end| &text[..end + 2]);
        if enough(complete) {
            return complete.to_owned();
        }
        let chunk = tokio::time::timeout(Duration::from_secs(20), bytes.next())
            .await
            .expect("more frames")
            .expect("the stream is open")
            .unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

/// A phase of a run and how a client gets there.
#[derive(Debug, Clone, Copy)]
enum Phase {
    Created,
    MidText,
    MidCall,
    DuringCancel,
    AtTheEnd,
}

/// The upstream's answer for each phase: long enough to be killed in.
fn script(phase: Phase) -> Script {
    let pause = Step::Sleep(Duration::from_millis(30));
    let mut steps = Vec::new();
    match phase {
        Phase::MidCall => {
            steps.push(tool_chunk(0, Some("call_1"), Some("lookup"), ""));
            for i in 0..200 {
                steps.push(pause.clone());
                steps.push(tool_chunk(
                    0,
                    None,
                    None,
                    if i == 0 { "{\"q\":\"" } else { "x" },
                ));
            }
            steps.extend([tool_chunk(0, None, None, "\"}"), finish_chunk("tool_calls")]);
        }
        Phase::AtTheEnd => {
            for i in 0..20 {
                steps.push(text_chunk(&format!("w{i} ")));
            }
            steps.push(finish_chunk("stop"));
        }
        _ => {
            steps.push(Step::Sleep(Duration::from_millis(300)));
            for i in 0..200 {
                steps.push(pause.clone());
                steps.push(text_chunk(&format!("w{i} ")));
            }
            steps.push(finish_chunk("stop"));
        }
    }
    steps.push(crate::upstream::DONE);
    Script::Stream(steps)
}

/// Whether the frames read so far reach `phase`.
fn reached(phase: Phase, frames: &str) -> bool {
    match phase {
        Phase::Created | Phase::DuringCancel => frames.contains("event: response.created"),
        Phase::MidText => frames.matches("event: response.output_text.delta").count() >= 3,
        Phase::MidCall => {
            frames
                .matches("event: response.function_call_arguments.delta")
                .count()
                >= 3
        }
        // The last output event before the terminal one: the run is
        // writing its end.
        Phase::AtTheEnd => frames.contains("event: response.output_text.done"),
    }
}

#[tokio::test]
async fn a_kill_at_any_phase_leaves_every_run_terminal_and_every_replay_an_extension() {
    let upstream = Upstream::start().await;
    let db = temp_db();
    let client = crate::helpers::http_client();
    let phases = [
        Phase::Created,
        Phase::MidText,
        Phase::MidCall,
        Phase::DuringCancel,
        Phase::AtTheEnd,
    ];
    let mut seen: Vec<(Phase, String, String)> = Vec::new();
    for phase in phases {
        let spool = start(&db, &upstream.base_url).await;
        upstream.push(script(phase));
        let tools = json!([{"type": "function", "name": "lookup",
            "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}]);
        let response = client
            .post(format!("{}/v1/responses", spool.base))
            .header("content-type", "application/json")
            .body(
                json!({"model": "up", "input": "x", "stream": true, "background": true,
                    "tools": tools})
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let frames = read_until(response, |f| reached(phase, f)).await;
        let created = frames
            .split("\n\n")
            .find_map(|f| f.lines().find_map(|l| l.strip_prefix("data: ")))
            .map(|d| serde_json::from_str::<Value>(d).unwrap())
            .unwrap();
        let id = created["response"]["id"].as_str().unwrap().to_owned();
        if matches!(phase, Phase::DuringCancel) {
            // The cancel is in flight when the process dies.
            let cancel = client
                .post(format!("{}/v1/responses/{id}/cancel", spool.base))
                .send();
            let _ = tokio::time::timeout(Duration::from_millis(5), cancel).await;
        }
        drop(spool); // SIGKILL
        seen.push((phase, id, frames));
    }
    // One restart recovers every run.
    let spool = start(&db, &upstream.base_url).await;
    for (phase, id, frames) in seen {
        let got: Value = client
            .get(format!("{}/v1/responses/{id}", spool.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let status = got["status"].as_str().unwrap();
        assert!(
            ["completed", "failed", "cancelled", "incomplete"].contains(&status),
            "{phase:?}: {got}"
        );
        let replay = tokio::time::timeout(
            Duration::from_secs(10),
            client
                .get(format!("{}/v1/responses/{id}?stream=true", spool.base))
                .send()
                .await
                .unwrap()
                .text(),
        )
        .await
        .expect("the replay ends")
        .unwrap();
        assert!(
            replay.starts_with(&frames),
            "{phase:?}: the replay is not an extension of what the client saw.\nseen:\n{frames}\nreplay:\n{replay}"
        );
        let terminal = [
            "response.completed",
            "response.failed",
            "response.incomplete",
            "response.cancelled",
        ];
        assert!(
            terminal
                .iter()
                .any(|t| replay.contains(&format!("event: {t}"))),
            "{phase:?}: the replay has no terminal event"
        );
    }
}
