"""The one settings model: every option declared once here with its default, versioned.

Stored as JSON in the user's config directory. A file from an older version is upgraded
step by step (``_UPGRADES``); unknown keys are dropped and bad values fall back to their
defaults with a warning, so a hand-edited file never stops the app from starting. The API key
of a remote LLM server is never part of it (see ``api_key``): settings get logged and shown.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from app.paths import config_dir

SETTINGS_VERSION = 2
SETTINGS_FILE = "settings.json"
KEY_FILE = "llm_api_key"  # 0600, beside the settings, never in the database or the logs
LLM_BACKENDS = ("embedded", "local", "openai")
MEANINGS = ("reviewed", "approved")
THEMES = ("system", "light", "dark")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    """What the user can change. ``""`` means "the default" where a path or name is empty."""

    version: int = SETTINGS_VERSION
    reviewer: str = ""  # the name on signatures; "" = the login name
    signature_meaning: str = "reviewed"
    # After this long without a signing, the next one needs the login id again (11.200(a)).
    signing_idle_minutes: int = 15
    blind_review: bool = False  # hide the model's answer until a first judgement is recorded
    # The share of AUTO decisions sent to the review queue, blind, as the audit sample the
    # guarantee monitor reads (0 turns the audit off).
    audit_share: float = 0.05
    review_queue: bool = True  # after a review, open the next unreviewed case
    # After training in the window, fit the new model's amortized explainer in the background
    # (minutes; what gives the instant first attribution).
    explainer_after_training: bool = True
    alpha: float = 0.10  # tolerated error rate of AUTO decisions
    delta: float = 0.10  # allowed chance that the guarantee fails
    llm_backend: str = "embedded"
    llm_model: str = ""  # local: a directory or .gguf; openai: the server's model name
    llm_base_url: str = ""  # openai-compatible servers
    allow_remote: bool = False  # send de-identified cases to a non-loopback server
    open_llm_on_escalation: bool = True
    data_dir: str = ""  # "" = the platform's user data directory
    # A team's shared history: postgresql+psycopg://user@host:5432/database (no password:
    # that is in the key store, app.store_location); "" = casewise.db in the data folder.
    database_url: str = ""
    theme: str = "system"

    def problems(self) -> list[str]:
        """What is wrong with these values, as sentences that say what to do."""
        found = []
        if not 0 < self.alpha < 1 or not 0 < self.delta < 1:
            found.append("α and δ must be between 0 and 1 (for example 0.10).")
        if not 0 <= self.audit_share <= 0.5:
            found.append("The audit share is between 0 and 0.5 (for example 0.05).")
        if self.llm_backend not in LLM_BACKENDS:
            found.append(f"The LLM backend must be one of {', '.join(LLM_BACKENDS)}.")
        if self.llm_backend == "openai" and not (self.llm_base_url and self.llm_model):
            found.append("An OpenAI-compatible server needs its URL and a model name.")
        if self.llm_backend == "local" and not self.llm_model:
            found.append("A local LLM needs a model directory or a .gguf file.")
        if self.signature_meaning not in MEANINGS:
            found.append(f"The signature means one of {', '.join(MEANINGS)}.")
        if self.theme not in THEMES:
            found.append(f"The theme is one of {', '.join(THEMES)}.")
        if self.database_url:
            from app.store_location import LocationError, parse_url

            try:
                parse_url(self.database_url)
            except LocationError as exc:
                found.append(str(exc))
        return found

    def reviewer_name(self) -> str:
        return self.reviewer.strip() or login_name()

    def data_path(self) -> Path:
        from app.paths import data_dir

        return Path(self.data_dir).expanduser() if self.data_dir else data_dir()


DEFAULTS = Settings()


def login_name() -> str:
    """The login name, the store's rule for an unnamed actor. Kept here rather than imported
    from ``app.store`` so that reading a setting never loads SQLAlchemy (on the GUI thread)."""
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (some containers, services)
        return "unknown"


def _v1_to_v2(raw: dict) -> dict:
    # Version 1 called the auto-open switch "auto_open_llm".
    raw = dict(raw)
    if "auto_open_llm" in raw:
        raw["open_llm_on_escalation"] = raw.pop("auto_open_llm")
    return raw


_UPGRADES: dict[int, Callable[[dict], dict]] = {1: _v1_to_v2}

# Values a field can hold on its own; what depends on several fields stays in problems().
_VALID: dict[str, Callable[[object], bool]] = {
    "alpha": lambda v: 0 < v < 1,
    "delta": lambda v: 0 < v < 1,
    "llm_backend": lambda v: v in LLM_BACKENDS,
    "signature_meaning": lambda v: v in MEANINGS,
    "signing_idle_minutes": lambda v: 1 <= v <= 480,
    "theme": lambda v: v in THEMES,
    "version": lambda v: v == SETTINGS_VERSION,
    "database_url": lambda v: not v or _usable_database_url(v),
}
SECRET_BEARING = ("database_url",)  # values never logged as they are


def _usable_database_url(value: object) -> bool:
    from app.store_location import LocationError, parse_url

    try:
        parse_url(str(value))
    except LocationError:
        return False
    return True


def _any(_value: object) -> bool:
    return True


def settings_path(directory: Path | None = None) -> Path:
    return (directory or config_dir()) / SETTINGS_FILE


def upgrade(raw: dict) -> dict:
    """Bring an older settings dict up to ``SETTINGS_VERSION``, one version at a time."""
    version = raw.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        log.warning("settings: version %r is not a version; reading it as version 1", version)
        version = 1
    while version < SETTINGS_VERSION:
        raw = _UPGRADES[version](raw)
        version += 1
    return {**raw, "version": SETTINGS_VERSION}


def from_dict(raw: dict) -> Settings:
    """Settings from a (possibly older, possibly hand-edited) dict; bad values get defaults."""
    raw = upgrade(raw)
    kept = {}
    for field in fields(Settings):
        if field.name not in raw:
            continue
        default = getattr(DEFAULTS, field.name)
        value = raw[field.name]
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not type(default):
            log.warning("settings: %s=%r is not a %s; using %r", field.name, value,
                        type(default).__name__, default)
            continue
        if not _VALID.get(field.name, _any)(value):
            shown = "(hidden: it may hold a password)" if field.name in SECRET_BEARING \
                else repr(value)
            log.warning("settings: %s=%s is not allowed; using %r", field.name, shown, default)
            continue
        kept[field.name] = value
    settings = replace(DEFAULTS, **kept)
    for problem in settings.problems():
        log.warning("settings: %s", problem)
    return settings


def load_settings(directory: Path | None = None) -> Settings:
    """The saved settings, or the defaults when there are none or the file is unreadable."""
    path = settings_path(directory)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return DEFAULTS
    except (OSError, ValueError) as exc:
        log.warning("settings: cannot read %s (%s); using the defaults", path, exc)
        return DEFAULTS
    return from_dict(raw) if isinstance(raw, dict) else DEFAULTS


def save_settings(settings: Settings, directory: Path | None = None) -> Path:
    """Write atomically: a crash leaves the old file or the new one, never half of one."""
    problems = settings.problems()
    if problems:
        raise ValueError(" ".join(problems))
    path = settings_path(directory)
    _write_atomically(path, json.dumps(asdict(settings), indent=2, sort_keys=True) + "\n")
    return path


def _write_atomically(path: Path, content: str, mode: int = 0o644) -> None:
    from models.artifact import write_text_atomically

    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, content, mode)


def api_key(directory: Path | None = None) -> str | None:
    """The remote server's key: the environment first, then the private key file."""
    from_env = os.environ.get("CASEWISE_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY")
    if from_env:
        return from_env
    try:
        return (directory or config_dir()).joinpath(KEY_FILE).read_text().strip() or None
    except OSError:
        return None


def save_api_key(key: str, directory: Path | None = None) -> None:
    """Keep the key in a file only this user can read ("" removes it)."""
    path = (directory or config_dir()) / KEY_FILE
    if not key:
        path.unlink(missing_ok=True)
        return
    _write_atomically(path, key.strip() + "\n", mode=0o600)
