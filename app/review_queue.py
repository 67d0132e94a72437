"""The review queue: which case a reviewer opens next ("Next unreviewed case").

Cases nobody has reviewed come first, oldest first — the escalated ones and the AUTO ones
drawn for the audit sample (an AUTO case outside it needs no person) — then cases deferred in
an earlier session (someone left them for someone else). A case deferred in this session is
skipped, so deferring never traps the queue on one case; the reviewer revisits those on purpose
(``revisit``). Plain functions of the store: the window and tests call them the same way.

In a team (several reviewers on one history), the queue hands a case to one reviewer at a time:
given the reviewer (``claimant``), it skips cases others have claimed and claims the one it
offers (``CaseRepository.claim_case``; a claim lasts 15 minutes unless renewed, and a signed
review ends it), so two reviewers asking at once get different cases.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

SCAN_PAGE = 200  # cases read per query while skipping this session's deferrals


@dataclass(frozen=True)
class QueueStep:
    """The case to open next, and what the queue holds besides it."""

    case_id: int | None
    never_reviewed: int  # cases with no review at all (the one opened included)
    deferred: int  # cases whose latest review is a deferral (any session)
    skipped: int  # of those, deferred in this session and so not offered
    revisiting: bool = False  # ``case_id`` was deferred before
    held_by_others: int = 0  # cases skipped because another reviewer has claimed them

    def describe(self) -> str:
        """One line for the status: what is left, and how many are put aside."""
        left = f"{self.never_reviewed:,} never reviewed"
        deferred = f"{self.deferred:,} deferred" + \
            (f" ({self.skipped:,} by you this session, skipped)" if self.skipped else "")
        held = f"; {self.held_by_others:,} being reviewed by others" \
            if self.held_by_others else ""
        return f"Queue: {left}, {deferred}{held}."


def _ids(store, **filters) -> Iterator[tuple[int, str | None]]:
    """(case id, latest review decision) of the matching cases, oldest first."""
    page = 1
    while True:
        found = store.find_cases(**filters, sort="created", page=page, page_size=SCAN_PAGE)
        for item in found.items:
            yield item.id, item.review.decision if item.review else None
        if page * SCAN_PAGE >= found.total:
            return
        page += 1


def _count(store, **filters) -> int:
    return store.find_cases(**filters, page_size=1).total


def _counts(store, skipped: int) -> dict[str, int]:
    unreviewed = _count(store, reviewed=False, needs_review=True)
    deferred = _count(store, decision="defer")
    deferred_here = _count(store, decision="defer", needs_review=True)
    return {"never_reviewed": unreviewed - deferred_here, "deferred": deferred,
            "skipped": skipped}


def next_in_queue(store, deferred_here: frozenset[int] = frozenset(),
                  after: int | None = None, claimant: str | None = None) -> QueueStep:
    """The oldest never-reviewed case, else the oldest case deferred before this session;
    ``deferred_here`` (deferred in this session) and ``after`` (the case on screen) are
    never offered. With ``claimant``, cases other reviewers hold are skipped and the case
    offered is claimed for ``claimant``."""
    held = store.claimed_by_others(claimant) if claimant else {}
    counts = {**_counts(store, len(deferred_here)), "held_by_others": len(held)}

    def take(case_id: int) -> bool:
        if case_id == after or case_id in held:
            return False
        # Someone may have claimed it since ``held`` was read: then on to the next.
        return claimant is None or store.claim_case(case_id, claimant)

    for case_id, decision in _ids(store, reviewed=False, needs_review=True):
        if decision is None and take(case_id):
            return QueueStep(case_id, **counts)
    for case_id, _decision in _ids(store, decision="defer"):
        if case_id not in deferred_here and take(case_id):
            return QueueStep(case_id, **counts, revisiting=True)
    return QueueStep(None, **counts)


def revisit(store, deferred_here: frozenset[int], after: int | None = None) -> QueueStep:
    """The next case deferred in this session and still deferred (by case id, after
    ``after`` and round again), so each is revisited in turn."""
    still = sorted(c for c in deferred_here if _still_deferred(store, c))
    order = [c for c in still if after is None or c > after] + \
        [c for c in still if after is not None and c <= after]
    counts = _counts(store, len(still))
    return QueueStep(order[0] if order else None, **counts, revisiting=bool(order))


def _still_deferred(store, case_id: int) -> bool:
    review = store.latest_review(case_id)
    return review is not None and review.decision == "defer"
