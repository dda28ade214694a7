"""Every Kubernetes manifest parses and agrees with the settings, the entry points and the
lanes: every service present, ports match, env keys exist, HPA max <= partitions."""

from __future__ import annotations

import json
import subprocess
import tomllib
from typing import Any

import kubernetes_validate
import pytest
import yaml

from sourcing.common.config import PLACEHOLDER_MARKERS
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
    read_env_file,
)

K8S = REPO / "deploy/k8s"
SAMPLE_SECRET = "s" * 48
# The oldest Kubernetes the manifests must be valid for (NetworkPolicy endPort needs 1.25).
KUBERNETES_VERSION = "1.29.0"
SECRETS = "expert-sourcing-secrets"


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


@pytest.fixture(scope="module")
def kustomization() -> dict[str, Any]:
    model: dict[str, Any] = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return model


def generated_secret() -> dict[str, str]:
    """The generated Secret as an operator fills it in: every value of the example set."""
    example = read_env_file(K8S / "secrets.env.example")
    filled = {name: f"{name.lower()}-{SAMPLE_SECRET}" for name in example}
    filled["DATABASE_URL"] = f"postgresql://sourcing:{SAMPLE_SECRET}@postgres.database.svc/x"
    return filled


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
            assert source["secretRef"]["name"] == SECRETS
            env.update(generated_secret())
    for item in container.get("env", []):
        env[item["name"]] = item["value"]
    return env


def _settings(env: dict[str, str]) -> Any:
    return build_settings(env)


def test_kustomization_lists_every_manifest_file(kustomization: dict[str, Any]) -> None:
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


def test_resources_hold_no_secret_and_no_placeholder(
    manifests: dict[tuple[str, str], dict[str, Any]], kustomization: dict[str, Any]
) -> None:
    """`kubectl apply -k` can never install a template Secret: the Secret is generated from an
    untracked file, and no resource holds a placeholder value."""
    assert not [key for key in manifests if key[0] == "Secret"]
    for (kind, name), obj in manifests.items():
        text = json.dumps(obj).lower()
        assert not [m for m in PLACEHOLDER_MARKERS if m in text], (kind, name)
    (generator,) = kustomization["secretGenerator"]
    assert generator["name"] == SECRETS
    for env_file in generator["envs"]:
        tracked = subprocess.run(
            ["git", "ls-files", "--error-unmatch", f"deploy/k8s/{env_file}"],
            cwd=REPO,
            capture_output=True,
            check=False,
        )
        assert tracked.returncode != 0, f"{env_file} is committed"
        ignored = subprocess.run(
            ["git", "check-ignore", "-q", f"deploy/k8s/{env_file}"], cwd=REPO, check=False
        )
        assert ignored.returncode == 0, f"{env_file} is not git-ignored"
    # The example the operator copies holds no value at all for the required secrets.
    example = read_env_file(K8S / "secrets.env.example")
    assert set(example) >= REQUIRED_OUTSIDE_DEVELOPMENT | {"DATABASE_URL", "AUTH_BOOTSTRAP_SECRET"}
    assert not any(example.values())


def _pod_specs(manifests: dict[tuple[str, str], dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        obj["spec"]["template"]["spec"]
        for (kind, _), obj in manifests.items()
        if kind in ("Deployment", "Job")
    ]


def test_images_are_pinned_to_the_release_version(
    manifests: dict[tuple[str, str], dict[str, Any]], kustomization: dict[str, Any]
) -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert {image["newTag"] for image in kustomization["images"]} == {version}
    for pod in _pod_specs(manifests):
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            assert container["image"].rsplit(":", 1)[1] == version, container["name"]


@pytest.mark.parametrize("name", SERVICES)
def test_deployment_waits_for_the_migrated_schema_before_starting(
    manifests: dict[tuple[str, str], dict[str, Any]], name: str
) -> None:
    pod = manifests[("Deployment", name)]["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    (container,) = pod["containers"]
    assert init["image"] == container["image"]  # the schema head of this very release
    assert init["envFrom"] == container["envFrom"]
    assert init["command"][:2] == ["/bin/sh", "-c"]
    assert "python -m sourcing.common.migrate current" in init["command"][2]
    assert init["securityContext"]["readOnlyRootFilesystem"] is True
    assert {m["name"] for m in init["volumeMounts"]} <= {v["name"] for v in pod["volumes"]}


@pytest.mark.parametrize("name", SERVICES)
def test_every_deployment_has_a_disruption_budget(
    manifests: dict[tuple[str, str], dict[str, Any]], name: str
) -> None:
    deployment = manifests[("Deployment", name)]
    budget = manifests[("PodDisruptionBudget", name)]["spec"]
    assert budget["selector"] == deployment["spec"]["selector"]
    if "minAvailable" in budget:
        assert budget["minAvailable"] < deployment["spec"]["replicas"]  # drains stay possible
    else:
        assert budget["maxUnavailable"] == 1


def test_network_policies_admit_only_the_gateway_and_reach_only_the_dependencies(
    manifests: dict[tuple[str, str], dict[str, Any]],
) -> None:
    policies = [obj["spec"] for (kind, _), obj in manifests.items() if kind == "NetworkPolicy"]
    deny = [
        p for p in policies if p["podSelector"] == {} and "ingress" not in p and "egress" not in p
    ]
    assert deny and set(deny[0]["policyTypes"]) == {"Ingress", "Egress"}
    open_ingress = {
        p["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
        for p in policies
        for rule in p.get("ingress", [])
        if "from" not in rule
    }
    assert open_ingress == {API}
    scraped = [rule for p in policies for rule in p.get("ingress", []) if "from" in rule]
    assert all("namespaceSelector" in peer for rule in scraped for peer in rule["from"])
    egress = {
        (port["protocol"], port["port"], port.get("endPort", port["port"]))
        for p in policies
        for rule in p.get("egress", [])
        for port in rule["ports"]
    }
    assert egress == {
        ("UDP", 53, 53),  # DNS
        ("TCP", 53, 53),
        ("TCP", 5432, 5432),  # PostgreSQL
        ("TCP", 9092, 9094),  # Kafka listeners
        ("TCP", 443, 443),  # the providers' HTTPS APIs
    }
    assert all(p["podSelector"] == {} for p in policies if "egress" in p)


def test_every_manifest_is_valid_against_the_kubernetes_schema(
    manifests: dict[tuple[str, str], dict[str, Any]],
) -> None:
    """Offline: kubernetes-validate ships the API schemas (strict: no unknown fields)."""
    checked = 0
    for (kind, name), obj in manifests.items():
        if kind == "Kustomization":
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{kind}/{name}: {exc.message} at {list(exc.path)}")
        checked += 1
    assert checked == len(manifests) - 1
