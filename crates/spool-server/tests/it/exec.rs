//! `spool exec`, the built binary, against a server on a loopback port:
//! the Codex command line runs a turn and prints thread events; bad usage
//! exits 2 and an unknown thread exits 1, each with a clear message.

use crate::helpers::spawn_app;
use crate::upstream::text_script;
use serde_json::Value;
use std::process::Output;
use tokio::io::AsyncWriteExt;

/// Runs `spool exec ARGS` with `stdin`, against `base` unless ARGS name one.
async fn exec(base: Option<&str>, args: &[&str], stdin: &str) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_spool"));
    command
        .arg("exec")
        .args(args)
        .env_remove("SPOOL_URL")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if let Some(base) = base {
        command.env("SPOOL_URL", base);
    }
    let mut child = command.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    tokio::time::timeout(std::time::Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("spool exec ends")
        .unwrap()
}

fn lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn the_sdk_command_line_runs_a_turn_and_resumes_its_thread() {
    let app = spawn_app().await;
    let base_url = format!("openai_base_url=\"{}/v1\"", app.base);
    app.upstream.push(text_script(&["Hi", "!"]));
    let args = [
        "--experimental-json",
        "--config",
        &base_url,
        "--model",
        "up",
        "--sandbox",
        "workspace-write",
        "--skip-git-repo-check",
        "--config",
        "approval_policy=\"never\"",
    ];
    let first = exec(None, &args, "hello").await;
    assert!(first.status.success(), "{}", stderr(&first));
    let events = lines(&first);
    assert_eq!(events[0]["type"], "thread.started");
    assert_eq!(events[2]["item"]["text"], "Hi!");
    assert_eq!(events.last().unwrap()["type"], "turn.completed");
    assert!(stderr(&first).contains("--sandbox"), "noted on stderr");

    let thread = events[0]["thread_id"].as_str().unwrap();
    app.upstream.push(text_script(&["Again"]));
    let second = exec(
        Some(&format!("{}/v1", app.base)),
        &["--json", "resume", thread, "-"],
        "more",
    )
    .await;
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(lines(&second)[0]["thread_id"], thread);
    let history = app.upstream.requests().pop().unwrap()["messages"].to_string();
    assert!(history.contains("hello") && history.contains("Hi!") && history.contains("more"));
}

#[tokio::test]
async fn without_json_the_answer_goes_to_stdout_and_progress_to_stderr() {
    let app = spawn_app().await;
    app.upstream.push(text_script(&["The answer."]));
    let base = format!("{}/v1", app.base);
    let output = exec(Some(&base), &["--model", "up", "a question"], "").await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "The answer.\n");
    assert!(stderr(&output).contains("tokens used"));
}

#[tokio::test]
async fn an_image_file_is_sent_as_an_image_part() {
    let app = spawn_app().await;
    app.upstream.push(text_script(&["A dot."]));
    let image = std::env::temp_dir().join(format!("spool-exec-{}.png", std::process::id()));
    std::fs::write(&image, b"\x89PNG fake").unwrap();
    let base = format!("{}/v1", app.base);
    let path = image.to_string_lossy().into_owned();
    let output = exec(
        Some(&base),
        &["--json", "--model", "up", "--image", &path, "what is it?"],
        "",
    )
    .await;
    let _ = std::fs::remove_file(&image);
    assert!(output.status.success(), "{}", stderr(&output));
    let sent = app.upstream.requests().pop().unwrap()["messages"].to_string();
    assert!(
        sent.contains("data:image/png;base64,iVBORyBmYWtl"),
        "{sent}"
    );
    assert!(sent.contains("what is it?"));
}

#[tokio::test]
async fn a_failed_turn_exits_1() {
    let app = spawn_app().await;
    app.upstream
        .push(crate::upstream::Script::Error(500, "the model is down"));
    let base = format!("{}/v1", app.base);
    let output = exec(Some(&base), &["--json", "--model", "up", "x"], "").await;
    assert_eq!(output.status.code(), Some(1));
    let events = lines(&output);
    assert_eq!(events.last().unwrap()["type"], "turn.failed");
}

#[tokio::test]
async fn bad_usage_exits_2_and_an_unknown_thread_exits_1_with_a_clear_message() {
    let app = spawn_app().await;
    let base = format!("{}/v1", app.base);
    let malformed = exec(Some(&base), &["--json", "--config", "novalue", "x"], "").await;
    assert_eq!(malformed.status.code(), Some(2));
    assert!(stderr(&malformed).contains("malformed --config 'novalue'"));

    let schema = exec(
        Some(&base),
        &["--json", "--output-schema", "/nonexistent/schema.json", "x"],
        "",
    )
    .await;
    assert_eq!(schema.status.code(), Some(2));
    assert!(stderr(&schema).contains("cannot read --output-schema"));

    let unknown = exec(Some(&base), &["--json", "resume", "conv_nope", "x"], "").await;
    assert_eq!(unknown.status.code(), Some(1));
    let message = stderr(&unknown);
    assert!(
        message.contains("cannot resume thread 'conv_nope'") && message.contains("not found"),
        "{message}"
    );
    assert!(unknown.stdout.is_empty());
    // Nothing reached the model.
    assert!(app.upstream.requests().is_empty());
}
