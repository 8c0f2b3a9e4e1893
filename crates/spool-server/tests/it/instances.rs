//! Two `spool serve` processes sharing one PostgreSQL schema: any instance
//! serves any run (live, resumed, replayed in another dialect, cancelled),
//! a run lost with a killed instance is ended by the other, and turns from
//! both on many conversations keep each conversation's items whole.
//!
//! These run only with `SPOOL_TEST_DATABASE_URL` (each test makes its own
//! schema); without it they say they were skipped.

use crate::helpers::{SseReader, eventually, http_client, parse_sse, read_to_end};
use crate::upstream::{Upstream, slow_script};
use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A lease short enough that a killed instance is noticed quickly.
const LEASE_TTL_MS: &str = "1500";

/// A spool process, killed (SIGKILL) and reaped when dropped.
struct Instance {
    child: Child,
    id: String,
    base: String,
}

impl Instance {
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One deployment: a fresh schema, its compaction key, and the upstream
/// every instance calls.
struct Deployment {
    url: String,
    key_file: std::path::PathBuf,
    upstream: Upstream,
    http: reqwest::Client,
}

impl Deployment {
    /// `None` (the test is skipped) without `SPOOL_TEST_DATABASE_URL`.
    async fn new() -> Option<Self> {
        let Ok(url) = std::env::var("SPOOL_TEST_DATABASE_URL") else {
            eprintln!("skipped: set SPOOL_TEST_DATABASE_URL to run the multi-instance tests");
            return None;
        };
        let schema = format!("instances_{}", uuid::Uuid::now_v7().simple());
        let url = spool_store::postgres::create_schema(&url, &schema)
            .await
            .unwrap();
        let dir = std::env::temp_dir().join(&schema);
        std::fs::create_dir_all(&dir).unwrap();
        Some(Self {
            url,
            key_file: dir.join("compaction.key"),
            upstream: Upstream::start().await,
            http: http_client(),
        })
    }

    async fn start(&self, name: &str) -> Instance {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let id = format!("{name}-{port}");
        let child = Command::new(env!("CARGO_BIN_EXE_spool"))
            .arg("serve")
            .env("SPOOL_ADDR", format!("127.0.0.1:{port}"))
            .env("SPOOL_DATABASE_URL", &self.url)
            .env("SPOOL_UPSTREAM_URL", &self.upstream.base_url)
            .env("SPOOL_COMPACTION_KEY_FILE", &self.key_file)
            .env("SPOOL_INSTANCE_ID", &id)
            .env("SPOOL_LEASE_TTL_MS", LEASE_TTL_MS)
            .env("SPOOL_SSE_KEEPALIVE_SECS", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let instance = Instance {
            child,
            id,
            base: format!("http://127.0.0.1:{port}"),
        };
        eventually("the instance is ready", || async {
            self.http
                .get(format!("{}/readyz", instance.base))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await;
        instance
    }

    async fn post(&self, on: &Instance, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", on.base))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }

    async fn get_json(&self, on: &Instance, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", on.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// A stream, resumed after frame `after` if given.
    async fn stream(&self, on: &Instance, path: &str, after: Option<&str>) -> reqwest::Response {
        let mut request = self.http.get(format!("{}{path}", on.base));
        if let Some(after) = after {
            request = request.header("last-event-id", after);
        }
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), 200);
        r
    }

    async fn replay(&self, on: &Instance, path: &str) -> String {
        read_to_end(self.stream(on, path, None).await).await
    }

    async fn background_run(&self, on: &Instance) -> String {
        let (status, created) = self
            .post(
                on,
                "/v1/responses",
                &json!({"model": "up", "input": "x", "background": true}),
            )
            .await;
        assert_eq!(status, 200, "{created}");
        created["id"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn a_run_on_one_instance_is_streamed_resumed_replayed_and_cancelled_from_another() {
    let Some(deployment) = Deployment::new().await else {
        return;
    };
    deployment
        .upstream
        .push(slow_script(100, Duration::from_millis(50)));
    let (a, b) = (deployment.start("a").await, deployment.start("b").await);
    let id = deployment.background_run(&a).await;
    let path = format!("/v1/responses/{id}?stream=true");

    // Live from B: the events A commits reach B's client.
    let mut live = SseReader::new(deployment.stream(&b, &path, None).await);
    let mut seen = live.until("response.output_text.delta").await;
    for _ in 0..3 {
        seen.push(live.next().await.unwrap());
    }
    drop(live);
    let last_seen = seen.last().unwrap().id.clone().unwrap();

    // Resumed from B after the last frame its client saw: no gap, no repeat.
    let mut resumed = SseReader::new(deployment.stream(&b, &path, Some(&last_seen)).await);
    let next = resumed.next().await.unwrap();
    assert_eq!(
        next.id.unwrap().parse::<u64>().unwrap(),
        last_seen.parse::<u64>().unwrap() + 1
    );
    resumed.until("response.output_text.delta").await;

    // Cancelled from B: A stops the run, B answers with the cancelled object.
    let started = Instant::now();
    let (status, cancelled) = deployment
        .post(&b, &format!("/v1/responses/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the cancel took {:?}",
        started.elapsed()
    );
    // B's resumed stream ends with the run.
    let rest = read_to_end_of(resumed).await;
    let end = rest.last().unwrap().json();
    assert_eq!(end["response"]["status"], "cancelled", "{end}");
    assert_eq!(
        deployment
            .get_json(&a, &format!("/v1/responses/{id}"))
            .await,
        cancelled
    );

    // Replays from both instances, in two dialects, are the same bytes.
    let responses_from_a = deployment.replay(&a, &path).await;
    let responses_from_b = deployment.replay(&b, &path).await;
    assert_eq!(responses_from_a, responses_from_b);
    let chat = format!("/v1/runs/{id}/events?dialect=chat");
    let chat_from_b = deployment.replay(&b, &chat).await;
    assert_eq!(chat_from_b, deployment.replay(&a, &chat).await);
    let chunks = parse_sse(&chat_from_b);
    assert!(
        chunks
            .iter()
            .any(|f| f.data != "[DONE]" && f.json()["object"] == "chat.completion.chunk"),
        "{chat_from_b}"
    );
}

/// Reads an SSE stream to its end, `[DONE]` left out.
async fn read_to_end_of(mut reader: SseReader) -> Vec<crate::helpers::Frame> {
    let mut frames = Vec::new();
    while let Some(frame) = reader.next().await {
        if frame.data != "[DONE]" {
            frames.push(frame);
        }
    }
    frames
}

#[tokio::test]
async fn a_run_lost_with_a_killed_instance_is_ended_by_another() {
    let Some(deployment) = Deployment::new().await else {
        return;
    };
    deployment
        .upstream
        .push(slow_script(200, Duration::from_millis(50)));
    let (mut a, b) = (deployment.start("a").await, deployment.start("b").await);
    let id = deployment.background_run(&a).await;
    let path = format!("/v1/responses/{id}?stream=true");
    let mut live = SseReader::new(deployment.stream(&b, &path, None).await);
    live.until("response.output_text.delta").await;
    a.kill(); // SIGKILL: A's lease is no longer renewed.

    // B's client sees the run end once A's lease has run out.
    let rest = read_to_end_of(live).await;
    let end = rest.last().unwrap();
    assert_eq!(end.event.as_deref(), Some("response.failed"));
    let object = end.json()["response"].clone();
    assert_eq!(object["status"], "failed");
    assert_eq!(object["error"]["code"], "server_error");
    let message = object["error"]["message"].as_str().unwrap();
    assert!(message.contains(&a.id), "{message}");
    assert_eq!(
        deployment
            .get_json(&b, &format!("/v1/responses/{id}"))
            .await,
        object
    );

    // A third instance replays exactly what B replays.
    let c = deployment.start("c").await;
    assert_eq!(
        deployment.replay(&b, &path).await,
        deployment.replay(&c, &path).await
    );
}

#[tokio::test]
async fn turns_from_both_instances_keep_each_conversation_whole() {
    let Some(deployment) = Deployment::new().await else {
        return;
    };
    let (a, b) = (deployment.start("a").await, deployment.start("b").await);
    let mut conversations = Vec::new();
    for _ in 0..8 {
        let (status, created) = deployment.post(&a, "/v1/conversations", &json!({})).await;
        assert_eq!(status, 200, "{created}");
        conversations.push(created["id"].as_str().unwrap().to_owned());
    }
    // Each conversation gets turns from A and B at once, round after round.
    let mut turns = Vec::new();
    for round in 0..4 {
        for conversation in &conversations {
            for on in [&a, &b] {
                let body = json!({
                    "model": "echo",
                    "input": format!("{round} via {}", on.id),
                    "conversation": conversation,
                });
                let deployment = &deployment;
                let conversation = conversation.clone();
                turns.push(async move {
                    let (status, answer) = deployment.post(on, "/v1/responses", &body).await;
                    (conversation, status, answer)
                });
            }
        }
    }
    let results = futures::future::join_all(turns).await;
    for conversation in &conversations {
        let mine: Vec<&(String, u16, Value)> =
            results.iter().filter(|(c, ..)| c == conversation).collect();
        let done: Vec<&Value> = mine
            .iter()
            .filter(|(_, status, _)| *status == 200)
            .map(|(_, _, answer)| answer)
            .collect();
        for (_, status, answer) in &mine {
            assert!(
                *status == 200 || answer["error"]["code"] == "conversation_locked",
                "{status} {answer}"
            );
        }
        assert!(!done.is_empty());
        let items = deployment
            .get_json(
                &a,
                &format!("/v1/conversations/{conversation}/items?order=asc&limit=100"),
            )
            .await;
        let items = items["data"].as_array().unwrap();
        // One input and one output per turn that ran, nothing lost or
        // doubled, and no turn's items interleaved with another's.
        assert_eq!(items.len(), 2 * done.len(), "{items:?}");
        for pair in items.chunks(2) {
            assert_eq!(pair[0]["role"], "user");
            assert_eq!(pair[1]["role"], "assistant");
        }
        for answer in done {
            let output_id = &answer["output"][0]["id"];
            assert!(items.iter().any(|i| &i["id"] == output_id));
        }
    }
}

#[tokio::test]
async fn spool_migrate_brings_a_schema_up_to_date_and_changes_nothing_the_second_time() {
    let Some(deployment) = Deployment::new().await else {
        return;
    };
    for _ in 0..2 {
        let out = Command::new(env!("CARGO_BIN_EXE_spool"))
            .arg("migrate")
            .env("SPOOL_DATABASE_URL", &deployment.url)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let said = String::from_utf8(out.stdout).unwrap();
        assert!(said.contains("the schema is up to date"), "{said}");
    }
    // The schema serves a store.
    let store = spool_store::PostgresStore::open(&deployment.url, "probe", Duration::from_secs(5))
        .await
        .unwrap();
    let unknown = spool_core::ids::ResponseId::generate(&spool_server::runtime::ids::Uuid7Ids);
    assert_eq!(
        spool_store::LogStore::response(&store, &unknown)
            .await
            .unwrap(),
        None
    );
}
