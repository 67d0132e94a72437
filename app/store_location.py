"""Where the case history lives: the SQLite file in the data folder, or a team's database
named by a URL (Settings > Storage, or ``--db``), with its password from the key store.

A database password is a secret: it is never part of a URL the user types, the settings, a
log line, an argument or the audit trail. It is read from ``CASEWISE_DB_PASSWORD`` or from a
file only this user can read (``database_passwords.json``, 0600, beside the settings and the
LLM key), keyed by user, host, port and database, and put into the URL object only when
connecting; everything shown renders the URL without it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from app.paths import DB_FILE, config_dir
from models.errors import CasewiseError

PASSWORD_FILE = "database_passwords.json"  # 0600, beside the settings; never logged
PASSWORD_ENV = "CASEWISE_DB_PASSWORD"
SERVER_BACKENDS = ("postgresql",)


class LocationError(CasewiseError):
    """A database location that cannot be used as given; the message says what to do."""


def is_url(location: str | Path | URL) -> bool:
    return isinstance(location, URL) or (isinstance(location, str) and "://" in location)


def parse_url(text: str) -> URL:
    """A database URL as typed (without a password), or LocationError saying what is wrong."""
    try:
        url = make_url(text.strip())
    except ArgumentError as exc:
        raise LocationError(f"{text!r} is not a database URL; write it as "
                            "postgresql+psycopg://user@host:5432/database") from exc
    if url.password:
        raise LocationError(
            "The database URL holds a password; it would be kept in the settings, the "
            "shell history and the process list. Remove it from the URL and store it with "
            "`casewise db password URL` (or in Settings > Storage), or set "
            f"{PASSWORD_ENV}.")
    if url.get_backend_name() not in ("sqlite", *SERVER_BACKENDS):
        raise LocationError(f"Casewise keeps a case history in SQLite or PostgreSQL, not "
                            f"{url.get_backend_name()!r} ({shown(url)}).")
    if url.get_backend_name() == "postgresql" and url.drivername != "postgresql+psycopg":
        raise LocationError(f"Use the psycopg driver: postgresql+psycopg://... (not "
                            f"{url.drivername}).")
    return url


def shown(url: URL | str) -> str:
    """The URL as it may be shown or logged: never with a password."""
    return (url if isinstance(url, URL) else make_url(url)).render_as_string(hide_password=True)


def _key(url: URL) -> str:
    return f"{url.username or ''}@{url.host or ''}:{url.port or ''}/{url.database or ''}"


def _password_path(directory: Path | None) -> Path:
    return (directory or config_dir()) / PASSWORD_FILE


def _stored(directory: Path | None) -> dict[str, str]:
    try:
        found = json.loads(_password_path(directory).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def database_password(url: URL, directory: Path | None = None) -> str | None:
    """The password for ``url``'s user and database: the environment first, then the key
    store."""
    return os.environ.get(PASSWORD_ENV) or _stored(directory).get(_key(url)) or None


def save_database_password(url: URL, password: str, directory: Path | None = None) -> None:
    """Keep (or, with "", forget) the password of ``url``'s user and database."""
    from models.artifact import write_text_atomically

    stored = _stored(directory)
    if password:
        stored[_key(url)] = password
    else:
        stored.pop(_key(url), None)
    path = _password_path(directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, json.dumps(stored, indent=1, sort_keys=True) + "\n", 0o600)


def with_password(url: URL, directory: Path | None = None) -> URL:
    """``url`` ready to connect: a server URL gets its stored password (if any)."""
    if url.get_backend_name() not in SERVER_BACKENDS or url.password:
        return url
    password = database_password(url, directory)
    return url.set(password=password) if password else url


def history_location(chosen: str | Path | None, settings_url: str, data_folder: Path,
                     directory: Path | None = None) -> Path | URL:
    """The history to open: ``chosen`` (``--db``) first, then the settings' database URL,
    then ``casewise.db`` in the data folder. A URL comes back parsed, with its password."""
    location = chosen or settings_url or None
    if location is None:
        return data_folder / DB_FILE
    if not is_url(location):
        return Path(location).expanduser()
    return with_password(parse_url(str(location)), directory)
