"""The guarantee monitor (models/guarantee_monitor.py): a false alarm on streams whose AUTO
error rate is at the certified bound at most δ of the time, looked at after every case;
an alarm soon after the rate rises well above it; what it says at each stage."""

from __future__ import annotations

import numpy as np
import pytest

from models.guarantee_monitor import lower_bounds, watch

ALPHA, DELTA = 0.10, 0.10


def stream(rate: float, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(n) < rate


def test_no_audited_case_says_nothing_can_be_said():
    result = watch([], ALPHA, DELTA)
    assert not result.alarm and result.lower_bound == 0.0
    assert "nothing can be said" in result.summary()


def test_false_alarms_at_the_bound_stay_under_delta_however_often_it_is_looked_at():
    """The worst undrifted case: the true AUTO error rate is exactly α. Every one of 400
    streams of 1,000 audited cases is watched after every case (the alarm is the first
    time the lower bound passes α)."""
    alarms = sum(watch(stream(ALPHA, 1000, seed), ALPHA, DELTA).alarm for seed in range(400))
    assert alarms / 400 <= DELTA


def test_a_fixed_size_interval_looked_at_every_case_would_alarm_far_more_often():
    """Why a confidence sequence: a one-sided 90 % interval recomputed after every case
    crosses α on most streams at the bound (the same streams as above)."""
    from scipy.stats import beta as beta_dist

    def peeking_alarm(x):
        errors = np.cumsum(x)
        n = np.arange(1, len(x) + 1)
        lower = beta_dist.ppf(DELTA, errors, n - errors + 1)
        return bool(np.nan_to_num(lower > ALPHA).any())

    alarms = sum(peeking_alarm(stream(ALPHA, 1000, seed)) for seed in range(100))
    assert alarms / 100 > 2 * DELTA


def test_a_broken_guarantee_is_caught_within_a_few_hundred_audited_cases():
    for seed in range(20):
        result = watch(stream(0.30, 400, seed), ALPHA, DELTA)
        assert result.alarm and result.alarm_at <= 200, (seed, result)
        assert result.lower_bound > ALPHA
        assert "broken" in result.summary() and f"case {result.alarm_at}" in result.summary()


def test_the_lower_bound_only_rises_and_stays_under_the_observed_rate():
    x = stream(0.2, 500, 3)
    bounds = lower_bounds(x, DELTA)
    assert np.all(np.diff(bounds) >= 0)  # a running intersection: once rejected, always
    assert bounds[-1] <= x.mean()
    assert watch(x, ALPHA, DELTA).lower_bound == pytest.approx(bounds[-1])


def test_bad_levels_are_refused():
    with pytest.raises(ValueError, match="between 0 and 1"):
        watch([True], 0.0, 0.1)


def test_audit_guarantee_reads_the_reviewed_auto_decisions_of_the_active_policy(
        home, tmp_path, monkeypatch, capsys):
    """Scored cases the policy decided automatically, then signed by a reviewer: all right,
    the bound holds; the same decisions overridden, it is broken (a real history, the tiny
    model with a policy refitted on 180 labelled cases so that it certifies, the CLI in
    process)."""
    import json

    from app.casework import load_workbench
    from app.pipeline import decide, register_model
    from app.store import open_store
    from tests.helpers.accounts import signer
    from tests.helpers.cli import run_main
    from tests.helpers.guarantee import certify_and_score, judge

    monkeypatch.setenv("CASEWISE_HOME", str(home))
    bench, auto = certify_and_score(home, tmp_path, capsys, audit_share=1.0)
    before = json.loads(run_main(["audit", "guarantee", "--json"], capsys).out)
    assert before["n"] == 0 and not before["alarm"]
    with open_store(home / "casewise.db") as store:
        judge(store, signer(store, "ann"), auto[:30], bench.labels, right=True)
    held = json.loads(run_main(["audit", "guarantee", "--json"], capsys).out)
    assert held["n"] == 30 and held["errors"] == 0 and not held["alarm"]
    with open_store(home / "casewise.db") as store:
        judge(store, signer(store, "ann"), auto[:30], bench.labels, right=False)
    broken = run_main(["audit", "guarantee"], capsys, code=1).out
    assert "The guarantee is broken" in broken and "30 of 30" in broken

    # While the alarm stands every case is escalated, saying why; the alarm is filed once.
    again = load_workbench(home)
    with open_store(home / "casewise.db") as store:
        register_model(store, again)
        register_model(store, again)
        (alarm,) = store.audit_events(kind="guarantee_alarm")
        assert alarm.payload["policy_id"] == again.policy.policy_id
        assert sorted(alarm.payload["wrong_case_ids"]) == sorted(i.id for i in auto[:30])
    [(_, decision)] = decide(again, [auto[0].preview])
    assert decision.escalated and "guarantee_broken" in decision.reason_codes
    assert "broken" in decision.reasons[-1]
    [(_, before_alarm)] = decide(bench, [auto[0].preview])
    assert before_alarm.auto  # the same case, with no alarm read

    # A new policy ends the alarm (the monitor is per policy): its end is on the record too.
    from tests.helpers.accounts import PASSWORD
    from tests.helpers.data import synthetic_rows, write_csv

    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(0o600)
    fresh = write_csv(tmp_path / "more.csv", synthetic_rows(60, seed=11))
    run_main(["calibrate", "--data", str(fresh), "--alpha", "0.2", "--user", "admin",
              "--password-file", str(secret)], capsys)
    refitted = load_workbench(home)
    with open_store(home / "casewise.db") as store:
        register_model(store, refitted)
        register_model(store, refitted)
        (ended,) = store.audit_events(kind="guarantee_alarm_ended")
    assert ended.payload["policy_id"] == again.policy.policy_id
    assert ended.payload["ended_by"] == refitted.policy.policy_id
    assert not refitted.guarantee.alarm


def test_the_window_says_when_the_guarantee_is_broken(qtbot, home, tmp_path, monkeypatch,
                                                      capsys):
    """The window reads the monitor when it loads the model and says so in the message bar
    (a real AppContext over the history, Qt offscreen)."""
    from app.settings import Settings
    from app.store import open_store
    from app.ui.context import AppContext
    from tests.helpers.accounts import signer
    from tests.helpers.guarantee import certify_and_score, judge

    monkeypatch.setenv("CASEWISE_HOME", str(home))
    bench, auto = certify_and_score(home, tmp_path, capsys, audit_share=1.0)
    with open_store(home / "casewise.db") as store:
        judge(store, signer(store, "ann"), auto[:30], bench.labels, right=False)
    context = AppContext(Settings(data_dir=str(home)), config_dir=home / "config")
    said: list[str] = []
    context.message.connect(lambda level, text: said.append(text))
    try:
        with qtbot.waitSignal(context.store_ready, timeout=20000):
            context.open_store(home / "casewise.db")
        context.load_workbench()
        qtbot.waitUntil(lambda: any("guarantee is broken" in t for t in said), timeout=60000)
    finally:
        context.close()


def test_the_audit_sample_is_drawn_queued_and_alone_read_by_the_monitor(home, tmp_path,
                                                                         monkeypatch, capsys):
    """About half the AUTO cases are drawn (share 0.5); the queue offers escalated and drawn
    cases only; a wrong AUTO decision reviewed outside the sample does not count."""
    import json

    from app.review_queue import next_in_queue
    from app.store import open_store
    from tests.helpers.accounts import signer
    from tests.helpers.cli import run_main
    from tests.helpers.guarantee import certify_and_score, judge

    monkeypatch.setenv("CASEWISE_HOME", str(home))
    bench, drawn = certify_and_score(home, tmp_path, capsys, audit_share=0.5)
    with open_store(home / "casewise.db") as store:
        undrawn = store.find_cases(escalated=False, audit_sample=False, page_size=500).items
        assert undrawn, "with a share of one half some AUTO cases stay undrawn"
        total_auto = len(drawn) + len(undrawn)
        assert 0.3 < len(drawn) / total_auto < 0.7
        queued = {c.id for c in store.find_cases(reviewed=False, needs_review=True,
                                                   page_size=1000).items}
        assert {c.id for c in drawn} <= queued and not queued & {c.id for c in undrawn}
        assert next_in_queue(store).case_id in queued
        assert next_in_queue(store).never_reviewed == len(queued)
        judge(store, signer(store, "ann"), undrawn[:5], bench.labels, right=False)
    result = json.loads(run_main(["audit", "guarantee", "--json"], capsys).out)
    assert result["n"] == 0  # reviews outside the sample are not a random sample
    # The blind first judgement, not the signed label that came after the answer showed,
    # says whether the automatic decision was wrong.
    with open_store(home / "casewise.db", actor="ann") as store:
        case = drawn[0]
        other = next(label for label in bench.labels if label != case.label)
        store.record_judgement(case.id, other, "before the answer showed")
        store.add_review(case.id, signer(store, "ann"), "accept")
    result = json.loads(run_main(["audit", "guarantee", "--json"], capsys).out)
    assert (result["n"], result["errors"]) == (1, 1)


def test_an_audit_sample_opens_blind_in_the_window(qtbot, gui, home, tmp_path, monkeypatch,
                                                  capsys):
    """The window opens a drawn AUTO case blind even with blind review off, and says it is
    an audit sample (the real window, offscreen)."""
    from tests.helpers.guarantee import certify_and_score

    monkeypatch.setenv("CASEWISE_HOME", str(home))
    _bench, drawn = certify_and_score(home, tmp_path, capsys, audit_share=1.0)
    window = gui(blind_review=False)
    view = window.case_view
    window.open_case(drawn[0].id)
    qtbot.waitUntil(lambda: view.state is not None and view.state.case_id == drawn[0].id,
                    timeout=30000)
    assert view.state.blind
    assert "audit sample" in view.source_label.text()
    # The History does not tell the drawn case's answer either, blind review off.
    from app.ui.history_view import COLUMNS, HIDDEN, HistoryView

    label = next(i for i, c in enumerate(COLUMNS) if c.key == "label")
    history = window.findChild(HistoryView)
    model = history.model
    qtbot.waitUntil(lambda: model.rowCount() > 0 and all(
        model.case_id_at(r) is not None for r in range(model.rowCount())), timeout=30000)
    rows = {model.case_id_at(r): r for r in range(model.rowCount())}
    assert model.index(rows[drawn[0].id], label).data() == HIDDEN
    escalated = [i for i in rows if i not in {d.id for d in drawn}]
    assert escalated and model.index(rows[escalated[0]], label).data() != HIDDEN


def test_a_broken_guarantee_stands_in_the_windows_banner(qtbot, gui, home, tmp_path,
                                                        monkeypatch, capsys):
    from tests.helpers.guarantee import broken_guarantee

    broken_guarantee(home, tmp_path, capsys, monkeypatch)
    window = gui()
    banner = window.model_banner
    qtbot.waitUntil(lambda: banner.isVisible() and "broken" in banner.text.text(),
                    timeout=30000)
    assert banner.level == "error"


def test_not_filing_a_case_is_no_way_around_a_broken_guarantee(home, tmp_path, monkeypatch,
                                                               capsys):
    """``predict --no-store`` reads the monitor (read-only) and escalates during an alarm."""
    import json

    from app.store import open_store
    from tests.helpers.accounts import signer
    from tests.helpers.cli import run_main
    from tests.helpers.guarantee import certify_and_score, judge

    monkeypatch.setenv("CASEWISE_HOME", str(home))
    bench, drawn = certify_and_score(home, tmp_path, capsys, audit_share=1.0)
    text = drawn[0].preview
    quiet = json.loads(run_main(["predict", text, "--no-store", "--json"], capsys).out)
    assert quiet["escalation"]["decision"] == "auto"
    with open_store(home / "casewise.db") as store:
        judge(store, signer(store, "ann"), drawn[:30], bench.labels, right=False)
        events = len(store.audit_events(limit=100_000))
    alarmed = json.loads(run_main(["predict", text, "--no-store", "--json"], capsys).out)
    assert "guarantee_broken" in alarmed["escalation"]["reason_codes"]
    with open_store(home / "casewise.db") as store:
        assert len(store.audit_events(limit=100_000)) == events  # nothing was written


def test_audit_weekly_counts_the_week_and_carries_the_monitor(home, tmp_path, monkeypatch,
                                                              capsys):
    """``audit weekly``: this week's decisions, escalations and overrides of the model at
    work, and its audited automatic decisions with the monitor's bound (a real history)."""
    import json

    from app.store import open_store
    from tests.helpers.cli import run_main
    from tests.helpers.guarantee import broken_guarantee

    bench, _ = broken_guarantee(home, tmp_path, capsys, monkeypatch)
    with open_store(home / "casewise.db") as store:  # a review escalates nothing
        escalated = store.find_cases(escalated=True, page_size=1).total
    weeks = json.loads(run_main(["audit", "weekly", "--json"], capsys).out)
    [this] = [w for w in weeks if w["model_id"] == bench.model_id]
    assert this["decided"] == 120 and this["escalated"] == escalated
    assert (this["reviewed"], this["overridden"]) == (30, 30)
    assert (this["audited"], this["audited_wrong"]) == (30, 30)
    assert this["lower_bound"] > bench.policy.settings.alpha
    table = run_main(["audit", "weekly"], capsys).out
    assert "30/30" in table and "> α" in table


def test_the_oversight_page_shows_the_weeks_and_the_plot(qtbot, gui, home, tmp_path,
                                                        monkeypatch, capsys):
    """Models → Oversight…: the table of weeks and the drawn plot (the real window)."""
    from app.ui.oversight_view import OversightDialog
    from tests.helpers.guarantee import broken_guarantee

    broken_guarantee(home, tmp_path, capsys, monkeypatch)
    window = gui()
    window.act_oversight.trigger()
    qtbot.waitUntil(lambda: window.findChild(OversightDialog) is not None, timeout=10000)
    page = window.findChild(OversightDialog)
    qtbot.waitUntil(lambda: page.table.rowCount() >= 1 and page.plot.pixmap() is not None
                    and not page.plot.pixmap().isNull(), timeout=60000)
    cells = [page.table.item(r, c).text() for r in range(page.table.rowCount())
             for c in range(page.table.columnCount())]
    assert "30 (30)" in cells and (home / "reports" / "oversight.png").is_file()


def test_the_batch_pdf_has_a_monitoring_section(home, tmp_path, monkeypatch, capsys):
    """A batch audit PDF ends with the weekly monitoring table and plot, read back from the
    real PDF (the policy that decided the newest case is the one audited)."""
    from pypdf import PdfReader

    from app.reports import export_cases
    from app.store import open_store
    from tests.helpers.guarantee import broken_guarantee

    bench, drawn = broken_guarantee(home, tmp_path, capsys, monkeypatch)
    with open_store(home / "casewise.db") as store:
        result = export_cases(store, [d.id for d in drawn[:3]], tmp_path / "batch.pdf")
    pages = PdfReader(result.path).pages
    text = " ".join(" ".join(page.extract_text().split()) for page in pages)
    assert "Monitoring" in text and "30 (30)" in text
    assert bench.policy.policy_id in text.replace(" ", "") or bench.policy.policy_id in text
    assert any(page.images for page in pages[-2:])  # the plot


def test_a_drift_after_months_of_good_decisions_is_caught():
    """300 audited cases at 5 % wrong, then the rate jumps to 30 % (a relabelling the model
    does not know): the alarm comes within 300 audited cases of the drift on every stream
    (108 to 265 measured). The plug-in bet the monitor used before mostly had not raised it
    300 cases after the drift (it had shrunk with the months of good cases)."""
    for seed in range(20):
        rng = np.random.default_rng(seed)
        x = np.concatenate([rng.random(300) < 0.05, rng.random(300) < 0.30])
        result = watch(x, ALPHA, DELTA)
        assert result.alarm and 300 < result.alarm_at <= 600, (seed, result.alarm_at)
