"""The headless command line: ``python main.py <command>``. No Qt is imported here."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from app.cli_record import add_record_options
from app.paths import data_dir
from models.errors import CasewiseError
from models.progress import Cancelled, Progress
from models.registry import ModelRegistry

SAMPLE_CASES = Path(__file__).resolve().parent.parent / "assets" / "sample_cases.json"


class TerminalProgress:
    """Prints stage changes as lines and the long stages as a bar with time left (tqdm)."""

    def __init__(self, stream=sys.stderr) -> None:
        self.stream = stream
        self.stage: str | None = None
        self.bar = None

    def __call__(self, progress: Progress) -> None:
        if progress.stage != self.stage:
            self.close()
            self.stage = progress.stage
            if progress.total <= 1:
                print(f"{progress.stage} ...", file=self.stream, flush=True)
            else:
                from tqdm import tqdm

                self.bar = tqdm(total=progress.total, desc=progress.stage, file=self.stream,
                                unit="step", dynamic_ncols=True)
        if self.bar is not None:
            self.bar.total = progress.total
            self.bar.update(progress.done - self.bar.n)
            if progress.message:
                self.bar.set_postfix_str(progress.message, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def registry() -> ModelRegistry:
    return ModelRegistry(data_dir())


def _format_prediction(prediction) -> str:
    others = ", ".join(f"{label} {p:.2f}" for label, p in
                       sorted(prediction.probabilities.items(), key=lambda kv: -kv[1])[1:])
    note = (f"  [truncated: the text has {prediction.n_tokens} tokens; only the first part "
            "fits the model window]") if prediction.truncated else ""
    top = prediction.probabilities[prediction.label]
    return f"{prediction.label:<12} {top:.2f}  ({others}){note}"


def cmd_train(args: argparse.Namespace) -> int:
    from models.train_job import DatasetSpec, train_and_save
    from models.training import TrainingConfig

    if args.data is None:
        spec = DatasetSpec.demo()
    else:
        spec = DatasetSpec(Path(args.data).name, Path(args.data), args.text_col, args.label_col,
                           args.encoding, Path(args.test_data) if args.test_data else None)
    overrides = {k: v for k, v in {"max_epochs": args.epochs, "max_length": args.max_length,
                                   "seed": args.seed}.items() if v is not None}
    config = TrainingConfig(**overrides)
    reporter = TerminalProgress()
    try:
        record = train_and_save(spec, registry(), config, progress=reporter,
                                activate=not args.no_activate,
                                base_dir=Path(args.base_model) if args.base_model else None)
    finally:
        reporter.close()
    card = json.loads((Path(record.path) / "model_card.json").read_text(encoding="utf-8"))
    if args.json:
        print(json.dumps({**record.to_dict(), "metrics": card["metrics"]["test"],
                          "baseline": card["baseline"]["test"]}))
    else:
        _print_training_summary(record, card)
    return _log_training(args, record)


def _log_training(args: argparse.Namespace, record) -> int:
    """The new model's first policy, and its activation, go in the audit trail."""
    from app.cli_record import log_model_activated, log_policy_refitted
    from models.escalation import load_policy

    path = Path(record.path)
    labels = record.labels
    policy = load_policy(path, record.id, labels)
    failed = log_policy_refitted(args, policy, "calibration split") if policy else 0
    if record.active:
        failed = failed or log_model_activated(args, path, record.id)
    return failed


def _print_training_summary(record, card: dict) -> None:
    test, base = card["metrics"]["test"], card["baseline"]["test"]
    print(f"model {record.id} saved to {record.path}" + (" (active)" if record.active else ""))
    print(f"  test split ({test['n']} cases): accuracy {test['accuracy']:.3f}, "
          f"macro-F1 {test['macro_f1']:.3f}; baseline {base['accuracy']:.3f} / "
          f"{base['macro_f1']:.3f}")
    print(f"  ECE (15 bins) {test['ece_before']:.3f} -> {test['ece_after']:.3f} "
          f"after temperature {card['training']['temperature']:.2f}")
    print(f"  {card['comparison']}")


def _load_classifier(model_id: str | None):
    from app.casework import load_classifier

    return load_classifier(data_dir(), model_id)


def _load_workbench(model_id: str | None):
    """The classifier with its escalation policy, as the desktop app and ``score`` load it."""
    from app.casework import load_workbench

    return load_workbench(data_dir(), model_id)


def cmd_predict(args: argparse.Namespace) -> int:
    from models.data import load_texts

    if (args.text is None) == (args.file is None):
        raise CasewiseError("Give either a TEXT to classify or --file FILE, not both or neither.")
    texts = [args.text] if args.file is None else load_texts(args.file, args.text_col,
                                                             args.encoding)
    bench = _load_workbench(args.model)
    empty = [i + 1 for i, t in enumerate(texts) if not t.strip()]
    kept = [t for t in texts if t.strip()]
    if empty:
        print(f"skipped {len(empty)} empty text(s) (rows {empty[:10]})", file=sys.stderr)
    if not kept:
        raise CasewiseError("There is no text to classify.")
    from app.casework import analyze
    from app.cli_record import record, store_cases

    analyses = analyze(bench, kept)
    for analysis in analyses:
        prediction, decision = analysis.prediction, analysis.decision
        if args.json:
            print(json.dumps({**prediction.to_dict(), "escalation": decision.to_dict()}))
        else:
            print(f"{_format_prediction(prediction)}  -> {_format_decision(decision)}")
    source = Path(args.file).name if args.file else "terminal"
    return record(args, "the result",
                  lambda store: store_cases(store, bench, analyses, source))


def _format_decision(decision) -> str:
    if decision.auto:
        return "AUTO"
    return "ESCALATE: " + "; ".join(decision.reasons)


def cmd_explain(args: argparse.Namespace) -> int:
    from explainers.attribution import explain

    bench = _load_workbench(args.model)
    reporter = TerminalProgress() if not args.json else None
    try:
        attribution = explain(bench.classifier, args.text, target=args.cls, budget=args.budget,
                              method=args.method, context=args.context,
                              masking=args.masking,
                              precision=args.precision, progress=reporter)
    finally:
        if reporter is not None:
            reporter.close()
    if args.json:
        print(json.dumps(explanation_json(attribution), ensure_ascii=False))
    else:
        _print_explanation(attribution)
    return _record_explanation(args, bench, attribution)


def _record_explanation(args: argparse.Namespace, bench, attribution) -> int:
    """File the case, its decision and the attribution. The decision needs the encoder's
    embeddings, which the attribution does not keep: one more (cheap) unmasked pass."""
    from app.casework import analyze
    from app.cli_record import record, store_cases

    def store_it(store) -> None:
        (case_id,) = store_cases(store, bench, analyze(bench, [args.text]), "terminal")
        store.record_attribution(case_id, attribution.to_dict())

    return record(args, "the explanation", store_it)


def explanation_json(attribution) -> dict:
    """The ``explain --json`` contract: label, base_values, features, method, budget, ..."""
    full = attribution.to_dict()
    keys = ("label", "explained_class", "probabilities", "base_values", "features", "method",
            "context", "masking", "precision", "budget", "model_calls", "seconds",
            "faithfulness", "output", "seen_chars", "efficiency_gap")
    flip = full["flip"]
    return {**{k: full[k] for k in keys}, "flip": flip["words"] if flip else None,
            "flip_detail": flip}


def _print_explanation(attribution) -> None:
    cls = attribution.explained_class
    print(f"{attribution.label} (explaining P({cls}) = {attribution.probabilities[cls]:.2f}; "
          f"base {attribution.base_values[cls]:.2f})")
    ranked = sorted(attribution.features, key=lambda f: -abs(f.values[cls]))[:10]
    for feature in ranked:
        print(f"  {feature.values[cls]:+.3f}  {feature.text}")
    if attribution.faithfulness:
        print(attribution.faithfulness.reading)
    flip = attribution.flip
    if flip and flip.words:
        print(f"Removing {', '.join(repr(w) for w in flip.words)} changes it to {flip.new_label}.")
    elif flip:
        print(f"No flip found removing up to {flip.searched} top words.")
    print(f"{attribution.method} ({attribution.context} context), "
          f"{attribution.model_calls} model calls, "
          f"{attribution.seconds:.2f} s")


def cmd_models(args: argparse.Namespace) -> int:
    reg = registry()
    if args.activate:
        from app.cli_record import log_model_activated

        reg.activate(args.activate)
        print(f"active model: {args.activate}", file=sys.stderr)
        stored = log_model_activated(args, reg.path_of(args.activate), args.activate)
        if stored:
            return stored
    records = reg.records()
    if args.json:
        print(json.dumps([r.to_dict() for r in records]))
        return 0
    if not records:
        print("no models yet: train one with `python main.py train`")
    for r in records:
        if r.problem:
            print(f"! {r.id}  damaged: {r.problem}")
            continue
        marker = "*" if r.active else " "
        scores = (f"acc {r.test_accuracy:.3f}  macro-F1 {r.test_macro_f1:.3f}"
                  if r.test_accuracy is not None else "")
        print(f"{marker} {r.id}  {r.created}  {r.training_data[:40]:<40}  {scores}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The headless demo: classify the sample cases with the active model."""
    cases = json.loads(SAMPLE_CASES.read_text(encoding="utf-8"))
    bench = _load_workbench(None)
    from app.casework import analyze

    print(f"Casewise — model {bench.model_id} ({', '.join(bench.labels)})\n")
    if bench.policy is not None:
        print(f"{bench.policy.guarantee}\n")
    analyses = analyze(bench, [c["text"] for c in cases])
    for case, analysis in zip(cases, analyses, strict=True):
        prediction, decision = analysis.prediction, analysis.decision
        print(f"{case['id']}: {case['text'][:90]}{'...' if len(case['text']) > 90 else ''}")
        print(f"  -> {_format_prediction(prediction)}")
        print(f"     {_format_decision(decision)}\n")
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    """No command: open the desktop window (it offers to train the default model when there
    is none). ``--screenshot DIR`` photographs it on a sample case instead. Qt is imported
    only here, so every other command runs without it."""
    if args.screenshot:
        from app.ui.screenshot import take_screenshots

        return take_screenshots(Path(args.screenshot))
    if not _has_display():
        return _headless_start(args)
    from app.ui.app import run_app

    return run_app(sys.argv[:1])


def _has_display() -> bool:
    """Whether a window can open: a display on Linux, or a Qt platform chosen explicitly."""
    import os

    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _headless_start(args: argparse.Namespace) -> int:
    """No screen (a server, a container, CI): say so, make sure a model exists, run the demo."""
    print("No display here, so the desktop window cannot open (run `xvfb-run python main.py` "
          "or set QT_QPA_PLATFORM=offscreen to force it). Running the headless demo instead.\n",
          file=sys.stderr)
    if registry().active_id() is None:
        print("No model yet: training the default model on the drug-review demo data "
              "(a few minutes on a laptop CPU).", file=sys.stderr)
        cmd_train(build_parser().parse_args(["train"]))  # a store warning is printed there
        print()
    return cmd_demo(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="casewise", description=__doc__)
    parser.set_defaults(handler=cmd_start, screenshot=None)
    parser.add_argument("--screenshot", metavar="DIR",
                        help="open the window on a sample case, save PNGs of it into DIR, exit")
    commands = parser.add_subparsers(title="commands")

    train = commands.add_parser("train", help="fine-tune a classifier (default: the demo data)")
    train.add_argument("--data", help="CSV, TSV or JSONL file of labelled texts")
    train.add_argument("--text-col", default="text", help="column with the text (default: text)")
    train.add_argument("--label-col", default="label",
                       help="column with the label (default: label)")
    train.add_argument("--test-data",
                       help="a separate test file (split into calibration and test)")
    train.add_argument("--encoding", help="file encoding when it is not UTF-8")
    train.add_argument("--epochs", type=int, help="maximum epochs (early stopping may stop sooner)")
    train.add_argument("--max-length", type=int, help="model window in tokens (default 256)")
    train.add_argument("--seed", type=int, help="random seed (default 13)")
    train.add_argument("--base-model", help="a local encoder directory to fine-tune instead of "
                       "the embedded all-MiniLM-L6-v2")
    train.add_argument("--no-activate", action="store_true", help="do not make it the active model")
    train.add_argument("--json", action="store_true", help="print the result as JSON")
    train.set_defaults(handler=cmd_train)
    add_record_options(train)

    predict = commands.add_parser("predict", help="classify a text or a file of texts")
    predict.add_argument("text", nargs="?", help="the text of one case")
    predict.add_argument("--file", help="CSV, TSV or JSONL file of cases")
    predict.add_argument("--text-col", help="column with the text (guessed when obvious)")
    predict.add_argument("--encoding", help="file encoding when it is not UTF-8")
    predict.add_argument("--model", help="model id (default: the active model)")
    predict.add_argument("--json", action="store_true", help="one JSON object per line")
    predict.set_defaults(handler=cmd_predict)
    add_record_options(predict)

    explain = commands.add_parser("explain", help="SHAP word attributions for one text")
    explain.add_argument("text", help="the text of one case")
    explain.add_argument("--class", dest="cls", help="class to explain (default: the predicted)")
    explain.add_argument("--budget", type=int, help="model evaluations (default grows with text)")
    explain.add_argument("--method", default="partition", choices=("partition", "permutation"),
                         help="shap's Partition explainer over a word tree (default) or its "
                              "Permutation explainer (tree-free Shapley values, slower)")
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

    models = commands.add_parser("models", help="list models; activate one")
    models.add_argument("--activate", metavar="ID", help="make this model the active one")
    models.add_argument("--json", action="store_true", help="print the list as JSON")
    models.set_defaults(handler=cmd_models)
    add_record_options(models)

    from app.cli_ask import add_ask_parser
    from app.cli_escalation import add_parsers
    from app.cli_export import add_export_parser
    from app.cli_llm import add_redact_parser
    from app.cli_store import add_store_parsers

    add_parsers(commands)
    add_ask_parser(commands)
    add_redact_parser(commands)
    add_store_parsers(commands)
    add_export_parser(commands)

    demo = commands.add_parser("demo", help="classify the sample cases (headless)")
    demo.set_defaults(handler=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except CasewiseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Cancelled:
        print("cancelled; nothing was saved", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("\ninterrupted; nothing was saved", file=sys.stderr)
        return 130
