"""The Qt binding must not leak references to None (PySide6 6.12.0 on Python 3.11 did: each
void call such as ``setText`` dropped one, and a long session aborted with none_dealloc)."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers.data import PROJECT_ROOT

CALLS = 20_000
PROBE = f"""
import sys
from PySide6.QtWidgets import QApplication, QLabel
app = QApplication([])
label = QLabel()
before = sys.getrefcount(None)
for _ in range({CALLS}):
    label.setText("x")
print(sys.getrefcount(None) - before)
"""


def test_void_qt_calls_keep_none_alive():
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                            cwd=PROJECT_ROOT, env={"QT_QPA_PLATFORM": "offscreen",
                                                   "PATH": "/usr/bin:/bin"}, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert abs(int(result.stdout.strip())) < CALLS // 100, "the binding leaks None references"
