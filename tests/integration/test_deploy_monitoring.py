"""The monitoring kit under deploy/: Prometheus alert rules pass `promtool` (syntax and a unit
test per alert), the scrape configuration is valid, and the rules and the Grafana dashboard
query only series the engine exports."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.openmetrics.exposition import generate_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from sqlalchemy import Engine

from policy.apply import ApplyResult
from workers.metrics import BacklogCollector, EngineMetrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "recourse-dashboard.json"
RULE_NAMES = {
    "RecourseDeadLettersGrowing",
    "RecourseOutboxLagging",
    "RecourseDeadlinesOverdue",
    "RecourseWorkerDown",
    "RecourseWorkersStoppedConsuming",
    "RecourseNoSchedulerLeader",
    "RecourseBacklogUnreadable",
}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    found = shutil.which("promtool")
    if found is None:
        message = "promtool is not installed (Debian package prometheus)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"{message}: CI needs it", pytrace=False)
        pytest.skip(f"{message}; install it to run this test")
    return subprocess.run(
        [found, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60, check=False
    )


def test_promtool_accepts_the_rules() -> None:
    checked = promtool("check", "rules", "recourse-rules.yml")

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(RULE_NAMES)} rules found" in checked.stdout


def test_every_alert_fires_and_stays_quiet_as_its_unit_test_says() -> None:
    tested = yaml.safe_load((PROMETHEUS / "recourse-rules.test.yml").read_text())
    alerts = {case["alertname"] for test in tested["tests"] for case in test["alert_rule_test"]}

    result = promtool("test", "rules", "recourse-rules.test.yml")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    assert alerts == RULE_NAMES


def test_promtool_accepts_the_scrape_configuration() -> None:
    rule_files = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())["rule_files"]

    checked = promtool("check", "config", "prometheus.yml")

    assert checked.returncode == 0, checked.stdout + checked.stderr
    # promtool reads every rule file the configuration loads, so a missing one fails here.
    assert f"SUCCESS: {len(rule_files)} rule files found" in checked.stdout


def exported_families(engine: Engine) -> set[str]:
    """Every family an engine with every role exports, as Prometheus names them."""
    metrics = EngineMetrics()
    metrics.registry.register(BacklogCollector(engine))
    metrics.record_result(ApplyResult("e1", "withdrawal.requested", "rejected", "insufficient"))
    metrics.record_failure("refunds.events", "milestone.released", "retry", "outage")
    metrics.record_failure("refunds.events", "milestone.released", "dead_letter", "malformed")
    metrics.in_progress.labels("refunds.events", "apply").set(0)
    metrics.message_seconds.labels("refunds.events", "apply").observe(0.01)
    metrics.record_notification("refund.completed", '{"data": {}}')
    metrics.refunded.labels("USD").inc(0)
    text = generate_latest(metrics.registry).decode()
    return {family.name for family in text_string_to_metric_families(text)}


def queried_families(expression: str) -> set[str]:
    names = re.findall(r"\b((?:recourse|process)_[a-z_]+)\b", expression)
    return {re.sub(r"_(total|bucket|count|sum|created)$", "", name) for name in names}


def test_rules_and_dashboard_query_only_series_the_engine_exports(sqlite_engine: Engine) -> None:
    rules = yaml.safe_load((PROMETHEUS / "recourse-rules.yml").read_text())
    expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    dashboard = json.loads(DASHBOARD.read_text())
    expressions += [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]

    queried = set().union(*(queried_families(expression) for expression in expressions))

    assert queried - exported_families(sqlite_engine) == set()
    assert "recourse_outbox_lag_seconds" in queried


def test_the_dashboard_is_importable_into_grafana() -> None:
    dashboard = json.loads(DASHBOARD.read_text())

    assert dashboard["uid"] == "recourse-engine"
    assert [item["name"] for item in dashboard["templating"]["list"]] == ["datasource"]
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
