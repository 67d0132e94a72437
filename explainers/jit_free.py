"""shap's Partition explainer without numba: plain numpy for the three helpers it compiles.

shap's Partition and Permutation explainers call a few functions that shap compiles with numba
the first time a process uses them: the sparse matrix of the words under every node of the
partition tree (``make_masks``), the spreading of each node's credit down to its words
(``lower_credit``) and the assembly of the model outputs per mask (``_build_fixed_output``).
Compiling them took about 5 s of every ``main.py explain`` on a 2-core CPU, and numba's on-disk
cache does not help: it only applies to functions declared ``cache=True``, which these are not.

For a text their work is small — a tree over its words (a few hundred nodes for a review, at
most the 8,192 tokens a text is read to) and a few masks per word — so the compiled code saves
microseconds to milliseconds per explanation, against seconds of compiling (measured in
``benchmarks/bench_cold_start.py``: the plain versions take about a millisecond at 250 words).
The versions here compute the same numbers in the same order, so the attributions
are identical (the tests hold them to 1e-6 against shap's compiled functions).

They are installed into shap's modules once (``install()``) as switches: inside ``jit_free()``
(which ``explainers.attribution.explain`` uses) they run the code here; everywhere else, and for
inputs they do not cover (a link other than the identity, more than ``MAX_FEATURES`` features),
shap's own compiled functions run as before.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import types
from collections.abc import Callable, Iterator

import numpy as np
import scipy.sparse

# Beyond this many features (an image, not a text) the compiled code may be worth its compile.
# A text is read to 8,192 tokens (models.windows.READ_LIMIT_TOKENS), so every text's words fit.
MAX_FEATURES = 16384

_ACTIVE = contextvars.ContextVar("casewise_jit_free", default=False)
_INSTALLED = "__casewise_jit_free__"


@contextlib.contextmanager
def jit_free() -> Iterator[None]:
    """Within this block (in this thread or task), shap runs the numpy versions."""
    token = _ACTIVE.set(True)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def members_matrix(clustering: np.ndarray) -> scipy.sparse.csr_matrix:
    """Row k: which of the M leaves lie under node k (leaves 0..M-1, then the merges in order).

    ``clustering`` is a linkage matrix (left child, right child, distance, size), each merge
    referring only to earlier nodes. Each node lists its left child's leaves, then its right
    child's, as shap's ``make_masks`` does.
    """
    clustering = np.asarray(clustering)
    n_leaves = len(clustering) + 1
    members: list[np.ndarray] = [np.array([leaf]) for leaf in range(n_leaves)]
    for left, right in clustering[:, :2].astype(int):
        members.append(np.concatenate((members[left], members[right])))
    sizes = np.fromiter((len(m) for m in members), dtype=int, count=len(members))
    indptr = np.concatenate(([0], np.cumsum(sizes)))
    indices = np.concatenate(members)
    return scipy.sparse.csr_matrix((np.ones(len(indices), dtype=bool), indices, indptr),
                                   shape=(len(members), n_leaves))


def spread_credit(node: int, value, n_leaves: int, values: np.ndarray,
                  clustering: np.ndarray) -> None:
    """Add ``value`` to ``values[node]``, then hand each node's total down to its two children
    in proportion to their sizes, until the leaves hold it (in place, like shap's
    ``lower_credit``, but walking the tree with a stack instead of recursion)."""
    stack = [(node, value)]
    while stack:
        node, value = stack.pop()
        values[node] += value
        if node < n_leaves:
            continue
        left, right, _, size = clustering[node - n_leaves]
        left, right, size = int(left), int(right), int(size)
        left_size = int(clustering[left - n_leaves, 3]) if left >= n_leaves else 1
        right_size = int(clustering[right - n_leaves, 3]) if right >= n_leaves else 1
        if left_size + right_size != size:
            raise ValueError(f"node {node} has size {size}, its children {left_size} + "
                             f"{right_size}")
        stack.append((right, values[node] * right_size / size))
        stack.append((left, values[node] * left_size / size))


def outputs_per_mask(averaged_outs: np.ndarray, last_outs: np.ndarray, outputs: np.ndarray,
                     batch_positions: np.ndarray, varying_rows: np.ndarray,
                     num_varying_rows: np.ndarray) -> None:
    """The model output for each mask, with the identity link (in place, like shap's
    ``_build_fixed_output``).

    ``outputs`` holds, mask after mask, only the background rows that the mask changed
    (``batch_positions`` delimits them); the other rows keep their output from the mask
    before. Each mask's output is the mean over the background rows; a mask that changed
    nothing repeats the previous one.
    """
    n_rows = last_outs.shape[0]
    if n_rows == 1 and len(averaged_outs) and np.all(np.diff(batch_positions) == 1):
        # A text masker's single row, changed by every mask: each output is the mask's own.
        averaged_outs[:] = outputs
        last_outs[:] = outputs[-1:]
        return
    for i in range(len(averaged_outs)):
        start, end = batch_positions[i], batch_positions[i + 1]
        if start < end:
            if num_varying_rows[i] == n_rows:
                last_outs[:] = outputs[start:end]
            else:
                last_outs[varying_rows[i]] = outputs[start:end]
            averaged_outs[i] = last_outs.mean(0)
        else:
            averaged_outs[i] = averaged_outs[i - 1]


def _covers_tree(clustering, *_) -> bool:
    return len(clustering) + 1 <= MAX_FEATURES


def _covers_credit(node, value, n_leaves, values, clustering) -> bool:
    return n_leaves <= MAX_FEATURES


def _covers_outputs(averaged_outs, last_outs, outputs, batch_positions, varying_rows,
                    num_varying_rows, link, linearizing_weights) -> bool:
    import shap

    return link is shap.links.identity and linearizing_weights is None


def _plain_outputs(averaged_outs, last_outs, outputs, batch_positions, varying_rows,
                   num_varying_rows, link, linearizing_weights) -> None:
    outputs_per_mask(averaged_outs, last_outs, outputs, batch_positions, varying_rows,
                     num_varying_rows)


# shap module, function name, the one here (looked up at call time), when it applies.
SWITCHES = (
    ("shap.explainers._partition", "make_masks", "members_matrix", _covers_tree),
    ("shap.explainers._partition", "lower_credit", "spread_credit", _covers_credit),
    ("shap.utils._masked_model", "_build_fixed_output", "_plain_outputs", _covers_outputs),
)


def _switch(original: Callable, ours: str, covers: Callable[..., bool]) -> Callable:
    def switch(*args):
        if _ACTIVE.get() and covers(*args):
            return globals()[ours](*args)
        return original(*args)

    switch.__name__ = switch.__qualname__ = getattr(original, "__name__", ours)
    switch.__doc__ = f"{ours} inside jit_free(), else shap's compiled {switch.__name__}."
    setattr(switch, _INSTALLED, original)
    return switch


def _calling_itself(original: Callable, name: str) -> Callable:
    """``original`` compiled with its own copy of its module's globals.

    A numba function that calls itself by its module-global name (``lower_credit`` does)
    resolves that name when it compiles: once the name holds a switch, which numba cannot
    type, it would no longer compile. The copy calls itself, exactly as before.
    """
    py_func = getattr(original, "py_func", None)
    if py_func is None or name not in py_func.__code__.co_names:
        return original
    import numba

    scope = dict(py_func.__globals__)
    clone = types.FunctionType(py_func.__code__, scope, py_func.__name__,
                               py_func.__defaults__, py_func.__closure__)
    options = {k: v for k, v in original.targetoptions.items() if k != "nopython"}
    scope[name] = numba.njit(clone, **options)
    return scope[name]


def install() -> None:
    """Put the switches into shap's modules (once per process; calling again does nothing)."""
    for module_name, name, ours, covers in SWITCHES:
        module = importlib.import_module(module_name)
        current = getattr(module, name)
        if not hasattr(current, _INSTALLED):
            original = _calling_itself(current, name)
            setattr(module, name, _switch(original, ours, covers))


def compiled(module_name: str, name: str) -> Callable:
    """shap's own function behind a switch (for tests and benchmarks)."""
    current = getattr(importlib.import_module(module_name), name)
    return getattr(current, _INSTALLED, current)
