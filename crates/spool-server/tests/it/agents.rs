//! Named agents from the config file, kept in the store.

use crate::helpers::{assert_error, config, spawn_with, temp_db};
use crate::upstream::Upstream;
use serde_json::json;
use spool_server::App;

const CONFIG: &str = r#"
[[agents]]
name = "helper"
model = "up-model"
instructions = "You are a terse helper."
temperature = 0.2
max_output_tokens = 64
tools = [
  { type = "function", name = "lookup", description = "Looks things up", parameters = { type = "object", properties = { q = { type = "string" } } } },
]

[[agents]]
name = "parrot"
model = "echo"
"#;

fn write_config(text: &str) -> std::path::PathBuf {
    let path = temp_db().with_file_name("spool.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn a_named_agent_supplies_model_instructions_tools_and_defaults() {
    let upstream = Upstream::start().await;
    let mut cfg = config(&temp_db(), Some(&upstream.base_url));
    cfg.config = Some(write_config(CONFIG));
    let app = spawn_with(cfg, upstream).await;

    let (status, r) = app
        .post(
            "/v1/responses",
            &json!({"model": "agent:helper", "input": "hi", "temperature": 0.7}),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["model"], "up-model");
    assert_eq!(
        r["agent_reference"],
        json!({"type": "agent_reference", "name": "helper"})
    );
    assert_eq!(r["instructions"], "You are a terse helper.");
    assert_eq!(r["temperature"], 0.7, "the request overrides the agent");
    assert_eq!(r["max_output_tokens"], 64);
    let sent = &app.upstream.requests()[0];
    assert_eq!(sent["model"], "up-model");
    assert_eq!(
        sent["messages"][0],
        json!({"role": "system", "content": "You are a terse helper."})
    );
    assert_eq!(sent["tools"][0]["function"]["name"], "lookup");
    assert_eq!(sent["temperature"], 0.7);

    let (_, parrot) = app
        .post(
            "/v1/responses",
            &json!({"agent": {"type": "agent_reference", "name": "parrot"}, "input": "say this"}),
        )
        .await;
    assert_eq!(parrot["output"][0]["content"][0]["text"], "say this");
    // A plain model request carries no agent reference.
    let (_, plain) = app
        .post("/v1/responses", &json!({"model": "echo", "input": "x"}))
        .await;
    assert!(plain.get("agent_reference").is_none());

    let (status, body) = app
        .post(
            "/v1/responses",
            &json!({"model": "agent:nobody", "input": "x"}),
        )
        .await;
    assert_eq!(assert_error(status, &body, 404)["param"], "model");
    let (status, body) = app
        .post(
            "/v1/responses",
            &json!({"agent": {"type": "agent_reference", "name": "nobody"}, "input": "x"}),
        )
        .await;
    assert_eq!(assert_error(status, &body, 404)["param"], "agent");
}

#[tokio::test]
async fn agents_are_kept_in_the_store_across_restarts() {
    let db = temp_db();
    let mut cfg = config(&db, None);
    cfg.config = Some(write_config(CONFIG));
    let app = spawn_with(cfg, Upstream::start().await).await;
    app.stop().await;
    let app = spawn_with(config(&db, None), Upstream::start().await).await;
    let (status, r) = app
        .post(
            "/v1/responses",
            &json!({"model": "agent:parrot", "input": "still here"}),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["output"][0]["content"][0]["text"], "still here");
}

#[tokio::test]
async fn an_invalid_config_file_stops_the_server_from_starting_with_a_clear_message() {
    for (text, expected) in [
        (
            "[[agents]]\nname = \"hot\"\nmodel = \"m\"\ntemperature = 5.0\n",
            "Agent 'hot': temperature",
        ),
        (
            "[[agents]]\nname = \"a\"\nmodel = \"m\"\n[[agents]]\nname = \"a\"\nmodel = \"m\"\n",
            "defined twice",
        ),
        (
            "[[agents]]\nname = \"a\"\nmodel = \"m\"\ncolour = \"red\"\n",
            "unknown field",
        ),
    ] {
        let mut cfg = config(&temp_db(), None);
        cfg.config = Some(write_config(text));
        let error = match App::build(&cfg).await {
            Ok(_) => panic!("started with {text}"),
            Err(e) => format!("{e:#}"),
        };
        assert!(error.contains(expected), "{error}");
    }
}

#[tokio::test]
async fn an_agent_removed_from_the_config_file_is_gone_at_the_next_start() {
    let db = temp_db();
    let mut cfg = config(&db, None);
    cfg.config = Some(write_config(CONFIG));
    spawn_with(cfg, Upstream::start().await).await.stop().await;
    let mut cfg = config(&db, None);
    cfg.config = Some(write_config(
        "[[agents]]\nname = \"parrot\"\nmodel = \"echo\"\n",
    ));
    let app = spawn_with(cfg, Upstream::start().await).await;
    let (status, _) = app
        .post(
            "/v1/responses",
            &json!({"model": "agent:parrot", "input": "x"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = app
        .post(
            "/v1/responses",
            &json!({"model": "agent:helper", "input": "x"}),
        )
        .await;
    assert_error(status, &body, 404);
}
