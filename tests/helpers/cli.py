"""Running the command line: as a user does (a subprocess of main.py), or in this process
through ``app.cli.main`` with pytest's ``capsys`` capturing what it prints."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.data import PROJECT_ROOT


def run_cli(home: Path, *args: str, check: bool = True, env: dict[str, str] | None = None,
            input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    """``python main.py ARGS`` with CASEWISE_HOME=home (and ``env`` on top); with ``check``,
    a non-zero exit fails the test and shows stderr. ``input_text``: its standard input (a
    pipe, not a terminal)."""
    environment = {**os.environ, "CASEWISE_HOME": str(home), "OMP_NUM_THREADS": "1",
                   **(env or {})}
    result = subprocess.run([sys.executable, "main.py", *args], cwd=PROJECT_ROOT,
                            env=environment, capture_output=True, text=True, timeout=300,
                            input=input_text)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}: {result.stderr}")
    return result


@dataclass(frozen=True)
class CliOutput:
    code: int
    out: str
    err: str


def run_main(argv: list[str], capsys, code: int | None = 0) -> CliOutput:
    """``app.cli.main(argv)`` in this process: its exit code (checked against ``code`` unless
    that is None) and what it printed."""
    from app.cli import main

    returned = main(argv)
    captured = capsys.readouterr()
    if code is not None:
        assert returned == code, f"exit {returned}, not {code}: {captured.err}"
    return CliOutput(returned, captured.out, captured.err)
