"""A loopback LLM server speaking the OpenAI chat-completions wire format.

JSON, and Server-Sent Events over HTTP/1.1 chunked encoding like Ollama, vLLM and the
llama.cpp server. The requested model name picks its behaviour (``Handler.model_<name>``),
so a test provokes one fault by naming it; the model "scripted" streams ``server.script``,
whatever answer a test wants the LLM to give.
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

PIECES = ["The ", "answer", " is", " 42."]  # the answer of the model "ok", piece by piece


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
        self.refusing(request, "stream_options",
                      "Unrecognized request argument supplied: stream_options")

    def refusing(self, request: dict, param: str, message: str) -> None:
        """A 400 naming ``param`` when the request has it (as servers refuse what they do not
        support); otherwise the answer of the model "ok"."""
        if param in request:
            self.error(400, message, param=param)
        else:
            self.model_ok(request)

    def model_logprobs(self, request: dict) -> None:
        """Streams ``server.script`` as (token, logprob, [(alternative, logprob), ...]) with
        each token's log-probabilities, as vLLM or llama.cpp's server do when asked."""
        self.start_sse()
        for token, logprob, top in self.server.script:
            data = chunk(token)
            if request.get("logprobs"):
                data["choices"][0]["logprobs"] = {"content": [{
                    "token": token, "logprob": logprob, "bytes": None,
                    "top_logprobs": [{"token": t, "logprob": lp, "bytes": None}
                                     for t, lp in top][: request.get("top_logprobs", 0)]}]}
            self.event(data)
        self.event(chunk(finish="stop"))
        self.event(USAGE_CHUNK)
        self.end_sse()

    def model_no_logprobs(self, request: dict) -> None:
        self.refusing(request, "logprobs", "logprobs is not supported with this model.")

    def model_no_penalties(self, request: dict) -> None:
        self.refusing(request, "frequency_penalty",
                      "Unrecognized request argument supplied: frequency_penalty")

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
def serving(script: list[str] | None = None, host: str = "127.0.0.1") -> Iterator[FakeServer]:
    """A FakeServer answering in a thread (on loopback unless ``host`` says otherwise),
    streaming ``script`` to the model "scripted"; shut down afterwards."""
    httpd = FakeServer(host)
    httpd.script = list(script or [])
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.release.set()
        httpd.shutdown()
        httpd.server_close()


def free_port() -> int:
    """A loopback port nobody listens on (for "connection refused")."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def non_loopback_address() -> str | None:
    """This machine's address on its network (not loopback), if it has one."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a route
        address = probe.getsockname()[0]
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") else address
