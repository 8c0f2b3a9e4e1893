//! `spool exec`: the command line the Codex SDKs give the `codex` binary,
//! run as a client of a spool server.
//!
//! acodex (`Codex(codex_path_override=…)`) and `@openai/codex-sdk`
//! (`new Codex({codexPathOverride})`) spawn
//! `exec --experimental-json [--config KEY=VALUE]… [--model M] … [resume
//! THREAD_ID] [--image FILE]…` with the prompt on standard input and read
//! thread events, one JSON line each, from standard output. This command
//! accepts that command line, runs the turn on a spool thread
//! (`POST {base}/threads/{id}/turns`, NDJSON), and prints the events as
//! they come: with `--json` the lines as the server sends them, else a
//! readable transcript (answers on stdout, progress on stderr).
//!
//! The server is `--config openai_base_url="URL"` (a TOML value, as the
//! SDKs write it), else `SPOOL_URL`, else the local default; the key is
//! `CODEX_API_KEY` or `SPOOL_API_KEY`. Options that only make sense for a
//! local coding agent (sandbox, working directories, approval policy, web
//! search, reasoning effort) are accepted and noted on stderr. The exit
//! status is 0 when the turn completed, 1 when it failed (or the server
//! could not be reached or refused it), 2 on bad usage.

use base64::Engine;
use clap::Args;
use futures::StreamExt;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The API base when neither `openai_base_url` nor `SPOOL_URL` names one.
pub const DEFAULT_BASE_URL: &str = "http://127.0.0.1:8321/v1";

/// `spool exec`'s flags, as the Codex SDKs pass them to `codex exec`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Print thread events as JSON lines on stdout.
    #[arg(long, alias = "experimental-json")]
    json: bool,
    /// A configuration override, `KEY=VALUE` with a TOML value.
    #[arg(short = 'c', long = "config", value_name = "KEY=VALUE")]
    config: Vec<String>,
    /// The model (or `agent:NAME`) the turn runs.
    #[arg(short = 'm', long)]
    model: Option<String>,
    /// Accepted for compatibility: spool's tools run on the server.
    #[arg(short = 's', long, value_name = "MODE")]
    sandbox: Option<String>,
    /// Accepted for compatibility: spool's tools run on the server.
    #[arg(short = 'C', long = "cd", value_name = "DIR")]
    cd: Option<PathBuf>,
    /// Accepted for compatibility: spool's tools run on the server.
    #[arg(long = "add-dir", value_name = "DIR")]
    add_dir: Vec<PathBuf>,
    /// Accepted for compatibility: spool never needs a git repository.
    #[arg(long)]
    skip_git_repo_check: bool,
    /// A JSON schema file the final answer must follow.
    #[arg(long, value_name = "FILE")]
    output_schema: Option<PathBuf>,
    /// An image file sent with the prompt.
    #[arg(short = 'i', long = "image", value_name = "FILE")]
    image: Vec<PathBuf>,
    /// Accepted for compatibility (newer Codex SDKs pass it).
    #[arg(long, value_name = "SOURCE", hide = true)]
    thread_source: Option<String>,
    /// Accepted for compatibility (newer Codex SDKs pass it).
    #[arg(long, value_name = "PROGRAM", hide = true)]
    cyber_access_program: Option<String>,
    /// `[resume THREAD_ID] [PROMPT | -]`: the prompt is read from standard
    /// input when it is absent or `-`.
    #[arg(value_name = "[resume THREAD_ID] [PROMPT]")]
    words: Vec<String>,
}

/// Why `spool exec` stopped short of a turn's end.
#[derive(Debug)]
enum Stop {
    /// The command line or a file it names is unusable (exit 2).
    Usage(String),
    /// The server could not be reached or refused the turn (exit 1).
    Failed(String),
}

/// What the command line asks for, checked.
#[derive(Debug)]
struct Plan {
    base_url: String,
    api_key: Option<String>,
    model: Option<String>,
    thread: Option<String>,
    prompt: String,
    images: Vec<Value>,
    output_schema: Option<Value>,
    json: bool,
}

/// Runs `spool exec` to its exit status.
pub async fn run(args: ExecArgs) -> ExitCode {
    let result = match plan(args) {
        Ok(plan) => execute(plan).await,
        Err(stop) => Err(stop),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(Stop::Usage(message)) => {
            eprintln!("spool exec: {message}");
            ExitCode::from(2)
        }
        Err(Stop::Failed(message)) => {
            eprintln!("spool exec: {message}");
            ExitCode::from(1)
        }
    }
}

fn note(message: &str) {
    eprintln!("spool exec: note: {message}");
}

/// Checks the command line and reads what it names.
fn plan(args: ExecArgs) -> Result<Plan, Stop> {
    let mut base_url = None;
    let mut config_model = None;
    for raw in &args.config {
        let (key, value) = parse_override(raw)?;
        match (key.as_str(), value) {
            ("openai_base_url", toml::Value::String(url)) => base_url = Some(url),
            ("openai_base_url", _) => {
                return Err(Stop::Usage(format!(
                    "--config {raw}: openai_base_url must be a string"
                )));
            }
            ("model", toml::Value::String(model)) => config_model = Some(model),
            (key, _) => note(&format!("--config {key} has no meaning for spool; ignored")),
        }
    }
    if let Some(mode) = &args.sandbox {
        note(&format!(
            "--sandbox {mode} ignored: spool's tools run on the server"
        ));
    }
    if args.cd.is_some() || !args.add_dir.is_empty() {
        note("--cd and --add-dir ignored: spool's tools run on the server");
    }
    let (thread, prompt) = match args.words.as_slice() {
        [resume, thread, rest @ ..] if resume == "resume" => (Some(thread.clone()), rest),
        [resume] if resume == "resume" => {
            return Err(Stop::Usage("resume needs a THREAD_ID".into()));
        }
        rest => (None, rest),
    };
    let prompt = match prompt {
        [] => read_stdin()?,
        [dash] if dash == "-" => read_stdin()?,
        [prompt] => prompt.clone(),
        more => {
            return Err(Stop::Usage(format!(
                "expected one PROMPT, got {} words; quote the prompt",
                more.len()
            )));
        }
    };
    if prompt.trim().is_empty() && args.image.is_empty() {
        return Err(Stop::Usage(
            "no prompt: give one as an argument or on standard input".into(),
        ));
    }
    let output_schema = args.output_schema.as_deref().map(read_schema).transpose()?;
    let images = args
        .image
        .iter()
        .map(|path| read_image(path))
        .collect::<Result<_, _>>()?;
    let base_url = base_url
        .or_else(|| std::env::var("SPOOL_URL").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
    let api_key = ["CODEX_API_KEY", "SPOOL_API_KEY"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|k| !k.is_empty()));
    Ok(Plan {
        base_url: base_url.trim_end_matches('/').to_owned(),
        api_key,
        model: args.model.or(config_model),
        thread,
        prompt,
        images,
        output_schema,
        json: args.json,
    })
}

/// Splits `KEY=VALUE` and reads VALUE as TOML; a value that is not TOML is
/// taken as a plain string, as codex does.
fn parse_override(raw: &str) -> Result<(String, toml::Value), Stop> {
    let Some((key, value)) = raw.split_once('=') else {
        return Err(Stop::Usage(format!(
            "malformed --config '{raw}': expected KEY=VALUE"
        )));
    };
    let key = key.trim();
    let valid_key = !key.is_empty()
        && key.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
    if !valid_key {
        return Err(Stop::Usage(format!(
            "malformed --config '{raw}': '{key}' is not a configuration key"
        )));
    }
    let value = value.trim();
    let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut table| table.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()));
    Ok((key.to_owned(), parsed))
}

fn read_stdin() -> Result<String, Stop> {
    let mut prompt = String::new();
    std::io::stdin()
        .read_to_string(&mut prompt)
        .map_err(|e| Stop::Usage(format!("cannot read the prompt from standard input: {e}")))?;
    Ok(prompt)
}

fn read_schema(path: &Path) -> Result<Value, Stop> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Stop::Usage(format!(
            "cannot read --output-schema {}: {e}",
            path.display()
        ))
    })?;
    let schema: Value = serde_json::from_str(&text).map_err(|e| {
        Stop::Usage(format!(
            "--output-schema {} is not JSON: {e}",
            path.display()
        ))
    })?;
    if !schema.is_object() {
        return Err(Stop::Usage(format!(
            "--output-schema {} must hold a JSON schema object",
            path.display()
        )));
    }
    Ok(schema)
}

/// An image file as an input part with a data URL.
fn read_image(path: &Path) -> Result<Value, Stop> {
    let bytes = std::fs::read(path)
        .map_err(|e| Stop::Usage(format!("cannot read --image {}: {e}", path.display())))?;
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let mime = match extension.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        _ => {
            return Err(Stop::Usage(format!(
                "--image {}: expected a .png, .jpg, .gif or .webp file",
                path.display()
            )));
        }
    };
    let data = base64::engine::general_purpose::STANDARD.encode(bytes);
    Ok(json!({"type": "image", "image_url": format!("data:{mime};base64,{data}")}))
}

/// Runs the turn; `Ok(true)` if it completed, `Ok(false)` if it failed.
async fn execute(plan: Plan) -> Result<bool, Stop> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .build()
        .map_err(|e| Stop::Failed(format!("cannot build an HTTP client: {e}")))?;
    let thread = match &plan.thread {
        Some(thread) => thread.clone(),
        None => {
            let body = json!({"model": plan.model});
            let created = send(
                &plan,
                http.post(format!("{}/threads", plan.base_url)),
                &body,
            )
            .await?;
            let thread: Value = created
                .json()
                .await
                .map_err(|e| Stop::Failed(format!("the server's thread is not JSON: {e}")))?;
            thread["id"]
                .as_str()
                .ok_or_else(|| Stop::Failed("the server's thread has no id".into()))?
                .to_owned()
        }
    };
    let input = if plan.images.is_empty() {
        Value::String(plan.prompt.clone())
    } else {
        let mut parts = vec![json!({"type": "text", "text": plan.prompt})];
        parts.extend(plan.images.iter().cloned());
        Value::Array(parts)
    };
    let mut body = json!({"input": input});
    if let Some(model) = &plan.model {
        body["model"] = json!(model);
    }
    if let Some(schema) = &plan.output_schema {
        body["output_schema"] = schema.clone();
    }
    let url = format!("{}/threads/{thread}/turns", plan.base_url);
    let request = http.post(url).header("accept", "application/x-ndjson");
    let response = send(&plan, request, &body)
        .await
        .map_err(|stop| match stop {
            Stop::Failed(message) if plan.thread.is_some() => {
                Stop::Failed(format!("cannot resume thread '{thread}': {message}"))
            }
            other => other,
        })?;
    follow(response, plan.json).await
}

/// Sends `body`, turning a refusal into its OpenAI error message.
async fn send(
    plan: &Plan,
    mut request: reqwest::RequestBuilder,
    body: &Value,
) -> Result<reqwest::Response, Stop> {
    if let Some(key) = &plan.api_key {
        request = request.bearer_auth(key);
    }
    let response = request
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| Stop::Failed(format!("cannot reach spool at {}: {e}", plan.base_url)))?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let text = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or(text);
    Err(Stop::Failed(format!(
        "the server answered {status}: {message}"
    )))
}

/// Prints the turn's events as they come; whether the turn completed.
async fn follow(response: reqwest::Response, json: bool) -> Result<bool, Stop> {
    let mut bytes = response.bytes_stream();
    let mut buffer = Vec::new();
    let mut outcome = None;
    let stdout = std::io::stdout();
    while let Some(chunk) = bytes.next().await {
        let chunk = chunk.map_err(|e| Stop::Failed(format!("the stream broke: {e}")))?;
        buffer.extend_from_slice(&chunk);
        while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line[..end]).into_owned();
            if line.trim().is_empty() {
                continue;
            }
            let event: Value = serde_json::from_str(&line).map_err(|e| {
                Stop::Failed(format!("the server sent a line that is not JSON: {e}"))
            })?;
            if json {
                let mut out = stdout.lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            } else {
                transcript(&event);
            }
            match event["type"].as_str() {
                Some("turn.completed") => outcome = Some(true),
                Some("turn.failed") => {
                    // The SDKs raise with the process's stderr when it
                    // exits 1: say why there too.
                    if json {
                        eprintln!(
                            "spool exec: turn failed: {}",
                            text(&event["error"]["message"])
                        );
                    }
                    outcome = Some(false);
                }
                _ => {}
            }
        }
    }
    outcome.ok_or_else(|| Stop::Failed("the stream ended before the turn did".into()))
}

/// The readable form of one event: answers on stdout, the rest on stderr.
fn transcript(event: &Value) {
    let item = &event["item"];
    match (event["type"].as_str(), item["type"].as_str()) {
        (Some("thread.started"), _) => eprintln!("thread {}", text(&event["thread_id"])),
        (Some("item.completed"), Some("agent_message")) => {
            // A reader that closed stdout early is not an error of the turn.
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", text(&item["text"]));
            let _ = out.flush();
        }
        (Some("item.completed"), Some("reasoning")) => {
            eprintln!("thinking: {}", text(&item["text"]))
        }
        (Some("item.completed"), Some("error")) => eprintln!("warning: {}", text(&item["message"])),
        (Some("item.started"), Some("mcp_tool_call")) => eprintln!(
            "tool {}.{}({}) …",
            text(&item["server"]),
            text(&item["tool"]),
            item["arguments"]
        ),
        (Some("item.completed"), Some("mcp_tool_call")) => {
            let detail = match item["status"].as_str() {
                Some("failed") => format!("failed: {}", text(&item["error"]["message"])),
                _ => "completed".to_owned(),
            };
            eprintln!(
                "tool {}.{} {detail}",
                text(&item["server"]),
                text(&item["tool"])
            );
        }
        (Some("turn.completed"), _) => {
            let usage = &event["usage"];
            eprintln!(
                "tokens used: {} in ({} cached), {} out",
                usage["input_tokens"], usage["cached_input_tokens"], usage["output_tokens"]
            );
        }
        (Some("turn.failed"), _) => {
            eprintln!("turn failed: {}", text(&event["error"]["message"]));
        }
        (Some("error"), _) => eprintln!("error: {}", text(&event["message"])),
        _ => {}
    }
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_override_value_is_toml_or_else_a_plain_string() {
        let (key, value) = parse_override(r#"openai_base_url="http://h:1/v1""#).unwrap();
        assert_eq!(key, "openai_base_url");
        assert_eq!(value, toml::Value::String("http://h:1/v1".into()));
        let (_, value) = parse_override("sandbox_workspace_write.network_access=true").unwrap();
        assert_eq!(value, toml::Value::Boolean(true));
        let (_, value) = parse_override("model=gpt-5").unwrap();
        assert_eq!(value, toml::Value::String("gpt-5".into()));
    }

    #[test]
    fn a_malformed_override_is_bad_usage() {
        for raw in ["novalue", "=x", "a..b=1", "a b=1"] {
            assert!(
                matches!(parse_override(raw), Err(Stop::Usage(_))),
                "{raw} accepted"
            );
        }
    }
}
