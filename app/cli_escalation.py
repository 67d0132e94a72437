"""``calibrate`` and ``evaluate``: fit the escalation policy and show its evidence."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from app.paths import data_dir
from models.errors import DataError


def _labelled_cases(args: argparse.Namespace, classifier, split: str
                    ) -> tuple[list[str], np.ndarray, str]:
    """The cases to calibrate or evaluate on: a file, or the split kept with the model."""
    from models.data import load_labeled
    from models.train_job import read_held_out

    if args.data:
        cases, _ = load_labeled(args.data, args.text_col, args.label_col, args.encoding)
        texts, labels, source = list(cases.texts), list(cases.labels), Path(args.data).name
    else:
        texts, labels = read_held_out(classifier.path, split)
        source = f"{split} split"
    unknown = sorted(set(labels) - set(classifier.labels))
    if unknown:
        raise DataError(f"Labels {unknown} in {source} are not the model's labels "
                        f"{classifier.labels}; relabel those cases or use another model.")
    return texts, np.array([classifier.labels.index(y) for y in labels]), source


def cmd_calibrate(args: argparse.Namespace) -> int:
    from app.cli import TerminalProgress, _load_classifier
    from app.cli_record import log_policy_refitted
    from models.escalation import EscalationSettings, fit_policy, save_policy

    classifier = _load_classifier(args.model)
    settings = EscalationSettings(args.alpha, args.delta, args.set_score,
                                  tuple(args.always_review or ()))
    settings.check(classifier.labels)
    texts, truth, source = _labelled_cases(args, classifier, "calibration")
    reporter = TerminalProgress()
    try:
        scores = classifier.scores(texts, progress=reporter)
    finally:
        reporter.close()
    policy = fit_policy(scores, truth, classifier.labels, classifier.model_id, settings, source)
    path = save_policy(policy, classifier.path)
    record = policy.to_record()
    if args.json:
        print(json.dumps({k: record[k] for k in ("policy_id", "model_id", "threshold",
                                                 "n_calibration", "guarantee", "settings")}))
    else:
        print(f"policy {policy.policy_id} saved to {path}")
        threshold = "none" if policy.threshold is None else f"{policy.threshold:.2f}"
        print(f"  certified threshold: {threshold} (alpha {settings.alpha}, delta "
              f"{settings.delta}, {policy.n_calibration} cases from {source})")
        print(f"  {policy.guarantee}")
    return log_policy_refitted(args, policy, source)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from app.cli import TerminalProgress, _load_classifier
    from models.escalation import load_policy
    from models.escalation_evidence import evaluate_policy, risk_coverage_plot
    from models.model_card import escalation_summary

    classifier = _load_classifier(args.model)
    policy = load_policy(classifier.path, classifier.model_id, classifier.labels)
    if policy is None:
        raise DataError("This model has no escalation policy yet: run "
                        "`python main.py calibrate` first.")
    texts, truth, source = _labelled_cases(args, classifier, "test")
    reporter = TerminalProgress() if not args.json else None
    try:
        scores = classifier.scores(texts, progress=reporter)
    finally:
        if reporter is not None:
            reporter.close()
    evidence = evaluate_policy(policy, scores, truth)
    plot = Path(args.plot) if args.plot else (
        data_dir() / "reports" / f"{classifier.model_id}-{policy.policy_id}-risk-coverage.png")
    risk_coverage_plot(policy, scores, truth, plot, evidence)
    evidence = {**evidence, "source": source, "plot": str(plot)}
    if args.json:
        print(json.dumps(evidence))
    else:
        print(f"policy {policy.policy_id} on {len(truth)} cases ({source})")
        print(f"  {policy.guarantee}")
        print(f"  {escalation_summary(evidence)}")
        print(f"  escalation reasons: {evidence['escalation_reasons']}")
        print(f"  risk-coverage plot: {plot}")
    return 0


def add_parsers(commands) -> None:
    calibrate = commands.add_parser(
        "calibrate", help="fit the escalation policy (default: the model's calibration split)")
    _data_options(calibrate)
    calibrate.add_argument("--alpha", type=float, default=0.10,
                           help="bound on the error among automatic decisions (default 0.10)")
    calibrate.add_argument("--delta", type=float, default=0.10,
                           help="chance the bound fails over the calibration draw (default 0.10)")
    calibrate.add_argument("--set-score", default="lac", choices=("lac", "aps"),
                           help="conformal score of the prediction sets (default lac)")
    calibrate.add_argument("--always-review", nargs="*", metavar="LABEL",
                           help="labels that are always escalated")
    calibrate.set_defaults(handler=cmd_calibrate)
    from app.cli_record import add_record_options

    add_record_options(calibrate)

    evaluate = commands.add_parser(
        "evaluate", help="the escalation policy's evidence (default: the model's test split)")
    _data_options(evaluate)
    evaluate.add_argument("--plot", help="where to write the risk-coverage PNG")
    evaluate.set_defaults(handler=cmd_evaluate)


def _data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="labelled cases (CSV, TSV or JSONL) instead of the split "
                                       "kept with the model")
    parser.add_argument("--text-col", default="text", help="column with the text")
    parser.add_argument("--label-col", default="label", help="column with the label")
    parser.add_argument("--encoding", help="file encoding when it is not UTF-8")
    parser.add_argument("--model", help="model id (default: the active model)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
