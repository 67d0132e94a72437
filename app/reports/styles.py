"""Paragraph styles, colours and small layout helpers shared by the report's pages.

Every style names one of the embedded faces (``app.reports.fonts``); reportlab's defaults
would otherwise fall back to Helvetica, one of the 14 fonts that are never embedded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, Table, TableStyle

from app.reports.fonts import BOLD, MONO, SANS, Fonts

PAGE_SIZE = A4
MARGIN = 16 * mm
FOOTER_HEIGHT = 14 * mm
CONTENT_WIDTH = PAGE_SIZE[0] - 2 * MARGIN
INK = colors.HexColor("#1a1a1a")
MUTED = colors.HexColor("#5a5a5a")
RULE = colors.HexColor("#b8b8b8")
LABEL_BG = colors.HexColor("#f2f2f2")
AI_BG = colors.HexColor("#fff8e1")  # the AI-generated box: warm, unlike anything a human signed
AI_EDGE = colors.HexColor("#c98a00")
WARNING = colors.HexColor("#a3300b")
SIGNED_EDGE = colors.HexColor("#2b5f8a")
BOX_PADDING = 7


def table_style(commands: list[tuple]) -> TableStyle:
    """A table style in the embedded face: reportlab sets each cell's font, even a cell that
    holds a paragraph, and its default is the unembedded Helvetica."""
    return TableStyle([("FONTNAME", (0, 0), (-1, -1), SANS), *commands])


def _style(name: str, font: str = SANS, size: float = 9, leading: float | None = None,
           **extra: Any) -> ParagraphStyle:
    return ParagraphStyle(name, fontName=font, fontSize=size, leading=leading or size * 1.3,
                          textColor=extra.pop("textColor", INK), alignment=TA_LEFT, **extra)


@dataclass(frozen=True)
class Styles:
    body: ParagraphStyle
    small: ParagraphStyle
    label: ParagraphStyle
    mono: ParagraphStyle
    title: ParagraphStyle
    heading: ParagraphStyle
    case_text: ParagraphStyle
    warning: ParagraphStyle

    @classmethod
    def make(cls) -> Styles:
        return cls(
            body=_style("cw-body"),
            small=_style("cw-small", size=7.5, textColor=MUTED),
            label=_style("cw-label", font=BOLD, size=8, textColor=MUTED),
            mono=_style("cw-mono", font=MONO, size=7.5),
            title=_style("cw-title", font=BOLD, size=15, spaceAfter=4),
            heading=_style("cw-heading", font=BOLD, size=10.5, spaceBefore=9, spaceAfter=3),
            # Extra leading so the coloured word backgrounds of adjacent lines do not touch.
            case_text=_style("cw-case-text", size=10, leading=15.5),
            warning=_style("cw-warning", font=BOLD, size=9, textColor=WARNING),
        )


class Writer:
    """Turns plain strings into paragraphs in the embedded faces (escaped, with fallbacks)."""

    def __init__(self, fonts: Fonts, styles: Styles) -> None:
        self.fonts = fonts
        self.styles = styles

    def p(self, text: str, style: ParagraphStyle | None = None) -> Paragraph:
        style = style or self.styles.body
        return Paragraph(self.fonts.markup(text, style.fontName), style)

    def raw(self, markup: str, style: ParagraphStyle | None = None) -> Paragraph:
        """A paragraph from markup already built with ``fonts.markup``."""
        return Paragraph(markup, style or self.styles.body)

    def heading(self, text: str) -> Paragraph:
        return self.p(text, self.styles.heading)

    def fields(self, rows: list[tuple[str, Any]], label_width: float = 34 * mm,
               width: float = CONTENT_WIDTH) -> Table:
        """A two-column table of labelled values; a value is a string or a flowable."""
        cells = [[self.p(label, self.styles.label),
                  self.p(value) if isinstance(value, str) else value] for label, value in rows]
        table = Table(cells, colWidths=[label_width, width - label_width],
                      splitInRow=1)  # a long value may run onto the next page
        table.setStyle(table_style([
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("BACKGROUND", (0, 0), (0, -1), LABEL_BG),
            ("LINEBELOW", (0, 0), (-1, -1), 0.3, RULE),
            ("TOPPADDING", (0, 0), (-1, -1), 2.5),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
        ]))
        return table


def boxed(content: list[Any], background: colors.Color, edge: colors.Color,
          width: float = CONTENT_WIDTH) -> Table:
    """Flowables in a framed, shaded box (the AI and signature boxes). One row per flowable,
    so a long box can continue on the next page instead of failing the layout."""
    table = Table([[item] for item in content], colWidths=[width], splitInRow=1)
    table.setStyle(table_style([
        ("BACKGROUND", (0, 0), (-1, -1), background),
        ("BOX", (0, 0), (-1, -1), 1.2, edge),
        ("LEFTPADDING", (0, 0), (-1, -1), BOX_PADDING),
        ("RIGHTPADDING", (0, 0), (-1, -1), BOX_PADDING),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
        ("TOPPADDING", (0, 0), (-1, 0), 5),
        ("BOTTOMPADDING", (0, -1), (-1, -1), 6),
    ]))
    return table


def grid(rows: list[list[Any]], widths: list[float], header: bool = True) -> Table:
    """A plain data table with a shaded header row; repeats the header across pages."""
    table = Table(rows, colWidths=widths, repeatRows=1 if header else 0, splitInRow=1)
    commands = [
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEBELOW", (0, 0), (-1, -1), 0.3, RULE),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]
    if header:
        commands.append(("BACKGROUND", (0, 0), (-1, 0), LABEL_BG))
    table.setStyle(table_style(commands))
    return table
