"""Every entry point shares the one settings load: outside development unsafe settings stop
the process with status 2 before anything is served, the message naming each variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.support import SERVICES
from tests.fixtures.settings import Settings

UNSAFE_ENVIRONMENT = {
    "APP_ENV": "production",
    "JWT_SECRET": "REPLACE_ME_with_at_least_32_random_characters",
    "AUTH_BOOTSTRAP_SECRET": "REPLACE_ME",
    "DATABASE_URL": "postgresql://postgres:postgres@127.0.0.1:9/expert_sourcing",
    "SANDBOX_PROVIDERS": "1",
}


@pytest.mark.parametrize("service", SERVICES)
def test_service_refuses_unsafe_settings_and_exits_non_zero(service: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in Settings.model_fields}
    env.pop("NODE_ENV", None)
    completed = subprocess.run(
        [sys.executable, "-m", f"sourcing.{service}"],
        env=env | UNSAFE_ENVIRONMENT,
        cwd=tmp_path,  # no .env here
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 2, completed.stderr
    message = completed.stderr.strip().splitlines()[-1]
    assert message.startswith(f"{service}: ")
    for name in (*UNSAFE_ENVIRONMENT.keys() - {"APP_ENV"}, "YAY_WEBHOOK_SECRET"):
        assert name in message, name
