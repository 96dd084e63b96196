"""docker-compose.yml and the Dockerfile, checked by structure (no Docker engine needed):
the servers are healthy before anything uses them, the schema is migrated before the engine
starts, and every command is a real `recourse` subcommand."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer.main
import yaml

from console.settings import ConsoleSettings
from workers.cli import app
from workers.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SERVERS = {"postgres", "rabbitmq"}
ENGINE = {
    "worker": "worker",
    "relay": "relay",
    "scheduler": "scheduler",
    "migrate": "migrate",
    "console": "console",
}
LONG_RUNNING = {"worker", "relay", "scheduler", "console"}
ENGINE_PROCESSES = {"worker", "relay", "scheduler"}
"""The long-running processes of the engine itself, checked by `recourse health`, with metrics."""


SETUP_USERS = ROOT / "deploy" / "rabbitmq" / "setup-users.sh"
VARIABLE = re.compile(r"\$\{(?P<name>[A-Z_]+)(?::\?[^}]*)?\}")


def env_example() -> dict[str, str]:
    lines = (ROOT / ".env.example").read_text("utf-8").splitlines()
    pairs = (line.split("=", 1) for line in lines if line and not line.startswith("#"))
    return {name: value for name, value in pairs}


def interpolated(value: Any, variables: dict[str, str]) -> Any:
    """What compose makes of a value, with the variables of .env.example."""
    if isinstance(value, str):
        return VARIABLE.sub(lambda match: variables[match["name"]], value)
    if isinstance(value, list):
        return [interpolated(item, variables) for item in value]
    if isinstance(value, dict):
        return {key: interpolated(item, variables) for key, item in value.items()}
    return value


@pytest.fixture(scope="module")
def raw_compose() -> str:
    return (ROOT / "docker-compose.yml").read_text("utf-8")


@pytest.fixture(scope="module")
def compose(raw_compose: str) -> dict[str, Any]:
    document: dict[str, Any] = interpolated(yaml.safe_load(raw_compose), env_example())
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = compose["services"]
    return result


def registered_commands() -> set[str]:
    # get_command is typed as a plain click Command; for an app with commands it is a Group.
    return set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def test_the_servers_and_every_engine_process_are_services(services: dict[str, Any]) -> None:
    assert set(services) == SERVERS | set(ENGINE) | {"broker-users"}
    assert services["rabbitmq"]["image"] == "rabbitmq:3.13.7-management"
    assert services["postgres"]["image"] == "postgres:16.6"


def test_there_is_no_top_level_name_that_compose_v1_rejects(compose: dict[str, Any]) -> None:
    assert set(compose) == {
        "x-engine",
        "x-engine-service",
        "x-engine-depends-on",
        "services",
        "volumes",
    }


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_server_images_are_pinned_to_an_exact_version(
    services: dict[str, Any], server: str
) -> None:
    assert re.fullmatch(r"[a-z]+:\d+\.\d+(\.\d+)?(-[a-z]+)?", services[server]["image"])


@pytest.mark.parametrize("name", sorted(ENGINE_PROCESSES))
def test_each_long_running_process_is_healthy_by_recourse_health_and_capped(
    services: dict[str, Any], name: str
) -> None:
    service = services[name]
    healthcheck = service["healthcheck"]
    limits = service["deploy"]["resources"]["limits"]

    assert healthcheck["test"] == ["CMD", "recourse", "health"]
    assert "health" in registered_commands()
    assert healthcheck["retries"] >= 3
    assert float(limits["cpus"]) > 0
    assert re.fullmatch(r"\d+[MG]", limits["memory"])


def test_the_console_is_healthy_when_it_serves_its_sign_in_page(services: dict[str, Any]) -> None:
    test = services["console"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"]
    assert "http://127.0.0.1:8080/signin" in test[-1]


def test_the_one_shot_migrate_has_no_healthcheck(services: dict[str, Any]) -> None:
    assert services["migrate"]["healthcheck"] == {"disable": True}


@pytest.mark.parametrize("name", sorted(ENGINE_PROCESSES))
def test_metrics_listen_on_the_network_and_the_port_is_exposed_not_published(
    services: dict[str, Any], name: str
) -> None:
    service = services[name]
    environment = service["environment"]

    assert environment["METRICS_HOST"] == "0.0.0.0"
    assert service["expose"] == [environment["METRICS_PORT"]]
    assert "ports" not in service


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_each_server_has_a_healthcheck_and_keeps_its_data(
    services: dict[str, Any], compose: dict[str, Any], server: str
) -> None:
    service = services[server]
    healthcheck = service["healthcheck"]

    assert healthcheck["test"][0] in {"CMD", "CMD-SHELL"}
    assert len(healthcheck["test"]) > 1
    assert healthcheck["retries"] >= 3
    for mount in service["volumes"]:
        volume = mount.split(":", 1)[0]
        assert volume in compose["volumes"], f"{server} mounts undeclared volume {volume}"
    assert service["restart"] == "unless-stopped"


def test_the_engine_commands_are_the_full_set_of_recourse_subcommands(
    services: dict[str, Any],
) -> None:
    commands = {name: services[name]["command"] for name in ENGINE}

    assert commands == {name: ["recourse", sub] for name, sub in ENGINE.items()}
    missing = set(ENGINE.values()) - registered_commands()
    assert not missing, f"docker-compose.yml runs recourse {sorted(missing)}, not registered"


@pytest.mark.parametrize("name", sorted(ENGINE))
def test_each_engine_service_waits_for_healthy_servers(services: dict[str, Any], name: str) -> None:
    service = services[name]
    needs = {"postgres"} if name == "migrate" else SERVERS

    for server in needs:
        assert service["depends_on"][server] == {"condition": "service_healthy"}
    assert urlsplit(service["environment"]["DATABASE_URL"]).hostname == "postgres"
    if name in LONG_RUNNING:
        assert urlsplit(service["environment"]["BROKER_URL"]).hostname == "rabbitmq"


@pytest.mark.parametrize("name", sorted(LONG_RUNNING))
def test_long_running_processes_start_after_migrate_and_restart(
    services: dict[str, Any], name: str
) -> None:
    service = services[name]

    assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert service["restart"] == "unless-stopped"


def test_migrate_runs_once(services: dict[str, Any]) -> None:
    assert services["migrate"]["restart"] == "no"


@pytest.mark.parametrize("name", sorted(ENGINE))
def test_every_engine_service_is_built_from_the_dockerfile(
    services: dict[str, Any], name: str
) -> None:
    assert services[name]["build"] == "."
    assert services[name]["image"] == services["worker"]["image"]


def test_the_engine_logs_in_with_the_credentials_the_servers_are_given(
    services: dict[str, Any],
) -> None:
    database = urlsplit(services["worker"]["environment"]["DATABASE_URL"])
    broker = urlsplit(services["worker"]["environment"]["BROKER_URL"])
    postgres = services["postgres"]["environment"]
    rabbitmq = services["rabbitmq"]["environment"]

    assert database.scheme == "postgresql+psycopg"
    assert (database.username, database.password, database.path) == (
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
        "/" + postgres["POSTGRES_DB"],
    )
    assert broker.scheme == "amqp"
    # guest may only log in from localhost, and the administrator is for people, not services.
    assert broker.username not in ("guest", rabbitmq["RABBITMQ_DEFAULT_USER"])
    made = services["broker-users"]["environment"]
    assert broker.password == made["ENGINE_BROKER_PASSWORD"]
    assert f"user {broker.username} " in SETUP_USERS.read_text("utf-8")


def test_every_service_has_a_broker_user_of_its_own_and_no_password_is_inline(
    raw_compose: str, services: dict[str, Any]
) -> None:
    console = urlsplit(services["console"]["environment"]["BROKER_URL"]).username
    engine = urlsplit(services["worker"]["environment"]["BROKER_URL"]).username
    assert console != engine
    assert f"user {console} " in SETUP_USERS.read_text("utf-8")
    raw = yaml.safe_load(raw_compose)
    for name, service in raw["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if "PASS" in key or key.endswith(("_URL", "_KEY")):
                password = urlsplit(value).password if "://" in value else value
                if password is not None and key != "RABBITMQ_ADMIN_USER":
                    assert VARIABLE.fullmatch(password), (name, key)


def test_every_engine_variable_is_a_setting(services: dict[str, Any]) -> None:
    settings = {name.upper() for name in Settings.model_fields} | {
        name.upper() for name in ConsoleSettings.model_fields
    }

    for name in ENGINE:
        assert set(services[name]["environment"]) <= settings


def test_the_dockerfile_installs_the_package_on_python_3_11_slim() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text("utf-8")

    assert re.search(r"^FROM python:3\.11\.\d+-slim$", dockerfile, re.MULTILINE)
    assert re.search(
        r"^HEALTHCHECK .*\\\n\s+CMD \[\"recourse\", \"health\"\]$", dockerfile, re.MULTILINE
    )
    assert re.search(r"^RUN pip install \.", dockerfile, re.MULTILINE)
    assert re.search(r"^USER ", dockerfile, re.MULTILINE)
    for package in ("messages", "ledger", "policy", "scheduler", "workers", "console"):
        assert f"COPY {package} ./{package}" in dockerfile


def test_the_docker_context_leaves_out_local_state() -> None:
    ignored = (ROOT / ".dockerignore").read_text("utf-8").split()

    assert {".git", ".venv", "*.sqlite"} <= set(ignored)
    assert "README.md" not in ignored, "pyproject.toml names README.md as the readme"


def test_the_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")

    undocumented = [
        name.upper() for name in Settings.model_fields if f"`{name.upper()}`" not in readme
    ]
    assert not undocumented, f"README.md does not document {undocumented}"


COMPOSE_SPEC = ROOT / "tests" / "data" / "compose-spec.json"
"""The Compose Specification's JSON Schema, as `docker compose` (v2) validates a file with:
compose-spec/compose-spec, schema/compose-spec.json at 170098ba07d9 (2026-06-23, Apache-2.0).
No `docker compose` v2 can be installed from a package registry here (Debian and PyPI have
only docker-compose 1.x), so the suite validates against the schema itself."""


def test_the_compose_file_is_valid_against_the_compose_specification(
    compose: dict[str, Any],
) -> None:
    from jsonschema import Draft7Validator

    schema = json.loads(COMPOSE_SPEC.read_text("utf-8"))
    Draft7Validator.check_schema(schema)

    errors = [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in Draft7Validator(schema).iter_errors(compose)
    ]

    assert errors == []


def test_the_schema_check_catches_what_compose_would_refuse(compose: dict[str, Any]) -> None:
    """The check is not vacuous: a typo in a service key fails it."""
    from jsonschema import Draft7Validator

    schema = json.loads(COMPOSE_SPEC.read_text("utf-8"))
    broken = {
        **compose,
        "services": {
            **compose["services"],
            "worker": {**compose["services"]["worker"], "healthcheck": {"tset": ["CMD", "true"]}},
        },
    }

    assert not Draft7Validator(schema).is_valid(broken)
