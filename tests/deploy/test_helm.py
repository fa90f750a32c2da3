"""The Helm chart, rendered by Helm's own Go engine (helm-python-sdk binds to it; no helm binary)
for the default values and each value set under tests/deploy/values/, every manifest validated
against the pinned Kubernetes version's schemas (kubernetes-validate, strict), and the routing
rules each release would mount loaded by the gateway's own validator."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import ValidationError

from gateway.rules import parse_rules

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "tiergate"
VALUES = Path(__file__).parent / "values"
KUBERNETES_VERSION = "1.33.0"  # the cluster version the chart is checked against
GOOD_SETS = ["default", "ha-external-redis", "semantic-qdrant", "batch-job", "minimal"]

# The Prometheus Operator's CRD is not in Kubernetes' schemas: the fields Tiergate uses are
# checked against this excerpt of its published schema instead.
SERVICE_MONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": {
                    "type": "object",
                    "properties": {"matchLabels": {"type": "object"}},
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                        },
                    },
                },
            },
        },
    },
}


def values_of(name: str) -> dict[str, Any]:
    if name == "default":
        return {}
    data: dict[str, Any] = yaml.safe_load((VALUES / f"{name}.yaml").read_text())
    return data


@contextmanager
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(str(CHART)) as loaded:
        yield loaded


def render(values: dict[str, Any], release: str = "tg") -> dict[str, list[dict[str, Any]]]:
    """Template file -> its manifests (empty documents dropped)."""
    with chart() as c:
        out = c.render(values, name=release, namespace="ai", is_install=True)
    docs: dict[str, list[dict[str, Any]]] = {}
    for path, text in out.items():
        if path.endswith(".txt"):
            continue
        docs[path] = [d for d in yaml.safe_load_all(text) if d]
    return docs


def manifests(values: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for docs in render(values).values() for d in docs]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def gateway(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (dep,) = [
        d
        for d in by_kind(docs, "Deployment")
        if d["metadata"]["labels"]["app.kubernetes.io/component"] == "gateway"
    ]
    return dep


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_the_pinned_version_is_one_the_validator_knows() -> None:
    assert kubernetes_validate.utils.major_minor(KUBERNETES_VERSION) in {
        kubernetes_validate.utils.major_minor(v) for v in kubernetes_validate.utils.all_versions()
    }


@pytest.mark.parametrize("name", GOOD_SETS)
def test_every_manifest_validates_against_kubernetes(name: str) -> None:
    docs = manifests(values_of(name))
    assert docs
    errors: list[str] = []
    for doc in docs:
        if doc["kind"] == "ServiceMonitor":
            import jsonschema

            jsonschema.validate(doc, SERVICE_MONITOR_SCHEMA)
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except ValidationError as exc:
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {exc.message} at {exc.path}")
    assert errors == []


@pytest.mark.parametrize("name", GOOD_SETS)
def test_the_mounted_rules_are_valid_rules(name: str) -> None:
    """The gateway's own validator, with the environment the pod gets from the Secret: every
    api_key_env a target names must be a key of the Secret."""
    docs = manifests(values_of(name))
    (cm,) = by_kind(docs, "ConfigMap")
    (secret,) = by_kind(docs, "Secret")
    env = secret.get("stringData") or {}
    rules = parse_rules(cm["data"]["rules.yaml"], f"{name}: rules.yaml", env=env)
    assert rules.aliases


@pytest.mark.parametrize("name", GOOD_SETS)
def test_pods_are_hardened(name: str) -> None:
    docs = manifests(values_of(name))
    pods = [d["spec"]["template"]["spec"] for d in docs if d["kind"] in ("Deployment", "Job")]
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert container["resources"]["requests"]
            assert not container["image"].endswith(":latest")
    gw = gateway(docs)["spec"]["template"]["spec"]
    (container,) = gw["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/var/lib/tiergate", "/tmp"} <= mounts, "writable dirs are emptyDirs"
    volumes = {v["name"]: v for v in gw["volumes"]}
    assert "emptyDir" in volumes["data"] and "emptyDir" in volumes["tmp"]
    rules_mount = next(m for m in container["volumeMounts"] if m["name"] == "rules")
    assert "subPath" not in rules_mount, "a subPath mount never sees ConfigMap updates"


def test_probes_check_health_and_readiness() -> None:
    (container,) = gateway(manifests({}))["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    env = env_of(container)
    assert env["GATEWAY_HOST"] == "0.0.0.0"
    assert env["GATEWAY_RULES"] == "/etc/tiergate/rules/rules.yaml"


def test_default_is_a_self_contained_demo() -> None:
    docs = manifests({})
    components = {d["metadata"]["labels"].get("app.kubernetes.io/component") for d in docs}
    assert {"gateway", "sim", "valkey"} <= components
    kinds = {d["kind"] for d in docs}
    assert {"HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy", "Secret"} <= kinds
    (container,) = gateway(docs)["spec"]["template"]["spec"]["containers"]
    assert env_of(container)["GATEWAY_REDIS_URL"] == "redis://tg-tiergate-valkey:6379/0"


def test_ha_with_external_redis() -> None:
    docs = manifests(values_of("ha-external-redis"))
    components = {d["metadata"]["labels"].get("app.kubernetes.io/component") for d in docs}
    assert "valkey" not in components and "sim" not in components
    (container,) = gateway(docs)["spec"]["template"]["spec"]["containers"]
    env = env_of(container)
    assert env["GATEWAY_REDIS_URL"] == {"secretKeyRef": {"name": "tg-tiergate", "key": "redis-url"}}
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        assert env[name] == {"secretKeyRef": {"name": "tg-tiergate", "key": name}}
    assert "envFrom" not in container, "only provider keys reach the environment, by name"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.observability:4318"
    (secret,) = by_kind(docs, "Secret")
    assert secret["stringData"]["OPENAI_API_KEY"] == "sk-test-not-a-real-key"
    assert secret["stringData"]["redis-url"].startswith("rediss://")
    (hpa,) = by_kind(docs, "HorizontalPodAutoscaler")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 20)
    assert "replicas" not in gateway(docs)["spec"], "the HPA owns the replica count"
    (monitor,) = by_kind(docs, "ServiceMonitor")
    (service,) = [s for s in by_kind(docs, "Service") if s["metadata"]["name"] == "tg-tiergate"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    (cm,) = by_kind(docs, "ConfigMap")
    assert "tg-search-0123456789abcdef" not in cm["data"]["rules.yaml"], "keys go in hashed"
    assert "sk-test" not in cm["data"]["rules.yaml"]


def test_an_existing_secret_exposes_only_the_named_keys() -> None:
    values = {
        "secrets": {
            "create": False,
            "existingSecret": "tiergate-keys",
            "existingSecretKeys": ["OPENAI_API_KEY"],
        },
        "redis": {"existingSecret": "tiergate-redis"},
        "valkey": {"enabled": False},
    }
    docs = manifests(values)
    assert not by_kind(docs, "Secret")
    (container,) = gateway(docs)["spec"]["template"]["spec"]["containers"]
    env = env_of(container)
    assert env["OPENAI_API_KEY"] == {
        "secretKeyRef": {"name": "tiergate-keys", "key": "OPENAI_API_KEY"}
    }
    assert env["GATEWAY_REDIS_URL"] == {
        "secretKeyRef": {"name": "tiergate-redis", "key": "redis-url"}
    }
    annotations = gateway(docs)["spec"]["template"]["metadata"].get("annotations") or {}
    assert "checksum/secret" not in annotations


def test_semantic_cache_with_qdrant() -> None:
    docs = manifests(values_of("semantic-qdrant"))
    (container,) = gateway(docs)["spec"]["template"]["spec"]["containers"]
    assert env_of(container)["GATEWAY_QDRANT_URL"] == "http://tg-tiergate-qdrant:6333"
    assert any(d["metadata"]["name"] == "tg-tiergate-qdrant" for d in by_kind(docs, "Service"))


def test_rules_checksum_rolls_pods_only_when_asked() -> None:
    values = values_of("semantic-qdrant")
    before = gateway(manifests(values))["spec"]["template"]["metadata"]["annotations"]
    changed = dict(values, rules=dict(values["rules"], content=values["rules"]["content"] + "\n"))
    after = gateway(manifests(changed))["spec"]["template"]["metadata"]["annotations"]
    assert before["checksum/rules"] != after["checksum/rules"]
    default = gateway(manifests({}))["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/rules" not in default, "by default pods reload rules in place"
    assert "checksum/secret" in default


def test_batch_worker_job_is_indexed() -> None:
    docs = manifests(values_of("batch-job"))
    (job,) = by_kind(docs, "Job")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert (spec["completions"], spec["parallelism"]) == (8, 4)
    (container,) = spec["template"]["spec"]["containers"]
    assert container["args"][:3] == ["batch", "run", "classify"]
    env = env_of(container)
    assert env["OPENAI_BASE_URL"] == "http://tg-tiergate:80/v1"
    assert env["TIERGATE_SHARD_COUNT"] == "8"
    index = env["TIERGATE_SHARD_INDEX"]["fieldRef"]["fieldPath"]
    assert "job-completion-index" in index


def test_minimal_is_one_pod_with_embedded_state() -> None:
    docs = manifests(values_of("minimal"))
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == ["ConfigMap", "Deployment", "Deployment", "Secret", "Service", "Service"]
    (container,) = gateway(docs)["spec"]["template"]["spec"]["containers"]
    assert "GATEWAY_REDIS_URL" not in env_of(container)
    assert gateway(docs)["spec"]["replicas"] == 1


def test_notes_say_how_to_call_it() -> None:
    with chart() as c:
        notes = c.render({}, name="tg", namespace="ai")["tiergate/templates/NOTES.txt"]
    assert "http://tg-tiergate.ai.svc:80/v1" in notes
    assert "port-forward" in notes


def bad_render_message(name: str) -> str:
    with pytest.raises(helm.HelmError) as info:
        render(values_of(name))
    return str(info.value)


def test_several_replicas_without_shared_state_fail_clearly() -> None:
    message = bad_render_message("bad-shared-state")
    assert "several replicas need one shared Redis" in message
    assert "redis.url" in message


def test_schema_errors_name_the_values() -> None:
    message = bad_render_message("bad-schema")
    assert "values don't meet the specifications" in message
    assert "'replicas' not allowed" in message
    assert "/replicaCount': minimum: got 0, want 1" in message


def test_an_unpinned_image_fails_clearly() -> None:
    message = bad_render_message("bad-latest")
    assert "image.tag: 'latest' is not a version" in message


def test_the_schema_rejects_an_insecure_pod() -> None:
    with pytest.raises(helm.HelmError) as info:
        render({"securityContext": {"allowPrivilegeEscalation": True}})
    assert "allowPrivilegeEscalation" in str(info.value)


def test_helm_lint_has_no_errors() -> None:
    report = helm.lint(str(CHART))
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] > 1] == []
