"""The pages of one case: identity, the model's decision and its guarantee, the text with its
word highlights, the attribution chart and its faithfulness, the AI-generated second opinion,
the human review and signature, and the case's own audit events.

Everything shown is read from the stored records (``CaseRecord``, each record as its typed
``value``), so the PDF says exactly what the case history holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from reportlab.lib.units import mm
from reportlab.platypus import Flowable, KeepTogether, Spacer

from app.reports.chart import (
    attribution_chart,
    legend,
)
from app.reports.document import ReportContext, utc
from app.reports.signature import key_rows, manifestation, manifestation_rows
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
from explainers.render import highlight, highlight_scale, segments
from explainers.wording import flip_words
from models.windows import reading_text

if TYPE_CHECKING:  # importing app.store would load alembic; only the types are needed
    from app.store.records import CaseRecord, Review
    from explainers.types import Attribution, Finding, LLMOpinion
    from models.types import EscalationDecision, Prediction

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
    prediction: Prediction | None = case.prediction.value if case.prediction else None
    return [w.p(f"Case #{case.id}", w.styles.title), w.fields([
        ("Created", utc(case.created)),
        ("Source", case.source or "–"),
        ("Model", f"{prediction.model_id} (its card is at the end of this report)"
         if prediction and prediction.model_id else "no prediction stored"),
        ("Text SHA-256", w.p(case.content_sha256, w.styles.mono)),
        ("Case version", w.p(f"{case.version_sha256} (what a reviewer signs)", w.styles.mono)),
        ("Exported", utc(ctx.exported_at)),
    ])]


def _probabilities(prediction: Prediction) -> str:
    ranked = sorted(prediction.probabilities.items(), key=lambda kv: -kv[1])
    return " · ".join(f"{label} {p:.3f}" for label, p in ranked) + " (calibrated)"


def _prediction_set(prediction: Prediction, escalation: EscalationDecision | None) -> str:
    labels = escalation.prediction_set if escalation else prediction.prediction_set
    if labels is None:
        return "no conformal set (no escalation policy)"
    alpha = escalation.alpha if escalation else None
    level = f" at {1 - alpha:.0%}" if alpha else ""
    score = escalation.set_score.upper() if escalation else ""
    kind = " ".join(x for x in ("conformal", score, "set") if x)
    return "{" + ", ".join(labels) + "}" + f" ({kind}{level})"


def _policy(escalation: EscalationDecision) -> str:
    threshold = escalation.threshold
    parts = [f"policy {escalation.policy_id}",
             f"threshold {threshold:.2f}" if threshold is not None else "no certified threshold",
             f"α {escalation.alpha}", f"δ {escalation.delta}",
             f"{escalation.n_calibration} calibration cases "
             f"({escalation.calibrated_on})"]
    return ", ".join(parts)


def _decision(case: CaseRecord, ctx: ReportContext) -> list[Flowable]:
    w = ctx.writer
    if case.prediction is None:
        return [w.heading("Model decision"), w.p("No prediction is stored for this case.")]
    prediction: Prediction = case.prediction.value
    escalation: EscalationDecision | None = case.escalation.value if case.escalation else None
    rows: list[tuple[str, Any]] = [
        ("Label", w.p(f"{prediction.label} (P = {prediction.confidence:.3f})",
                      w.styles.heading)),
        ("Probabilities", _probabilities(prediction)),
        ("Prediction set", _prediction_set(prediction, escalation)),
    ]
    reading = reading_text(prediction.n_tokens, prediction.windows, prediction.truncated)
    if reading:
        rows.append(("Length", reading[0].upper() + reading[1:] + "."))
    rows += _escalation_rows(escalation, ctx)
    return [w.heading("Model decision"), w.fields(rows)]


def _escalation_rows(escalation: EscalationDecision | None,
                     ctx: ReportContext) -> list[tuple[str, Any]]:
    w = ctx.writer
    if escalation is None:
        return [("Escalation", "no escalation decision stored")]
    reasons = escalation.reasons
    return [
        ("Escalation", w.p(DECISIONS.get(escalation.decision, escalation.decision),
                           w.styles.warning if escalation.escalated else w.styles.body)),
        ("Reasons", "\n".join(f"• {r}" for r in reasons) if reasons else "none"),
        ("Guarantee", escalation.guarantee or "–"),
        ("Policy", w.p(_policy(escalation), w.styles.small)),
    ]


# -- the text with its highlights -----------------------------------------------------------------

def highlighted_markup(text: str, attribution: Attribution, cls: str,
                       ctx: ReportContext) -> str:
    """The whole text as paragraph markup, each attributed word (or a first pass's group) on
    its colour with text that meets WCAG AA on it, words near 0 unboxed, as in the window;
    text beyond the model window in grey, struck through (the model never read it)."""
    fonts = ctx.writer.fonts
    scale = highlight_scale(attribution, cls)
    parts, cursor = [], 0
    for segment in segments(attribution, cls):
        if segment.start < cursor or segment.end > len(text):
            continue  # overlapping spans cannot come from word_spans; never draw a word twice
        parts.append(fonts.markup(text[cursor : segment.start]))
        word = fonts.markup(text[segment.start : segment.end])
        colours = highlight(segment.value, scale)  # paper is white
        parts.append(word if colours.background is None else
                     f'<span backColor="{colours.background}" color="{colours.ink}">'
                     f"{word}</span>")
        cursor = segment.end
    seen = min(max(cursor, attribution.seen_chars), len(text))
    parts.append(fonts.markup(text[cursor:seen]))
    if seen < len(text):
        parts.append(f'<font color="#777777"><strike>{fonts.markup(text[seen:])}</strike></font>')
    return "".join(parts)


def _explained(attribution: Attribution) -> str:
    return attribution.explained_class or attribution.label


PRINTED_TEXT_CHARS = 20_000  # about six pages; a longer case is printed up to here


def _rest_of(case: CaseRecord, ctx: ReportContext) -> list[Flowable]:
    """For a case longer than the PDF prints: how much is left out, and how to get it."""
    left = len(case.text) - PRINTED_TEXT_CHARS
    if left <= 0:
        return []
    return [ctx.writer.p(
        f"The text goes on for {left:,} more characters ({len(case.text):,} in all) that this "
        f"report does not print. The whole text is case #{case.id} in the case history; its "
        f"SHA-256 is {case.content_sha256}, so any copy can be checked against this report.",
        ctx.writer.styles.warning)]


def _text(case: CaseRecord, ctx: ReportContext) -> list[Flowable]:
    w = ctx.writer
    printed = case.text[:PRINTED_TEXT_CHARS]
    if case.attribution is None:
        return [w.heading("Case text"), w.p(printed, w.styles.case_text), *_rest_of(case, ctx),
                w.p("No word attributions are stored for this case.", w.styles.small)]
    attribution: Attribution = case.attribution.value
    cls = _explained(attribution)
    truncated = attribution.seen_chars < len(printed)
    note = ([w.p("Grey struck-through text lies beyond the model window: the model did not "
                 "read it.", w.styles.small)] if truncated else [])
    return [
        w.heading(f"Case text: word attributions for P({cls})"),
        legend(cls, w.fonts, CONTENT_WIDTH, highlight_scale(attribution, cls)), *note,
        Spacer(1, 2 * mm),
        w.raw(highlighted_markup(printed, attribution, cls, ctx), w.styles.case_text),
        *_rest_of(case, ctx),
    ]


# -- chart and faithfulness -----------------------------------------------------------------------

def _flip(attribution: Attribution) -> str:
    flip = attribution.flip
    if flip is None:
        return "not checked"
    if flip.words:
        words = flip_words(attribution, ("‘", "’"))
        return f"removing {words} changes the label to {flip.new_label}"
    return f"no change of label found removing up to {flip.searched} top words"


def _method(a: Attribution) -> str:
    name = a.estimator or f"shap {a.method} explainer ({a.context} context)"
    errors = ("; ± is the estimate's standard error (the bar's whisker: 95 %)"
              if any(f.errors for f in a.features) else "")
    return (f"{name} over words ({a.masking} masking, {a.precision}); budget "
            f"{a.budget}, {a.model_calls} model calls, "
            f"{a.seconds:.2f} s; base value + sum of word values = "
            f"probability within {a.efficiency_gap():.1e}{errors}")


def _attribution(case: CaseRecord, ctx: ReportContext) -> list[Flowable]:
    if case.attribution is None:
        return []
    w = ctx.writer
    attribution: Attribution = case.attribution.value
    cls = _explained(attribution)
    features = attribution.features
    chart = [w.heading(f"Attribution chart: the words that moved P({cls}) most"),
             attribution_chart(features, cls, w.fonts, CONTENT_WIDTH) if features
             else w.p("The text has no words to attribute.")]
    faith = attribution.faithfulness
    rows: list[tuple[str, Any]] = [
        ("Reading", (faith.reading if faith else "") or "no faithfulness check was run"),
        ("Scores", f"AOPC comprehensiveness {faith.comprehensiveness:.3f} (higher is "
                   f"better), sufficiency {faith.sufficiency:.3f} (lower is better)"
         if faith else "–"),
        ("What would flip it", _flip(attribution)),
        ("Top words", attribution.uncertainty.sentence() if attribution.uncertainty
         else "their order's uncertainty was not assessed (a deterministic estimate)"),
        ("Method", w.p(_method(attribution), w.styles.small)),
    ]
    return [KeepTogether(chart), w.heading("Faithfulness"), w.fields(rows)]


# -- the AI-generated second opinion --------------------------------------------------------------

def _findings(check: Sequence[Finding], ctx: ReportContext) -> list[Flowable]:
    w = ctx.writer
    if not check:
        return [w.p("Check: nothing flagged.")]
    return [w.p(f"{'⚠ warning' if f.severity == 'warning' else 'note'}: {f.message}",
                w.styles.warning if f.severity == "warning" else w.styles.body)
            for f in check]


def _opinion(case: CaseRecord, ctx: ReportContext) -> list[Flowable]:
    w = ctx.writer
    if case.opinion is None:
        return [w.heading("Second opinion (AI-generated)"),
                w.p("No LLM second opinion was asked for this case.", w.styles.small)]
    o: LLMOpinion = case.opinion.value
    where = f" at {o.base_url}" if o.base_url else " (on this machine)"
    content = [
        w.p("AI-generated: written by a language model, not by a person. Check it against "
            "the case and the attributions before relying on it.", w.styles.warning),
        w.p(f"{o.backend} backend, model {o.model}{where}; {utc(o.created)}", w.styles.small),
        Spacer(1, 1.5 * mm),
        w.p(f"Its label: {o.label or 'none given'}"),
        w.p(f"Its explanation: {o.text or o.raw_text or '(empty)'}"),
        w.p(f"Words it cited: {', '.join(o.cited_words) or 'none'}"),
        Spacer(1, 1.5 * mm), *_findings(o.check, ctx),
    ]
    if o.error:
        content.append(w.p(f"Error: {o.error}", w.styles.warning))
    content.append(w.p(f"prompt {o.prompt_version} sha256 {o.prompt_sha256}; "
                       f"sent text sha256 {o.sent_sha256}; "
                       f"{len(o.redactions)} redaction(s)", w.styles.small))
    return [KeepTogether([w.heading("Second opinion (AI-generated)"),
                          boxed(content, AI_BG, AI_EDGE)])]


# -- review and signature -------------------------------------------------------------------------

def _signature_check(review: Review, case: CaseRecord) -> str:
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
        *manifestation_rows(review, ctx), ("Decision", review.decision),
        ("Label signed", review.label or "–"), ("Reason", review.reason or "–"),
        *key_rows(review, ctx),
        ("Signed case hash", w.p(_signature_check(review, case), w.styles.mono)),
    ]
    table = w.fields(rows, width=CONTENT_WIDTH - 2 * BOX_PADDING)
    earlier = [w.p(manifestation(r), w.styles.small) for r in reversed(case.reviews[:-1])]
    older = [w.p("Earlier reviews (superseded, kept as the record):", w.styles.small),
             *earlier] if earlier else []
    return [KeepTogether([w.heading("Human review and signature"),
                          boxed([table], LABEL_BG, SIGNED_EDGE)]), *_judgements(case, ctx),
            *older]


def _judgements(case: CaseRecord, ctx: ReportContext) -> list[Flowable]:
    """Blind first judgements, made before the model's answer was shown (not signatures)."""
    w = ctx.writer
    lines = [w.p(judgement_line(j), w.styles.small) for j in case.judgements]
    return [w.p("Blind first judgements (recorded before the model's answer was shown; "
                "covered by the signature that followed):", w.styles.small), *lines] \
        if lines else []


def judgement_line(judgement) -> str:
    note = f" — “{judgement.note}”" if judgement.note else ""
    return (f"{judgement.label or 'cannot tell'}{note}, by {judgement.judge} at "
            f"{utc(judgement.time)} (audit event {judgement.event_id})")


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
