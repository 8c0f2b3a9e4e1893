"""spool driven by the official `openai` SDK (plus a few raw-HTTP checks against the Open Responses schema).

Every test talks to a real `spool serve` whose upstream is the scripted chat-completions server from
conftest.py. Tests that need upstream output push a Script matched on a unique marker in the input, so
that a background run left over from another test can never consume it.
"""

from __future__ import annotations

import json
import re
import time
import uuid

import openai
import openresponses_types as ors
import pytest

from conftest import text_script, tool_call_script

ECHO_INPUT = "hello brave new world"
UP_MODEL = "up-model"

# type string -> openresponses-types streaming event class
ORS_EVENTS: dict[str, type] = {}
for _name in dir(ors):
    if _name.endswith("StreamingEvent"):
        _cls = getattr(ors, _name)
        for _member in _cls.model_fields["type"].annotation:
            ORS_EVENTS[_member.value] = _cls

TERMINAL = {"response.completed", "response.failed", "response.incomplete"}

TEXT_STREAM_RE = re.compile(
    r"response\.created response\.in_progress response\.output_item\.added response\.content_part\.added"
    r"( response\.output_text\.delta)+ response\.output_text\.done response\.content_part\.done"
    r" response\.output_item\.done response\.completed"
)

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Get the current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


def marker() -> str:
    return f"mk-{uuid.uuid4().hex[:10]}"


def err_body(exc: openai.APIStatusError) -> dict:
    """The SDK stores json['error'] in exc.body; be tolerant if the server sent no envelope."""
    body = exc.body
    assert isinstance(body, dict), f"error body is not a JSON object: {body!r}"
    return body.get("error", body) if isinstance(body.get("error"), dict) else body


def assert_error_envelope(exc: openai.APIStatusError) -> None:
    raw = exc.response.json()
    assert set(raw) >= {"error"}, raw
    assert {"message", "type", "param", "code"} <= set(raw["error"]), raw
    assert isinstance(raw["error"]["message"], str) and raw["error"]["message"]


def ors_validate_response(obj: dict) -> None:
    ors.ResponseResource.model_validate(obj)


def ors_validate_event(obj: dict) -> None:
    cls = ORS_EVENTS.get(obj.get("type"))
    assert cls is not None, f"event type {obj.get('type')!r} is not an Open Responses streaming event"
    cls.model_validate(obj)


def check_text_events(events: list, expected_text: str | None = None) -> str:
    """Ordering / sequence / consistency checks on SDK events of a single-message text response.
    Returns the streamed text."""
    types = [e.type for e in events]
    assert TEXT_STREAM_RE.fullmatch(" ".join(types)), f"unexpected event order: {types}"
    assert [e.sequence_number for e in events] == list(range(len(events))), \
        f"sequence numbers not dense from 0: {[e.sequence_number for e in events]}"

    added = events[2]
    item_id = added.item.id
    assert item_id, "output_item.added carries no item.id"
    assert added.output_index == 0
    assert added.item.type == "message"
    assert added.item.status == "in_progress"
    for e in events[3:-2]:
        assert e.item_id == item_id, f"{e.type}: item_id {e.item_id!r} != {item_id!r}"
        assert e.output_index == 0, e
        assert e.content_index == 0, e

    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    text_done = next(e for e in events if e.type == "response.output_text.done")
    part_done = next(e for e in events if e.type == "response.content_part.done")
    item_done = events[-2]
    final = events[-1].response
    assert deltas == text_done.text, "concatenated deltas != output_text.done.text"
    assert part_done.part.type == "output_text" and part_done.part.text == deltas
    assert item_done.item.id == item_id and item_done.item.status == "completed"
    assert item_done.item.content[0].text == deltas
    assert final.status == "completed"
    assert final.output_text == deltas, "final response text != streamed text"
    assert final.output[0].id == item_id
    assert events[0].response.id == final.id == events[1].response.id
    assert events[0].response.status in ("queued", "in_progress")
    if expected_text is not None:
        assert deltas == expected_text
    return deltas


def wait_status(client, rid: str, statuses: set[str], timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    r = client.responses.retrieve(rid)
    while r.status not in statuses and time.monotonic() < deadline:
        time.sleep(0.1)
        r = client.responses.retrieve(rid)
    assert r.status in statuses, f"response {rid} stuck in status {r.status!r}"
    return r


# ------------------------------------------------------------------------------------------
# responses.create (non-streaming)
# ------------------------------------------------------------------------------------------


def test_create_echo_model(client):
    r = client.responses.create(model="echo", input=ECHO_INPUT)
    assert r.object == "response"
    assert r.id
    assert r.status == "completed"
    assert r.model == "echo"
    assert r.output_text == ECHO_INPUT
    msg = r.output[0]
    assert msg.type == "message" and msg.role == "assistant" and msg.status == "completed"
    assert msg.content[0].type == "output_text" and msg.content[0].annotations == []
    assert r.usage is not None
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    assert r.completed_at is not None and r.completed_at >= r.created_at


def test_create_upstream_model(client, upstream):
    mk = marker()
    upstream.push(text_script(["Hi", " there", ", ", "friend!"],
                              usage={"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}, match=mk))
    r = client.responses.create(model=UP_MODEL, input=f"say hi {mk}")
    assert r.status == "completed"
    assert r.output_text == "Hi there, friend!"
    assert r.usage is not None
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.total_tokens) == (11, 4, 15)

    (req,) = upstream.chat_requests(mk)
    assert req.script_used == "scripted"
    assert req.body["model"] == UP_MODEL
    assert req.body["messages"][-1]["role"] == "user"
    content = req.body["messages"][-1]["content"]
    text = content if isinstance(content, str) else "".join(p.get("text", "") for p in content)
    assert text == f"say hi {mk}"


def test_create_upstream_default_script(client, upstream):
    """Nothing scripted: the upstream's default answer comes through unchanged."""
    r = client.responses.create(model=UP_MODEL, input=f"anything {marker()}")
    assert r.status == "completed"
    assert r.output_text == "Hello from upstream"


def test_nonstream_response_validates_against_open_responses(raw):
    resp = raw.post("/responses", {"model": "echo", "input": ECHO_INPUT})
    assert resp.status == 200, resp.body
    assert resp.headers.get("content-type", "").startswith("application/json")
    body = resp.json()
    ors_validate_response(body)
    assert body["status"] == "completed"
    assert body["output"][0]["content"][0]["text"] == ECHO_INPUT


def test_instructions_become_system_message(client, upstream):
    mk = marker()
    upstream.push(text_script("ok", match=mk))
    r = client.responses.create(model=UP_MODEL, input=f"q {mk}", instructions="Be terse.")
    assert r.output_text == "ok"
    assert r.instructions == "Be terse."
    (req,) = upstream.chat_requests(mk)
    first = req.body["messages"][0]
    assert first["role"] in ("system", "developer")
    assert "Be terse." in json.dumps(first)


# ------------------------------------------------------------------------------------------
# streaming
# ------------------------------------------------------------------------------------------


def test_stream_echo_events(client):
    events = list(client.responses.create(model="echo", input=ECHO_INPUT, stream=True))
    check_text_events(events, ECHO_INPUT)
    # echo streams word by word
    assert sum(e.type == "response.output_text.delta" for e in events) >= 4


def test_stream_upstream_events(client, upstream):
    mk = marker()
    pieces = ["The", " quick", " brown", " fox"]
    upstream.push(text_script(pieces, match=mk))
    events = list(client.responses.create(model=UP_MODEL, input=f"fox {mk}", stream=True))
    check_text_events(events, "The quick brown fox")
    assert events[-1].response.usage is not None


@pytest.mark.parametrize("model", ["echo", UP_MODEL])
def test_stream_raw_sse_framing_and_open_responses_schema(raw, upstream, model):
    mk = marker()
    upstream.push(text_script(["alpha", " beta"], match=mk))
    text = ECHO_INPUT if model == "echo" else f"greek {mk}"
    resp = raw.post("/responses", {"model": model, "input": text, "stream": True})
    assert resp.status == 200, resp.body
    assert resp.headers.get("content-type", "").startswith("text/event-stream")
    frames = resp.sse()
    assert frames, "empty SSE body"
    if frames[-1].data == "[DONE]":  # optional ORS terminator: only allowed as the very last frame
        frames = frames[:-1]
    assert all(f.data != "[DONE]" for f in frames), "[DONE] before the terminal event"
    payloads = []
    for f in frames:
        assert f.data_lines == 1, f"frame has {f.data_lines} data lines: {f.raw!r}"
        obj = f.json()
        assert f.event == obj["type"], f"event line {f.event!r} != JSON type {obj['type']!r}"
        ors_validate_event(obj)
        payloads.append(obj)
    assert [p["sequence_number"] for p in payloads] == list(range(len(payloads)))
    assert payloads[-1]["type"] == "response.completed"
    assert sum(p["type"] in TERMINAL for p in payloads) == 1
    final = payloads[-1]["response"]
    ors_validate_response(final)
    expected = ECHO_INPUT if model == "echo" else "alpha beta"
    assert final["output"][0]["content"][0]["text"] == expected


# ------------------------------------------------------------------------------------------
# background + stream: disconnect and resume
# ------------------------------------------------------------------------------------------


def test_background_stream_resume_with_starting_after(client, upstream):
    mk = marker()
    pieces = [f"w{i} " for i in range(8)]
    upstream.push(text_script(pieces, delay=0.15, match=mk))
    k = 3
    live = []
    stream = client.responses.create(model=UP_MODEL, input=f"slowly {mk}", background=True, stream=True)
    for ev in stream:
        live.append(ev)
        if ev.sequence_number >= k:
            break
    stream.close()
    assert live[0].type == "response.created"
    assert [e.sequence_number for e in live] == list(range(k + 1))
    rid = live[0].response.id
    assert live[0].response.background is True

    resumed = list(client.responses.retrieve(rid, stream=True, starting_after=k))
    full = list(client.responses.retrieve(rid, stream=True))

    assert [e.sequence_number for e in full] == list(range(len(full)))
    assert full[0].type == "response.created" and full[-1].type in TERMINAL
    assert sum(e.type in TERMINAL for e in full) == 1
    assert full[-1].type == "response.completed", full[-1].to_dict()
    assert full[-1].response.output_text == "".join(pieces)

    assert [e.sequence_number for e in resumed] == list(range(k + 1, len(full))), \
        "resume must yield exactly events k+1..terminal"
    assert [e.to_dict() for e in resumed] == [e.to_dict() for e in full[k + 1:]]
    assert [e.to_dict() for e in live] == [e.to_dict() for e in full[: k + 1]], \
        "live events differ from their stored replay"


def test_background_stream_replay_is_byte_identical(client, raw, upstream):
    mk = marker()
    upstream.push(text_script(["one", " two", " three"], delay=0.05, match=mk))
    with client.responses.create(model=UP_MODEL, input=f"count {mk}", background=True, stream=True) as s:
        first = next(iter(s))
    rid = first.response.id
    wait_status(client, rid, {"completed", "failed", "incomplete", "cancelled"})

    full = raw.get(f"/responses/{rid}?stream=true")
    assert full.status == 200, full.body
    fframes = [f for f in full.sse() if f.data != "[DONE]"]
    after = raw.get(f"/responses/{rid}?stream=true&starting_after=2")
    assert after.status == 200, after.body
    aframes = [f for f in after.sse() if f.data != "[DONE]"]
    assert [f.data for f in aframes] == [f.data for f in fframes[3:]]
    assert json.loads(fframes[-1].data)["type"] == "response.completed"
    for f in fframes:
        ors_validate_event(f.json())


def test_background_nonstream_poll_until_completed(client, upstream):
    mk = marker()
    upstream.push(text_script(["bg", " done"], delay=0.1, match=mk))
    r = client.responses.create(model=UP_MODEL, input=f"bg {mk}", background=True)
    assert r.background is True
    assert r.status in ("queued", "in_progress")
    done = wait_status(client, r.id, {"completed", "failed", "incomplete"})
    assert done.status == "completed"
    assert done.output_text == "bg done"


# ------------------------------------------------------------------------------------------
# retrieve
# ------------------------------------------------------------------------------------------


def test_retrieve_equals_terminal_event(client, raw, upstream):
    mk = marker()
    upstream.push(text_script(["stored", " text"], match=mk))
    resp = raw.post("/responses", {"model": UP_MODEL, "input": f"store me {mk}", "stream": True})
    frames = [f for f in resp.sse() if f.data != "[DONE]"]
    terminal = frames[-1].json()
    assert terminal["type"] == "response.completed"
    rid = terminal["response"]["id"]

    got = raw.get(f"/responses/{rid}")
    assert got.status == 200, got.body
    assert got.json() == terminal["response"]

    sdk = client.responses.retrieve(rid)
    assert sdk.id == rid and sdk.status == "completed" and sdk.output_text == "stored text"


# ------------------------------------------------------------------------------------------
# cancel
# ------------------------------------------------------------------------------------------


def _start_slow_background(client, upstream, chunks: int = 20, delay: float = 0.5):
    mk = marker()
    upstream.push(text_script([f"c{i} " for i in range(chunks)], delay=delay, match=mk))
    r = client.responses.create(model=UP_MODEL, input=f"slow {mk}", background=True)
    assert r.status in ("queued", "in_progress")
    upstream.wait_for_request(mk, timeout=10)  # the run is really in flight
    return r, mk


def test_cancel_background_run(client, upstream):
    r, _ = _start_slow_background(client, upstream)
    c1 = client.responses.cancel(r.id)
    assert c1.id == r.id
    assert c1.status == "cancelled"
    c2 = client.responses.cancel(r.id)
    assert c2.status == "cancelled", "cancel must be idempotent"
    assert client.responses.retrieve(r.id).status == "cancelled"
    time.sleep(1.2)  # a late upstream chunk / completion must not overwrite the cancel
    assert client.responses.retrieve(r.id).status == "cancelled"


def test_cancel_stops_upstream_generation(client, upstream):
    r, mk = _start_slow_background(client, upstream)
    assert client.responses.cancel(r.id).status == "cancelled"
    req = upstream.chat_requests(mk)[-1]
    deadline = time.monotonic() + 8
    while not (req.aborted or req.finished) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert req.aborted and not req.finished, \
        f"upstream stream not aborted after cancel (sent {req.chunks_sent}/{req.chunks_total} chunks)"


def test_cancel_completed_foreground_is_bad_request(client):
    r = client.responses.create(model="echo", input=ECHO_INPUT)
    assert r.status == "completed"
    with pytest.raises(openai.BadRequestError) as ei:
        client.responses.cancel(r.id)
    assert_error_envelope(ei.value)
    assert client.responses.retrieve(r.id).status == "completed"


def test_cancel_unknown_is_not_found(client):
    with pytest.raises(openai.NotFoundError) as ei:
        client.responses.cancel("resp_doesnotexist0000000000000000")
    assert_error_envelope(ei.value)


# ------------------------------------------------------------------------------------------
# delete
# ------------------------------------------------------------------------------------------


def test_delete_then_everything_is_not_found(client):
    r = client.responses.create(model="echo", input=ECHO_INPUT)
    assert client.responses.delete(r.id) is None
    with pytest.raises(openai.NotFoundError) as ei:
        client.responses.retrieve(r.id)
    assert_error_envelope(ei.value)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.cancel(r.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.input_items.list(r.id)


def test_delete_raw_body(client, raw):
    r = client.responses.create(model="echo", input=ECHO_INPUT)
    resp = raw.delete(f"/responses/{r.id}")
    assert resp.status == 200, resp.body
    body = resp.json()
    assert body["id"] == r.id and body["deleted"] is True
    assert raw.get(f"/responses/{r.id}").status == 404


# ------------------------------------------------------------------------------------------
# input_items
# ------------------------------------------------------------------------------------------


def test_input_items_string_input(client, raw):
    r = client.responses.create(model="echo", input=ECHO_INPUT)
    page = client.responses.input_items.list(r.id)
    assert len(page.data) == 1
    item = page.data[0]
    assert item.type == "message" and item.role == "user"
    assert item.id
    assert [(c.type, c.text) for c in item.content] == [("input_text", ECHO_INPUT)]
    assert page.has_more is False

    body = raw.get(f"/responses/{r.id}/input_items").json()
    assert body["object"] == "list"
    assert body["data"][0]["content"] == [{"type": "input_text", "text": ECHO_INPUT}]
    assert body["first_id"] == body["last_id"] == item.id
    assert body["has_more"] is False


def test_input_items_order_and_pagination(client, raw):
    texts = [f"m{i}" for i in range(5)]
    r = client.responses.create(model="echo", input=[{"role": "user", "content": t} for t in texts])
    assert r.output_text == "m4"

    def texts_of(items):
        return [it.content[0].text for it in items]

    assert texts_of(client.responses.input_items.list(r.id).data) == texts[::-1], "default order must be desc"
    assert texts_of(client.responses.input_items.list(r.id, order="asc").data) == texts
    assert texts_of(client.responses.input_items.list(r.id, order="desc").data) == texts[::-1]

    p1 = client.responses.input_items.list(r.id, limit=2)
    assert texts_of(p1.data) == ["m4", "m3"] and p1.has_more is True
    p2 = client.responses.input_items.list(r.id, limit=2, after=p1.data[-1].id)
    assert texts_of(p2.data) == ["m2", "m1"] and p2.has_more is True
    p3 = client.responses.input_items.list(r.id, limit=2, after=p2.data[-1].id)
    assert texts_of(p3.data) == ["m0"] and p3.has_more is False

    a1 = client.responses.input_items.list(r.id, limit=3, order="asc")
    a2 = client.responses.input_items.list(r.id, limit=3, order="asc", after=a1.data[-1].id)
    assert texts_of(a1.data) + texts_of(a2.data) == texts and a2.has_more is False

    # the SDK's auto-pagination follows `after` = last id until has_more is false
    assert texts_of(list(client.responses.input_items.list(r.id, limit=2))) == texts[::-1]
    ids = [it.id for it in client.responses.input_items.list(r.id, limit=100).data]
    assert len(set(ids)) == 5

    body = raw.get(f"/responses/{r.id}/input_items?limit=2").json()
    assert body["first_id"] == body["data"][0]["id"] and body["last_id"] == body["data"][-1]["id"]


@pytest.mark.parametrize("limit", [0, 101])
def test_input_items_limit_bounds(client, limit):
    r = client.responses.create(model="echo", input=ECHO_INPUT)
    with pytest.raises(openai.BadRequestError) as ei:
        client.responses.input_items.list(r.id, limit=limit)
    assert err_body(ei.value).get("param") == "limit"


# ------------------------------------------------------------------------------------------
# function tools
# ------------------------------------------------------------------------------------------


def test_function_tool_round_trip(client, upstream):
    mk = marker()
    upstream.push(tool_call_script("call_wx_1", "get_weather", ['{"ci', 'ty": "Pa', 'ris"}'], match=mk))
    r1 = client.responses.create(model=UP_MODEL, input=f"What's the weather in Paris? {mk}", tools=[WEATHER_TOOL])
    assert r1.status == "completed"
    calls = [o for o in r1.output if o.type == "function_call"]
    assert len(calls) == 1, r1.to_dict()
    fc = calls[0]
    assert fc.name == "get_weather"
    assert fc.call_id
    assert json.loads(fc.arguments) == {"city": "Paris"}

    (first_req,) = upstream.chat_requests(mk)
    tool_names = [t.get("function", {}).get("name") for t in first_req.body.get("tools", [])]
    assert tool_names == ["get_weather"], first_req.body.get("tools")
    assert first_req.body["tools"][0]["type"] == "function"
    assert first_req.body["tools"][0]["function"]["parameters"]["properties"] == {"city": {"type": "string"}}

    upstream.push(text_script(["It is sunny", " in Paris."], match="sunny"))
    r2 = client.responses.create(
        model=UP_MODEL,
        previous_response_id=r1.id,
        input=[{"type": "function_call_output", "call_id": fc.call_id, "output": "sunny"}],
        tools=[WEATHER_TOOL],
    )
    assert r2.status == "completed"
    assert r2.output_text == "It is sunny in Paris."
    assert r2.previous_response_id == r1.id

    second = upstream.chat_requests(mk)
    assert len(second) == 2, "second turn must replay the first turn's input to upstream"
    msgs = second[-1].body["messages"]
    roles = [m["role"] for m in msgs]
    i_user = max(i for i, m in enumerate(msgs) if m["role"] == "user" and mk in json.dumps(m))
    i_asst = next(i for i, m in enumerate(msgs) if m["role"] == "assistant" and m.get("tool_calls"))
    i_tool = next(i for i, m in enumerate(msgs) if m["role"] == "tool")
    assert i_user < i_asst < i_tool, roles
    tc = msgs[i_asst]["tool_calls"][0]
    assert tc["id"] == fc.call_id
    assert tc["type"] == "function"
    assert tc["function"]["name"] == "get_weather"
    assert json.loads(tc["function"]["arguments"]) == {"city": "Paris"}
    tool_msg = msgs[i_tool]
    assert tool_msg["tool_call_id"] == fc.call_id
    content = tool_msg["content"]
    assert (content if isinstance(content, str) else "".join(p.get("text", "") for p in content)) == "sunny"


def test_function_tool_streaming_events(client, raw, upstream):
    mk = marker()
    upstream.push(tool_call_script("call_wx_2", "get_weather", ['{"city"', ': "Oslo"}'], match=mk))
    resp = raw.post("/responses", {"model": UP_MODEL, "input": f"weather oslo {mk}", "tools": [WEATHER_TOOL],
                                   "stream": True})
    assert resp.status == 200, resp.body
    events = [f.json() for f in resp.sse() if f.data != "[DONE]"]
    for e in events:
        ors_validate_event(e)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    types = [e["type"] for e in events]
    added = next(e for e in events if e["type"] == "response.output_item.added"
                 and e["item"]["type"] == "function_call")
    item_id, idx = added["item"]["id"], added["output_index"]
    arg_deltas = [e for e in events if e["type"] == "response.function_call_arguments.delta"]
    arg_done = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert arg_deltas, types
    assert len(arg_done) == 1, types
    assert all(e["item_id"] == item_id and e["output_index"] == idx for e in arg_deltas + arg_done)
    assert "".join(e["delta"] for e in arg_deltas) == arg_done[0]["arguments"]
    assert json.loads(arg_done[0]["arguments"]) == {"city": "Oslo"}
    item_done = next(e for e in events if e["type"] == "response.output_item.done" and e["item"]["id"] == item_id)
    assert types.index("response.output_item.added") <= types.index("response.function_call_arguments.delta")
    assert events.index(arg_done[0]) < events.index(item_done)
    assert item_done["item"]["arguments"] == arg_done[0]["arguments"]
    assert item_done["item"]["name"] == "get_weather" and item_done["item"]["status"] == "completed"
    assert types[-1] == "response.completed"
    ors_validate_response(events[-1]["response"])


# ------------------------------------------------------------------------------------------
# errors, store=false
# ------------------------------------------------------------------------------------------


def test_background_requires_store(client):
    with pytest.raises(openai.BadRequestError) as ei:
        client.responses.create(model="echo", input=ECHO_INPUT, background=True, store=False)
    assert_error_envelope(ei.value)
    assert err_body(ei.value)["param"] == "background"
    assert ei.value.param == "background"


def test_retrieve_unknown_is_not_found(client):
    with pytest.raises(openai.NotFoundError) as ei:
        client.responses.retrieve("resp_doesnotexist0000000000000000")
    assert_error_envelope(ei.value)


def test_missing_model_is_bad_request(client):
    with pytest.raises(openai.BadRequestError) as ei:
        client.responses.create(input=ECHO_INPUT)
    assert_error_envelope(ei.value)


def test_store_false_is_not_retrievable(client):
    r = client.responses.create(model="echo", input=ECHO_INPUT, store=False)
    assert r.status == "completed"
    assert r.output_text == ECHO_INPUT
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.input_items.list(r.id)
