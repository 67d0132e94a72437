"""The summary page of a batch: what was selected, counts by label, escalation decision and
review, and one row per case."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Spacer, Table

from app.reports.document import ReportContext, utc
from app.reports.signature import printed_name, state_of
from app.reports.styles import CONTENT_WIDTH, grid, table_style

if TYPE_CHECKING:  # importing app.store would load alembic; only the types are needed
    from app.store.records import CaseRecord

PREVIEW_CHARS = 90
NOT_REVIEWED = "not reviewed"


def label_of(case: CaseRecord) -> str:
    return case.prediction.value.label if case.prediction else "no prediction"


def decision_of(case: CaseRecord) -> str:
    return case.escalation.value.decision if case.escalation else "not decided"


def review_of(case: CaseRecord) -> str:
    return case.review.decision if case.review else NOT_REVIEWED


def _signed(case: CaseRecord) -> str:
    review = case.review
    if review is None:
        return NOT_REVIEWED
    return f"{review.decision} by {printed_name(review)}; {state_of(review)}"


def _signature_counts(cases: Sequence[CaseRecord]) -> str:
    """How the latest review of each case holds up: 'signature verified: 3, ...'."""
    states = Counter(state_of(c.review) for c in cases if c.review)
    return ", ".join(f"{state}: {n}" for state, n in states.most_common()) or "no reviews"


def _counts(title: str, values: list[str], ctx: ReportContext, width: float) -> Table:
    w = ctx.writer
    rows = [[w.p(title, w.styles.label), w.p("cases", w.styles.label)]]
    rows += [[w.p(value), w.p(f"{n} ({n / len(values):.0%})")]
             for value, n in sorted(Counter(values).items(), key=lambda kv: (-kv[1], kv[0]))]
    return grid(rows, [width * 0.55, width * 0.45])


def _count_tables(cases: Sequence[CaseRecord], ctx: ReportContext) -> Table:
    width = (CONTENT_WIDTH - 8 * mm) / 3
    tables = [_counts("model label", [label_of(c) for c in cases], ctx, width),
              _counts("escalation", [decision_of(c) for c in cases], ctx, width),
              _counts("review", [review_of(c) for c in cases], ctx, width)]
    outer = Table([tables], colWidths=[width + 4 * mm, width + 4 * mm, width])
    outer.setStyle(table_style([("VALIGN", (0, 0), (-1, -1), "TOP"),
                                ("LEFTPADDING", (0, 0), (-1, -1), 0)]))
    return outer


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= PREVIEW_CHARS else flat[: PREVIEW_CHARS - 1] + "…"


def _case_rows(cases: Sequence[CaseRecord], ctx: ReportContext) -> Table:
    w = ctx.writer
    small = w.styles.small
    header = ["case", "created", "label (P)", "escalation", "review", "text"]
    rows = [[w.p(h, w.styles.label) for h in header]]
    for case in cases:
        p = case.prediction.value.confidence if case.prediction else None
        rows.append([w.p(f"#{case.id}", small), w.p(utc(case.created)[:16], small),
                     w.p(label_of(case) + (f" ({p:.2f})" if p is not None else ""), small),
                     w.p(decision_of(case), small),
                     w.p(_signed(case), small),
                     w.p(_preview(case.text), small)])
    widths = [12 * mm, 28 * mm, 25 * mm, 22 * mm, 28 * mm]
    return grid(rows, [*widths, CONTENT_WIDTH - sum(widths)])


def summary_flowables(cases: Sequence[CaseRecord], models: Sequence[str], ctx: ReportContext,
                      selection: str | None = None) -> list[Flowable]:
    """The batch's first page(s): selection, counts and the list of cases."""
    w = ctx.writer
    return [
        w.p(f"Casewise audit report: {len(cases)} cases", w.styles.title),
        w.fields([("Exported", utc(ctx.exported_at)),
                  ("Selection", selection or "cases chosen by id"),
                  ("Cases", ", ".join(f"#{c.id}" for c in cases[:40])
                   + (f" … ({len(cases)} in all)" if len(cases) > 40 else "")),
                  ("Models", ", ".join(models) or "none"),
                  ("Signatures", _signature_counts(cases)),
                  ("Audit chain", w.p(ctx.chain_line(), w.styles.mono))]),
        w.heading("Counts"), _count_tables(cases, ctx), Spacer(1, 2 * mm),
        w.heading("Cases"), _case_rows(cases, ctx),
    ]
