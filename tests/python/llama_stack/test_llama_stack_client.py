"""llama-stack-client 0.2.23 drives spool's Agents API (`/v1/agents…`) unmodified.

Runs in its own Python >= 3.12 venv (see ./scripts/test); the `upstream` and
`spool` fixtures come from tests/python/conftest.py.
"""

from __future__ import annotations

import json

import pytest
from conftest import text_script, tool_call_script
from llama_stack_client import BadRequestError, LlamaStackClient, NotFoundError
from llama_stack_client.lib.agents.agent import Agent
from llama_stack_client.lib.agents.client_tool import client_tool

MODEL = "up-model"


@pytest.fixture(scope="module")
def lls(spool) -> LlamaStackClient:
    # The client's base URL is the server root: it adds /v1 itself.
    return LlamaStackClient(base_url=spool.removesuffix("/v1"), max_retries=0, timeout=30.0)


weather_calls: list[str] = []


@client_tool
def get_weather(city: str) -> str:
    """Tells the weather in a city.

    :param city: the city's name
    """
    weather_calls.append(city)
    return f"sunny in {city}"


def events(chunks) -> list:
    return [c.event.payload for c in chunks]


def test_the_agent_helper_runs_a_client_tool_and_resumes_the_turn(lls, upstream):
    weather_calls.clear()
    agent = Agent(lls, model=MODEL, instructions="You tell the weather.", tools=[get_weather])
    session_id = agent.create_session("weather")
    upstream.push(tool_call_script("call_w1", "get_weather", ['{"city":', ' "Paris"}']))
    upstream.push(text_script(["It is ", "sunny."]))

    payloads = events(agent.create_turn(
        messages=[{"role": "user", "content": "Weather in Paris?"}], session_id=session_id, stream=True))

    assert weather_calls == ["Paris"]
    kinds = [p.event_type for p in payloads]
    # The paused run: turn_start, the inference step with the tool-call deltas, then
    # turn_awaiting_input (the helper yields it, runs the tool and resumes).
    assert kinds[0] == "turn_start"
    assert "turn_awaiting_input" in kinds
    awaiting = next(p for p in payloads if p.event_type == "turn_awaiting_input")
    assert awaiting.turn.output_message.stop_reason == "end_of_message"
    assert awaiting.turn.output_message.tool_calls[0].tool_name == "get_weather"
    assert awaiting.turn.output_message.tool_calls[0].arguments == {"city": "Paris"}
    statuses = [p.delta.parse_status for p in payloads
                if p.event_type == "step_progress" and p.delta.type == "tool_call"]
    assert statuses[0] == "started" and statuses[-1] == "succeeded" and "in_progress" in statuses
    # The resume: it opens by closing the client tools' step with the results.
    resumed = payloads[kinds.index("turn_awaiting_input") + 1]
    assert resumed.event_type == "step_complete" and resumed.step_type == "tool_execution"
    assert resumed.step_details.tool_responses[0].content == json.dumps("sunny in Paris")
    done = payloads[-1]
    assert done.event_type == "turn_complete"
    turn = done.turn
    assert turn.turn_id == awaiting.turn.turn_id, "a pause and its resume are one turn"
    assert turn.output_message.content == "It is sunny."
    assert turn.output_message.stop_reason == "end_of_turn"
    assert [s.step_type for s in turn.steps] == ["inference", "tool_execution", "inference"]
    assert turn.input_messages[0].content == "Weather in Paris?"
    # The model saw the tool's result as the call's answer.
    second = upstream.chat_requests()[-1].body["messages"]
    assert second[-1]["role"] == "tool" and second[-1]["tool_call_id"] == "call_w1"


def test_a_turn_without_streaming_and_the_session_history(lls, upstream):
    agent = Agent(lls, model=MODEL, instructions="Be brief.")
    session_id = agent.create_session("history")
    upstream.push(text_script("First answer."))
    first = agent.create_turn(messages=[{"role": "user", "content": "first question"}],
                              session_id=session_id, stream=False)
    assert first.output_message.content == "First answer."
    upstream.push(text_script("Second answer."))
    second = agent.create_turn(messages=[{"role": "user", "content": "second question"}],
                               session_id=session_id, stream=False)
    assert second.output_message.content == "Second answer."
    # The second turn's model call holds the first turn.
    sent = json.dumps(upstream.chat_requests()[-1].body["messages"])
    assert "first question" in sent and "First answer." in sent
    # The raw resource without streaming returns the Turn too.
    upstream.push(text_script("Third."))
    turn = lls.agents.turn.create(session_id, agent_id=agent.agent_id, stream=False,
                                  messages=[{"role": "user", "content": "third"}])
    assert turn.output_message.content == "Third."
    session = lls.agents.session.retrieve(session_id, agent_id=agent.agent_id)
    assert [t.turn_id for t in session.turns] == [first.turn_id, second.turn_id, turn.turn_id]


def test_raw_resources_list_retrieve_and_delete(lls, upstream):
    created = [lls.agents.create(agent_config={"model": MODEL, "instructions": f"agent {i}"}).agent_id
               for i in range(3)]
    everything = lls.agents.list()
    ids = [a["agent_id"] for a in everything.data]
    assert ids[-3:] == created
    start = ids.index(created[0])
    page = lls.agents.list(start_index=start, limit=2)
    assert [a["agent_id"] for a in page.data] == created[:2] and page.has_more
    last = lls.agents.list(start_index=start + 2, limit=2)
    assert [a["agent_id"] for a in last.data] == created[2:] and not last.has_more
    got = lls.agents.retrieve(created[0])
    assert got.agent_config.instructions == "agent 0"

    agent_id = created[0]
    session_id = lls.agents.session.create(agent_id, session_name="raw").session_id
    turn_ids = []
    for text in ["one", "two"]:
        upstream.push(text_script(text.upper()))
        chunks = list(lls.agents.turn.create(session_id, agent_id=agent_id, stream=True,
                                             messages=[{"role": "user", "content": text}]))
        turn_ids.append(chunks[-1].event.payload.turn.turn_id)
    only = lls.agents.session.retrieve(session_id, agent_id=agent_id, turn_ids=[turn_ids[1]])
    assert [t.turn_id for t in only.turns] == [turn_ids[1]]
    assert only.session_name == "raw"
    turn = lls.agents.turn.retrieve(turn_ids[0], agent_id=agent_id, session_id=session_id)
    assert turn.output_message.content == "ONE"
    step = lls.agents.steps.retrieve(turn.steps[0].step_id, agent_id=agent_id, session_id=session_id,
                                     turn_id=turn.turn_id)
    assert step.step.step_type == "inference"
    assert step.step.api_model_response.content == "ONE"
    sessions = lls.agents.session.list(agent_id)
    assert [s["session_id"] for s in sessions.data] == [session_id]

    # Deleting the agent deletes its sessions and their turns.
    lls.agents.delete(agent_id)
    with pytest.raises(NotFoundError):
        lls.agents.retrieve(agent_id)
    with pytest.raises(NotFoundError):
        lls.agents.session.retrieve(session_id, agent_id=agent_id)
    # Deleting a session deletes its turns.
    other = created[1]
    s2 = lls.agents.session.create(other, session_name="gone").session_id
    upstream.push(text_script("x"))
    t2 = lls.agents.turn.create(s2, agent_id=other, stream=False, messages=[{"role": "user", "content": "x"}])
    lls.agents.session.delete(s2, agent_id=other)
    with pytest.raises(NotFoundError):
        lls.agents.turn.retrieve(t2.turn_id, agent_id=other, session_id=s2)


def test_unknown_things_are_not_found_and_bad_input_is_refused(lls, upstream):
    agent_id = lls.agents.create(agent_config={"model": MODEL, "instructions": "x"}).agent_id
    session_id = lls.agents.session.create(agent_id, session_name="errors").session_id
    with pytest.raises(NotFoundError):
        lls.agents.retrieve("agent_nope")
    with pytest.raises(NotFoundError):
        lls.agents.session.retrieve("conv_nope", agent_id=agent_id)
    with pytest.raises(NotFoundError):
        lls.agents.turn.retrieve("resp_nope", agent_id=agent_id, session_id=session_id)
    upstream.push(text_script("done"))
    turn = lls.agents.turn.create(session_id, agent_id=agent_id, stream=False,
                                  messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(NotFoundError):
        lls.agents.steps.retrieve("step_nope", agent_id=agent_id, session_id=session_id, turn_id=turn.turn_id)
    # A turn that does not wait for input cannot be resumed.
    with pytest.raises(BadRequestError):
        lls.agents.turn.resume(turn.turn_id, agent_id=agent_id, session_id=session_id,
                               tool_responses=[{"call_id": "c", "tool_name": "t", "content": "x"}])
    # A malformed config is refused, and no agent is made.
    before = len(lls.agents.list().data)
    with pytest.raises(BadRequestError):
        lls.agents.create(agent_config={"model": MODEL})  # no instructions
    with pytest.raises(BadRequestError) as refused:
        lls.agents.create(agent_config={"model": MODEL, "instructions": "x", "toolgroups": ["builtin::websearch"]})
    assert "builtin::websearch" in str(refused.value)
    assert len(lls.agents.list().data) == before


def test_a_resume_must_answer_the_calls_the_turn_waits_for(lls, upstream):
    agent_id = lls.agents.create(agent_config={
        "model": MODEL, "instructions": "x",
        "client_tools": [{"name": "lookup", "description": "looks up",
                          "parameters": [{"name": "q", "parameter_type": "string", "description": "query",
                                          "required": True}]}],
    }).agent_id
    session_id = lls.agents.session.create(agent_id, session_name="resume").session_id
    upstream.push(tool_call_script("call_l1", "lookup", ['{"q": "x"}']))
    chunks = list(lls.agents.turn.create(session_id, agent_id=agent_id, stream=True,
                                         messages=[{"role": "user", "content": "look"}]))
    waiting = chunks[-1].event.payload
    assert waiting.event_type == "turn_awaiting_input"
    turn_id = waiting.turn.turn_id
    with pytest.raises(BadRequestError):
        lls.agents.turn.resume(turn_id, agent_id=agent_id, session_id=session_id,
                               tool_responses=[{"call_id": "call_other", "tool_name": "lookup", "content": "r"}])
    # Nothing was written: the turn still waits, and resumes without streaming.
    upstream.push(text_script("Found it."))
    turn = lls.agents.turn.resume(turn_id, agent_id=agent_id, session_id=session_id, stream=False,
                                  tool_responses=[{"call_id": "call_l1", "tool_name": "lookup", "content": "r"}])
    assert turn.turn_id == turn_id
    assert turn.output_message.content == "Found it."
    assert [s.step_type for s in turn.steps] == ["inference", "tool_execution", "inference"]
    assert turn.steps[1].tool_responses[0].content == "r"


def test_an_mcp_toolgroup_runs_server_side_inside_the_turn(lls, upstream):
    # The config's named agent `mcp-stdio` has an MCP server labelled `local`:
    # it is the toolgroup mcp::local.
    groups = [g.identifier for g in lls.toolgroups.list()]
    assert "mcp::local" in groups
    tools = {t.identifier: t for t in lls.tools.list(toolgroup_id="mcp::local")}
    assert {"add", "shout"} <= set(tools)
    assert {p.name for p in tools["add"].parameters} == {"a", "b"}

    agent = Agent(lls, model=MODEL, instructions="Use the tools.", tools=["mcp::local"])
    session_id = agent.create_session("mcp")
    upstream.push(tool_call_script("call_add", "add", ['{"a": 2, "b": 3}']))
    upstream.push(text_script("It is 5."))
    payloads = events(agent.create_turn(messages=[{"role": "user", "content": "2+3?"}],
                                        session_id=session_id, stream=True))
    kinds = [(p.event_type, getattr(p, "step_type", None)) for p in payloads]
    assert ("step_start", "tool_execution") in kinds
    done = payloads[-1]
    assert done.event_type == "turn_complete"
    steps = done.turn.steps
    assert [s.step_type for s in steps] == ["inference", "tool_execution", "inference"]
    assert steps[0].api_model_response.tool_calls[0].tool_name == "add"
    assert steps[1].tool_responses[0].content == "5"
    assert done.turn.output_message.content == "It is 5."

    # A builtin toolgroup spool does not have is refused, naming what it has.
    with pytest.raises(BadRequestError) as refused:
        Agent(lls, model=MODEL, instructions="x", tools=["builtin::websearch"])
    assert "mcp::local" in str(refused.value)
    with pytest.raises(NotFoundError):
        lls.tools.list(toolgroup_id="builtin::rag")


def test_turn_documents_go_into_the_model_context(lls, upstream):
    agent = Agent(lls, model=MODEL, instructions="Answer from the documents.")
    session_id = agent.create_session("docs")
    upstream.push(text_script("The code is 7421."))
    turn = agent.create_turn(
        messages=[{"role": "user", "content": "What is the code?"}],
        documents=[{"content": "The code is 7421.", "mime_type": "text/plain"},
                   {"content": {"uri": "data:text/plain;base64,U2VlIHBhZ2UgMi4="}, "mime_type": "text/plain"}],
        session_id=session_id, stream=False)
    assert turn.output_message.content == "The code is 7421."
    sent = json.dumps(upstream.chat_requests()[-1].body["messages"])
    assert "The code is 7421." in sent and "See page 2." in sent
    with pytest.raises(BadRequestError):
        agent.create_turn(messages=[{"role": "user", "content": "x"}], session_id=session_id, stream=False,
                          documents=[{"content": {"uri": "https://example.com/a.pdf"}, "mime_type": "application/pdf"}])
