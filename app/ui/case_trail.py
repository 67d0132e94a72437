"""The trail of one case, read-only: its text and every record stored about it — predictions,
attributions, escalation decisions, LLM opinions, signed reviews — and its audit events.

Built as one HTML document from the stored ``CaseRecord``, each record read as its typed
``value`` (no model is needed to read a trail), so it can be read, searched and copied like a
report.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import shiboken6
from PySide6.QtGui import QGuiApplication, QKeySequence, QPalette, QShortcut
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.ui.context import AppContext
from app.ui.icons import icon
from app.ui.signatures import (
    display_name,
    key_text,
    signature_status,
    signature_trusted,
    signed_time,
    signer_text,
)
from app.ui.tasks import Task

if TYPE_CHECKING:
    from app.store.records import AuditEvent, CaseRecord, Review, StoredRecord
    from explainers.types import Attribution, LLMOpinion
    from models.types import EscalationDecision, Prediction

TOP_WORDS = 8

STYLE = """
<style>
h2 { margin-top: 14px; }
table { border-collapse: collapse; }
td, th { padding: 2px 8px 2px 0; vertical-align: top; text-align: left; }
th { font-weight: 600; }
.muted { color: #7b8794; }
.ai { color: #a0620a; font-weight: 600; }
.warn { color: #b03a2e; }
.mono { font-family: monospace; }
</style>
"""


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value))


def when(iso_time: str | None) -> str:
    """Stored UTC times in the reader's local time."""
    if not iso_time:
        return ""
    try:
        return datetime.fromisoformat(iso_time).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso_time


def table(headers: Iterable[str], rows: Iterable[Iterable[object]], raw: bool = False) -> str:
    """An HTML table; cells are escaped unless ``raw`` (they are built HTML already)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c if raw else esc(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def highlighted_text(text: str, attribution: Attribution | None,
                     base: str | None = None) -> str:
    """The case text, with the latest attribution's words coloured as in the case view (red
    raises the explained class, blue lowers it, text readable on every box), after a line
    that says the scale. ``base`` is the page's colour (the application's by default)."""
    if attribution is None or not attribution.features:
        return esc(text).replace("\n", "<br>")
    from explainers import render

    cls = _explained(attribution)
    base = base or _page_colour()
    body = render.highlighted_html(text, attribution, cls, base)
    return legend(cls, render.highlight_scale(attribution, cls)) + body.replace("\n", "<br>")


def legend(cls: str, scale: float) -> str:
    """The colour scale in words, as the window's legend says it."""
    from explainers.render import legend_caption

    return (f"<span class='muted'>{esc(legend_caption(cls, scale))}; blue words push it "
            "down, red words push it up.</span><br>")


def _page_colour() -> str:
    # The dialog's text browser paints on the application palette's base colour.
    if QGuiApplication.instance() is None:
        return "#ffffff"
    return QGuiApplication.palette().color(QPalette.ColorRole.Base).name()


def _explained(attribution: Attribution) -> str:
    return attribution.explained_class or attribution.label


def _probabilities(prediction: Prediction) -> str:
    ranked = sorted(prediction.probabilities.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{k} {v:.2f}" for k, v in ranked)


def predictions_html(records: Sequence[StoredRecord]) -> str:
    rows = []
    for r in records:
        p: Prediction = r.value
        rows.append((r.id, when(r.created), p.model_id, p.label, _probabilities(p),
                     ", ".join(p.prediction_set or ()) or "—", "yes" if p.truncated else "no"))
    return table(("#", "time", "model", "label", "probabilities (calibrated)", "conformal set",
                  "cut"), rows)


def escalations_html(records: Sequence[StoredRecord]) -> str:
    blocks = []
    for r in records:
        d: EscalationDecision = r.value
        threshold = d.threshold
        blocks.append(
            f"<p><b>#{r.id} {'AUTO' if d.auto else 'ESCALATE'}</b> <span class='muted'>"
            f"{esc(when(r.created))}, policy {esc(d.policy_id or '—')}, α {esc(d.alpha)}, "
            f"δ {esc(d.delta)}, threshold {'—' if threshold is None else f'{threshold:.2f}'}"
            "</span><br>"
            + "".join(f"• {esc(reason)}<br>" for reason in d.reasons)
            + f"<i>{esc(d.guarantee)}</i></p>")
    return "".join(blocks)


def attributions_html(records: Sequence[StoredRecord]) -> str:
    from explainers.wording import flip_words

    blocks = []
    for r in records:
        a: Attribution = r.value
        cls = _explained(a)
        words = ", ".join(f"{esc(f.text)} {f.values.get(cls, 0.0):+.3f}"
                          for f in a.top_features(cls, TOP_WORDS))
        reading = a.faithfulness.reading if a.faithfulness else ""
        flip = a.flip
        flip_text = (f"removing {esc(flip_words(a))} changes it to "
                     f"{esc(flip.new_label)}" if flip and flip.words else "no flip found")
        blocks.append(
            f"<p><b>#{r.id}</b> <span class='muted'>{esc(when(r.created))}, {esc(a.method)}"
            f" ({esc(a.context)} context), {esc(a.model_calls)} model calls"
            f"</span><br>Explaining P({esc(cls)}): {words}<br>"
            f"{esc(reading)} {flip_text}.</p>")
    return "".join(blocks)


def opinions_html(records: Sequence[StoredRecord]) -> str:
    blocks = []
    for r in records:
        o: LLMOpinion = r.value
        findings = "".join(
            f"<span class='{'warn' if f.severity == 'warning' else 'muted'}'>• "
            f"{esc(f.message)}</span><br>" for f in o.check)
        error = f"<span class='warn'>Error: {esc(o.error)}</span><br>" if o.error else ""
        blocks.append(
            f"<p><b>#{r.id}</b> <span class='ai'>AI-generated</span> <span class='muted'>"
            f"{esc(when(r.created))}, {esc(o.backend)} / {esc(o.model)} "
            f"({esc(o.base_url or 'on this machine')}), {len(o.redactions)} redaction(s)"
            f"</span><br>{error}"
            f"Label: <b>{esc(o.label or '—')}</b><br>{esc(o.text)}<br>"
            f"{findings}</p>")
    return "".join(blocks)


def reviews_html(reviews: Sequence[Review]) -> str:
    """Each review with its signature's manifestation (21 CFR 11.50): printed name, date and
    time in UTC, meaning, and whether the signature verifies, in the warning colour when it
    does not hold."""
    rows = []
    for r in reviews:
        status = esc(signature_status(r))
        rows.append((esc(r.id), esc(signed_time(r.signed_at)), esc(signer_text(r)),
                     esc(r.decision), esc(r.label or "—"), esc(r.reason or ""), esc(r.meaning),
                     status if signature_trusted(r) else f"<span class='warn'>{status}</span>",
                     f"<span class='mono'>{esc(key_text(r))}</span>",
                     f"<span class='mono'>{esc(r.case_sha256[:12])}…</span>"))
    return table(("#", "signed (UTC)", "signed by", "decision", "label", "reason", "meaning",
                  "signature", "key", "case version"), rows, raw=True)


def events_html(events: Sequence[AuditEvent]) -> str:
    rows = [(e.id, when(e.time), e.kind, display_name(e.actor), _event_summary(e.payload),
             f"<span class='mono'>{esc(e.hash[:12])}…</span>") for e in events]
    escaped = [(esc(a), esc(b), esc(c), esc(d), esc(s), h) for a, b, c, d, s, h in rows]
    return table(("#", "time", "event", "by", "details", "hash"), escaped, raw=True)


def _event_summary(payload: dict) -> str:
    shown = {k: v for k, v in payload.items() if k != "record" and v not in (None, "", [], {})}
    text = json.dumps(shown, ensure_ascii=False, default=str)
    return text if len(text) <= 160 else text[:157] + "…"


def trail_html(record: CaseRecord) -> str:
    """The whole trail of a ``CaseRecord`` as one HTML document."""
    meta = json.dumps(record.metadata, ensure_ascii=False) if record.metadata else "none"
    attribution = record.attribution.value if record.attribution else None
    sections = [
        STYLE,
        f"<h1>Case #{record.id}</h1>",
        f"<p class='muted'>Stored {esc(when(record.created))} from {esc(record.source)}. "
        f"Text SHA-256 <span class='mono'>{esc(record.content_sha256)}</span>; "
        f"current version <span class='mono'>{esc(record.version_sha256)}</span>. "
        f"Metadata: {esc(meta)}.</p>",
        "<h2>Text</h2>", f"<p>{highlighted_text(record.text, attribution)}</p>",
        _section("Predictions", record.predictions, predictions_html),
        _section("Escalation decisions", record.escalations, escalations_html),
        _section("Word attributions", record.attributions, attributions_html),
        _section("LLM second opinions", record.opinions, opinions_html),
        _section("Reviews (signed)", record.reviews, reviews_html),
        _section("Audit events", record.events, events_html),
    ]
    return "".join(sections)


def _section(title: str, items, render: Callable) -> str:
    body = render(items) if items else "<p class='muted'>None.</p>"
    return f"<h2>{esc(title)} ({len(items)})</h2>{body}"


class CaseTrailDialog(QDialog):
    """Everything stored about one case, read-only (non-modal; several may be open)."""

    def __init__(self, record: CaseRecord, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.record = record
        self.setWindowTitle(f"Trail of case #{record.id}")
        self.setWindowIcon(icon("history"))
        self.setModal(False)
        self.resize(860, 720)
        layout = QVBoxLayout(self)
        self.browser = QTextBrowser(objectName="caseTrailText")
        self.browser.setOpenLinks(False)
        self.browser.setHtml(trail_html(record))
        self.browser.setAccessibleName(f"Trail of case {record.id}")
        layout.addWidget(self.browser)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        copy = QPushButton("Copy all")
        copy.clicked.connect(self.copy_all)
        buttons.addButton(copy, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.close)
        layout.addWidget(buttons)
        QShortcut(QKeySequence.StandardKey.Find, self, self.browser.setFocus)

    def copy_all(self) -> None:
        QGuiApplication.clipboard().setText(self.browser.toPlainText())


def open_case_trail(context: AppContext, case_id: int, parent: QWidget | None = None,
                    on_open: Callable[[CaseTrailDialog], None] | None = None) -> Task | None:
    """Load the case on the database worker, then show its trail."""
    store = context.store
    if store is None:
        context.message.emit("warning", "The case history is not open yet.")
        return None

    def show(record) -> None:
        alive = parent is None or shiboken6.isValid(parent)
        dialog = CaseTrailDialog(record, parent if alive else None)
        dialog.show()
        if on_open is not None and alive:
            on_open(dialog)

    return context.runner.db(f"load case {case_id}", lambda: store.get_case(case_id)) \
        .on_success(show).start()
