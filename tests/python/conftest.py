"""Fixtures for driving spool with the official `openai` Python SDK.

* ``upstream`` – a scripted OpenAI-compatible chat-completions server (stdlib only).
* ``spool``    – the spool binary (``SPOOL_BIN``), started as ``spool serve`` against ``upstream``.
* ``client``   – ``openai.OpenAI`` pointed at spool.
* ``raw``      – tiny urllib client for byte-level checks (raw JSON / raw SSE frames).
"""

from __future__ import annotations

import collections
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SPOOL_BIN = REPO_ROOT / "target" / "debug" / "spool"
DEFAULT_TEXT = "Hello from upstream"

# --------------------------------------------------------------------------------------
# Scripted upstream (OpenAI-compatible /v1/chat/completions)
# --------------------------------------------------------------------------------------


@dataclass
class Script:
    """What the upstream answers to one chat-completions request.

    ``deltas`` is a list of chunk deltas, each either a text piece (``str``) or a dict that is
    used verbatim as ``choices[0].delta`` (e.g. a ``tool_calls`` fragment).
    ``match``: if set, the script is only used for a request whose JSON body contains this string.
    """

    deltas: list[Any]
    finish_reason: str = "stop"
    usage: dict[str, int] | None = None
    delay: float = 0.0  # seconds slept before each chunk
    match: str | None = None
    fail_status: int | None = None  # answer with this HTTP error instead of a completion


def text_script(pieces: list[str] | str, *, usage: dict[str, int] | None = None, delay: float = 0.0,
                match: str | None = None) -> Script:
    if isinstance(pieces, str):
        pieces = [pieces]
    if usage is None:
        usage = {"prompt_tokens": 7, "completion_tokens": len(pieces), "total_tokens": 7 + len(pieces)}
    return Script(deltas=list(pieces), finish_reason="stop", usage=usage, delay=delay, match=match)


def tool_call_script(call_id: str, name: str, argument_pieces: list[str], *, usage: dict[str, int] | None = None,
                     delay: float = 0.0, match: str | None = None) -> Script:
    deltas: list[Any] = [
        {"tool_calls": [{"index": 0, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}]}
    ]
    for piece in argument_pieces:
        deltas.append({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
    if usage is None:
        usage = {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21}
    return Script(deltas=deltas, finish_reason="tool_calls", usage=usage, delay=delay, match=match)


def error_script(status: int, message: str, *, match: str | None = None) -> Script:
    """The upstream refuses the request with ``status`` and an OpenAI error body."""
    return Script(deltas=[message], fail_status=status, match=match)


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    raw: bytes
    script_used: str = "default"
    chunks_sent: int = 0
    chunks_total: int = 0
    finished: bool = False
    aborted: bool = False
    received_at: float = field(default_factory=time.monotonic)


class ScriptedUpstream:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scripts: collections.deque[Script] = collections.deque()
        self.requests: list[RecordedRequest] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._make_handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, name="scripted-upstream", daemon=True)

    # ---- test-facing API -------------------------------------------------------------
    def start(self) -> "ScriptedUpstream":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def push(self, script: Script) -> None:
        with self._lock:
            self._scripts.append(script)

    def reset(self) -> None:
        with self._lock:
            self._scripts.clear()
            self.requests.clear()

    def chat_requests(self, containing: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            reqs = [r for r in self.requests if r.path.rstrip("/").endswith("/chat/completions")]
        if containing is not None:
            reqs = [r for r in reqs if containing in r.raw.decode("utf-8", "replace")]
        return reqs

    def wait_for_request(self, containing: str, timeout: float = 10.0) -> RecordedRequest:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reqs = self.chat_requests(containing)
            if reqs:
                return reqs[-1]
            time.sleep(0.02)
        raise AssertionError(f"upstream received no chat request containing {containing!r} within {timeout}s")

    # ---- internals -------------------------------------------------------------------
    def _take_script(self, raw_body: bytes) -> Script | None:
        text = raw_body.decode("utf-8", "replace")
        with self._lock:
            for i, s in enumerate(self._scripts):
                if s.match is None or s.match in text:
                    del self._scripts[i]
                    return s
        return None

    def _make_handler(self):
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # close after every response: SSE ends at EOF
            server_version = "scripted-upstream/1"

            def log_message(self, fmt, *args):  # keep pytest output clean
                pass

            def _read_body(self) -> bytes:
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def _json(self, status: int, obj: Any) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802
                if self.path.rstrip("/").endswith("/models"):
                    self._json(200, {"object": "list", "data": [{"id": "up-model", "object": "model", "created": 0,
                                                                  "owned_by": "scripted"}]})
                else:
                    self._json(404, {"error": {"message": "not found", "type": "invalid_request_error",
                                               "param": None, "code": None}})

            def do_POST(self):  # noqa: N802
                raw = self._read_body()
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                rec = RecordedRequest("POST", self.path, dict(self.headers.items()), body, raw)
                with upstream._lock:
                    upstream.requests.append(rec)
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._json(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error",
                                               "param": None, "code": None}})
                    return
                if not isinstance(body, dict):
                    self._json(400, {"error": {"message": "body must be a JSON object",
                                               "type": "invalid_request_error", "param": None, "code": None}})
                    return
                script = upstream._take_script(raw)
                if script is None:
                    script = text_script(["Hello", " from", " upstream"])
                else:
                    rec.script_used = "scripted"
                if script.fail_status is not None:
                    rec.finished = True
                    self._json(script.fail_status, {"error": {"message": script.deltas[0],
                                                              "type": "invalid_request_error",
                                                              "param": None, "code": None}})
                    return
                model = body.get("model") or "up-model"
                problem = _tool_sequence_problem(body.get("messages") or [])
                if problem:
                    # What OpenAI answers to a broken tool-call sequence.
                    rec.script_used = "rejected"
                    self._json(400, {"error": {"message": problem, "type": "invalid_request_error",
                                               "param": "messages", "code": None}})
                    return
                if body.get("stream"):
                    self._stream(rec, script, model)
                else:
                    self._non_stream(rec, script, model)

            def _stream(self, rec: RecordedRequest, script: Script, model: str) -> None:
                cid = f"chatcmpl-{int(time.time() * 1000)}"
                created = int(time.time())

                def chunk(delta: dict | None, finish: str | None = None, usage: dict | None = None) -> bytes:
                    obj: dict[str, Any] = {"id": cid, "object": "chat.completion.chunk", "created": created,
                                           "model": model, "system_fingerprint": None}
                    if delta is None:
                        obj["choices"] = []
                        obj["usage"] = usage
                    else:
                        obj["choices"] = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
                    return b"data: " + json.dumps(obj).encode() + b"\n\n"

                frames = [chunk({"role": "assistant", "content": ""})]
                for d in script.deltas:
                    frames.append(chunk({"content": d} if isinstance(d, str) else d))
                frames.append(chunk({}, script.finish_reason))
                if script.usage is not None:
                    frames.append(chunk(None, usage=script.usage))
                frames.append(b"data: [DONE]\n\n")
                rec.chunks_total = len(frames)
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Cache-Control", "no-cache")
                    self.end_headers()
                    self.wfile.flush()
                    for f in frames:
                        if script.delay:
                            time.sleep(script.delay)
                        self.wfile.write(f)
                        self.wfile.flush()
                        rec.chunks_sent += 1
                    rec.finished = True
                except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, OSError):
                    rec.aborted = True

            def _non_stream(self, rec: RecordedRequest, script: Script, model: str) -> None:
                if script.delay:
                    time.sleep(script.delay * (len(script.deltas) + 2))
                text = "".join(d for d in script.deltas if isinstance(d, str))
                calls: dict[int, dict] = {}
                for d in script.deltas:
                    if isinstance(d, dict):
                        for tc in d.get("tool_calls", []):
                            c = calls.setdefault(tc["index"], {"id": None, "type": "function",
                                                               "function": {"name": "", "arguments": ""}})
                            if tc.get("id"):
                                c["id"] = tc["id"]
                            fn = tc.get("function", {})
                            c["function"]["name"] += fn.get("name", "") or ""
                            c["function"]["arguments"] += fn.get("arguments", "") or ""
                msg: dict[str, Any] = {"role": "assistant", "content": text or None}
                if calls:
                    msg["tool_calls"] = [calls[i] for i in sorted(calls)]
                rec.finished = True
                self._json(200, {"id": "chatcmpl-x", "object": "chat.completion", "created": int(time.time()),
                                 "model": model, "choices": [{"index": 0, "message": msg, "logprobs": None,
                                                              "finish_reason": script.finish_reason}],
                                 "usage": script.usage})

        return Handler


# --------------------------------------------------------------------------------------
# Raw HTTP helper (for byte-level checks the SDK would hide)
# --------------------------------------------------------------------------------------


@dataclass
class SSEFrame:
    event: str | None
    data: str
    data_lines: int
    raw: str

    def json(self) -> Any:
        return json.loads(self.data)


def parse_sse(text: str) -> list[SSEFrame]:
    frames: list[SSEFrame] = []
    for block in re.split(r"\r?\n\r?\n", text):
        if not block.strip():
            continue
        event = None
        data: list[str] = []
        for line in re.split(r"\r?\n", block):
            if not line or line.startswith(":"):
                continue  # comment / keep-alive
            name, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
        if event is None and not data:
            continue
        frames.append(SSEFrame(event=event, data="\n".join(data), data_lines=len(data), raw=block))
    return frames


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def sse(self) -> list[SSEFrame]:
        return parse_sse(self.body.decode("utf-8"))


class RawClient:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, path: str, body: Any = None, timeout: float = 30.0) -> RawResponse:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Authorization", "Bearer test")
        req.add_header("Accept", "*/*")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return RawResponse(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read())
        except urllib.error.HTTPError as e:
            return RawResponse(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read())

    def post(self, path: str, body: Any) -> RawResponse:
        return self.request("POST", path, body)

    def get(self, path: str) -> RawResponse:
        return self.request("GET", path)

    def delete(self, path: str) -> RawResponse:
        return self.request("DELETE", path)


# --------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_SPOOL_LOG: Path | None = None


@pytest.fixture(scope="session")
def upstream():
    up = ScriptedUpstream().start()
    yield up
    up.stop()


@pytest.fixture(autouse=True)
def _fresh_upstream_queue(request):
    """Each test starts with an empty script queue (requests recorded by earlier tests are dropped)."""
    if "upstream" in request.fixturenames:  # fixturenames is the transitive closure
        request.getfixturevalue("upstream").reset()
    yield


MCP_SERVER = Path(__file__).resolve().parent / "mcp_server.py"


def _tool_sequence_problem(messages: list[dict]) -> str | None:
    """The rule OpenAI enforces: an assistant message with tool_calls must be
    followed by a tool message for each call, before any other message, and
    a tool message must answer a call."""
    open_calls: list[str] = []
    for m in messages:
        if m.get("role") == "tool":
            call_id = m.get("tool_call_id")
            if call_id not in open_calls:
                return f"tool message {call_id!r} answers no preceding tool call"
            open_calls.remove(call_id)
            continue
        if open_calls:
            return f"tool_call_ids did not have response messages: {open_calls}"
        open_calls = [c["id"] for c in m.get("tool_calls") or []]
    return None


@pytest.fixture(scope="session")
def mcp_http():
    """The test MCP server over streamable HTTP; yields its URL."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, str(MCP_SERVER), "http", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 20.0
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("the MCP test server did not start")
    yield f"http://127.0.0.1:{port}/mcp"
    proc.kill()
    proc.wait(5)


@pytest.fixture(scope="session")
def spool(upstream, mcp_http, tmp_path_factory):
    global _SPOOL_LOG
    binary = Path(os.environ.get("SPOOL_BIN", str(DEFAULT_SPOOL_BIN)))
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        message = f"spool binary not found at {binary} (build it with `cargo build` or set SPOOL_BIN)"
        if "SPOOL_BIN" in os.environ:
            # Named explicitly (as scripts/test does): a missing binary is a failure, not a skip.
            pytest.fail(message)
        pytest.skip(message)
    tmp = tmp_path_factory.mktemp("spool")
    port = _free_port()
    config = tmp / "spool.toml"
    # An agent whose MCP server is a command the operator configured (stdio).
    config.write_text(
        '[[agents]]\n'
        'name = "mcp-stdio"\n'
        'model = "up-model"\n'
        f'tools = [{{ type = "mcp", server_label = "local", command = [{json.dumps(sys.executable)}, '
        f'{json.dumps(str(MCP_SERVER))}, "stdio"], require_approval = "never" }}]\n'
    )
    env = dict(os.environ)
    env.update({
        "SPOOL_ADDR": f"127.0.0.1:{port}",
        "SPOOL_DATABASE_URL": f"sqlite://{tmp}/spool.db",
        "SPOOL_UPSTREAM_URL": upstream.base_url,
        "SPOOL_MCP_ALLOWED_URLS": mcp_http.rsplit("/", 1)[0] + "/",
        "SPOOL_CONFIG": str(config),
    })
    env.setdefault("RUST_LOG", "info")
    log_path = tmp / "spool.log"
    _SPOOL_LOG = log_path
    log = open(log_path, "wb")
    proc = subprocess.Popen([str(binary), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, cwd=str(tmp))
    root = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20.0
    healthy = False
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with urllib.request.urlopen(root + "/healthz", timeout=1.0) as r:
                if r.status == 200:
                    healthy = True
                    break
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.1)
    if not healthy:
        rc = proc.poll()
        if rc is None:
            proc.kill()
            proc.wait(5)
        log.close()
        tail = log_path.read_text(errors="replace")[-4000:]
        pytest.fail(f"spool did not become healthy on {root}/healthz within 20 s (exit code {rc}).\n"
                    f"--- spool log ---\n{tail}", pytrace=False)
    try:
        yield f"{root}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


@pytest.fixture(scope="session")
def client(spool):
    import openai

    return openai.OpenAI(base_url=spool, api_key="test", max_retries=0, timeout=30.0)


@pytest.fixture(scope="session")
def raw(spool) -> RawClient:
    return RawClient(spool)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and _SPOOL_LOG is not None and _SPOOL_LOG.exists():
        tail = _SPOOL_LOG.read_text(errors="replace")[-3000:]
        report.sections.append(("spool log (tail)", tail))
