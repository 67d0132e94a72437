"""The OpenAI-compatible backend against a real HTTP server on loopback
(tests/helpers/llm_server.py: the requested model name picks its behaviour, so each test
provokes one fault). Every call runs under a time limit in a helper thread: a hang fails the
test instead of blocking the run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from models.llm.base import LLMError, Usage
from models.llm.openai_backend import FREQUENCY_PENALTY, OpenAICompatibleBackend
from models.progress import CancelFlag, Cancelled
from tests.helpers.llm_server import PIECES, FakeServer, free_port, serving

MESSAGES = [{"role": "user", "content": "What is the answer?"}]
LIMIT = 15.0  # seconds any single call may take before the test calls it a hang


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


def test_repetition_penalty_sent_and_dropped_for_servers_that_reject_it(
        server: FakeServer) -> None:
    pieces, exc, _ = run(backend(server.url, "ok"))
    assert exc is None and server.requests[-1]["frequency_penalty"] == FREQUENCY_PENALTY
    pieces, exc, _ = run(backend(server.url, "no-penalties"))
    assert exc is None and pieces == PIECES
    assert "frequency_penalty" not in server.requests[-1]


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
