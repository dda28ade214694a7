"""``python -m bench [NAME ...]``: run the benchmarks (all but scaleout by default) on one
embedded stack, write ``bench/results/<name>.json`` for each and print one table at the end.

Names: webhook, pipeline, calls, allocation, memory, dev (the memory of the whole ``make dev``),
scaleout (1 and 2 replicas of enrichment and calls: run when named). ``--duration`` (or
``BENCH_DURATION``) sets the seconds of each load phase; ``--quick`` (or ``BENCH_QUICK=1``) runs
short phases and small data sets for a check that everything works (its figures are not
reference figures).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench import allocation, calls, devmemory, pipeline, scaleout, webhook
from bench.harness import RESULTS_DIR, Options, Result, Session, table, write_result

BENCHMARKS: dict[str, Callable[[Session], Awaitable[Result]]] = {
    "webhook": webhook.run,
    "pipeline": pipeline.run,
    "calls": calls.run,
    "allocation": allocation.run,
    "memory": pipeline.run_memory,
    "dev": devmemory.run,
    "scaleout": scaleout.run,
}
# Run when named only: it measures capacity for the README's table, and has no target.
NAMED_ONLY = frozenset({"scaleout"})


def _options(argv: list[str] | None) -> tuple[list[str], Options]:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(BENCHMARKS))
    quick_default = os.environ.get("BENCH_QUICK", "").strip().lower() in ("1", "true", "yes")
    parser.add_argument("--quick", action="store_true", default=quick_default)
    parser.add_argument("--duration", type=float, default=None, help="seconds per load phase")
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(BENCHMARKS))
    if unknown:
        parser.error(
            f"unknown benchmark {', '.join(unknown)} (choose from {', '.join(BENCHMARKS)})"
        )
    duration = args.duration or float(os.environ.get("BENCH_DURATION") or 0) or None
    options = Options(
        duration=max(1.0, min(duration or (4.0 if args.quick else 15.0), 120.0)),
        quick=args.quick,
        keep_logs=args.keep_logs,
        results_dir=args.results_dir,
    )
    names = args.names or [name for name in BENCHMARKS if name not in NAMED_ONLY]
    return [name for name in BENCHMARKS if name in names], options


async def _main(names: list[str], options: Options) -> int:
    # Ctrl-C or SIGTERM cancels the run, so every benchmark stops its processes and the
    # session removes the stack, databases and topics on the way out.
    task = asyncio.current_task()
    assert task is not None  # noqa: S101 - narrows the type: called from a running task
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    session = Session(options)
    results: list[Result] = []
    failures: list[str] = []
    began = time.monotonic()
    try:
        await session.start()
        print(f"stack: {session.machine['broker']} broker, {session.machine['cores']} cores")
        for name in names:
            print(f"== {name}", flush=True)
            started = time.monotonic()
            try:
                result = await BENCHMARKS[name](session)
            except Exception:
                failures.append(f"{name}: {traceback.format_exc()}")
                print(f"   failed after {time.monotonic() - started:.0f} s", flush=True)
                continue
            path = write_result(result, session.machine, options.results_dir)
            print(f"   {time.monotonic() - started:.0f} s -> {path}", flush=True)
            results.append(result)
    finally:
        await session.close()
    print()
    print(table(results))
    machine = session.machine
    print(
        f"\n{machine.get('cores')} cores ({machine.get('cpu')}), Python {machine.get('python')}, "
        f"broker {machine.get('broker')}, duration {options.duration:g} s per phase"
        f"{' (quick)' if options.quick else ''}, total {time.monotonic() - began:.0f} s"
    )
    for failure in failures:
        print(f"\nERROR {failure}", file=sys.stderr)
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    names, options = _options(argv)
    try:
        return asyncio.run(_main(names, options))
    except asyncio.CancelledError:
        print("interrupted: processes stopped, temporary data removed", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
