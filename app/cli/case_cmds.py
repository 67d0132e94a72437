"""One case from the terminal: ``predict``, ``explain``, and the headless ``demo``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from app.cli.common import (
    TerminalProgress,
    add_record_options,
    audit_share,
    case_store,
    load_cli_workbench,
)
from explainers.methods import METHODS
from models.errors import CasewiseError
from models.windows import reading_text

SAMPLE_CASES = Path(__file__).resolve().parents[2] / "assets" / "sample_cases.json"


def cmd_predict(args: argparse.Namespace) -> int:
    from app.batch import read_case_text
    from app.pipeline import Steps, run_cases
    from models.data import load_texts
    from models.types import CaseInput

    if (args.text is None) == (args.file is None):
        raise CasewiseError("Give either a TEXT to classify or --file FILE, not both or neither.")
    if args.file is None:
        texts = [args.text]
    elif args.file == "-" or Path(args.file).suffix.lower() == ".txt":
        texts = [read_case_text(args.file, args.encoding)]  # the whole file is one case
    else:
        texts = load_texts(args.file, args.text_col, args.encoding)
    bench = load_cli_workbench(args, args.model)
    empty = [i + 1 for i, t in enumerate(texts) if not t.strip()]
    kept = [t for t in texts if t.strip()]
    if empty:
        print(f"skipped {len(empty)} empty text(s) (rows {empty[:10]})", file=sys.stderr)
    if not kept:
        raise CasewiseError("There is no text to classify.")
    source = Path(args.file).name if args.file else "terminal"
    with case_store(args, bench) as history:
        results = run_cases(bench, [CaseInput(text, source) for text in kept],
                            store=history.store,
                            steps=Steps(explain=False, audit_share=audit_share(args)))
    for result in results:
        prediction, decision = result.prediction, result.decision
        if args.json:
            print(json.dumps({**prediction.to_dict(), "escalation": decision.to_dict(),
                              "audit_sample": result.audit_sample}))
        else:
            sampled = "  (drawn for the audit sample: a reviewer checks it blind)" \
                if result.audit_sample else ""
            print(f"{_format_prediction(prediction)}  -> {_format_decision(decision)}{sampled}")
    return history.report("the result", results)


def _format_prediction(prediction) -> str:
    others = ", ".join(f"{label} {p:.2f}" for label, p in
                       sorted(prediction.probabilities.items(), key=lambda kv: -kv[1])[1:])
    reading = reading_text(prediction.n_tokens, prediction.windows, prediction.truncated)
    note = f"  [{reading}]" if reading else ""
    top = prediction.probabilities[prediction.label]
    return f"{prediction.label:<12} {top:.2f}  ({others}){note}"


def _format_decision(decision) -> str:
    if decision.auto:
        return "AUTO"
    return "ESCALATE: " + "; ".join(decision.reasons)


def cmd_explain(args: argparse.Namespace) -> int:
    from app.batch import read_case_text
    from app.pipeline import Listener, Steps, run_case
    from models.types import CaseInput

    if (args.text is None) == (args.file is None):
        raise CasewiseError("Give either a TEXT to explain or --file FILE, not both or neither.")
    text = args.text if args.file is None else read_case_text(args.file, args.encoding)
    if not text.strip():
        raise CasewiseError("The case text is empty: there is nothing to explain.")
    bench = load_cli_workbench(args, args.model)
    reporter = TerminalProgress() if not args.json else None
    options = {"target": args.cls, "budget": args.budget, "method": args.method,
               "context": args.context, "masking": args.masking, "precision": args.precision,
               "refine": args.refine, "seed": args.seed}
    try:
        with case_store(args, bench) as history:
            source = "terminal" if args.file is None else Path(args.file).name
            result = run_case(bench, CaseInput(text, source), store=history.store,
                              steps=Steps(audit_share=audit_share(args)),
                              listener=Listener(progress=reporter), explain_options=options)
    finally:
        if reporter is not None:
            reporter.close()
    if args.json:
        print(json.dumps(explanation_json(result.attribution), ensure_ascii=False))
    else:
        _print_explanation(result.attribution)
    return history.report("the explanation", [result])


def explanation_json(attribution) -> dict:
    """The ``explain --json`` contract: label, base_values, features, method, budget, ..."""
    full = attribution.to_dict()
    keys = ("label", "explained_class", "probabilities", "base_values", "features", "method",
            "context", "masking", "precision", "budget", "model_calls", "seconds",
            "faithfulness", "output", "seen_chars", "efficiency_gap", "estimator",
            "words_evaluated", "uncertainty", "first_answer")
    flip = full["flip"]
    return {**{k: full[k] for k in keys}, "flip": flip["words"] if flip else None,
            "flip_detail": flip}


def _print_explanation(attribution) -> None:
    cls = attribution.explained_class
    print(f"{attribution.label} (explaining P({cls}) = {attribution.probabilities[cls]:.2f}; "
          f"base {attribution.base_values[cls]:.2f})")
    ranked = sorted(attribution.features, key=lambda f: -abs(f.values[cls]))[:10]
    for feature in ranked:
        error = f" ± {feature.errors[cls]:.3f}" if feature.errors else ""
        print(f"  {feature.values[cls]:+.3f}{error}  {feature.text}")
    if attribution.uncertainty is not None:
        print(attribution.uncertainty.sentence())
    if attribution.faithfulness:
        print(attribution.faithfulness.reading)
    flip = attribution.flip
    if flip and flip.words:
        from explainers.wording import flip_words

        words = flip_words(attribution, ("'", "'"))
        print(f"Removing {words} changes it to {flip.new_label}.")
    elif flip:
        print(f"No flip found removing up to {flip.searched} top words.")
    print(f"{attribution.estimator or attribution.method}, {attribution.model_calls} model "
          f"calls, {attribution.seconds:.2f} s")


def cmd_demo(args: argparse.Namespace) -> int:
    """The headless demo: classify the sample cases with the active model."""
    cases = json.loads(SAMPLE_CASES.read_text(encoding="utf-8"))
    bench = load_cli_workbench(args, None)
    from app.pipeline import Steps, run_cases
    from models.types import CaseInput

    print(f"Casewise — model {bench.model_id} ({', '.join(bench.labels)})\n")
    if bench.policy is not None:
        print(f"{bench.policy.guarantee}\n")
    results = run_cases(bench, [CaseInput(c["text"], "sample") for c in cases],
                        steps=Steps(explain=False, store=False))
    for case, result in zip(cases, results, strict=True):
        prediction, decision = result.prediction, result.decision
        print(f"{case['id']}: {case['text'][:90]}{'...' if len(case['text']) > 90 else ''}")
        print(f"  -> {_format_prediction(prediction)}")
        print(f"     {_format_decision(decision)}\n")
    return 0


def add_predict_parsers(commands) -> None:
    """``predict`` and ``explain`` (``demo`` is added last, where the help lists it)."""
    predict = commands.add_parser("predict", help="classify a text or a file of texts")
    predict.add_argument("text", nargs="?", help="the text of one case")
    predict.add_argument("--file", help="CSV, TSV or JSONL file of cases, or a .txt file (or "
                                        "- for standard input) holding one case")
    predict.add_argument("--text-col", help="column with the text (guessed when obvious)")
    predict.add_argument("--encoding", help="file encoding when it is not UTF-8")
    predict.add_argument("--model", help="model id (default: the active model)")
    predict.add_argument("--json", action="store_true", help="one JSON object per line")
    predict.set_defaults(handler=cmd_predict)
    add_record_options(predict)

    explain = commands.add_parser("explain", help="SHAP word attributions for one text")
    explain.add_argument("text", nargs="?", help="the text of one case")
    explain.add_argument("--file", help="a text file holding the case (- : standard input); "
                                        "for texts too long for a command line")
    explain.add_argument("--encoding", help="the file's encoding when it is not UTF-8")
    explain.add_argument("--class", dest="cls", help="class to explain (default: the predicted)")
    explain.add_argument("--budget", type=int, help="model evaluations (default grows with text)")
    explain.add_argument("--method", default="auto", choices=METHODS,
                         help="auto (default): exact values for short texts, else the "
                              "amortized explainer's answer (or shap's Partition explainer "
                              "when the model has none) refined by KernelSHAP until the top "
                              "words settle; or one estimator alone")
    explain.add_argument("--no-refine", dest="refine", action="store_false",
                         help="auto: stop at the first answer (no sampled refinement)")
    explain.add_argument("--seed", type=int, default=0, help="the sampling's seed")
    explain.add_argument("--context", default="empty", choices=("empty", "full", "both"),
                         help="Partition only: measure each split against the group alone "
                              "(default, fast), against the rest of the text, or both (shap's "
                              "default, needs a larger budget)")
    explain.add_argument("--masking", default="delete", choices=("delete", "mask"),
                         help="remove masked words (default) or replace them with [MASK]")
    explain.add_argument("--precision", default="float32", choices=("float32", "int8"),
                         help="evaluate masked texts on the model itself (default) or on an "
                              "int8 copy (probabilities differ slightly from the model's)")
    explain.add_argument("--model", help="model id (default: the active model)")
    explain.add_argument("--json", action="store_true", help="print one JSON object")
    explain.set_defaults(handler=cmd_explain)
    add_record_options(explain)


def add_demo_parser(commands) -> None:
    demo = commands.add_parser("demo", help="classify the sample cases (headless)")
    demo.set_defaults(handler=cmd_demo)
