"""``users add|list|passwd|disable|enable``: the accounts of the case history.

The first user of a history is its admin and needs no sign-in; everything after needs an
admin's login id and password (changing your own password needs yours).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from app.accounts.keys import short_fingerprint
from app.accounts.names import ROLES, escaped
from app.cli.auth import (
    acting_login,
    add_auth_options,
    read_new_password,
    read_password,
    signed_in,
)
from app.cli.common import add_db_option, open_cli_store


def cmd_users_add(args: argparse.Namespace) -> int:
    from app.accounts.service import AccountSession, create_user

    with open_cli_store(args) as store:
        first = not store.has_users()
        session = AccountSession(store) if first else signed_in(store, args)
        if first and args.role != "admin":
            print("The first user of a case history is its admin; adding them as admin.")
        password = read_new_password(args, args.login)
        account = create_user(session, args.login, args.name, "admin" if first else args.role,
                              password)
    print(f"user {account.login} ({escaped(account.full_name)}, {account.role}) added; "
          f"signing key {short_fingerprint(account.key_fingerprint)}")
    return 0


def cmd_users_list(args: argparse.Namespace) -> int:
    with open_cli_store(args) as store:
        users = store.users()
    if args.json:
        print(json.dumps([asdict(u) for u in users], ensure_ascii=False))
        return 0
    if not users:
        print("no users yet: `users add LOGIN --name 'Full Name'` makes the first (the admin)")
    for user in users:
        status = "disabled" if user.disabled else "locked" if user.locked else "active"
        print(f"{user.login:<16} {user.role:<9} {status:<8} {escaped(user.full_name):<30} "
              f"key {short_fingerprint(user.key_fingerprint)}")
    return 0


def cmd_users_passwd(args: argparse.Namespace) -> int:
    from app.accounts.service import change_password, reset_password

    with open_cli_store(args) as store:
        if args.reset:
            session = signed_in(store, args)  # an admin, checked by reset_password
            account = reset_password(session, args.reset,
                                     read_new_password(args, args.reset))
            print(f"password of {account.login} reset; new signing key "
                  f"{short_fingerprint(account.key_fingerprint)} (old signatures still "
                  "verify); the account is unlocked")
            return 0
        from app.accounts.service import AccountSession

        session = AccountSession(store)
        login = acting_login(args)
        current = read_password(args, f"Current password for {login}: ")
        session.sign_in(login, current)
        account = change_password(session, current, read_new_password(args, login))
    print(f"password of {account.login} changed; same signing key "
          f"{short_fingerprint(account.key_fingerprint)}")
    return 0


def cmd_users_rotate_key(args: argparse.Namespace) -> int:
    from app.accounts.service import AccountSession, rotate_key

    with open_cli_store(args) as store:
        session = AccountSession(store)
        login = acting_login(args)
        password = read_password(args, f"Password for {login}: ")
        session.sign_in(login, password)
        account = rotate_key(session, password)
    print(f"new signing key for {account.login}: {short_fingerprint(account.key_fingerprint)} "
          "(signatures made with the old key still verify)")
    return 0


def cmd_users_disable(args: argparse.Namespace) -> int:
    from app.accounts.service import set_disabled

    with open_cli_store(args) as store:
        account = set_disabled(signed_in(store, args), args.login, args.disable)
    print(f"user {account.login} {'disabled' if account.disabled else 'enabled'}")
    return 0


def add_users_parsers(commands) -> None:
    users = commands.add_parser("users", help="accounts: who may sign reviews, and how")
    sub = users.add_subparsers(title="users commands", required=True)
    add = sub.add_parser("add", help="add a user (the first one is the admin)")
    add.add_argument("login", help="login id: 2-64 of a-z 0-9 . _ -")
    add.add_argument("--name", required=True, help="full name, as printed with signatures")
    add.add_argument("--role", choices=ROLES, default="reviewer",
                     help="reviewer (signs 'reviewed'), approver (also 'approved'), admin "
                          "(also users, models, alpha/delta); default reviewer")
    add.set_defaults(handler=cmd_users_add)
    listing = sub.add_parser("list", help="list the users")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=cmd_users_list)
    passwd = sub.add_parser("passwd", help="change your password, or (admin) reset another's")
    passwd.add_argument("--reset", metavar="LOGIN",
                        help="as an admin, set a new password for LOGIN (gives them a new "
                             "signing key and unlocks the account)")
    passwd.set_defaults(handler=cmd_users_passwd)
    rotate = sub.add_parser("rotate-key", help="replace your signing key pair (old signatures "
                                                "stay verifiable)")
    rotate.set_defaults(handler=cmd_users_rotate_key)
    add_auth_options(rotate)
    add_db_option(rotate)
    for name, disable in (("disable", True), ("enable", False)):
        toggle = sub.add_parser(name, help=f"{name} a user (admin)")
        toggle.add_argument("login")
        toggle.set_defaults(handler=cmd_users_disable, disable=disable)
        add_auth_options(toggle)
        add_db_option(toggle)
    for parser in (add, passwd):
        add_auth_options(parser, new_password=True)
    for parser in (add, listing, passwd):
        add_db_option(parser)
