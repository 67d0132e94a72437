"""The OpenAI-compatible backend against a real HTTP server on loopback.

The server speaks the chat-completions wire format (JSON, and Server-Sent Events over
HTTP/1.1 chunked encoding like Ollama, vLLM and the llama.cpp server). The requested model
name picks its behaviour, so each test provokes one fault. Every call runs under a time
limit in a helper thread: a hang fails the test instead of blocking the run.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from models.llm.base import LLMError, Usage
from models.llm.openai_backend import OpenAICompatibleBackend
from models.progress import CancelFlag, Cancelled

PIECES = ["The ", "answer", " is", " 42."]
MESSAGES = [{"role": "user", "content": "What is the answer?"}]
LIMIT = 15.0  # seconds any single call may take before the test calls it a hang


# ------------------------------------------------------------------------------- the server
def chunk(content: str | None = None, finish: str | None = None, role: str | None = None,
          model: str = "ok") -> dict:
    delta = {k: v for k, v in (("role", role), ("content", content)) if v is not None}
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
            "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


USAGE_CHUNK = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
               "model": "ok", "choices": [],
               "usage": {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16}}


def answer_chunks(with_usage: bool = True) -> list[dict]:
    chunks = [chunk(role="assistant", content="")]
    chunks += [chunk(piece) for piece in PIECES]
    chunks.append(chunk(finish="stop"))
    return [*chunks, USAGE_CHUNK] if with_usage else chunks


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked bodies, as real servers do
    server: FakeServer

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass

    # --- writing helpers
    def send_json(self, status: int, payload: object, headers: dict | None = None) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def start_sse(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()

    def write_chunked(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def event(self, payload: object) -> None:
        text = payload if isinstance(payload, str) else json.dumps(payload)
        self.write_chunked(f"data: {text}\n\n".encode())

    def end_sse(self) -> None:
        self.event("[DONE]")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def drop_connection(self) -> None:
        """Close the socket abruptly, mid-body: no terminating chunk."""
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)
        self.connection.close()

    def error(self, status: int, message: str, code: str | None = None,
              param: str | None = None) -> None:
        self.send_json(status, {"error": {"message": message, "type": "invalid_request_error",
                                          "param": param, "code": code}})

    # --- routes
    def do_GET(self) -> None:
        if self.path != "/v1/models":
            self.send_json(404, b"404 page not found")
        elif self.server.models_garbage:
            self.send_json(200, {"models": "not a list"})
        else:
            self.send_json(200, {"object": "list", "data": [
                {"id": name, "object": "model", "created": 1, "owned_by": "test"}
                for name in ("ok", "slow", "busy")]})

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        model = request.get("model", "")
        self.server.requests.append(request)
        self.server.attempts[model] += 1
        if self.path != "/v1/chat/completions":
            self.send_json(404, b"404 page not found")
            return
        behaviour = getattr(self, "model_" + model.replace("-", "_"), None)
        if behaviour is None:
            self.error(404, f"The model `{model}` does not exist.", code="model_not_found")
            return
        behaviour(request)

    # --- behaviours, one per model name
    def model_ok(self, request: dict) -> None:
        if not request.get("stream"):
            self.send_json(200, {
                "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "ok",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": "".join(PIECES)}}],
                "usage": {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16}})
            return
        with_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        self.start_sse()
        for payload in answer_chunks(with_usage):
            self.event(payload)
        self.end_sse()

    def model_scripted(self, request: dict) -> None:
        """Streams ``server.script``: whatever answer a test wants the LLM to give."""
        self.start_sse()
        for piece in self.server.script:
            self.event(chunk(piece))
        self.event(chunk(finish="stop"))
        self.event(USAGE_CHUNK)
        self.end_sse()

    def model_needs_key(self, request: dict) -> None:
        if self.headers.get("Authorization") != "Bearer sekrit":
            self.error(401, "Incorrect API key provided: wr***ng.", code="invalid_api_key")
        else:
            self.model_ok(request)

    def model_forbidden(self, request: dict) -> None:
        self.error(403, "You are not allowed to sample from this model.")

    def model_slow(self, request: dict) -> None:
        self.server.release.wait(5)  # longer than the client's timeout
        self.model_ok(request)

    def model_stall_mid(self, request: dict) -> None:
        self.start_sse()
        self.event(chunk(PIECES[0]))
        self.server.release.wait(5)

    def model_think_first(self, request: dict) -> None:
        # Headers at once, the first token only after 1.5 s (a model loading).
        self.start_sse()
        time.sleep(1.5)
        self.model_ok_body()

    def model_ok_body(self) -> None:
        for payload in answer_chunks():
            self.event(payload)
        self.end_sse()

    def model_busy_once(self, request: dict) -> None:
        if self.server.attempts["busy-once"] == 1:
            self.error(429, "Rate limit reached, slow down.", code="rate_limit_exceeded")
        else:
            self.model_ok(request)

    def model_busy(self, request: dict) -> None:
        self.error(429, "Rate limit reached, slow down.", code="rate_limit_exceeded")

    def model_no_quota(self, request: dict) -> None:
        self.error(429, "You exceeded your current quota.", code="insufficient_quota")

    def model_broken(self, request: dict) -> None:
        self.error(500, "CUDA out of memory")

    def model_garbage(self, request: dict) -> None:
        body = b"<html><body>502 Bad Gateway (nginx)</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def model_garbage_sse(self, request: dict) -> None:
        self.start_sse()
        self.event("this is not json")
        self.end_sse()

    def model_wrong_shape(self, request: dict) -> None:
        self.start_sse()
        self.event({"text": "hello"})  # JSON, but not a chat.completion.chunk
        self.end_sse()

    def model_empty(self, request: dict) -> None:
        self.start_sse()
        self.end_sse()  # [DONE] and nothing else

    def model_empty_length(self, request: dict) -> None:
        self.start_sse()
        self.event(chunk(role="assistant", content=""))
        self.event(chunk(finish="length"))
        self.end_sse()

    def model_disconnect(self, request: dict) -> None:
        self.start_sse()
        self.event(chunk(role="assistant", content=""))
        for piece in PIECES[:2]:
            self.event(chunk(piece))
        self.drop_connection()

    def model_close_early(self, request: dict) -> None:
        # An HTTP/1.0-style body that ends by closing the socket: at the HTTP level the
        # truncation looks like a normal end.
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        for piece in PIECES[:2]:
            self.wfile.write(f"data: {json.dumps(chunk(piece))}\n\n".encode())
        self.close_connection = True

    def model_error_event(self, request: dict) -> None:
        self.start_sse()
        self.event(chunk(PIECES[0]))
        self.event({"error": {"message": "model runner crashed", "type": "server_error"}})
        self.end_sse()

    def model_drip(self, request: dict) -> None:
        self.start_sse()
        for index in range(50):
            self.event(chunk(f"word{index} "))
            time.sleep(0.05)
        self.end_sse()

    def model_hang_after_headers(self, request: dict) -> None:
        self.start_sse()
        self.event(chunk(role="assistant", content=""))
        self.server.release.wait(5)

    def model_no_stream_options(self, request: dict) -> None:
        if "stream_options" in request:
            self.error(400, "Unrecognized request argument supplied: stream_options",
                       param="stream_options")
        else:
            self.model_ok(request)

    def model_reasoning(self, request: dict) -> None:
        if "max_tokens" in request:
            self.error(400, "Unsupported parameter: 'max_tokens' is not supported with this "
                       "model. Use 'max_completion_tokens' instead.", param="max_tokens",
                       code="unsupported_parameter")
        else:
            self.model_ok(request)

    def model_json_reply(self, request: dict) -> None:
        self.model_ok({**request, "stream": False})  # ignores stream=True


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str = "127.0.0.1") -> None:
        super().__init__((host, 0), Handler)
        self.host = host
        self.requests: list[dict] = []
        self.attempts: Counter[str] = Counter()
        self.release = threading.Event()  # lets slow handlers finish at teardown
        self.models_garbage = False
        self.script: list[str] = []

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.server_port}/v1"

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # writes after a deliberate disconnect fail; that is the point


@contextmanager
def serving(script: list[str] | None = None) -> Iterator[FakeServer]:
    """A FakeServer answering on a loopback port in a thread, shut down afterwards (other
    test modules use it for a real streaming LLM server)."""
    httpd = FakeServer()
    httpd.script = list(script or [])
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.release.set()
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture()
def server() -> Iterator[FakeServer]:
    with serving() as httpd:
        yield httpd


def backend(url: str, model: str, **options: object) -> OpenAICompatibleBackend:
    options = {"timeout": 2.0, "max_retries": 0, **options}
    return OpenAICompatibleBackend(url, model, **options)  # type: ignore[arg-type]


def run(llm: OpenAICompatibleBackend, cancel: CancelFlag | None = None,
        cancel_after: int | None = None) -> tuple[list[str], BaseException | None, float]:
    """Consume stream() in a helper thread, under LIMIT: (pieces, exception, seconds)."""
    pieces: list[str] = []
    outcome: list[BaseException | None] = [None]

    def consume() -> None:
        try:
            for piece in llm.stream(MESSAGES, max_tokens=64, cancel=cancel):
                pieces.append(piece)
                if cancel is not None and cancel_after is not None and len(pieces) == cancel_after:
                    cancel.cancel()
        except BaseException as exc:  # handed to the test
            outcome[0] = exc

    start = time.monotonic()
    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    thread.join(LIMIT)
    assert not thread.is_alive(), f"stream() hung for more than {LIMIT} s"
    return pieces, outcome[0], time.monotonic() - start


def fails(llm: OpenAICompatibleBackend) -> tuple[str, list[str], float]:
    pieces, exc, seconds = run(llm)
    assert isinstance(exc, LLMError), f"expected LLMError, got {exc!r}"
    return str(exc), pieces, seconds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------------------ happy paths
def test_streams_pieces_in_order_and_records_usage(server: FakeServer) -> None:
    llm = backend(server.url, "ok")
    pieces, exc, _ = run(llm)
    assert exc is None
    assert pieces == PIECES
    assert llm.last_usage == Usage(tokens_in=12, tokens_out=4)
    sent = server.requests[-1]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["max_tokens"] == 64 and sent["messages"] == MESSAGES
    assert llm.complete(MESSAGES) == "".join(PIECES)


def test_api_key_none_sends_placeholder_and_right_key_works(server: FakeServer) -> None:
    pieces, exc, _ = run(backend(server.url, "needs-key", api_key="sekrit"))
    assert exc is None and pieces == PIECES
    assert backend(server.url, "ok", api_key=None).complete(MESSAGES) == "".join(PIECES)


def test_usage_left_unknown_when_server_rejects_stream_options(server: FakeServer) -> None:
    llm = backend(server.url, "no-stream-options")
    llm.last_usage = Usage(1, 1)  # from an earlier answer: must not survive
    pieces, exc, _ = run(llm)
    assert exc is None and pieces == PIECES
    assert llm.last_usage == Usage(None, None)
    assert "stream_options" not in server.requests[-1]


def test_max_tokens_renamed_for_models_that_want_max_completion_tokens(
        server: FakeServer) -> None:
    pieces, exc, _ = run(backend(server.url, "reasoning"))
    assert exc is None and pieces == PIECES
    assert server.requests[-1]["max_completion_tokens"] == 64


def test_server_that_ignores_stream_true_still_answers(server: FakeServer) -> None:
    llm = backend(server.url, "json-reply")
    pieces, exc, _ = run(llm)
    assert exc is None and "".join(pieces) == "".join(PIECES)
    assert llm.last_usage == Usage(12, 4)


def test_first_token_timeout_allows_a_slow_start(server: FakeServer) -> None:
    # timeout 1 s alone would fail the 1.5 s wait for the first token.
    pieces, exc, _ = run(backend(server.url, "think-first", timeout=1.0,
                                 first_token_timeout=4.0))
    assert exc is None and pieces == PIECES


def test_list_models(server: FakeServer) -> None:
    assert backend(server.url, "ok").list_models() == ["ok", "slow", "busy"]


def test_is_remote() -> None:
    assert not backend("http://127.0.0.1:8080/v1", "m").is_remote
    assert not backend("http://localhost/v1", "m").is_remote
    assert backend("https://api.openai.com/v1", "gpt-4o-mini", api_key="k").is_remote


def test_rejects_a_url_without_scheme() -> None:
    with pytest.raises(LLMError, match="not an http"):
        OpenAICompatibleBackend("localhost:11434/v1", "llama3")


# ------------------------------------------------------------------------------------ faults
def test_server_down() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    message, _, seconds = fails(backend(url, "ok", max_retries=1))
    assert seconds < 3  # one back-off of at most 0.5 s
    assert "Cannot reach" in message and "connection refused" in message
    assert url in message and "tried 2 times" in message
    with pytest.raises(LLMError, match="connection refused"):
        backend(url, "ok").list_models()


def test_slow_server_times_out_after_retrying(server: FakeServer) -> None:
    message, _, seconds = fails(backend(server.url, "slow", timeout=1.0, max_retries=1))
    assert "did not answer within 1 s" in message and "tried 2 times" in message
    assert server.attempts["slow"] == 2
    assert seconds < 4.5


def test_stall_mid_stream_times_out(server: FakeServer) -> None:
    message, pieces, seconds = fails(backend(server.url, "stall-mid", timeout=1.0))
    assert pieces == PIECES[:1]
    assert "stopped sending for 1 s mid-answer" in message
    assert f"after {len(PIECES[0])} characters" in message
    assert seconds < 3


def test_first_token_timeout_expires(server: FakeServer) -> None:
    message, pieces, seconds = fails(backend(server.url, "think-first", timeout=2.0,
                                             first_token_timeout=0.5))
    assert pieces == [] and "sent no text within 0.5 s" in message
    assert seconds < 1.5


@pytest.mark.parametrize(("model", "key"), [("needs-key", "wrong"), ("forbidden", None)])
def test_key_refused(server: FakeServer, model: str, key: str | None) -> None:
    message, _, _ = fails(backend(server.url, model, api_key=key))
    assert "refused the API key" in message and "Check the API key" in message
    assert "HTTP 40" in message


def test_unknown_model(server: FakeServer) -> None:
    message, _, _ = fails(backend(server.url, "llama-99b"))
    assert "does not know the model 'llama-99b'" in message
    assert f"{server.url}/models" in message and "HTTP 404" in message


def test_wrong_path_is_not_called_an_unknown_model(server: FakeServer) -> None:
    url = server.url.removesuffix("/v1")
    message, _, _ = fails(backend(url, "ok"))
    assert "no such endpoint" in message and "/v1" in message
    with pytest.raises(LLMError, match="no such endpoint"):
        backend(url, "ok").list_models()


def test_rate_limited_once_then_retry_succeeds(server: FakeServer) -> None:
    pieces, exc, _ = run(backend(server.url, "busy-once", max_retries=2))
    assert exc is None and pieces == PIECES
    assert server.attempts["busy-once"] == 2


def test_rate_limited_forever(server: FakeServer) -> None:
    message, _, seconds = fails(backend(server.url, "busy", max_retries=2))
    assert "rate-limiting" in message and "HTTP 429" in message and "tried 3 times" in message
    assert server.attempts["busy"] == 3
    assert seconds >= 0.7  # back-off 0.5 s, then 1 s, each minus up to 25 % jitter


def test_quota_used_up(server: FakeServer) -> None:
    message, _, _ = fails(backend(server.url, "no-quota", max_retries=0))
    assert "quota" in message and "billing" in message


def test_server_error(server: FakeServer) -> None:
    message, _, _ = fails(backend(server.url, "broken", max_retries=1))
    assert "server error" in message and "HTTP 500" in message
    assert "CUDA out of memory" in message and "tried 2 times" in message
    assert server.attempts["broken"] == 2


@pytest.mark.parametrize(("model", "wording"), [
    ("garbage", "instead of a chat-completions stream"),
    ("garbage-sse", "not a chat-completions answer"),
    ("wrong-shape", "not a chat-completions answer"),
])
def test_malformed_reply(server: FakeServer, model: str, wording: str) -> None:
    message, pieces, _ = fails(backend(server.url, model))
    assert wording in message and pieces == []


def test_malformed_model_list(server: FakeServer) -> None:
    server.models_garbage = True
    with pytest.raises(LLMError, match="model list of the wrong shape"):
        backend(server.url, "ok").list_models()


def test_empty_stream(server: FakeServer) -> None:
    message, _, _ = fails(backend(server.url, "empty"))
    assert "empty stream" in message


def test_empty_answer_cut_by_max_tokens(server: FakeServer) -> None:
    message, _, _ = fails(backend(server.url, "empty-length"))
    assert "empty answer" in message and "max_tokens" in message


def test_disconnect_mid_stream(server: FakeServer) -> None:
    message, pieces, _ = fails(backend(server.url, "disconnect", max_retries=2))
    arrived = "".join(PIECES[:2])
    assert "".join(pieces) == arrived
    assert f"broke mid-answer, after {len(arrived)} characters" in message
    assert server.attempts["disconnect"] == 1  # never retried once text was yielded


def test_body_ending_without_end_marker(server: FakeServer) -> None:
    message, pieces, _ = fails(backend(server.url, "close-early"))
    assert pieces == PIECES[:2]
    assert f"stopped mid-answer after {len(''.join(PIECES[:2]))} characters" in message


def test_error_event_mid_stream(server: FakeServer) -> None:
    message, pieces, _ = fails(backend(server.url, "error-event"))
    assert pieces == PIECES[:1] and "model runner crashed" in message


# -------------------------------------------------------------------------------- cancelling
def test_cancel_mid_stream(server: FakeServer) -> None:
    cancel = CancelFlag()
    pieces, exc, seconds = run(backend(server.url, "drip"), cancel=cancel, cancel_after=3)
    assert isinstance(exc, Cancelled)
    assert len(pieces) == 3
    assert seconds < 1.5  # the whole drip takes 2.5 s


def test_cancel_while_waiting_for_first_token_closes_the_response(server: FakeServer) -> None:
    cancel = CancelFlag()
    before = set(threading.enumerate())
    threading.Timer(0.3, cancel.cancel).start()
    pieces, exc, seconds = run(backend(server.url, "hang-after-headers", timeout=10.0),
                               cancel=cancel)
    assert isinstance(exc, Cancelled) and pieces == []
    assert seconds < 1.0
    # The worker blocked reading the response is woken (not left for the 10 s timeout).
    workers = [thread for thread in threading.enumerate()
               if thread.name == "casewise-llm-stream" and thread not in before]
    for worker in workers:
        worker.join(2.0)
        assert not worker.is_alive()


def test_cancel_before_start_sends_nothing(server: FakeServer) -> None:
    cancel = CancelFlag()
    cancel.cancel()
    _, exc, _ = run(backend(server.url, "ok"), cancel=cancel)
    assert isinstance(exc, Cancelled) and server.requests == []
