"""Certified escalation: decide a case automatically only where the error rate is bounded.

A policy is fitted on the calibration split that training set aside (or on newly reviewed
cases). A case is decided automatically (AUTO) when its calibrated confidence reaches the
threshold certified by Learn-Then-Test (``models.risk_control``), its conformal prediction set
holds one label, it was read whole, it resembles the calibration cases (``models.ood``), and its
label is not one the reviewer always wants to see. Everything else is escalated, with every
reason that fired. The threshold is certified for exactly that rule: the other checks are
applied to the calibration cases before the test, so the bound covers the AUTO cases as a whole.

Policies live beside the model in ``policies/<id>/`` with a manifest; a refit adds a new one
and keeps the old ones as the record.

Loading a policy checks that its data still give its threshold. The fit behind that check
(MAPIE's conformal quantile and Learn-Then-Test) is kept in ``FITTED_FILE`` beside the manifest,
keyed by the policy's file digests, the source of the fitting code and the versions of the
libraries it uses: while none of them changes, a load reuses it and imports neither MAPIE nor
scikit-learn (about 0.7 s of every process that decides a case); when one changes, the policy
is refitted and checked as before.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
from dataclasses import InitVar, asdict, dataclass, field
from dataclasses import replace as dc_replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from models.artifact import (
    FITTED_FILE,
    MANIFEST_FILE,
    read_json,
    verify_artifact,
    write_artifact,
    write_json,
    write_json_atomically,
)
from models.classifier import CaseScores
from models.errors import DataError, ModelIntegrityError
from models.manifest_signature import POLICIES_DIR, ManifestTrust, policy_subject
from models.ood import NeighbourDistance
from models.registry import policy_dirs
from models.risk_control import (
    SET_SCORES,
    ConformalSets,
    ThresholdTest,
    certify_threshold,
    min_certifiable,
)
from models.scripts import seen_scripts, unseen_script
from models.types import AUTO, ESCALATE, EscalationDecision, Prediction

POLICY_FILE = "policy.json"
DATA_FILE = "calibration.npz"
# A policy's fitted pieces (FITTED_FILE, a cache no manifest lists) are reused while the inputs
# named by ``fit_key`` are unchanged and, for the application, while their HMAC verifies.
FIT_MODULES = ("models.escalation", "models.risk_control", "models.ood")
FIT_LIBRARIES = ("mapie", "scikit-learn", "scipy", "numpy")


@dataclass(frozen=True)
class EscalationSettings:
    """What the reviewer chooses: the error bound, its confidence, and labels to always see."""

    alpha: float = 0.10
    delta: float = 0.10
    set_score: str = "lac"
    always_review: tuple[str, ...] = ()
    ood_false_alarm: float = 0.01

    def check(self, labels: list[str]) -> None:
        for name in ("alpha", "delta", "ood_false_alarm"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise DataError(f"{name} must be between 0 and 1 (exclusive), not {value}.")
        if self.set_score not in SET_SCORES:
            raise DataError(f"The set score must be one of {SET_SCORES}, not {self.set_score!r}.")
        unknown = sorted(set(self.always_review) - set(labels))
        if unknown:
            raise DataError(f"Always-review labels {unknown} are not the model's labels {labels}.")


@dataclass
class CalibrationData:
    """The calibration cases as the model saw them: enough to refit or re-check the policy."""

    probabilities: np.ndarray
    truth: np.ndarray
    embeddings: np.ndarray
    truncated: np.ndarray

    @classmethod
    def of(cls, scores: CaseScores, truth: np.ndarray) -> CalibrationData:
        return cls(scores.probabilities, np.asarray(truth, dtype=int), scores.embeddings,
                   scores.truncated)


@dataclass
class EscalationPolicy:
    model_id: str
    labels: list[str]
    settings: EscalationSettings
    data: CalibrationData
    source: str
    created: str
    policy_id: str = ""
    # The pieces ``fitted_state`` gave for the same data and code: used instead of a refit.
    fitted: InitVar[dict | None] = None
    test: ThresholdTest = field(init=False)
    sets: ConformalSets = field(init=False)
    ood: NeighbourDistance = field(init=False)

    def __post_init__(self, fitted: dict | None) -> None:
        self.settings.check(self.labels)
        _check_calibration(self.data, self.labels)
        self.ood = NeighbourDistance(self.data.embeddings,
                                     false_alarm=self.settings.ood_false_alarm)
        if fitted is not None and fitted.get("sets") is not None:
            self.sets = ConformalSets.from_state(fitted["sets"])
            self.test = ThresholdTest.from_dict(fitted["threshold_test"])
            return
        self.sets = ConformalSets(self.data.probabilities, self.data.truth,
                                  self.settings.alpha, self.settings.set_score)
        # The calibration cases' own checks, with each case's distance taken leave-one-out.
        eligible = np.array([not reasons for reasons in self._other_reasons(
            self.data.probabilities, self.sets.predict(self.data.probabilities),
            self.data.truncated, self.ood.calibration_scores)])
        self.test = certify_threshold(self.data.probabilities.max(1),
                                      self.data.probabilities.argmax(1) == self.data.truth,
                                      self.settings.alpha, self.settings.delta, eligible)

    @property
    def threshold(self) -> float | None:
        return self.test.threshold

    def fitted_state(self) -> dict:
        """What a load needs besides the data to rebuild this policy without refitting."""
        return {"sets": self.sets.state(), "threshold_test": self.test.to_dict()}

    @property
    def n_calibration(self) -> int:
        return len(self.data.truth)

    @property
    def guarantee(self) -> str:
        s, n = self.settings, self.n_calibration
        day = self.created[:10]
        if self.threshold is not None:
            return (f"Among cases decided automatically, at most {s.alpha:.0%} are wrong, with "
                    f"{1 - s.delta:.0%} confidence: certified on {n} calibration cases "
                    f"({self.source}, {day}).")
        needed = min_certifiable(s.alpha, s.delta)
        if n < needed:
            return (f"Nothing is certified: {n} calibration cases are too few to bound the "
                    f"error at {s.alpha:.0%} with {1 - s.delta:.0%} confidence (at least "
                    f"{needed} are needed), so every case is escalated.")
        return (f"Nothing is certified: on {n} calibration cases ({self.source}, {day}) no "
                f"confidence threshold keeps the error among accepted cases under "
                f"{s.alpha:.0%} with {1 - s.delta:.0%} confidence, so every case is escalated.")

    def decide(self, scores: CaseScores, n_tokens_read: int | None = None
               ) -> list[EscalationDecision]:
        """One decision per row of ``scores``."""
        probs = np.atleast_2d(scores.probabilities)
        ood_scores = self.ood.score(scores.embeddings)
        sets = self.sets.predict(probs)
        others = self._other_reasons(probs, sets, scores.truncated, ood_scores,
                                     scores.n_tokens, n_tokens_read)
        decisions = []
        for row, reasons in enumerate(others):
            confidence = float(probs[row].max())
            reasons = self._threshold_reasons(confidence) + reasons
            decisions.append(EscalationDecision(
                decision=ESCALATE if reasons else AUTO,
                reasons=tuple(text for _, text in reasons),
                reason_codes=tuple(code for code, _ in reasons),
                label=self.labels[int(probs[row].argmax())], confidence=confidence,
                threshold=self.threshold, alpha=self.settings.alpha,
                delta=self.settings.delta,
                prediction_set=self._labels_in(sets[row]),
                set_score=self.settings.set_score, ood_score=float(ood_scores[row]),
                ood_threshold=self.ood.threshold, n_calibration=self.n_calibration,
                calibrated_on=self.created, policy_id=self.policy_id,
                guarantee=self.guarantee))
        return decisions

    def _threshold_reasons(self, confidence: float) -> list[tuple[str, str]]:
        if self.threshold is None:
            return [("uncertified", "no confidence threshold is certified for this model "
                                    "(see the guarantee)")]
        if confidence < self.threshold:
            return [("low_confidence", f"confidence {confidence:.2f} is below the certified "
                                       f"threshold {self.threshold:.2f}")]
        return []

    def _labels_in(self, set_row: np.ndarray) -> tuple[str, ...]:
        return tuple(lb for lb, kept in zip(self.labels, set_row, strict=True) if kept)

    def _other_reasons(self, probs: np.ndarray, sets: np.ndarray, truncated: np.ndarray,
                       ood_scores: np.ndarray, n_tokens: np.ndarray | None = None,
                       n_tokens_read: int | None = None) -> list[list[tuple[str, str]]]:
        """The reasons other than confidence, as (code, sentence) pairs, row by row."""
        level = 1 - self.settings.alpha
        out = []
        for row in range(len(probs)):
            reasons = []
            in_set = self._labels_in(sets[row])
            if len(in_set) != 1:
                reasons.append(("ambiguous", f"the {level:.0%} prediction set holds "
                                f"{len(in_set)} labels" + (f" ({', '.join(in_set)})"
                                                           if in_set else "")))
            if truncated[row]:
                length = (f" ({int(n_tokens[row])} tokens, {n_tokens_read} read)"
                          if n_tokens is not None and n_tokens_read else "")
                reasons.append(("truncated", f"the text is longer than the model reads{length}:"
                                             " its end was not read"))
            if ood_scores[row] > self.ood.threshold:
                reasons.append(("unusual", f"the text is unlike the calibration cases "
                                f"(distance {ood_scores[row]:.3f} > {self.ood.threshold:.3f})"))
            label = self.labels[int(probs[row].argmax())]
            if label in self.settings.always_review:
                reasons.append(("always_review", f"label '{label}' always needs review "
                                                 "(a setting)"))
            out.append(reasons)
        return out

    def to_record(self) -> dict:
        return {
            "format": 1, "policy_id": self.policy_id, "model_id": self.model_id,
            "labels": self.labels, "settings": asdict(self.settings), "source": self.source,
            "created": self.created, "n_calibration": self.n_calibration,
            "threshold": self.threshold, "guarantee": self.guarantee,
            "ood": {"k": self.ood.k, "threshold": self.ood.threshold},
            "threshold_test": self.test.to_dict(),
        }


def no_policy_decision(label: str, confidence: float) -> EscalationDecision:
    """What a model without a fitted policy answers: escalate, and say how to fix it."""
    return EscalationDecision(
        decision=ESCALATE, reasons=("no escalation policy is fitted for this model: run "
                                    "`python main.py calibrate`",),
        reason_codes=("no_policy",), label=label, confidence=confidence, threshold=None,
        alpha=None, delta=None, prediction_set=(), set_score="", ood_score=float("nan"),
        ood_threshold=float("nan"), n_calibration=0, calibrated_on="", policy_id="",
        guarantee="Nothing is certified: no escalation policy is fitted for this model.")


def predict_and_decide(classifier, policy: EscalationPolicy | None, texts: list[str],
                       progress=None, cancel=None) -> list[tuple[Prediction, EscalationDecision]]:
    """Each case's prediction (with its conformal set) and escalation decision, in one pass."""
    scores = classifier.scores(texts, progress=progress, cancel=cancel)
    predictions = classifier.predictions_of(scores)
    if policy is None:
        return [(p, no_policy_decision(p.label, p.probabilities[p.label])) for p in predictions]
    decisions = policy.decide(scores, classifier.read_limit)
    seen = seen_scripts(classifier.path)
    if seen is not None:
        decisions = [_check_script(d, text, seen) for d, text in zip(decisions, texts,
                                                                      strict=True)]
    return [(dc_replace(p, prediction_set=d.prediction_set), d)
            for p, d in zip(predictions, decisions, strict=True)]


def _check_script(decision: EscalationDecision, text: str,
                  seen: frozenset[str]) -> EscalationDecision:
    """Escalate a case written in a script the calibration cases never contained."""
    script = unseen_script(text, seen)
    if script is None:
        return decision
    reason = (f"the text is written in {script.title()} script, which the calibration cases "
              "never contained: nothing the guarantee rests on was measured on such text")
    return dc_replace(decision, decision=ESCALATE, reasons=(*decision.reasons, reason),
                      reason_codes=(*decision.reason_codes, "unusual_script"))


def _check_calibration(data: CalibrationData, labels: list[str]) -> None:
    n = len(data.truth)
    if n < 2:
        raise DataError(f"{n} calibration case(s) cannot calibrate anything: give at least "
                        "two, and for a guarantee a few hundred, labelled cases.")
    present = sorted({labels[i] for i in data.truth})
    if len(present) < 2:
        raise DataError(f"Every calibration case has the label '{present[0]}': a policy "
                        "fitted on them would say nothing about the other labels. Calibrate "
                        "on cases that cover the labels the model predicts.")


def fit_policy(scores: CaseScores, truth: np.ndarray, labels: list[str], model_id: str,
               settings: EscalationSettings | None = None, source: str = "calibration split",
               created: str | None = None) -> EscalationPolicy:
    created = created or datetime.now(UTC).replace(microsecond=0).isoformat()
    return EscalationPolicy(model_id, list(labels), settings or EscalationSettings(),
                            CalibrationData.of(scores, truth), source, created)


def save_policy(policy: EscalationPolicy, model_dir: Path,
                trust: ManifestTrust | None = None) -> Path:
    """Write the policy beside the model, atomically; older policies stay as the record.
    With ``trust``, its key signs the policy's manifest before it is published."""
    stamp = datetime.fromisoformat(policy.created).strftime("%Y%m%d-%H%M%S")
    parent = Path(model_dir) / POLICIES_DIR
    taken = {p.name for p in parent.iterdir()} if parent.is_dir() else set()
    policy_id = next(f"{stamp}-{i}" for i in range(1, 10_000) if f"{stamp}-{i}" not in taken)
    policy.policy_id = policy_id

    def fill(directory: Path) -> None:
        write_json(directory / POLICY_FILE, policy.to_record())
        d = policy.data
        np.savez(directory / DATA_FILE, probabilities=d.probabilities, truth=d.truth,
                 embeddings=d.embeddings, truncated=d.truncated)

    sign = None if trust is None else (
        lambda scratch, name: trust.sign(scratch, policy_subject(policy.model_id, name)))
    directory = write_artifact(parent, fill, lambda _: policy_id, sign)
    _write_fitted(directory, policy, seal=_seal(trust))
    return directory


def load_policy(model_dir: Path, model_id: str, labels: list[str],
                policy_dir: Path | None = None,
                trust: ManifestTrust | None = None) -> EscalationPolicy | None:
    """The newest policy of the model (or the one asked for); None if none was fitted.
    With ``trust`` (every application load), the policy must be signed by one of its keys
    and its kept fit must carry that key's seal."""
    dirs = policy_dirs(model_dir)
    if policy_dir is None and not dirs:
        return None
    directory = Path(policy_dir or dirs[-1])
    digests = verify_artifact(directory, trust=trust,
                              subject=policy_subject(model_id, directory.name))
    record = read_json(directory / POLICY_FILE)
    if record["labels"] != list(labels) or record["model_id"] != model_id:
        raise ModelIntegrityError(
            f"The escalation policy {directory.name} was fitted for model "
            f"{record['model_id']} with labels {record['labels']}, not for model {model_id} "
            f"with labels {list(labels)}. Refit it: `python main.py calibrate`.")
    with np.load(directory / DATA_FILE) as arrays:
        data = CalibrationData(arrays["probabilities"], arrays["truth"], arrays["embeddings"],
                               arrays["truncated"])
    settings = record["settings"]
    settings["always_review"] = tuple(settings["always_review"])
    fitted = _read_fitted(directory, digests, record, _seal(trust))
    policy = EscalationPolicy(model_id, list(labels), EscalationSettings(**settings), data,
                              record["source"], record["created"], record["policy_id"], fitted)
    if policy.threshold != record["threshold"]:
        raise ModelIntegrityError(f"The policy {directory.name} no longer reproduces its "
                                  "threshold from its own data; refit it.")
    if fitted is None:
        _write_fitted(directory, policy, digests, _seal(trust))
    return policy


def policy_history(model_dir: Path) -> list[dict]:
    """Every policy fitted for the model, oldest first (the record a refit keeps)."""
    return [json.loads((d / POLICY_FILE).read_text(encoding="utf-8"))
            for d in policy_dirs(model_dir) if (d / POLICY_FILE).is_file()]


def fit_key(digests: dict[str, str]) -> dict:
    """Everything a fitted policy depends on besides chance: the SHA-256 of the policy's files
    (as verified against its manifest), of the fitting code, and the libraries' versions."""
    from importlib.metadata import PackageNotFoundError, version

    code = hashlib.sha256()
    for name in FIT_MODULES:
        module = sys.modules.get(name)
        if module is None or not getattr(module, "__file__", None):
            return {}
        code.update(Path(module.__file__).read_bytes())
    libraries = {}
    for name in FIT_LIBRARIES:
        try:
            libraries[name] = version(name)
        except PackageNotFoundError:
            libraries[name] = None
    return {"format": 1, "files": dict(sorted(digests.items())), "code": code.hexdigest(),
            "libraries": libraries}


def _seal(trust: ManifestTrust | None) -> bytes | None:
    return trust.seal_key() if trust is not None else None


def _fitted_mac(seal: bytes, kept: dict) -> str:
    """An HMAC over the kept fit: no manifest lists the file, so without it whoever can write
    the policy's folder could change the conformal quantile and with it what is escalated."""
    body = json.dumps({k: v for k, v in kept.items() if k != "mac"}, sort_keys=True,
                      separators=(",", ":"))
    return hmac.new(seal, body.encode("utf-8"), hashlib.sha256).hexdigest()


def _read_fitted(directory: Path, digests: dict[str, str], record: dict,
                 seal: bytes | None = None) -> dict | None:
    """The kept fit of the policy in ``directory`` if it was made from the same inputs (and,
    with ``seal``, kept by a holder of the key)."""
    try:
        kept = json.loads((directory / FITTED_FILE).read_text(encoding="utf-8"))
        if seal is not None and not hmac.compare_digest(str(kept.get("mac")),
                                                        _fitted_mac(seal, kept)):
            return None
        key = fit_key(digests)
        sets = kept.get("sets")
        if (not key or kept.get("key") != key or sets is None
                or kept["threshold_test"]["threshold"] != record["threshold"]
                or sets["score"] != record["settings"]["set_score"]
                or sets["n_classes"] != len(record["labels"])):
            return None
        return kept
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _write_fitted(directory: Path, policy: EscalationPolicy,
                  digests: dict[str, str] | None = None, seal: bytes | None = None) -> None:
    """Keep the policy's fit for the next load (nothing is kept for APS sets, which MAPIE
    refits; nothing either when the directory is read-only)."""
    state = policy.fitted_state()
    if state["sets"] is None:
        return
    try:
        if digests is None:
            digests = read_json(directory / MANIFEST_FILE)["sha256"]
        key = fit_key(digests)
        if key:
            kept = {"key": key, **state}
            if seal is not None:
                kept["mac"] = _fitted_mac(seal, kept)
            write_json_atomically(directory / FITTED_FILE, kept)
    except (OSError, KeyError, ModelIntegrityError):
        pass
