"""The warm parent of `make dev`'s Python services: it imports the libraries they all use once,
freezes that heap, and forks each service from it when the supervisor asks.

A forked page stays shared (copy-on-write) until a process writes it, so the interpreter,
SQLAlchemy with every model, pydantic, Faust, aiokafka, asyncpg, FastAPI... take their memory
once for the whole `make dev` instead of once per service (like a preloading application
server). Each service is still its own process: its own environment and settings (sent with
the request), its own event loop and signal handlers, started (and started again) by the
supervisor. Production images run one service per container and do not use this.

Fork safety: this process only imports modules before it forks. It creates no event loop,
thread, network socket or database connection, and checks the first two before every fork.

Protocol, on a Unix sequenced-packet socket from the supervisor: one JSON request per packet,
``{"name", "module", "env"}``, with the service's output pipe attached (SCM_RIGHTS). Events go
to the supervisor on this process's stdout, one JSON object a line: ``{"ready": true}`` once
the imports are done, ``{"started": pid}`` (or ``{"error": why}``) per request in order, and
``{"exited": pid, "code": n}`` when a service ends. The supervisor closing the socket stops
the services still running (SIGTERM) and then this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import importlib
import json
import os
import runpy
import select
import signal
import socket
import sys
import threading
from collections.abc import Mapping
from typing import Any, NoReturn

from sourcing.devstack._process import DevstackError

# What every service process imports, at start or at run time (or most of them do, the rest
# sharing the pages unused): the kernel with every model and message contract, the people
# library, the Kafka runtime (with what Faust's worker imports when it starts) and the web
# stack. Kernel modules that register metrics only some services expose (sourcing.common.http,
# .metrics, .health) are left to the services, so each one's /metrics stays its own.
PRELOAD: tuple[str, ...] = (
    "sourcing.common.kafka.app",
    "sourcing.common.kafka.outbox",
    "sourcing.common.models",
    "sourcing.common.messages",
    "sourcing.common.migrate",
    "sourcing.common.logging",
    "sourcing.common.process",
    "sourcing.common.tracing",
    "sourcing.common.transitions",
    "sourcing.common.web",
    "sourcing.common.webhook_events",
    "sourcing.people.callers",
    "sourcing.people.contacts",
    "sourcing.people.identity",
    "sourcing.people.phones",
    "sourcing.people.suppression",
    "sourcing.people.timezones",
    "faust.assignor",
    "faust.tables",
    "faust.transport.conductor",
    "faust.transport.consumer",
    "faust.transport.producer",
    "faust.utils.terminal",
    "mode.worker",
    "fastapi",
    "uvicorn",
    "uvicorn.loops.uvloop",
    "uvicorn.protocols.http.httptools_impl",
    "uvicorn.protocols.websockets.websockets_sansio_impl",
    "httpx",
    "prometheus_client",
)
_PR_SET_NAME = 15
MAX_REQUEST_BYTES = 1 << 20


def _emit(event: Mapping[str, Any]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def _name_process(name: str) -> None:
    """Show the service's name as the process name (``/proc/<pid>/comm``, top, ps -o comm):
    the command line stays the fork server's."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(_PR_SET_NAME, name.encode()[:15], 0, 0, 0)


def _check_fork_safe() -> None:
    if threading.active_count() != 1:
        raise RuntimeError(f"{threading.active_count()} threads alive; forking would copy them")
    policy = asyncio.get_event_loop_policy()
    local = getattr(policy, "_local", None)
    if getattr(local, "_loop", None) is not None:
        raise RuntimeError("an event loop exists; forking would share its selector")


def _become_service(
    request: Mapping[str, Any], output: int, control: socket.socket, closing: list[int]
) -> NoReturn:
    """In the forked child: the service's output, signals, environment and name, then its
    ``python -m`` module, as ``__main__``. Ends the process with the module's exit status."""
    gc.enable()
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    control.close()
    for fd in closing:
        os.close(fd)
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.close(output)
    os.environ.clear()
    os.environ.update(request["env"])
    _name_process(request["name"])
    sys.argv = [request["module"]]
    runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
    raise SystemExit(0)


def _reap(children: set[int]) -> None:
    while children:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            return
        children.discard(pid)
        _emit({"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def serve(control: socket.socket) -> int:
    """Preload, then fork a service per request until the supervisor closes ``control``."""
    from sqlalchemy.orm import configure_mappers  # here: the supervisor imports this module

    _name_process("forkserver")
    # No collection while importing: it would free objects in the middle of pages the
    # children then fill (and copy). Frozen, the children's collections never write to the
    # preloaded objects' headers either (the gc module's documented recipe for fork).
    gc.disable()
    for module in PRELOAD:
        importlib.import_module(module)
    configure_mappers()  # every model's mapper built once, here, not in each service
    gc.freeze()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the services; EOF stops us
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: set[int] = set()
    _emit({"ready": True})
    while True:
        readable, _, _ = select.select([control.fileno(), wake_r], [], [])
        if wake_r in readable:
            with contextlib.suppress(BlockingIOError):
                os.read(wake_r, 4096)
            _reap(children)
        if control.fileno() not in readable:
            continue
        data, fds, _, _ = socket.recv_fds(control, MAX_REQUEST_BYTES, 1)
        if not data:
            break
        try:
            _check_fork_safe()
            request = json.loads(data)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
        except Exception as exc:  # answered to the supervisor, which stops
            for fd in fds:
                os.close(fd)
            _emit({"error": f"{type(exc).__name__}: {exc}"})
            continue
        if pid == 0:
            _become_service(request, fds[0], control, [wake_r, wake_w])
        os.close(fds[0])
        children.add(pid)
        _emit({"started": pid})
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    while children:
        select.select([wake_r], [], [], 1.0)
        with contextlib.suppress(BlockingIOError):
            os.read(wake_r, 4096)
        _reap(children)
    return 0


class ForkedService:
    """A service forked by the fork server, seen by the supervisor like an
    ``asyncio.subprocess.Process``: its output, its signals, its exit status."""

    def __init__(self, pid: int, stdout: asyncio.StreamReader) -> None:
        self.pid = pid
        self.stdout = stdout
        self.returncode: int | None = None
        self._exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def exited(self, code: int) -> None:
        if self.returncode is None:
            self.returncode = code
            self._exited.set_result(code)

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkServer:
    """The supervisor's side: start the fork server, ask it for services, stop it."""

    def __init__(self, process: asyncio.subprocess.Process, control: socket.socket) -> None:
        self._process = process
        self._control = control
        self._pending: list[tuple[asyncio.Future[ForkedService], asyncio.StreamReader]] = []
        self._services: dict[int, ForkedService] = {}
        self._events: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, env: Mapping[str, str]) -> ForkServer:
        """Start the fork server with ``env`` and wait until its imports are done."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            __name__,
            str(theirs.fileno()),
            env=dict(env),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            pass_fds=(theirs.fileno(),),
        )
        theirs.close()
        server = cls(process, ours)
        events = process.stdout
        first = await events.readline() if events is not None else b""
        if events is None or not first or json.loads(first) != {"ready": True}:
            await process.wait()
            raise DevstackError("the fork server could not preload the services' imports")
        server._events = asyncio.create_task(server._read_events(events))
        return server

    async def spawn(self, name: str, module: str, env: Mapping[str, str]) -> ForkedService:
        """Fork ``python -m module`` with ``env``; its stdout and stderr go to one pipe."""
        loop = asyncio.get_running_loop()
        read_fd, write_fd = os.pipe()
        stdout = asyncio.StreamReader()
        pipe = os.fdopen(read_fd, "rb", buffering=0)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdout), pipe)
        request = json.dumps({"name": name, "module": module, "env": dict(env)}).encode()
        started: asyncio.Future[ForkedService] = loop.create_future()
        self._pending.append((started, stdout))
        try:
            socket.send_fds(self._control, [request], [write_fd])
        finally:
            os.close(write_fd)
        return await started

    async def _read_events(self, events: asyncio.StreamReader) -> None:
        while line := await events.readline():
            event = json.loads(line)
            if "exited" in event:
                if (service := self._services.get(event["exited"])) is not None:
                    service.exited(event["code"])
                continue
            started, stdout = self._pending.pop(0)
            if "error" in event:
                started.set_exception(DevstackError(f"fork server: {event['error']}"))
            else:
                self._services[event["started"]] = ForkedService(event["started"], stdout)
                started.set_result(self._services[event["started"]])
        for started, _ in self._pending:
            started.set_exception(DevstackError("the fork server exited"))
        for service in self._services.values():  # orphaned: stop them, report them gone
            service.send_signal(signal.SIGTERM)
            service.exited(-signal.SIGTERM)

    async def close(self) -> None:
        """Stop the fork server (it stops the services still running)."""
        self._control.close()
        await self._process.wait()
        if self._events is not None:
            await self._events


def main() -> int:
    return serve(socket.socket(fileno=int(sys.argv[1])))


if __name__ == "__main__":
    sys.exit(main())
