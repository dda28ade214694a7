"""`make dev`: the whole platform in the foreground, on one machine, until Ctrl-C.

Starts the embedded PostgreSQL and broker (unless DATABASE_URL / KAFKA_BROKER_URL are set in
the environment), migrates, creates the lane topics, then runs the gateway and every service
process that exists, forked from one warm parent that imported their shared libraries once
(:mod:`sourcing.devstack.forkserver`), with prefixed logs. Prints a ready banner (URLs, the
sandbox state, how to get a token) once /api/v1/system/ready answers; Ctrl-C (or SIGTERM)
stops the children, then the servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

import httpx

from sourcing.common.config import ConfigurationError, Settings, load_settings
from sourcing.devstack._process import DevstackError
from sourcing.devstack.forkserver import ForkedService, ForkServer
from sourcing.devstack.stack import Stack, start_dev_stack

logger = logging.getLogger("sourcing.devstack.dev")

# (log prefix, module run with `python -m`): the sandbox and gateway first, then the agents.
PROCESSES: tuple[tuple[str, str], ...] = (
    ("sandbox", "sourcing.sandbox"),
    ("api", "sourcing.api"),
    ("ingestion", "sourcing.ingestion"),
    ("enrichment", "sourcing.enrichment"),
    ("outreach", "sourcing.outreach"),
    ("calls", "sourcing.calls"),
    ("allocation", "sourcing.allocation"),
    ("scheduler", "sourcing.scheduler"),
)
# Seven Python processes importing at once on a small, busy machine can take over a minute.
READY_TIMEOUT_SECONDS = 180.0
# The sandbox tags each vendor's routes `sandbox: <provider>`.
SANDBOX_TAG = "sandbox: "
STOP_GRACE_SECONDS = 25.0


# Each agent service gets its own metrics and Faust web ports on one machine.
FIRST_METRICS_PORT = 9101
FIRST_AGENT_WEB_PORT = 6067


def available_processes(*, sandbox: bool) -> list[tuple[str, str]]:
    """The processes whose service is installed and runnable (`python -m` needs `__main__`)."""
    return [
        (name, module)
        for name, module in PROCESSES
        if (sandbox or name != "sandbox")
        and importlib.util.find_spec(module)
        and importlib.util.find_spec(f"{module}.__main__")
    ]


def process_env(base: dict[str, str], index: int) -> dict[str, str]:
    return base | {
        "METRICS_PORT": str(FIRST_METRICS_PORT + index),
        "AGENT_WEB_PORT": str(FIRST_AGENT_WEB_PORT + index),
    }


async def _pump(name: str, stream: asyncio.StreamReader) -> None:
    width = max(len(n) for n, _ in PROCESSES)
    while line := await stream.readline():
        sys.stdout.write(f"{name:<{width}} | {line.decode(errors='replace')}")
        sys.stdout.flush()


async def _wait_ready(url: str, children: Sequence[ForkedService]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    async with httpx.AsyncClient(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if any(child.returncode is not None for child in children):
                raise DevstackError("a service exited during start-up; see its log above")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.5)
    raise DevstackError(f"{url} did not answer 200 within {READY_TIMEOUT_SECONDS:.0f} s")


async def _sandbox_providers(sandbox_url: str) -> list[str]:
    """The providers the running sandbox fakes: its routers' `sandbox: <provider>` tags."""
    with contextlib.suppress(httpx.HTTPError, ValueError):
        async with httpx.AsyncClient(timeout=2.0) as client:
            document = (await client.get(f"{sandbox_url}/openapi.json")).json()
        return sorted(
            {
                tag.removeprefix(SANDBOX_TAG)
                for operations in document.get("paths", {}).values()
                for operation in operations.values()
                for tag in operation.get("tags", [])
                if tag.startswith(SANDBOX_TAG)
            },
            key=str.lower,
        )
    return []


def ready_banner(
    api: str,
    *,
    processes: Sequence[tuple[str, str]],
    sandbox_url: str | None,
    fakes: Sequence[str],
) -> str:
    """What a developer needs once everything answers: where things are and how to get in."""
    if sandbox_url is None:
        sandbox_line = "off: adapters call the real providers (SANDBOX_PROVIDERS=0)"
    else:
        faked = ", ".join(fakes) if fakes else "(provider list unavailable)"
        sandbox_line = f"on at {sandbox_url}, faking {faked}"
    agent_ports = [
        FIRST_METRICS_PORT + index
        for index, (name, _) in enumerate(processes)
        if name not in ("sandbox", "api")
    ]
    mint_request = '{"userId": "dev", "role": "admin"}'
    rule = "=" * 78
    lines = [
        rule,
        f"platform ready: {', '.join(n for n, _ in processes)} running; Ctrl-C stops",
        f"  gateway       {api}",
        f"  OpenAPI docs  {api}/api/v1/docs  (document: {api}/api/v1/openapi.json)",
        f"  AsyncAPI      {api}/asyncapi.json",
        f"  metrics       {api}/metrics"
        + (f"  (services: ports {agent_ports[0]}-{agent_ports[-1]})" if agent_ports else ""),
        f"  sandbox       {sandbox_line}",
        "  get a token:",
        f"    curl -s -X POST {api}/api/v1/auth/token -H 'Content-Type: application/json' \\",
        f"      -d '{mint_request}'",
        f"    or: sourcing login --user dev --api-url {api}",
        rule,
    ]
    return "\n".join(lines)


async def _stop(children: Sequence[ForkedService]) -> None:
    for child in children:
        if child.returncode is None:
            child.send_signal(signal.SIGTERM)
    waits = [asyncio.wait_for(child.wait(), STOP_GRACE_SECONDS) for child in children]
    for child, result in zip(
        children, await asyncio.gather(*waits, return_exceptions=True), strict=True
    ):
        if isinstance(result, TimeoutError):
            child.kill()
            await child.wait()


async def run_platform(stack: Stack, port: int, *, sandbox: bool, sandbox_url: str) -> int:
    env = dict(os.environ) | stack.env | {"SANDBOX_PROVIDERS": "1" if sandbox else "0"}
    if sandbox:  # the sandbox's Zeliq calls the local gateway back
        env.setdefault("ZELIQ_CALLBACK_URL", f"http://localhost:{port}/webhooks/zeliq")
    processes = available_processes(sandbox=sandbox)
    forkserver = await ForkServer.start(env)
    try:
        children = [
            await forkserver.spawn(name, module, process_env(env, index))
            for index, (name, module) in enumerate(processes)
        ]
    except BaseException:
        await forkserver.close()  # it stops the services already forked
        raise
    pumps = [
        asyncio.create_task(_pump(name, child.stdout))
        for (name, _), child in zip(processes, children, strict=True)
    ]
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    exit_code = 0
    try:
        api = f"http://localhost:{port}"
        ready = asyncio.create_task(_wait_ready(f"{api}/api/v1/system/ready", children))
        stopped = asyncio.create_task(stopping.wait())
        await asyncio.wait({ready, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if ready.done():
            ready.result()
            fakes = await _sandbox_providers(sandbox_url) if sandbox else []
            print(
                ready_banner(
                    api,
                    processes=processes,
                    sandbox_url=sandbox_url if sandbox else None,
                    fakes=fakes,
                ),
                flush=True,
            )
            exits = [asyncio.create_task(child.wait()) for child in children]
            done, _ = await asyncio.wait({stopped, *exits}, return_when=asyncio.FIRST_COMPLETED)
            if stopped not in done:
                logger.error("a service exited on its own; stopping the platform")
                exit_code = 1
        else:
            ready.cancel()
    except DevstackError as exc:
        logger.error("%s", exc)
        exit_code = 1
    finally:
        logger.info("stopping services")
        await _stop(children)
        await forkserver.close()
        await asyncio.gather(*pumps, return_exceptions=True)
    return exit_code


def migrate(database_url: str) -> None:
    """Migrate in a child process: this supervisor stays up for the whole session, and Alembic
    with SQLAlchemy and every migration would otherwise stay in its memory for nothing."""
    command = [sys.executable, "-m", "sourcing.common.migrate", "upgrade", "head"]
    env = dict(os.environ) | {"DATABASE_URL": database_url}
    if subprocess.run(command, env=env, check=False).returncode != 0:  # noqa: S603 - our module
        raise DevstackError("the database migration failed; see its output above")


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="dev        | %(message)s", stream=sys.stdout)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        settings = load_settings(Settings)
        stack = start_dev_stack("var")
    except (ConfigurationError, DevstackError) as exc:
        logger.error("%s", exc)
        return 1
    try:
        logger.info(
            "database %s, broker %s (%s)",
            stack.database_url,
            stack.bootstrap_servers,
            stack.broker_kind,
        )
        migrate(stack.database_url)
        asyncio.run(stack.create_topics(prefix=settings.KAFKA_TOPIC_PREFIX))
        # Development defaults to the provider sandbox unless SANDBOX_PROVIDERS says otherwise.
        sandbox = settings.is_development and (
            settings.SANDBOX_PROVIDERS or "SANDBOX_PROVIDERS" not in settings.model_fields_set
        )
        return asyncio.run(
            run_platform(stack, settings.PORT, sandbox=sandbox, sandbox_url=settings.SANDBOX_URL)
        )
    except DevstackError as exc:
        logger.error("%s", exc)
        return 1
    finally:
        logger.info("stopping PostgreSQL and the broker")
        stack.close()


if __name__ == "__main__":
    sys.exit(main())
