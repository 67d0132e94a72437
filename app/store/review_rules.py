"""The review rules, checked before anything is written (the database re-checks the override
rule with a CHECK constraint, for writers that bypass this code)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from app.store.errors import InvalidReview
from app.store.schema import REVIEW_DECISIONS, SIGNATURE_MEANINGS


@dataclass(frozen=True)
class ReviewRequest:
    reviewer: str
    decision: str
    label: str | None
    reason: str | None
    meaning: str


def checked(request: ReviewRequest, predicted: str | None,
            labels: Collection[str]) -> ReviewRequest:
    """The request as it will be stored (accept takes the model's label), or InvalidReview.

    ``predicted`` is the latest prediction's label, ``labels`` the model's label set (empty
    when unknown).
    """
    reviewer = (request.reviewer or "").strip()
    reason = (request.reason or "").strip() or None
    label = (request.label or "").strip() or None
    if not reviewer:
        raise InvalidReview("A review needs the reviewer's name.")
    if request.decision not in REVIEW_DECISIONS:
        raise InvalidReview(f"The decision must be one of {', '.join(REVIEW_DECISIONS)}, "
                            f"not {request.decision!r}.")
    if request.meaning not in SIGNATURE_MEANINGS:
        raise InvalidReview(f"The signature must mean one of {', '.join(SIGNATURE_MEANINGS)}, "
                            f"not {request.meaning!r}.")
    rule = {"accept": _accept, "override": _override, "defer": _defer}[request.decision]
    label = rule(label, reason, predicted, labels, request.meaning)
    return ReviewRequest(reviewer, request.decision, label, reason, request.meaning)


def _accept(label: str | None, reason: str | None, predicted: str | None,
            labels: Collection[str], meaning: str) -> str:
    if predicted is None:
        raise InvalidReview("The case has no prediction to accept; override it with a label "
                            "and a reason, or defer it.")
    if label is not None and label != predicted:
        raise InvalidReview(f"Accepting keeps the model's label {predicted!r}; to sign for "
                            f"{label!r}, override it and give a reason.")
    return predicted


def _override(label: str | None, reason: str | None, predicted: str | None,
              labels: Collection[str], meaning: str) -> str:
    if label is None:
        raise InvalidReview("An override needs the label you chose.")
    if reason is None:
        raise InvalidReview("An override needs a reason: say why the model's label is wrong.")
    if labels and label not in labels:
        raise InvalidReview(f"{label!r} is not one of the model's labels "
                            f"({', '.join(sorted(labels))}).")
    if label == predicted:
        raise InvalidReview(f"{label!r} is the model's label; accept the case instead.")
    return label


def _defer(label: str | None, reason: str | None, predicted: str | None,
           labels: Collection[str], meaning: str) -> None:
    if label is not None:
        raise InvalidReview("Deferring leaves the case undecided; give no label.")
    if meaning == "approved":
        raise InvalidReview("A deferred case cannot be approved; sign it as reviewed.")
    return None
