"""Which confidence score ranks right and wrong answers best, and decides the most cases at the
guarantee (issue 16, part 3)?

    .venv/bin/python benchmarks/bench_confidence_scores.py [MODEL_DIR ...]

For a trained model (default: the active model of $CASEWISE_HOME), its calibration and test
splits (kept with the model) are scored once. Each candidate confidence is then put through
the escalation policy's own certification (``models.risk_control.certify_threshold``, Learn-Then-
Test on the calibration split only, with the policy's other checks — a one-label conformal set,
read whole, not unusual — fixed before the test, exactly as ``EscalationPolicy`` does for the
calibrated maximum probability), and judged on the test split: AURC (area under the risk-
coverage curve, lower is better), the certified threshold, the coverage of AUTO cases and their
error with a 95 % interval.

Candidates: the calibrated maximum probability (what the policy certifies), the margin between
the two most probable labels, and one minus the normalised entropy. The table goes to stdout
and to benchmarks/out/confidence_scores.md.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from models.classifier import Classifier
from models.escalation import fit_policy
from models.risk_control import aurc, certify_threshold, proportion_ci
from models.train_job import quiet_metrics, read_held_out

OUT = Path(__file__).resolve().parent / "out" / "confidence_scores.md"
HEADER = ["model", "confidence score", "AURC (test)", "certified threshold",
          "coverage (AUTO, test)", "AUTO error [95 % CI]"]


def candidates(probabilities: np.ndarray) -> dict[str, np.ndarray]:
    ordered = np.sort(probabilities, axis=1)
    k = probabilities.shape[1]
    entropy = -(probabilities * np.log(np.clip(probabilities, 1e-12, 1))).sum(1)
    return {
        "max probability (the policy's)": ordered[:, -1],
        "margin (top two)": ordered[:, -1] - ordered[:, -2],
        "1 - normalised entropy": 1 - entropy / np.log(k),
    }


def scored(classifier: Classifier, model_dir: Path, split: str):
    texts, labels = read_held_out(model_dir, split)
    index = {label: i for i, label in enumerate(classifier.labels)}
    return classifier.scores(texts), np.array([index[y] for y in labels])


def eligible_rows(policy, scores) -> np.ndarray:
    """The policy's checks other than confidence, row by row (True: none fired)."""
    probabilities = scores.probabilities
    reasons = policy._other_reasons(probabilities, policy.sets.predict(probabilities),
                                    scores.truncated, policy.ood.score(scores.embeddings))
    return np.array([not r for r in reasons])


def rows_for(model_dir: Path) -> list[list[str]]:
    classifier = Classifier.load(model_dir, verify=False)
    calibration, cal_truth = scored(classifier, model_dir, "calibration")
    test, test_truth = scored(classifier, model_dir, "test")
    with quiet_metrics():
        policy = fit_policy(calibration, cal_truth, classifier.labels, model_dir.name)
    settings = policy.settings
    cal_ok = calibration.probabilities.argmax(1) == cal_truth
    test_ok = test.probabilities.argmax(1) == test_truth
    # The calibration cases' own checks, each distance left-one-out, as the policy fits them.
    cal_eligible = np.array([not r for r in policy._other_reasons(
        calibration.probabilities, policy.sets.predict(calibration.probabilities),
        calibration.truncated, policy.ood.calibration_scores)])
    test_eligible = eligible_rows(policy, test)
    test_scores = candidates(test.probabilities)
    rows = []
    for name, cal_conf in candidates(calibration.probabilities).items():
        with quiet_metrics():
            threshold = certify_threshold(cal_conf, cal_ok, settings.alpha, settings.delta,
                                          cal_eligible).threshold
        conf = test_scores[name]
        auto = (conf >= threshold) & test_eligible if threshold is not None else \
            np.zeros(len(conf), bool)
        n_auto, wrong = int(auto.sum()), int((auto & ~test_ok).sum())
        low, high = proportion_ci(wrong, n_auto) if n_auto else (0.0, 1.0)
        error = (f"{wrong / n_auto:.1%} ({wrong}) [{low:.1%}, {high:.1%}]" if n_auto else "–")
        rows.append([model_dir.name, name, f"{aurc(conf, test_ok):.4f}",
                     "none" if threshold is None else f"{threshold:.2f}",
                     f"{n_auto / len(conf):.1%} ({n_auto})", error])
    return rows


def table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def main(argv: list[str]) -> None:
    if not argv:
        models = Path(os.environ.get("CASEWISE_HOME", "~/.casewise")).expanduser() / "models"
        argv = [str(models / json.loads((models / "active.json").read_text())["id"])]
    dirs = [Path(a) for a in argv]
    rows: list[list[str]] = []
    for model_dir in dirs:
        rows += rows_for(model_dir)
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(table(rows) + "\n", encoding="utf-8")
    print(table(rows))


if __name__ == "__main__":
    main(sys.argv[1:])
