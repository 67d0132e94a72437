"""``db copy``: the case history's database as a whole (``app.store.copy``); ``db password``:
the key store's password of a team database (``app.store_location``).

``add_db_parsers`` returns the ``db`` group's sub-parsers, so another ``db`` subcommand is one
more ``add_parser`` on it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.cli.auth import read_password
from app.cli.common import TerminalProgress


def cmd_db_copy(args: argparse.Namespace) -> int:
    # Imported here: the store (SQLAlchemy, alembic) costs a second to import, and --help
    # should not pay it.
    from app.store.copy import copy_history
    from app.store_location import history_location

    # A URL's password comes from the key store (or CASEWISE_DB_PASSWORD), never the argument.
    source, target = (history_location(place, "", Path.cwd()) for place in
                      (args.source, args.target))
    reporter = TerminalProgress()
    try:
        report = copy_history(source, target, append=args.append, progress=reporter)
    finally:
        reporter.close()
    # A refusal or failure is a CasewiseError: app.cli prints it as one line, exit 2.
    print(report.summary())
    return 0


def cmd_db_password(args: argparse.Namespace) -> int:
    """Keep the password of a team database in the key store (0600, beside the settings),
    read at a terminal without echo, from a file or from standard input — never an
    argument. ``--forget`` removes it."""
    from app.store_location import parse_url, save_database_password, shown

    url = parse_url(args.url)
    if url.get_backend_name() != "postgresql":
        print(f"error: {shown(url)} is not a server database: it has no password.",
              file=sys.stderr)
        return 2
    password = "" if args.forget else read_password(args, f"Password for {shown(url)}: ")
    if not args.forget and not password:
        print("error: the password is empty; nothing was stored.", file=sys.stderr)
        return 2
    save_database_password(url, password)
    print(f"{'Forgot' if args.forget else 'Stored'} the password for {shown(url)}.")
    return 0


def add_db_parsers(commands) -> argparse._SubParsersAction:
    """The ``db`` command group with its ``copy`` subcommand; returns the group's
    sub-parsers for more subcommands."""
    db = commands.add_parser("db", help="the case history's database: copy it to another "
                                        "(SQLite file or PostgreSQL URL)")
    db_commands = db.add_subparsers(title="db commands", required=True)
    copy = db_commands.add_parser(
        "copy", help="copy a whole case history into an empty database (or, with --append, "
                     "bring an earlier copy up to date); the source must verify, and the "
                     "copy is verified before it is committed")
    copy.add_argument("source", metavar="SRC", help="the history to copy: a file or an "
                                                    "SQLAlchemy URL")
    copy.add_argument("target", metavar="DST", help="where to copy it: a new file, or the URL "
                                                    "of an empty database")
    copy.add_argument("--append", action="store_true",
                      help="DST holds an earlier copy of SRC: add what SRC has since")
    copy.set_defaults(handler=cmd_db_copy)
    password = db_commands.add_parser(
        "password", help="keep a team database's password in the key store (a file only you "
                         "can read), so URLs and settings never hold it")
    password.add_argument("url", metavar="URL", help="the database URL, without a password: "
                                                     "postgresql+psycopg://user@host/db")
    given = password.add_mutually_exclusive_group()
    given.add_argument("--password-file", metavar="FILE",
                       help="read it from the first line of FILE (0600)")
    given.add_argument("--password-stdin", action="store_true",
                       help="read it from standard input")
    given.add_argument("--forget", action="store_true", help="remove the stored password")
    password.set_defaults(handler=cmd_db_password)
    return db_commands
