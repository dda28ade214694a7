"""Every Kubernetes manifest parses and agrees with the settings, the entry points and the
lanes: every service present, ports match, env keys exist, HPA max <= partitions."""

from __future__ import annotations

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
    max_partitions,
    module_has_main,
    per_message_budget_seconds,
    python_module_of,
)

K8S = REPO / "deploy/k8s"
SAMPLE_SECRET = "s" * 48


@pytest.fixture(scope="module")
def manifests() -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, name) -> object, from every YAML file (each must parse)."""
    objects: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document is None:
                continue
            assert {"apiVersion", "kind"} <= set(document), path.name
            key = (document["kind"], document.get("metadata", {}).get("name", path.stem))
            assert key not in objects, f"duplicate {key}"
            objects[key] = document
    return objects


def _container(obj: dict[str, Any]) -> dict[str, Any]:
    containers = obj["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def _environment(
    manifests: dict[tuple[str, str], dict[str, Any]], container: dict[str, Any]
) -> dict[str, str]:
    """What the container sees: envFrom ConfigMap/Secret (which must exist), then env."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(manifests[("ConfigMap", source["configMapRef"]["name"])]["data"])
        if "secretRef" in source:
            secret = manifests[("Secret", source["secretRef"]["name"])]
            env.update(secret.get("stringData", {}))
    for item in container.get("env", []):
        env[item["name"]] = item["value"]
    return env


def _settings(env: dict[str, str]) -> Any:
    values = {k: v.replace("REPLACE_ME", SAMPLE_SECRET) for k, v in env.items() if v != ""}
    return build_settings(values)


def test_kustomization_lists_every_manifest_file() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk
    images = {image["name"] for image in kustomization["images"]}
    assert images == {f"expert-sourcing/{name}" for name in SERVICES}


def test_every_service_has_a_deployment_and_every_agent_an_hpa(
    manifests: dict[tuple[str, str], dict[str, Any]],
) -> None:
    deployments = {name for kind, name in manifests if kind == "Deployment"}
    assert deployments == set(SERVICES)
    hpas = {name for kind, name in manifests if kind == "HorizontalPodAutoscaler"}
    assert set(AGENTS) <= hpas


@pytest.mark.parametrize("name", SERVICES)
def test_deployment_runs_its_entry_point_with_probes_resources_and_grace(
    manifests: dict[tuple[str, str], dict[str, Any]], name: str
) -> None:
    deployment = manifests[("Deployment", name)]
    pod = deployment["spec"]["template"]
    assert (
        deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    )
    container = _container(deployment)
    assert container["image"].split(":")[0] == f"expert-sourcing/{name}"
    module = python_module_of(container["command"])
    assert module == f"sourcing.{name}" and module_has_main(module)
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind]), kind
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True

    env = _environment(manifests, container)
    unknown = set(env) - KNOWN_SETTINGS
    assert not unknown, f"{name}: env keys the settings class does not read: {unknown}"
    assert set(env) >= REQUIRED_OUTSIDE_DEVELOPMENT
    settings = _settings(env)
    assert settings.APP_ENV == "production" and not settings.SANDBOX_PROVIDERS

    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    expected_port = settings.PORT if name == API else settings.METRICS_PORT
    assert expected_port != 0
    assert int(annotations["prometheus.io/port"]) == expected_port
    probes = {k: container[k] for k in ("startupProbe", "livenessProbe", "readinessProbe")}
    for kind, probe in probes.items():
        assert ports[probe["httpGet"]["port"]] == expected_port, kind
    if name == API:
        assert probes["readinessProbe"]["httpGet"]["path"] == "/api/v1/system/ready"
        assert probes["livenessProbe"]["httpGet"]["path"] == "/api/v1/system/health"
    else:
        assert probes["readinessProbe"]["httpGet"]["path"] == "/health/ready"
        assert probes["livenessProbe"]["httpGet"]["path"] == "/health/live"
        assert {p["httpGet"]["path"] for p in probes.values()} <= AGENT_HEALTH_PATHS
        grace = pod["spec"]["terminationGracePeriodSeconds"]
        assert grace > per_message_budget_seconds(settings), "SIGKILL would cut a message short"


def test_api_service_targets_the_gateway_port(
    manifests: dict[tuple[str, str], dict[str, Any]],
) -> None:
    service = manifests[("Service", API)]
    container = _container(manifests[("Deployment", API)])
    named = {port["name"]: port["containerPort"] for port in container["ports"]}
    settings = _settings(_environment(manifests, container))
    (port,) = service["spec"]["ports"]
    assert named[port["targetPort"]] == settings.PORT


@pytest.mark.parametrize("name", AGENTS)
def test_hpa_never_scales_beyond_the_partitions_its_service_consumes(
    manifests: dict[tuple[str, str], dict[str, Any]], name: str
) -> None:
    hpa = manifests[("HorizontalPodAutoscaler", name)]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
    assert 1 <= hpa["minReplicas"] <= hpa["maxReplicas"] <= max_partitions(name)
    # Not needlessly low either: every partition of its biggest topic can get a consumer.
    assert hpa["maxReplicas"] == max_partitions(name)


def test_jobs_migrate_and_create_topics_with_the_shared_configuration(
    manifests: dict[tuple[str, str], dict[str, Any]],
) -> None:
    migrate = manifests[("Job", "migrate")]["spec"]["template"]
    topics = manifests[("Job", "topics")]["spec"]["template"]
    migrate_container, topics_container = (
        _container({"spec": {"template": t}}) for t in (migrate, topics)
    )
    assert migrate_container["command"] == [
        "python",
        "-m",
        "sourcing.common.migrate",
        "upgrade",
        "head",
    ]
    assert topics_container["command"] == ["python", "-m", "sourcing.common.topics_init"]
    for template, container in ((migrate, migrate_container), (topics, topics_container)):
        assert template["spec"]["restartPolicy"] in ("OnFailure", "Never")
        assert module_has_main(python_module_of(container["command"]))
        env = _environment(manifests, container)
        assert not set(env) - KNOWN_SETTINGS
        _settings(env)
    assert int(_environment(manifests, topics_container)["KAFKA_REPLICATION_FACTOR"]) >= 1


def test_every_manifest_is_in_the_platform_namespace(
    manifests: dict[tuple[str, str], dict[str, Any]],
) -> None:
    for (kind, name), obj in manifests.items():
        if kind in ("Namespace", "Kustomization"):
            continue
        assert obj["metadata"]["namespace"] == "expert-sourcing", (kind, name)


def test_secret_template_holds_no_real_secret(
    manifests: dict[tuple[str, str], dict[str, Any]],
) -> None:
    secret = manifests[("Secret", "expert-sourcing-secrets")]["stringData"]
    for name in REQUIRED_OUTSIDE_DEVELOPMENT:
        assert "REPLACE_ME" in secret[name]
