"""How fast the audit PDF is written: one case, and a batch of 50.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_export.py [--runs 20] [--batch 50]
        [--llm-cases 5]

Uses the active model in $CASEWISE_HOME when there is one (the demo model after `make run`);
otherwise it trains the tiny test model the tests use (a 2-layer random BERT on synthetic
texts, here with a 256-token window so whole reviews are read). The cases are the first
reviews of the drug-review demo test file, scored as ``score`` does (prediction, escalation,
attributions with the faithfulness and flip checks) into a temporary SQLite store; every other
case gets a signed review, and the first ``--llm-cases`` escalated ones a second opinion from
the embedded LLM, so the PDFs hold every section. Then it times ``export_cases``: one case
(p50 and p95 over ``--runs`` exports, after the first export of the process, which also
registers the fonts, is shown on its own) and one batch. Target: at most 0.5 s per case.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.paths import data_dir
from app.reports import export_cases, model_card_loader
from app.store import CaseRepository, open_store
from models.registry import ModelRegistry

TARGET_SECONDS = 0.5


def model_home(scratch: Path) -> tuple[Path, str]:
    """The data directory whose active model is used, and how it was found."""
    home = data_dir()
    active = ModelRegistry(home).active_id()
    if active:
        return home, f"active model {active} in {home}"
    return train_tiny(scratch / "home"), "tiny test model (2-layer random BERT, synthetic data)"


def train_tiny(home: Path) -> Path:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from models.embedded import base_encoder_dir
    from models.train_job import DatasetSpec, train_and_save
    from models.training import TrainingConfig
    from tests.conftest import synthetic_rows, write_csv

    base = home.parent / "tiny-bert"
    tokenizer = AutoTokenizer.from_pretrained(base_encoder_dir())
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=64, num_hidden_layers=2,
                         num_attention_heads=4, intermediate_size=128)).save_pretrained(base)
    tokenizer.save_pretrained(base)
    data = write_csv(home.parent / "train.csv", synthetic_rows())
    config = TrainingConfig(max_length=256, batch_size=16, learning_rate=3e-3, max_epochs=4,
                            patience=2, seed=7)
    train_and_save(DatasetSpec("synthetic", data), ModelRegistry(home), config, base_dir=base)
    return home


def case_texts(n: int) -> list[str]:
    from models.data import load_demo

    (_, _), (test, _) = load_demo()
    return list(test.texts[:n])


def fill_store(store: CaseRepository, home: Path, texts: list[str], llm_cases: int) -> list[int]:
    """Score and store every text as ``score`` does (``app.pipeline``: the typed records go
    into the store as they are made); review every other case."""
    from app import pipeline
    from app.casework import load_workbench
    from models.types import CaseInput

    bench = load_workbench(home)
    pipeline.register_model(store, bench)
    llm = pipeline.LLMChoice(embedded_llm, "embedded", max_tokens=120) if llm_cases else None
    ids, asked = [], 0
    for text, (prediction, decision) in zip(texts, pipeline.decide(bench, texts), strict=True):
        result = pipeline.CaseResult(CaseInput(text, "demo test file"), prediction, decision,
                                     unstored={"prediction"})
        ask = pipeline.ASK_ESCALATED if asked < llm_cases else pipeline.ASK_NEVER
        result = pipeline.run_case(bench, result, store=store, llm=llm,
                                   steps=pipeline.Steps(explain=True, ask=ask))
        if result.store_error is not None:
            raise result.store_error
        asked += result.opinion is not None
        if len(ids) % 2 == 0:
            store.add_review(result.case_id, "Bench Reviewer", "accept")
        ids.append(result.case_id)
    return ids


def embedded_llm():
    from models.llm.factory import embedded_backend

    return embedded_backend()


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def met(seconds: float) -> str:
    return "yes" if seconds <= TARGET_SECONDS else "NO"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--llm-cases", type=int, default=5,
                        help="escalated cases that get an embedded-LLM opinion (0: none)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-export-") as scratch_name:
        scratch = Path(scratch_name)
        home, model = model_home(scratch)
        texts = case_texts(max(args.batch, args.runs))
        with open_store(scratch / "cases.db", actor="bench") as store:
            start = time.perf_counter()
            ids = fill_store(store, home, texts, args.llm_cases)
            fill_seconds = time.perf_counter() - start
            rows = measure(store, ids, home, scratch, args)
    print(f"{len(ids)} demo test reviews scored and stored with {model} in {fill_seconds:.0f} s "
          f"(attributions with checks, every other case reviewed, {args.llm_cases} with an "
          f"embedded-LLM opinion); one process, {os.environ.get('OMP_NUM_THREADS', 'all')} "
          "thread(s)\n")
    print("| export | cases | pages | seconds | seconds per case | target | met? |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


def measure(store: CaseRepository, ids: list[int], home: Path, scratch: Path,
            args: argparse.Namespace) -> list[list[str]]:
    cards = model_card_loader(home)
    first = export_cases(store, [ids[0]], scratch / "first.pdf", model_card_for=cards)
    singles = [export_cases(store, [ids[i % len(ids)]], scratch / "one.pdf",
                            model_card_for=cards) for i in range(1, args.runs + 1)]
    seconds = [r.seconds for r in singles]
    pages = statistics.median(r.pages for r in singles)
    batch = export_cases(store, ids[: args.batch], scratch / "batch.pdf", model_card_for=cards)
    per_case = batch.seconds / batch.cases
    return [
        ["one case, first of the process (registers the fonts)", "1", str(first.pages),
         f"{first.seconds:.3f}", f"{first.seconds:.3f}", "-", "-"],
        [f"one case, p50 of {args.runs}", "1", f"{pages:g} (median)",
         f"{statistics.median(seconds):.3f}", f"{statistics.median(seconds):.3f}",
         f"<= {TARGET_SECONDS} s", met(statistics.median(seconds))],
        [f"one case, p95 of {args.runs}", "1", f"{pages:g} (median)", f"{p95(seconds):.3f}",
         f"{p95(seconds):.3f}", f"<= {TARGET_SECONDS} s", met(p95(seconds))],
        [f"batch of {batch.cases} with a summary page", str(batch.cases), str(batch.pages),
         f"{batch.seconds:.3f}", f"{per_case:.3f}", f"<= {TARGET_SECONDS} s", met(per_case)],
    ]


if __name__ == "__main__":
    sys.exit(main())
