"""The compose deployment, checked as files (no Docker daemon here): its services and wiring,
Prometheus scraping every replica, the collector's pipeline, the gateway's rules, and the
Grafana dashboard, whose every query names a metric the gateway really exports (with labels it
really has)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from gateway.calls import Note
from gateway.rules import Price, load_rules
from gateway.settings import Settings
from gateway.telemetry import Outcome, Telemetry

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMQL_WORDS = {
    "sum",
    "by",
    "rate",
    "increase",
    "max",
    "histogram_quantile",
    "le",
    "without",
}


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def compose() -> dict[str, Any]:
    data: dict[str, Any] = load(DEPLOY / "docker-compose.yaml")
    return data


def test_services_of_the_deployment_shape() -> None:
    services = compose()["services"]
    for name in ("gateway", "front", "valkey", "qdrant", "prometheus", "grafana", "otel-collector"):
        assert name in services, name
    gw = services["gateway"]
    assert gw["deploy"]["replicas"] == 2
    assert "ports" not in gw, "replicas are reached through the one front port"
    assert services["front"]["ports"] == ["4000:4000"]
    for svc in services.values():
        image = svc.get("image", "")
        assert image and not image.endswith(":latest") and ":" in image, image


def test_gateway_is_hardened_and_wired_to_shared_state() -> None:
    gw = compose()["services"]["gateway"]
    assert gw["read_only"] is True
    assert gw["user"].split(":")[0] != "0"
    assert gw["cap_drop"] == ["ALL"]
    assert any(t.startswith("/var/lib/tiergate") for t in gw["tmpfs"])
    env = gw["environment"]
    assert env["GATEWAY_HOST"] == "0.0.0.0"
    assert env["GATEWAY_REDIS_URL"].startswith("redis://valkey:")
    assert env["GATEWAY_QDRANT_URL"].startswith("http://qdrant:")
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    fields = set(Settings.model_fields)
    for name in env:
        if name.startswith("GATEWAY_"):
            assert name.removeprefix("GATEWAY_").lower() in fields, name
    assert gw["build"]["dockerfile"] == "deploy/Dockerfile"
    assert (DEPLOY / gw["build"]["context"] / gw["build"]["dockerfile"]).resolve().exists()


def test_mounted_files_exist() -> None:
    for svc in compose()["services"].values():
        for volume in svc.get("volumes", []):
            src = volume.split(":")[0]
            assert (DEPLOY / src).exists(), src


def test_front_balances_over_the_gateway_service() -> None:
    conf = (DEPLOY / "compose" / "nginx.conf").read_text()
    assert "server gateway:4000 resolve;" in conf
    assert "proxy_buffering off" in conf, "streams must not be buffered"


def test_compose_rules_are_valid_and_point_at_the_sim_service() -> None:
    rules = load_rules(DEPLOY / "compose" / "rules.yaml")
    assert all(t.api_base.startswith("http://sim:9100") for t in rules.targets.values())
    assert rules.admin.key_sha256 is not None
    gw = compose()["services"]["gateway"]
    assert gw["environment"]["GATEWAY_RULES"] == "/etc/tiergate/compose/rules.yaml"


def test_prometheus_scrapes_every_replica() -> None:
    prom = load(DEPLOY / "prometheus.yml")
    (job,) = prom["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    (sd,) = job["dns_sd_configs"]
    assert sd["names"] == ["gateway"] and sd["type"] == "A" and sd["port"] == 4000


def test_collector_receives_otlp_and_exports_traces() -> None:
    col = load(DEPLOY / "otel-collector.yaml")
    assert set(col["receivers"]["otlp"]["protocols"]) == {"grpc", "http"}
    assert col["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
    pipe = col["service"]["pipelines"]["traces"]
    assert pipe["receivers"] == ["otlp"]
    assert set(pipe["exporters"]) <= set(col["exporters"])


def test_grafana_provisioning_points_at_the_dashboard() -> None:
    ds = load(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yaml")
    assert ds["datasources"][0]["url"] == "http://prometheus:9090"
    prov = load(DEPLOY / "grafana" / "provisioning" / "dashboards" / "tiergate.yaml")
    path = prov["providers"][0]["options"]["path"]
    grafana = compose()["services"]["grafana"]
    mounts = dict(v.split(":")[:2][::-1] for v in grafana["volumes"])
    assert (DEPLOY / mounts[path] / "tiergate.json").exists()


def exported_metrics() -> dict[str, set[str]]:
    """Every sample name the gateway's /metrics serves, with its labels, after real records."""
    telemetry = Telemetry({"t": Price(input_usd_per_mtok=1.0)}, request_log=False)
    telemetry.record(
        Outcome(
            request_id="r",
            key_id="k",
            alias="fast",
            kind="chat",
            stream=True,
            status=200,
            outcome="ok",
            error_kind="QuotaExhausted",
            target="t",
            model="m",
            attempts=2,
            prompt_tokens=3,
            completion_tokens=4,
            cost_usd=0.5,
            latency_s=0.1,
            ttft_s=0.05,
            overhead_s=0.001,
            notes=(
                Note("failed", "u:ProviderTimeout"),
                Note("hedged", "1"),
                Note("retry_budget", "1"),
                Note("queued-ms", "3"),
                Note("cache", "hit"),
                Note("semantic", "miss"),
            ),
        )
    )
    telemetry.spend("team", "m", 0.5)
    telemetry.breaker_transition("t", "closed", "open", "test")
    telemetry.alert("budget_80pct", {})
    telemetry.semantic_verified("fast", True, 0.99)
    telemetry.watch_queue(lambda: 0)
    telemetry.reloaded(ok=False)
    telemetry.budget_use({("team:a", "usd", "day"): 0.5})
    from prometheus_client import generate_latest

    names: dict[str, set[str]] = {}
    text = generate_latest(telemetry.registry).decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


def dashboard_queries() -> list[str]:
    dash = json.loads((DEPLOY / "grafana" / "dashboards" / "tiergate.json").read_text())
    return [t["expr"] for p in dash["panels"] for t in p["targets"]]


def test_every_dashboard_metric_is_exported_with_its_labels() -> None:
    exported = exported_metrics()
    queries = dashboard_queries()
    assert len(queries) >= 12
    for expr in queries:
        for metric in re.findall(r"\btiergate_[a-z_]+", expr):
            assert metric in exported, f"{metric} (in {expr}) is not a metric the gateway exports"
        # every label grouped by or matched on exists on a metric of that query
        labels = set()
        for group in re.findall(r"by \(([^)]*)\)", expr):
            labels |= {g.strip() for g in group.split(",")}
        labels |= set(re.findall(r"(\w+)=~?\"", expr))
        have = set().union(*(exported[m] for m in re.findall(r"\btiergate_[a-z_]+", expr)))
        assert labels <= have | {"le"}, f"{expr}: labels {labels - have}"


def test_dashboard_covers_what_the_platform_team_reads() -> None:
    titles = " ".join(
        p["title"].lower()
        for p in json.loads((DEPLOY / "grafana" / "dashboards" / "tiergate.json").read_text())[
            "panels"
        ]
    )
    for topic in ("requests", "latency", "first token", "errors", "spend by team", "cache hit"):
        assert topic in titles, topic
    for topic in ("breaker", "budget"):
        assert topic in titles, topic
    queries = " ".join(dashboard_queries())
    assert "histogram_quantile(0.99" in queries and "tiergate_time_to_first_token" in queries
