"""The `monitoring` profile of docker-compose.yml, checked by structure (no Docker engine
needed): Prometheus scrapes every engine process by its compose service name on the port that
process's role serves, and loads the committed alert rules; Grafana is provisioned with a
Prometheus data source and the committed dashboard. The compose-spec schema check of the
whole file is in test_compose.py; `promtool check config` in
tests/integration/test_deploy_monitoring.py."""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from workers.metrics_ports import metrics_port

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
GRAFANA = ROOT / "deploy" / "grafana"
IMPORTABLE_DASHBOARD = GRAFANA / "recourse-dashboard.json"
PROVISIONED_DASHBOARD = GRAFANA / "dashboards" / "recourse-dashboard.json"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "recourse-prometheus.yml"
DASHBOARD_PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "recourse.yml"
DATASOURCE_INPUT = "${DS_PROMETHEUS}"
"""The placeholder Grafana's import replaces with the data source the user picks."""

MONITORING = {"prometheus", "grafana"}
ENGINE_PROCESSES = {"worker", "relay", "scheduler"}
CONTAINER_PORTS = {"prometheus": 9090, "grafana": 3000}
"""The port each image serves on inside its container."""


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text("utf-8"))
    result: dict[str, Any] = compose["services"]
    return result


@pytest.fixture(scope="module")
def prometheus_config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(PROMETHEUS_CONFIG.read_text("utf-8"))
    return config


def mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> the repository file a service bind-mounts there (not named volumes)."""
    found = {}
    for volume in service["volumes"]:
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            found[target] = ROOT / source
    return found


def served_metrics_port(service: dict[str, Any]) -> int:
    """The port an engine service's metrics endpoint takes: METRICS_PORT, else its role's."""
    role = service["command"][1]
    configured = service["environment"].get("METRICS_PORT")
    return metrics_port(None if configured is None else int(configured), frozenset({role}))


def scrape_targets(config: dict[str, Any]) -> dict[str, set[tuple[str, int]]]:
    """Job name -> the (host, port) pairs it scrapes, from static and DNS discovery."""
    targets: dict[str, set[tuple[str, int]]] = {}
    for job in config["scrape_configs"]:
        found = targets.setdefault(job["job_name"], set())
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, port = target.rsplit(":", 1)
                found.add((host, int(port)))
        for discovery in job.get("dns_sd_configs", []):
            assert discovery["type"] == "A", "Docker's DNS answers A records, not SRV"
            found.update((name, int(discovery["port"])) for name in discovery["names"])
    return targets


def test_only_prometheus_and_grafana_are_in_the_monitoring_profile(
    services: dict[str, Any],
) -> None:
    profiled = {
        name: service["profiles"] for name, service in services.items() if "profiles" in service
    }

    assert profiled == {name: ["monitoring"] for name in MONITORING}


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("prometheus", r"prom/prometheus:v\d+\.\d+\.\d+"),
        ("grafana", r"grafana/grafana:\d+\.\d+\.\d+"),
    ],
)
def test_monitoring_images_are_pinned_to_an_exact_version(
    services: dict[str, Any], name: str, pattern: str
) -> None:
    assert re.fullmatch(pattern, services[name]["image"])


@pytest.mark.parametrize("name", sorted(MONITORING))
def test_each_monitoring_service_is_healthy_by_its_own_endpoint_capped_and_local(
    services: dict[str, Any], name: str
) -> None:
    service = services[name]
    port = CONTAINER_PORTS[name]
    healthcheck = service["healthcheck"]
    limits = service["deploy"]["resources"]["limits"]

    assert healthcheck["test"][:2] == ["CMD", "wget"]
    assert urlsplit(healthcheck["test"][-1]).netloc == f"127.0.0.1:{port}"
    assert healthcheck["retries"] >= 3
    assert float(limits["cpus"]) > 0
    assert limits["memory"][-1] in "MG"
    assert service["ports"] == [f"127.0.0.1:{port}:{port}"]
    assert service["restart"] == "unless-stopped"
    for source in mounts(service).values():
        assert source.is_file(), source


def test_prometheus_scrapes_every_engine_process_by_service_name_on_its_roles_port(
    services: dict[str, Any], prometheus_config: dict[str, Any]
) -> None:
    targets = scrape_targets(prometheus_config)

    expected = {
        f"recourse-{name}": {(name, served_metrics_port(services[name]))}
        for name in ENGINE_PROCESSES
    }
    assert targets == expected
    for name in ENGINE_PROCESSES:
        service = services[name]
        # Reachable on the compose network (0.0.0.0, exposed), not published on the host.
        assert service["environment"]["METRICS_HOST"] == "0.0.0.0"
        assert str(served_metrics_port(service)) in service["expose"]
        assert "ports" not in service


def test_prometheus_loads_the_committed_config_and_alert_rules(
    services: dict[str, Any], prometheus_config: dict[str, Any]
) -> None:
    service = services["prometheus"]
    config_flag = next(arg for arg in service["command"] if arg.startswith("--config.file="))
    config_path = PurePosixPath(config_flag.split("=", 1)[1])
    mounted = mounts(service)

    assert mounted[str(config_path)] == PROMETHEUS_CONFIG
    assert prometheus_config["rule_files"]
    for rule_file in prometheus_config["rule_files"]:
        # Prometheus resolves a relative rule file against the config file's folder.
        beside_config = PROMETHEUS_CONFIG.parent / rule_file
        assert beside_config.is_file(), rule_file
        assert mounted[str(config_path.parent / rule_file)] == beside_config


def test_grafana_is_provisioned_with_the_prometheus_service_and_the_dashboard(
    services: dict[str, Any],
) -> None:
    mounted = mounts(services["grafana"])
    datasources = yaml.safe_load(DATASOURCES.read_text("utf-8"))
    providers = yaml.safe_load(DASHBOARD_PROVIDERS.read_text("utf-8"))
    (datasource,) = datasources["datasources"]
    (provider,) = providers["providers"]
    url = urlsplit(datasource["url"])

    assert datasource["type"] == "prometheus"
    assert datasource["uid"]
    assert (url.hostname, url.port) == ("prometheus", CONTAINER_PORTS["prometheus"])
    assert mounted["/etc/grafana/provisioning/datasources/recourse-prometheus.yml"] == DATASOURCES
    assert mounted["/etc/grafana/provisioning/dashboards/recourse.yml"] == DASHBOARD_PROVIDERS
    assert provider["type"] == "file"
    provider_folder = PurePosixPath(provider["options"]["path"])
    assert mounted[str(provider_folder / PROVISIONED_DASHBOARD.name)] == PROVISIONED_DASHBOARD
    assert services["grafana"]["depends_on"]["prometheus"] == {"condition": "service_healthy"}


def test_the_provisioned_dashboard_is_the_importable_one_with_the_data_source_filled_in() -> None:
    """Regenerate it with the command in docs/operations.md (Metrics) after editing the
    importable dashboard; this fails until then."""
    uid = yaml.safe_load(DATASOURCES.read_text("utf-8"))["datasources"][0]["uid"]
    importable_text = IMPORTABLE_DASHBOARD.read_text("utf-8")
    importable = json.loads(importable_text)
    provisioned_text = PROVISIONED_DASHBOARD.read_text("utf-8")

    assert [item["name"] for item in importable["__inputs"]] == ["DS_PROMETHEUS"]
    assert DATASOURCE_INPUT in importable_text, "the input would be asked for and never used"
    assert "${DS_" not in provisioned_text, "provisioning does not fill import inputs"
    assert provisioned_text == importable_text.replace(DATASOURCE_INPUT, uid)
    (variable,) = json.loads(provisioned_text)["templating"]["list"]
    assert variable["current"]["value"] == uid
