"""How a long text is read: overlapping windows of the model's length, up to a limit. Plain
arithmetic on token counts (no torch), so the model card and the views can say it too."""

from __future__ import annotations

# A text longer than the window is read in overlapping windows, pooled into one answer. The
# overlap gives each word at a window's edge the context of the next window too.
WINDOW_OVERLAP = 0.25  # share of a window repeated in the next one
READ_LIMIT_TOKENS = 8192  # past this (about 6,000 English words) the rest is not read
POOLINGS = ("mean", "max", "first")  # of the windows' logits; "first" reads one window only


def window_pieces(ids: list[int], body: int) -> list[list[int]]:
    """``ids`` (no special tokens) as windows of ``body`` tokens overlapping by
    ``WINDOW_OVERLAP``, at most ``READ_LIMIT_TOKENS`` of them read; one (maybe empty) window
    for a short text."""
    ids = ids[: READ_LIMIT_TOKENS - 2]
    return [ids[start : start + body] for start in window_starts(len(ids), body)] or [[]]


def window_starts(n_ids: int, body: int) -> range:
    """Where each window of ``window_pieces`` begins, in the text's tokens."""
    n_ids = min(n_ids, READ_LIMIT_TOKENS - 2)
    step = max(1, body - int(body * WINDOW_OVERLAP))
    return range(0, max(1, n_ids - body + step), step)



def reading_text(n_tokens: int, windows: int, truncated: bool) -> str:
    """What of a case the model read, for the window, the CLI and the PDF ("" for a case that
    fits one window)."""
    if truncated:
        read = f" in {windows} windows" if windows > 1 else ""
        return f"{n_tokens:,} tokens: its end was not read (the part read{read} is shown)"
    if windows > 1:
        return f"read whole: {n_tokens:,} tokens in {windows} overlapping windows"
    return ""
