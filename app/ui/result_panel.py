"""The model's answer for one case: label, calibrated probability bars, the conformal
prediction set, and the AUTO / ESCALATE badge with every reason and the guarantee.

Renders a ``Prediction`` and an ``EscalationDecision`` (``models.types``), the same objects
for a fresh analysis and a case reopened from the history, so both look the same.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPalette
from PySide6.QtWidgets import QFrame, QLabel, QSizePolicy, QVBoxLayout, QWidget

from models.types import EscalationDecision, Prediction
from models.windows import reading_text

# Semantic colours, readable with white text on light and dark palettes alike (WCAG AA).
TONES = {
    "auto": "#1d7a4a",
    "escalate": "#a85200",
    "danger": "#b3261e",
    "info": "#1f5fa8",
    "muted": "#5f6368",
}


def badge_style(tone: str) -> str:
    return (f"QLabel {{ background: {TONES[tone]}; color: white; border-radius: 4px;"
            " padding: 3px 9px; font-weight: 600; }")


def make_badge(text: str, tone: str, name: str | None = None) -> QLabel:
    label = QLabel(text)
    label.setStyleSheet(badge_style(tone))
    label.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Fixed)
    if name:
        label.setObjectName(name)
    return label


def section_title(text: str) -> QLabel:
    label = QLabel(text)
    font = label.font()
    font.setPointSizeF(font.pointSizeF() * 1.05)
    font.setWeight(QFont.Weight.DemiBold)
    label.setFont(font)
    return label


def muted(label: QLabel) -> QLabel:
    label.setForegroundRole(QPalette.ColorRole.PlaceholderText)
    label.setWordWrap(True)
    return label


def percent(p: float) -> str:
    return "<1 %" if 0 < p < 0.005 else f"{p * 100:.0f} %"


# -- plain text from the records (no Qt: tested directly) -----------------------------------------

def label_text(prediction: Prediction) -> str:
    return f"{prediction.label}  ·  {percent(prediction.confidence)}"


def prediction_set(prediction: Prediction, decision: EscalationDecision | None
                   ) -> tuple[str, ...]:
    """The conformal set: the decision's, else the prediction's; empty when there is none."""
    return (decision.prediction_set if decision else ()) or prediction.prediction_set or ()


def set_text(prediction: Prediction, decision: EscalationDecision | None) -> str:
    labels = prediction_set(prediction, decision)
    if not labels:
        return "No prediction set: no escalation policy is fitted for this model."
    alpha = decision.alpha if decision else None
    cover = f"contains the true label {100 * (1 - alpha):.0f} % of the time" if alpha else \
        "conformal set"
    members = ", ".join(labels)
    return f"Prediction set {{{members}}} — {cover}."


def meanings_html(prediction: Prediction, descriptions: dict[str, str]) -> str:
    """What each label means, in the bars' order (largest first): the label is not enough."""
    import html

    ordered = sorted(prediction.probabilities, key=lambda lb: -prediction.probabilities[lb])
    rows = [f"<b>{html.escape(label)}</b>: {html.escape(descriptions[label])}"
            for label in ordered if descriptions.get(label)]
    return "<br>".join(rows)


def decision_texts(decision: EscalationDecision | None) -> tuple[str, str, list[str], str]:
    """(badge text, tone, reasons, guarantee sentence)."""
    if decision is None:
        return "NO POLICY", "muted", ["No escalation policy: every case needs review."], ""
    if decision.auto:
        return "AUTO", "auto", [], decision.guarantee
    return "ESCALATE", "escalate", list(decision.reasons), decision.guarantee


class ProbabilityBars(QWidget):
    """One bar per class, largest first; the predicted class is drawn in the accent colour
    and the members of the prediction set are marked."""

    ROW = 26

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("probabilityView")
        self.rows: list[tuple[str, float, bool, bool]] = []  # label, p, predicted, in set
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)

    def set_probabilities(self, probabilities: dict[str, float], predicted: str,
                          in_set: Sequence[str]) -> None:
        ranked = sorted(probabilities.items(), key=lambda kv: -kv[1])
        self.rows = [(label, p, label == predicted, label in in_set) for label, p in ranked]
        summary = "; ".join(f"{label} {percent(p)}" for label, p in ranked)
        self.setAccessibleDescription(f"Calibrated probabilities: {summary}")
        self.setToolTip(f"Calibrated probabilities (temperature scaling): {summary}")
        self.updateGeometry()
        self.update()

    def clear(self) -> None:
        self.rows = []
        self.updateGeometry()
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(280, max(1, len(self.rows)) * self.ROW + 4)

    def minimumSizeHint(self) -> QSize:
        return QSize(180, self.sizeHint().height())

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        metrics = self.fontMetrics()
        name_w = max((metrics.horizontalAdvance(r[0]) for r in self.rows), default=0) + 14
        value_w = metrics.horizontalAdvance("100 %") + 12
        for row, item in enumerate(self.rows):
            self._paint_row(painter, row * self.ROW, item, name_w, value_w)
        painter.end()

    def _paint_row(self, painter: QPainter, y: int, item: tuple, name_w: int,
                   value_w: int) -> None:
        label, p, predicted, in_set = item
        palette = self.palette()
        text_colour = palette.color(QPalette.ColorRole.WindowText)
        font = QFont(self.font())
        font.setWeight(QFont.Weight.DemiBold if predicted else QFont.Weight.Normal)
        painter.setFont(font)
        painter.setPen(text_colour)
        painter.drawText(QRectF(0, y, name_w, self.ROW - 4),
                         Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, label)
        track = QRectF(name_w, y + 6, max(10, self.width() - name_w - value_w), self.ROW - 14)
        trough = QColor(palette.color(QPalette.ColorRole.Mid))
        trough.setAlpha(70)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(trough)
        painter.drawRoundedRect(track, 3, 3)
        fill = palette.color(QPalette.ColorRole.Highlight) if predicted else QColor(TONES["muted"])
        painter.setBrush(fill)
        painter.drawRoundedRect(QRectF(track.x(), track.y(), track.width() * p, track.height()),
                                3, 3)
        if in_set:  # a small tick at the start of the track marks a member of the set
            painter.setBrush(text_colour)
            painter.drawEllipse(QRectF(name_w - 9, y + self.ROW / 2 - 5, 5, 5))
        painter.setPen(text_colour)
        painter.drawText(QRectF(self.width() - value_w, y, value_w, self.ROW - 4),
                         Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignRight, percent(p))


class ResultPanel(QFrame):
    """Label, probabilities, set and decision of one case (or a blind-review placeholder)."""

    card_requested = Signal(str)  # the model id whose card the reviewer wants to read

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("resultPanel")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(8)
        layout.addWidget(section_title("Model's answer"))
        self.placeholder = muted(QLabel("Analyze a case (Ctrl+Enter) to see the model's answer."))
        layout.addWidget(self.placeholder)
        self.body = QWidget()
        layout.addWidget(self.body)
        self._build_body(QVBoxLayout(self.body))
        self.body.hide()

    def _build_body(self, layout: QVBoxLayout) -> None:
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        self.label_view = QLabel()
        self.label_view.setObjectName("labelView")
        self.label_view.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        font = self.label_view.font()
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setWeight(QFont.Weight.DemiBold)
        self.label_view.setFont(font)
        layout.addWidget(self.label_view)
        self.bars = ProbabilityBars()
        layout.addWidget(self.bars)
        self.meanings = muted(QLabel(objectName="labelMeanings"))
        self.meanings.setTextFormat(Qt.TextFormat.RichText)  # the descriptions are escaped
        layout.addWidget(self.meanings)
        self.set_line = muted(QLabel())
        layout.addWidget(self.set_line)
        self.length_line = muted(QLabel(objectName="lengthLine"))  # how much was read
        layout.addWidget(self.length_line)
        self.badge = make_badge("", "muted", "decisionBadge")
        layout.addSpacing(4)
        layout.addWidget(self.badge)
        self.reasons = QLabel()
        self.reasons.setWordWrap(True)
        self.reasons.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.reasons)
        self.guarantee = muted(QLabel())
        self.guarantee.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.guarantee)
        # Every answer links to the card of the model that gave it (intended use, limits).
        self.model_link = muted(QLabel())
        self.model_link.setObjectName("modelCardLink")
        self.model_link.setTextFormat(Qt.TextFormat.RichText)
        self.model_link.setTextInteractionFlags(
            Qt.TextInteractionFlag.LinksAccessibleByMouse
            | Qt.TextInteractionFlag.LinksAccessibleByKeyboard)
        self.model_link.linkActivated.connect(self.card_requested.emit)
        layout.addWidget(self.model_link)

    def show_result(self, prediction: Prediction, decision: EscalationDecision | None,
                    descriptions: dict[str, str] | None = None) -> None:
        self.label_view.setText(label_text(prediction))
        self.meanings.setText(meanings_html(prediction, descriptions or {}))
        self.meanings.setVisible(bool(self.meanings.text()))
        self.bars.set_probabilities(prediction.probabilities, prediction.label,
                                    prediction_set(prediction, decision))
        self.set_line.setText(set_text(prediction, decision))
        reading = reading_text(prediction.n_tokens, prediction.windows, prediction.truncated)
        self.length_line.setText(reading[:1].upper() + reading[1:] + "." if reading else "")
        self.length_line.setVisible(bool(reading))
        text, tone, reasons, guarantee = decision_texts(decision)
        self.badge.setText(text)
        self.badge.setStyleSheet(badge_style(tone))
        self.badge.setAccessibleName(f"Decision: {text}")
        self.reasons.setText(_bullets(reasons))
        self.reasons.setVisible(bool(reasons))
        self.guarantee.setText(guarantee)
        self.guarantee.setVisible(bool(guarantee))
        model_id = prediction.model_id
        self.model_link.setText(f"Model {model_id} · <a href='{model_id}'>model card</a>"
                                if model_id else "")
        self.placeholder.hide()
        self.body.show()

    def show_blind(self) -> None:
        """Blind review: nothing of the model's answer until the first judgement."""
        self.body.hide()
        self.placeholder.setText("Blind review: the model's answer stays hidden until you "
                                 "record your own judgement below.")
        self.placeholder.show()

    def clear(self, note: str = "Analyze a case (Ctrl+Enter) to see the model's answer.") -> None:
        self.body.hide()
        self.bars.clear()
        self.label_view.clear()
        self.placeholder.setText(note)
        self.placeholder.show()


def _bullets(items: list[str]) -> str:
    import html

    if not items:
        return ""
    return "".join(f"<div style='margin:2px 0'>• {html.escape(item)}</div>" for item in items)
