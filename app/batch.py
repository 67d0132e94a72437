"""Batch scoring: read a file or folder of cases, then predict, decide, explain and store each.

One function for both front ends: ``python main.py score`` and the desktop app's batch import
call ``score_cases``. Cases already in the history (same text) are skipped, so an interrupted
batch resumes where it stopped; each case is stored in its own transaction with its prediction
and escalation decision, so a killed process never leaves half a case. Progress is reported per
case with the time left, and the cancel flag is checked between cases.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from models.errors import DataError
from models.progress import CancelFlag, ProgressCallback, ProgressTracker, raise_if_cancelled
from models.types import CaseInput

SCORE_CHUNK = 32  # cases predicted together; each is then stored in its own transaction
STAGE = "scoring"

log = logging.getLogger(__name__)


@dataclass
class BatchCounts:
    """What a batch did. ``failures`` holds (source, message) of the cases that failed."""

    stored: int = 0
    skipped: int = 0
    failed: int = 0
    escalated: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, int]:
        """The counts as ``score --json`` prints them."""
        return {"stored": self.stored, "skipped": self.skipped, "failed": self.failed,
                "escalated": self.escalated}


def read_cases(path: Path, text_col: str | None = None,
               encoding: str | None = None) -> list[CaseInput]:
    """The cases of a CSV/TSV/JSONL file (one per row) or of a folder of .txt files (one per
    file), each with where it came from; empty texts are dropped."""
    from models.data import load_texts

    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.txt"))
        if not files:
            raise DataError(f"{path} holds no .txt files to score.")
        found = [CaseInput(f.read_text(encoding=encoding or "utf-8"), f.name) for f in files]
    else:
        texts = load_texts(path, text_col, encoding)
        found = [CaseInput(text, f"{path.name}:{row}")
                 for row, text in enumerate(texts, start=1)]
    return [case for case in found if case.text.strip()]


def score_cases(store, bench, cases: Sequence[CaseInput], *, explain: bool = True,
                llm_backend=None, allow_remote: bool = False,
                progress: ProgressCallback | None = None, cancel: CancelFlag | None = None,
                on_stored: Callable[[int, BatchCounts], None] | None = None) -> BatchCounts:
    """Score every case not yet in ``store`` with the workbench's model and policy.

    ``explain`` adds SHAP attributions; ``llm_backend`` (when given) is asked for a second
    opinion on each escalated case. A case that fails is counted and the batch goes on;
    ``on_stored(case_id, counts)`` is called after each stored case. Raises ``Cancelled``
    between cases when ``cancel`` is set; what was stored until then stays stored.
    """
    from app.casework import analyze, register_in_store

    todo = [case for case in cases if store.case_id_for_text(case.text) is None]
    counts = BatchCounts(skipped=len(cases) - len(todo))
    if todo:
        register_in_store(store, bench)
    tracker = ProgressTracker(STAGE, len(todo), progress)
    tracker.report()
    for start in range(0, len(todo), SCORE_CHUNK):
        raise_if_cancelled(cancel)
        chunk = todo[start : start + SCORE_CHUNK]
        analyses = analyze(bench, [case.text for case in chunk], cancel=cancel)
        for case, analysis in zip(chunk, analyses, strict=True):
            raise_if_cancelled(cancel)
            case_id = _score_one(store, bench, case, analysis, counts, explain, llm_backend,
                                 allow_remote, cancel)
            tracker.advance(message=f"{counts.stored} stored, {counts.escalated} escalated")
            if case_id is not None and on_stored is not None:
                on_stored(case_id, counts)
    return counts


def _score_one(store, bench, case: CaseInput, analysis, counts: BatchCounts, explain: bool,
               llm_backend, allow_remote: bool, cancel: CancelFlag | None) -> int | None:
    """Store one analysed case and its extras; a failure is counted, never raised (except a
    cancel), so one bad case does not stop the batch."""
    from app.casework import store_analysis
    from models.progress import Cancelled

    try:
        case_id, _new = store_analysis(store, analysis, case.source, case.metadata or None)
        attribution = _explain(store, bench, case_id, case.text, cancel) if explain else None
        if llm_backend is not None and analysis.escalated:
            _ask(store, llm_backend, bench, case_id, analysis, attribution, allow_remote,
                 cancel)
    except Cancelled:
        raise
    except Exception as exc:  # counted and named; the batch goes on
        counts.failed += 1
        counts.failures.append((case.source, str(exc) or type(exc).__name__))
        log.warning("case %s failed: %s", case.source, exc)
        return None
    counts.stored += 1
    counts.escalated += analysis.escalated
    return case_id


def _explain(store, bench, case_id: int, text: str, cancel: CancelFlag | None):
    from app.casework import explain_case

    attribution = explain_case(bench, text, cancel=cancel)
    store.record_attribution(case_id, attribution.to_dict())
    return attribution


def _ask(store, backend, bench, case_id: int, analysis, attribution, allow_remote: bool,
         cancel: CancelFlag | None) -> None:
    from app.casework import ask_llm

    opinion = ask_llm(backend, bench, analysis, attribution, allow_remote=allow_remote,
                      cancel=cancel)
    store.record_opinion(case_id, opinion.to_dict())
