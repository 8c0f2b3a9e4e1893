"""POST /v1/chat/completions through the official `openai` SDK, every chunk
also validated by seed 001's own pydantic models (copied below from Flexo's
src/api/sse_models.py), and the Orchestrate (wxo) stream read raw."""

from __future__ import annotations

import json
import urllib.request
from enum import Enum
from typing import Any, Dict, List, Optional

import openai
import pytest
from pydantic import BaseModel

from conftest import parse_sse, text_script, tool_call_script
from test_openai_sdk import UP_MODEL, marker


# --- seed 001: Flexo's SSE models, as published ---------------------------------------

class AgentStatus(str, Enum):
    STARTING = "starting_generation"
    TOOL_DETECTED = "tool_call_detected"
    TOOLS_EXECUTED = "tools_executed"
    MAX_DEPTH = "max_depth_reached"
    CONTINUING = "continuing_generation"


class SSEStatus(BaseModel):
    status: AgentStatus
    details: Optional[Dict[str, Any]] = None


class SSEFunction(BaseModel):
    name: str = ""
    arguments: str = ""


class SSEToolCall(BaseModel):
    index: int = 0
    id: Optional[str] = None
    type: str = "function"
    function: Optional[SSEFunction] = None


class SSEDelta(BaseModel):
    role: Optional[str] = None
    content: Optional[str] = None
    tool_calls: Optional[List[SSEToolCall]] = None
    refusal: Optional[str] = None
    status: Optional[str] = None
    metadata: Optional[dict] = None


class SSEChoice(BaseModel):
    index: int
    delta: SSEDelta
    logprobs: Optional[dict] = None
    finish_reason: Optional[str] = None


class SSEChunk(BaseModel):
    id: str
    object: str
    created: int
    model: str
    service_tier: Optional[str] = None
    system_fingerprint: Optional[str] = None
    choices: List[SSEChoice]
    thread_id: Optional[str] = None


# --- helpers ---------------------------------------------------------------------------

def chunks_of(stream) -> list:
    """Every chunk the SDK parsed, each also validated by the seed's model."""
    chunks = list(stream)
    for c in chunks:
        seed = SSEChunk.model_validate(c.model_dump(exclude_none=True))
        for choice in seed.choices:
            meta = choice.delta.metadata
            if meta is not None:
                SSEStatus.model_validate({"status": meta["status"]})
    return chunks


def text_of(chunks) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def post_raw(spool: str, body: dict, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(spool + "/chat/completions", data=json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    for k, v in headers.items():
        req.add_header(k, v)
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()


# --- tests -----------------------------------------------------------------------------

def test_a_streamed_chat_completion_parses_in_the_sdk_and_the_seed_models(client, upstream):
    mk = marker()
    upstream.push(text_script(["Hel", "lo"], match=mk))
    stream = client.chat.completions.create(
        model=UP_MODEL, messages=[{"role": "user", "content": f"hi {mk}"}], stream=True,
        stream_options={"include_usage": True})
    chunks = chunks_of(stream)
    assert text_of(chunks) == "Hello"
    finished = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert [c.choices[0].finish_reason for c in finished] == ["stop"]
    assert chunks[-1].usage.prompt_tokens == 7
    threads = {c.model_extra["thread_id"] for c in chunks}
    assert len(threads) == 1 and next(iter(threads)).startswith("conv_")


def test_a_chat_completion_without_stream(client, upstream):
    mk = marker()
    upstream.push(text_script(["Hello"], match=mk))
    r = client.chat.completions.with_raw_response.create(
        model=UP_MODEL, messages=[{"role": "system", "content": "be brief"},
                                  {"role": "user", "content": f"hi {mk}"}],
        temperature=0.5, top_p=0.9, max_completion_tokens=64, user="u1", metadata={"k": "v"})
    assert r.headers["x-spool-run-id"].startswith("resp_")
    thread = r.headers["x-ibm-thread-id"]
    completion = r.parse()
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == "Hello"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.total_tokens == 8
    assert completion.model_extra["thread_id"] == thread


def test_client_function_tools_stream_as_tool_calls(client, upstream):
    mk = marker()
    upstream.push(tool_call_script("call_w", "get_weather", ['{"city":', '"Paris"}'], match=mk))
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]
    chunks = chunks_of(client.chat.completions.create(
        model=UP_MODEL, messages=[{"role": "user", "content": f"weather {mk}"}], tools=tools,
        tool_choice="auto", parallel_tool_calls=False, stream=True))
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].id == "call_w" and calls[0].function.name == "get_weather"
    assert "".join(tc.function.arguments or "" for tc in calls) == '{"city":"Paris"}'
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert text_of(chunks) == ""

    # The whole history back, with the tool's result, continues the thread.
    thread = chunks[0].model_extra["thread_id"]
    upstream.push(text_script(["Sunny."], match=mk))
    r = client.chat.completions.create(
        model=UP_MODEL, tools=tools, extra_body={"thread_id": thread}, messages=[
            {"role": "user", "content": f"weather {mk}"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "call_w", "type": "function", "function": {
                "name": "get_weather", "arguments": '{"city":"Paris"}'}}]},
            {"role": "tool", "tool_call_id": "call_w", "content": "sunny"}])
    assert r.choices[0].message.content == "Sunny."
    second = upstream.chat_requests(mk)[-1].body["messages"]
    assert [m["role"] for m in second] == ["user", "assistant", "tool"], second


def test_a_named_agent_runs_its_mcp_tools_server_side_with_status_chunks(client, upstream):
    mk = marker()
    upstream.push(tool_call_script("call_a", "add", ['{"a": 40, "b": 2}'], match=mk))
    upstream.push(text_script(["It is 42."], match=mk))
    chunks = chunks_of(client.chat.completions.create(
        model="agent:mcp-stdio", messages=[{"role": "user", "content": f"add {mk}"}], stream=True))
    statuses = [c.choices[0].delta.model_extra["metadata"]["status"] for c in chunks
                if c.choices and c.choices[0].delta.role == "system"]
    assert statuses == ["starting_generation", "tool_call_detected", "tools_executed",
                        "continuing_generation"], statuses
    detected = next(c for c in chunks if c.choices and c.choices[0].delta.role == "system"
                    and c.choices[0].delta.model_extra["metadata"]["status"] == "tool_call_detected")
    tools = [json.loads(t) for t in detected.choices[0].delta.model_extra["metadata"]["tools"]]
    assert tools == [{"name": "add", "arguments": '{"a": 40, "b": 2}'}]
    assert all(c.id.startswith("status_") for c in chunks if c.choices and c.choices[0].delta.role == "system")
    assert text_of(chunks) == "It is 42."


def test_the_orchestrate_stream_and_replay_in_every_dialect(spool, upstream):
    mk = marker()
    upstream.push(tool_call_script("call_a", "add", ['{"a": 1, "b": 2}'], match=mk))
    upstream.push(text_script(["Three."], match=mk))
    status, headers, body = post_raw(
        spool, {"model": "agent:mcp-stdio", "stream": True, "messages": [{"role": "user", "content": f"add {mk}"}]},
        {"X-Spool-Dialect": "wxo", "X-IBM-THREAD-ID": f"wxo-{mk}", "X-API-Key": "anything"})
    assert status == 200
    frames = parse_sse(body.decode())
    assert frames[-1].data == "[DONE]"
    events = [f.json() for f in frames[:-1]]
    assert all(e["thread_id"] == f"conv_wxo-{mk}" for e in events)
    steps = [e["choices"][0]["delta"]["step_details"] for e in events if e["object"] == "thread.run.step.delta"]
    assert steps[0] == {"type": "tool_calls", "tool_calls": [{"id": "call_a", "name": "add", "args": {"a": 1, "b": 2}}]}
    assert steps[1]["type"] == "tool_response" and steps[1]["tool_call_id"] == "call_a" and steps[1]["content"] == "3"
    assert "".join(e["choices"][0]["delta"].get("content", "") for e in events
                   if e["object"] == "thread.message.delta") == "Three."

    run = headers["x-spool-run-id"]
    for dialect in ["responses", "chat", "wxo"]:
        with urllib.request.urlopen(f"{spool}/runs/{run}/events?dialect={dialect}", timeout=30) as r:
            full = r.read().decode()
        ids = [int(line[4:]) for line in full.splitlines() if line.startswith("id: ")]
        assert ids == list(range(len(ids)))
        req = urllib.request.Request(f"{spool}/runs/{run}/events?dialect={dialect}")
        req.add_header("Last-Event-ID", "2")
        with urllib.request.urlopen(req, timeout=30) as r:
            tail = r.read().decode()
        assert [int(line[4:]) for line in tail.splitlines() if line.startswith("id: ")] == ids[3:]


def test_bad_chat_input_is_an_openai_error(client, upstream):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=UP_MODEL, messages=[
            {"role": "user", "content": "hi"}, {"role": "tool", "tool_call_id": "nope", "content": "x"}])
    assert e.value.body["param"] == "messages[1].tool_call_id"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="agent:nobody", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=UP_MODEL, messages=[{"role": "wizard", "content": "hi"}])
    assert upstream.chat_requests() == []
