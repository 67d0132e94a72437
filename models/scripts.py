"""Which writing systems a text's letters are in, so a case in a script the calibration cases
never contained (a Hebrew or Arabic note for a model calibrated on English) is escalated: the
embedding distance alone can miss it (a right-to-left text scored 0.52 under a 0.705
threshold), and nothing the policy guarantees was measured on such text.
"""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from pathlib import Path

UNSEEN_SHARE = 0.2  # of a text's letters in scripts the calibration cases never had
MIN_LETTERS = 5  # fewer unseen letters than this is a name or a symbol, not a script
_SEEN: dict[Path, frozenset[str] | None] = {}


def script_of(ch: str) -> str:
    """The script of a letter, from its Unicode name ("LATIN", "HEBREW", "CJK", ...)."""
    name = unicodedata.name(ch, "")
    return name.split(" ", 1)[0] if name else "UNKNOWN"


def letter_scripts(text: str) -> Counter[str]:
    if text.isascii():  # the common case, without a name lookup per character
        return Counter({"LATIN": sum(ch.isalpha() for ch in text)})
    return Counter(script_of(ch) for ch in text if ch.isalpha())


def seen_scripts(model_dir: Path) -> frozenset[str] | None:
    """The scripts of the model's calibration split (read once per process), or None when
    the model keeps none (then the check is skipped)."""
    key = Path(model_dir)
    if key not in _SEEN:
        _SEEN[key] = _scripts_in(key / "splits" / "calibration.jsonl")
    return _SEEN[key]


def _scripts_in(path: Path) -> frozenset[str] | None:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        texts = [json.loads(line)["text"] for line in lines if line.strip()]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return frozenset(script for text in texts for script in letter_scripts(text))


def unseen_script(text: str, seen: frozenset[str]) -> str | None:
    """The unseen script most of the text's unseen letters are in, when they are many."""
    counts = letter_scripts(text)
    unseen = {script: n for script, n in counts.items() if script not in seen}
    total_unseen, letters = sum(unseen.values()), sum(counts.values())
    if total_unseen < MIN_LETTERS or total_unseen < UNSEEN_SHARE * letters:
        return None
    return max(unseen, key=unseen.get)
