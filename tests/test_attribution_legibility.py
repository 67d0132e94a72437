"""Issue 15, item 8: the highlights stay readable and honest.

Every highlight meets WCAG AA contrast (4.5:1) in the window, the trail and the PDF; near-zero
words get no box in either palette and boxes grow with |value|; the legend shows its scale and
follows the explained class; repeated flip words say where they are; the coarse first pass
shows a group as one box with the group's value. Synthetic attributions: no model is needed.
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette, QTextDocument

from explainers.types import Attribution, Feature, Flip

CLASSES = ("negative", "positive")
AA = 4.5


# -- WCAG 2.x contrast, written out here so the test does not trust the code it tests ------------

def luminance(colour: str) -> float:
    if len(colour) == 4:  # #rgb
        colour = "#" + "".join(c * 2 for c in colour[1:])
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


# -- synthetic attributions -----------------------------------------------------------------------

def make(words: list[str], values: list[float], final: bool = True,
         other: list[float] | None = None) -> tuple[str, Attribution]:
    """The words joined by spaces, each with ``values`` for "negative" (and ``other``, default
    the opposite, for "positive")."""
    other = other if other is not None else [-v for v in values]
    text, features = "", []
    for word, neg, pos in zip(words, values, other, strict=True):
        start = len(text)
        text += word + " "
        features.append(Feature(word, start, start + len(word),
                                {"negative": neg, "positive": pos}))
    text = text.rstrip()
    probabilities = {"negative": 0.7, "positive": 0.3}
    base = {c: probabilities[c] - sum(f.values[c] for f in features) for c in CLASSES}
    attribution = Attribution(
        label="negative", explained_class="negative", classes=CLASSES,
        probabilities=probabilities, base_values=base, features=tuple(features),
        method="partition", context="empty", masking="delete", precision="float32",
        budget=20, model_calls=20, seconds=0.1, seen_chars=len(text), text_chars=len(text),
        final=final)
    return text, attribution


def sweep() -> tuple[str, Attribution]:
    """41 words whose values run evenly from -0.42 to +0.42."""
    values = [round(-0.42 + 0.021 * i, 4) for i in range(41)]
    return make([f"w{i}" for i in range(41)], values)


# -- a. contrast -----------------------------------------------------------------------------------

@pytest.mark.parametrize("base", ["#ffffff", "#16191d"])
def test_every_highlight_colour_meets_aa_contrast(base):
    from explainers.render import contrast_ratio, highlight

    assert contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    for step in range(-400, 401):
        value = step / 1000
        colours = highlight(value, 0.4, base)
        if colours.background is None:
            assert colours.ink is None  # no box: the palette's own text on its base
            continue
        assert contrast(colours.background, colours.ink) >= AA, (value, colours)
        assert contrast_ratio(colours.background, colours.ink) == pytest.approx(
            contrast(colours.background, colours.ink))


def spans_of(html: str) -> list[tuple[str, str, str]]:
    """(background, text colour, word) of each coloured span in an HTML fragment."""
    found = []
    for style, word in re.findall(r'<span[^>]*style="([^"]*)"[^>]*>([^<]*)</span>', html):
        background = re.search(r"background-color:\s*(#[0-9a-fA-F]{6})", style)
        ink = re.search(r"(?<!-)color:\s*(#[0-9a-fA-F]{6}|#[0-9a-fA-F]{3})\b", style)
        if background:
            found.append((background.group(1), ink.group(1) if ink else "", word))
    return found


def test_the_trail_dialogs_strongest_words_are_readable():
    from app.ui.case_trail import highlighted_text

    text, attribution = sweep()
    spans = spans_of(highlighted_text(text, attribution, base="#ffffff"))
    strongest = {s for s in spans if s[2] in ("w0", "w40")}
    assert len(strongest) == 2
    for background, ink, word in spans:
        assert ink, f"{word} on {background} has no text colour of its own"
        assert contrast(background, ink) >= AA, (word, background, ink)


def document_colours(document: QTextDocument) -> dict[str, tuple[str | None, str | None]]:
    """word -> (background, text colour) as the window's document really has them."""
    found = {}
    block = document.begin()
    while block.isValid():
        fragments = block.begin()
        while not fragments.atEnd():
            fragment = fragments.fragment()
            fmt = fragment.charFormat()
            brush = fmt.background()
            background = (brush.color().name() if brush.style() != Qt.BrushStyle.NoBrush
                          else None)
            ink = (fmt.foreground().color().name()
                   if fmt.foreground().style() != Qt.BrushStyle.NoBrush else None)
            for word in fragment.text().split():
                found[word] = (background, ink)
            fragments += 1
        block = block.next()
    return found


@pytest.fixture(autouse=True)
def widget_palettes_rule(qapp):
    """An earlier test's window leaves the app's style sheet set, and a style sheet overrides
    the palette a test gives one widget; these tests set palettes per widget."""
    before = qapp.styleSheet()
    qapp.setStyleSheet("")
    yield
    qapp.setStyleSheet(before)


def view_with(qtbot, attribution: Attribution, text: str, theme: str = "light"):
    from app.ui.attribution_view import AttributionView
    from app.ui.theme import palette_for

    view = AttributionView()
    view.setPalette(palette_for(theme))
    qtbot.addWidget(view)
    view.show_attribution(text, attribution)
    return view


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_windows_highlights_are_readable(qtbot, theme):
    text, attribution = sweep()
    view = view_with(qtbot, attribution, text, theme)
    base = view.browser.palette().color(QPalette.ColorRole.Base).name()
    colours = document_colours(view.browser.document())
    assert colours["w0"][0] is not None and colours["w40"][0] is not None
    for word, (background, ink) in colours.items():
        if background is None:
            continue
        assert ink is not None, f"{word} on {background} has no text colour of its own"
        assert contrast(background, ink) >= AA, (theme, word, background, ink, base)


# -- b. dark mode: near-zero words get no box, and boxes grow with |value| ------------------------

@pytest.mark.parametrize("theme", ["light", "dark"])
def test_near_zero_words_get_no_box_and_boxes_grow_with_the_value(qtbot, theme):
    values = [0.001, -0.002, 0.05, -0.1, 0.2, -0.3, 0.4, -0.5]
    text, attribution = make([f"w{i}" for i in range(len(values))], values)
    view = view_with(qtbot, attribution, text, theme)
    base = view.browser.palette().color(QPalette.ColorRole.Base).name()
    colours = document_colours(view.browser.document())
    for word in ("w0", "w1"):  # |value| under 1 % of the strongest
        assert colours[word][0] in (None, base), (theme, word, colours[word])
    # How far each box stands out from the page: it grows with |value| on both sides.
    standout = [contrast(colours[f"w{i}"][0] or base, base) for i in range(len(values))]
    assert standout == sorted(standout), (theme, standout)
    assert standout[-1] > 2.0, (theme, standout)  # the strongest word is a clear box


# -- c. the legend shows its scale and follows the class ------------------------------------------

def test_the_legend_shows_its_scale_and_rescales_with_the_class(qtbot):
    text, attribution = make(["nausea", "rash", "fine"], [0.42, -0.1, 0.05],
                             other=[-0.2, 0.05, 0.1])
    view = view_with(qtbot, attribution, text)
    caption = view.legend.accessibleDescription()
    assert "0.42" in caption and "toward negative" in caption and "away from negative" in caption
    view.class_combo.setCurrentText("positive")
    caption = view.legend.accessibleDescription()
    assert "0.20" in caption and "0.42" not in caption
    assert "toward positive" in caption and "away from positive" in caption


# -- d. repeated flip words say where they are -----------------------------------------------------

def flipped(spans: tuple[tuple[int, int], ...] | None = None) -> Attribution:
    text, attribution = make(["nausea", "then", "rash", "nausea", "again"],
                             [0.3, 0.0, 0.1, 0.25, 0.01])
    spans = spans if spans is not None else ((0, 6), (17, 23))
    assert text[17:23] == "nausea"
    return replace(attribution, flip=Flip(("nausea", "nausea"), spans, "positive", 4, 6))


def quoted(sentence: str) -> list[str]:
    return re.findall(r"[“‘]nausea[”’][^,]*?(?=,| and | changes)", sentence)


def test_the_flip_sentence_tells_repeated_words_apart():
    from app.ui.attribution_view import flip_text

    sentence = flip_text(flipped())
    assert "word 1" in sentence and "word 4" in sentence, sentence
    mentions = quoted(sentence)
    assert len(mentions) == 2 and mentions[0] != mentions[1], sentence


def test_the_trail_and_the_pdf_say_the_same_positions():
    from app.reports.case_page import _flip
    from app.store.records import StoredRecord
    from app.ui.case_trail import attributions_html

    attribution = flipped()
    pdf = _flip(attribution)
    assert "word 1" in pdf and "word 4" in pdf, pdf
    stored = StoredRecord(1, "attribution", 1, "2026-01-02T10:30:00+00:00", "0" * 64,
                          attribution.to_dict())
    trail = attributions_html([stored])
    assert "word 1" in trail and "word 4" in trail, trail


def test_an_old_flip_without_positions_still_loads_and_reads():
    from app.ui.attribution_view import flip_text

    data = flipped().to_dict()
    data["flip"] = {"words": ["nausea", "nausea"], "new_label": "positive"}  # an old record
    old = Attribution.from_dict(data)
    assert old.flip.spans == ()
    sentence = flip_text(old)
    assert "nausea" in sentence and "positive" in sentence


# -- e. the coarse first pass shows a group as one box ---------------------------------------------

def coarse() -> tuple[str, Attribution]:
    """Six words: a group of three sharing 0.3 (0.1 each, as shap lowers an unresolved group's
    credit), one word resolved on its own, and a group of two sharing -0.2."""
    third = 0.3 / 3
    return make(["the", "rash", "spread", "badly", "then", "cleared"],
                [third, third, third, 0.25, -0.1, -0.1], final=False,
                other=[-third, -third, -third, -0.25, 0.1, 0.1])


def test_a_coarse_pass_shows_one_box_per_group():
    from explainers.render import highlighted_html

    text, attribution = coarse()
    html = highlighted_html(text, attribution)
    titles = re.findall(r'title="([^"]*)"', html)
    assert len(titles) == 3, titles
    assert titles[0].startswith("group of 3 words: value +0.300")
    assert "first pass" in titles[0]
    assert titles[1].startswith("badly: +0.250")
    assert titles[2].startswith("group of 2 words: value -0.200")
    # The final pass of the same values shows each word on its own.
    final = highlighted_html(text, replace(attribution, final=True))
    assert len(re.findall(r'title="', final)) == 6


def test_the_window_shows_the_groups_value_over_each_of_its_words(qtbot):
    text, attribution = coarse()
    view = view_with(qtbot, attribution, text)
    plain = view.browser.toPlainText()
    for word in ("the", "rash", "spread"):
        tip = view.browser.tooltip_at_offset(plain.index(word))
        assert tip.startswith("group of 3 words"), (word, tip)
    assert view.browser.tooltip_at_offset(plain.index("badly")).startswith("badly")
    # The chart of the top words shows the group as one bar with the group's value too.
    bars = {label: value for label, value, *_ in view.chart.items}
    assert bars["3 words: the rash spread"] == pytest.approx(0.3)
    assert "rash" not in bars and bars["badly"] == pytest.approx(0.25)


def test_the_pdfs_highlights_are_readable():
    from types import SimpleNamespace

    from app.reports.case_page import highlighted_markup
    from app.reports.fonts import fonts

    text, attribution = sweep()
    ctx = SimpleNamespace(writer=SimpleNamespace(fonts=fonts()))
    markup = highlighted_markup(text, attribution, "negative", ctx)
    boxes = re.findall(r'<span backColor="(#[0-9a-f]{6})" color="(#[0-9a-f]{6})">', markup)
    assert len(boxes) >= 38  # every word but those near 0
    for background, ink in boxes:
        assert contrast(background, ink) >= AA, (background, ink)


def test_a_theme_switch_redraws_the_boxes_for_the_new_page(qtbot):
    from app.ui.theme import palette_for

    values = [0.001, 0.2, 0.5]
    text, attribution = make(["w0", "w1", "w2"], values)
    view = view_with(qtbot, attribution, text, "light")
    light = document_colours(view.browser.document())["w1"][0]
    view.setPalette(palette_for("dark"))
    dark = document_colours(view.browser.document())["w1"][0]
    assert light != dark
    base = view.browser.palette().color(QPalette.ColorRole.Base).name()
    assert contrast(dark, base) < contrast(document_colours(view.browser.document())["w2"][0],
                                           base)


def uncertain(settled: bool) -> tuple[str, Attribution]:
    """A sampled answer: each word with a standard error, and whether its top words settled."""
    from explainers.types import Uncertainty

    words = ["rash", "awful", "relief", "great", "nurse", "kind", "later", "the"]
    text, attribution = make(words, [0.3, 0.25, -0.2, -0.15, 0.1, 0.08, 0.02, 0.01])
    features = tuple(replace(f, errors={c: 0.02 for c in CLASSES})
                     for f in attribution.features)
    top = ("rash", "awful", "relief", "great", "nurse")
    uncertainty = Uncertainty(settled, top, (1.0, 1.0, 0.97, 0.95, 0.91 if settled else 0.55),
                              None if settled else "kind", 0.0 if settled else 0.45, 64,
                              "bootstrap", 3, "settled" if settled else "budget")
    return text, replace(attribution, features=features, uncertainty=uncertainty,
                         method="refined", estimator="KernelSHAP, paired, from the partition "
                                                     "pass")


@pytest.mark.parametrize("settled", [True, False])
def test_the_window_says_whether_the_top_words_are_settled(qtbot, settled):
    text, attribution = uncertain(settled)
    view = view_with(qtbot, attribution, text)
    line = view.order_line.text()
    assert view.order_line.isVisibleTo(view)
    if settled:
        assert line.startswith("Top words settled")
    else:
        assert line.startswith("Order of the top words not settled") and "“nurse”" in line
        assert "“kind” is among them in 45%" in line
    # Each bar carries its standard error, drawn as a whisker and said in the description.
    assert all(error == pytest.approx(0.02) for *_, error in view.chart.items)
    assert "± 0.020" in view.chart.accessibleDescription()
    tip = view.browser.tooltip_at_offset(view.browser.toPlainText().index("rash"))
    assert "± 0.020" in tip
    assert "KernelSHAP" in view.status.text()


def test_a_deterministic_answer_shows_no_settledness_line(qtbot):
    text, attribution = sweep()
    view = view_with(qtbot, attribution, text)
    assert not view.order_line.isVisibleTo(view)


def test_the_pdf_shows_the_errors_and_the_settledness():
    from reportlab.graphics.shapes import Line

    from app.reports.chart import attribution_chart
    from app.reports.fonts import fonts

    _, attribution = uncertain(False)
    chart = attribution_chart(attribution.features, "negative", fonts(), 400)
    labels = [s.text for s in chart.contents if hasattr(s, "text")]
    assert any("±0.020" in label for label in labels)
    whiskers = [s for s in chart.contents if isinstance(s, Line)]
    assert len(whiskers) >= 5 + 1  # one per word shown, and the axis
    assert "not settled" in attribution.uncertainty.sentence()
