"""The pages of one case: identity, the model's decision and its guarantee, the text with its
word highlights, the attribution chart and its faithfulness, the AI-generated second opinion,
the human review and signature, and the case's own audit events.

Everything shown is read from the stored records (``CaseRecord``), so the PDF says exactly what
the case history holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reportlab.lib.units import mm
from reportlab.platypus import Flowable, KeepTogether, Spacer

from app.reports.chart import attribution_chart, feature_values, legend, value_scale
from app.reports.document import ReportContext, utc
from app.reports.styles import (
    AI_BG,
    AI_EDGE,
    BOX_PADDING,
    CONTENT_WIDTH,
    LABEL_BG,
    SIGNED_EDGE,
    boxed,
    grid,
)
from explainers.render import colour_for

if TYPE_CHECKING:  # importing app.store would load alembic; only the types are needed
    from app.store.records import CaseRecord, ReviewRecord

MAX_EVENTS = 40
DECISIONS = {"auto": "AUTO: decided by the model within the certified bound",
             "escalate": "ESCALATE: sent to a human reviewer"}


def case_flowables(case: CaseRecord, ctx: ReportContext) -> list[Flowable]:
    """Every section of one case, in reading order."""
    return [*_identity(case, ctx), *_decision(case, ctx), *_text(case, ctx),
            *_attribution(case, ctx), *_opinion(case, ctx), *_review(case, ctx),
            *_events(case, ctx)]


# -- identity and decision ------------------------------------------------------------------------

def _identity(case: CaseRecord, ctx: ReportContext) -> list[Flowable]:
    w = ctx.writer
    prediction = case.prediction.data if case.prediction else {}
    return [w.p(f"Case #{case.id}", w.styles.title), w.fields([
        ("Created", utc(case.created)),
        ("Source", case.source or "–"),
        ("Model", f"{prediction['model_id']} (its card is at the end of this report)"
         if prediction.get("model_id") else "no prediction stored"),
        ("Text SHA-256", w.p(case.content_sha256, w.styles.mono)),
        ("Case version", w.p(f"{case.version_sha256} (what a reviewer signs)", w.styles.mono)),
        ("Exported", utc(ctx.exported_at)),
    ])]


def _probabilities(prediction: dict[str, Any]) -> str:
    ranked = sorted(prediction.get("probabilities", {}).items(), key=lambda kv: -kv[1])
    return " · ".join(f"{label} {p:.3f}" for label, p in ranked) + " (calibrated)"


def _prediction_set(prediction: dict[str, Any], escalation: dict[str, Any]) -> str:
    labels = escalation.get("prediction_set", prediction.get("prediction_set"))
    if labels is None:
        return "no conformal set (no escalation policy)"
    alpha = escalation.get("alpha")
    level = f" at {1 - alpha:.0%}" if alpha else ""
    kind = " ".join(x for x in ("conformal", (escalation.get("set_score") or "").upper(),
                                "set") if x)
    return "{" + ", ".join(labels) + "}" + f" ({kind}{level})"


def _policy(escalation: dict[str, Any]) -> str:
    threshold = escalation.get("threshold")
    parts = [f"policy {escalation.get('policy_id', '–')}",
             f"threshold {threshold:.2f}" if threshold is not None else "no certified threshold",
             f"α {escalation.get('alpha')}", f"δ {escalation.get('delta')}",
             f"{escalation.get('n_calibration', '–')} calibration cases "
             f"({escalation.get('calibrated_on', '–')})"]
    return ", ".join(parts)


def _decision(case: CaseRecord, ctx: ReportContext) -> list[Flowable]:
    w = ctx.writer
    if case.prediction is None:
        return [w.heading("Model decision"), w.p("No prediction is stored for this case.")]
    prediction = case.prediction.data
    escalation = case.escalation.data if case.escalation else {}
    label = prediction.get("label", "–")
    top = prediction.get("probabilities", {}).get(label)
    rows: list[tuple[str, Any]] = [
        ("Label", w.p(f"{label}" + (f" (P = {top:.3f})" if top is not None else ""),
                      w.styles.heading)),
        ("Probabilities", _probabilities(prediction)),
        ("Prediction set", _prediction_set(prediction, escalation)),
    ]
    if prediction.get("truncated"):
        rows.append(("Truncated", f"{prediction.get('n_tokens')} tokens: only the first part "
                                  "fits the model window and was read."))
    rows += _escalation_rows(escalation, ctx)
    return [w.heading("Model decision"), w.fields(rows)]


def _escalation_rows(escalation: dict[str, Any], ctx: ReportContext) -> list[tuple[str, Any]]:
    w = ctx.writer
    if not escalation:
        return [("Escalation", "no escalation decision stored")]
    decision = escalation.get("decision", "")
    reasons = escalation.get("reasons") or []
    return [
        ("Escalation", w.p(DECISIONS.get(decision, decision), w.styles.warning
                           if decision == "escalate" else w.styles.body)),
        ("Reasons", "\n".join(f"• {r}" for r in reasons) if reasons else "none"),
        ("Guarantee", escalation.get("guarantee") or "–"),
        ("Policy", w.p(_policy(escalation), w.styles.small)),
    ]


# -- the text with its highlights -----------------------------------------------------------------

def _ink_on(background: str) -> str:
    """White text on the deepest colours, black elsewhere, so every word stays readable."""
    red, green, blue = (int(background[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return "#ffffff" if 0.2126 * red + 0.7152 * green + 0.0722 * blue < 0.45 else "#000000"


def highlighted_markup(text: str, attribution: dict[str, Any], cls: str,
                       ctx: ReportContext) -> str:
    """The whole text as paragraph markup, each attributed word on its colour; text beyond
    the model window in grey, struck through (the model never read it)."""
    fonts = ctx.writer.fonts
    features = sorted(attribution.get("features", []), key=lambda f: f["start"])
    scale = value_scale(feature_values(features, cls))
    parts, cursor = [], 0
    for feature in features:
        if feature["start"] < cursor:
            continue  # overlapping spans cannot come from word_spans; never draw a word twice
        parts.append(fonts.markup(text[cursor : feature["start"]]))
        colour = colour_for(float(feature["values"].get(cls, 0.0)), scale)
        parts.append(f'<span backColor="{colour}" color="{_ink_on(colour)}">'
                     f'{fonts.markup(text[feature["start"] : feature["end"]])}</span>')
        cursor = feature["end"]
    seen = max(cursor, int(attribution.get("seen_chars", len(text))))
    parts.append(fonts.markup(text[cursor:seen]))
    if seen < len(text):
        parts.append(f'<font color="#777777"><strike>{fonts.markup(text[seen:])}</strike></font>')
    return "".join(parts)


def _text(case: CaseRecord, ctx: ReportContext) -> list[Flowable]:
    w = ctx.writer
    if case.attribution is None:
        return [w.heading("Case text"), w.p(case.text, w.styles.case_text),
                w.p("No word attributions are stored for this case.", w.styles.small)]
    data = case.attribution.data
    cls = data.get("explained_class") or data.get("label", "")
    truncated = int(data.get("seen_chars", len(case.text))) < len(case.text)
    note = ([w.p("Grey struck-through text lies beyond the model window: the model did not "
                 "read it.", w.styles.small)] if truncated else [])
    return [
        w.heading(f"Case text: word attributions for P({cls})"),
        legend(cls, w.fonts, CONTENT_WIDTH), *note, Spacer(1, 2 * mm),
        w.raw(highlighted_markup(case.text, data, cls, ctx), w.styles.case_text),
    ]


# -- chart and faithfulness -----------------------------------------------------------------------

def _flip(flip: dict[str, Any] | None) -> str:
    if not flip:
        return "not checked"
    if flip.get("words"):
        words = ", ".join(f"‘{word}’" for word in flip["words"])
        return f"removing {words} changes the label to {flip.get('new_label')}"
    return f"no change of label found removing up to {flip.get('searched')} top words"


def _method(data: dict[str, Any]) -> str:
    return (f"shap {data.get('method')} explainer over words ({data.get('context')} context, "
            f"{data.get('masking')} masking, {data.get('precision')}); budget "
            f"{data.get('budget')}, {data.get('model_calls')} model calls, "
            f"{float(data.get('seconds') or 0):.2f} s; base value + sum of word values = "
            f"probability within {float(data.get('efficiency_gap') or 0):.1e}")


def _attribution(case: CaseRecord, ctx: ReportContext) -> list[Flowable]:
    if case.attribution is None:
        return []
    w = ctx.writer
    data = case.attribution.data
    cls = data.get("explained_class") or data.get("label", "")
    features = data.get("features", [])
    chart = [w.heading(f"Attribution chart: the words that moved P({cls}) most"),
             attribution_chart(features, cls, w.fonts, CONTENT_WIDTH) if features
             else w.p("The text has no words to attribute.")]
    faith = data.get("faithfulness") or {}
    rows: list[tuple[str, Any]] = [
        ("Reading", faith.get("reading") or "no faithfulness check was run"),
        ("Scores", f"AOPC comprehensiveness {faith['comprehensiveness']:.3f} (higher is "
                   f"better), sufficiency {faith['sufficiency']:.3f} (lower is better)"
         if faith else "–"),
        ("What would flip it", _flip(data.get("flip"))),
        ("Method", w.p(_method(data), w.styles.small)),
    ]
    return [KeepTogether(chart), w.heading("Faithfulness"), w.fields(rows)]


# -- the AI-generated second opinion --------------------------------------------------------------

def _findings(check: list[dict[str, Any]], ctx: ReportContext) -> list[Flowable]:
    w = ctx.writer
    if not check:
        return [w.p("Check: nothing flagged.")]
    return [w.p(f"{'⚠ warning' if f.get('severity') == 'warning' else 'note'}: "
                f"{f.get('message', '')}",
                w.styles.warning if f.get("severity") == "warning" else w.styles.body)
            for f in check]


def _opinion(case: CaseRecord, ctx: ReportContext) -> list[Flowable]:
    w = ctx.writer
    if case.opinion is None:
        return [w.heading("Second opinion (AI-generated)"),
                w.p("No LLM second opinion was asked for this case.", w.styles.small)]
    o = case.opinion.data
    where = f" at {o['base_url']}" if o.get("base_url") else " (on this machine)"
    content = [
        w.p("AI-generated: written by a language model, not by a person. Check it against "
            "the case and the attributions before relying on it.", w.styles.warning),
        w.p(f"{o.get('backend')} backend, model {o.get('model')}{where}; "
            f"{utc(o.get('created'))}", w.styles.small),
        Spacer(1, 1.5 * mm),
        w.p(f"Its label: {o.get('label') or 'none given'}"),
        w.p(f"Its explanation: {o.get('text') or o.get('raw_text') or '(empty)'}"),
        w.p(f"Words it cited: {', '.join(o.get('cited_words') or []) or 'none'}"),
        Spacer(1, 1.5 * mm), *_findings(o.get("check") or [], ctx),
    ]
    if o.get("error"):
        content.append(w.p(f"Error: {o['error']}", w.styles.warning))
    content.append(w.p(f"prompt {o.get('prompt_version')} sha256 {o.get('prompt_sha256')}; "
                       f"sent text sha256 {o.get('sent_sha256')}; "
                       f"{len(o.get('redactions') or [])} redaction(s)", w.styles.small))
    return [KeepTogether([w.heading("Second opinion (AI-generated)"),
                          boxed(content, AI_BG, AI_EDGE)])]


# -- review and signature -------------------------------------------------------------------------

def _signature_check(review: ReviewRecord, case: CaseRecord) -> str:
    if review.case_sha256 == case.version_sha256:
        return f"{review.case_sha256} (matches the case as exported)"
    return (f"{review.case_sha256} (the case changed after signing: it is now "
            f"{case.version_sha256})")


def _review(case: CaseRecord, ctx: ReportContext) -> list[Flowable]:
    w = ctx.writer
    review = case.review
    if review is None:
        return [w.heading("Human review and signature"),
                w.p("Not reviewed yet: no person has signed this case.", w.styles.warning)]
    rows: list[tuple[str, Any]] = [
        ("Reviewer", review.reviewer), ("Decision", review.decision),
        ("Label signed", review.label or "–"), ("Reason", review.reason or "–"),
        ("Signature means", review.meaning), ("Signed at", utc(review.signed_at)),
        ("Signed case hash", w.p(_signature_check(review, case), w.styles.mono)),
    ]
    table = w.fields(rows, width=CONTENT_WIDTH - 2 * BOX_PADDING)
    earlier = [_earlier(r, ctx) for r in reversed(case.reviews[:-1])]
    older = [w.p("Earlier reviews (superseded, kept as the record):", w.styles.small),
             *earlier] if earlier else []
    return [KeepTogether([w.heading("Human review and signature"),
                          boxed([table], LABEL_BG, SIGNED_EDGE)]), *older]


def _earlier(review: ReviewRecord, ctx: ReportContext) -> Flowable:
    text = (f"#{review.id} {utc(review.signed_at)}: {review.decision}"
            f"{' → ' + review.label if review.label else ''} by {review.reviewer}"
            f"{' (' + review.reason + ')' if review.reason else ''}")
    return ctx.writer.p(text, ctx.writer.styles.small)


# -- the case's audit events ----------------------------------------------------------------------

def _events(case: CaseRecord, ctx: ReportContext) -> list[Flowable]:
    w = ctx.writer
    small, mono = w.styles.small, w.styles.mono
    shown = case.events[-MAX_EVENTS:]
    rows = [[w.p(h, w.styles.label) for h in ("no.", "time", "what", "by", "sha256")]]
    rows += [[w.p(str(e.id), small), w.p(utc(e.time), small), w.p(e.kind, small),
              w.p(e.actor, small), w.p(e.hash, mono)] for e in shown]
    widths = [11 * mm, 41 * mm, 24 * mm, 22 * mm]
    table = grid(rows, [*widths, CONTENT_WIDTH - sum(widths)])
    note = ([w.p(f"Showing the last {MAX_EVENTS} of {len(case.events)} events.", small)]
            if len(case.events) > MAX_EVENTS else [])
    return [w.heading("Audit trail of this case"), table, *note]
