"""The headless command line: ``python main.py <command>``. No Qt is imported here."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from app.cli.terminal import safe_output
from models.errors import CasewiseError
from models.progress import Cancelled

__all__ = ["build_parser", "main"]


def cmd_start(args: argparse.Namespace) -> int:
    """No command: open the desktop window (it offers to train the default model when there
    is none); ``--screenshot DIR`` photographs it on a sample case instead. The window is
    opened by ``main.py``'s ``open_window``: the core (this package) never imports Qt."""
    if args.screenshot or _has_display():
        if args.open_window is None:
            raise CasewiseError("The desktop window opens from main.py: run "
                                "`python main.py` (with no command).")
        return args.open_window(args)
    return _headless_start(args)


def _has_display() -> bool:
    """Whether a window can open: a display on Linux, or a Qt platform chosen explicitly."""
    import os

    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _headless_start(args: argparse.Namespace) -> int:
    """No screen (a server, a container, CI): say so, make sure a model exists, run the demo."""
    from app.cli.case_cmds import cmd_demo
    from app.cli.common import registry
    from app.cli.models_cmds import cmd_train

    print("No display here, so the desktop window cannot open (run `xvfb-run python main.py` "
          "or set QT_QPA_PLATFORM=offscreen to force it). Running the headless demo instead.\n",
          file=sys.stderr)
    if registry(args).active_id() is None:
        print("No model yet: training the default model on the drug-review demo data "
              "(a few minutes on a laptop CPU).", file=sys.stderr)
        cmd_train(build_parser().parse_args(["train"]))  # a store warning is printed there
        print()
    return cmd_demo(args)


def build_parser() -> argparse.ArgumentParser:
    # The command modules are imported here, not at the top, so that ``import app.cli`` (and
    # ``app.cli.common``, which every command module imports) stays cheap and acyclic.
    from app.cli import (
        case_cmds,
        db_cmds,
        export_cmds,
        history_cmds,
        llm_cmds,
        models_cmds,
        users_cmds,
    )

    parser = argparse.ArgumentParser(prog="casewise", description=__doc__)
    parser.set_defaults(handler=cmd_start, screenshot=None)
    parser.add_argument("--screenshot", metavar="DIR",
                        help="open the window on a sample case, save PNGs of it into DIR, exit")
    commands = parser.add_subparsers(title="commands")
    # In the order the help has always listed them.
    models_cmds.add_train_parser(commands)
    case_cmds.add_predict_parsers(commands)
    models_cmds.add_model_parsers(commands)
    llm_cmds.add_ask_parser(commands)
    llm_cmds.add_redact_parser(commands)
    llm_cmds.add_export_llm_parser(commands)
    history_cmds.add_history_parsers(commands)
    users_cmds.add_users_parsers(commands)
    export_cmds.add_export_parser(commands)
    case_cmds.add_demo_parser(commands)
    db_cmds.add_db_parsers(commands)
    return parser


def main(argv: list[str] | None = None,
         open_window: Callable[[argparse.Namespace], int] | None = None) -> int:
    """Run one command; with none, ``open_window(args)`` opens the desktop app."""
    from app.cli.common import with_settings

    # The settings are read once, here: a damaged settings file warns once, not per use.
    args = with_settings(build_parser().parse_args(argv))
    args.open_window = open_window
    with safe_output():  # nothing printed can drive the terminal (app.cli.terminal)
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        return args.handler(args)
    except CasewiseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Cancelled:
        print("cancelled; nothing was saved", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("\ninterrupted; nothing was saved", file=sys.stderr)
        return 130
