"""Who acts, from the terminal: the login id and password of the person at the keyboard.

A password is read with ``getpass`` (no echo), or for scripts from the first line of
``--password-file`` or standard input (``--password-stdin``); it is never an argument (a
command line is visible to every user of the machine and lands in shell histories), never
logged, never written to the settings. Each command is one session (21 CFR 11.200(a)): the
first signing needs the login id and the password.
"""

from __future__ import annotations

import argparse
import getpass
import os
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from app.accounts.errors import AccountError

if TYPE_CHECKING:
    from app.accounts.service import AccountSession
    from app.store import CaseRepository

USER_VARIABLE = "CASEWISE_USER"


def add_auth_options(parser: argparse.ArgumentParser, *, new_password: bool = False) -> None:
    parser.add_argument("--user", metavar="LOGIN",
                        help=f"your login id (default: ${USER_VARIABLE}, else asked)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--password-file", metavar="FILE",
                        help="read your password from the first line of FILE (scripts; "
                             "keep it readable by you only)")
    source.add_argument("--password-stdin", action="store_true",
                        help="read your password from the first line of standard input")
    if new_password:
        parser.add_argument("--new-password-file", metavar="FILE",
                            help="read the new password from the first line of FILE "
                                 "(default: asked twice)")


def acting_login(args: argparse.Namespace) -> str:
    login = getattr(args, "user", None) or os.environ.get(USER_VARIABLE)
    if login:
        return login.strip()
    if not sys.stdin.isatty():
        raise AccountError(f"Who is acting? Give --user LOGIN (or set {USER_VARIABLE}).")
    return input("Login id: ").strip()


def read_password(args: argparse.Namespace, prompt: str = "Password: ") -> str:
    if getattr(args, "password_file", None):
        return _first_line(Path(args.password_file))
    if getattr(args, "password_stdin", False):
        return _strip_newline(sys.stdin.readline())
    if not sys.stdin.isatty():
        raise AccountError("No password: type it at a terminal, or give --password-file "
                           "FILE or --password-stdin (a password is never an argument).")
    return getpass.getpass(prompt)


def read_new_password(args: argparse.Namespace, whose: str) -> str:
    if getattr(args, "new_password_file", None):
        return _first_line(Path(args.new_password_file))
    if not sys.stdin.isatty():
        raise AccountError(f"No new password for '{whose}': type it at a terminal, or give "
                           "--new-password-file FILE.")
    first = getpass.getpass(f"New password for {whose}: ")
    if getpass.getpass("Again: ") != first:
        raise AccountError("The two passwords differ; nothing was changed.")
    return first


def _first_line(path: Path) -> str:
    try:
        mode = path.stat().st_mode
        with path.open(encoding="utf-8") as handle:
            line = handle.readline()
    except OSError as exc:
        raise AccountError(f"Cannot read the password file {path}: {exc.strerror}.") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        print(f"warning: {path} can be read by others; `chmod 600 {path}`", file=sys.stderr)
    return _strip_newline(line)


def _strip_newline(line: str) -> str:
    return line.rstrip("\r\n")


def signed_in(store: CaseRepository, args: argparse.Namespace,
              password: str | None = None) -> AccountSession:
    """A session signed in as the acting user (login id and password)."""
    from app.accounts.service import AccountSession

    session = AccountSession(store)
    login = acting_login(args)
    if password is None:
        password = read_password(args, f"Password for {login}: ")
    session.sign_in(login, password)
    return session


def admin_session(store: CaseRepository, args: argparse.Namespace,
                  what: str, password: str | None = None) -> AccountSession | None:
    """An admin signed in, when the history has accounts (None before the first one)."""
    if not store.has_users():
        return None
    session = signed_in(store, args, password)
    session.require("admin", what)
    return session


def require_admin(args: argparse.Namespace, what: str) -> None:
    """Once there are accounts, ``what`` needs an admin's login id and password; the events
    the command then writes name the admin (``args.acting_user``). Checked even with
    ``--no-store``: opting out of the record is not a way around the role.

    The models folder belongs to the data folder, so its own history decides who may change
    it: ``--db`` naming another (say a new, empty) history is no way around the role. When
    ``--db`` names a history with accounts, the admin must be one there too, since that is
    where the events go. The password is read once for both."""
    from app.cli.common import histories_in_play, open_cli_store

    locations = histories_in_play(args)
    password: list[str] = []
    for location in locations:
        store = open_cli_store(args, anchor=False, location=location)
        try:
            if not store.has_users():
                continue
            if not password:  # asked once, for every history that has accounts
                args.user = acting_login(args)
                password.append(read_password(args, f"Password for {args.user}: "))
            session = admin_session(store, args, what, password[0])
            if session is not None and session.user is not None:
                args.acting_user = session.user.login
        finally:
            store.close()

