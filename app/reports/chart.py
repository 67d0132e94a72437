"""The attribution bar chart and the colour legend, as reportlab vector drawings.

Drawn directly (no matplotlib figure per case): a few dozen shapes, so a chart costs well under
a millisecond and stays sharp at any zoom. The colours are ``explainers.render.colour_for``, the
same diverging, colour-blind-safe scale as the highlighted text in the window.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from reportlab.graphics.shapes import Drawing, Line, Rect, String
from reportlab.lib import colors
from reportlab.pdfbase.pdfmetrics import stringWidth

from app.reports.fonts import MONO, SANS, Fonts, marker
from app.reports.styles import MUTED, RULE
from explainers.render import colour_for, highlight, scale_ends

if TYPE_CHECKING:
    from explainers.types import Feature

TOP_K = 12
ROW = 13.0
LABEL_WIDTH = 140.0
VALUE_WIDTH = 44.0
LABEL_CHARS = 26


def value_of(feature: Feature, cls: str) -> float:
    """A word's value for ``cls`` (0 for a class it has no value for)."""
    return float(feature.values.get(cls, 0.0))


def feature_values(features: Sequence[Feature], cls: str) -> list[float]:
    return [value_of(f, cls) for f in features]


def value_scale(values: list[float]) -> float:
    """The symmetric scale of the colours: the largest |value|, so the strongest word is the
    deepest colour (as in ``explainers.render``)."""
    return max((abs(v) for v in values), default=0.0) or 1.0


def top_features(features: Sequence[Feature], cls: str, k: int = TOP_K) -> list[Feature]:
    return sorted(features, key=lambda f: -abs(value_of(f, cls)))[:k]


def _short(word: str) -> str:
    word = " ".join(word.split())
    return word if len(word) <= LABEL_CHARS else word[: LABEL_CHARS - 1] + "…"


def _drawing(width: float, height: float) -> Drawing:
    drawing = Drawing(width, height)
    # reportlab starts every drawing in Helvetica, which would put that unembedded font in
    # the PDF even though no text uses it.
    drawing.initialFontName = SANS
    return drawing


def draw_text(drawing: Drawing, fonts: Fonts, text: str, x: float, y: float, size: float,
              anchor: str = "start", colour: colors.Color = colors.black) -> float:
    """Text in a drawing with the same per-character fallback as the paragraphs; returns
    where the text ends."""
    pieces = [(face or MONO, chunk if face else marker(chunk))
              for face, chunk in fonts.runs(text, SANS)]
    width = sum(stringWidth(chunk, face, size) for face, chunk in pieces)
    x -= {"start": 0.0, "middle": width / 2, "end": width}[anchor]
    for face, chunk in pieces:
        drawing.add(String(x, y, chunk, fontName=face, fontSize=size, fillColor=colour))
        x += stringWidth(chunk, face, size)
    return x


def attribution_chart(features: Sequence[Feature], cls: str, fonts: Fonts,
                      width: float, scale: float | None = None) -> Drawing:
    """Horizontal bars for the words with the largest |contribution| to P(cls), strongest
    first; red raises P(cls), blue lowers it."""
    top = top_features(features, cls)
    scale = scale or value_scale(feature_values(features, cls))
    height = ROW * len(top) + 26
    drawing = _drawing(width, height)
    # A gutter for the value text on both sides, so a long bar never runs into a label.
    plot_left = LABEL_WIDTH + 6 + VALUE_WIDTH
    half = (width - plot_left - VALUE_WIDTH) / 2
    zero = plot_left + half
    for row, feature in enumerate(top):
        value = value_of(feature, cls)
        y = height - 6 - (row + 1) * ROW
        length = value / scale * half
        drawing.add(Rect(min(zero, zero + length), y + 2, abs(length), ROW - 4,
                         fillColor=colors.HexColor(colour_for(value, scale)),
                         strokeColor=colors.HexColor("#555555"), strokeWidth=0.4))
        draw_text(drawing, fonts, _short(feature.text), LABEL_WIDTH, y + 3.5, 8, "end")
        error = (feature.errors or {}).get(cls)
        reach = 1.96 * error / scale * half if error else 0.0
        if reach:  # the 95 % interval of the estimate, as a whisker through the bar's end
            middle = y + ROW / 2
            drawing.add(Line(zero + length - reach, middle, zero + length + reach, middle,
                             strokeColor=colors.HexColor("#222222"), strokeWidth=0.6))
        end = zero + length + (3 + reach if value >= 0 else -3 - reach)
        label = f"{value:+.3f}" + (f" ±{error:.3f}" if error else "")
        draw_text(drawing, fonts, label, end, y + 3.5, 7, "start" if value >= 0 else "end",
                  MUTED)
    drawing.add(Line(zero, 16, zero, height - 4, strokeColor=RULE, strokeWidth=0.8))
    draw_text(drawing, fonts, f"← lowers P({cls})", zero - 4, 4, 7.5, "end", MUTED)
    draw_text(drawing, fonts, f"raises P({cls}) →", zero + 4, 4, 7.5, "start", MUTED)
    return drawing


def legend(cls: str, fonts: Fonts, width: float, scale: float = 1.0) -> Drawing:
    """Five colour swatches from 'lowers' to 'raises' with the scale's numbers at the ends
    (the colours are relative to the largest value of this case and class)."""
    low, high = scale_ends(scale)
    drawing = _drawing(width, 16)
    x = draw_text(drawing, fonts, f"lowers P({cls})  {low}", 0, 4, 7.5, colour=MUTED) + 4
    for share in (-1.0, -0.5, 0.0, 0.5, 1.0):
        fill = highlight(share * scale, scale).background or "#ffffff"
        drawing.add(Rect(x, 2, 22, 11, fillColor=colors.HexColor(fill),
                         strokeColor=RULE, strokeWidth=0.4))
        x += 24
    draw_text(drawing, fonts, f"{high}  raises P({cls});  colour depth ∝ |contribution|, "
                              "no box: next to nothing", x + 3, 4, 7.5, colour=MUTED)
    return drawing
