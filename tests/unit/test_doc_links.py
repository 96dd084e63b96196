"""Every relative link of the README and docs/ names a file the repository has (the docs once
cited a POLICY.md that was not in it: docs/policy.md is the rules' reference now)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\((?P<target>[^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_relative_link_names_a_file_of_the_repository(page: Path) -> None:
    targets = [match["target"] for match in LINK.finditer(page.read_text("utf-8"))]
    missing = [
        target
        for target in targets
        if "://" not in target
        and not target.startswith("mailto:")
        and not (page.parent / target).exists()
    ]

    assert missing == []


def test_no_page_or_module_cites_a_policy_file_the_repository_lacks() -> None:
    cited = [
        str(path.relative_to(ROOT))
        for folder in ("docs", "messages", "ledger", "policy", "scheduler", "workers", "console")
        for path in (ROOT / folder).rglob("*")
        if path.suffix in {".md", ".py"} and "POLICY.md" in path.read_text("utf-8")
    ]

    assert cited == []
