"""A backend for any OpenAI-compatible chat-completions server: Ollama, LM Studio, the
llama.cpp server, vLLM or OpenAI itself, through the official ``openai`` client.

Retries: the client retries connection errors, timeouts, 408/409/429 and 5xx itself, with
exponential back-off (0.5 s doubling to 8 s, minus up to 25 % jitter; a Retry-After of up to
two minutes is honoured), see ``SyncAPIClient.request`` and ``BaseClient._should_retry`` in
``openai/_base_client.py``. It does so only inside ``create()``, before the stream object
exists; a failure while the stream is read is never retried. So no answer is ever sent twice
and nothing already shown to the user is silently replaced.

Waiting: the request runs in a worker thread and the caller's thread waits on a queue in
short slices, so a cancel (or a deadline) takes effect within a fraction of a second even
while a slow local model is still loading. Once the server has started answering, leaving
early also shuts the socket down so the server stops generating; before that (no response
yet) the worker is left to end on its own, within its timeout.
"""

from __future__ import annotations

import json
import queue
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import httpx2
import openai

from models.llm.base import LLMBackend, LLMError, Message, Usage
from models.llm.label_distribution import TokenChoice
from models.progress import CancelFlag, raise_if_cancelled

# How often the waiting thread wakes to look at the cancel flag and the deadlines.
_POLL_SECONDS = 0.05
# A server that has not accepted the TCP connection by then is down or unreachable: model
# loading never delays the handshake, so there is no point waiting the full read timeout.
_CONNECT_TIMEOUT_CAP = 10.0
# Bytes of an unexpected reply quoted in the error, enough to recognise an HTML error page.
_SNIPPET_BYTES = 200
# At most this many request rewrites for parameters a server or model rejects (see below).
_MAX_PARAM_FALLBACKS = 5
# Small models loop. OpenAI's API, vLLM, llama.cpp and Ollama subtract this times a token's
# count so far from its logit; ``transformers serve`` turns it into a repetition penalty of
# 1 + this, the 1.2 the in-process backend's 1.15 is close to. Stronger values made
# SmolLM2-135M write nonsense on ``transformers serve`` (1.5). The loop guard
# (``models.llm.answer_guard``) catches what this lets through.
FREQUENCY_PENALTY = 0.2
# Alternatives asked for at each token: the label's distribution is read from them
# (models.llm.label_distribution). Servers that do not return them answer without.
TOP_LOGPROBS = 5


class OpenAICompatibleBackend(LLMBackend):
    """Streams chat completions from an OpenAI-compatible server.

    ``timeout`` bounds connecting and every wait for data from the server (each attempt; the
    client retries a timed-out attempt up to ``max_retries`` times). ``first_token_timeout``,
    when given, bounds the whole wait from sending the request to the first piece of text,
    retries included; local servers often need longer for that (loading the model,
    reading a long prompt) than between later pieces.
    """

    name = "openai"

    def __init__(self, base_url: str, model: str, api_key: str | None = None,
                 timeout: float = 60.0, max_retries: int = 2,
                 first_token_timeout: float | None = None) -> None:
        super().__init__()
        parsed = urlparse(base_url or "")
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise LLMError(f"The LLM server URL {base_url!r} is not an http(s) URL; give it in "
                           "full, for example http://localhost:11434/v1 for Ollama.")
        if not model:
            raise LLMError("No model name given for the OpenAI-compatible backend; pass the "
                           "name the server lists for the model (GET <base-url>/models).")
        if timeout <= 0 or (first_token_timeout is not None and first_token_timeout <= 0):
            raise LLMError("LLM timeouts must be positive numbers of seconds.")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.first_token_timeout = first_token_timeout
        # httpx binds one read timeout per response (httpcore2/_sync/http11.py reads it once
        # when the body starts), so it cannot be tightened after the first token. It must be
        # long enough for the first-token wait; the gaps after it are enforced in stream().
        self._read_timeout = max(self.timeout, first_token_timeout or 0.0)
        self._client = openai.OpenAI(
            # Local servers need no key, but the client refuses to start without one (and
            # would otherwise fall back to $OPENAI_API_KEY and send it to this server).
            api_key=api_key or "not-needed",
            base_url=self.base_url,
            timeout=httpx2.Timeout(self._read_timeout,
                                   connect=min(self.timeout, _CONNECT_TIMEOUT_CAP)),
            max_retries=max_retries,
        )

    # ----------------------------------------------------------------------------- chat
    def stream(self, messages: list[Message], max_tokens: int = 384, temperature: float = 0.0,
               cancel: CancelFlag | None = None) -> Iterator[str]:
        raise_if_cancelled(cancel)
        self.last_usage = Usage()  # a failed or usage-less answer must not show old counts
        self.last_logprobs: list[TokenChoice] = []  # empty: the server returned none
        params: dict[str, Any] = {
            "model": self.model, "messages": messages, "max_tokens": max_tokens,
            "temperature": temperature, "stream": True,
            "stream_options": {"include_usage": True}, "frequency_penalty": FREQUENCY_PENALTY,
            "logprobs": True, "top_logprobs": TOP_LOGPROBS,
        }
        events: queue.Queue[tuple[str, Any]] = queue.Queue()
        stop = threading.Event()
        worker = threading.Thread(target=self._pump, args=(params, events, stop),
                                  name="casewise-llm-stream", daemon=True)
        worker.start()

        received = 0  # characters of answer text yielded so far
        finish_reason: str | None = None
        saw_usage = False  # the final usage chunk came: the answer is complete
        response: Any = None  # the HTTP response once the server has started answering
        done = False  # the worker sent its last event (it finishes on its own)
        started = last_event = time.monotonic()
        try:
            while True:
                try:
                    kind, value = events.get(timeout=_POLL_SECONDS)
                except queue.Empty:
                    raise_if_cancelled(cancel)
                    self._check_deadlines(started, last_event, received)
                    continue
                raise_if_cancelled(cancel)
                last_event = time.monotonic()
                if kind == "opened":
                    response = value
                elif kind == "chunk":
                    piece, reason, usage = self._read_chunk(value)
                    finish_reason = reason or finish_reason
                    saw_usage = saw_usage or usage
                    if piece:
                        received += len(piece)
                        yield piece
                elif kind == "whole":
                    done = True
                    piece, finish_reason = self._read_whole(value)
                    if piece:
                        received += len(piece)
                        yield piece
                    break  # the whole answer came at once; nothing follows
                elif kind == "not_sse":
                    done = True
                    content_type, snippet = value
                    raise LLMError(f"The LLM server at {self.base_url} answered with "
                                   f"{content_type!r} instead of a chat-completions stream: "
                                   f"{snippet!r}. Check that the URL is the server's "
                                   "OpenAI-compatible API (usually ending in /v1).")
                elif kind == "error":
                    done = True
                    raise self._explain(value, opened=response is not None,
                                        received=received) from value
                else:  # "end": [DONE], or the body ended
                    done = True
                    break
        finally:
            # Tell the worker to stop at its next chunk (it then closes the response), and
            # when we leave early (cancel, deadline, the caller stopped reading) wake it now.
            stop.set()
            if not done and worker.is_alive():
                _interrupt(response)

        if received == 0:
            if finish_reason is None and not saw_usage:
                raise LLMError(f"The LLM server at {self.base_url} sent an empty stream (no "
                               "text and no end-of-answer marker). Check the server's log; "
                               f"try another model than {self.model!r} if it persists.")
            hint = (" The answer hit max_tokens before any text: raise it."
                    if finish_reason == "length" else " Try again, or check that the model "
                    "is a chat model.")
            raise LLMError(f"The LLM server at {self.base_url} returned an empty answer "
                           f"(finish_reason {finish_reason!r}, no text).{hint}")
        if finish_reason is None and not saw_usage:
            # The body ended cleanly but without a finish_reason or the usage chunk: the
            # server (or a proxy) stopped mid-answer. Servers that end a body by closing the
            # socket (HTTP/1.0 style) make a crash look like a normal end at the HTTP level.
            raise LLMError(f"The LLM server at {self.base_url} stopped mid-answer after "
                           f"{received} characters had arrived (no end-of-answer marker). "
                           "Check the server's log and try again.")

    def _pump(self, params: dict[str, Any], events: queue.Queue[tuple[str, Any]],
              stop: threading.Event) -> None:
        """Worker thread: open the stream and pass each chunk (or the failure) to stream()."""
        try:
            response_stream = self._create(params)
        except Exception as exc:  # every failure is handed over and explained by stream()
            events.put(("error", exc))
            return
        try:
            http = response_stream.response
            events.put(("opened", http))
            content_type = http.headers.get("content-type", "").lower()
            if "json" in content_type:
                # Some servers and proxies ignore stream=True and send one JSON answer.
                events.put(("whole", http.read()))
            elif content_type and "event-stream" not in content_type:
                # The client would parse such a body as an SSE stream with no events and
                # report a clean, empty end (openai/_streaming.py, Stream.__stream__).
                snippet = b""
                for part in http.iter_bytes():
                    snippet += part
                    if len(snippet) >= _SNIPPET_BYTES:
                        break
                events.put(("not_sse", (content_type, _snippet(snippet))))
            else:
                for chunk in response_stream:
                    if stop.is_set():
                        return
                    events.put(("chunk", chunk))
                events.put(("end", None))
        except Exception as exc:
            events.put(("error", exc))
        finally:
            response_stream.close()

    def _create(self, params: dict[str, Any]) -> openai.Stream[Any]:
        """``create()``, rewritten when the server rejects a parameter it does not support.

        Only a 400 before anything was streamed leads to a rewrite, so it never repeats an
        answer. Servers differ: some reject ``stream_options``; OpenAI's reasoning models
        want ``max_completion_tokens`` and only their default temperature.
        """
        for _ in range(_MAX_PARAM_FALLBACKS):
            try:
                return self._client.chat.completions.create(**params)
            except openai.BadRequestError as exc:
                rewritten = _without_rejected_param(params, exc)
                if rewritten is None:
                    raise
                params = rewritten
        return self._client.chat.completions.create(**params)

    def _check_deadlines(self, started: float, last_event: float, received: int) -> None:
        now = time.monotonic()
        if (received == 0 and self.first_token_timeout is not None
                and now - started > self.first_token_timeout):
            raise LLMError(f"The LLM server at {self.base_url} sent no text within "
                           f"{self.first_token_timeout:g} s. The model may still be loading, "
                           "or the prompt is long for this machine: try again, or raise the "
                           "first-token timeout.")
        if received > 0 and now - last_event > self.timeout:
            raise self._stalled(received)

    def _read_chunk(self, chunk: Any) -> tuple[str, str | None, bool]:
        """(text, finish_reason, had usage) of one streamed chunk; records the usage.

        The client does not validate chunks (it builds them with pydantic's construct), so a
        reply of the wrong shape arrives as a chunk whose fields are None.
        """
        choices = getattr(chunk, "choices", None)
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self.last_usage = Usage(_int_or_none(getattr(usage, "prompt_tokens", None)),
                                    _int_or_none(getattr(usage, "completion_tokens", None)))
        if not isinstance(choices, list):
            if usage is None:
                raise self._malformed(_dump(chunk))
            return "", None, True
        if not choices:  # the usage chunk, or e.g. Azure's prompt-filter results
            return "", None, usage is not None
        # We ask for one answer (n=1), so only the first choice matters.
        self.last_logprobs += _token_choices(getattr(choices[0], "logprobs", None))
        delta = getattr(choices[0], "delta", None)
        content = getattr(delta, "content", None)
        reason = getattr(choices[0], "finish_reason", None)
        return ((content if isinstance(content, str) else ""),
                (reason if isinstance(reason, str) else None), usage is not None)

    def _read_whole(self, body: bytes) -> tuple[str, str | None]:
        """The text and finish_reason of a non-streamed chat completion (JSON body)."""
        try:
            data = json.loads(body)
            choice = data["choices"][0]
            content = choice["message"]["content"] or ""
            usage = data.get("usage") or {}
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise self._malformed(_snippet(body)) from None
        if not isinstance(content, str):
            raise self._malformed(_snippet(body))
        if isinstance(usage, dict):
            self.last_usage = Usage(_int_or_none(usage.get("prompt_tokens")),
                                    _int_or_none(usage.get("completion_tokens")))
        reason = choice.get("finish_reason") if isinstance(choice, dict) else None
        return content, reason if isinstance(reason, str) else "stop"

    # --------------------------------------------------------------------------- models
    def list_models(self) -> list[str]:
        """The model ids the server offers (GET <base-url>/models)."""
        try:
            # A plain GET, not client.models.list(): on a non-JSON reply that one fails with
            # AttributeError ('str' object has no attribute '_set_private_attributes') from
            # SyncAPIClient._request_api_list in openai/_base_client.py.
            data = self._client.get("/models", cast_to=object)
        except Exception as exc:
            raise self._explain(exc, opened=False, received=0, listing=True) from exc
        entries = data.get("data") if isinstance(data, dict) else None
        if isinstance(entries, list) and all(
                isinstance(entry, dict) and isinstance(entry.get("id"), str) for entry in entries):
            return [entry["id"] for entry in entries]
        text = data if isinstance(data, str) else json.dumps(data)[:_SNIPPET_BYTES]
        raise LLMError(f"The LLM server at {self.base_url} sent a model list of the wrong "
                       f"shape (expected {{\"data\": [{{\"id\": ...}}]}}): "
                       f"{_snippet(text.encode())!r}. Check that the URL is the server's "
                       "OpenAI-compatible API (usually ending in /v1).")

    # --------------------------------------------------------------------------- errors
    def _explain(self, exc: Exception, *, opened: bool, received: int,
                 listing: bool = False) -> LLMError:
        """One clear LLMError for any failure: what failed and what to do about it."""
        where = f"the LLM server at {self.base_url}"
        tries = f"tried {self.max_retries + 1} times" if self.max_retries else "tried once"
        if isinstance(exc, LLMError):
            return exc
        if isinstance(exc, openai.APITimeoutError):
            if opened:
                return self._stalled(received)
            return LLMError(f"The LLM server at {self.base_url} did not answer within "
                            f"{self._read_timeout:g} s ({tries}). The model may still be "
                            "loading or the machine is busy: try again, or raise the timeout.")
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__
            if opened:
                return LLMError(f"The connection to {where} broke mid-answer, after {received} "
                                f"characters had arrived ({_describe(cause)}). Check the "
                                "server's log and try again.")
            if isinstance(cause, httpx2.ConnectError):
                refused = "refused" in str(cause).lower()
                what = "connection refused" if refused else _describe(cause)
                todo = ("Start the server, or check the URL and port." if refused else
                        "Check the URL, the network and that the server is running.")
                return LLMError(f"Cannot reach {where} ({what}; {tries}). {todo}")
            return LLMError(f"The LLM server at {self.base_url} closed the connection "
                            "without answering "
                            f"({_describe(cause)}; {tries}). Check the URL and the "
                            "server's log.")
        if isinstance(exc, openai.APIResponseValidationError):
            return self._malformed(_snippet(str(exc.body).encode()))
        if isinstance(exc, openai.APIStatusError):
            return self._explain_status(exc, tries, listing)
        if isinstance(exc, openai.APIError):
            # An {"error": ...} event inside an otherwise healthy stream.
            return LLMError(f"The LLM server at {self.base_url} reported an error "
                            "mid-answer, after "
                            f"{received} characters: {exc.message}. Check the server's log.")
        if isinstance(exc, ValueError):  # json.JSONDecodeError from a non-JSON SSE event
            return self._malformed(_snippet(getattr(exc, "doc", str(exc)).encode()))
        return LLMError(f"Talking to {where} failed unexpectedly: {type(exc).__name__}: {exc}")

    def _explain_status(self, exc: openai.APIStatusError, tries: str,
                        listing: bool) -> LLMError:
        where = f"The LLM server at {self.base_url}"
        status = exc.status_code
        said = _server_message(exc)
        detail = f"HTTP {status}" + (f": {said}" if said else "")
        lowered = said.lower()
        model_missing = (not listing and (exc.code == "model_not_found" or (
            "model" in lowered and any(word in lowered for word in
                                       ("not found", "does not exist", "not exist",
                                        "unknown", "no such", "try pulling")))))
        if status in (401, 403):
            return LLMError(f"{where} refused the API key ({detail}). Check the API key "
                            "(--api-key or $CASEWISE_LLM_API_KEY) and that it may use model "
                            f"{self.model!r}.")
        if model_missing or (status == 404 and not listing and "model" in lowered):
            return LLMError(f"{where} does not know the model {self.model!r} ({detail}). "
                            "Check the name against the server's model list (GET "
                            f"{self.base_url}/models, e.g. `ollama list`), or pull the model.")
        if status == 404:
            return LLMError(f"{where} has no such endpoint ({detail}). Check the URL: "
                            "OpenAI-compatible servers usually expect it to end in /v1.")
        if status == 429:
            if exc.code == "insufficient_quota":
                return LLMError(f"{where} refused the request: the account's quota is used "
                                f"up ({detail}). Check the plan and billing.")
            return LLMError(f"{where} is rate-limiting requests ({detail}; {tries}). Wait a "
                            "minute and try again, or send fewer requests.")
        if status >= 500:
            return LLMError(f"{where} failed with a server error ({detail}; {tries}). Check the "
                            "server's log: the model may have crashed or run out of memory.")
        return LLMError(f"{where} rejected the request ({detail}). Check the model name and "
                        "the server's log.")

    def _malformed(self, snippet: str) -> LLMError:
        return LLMError(f"The LLM server at {self.base_url} sent a reply that is not a "
                        f"chat-completions answer: {snippet!r}. Check that the URL is the "
                        "server's OpenAI-compatible API (usually ending in /v1).")

    def _stalled(self, received: int) -> LLMError:
        return LLMError(f"The LLM server at {self.base_url} stopped sending for "
                        f"{self.timeout:g} s mid-answer, after {received} characters had "
                        "arrived. Try again, or raise the timeout.")


# Parameters a server may refuse, each dropped (with what goes with it) when it does: usage
# then stays unknown, the default temperature applies, the answer guard alone stops loops, the
# label distribution is not available. The answer itself streams all the same.
_OPTIONAL_PARAMS = {"stream_options": ("stream_options",), "temperature": ("temperature",),
                    "frequency_penalty": ("frequency_penalty",),
                    "logprobs": ("logprobs", "top_logprobs")}


def _without_rejected_param(params: dict[str, Any],
                            exc: openai.BadRequestError) -> dict[str, Any] | None:
    """The request without the parameter the 400 complains about, or None if not ours."""
    said = f"{exc.param or ''} {_server_message(exc)}".lower()
    rewritten = dict(params)
    if "max_completion_tokens" in said and "max_tokens" in rewritten:
        rewritten["max_completion_tokens"] = rewritten.pop("max_tokens")
        return rewritten
    for param, goes_with in _OPTIONAL_PARAMS.items():
        if param in said and param in rewritten:
            for name in goes_with:
                rewritten.pop(name, None)
            return rewritten
    return None


def _token_choices(logprobs: Any) -> list[TokenChoice]:
    """The tokens of a chunk's ``logprobs.content`` (nothing when absent or malformed: the
    distribution is a bonus, never a reason to fail an answer)."""
    content = getattr(logprobs, "content", None)
    if not isinstance(content, list):
        return []
    out = []
    for entry in content:
        token, logprob = getattr(entry, "token", None), getattr(entry, "logprob", None)
        if not isinstance(token, str) or not isinstance(logprob, int | float):
            continue
        top = tuple((alt.token, float(alt.logprob))
                    for alt in (getattr(entry, "top_logprobs", None) or ())
                    if isinstance(getattr(alt, "token", None), str)
                    and isinstance(getattr(alt, "logprob", None), int | float))
        out.append(TokenChoice(token, float(logprob), top))
    return out


def _interrupt(response: Any) -> None:
    """Wake a worker blocked reading ``response`` by shutting its socket down.

    shutdown() (not close()) is the safe way to end a read another thread is blocked in: the
    file descriptor stays valid, the read returns end-of-file, and the worker then closes the
    response itself. The socket comes from httpcore's documented "network_stream" extension.
    """
    if response is None:
        return
    try:
        network_stream = response.extensions.get("network_stream")
        sock = network_stream.get_extra_info("socket") if network_stream else None
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
    except Exception:  # already closed or not a plain socket: the worker stops on its own
        pass


def _server_message(exc: openai.APIStatusError) -> str:
    """The server's own words from an error body, in the shapes real servers use."""
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error")
        for candidate in (error.get("message") if isinstance(error, dict) else error,
                          body.get("message"), body.get("detail")):
            if isinstance(candidate, str) and candidate.strip():
                return candidate.strip()[:_SNIPPET_BYTES]
    if isinstance(body, str) and body.strip():
        return _snippet(body.encode())
    return ""


def _describe(cause: BaseException | None) -> str:
    if cause is None:
        return "no details"
    text = str(cause).strip()
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__


def _snippet(data: bytes) -> str:
    text = data[:_SNIPPET_BYTES].decode("utf-8", errors="replace").strip()
    return text + ("…" if len(data) > _SNIPPET_BYTES else "")


def _dump(chunk: Any) -> str:
    try:
        return _snippet(chunk.model_dump_json(exclude_none=True).encode())
    except Exception:  # the chunk is already the problem; show what we can
        return _snippet(repr(chunk).encode())


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
