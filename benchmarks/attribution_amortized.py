"""The amortized explainer's training targets for the benchmark, cached as they are computed.

Targets are the app's own (``explainers.amortized.shapley_targets``) for the demo training
file's reviews (never the test reviews the benchmark scores); computed in chunks and kept in
``benchmarks/out/attribution/`` so a stopped run resumes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from explainers.amortized import TARGET_SEED, shapley_targets

TARGET_DIR = Path(__file__).resolve().parent / "out" / "attribution"
CHUNK = 10


def cached_targets(classifier, texts: list[str], pairs: int = 1,
                   seed: int = TARGET_SEED) -> list[np.ndarray]:
    suffix = "" if seed == TARGET_SEED else f"-seed{seed}"
    path = TARGET_DIR / f"targets-{classifier.model_id}-{pairs}{suffix}.npz"
    done: list[np.ndarray] = []
    if path.is_file():
        with np.load(path) as stored:
            done = [stored[f"t{i}"] for i in range(int(stored["count"]))]
    for start in range(len(done), len(texts), CHUNK):
        chunk = texts[start : start + CHUNK]
        # Text i is seeded by i, so chunks give what one call over every text would.
        done += shapley_targets(classifier, chunk, pairs, seed, first_index=start)
        TARGET_DIR.mkdir(parents=True, exist_ok=True)
        scratch = path.with_suffix(".partial.npz")
        np.savez(scratch, count=len(done), **{f"t{i}": t for i, t in enumerate(done)})
        scratch.replace(path)
        print(f"targets {len(done)}/{len(texts)}", file=sys.stderr, flush=True)
    return done[: len(texts)]

