//! Recovery never stops the server from starting: logs a previous process
//! left corrupt are ended or quarantined, and their conversations freed.

use crate::helpers::{TestApp, config, spawn_with, temp_db};
use crate::upstream::Upstream;
use serde_json::{Value, json};

/// Makes a completed response look unfinished, as a killed process leaves
/// it: running, no final object, no terminal event.
fn unfinish(db: &rusqlite::Connection, id: &str) {
    db.execute(
        "UPDATE responses SET status = 'in_progress', snapshot = NULL WHERE id = ?",
        [id],
    )
    .unwrap();
    db.execute(
        "DELETE FROM events WHERE response_id = ? AND seq = \
         (SELECT MAX(seq) FROM events WHERE response_id = ?)",
        [id, id],
    )
    .unwrap();
}

fn last_event(db: &rusqlite::Connection, id: &str) -> (i64, Value) {
    db.query_row(
        "SELECT seq, payload FROM events WHERE response_id = ? ORDER BY seq DESC LIMIT 1",
        [id],
        |r| {
            Ok((
                r.get(0)?,
                serde_json::from_str(&r.get::<_, String>(1)?).unwrap(),
            ))
        },
    )
    .unwrap()
}

/// Runs the echo model to its end; returns the response's id.
async fn run(app: &TestApp, input: &str, conversation: Option<String>) -> String {
    let mut body = json!({"model": "echo", "input": input});
    if let Some(c) = conversation {
        body["conversation"] = json!(c);
    }
    let (status, body) = app.post("/v1/responses", &body).await;
    assert_eq!(status, 200, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn corrupt_logs_never_stop_the_server_from_starting() {
    let db_path = temp_db();
    let app = spawn_with(config(&db_path, None), Upstream::start().await).await;
    let undecodable = run(&app, "one", None).await;
    let invalid = run(&app, "two words here", None).await;
    let (_, conv) = app.post("/v1/conversations", &json!({})).await;
    let conv = conv["id"].as_str().unwrap().to_owned();
    let headless = run(&app, "three", Some(conv.clone())).await;
    app.stop().await;

    let db = rusqlite::Connection::open(&db_path).unwrap();
    // A log with a row that is not an event at all.
    unfinish(&db, &undecodable);
    let changed = db
        .execute(
            "UPDATE events SET payload = 'not json' WHERE response_id = ? AND seq = 1",
            [&undecodable],
        )
        .unwrap();
    assert_eq!(changed, 1);
    // A log that decodes but has an event that cannot follow its
    // predecessor (a second run.created) before its last stored event.
    unfinish(&db, &invalid);
    let changed = db
        .execute(
            "UPDATE events SET payload = (SELECT payload FROM events WHERE response_id = ?1 AND seq = 0) \
             WHERE response_id = ?1 AND seq = 2",
            [&invalid],
        )
        .unwrap();
    assert_eq!(changed, 1);
    let (invalid_last, _) = last_event(&db, &invalid);
    // A run that still holds its conversation but has no run.created.
    unfinish(&db, &headless);
    db.execute("DELETE FROM events WHERE response_id = ?", [&headless])
        .unwrap();
    db.execute(
        "UPDATE conversations SET active_response_id = ? WHERE id = ?",
        [&headless, &conv],
    )
    .unwrap();
    drop(db);

    let app = spawn_with(config(&db_path, None), Upstream::start().await).await;

    // The log that decodes is ended after its last stored event.
    let (_, got) = app.get(&format!("/v1/responses/{invalid}")).await;
    assert_eq!(got["status"], "failed", "{got}");
    assert_eq!(got["error"]["code"], "server_error");
    let db = rusqlite::Connection::open(&db_path).unwrap();
    let (seq, event) = last_event(&db, &invalid);
    assert_eq!(seq, invalid_last + 1);
    assert_eq!(event["type"], "run.failed");
    drop(db);

    // The logs that cannot be used are quarantined: ended, and deletable.
    for id in [&undecodable, &headless] {
        let (_, got) = app.get(&format!("/v1/responses/{id}")).await;
        assert_eq!(got["status"], "failed", "{got}");
        assert_eq!(got["error"]["code"], "server_error");
    }
    let (status, body) = app.delete(&format!("/v1/responses/{undecodable}")).await;
    assert_eq!(status, 200, "{body}");

    // The conversation the headless run held is free again.
    run(&app, "four", Some(conv)).await;
}
