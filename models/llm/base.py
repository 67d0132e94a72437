"""The one interface every LLM backend speaks, and the error it raises."""

from __future__ import annotations

import ipaddress
import socket
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlparse

from models.errors import CasewiseError
from models.progress import CancelFlag

Message = dict[str, str]  # {"role": "system" | "user" | "assistant", "content": "..."}


class LLMError(CasewiseError):
    """A backend failed. The message says what failed and what the user can do about it."""


@dataclass
class Usage:
    """Tokens in and out of the last answer, when the backend reports or can count them."""

    tokens_in: int | None = None
    tokens_out: int | None = None


class LLMBackend(ABC):
    """Streams a chat completion. Implementations set ``name`` ("embedded", "local",
    "openai", "llama-cpp"), ``model`` (what answered) and ``base_url`` (None if in-process)."""

    name: str = ""
    model: str = ""
    base_url: str | None = None
    # In-process models can be made to continue a started answer (a final assistant message);
    # servers differ in whether they allow it, so they do not get one.
    supports_prefill: bool = False

    def __init__(self) -> None:
        self.last_usage = Usage()
        # The last answer's tokens with their log-probabilities, when the backend has them
        # (models.llm.label_distribution.TokenChoice); empty otherwise.
        self.last_logprobs: list = []

    @property
    def is_remote(self) -> bool:
        """True when text leaves this machine (a non-loopback URL): it must be de-identified."""
        return self.base_url is not None and not is_local_url(self.base_url)

    @abstractmethod
    def stream(self, messages: list[Message], max_tokens: int = 384, temperature: float = 0.0,
               cancel: CancelFlag | None = None) -> Iterator[str]:
        """Yield the answer's text in pieces as they arrive.

        Raises ``LLMError`` with a clear message on any failure (unreachable, refused key,
        unknown model, rate limit, timeout, malformed or empty reply, broken stream) and
        ``models.progress.Cancelled`` when ``cancel`` is set (checked between pieces). After
        the iterator is exhausted, ``self.last_usage`` holds the token counts if known.
        """

    def complete(self, messages: list[Message], max_tokens: int = 384,
                 temperature: float = 0.0, cancel: CancelFlag | None = None) -> str:
        return "".join(self.stream(messages, max_tokens, temperature, cancel))


def is_local_url(url: str) -> bool:
    """Only a literal loopback address (127.0.0.0/8, ::1, and ::ffff:127.x) or the exact name
    ``localhost`` when every address it resolves to is loopback counts as local. Any other
    name, ``llm.localhost`` included, is resolved by DNS and may lead anywhere: remote, so the
    text is de-identified first."""
    host = (urlparse(url).hostname or "").rstrip(".").lower()
    if host == "localhost":
        return _resolves_to_loopback_only(host)
    return _is_loopback_literal(host)


def _is_loopback_literal(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def _resolves_to_loopback_only(host: str) -> bool:
    try:
        found = socket.getaddrinfo(host, None)
    except OSError:  # cannot resolve: cannot be shown to stay on this machine
        return False
    addresses = {info[4][0].split("%")[0] for info in found}
    return bool(addresses) and all(_is_loopback_literal(a) for a in addresses)
