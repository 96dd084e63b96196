"""The committed OpenAPI document of /api/v1, docs/openapi.json, and how to regenerate it.

    python -m console.openapi            # rewrite docs/openapi.json
    python -m console.openapi --check    # exit 1 when the committed one is stale

The document is built from the routes and their models; no database is opened.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from console.api import openapi_document
from console.app import create_app
from console.settings import ConsoleSettings
from policy.config import load_policies
from workers.database import make_engine

COMMITTED = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"


def generated() -> dict[str, Any]:
    def never_publishes(envelope: dict[str, object]) -> None:
        raise AssertionError("the document is built, nothing is published")

    app = create_app(
        make_engine("sqlite://"),
        load_policies(),
        never_publishes,
        ConsoleSettings(),
        secret_key="only-builds-the-openapi-document-0123456789",
        clock=lambda: datetime.now(UTC),
    )
    return openapi_document(app.state.api_router)


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    text = render(generated())
    if "--check" in argv:
        if COMMITTED.read_text(encoding="utf-8") != text:
            print(f"{COMMITTED} is stale: run python -m console.openapi", file=sys.stderr)
            return 1
        return 0
    COMMITTED.write_text(text, encoding="utf-8")
    print(f"wrote {COMMITTED}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
