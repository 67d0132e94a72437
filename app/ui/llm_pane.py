"""The LLM's second opinion: which backend and model, the answer streaming in, its own label
and the check against the attributions (disagreement shown plainly), "AI-generated" always in
view, and cancel. For a remote backend, exactly what will be sent (de-identified) is shown
for approval before it is sent.

Renders an ``LLMOpinion`` (``explainers.types``); the case view runs the work. The preview of
what would be sent is still the dict ``app.pipeline`` makes (a typed request is on its way).
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.ui.result_panel import badge_style, make_badge, muted, section_title
from explainers.types import LLMOpinion

# -- plain text from the opinion (no Qt: tested directly) ----------------------------------------

def backend_text(name: str, model: str, base_url: str | None, remote: bool) -> str:
    where = "on this machine" if not base_url else \
        f"at {base_url}" + (" — REMOTE: only a de-identified copy is sent" if remote else "")
    return f"{name} · {model or 'default model'} · {where}"


ASK_AGAIN_NOTE = ("This case has its answer already. The same model, asked again, gives the "
                  "same answer (greedy decoding, temperature 0), and it is filed in the case's "
                  "trail a second time. Ask again anyway?")


def verdict(opinion: LLMOpinion, classifier_label: str | None) -> tuple[str, str]:
    """(sentence, tone) comparing the LLM's label with the classifier's. An answer that was
    not read, invents words or fails its checks leads with that: agreement is shown only for
    an answer that passed them."""
    from explainers.opinion_check import opinion_problem

    problem = opinion_problem(opinion)
    if opinion.error and not opinion.label:
        return f"No second opinion: {opinion.error}", "danger"
    if problem is not None:
        return f"No usable opinion: {problem}.", "escalate"
    label = opinion.label
    if not label or label == "cannot tell":
        return "The AI could not tell which label fits.", "muted"
    if classifier_label and label != classifier_label:
        return (f"The AI DISAGREES: it says “{label}”; the model says “{classifier_label}”.",
                "danger")
    return f"The AI agrees with the model: “{label}”.", "auto"


def findings_html(opinion: LLMOpinion) -> str:
    rows = []
    for finding in opinion.check:
        text = html.escape(finding.message)
        if finding.severity == "warning":
            rows.append(f"<div style='margin:2px 0'>⚠ <b>{text}</b></div>")
        else:
            rows.append(f"<div style='margin:2px 0'>· {text}</div>")
    return "".join(rows)


def timing_text(opinion: LLMOpinion) -> str:
    parts = [f"{opinion.seconds:.1f} s"]
    if opinion.first_token_seconds is not None:
        parts.append(f"first words after {opinion.first_token_seconds:.1f} s")
    if opinion.tokens_out:
        parts.append(f"{opinion.tokens_in or '?'} tokens in, {opinion.tokens_out} out")
    return " · ".join(parts)


def preview_text(preview: dict) -> str:
    """The messages exactly as they will be sent."""
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in preview["messages"])


class LLMPane(QFrame):
    ask_requested = Signal()
    cancel_requested = Signal()
    send_confirmed = Signal(bool)  # True: skip the preview for the rest of this session
    send_declined = Signal()
    ask_again_confirmed = Signal()  # the reviewer wants a second answer to the same case
    auto_open_changed = Signal(bool)  # whether escalated cases open the pane by themselves

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("llmPane")
        self.classifier_label: str | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        layout.setSpacing(6)
        layout.addLayout(self._header())
        self.backend_line = muted(QLabel())
        self.backend_line.setObjectName("llmBackend")
        layout.addWidget(self.backend_line)
        self.preview_box = self._preview_section()
        layout.addWidget(self.preview_box)
        self.again_box = self._again_section()
        layout.addWidget(self.again_box)
        self.answer = QTextBrowser()
        self.answer.setObjectName("llmAnswer")
        self.answer.setAccessibleName("AI-generated answer")
        self.answer.setPlaceholderText("Ask for a second opinion (Ctrl+L). Escalated cases "
                                       "get one automatically.")
        self.verdict = QLabel()
        self.verdict.setObjectName("llmVerdict")
        self.verdict.setWordWrap(True)
        layout.addWidget(self.verdict)  # above the answer: a reviewer reads the verdict first
        layout.addWidget(self.answer, 2)
        self.findings = QLabel()
        self.findings.setObjectName("llmFindings")
        self.findings.setWordWrap(True)
        self.findings.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.findings)
        self.timing = muted(QLabel())
        layout.addWidget(self.timing)
        layout.addLayout(self._buttons())
        self.auto_open = QCheckBox("Ask and open by itself for escalated cases",
                                   objectName="llmAutoOpen")
        self.auto_open.setToolTip("Off: the pane opens only when you ask (Ctrl+L)")
        self.auto_open.toggled.connect(self.auto_open_changed)
        layout.addWidget(self.auto_open)
        self.clear()

    def _header(self) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addWidget(section_title("What an LLM says"))
        row.addStretch(1)
        self.remote_badge = make_badge("REMOTE", "escalate", "llmRemoteBadge")
        self.remote_badge.setToolTip("This backend is on another machine: cases are "
                                     "de-identified before they are sent")
        row.addWidget(self.remote_badge)
        self.ai_badge = make_badge("AI-generated", "info", "aiGeneratedBadge")
        self.ai_badge.setToolTip("Written by a language model: check it against the case")
        row.addWidget(self.ai_badge)
        return row

    def _buttons(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setMaximumHeight(8)
        self.progress.setTextVisible(False)
        row.addWidget(self.progress, 1)
        self.ask_button = QPushButton("Ask the AI")
        self.ask_button.setObjectName("llmAsk")
        self.ask_button.setToolTip("Ask the LLM for a second opinion on this case (Ctrl+L)")
        self.ask_button.clicked.connect(self.ask_requested)
        row.addWidget(self.ask_button)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("llmCancel")
        self.cancel_button.setToolTip("Stop the answer (Esc)")
        self.cancel_button.clicked.connect(self.cancel_requested)
        row.addWidget(self.cancel_button)
        return row

    def _preview_section(self) -> QWidget:
        box = QFrame()
        box.setObjectName("llmPreview")
        box.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QVBoxLayout(box)
        self.preview_title = QLabel()
        self.preview_title.setWordWrap(True)
        layout.addWidget(self.preview_title)
        self.preview = QPlainTextEdit()
        self.preview.setObjectName("llmPreviewText")
        self.preview.setReadOnly(True)
        self.preview.setAccessibleName("Exactly what will be sent")
        layout.addWidget(self.preview)
        row = QHBoxLayout()
        self.skip_preview = QCheckBox("Don't show again this session")
        row.addWidget(self.skip_preview)
        row.addStretch(1)
        decline = QPushButton("Don't send")
        decline.clicked.connect(self._declined)
        row.addWidget(decline)
        self.send_button = QPushButton("Send this")
        self.send_button.setObjectName("llmSend")
        self.send_button.clicked.connect(self._confirmed)
        row.addWidget(self.send_button)
        layout.addLayout(row)
        return box

    def _again_section(self) -> QWidget:
        box = QFrame(objectName="llmAskAgain")
        box.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QVBoxLayout(box)
        note = QLabel(ASK_AGAIN_NOTE)
        note.setWordWrap(True)
        layout.addWidget(note)
        row = QHBoxLayout()
        row.addStretch(1)
        keep = QPushButton("Keep this answer", objectName="llmKeepAnswer")
        keep.clicked.connect(box.hide)
        row.addWidget(keep)
        again = QPushButton("Ask again", objectName="llmAskAgainButton")
        again.clicked.connect(self._again_confirmed)
        row.addWidget(again)
        layout.addLayout(row)
        box.hide()
        return box

    # -- state -----------------------------------------------------------------------------------
    def set_auto_open(self, on: bool) -> None:
        self.auto_open.blockSignals(True)
        self.auto_open.setChecked(on)
        self.auto_open.blockSignals(False)

    def confirm_again(self) -> None:
        """Say what asking again does before doing it (the answer stays on screen)."""
        self.again_box.show()
        self.again_box.findChild(QPushButton, "llmKeepAnswer").setFocus()

    def _again_confirmed(self) -> None:
        self.again_box.hide()
        self.ask_again_confirmed.emit()

    def set_backend(self, name: str, model: str, base_url: str | None, remote: bool) -> None:
        self.backend_line.setText(backend_text(name, model, base_url, remote))
        self.remote_badge.setVisible(remote)

    def clear(self) -> None:
        self.answer.clear()
        for label in (self.verdict, self.findings, self.timing):
            label.clear()
            label.hide()
        self.preview_box.hide()
        self.again_box.hide()
        self.set_busy(False)

    def set_busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.ask_button.setEnabled(not busy)

    def start_stream(self, classifier_label: str | None) -> None:
        self.clear()
        self.classifier_label = classifier_label
        self.set_busy(True)

    def append_text(self, piece: str) -> None:
        cursor = self.answer.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(piece)
        self.answer.setTextCursor(cursor)
        self.answer.ensureCursorVisible()

    def show_opinion(self, opinion: LLMOpinion, classifier_label: str | None) -> None:
        self.set_busy(False)
        self.preview_box.hide()
        self.classifier_label = classifier_label
        if opinion.text:
            self.answer.setPlainText(opinion.text)
        sentence, tone = verdict(opinion, classifier_label)
        self.verdict.setText(sentence)
        self.verdict.setStyleSheet(badge_style(tone).replace("QLabel", "QLabel#llmVerdict"))
        self.verdict.show()
        self.findings.setText(findings_html(opinion))
        self.findings.setVisible(bool(self.findings.text()))
        self.timing.setText(f"{opinion.backend} · {opinion.model} · {timing_text(opinion)}")
        self.backend_line.setText(backend_text(opinion.backend, opinion.model,
                                               opinion.base_url,
                                               not self.remote_badge.isHidden()))
        self.timing.show()

    def show_message(self, text: str) -> None:
        """A note in place of an answer (hidden in blind mode, cancelled, no model...)."""
        self.clear()
        self.answer.setHtml(f"<p style='color:gray'>{html.escape(text)}</p>")

    def show_preview(self, preview: dict) -> None:
        from models.redaction import CHECK_BEFORE_SENDING  # ~0.15 s: not at window start

        self.clear()
        redacted = len(preview.get("redactions") or [])
        self.preview_title.setText(
            f"<b>Nothing has been sent yet.</b> This is exactly what would go to "
            f"{html.escape(preview.get('base_url') or '')} ({redacted} identifier(s) replaced). "
            f"<br><small>{html.escape(CHECK_BEFORE_SENDING)}</small><br>Send it?")
        self.preview.setPlainText(preview_text(preview))
        self.preview_box.show()
        self.send_button.setFocus()

    def _confirmed(self) -> None:
        self.preview_box.hide()
        self.send_confirmed.emit(self.skip_preview.isChecked())

    def _declined(self) -> None:
        self.preview_box.hide()
        self.send_declined.emit()
