"""How an escalation policy behaves on held-out cases: the numbers `evaluate` prints, the model
card keeps and the benchmark compares."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.classifier import CaseScores
from models.escalation import EscalationPolicy
from models.risk_control import SET_SCORES, ConformalSets, aurc, proportion_ci, risk_coverage_curve


def evaluate_policy(policy: EscalationPolicy, scores: CaseScores, truth: np.ndarray) -> dict:
    """Coverage, error among AUTO and escalated cases (with a 95 % interval), AURC, and the
    conformal sets' coverage and size, on cases the policy was not fitted on."""
    truth = np.asarray(truth, dtype=int)
    decisions = policy.decide(scores)
    auto = np.array([d.auto for d in decisions])
    correct = scores.probabilities.argmax(1) == truth
    n_auto, auto_wrong = int(auto.sum()), int((auto & ~correct).sum())
    n_escalated, escalated_wrong = int((~auto).sum()), int((~auto & ~correct).sum())
    sets = np.array([[lb in d.prediction_set for lb in policy.labels] for d in decisions])
    reasons: dict[str, int] = {}
    for decision in decisions:
        for code in decision.reason_codes:
            reasons[code] = reasons.get(code, 0) + 1
    return {
        "policy_id": policy.policy_id,
        "alpha": policy.settings.alpha,
        "delta": policy.settings.delta,
        "threshold": policy.threshold,
        "n_calibration": policy.n_calibration,
        "n_test": len(truth),
        "coverage": n_auto / len(truth),
        "n_auto": n_auto,
        "auto_error": auto_wrong / n_auto if n_auto else None,
        "auto_error_ci": list(proportion_ci(auto_wrong, n_auto)),
        "escalated_error": escalated_wrong / n_escalated if n_escalated else None,
        "accuracy": float(correct.mean()),
        "aurc": aurc(scores.probabilities.max(1), correct),
        "set_score": policy.settings.set_score,
        "set_coverage": float(sets[np.arange(len(truth)), truth].mean()),
        "set_size_mean": float(sets.sum(1).mean()),
        "sets": {score: _set_numbers(policy, scores, truth, score) for score in SET_SCORES},
        "escalation_reasons": reasons,
        "guarantee": policy.guarantee,
    }


def _set_numbers(policy: EscalationPolicy, scores: CaseScores, truth: np.ndarray,
                 score: str) -> dict:
    # The policy's own score is already fitted; the other is fitted for comparison only.
    fitted = policy.sets if score == policy.settings.set_score else ConformalSets(
        policy.data.probabilities, policy.data.truth, policy.settings.alpha, score)
    sets = fitted.predict(scores.probabilities)
    return {"coverage": float(sets[np.arange(len(truth)), truth].mean()),
            "size_mean": float(sets.sum(1).mean()),
            "singletons": float((sets.sum(1) == 1).mean())}


def risk_coverage_plot(policy: EscalationPolicy, scores: CaseScores, truth: np.ndarray,
                       path: Path, evidence: dict | None = None) -> Path:
    """The risk-coverage curve of the model's confidence, the bound, and the policy's point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    truth = np.asarray(truth, dtype=int)
    correct = scores.probabilities.argmax(1) == truth
    coverage, risk = risk_coverage_curve(scores.probabilities.max(1), correct)
    evidence = evidence or evaluate_policy(policy, scores, truth)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    ax.plot(coverage, risk, color="#2166ac", label=f"confidence ranking (AURC "
            f"{aurc(scores.probabilities.max(1), correct):.3f})")
    ax.axhline(policy.settings.alpha, color="#b2182b", linestyle="--",
               label=f"bound α = {policy.settings.alpha:.2f}")
    if evidence["n_auto"]:
        ax.plot([evidence["coverage"]], [evidence["auto_error"]], "o", color="#b2182b",
                label=f"policy: {evidence['coverage']:.0%} automatic, "
                      f"{evidence['auto_error']:.1%} wrong")
    ax.set_xlabel("coverage (share of cases decided automatically)")
    ax.set_ylabel("error among accepted cases")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, max(0.5, float(risk.max()) + 0.05))
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(f"Risk–coverage on {len(truth)} test cases")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(path.name + ".partial")
    fig.savefig(scratch, format="png")
    plt.close(fig)
    scratch.replace(path)
    return path
