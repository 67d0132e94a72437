"""An amortized explainer: word Shapley values from one forward pass of the encoder.

After fine-tuning, a small head on the fine-tuned encoder's token states learns to predict the
Shapley values that sampling estimates for the training texts (Yang et al., ACL 2023,
"Efficient Shapley Values Estimation by Amortization for Text Classification"). The targets are
deliberately cheap and noisy — one antithetic permutation pair per text, an unbiased estimate —
because a head fitted by least squares to unbiased targets learns their expectation across
texts (Covert et al., 2024, "Stochastic Amortization"). The encoder is never changed.

A word's input is the mean of its tokens' last hidden states beside the mean over the whole text
(its context), and the mean of its tokens' states in lower layers of the same forward pass
(``lower_layers``: what the word is, before the last layers mix it with its neighbours; the
benchmark measured the gain). The head predicts n x value for every class (Shapley values shrink
with the number of words n), and the answer is made efficient by spreading the remainder
evenly: base + sum = the model's probability for every class. ``base`` is the model on the
empty text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from explainers import estimators
from explainers.model_function import CachedModelFunction
from explainers.words import word_spans
from models.classifier import Classifier
from models.progress import CancelFlag, Progress, ProgressCallback, raise_if_cancelled
from models.windows import window_starts

HIDDEN = 128
TARGET_SEED = 17
# Training texts this short get exact targets (2^n calls cost about one permutation pair).
TARGET_EXACT_MAX_WORDS = 8


@dataclass(frozen=True)
class WordStates:
    """Per word of a text (the part the model reads): [words, (2 + lower layers) x hidden]
    inputs of the head."""

    text: str
    features: np.ndarray


def lower_layers(classifier: Classifier) -> tuple[int, ...]:
    """The hidden-state indices (0: the embeddings) whose word means join the head's inputs:
    every layer below the last."""
    return tuple(range(classifier.model.config.num_hidden_layers))


def word_states(classifier: Classifier, texts: Sequence[str], batch_size: int = 16,
                cancel: CancelFlag | None = None,
                layers: Sequence[int] = ()) -> list[WordStates]:
    """The head's inputs for each text, from one forward pass of its windows: the words' last
    states, the text's mean last state, then each of ``layers``' word states."""
    import torch

    from models.inference import length_sorted_batches, pad_batch

    tokenizer = classifier.tokenizer
    wrap = tokenizer("", add_special_tokens=True)["input_ids"]
    body = classifier.max_length - len(wrap)
    visible = [text[: classifier.seen_prefix(text)] for text in texts]
    encoded = tokenizer(visible, add_special_tokens=False, return_offsets_mapping=True,
                        verbose=False)
    windows, owners = [], []  # (text, first token) per window
    for owner, ids in enumerate(encoded["input_ids"]):
        starts = [0] if classifier.pooling == "first" else window_starts(len(ids), body)
        for start in starts:
            windows.append([*wrap[:1], *ids[start : start + body], *wrap[1:]])
            owners.append((owner, start))
    size = classifier.model.config.hidden_size
    depth = 1 + len(layers)  # the last layer first
    sums = [np.zeros((depth, len(ids), size), np.float32) for ids in encoded["input_ids"]]
    counts = [np.zeros(len(ids), np.float32) for ids in encoded["input_ids"]]
    classifier.model.eval()
    with torch.inference_mode():
        for batch in length_sorted_batches([len(w) for w in windows], batch_size):
            raise_if_cancelled(cancel)
            inputs = pad_batch([windows[i] for i in batch], tokenizer.pad_token_id)
            hidden = classifier.model(**inputs, output_hidden_states=True).hidden_states
            stacked = torch.stack([hidden[-1], *(hidden[k] for k in layers)], 1).float()
            for row, index in enumerate(batch):
                owner, start = owners[index]
                length = len(windows[index]) - len(wrap)
                sums[owner][:, start : start + length] += \
                    stacked[row, :, 1 : 1 + length].numpy()
                counts[owner][start : start + length] += 1
    return [_word_features(text, sums[i] / np.maximum(counts[i], 1)[None, :, None],
                           encoded["offset_mapping"][i])
            for i, text in enumerate(visible)]


def _word_features(text: str, tokens: np.ndarray, offsets) -> WordStates:
    """``tokens`` [layers, tokens, hidden], the last layer first: each word's mean state in
    the last layer, the text's mean there, then the word's mean in each other layer."""
    spans = word_spans(text)
    depth, count, size = tokens.shape
    words = np.zeros((depth, len(spans), size), np.float32)
    starts = np.array([o[0] for o in offsets]) if offsets else np.zeros(0)
    ends = np.array([o[1] for o in offsets]) if offsets else np.zeros(0)
    for i, span in enumerate(spans):
        inside = (starts < span.end) & (ends > span.start)
        if inside.any():
            words[:, i] = tokens[:, inside].mean(1)
    context = tokens[0].mean(0) if count else np.zeros(size, np.float32)
    return WordStates(text, np.concatenate([words[0], np.broadcast_to(context, words[0].shape),
                                            *words[1:]], 1))


def shapley_targets(classifier: Classifier, texts: Sequence[str], pairs: int = 1,
                    seed: int = TARGET_SEED, progress: ProgressCallback | None = None,
                    cancel: CancelFlag | None = None, first_index: int = 0,
                    stage: str = "explainer targets") -> list[np.ndarray]:
    """Sampled Shapley values [words, classes] of each text (what the model reads of it):
    ``pairs`` antithetic permutation pairs each, text i drawn from the seed sequence [seed, i]
    (i counted from ``first_index``), so the texts can be done in chunks with the same
    answers."""
    targets = []
    for i, text in enumerate(texts, start=first_index):
        raise_if_cancelled(cancel)
        visible = text[: classifier.seen_prefix(text)]
        game = estimators.WordGame(CachedModelFunction(classifier, cancel=cancel), visible)
        if game.n == 0:
            targets.append(np.zeros((0, len(classifier.labels))))
        elif game.n <= TARGET_EXACT_MAX_WORDS:
            targets.append(estimators.exact(game).values)
        else:
            estimate, _ = estimators.permutation_pairs(game, pairs,
                                                       np.random.default_rng([seed, i]))
            targets.append(estimate.values)
        if progress is not None:
            progress(Progress(stage, i + 1 - first_index, len(texts)))
    return targets


@dataclass(frozen=True)
class AmortizedHead:
    """LayerNorm -> Linear -> GELU -> Linear over a word's inputs; plain arrays, no torch."""

    norm_weight: np.ndarray
    norm_bias: np.ndarray
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray

    def scaled_values(self, features: np.ndarray) -> np.ndarray:
        """n x value [words, classes] for each word's inputs."""
        mean = features.mean(1, keepdims=True)
        var = features.var(1, keepdims=True)
        x = (features - mean) / np.sqrt(var + 1e-5) * self.norm_weight + self.norm_bias
        h = x @ self.w1.T + self.b1
        h = 0.5 * h * (1 + np.tanh(0.7978845608 * (h + 0.044715 * h ** 3)))
        return h @ self.w2.T + self.b2

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in
                ("norm_weight", "norm_bias", "w1", "b1", "w2", "b2")}


def efficient_values(heads: Sequence[AmortizedHead], states: WordStates, base: np.ndarray,
                     probabilities: np.ndarray) -> np.ndarray:
    """Each head's values [heads, words, classes], the remainder spread evenly over the words
    so that base + sum = probabilities for every head."""
    n = len(states.features)
    if n == 0:
        return np.zeros((len(heads), 0, len(base)))
    raw = np.stack([head.scaled_values(states.features) for head in heads]) / n
    return raw + (probabilities - base - raw.sum(1, keepdims=True)) / n


@dataclass(frozen=True)
class HeadFit:
    """Heads fitted on bootstrap resamples of the training texts (their spread is the answer's
    standard error), early-stopped on the same held-out texts."""

    heads: tuple[AmortizedHead, ...]
    train_texts: int
    held_out_texts: int
    epochs: tuple[int, ...]
    held_out_loss: float  # of the heads' mean, on n x value
    held_out_indices: tuple[int, ...] = ()


HEADS = 5


def _stack(states: Sequence[WordStates], targets: Sequence[np.ndarray], indices):
    import torch

    x = [states[i].features for i in indices if len(states[i].features)]
    y = [targets[i] * len(targets[i]) for i in indices if len(targets[i])]
    return (torch.from_numpy(np.concatenate(x)).float(),
            torch.from_numpy(np.concatenate(y)).float())


def held_out_split(word_counts: Sequence[int], seed: int = 0, share: float = 0.1
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the held-out texts and of the training texts (texts with words only)."""
    usable = [i for i, n in enumerate(word_counts) if n]
    order = np.random.default_rng([seed, 1]).permutation(usable)
    cut = max(1, round(len(order) * share))
    return order[:cut], order[cut:]


def fit_heads(states: Sequence[WordStates], targets: Sequence[np.ndarray], seed: int = 0,
              heads: int = HEADS, held_out: float = 0.1,
              cancel: CancelFlag | None = None) -> HeadFit:
    """Least squares on n x value; the first head on every training text, the others on
    bootstrap resamples of them (texts drawn with replacement)."""
    import torch

    rng = np.random.default_rng(seed)
    held, train = held_out_split([len(s.features) for s in states], seed, held_out)
    x_held, y_held = _stack(states, targets, held)
    fitted, epochs = [], []
    for k in range(heads):
        sample = train if k == 0 else rng.choice(train, size=len(train), replace=True)
        x, y = _stack(states, targets, sample)
        head, used = _fit_one(x, y, x_held, y_held, seed + k, cancel)
        fitted.append(head)
        epochs.append(used)
    with torch.no_grad():
        mean = np.mean([h.scaled_values(x_held.numpy()) for h in fitted], axis=0)
    loss = float(np.mean((mean - y_held.numpy()) ** 2))
    return HeadFit(tuple(fitted), len(train), len(held), tuple(epochs), loss,
                   tuple(int(i) for i in held))


def _fit_one(x_train, y_train, x_held, y_held, seed: int, cancel: CancelFlag | None,
             max_epochs: int = 200, patience: int = 10) -> tuple[AmortizedHead, int]:
    import torch

    torch.manual_seed(seed)
    width, classes = x_train.shape[1], y_train.shape[1]
    net = torch.nn.Sequential(torch.nn.LayerNorm(width), torch.nn.Linear(width, HIDDEN),
                              torch.nn.GELU(approximate="tanh"),
                              torch.nn.Linear(HIDDEN, classes))
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-2)
    best, best_state, since, epochs = float("inf"), None, 0, 0
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(1, max_epochs + 1):
        raise_if_cancelled(cancel)
        epochs = epoch
        net.train()
        for rows in torch.randperm(len(x_train), generator=generator).split(256):
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(net(x_train[rows]), y_train[rows])
            loss.backward()
            optimizer.step()
        net.eval()
        with torch.no_grad():
            held_loss = float(torch.nn.functional.mse_loss(net(x_held), y_held))
        if held_loss < best - 1e-6:
            best, since = held_loss, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        elif (since := since + 1) >= patience:
            break
    net.load_state_dict(best_state)
    p = {k: v.numpy().astype(np.float32) for k, v in net.state_dict().items()}
    return AmortizedHead(p["0.weight"], p["0.bias"], p["1.weight"], p["1.bias"], p["3.weight"],
                         p["3.bias"]), epochs


def empty_text_base(classifier: Classifier) -> np.ndarray:
    """The model's probabilities for the empty text: every Shapley answer's base value."""
    return CachedModelFunction(classifier)([""])[0]
