"""A real OpenAI-compatible server for the tests: ``transformers serve`` (the pinned
transformers with its serving extras, fastapi and uvicorn) on a free loopback port, serving the
embedded SmolLM2 as the app exports it (``models.llm.served_copy``: the GGUF dequantised into a
model folder, served by its relative name from the folder above it). The scripted server in
``tests.helpers.llm_server`` stays for the faults a real server will not produce on demand.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers.llm_server import free_port

SERVED_NAME = "smollm2"  # the folder's name, which is the model name the server lists
READY_SECONDS = 180.0


def served_model(cache_root: Path) -> Path:
    """The exported model folder, made once per machine (it takes ~20 s) under the tests'
    cache: the export is what is under test elsewhere, not on every run."""
    from models.embedded import embedded_llm_file
    from models.llm.served_copy import write_served_copy

    folder = cache_root / "served-llm" / SERVED_NAME
    if not (folder / "model.safetensors").is_file():
        write_served_copy(embedded_llm_file(), folder)
    return folder


@dataclass
class ServedLLM:
    """One ``transformers serve`` process and where to reach it."""

    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def model(self) -> str:
        return self.folder.name

    def start(self) -> ServedLLM:
        serve = Path(sys.executable).with_name("transformers")
        self.log = self.folder.parent / f"serve-{self.port}.log"
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error",
               "TOKENIZERS_PARALLELISM": "false"}
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [str(serve), "serve", "--host", "127.0.0.1", "--port", str(self.port),
                 "--device", "cpu", self.model],  # by its relative name (see module doc)
                cwd=self.folder.parent, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        return self

    def wait_ready(self, seconds: float = READY_SECONDS) -> ServedLLM:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"transformers serve exited ({self.process.returncode}): "
                                   f"{self.log.read_text(errors='replace')[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/models", timeout=2) as reply:
                    if self.model.encode() in reply.read():
                        return self
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"transformers serve was not ready in {seconds:.0f} s: "
                           f"{self.log.read_text(errors='replace')[-2000:]}")

    def kill(self) -> None:
        """SIGKILL, as a crash: no goodbye to open connections."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
