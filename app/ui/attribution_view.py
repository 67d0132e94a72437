"""Why the model said what it said: the case text with SHAP highlights (a diverging,
colour-blind-safe palette from ``explainers.render``, each word's value in a tooltip), a class
switch, the legend, a bar chart of the top words, the faithfulness badge and "what would flip
it". The coarse first attribution shows at once and is refined in place.

Renders an ``Attribution`` (``explainers.types``). ``explainers.render`` pulls in shap and
matplotlib, so every task that delivers an attribution imports it first (``preload``): the GUI
thread then finds it loaded and never waits on an import.
"""

from __future__ import annotations

import html

from PySide6.QtCore import QEvent, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QLinearGradient,
    QPainter,
    QPalette,
    QTextCursor,
)
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QTextBrowser,
    QToolButton,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from app.ui.result_panel import badge_style, make_badge, muted, section_title
from explainers.types import Attribution
from explainers.wording import flip_words
from models.progress import Progress


def preload() -> None:
    """Import the renderer (shap, matplotlib) on a worker thread, before the view needs it."""
    import explainers.render  # noqa: F401


def _render():
    import explainers.render as render

    return render


# -- plain text from the attribution (no Qt: tested directly) ------------------------------------

def faithfulness_texts(attribution: Attribution) -> tuple[str, str, str] | None:
    """(badge text, tone, the one-sentence reading) or None when not measured yet."""
    faith = attribution.faithfulness
    if faith is None:
        return None
    strength = faith.reading.split(" ", 1)[0]  # "Strong" / "Moderate" / "Weak" / "No"
    tone = {"Strong": "auto", "Moderate": "escalate"}.get(strength, "danger")
    badge = f"Faithfulness: {strength.lower()}" if strength != "No" else "Faithfulness: n/a"
    detail = (f"{faith.reading} (AOPC comprehensiveness {faith.comprehensiveness:.2f}, "
              f"sufficiency {faith.sufficiency:.2f})")
    return badge, tone, detail


def flip_text(attribution: Attribution) -> str:
    flip = attribution.flip
    if flip is None:
        return ""
    if flip.words:
        words = flip_words(attribution)
        return (f"What would flip it: removing {words} changes the label from "
                f"{attribution.label} to {flip.new_label}.")
    return (f"What would flip it: removing up to {flip.searched} of the top words does not "
            f"change the label — the decision does not hang on a few words.")


def status_text(attribution: Attribution) -> str:
    if not attribution.final:
        if attribution.method.startswith("amortized") and attribution.uncertainty is not None \
                and attribution.uncertainty.kind == "heads":
            return "Instant learned answer — sampling Shapley values to check it…"
        if attribution.uncertainty is not None:
            return (f"Refining ({attribution.model_calls} model calls) — top words not yet "
                    "settled…")
        return f"First pass ({attribution.model_calls} model calls) — refining…"
    unseen = " · struck-through text lies beyond the model window" \
        if attribution.truncated else ""
    name = attribution.estimator or f"{attribution.method.capitalize()} SHAP"
    return (f"{name} · {attribution.model_calls} model calls · "
            f"{attribution.seconds:.2f} s{unseen}")


def order_text(attribution: Attribution) -> tuple[str, str] | None:
    """The settledness line and its tone, or None for an answer with no uncertainty known."""
    uncertainty = attribution.uncertainty
    if uncertainty is None:
        return None
    return uncertainty.sentence(), "auto" if uncertainty.settled else "escalate"


class HighlightBrowser(QTextBrowser):
    """A QTextBrowser that shows each highlighted word's value as its tooltip on hover."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setFrameShape(QFrame.Shape.NoFrame)

    def viewportEvent(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip:
            tip = self.tooltip_at(event.pos())
            if tip:
                QToolTip.showText(event.globalPos(), tip, self.viewport())
            else:
                QToolTip.hideText()
            return True
        return super().viewportEvent(event)

    def tooltip_at(self, pos) -> str:
        cursor = self.cursorForPosition(pos)
        position = cursor.position()
        # charFormat() describes the character before the cursor: look at both neighbours.
        cursor.setPosition(min(position + 1, self.document().characterCount() - 1))
        tip = cursor.charFormat().toolTip()
        if not tip:
            cursor.setPosition(position)
            tip = cursor.charFormat().toolTip()
        return tip

    def tooltip_at_offset(self, offset: int) -> str:
        """The tooltip of the character at ``offset`` in the document (for tests)."""
        cursor = QTextCursor(self.document())
        cursor.setPosition(offset + 1)
        return cursor.charFormat().toolTip()


class LegendBar(QWidget):
    """The diverging scale with its numbers: away from the class on the left, toward it on the
    right, the ends at ± the strongest value for the class shown (the colours are rescaled for
    each class, so the numbers change with it)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("attributionLegend")
        self.cls = ""
        self.scale = 1.0
        self.base = "#ffffff"
        self.setFixedHeight(36)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_scale(self, cls: str, scale: float, base: str = "#ffffff") -> None:
        """Show the scale of ``cls`` (its largest |value|) on a page of colour ``base``."""
        self.cls, self.scale, self.base = cls, scale, base
        caption = _render().legend_caption(cls, scale)
        self.setAccessibleDescription(caption)
        self.setToolTip(f"{caption}. Blue words push P({cls}) down, red words push it up "
                        "(ColorBrewer RdBu, colour-blind safe); words near 0 are not boxed.")
        self.update()

    def paintEvent(self, event) -> None:
        render = _render()
        painter = QPainter(self)
        metrics = self.fontMetrics()
        left, right = f"away from {self.cls}", f"toward {self.cls}"
        left_w, right_w = metrics.horizontalAdvance(left), metrics.horizontalAdvance(right)
        row = QRectF(0, 2, self.width(), 16)
        bar = QRectF(left_w + 10, row.top() + 3,
                     min(220, max(60, self.width() - left_w - right_w - 20)), row.height() - 6)
        gradient = QLinearGradient(bar.topLeft(), bar.topRight())
        for stop in range(17):
            colours = render.highlight(stop / 8 - 1, 1.0, self.base)
            gradient.setColorAt(stop / 16, QColor(colours.background or self.base))
        painter.setPen(self.palette().color(QPalette.ColorRole.WindowText))
        centre = Qt.AlignmentFlag.AlignVCenter
        painter.drawText(QRectF(0, row.top(), left_w, row.height()), centre, left)
        painter.drawText(QRectF(bar.right() + 10, row.top(), right_w, row.height()), centre,
                         right)
        self._draw_numbers(painter, bar)
        painter.setBrush(gradient)
        painter.setPen(QColor("#888888"))
        painter.drawRect(bar)
        painter.end()

    def _draw_numbers(self, painter: QPainter, bar: QRectF) -> None:
        low, high = _render().scale_ends(self.scale)
        below = QRectF(0, bar.bottom() + 2, 0, self.height() - bar.bottom() - 2)
        for text, x, align in ((low, bar.left(), Qt.AlignmentFlag.AlignLeft),
                               ("0", bar.center().x(), Qt.AlignmentFlag.AlignHCenter),
                               (high, bar.right(), Qt.AlignmentFlag.AlignRight)):
            width = self.fontMetrics().horizontalAdvance(text) + 4
            left = {Qt.AlignmentFlag.AlignLeft: x, Qt.AlignmentFlag.AlignHCenter: x - width / 2,
                    Qt.AlignmentFlag.AlignRight: x - width}[align]
            painter.drawText(QRectF(left, below.top(), width, below.height()),
                             align | Qt.AlignmentFlag.AlignTop, text)


class FeatureBars(QWidget):
    """The top words as a diverging bar chart: right raises P(class), left lowers it."""

    ROW = 22

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("featureChart")
        self.items: list[tuple[str, float, str, float | None]] = []  # word, value, colour, SE
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def set_items(self, items: list[tuple[str, float, str, float | None]], cls: str) -> None:
        self.items = items
        summary = ", ".join(f"{w} {v:+.3f}" + (f" ± {e:.3f}" if e else "")
                            for w, v, _, e in items)
        self.setAccessibleDescription(f"Top words for P({cls}): {summary}")
        self.updateGeometry()
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(320, len(self.items) * self.ROW + 6)

    def minimumSizeHint(self) -> QSize:
        return QSize(200, self.sizeHint().height())

    def paintEvent(self, event) -> None:
        if not self.items:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        metrics = self.fontMetrics()
        words_w = min(160, max(metrics.horizontalAdvance(_short(w)) for w, *_ in self.items)
                      + 12)
        value_w = metrics.horizontalAdvance("+0.000 ±0.000") + 10
        plot = QRectF(words_w, 0, max(40, self.width() - words_w - value_w), self.height())
        scale = max(abs(v) + 1.96 * (e or 0) for _, v, _, e in self.items) or 1.0
        axis = plot.x() + plot.width() / 2
        text = self.palette().color(QPalette.ColorRole.WindowText)
        for row, (word, value, colour, error) in enumerate(self.items):
            y = row * self.ROW + 3
            painter.setPen(text)
            painter.drawText(QRectF(0, y, words_w - 8, self.ROW - 4),
                             Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                             _short(word))
            width = plot.width() / 2 * abs(value) / scale
            bar = QRectF(axis if value >= 0 else axis - width, y + 3, width, self.ROW - 10)
            painter.setPen(QColor("#555555"))
            painter.setBrush(QColor(colour))
            painter.drawRect(bar)
            if error:  # the 95 % interval as a whisker through the bar's end
                end = axis + plot.width() / 2 * value / scale
                reach = plot.width() / 2 * 1.96 * error / scale
                middle = y + self.ROW / 2 - 2
                painter.setPen(text)
                painter.drawLine(int(end - reach), int(middle), int(end + reach), int(middle))
            painter.setPen(text)
            painter.drawText(QRectF(plot.right() + 4, y, value_w, self.ROW - 4),
                             Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                             f"{value:+.3f}" + (f" ±{error:.3f}" if error else ""))
        painter.setPen(text)
        painter.drawLine(int(axis), 0, int(axis), self.height())
        painter.end()


def _chart_label(segment) -> str:
    # The count first: a long group is cut at the end of its label.
    return segment.text if segment.words == 1 else f"{segment.words} words: {segment.text}"


def _short(word: str) -> str:
    return word if len(word) <= 22 else word[:21] + "…"


class AttributionView(QFrame):
    """Highlights, class switch, legend, top words, faithfulness, flip, progress + cancel."""

    cancel_requested = Signal()
    class_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("attributionView")
        self.text = ""
        self._attribution: Attribution | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        layout.addLayout(self._header())
        self.legend = LegendBar()
        layout.addWidget(self.legend)
        self.browser = HighlightBrowser()
        self.browser.setObjectName("highlightText")
        self.browser.setAccessibleName("Case text with word attributions")
        font = self.browser.font()
        font.setPointSizeF(font.pointSizeF() * 1.15)  # the text is what the reviewer reads
        self.browser.setFont(font)
        # The text above, the evidence (checks, flip, chart) below, each scrolling on its own:
        # in a short window the chart scrolls instead of being cut off.
        self.splitter = QSplitter(Qt.Orientation.Vertical, objectName="attributionSplitter")
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.browser)
        self.splitter.addWidget(self._evidence())
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([1, 1])  # half each until the reviewer drags it
        layout.addWidget(self.splitter, 1)
        self.clear()

    def _evidence(self) -> QScrollArea:
        self.evidence = QScrollArea(objectName="evidenceScroll")
        self.evidence.setWidgetResizable(True)
        self.evidence.setFrameShape(QFrame.Shape.NoFrame)
        inner = QWidget()
        box = QVBoxLayout(inner)
        box.setContentsMargins(0, 4, 4, 0)
        box.addLayout(self._checks())
        self.chart_title = muted(QLabel())
        box.addWidget(self.chart_title)
        self.chart = FeatureBars()
        box.addWidget(self.chart)
        box.addStretch(1)
        self.evidence.setWidget(inner)
        return self.evidence

    def _header(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addWidget(section_title("Why: word attributions"))
        row.addStretch(1)
        self.class_label = QLabel("Explain:")
        row.addWidget(self.class_label)
        self.class_combo = QComboBox()
        self.class_combo.setObjectName("explainClass")
        self.class_combo.setToolTip("Show how each word pushes the probability of this class")
        self.class_combo.setAccessibleName("Class to explain")
        self.class_label.setBuddy(self.class_combo)
        self.class_combo.currentTextChanged.connect(self._class_picked)
        row.addWidget(self.class_combo)
        self.progress = QProgressBar()
        self.progress.setObjectName("attributionProgress")
        self.progress.setMaximumWidth(200)
        self.progress.setTextVisible(True)
        row.addWidget(self.progress)
        self.cancel_button = QToolButton()
        self.cancel_button.setText("Cancel")
        self.cancel_button.setObjectName("attributionCancel")
        self.cancel_button.setToolTip("Stop computing attributions (Esc)")
        self.cancel_button.clicked.connect(self.cancel_requested)
        row.addWidget(self.cancel_button)
        return row

    def _checks(self) -> QVBoxLayout:
        box = QVBoxLayout()
        box.setSpacing(4)
        row = QHBoxLayout()
        self.faith_badge = make_badge("", "muted", "faithfulnessBadge")
        row.addWidget(self.faith_badge)
        self.status = muted(QLabel())
        row.addWidget(self.status, 1)
        box.addLayout(row)
        self.faith_text = muted(QLabel())
        box.addWidget(self.faith_text)
        self.flip_line = QLabel()
        self.flip_line.setObjectName("flipLine")
        self.flip_line.setWordWrap(True)
        box.addWidget(self.flip_line)
        # Whether the order of the top words would survive the estimator's own uncertainty.
        self.order_line = QLabel()
        self.order_line.setObjectName("orderLine")
        self.order_line.setWordWrap(True)
        box.addWidget(self.order_line)
        return box

    # -- showing ---------------------------------------------------------------------------------
    def show_text(self, text: str, note: str = "") -> None:
        """The plain text, before (or without) attributions."""
        self.text, self._attribution = text, None
        self.browser.setHtml(f"<div style='white-space:pre-wrap'>{html.escape(text)}</div>")
        self._set_extras_visible(False)
        self.status.setText(note)
        self.status.setVisible(bool(note))

    @property
    def attribution(self) -> Attribution | None:
        """The attribution on screen, if any."""
        return self._attribution

    def show_attribution(self, text: str, attribution: Attribution) -> None:
        """Show (or refine in place) an attribution; keeps the class the reviewer picked."""
        keep = self.class_combo.currentText() if self._attribution is not None else ""
        self.text, self._attribution = text, attribution
        classes = list(attribution.classes)
        self.class_combo.blockSignals(True)
        self.class_combo.clear()
        self.class_combo.addItems(classes)
        self.class_combo.setCurrentText(keep if keep in classes
                                        else attribution.explained_class)
        self.class_combo.blockSignals(False)
        self._set_extras_visible(True)
        self._render(self.class_combo.currentText())
        self._show_checks(attribution)

    def show_hidden(self, reason: str) -> None:
        self.text, self._attribution = "", None
        self.browser.setHtml(f"<p style='color:gray'>{html.escape(reason)}</p>")
        self._set_extras_visible(False)
        self.status.setVisible(False)

    def clear(self) -> None:
        self.show_text("", "")
        self.browser.setPlaceholderText("The case text with its word attributions shows here.")
        self.browser.clear()
        self.set_busy(False)

    def _set_extras_visible(self, visible: bool) -> None:
        for widget in (self.legend, self.chart_title, self.chart, self.faith_badge,
                       self.faith_text, self.flip_line, self.order_line, self.class_label,
                       self.class_combo):
            widget.setVisible(visible)

    def _render(self, cls: str) -> None:
        render = _render()
        scroll = self.browser.verticalScrollBar().value()  # refining must not jump the view
        # The boxes depend on the page: a dark page gets boxes that brighten with the value.
        # (The view's own palette: on a theme switch it changes before its children's do.)
        base = self.palette().color(QPalette.ColorRole.Base).name()
        body = render.highlighted_html(self.text, self._attribution, cls, base)
        self.browser.setHtml(f"<div style='white-space:pre-wrap; line-height:150%'>{body}</div>")
        self.browser.verticalScrollBar().setValue(scroll)
        self.legend.set_scale(cls, render.highlight_scale(self._attribution, cls), base)
        # The first pass's groups are bars of their own, as they are boxes of their own.
        top = sorted(render.segments(self._attribution, cls), key=lambda s: -abs(s.value))[:10]
        scale = max((abs(s.value) for s in top), default=0.0) or 1.0
        # The bars take the boxes' colours, so on a dark page a weak word's bar is not the
        # brightest either; a bar too weak for a box is drawn in the page's mid grey.
        mid = self.palette().color(QPalette.ColorRole.Mid).name()
        self.chart.set_items([(_chart_label(s), s.value,
                               render.highlight(s.value, scale, base).background or mid,
                               s.error)
                              for s in top], cls)
        self.chart_title.setText(f"Top words for P({cls}) — right raises it, left lowers it")

    def _show_checks(self, attribution: Attribution) -> None:
        faith = faithfulness_texts(attribution)
        self.faith_badge.setVisible(faith is not None)
        self.faith_text.setVisible(faith is not None)
        if faith is not None:
            badge, tone, detail = faith
            self.faith_badge.setText(badge)
            self.faith_badge.setStyleSheet(badge_style(tone))
            self.faith_badge.setToolTip(detail)
            self.faith_text.setText(detail)
        self.flip_line.setText(flip_text(attribution))
        self.flip_line.setVisible(bool(self.flip_line.text()))
        order = order_text(attribution)
        self.order_line.setVisible(order is not None)
        if order is not None:
            sentence, tone = order
            self.order_line.setText(sentence)
            self.order_line.setStyleSheet(badge_style(tone))
        self.status.setText(status_text(attribution))
        self.status.setVisible(True)

    def changeEvent(self, event: QEvent) -> None:
        # A switch between the light and dark theme redraws the boxes for the new page.
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and self._attribution is not None:
            self._render(self.class_combo.currentText())

    def _class_picked(self, cls: str) -> None:
        if self._attribution is not None and cls:
            self._render(cls)
            self.class_changed.emit(cls)

    # -- progress --------------------------------------------------------------------------------
    def set_busy(self, busy: bool, text: str = "Explaining…") -> None:
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        if busy:
            self.progress.setRange(0, 0)  # indeterminate until the first report
            self.progress.setFormat(text)

    def set_progress(self, progress: Progress) -> None:
        if progress.total > 1:
            self.progress.setRange(0, progress.total)
            self.progress.setValue(min(progress.done, progress.total))
            self.progress.setFormat(f"{progress.stage} %p%")

