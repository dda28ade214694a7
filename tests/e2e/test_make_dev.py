"""`make dev`'s runner end to end: embedded stack, migrations, topics, every service process,
the first-run progress, the ready banner, the manual's §4.1 to §4.4 requests, and a clean stop
on Ctrl-C (SIGINT)."""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.integration

READY_WITHIN_SECONDS = 200


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _read_until(process: subprocess.Popen[bytes], marker: bytes, deadline: float) -> bytes:
    assert process.stdout is not None
    seen = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.5)
        if ready:
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                break
            seen += chunk
            if marker in seen:
                return seen
        if process.poll() is not None:
            break
    raise AssertionError(f"no {marker!r} from the dev runner; output:\n{seen.decode()[-4000:]}")


def test_dev_runner_serves_the_manual_examples_and_stops_cleanly(tmp_path: Path) -> None:
    port, sandbox_port = _free_port(), _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_URL", "KAFKA_BROKER_URL", "TEST_"))
    } | {
        "PORT": str(port),
        "BROKER": "tansu",
        "SANDBOX_PORT": str(sandbox_port),
        "SANDBOX_URL": f"http://127.0.0.1:{sandbox_port}",
        "APP_ENV": "development",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "sourcing.devstack.dev"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        started = time.monotonic()
        output = _read_until(process, b"sourcing login", started + READY_WITHIN_SECONDS)
        base = f"http://localhost:{port}"
        text = output.decode()
        # The slow first step says what it does, then how big it came out and how long it took.
        assert "initialising a PostgreSQL cluster" in text
        assert re.search(r"PostgreSQL cluster initialised \(\d+ MB\) in \d+ s", text)
        banner = text[text.index("platform ready") :]
        for url in (
            base,
            f"{base}/api/v1/docs",
            f"{base}/api/v1/openapi.json",
            f"{base}/asyncapi.json",
            f"{base}/metrics",
            f"http://127.0.0.1:{sandbox_port}",
            f"curl -s -X POST {base}/api/v1/auth/token",
            f"sourcing login --user dev --api-url {base}",
        ):
            assert url in banner, f"{url} missing from the banner:\n{banner}"
        assert "sandbox       on at" in banner and "Apollo" in banner, banner
        with httpx.Client(base_url=base, timeout=10) as client:
            assert client.get("/api/v1/system/health").json() == {"status": "ok"}
            assert client.get("/api/v1/system/ready").json() == {"status": "ready"}

            minted = client.post("/api/v1/auth/token", json={"userId": "user-1", "role": "admin"})
            token = minted.json()["accessToken"]
            auth = {"Authorization": f"Bearer {token}"}
            assert client.get("/api/v1/auth/me", headers=auth).json() == {
                "userId": "user-1",
                "role": "admin",
            }
            assert client.get("/api/v1/admin/ping", headers=auth).json() == {"status": "admin-ok"}

            project = client.post(
                "/api/v1/projects",
                headers=auth,
                json={
                    "name": "APAC Fintech Experts Q1",
                    "description": "Source senior fintech experts in APAC region",
                    "targetThreshold": 50,
                    "geographyIsoCodes": ["SG", "JP", "AU"],
                    "priority": 1,
                    "overrideCooldown": False,
                },
            )
            assert project.status_code == 201, project.text
            project_url = f"/api/v1/projects/{project.json()['id']}"
            assert client.get(project_url, headers=auth).status_code == 200
            patched = client.patch(
                project_url,
                headers=auth,
                json={"priority": 2, "description": "Updated description"},
            )
            assert patched.json()["priority"] == 2
            companies = client.post(
                f"{project_url}/companies",
                headers=auth,
                json={
                    "companies": [
                        {"name": "Stripe", "domain": "stripe.com", "countryIso": "US"},
                        {"name": "Wise", "domain": "wise.com", "countryIso": "GB"},
                    ]
                },
            )
            assert companies.json() == {"createdOrUpdated": 2}
            searches = client.post(
                f"{project_url}/sales-nav-searches",
                headers=auth,
                json={
                    "searches": [
                        {
                            "sourceUrl": f"https://linkedin.com/sales/search/{i}",
                            "normalizedUrl": f"https://linkedin.com/sales/search/{i}",
                        }
                        for i in range(1, 7)
                    ]
                },
            )
            assert searches.json() == {"created": 6}
            question = client.post(
                f"{project_url}/screening-questions",
                headers=auth,
                json={
                    "prompt": "How many years of experience do you have in fintech?",
                    "displayOrder": 1,
                    "required": True,
                },
            )
            assert question.status_code == 201
            assert client.get(f"{project_url}/screening-questions", headers=auth).status_code == 200
            assert (
                client.patch(
                    f"{project_url}/screening-questions/{question.json()['id']}",
                    headers=auth,
                    json={"prompt": "Updated question text"},
                ).status_code
                == 200
            )

            caller = client.post(
                "/api/v1/callers",
                headers=auth,
                json={
                    "email": "john.smith@example.com",
                    "name": "John Smith",
                    "timezone": "America/New_York",
                    "languageCodes": ["en", "es"],
                    "regionIsoCodes": ["US", "MX"],
                },
            )
            assert caller.status_code == 201, caller.text
            caller_url = f"/api/v1/callers/{caller.json()['id']}"
            assert client.get(caller_url, headers=auth).status_code == 200
            assert (
                client.patch(caller_url, headers=auth, json={"timezone": "Europe/London"}).json()[
                    "timezone"
                ]
                == "Europe/London"
            )
    finally:
        process.send_signal(signal.SIGINT)
        try:
            rest = process.communicate(timeout=60)[0]
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert process.returncode == 0, rest.decode()[-3000:]
    assert b"stopping PostgreSQL and the broker" in rest
