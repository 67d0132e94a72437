"""Shared fixtures: a tiny random BERT (fast), synthetic labelled data, an isolated data dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.accounts import signer
from tests.helpers.data import SCORED_CASES, SCORED_REVIEWS, synthetic_rows, write_csv
from tests.helpers.models import share_installation_key

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# The real window and its loopback LLM server (gui, llm_server), for every GUI test module.
# A throwaway PostgreSQL server (pg_cluster, pg_url) for the store tests on both databases.
pytest_plugins = ["tests.helpers.window", "tests.helpers.postgres"]


def pytest_generate_tests(metafunc) -> None:
    """A module marked ``both_backends`` runs each test that opens a ``history`` twice: on an
    SQLite file and on a fresh PostgreSQL database."""
    if ("history" in metafunc.fixturenames
            and metafunc.definition.get_closest_marker("both_backends")):
        metafunc.parametrize("history", ["sqlite", pytest.param(
            "postgresql", marks=pytest.mark.postgresql)], indirect=True)

@pytest.fixture(scope="session")
def tiny_base_dir(tmp_path_factory) -> Path:
    """A 2-layer, 64-wide random BERT (no dropout) with the real base encoder's tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from models.embedded import base_encoder_dir

    directory = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(base_encoder_dir())
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=64, num_hidden_layers=2,
                        num_attention_heads=4, intermediate_size=128,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session", autouse=True)
def installation_home(tmp_path_factory) -> Path:
    """The CASEWISE_HOME of every test that sets none, so no test reads or writes the real
    user's folders; its configuration folder holds the session's installation key, which
    signs the model fixtures (tests/helpers/models.py)."""
    from app.accounts.installation import installation_key

    home = tmp_path_factory.mktemp("installation")
    previous = os.environ.get("CASEWISE_HOME")
    os.environ["CASEWISE_HOME"] = str(home)
    installation_key()  # made once, here
    yield home
    if previous is None:
        os.environ.pop("CASEWISE_HOME", None)
    else:
        os.environ["CASEWISE_HOME"] = previous


@pytest.fixture()
def casewise_home(tmp_path, monkeypatch, installation_home) -> Path:
    """A CASEWISE_HOME of the test's own, with the session's installation key."""
    home = share_installation_key(installation_home, tmp_path / "home")
    monkeypatch.setenv("CASEWISE_HOME", str(home))
    return home


@pytest.fixture()
def synthetic_csv(tmp_path) -> Path:
    return write_csv(tmp_path / "cases.csv", synthetic_rows())


@pytest.fixture(scope="session")
def tiny_config():
    from models.training import TrainingConfig

    # The fine-tune asked for by name: 40 synthetic rows a class would otherwise pick SetFit
    # (tests/test_setfit_recipe.py trains that).
    return TrainingConfig(max_length=32, batch_size=16, learning_rate=3e-3, max_epochs=8,
                          patience=3, seed=7, recipe="fine-tune")


@pytest.fixture(scope="session")
def trained_home(tmp_path_factory, tiny_base_dir, tiny_config, installation_home) -> Path:
    """A data directory holding one tiny model trained on synthetic data (shared, read-only),
    trained as the app trains: signed by the session's installation key, a copy of which is
    in its ``config`` folder, so it is also a CASEWISE_HOME that trusts its model."""
    from app.casework import model_registry
    from models.train_job import DatasetSpec, train_and_save

    home = share_installation_key(installation_home, tmp_path_factory.mktemp("trained-home"))
    data = write_csv(home.parent / "train.csv", synthetic_rows())
    train_and_save(DatasetSpec("synthetic", data), model_registry(home), tiny_config,
                   base_dir=tiny_base_dir)
    return home


@pytest.fixture()
def home(trained_home, tmp_path) -> Path:
    """A writable copy of the trained data directory, for tests that add to it (the same
    folder as ``casewise_home``, which may have made it first)."""
    import shutil

    copy = tmp_path / "home"
    shutil.copytree(trained_home, copy, dirs_exist_ok=True)
    return copy


# -- the desktop app (app/ui): a real store of scored cases and a real context ---------------



@pytest.fixture(scope="session")
def scored_db(trained_home, tmp_path_factory) -> Path:
    """A case history of 300 synthetic cases scored by the tiny model (no attributions), the
    first 40 reviewed by Ann or Bob. Shared: copy it (``ui_context`` does) before writing."""
    from app.casework import load_workbench
    from app.pipeline import Steps, run_batch
    from app.store import open_store
    from models.types import CaseInput

    path = tmp_path_factory.mktemp("scored") / "cases.db"
    bench = load_workbench(trained_home)
    rows = synthetic_rows(SCORED_CASES // 3, seed=3)
    cases = [CaseInput(row["text"], f"fixture.csv:{i}") for i, row in enumerate(rows, start=1)]
    with open_store(path, actor="tester") as store:
        run_batch(bench, cases, store, steps=Steps(explain=False))
        summaries = store.find_cases(sort="id", page_size=SCORED_REVIEWS).items
        for i, item in enumerate(summaries):
            reviewer = "ann" if i % 2 == 0 else "bob"
            if i % 4 == 3:
                other = next(label for label in bench.labels if label != item.label)
                store.add_review(item.id, signer(store, reviewer), "override", other,
                                 "the words say so")
            else:
                store.add_review(item.id, signer(store, reviewer),
                                 "defer" if i % 4 == 2 else "accept")
    return path


@pytest.fixture()
def ui_context(qtbot, trained_home, scored_db, tmp_path):
    """An ``AppContext`` over a copy of ``scored_db`` with the tiny model loaded; the data
    directory is the shared trained home (read-only: use ``home`` to change models)."""
    yield from _ui_context(qtbot, trained_home, scored_db, tmp_path)


@pytest.fixture()
def ui_context_home(qtbot, home, scored_db, tmp_path):
    """Like ``ui_context`` but on a writable copy of the trained home."""
    yield from _ui_context(qtbot, home, scored_db, tmp_path)


def _ui_context(qtbot, data_dir: Path, scored_db: Path, tmp_path: Path):
    import shutil

    from app.settings import Settings
    from app.ui.context import AppContext

    db = tmp_path / "cases.db"
    shutil.copy(scored_db, db)
    context = AppContext(Settings(data_dir=str(data_dir)), config_dir=tmp_path / "config")
    with qtbot.waitSignal(context.store_ready, timeout=20000):
        context.open_store(db)
    with qtbot.waitSignal(context.workbench_changed, timeout=60000):
        context.load_workbench()
    yield context
    context.close()


# -- the case history on a file (tests/test_store*.py; store_helpers.py has the records) -----

@pytest.fixture()
def db(tmp_path) -> Path:
    return tmp_path / "casewise.db"


@pytest.fixture()
def history(request, db):
    """Where the test's case history lives: the SQLite file ``db``, or (in a module marked
    ``both_backends``) a new database on the test PostgreSQL server, as a URL."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return db
    return request.getfixturevalue("pg_url")


@pytest.fixture()
def store(history):
    from app.store import open_store

    repo = open_store(history, actor="tester", busy_timeout=1.0)
    yield repo
    repo.close()
