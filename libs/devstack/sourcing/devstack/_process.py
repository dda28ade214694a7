"""What every embedded server shares: free ports, a child process with a log file, stopping.

Servers run as child processes in their own session (so a Ctrl-C aimed at the terminal reaches
our handler first and the servers are stopped in order, not killed mid-write), with stdout and
stderr appended to a log file whose tail goes into every start-up error.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import logging
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

logger = logging.getLogger("sourcing.devstack")

LOOPBACK = "127.0.0.1"
_T = TypeVar("_T")


def say(line: str) -> None:
    """One progress line on stderr, whatever logging is set up (first runs are slow)."""
    sys.stderr.write(f"devstack: {line}\n")
    sys.stderr.flush()


def megabytes(path: Path) -> str:
    """The size of everything under `path`, as people read it (`118 MB`)."""
    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
    return f"{total / 1_000_000:.0f} MB"


@contextlib.contextmanager
def progress(doing: str, done: Callable[[], str]) -> Iterator[None]:
    """Announce a slow step (`doing…`), then `done()` and the time it took."""
    say(f"{doing}…")
    started = time.monotonic()
    yield
    say(f"{done()} in {time.monotonic() - started:.0f} s")


class DevstackError(RuntimeError):
    """An embedded server could not be prepared, started or stopped."""


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def port_accepts(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    tail = text.splitlines()[-lines:]
    return "\n".join(tail) if tail else "(log is empty)"


def run_sync(coro_factory: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run a coroutine to completion from synchronous code, even inside a running event loop.

    The coroutine gets a private loop on a private thread, so a blocking `start()` can use
    aiokafka's admin client whether it is called from a script or from async code.
    """
    result: list[_T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(coro_factory()))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name="devstack-probe", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


@dataclass(frozen=True, slots=True)
class RunAs:
    """An unprivileged account to run a server under (PostgreSQL refuses to run as root)."""

    name: str
    uid: int
    gid: int


_LIVE_CHILDREN: weakref.WeakSet[ChildProcess] = weakref.WeakSet()
_PR_SET_PDEATHSIG = 1


def _die_with_parent(sig: int) -> Callable[[], None] | None:
    """A pre-exec hook asking Linux to send `sig` to the child when we die, even by SIGKILL.

    atexit covers ordinary exits; this covers `kill -9` and `os._exit` (a hard test timeout),
    which would otherwise leave a JVM or a postmaster running with nobody to stop it.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # we died between fork and prctl
            os._exit(1)

    return hook


class _Spawner:
    """A thread that lives as long as the process and forks every server.

    The kernel sends the parent-death signal when the *thread* that forked the child exits,
    so servers must not be forked by short-lived threads (asyncio.to_thread, thread pools).
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def call(self, fn: Callable[[], _T]) -> _T:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="devstack-spawner", daemon=True
                )
                self._thread.start()
        future: Future[_T] = Future()
        self._jobs.put((fn, future))
        return future.result()

    def _run(self) -> None:
        while True:
            fn, future = self._jobs.get()
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)


_SPAWNER = _Spawner()


@atexit.register
def _kill_leftovers() -> None:
    # A crashed script must not leave a JVM or a postmaster running forever.
    for child in list(_LIVE_CHILDREN):
        child.stop(timeout=10)


class ChildProcess:
    """One server process: spawned in its own session, logging to a file, stopped politely."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        run_as: RunAs | None = None,
        parent_death_signal: int = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.log_path = log_path
        self._argv = list(argv)
        self._env = dict(env) if env is not None else None
        self._cwd = cwd
        self._run_as = run_as
        self._parent_death_signal = parent_death_signal
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    def spawn(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n--- devstack: starting {self.name} at {time.ctime()} ---\n".encode())
            log.flush()
            run_as = self._run_as
            self._popen = _SPAWNER.call(
                lambda: subprocess.Popen(  # noqa: S603 - an argv list of our own binaries and paths, no shell
                    self._argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self._env,
                    cwd=self._cwd,
                    start_new_session=True,
                    user=run_as.uid if run_as else None,
                    group=run_as.gid if run_as else None,
                    extra_groups=[] if run_as else None,
                    preexec_fn=_die_with_parent(self._parent_death_signal),
                )
            )
        _LIVE_CHILDREN.add(self)

    def exit_code(self) -> int | None:
        """None while running (or never started), else the exit status."""
        return self._popen.poll() if self._popen is not None else None

    def is_running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def stop(self, *, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        """Send `sig`, wait up to `timeout`, then SIGKILL the whole process group."""
        popen = self._popen
        if popen is None or popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            popen.send_signal(sig)
        try:
            popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            logger.warning("%s did not stop within %.0f s; killing it", self.name, timeout)
            self.kill()

    def kill(self) -> None:
        popen = self._popen
        if popen is None or popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(popen.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            popen.kill()
        popen.wait(timeout=30)

    def failure(self, what: str) -> DevstackError:
        """An error naming the process, its exit code and the tail of its log."""
        code = self.exit_code()
        state = f"exited with code {code}" if code is not None else "is still running"
        return DevstackError(
            f"{what} ({self.name} {state}); log {self.log_path}, last lines:\n"
            f"{log_tail(self.log_path)}"
        )


def wait_until(
    check: Callable[[], bool],
    *,
    process: ChildProcess,
    timeout: float,
    what: str,
    interval: float = 0.1,
) -> None:
    """Poll `check` until it holds; fail fast if the process dies, with its log tail."""
    deadline = time.monotonic() + timeout
    while True:
        if not process.is_running():
            raise process.failure(f"{what}: the process died during start-up")
        if check():
            return
        if time.monotonic() >= deadline:
            process.stop(timeout=5)
            raise process.failure(f"{what}: not ready after {timeout:.0f} s")
        time.sleep(interval)


class EmbeddedServer(ABC):
    """A server the devstack runs: start, stop, restart on the same port and data, close.

    `start()`/`stop()` block (they spawn and wait for processes); the `a`-prefixed variants run
    them on a worker thread so a test can stop a server while its event loop keeps serving.
    `close()` stops the server and deletes its data when the data directory was temporary.
    """

    log_path: Path

    def __init__(self, data_dir: str | os.PathLike[str] | None, *, temp_prefix: str) -> None:
        if data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix=temp_prefix))
            self._owns_data = True
        else:
            self.data_dir = Path(data_dir).expanduser().resolve()
            self.data_dir.mkdir(parents=True, exist_ok=True)
            self._owns_data = False
        self._closed = False

    @property
    @abstractmethod
    def url(self) -> str:
        """How clients reach the server (valid once started)."""

    @property
    @abstractmethod
    def running(self) -> bool: ...

    @abstractmethod
    def start(self) -> str:
        """Start (idempotent) and block until the server answers; return `url`."""

    @abstractmethod
    def stop(self) -> None:
        """Stop (idempotent); data stays for a later `start()` on the same port."""

    def restart(self) -> str:
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop for good and remove a temporary data directory."""
        if self._closed:
            return
        self.stop()
        self._closed = True
        if self._owns_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    async def astart(self) -> str:
        return await asyncio.to_thread(self.start)

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)

    async def arestart(self) -> str:
        return await asyncio.to_thread(self.restart)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class EmbeddedBroker(EmbeddedServer):
    """A Kafka-protocol broker on a loopback port, run as one child process."""

    _port: int | None
    _process: ChildProcess | None

    @property
    def port(self) -> int:
        if self._port is None:
            raise DevstackError(f"{type(self).__name__} has no port before its first start()")
        return self._port

    @property
    def bootstrap_servers(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        return self.bootstrap_servers

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.is_running()
