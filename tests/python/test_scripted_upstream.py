"""Self-check of the scripted upstream harness (no spool needed): the official SDK's
chat.completions client must parse what it streams."""

import json

import openai

from conftest import text_script, tool_call_script


def _client(upstream):
    return openai.OpenAI(base_url=upstream.base_url, api_key="x", max_retries=0, timeout=10)


def test_default_and_scripted_text(upstream):
    c = _client(upstream)
    chunks = list(c.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], stream=True))
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == "Hello from upstream"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0

    upstream.push(text_script(["a", "b"], usage={"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
                              match="zzz"))
    other = c.chat.completions.create(model="m", messages=[{"role": "user", "content": "no marker"}])
    assert other.choices[0].message.content == "Hello from upstream"  # script not matched -> default
    got = list(c.chat.completions.create(model="m", messages=[{"role": "user", "content": "zzz"}], stream=True))
    assert "".join(ch.choices[0].delta.content or "" for ch in got if ch.choices) == "ab"
    assert [ch.choices[0].finish_reason for ch in got if ch.choices][-1] == "stop"
    assert got[-1].usage.completion_tokens == 2
    assert [r.body["messages"][0]["content"] for r in upstream.chat_requests()] == ["hi", "no marker", "zzz"]


def test_scripted_tool_call(upstream):
    upstream.push(tool_call_script("call_1", "get_weather", ['{"city":', '"Paris"}']))
    c = _client(upstream)
    chunks = list(c.chat.completions.create(model="m", messages=[{"role": "user", "content": "w"}], stream=True))
    tcs = [tc for ch in chunks if ch.choices for tc in (ch.choices[0].delta.tool_calls or [])]
    assert tcs[0].id == "call_1" and tcs[0].function.name == "get_weather"
    assert json.loads("".join(tc.function.arguments or "" for tc in tcs)) == {"city": "Paris"}
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "tool_calls"

    upstream.push(tool_call_script("call_2", "f", ['{}']))
    msg = c.chat.completions.create(model="m", messages=[{"role": "user", "content": "w"}]).choices[0].message
    assert msg.tool_calls[0].id == "call_2" and msg.tool_calls[0].function.arguments == "{}"
