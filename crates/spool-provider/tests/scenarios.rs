//! The fixture logs: scripted runs of the built-in agent, checked in.
//!
//! Each scenario runs [`ModelAgent`] against a scripted model and scripted
//! MCP servers, with deterministic ids and clocks, and drives the run's
//! lifecycle the way the runtime does. The log it writes must equal the
//! checked-in `tests/fixtures/logs/<name>.jsonl` byte for byte: a change to
//! what the agent logs shows up here first, and every dialect's golden
//! transcripts (spool-core's `tests/golden.rs`) are projected from these
//! files. After an intended change, rewrite them with
//! `SPOOL_BLESS_FIXTURES=1 cargo test -p spool-provider --test scenarios`
//! and review the diff and the golden snapshots.

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::{Value, json};
use spool_core::agent::{Agent, RunContext, RunOutcome};
use spool_core::clock::TickingClock;
use spool_core::emit::{MemorySink, RunEmitter};
use spool_core::event::Envelope;
use spool_core::ids::{ResponseId, SequentialIds};
use spool_core::item::McpToolInfo;
use spool_core::request::{CreateResponseBody, FunctionTool, RunRequest};
use spool_core::run::{InputTokensDetails, OutputTokensDetails, RunError, Usage};
use spool_core::tool::{McpServerSpec, Tool, ToolSet};
use spool_provider::model_agent::McpConnector;
use spool_provider::{
    DeltaStream, FinishReason, ModelAgent, ModelDelta, ModelProvider, ModelRequest, ProviderError,
};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// What the scripted model does next in one answer.
enum Step {
    Delta(ModelDelta),
    Fail(ProviderError),
    /// Stops answering (the stream stays open) and wakes the harness.
    Stall,
}

/// A model that gives scripted answers, one per call.
struct ScriptedModel {
    answers: Mutex<VecDeque<Vec<Step>>>,
    stalled: Arc<Notify>,
}

#[async_trait]
impl ModelProvider for ScriptedModel {
    async fn stream(&self, _request: ModelRequest) -> Result<DeltaStream, ProviderError> {
        let answer = self
            .answers
            .lock()
            .expect("script lock")
            .pop_front()
            .expect("the scenario scripts every model call");
        let stalled = self.stalled.clone();
        let stream = futures::stream::iter(answer).flat_map(move |step| match step {
            Step::Delta(d) => futures::stream::once(async { Ok(d) }).boxed(),
            Step::Fail(e) => futures::stream::once(async { Err(e) }).boxed(),
            Step::Stall => {
                stalled.notify_one();
                futures::stream::pending().boxed()
            }
        });
        Ok(stream.boxed())
    }
}

/// The `calc` MCP server: `add` works, `div` fails on a zero divisor.
struct ScriptedMcp;

#[async_trait]
impl McpConnector for ScriptedMcp {
    async fn list_tools(&self, _server: &McpServerSpec) -> Result<Vec<McpToolInfo>, String> {
        let schema =
            json!({"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}}});
        Ok(vec![
            McpToolInfo {
                name: "add".into(),
                description: Some("Adds two numbers.".into()),
                input_schema: schema.clone(),
                annotations: None,
            },
            McpToolInfo {
                name: "div".into(),
                description: Some("Divides a by b.".into()),
                input_schema: schema,
                annotations: None,
            },
        ])
    }

    async fn call_tool(
        &self,
        _server: &McpServerSpec,
        tool: &str,
        arguments: Value,
    ) -> Result<String, String> {
        let a = arguments["a"].as_f64().unwrap_or_default();
        let b = arguments["b"].as_f64().unwrap_or_default();
        match tool {
            "add" => Ok((a + b).to_string()),
            "div" if b == 0.0 => Err("division by zero".into()),
            "div" => Ok((a / b).to_string()),
            other => Err(format!("no tool {other}")),
        }
    }
}

/// A tool hosted in Rust that always fails.
struct Lookup;

#[async_trait]
impl Tool for Lookup {
    fn definition(&self) -> FunctionTool {
        FunctionTool {
            name: "lookup".into(),
            description: Some("Looks a word up.".into()),
            parameters: Some(json!({"type":"object","properties":{"word":{"type":"string"}}})),
            strict: None,
        }
    }

    async fn call(&self, _arguments: Value) -> Result<String, String> {
        Err("the dictionary is offline".into())
    }
}

fn text(t: &str) -> Step {
    Step::Delta(ModelDelta::Text(t.into()))
}

fn reasoning(t: &str) -> Step {
    Step::Delta(ModelDelta::Reasoning(t.into()))
}

fn call(index: u32, id: &str, name: &str, arguments: &str) -> Step {
    Step::Delta(ModelDelta::ToolCall {
        index,
        id: Some(id.into()),
        name: Some(name.into()),
        arguments: arguments.into(),
    })
}

fn usage(input: u64, output: u64) -> Step {
    Step::Delta(ModelDelta::Usage(Usage {
        input_tokens: input,
        input_tokens_details: InputTokensDetails::default(),
        output_tokens: output,
        output_tokens_details: OutputTokensDetails::default(),
        total_tokens: input + output,
    }))
}

fn finish(reason: FinishReason) -> Step {
    Step::Delta(ModelDelta::Finish(reason))
}

fn user(id: &str, text: &str) -> Value {
    json!({"type":"message","id":id,"role":"user","content":text})
}

const CALC: &str = "calc";

fn calc_server(require_approval: &str) -> Value {
    json!({"type":"mcp","server_label":CALC,"server_url":"https://calc.example/mcp",
           "require_approval":require_approval})
}

/// How the harness ends the run, beyond what the agent decides.
#[derive(Clone, Copy, PartialEq)]
enum Interrupt {
    None,
    /// Cancel once the model stalls.
    Cancel,
    /// The log's store fails once the model stalls: the run is ended the
    /// way the runtime ends a run whose log failed.
    StorageFailure,
}

struct Scenario {
    name: &'static str,
    body: Value,
    answers: Vec<Vec<Step>>,
    hosted: ToolSet,
    interrupt: Interrupt,
}

impl Scenario {
    fn new(name: &'static str, body: Value, answers: Vec<Vec<Step>>) -> Self {
        Self {
            name,
            body,
            answers,
            hosted: ToolSet::default(),
            interrupt: Interrupt::None,
        }
    }
}

const T0_MS: i64 = 1_767_225_600_000;

/// Runs a scenario the way the runtime runs a request and returns its log.
async fn run(s: Scenario) -> Vec<Envelope> {
    let body: CreateResponseBody = serde_json::from_value(s.body).expect("a valid request body");
    let request = RunRequest::parse(body, &SequentialIds::default()).expect("a valid request");
    let id = ResponseId::parse("resp_0001").expect("a valid id");
    let header = request.header(id.clone(), T0_MS / 1000);
    let stalled = Arc::new(Notify::new());
    let model = Arc::new(ScriptedModel {
        answers: Mutex::new(s.answers.into()),
        stalled: stalled.clone(),
    });
    let agent = ModelAgent::new(model)
        .with_tools(s.hosted)
        .with_mcp(Arc::new(ScriptedMcp))
        .with_clock(Arc::new(TickingClock::starting_at(T0_MS + 500)));
    let sink = MemorySink {
        clock_ms: T0_MS,
        ..MemorySink::default()
    };
    let events = sink.events.clone();
    let mut emitter = RunEmitter::new(Box::new(sink), Arc::new(SequentialIds::default()));
    let input = request.input.clone();
    emitter.created(header, input).await.expect("run.created");
    emitter.started().await.expect("run.started");
    let ctx = RunContext {
        response_id: id,
        request: Arc::new(request),
        history: Vec::new(),
    };
    let outcome = {
        let mut writer = emitter.writer();
        let run = agent.run(ctx, &mut writer);
        tokio::select! {
            biased;
            outcome = run => Some(outcome),
            () = stalled.notified(), if s.interrupt != Interrupt::None => None,
        }
    };
    match (outcome, s.interrupt) {
        (Some(Ok(RunOutcome::Completed)), _) => emitter.complete().await,
        (Some(Ok(RunOutcome::Incomplete { reason })), _) => emitter.incomplete(reason).await,
        (Some(Err(error)), _) => emitter.fail(error).await,
        (None, Interrupt::Cancel) => emitter.cancel().await,
        (None, _) => {
            emitter
                .fail(RunError::new(
                    "storage_error",
                    "An internal error occurred while storing the response. \
                     Subsequent retrieval is not guaranteed. Please retry the request.",
                ))
                .await
        }
    }
    .expect("the run ends");
    events.lock().expect("log lock").clone()
}

fn scenarios() -> Vec<Scenario> {
    use FinishReason::*;
    let weather = json!({"type":"function","name":"get_weather",
        "parameters":{"type":"object","properties":{"city":{"type":"string"}}}});
    vec![
        Scenario::new(
            "text",
            json!({"model":"m","input":[user("msg_in_1","Say hello")]}),
            vec![vec![
                text("Hello"),
                text(" world"),
                usage(5, 2),
                finish(Stop),
            ]],
        ),
        Scenario::new(
            "background_text",
            json!({"model":"m","input":[user("msg_in_1","Say hello")],"background":true,
                   "metadata":{"ticket":"42"}}),
            vec![vec![text("Hello"), usage(5, 1), finish(Stop)]],
        ),
        Scenario::new(
            "reasoning",
            json!({"model":"m","input":[user("msg_in_1","What is 6 x 7?")]}),
            vec![vec![
                reasoning("Six sevens"),
                reasoning(" are 42."),
                text("42"),
                usage(9, 6),
                finish(Stop),
            ]],
        ),
        Scenario::new(
            "client_tool_call",
            json!({"model":"m","input":[user("msg_in_1","Weather in Paris?")],"tools":[weather]}),
            vec![vec![
                call(0, "call_1", "get_weather", "{\"city\":"),
                call(0, "", "", "\"Paris\"}"),
                usage(20, 8),
                finish(ToolCalls),
            ]],
        ),
        Scenario::new(
            "client_tool_continued",
            json!({"model":"m","tools":[weather],"input":[
                user("msg_in_1","Weather in Paris?"),
                {"type":"function_call","id":"fc_in_1","call_id":"call_1","name":"get_weather",
                 "arguments":"{\"city\":\"Paris\"}","status":"completed"},
                {"type":"function_call_output","id":"fco_in_1","call_id":"call_1","output":"sunny"}]}),
            vec![vec![
                text("It is sunny in Paris."),
                usage(30, 6),
                finish(Stop),
            ]],
        ),
        Scenario::new(
            "mcp_tool_loop",
            json!({"model":"m","input":[user("msg_in_1","1+2 and 1/0?")],
                   "tools":[calc_server("never")]}),
            vec![
                vec![
                    text("Let me compute."),
                    call(0, "call_a", "add", "{\"a\":1,\"b\":2}"),
                    call(1, "call_d", "div", "{\"a\":1,\"b\":0}"),
                    usage(40, 20),
                    finish(ToolCalls),
                ],
                vec![
                    text("1+2 is 3; 1/0 is undefined."),
                    usage(60, 10),
                    finish(Stop),
                ],
            ],
        ),
        {
            let mut s = Scenario::new(
                "hosted_tool_failing",
                json!({"model":"m","input":[user("msg_in_1","Define 'spool'.")]}),
                vec![
                    vec![
                        call(0, "call_l", "lookup", "{\"word\":\"spool\"}"),
                        finish(ToolCalls),
                    ],
                    vec![text("I could not look it up."), finish(Stop)],
                ],
            );
            s.hosted = ToolSet::default().with(Arc::new(Lookup));
            s
        },
        Scenario::new(
            "mcp_approval_request",
            json!({"model":"m","input":[user("msg_in_1","1+2?")],"tools":[calc_server("always")]}),
            vec![vec![
                call(0, "call_a", "add", "{\"a\":1,\"b\":2}"),
                finish(ToolCalls),
            ]],
        ),
        Scenario::new(
            "mcp_approval_continued",
            json!({"model":"m","tools":[calc_server("always")],"input":[
                user("msg_in_1","1+2?"),
                {"type":"mcp_list_tools","id":"mcpl_in_1","server_label":CALC,"tools":[
                    {"name":"add","input_schema":{"type":"object"}},
                    {"name":"div","input_schema":{"type":"object"}}]},
                {"type":"mcp_approval_request","id":"mcpr_in_1","server_label":CALC,"name":"add",
                 "arguments":"{\"a\":1,\"b\":2}"},
                {"type":"mcp_approval_response","id":"mcpa_in_1","approval_request_id":"mcpr_in_1",
                 "approve":true}]}),
            vec![vec![text("It is 3."), usage(50, 4), finish(Stop)]],
        ),
        Scenario::new(
            "max_infer_iters",
            json!({"model":"m","input":[user("msg_in_1","Keep adding.")],
                   "tools":[calc_server("never")],"max_infer_iters":2}),
            vec![
                vec![
                    call(0, "call_1", "add", "{\"a\":1,\"b\":1}"),
                    finish(ToolCalls),
                ],
                vec![
                    call(0, "call_2", "add", "{\"a\":2,\"b\":1}"),
                    finish(ToolCalls),
                ],
            ],
        ),
        Scenario::new(
            "max_output_tokens",
            json!({"model":"m","input":[user("msg_in_1","Tell a long story.")],
                   "max_output_tokens":16}),
            vec![vec![text("Once upon a"), usage(6, 16), finish(Length)]],
        ),
        Scenario::new(
            "upstream_failure",
            json!({"model":"m","input":[user("msg_in_1","Say hello")]}),
            vec![vec![
                text("Hel"),
                Step::Fail(ProviderError::Disconnected("connection reset".into())),
            ]],
        ),
        {
            let mut s = Scenario::new(
                "cancelled",
                json!({"model":"m","input":[user("msg_in_1","Say hello")],"background":true}),
                vec![vec![text("Hel"), Step::Stall]],
            );
            s.interrupt = Interrupt::Cancel;
            s
        },
        {
            let mut s = Scenario::new(
                "storage_failure",
                json!({"model":"m","input":[user("msg_in_1","Say hello")],"background":true}),
                vec![vec![text("Hel"), Step::Stall]],
            );
            s.interrupt = Interrupt::StorageFailure;
            s
        },
    ]
}

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/logs")
}

fn to_jsonl(log: &[Envelope]) -> String {
    let mut out = String::new();
    for envelope in log {
        out.push_str(&serde_json::to_string(envelope).expect("an envelope serializes"));
        out.push('\n');
    }
    out
}

#[tokio::test]
async fn each_scenario_writes_its_checked_in_fixture_log() {
    let bless = std::env::var_os("SPOOL_BLESS_FIXTURES").is_some();
    let dir = fixtures_dir();
    let mut mismatched = Vec::new();
    for scenario in scenarios() {
        let name = scenario.name;
        let log = to_jsonl(&run(scenario).await);
        let path = dir.join(format!("{name}.jsonl"));
        if bless {
            std::fs::create_dir_all(&dir).expect("fixture dir");
            std::fs::write(&path, &log).expect("fixture written");
            continue;
        }
        let stored = std::fs::read_to_string(&path).unwrap_or_default();
        if stored != log {
            eprintln!("--- {name}: the scenario now writes\n{log}");
            mismatched.push(name);
        }
    }
    assert!(
        mismatched.is_empty(),
        "these scenarios no longer write their fixture logs: {mismatched:?} \
         (rerun with SPOOL_BLESS_FIXTURES=1 after an intended change)"
    );
}
