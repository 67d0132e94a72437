"""Sentences about an attribution that every surface prints the same way (window, trail, PDF,
CLI). No matplotlib here: the CLI imports it without the renderer."""

from __future__ import annotations

from explainers.types import Attribution


def flip_words(attribution: Attribution, quotes: tuple[str, str] = ("“", "”")) -> str:
    """The words whose removal flips the label, quoted and joined with commas. A word that
    occurs more than once in the text says which one it is (its word number, 1 for the first
    word), or "nausea", "nausea" could not be told apart. Old records without the words'
    places just list the words."""
    flip = attribution.flip
    if flip is None or not flip.words:
        return ""
    words = flip.words
    places = _word_numbers(attribution, flip.spans) if len(flip.spans) == len(words) else None
    seen = [f.text for f in attribution.features]
    mentions = []
    for i, word in enumerate(words):
        repeated = words.count(word) > 1 or seen.count(word) > 1
        where = f" ({places[i]})" if places is not None and repeated else ""
        mentions.append(f"{quotes[0]}{word}{quotes[1]}{where}")
    return ", ".join(mentions)


def _word_numbers(attribution: Attribution,
                  spans: tuple[tuple[int, int], ...]) -> list[str]:
    numbers = {f.start: n for n, f in
               enumerate(sorted(attribution.features, key=lambda f: f.start), start=1)}
    return [f"word {numbers[start]}" if start in numbers else f"at character {start + 1}"
            for start, _ in spans]
