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
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.settings import MEANINGS
from app.ui.result_panel import TONES, muted, section_title
from app.ui.signatures import account_text, manifestation, signature_trusted, signed_time

if TYPE_CHECKING:  # the store's package loads SQLAlchemy and alembic; the type is enough here
    from app.store.records import Account, Judgement, Review

CANNOT_TELL = "cannot tell"
REASON_LINES = 2  # the reason box's height: a reason is often more than one line


def override_problem(label: str, reason: str, model_label: str | None) -> str | None:
    """What is missing from an override, as a sentence; None when it can be signed."""
    if not label:
        return "Choose the label you decide on."
    if label == model_label:
        return f"“{label}” is the model's label: accept the case instead."
    if not reason.strip():
        return "Give a reason: say why the model's label is wrong."
    return None


def judgement_text(judgement: Judgement, model_label: str | None) -> str:
    """The blind first judgement beside the model's answer, once both are on screen."""
    said = judgement.label or CANNOT_TELL
    note = f" (“{judgement.note}”)" if judgement.note else ""
    if judgement.label is None:
        compared = "you could not tell"
    elif judgement.label == model_label:
        compared = "you agree: accept it to sign"
    else:
        compared = f"you differ: override to “{judgement.label}” with a reason, or accept"
    return (f"Your blind judgement: {said}{note}, recorded {signed_time(judgement.time)} "
            f"by {judgement.judge}. The model says “{model_label or '—'}”: {compared}.")


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
        self.default_meaning = "reviewed"  # each case starts from it (settings)
        self.descriptions: dict[str, str] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        layout.addWidget(section_title("Your review"))
        self.signer = muted(QLabel())
        self.signer.setTextFormat(Qt.TextFormat.RichText)  # the name in it is escaped
        layout.addWidget(self.signer)
        self.blind_box = self._blind_section()
        layout.addWidget(self.blind_box)
        self.judgement = QLabel(objectName="reviewJudgement")
        self.judgement.setWordWrap(True)
        self.judgement.setTextFormat(Qt.TextFormat.PlainText)
        self.judgement.hide()
        layout.addWidget(self.judgement)
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
        self.history.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.history)
        # The last signature stays in view when the queue moves on to the next case.
        self.last_signed = muted(QLabel(objectName="lastSigned"))
        self.last_signed.setTextFormat(Qt.TextFormat.PlainText)
        self.last_signed.hide()
        layout.addWidget(self.last_signed)
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
        self.label_combo.currentTextChanged.connect(self._describe_override)
        self.reason = QPlainTextEdit()
        self.reason.setObjectName("reviewReason")
        self.reason.setPlaceholderText("Reason (required to override)")
        self.reason.setAccessibleName("Reason for the override")
        self.reason.setTabChangesFocus(True)  # Tab moves on; Enter starts a new line
        lines = self.reason.fontMetrics().lineSpacing() * REASON_LINES
        self.reason.setFixedHeight(lines + 12)
        self.label_help = muted(QLabel(objectName="reviewLabelHelp"))
        self.label_help.setTextFormat(Qt.TextFormat.PlainText)
        self.meaning = QComboBox()
        self.meaning.setObjectName("reviewMeaning")
        self.meaning.addItems(list(MEANINGS))
        self.meaning.setToolTip("What your signature means: you reviewed the case, or you "
                                "approve the decision")
        for row, (text, widget) in enumerate((("&Label:", self.label_combo),
                                              ("", self.label_help),
                                              ("&Reason:", self.reason),
                                              ("Signature &means:", self.meaning))):
            caption = QLabel(text)
            caption.setBuddy(widget)
            grid.addWidget(caption, row, 0, Qt.AlignmentFlag.AlignTop)
            grid.addWidget(widget, row, 1)
        grid.addLayout(self._buttons(), 4, 0, 1, 2)
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
        intro = QLabel("<b>Blind review.</b> Decide first; the model's answer, the "
                       "attributions and the AI opinion are shown after. Recording your "
                       "judgement is not a signature: you sign once you have seen both.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        row = QHBoxLayout()
        self.blind_label = QComboBox()
        self.blind_label.setObjectName("blindLabel")
        self.blind_label.setAccessibleName("Your label")
        self.blind_label.setPlaceholderText("choose your label…")  # never the model's
        self.blind_label.currentTextChanged.connect(self._describe_blind)
        row.addWidget(self.blind_label)
        self.blind_note = QLineEdit()
        self.blind_note.setObjectName("blindNote")
        self.blind_note.setPlaceholderText("Note (optional)")
        row.addWidget(self.blind_note, 1)
        layout.addLayout(row)
        self.blind_help = muted(QLabel(objectName="blindLabelHelp"))
        self.blind_help.setTextFormat(Qt.TextFormat.PlainText)
        layout.addWidget(self.blind_help)
        self.blind_button = self._button("&Record my judgement", "reviewBlindRecord",
                                          "Ctrl+1", "Record your judgement (not a signature) "
                                          "and reveal the model's answer", self.record_blind)
        layout.addWidget(self.blind_button, 0, Qt.AlignmentFlag.AlignLeft)
        return box

    # -- state -----------------------------------------------------------------------------------
    def set_signer(self, account: Account | None) -> None:
        """Who signs: the signed-in user (each signing asks for their password again)."""
        self.signer.setText(
            f"Signing as <b>{html.escape(account_text(account))}</b>" if account is not None
            else "Not signed in: signing asks for your login id and password.")

    def set_meaning(self, meaning: str) -> None:
        """The meaning each case starts from (the setting); a choice made for one case
        never carries over to the next."""
        self.default_meaning = meaning
        self.meaning.setCurrentText(meaning)

    def set_case(self, labels: list[str], model_label: str | None,
                 descriptions: dict[str, str] | None = None) -> None:
        self.model_label = model_label
        self.descriptions = descriptions or {}
        others = [label for label in labels if label != model_label]
        self.label_combo.clear()
        self.label_combo.addItems(others)
        self.label_combo.setCurrentIndex(-1)  # an override label is chosen, never defaulted
        self.blind_label.clear()
        self.blind_label.addItems([*labels, CANNOT_TELL])
        self.blind_label.setCurrentIndex(-1)  # a blind judgement starts from nothing
        for combo in (self.label_combo, self.blind_label):
            for index in range(combo.count()):
                combo.setItemData(index, self.descriptions.get(combo.itemText(index)),
                                  Qt.ItemDataRole.ToolTipRole)
        self.reason.clear()
        self.blind_note.clear()
        self.meaning.setCurrentText(self.default_meaning)
        self.show_judgement(None)
        self.show_error("")

    def _describe_override(self, label: str) -> None:
        self.label_help.setText(self._meaning_of(label))
        self.label_help.setVisible(bool(self.label_help.text()))

    def _describe_blind(self, label: str) -> None:
        self.blind_help.setText(self._meaning_of(label))
        self.blind_help.setVisible(bool(self.blind_help.text()))

    def _meaning_of(self, label: str) -> str:
        description = self.descriptions.get(label)
        return f"“{label}”: {description}." if description else ""

    def show_judgement(self, text: str | None, label: str | None = None) -> None:
        """The blind judgement beside the model's answer; a differing label is offered as
        the override (the reason is still the reviewer's to write)."""
        self.judgement.setText(text or "")
        self.judgement.setVisible(bool(text))
        if label and label != self.model_label:
            self.label_combo.setCurrentText(label)

    def show_last_signed(self, text: str) -> None:
        self.last_signed.setText(text)
        self.last_signed.setVisible(bool(text))

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
    def reason_text(self) -> str:
        return self.reason.toPlainText().strip()

    def accept(self) -> None:
        if self.blind_stage:  # Ctrl+1 records the blind judgement (no signature yet)
            self.record_blind()
        elif self._ready():
            self.review_requested.emit("accept", None, self.reason_text() or None,
                                       self.meaning.currentText())

    def override(self) -> None:
        if not self._ready():
            return
        label, reason = self.label_combo.currentText(), self.reason_text()
        problem = override_problem(label, reason, self.model_label)
        if problem:
            self.show_error(problem)
            (self.reason if label else self.label_combo).setFocus()
            return
        self.review_requested.emit("override", label, reason, self.meaning.currentText())

    def defer(self) -> None:
        if not self._ready():
            return
        if self.meaning.currentText() == "approved":
            self.show_error("A deferred case cannot be approved: sign it as reviewed.")
            self.meaning.setFocus()
            return
        self.review_requested.emit("defer", None, self.reason_text() or None, "reviewed")

    def record_blind(self) -> None:
        if not (self.blind_box.isEnabled() and self.blind_stage):
            return
        if self.blind_label.currentIndex() < 0:
            self.show_error("Choose your label first (or “cannot tell”).")
            self.blind_label.setFocus()
            return
        self.show_error("")
        self.blind_judgement.emit(self.blind_label.currentText(), self.blind_note.text())

    def _ready(self) -> bool:
        if not self.final_box.isEnabled() or self.blind_stage:
            return False
        self.show_error("")
        return True
