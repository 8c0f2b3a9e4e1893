"""roboto's agent threads (seed 003) driven by roboto's own SDK, unmodified:
``roboto==0.62.0``'s ``AgentThread`` against spool's ``/v1/ai/threads``."""

from __future__ import annotations

import json
import urllib.request

import pytest
from roboto.ai.agent_thread import (
    AgentErrorEvent,
    AgentMessage,
    AgentRole,
    AgentStartTextEvent,
    AgentTextDeltaEvent,
    AgentTextEndEvent,
    AgentThread,
    AgentThreadStatus,
    AgentToolResultEvent,
    AgentToolUseEvent,
    ClientToolResult,
    ClientToolResultStatus,
    client_tool,
)
from roboto.exceptions import (
    RobotoConflictException,
    RobotoInvalidRequestException,
    RobotoNotFoundException,
)
from roboto.http import RobotoClient

from conftest import error_script, text_script, tool_call_script
from test_openai_sdk import UP_MODEL, marker

TIMEOUT = 20.0
TICK = 0.05


@pytest.fixture(scope="session")
def roboto(spool) -> RobotoClient:
    # The SDK's paths start with ``v1/``; its endpoint is the server root.
    return RobotoClient(endpoint=spool.removesuffix("/v1"), auth_decorator=None)


def kinds(events) -> list[str]:
    names = {
        AgentStartTextEvent: "start_text",
        AgentTextDeltaEvent: "text_delta",
        AgentTextEndEvent: "text_end",
        AgentToolUseEvent: "tool_use",
        AgentToolResultEvent: "tool_result",
        AgentErrorEvent: "error",
    }
    return [names[type(e)] for e in events]


def text_of(events) -> str:
    return "".join(e.text for e in events if isinstance(e, AgentTextDeltaEvent))


def thread_stream(spool: str, thread_id: str, after: int | None = None) -> list[dict]:
    """The thread's agent-session SSE stream, as ``data`` objects with their ``id``."""
    request = urllib.request.Request(f"{spool}/ai/threads/{thread_id}/events")
    if after is not None:
        request.add_header("Last-Event-ID", str(after))
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        body = response.read().decode()
    frames = []
    for block in body.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in fields:
            frames.append({"id": int(fields["id"]), "event": fields["event"], **json.loads(fields["data"])})
    return frames


def test_a_thread_streams_its_text_and_takes_the_next_message(roboto, upstream):
    mk = marker()
    upstream.push(text_script(["Hello", " brave", " world"], match=mk, delay=0.02))
    thread = AgentThread.start(f"say hello {mk}", model_profile=UP_MODEL, roboto_client=roboto)
    assert thread.thread_id
    assert thread.status == AgentThreadStatus.ROBOTO_TURN
    events = list(thread.events(tick=TICK, timeout=TIMEOUT))
    assert kinds(events)[0] == "start_text" and kinds(events)[-1] == "text_end", kinds(events)
    assert set(kinds(events)[1:-1]) == {"text_delta"}
    assert text_of(events) == "Hello brave world"
    assert thread.status == AgentThreadStatus.USER_TURN
    assert [m.role for m in thread.messages] == [AgentRole.USER, AgentRole.ASSISTANT]
    assert thread.messages[-1].is_complete()

    upstream.push(text_script(["Again"], match=mk))
    thread.send_text(f"once more {mk}")
    events = list(thread.events(tick=TICK, timeout=TIMEOUT))
    assert kinds(events) == ["start_text", "text_delta", "text_end"]
    assert text_of(events) == "Again"
    second = upstream.chat_requests(mk)[-1].body["messages"]
    assert [m["role"] for m in second] == ["user", "assistant", "user"], "the history is the thread's"

    # The whole thread, as another client loads it.
    again = AgentThread.from_id(thread.thread_id, roboto_client=roboto)
    assert again.status == AgentThreadStatus.USER_TURN
    assert [m.role for m in again.messages] == [AgentRole.USER, AgentRole.ASSISTANT] * 2
    assert str(again.messages[1].content[0]) == "Hello brave world"
    assert str(again.messages[3].content[0]) == "Again"
    assert again.messages[3].is_complete()
    assert AgentThread.from_id(thread.thread_id, roboto_client=roboto, load_messages=False).messages == []

    # The same events as a stream over the thread's runs, resumable.
    frames = thread_stream(roboto.endpoint + "/v1", thread.thread_id)
    assert [f["type"] for f in frames] == ["start_text"] + ["text_delta"] * 3 + ["text_end"] * 1 + [
        "start_text", "text_delta", "text_end"]
    assert [f["id"] for f in frames] == list(range(len(frames)))
    assert all(f["event"] == f["type"] for f in frames)
    assert thread_stream(roboto.endpoint + "/v1", thread.thread_id, after=4) == frames[5:]


def test_run_executes_client_tools_and_continues_the_turn(roboto, upstream):
    mk = marker()
    remembered = []

    @client_tool
    def client_remember(fact: str) -> str:
        """Store a fact in long-term memory."""
        remembered.append(fact)
        return f"stored {fact}"

    upstream.push(tool_call_script("call_rem", "client_remember", ['{"fact": ', '"blue"}'], match=mk))
    upstream.push(text_script(["Noted."], match=mk))
    thread = AgentThread.start(f"remember blue {mk}", model_profile=UP_MODEL, client_tools=[client_remember],
                               roboto_client=roboto)
    seen = []
    thread.run(on_event=seen.append, tick=TICK, timeout=TIMEOUT)
    assert remembered == ["blue"]
    assert thread.status == AgentThreadStatus.USER_TURN
    use = next(e for e in seen if isinstance(e, AgentToolUseEvent))
    assert (use.name, use.tool_use_id, use.input, use.answered_by_server) == (
        "client_remember", "call_rem", {"fact": "blue"}, False)
    assert text_of(seen) == "Noted."
    first, second = upstream.chat_requests(mk)
    assert [t["function"]["name"] for t in first.body["tools"]] == ["client_remember"]
    tool_message = next(m for m in second.body["messages"] if m["role"] == "tool")
    assert tool_message["tool_call_id"] == "call_rem"
    assert json.loads(tool_message["content"]) == {"result": "stored blue"}

    # One conversation across the pause: the results are a roboto message.
    loaded = AgentThread.from_id(thread.thread_id, roboto_client=roboto)
    assert [m.role for m in loaded.messages] == [AgentRole.USER, AgentRole.ASSISTANT, AgentRole.ROBOTO,
                                                 AgentRole.ASSISTANT]
    result = loaded.messages[2].content[0]
    assert (result.tool_name, result.tool_use_id, result.status) == ("client_remember", "call_rem", "success")
    assert result.payload == {"result": "stored blue"}
    assert isinstance(result.runtime_ms, int)

    # Nothing awaits a result now.
    with pytest.raises(RobotoConflictException):
        thread.submit_client_tool_results([ClientToolResult(
            tool_use_id="call_rem", tool_name="client_remember", runtime_ms=1,
            status=ClientToolResultStatus.SUCCESS, output={})])


def test_a_failed_or_declined_client_tool_reaches_the_model_as_such(roboto, upstream):
    mk = marker()

    @client_tool
    def client_explode() -> str:
        """Always fails."""
        raise RuntimeError("kaboom")

    upstream.push(tool_call_script("call_x", "client_explode", ["{}"], match=mk))
    upstream.push(text_script(["It failed."], match=mk))
    thread = AgentThread.start(f"explode {mk}", model_profile=UP_MODEL, client_tools=[client_explode],
                               roboto_client=roboto)
    seen = []
    thread.run(on_event=seen.append, tick=TICK, timeout=TIMEOUT)
    result = next(e for e in seen if isinstance(e, AgentToolResultEvent))
    assert (result.name, result.success) == ("client_explode", False)
    tool_message = next(m for m in upstream.chat_requests(mk)[1].body["messages"] if m["role"] == "tool")
    assert tool_message["content"].startswith("The tool call failed:") and "kaboom" in tool_message["content"]

    # Declined by hand, with results the server checks first.
    upstream.push(tool_call_script("call_y", "client_explode", ["{}"], match=mk + "y"))
    upstream.push(text_script(["As you wish."], match=mk + "y"))
    thread.send_text(f"again {mk}y")
    list(thread.events(tick=TICK, timeout=TIMEOUT))
    assert thread.status == AgentThreadStatus.CLIENT_TOOL_TURN
    with pytest.raises(RobotoInvalidRequestException):
        thread.submit_client_tool_results([ClientToolResult(
            tool_use_id="call_nope", tool_name="client_explode", runtime_ms=0,
            status=ClientToolResultStatus.DECLINED, output={})])
    thread.submit_client_tool_results([ClientToolResult(
        tool_use_id="call_y", tool_name="client_explode", runtime_ms=0,
        status=ClientToolResultStatus.DECLINED, output={"reason": "user said no"})])
    events = list(thread.events(tick=TICK, timeout=TIMEOUT))
    assert text_of(events) == "As you wish."
    declined = [m for m in upstream.chat_requests(mk + "y")[1].body["messages"] if m["role"] == "tool"][-1]
    assert declined["content"].startswith("The tool call was declined by the client:")


def test_a_named_agent_runs_its_mcp_tool_inside_the_turn(roboto, upstream):
    mk = marker()
    upstream.push(tool_call_script("call_add", "add", ['{"a": 40, "b": 2}'], match=mk))
    upstream.push(text_script(["It is 42."], match=mk))
    thread = AgentThread.start(f"40+2? {mk}", model_profile="mcp-stdio", roboto_client=roboto)
    events = list(thread.events(tick=TICK, timeout=TIMEOUT))
    assert kinds(events) == ["tool_use", "tool_result", "start_text", "text_delta", "text_end"], kinds(events)
    use, result = events[0], events[1]
    assert (use.name, use.tool_use_id, use.input, use.answered_by_server) == ("add", "call_add", {"a": 40, "b": 2},
                                                                               True)
    assert (result.name, result.tool_use_id, result.success) == ("add", "call_add", True)
    assert isinstance(result.runtime_ms, int) and result.runtime_ms >= 0
    assert thread.status == AgentThreadStatus.USER_TURN
    record = AgentThread.from_id(thread.thread_id, roboto_client=roboto)
    roboto_message = record.messages[2]
    assert roboto_message.role == AgentRole.ROBOTO
    assert roboto_message.content[0].payload == "42"
    assert roboto_message.content[0].status == "success"

    # The thread's event stream says the same, in the SDK's own event models.
    frames = thread_stream(roboto.endpoint + "/v1", thread.thread_id)
    assert [f["type"] for f in frames] == kinds(events)
    classes = {"tool_use": AgentToolUseEvent, "tool_result": AgentToolResultEvent,
               "start_text": AgentStartTextEvent, "text_delta": AgentTextDeltaEvent, "text_end": AgentTextEndEvent}
    streamed = [classes[f["type"]].model_validate({k: v for k, v in f.items() if k not in ("id", "event", "type")})
                for f in frames]
    assert streamed[0] == use
    assert (streamed[1].runtime_ms, streamed[1].success, streamed[1].output) == (result.runtime_ms, True,
                                                                                 {"result": "42"})


def test_an_upstream_failure_is_an_error_event(roboto, upstream):
    mk = marker()
    upstream.push(error_script(400, "the model refuses", match=mk))
    thread = AgentThread.start(f"fail {mk}", model_profile=UP_MODEL, roboto_client=roboto)
    events = list(thread.events(tick=TICK, timeout=TIMEOUT))
    assert kinds(events) == ["error"], kinds(events)
    assert events[0].error_code == "upstream_http_error"
    assert thread.status == AgentThreadStatus.USER_TURN
    assert thread.messages[-1].is_unsuccessful()


def test_bad_requests_get_robotos_exceptions(roboto, upstream):
    with pytest.raises(RobotoNotFoundException):
        AgentThread.from_id("conv_doesnotexist", roboto_client=roboto)
    with pytest.raises(RobotoInvalidRequestException):
        AgentThread.start("hi", model_profile=UP_MODEL, client_tools=[], goals=[], roboto_client=roboto,
                          org_id="org_1")
    mk = marker()
    upstream.push(text_script(["ok"], match=mk))
    thread = AgentThread.start(f"hi {mk}", model_profile=UP_MODEL, roboto_client=roboto)
    list(thread.events(tick=TICK, timeout=TIMEOUT))
    for token in ["garbage", "djE6Y29udl94OnJlc3BfeDo5OTk6MDp1c2VyX3R1cm4"]:
        with pytest.raises(RobotoInvalidRequestException):
            roboto.get(f"v1/ai/threads/{thread.thread_id}/delta", query={"next_token": token})


def test_a_thread_may_start_from_seeded_history(roboto, upstream):
    mk = marker()
    upstream.push(text_script(["Still blue."], match=mk))
    seeded = [
        AgentMessage.text("What is my favourite colour?", role=AgentRole.USER),
        AgentMessage.text("Blue.", role=AgentRole.ASSISTANT),
        AgentMessage.text(f"And now? {mk}", role=AgentRole.USER),
    ]
    thread = AgentThread.start(seeded, model_profile=UP_MODEL, system_prompt="Be brief.", roboto_client=roboto)
    assert text_of(thread.events(tick=TICK, timeout=TIMEOUT)) == "Still blue."
    sent = upstream.chat_requests(mk)[-1].body["messages"]
    assert [(m["role"], m["content"]) for m in sent] == [
        ("system", "Be brief."), ("user", "What is my favourite colour?"), ("assistant", "Blue."),
        ("user", f"And now? {mk}")]
    assert [m.role for m in thread.messages] == [AgentRole.USER, AgentRole.ASSISTANT, AgentRole.USER,
                                                 AgentRole.ASSISTANT]
