"""The picture of a run: every headline ratio against its goal, and the curves behind them.

matplotlib comes with the `bench` extra (`pip install -e '.[bench]'`); it is imported here
only, so every benchmark runs without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# Ratio goals drawn as a mark on each bar: (goal, True when the ratio must stay at or above).
RATIO_GOALS: dict[str, tuple[float, bool]] = {
    "throughput": (0.5, True),
    "deadline_tick": (2.0, False),
    "ledger_growth": (1.5, False),
    "worker_memory": (1.1, False),
}


def draw(doc: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    benchmarks: dict[str, Any] = doc["benchmarks"]
    figure, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    figure.suptitle(
        f"Recourse benchmarks ({doc['size']}, {doc['machine'].get('cpus')} CPUs,"
        f" {doc['measured_at']})"
    )
    _ratios(axes[0][0], benchmarks)
    _replay(axes[0][1], benchmarks.get("replay"))
    _latency(axes[0][2], benchmarks.get("latency"))
    _ledger(axes[1][0], benchmarks.get("ledger_growth"))
    _ticks(axes[1][1], benchmarks.get("deadline_tick"))
    _memory(axes[1][2], benchmarks.get("worker_memory"))
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def _empty(axis: Any, title: str) -> None:
    axis.set_title(title)
    axis.text(0.5, 0.5, "not run", ha="center", va="center", transform=axis.transAxes)
    axis.set_axis_off()


def _ratios(axis: Any, benchmarks: dict[str, Any]) -> None:
    names = [name for name in RATIO_GOALS if name in benchmarks]
    if not names:
        _empty(axis, "headline ratios")
        return
    ratios = [benchmarks[name]["ratio"] for name in names]
    colours = ["tab:green" if benchmarks[name]["met"] else "tab:red" for name in names]
    axis.bar(names, ratios, color=colours)
    for index, name in enumerate(names):
        goal, _at_least = RATIO_GOALS[name]
        axis.hlines(goal, index - 0.4, index + 0.4, colors="black", linestyles="dashed")
    axis.set_title("headline ratios (dashed: goal; green: met)")
    axis.tick_params(axis="x", labelrotation=20)


def _replay(axis: Any, replay: dict[str, Any] | None) -> None:
    if replay is None:
        _empty(axis, "replay (SQLite)")
        return
    metrics = replay["metrics"]
    axis.bar(
        ["replay", "sqlite3 reference", "goal"],
        [metrics["events_per_s"], metrics["reference_tx_per_s"], 5_000],
        color=["tab:blue", "tab:gray", "white"],
        edgecolor="black",
    )
    axis.set_ylabel("events (transactions) per second")
    axis.set_title(f"replay of {metrics['events']:,} events (SQLite)")


def _latency(axis: Any, latency: dict[str, Any] | None) -> None:
    if latency is None:
        _empty(axis, "latency")
        return
    engine, broker = latency["metrics"]["engine"], latency["metrics"]["broker"]
    labels = ["p50", "p95", "p99"]
    positions = range(len(labels))
    axis.bar(
        [p - 0.2 for p in positions],
        [engine[f"{label}_ms"] for label in labels],
        width=0.4,
        label="engine",
    )
    axis.bar(
        [p + 0.2 for p in positions],
        [broker[f"{label}_ms"] for label in labels],
        width=0.4,
        label="RabbitMQ alone",
        color="tab:gray",
    )
    axis.axhline(250, color="black", linestyle="dashed", label="goal p99")
    axis.set_xticks(list(positions), labels)
    axis.set_ylabel("ms, publish to notification")
    axis.set_title(f"latency at {engine['rate_per_s']:,.0f} events/s")
    axis.legend()


def _ledger(axis: Any, ledger: dict[str, Any] | None) -> None:
    if ledger is None:
        _empty(axis, "ledger growth")
        return
    points = ledger["metrics"]["points"]
    sizes = [point["transfers"] for point in points]
    axis.loglog(sizes, [point["audit_s"] * 1000 for point in points], "o-", label="audit, ms")
    axis.loglog(
        sizes, [point["balance_read_us"] / 1000 for point in points], "s-", label="balance read, ms"
    )
    axis.set_xlabel("transfers in the book")
    axis.set_title("audit (linear) and balance read (flat)")
    axis.legend()


def _ticks(axis: Any, ticks: dict[str, Any] | None) -> None:
    if ticks is None:
        _empty(axis, "deadline tick")
        return
    points = ticks["metrics"]["ticks"]
    axis.semilogx(
        [point["stored"] for point in points], [point["tick_s"] * 1000 for point in points], "o-"
    )
    axis.axhline(1000, color="black", linestyle="dashed", label="goal")
    axis.set_xlabel("deadlines stored")
    axis.set_ylabel(f"ms for one tick firing {ticks['metrics']['due']:,}")
    axis.set_title("deadline tick")
    axis.set_ylim(bottom=0)
    axis.legend()


def _memory(axis: Any, memory: dict[str, Any] | None) -> None:
    if memory is None:
        _empty(axis, "worker memory")
        return
    samples = memory["metrics"]["samples"]
    axis.plot(
        [sample["events"] for sample in samples],
        [sample["rss_kib"] / 1024 for sample in samples],
    )
    warm = memory["metrics"]["warm_rss_kib"] / 1024
    axis.axhline(warm * 1.1, color="black", linestyle="dashed", label="warm-up + 10%")
    axis.set_xlabel("events committed")
    axis.set_ylabel("worker resident size, MiB")
    axis.set_ylim(bottom=0)
    axis.set_title("worker memory")
    axis.legend()
