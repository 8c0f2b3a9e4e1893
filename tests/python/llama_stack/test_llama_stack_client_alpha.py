"""llama-stack-client 0.3.5's raw `client.alpha.agents` resources against `/v1alpha/agents…`.

Runs in its own Python >= 3.12 venv (one venv cannot hold 0.2.23 and 0.3.5;
see ./scripts/test). 0.3.x's `Agent` helper is built on the Responses and
Conversations APIs, not on these routes, so the resources are driven directly.
"""

from __future__ import annotations

import pytest
from conftest import text_script, tool_call_script
from llama_stack_client import BadRequestError, LlamaStackClient, NotFoundError

MODEL = "up-model"


@pytest.fixture(scope="module")
def lls(spool) -> LlamaStackClient:
    return LlamaStackClient(base_url=spool.removesuffix("/v1"), max_retries=0, timeout=30.0)


def test_alpha_agents_run_a_client_tool_turn_and_resume_it(lls, upstream):
    agents = lls.alpha.agents
    agent_id = agents.create(agent_config={
        "model": MODEL,
        "instructions": "You tell the time.",
        "client_tools": [{"name": "clock", "description": "the time in a zone",
                          "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}},
                                           "required": ["zone"]}}],
        "sampling_params": {"strategy": {"type": "greedy"}, "max_tokens": 64},
    }).agent_id
    assert agents.retrieve(agent_id).agent_config.model == MODEL
    session_id = agents.session.create(agent_id, session_name="alpha").session_id

    upstream.push(tool_call_script("call_c1", "clock", ['{"zone": "UTC"}']))
    chunks = list(agents.turn.create(session_id, agent_id=agent_id, stream=True,
                                     messages=[{"role": "user", "content": "What time is it?"}]))
    payloads = [c.event.payload for c in chunks]
    assert payloads[0].event_type == "turn_start"
    waiting = payloads[-1]
    assert waiting.event_type == "turn_awaiting_input"
    assert waiting.turn.output_message.tool_calls[0].call_id == "call_c1"
    # Greedy sampling is temperature 0 upstream; max_tokens is the output cap.
    sent = upstream.chat_requests()[-1].body
    assert sent["temperature"] == 0
    assert sent.get("max_completion_tokens", sent.get("max_tokens")) == 64

    upstream.push(text_script(["Noon", " UTC."]))
    resumed = list(agents.turn.resume(waiting.turn.turn_id, agent_id=agent_id, session_id=session_id,
                                      stream=True,
                                      tool_responses=[{"call_id": "call_c1", "tool_name": "clock",
                                                       "content": "12:00"}]))
    first, last = resumed[0].event.payload, resumed[-1].event.payload
    assert first.event_type == "step_complete" and first.step_type == "tool_execution"
    assert first.step_details.tool_calls[0].call_id == "call_c1"
    assert last.event_type == "turn_complete"
    assert last.turn.output_message.content == "Noon UTC."

    turn = agents.turn.retrieve(waiting.turn.turn_id, agent_id=agent_id, session_id=session_id)
    assert [s.step_type for s in turn.steps] == ["inference", "tool_execution", "inference"]
    step = agents.steps.retrieve(turn.steps[1].step_id, agent_id=agent_id, session_id=session_id,
                                 turn_id=turn.turn_id)
    assert step.step.tool_responses[0].content == "12:00"
    session = agents.session.retrieve(session_id, agent_id=agent_id, turn_ids=[turn.turn_id])
    assert [t.turn_id for t in session.turns] == [turn.turn_id]
    listed = agents.session.list(agent_id, limit=1)
    assert [s["session_id"] for s in listed.data] == [session_id] and not listed.has_more

    page = agents.list(limit=1)
    assert len(page.data) == 1

    agents.session.delete(session_id, agent_id=agent_id)
    with pytest.raises(NotFoundError):
        agents.session.retrieve(session_id, agent_id=agent_id)
    agents.delete(agent_id)
    with pytest.raises(NotFoundError):
        agents.retrieve(agent_id)


def test_alpha_agents_refuse_bad_input(lls):
    with pytest.raises(BadRequestError):
        lls.alpha.agents.create(agent_config={"model": MODEL, "instructions": "x",
                                              "sampling_params": {"strategy": {"type": "top_k", "top_k": 3}}})
    with pytest.raises(NotFoundError):
        lls.alpha.agents.session.create("agent_nope", session_name="x")
