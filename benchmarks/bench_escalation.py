"""Certified escalation against the rules a team would otherwise use, on held-out cases.

For each model: the policy fitted on its calibration split and scored on its test split, beside
"confidence >= 0.9" and "the loosest threshold whose calibration error is <= alpha" (no
guarantee), and the best coverage hindsight allows on the test split. Then 20 random re-splits
of calibration + test cases into halves: how often the AUTO error exceeded alpha (the guarantee
says at most about delta).

    .venv/bin/python benchmarks/bench_escalation.py --home demo=/path/to/CASEWISE_HOME ...

Each home's active model is used (train with `python main.py train` or bench_classifier.py
--keep HOME).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from models.classifier import CaseScores, Classifier
from models.escalation import EscalationSettings, fit_policy
from models.escalation_evidence import evaluate_policy
from models.registry import ModelRegistry
from models.risk_control import THRESHOLD_GRID, proportion_ci
from models.train_job import read_held_out

OUT = Path(__file__).resolve().parent / "out"


def held_out_scores(classifier: Classifier) -> dict[str, tuple[CaseScores, np.ndarray]]:
    """Scores of the calibration and test splits kept with the model (cached: one pass)."""
    cache = OUT / f"escalation-scores-{classifier.model_id}.npz"
    result = {}
    if cache.is_file():
        arrays = np.load(cache)
        for name in ("calibration", "test"):
            result[name] = (CaseScores(*(arrays[f"{name}_{k}"] for k in
                                         ("probabilities", "embeddings", "truncated",
                                          "n_tokens"))), arrays[f"{name}_truth"])
        return result
    flat = {}
    for name in ("calibration", "test"):
        texts, labels = read_held_out(classifier.path, name)
        scores = classifier.scores(texts)
        truth = np.array([classifier.labels.index(y) for y in labels])
        result[name] = (scores, truth)
        flat.update({f"{name}_probabilities": scores.probabilities,
                     f"{name}_embeddings": scores.embeddings,
                     f"{name}_truncated": scores.truncated, f"{name}_n_tokens": scores.n_tokens,
                     f"{name}_truth": truth})
    OUT.mkdir(exist_ok=True)
    np.savez(cache, **flat)
    return result


def subset(scores: CaseScores, rows: np.ndarray) -> CaseScores:
    return CaseScores(scores.probabilities[rows], scores.embeddings[rows],
                      scores.truncated[rows], scores.n_tokens[rows])


def rule_numbers(accept: np.ndarray, correct: np.ndarray) -> dict:
    n, wrong = int(accept.sum()), int((accept & ~correct).sum())
    rest, rest_wrong = int((~accept).sum()), int((~accept & ~correct).sum())
    return {"coverage": n / len(correct), "n_auto": n, "auto_error": wrong / n if n else None,
            "ci": proportion_ci(wrong, n),
            "escalated_error": rest_wrong / rest if rest else None}


def calibration_picked_threshold(confidence: np.ndarray, correct: np.ndarray,
                                 alpha: float) -> float | None:
    """The loosest grid threshold whose calibration error is <= alpha: no test, no bound."""
    passing = [t for t in THRESHOLD_GRID if (confidence >= t).any()
               and (~correct[confidence >= t]).mean() <= alpha]
    return min(passing) if passing else None


def hindsight_coverage(confidence: np.ndarray, correct: np.ndarray, alpha: float) -> float:
    """The most a confidence threshold could have accepted on these cases with error <= alpha."""
    best = 0.0
    for t in THRESHOLD_GRID:
        accept = confidence >= t
        if accept.any() and (~correct[accept]).mean() <= alpha:
            best = max(best, accept.mean())
    return best


def compare(classifier, cal, test, settings) -> list[tuple[str, dict]]:
    (cal_scores, cal_truth), (test_scores, test_truth) = cal, test
    policy = fit_policy(cal_scores, cal_truth, classifier.labels, classifier.model_id, settings)
    evidence = evaluate_policy(policy, test_scores, test_truth)
    conf, correct = test_scores.probabilities.max(1), test_scores.probabilities.argmax(1) == \
        test_truth
    cal_conf = cal_scores.probabilities.max(1)
    cal_correct = cal_scores.probabilities.argmax(1) == cal_truth
    picked = calibration_picked_threshold(cal_conf, cal_correct, settings.alpha)
    rows = [
        ("certified policy (LTT + sets + checks)", {
            "coverage": evidence["coverage"], "n_auto": evidence["n_auto"],
            "auto_error": evidence["auto_error"], "ci": evidence["auto_error_ci"],
            "threshold": policy.threshold, "escalated_error": evidence["escalated_error"],
            "evidence": evidence}),
        ("confidence >= 0.9", {**rule_numbers(conf >= 0.9, correct), "threshold": 0.9}),
        ("threshold picked on calibration (no test)", {
            **rule_numbers(conf >= (picked if picked is not None else 2), correct),
            "threshold": picked}),
        ("hindsight: best threshold on the test split", {
            "coverage": hindsight_coverage(conf, correct, settings.alpha), "n_auto": None,
            "auto_error": None, "ci": None, "threshold": None}),
    ]
    return rows


def resplits(classifier, cal, test, settings, n: int = 20, seed: int = 0) -> dict:
    """Pool calibration and test, split in random halves n times; fit on one, score the other."""
    scores = CaseScores(*(np.concatenate([getattr(cal[0], f), getattr(test[0], f)])
                          for f in ("probabilities", "embeddings", "truncated", "n_tokens")))
    truth = np.concatenate([cal[1], test[1]])
    rng = np.random.default_rng(seed)
    out = {"certified policy": [], "confidence >= 0.9": [], "picked on calibration": []}
    for _ in range(n):
        order = rng.permutation(len(truth))
        a, b = order[: len(order) // 2], order[len(order) // 2 :]
        rows = dict(compare(classifier, (subset(scores, a), truth[a]),
                            (subset(scores, b), truth[b]), settings))
        out["certified policy"].append(rows["certified policy (LTT + sets + checks)"])
        out["confidence >= 0.9"].append(rows["confidence >= 0.9"])
        out["picked on calibration"].append(rows["threshold picked on calibration (no test)"])
    return out


def sets_row(name: str, e: dict) -> str:
    lac, aps = e["sets"]["lac"], e["sets"]["aps"]
    return (f"| {name} | {e['accuracy']:.3f} | {e['aurc']:.3f} | {lac['coverage']:.1%} / "
            f"{lac['size_mean']:.2f} | {aps['coverage']:.1%} / {aps['size_mean']:.2f} | "
            f"{e['escalation_reasons']} |")


def resplit_row(name: str, rule: str, results: list[dict], alpha: float) -> str:
    errors = [r["auto_error"] for r in results if r["auto_error"] is not None]
    over = sum(e > alpha for e in errors)
    return (f"| {name} | {rule} | {np.mean([r['coverage'] for r in results]):.1%} | "
            f"{fmt(float(np.mean(errors)) if errors else None)} | {over}/{len(results)} |")


def fmt(value, pattern="{:.1%}") -> str:
    return "–" if value is None else pattern.format(value)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--home", action="append", required=True, metavar="NAME=PATH")
    parser.add_argument("--alpha", type=float, default=0.10)
    parser.add_argument("--delta", type=float, default=0.10)
    parser.add_argument("--resplits", type=int, default=20)
    args = parser.parse_args()
    settings = EscalationSettings(alpha=args.alpha, delta=args.delta)
    print(f"alpha = {args.alpha}, delta = {args.delta}\n")
    print("| data | rule | threshold | coverage (AUTO) | AUTO error [95 % CI] | "
          "escalated error |")
    print("|---|---|---|---|---|---|")
    sets_rows, split_rows = [], []
    for item in args.home:
        name, home = item.split("=", 1)
        classifier = Classifier.load(ModelRegistry(Path(home)).active_path())
        splits = held_out_scores(classifier)
        cal, test = splits["calibration"], splits["test"]
        for rule, r in compare(classifier, cal, test, settings):
            ci = ("" if not r.get("ci") or not r["n_auto"]
                  else f" [{r['ci'][0]:.1%}, {r['ci'][1]:.1%}]")
            print(f"| {name} (cal {len(cal[1])}, test {len(test[1])}) | {rule} | "
                  f"{fmt(r['threshold'], '{:.2f}')} | {fmt(r['coverage'])} | "
                  f"{fmt(r['auto_error'])}{ci} | {fmt(r.get('escalated_error'))} |")
            if "evidence" in r:
                sets_rows.append(sets_row(name, r["evidence"]))
        for rule, results in resplits(classifier, cal, test, settings, args.resplits).items():
            split_rows.append(resplit_row(name, rule, results, args.alpha))
    print("\n| data | accuracy | AURC | LAC sets: coverage / mean size | "
          "APS sets: coverage / mean size | escalation reasons (test cases) |")
    print("|---|---|---|---|---|---|")
    print("\n".join(sets_rows))
    print(f"\n{args.resplits} random re-splits of calibration + test into halves:\n")
    print("| data | rule | mean coverage | mean AUTO error | re-splits with AUTO error > alpha |")
    print("|---|---|---|---|---|")
    print("\n".join(split_rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
