"""The real window for GUI tests: the small model, a real SQLite case history, a real loopback
LLM server (``gui(**settings)`` builds one, ready to analyse), and the cases the tests type.

Fixtures are imported by the test modules that use them.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPlainTextEdit

from app.settings import Settings
from app.ui.app import make_window, start_background
from tests.helpers.llm_server import serving
from tests.helpers.ui_accounts import add_user

# Longer than the small model's 32-token window (read whole, in windows), escalated (the tiny
# model certifies no threshold), and its words are the synthetic data's negative ones, so the
# model says "negative".
NEGATIVE_CASE = ("awful terrible rash and pain, the medicine was horrible and my doctor stopped "
                 "it after two weeks because the pain got worse and the rash spread over my "
                 "arms and legs, it was awful every single day and i was miserable")
OTHER_CASE = "great wonderful relief the medicine works and i am happy case 3"
LLM_ANSWER = ['{"explanation": "The patient', ' reports good', ' relief overall.", ',
              '"label": "positive", "words": ["medicine"]}']
WAIT = 60_000  # ms: generous for a shared 2-core machine


@pytest.fixture()
def llm_server():
    with serving(LLM_ANSWER) as server:
        yield server


def started_window(qtbot, settings: Settings, config_dir):
    """The real window shown with its background work started (the model, the history):
    (context, window), without waiting for either."""
    context, window = make_window(settings, config_dir)
    qtbot.addWidget(window)
    window.show()
    start_background(context, window)
    return context, window


@pytest.fixture()
def gui(qtbot, home, tmp_path, llm_server):
    """``gui(**settings)``: the real window on the small model, ready to analyse."""
    made = []

    def make(**overrides):
        chosen = {"data_dir": str(home), "reviewer": "Dr. Ada Test", "review_queue": False,
                  "llm_backend": "openai", "llm_base_url": llm_server.url,
                  "llm_model": "scripted", **overrides}
        settings = replace(Settings(), **chosen)
        context, window = started_window(qtbot, settings, tmp_path / "config")
        qtbot.waitUntil(lambda: context.workbench is not None and context.store is not None,
                        timeout=WAIT)
        qtbot.waitUntil(lambda: context.runner.running == 0, timeout=WAIT)  # warmed up
        add_user(qtbot, context, "ann")  # an approver (after the admin): signs in the tests
        made.append(window)
        return window

    yield make
    for window in made:
        window.close()


def type_and_analyze(qtbot, window, text: str) -> None:
    editor = window.findChild(QPlainTextEdit, "caseEditor")
    editor.setFocus()
    editor.setPlainText(text)
    qtbot.keyClick(editor, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)


def settled(window) -> bool:
    """The case is stored with its attribution and nothing is running for it."""
    state = window.case_view.state
    return state is not None and state.case_id is not None and \
        state.attribution is not None and not window.case_view.busy


