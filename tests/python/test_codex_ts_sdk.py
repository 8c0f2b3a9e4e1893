"""The TypeScript Codex SDK (@openai/codex-sdk 0.163) driving spool unmodified:
``tests/js/codex-sdk/codex_driver.mjs`` runs turns with ``new Codex({codexPathOverride})``
pointed at the spool binary, while this file scripts the upstream and checks
what the SDK returned.

Needs ``node`` and ``npm ci --omit=optional`` in ``tests/js/codex-sdk`` (``scripts/test``
does both and sets ``SPOOL_REQUIRE_JS=1``, which turns a missing toolchain into a
failure instead of a skip)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import DEFAULT_SPOOL_BIN, REPO_ROOT, error_script, text_script, tool_call_script
from test_openai_sdk import UP_MODEL, marker

JS_DIR = REPO_ROOT / "tests" / "js" / "codex-sdk"


@pytest.fixture(scope="session")
def drive(spool):
    node = shutil.which("node")
    installed = (JS_DIR / "node_modules" / "@openai" / "codex-sdk").is_dir()
    if node is None or not installed:
        message = "the TypeScript Codex SDK needs node and `npm ci --omit=optional` in tests/js/codex-sdk"
        if os.environ.get("SPOOL_REQUIRE_JS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    binary = str(Path(os.environ.get("SPOOL_BIN", str(DEFAULT_SPOOL_BIN))).resolve())

    def run(prompts: list[str], **spec) -> dict:
        spec = {"binary": binary, "baseUrl": spool, "prompts": prompts, **spec}
        done = subprocess.run([node, str(JS_DIR / "codex_driver.mjs"), json.dumps(spec)], cwd=JS_DIR,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    return run


def test_run_and_a_second_turn_on_the_same_thread(drive, upstream):
    mk = marker()
    upstream.push(text_script(["one"], match=mk))
    upstream.push(text_script(["two"], match=mk, usage={"prompt_tokens": 20, "completion_tokens": 1,
                                                        "total_tokens": 21}))
    out = drive([f"first {mk}", f"second {mk}"], model=UP_MODEL)
    first, second = out["turns"]
    assert first["finalResponse"] == "one"
    assert second["finalResponse"] == "two"
    assert second["items"] == [{"id": "item_0", "type": "agent_message", "text": "two"}]
    assert second["usage"]["input_tokens"] == 20 and second["usage"]["output_tokens"] == 1
    assert out["threadId"].startswith("conv_")
    assert "one" in str(upstream.chat_requests(mk)[-1].body["messages"])


def test_run_streamed_and_resume_thread(drive, upstream):
    mk = marker()
    upstream.push(text_script(["kept"], match=mk))
    upstream.push(text_script(["resumed"], match=mk))
    first = drive([f"keep {mk}"], model=UP_MODEL, streamed=True)
    types = [e["type"] for e in first["turns"][0]["events"]]
    assert types == ["thread.started", "turn.started", "item.completed", "turn.completed"]
    again = drive([f"again {mk}"], threadId=first["threadId"])
    assert again["threadId"] == first["threadId"]
    assert again["turns"][0]["finalResponse"] == "resumed"
    assert "kept" in str(upstream.chat_requests(mk)[-1].body["messages"])


def test_an_agents_mcp_tool_and_an_upstream_failure(drive, upstream):
    mk = marker()
    upstream.push(tool_call_script("call_a", "add", ['{"a": 1, "b": 2}'], match=mk))
    upstream.push(text_script(["3"], match=mk))
    out = drive([f"add {mk}"], model="agent:mcp-stdio", streamed=True)
    call = next(i for i in out["turns"][0]["items"] if i["type"] == "mcp_tool_call")
    assert (call["server"], call["tool"], call["status"]) == ("local", "add", "completed")
    assert call["result"]["content"] == [{"type": "text", "text": "3"}]

    fail = marker()
    upstream.push(error_script(400, "the model refused", match=fail))
    out = drive([f"fail {fail}"], model=UP_MODEL)
    assert "the model refused" in out["turns"][0]["error"]
