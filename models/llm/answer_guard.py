"""Where an LLM's answer should end, read as it streams: after its JSON object, or when it
starts to repeat itself.

Small models often keep writing after a complete answer, or repeat one sentence until the token
limit (SmolLM2-135M through ``transformers serve`` did, before this guard). Servers differ in
how they treat ``stop`` sequences and repetition penalties, so the client decides: the answer
ends at the brace that closes its first JSON object, and a loop (the text ending in the same
stretch three times over, or one sentence said three times) ends it at the first repetition.
The caller then stops reading, which closes the connection and stops the server generating.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

REPEATS = 3  # a stretch said this many times in a row is a loop
SHORTEST_LOOP = 12  # characters: shorter repeats ("... ... ...", "!!!") are left alone
LONGEST_LOOP = 400
SHORTEST_SENTENCE = 20  # characters of a sentence that counts when said three times
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")

JSON_END, LOOP = "json-complete", "repetition"


@dataclass
class AnswerGuard:
    """Feed it the answer's pieces; it says what of each to keep and when to stop."""

    json_answer: bool = True
    text: str = ""
    stopped: str | None = None  # JSON_END or LOOP once the answer has ended
    repeated: str = ""  # the stretch that repeated (for LOOP)
    overrun: bool = False  # text came after the JSON object's end
    _depth: int = 0
    _in_string: bool = False
    _escaped: bool = False
    _started: bool = False

    def accept(self, piece: str) -> str:
        """The part of ``piece`` that belongs to the answer ("" once it has ended)."""
        if self.stopped:
            self.overrun = self.overrun or bool(piece.strip())
            return ""
        if self.json_answer:
            end = self._json_end(piece)
            if end is not None:
                piece, after = piece[:end], piece[end:]
                self.stopped, self.overrun = JSON_END, bool(after.strip())
        before = len(self.text)
        self.text += piece
        loop = self._loop()
        if loop is None:
            return piece
        # A loop: the answer is kept up to its first repetition. What of it was already
        # handed out stays shown while streaming; ``text`` is the answer as kept.
        keep, self.repeated = loop
        self.stopped = LOOP
        self.text = self.text[:keep]
        return self.text[before:]

    @property
    def should_stop(self) -> bool:
        """Stop reading: a loop, or more text after a complete JSON answer (a well-behaved
        answer is read to its end, which carries the token counts)."""
        return self.stopped == LOOP or self.overrun

    def _json_end(self, piece: str) -> int | None:
        """The index just past the brace that closes the first JSON object, if in ``piece``."""
        for i, char in enumerate(piece):
            if not self._started:
                if char == "{":
                    self._started, self._depth = True, 1
                continue
            if self._in_string:
                if self._escaped:
                    self._escaped = False
                elif char == "\\":
                    self._escaped = True
                elif char == '"':
                    self._in_string = False
            elif char == '"':
                self._in_string = True
            elif char == "{":
                self._depth += 1
            elif char == "}":
                self._depth -= 1
                if self._depth == 0:
                    return i + 1
        return None

    def _loop(self) -> tuple[int, str] | None:
        """(where the kept answer ends, the repeated stretch), or None: no loop yet."""
        text = self.text
        for size in range(SHORTEST_LOOP, min(LONGEST_LOOP, len(text) // REPEATS) + 1):
            unit = text[-size:]
            if all(text[-(k + 1) * size : len(text) - k * size] == unit
                   for k in range(1, REPEATS)):
                keep = len(text) - (REPEATS - 1) * size
                # End on the last sentence end within the first repetition, if there is one.
                ends = [m.end() for m in re.finditer(r"[.!?]", text[keep - size : keep])]
                return (keep - size + ends[-1] if ends else keep), unit.strip()
        return self._repeated_sentence()

    def _repeated_sentence(self) -> tuple[int, str] | None:
        """One sentence said ``REPEATS`` times (whole sentences only: the last part may still
        be growing): the answer is kept up to its second saying."""
        starts: dict[str, list[int]] = {}
        begin = 0
        for end in _SENTENCE_END.finditer(self.text):
            sentence = self.text[begin : end.start()]
            key = " ".join(sentence.split()).lower()
            if len(key) >= SHORTEST_SENTENCE:
                starts.setdefault(key, []).append(begin)
                if len(starts[key]) == REPEATS:
                    return starts[key][1], sentence.strip()
            begin = end.end()
        return None
