"""Words as features: the units a reviewer reads, with character offsets into the original text.

A word is a run of letters/digits (with inner apostrophes or hyphens), or a single other
non-space character such as punctuation or an emoji. Scripts without spaces (CJK) come out as
one feature per run of characters, and are split further into characters when that run is long.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

WORD_PATTERN = re.compile(r"\w+(?:['’\-]\w+)*|[^\w\s]", re.UNICODE)
# CJK runs have no spaces; cut them into characters so that features stay small.
CJK_PATTERN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
MAX_RUN = 12


@dataclass(frozen=True)
class Span:
    start: int
    end: int


def word_spans(text: str) -> list[Span]:
    spans = []
    for match in WORD_PATTERN.finditer(text):
        start, end = match.span()
        if end - start > MAX_RUN and CJK_PATTERN.search(match.group()):
            spans += [Span(i, i + 1) for i in range(start, end)]
        else:
            spans.append(Span(start, end))
    return spans


class WordTokenizer:
    """The minimal tokenizer interface shap's Text masker needs, at the level of words."""

    def __call__(self, text: str, return_offsets_mapping: bool = True) -> dict:
        spans = word_spans(text)
        out = {"input_ids": [text[s.start : s.end] for s in spans]}
        if return_offsets_mapping:
            out["offset_mapping"] = [(s.start, s.end) for s in spans]
        return out
