"""The batch PDF's monitoring section: per week and model, the decisions, escalations,
unusual texts and overrides, and the audited automatic decisions of the policy that decided
the newest exported case, with the guarantee monitor's bound against α (``app.oversight``)."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Image, Spacer

from app.oversight import (
    HEADERS,
    OversightWeek,
    WatchedPolicy,
    oversight_plot,
    oversight_weeks,
)
from app.reports.document import ReportContext
from app.reports.styles import CONTENT_WIDTH, grid
from app.store.records import CaseRecord


def watched_policy(cases: Sequence[CaseRecord]) -> WatchedPolicy | None:
    """The policy that decided the newest of the exported cases (the one a reader of the
    report is asked to trust), if it certifies anything."""
    for case in sorted(cases, key=lambda c: c.id, reverse=True):
        stored = case.escalation
        if stored is None:
            continue
        decision = stored.value
        if decision.threshold is None or decision.alpha is None:
            return None
        model = case.prediction.value.model_id if case.prediction else ""
        return WatchedPolicy(model, decision.policy_id, decision.alpha, decision.delta)
    return None


def monitoring_flowables(store: Any, cases: Sequence[CaseRecord],
                         ctx: ReportContext) -> list[Flowable]:
    w = ctx.writer
    watched = watched_policy(cases)
    weeks = oversight_weeks(store, watched)
    out: list[Flowable] = [w.heading("Monitoring")]
    if not weeks:
        return [*out, w.p("The history holds no decisions yet.")]
    about = ("the audited automatic decisions of policy "
             f"{watched.policy_id} (α = {watched.alpha:.0%}, δ = {watched.delta:.0%}) with the "
             "anytime-valid lower bound of their error rate at the end of each week"
             if watched else "no certifying policy decided these cases: nothing to audit")
    out.append(w.p(f"Per ISO week and model, from the whole case history: cases decided, the "
                   f"share escalated and of unusual text, reviews signed and the share that "
                   f"overrode the model; and {about}."))
    out += [_table(weeks, ctx), Spacer(1, 3 * mm)]
    with tempfile.TemporaryDirectory(prefix="casewise-plot-") as scratch:
        path = oversight_plot(weeks, watched.alpha if watched else None,
                              Path(scratch) / "oversight.png")
        png = io.BytesIO(path.read_bytes())  # kept: the PDF is built after the folder is gone
    out.append(Image(png, width=CONTENT_WIDTH * 0.8, height=CONTENT_WIDTH * 0.8 * 5.2 / 7))
    return out


def _table(weeks: list[OversightWeek], ctx: ReportContext):
    w = ctx.writer
    rows = [[w.p(h, w.styles.label) for h in HEADERS]]
    rows += [[w.p(value) for value in week.cells()] for week in weeks]
    fractions = [0.09, 0.25, 0.07, 0.08, 0.08, 0.08, 0.09, 0.11, 0.15]
    return grid(rows, [CONTENT_WIDTH * f for f in fractions])
