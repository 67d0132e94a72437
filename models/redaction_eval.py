"""Scoring a redaction against labelled texts (the tuning set in tests/, the benchmark's set).

A labelled text is ``{"text": ..., "labels": [[kind, substring], ...]}``; the substrings are
located left to right. An identifier counts as found when every letter and digit of it is
inside some redacted span (of any kind: what matters is that it is not sent). A clean word is
a word outside every label; it is a false hide when any of it is redacted. Takes redactions
as input and imports no detector.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

_WORD = re.compile(r"[A-Za-z0-9]+(?:['’.-][A-Za-z0-9]+)*")


@dataclass(frozen=True)
class Labelled:
    text: str
    gold: tuple[tuple[str, int, int], ...]  # (kind, start, end)


@dataclass
class Score:
    identifiers: dict[str, int] = field(default_factory=dict)
    found: dict[str, int] = field(default_factory=dict)
    missed: list[tuple[str, str]] = field(default_factory=list)  # (kind, text)
    clean_words: int = 0
    false_hides: list[str] = field(default_factory=list)

    def recall(self, kind: str) -> float:
        return self.found.get(kind, 0) / self.identifiers[kind]


def locate(text: str, labels: list[tuple[str, str]]) -> Labelled:
    gold, position = [], 0
    for kind, sub in labels:
        start = text.index(sub, position)
        gold.append((kind, start, start + len(sub)))
        position = start + len(sub)
    return Labelled(text, tuple(gold))


def load(path: Path) -> list[Labelled]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [locate(row["text"], [tuple(label) for label in row["labels"]]) for row in rows]


def score(items: list[tuple[Labelled, list[tuple[int, int]]]]) -> Score:
    """``items``: each labelled text with the (start, end) spans the redaction hid."""
    result = Score()
    for labelled, hidden in items:
        covered = [False] * len(labelled.text)
        for start, end in hidden:
            covered[start:end] = [True] * (end - start)
        inside_gold = [False] * len(labelled.text)
        for kind, start, end in labelled.gold:
            inside_gold[start:end] = [True] * (end - start)
            result.identifiers[kind] = result.identifiers.get(kind, 0) + 1
            if all(covered[i] for i in range(start, end) if labelled.text[i].isalnum()):
                result.found[kind] = result.found.get(kind, 0) + 1
            else:
                result.missed.append((kind, labelled.text[start:end]))
        for word in _WORD.finditer(labelled.text):
            if any(inside_gold[word.start():word.end()]):
                continue
            result.clean_words += 1
            if any(covered[word.start():word.end()]):
                result.false_hides.append(word.group())
    return result
