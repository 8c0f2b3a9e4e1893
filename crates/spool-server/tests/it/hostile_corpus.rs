//! The hostile-input corpus (`tests/fixtures/hostile/corpus.jsonl`, written
//! by `generate.py` beside it): every route with malformed and oversized
//! bodies, bad paths, queries and headers. Every request must get a 4xx
//! in the OpenAI error shape, nothing may be written, no upstream called,
//! and the server must still answer afterwards.

use crate::helpers::spawn_app;
use base64::Engine;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

const CORPUS: &str = include_str!("../../../../tests/fixtures/hostile/corpus.jsonl");

/// One hostile request.
#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    method: String,
    path: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    body: Option<String>,
    body_b64: Option<String>,
    /// An oversized body: `prefix`, `fill` × `times`, `suffix`.
    repeat: Option<Repeat>,
    /// The status expected, when only one is right.
    status: Option<u16>,
}

#[derive(Debug, Deserialize)]
struct Repeat {
    prefix: String,
    fill: String,
    times: usize,
    suffix: String,
}

impl Case {
    fn body(&self) -> Option<Vec<u8>> {
        if let Some(b) = &self.body {
            return Some(b.clone().into_bytes());
        }
        if let Some(b) = &self.body_b64 {
            return Some(base64::engine::general_purpose::STANDARD.decode(b).unwrap());
        }
        self.repeat
            .as_ref()
            .map(|r| format!("{}{}{}", r.prefix, r.fill.repeat(r.times), r.suffix).into_bytes())
    }
}

/// Rows in every table of the store.
fn rows(db: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    [
        "responses",
        "events",
        "items",
        "conversations",
        "conversation_items",
    ]
    .iter()
    .map(|table| -> i64 {
        conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    })
    .sum()
}

/// Why an answer is not an OpenAI-shaped 4xx, if it is not.
fn misshapen(case: &Case, status: u16, content_type: &str, body: &[u8]) -> Option<String> {
    if !(400..500).contains(&status) {
        return Some(format!("status {status}"));
    }
    if let Some(expected) = case.status
        && expected != status
    {
        return Some(format!("status {status}, expected {expected}"));
    }
    if !content_type.starts_with("application/json") {
        return Some(format!("content-type '{content_type}'"));
    }
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Some(format!("not JSON: {}", String::from_utf8_lossy(body)));
    };
    let error = &value["error"];
    for key in ["message", "type", "param", "code"] {
        if error.get(key).is_none() {
            return Some(format!("error.{key} missing: {value}"));
        }
    }
    let message_ok = error["message"].as_str().is_some_and(|m| !m.is_empty());
    if !message_ok || !error["type"].is_string() {
        return Some(format!("empty message or type: {value}"));
    }
    None
}

#[tokio::test]
async fn every_hostile_request_is_an_openai_shaped_4xx_that_writes_nothing() {
    let app = spawn_app().await;
    let cases: Vec<Case> = CORPUS
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(cases.len() > 300, "the corpus is {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let method = reqwest::Method::from_bytes(case.method.as_bytes()).unwrap();
        let mut request = app.http.request(method, app.url(&case.path));
        for (name, value) in &case.headers {
            request = request.header(name, value);
        }
        if let Some(body) = case.body() {
            request = request.body(body);
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{}: no answer: {e}", case.name));
                continue;
            }
        };
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = response.bytes().await.unwrap_or_default();
        if let Some(why) = misshapen(case, status, &content_type, &body) {
            failures.push(format!(
                "{} ({} {}): {why}",
                case.name, case.method, case.path
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} hostile requests were not OpenAI-shaped 4xx:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert_eq!(rows(&app.db_path), 0, "a hostile request wrote something");
    assert!(
        app.upstream.requests().is_empty(),
        "the upstream was called"
    );
    let (status, _) = app.get("/healthz").await;
    assert_eq!(status, 200, "the server is still alive");
}
