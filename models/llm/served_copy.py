"""A GGUF model as a plain model directory an OpenAI-compatible server can serve.

``transformers serve`` cannot serve the embedded GGUF file itself (the configuration read from
it names no architecture) and takes a model directory only by a relative path (an absolute one
is read as a hub repository id). What works, tried with the pinned transformers: the GGUF
dequantised once into safetensors, with its tokenizer, chat template and generation settings,
served from the directory it sits in. ``main.py export-llm DIR`` writes that copy; the README
says how to serve it, and the tests serve it for real.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from models.llm.base import LLMError


def write_served_copy(gguf: Path, target: Path) -> Path:
    """Write ``gguf`` as a model directory at ``target`` (which must not exist yet): all of it
    or nothing, written beside it and renamed into place."""
    gguf, target = Path(gguf), Path(target)
    if not gguf.is_file() or gguf.suffix.lower() != ".gguf":
        raise LLMError(f"{gguf} is not a .gguf file: give the GGUF model to export.")
    if target.exists():
        raise LLMError(f"{target} already exists: choose a new folder for the model copy.")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-partial-", dir=target.parent))
    try:
        staging.chmod(0o755)  # mkdtemp's 0700 would hide it from a server run as another user
        _write(gguf, staging)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _write(gguf: Path, directory: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from models.inference import quiet_transformers

    quiet_transformers()
    source = {"pretrained_model_name_or_path": str(gguf.parent), "gguf_file": gguf.name}
    try:
        loaded = AutoModelForCausalLM.from_pretrained(**source)
        tokenizer = AutoTokenizer.from_pretrained(**source)
    except Exception as exc:
        raise LLMError(f"Could not read the model in {gguf} ({type(exc).__name__}: "
                       f"{str(exc)[:200]}). Reinstall it or choose another file.") from exc
    # A model loaded from GGUF remembers its quantisation and refuses to be saved; the same
    # weights in a model built from its configuration save as plain safetensors.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(loaded.state_dict())
    plain.generation_config = loaded.generation_config
    plain.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
