"""A GGUF model through llama-cpp-python, when that optional extra is installed
(`pip install llama-cpp-python==0.3.36`; the index has it only as source, so it compiles
llama.cpp). It is usually faster than ``transformers`` on a CPU for quantised models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from models.llm.base import LLMBackend, LLMError, Message, Usage
from models.progress import CancelFlag, raise_if_cancelled

INSTALL_HINT = ("llama-cpp-python is not installed (an optional extra that compiles llama.cpp: "
                "`pip install llama-cpp-python==0.3.36`); use the embedded backend instead.")


class LlamaCppBackend(LLMBackend):
    name = "llama-cpp"

    def __init__(self, path: Path, context_length: int = 4096) -> None:
        super().__init__()
        try:
            import llama_cpp
        except ImportError as exc:
            raise LLMError(INSTALL_HINT) from exc
        self.path = Path(path)
        self.model = self.path.name
        if not self.path.is_file():
            raise LLMError(f"The model file {self.path} does not exist.")
        try:
            self._llm = llama_cpp.Llama(model_path=str(self.path), n_ctx=context_length,
                                        verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise LLMError(f"llama.cpp could not load {self.path}: {exc}") from exc
        self.context_length = context_length

    def stream(self, messages: list[Message], max_tokens: int = 384, temperature: float = 0.0,
               cancel: CancelFlag | None = None) -> Iterator[str]:
        self.last_usage = Usage()
        text = []
        try:
            chunks = self._llm.create_chat_completion(messages=messages, max_tokens=max_tokens,
                                                      temperature=temperature, stream=True)
            for chunk in chunks:
                raise_if_cancelled(cancel)
                piece = chunk["choices"][0]["delta"].get("content")
                if piece:
                    text.append(piece)
                    yield piece
        except (ValueError, RuntimeError) as exc:
            raise LLMError(f"llama.cpp failed while writing: {exc}") from exc
        prompt = "".join(m["content"] for m in messages)
        self.last_usage = Usage(len(self._llm.tokenize(prompt.encode())),
                                len(self._llm.tokenize("".join(text).encode(), add_bos=False)))
