"""A throwaway PostgreSQL cluster for the tests: initdb in a temporary folder, a server on a
free loopback port, a fresh database for each test that asks for one.

The binaries are Debian's (``/usr/lib/postgresql/<version>/bin``; ``make system-deps``
installs the package), or ``$CASEWISE_TEST_PG_BIN``. ``$CASEWISE_TEST_PG_URL`` (a server where
the user may CREATE DATABASE) is used instead of a local cluster when set. Where neither can
be had the PostgreSQL tests skip, saying how to run them; with ``CASEWISE_REQUIRE_PG=1`` (CI)
they fail instead, so CI cannot pass by skipping them.

PostgreSQL refuses to run as root, so under root the cluster's folder is given to the
``postgres`` user (Debian's package makes it) and its binaries run as that user.
"""

from __future__ import annotations

import atexit
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SKIP_HINT = ("Install Debian's postgresql (sudo apt-get install postgresql, or `make "
             "system-deps`) or set CASEWISE_TEST_PG_URL=postgresql+psycopg://user:pw@host/db")
USER = "casewise"


def _binaries() -> Path | None:
    given = os.environ.get("CASEWISE_TEST_PG_BIN")
    if given:
        return Path(given)
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit()
                   else 0)
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    """A PostgreSQL server the tests own: its admin URL, and stop/start for fault tests."""

    bin_dir: Path | None
    folder: Path | None
    host: str
    port: int
    password: str
    run_as: str | None

    def url(self, database: str = "postgres", password: str | None = None) -> str:
        return (f"postgresql+psycopg://{USER}:{password or self.password}@{self.host}:"
                f"{self.port}/{database}")

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        kwargs = {}
        if self.run_as:
            entry = pwd.getpwnam(self.run_as)
            kwargs = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        return subprocess.run([str(self.bin_dir / args[0]), *args[1:]], check=check,
                              capture_output=True, text=True, timeout=60, **kwargs)

    def start(self) -> None:
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   "-c max_connections=80")
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-l", str(self.folder / "log"),
                  "-w", "-t", "30", "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; "fast" (the fault tests) writes what was committed first, as a
        production server's fsync would have; "immediate" at the end of the session."""
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", mode, "-w", "stop",
                  check=False)

    def admin(self):
        from sqlalchemy import create_engine

        return create_engine(self.url(), isolation_level="AUTOCOMMIT")

    def create_database(self) -> str:
        name = "t_" + secrets.token_hex(6)
        engine = self.admin()
        with engine.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        engine.dispose()
        return name

    def drop_database(self, name: str) -> None:
        engine = self.admin()
        with engine.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        engine.dispose()


def _external(url: str) -> Cluster:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    global USER
    USER = parsed.username or USER
    return Cluster(None, None, parsed.host or "127.0.0.1", parsed.port or 5432,
                   parsed.password or "", None)


def start_cluster() -> Cluster:
    """A new local cluster (raises RuntimeError saying why it could not be had)."""
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise RuntimeError(f"psycopg is not installed ({exc})") from exc
    bin_dir = _binaries()
    if bin_dir is None or not (bin_dir / "initdb").exists():
        raise RuntimeError("PostgreSQL's initdb was not found")
    run_as = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError as exc:
            raise RuntimeError("running as root and there is no 'postgres' user") from exc
        run_as = "postgres"
    # Not pytest's tmp folder: it is 0700 root's, and the server runs as 'postgres'.
    folder = Path(tempfile.mkdtemp(prefix="casewise-pg-"))
    password = secrets.token_urlsafe(16)
    (folder / "pw").write_text(password)
    if run_as:
        entry = pwd.getpwnam(run_as)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
        os.chown(folder / "pw", entry.pw_uid, entry.pw_gid)
    cluster = Cluster(bin_dir, folder, "127.0.0.1", _free_port(), password, run_as)
    try:
        cluster._run("initdb", "-D", str(folder / "data"), "-U", USER, "--auth-local=trust",
                     "--auth-host=scram-sha-256", f"--pwfile={folder / 'pw'}", "-E", "UTF8",
                     "--locale=C.UTF-8", "--no-sync")
        try:
            cluster.start()
        except subprocess.CalledProcessError:  # the port was taken meanwhile: once more
            cluster.port = _free_port()
            cluster.start()
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        log = (folder / "log").read_text() if (folder / "log").exists() else ""
        detail = getattr(exc, "stderr", "") or ""
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"the test cluster did not start: {exc} {detail} {log}".strip()) \
            from exc
    atexit.register(_remove, cluster)
    return cluster


def _remove(cluster: Cluster) -> None:
    if cluster.folder is not None and cluster.folder.exists():
        cluster.stop("immediate")
        shutil.rmtree(cluster.folder, ignore_errors=True)


def _unavailable(why: str) -> None:
    message = f"PostgreSQL tests skipped: {why}. {SKIP_HINT}"
    if os.environ.get("CASEWISE_REQUIRE_PG") == "1":
        pytest.fail(message.replace("skipped", "required (CASEWISE_REQUIRE_PG=1) but failed"),
                    pytrace=False)
    pytest.skip(message)


_CLUSTER: list = []  # the session's cluster, or the reason there is none


def _session_cluster() -> Cluster:
    if not _CLUSTER:
        external = os.environ.get("CASEWISE_TEST_PG_URL")
        try:
            _CLUSTER.append(_external(external) if external else start_cluster())
        except RuntimeError as exc:
            _CLUSTER.append(str(exc))
    found = _CLUSTER[0]
    if isinstance(found, str):
        _unavailable(found)
    return found


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    cluster = _session_cluster()
    yield cluster
    if cluster.folder is not None:
        _remove(cluster)


@pytest.fixture()
def pg_url(pg_cluster: Cluster) -> Iterator[str]:
    """A URL of a new, empty database on the test server, dropped after the test."""
    name = pg_cluster.create_database()
    yield pg_cluster.url(name)
    pg_cluster.drop_database(name)
