//! Golden transcripts: every fixture log projected into every dialect.
//!
//! The logs are in `tests/fixtures/logs/` at the workspace root (written by
//! spool-provider's scenario harness); each projection is snapshotted with
//! insta under `tests/snapshots/`. The legacy logs, written before the
//! canonical events were made dialect-neutral, project against the same
//! snapshots: a stored log replays byte for byte across the upgrade.

use spool_core::event::{Envelope, Event};
use spool_core::ids::ResponseId;
use spool_core::projection::roboto::ThreadFold;
use spool_core::projection::{
    CodexProjection, Dialect, LlamaStackProjection, Projection, ResponsesProjection,
};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/logs")
}

/// The fixture logs in `dir`, by name, in name order.
fn logs(dir: &Path) -> Vec<(String, Vec<Envelope>)> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("the fixture directory exists")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .expect("a UTF-8 file name")
                .to_owned();
            let text = std::fs::read_to_string(&path).expect("a readable fixture");
            let log = text
                .lines()
                .map(|line| serde_json::from_str(line).expect("an envelope"))
                .collect();
            (name, log)
        })
        .collect()
}

/// The Responses stream of a log, framed as server-sent events.
fn responses(log: &[Envelope]) -> String {
    let mut projection = ResponsesProjection::new();
    let mut out = String::new();
    for envelope in log {
        projection
            .apply(envelope, |wire| {
                out.push_str("event: ");
                out.push_str(wire.event_type);
                out.push_str("\ndata: ");
                out.push_str(&wire.json);
                out.push_str("\n\n");
            })
            .expect("a fixture log projects");
    }
    out
}

#[test]
fn fixture_logs_project_to_their_responses_transcripts() {
    let current = logs(&fixtures());
    assert!(current.len() >= 14, "the fixture logs are missing");
    for (name, log) in &current {
        insta::assert_snapshot!(format!("responses__{name}"), responses(log));
    }
}

#[test]
fn legacy_logs_replay_byte_for_byte() {
    let legacy = logs(&fixtures().join("legacy"));
    assert!(!legacy.is_empty(), "the legacy fixture logs are missing");
    for (name, log) in &legacy {
        insta::assert_snapshot!(format!("responses__{name}"), responses(log));
    }
}

/// The Codex stream of a log: one JSON line per thread event, as
/// `codex exec --json` prints them.
fn codex(log: &[Envelope]) -> String {
    let mut projection = CodexProjection::new();
    let mut out = String::new();
    for envelope in log {
        Projection::apply(&mut projection, envelope, &mut |frame| {
            out.push_str(&frame.data);
            out.push('\n');
        })
        .expect("a fixture log projects");
    }
    out
}

/// A log in a data-only dialect, framed as server-sent events with the
/// `id:` line that names each frame's position.
fn data_only(dialect: Dialect, log: &[Envelope]) -> String {
    let mut projection = dialect.projection();
    let mut out = String::new();
    for envelope in log {
        projection
            .apply(envelope, &mut |frame| {
                assert!(
                    frame.event.is_none(),
                    "{} frames are data only",
                    dialect.name()
                );
                out.push_str(&format!("id: {}\ndata: {}\n\n", frame.index, frame.data));
            })
            .expect("a fixture log projects");
    }
    out
}

#[test]
fn fixture_logs_project_to_their_codex_transcripts() {
    let current = logs(&fixtures());
    assert!(current.len() >= 14, "the fixture logs are missing");
    for (name, log) in &current {
        insta::assert_snapshot!(format!("codex__{name}"), codex(log));
    }
}

/// Legacy logs have snapshots of their own in this dialect: an MCP call in
/// them was opened before its arguments streamed in, so its `item.started`
/// shows no arguments yet.
#[test]
fn legacy_logs_project_to_codex() {
    for (name, log) in &logs(&fixtures().join("legacy")) {
        insta::assert_snapshot!(format!("codex__legacy__{name}"), codex(log));
    }
}

#[test]
fn fixture_logs_project_to_their_chat_transcripts() {
    for (name, log) in &logs(&fixtures()) {
        insta::assert_snapshot!(format!("chat__{name}"), data_only(Dialect::Chat, log));
    }
}

#[test]
fn fixture_logs_project_to_their_wxo_transcripts() {
    for (name, log) in &logs(&fixtures()) {
        insta::assert_snapshot!(format!("wxo__{name}"), data_only(Dialect::Wxo, log));
    }
}

/// Legacy logs replay in the chat dialect exactly as the logs written
/// today do.
#[test]
fn legacy_logs_project_to_the_same_chat_transcripts() {
    let legacy = logs(&fixtures().join("legacy"));
    assert!(!legacy.is_empty(), "the legacy fixture logs are missing");
    for (name, log) in &legacy {
        insta::assert_snapshot!(format!("chat__{name}"), data_only(Dialect::Chat, log));
    }
}

/// Legacy logs have wxo snapshots of their own: they did not keep the
/// model's call ids, so a tool call and its response are matched by the
/// call's item id there.
#[test]
fn legacy_logs_project_to_wxo() {
    for (name, log) in &logs(&fixtures().join("legacy")) {
        insta::assert_snapshot!(format!("wxo__legacy__{name}"), data_only(Dialect::Wxo, log));
    }
}

/// A log in the agent-session dialect, framed as server-sent events with
/// their `id:` and `event:` lines.
fn agent_session(log: &[Envelope]) -> String {
    let mut projection = Dialect::AgentSession.projection();
    let mut out = String::new();
    for envelope in log {
        projection
            .apply(envelope, &mut |frame| {
                let name = frame.event.expect("agent-session frames are named");
                out.push_str(&format!(
                    "id: {}\nevent: {name}\ndata: {}\n\n",
                    frame.index, frame.data
                ));
            })
            .expect("a fixture log projects");
    }
    out
}

#[test]
fn fixture_logs_project_to_their_agent_session_transcripts() {
    for (name, log) in &logs(&fixtures()) {
        insta::assert_snapshot!(format!("agent_session__{name}"), agent_session(log));
    }
}

/// A log as the roboto thread deltas a client polling after every event
/// receives: one JSON line per poll that had news (status included).
fn roboto_deltas(log: &[Envelope]) -> String {
    let mut fold = ThreadFold::new();
    let mut out = String::new();
    for envelope in log {
        let before = fold.snapshot();
        fold.apply(envelope).expect("a fixture log folds");
        let delta = fold.delta_since(&before);
        if !delta.is_empty() || before != fold.snapshot() {
            out.push_str(&serde_json::to_string(&delta).expect("a delta serializes"));
            out.push('\n');
        }
    }
    out
}

#[test]
fn fixture_logs_project_to_their_roboto_thread_deltas() {
    for (name, log) in &logs(&fixtures()) {
        insta::assert_snapshot!(format!("roboto__{name}"), roboto_deltas(log));
    }
}

/// The client tool exchange across its two runs reads as one thread: the
/// continuation's input is the roboto message of results, and every point
/// of the thread's logs gives exactly the rest of the thread.
#[test]
fn a_delta_from_every_point_of_a_thread_gives_exactly_the_rest() {
    let all = logs(&fixtures());
    for (name, _) in &all {
        let thread: Vec<Envelope> = all
            .iter()
            .filter(|(n, _)| {
                n == name || (name == "client_tool_call" && n == "client_tool_continued")
            })
            .flat_map(|(_, log)| log.clone())
            .collect();
        let mut whole = ThreadFold::new();
        for envelope in &thread {
            whole.apply(envelope).expect("a fixture thread folds");
        }
        let end: Vec<_> = whole.messages().iter().map(|m| m.coalesced()).collect();
        for point in 0..=thread.len() {
            let mut fold = ThreadFold::new();
            for envelope in &thread[..point] {
                fold.apply(envelope).expect("a fixture thread folds");
            }
            let mut held: Vec<_> = fold.messages().to_vec();
            let before = fold.snapshot();
            for envelope in &thread[point..] {
                fold.apply(envelope).expect("a fixture thread folds");
            }
            let delta = fold.delta_since(&before);
            for (idx, message) in delta.messages_by_idx {
                if idx < held.len() {
                    held[idx].status = message.status;
                    held[idx].content.extend(message.content);
                } else {
                    assert_eq!(idx, held.len(), "{name}@{point}: messages arrive in order");
                    held.push(message);
                }
            }
            let held: Vec<_> = held.iter().map(|m| m.coalesced()).collect();
            assert_eq!(held, end, "{name}@{point}");
            assert_eq!(delta.status, whole.status(), "{name}@{point}");
        }
    }
}

#[test]
fn fixture_logs_project_to_their_llama_stack_transcripts() {
    for (name, log) in &logs(&fixtures()) {
        insta::assert_snapshot!(
            format!("llama_stack__{name}"),
            data_only(Dialect::LlamaStack, log)
        );
    }
}

/// Legacy logs have no steps: only the turn's start and its end, whose
/// output message is the run's answer.
#[test]
fn legacy_logs_project_to_llama_stack() {
    for (name, log) in &logs(&fixtures().join("legacy")) {
        insta::assert_snapshot!(
            format!("llama_stack__legacy__{name}"),
            data_only(Dialect::LlamaStack, log)
        );
    }
}

/// A turn that waited for a client tool and was resumed: the resuming
/// run's stream opens by closing the client tools' step with the caller's
/// results and ends with the whole turn.
#[test]
fn a_resumed_turn_projects_as_one_turn() {
    use spool_core::projection::llama_stack::session_turns;
    let all = logs(&fixtures());
    let log = |name: &str| {
        all.iter()
            .find(|(n, _)| n == name)
            .map(|(_, log)| log.clone())
            .expect("the fixture exists")
    };
    let paused = log("client_tool_call");
    let mut resumed = log("client_tool_continued");
    // The fixture continues with previous_response_id; as a llama-stack
    // resume its header names the turn it continues.
    if let Event::RunCreated(created) = &mut resumed[0].event {
        created.run.continues_turn = Some(ResponseId::parse("resp_0001").expect("an id"));
    }
    let turns = session_turns([paused.as_slice()]).expect("the paused run folds");
    let mut projection = LlamaStackProjection::continuing(turns[0].clone());
    let mut out = String::new();
    for envelope in &resumed {
        projection
            .apply(envelope, &mut |frame| {
                out.push_str(&format!("id: {}\ndata: {}\n\n", frame.index, frame.data));
            })
            .expect("the resuming run projects");
    }
    insta::assert_snapshot!("llama_stack__resumed_turn", out);
    let turns = session_turns([paused.as_slice(), resumed.as_slice()]).expect("the session folds");
    assert_eq!(turns.len(), 1, "a pause and its resume are one turn");
}
