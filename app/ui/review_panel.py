"""The reviewer's decision: accept, override (label and reason required) or defer, and what
the signature means. In blind mode a first judgement is recorded before the model's answer
is shown. Each review shows its signature: printed name, time, meaning, whether it verifies.

The panel only asks; the case view has the signed-in user sign it (``app.ui.sign_dialog``).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.settings import MEANINGS
from app.ui.result_panel import TONES, muted, section_title
from app.ui.signatures import account_text, manifestation, signature_trusted

if TYPE_CHECKING:  # the store's package loads SQLAlchemy and alembic; the type is enough here
    from app.store.records import Account, Review

CANNOT_TELL = "cannot tell"
BLIND_PREFIX = "blind first judgement"


def override_problem(label: str, reason: str, model_label: str | None) -> str | None:
    """What is missing from an override, as a sentence; None when it can be signed."""
    if not label:
        return "Choose the label you decide on."
    if label == model_label:
        return f"“{label}” is the model's label: accept the case instead."
    if not reason.strip():
        return "Give a reason: say why the model's label is wrong."
    return None


def blind_review(label: str, note: str, model_label: str | None) -> tuple[str, str | None, str]:
    """The first judgement as a review the store accepts: (decision, label, reason).

    The reviewer has not seen the model's label, so agreeing with it is an accept and
    differing is an override; "cannot tell" is a deferral. The reason always says it was
    blind, so the trail shows both judgements for what they are."""
    reason = f"{BLIND_PREFIX}: {note.strip()}" if note.strip() else \
        f"{BLIND_PREFIX}, made before the model's answer was shown"
    if label == CANNOT_TELL:
        return "defer", None, reason
    if label == model_label:
        return "accept", None, reason
    return "override", label, reason


REVIEW_WORDS = {"accept": "Accepted", "override": "Overridden", "defer": "Deferred"}


def review_line(review: Review) -> str:
    """One line for a signed review: what was decided, then its signature's manifestation."""
    what = REVIEW_WORDS.get(review.decision, review.decision)
    label = f" → {review.signed_label}" if review.signed_label else ""
    reason = f" — “{review.reason}”" if review.reason else ""
    return f"{what}{label}{reason}. {manifestation(review)}."


def review_html(review: Review) -> str:
    """``review_line`` escaped, in the danger colour when its signature does not hold."""
    text = html.escape(review_line(review))
    return text if signature_trusted(review) else \
        f"<span style='color: {TONES['danger']};'>{text}</span>"


class ReviewPanel(QFrame):
    review_requested = Signal(str, object, object, str)  # decision, label, reason, meaning
    blind_judgement = Signal(object, str)  # label (or CANNOT_TELL), note

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("reviewPanel")
        self.model_label: str | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        layout.addWidget(section_title("Your review"))
        self.signer = muted(QLabel())
        self.signer.setTextFormat(Qt.TextFormat.RichText)  # the name in it is escaped
        layout.addWidget(self.signer)
        self.blind_box = self._blind_section()
        layout.addWidget(self.blind_box)
        self.final_box = self._final_section()
        layout.addWidget(self.final_box)
        self.error = QLabel()
        self.error.setObjectName("reviewError")
        self.error.setWordWrap(True)
        self.error.setStyleSheet(f"color: {TONES['danger']};")
        self.error.hide()
        layout.addWidget(self.error)
        self.history = muted(QLabel())
        self.history.setObjectName("reviewStatus")
        self.history.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.history)
        self.set_blind_stage(False)
        self.set_enabled(False)

    def _final_section(self) -> QWidget:
        box = QWidget()
        grid = QGridLayout(box)
        grid.setContentsMargins(0, 0, 0, 0)
        self.label_combo = QComboBox()
        self.label_combo.setObjectName("reviewLabel")
        self.label_combo.setAccessibleName("Label for an override")
        self.label_combo.setPlaceholderText("choose to override…")
        self.reason = QLineEdit()
        self.reason.setObjectName("reviewReason")
        self.reason.setPlaceholderText("Reason (required to override)")
        self.reason.setAccessibleName("Reason for the override")
        self.meaning = QComboBox()
        self.meaning.setObjectName("reviewMeaning")
        self.meaning.addItems(list(MEANINGS))
        self.meaning.setToolTip("What your signature means: you reviewed the case, or you "
                                "approve the decision")
        for row, (text, widget) in enumerate((("&Label:", self.label_combo),
                                              ("&Reason:", self.reason),
                                              ("Signature &means:", self.meaning))):
            caption = QLabel(text)
            caption.setBuddy(widget)
            grid.addWidget(caption, row, 0)
            grid.addWidget(widget, row, 1)
        grid.addLayout(self._buttons(), 3, 0, 1, 2)
        return box

    def _buttons(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.accept_button = self._button("&Accept", "reviewAccept", "Ctrl+1",
                                          "Sign for the model's label", self.accept)
        self.override_button = self._button("&Override", "reviewOverride", "Ctrl+2",
                                            "Sign for the label chosen above, with a reason",
                                            self.override)
        self.defer_button = self._button("De&fer", "reviewDefer", "Ctrl+3",
                                         "Leave the case undecided for someone else",
                                         self.defer)
        for button in (self.accept_button, self.override_button, self.defer_button):
            row.addWidget(button)
        return row

    def _button(self, text: str, name: str, keys: str, tip: str, slot) -> QPushButton:
        button = QPushButton(text)
        button.setObjectName(name)
        button.setToolTip(f"{tip} ({keys})")
        button.clicked.connect(slot)
        return button

    def _blind_section(self) -> QWidget:
        box = QFrame()
        box.setObjectName("blindBox")
        box.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QVBoxLayout(box)
        layout.addWidget(QLabel("<b>Blind review.</b> Decide first; the model's answer, the "
                                "attributions and the AI opinion are shown after."))
        row = QHBoxLayout()
        self.blind_label = QComboBox()
        self.blind_label.setObjectName("blindLabel")
        self.blind_label.setAccessibleName("Your label")
        row.addWidget(self.blind_label)
        self.blind_note = QLineEdit()
        self.blind_note.setObjectName("blindNote")
        self.blind_note.setPlaceholderText("Note (optional)")
        row.addWidget(self.blind_note, 1)
        layout.addLayout(row)
        self.blind_button = self._button("&Record my judgement", "reviewBlindRecord",
                                          "Ctrl+1", "Record your judgement and reveal the "
                                          "model's answer", self.record_blind)
        layout.addWidget(self.blind_button, 0, Qt.AlignmentFlag.AlignLeft)
        return box

    # -- state -----------------------------------------------------------------------------------
    def set_signer(self, account: Account | None) -> None:
        """Who signs: the signed-in user (each signing asks for their password again)."""
        self.signer.setText(
            f"Signing as <b>{html.escape(account_text(account))}</b>" if account is not None
            else "Not signed in: signing asks for your login id and password.")

    def set_meaning(self, meaning: str) -> None:
        self.meaning.setCurrentText(meaning)

    def set_case(self, labels: list[str], model_label: str | None) -> None:
        self.model_label = model_label
        others = [label for label in labels if label != model_label]
        self.label_combo.clear()
        self.label_combo.addItems(others)
        self.label_combo.setCurrentIndex(-1)  # an override label is chosen, never defaulted
        self.blind_label.clear()
        self.blind_label.addItems([*labels, CANNOT_TELL])
        self.reason.clear()
        self.blind_note.clear()
        self.show_error("")

    def set_blind_stage(self, active: bool) -> None:
        self.blind_box.setVisible(active)
        self.final_box.setVisible(not active)

    @property
    def blind_stage(self) -> bool:
        return not self.blind_box.isHidden()

    def set_enabled(self, enabled: bool) -> None:
        for widget in (self.final_box, self.blind_box):
            widget.setEnabled(enabled)

    def show_reviews(self, reviews: Sequence[Review]) -> None:
        lines = [review_html(r) for r in reviews]
        self.history.setText("<br>".join(lines) if lines else "Not reviewed yet.")

    def show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.setVisible(bool(text))

    # -- actions (buttons and the window's shortcuts) ----------------------------------------------
    def accept(self) -> None:
        if self._ready():
            self.review_requested.emit("accept", None, self.reason.text().strip() or None,
                                       self.meaning.currentText())

    def override(self) -> None:
        if not self._ready():
            return
        label, reason = self.label_combo.currentText(), self.reason.text()
        problem = override_problem(label, reason, self.model_label)
        if problem:
            self.show_error(problem)
            (self.reason if label else self.label_combo).setFocus()
            return
        self.review_requested.emit("override", label, reason.strip(), self.meaning.currentText())

    def defer(self) -> None:
        if not self._ready():
            return
        if self.meaning.currentText() == "approved":
            self.show_error("A deferred case cannot be approved: sign it as reviewed.")
            self.meaning.setFocus()
            return
        self.review_requested.emit("defer", None, self.reason.text().strip() or None,
                                   "reviewed")

    def record_blind(self) -> None:
        if self.blind_box.isEnabled() and self.blind_stage:
            self.show_error("")
            self.blind_judgement.emit(self.blind_label.currentText(), self.blind_note.text())

    def _ready(self) -> bool:
        if not self.final_box.isEnabled() or self.blind_stage:
            return False
        self.show_error("")
        return True
