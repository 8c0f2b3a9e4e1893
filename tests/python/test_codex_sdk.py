"""The Codex Python SDK (acodex 0.117) driving spool unmodified: `spool exec`
stands in for the codex binary (``codex_path_override``), and each turn runs
on a spool thread against the scripted upstream."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from acodex import Codex
from acodex.exceptions import CodexError
from acodex.types.events import (
    ItemCompletedEvent,
    ItemStartedEvent,
    ThreadStartedEvent,
    TurnCompletedEvent,
    TurnFailedEvent,
    TurnStartedEvent,
)
from acodex.types.items import AgentMessageItem, McpToolCallItem

from conftest import DEFAULT_SPOOL_BIN, error_script, text_script, tool_call_script
from test_openai_sdk import UP_MODEL, marker


@pytest.fixture(scope="session")
def codex(spool) -> Codex:
    binary = os.environ.get("SPOOL_BIN", str(DEFAULT_SPOOL_BIN))
    return Codex(codex_path_override=str(Path(binary).resolve()), base_url=spool, api_key="test")


def test_run_returns_the_turn_as_the_sdk_reduces_it(codex, upstream):
    mk = marker()
    upstream.push(text_script(["Hello", " from spool"], match=mk,
                              usage={"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}))
    thread = codex.start_thread(model=UP_MODEL, sandbox_mode="read-only", skip_git_repo_check=True)
    turn = thread.run(f"hi {mk}")
    assert turn.final_response == "Hello from spool"
    assert [type(i) for i in turn.items] == [AgentMessageItem]
    assert turn.items[0].id == "item_0"
    assert (turn.usage.input_tokens, turn.usage.cached_input_tokens, turn.usage.output_tokens) == (9, 0, 3)
    assert thread.id and thread.id.startswith("conv_")


def test_run_streamed_yields_thread_events_in_order(codex, upstream):
    mk = marker()
    upstream.push(text_script(["streamed"], match=mk))
    thread = codex.start_thread(model=UP_MODEL)
    streamed = thread.run_streamed(f"stream {mk}")
    events = list(streamed.events)
    assert [type(e) for e in events] == [ThreadStartedEvent, TurnStartedEvent, ItemCompletedEvent,
                                         TurnCompletedEvent]
    assert events[0].thread_id == thread.id
    assert streamed.result.final_response == "streamed"


def test_a_second_turn_continues_the_same_thread(codex, upstream):
    mk = marker()
    upstream.push(text_script(["first answer"], match=mk))
    upstream.push(text_script(["second answer"], match=mk))
    thread = codex.start_thread(model=UP_MODEL)
    thread.run(f"first {mk}")
    first_id = thread.id
    turn = thread.run(f"second {mk}")
    assert thread.id == first_id
    assert turn.final_response == "second answer"
    history = str(upstream.chat_requests(mk)[-1].body["messages"])
    assert "first answer" in history and "second" in history


def test_resume_thread_continues_a_thread_across_processes(codex, upstream, raw):
    mk = marker()
    upstream.push(text_script(["remembered"], match=mk))
    upstream.push(text_script(["still here"], match=mk))
    first = codex.start_thread(model=UP_MODEL)
    first.run(f"remember {mk}")
    resumed = codex.resume_thread(first.id)
    turn = resumed.run(f"and now? {mk}")
    assert resumed.id == first.id
    assert turn.final_response == "still here"
    assert "remembered" in str(upstream.chat_requests(mk)[-1].body["messages"])
    turns = raw.get(f"/threads/{first.id}/turns").json()["data"]
    assert [t["final_response"] for t in turns] == ["remembered", "still here"]


def test_a_named_agents_mcp_tool_shows_as_an_mcp_tool_call(codex, upstream):
    mk = marker()
    upstream.push(tool_call_script("call_a", "add", ['{"a": 40, "b": 2}'], match=mk))
    upstream.push(text_script(["It is 42."], match=mk))
    thread = codex.start_thread(model="agent:mcp-stdio")
    streamed = thread.run_streamed(f"add {mk}")
    events = list(streamed.events)
    started = [e.item for e in events if isinstance(e, ItemStartedEvent)]
    calls = [e.item for e in events if isinstance(e, ItemCompletedEvent) and isinstance(e.item, McpToolCallItem)]
    assert len(started) == 1 and started[0].status == "in_progress"
    (call,) = calls
    assert (call.server, call.tool, call.arguments, call.status) == ("local", "add", {"a": 40, "b": 2},
                                                                     "completed")
    assert call.id == started[0].id
    assert call.result.content == [{"type": "text", "text": "42"}]
    assert call.error is None
    assert streamed.result.final_response == "It is 42."


def test_a_structured_turn_returns_json_text(codex, upstream):
    mk = marker()
    upstream.push(text_script(['{"answer": ', '42}'], match=mk))
    thread = codex.start_thread(model=UP_MODEL)
    schema = {"type": "object", "properties": {"answer": {"type": "number"}}, "required": ["answer"],
              "additionalProperties": False}
    turn = thread.run(f"structured {mk}", output_schema=schema)
    assert turn.structured_response == {"answer": 42}
    sent = upstream.chat_requests(mk)[-1].body
    assert sent["response_format"]["json_schema"]["name"] == "codex_output_schema"


def test_an_upstream_failure_raises_on_turn_failed(codex, upstream):
    mk = marker()
    upstream.push(error_script(400, "the model refused", match=mk))
    thread = codex.start_thread(model=UP_MODEL)
    streamed = thread.run_streamed(f"fail {mk}")
    seen = []
    with pytest.raises(CodexError) as e:
        for event in streamed.events:
            seen.append(event)
    assert isinstance(seen[-1], TurnFailedEvent)
    assert "the model refused" in seen[-1].error.message
    assert "turn failed" in str(e.value)
    upstream.push(error_script(400, "the model refused again", match=mk))
    with pytest.raises(CodexError):
        thread.run(f"fail again {mk}")


def test_resuming_an_unknown_thread_fails_clearly(codex, upstream):
    with pytest.raises(CodexError) as e:
        codex.resume_thread("conv_doesnotexist").run("hello?")
    assert "cannot resume thread 'conv_doesnotexist'" in str(e.value)
    assert "not found" in str(e.value)
    assert upstream.chat_requests() == []
