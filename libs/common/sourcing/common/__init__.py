"""The kernel of the platform (see docs/architecture.md)."""

import sys

# httpx loads its command-line client (rich, pygments, click: about 9 MiB per process) whenever
# those are installed, as the operator CLI's dependencies are in a development environment.
# No process of ours runs httpx's command line: a None entry makes that import fail, and httpx
# then goes without it.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
