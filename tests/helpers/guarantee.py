"""A history in which the tiny model's policy certifies and decides cases automatically, for the
guarantee monitor's tests: the policy refitted on 180 labelled synthetic cases (the trained
model's own calibration split is too small to certify anything), then 120 cases scored."""

from __future__ import annotations

from pathlib import Path


def certify_and_score(home: Path, tmp_path: Path, capsys, audit_share: float = 0.5):
    """Refit the policy (``calibrate --data``), score 120 cases into ``home``'s history with
    ``audit_share`` of the AUTO ones drawn for the audit sample; the workbench and the
    summaries of the drawn cases (every AUTO case with a share of 1)."""
    from app.casework import load_workbench
    from app.pipeline import Steps, run_batch
    from app.store import open_store
    from models.types import CaseInput
    from tests.helpers.cli import run_main
    from tests.helpers.data import synthetic_rows, write_csv

    labelled = write_csv(tmp_path / "reviewed.csv", synthetic_rows(60, seed=9))
    run_main(["calibrate", "--data", str(labelled), "--alpha", "0.2"], capsys)
    bench = load_workbench(home)
    assert bench.policy.threshold is not None
    rows = synthetic_rows(40, seed=8)
    with open_store(home / "casewise.db") as store:
        run_batch(bench, [CaseInput(r["text"], f"s:{i}") for i, r in enumerate(rows)], store,
                  steps=Steps(explain=False, audit_share=audit_share))
        auto = list(store.find_cases(escalated=False, audit_sample=True, page_size=500).items)
    assert len(auto) >= 30, "the tiny model should decide most synthetic cases itself"
    return bench, auto


def judge(store, signer, cases, labels, right: bool) -> None:
    """A signed review of each case: accepting the model's label, or overriding it."""
    for item in cases:
        if right:
            store.add_review(item.id, signer, "accept")
        else:
            other = next(label for label in labels if label != item.label)
            store.add_review(item.id, signer, "override", label=other, reason="audit: wrong")


def broken_guarantee(home: Path, tmp_path: Path, capsys, monkeypatch):
    """``home`` as CASEWISE_HOME, its policy certified and 120 cases scored, every AUTO case
    drawn, and 30 of them judged wrong by a signed review: the monitor alarms. The workbench
    and the drawn cases."""
    from app.store import open_store
    from tests.helpers.accounts import signer

    monkeypatch.setenv("CASEWISE_HOME", str(home))
    bench, drawn = certify_and_score(home, tmp_path, capsys, audit_share=1.0)
    with open_store(home / "casewise.db") as store:
        judge(store, signer(store, "ann"), drawn[:30], bench.labels, right=False)
    return bench, drawn
