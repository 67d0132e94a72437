"""Attributions drawn without Qt: highlighted HTML for the window and the PDF, the colours of
every highlight (background and text, WCAG AA in a light or dark page), the legend, and a bar
chart of the top features (matplotlib, SVG or PNG bytes)."""

from __future__ import annotations

import html
import io
import math
from dataclasses import dataclass
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
# On a dark page RdBu's pale middle would be the brightest box: there a box fades from the
# page's own colour toward these mid-strength RdBu colours, so a stronger word stands out more.
DARK_PAGE_ENDS = (to_hex(PALETTE(0.2)), to_hex(PALETTE(0.8)))  # lowers, raises
# Black or white text, whichever contrasts more: the worse of the two is never below 4.58:1.
INKS = ("#000000", "#ffffff")
# Words under this share of the strongest |value| get no box: the eye goes to what matters.
NEUTRAL_SHARE = 0.05
# A page whose base is darker than this is a dark page (where black and white text contrast
# equally with it).
DARK_PAGE_LUMINANCE = 0.18


def colour_for(value: float, scale: float) -> str:
    """Hex colour for ``value`` on a symmetric scale; 0 is white."""
    x = 0.5 + 0.5 * max(-1.0, min(1.0, value / scale)) if scale > 0 else 0.5
    return to_hex(PALETTE(x))


# -- contrast ------------------------------------------------------------------------------------

def _rgb(colour: str) -> tuple[float, float, float]:
    colour = colour.lstrip("#")
    if len(colour) == 3:
        colour = "".join(c * 2 for c in colour)
    red, green, blue = (int(colour[i : i + 2], 16) / 255 for i in (0, 2, 4))
    return red, green, blue


def relative_luminance(colour: str) -> float:
    """WCAG 2.x relative luminance of a ``#rrggbb`` colour (0 black, 1 white)."""
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in _rgb(colour)]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(first: str, second: str) -> float:
    """WCAG 2.x contrast ratio of two colours, 1 to 21."""
    light, dark = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def ink_for(background: str) -> str:
    """The text colour for ``background``: black or white, whichever contrasts more."""
    return max(INKS, key=lambda ink: contrast_ratio(background, ink))


def is_dark(colour: str) -> bool:
    return relative_luminance(colour) < DARK_PAGE_LUMINANCE


def _mix(start: str, end: str, share: float) -> str:
    mixed = (a + (b - a) * share for a, b in zip(_rgb(start), _rgb(end), strict=True))
    return "#" + "".join(f"{round(c * 255):02x}" for c in mixed)


@dataclass(frozen=True)
class Highlight:
    """The colours of one highlighted word; None for both: no box, the page's own colours."""

    background: str | None
    ink: str | None


def highlight(value: float, scale: float, base: str = "#ffffff") -> Highlight:
    """The box and text colours for ``value`` on a symmetric scale, on a page of colour
    ``base``: no box near zero, a box that stands out more from the page as |value| grows
    (RdBu on a light page, the page's colour toward RdBu on a dark one), and text that meets
    WCAG AA contrast on it."""
    share = min(1.0, abs(value) / scale) if scale > 0 else 0.0
    if share < NEUTRAL_SHARE:
        return Highlight(None, None)
    if is_dark(base):
        background = _mix(base, DARK_PAGE_ENDS[value > 0], share)
    else:
        background = colour_for(value, scale)
    return Highlight(background, ink_for(background))


def highlight_style(colours: Highlight) -> str:
    """The CSS of a highlight ("" for no box)."""
    if colours.background is None:
        return ""
    return f"background-color:{colours.background};color:{colours.ink}"


# -- what is highlighted: words, or the coarse pass's groups -------------------------------------

@dataclass(frozen=True)
class Segment:
    """A highlighted stretch of text: one word, or in a coarse pass a group of words that
    shap has not split yet (``words`` > 1), with the group's value."""

    start: int
    end: int
    value: float
    words: int
    text: str  # the word, or a group's words joined by spaces
    error: float | None = None  # the estimator's standard error of a single word's value


def _same_values(a: Feature, b: Feature) -> bool:
    # shap lowers an unresolved group's credit evenly onto its words, so they carry the same
    # value for every class (up to rounding); words it resolved carry their own.
    return a.values.keys() == b.values.keys() and all(
        math.isclose(a.values[c], b.values[c], rel_tol=1e-9, abs_tol=1e-12) for c in a.values)


def _groups(attribution: Attribution) -> list[list[Feature]]:
    features = sorted(attribution.features, key=lambda f: f.start)
    # Only shap's Partition pass leaves groups unresolved; every other answer is per word.
    if attribution.final or attribution.method not in ("partition", "refined") \
            or attribution.uncertainty is not None:
        return [[f] for f in features]
    groups: list[list[Feature]] = []
    for feature in features:
        if groups and _same_values(groups[-1][-1], feature):
            groups[-1].append(feature)
        else:
            groups.append([feature])
    return groups


def segments(attribution: Attribution, cls: str) -> list[Segment]:
    """The words of the final pass one by one; in the coarse first pass each unresolved group
    as one segment whose value is the group's (the sum its words share), since showing the
    share on every word would suggest each word had it."""
    return [Segment(group[0].start, group[-1].end,
                    sum(f.values.get(cls, 0.0) for f in group), len(group),
                    " ".join(f.text for f in group),
                    group[0].errors.get(cls) if len(group) == 1 and group[0].errors else None)
            for group in _groups(attribution)]


def highlight_scale(attribution: Attribution, cls: str) -> float:
    """The symmetric colour scale for ``cls``: the largest |value| shown (1 if none), so the
    strongest word or group is the deepest colour. It differs per class."""
    return _scale(s.value for s in segments(attribution, cls))


def segment_tooltip(segment: Segment, cls: str) -> str:
    if segment.words > 1:
        return (f"group of {segment.words} words: value {segment.value:+.3f} to P({cls}) "
                "(first pass; each word's own value comes next)")
    error = f" ± {segment.error:.3f}" if segment.error else ""
    return f"{segment.text}: {segment.value:+.3f}{error} to P({cls})"


def _scale(values) -> float:
    return max((abs(v) for v in values), default=0.0) or 1.0


def highlighted_spans(text: str, attribution: Attribution, cls: str,
                      base: str = "#ffffff") -> str:
    """The text the model saw, escaped, each word (or coarse group) in a span with its colours
    and its value as the tooltip."""
    scale = highlight_scale(attribution, cls)
    parts, cursor = [], 0
    for segment in segments(attribution, cls):
        if segment.start < cursor:
            continue  # overlapping spans cannot come from word_spans; never draw text twice
        parts.append(html.escape(text[cursor : segment.start]))
        style = highlight_style(highlight(segment.value, scale, base))
        parts.append(
            f'<span class="cw-feature" style="{style}" '
            f'title="{html.escape(segment_tooltip(segment, cls))}">'
            f"{html.escape(text[segment.start : segment.end])}</span>"
        )
        cursor = segment.end
    parts.append(html.escape(text[cursor : max(cursor, attribution.seen_chars)]))
    return "".join(parts)


def highlighted_html(text: str, attribution: Attribution, cls: str | None = None,
                     base: str = "#ffffff") -> str:
    """The full original text, escaped, with each attributed word in a coloured span whose
    tooltip gives its value; text the model did not see is marked as such. ``base`` is the
    page's colour (a dark page gets boxes that brighten with the value)."""
    cls = cls or attribution.explained_class
    parts = [highlighted_spans(text, attribution, cls, base)]
    if attribution.truncated:
        parts.append(
            '<span class="cw-unseen" style="color:#777;text-decoration:line-through" '
            'title="beyond the model window: not read by the model">'
            f"{html.escape(text[attribution.seen_chars :])}</span>"
        )
    return f'<div class="cw-text">{"".join(parts)}</div>'


# -- the legend ----------------------------------------------------------------------------------

def scale_number(value: float) -> str:
    """A scale end as printed: two decimals, or two significant digits below 0.01."""
    return f"{value:.2f}" if abs(value) >= 0.01 else f"{value:.2g}"


def scale_ends(scale: float) -> tuple[str, str]:
    """The legend's two ends, e.g. ("−0.42", "+0.42") (a true minus sign)."""
    number = scale_number(scale)
    return f"\u2212{number}", f"+{number}"


def legend_caption(cls: str, scale: float) -> str:
    """The legend in words, with its scale: the colours are rescaled for each class."""
    low, high = scale_ends(scale)
    return (f"Colour scale for P({cls}): {low} (away from {cls}) … 0 … {high} (toward {cls}); "
            f"the strongest colour marks the strongest word for this class")


# -- the legend ------------------------------------------------------------------------------------

def legend_html(cls: str, scale: float | None = None, base: str = "#ffffff") -> str:
    """The colour legend as HTML, with its scale when given."""
    stops = "".join(
        f'<span style="background-color:{highlight(v, 1.0, base).background or base};'
        f'padding:0 .6em">&nbsp;</span>'
        for v in (-1.0, -0.5, 0.0, 0.5, 1.0)
    )
    low, high = scale_ends(scale) if scale else ("", "")
    return (f'<div class="cw-legend">lowers P({html.escape(cls)}) {low} {stops} {high} '
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
