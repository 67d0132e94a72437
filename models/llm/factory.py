"""Build the backend the user chose: embedded (default), a local model, or a server."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from models.llm.base import LLMBackend, LLMError

BACKENDS = ("embedded", "local", "openai", "llama-cpp")
# The embedded model takes seconds to load: one copy per process, loaded on first use.
_embedded = None
_embedded_lock = threading.Lock()


def embedded_backend() -> LLMBackend:
    """The process's one embedded model (the GUI calls this early, off the GUI thread)."""
    global _embedded
    with _embedded_lock:
        if _embedded is None:
            from models.llm.transformers_backend import TransformersBackend

            _embedded = TransformersBackend.embedded()
        return _embedded


def make_backend(kind: str = "embedded", model: str | None = None,
                 base_url: str | None = None, api_key: str | None = None,
                 timeout: float = 60.0) -> LLMBackend:
    """The backend, loaded and ready. Raises LLMError with what to fix."""
    if kind == "embedded":
        return embedded_backend()
    if kind == "local":
        if not model:
            raise LLMError("The local backend needs --model: a model directory or a .gguf file.")
        from models.llm.transformers_backend import TransformersBackend

        return TransformersBackend(Path(model).expanduser(), name="local")
    if kind == "openai":
        if not base_url or not model:
            raise LLMError("The OpenAI-compatible backend needs --base-url (for example "
                           "http://localhost:11434/v1 for Ollama) and --model.")
        from models.llm.openai_backend import OpenAICompatibleBackend

        key = api_key or os.environ.get("CASEWISE_LLM_API_KEY") or os.environ.get(
            "OPENAI_API_KEY")
        return OpenAICompatibleBackend(base_url, model, api_key=key, timeout=timeout)
    if kind == "llama-cpp":
        from models.embedded import embedded_llm_file
        from models.llm.llama_cpp_backend import LlamaCppBackend

        return LlamaCppBackend(Path(model).expanduser() if model else embedded_llm_file())
    raise LLMError(f"Unknown backend {kind!r}; choose one of {BACKENDS}.")
