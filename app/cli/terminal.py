"""What the command line prints cannot drive the terminal: every control character but the
newline and the tab (ESC, CR, backspace, C1 controls such as CSI, DEL) and the bidi
embedding, override and isolate characters are printed as ``\\uXXXX``. Case texts, names and
reasons come from other people; a reviewer name holding an escape sequence could otherwise
repaint the screen ("Dr House") or a CR overwrite the line it is on. The stored text stays
exactly as given; only what reaches the terminal (or a file it is redirected to) is escaped.
JSON output stays valid JSON with the same values: ``\\uXXXX`` is JSON's own escape.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import chain
from typing import Any, TextIO

_KEPT = {ord("\n"), ord("\t")}
_UNSAFE = {code: f"\\u{code:04x}" for code in chain(
    range(0x00, 0x20), (0x7F,), range(0x80, 0xA0), range(0x202A, 0x202F),
    range(0x2066, 0x206A)) if code not in _KEPT}


def terminal_safe(text: str) -> str:
    return text.translate(_UNSAFE)


class SafeWriter:
    """A text stream that escapes what it is given, then writes it to ``stream``."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(terminal_safe(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:  # flush, isatty, fileno, encoding, ...
        return getattr(self._stream, name)


def unescaped(stream: TextIO | SafeWriter) -> TextIO:
    """The stream under a ``SafeWriter`` (for the progress bar, whose text is our own)."""
    return stream._stream if isinstance(stream, SafeWriter) else stream


@contextmanager
def safe_output() -> Iterator[None]:
    """Standard output and error escaped for the duration of one command (the progress bar
    writes to the stream underneath: ``unescaped``)."""
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = SafeWriter(out), SafeWriter(err)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = out, err
