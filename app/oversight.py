"""The oversight view's numbers: per ISO week and per model, how many cases were decided and
escalated, how often the text was unusual, how often reviewers overrode the model, and — for
the model at work — the audited automatic decisions with the guarantee monitor's lower bound
of their error rate at the end of the week, against α."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

# The columns every view of the weeks shows (the window's table, the PDF's).
HEADERS = ("week", "model", "decided", "escalated", "unusual", "reviewed", "overridden",
           "audited (wrong)", "AUTO error ≥")


def percent(value: float | None) -> str:
    return "" if value is None else f"{value:.0%}"


@dataclass(frozen=True)
class OversightWeek:
    week: str  # ISO week, e.g. 2026-W49
    model_id: str
    decided: int
    escalated: int
    unusual: int
    reviewed: int  # accepts and overrides signed that week
    overridden: int
    audited: int = 0  # audited AUTO decisions reviewed that week (the model at work only)
    audited_wrong: int = 0
    lower_bound: float | None = None  # the monitor's bound after that week's audited cases

    @property
    def escalation_rate(self) -> float | None:
        return self.escalated / self.decided if self.decided else None

    @property
    def unusual_rate(self) -> float | None:
        return self.unusual / self.decided if self.decided else None

    @property
    def override_rate(self) -> float | None:
        return self.overridden / self.reviewed if self.reviewed else None

    def cells(self) -> tuple[str, ...]:
        """The row under ``HEADERS``, as text."""
        audited = f"{self.audited} ({self.audited_wrong})" if self.audited else ""
        bound = "" if self.lower_bound is None else f"{self.lower_bound:.1%}"
        return (self.week, self.model_id, str(self.decided), percent(self.escalation_rate),
                percent(self.unusual_rate), str(self.reviewed), percent(self.override_rate),
                audited, bound)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "escalation_rate": self.escalation_rate,
                "unusual_rate": self.unusual_rate, "override_rate": self.override_rate}


@dataclass(frozen=True)
class WatchedPolicy:
    """Whose audited decisions the monitor reads: a model, its policy and the policy's α, δ."""

    model_id: str
    policy_id: str
    alpha: float
    delta: float

    @classmethod
    def of_bench(cls, bench) -> WatchedPolicy | None:
        policy = getattr(bench, "policy", None)
        if policy is None or policy.threshold is None:
            return None
        return cls(bench.model_id, policy.policy_id, policy.settings.alpha,
                   policy.settings.delta)


def oversight_weeks(store, watched: WatchedPolicy | None) -> list[OversightWeek]:
    """Every week's row; the watched model's rows carry its policy's audited decisions and
    the monitor's bound (as ``audit guarantee`` reads it)."""
    from models.guarantee_monitor import lower_bounds

    rows = {(r["week"], r["model_id"]): r for r in store.weekly_activity()}
    audit: dict[str, dict[str, Any]] = {}
    if watched is not None:
        audited = store.audited_decisions(watched.policy_id)
        bounds = lower_bounds([d.wrong for d in audited], watched.delta)
        for decision, bound in zip(audited, bounds, strict=True):
            week = _week_of(decision.signed_at)
            entry = audit.setdefault(week, {"audited": 0, "audited_wrong": 0})
            entry["audited"] += 1
            entry["audited_wrong"] += decision.wrong
            entry["lower_bound"] = float(bound)  # the last of the week: cumulative
    weeks = []
    for (week, model_id), counts in sorted(rows.items()):
        extra = audit.pop(week, {}) if watched and model_id == watched.model_id else {}
        weeks.append(OversightWeek(week=week, model_id=model_id, **{
            k: v for k, v in counts.items() if k not in ("week", "model_id")}, **extra))
    for week, extra in sorted(audit.items()):  # audited in a week with no decision
        weeks.append(OversightWeek(week, watched.model_id, 0, 0, 0, 0, 0, **extra))
    return sorted(weeks, key=lambda w: (w.week, w.model_id))


def _week_of(iso_time: str) -> str:
    year, week, _ = datetime.fromisoformat(iso_time).isocalendar()
    return f"{year}-W{week:02d}"


def oversight_plot(weeks: list[OversightWeek], alpha: float | None, path: Path) -> Path:
    """Two panels, week by week: the escalation, unusual-text and override rates; and the
    monitor's lower bound of the AUTO error rate against α. A white card, legible on a light
    or a dark window."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = sorted({w.week for w in weeks})
    x = range(len(labels))

    def series(rate: str) -> list[float]:
        by_week: dict[str, list[OversightWeek]] = {}
        for w in weeks:
            by_week.setdefault(w.week, []).append(w)
        out = []
        for label in labels:
            rows = by_week[label]
            top = sum(getattr(r, rate[0]) for r in rows)
            bottom = sum(getattr(r, rate[1]) for r in rows)
            out.append(top / bottom if bottom else float("nan"))
        return out

    fig, (rates, bound) = plt.subplots(2, 1, figsize=(7, 5.2), dpi=110, sharex=True)
    fig.patch.set_facecolor("white")
    for name, pair, colour in (("escalated", ("escalated", "decided"), "#2166ac"),
                               ("unusual text", ("unusual", "decided"), "#5aae61"),
                               ("overridden (of reviewed)", ("overridden", "reviewed"),
                                "#b2182b")):
        rates.plot(list(x), series(pair), marker="o", color=colour, label=name)
    rates.set_ylim(0, 1)
    rates.set_ylabel("share of cases")
    rates.legend(loc="upper left", fontsize=8)
    audited = [next((w.lower_bound for w in weeks if w.week == label
                     and w.lower_bound is not None), float("nan")) for label in labels]
    bound.plot(list(x), audited, marker="s", color="#762a83",
               label="audited AUTO error, lower bound (anytime-valid)")
    if alpha is not None:
        bound.axhline(alpha, color="#b2182b", linestyle="--", label=f"certified bound α = "
                                                                    f"{alpha:.0%}")
    bound.set_ylim(0, max(0.3, (alpha or 0) * 2))
    bound.set_ylabel("AUTO error")
    bound.legend(loc="upper left", fontsize=8)
    bound.set_xticks(list(x), labels, rotation=30, fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(path.name + ".partial")
    fig.savefig(scratch, format="png", facecolor="white")
    plt.close(fig)
    scratch.replace(path)
    return path
