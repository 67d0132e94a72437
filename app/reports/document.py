"""The PDF document: page frame, the footer on every page, and layout checkpoints.

The footer carries the audit chain head ("audit chain head (event:sha256): N:HASH") and
"page X of Y". The total is only known at the end, so the canvas holds each finished page and
draws the footers when the document is saved.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import BaseDocTemplate, Flowable, Frame, PageTemplate

from app.accounts.manifestation import signed_when
from app.reports.fonts import MONO, SANS
from app.reports.styles import FOOTER_HEIGHT, MARGIN, MUTED, PAGE_SIZE, RULE, Writer


def utc(moment: str | None) -> str:
    """A stored ISO time as '2026-11-28 12:03:04 UTC' (as given if it cannot be read): the
    wording every view uses (``app.accounts.manifestation.signed_when``)."""
    return signed_when(moment) or "–"


@dataclass(frozen=True)
class ReportContext:
    """What every page needs: the writer (fonts, styles), the export time, the chain head."""

    writer: Writer
    exported_at: str
    chain_head: tuple[int, str] | None

    def chain_line(self) -> str:
        if self.chain_head is None:
            return "audit chain head: no events yet"
        event, digest = self.chain_head
        # In the form `audit verify --against` takes, so it can be pasted as printed.
        return f"audit chain head (event:sha256): {event}:{digest}"


class FooterCanvas(Canvas):
    """A canvas that keeps each page until the end, then stamps every footer with the total."""

    def __init__(self, *args: Any, footer: tuple[str, str] = ("", ""), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._footer = footer
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:  # reportlab calls it at the end of each page
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for number, state in enumerate(self._pages, start=1):
            self.__dict__.update(state)
            self._draw_footer(number, total)
            super().showPage()
        super().save()

    def _draw_footer(self, number: int, total: int) -> None:
        width = PAGE_SIZE[0]
        top = FOOTER_HEIGHT - 3
        self.saveState()
        self.setStrokeColor(RULE)
        self.setLineWidth(0.5)
        self.line(MARGIN, top, width - MARGIN, top)
        self.setFillColor(MUTED)
        self.setFont(SANS, 7)
        self.drawString(MARGIN, top - 9, self._footer[0])
        self.drawRightString(width - MARGIN, top - 9, f"page {number} of {total}")
        self.setFont(MONO, 6.5)
        self.drawString(MARGIN, top - 18, self._footer[1])
        self.restoreState()


class Checkpoint(Flowable):
    """An invisible flowable that calls back when the layout reaches it: progress and cancel
    are honoured between cases even while reportlab lays the pages out."""

    def __init__(self, reached: Callable[[], None]) -> None:
        super().__init__()
        self._reached = reached

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        return 0.0, 0.0

    def draw(self) -> None:
        self._reached()


def build_pdf(story: list[Flowable], ctx: ReportContext, title: str) -> tuple[bytes, int]:
    """Lay out ``story`` and return the PDF bytes and the number of pages."""
    buffer = io.BytesIO()
    frame = Frame(MARGIN, FOOTER_HEIGHT + 4, PAGE_SIZE[0] - 2 * MARGIN,
                  PAGE_SIZE[1] - MARGIN - FOOTER_HEIGHT - 4, id="body",
                  leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0)
    doc = BaseDocTemplate(buffer, pagesize=PAGE_SIZE, title=title, author="Casewise",
                          subject="Audit report", creator="Casewise", pageCompression=1,
                          initialFontName=SANS, pageTemplates=[PageTemplate("page", [frame])])
    footer = (f"Casewise audit report · exported {utc(ctx.exported_at)}", ctx.chain_line())

    def canvas(*args: Any, **kwargs: Any) -> FooterCanvas:
        return FooterCanvas(*args, footer=footer, **kwargs)

    doc.build(story, canvasmaker=canvas)
    return buffer.getvalue(), doc.page
