"""Attributions drawn without Qt: highlighted HTML for the window and the PDF, and a bar chart
of the top features (matplotlib, SVG or PNG bytes)."""

from __future__ import annotations

import html
import io
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # no display; also keeps matplotlib from looking for Qt
from matplotlib import colormaps
from matplotlib.colors import to_hex

if TYPE_CHECKING:
    from explainers.types import Attribution, Feature

# ColorBrewer's RdBu is diverging and safe for the common colour-vision deficiencies:
# red raises the explained class, blue lowers it.
PALETTE = colormaps["RdBu_r"]


def colour_for(value: float, scale: float) -> str:
    """Hex colour for ``value`` on a symmetric scale; 0 is white."""
    x = 0.5 + 0.5 * max(-1.0, min(1.0, value / scale)) if scale > 0 else 0.5
    return to_hex(PALETTE(x))


def _scale(values) -> float:
    return max((abs(v) for v in values), default=0.0) or 1.0


def highlighted_html(text: str, attribution: Attribution, cls: str | None = None) -> str:
    """The full original text, escaped, with each attributed word in a coloured span whose
    tooltip gives its value; text the model did not see is marked as such."""
    cls = cls or attribution.explained_class
    scale = _scale(f.values[cls] for f in attribution.features)
    parts, cursor = [], 0
    for feature in attribution.features:
        parts.append(html.escape(text[cursor : feature.start]))
        value = feature.values[cls]
        parts.append(
            f'<span class="cw-feature" style="background-color:{colour_for(value, scale)}" '
            f'title="{html.escape(feature.text)}: {value:+.3f} to P({html.escape(cls)})">'
            f"{html.escape(text[feature.start : feature.end])}</span>"
        )
        cursor = feature.end
    parts.append(html.escape(text[cursor : attribution.seen_chars]))
    if attribution.truncated:
        parts.append(
            '<span class="cw-unseen" style="color:#777;text-decoration:line-through" '
            'title="beyond the model window: not read by the model">'
            f"{html.escape(text[attribution.seen_chars :])}</span>"
        )
    return f'<div class="cw-text">{"".join(parts)}</div>'


def legend_html(cls: str) -> str:
    stops = "".join(
        f'<span style="background-color:{colour_for(v, 1.0)};padding:0 .6em">&nbsp;</span>'
        for v in (-1.0, -0.5, 0.0, 0.5, 1.0)
    )
    return (f'<div class="cw-legend">lowers P({html.escape(cls)}) {stops} '
            f"raises P({html.escape(cls)})</div>")


def top_features(attribution: Attribution, cls: str, k: int = 12) -> list[Feature]:
    return attribution.top_features(cls, k)


def bar_chart(attribution: Attribution, cls: str | None = None, k: int = 12,
              fmt: str = "svg") -> bytes:
    """Horizontal bars for the ``k`` features with the largest |value| for ``cls``."""
    from matplotlib.figure import Figure

    cls = cls or attribution.explained_class
    features = top_features(attribution, cls, k)[::-1]
    values = [f.values[cls] for f in features]
    scale = _scale(values)
    figure = Figure(figsize=(5.5, 0.3 * len(features) + 1.0), dpi=120)
    axes = figure.add_subplot()
    positions = range(len(features))
    axes.barh(positions, values, color=[colour_for(v, scale) for v in values],
              edgecolor="#555", linewidth=0.5)
    axes.set_yticks(list(positions), [_label(f.text) for f in features])
    axes.axvline(0, color="#333", linewidth=0.8)
    axes.set_xlabel(f"contribution to P({cls})")
    axes.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt)
    return buffer.getvalue()


def _label(word: str) -> str:
    return word if len(word) <= 24 else word[:23] + "…"
