"""The one interface every LLM backend speaks, and the error it raises."""

from __future__ import annotations

import ipaddress
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
    """Loopback hosts (localhost, 127.0.0.0/8, ::1) count as local; everything else, including
    a host name that might resolve to this machine, is remote: when in doubt, de-identify."""
    host = urlparse(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
