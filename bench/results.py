"""What a benchmark returns, the table printed at the end of a run, and the JSON file."""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).with_name("results")


@dataclass
class BenchResult:
    """One benchmark's outcome. `ratio` is the headline: a figure divided by a reference
    measured in the same run, so that it holds on a busier or faster machine too."""

    name: str
    figure: str  # what was measured, with its unit: "412 events/s"
    reference: str  # what it was divided by
    ratio: float
    goal: str  # the goal, as the ratio or the absolute figure it is judged on
    met: bool
    metrics: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "figure": self.figure,
            "reference": self.reference,
            "ratio": round(self.ratio, 4),
            "goal": self.goal,
            "met": self.met,
            "metrics": self.metrics,
            "notes": self.notes,
        }


def machine() -> dict[str, Any]:
    build_number, build_date = platform.python_build()
    return {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        # Two builds of one Python version differ by about a tenth in the replay's CPU an
        # event on this project's machine (a profile-guided build against a plain one,
        # docs/performance.md), so the figures say which interpreter ran them.
        "python_executable": os.path.realpath(sys.executable),
        "python_build": f"{build_number}, {build_date}, {platform.python_compiler()}",
        "platform": platform.platform(),
    }


def document(
    results: list[BenchResult],
    *,
    size: str,
    command: str,
    servers: dict[str, str],
    failures: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The run as JSON; `failures`: each benchmark that failed, with why."""
    return {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "size": size,
        "machine": machine() | servers,
        "benchmarks": {result.name: result.as_json() for result in results},
        "failures": dict(failures or {}),
    }


def write(doc: dict[str, Any], directory: Path = RESULTS_DIR) -> Path:
    """Write `doc` to `<directory>/<timestamp>.json` and return the path."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = directory / f"{stamp}.json"
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def table(results: list[BenchResult], failures: Mapping[str, str] | None = None) -> str:
    """The results as a plain-text table, one row a benchmark (a failed one says so; its
    reason is among the notes)."""
    failures = failures or {}
    header = ("benchmark", "figure", "reference", "ratio", "goal", "met")
    rows = [
        (
            result.name,
            result.figure,
            result.reference,
            f"{result.ratio:.2f}",
            result.goal,
            "yes" if result.met else "NO",
        )
        for result in results
    ] + [(name, "FAILED", "-", "-", "-", "NO") for name in failures]
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    notes = [f"{result.name}: {note}" for result in results for note in result.notes]
    notes += [f"{name}: failed: {reason}" for name, reason in failures.items()]
    return "\n".join(lines + (["", *notes] if notes else []))
