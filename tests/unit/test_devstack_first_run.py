"""What a first run prints: progress lines for slow steps, and `make dev`'s ready banner."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sourcing.devstack._process import megabytes, progress
from sourcing.devstack.dev import ready_banner


def test_a_slow_step_says_what_it_does_then_its_size_and_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with progress("downloading the thing", lambda: f"thing downloaded ({megabytes(tmp_path)})"):
        (tmp_path / "thing.jar").write_bytes(b"x" * 3_000_000)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "devstack: downloading the thing…"
    assert re.fullmatch(r"devstack: thing downloaded \(3 MB\) in \d+ s", lines[1]), lines


def test_a_failed_step_does_not_claim_it_is_done(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(RuntimeError), progress("initialising", lambda: "initialised"):
        raise RuntimeError("initdb failed")
    assert capsys.readouterr().err == "devstack: initialising…\n"


def test_the_banner_without_the_sandbox_says_so_and_still_shows_how_to_log_in() -> None:
    banner = ready_banner(
        "http://localhost:3000",
        processes=[("api", "sourcing.api"), ("ingestion", "sourcing.ingestion")],
        sandbox_url=None,
        fakes=[],
    )
    assert "platform ready: api, ingestion running" in banner
    assert "sandbox       off" in banner
    assert "http://localhost:3000/api/v1/docs" in banner
    assert "http://localhost:3000/asyncapi.json" in banner
    assert "curl -s -X POST http://localhost:3000/api/v1/auth/token" in banner
    assert "sourcing login --user dev --api-url http://localhost:3000" in banner


def test_the_banner_names_what_the_sandbox_fakes() -> None:
    banner = ready_banner(
        "http://localhost:3000",
        processes=[("sandbox", "sourcing.sandbox"), ("api", "sourcing.api")],
        sandbox_url="http://127.0.0.1:8099",
        fakes=["Apollo", "Exa"],
    )
    assert "sandbox       on at http://127.0.0.1:8099, faking Apollo, Exa" in banner
