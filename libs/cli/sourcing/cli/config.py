"""Where the CLI finds the API and its token: the environment wins over the config file.

``SOURCING_API_URL`` and ``SOURCING_TOKEN``, else ``api_url`` and ``token`` in the TOML file at
``SOURCING_CONFIG`` (default ``~/.config/sourcing/config.toml``), else the development gateway.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

DEFAULT_API_URL = "http://localhost:3000"
DEFAULT_CONFIG_PATH = Path("~/.config/sourcing/config.toml")


class ConfigError(Exception):
    """The config file exists but cannot be read."""


@dataclass(frozen=True)
class Config:
    api_url: str
    token: str | None


def config_path() -> Path:
    return Path(os.environ.get("SOURCING_CONFIG") or DEFAULT_CONFIG_PATH).expanduser()


def _read_file(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc}") from exc
    return {key: value for key, value in values.items() if isinstance(value, str)}


def load_config() -> Config:
    stored = _read_file(config_path())
    api_url = os.environ.get("SOURCING_API_URL") or stored.get("api_url") or DEFAULT_API_URL
    token = os.environ.get("SOURCING_TOKEN") or stored.get("token")
    return Config(api_url=api_url.rstrip("/"), token=token)


def save_config(config: Config) -> Path:
    """Write the file (owner-only: it holds a bearer token); returns its path."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    values = {"api_url": config.api_url, "token": config.token}
    # A JSON string of ASCII text is a valid TOML basic string.
    lines = [f"{key} = {json.dumps(value)}\n" for key, value in values.items() if value]
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.writelines(lines)
    return path
